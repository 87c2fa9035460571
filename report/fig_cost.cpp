// Cost figures (figures.h): ranks and stored parameters per task; wall time, training
// throughput and peak device memory per task.
#include <filesystem>

#include "report/figures.h"

namespace sdlora::report {
namespace {

// One panel with a line per run of `value(task)`.
template <typename F>
Panel per_task_panel(const std::vector<RunSummary>& runs, const std::string& title,
                     const std::string& ylabel, F value) {
  Panel p{title, "task", ylabel, {}, {}, true, true, 0.0};
  for (const RunSummary& r : runs) {
    Series s{r.label, {}, {}};
    for (const TaskSummary& t : r.tasks) {
      s.x.push_back(static_cast<double>(t.task));
      s.y.push_back(value(t));
    }
    p.series.push_back(std::move(s));
  }
  return p;
}

}  // namespace

FigureFile figure_ranks_params(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  FigureFile f{"ranks_params.png",
               "Rank of the pair trained in each task, and parameters stored after each task "
               "(adapters and classifier)",
               {1400, 520}};
  std::vector<Panel> panels = {
      per_task_panel(runs, "Rank trained per task", "rank",
                     [](const TaskSummary& t) { return static_cast<double>(t.rank); }),
      per_task_panel(runs, "Stored parameters after each task", "parameters (thousands)",
                     [](const TaskSummary& t) { return t.params_stored / 1000.0; })};
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(), "Ranks and storage", panels,
                   f.size, 2);
  return f;
}

FigureFile figure_cost(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  FigureFile f{"cost.png",
               "Per task: wall time (training and evaluation), training images/s and peak "
               "device memory",
               {1500, 900}};
  std::vector<Panel> panels = {
      per_task_panel(runs, "Wall time per task", "seconds",
                     [](const TaskSummary& t) { return t.seconds; }),
      per_task_panel(runs, "Training throughput", "images/s",
                     [](const TaskSummary& t) { return t.images_per_s; }),
      per_task_panel(runs, "Peak device memory", "MiB",
                     [](const TaskSummary& t) { return t.peak_bytes / (1024.0 * 1024.0); })};
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(), "Time and memory", panels,
                   f.size, 2);
  return f;
}

}  // namespace sdlora::report
