// The magnitudes figure (figures.h): alpha_k of every SD-LoRA component after each task.
#include <filesystem>
#include <limits>

#include "report/figures.h"

namespace sdlora::report {

Panel magnitude_evolution_panel(const RunSummary& run) {
  Panel p{run.label, "after task", "magnitude alpha_k", {}, {}, true, true, 0.0};
  size_t K = 0;
  for (const TaskSummary& t : run.tasks) K = std::max(K, t.magnitudes.size());
  for (size_t k = 0; k < K; ++k) {
    Series s{"alpha_" + std::to_string(k), {}, {}};
    for (const TaskSummary& t : run.tasks) {
      s.x.push_back(static_cast<double>(t.task));
      s.y.push_back(k < t.magnitudes.size() ? t.magnitudes[k]
                                            : std::numeric_limits<double>::quiet_NaN());
    }
    p.series.push_back(std::move(s));
  }
  return p;
}

std::optional<FigureFile> figure_magnitudes(const std::vector<RunSummary>& runs,
                                            const std::string& out_dir) {
  std::vector<Panel> panels;
  for (const RunSummary& r : runs) {
    bool any = false;
    for (const TaskSummary& t : r.tasks) any = any || !t.magnitudes.empty();
    if (is_sdlora_family(r.method) && any) panels.push_back(magnitude_evolution_panel(r));
  }
  if (panels.empty()) return std::nullopt;
  const int n = static_cast<int>(panels.size());
  const int columns = n <= 3 ? n : 3, rows = (n + columns - 1) / columns;
  FigureFile f{"magnitudes.png",
               "Magnitudes alpha_k of the SD-LoRA components after each task (component k is "
               "the k-th direction kept; KD runs keep fewer than tasks)",
               {520 * columns, 60 + 420 * rows}};
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(),
                   "Magnitudes alpha_k after each task", panels, f.size, columns);
  return f;
}

}  // namespace sdlora::report
