// Findings 2b/c (analyze.h): the magnitudes alpha_k of every component after each task, as
// metrics.json records them, and after the last task by component.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "report/analyze.h"
#include "tensor/error.h"

namespace sdlora::report {

std::string magnitudes_json(const RunSummary& run) {
  nlohmann::json after = nlohmann::json::array();
  for (const TaskSummary& t : run.tasks)
    after.push_back({{"task", t.task}, {"magnitudes", t.magnitudes}});
  nlohmann::json j{
      {"analysis", "magnitudes"},
      {"run", run.dir},
      {"method", run.method},
      {"after_task", after},
      {"final", run.tasks.empty() ? std::vector<double>{} : run.tasks.back().magnitudes}};
  return j.dump(2) + "\n";
}

FigureFile magnitudes_figure(const RunSummary& run, const std::string& out_dir) {
  SDLORA_CHECK(is_sdlora_family(run.method), "analyze magnitudes: run '", run.dir, "' is a ",
               run.method,
               " run; magnitudes exist in SD-LoRA-family runs (sdlora, sdlora-rr, sdlora-kd)");
  SDLORA_CHECK(!run.tasks.empty() && !run.tasks.back().magnitudes.empty(),
               "analyze magnitudes: run '", run.dir, "' records no magnitudes in metrics.json");
  FigureFile f{"magnitudes.png",
               "Magnitudes alpha_k: their evolution over tasks, and their values after the last "
               "task by component",
               {1400, 560}};
  Panel final{"After the last task", "component k", "alpha_k", {}, {}, true, true, 0.0};
  Series s{"", {}, {}};
  for (size_t k = 0; k < run.tasks.back().magnitudes.size(); ++k) {
    s.x.push_back(static_cast<double>(k));
    s.y.push_back(run.tasks.back().magnitudes[k]);
  }
  final.series.push_back(s);
  Panel evolution = magnitude_evolution_panel(run);
  evolution.title = "After each task";
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(),
                   "Magnitudes (" + run.label + ")", {evolution, final}, f.size, 2);
  return f;
}

}  // namespace sdlora::report
