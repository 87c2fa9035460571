// The KD figure (figures.h): every projection's residual at each KD check against tau.
#include <filesystem>

#include "report/figures.h"

namespace sdlora::report {

std::optional<FigureFile> figure_kd(const std::vector<RunSummary>& runs,
                                    const std::string& out_dir) {
  std::vector<Panel> panels;
  for (const RunSummary& r : runs) {
    Panel p{r.label, "task", "residual", {}, {}, true, true, 0.0};
    size_t P = 0;
    double tau = -1.0;
    for (const TaskSummary& t : r.tasks)
      if (t.kd_checked) {
        P = std::max(P, t.kd_residuals.size());
        tau = t.kd_tau;
      }
    if (P == 0) continue;
    for (size_t q = 0; q < P; ++q) {
      Series s{P <= 8 ? "projection " + std::to_string(q) : "", {}, {}};
      for (const TaskSummary& t : r.tasks)
        if (t.kd_checked && q < t.kd_residuals.size()) {
          s.x.push_back(static_cast<double>(t.task));
          s.y.push_back(t.kd_residuals[q]);
        }
      p.series.push_back(std::move(s));
    }
    p.hlines.push_back({"tau = " + std::to_string(tau).substr(0, 5), tau});
    panels.push_back(std::move(p));
  }
  if (panels.empty()) return std::nullopt;
  const int n = static_cast<int>(panels.size());
  FigureFile f{"kd_residuals.png",
               "SD-LoRA-KD: residual of each task's direction per projection against tau "
               "(at or below tau on every projection: absorbed)",
               {800 * std::min(n, 2), 60 + 460 * ((n + 1) / 2)}};
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(),
                   "KD residuals per task and projection", panels, f.size, 2);
  return f;
}

}  // namespace sdlora::report
