// The task loop (task_loop.h): training, evaluation, statistics, checkpoints and resume.
#include "cl/task_loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autograd/functions.h"
#include "cl/head.h"
#include "cl/run_dir.h"
#include "data/class_order.h"
#include "data/file_io.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/scheduler.h"
#include "tensor/allocator.h"
#include "tensor/ops.h"

namespace sdlora::cl {
namespace {

using Clock = std::chrono::steady_clock;

// Batches between reads of the training loss from a GPU (each read waits for the device).
constexpr int64_t kLossReadEvery = 20;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

data::ClassOrder make_order(const Config& c, int64_t n_classes) {
  return data::ClassOrder(n_classes, c.shuffle ? c.seed : -1, c.init_cls, c.increment);
}

std::unique_ptr<Optimizer> make_optimizer(const Config& c, std::vector<Var> params, double lr) {
  if (c.optimizer == "sgd") {
    SGDOptions o;
    o.lr = lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    return std::make_unique<SGD>(std::move(params), o);
  }
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = c.weight_decay;
  if (c.optimizer == "adam") return std::make_unique<Adam>(std::move(params), o);
  return std::make_unique<AdamW>(std::move(params), o);
}

std::unique_ptr<LRScheduler> make_scheduler(const Config& c, Optimizer& opt, bool first) {
  const int64_t epochs = first ? c.init_epoch : c.epochs;
  if (c.scheduler == "cosine") return std::make_unique<CosineAnnealingLR>(opt, std::max<int64_t>(epochs, 1));
  if (c.scheduler == "multistep")
    return std::make_unique<MultiStepLR>(opt, first ? c.init_milestones : c.milestones,
                                         first ? c.init_lr_decay : c.lrate_decay);
  return std::make_unique<ConstantLR>(opt);
}

int64_t numel_of(const std::vector<Var>& vars) {
  int64_t n = 0;
  for (const Var& v : vars) n += v.numel();
  return n;
}

// Writes to log.txt (when there is a run folder) and to the reporter.
class Log {
 public:
  Log(const RunOptions& o)
      : path_(o.run_dir.empty() ? "" : (std::filesystem::path(o.run_dir) / "log.txt").string()),
        reporter_(o.reporter) {}
  void operator()(const std::string& line) const {
    if (!path_.empty()) append_line(path_, line);
    if (reporter_ != nullptr) reporter_->on_line(line);
  }

 private:
  std::string path_;
  Reporter* reporter_;
};


data::LoaderOptions loader_options(const Config& c, Device device, int64_t batch, bool shuffle,
                                   uint64_t seed, data::TransformPtr transform) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = shuffle;
  o.num_workers = static_cast<int>(c.num_workers);
  o.seed = seed;
  o.device = device;
  o.cache_bytes = c.cache_mb * (int64_t{1} << 20);
  o.transform = std::move(transform);
  return o;
}

}  // namespace

TaskCounts evaluate_seen_classes(const Config& c, const ViT& vit, const GrowingHead& head,
                                 const Datasets& d, int64_t t) {
  NoGradGuard no_grad;
  const data::ClassOrder order = make_order(c, d.train->num_classes());
  const data::Pipeline pipe = data::make_pipeline(c.transform, static_cast<int>(c.channels));
  const Device device = vit.device();
  TaskCounts counts;
  counts.correct.assign(static_cast<size_t>(t + 1), 0);
  counts.total.assign(static_cast<size_t>(t + 1), 0);
  auto test = data::task_test_set(d.test, order, t);
  if (test->size() == 0) return counts;
  data::Loader loader(test, loader_options(c, device, c.effective_eval_batch_size(), false, 0,
                                           pipe.test));
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) {
    const Var logits = head.forward(vit.forward(batch.images).features);
    const std::vector<int64_t> pred = argmax(logits.data(), 1).to_vector<int64_t>();
    const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto task = static_cast<size_t>(order.task_of(labels[i]));
      counts.total[task] += 1;
      counts.correct[task] += pred[i] == labels[i] ? 1 : 0;
    }
  }
  return counts;
}

namespace {

void save_checkpoint(const std::string& path, const Learner& learner, const GrowingHead& head,
                     const Optimizer* opt, int64_t task) {
  std::map<std::string, Tensor> tensors = learner.state_dict();
  std::map<std::string, std::string> meta = learner.metadata();
  for (auto& [k, v] : head.state_dict()) tensors[k] = v;
  if (opt != nullptr) {
    OptimizerState s = opt->state_dict();
    for (auto& [k, v] : s.tensors) tensors[k] = v;
    for (auto& [k, v] : s.values) meta[k] = v;
  }
  meta["cl_method"] = learner.method();
  meta["cl_task"] = std::to_string(task);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  save_safetensors(path, tensors, meta);
}

// The first per_class samples of every class, in the dataset's order (all when per_class <= 0).
std::shared_ptr<const data::Dataset> first_per_class(std::shared_ptr<const data::Dataset> d,
                                                     int64_t per_class) {
  if (per_class <= 0) return d;
  std::vector<int64_t> taken(static_cast<size_t>(d->num_classes()), 0), keep;
  for (int64_t i = 0; i < d->size(); ++i) {
    int64_t& n = taken.at(static_cast<size_t>(d->label(i)));
    if (n < per_class) {
      ++n;
      keep.push_back(i);
    }
  }
  return data::make_subset(std::move(d), std::move(keep));
}

}  // namespace

Datasets open_datasets(const Config& config) {
  Datasets d;
  d.train = first_per_class(
      data::make_dataset(config.dataset, config.data_path, data::Split::kTrain),
      config.train_per_class);
  d.test = first_per_class(data::make_dataset(config.dataset, config.data_path, data::Split::kTest),
                           config.test_per_class);
  SDLORA_CHECK(d.train->num_classes() == d.test->num_classes(), "dataset '", config.dataset,
               "': the train split has ", d.train->num_classes(), " classes, the test split ",
               d.test->num_classes());
  return d;
}

std::unique_ptr<ViT> make_backbone(const Config& config) {
  const Device device = config.resolved_device();
  auto vit = std::make_unique<ViT>(config.vit_config(), device);
  if (!config.weights.empty()) {
    vit->load_pretrained(config.weights);
  } else {
    Generator gen(static_cast<uint64_t>(config.seed) + 0x5eed);
    vit->init_weights(gen);
  }
  return vit;
}

RunResult run_training(const Config& config, const RunOptions& options) {
  config.validate();
  const Datasets d = open_datasets(config);
  auto vit = make_backbone(config);
  return run_training(config, d, *vit, options);
}

RunResult run_training(const Config& config, const Datasets& d, ViT& vit,
                       const RunOptions& options) {
  config.validate();
  const Device device = vit.device();
  const data::ClassOrder order = make_order(config, d.train->num_classes());
  const data::Pipeline pipe = data::make_pipeline(config.transform, static_cast<int>(config.channels));
  const int64_t num_tasks = order.num_tasks();
  const bool write = !options.run_dir.empty();
  const Log log(options);

  std::unique_ptr<Learner> learner = make_learner(config, vit);
  GrowingHead head(vit.config().embed_dim, device);
  Generator gen(static_cast<uint64_t>(config.seed));

  RunResult result;
  result.config = config;
  result.class_order = order.order();
  int64_t first_task = 0;
  if (write) std::filesystem::create_directories(options.run_dir);
  if (options.resume) {
    SDLORA_CHECK(write, "resume needs a run folder");
    RunState state = load_run_state(options.run_dir, config);
    SDLORA_CHECK(state.result.class_order == order.order(),
                 "cannot resume: the run's class order differs from this config's");
    result = std::move(state.result);
    first_task = result.matrix.num_tasks();
    if (first_task > 0) {
      const std::string path = checkpoint_path(options.run_dir, first_task - 1);
      const SafetensorsFile file = load_safetensors(path, device);
      learner->load_state_dict(file.tensors, file.metadata);
      head.load_state_dict(file.tensors);
    }
    gen.set_offset(state.generator_offset);
    log(detail::concat("resumed after task ", first_task - 1, " of ", num_tasks));
  } else if (write) {
    data::write_file_atomic((std::filesystem::path(options.run_dir) / "config.json").string(),
                      config.to_json() + "\n");
    data::write_file_atomic((std::filesystem::path(options.run_dir) / "log.txt").string(), "");
    log(detail::concat("run: method ", config.method, ", dataset ", config.dataset, ", ", num_tasks,
                " tasks, seed ", config.seed, ", device ", device.str()));
  }

  const int64_t last_task = options.max_tasks >= 0 ? std::min(num_tasks, options.max_tasks) : num_tasks;
  for (int64_t t = first_task; t < last_task; ++t) {
    const auto task_t0 = Clock::now();
    reset_peak_memory(device);
    TaskRecord rec;
    rec.task = t;
    rec.class_begin = order.task_begin(t);
    rec.class_end = order.task_end(t);

    head.grow(order.task_size(t), gen);
    learner->begin_task(t, gen);
    std::vector<Var> params = learner->trainable_parameters();
    for (const Var& v : head.trainable_parameters()) params.push_back(v);
    rec.params_trainable = numel_of(params);
    const bool first = t == 0;
    auto opt = make_optimizer(config, params, first ? config.init_lr : config.lrate);
    auto sched = make_scheduler(config, *opt, first);

    auto train = data::task_train_set(d.train, order, t);
    rec.train_images = train->size();
    const int64_t epochs = first ? config.init_epoch : config.epochs;
    log(detail::concat("task ", t, ": classes [", rec.class_begin, ", ", rec.class_end, "), ",
                rec.train_images, " training images, ", epochs, " epochs, lr ", opt->lr(0)));
    const auto train_t0 = Clock::now();
    int64_t images_done = 0;
    if (epochs > 0 && train->size() > 0) {
      data::Loader loader(train, loader_options(config, device, config.batch_size, true,
                                                static_cast<uint64_t>(config.seed) * 1000003u +
                                                    static_cast<uint64_t>(t),
                                                pipe.train));
      const int64_t nb = loader.num_batches();
      const int64_t total_images = epochs * train->size();
      double last_loss = 0.0;  // the mean over the batches last read back
      for (int64_t e = 0; e < epochs; ++e) {
        loader.start_epoch(e);
        data::Batch batch;
        // The sample-weighted loss accumulates on the device and is read back (a host
        // synchronisation) only every kLossReadEvery batches and at the end of the epoch; on
        // the CPU reading is free, so every batch.
        Tensor window = Tensor::zeros({}, DType::kFloat32, device);
        int64_t window_images = 0, window_first = 0, seen = 0;
        double loss_sum = 0.0;
        while (loader.next(batch)) {
          if (options.stop != nullptr && options.stop->load())
            throw RunInterrupted(detail::concat("interrupted in task ", t, " epoch ", e, " batch ",
                                         batch.index, "; tasks before ", t, " are saved"));
          const Var logits = head.forward(vit.forward(batch.images).features);
          // Task 0: every column (its own classes); later tasks: the current task's only.
          const Var loss = cross_entropy(logits, batch.labels, rec.class_begin, rec.class_end);
          const int64_t b = batch.labels.numel();
          add_(window, loss.data().reshape({}), static_cast<double>(b));
          window_images += b;
          opt->zero_grad(true);
          backward(loss);
          opt->step();
          seen += b;
          images_done += b;
          const bool log_line = config.log_every > 0 && (batch.index + 1) % config.log_every == 0;
          if (device.is_cpu() || batch.index == 0 || batch.index + 1 == nb || log_line ||
              (batch.index + 1) % kLossReadEvery == 0) {
            const double sum = window.item();
            SDLORA_CHECK(std::isfinite(sum), "training diverged: the loss is ",
                         sum / static_cast<double>(window_images), " in task ", t, " epoch ", e,
                         " batches ", window_first, "-", batch.index, " (lr ", opt->lr(0),
                         "); lower the learning rate");
            loss_sum += sum;
            last_loss = sum / static_cast<double>(window_images);
            fill_(window, 0.0);
            window_images = 0;
            window_first = batch.index + 1;
          }
          const double elapsed = seconds_since(train_t0);
          Progress p{t, num_tasks, e, epochs, batch.index, nb, last_loss, opt->lr(0),
                     elapsed > 0 ? static_cast<double>(images_done) / elapsed : 0.0, 0.0};
          if (images_done > 0)
            p.eta_s = elapsed / static_cast<double>(images_done) *
                      static_cast<double>(total_images - images_done);
          if (options.reporter != nullptr) options.reporter->on_batch(p);
          if (log_line)
            log(detail::concat("task ", t, " epoch ", e, " batch ", batch.index + 1, "/", nb, " loss ",
                        last_loss, " images/s ", p.images_per_s));
        }
        rec.final_loss = seen > 0 ? loss_sum / static_cast<double>(seen) : 0.0;
        log(detail::concat("task ", t, " epoch ", e + 1, "/", epochs, " loss ", rec.final_loss, " lr ",
                    opt->lr(0), " images/s ",
                    static_cast<double>(images_done) / std::max(seconds_since(train_t0), 1e-9)));
        sched->step();
      }
    }
    rec.train_seconds = seconds_since(train_t0);
    rec.images_per_s = rec.train_seconds > 0 ? static_cast<double>(images_done) / rec.train_seconds : 0.0;

    rec.end = learner->end_task(t);
    head.freeze();
    if (rec.end.kd_checked) log(detail::concat("task ", t, " KD: ", rec.end.kd.describe()));

    const TaskCounts counts = evaluate_seen_classes(config, vit, head, d, t);
    for (int64_t n : counts.total) rec.test_images += n;
    rec.params_stored = learner->stored_parameters() + head.num_classes() * (head.width() + 1);
    rec.peak_bytes = memory_stats(device).peak_bytes;
    rec.seconds = seconds_since(task_t0);
    result.matrix.add(counts);
    result.tasks.push_back(rec);
    result.seconds += rec.seconds;
    std::ostringstream accs;
    for (int64_t j = 0; j <= t; ++j) accs << (j ? " " : "") << result.matrix.r(t, j);
    log(detail::concat("task ", t, " done in ", rec.seconds, " s: accuracy ", result.matrix.accuracy_after(t),
                "% on ", rec.test_images, " test images (per task: ", accs.str(), "), rank ",
                rec.end.rank, ", peak memory ", rec.peak_bytes, " bytes"));

    if (write) {
      // The checkpoint first, then state.json: state.json names only finished, saved tasks.
      save_checkpoint(checkpoint_path(options.run_dir, t), *learner, head, opt.get(), t);
      RunState state{result, gen.offset()};
      const std::filesystem::path dir(options.run_dir);
      data::write_file_atomic((dir / "state.json").string(), run_state_json(state));
      data::write_file_atomic((dir / "metrics.json").string(), result.metrics_json());
      data::write_file_atomic((dir / "metrics.csv").string(), result.metrics_csv());
    }
  }
  if (result.matrix.num_tasks() == num_tasks)
    log(detail::concat("finished: Acc ", result.matrix.acc_final(), " AAA ", result.matrix.aaa(),
                " forgetting ", result.matrix.forgetting()));
  return result;
}

std::string plan_json(const Config& config, const Datasets& d) {
  config.validate();
  const data::ClassOrder order = make_order(config, d.train->num_classes());
  nlohmann::json tasks = nlohmann::json::array();
  for (int64_t t = 0; t < order.num_tasks(); ++t) {
    std::vector<int64_t> classes(order.order().begin() + order.task_begin(t),
                                 order.order().begin() + order.task_end(t));
    const int64_t b = order.task_begin(t), e = order.task_end(t);
    tasks.push_back({{"task", t},
                     {"classes", classes},
                     {"labels", {b, e}},
                     {"train_images", data::samples_in_classes(*d.train, order, b, e).size()},
                     {"test_images", data::samples_in_classes(*d.test, order, b, e).size()},
                     {"test_images_seen", data::task_test_indices(*d.test, order, t).size()},
                     {"epochs", t == 0 ? config.init_epoch : config.epochs},
                     {"lr", t == 0 ? config.init_lr : config.lrate},
                     {"rank", config.method == "linear-probe"
                                  ? 0
                                  : config.effective_rank_schedule().rank_for(t)}});
  }
  nlohmann::json j{{"dataset", config.dataset},
                   {"data_path", config.data_path},
                   {"method", config.method},
                   {"num_classes", order.num_classes()},
                   {"train_images", d.train->size()},
                   {"test_images", d.test->size()},
                   {"seed", config.seed},
                   {"class_order", order.order()},
                   {"num_tasks", order.num_tasks()},
                   {"tasks", tasks}};
  return j.dump(2) + "\n";
}

std::string plan_json(const Config& config) {
  config.validate();
  return plan_json(config, open_datasets(config));
}

}  // namespace sdlora::cl
