// The training step and the epoch loop that the trainer (task_loop.cpp), pre-training
// (apps/pretrain.cpp) and the benchmark (apps/cmd_bench.cpp) share, so that the benchmark times
// exactly the step users run and a change to the step (precision, fused kernels, graphs) is
// made once. The loss of every batch stays on the device and is read back (a host
// synchronisation) only every few batches; each read also checks the trainable tensors and their
// gradients for NaN and infinity.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "cl/config.h"
#include "data/loader.h"
#include "nn/optim.h"
#include "nn/scheduler.h"
#include "tensor/graph.h"
#include "tensor/timing.h"

namespace sdlora::cl {

using NamedVars = std::vector<std::pair<std::string, Var>>;

// The losses of the batches since the last read, on the device. On the CPU a read is free, so
// due() says every batch; on a GPU every `read_every` batches, or when the caller forces it.
class LossWindow {
 public:
  LossWindow(Device device, int64_t read_every);
  void add(const Var& loss, int64_t images);  // loss: the mean over `images` (0-d or 1 element)
  bool due(int64_t batch_index, bool force) const;
  bool empty() const { return pending_.empty(); }
  // Reads every pending loss back at once and clears the window; throws naming `where` when one
  // is NaN or infinite. Returns the sample-weighted mean of the batches read.
  double read(const std::string& where);
  const std::vector<double>& batch_losses() const { return batch_losses_; }  // every batch read
  double mean_since_reset() const;  // sample-weighted, over the reads since reset_mean()
  void reset_mean() { sum_ = 0.0, images_ = 0; }

 private:
  Device device_;
  int64_t read_every_;
  std::vector<Tensor> pending_;
  std::vector<int64_t> pending_images_;
  std::vector<double> batch_losses_;
  double sum_ = 0.0;
  int64_t images_ = 0;
};

// Correct top-1 predictions: the predictions stay on the device until correct() reads them all
// back at once.
class AccuracyCounter {
 public:
  explicit AccuracyCounter(Device device);
  void add(const Tensor& logits, const Tensor& labels);  // logits (B, C), labels (B)
  int64_t total() const { return total_; }
  int64_t correct();  // reads the pending predictions back
  double accuracy();  // correct / total, 0 with none
  void reset();

 private:
  Device device_;
  std::vector<Tensor> pending_pred_, pending_label_;
  int64_t correct_ = 0, total_ = 0;
};

// Throws naming the first tensor whose values (or, with gradients = true, whose gradients) hold
// NaN or infinity, and `where`. One device read for all tensors on the common, finite path.
void check_finite(const NamedVars& tensors, bool gradients, const std::string& where);

// One training step: zero the gradients, forward (the loss closure), backward, the optimizer's
// step; the loss is added to the window (not read back).
Var train_step(const std::function<Var()>& forward, Optimizer& opt, LossWindow& window,
               int64_t images);

// Where the step may run as a recorded graph: never, on a GPU (the trainer's default; the config
// key cuda_graph turns it off), or on any device (the CPU twin: tests).
enum class GraphMode { kOff, kDevice, kAlways };

// The training step recorded once as a graph (tensor/graph.h) and replayed per batch: the
// batch's images and labels are copied into the recorded inputs, forward and backward replay (one
// launch on a GPU), and the optimizer's step runs as usual (its learning rate may change between
// steps). `loss_of` must depend on the batch only through its images and labels, and queue the
// same work whatever their values (no host reads; graph.h); the gradients are left where the
// recording put them, so the optimizer and the finiteness checks see each replay's. The CPU twin
// reruns the step on the recorded inputs under the same checks.
class GraphedStep {
 public:
  // Records the step for batches shaped like `first` (which is only used for its shapes).
  GraphedStep(Optimizer& opt, std::function<Var(const data::Batch&)> loss_of,
              const data::Batch& first);
  // Whether `b` has the recorded shapes, dtypes and device.
  bool accepts(const data::Batch& b) const;
  // Forward and backward on b (accepts(b) must hold); returns the loss, a copy on the device.
  Tensor run(const data::Batch& b);
  // Device memory the recorded step keeps (0 on the CPU).
  int64_t pool_bytes() const { return graph_->pool_bytes(); }

 private:
  Optimizer& opt_;
  std::function<Var(const data::Batch&)> loss_of_;
  data::Batch inputs_;                         // the recorded inputs
  Tensor loss_;                                // the recorded loss (0-d)
  std::vector<std::pair<Var, Tensor>> grads_;  // the recorded gradients (CUDA)
  std::unique_ptr<RecordedGraph> graph_;
};

// What the trainer does per batch: train_step, or from the second step on (graph mode
// permitting) the GraphedStep for every batch of its recorded shape. A recording that fails
// (something in loss_of a graph cannot hold) is logged and the steps stay eager. The epoch loop
// and `sdlora bench` both step through it.
class StepRunner {
 public:
  StepRunner(Optimizer& opt, LossWindow& window, std::function<Var(const data::Batch&)> loss_of,
             GraphMode mode, std::function<void(const std::string&)> log = nullptr);
  void step(const data::Batch& batch);
  bool replaying() const { return graphed_ != nullptr; }  // a recorded graph exists

 private:
  Optimizer& opt_;
  LossWindow& window_;
  std::function<Var(const data::Batch&)> loss_of_;
  GraphMode mode_;
  std::function<void(const std::string&)> log_;
  std::unique_ptr<GraphedStep> graphed_;
  int64_t steps_ = 0;
  bool graph_failed_ = false, graph_logged_ = false;
};

// The class-incremental step's loss: the head over the backbone's features, cross-entropy over
// the columns [col_begin, col_end) (task 0: all of its own; later tasks: the current task's).
class GrowingHead;
Var task_loss(const ViT& vit, const GrowingHead& head, const Tensor& images, const Tensor& labels,
              int64_t col_begin, int64_t col_end);

// The optimizer and schedule of a task from the config (the released semantics for released
// configs: SGD, momentum 0.9, no weight decay, multi-step decay).
std::unique_ptr<Optimizer> make_optimizer(const Config& c, std::vector<Var> params, double lr);
std::unique_ptr<LRScheduler> make_scheduler(const Config& c, Optimizer& opt, bool first);

// What the epoch loop reports after each step.
struct StepReport {
  int64_t epoch = 0, batch = 0, num_batches = 0;
  int64_t images_done = 0;  // in this epoch loop call, this batch included
  bool read = false;        // the window was read back at this step
  double loss = 0.0;        // the mean of the batches last read back
  const data::Batch* batch_data = nullptr;
};

struct EpochHooks {
  const std::atomic<bool>* stop = nullptr;  // set: throws `on_stop()`'s exception at a batch
  std::function<void(int64_t batch_index)> on_stop;     // must throw
  std::function<void(int64_t step)> before_step;        // e.g. a per-step learning rate
  std::function<bool(int64_t batch_index)> force_read;  // e.g. at log lines
  std::function<void(const StepReport&)> after_step;    // progress, logs
  int64_t max_steps = -1;                               // stop the epoch after this many steps
  // Replay the step as a recorded graph (GraphedStep) from the epoch's second batch on, for
  // every batch of the recorded shape; the first batch runs eagerly (it builds the optimizer's
  // state and the libraries' plans). Only for a loss_of that GraphedStep accepts.
  GraphMode graph = GraphMode::kOff;
  std::function<void(const std::string&)> log;  // which path the step took, once per epoch
};

// One pass over the loader's epoch `epoch`: per batch, a train_step on loss_of(batch); the window
// is read back when due (and at the first and last batch), with the trainable tensors and their
// gradients checked each time. `where` prefixes the batches in error messages. Returns the number
// of steps taken.
int64_t run_epoch(data::Loader& loader, int64_t epoch, Optimizer& opt, LossWindow& window,
                  const NamedVars& params, const std::function<Var(const data::Batch&)>& loss_of,
                  const EpochHooks& hooks, const std::string& where);

}  // namespace sdlora::cl
