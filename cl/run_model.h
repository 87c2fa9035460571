// A finished task's model restored from a run folder (run_dir.h): the backbone of the run's
// config with the learner's adapters and the classifier of checkpoints/task_{K}.safetensors, for
// `sdlora eval` (accuracy on the classes seen by that checkpoint) and `sdlora export` (the merged
// backbone in timm naming plus the head, which `sdlora forward` loads).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cl/config.h"
#include "cl/head.h"
#include "cl/learner.h"
#include "cl/task_loop.h"

namespace sdlora::cl {

// The run's config (config.json), throwing naming the folder when it is not a run folder.
Config load_run_config(const std::string& run_dir);
// The last task whose checkpoint and state are written (state.json), or -1 when none finished.
int64_t last_finished_task(const std::string& run_dir);

struct RunModel {
  Config config;
  int64_t task = -1;
  std::vector<int64_t> class_order;  // original class id of each logit column
  // Declared in this order so that the learner, attached to *backbone, is destroyed first.
  std::unique_ptr<ViT> backbone;
  std::unique_ptr<Learner> learner;
  std::unique_ptr<GrowingHead> head;

  RunModel() = default;
  RunModel(RunModel&&) = default;
  // Assigning would free the old backbone while its learner is still attached.
  RunModel& operator=(RunModel&&) = delete;
};

// Restores task `task` (-1: the last finished) of run_dir on `device` (empty: the run's device).
// Throws naming the folder and the task when its checkpoint is missing.
RunModel load_run_model(const std::string& run_dir, int64_t task = -1,
                        const std::string& device = "");

// The model as one plain ViT in timm naming: the adapters merged into the qkv weights (or the
// backbone itself for a learner without adapters) plus head.weight / head.bias of every seen
// class; metadata records the run, the task and the model's shape.
struct ExportedModel {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};
ExportedModel export_merged(const RunModel& model);

}  // namespace sdlora::cl
