// The shared training step and epoch loop (train_step.h).
#include "cl/train_step.h"

#include <cmath>

#include "autograd/functions.h"
#include "cl/head.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace sdlora::cl {

// ---- the loss window

LossWindow::LossWindow(Device device, int64_t read_every)
    : device_(device), read_every_(read_every) {}

void LossWindow::add(const Var& loss, int64_t images) {
  pending_.push_back(cast(loss.data(), DType::kFloat32).reshape({1}));
  pending_images_.push_back(images);
}

bool LossWindow::due(int64_t batch_index, bool force) const {
  return force || device_.is_cpu() || (batch_index + 1) % read_every_ == 0;
}

double LossWindow::read(const std::string& where) {
  if (pending_.empty()) return 0.0;
  const std::vector<float> values =
      (pending_.size() == 1 ? pending_.front() : cat(pending_, 0)).to_vector<float>();
  double sum = 0.0;
  int64_t n = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    SDLORA_CHECK(std::isfinite(values[i]), "training diverged: the loss is ", values[i], " in ",
                 where, "; lower the learning rate");
    sum += static_cast<double>(values[i]) * static_cast<double>(pending_images_[i]);
    n += pending_images_[i];
    batch_losses_.push_back(values[i]);
  }
  pending_.clear();
  pending_images_.clear();
  sum_ += sum;
  images_ += n;
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

double LossWindow::mean_since_reset() const {
  return images_ > 0 ? sum_ / static_cast<double>(images_) : 0.0;
}

// ---- accuracy

AccuracyCounter::AccuracyCounter(Device device) : device_(device) {}

void AccuracyCounter::add(const Tensor& logits, const Tensor& labels) {
  pending_pred_.push_back(argmax(logits, 1));
  pending_label_.push_back(labels);
  total_ += labels.numel();
}

int64_t AccuracyCounter::correct() {
  if (!pending_pred_.empty()) {
    const std::vector<int64_t> pred = cat(pending_pred_, 0).to_vector<int64_t>();
    const std::vector<int64_t> truth =
        cast(cat(pending_label_, 0), DType::kInt64).to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct_ += pred[i] == truth[i] ? 1 : 0;
    pending_pred_.clear();
    pending_label_.clear();
  }
  return correct_;
}

double AccuracyCounter::accuracy() {
  return total_ > 0 ? static_cast<double>(correct()) / static_cast<double>(total_) : 0.0;
}

void AccuracyCounter::reset() {
  pending_pred_.clear();
  pending_label_.clear();
  correct_ = total_ = 0;
}

// ---- checks

void check_finite(const NamedVars& tensors, bool gradients, const std::string& where) {
  // sum(x * 0) is 0 when every element is finite and NaN otherwise (inf * 0 = NaN).
  auto probe = [&](const Var& v) -> Tensor {
    const Tensor& t = gradients ? v.grad() : v.data();
    if (!t.defined() || t.numel() == 0) return Tensor();
    return sum(mul(cast(t, DType::kFloat32), 0.0));
  };
  Tensor total;
  for (const auto& named : tensors) {
    const Tensor p = probe(named.second);
    if (!p.defined()) continue;
    if (!total.defined())
      total = p.clone();
    else
      add_(total, p);
  }
  if (!total.defined() || std::isfinite(total.item())) return;
  for (const auto& [name, v] : tensors) {  // the slow path: find the tensor to name
    const Tensor p = probe(v);
    if (p.defined() && !std::isfinite(p.item()))
      SDLORA_THROW("training diverged: ", gradients ? "the gradient of " : "", name,
                   " holds NaN or infinity in ", where, "; lower the learning rate");
  }
}

// ---- the step

Var train_step(const std::function<Var()>& forward, Optimizer& opt, LossWindow& window,
               int64_t images) {
  const Var loss = forward();
  window.add(loss, images);
  opt.zero_grad(true);
  backward(loss);
  opt.step();
  return loss;
}

// ---- the recorded step

GraphedStep::GraphedStep(Optimizer& opt, std::function<Var(const data::Batch&)> loss_of,
                         const data::Batch& first)
    : opt_(opt), loss_of_(std::move(loss_of)) {
  // The recorded inputs live outside the graph's pool: they are written before each replay.
  inputs_.images = Tensor::empty(first.images.shape(), first.images.dtype(), first.images.device());
  inputs_.labels = Tensor::empty(first.labels.shape(), first.labels.dtype(), first.labels.device());
  inputs_.images.copy_(first.images, /*non_blocking=*/true);  // valid inputs for the CPU twin's
  inputs_.labels.copy_(first.labels, /*non_blocking=*/true);  // recording run
  // The gradients are dropped first, so that backward writes fresh ones (no accumulation into
  // the eager step's) inside the recording: each replay then overwrites them.
  graph_ = std::make_unique<RecordedGraph>(inputs_.images.device(), [this] {
    opt_.zero_grad(true);
    const Var loss = loss_of_(inputs_);
    backward(loss);
    loss_ = loss.data();
  });
  if (graph_->on_device())
    for (size_t g = 0; g < opt_.num_groups(); ++g)
      for (const Var& p : opt_.params(g))
        if (p.grad().defined()) grads_.emplace_back(p, p.grad());
}

bool GraphedStep::accepts(const data::Batch& b) const {
  const auto same = [](const Tensor& a, const Tensor& r) {
    return a.defined() && a.shape() == r.shape() && a.dtype() == r.dtype() &&
           a.device() == r.device();
  };
  return same(b.images, inputs_.images) && same(b.labels, inputs_.labels);
}

Tensor GraphedStep::run(const data::Batch& b) {
  SDLORA_CHECK(accepts(b), "GraphedStep: batch ", b.index, " (images ", b.images.describe(),
               ") differs from the recorded inputs (", inputs_.images.describe(), ")");
  inputs_.images.copy_(b.images, /*non_blocking=*/true);
  inputs_.labels.copy_(b.labels, /*non_blocking=*/true);
  // An eager step in between (a batch of another shape) dropped the recorded gradients.
  for (auto& [param, grad] : grads_) param.set_grad(grad);
  graph_->replay();
  return loss_.clone();  // the next replay overwrites loss_
}

Var task_loss(const ViT& vit, const GrowingHead& head, const Tensor& images, const Tensor& labels,
              int64_t col_begin, int64_t col_end) {
  const Var logits = head.forward(vit.forward(images).features);
  return cross_entropy(logits, labels, col_begin, col_end);
}

std::unique_ptr<Optimizer> make_optimizer(const Config& c, std::vector<Var> params, double lr) {
  const std::string kind = c.effective_optimizer();
  if (kind == "sgd") {
    SGDOptions o;
    o.lr = lr;
    o.momentum = c.effective_momentum();
    o.weight_decay = c.effective_weight_decay();
    return std::make_unique<SGD>(std::move(params), o);
  }
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = c.effective_weight_decay();
  if (kind == "adam") return std::make_unique<Adam>(std::move(params), o);
  return std::make_unique<AdamW>(std::move(params), o);
}

std::unique_ptr<LRScheduler> make_scheduler(const Config& c, Optimizer& opt, bool first) {
  const int64_t epochs = first ? c.init_epoch : c.epochs;
  const std::string kind = c.effective_scheduler();
  if (kind == "cosine")
    return std::make_unique<CosineAnnealingLR>(opt, std::max<int64_t>(epochs, 1));
  if (kind == "multistep")
    return std::make_unique<MultiStepLR>(opt, first ? c.init_milestones : c.milestones,
                                         first ? c.init_lr_decay : c.lrate_decay);
  return std::make_unique<ConstantLR>(opt);
}

// ---- the step runner

StepRunner::StepRunner(Optimizer& opt, LossWindow& window,
                       std::function<Var(const data::Batch&)> loss_of, GraphMode mode,
                       std::function<void(const std::string&)> log)
    : opt_(opt), window_(window), loss_of_(std::move(loss_of)), mode_(mode), log_(std::move(log)) {}

void StepRunner::step(const data::Batch& batch) {
  const int64_t b = batch.labels.numel();
  const bool graphs = mode_ == GraphMode::kAlways ||
                      (mode_ == GraphMode::kDevice && batch.images.device().is_cuda());
  if (graphs && steps_ > 0 && graphed_ == nullptr && !graph_failed_) {
    try {
      graphed_ = std::make_unique<GraphedStep>(opt_, loss_of_, batch);
    } catch (const Error& e) {
      graph_failed_ = true;  // the recording left nothing behind; the step stays eager
      if (log_) log_(detail::concat("the training step runs eagerly: ", e.what()));
    }
  }
  if (graphed_ != nullptr && graphed_->accepts(batch)) {
    window_.add(Var(graphed_->run(batch)), b);
    opt_.step();
    if (!graph_logged_ && log_) {
      const int64_t mib = graphed_->pool_bytes() >> 20;
      log_(detail::concat("the training step replays as a recorded graph from batch ", batch.index,
                          mib > 0 ? detail::concat(" (", mib, " MiB of device memory)") : ""));
    }
    graph_logged_ = true;
  } else {
    train_step([&] { return loss_of_(batch); }, opt_, window_, b);
  }
  ++steps_;
}

// ---- the epoch loop

int64_t run_epoch(data::Loader& loader, int64_t epoch, Optimizer& opt, LossWindow& window,
                  const NamedVars& params, const std::function<Var(const data::Batch&)>& loss_of,
                  const EpochHooks& hooks, const std::string& where) {
  loader.start_epoch(epoch);
  const int64_t nb = loader.num_batches();
  StepReport report;
  report.epoch = epoch;
  report.num_batches = nb;
  int64_t steps = 0, window_first = 0;
  data::Batch batch;
  auto log = [&](const std::string& line) {
    if (hooks.log) hooks.log(detail::concat(where, " epoch ", epoch, ": ", line));
  };
  StepRunner runner(opt, window, loss_of, hooks.graph, log);
  while ((hooks.max_steps < 0 || steps < hooks.max_steps) && loader.next(batch)) {
    if (hooks.stop != nullptr && hooks.stop->load()) {
      if (hooks.on_stop) hooks.on_stop(batch.index);
      SDLORA_THROW("interrupted in ", where, " epoch ", epoch, " batch ", batch.index);
    }
    if (hooks.before_step) hooks.before_step(steps);
    const int64_t b = batch.labels.numel();
    runner.step(batch);
    ++steps;
    const bool last = batch.index + 1 == nb || steps == hooks.max_steps;
    const bool force =
        batch.index == 0 || last || (hooks.force_read && hooks.force_read(batch.index));
    report.read = window.due(batch.index, force);
    if (report.read) {
      const std::string batches = detail::concat(where, " epoch ", epoch, " batches ", window_first,
                                                 "-", batch.index, " (lr ", opt.lr(0), ")");
      report.loss = window.read(batches);
      check_finite(params, true, batches);
      check_finite(params, false, batches);
      window_first = batch.index + 1;
    }
    report.batch = batch.index;
    report.images_done += b;
    report.batch_data = &batch;
    if (hooks.after_step) hooks.after_step(report);
  }
  return steps;
}

}  // namespace sdlora::cl
