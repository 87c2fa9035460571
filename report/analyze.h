// `sdlora analyze`: the paper's analyses of a finished run, each as JSON and a figure.
//   residuals    (analyze_residuals.cpp) Finding 2a: for every task and projection, the
//                least-squares residual of the task's unit direction against every earlier one.
//   interpolate  (analyze_interpolate.cpp) Finding 3: accuracy and loss on every seen task's test
//                images along the straight line between the merged models after tasks T1 and T2.
//   magnitudes   (analyze_magnitudes.cpp) Findings 2b/c: alpha_k after each task, and after the
//                last task by component.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cl/config.h"
#include "report/figures.h"
#include "report/run_data.h"
#include "tensor/tensor.h"

namespace sdlora::report {

// Called as work advances: done of total steps of `stage` (a task, an interpolation point).
using ProgressFn = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

// ---- residuals

// The residual, per projection, of the newest direction among the SD-LoRA adapter tensors
// `tensors` (nn/sdlora.h's naming and metadata) against the components before it: the current
// pair when the checkpoint holds one, else the last frozen component. Computed by
// SDLoRA::kd_fit on adapters of config's ViT shape. Empty when there are fewer than two
// directions. `has_current` reports which of the two it was; `directions` how many there are.
struct NewestDirection {
  std::vector<double> residuals;
  bool was_current = false;
  int64_t directions = 0;  // frozen components, plus one for a current pair
};
NewestDirection newest_direction_residuals(const cl::Config& config,
                                           const std::map<std::string, Tensor>& tensors,
                                           const std::map<std::string, std::string>& metadata);

struct TaskResiduals {
  int64_t task = 0;
  // "checkpoint": computed from the task's checkpoint; "kd": the task's direction was absorbed
  // by SD-LoRA-KD and is no longer stored, so these are the residuals its KD check recorded.
  std::string source;
  int64_t earlier = 0;            // directions it was fitted on
  std::vector<double> residuals;  // per projection
};

struct ResidualAnalysis {
  std::string run, method;
  std::vector<std::string> projections;  // "blocks.0.attn.qkv.lora_q", ...
  std::vector<TaskResiduals> tasks;      // tasks 1.. (task 0 has no earlier direction)
  double tau = -1.0;                     // the KD threshold of a KD run, else -1
};
ResidualAnalysis analyze_residuals(const std::string& run_dir, const ProgressFn& progress = {});
std::string residuals_json(const ResidualAnalysis& a);
FigureFile residuals_figure(const ResidualAnalysis& a, const std::string& out_dir);

// ---- interpolation

// The backbone is interpolated, theta(l) = (1 - l) theta_T1 + l theta_T2 over every tensor of the
// merged models (adapters folded into the qkv weights). The classifier is not: it is a per-class
// linear layer whose rows never change after their task, so it is scored twice on the same
// features: with T2's classifier (every class seen after T2) on each task <= T2, and with T1's
// classifier (the classes seen after T1) on each task <= T1. l = 0 therefore reproduces T1's own
// accuracies and l = 1 T2's.
struct InterpolationCurve {
  std::string run, method;
  int64_t from = 0, to = 0;
  std::vector<double> lambdas;
  std::vector<int64_t> test_images;  // per task <= to
  // [point][task]: percent, and the mean cross-entropy over the classifier's classes.
  std::vector<std::vector<double>> accuracy, loss;            // T2's classifier, tasks <= to
  std::vector<std::vector<double>> accuracy_from, loss_from;  // T1's classifier, tasks <= from
};
InterpolationCurve analyze_interpolation(const std::string& run_dir, int64_t from, int64_t to,
                                         int64_t points, const std::string& device = "",
                                         const ProgressFn& progress = {});
std::string interpolation_json(const std::vector<InterpolationCurve>& curves);
FigureFile interpolation_figure(const std::vector<InterpolationCurve>& curves,
                                const std::string& out_dir);

// ---- magnitudes

std::string magnitudes_json(const RunSummary& run);
FigureFile magnitudes_figure(const RunSummary& run, const std::string& out_dir);

}  // namespace sdlora::report
