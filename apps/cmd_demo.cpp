// sdlora demo: the README's main job. Runs every method of the comparison on Split Fashion-MNIST
// from the committed glyph-pretrained backbone, one run folder each (DIR/<method>/, resumed when
// it already holds finished tasks), and prints the comparison (apps/demo.h).
//
//   sdlora demo --out DIR [--methods m1,m2,...] [--set key=value ...] [--device cpu|cuda]
// With --set seed=1993,1994,1995 every method runs once per seed (DIR/<method>/seed-<s>/, the
// class order fixed by the config's class_order_seed) and the table shows mean +- std.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/demo.h"
#include "apps/progress.h"
#include "cl/multi_seed.h"
#include "data/file_io.h"
#include "report/report.h"

namespace sdlora::apps {
namespace {

struct DemoOptions {
  std::string out, device;
  std::vector<std::string> methods;
  std::vector<std::string> sets;
};

void run_demo(const DemoOptions& o) {
  cl::Config base = demo_config();
  for (const std::string& s : o.sets) cl::apply_override(base, s);
  if (!o.device.empty()) base.device = o.device;
  base.weights = locate_project_file(base.weights);
  SDLORA_CHECK(base.weights.empty() || std::filesystem::exists(base.weights), "demo backbone '",
               base.weights,
               "' not found (it is committed under models/; regenerate it with "
               "`sdlora pretrain`, see README.md)");
  base.validate();
  set_cpu_threads(static_cast<int>(base.threads));
  const std::vector<std::string> methods = o.methods.empty() ? demo_methods() : o.methods;
  for (const std::string& m : methods) {
    cl::Config c = base;
    cl::apply_override(c, "method=" + m);
    c.validate();  // names an unknown method
  }

  std::filesystem::create_directories(o.out);
  std::cout << "sdlora demo: Split Fashion-MNIST, " << base.train_per_class << " training and "
            << base.test_per_class << " test images per class, tasks of " << base.increment
            << " classes, backbone " << base.weights << ", device " << base.device << "\n";
  const cl::Datasets data = cl::open_datasets(base);
  std::vector<DemoRun> runs;
  StopOnSignal stop;
  for (const std::string& m : methods) {
    cl::Config c = base;
    c.method = m;
    const std::string dir = (std::filesystem::path(o.out) / m).string();
    cl::RunOptions run;
    run.run_dir = dir;
    ConsoleReporter reporter("[" + m + "] ");
    run.reporter = &reporter;
    run.stop = stop.flag();
    if (c.seeds.size() > 1) {  // DIR/<method>/seed-<s>/, each resumed when it exists
      run.resume = true;
      const cl::MultiSeedResult seeds = cl::run_seeds(c, run);
      runs.push_back({m, seeds.runs.front().result, seeds});
      continue;
    }
    run.resume = std::filesystem::exists(std::filesystem::path(dir) / "state.json");
    std::unique_ptr<ViT> backbone = cl::make_backbone(c);
    runs.push_back({m, cl::run_training(c, data, *backbone, run), {}});
  }
  const std::string report = demo_report(runs);
  std::cout << "\n" << report;
  nlohmann::json summary = nlohmann::json::array();
  for (const DemoRun& r : runs) {
    nlohmann::json j = nlohmann::json::parse(r.result.metrics_json());
    if (r.seeds.runs.size() > 1) j["seeds"] = nlohmann::json::parse(r.seeds.summary_json());
    summary.push_back(j);
  }
  data::write_file_atomic((std::filesystem::path(o.out) / "summary.json").string(),
                          summary.dump(2) + "\n");
  data::write_file_atomic((std::filesystem::path(o.out) / "report.txt").string(), report);
  // The figures of every method (report/report.h); a build without PLplot only says so.
  try {
    std::vector<std::string> dirs;  // a multi-seed method: its first seed's run
    for (const DemoRun& r : runs)
      dirs.push_back(
          report::expand_run_folders({(std::filesystem::path(o.out) / r.method).string()}).front());
    const auto figures = report::write_report(report::read_runs(dirs),
                                              (std::filesystem::path(o.out) / "report").string());
    std::cout << "\nfigures: " << figures.index << "\n";
  } catch (const std::exception& e) {
    std::cout << "\nfigures not written: " << e.what() << "\n";
  }
  std::cout << "\nrun folders: " << o.out << "/<method>/ (metrics.json, metrics.csv, log.txt, "
            << "checkpoints); summary: " << o.out << "/summary.json\n";
}

}  // namespace

Command add_demo_command(CLI::App& root) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* app =
      root.add_subcommand("demo",
                          "Compare SD-LoRA, -RR, -KD, sequential LoRA and a linear probe on Split "
                          "Fashion-MNIST from the committed small ViT backbone");
  app->add_option("--out", o->out, "folder for the runs (DIR/<method>/) and the summary")
      ->required();
  app->add_option("--methods", o->methods, "methods to run (default: all five)")->delimiter(',');
  app->add_option("--set", o->sets, "override a key of the demo config: key=value (repeatable)");
  app->add_option("--device", o->device, "cpu, cuda or cuda:N");
  return {app, [o] { run_demo(*o); }};
}

}  // namespace sdlora::apps
