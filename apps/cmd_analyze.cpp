// sdlora analyze: the paper's analyses of finished runs, each writing JSON and a figure
// (report/analyze.h), with progress on the terminal as `train` shows it (a bar redrawn in place
// on a terminal, plain lines otherwise).
//
//   sdlora analyze residuals   --run DIR [--out DIR]
//   sdlora analyze interpolate --run DIR | --runs A B  --from T1 --to T2 [--points 11]
//                              [--device cpu|cuda] [--out DIR]
//   sdlora analyze magnitudes  --run DIR [--out DIR]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "apps/progress.h"
#include "data/file_io.h"
#include "report/analyze.h"
#include "tensor/error.h"

namespace sdlora::apps {
namespace {

struct AnalyzeOptions {
  std::string run, out, device;
  std::vector<std::string> runs;
  int64_t from = -1, to = -1, points = 11;
};

// Steps of a long analysis: "[prefix] interpolate point 3/11 [======>      ] 0:12 ETA 0:20".
class StepProgress {
 public:
  explicit StepProgress(std::string prefix)
      : prefix_(std::move(prefix)),
        tty_(isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}
  ~StepProgress() {
    if (tty_ && shown_) std::cerr << "\n";
  }
  report::ProgressFn fn() {
    return
        [this](const std::string& stage, int64_t done, int64_t total) { show(stage, done, total); };
  }

 private:
  void show(const std::string& stage, int64_t done, int64_t total) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta =
        done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total - done) : -1.0;
    std::string line =
        prefix_ + " " + stage + " " + std::to_string(done) + "/" + std::to_string(total);
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
      std::string bar(static_cast<size_t>(filled), '=');
      if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
      std::cerr << "\r\033[K" << line << " [" << bar << "] " << format_duration(elapsed) << " ETA "
                << (eta >= 0 ? format_duration(eta) : "?") << std::flush;
      shown_ = true;
    } else {
      std::cerr << line << " elapsed " << format_duration(elapsed) << "\n";
    }
  }

  std::string prefix_;
  bool tty_, shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string out_dir(const AnalyzeOptions& o, const std::string& run) {
  if (!o.out.empty()) return o.out;
  SDLORA_CHECK(!run.empty(), "--out: required with --runs");
  return (std::filesystem::path(run) / "analysis").string();
}

void write(const std::string& dir, const std::string& name, const std::string& text,
           const report::FigureFile& figure) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  data::write_file_atomic(path, text);
  std::cout << "wrote " << path << " and " << (std::filesystem::path(dir) / figure.file).string()
            << " (" << figure.size.width << "x" << figure.size.height << ")\n";
}

void run_residuals(const AnalyzeOptions& o) {
  SDLORA_CHECK(!o.run.empty(), "analyze residuals: --run is required");
  const std::string dir = out_dir(o, o.run);
  std::filesystem::create_directories(dir);
  report::ResidualAnalysis a;
  {
    StepProgress progress("[residuals]");
    a = report::analyze_residuals(o.run, progress.fn());
  }
  const report::FigureFile f = report::residuals_figure(a, dir);
  write(dir, "residuals.json", report::residuals_json(a), f);
}

void run_interpolate(const AnalyzeOptions& o) {
  std::vector<std::string> runs = o.runs;
  if (!o.run.empty()) runs.insert(runs.begin(), o.run);
  SDLORA_CHECK(!runs.empty(), "analyze interpolate: give --run DIR or --runs A B");
  SDLORA_CHECK(o.from >= 0 && o.to >= 0, "analyze interpolate: --from T1 and --to T2 are required");
  const std::string dir = out_dir(o, runs.size() == 1 ? runs.front() : "");
  std::filesystem::create_directories(dir);
  std::vector<report::InterpolationCurve> curves;
  for (const std::string& run : runs) {
    StepProgress progress("[interpolate " + std::filesystem::path(run).filename().string() + "]");
    curves.push_back(
        report::analyze_interpolation(run, o.from, o.to, o.points, o.device, progress.fn()));
  }
  const report::FigureFile f = report::interpolation_figure(curves, dir);
  write(dir, "interpolation.json", report::interpolation_json(curves), f);
}

void run_magnitudes(const AnalyzeOptions& o) {
  SDLORA_CHECK(!o.run.empty(), "analyze magnitudes: --run is required");
  const std::string dir = out_dir(o, o.run);
  const report::RunSummary run = report::read_run(o.run);
  std::filesystem::create_directories(dir);
  const report::FigureFile f = report::magnitudes_figure(run, dir);
  write(dir, "magnitudes.json", report::magnitudes_json(run), f);
}

}  // namespace

Command add_analyze_command(CLI::App& root) {
  auto o = std::make_shared<AnalyzeOptions>();
  CLI::App* app = root.add_subcommand(
      "analyze", "The paper's analyses of a finished run (JSON and a figure each)");
  app->require_subcommand(1);
  CLI::App* residuals = app->add_subcommand(
      "residuals", "Residual of each task's direction against every earlier one, per projection");
  CLI::App* interpolate = app->add_subcommand(
      "interpolate", "Accuracy and loss along the line between the merged models of two tasks");
  CLI::App* magnitudes =
      app->add_subcommand("magnitudes", "The magnitudes alpha_k after each task");
  for (CLI::App* sub : {residuals, interpolate, magnitudes}) {
    sub->add_option("--run", o->run, "run folder written by `sdlora train` or `sdlora demo`");
    sub->add_option("--out", o->out, "output folder (default: RUN/analysis)");
  }
  interpolate->add_option("--runs", o->runs, "two (or more) runs side by side");
  interpolate->add_option("--from", o->from, "task T1 (lambda 0)")->required();
  interpolate->add_option("--to", o->to, "task T2 (lambda 1)")->required();
  interpolate->add_option("--points", o->points, "points on the line, endpoints included");
  interpolate->add_option("--device", o->device, "cpu, cuda or cuda:N (default: the run's)");
  return {app, [o, residuals, interpolate, magnitudes] {
            report::require_plotting("sdlora analyze");
            if (residuals->parsed()) run_residuals(*o);
            if (interpolate->parsed()) run_interpolate(*o);
            if (magnitudes->parsed()) run_magnitudes(*o);
          }};
}

}  // namespace sdlora::apps
