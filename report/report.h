// `sdlora report`: every figure family (figures.h) for one or several runs, and an index,
// report.md, with the runs' headline numbers and each figure under its caption.
#pragma once

#include <string>
#include <vector>

#include "report/figures.h"
#include "report/run_data.h"

namespace sdlora::report {

struct ReportResult {
  std::string out_dir, index;  // index: out_dir/report.md
  std::vector<FigureFile> figures;
};

// Writes the figures of `runs` and report.md into out_dir (created when missing).
ReportResult write_report(const std::vector<RunSummary>& runs, const std::string& out_dir);

// The default output folder for the inputs of `sdlora report`: INPUT/report for one input (a run
// or a demo folder); empty for several (the caller then requires --out).
std::string default_report_dir(const std::vector<std::string>& inputs);

}  // namespace sdlora::report
