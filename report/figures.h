// The report's figures, one function per figure family (fig_*.cpp), each writing one PNG into
// out_dir and returning what the index (report.md) lists. Families that do not apply to the runs
// (no SD-LoRA magnitudes, no KD checks) return nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report/plot.h"
#include "report/run_data.h"

namespace sdlora::report {

struct FigureFile {
  std::string file;     // name inside out_dir
  std::string caption;  // one line for the index
  FigureSize size;
};

// fig_accuracy.cpp: accuracy after each task, one line per run; the accuracy matrices as
// heatmaps with their numbers.
FigureFile figure_accuracy(const std::vector<RunSummary>& runs, const std::string& out_dir);
FigureFile figure_accuracy_matrix(const std::vector<RunSummary>& runs, const std::string& out_dir);

// fig_magnitudes.cpp: alpha_k after each task, one panel per SD-LoRA-family run.
std::optional<FigureFile> figure_magnitudes(const std::vector<RunSummary>& runs,
                                            const std::string& out_dir);
// The panel of one run: one line per component k, its alpha_k after tasks k, k+1, ...
Panel magnitude_evolution_panel(const RunSummary& run);

// fig_cost.cpp: ranks and stored parameters per task; time, images/s and peak memory per task.
FigureFile figure_ranks_params(const std::vector<RunSummary>& runs, const std::string& out_dir);
FigureFile figure_cost(const std::vector<RunSummary>& runs, const std::string& out_dir);

// fig_kd.cpp: KD residuals per task and projection against tau, one panel per KD run.
std::optional<FigureFile> figure_kd(const std::vector<RunSummary>& runs,
                                    const std::string& out_dir);

}  // namespace sdlora::report
