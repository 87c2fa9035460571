// The class-incremental task loop: for each task, grow the classifier, let the learner add its
// parameters, train the configured epochs with the configured optimizer and schedule, evaluate on
// every seen class, record the metrics and statistics, and checkpoint the run folder
// (run_dir.h), so that an interrupted run resumes after its last finished task.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cl/config.h"
#include "cl/learner.h"
#include "cl/metrics.h"
#include "cl/run_result.h"
#include "data/dataset.h"
#include "nn/vit.h"

namespace sdlora::cl {

// One progress report per training batch (what the command line renders).
struct Progress {
  int64_t task = 0, num_tasks = 0;
  int64_t epoch = 0, num_epochs = 0;   // 0-based epoch of num_epochs
  int64_t batch = 0, num_batches = 0;  // 0-based batch of the epoch
  double loss = 0.0;  // the mean loss of the batches last read back (each batch on the CPU; every
                      // 20 on a GPU, to keep host synchronisations out of the step)
  double lr = 0.0;
  double images_per_s = 0.0;  // training throughput of the task so far
  double eta_s = 0.0;         // estimated seconds left in the task's training
};

// Receives progress and the lines that also go to log.txt. Methods run on the training thread.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void on_batch(const Progress& progress) { (void)progress; }
  virtual void on_line(const std::string& line) { (void)line; }
};

class GrowingHead;

struct RunOptions {
  std::string run_dir;  // where metrics, log and checkpoints go; empty = nothing written
  bool resume = false;  // continue the run in run_dir after its last finished task
  Reporter* reporter = nullptr;
  // Set (e.g. by a signal handler) to stop at the next batch; the run throws RunInterrupted and
  // the folder keeps every finished task.
  const std::atomic<bool>* stop = nullptr;
  int64_t max_tasks = -1;  // stop after this many tasks in total (-1: all)
  // Called after the last training step of each task, before the task ends: the model as
  // trained (tests compare it with what is scored, saved and exported).
  std::function<void(int64_t task, const ViT& vit, const GrowingHead& head)> after_training;
};

struct RunInterrupted : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Datasets {
  std::shared_ptr<const data::Dataset> train, test;
};
// The config's dataset, both splits.
Datasets open_datasets(const Config& config);
// The config's backbone on its device: the preset and overrides, weights loaded from
// config.weights (head tensors ignored), or timm's random init seeded by config.seed without.
std::unique_ptr<ViT> make_backbone(const Config& config);

// Runs (or resumes) every task. The backbone must be the config's (same weights on a resume).
RunResult run_training(const Config& config, const Datasets& datasets, ViT& backbone,
                       const RunOptions& options = {});
// The same, opening the datasets and the backbone from the config.
RunResult run_training(const Config& config, const RunOptions& options = {});

// Accuracy after task t of the model (backbone with its adapters, and the classifier): correct and
// total per task 0..t over the test images of every seen class.
TaskCounts evaluate_seen_classes(const Config& config, const ViT& vit, const GrowingHead& head,
                                 const Datasets& datasets, int64_t t);

// The --dry-run plan as pretty JSON: dataset, class order, and per task its classes (original
// ids), its train images and its test images (its own classes), plus the seen-class test count.
std::string plan_json(const Config& config, const Datasets& datasets);
std::string plan_json(const Config& config);

}  // namespace sdlora::cl
