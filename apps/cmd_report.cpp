// sdlora report: figures (PNG) and an index (report.md) for one run, several runs, or a demo
// folder (every method on the same figures); see report/report.h.
//
//   sdlora report --run DIR [--out DIR]
//   sdlora report --runs A B ... --out DIR
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "report/report.h"
#include "tensor/error.h"

namespace sdlora::apps {
namespace {

struct ReportOptions {
  std::string run, out;
  std::vector<std::string> runs;
};

void run_report(const ReportOptions& o) {
  report::require_plotting("sdlora report");
  std::vector<std::string> inputs = o.runs;
  if (!o.run.empty()) inputs.insert(inputs.begin(), o.run);
  SDLORA_CHECK(!inputs.empty(), "give --run DIR (a run or a demo folder) or --runs A B ...");
  const std::string out = o.out.empty() ? report::default_report_dir(inputs) : o.out;
  SDLORA_CHECK(!out.empty(), "--out: required when the report covers several inputs");
  const auto runs = report::read_runs(report::expand_run_folders(inputs));
  const report::ReportResult r = report::write_report(runs, out);
  std::cout << "sdlora report: " << runs.size() << " run(s), " << r.figures.size() << " figures in "
            << r.out_dir << "\n";
  for (const report::FigureFile& f : r.figures)
    std::cout << "  " << f.file << " (" << f.size.width << "x" << f.size.height << ")\n";
  std::cout << "index: " << r.index << "\n";
}

}  // namespace

Command add_report_command(CLI::App& root) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* app = root.add_subcommand(
      "report", "Figures (PNG) and a report.md index for a run, several runs or a demo folder");
  app->add_option("--run", o->run, "a run folder, or a folder of run folders (a demo folder)");
  app->add_option("--runs", o->runs, "several run folders (or demo folders) on the same figures");
  app->add_option("--out", o->out, "output folder (default: RUN/report)");
  return {app, [o] { run_report(*o); }};
}

}  // namespace sdlora::apps
