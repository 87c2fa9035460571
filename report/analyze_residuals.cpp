// Finding 2a on any SD-LoRA-family run (analyze.h): each task's direction fitted by least squares
// on every earlier direction, per projection, with SD-LoRA-KD's own fit (SDLoRA::kd_fit).
#include <algorithm>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "cl/run_dir.h"
#include "cl/run_model.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "report/analyze.h"

namespace sdlora::report {

NewestDirection newest_direction_residuals(const cl::Config& config,
                                           const std::map<std::string, Tensor>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  ViT vit(config.vit_config(), Device::cpu());
  SDLoRA adapters(vit, parse_sdlora_mode(config.sdlora_mode));
  adapters.load_state_dict(tensors, metadata);
  NewestDirection out;
  out.was_current = adapters.has_current();
  out.directions = adapters.num_components() + (out.was_current ? 1 : 0);
  if (out.directions < 2) return out;
  if (!out.was_current) {
    // The last frozen component becomes the current pair: the checkpoint format's own way of
    // storing a pair in progress (the last index, sdlora_current = true). Its beta is dropped;
    // the fit uses unit directions only.
    std::map<std::string, Tensor> state = adapters.state_dict(false);
    std::map<std::string, std::string> meta = adapters.metadata(false);
    meta["sdlora_current"] = "true";
    adapters.load_state_dict(state, meta);
  }
  for (int64_t p = 0; p < adapters.num_projections(); ++p)
    out.residuals.push_back(adapters.kd_fit(p).residual);
  return out;
}

ResidualAnalysis analyze_residuals(const std::string& run_dir, const ProgressFn& progress) {
  const cl::Config config = cl::load_run_config(run_dir);
  SDLORA_CHECK(is_sdlora_family(config.method), "analyze residuals: run '", run_dir, "' is a ",
               config.method,
               " run; residuals of directions need an SD-LoRA-family run (sdlora, sdlora-rr, "
               "sdlora-kd)");
  const int64_t last = cl::last_finished_task(run_dir);
  SDLORA_CHECK(last >= 0, "analyze residuals: run '", run_dir, "' has no finished task");
  const RunSummary summary = read_run(run_dir);
  ResidualAnalysis a;
  a.run = run_dir;
  a.method = config.method;
  {
    ViT vit(config.vit_config(), Device::cpu());
    SDLoRA names(vit, parse_sdlora_mode(config.sdlora_mode));
    for (int64_t p = 0; p < names.num_projections(); ++p)
      a.projections.push_back(names.projection_name(p));
  }
  for (const TaskSummary& t : summary.tasks)
    if (t.kd_checked) a.tau = t.kd_tau;

  int64_t previous = 0;  // directions stored after the previous task
  for (int64_t t = 0; t <= last; ++t) {
    if (progress) progress("task", t, last + 1);
    const SafetensorsFile file = load_safetensors(cl::checkpoint_path(run_dir, t), Device::cpu());
    const NewestDirection d = newest_direction_residuals(config, file.tensors, file.metadata);
    // A checkpoint with a current pair stores task t's pair there; one without stores it as a
    // new last component unless KD absorbed it.
    const bool stored = d.was_current || d.directions > previous;
    previous = d.directions;
    if (t == 0) continue;
    TaskResiduals r;
    r.task = t;
    if (stored && !d.residuals.empty()) {
      r.source = "checkpoint";
      r.earlier = d.directions - 1;
      r.residuals = d.residuals;
    } else {
      const auto it = std::find_if(summary.tasks.begin(), summary.tasks.end(),
                                   [&](const TaskSummary& s) { return s.task == t; });
      if (it == summary.tasks.end() || !it->kd_checked) continue;
      r.source = "kd";
      r.earlier = d.directions;
      r.residuals = it->kd_residuals;
    }
    a.tasks.push_back(std::move(r));
  }
  if (progress) progress("task", last + 1, last + 1);
  return a;
}

std::string residuals_json(const ResidualAnalysis& a) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const TaskResiduals& t : a.tasks) {
    double mean = 0.0, worst = 0.0;
    for (double r : t.residuals) {
      mean += r / static_cast<double>(t.residuals.size());
      worst = std::max(worst, r);
    }
    tasks.push_back({{"task", t.task},
                     {"source", t.source},
                     {"earlier_directions", t.earlier},
                     {"residuals", t.residuals},
                     {"mean", mean},
                     {"max", worst}});
  }
  nlohmann::json j{{"analysis", "residuals"},
                   {"run", a.run},
                   {"method", a.method},
                   {"projections", a.projections},
                   {"tau", a.tau >= 0 ? nlohmann::json(a.tau) : nlohmann::json(nullptr)},
                   {"tasks", tasks}};
  return j.dump(2) + "\n";
}

FigureFile residuals_figure(const ResidualAnalysis& a, const std::string& out_dir) {
  FigureFile f{"residuals.png",
               "Residual of each task's unit direction fitted on every earlier direction "
               "(least squares, per projection): mean, smallest and largest over projections",
               {1000, 560}};
  Panel p{a.method, "task", "residual (0: in the span of earlier directions)", {}, {}, true,
          true,     1.0};
  Series mean{"mean", {}, {}}, lo{"min", {}, {}, true}, hi{"max", {}, {}, true};
  for (const TaskResiduals& t : a.tasks) {
    if (t.residuals.empty()) continue;
    double m = 0.0;
    for (double r : t.residuals) m += r / static_cast<double>(t.residuals.size());
    const double x = static_cast<double>(t.task);
    mean.x.push_back(x);
    mean.y.push_back(m);
    lo.x.push_back(x);
    lo.y.push_back(*std::min_element(t.residuals.begin(), t.residuals.end()));
    hi.x.push_back(x);
    hi.y.push_back(*std::max_element(t.residuals.begin(), t.residuals.end()));
  }
  p.series = {mean, lo, hi};
  if (a.tau >= 0) p.hlines.push_back({"KD tau", a.tau});
  draw_line_figure((std::filesystem::path(out_dir) / f.file).string(),
                   "Residuals of new directions against earlier ones", {p}, f.size);
  return f;
}

}  // namespace sdlora::report
