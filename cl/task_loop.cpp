// The task loop (task_loop.h): training, evaluation, statistics, checkpoints and resume.
#include "cl/task_loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/functions.h"
#include "cl/head.h"
#include "cl/methods.h"
#include "cl/run_dir.h"
#include "cl/train_step.h"
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

// Batches between reads of the training loss from a GPU (each read waits for the device).
constexpr int64_t kLossReadEvery = 20;

data::ClassOrder make_order(const Config& c, int64_t n_classes) {
  return data::ClassOrder(n_classes, c.shuffle ? c.effective_class_order_seed() : -1, c.init_cls,
                          c.increment);
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
  data::Loader loader(
      test, loader_options(c, device, c.effective_eval_batch_size(), false, 0, pipe.test));
  loader.start_epoch(0);
  data::Batch batch;
  counts.correct5.assign(static_cast<size_t>(t + 1), 0);
  while (loader.next(batch)) {
    const Var logits = head.forward(vit.forward(batch.images).features);
    const std::vector<int64_t> pred = argmax(logits.data(), 1).to_vector<int64_t>();
    const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
    const std::vector<float> scores = cast(logits.data(), DType::kFloat32).to_vector<float>();
    const size_t classes = static_cast<size_t>(logits.size(1));
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto task = static_cast<size_t>(order.task_of(labels[i]));
      counts.total[task] += 1;
      counts.correct[task] += pred[i] == labels[i] ? 1 : 0;
      // Top-5: fewer than 5 logits rank strictly above the label's.
      const float* row = scores.data() + i * classes;
      const float mine = row[labels[i]];
      int64_t above = 0;
      for (size_t k = 0; k < classes; ++k) above += row[k] > mine ? 1 : 0;
      counts.correct5[task] += above < 5 ? 1 : 0;
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
  data::DatasetOptions o;
  o.max_image_pixels = config.max_image_pixels;
  o.split = data::Split::kTrain;
  d.train = first_per_class(data::make_dataset(config.dataset_reader(), config.data_path, o),
                            config.train_per_class);
  o.split = data::Split::kTest;
  d.test = first_per_class(data::make_dataset(config.dataset_reader(), config.data_path, o),
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
  vit->set_precision(parse_precision(config.precision));  // bf16: the frozen backbone in bfloat16
  return vit;
}

RunResult run_training(const Config& config, const RunOptions& options) {
  config.validate();
  const Datasets d = open_datasets(config);
  auto vit = make_backbone(config);
  return run_training(config, d, *vit, options);
}

namespace {

// One run between its phases: what every phase reads, and the results so far.
struct Run {
  const Config& config;
  const Datasets& d;
  ViT& vit;
  const RunOptions& options;
  data::ClassOrder order;
  Log log;
  std::unique_ptr<Learner> learner;
  GrowingHead head;
  Generator gen;
  RunResult result;

  Run(const Config& c, const Datasets& datasets, ViT& v, const RunOptions& o)
      : config(c),
        d(datasets),
        vit(v),
        options(o),
        order(make_order(c, datasets.train->num_classes())),
        log(o),
        learner(make_learner(c, v)),
        head(v.config().embed_dim, v.device()),
        gen(static_cast<uint64_t>(c.seed)) {
    result.config = c;
    result.class_order = order.order();
  }
  bool write() const { return !options.run_dir.empty(); }
  std::string file(const char* name) const {
    return (std::filesystem::path(options.run_dir) / name).string();
  }
  Device device() const { return vit.device(); }
};

// The task's optimizer, its schedule and what it trains.
struct TaskSetup {
  TaskRecord rec;
  std::vector<std::pair<std::string, Var>> params;
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<LRScheduler> sched;
};

void write_metrics(const Run& run) {
  data::write_file_atomic(run.file("metrics.json"), run.result.metrics_json());
  data::write_file_atomic(run.file("metrics.csv"), run.result.metrics_csv());
}

void log_start(const Run& run) {
  const Config& c = run.config;
  run.log(detail::concat(
      "run: method ", c.method, ", dataset ", c.dataset, ", ", run.order.num_tasks(),
      " tasks, seed ", c.seed, ", device ", run.device().str(), ", tf32 ",
      allow_tf32() ? "on" : "off", ", precision ", c.precision,
      run.device().is_cuda() ? (c.cuda_graph ? ", CUDA graphs on" : ", CUDA graphs off") : ""));
  if (c.released())
    run.log("released config (model_name " + c.model_name +
            "): SGD momentum 0.9, no weight "
            "decay, multi-step decay over the milestones; mode " +
            c.sdlora_mode);
  for (const std::string& k : c.ignored_keys()) run.log("config key " + k);
}

// Starts the run, or resumes it after its last finished task. A run that never finished a task
// starts over from its saved config; metrics.json and metrics.csv are rewritten from state.json,
// so a run killed between those writes is repaired. Returns the first task to train.
int64_t start_or_resume(Run& run) {
  const RunOptions& o = run.options;
  if (run.write()) std::filesystem::create_directories(o.run_dir);
  const bool has_state = run.write() && std::filesystem::exists(run.file("state.json"));
  if (!o.resume || !has_state) {
    SDLORA_CHECK(!o.resume || run.write(), "resume needs a run folder");
    if (run.write()) {
      data::write_file_atomic(run.file("config.json"), run.config.to_json() + "\n");
      if (!o.resume) data::write_file_atomic(run.file("log.txt"), "");
    }
    if (o.resume) run.log("resumed: no task had finished; starting over from the saved config");
    log_start(run);
    return 0;
  }
  RunState state = load_run_state(o.run_dir, run.config);
  SDLORA_CHECK(state.result.class_order == run.order.order(),
               "cannot resume: the run's class order differs from this config's");
  run.result = std::move(state.result);
  const int64_t first_task = run.result.matrix.num_tasks();
  if (first_task > 0) {
    const SafetensorsFile file =
        load_safetensors(checkpoint_path(o.run_dir, first_task - 1), run.device());
    run.learner->load_state_dict(file.tensors, file.metadata);
    run.head.load_state_dict(file.tensors);
  }
  run.gen.set_offset(state.generator_offset);
  write_metrics(run);
  run.log(detail::concat("resumed after task ", first_task - 1, " of ", run.order.num_tasks(),
                         ", tf32 ", allow_tf32() ? "on" : "off"));
  return first_task;
}

// Grows the head, lets the learner add the task's parameters (freezing the previous task's
// pair), and builds the optimizer and schedule.
TaskSetup begin_task(Run& run, int64_t t) {
  const Config& c = run.config;
  TaskSetup s;
  s.rec.task = t;
  s.rec.class_begin = run.order.task_begin(t);
  s.rec.class_end = run.order.task_end(t);
  run.head.grow(run.order.task_size(t), run.gen);
  run.learner->begin_task(t, run.gen);
  s.params = run.learner->named_trainable_parameters();
  const std::vector<Var> head_params = run.head.trainable_parameters();
  for (size_t i = 0; i < head_params.size(); ++i)
    s.params.emplace_back(i == 0 ? "head.weight (new rows)" : "head.bias (new rows)",
                          head_params[i]);
  std::vector<Var> vars;
  for (const auto& named : s.params) vars.push_back(named.second);
  s.rec.params_trainable = numel_of(vars);
  const bool first = t == 0;
  s.opt = make_optimizer(c, vars, first ? c.init_lr : c.lrate);
  s.sched = make_scheduler(c, *s.opt, first);
  return s;
}

// The epochs of task t through the shared epoch loop (train_step.h): the loss is read back
// from the device (and checked, with the trainable tensors and their gradients) at the first and
// last batch of every epoch, at log lines and every kLossReadEvery batches; every batch on the CPU.
void train_task(Run& run, int64_t t, TaskSetup& s) {
  const Config& c = run.config;
  const data::Pipeline pipe = data::make_pipeline(c.transform, static_cast<int>(c.channels));
  auto train = data::task_train_set(run.d.train, run.order, t);
  s.rec.train_images = train->size();
  const int64_t epochs = t == 0 ? c.init_epoch : c.epochs;
  run.log(detail::concat("task ", t, ": classes [", s.rec.class_begin, ", ", s.rec.class_end, "), ",
                         s.rec.train_images, " training images, ", epochs, " epochs, lr ",
                         s.opt->lr(0)));
  const Stopwatch clock;
  int64_t images_done = 0;
  if (epochs > 0 && train->size() > 0) {
    data::Loader loader(
        train, loader_options(c, run.device(), c.batch_size, true,
                              static_cast<uint64_t>(c.seed) * 1000003u + static_cast<uint64_t>(t),
                              pipe.train));
    const int64_t total_images = epochs * train->size();
    const auto loss_of = [&](const data::Batch& b) {
      // Task 0: every column (its own classes); later tasks: the current task's only.
      return task_loss(run.vit, run.head, b.images, b.labels, s.rec.class_begin, s.rec.class_end);
    };
    double last_loss = 0.0;  // the mean over the batches last read back
    for (int64_t e = 0; e < epochs; ++e) {
      LossWindow window(run.device(), kLossReadEvery);
      EpochHooks hooks;
      hooks.stop = run.options.stop;
      hooks.on_stop = [&](int64_t batch) {
        throw RunInterrupted(detail::concat("interrupted in task ", t, " epoch ", e, " batch ",
                                            batch, "; tasks before ", t, " are saved"));
      };
      hooks.graph = c.cuda_graph ? GraphMode::kDevice : GraphMode::kOff;
      hooks.log = [&](const std::string& line) { run.log(line); };
      hooks.force_read = [&](int64_t batch) {
        return c.log_every > 0 && (batch + 1) % c.log_every == 0;
      };
      hooks.after_step = [&](const StepReport& r) {
        images_done += r.batch_data->labels.numel();
        if (r.read) last_loss = r.loss;
        const double elapsed = clock.seconds();
        Progress p{t,
                   run.order.num_tasks(),
                   e,
                   epochs,
                   r.batch,
                   r.num_batches,
                   last_loss,
                   s.opt->lr(0),
                   elapsed > 0 ? static_cast<double>(images_done) / elapsed : 0.0,
                   0.0};
        p.eta_s = elapsed / static_cast<double>(images_done) *
                  static_cast<double>(total_images - images_done);
        if (run.options.reporter != nullptr) run.options.reporter->on_batch(p);
        if (c.log_every > 0 && (r.batch + 1) % c.log_every == 0)
          run.log(detail::concat("task ", t, " epoch ", e, " batch ", r.batch + 1, "/",
                                 r.num_batches, " loss ", last_loss, " images/s ", p.images_per_s));
      };
      run_epoch(loader, e, *s.opt, window, s.params, loss_of, hooks, detail::concat("task ", t));
      s.rec.final_loss = window.mean_since_reset();
      run.log(detail::concat("task ", t, " epoch ", e + 1, "/", epochs, " loss ", s.rec.final_loss,
                             " lr ", s.opt->lr(0), " images/s ",
                             static_cast<double>(images_done) / std::max(clock.seconds(), 1e-9)));
      s.sched->step();
    }
  }
  s.rec.train_seconds = clock.seconds();
  s.rec.images_per_s =
      s.rec.train_seconds > 0 ? static_cast<double>(images_done) / s.rec.train_seconds : 0.0;
}

// The learner's end of task (the trained function is kept; KD may absorb) and the head's.
void end_task(Run& run, int64_t t, TaskSetup& s) {
  s.rec.end = run.learner->end_task(t);
  run.head.freeze();
  if (s.rec.end.kd_checked) run.log(detail::concat("task ", t, " KD: ", s.rec.end.kd.describe()));
}

// Evaluates on every seen class and appends the task's row and record to the results.
void evaluate_and_record(Run& run, int64_t t, TaskSetup& s, const Stopwatch& task_clock) {
  const TaskCounts counts = evaluate_seen_classes(run.config, run.vit, run.head, run.d, t);
  TaskRecord& rec = s.rec;
  for (int64_t n : counts.total) rec.test_images += n;
  rec.params_stored =
      run.learner->stored_parameters() + run.head.num_classes() * (run.head.width() + 1);
  rec.peak_bytes = memory_stats(run.device()).peak_bytes;
  rec.seconds = task_clock.seconds();
  RunResult& r = run.result;
  r.matrix.add(counts);
  r.tasks.push_back(rec);
  r.seconds += rec.seconds;
  std::ostringstream accs;
  for (int64_t j = 0; j <= t; ++j) accs << (j ? " " : "") << r.matrix.r(t, j);
  run.log(detail::concat("task ", t, " done in ", rec.seconds, " s: accuracy ",
                         r.matrix.accuracy_after(t), "% (top-5 ", r.matrix.top5_after(t), "%) on ",
                         rec.test_images, " test images (per task: ", accs.str(), "), rank ",
                         rec.end.rank, ", peak memory ", rec.peak_bytes, " bytes"));
}

// The checkpoint first, then state.json (which names only finished, saved tasks), then the
// metrics derived from it.
void save_task(const Run& run, int64_t t, const TaskSetup& s) {
  save_checkpoint(checkpoint_path(run.options.run_dir, t), *run.learner, run.head, s.opt.get(), t);
  data::write_file_atomic(run.file("state.json"),
                          run_state_json(RunState{run.result, run.gen.offset()}));
  write_metrics(run);
}

}  // namespace

RunResult run_training(const Config& config, const Datasets& d, ViT& vit,
                       const RunOptions& options) {
  config.validate();
  set_allow_tf32(config.tf32 && vit.device().is_cuda());
  Run run(config, d, vit, options);
  const int64_t first_task = start_or_resume(run);
  const int64_t num_tasks = run.order.num_tasks();
  const int64_t last_task =
      options.max_tasks >= 0 ? std::min(num_tasks, options.max_tasks) : num_tasks;
  for (int64_t t = first_task; t < last_task; ++t) {
    const Stopwatch task_clock;
    reset_peak_memory(run.device());
    TaskSetup s = begin_task(run, t);
    train_task(run, t, s);
    if (options.after_training) options.after_training(t, vit, run.head);
    end_task(run, t, s);
    evaluate_and_record(run, t, s, task_clock);
    if (run.write()) save_task(run, t, s);
  }
  const AccuracyMatrix& m = run.result.matrix;
  if (m.num_tasks() == num_tasks)
    run.log(detail::concat("finished: Acc ", m.acc_final(), " AAA ", m.aaa(), " forgetting ",
                           m.forgetting(), " (released form ", m.forgetting_released(), ")"));
  return std::move(run.result);
}

namespace {

// The learning rate of every epoch of a task, from the run's own optimizer and schedule.
std::vector<double> epoch_lrs(const Config& c, bool first) {
  Var dummy(Tensor::zeros({1}, DType::kFloat32, Device::cpu()), true);
  auto opt = make_optimizer(c, {dummy}, first ? c.init_lr : c.lrate);
  auto sched = make_scheduler(c, *opt, first);
  std::vector<double> lrs;
  for (int64_t e = 0; e < (first ? c.init_epoch : c.epochs); ++e) {
    lrs.push_back(opt->lr(0));
    sched->step();
  }
  return lrs;
}

}  // namespace

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
                     {"lr_per_epoch", epoch_lrs(config, t == 0)},
                     {"rank", !method_info(config.method).adapters
                                  ? 0
                                  : config.effective_rank_schedule().rank_for(t)}});
  }
  const bool adapters = method_info(config.method).adapters;
  nlohmann::json j{
      {"dataset", config.dataset},
      {"reader", config.dataset_reader()},
      {"released_config", config.released()},
      {"optimizer", config.effective_optimizer()},
      {"momentum", config.effective_optimizer() == "sgd"
                       ? nlohmann::json(config.effective_momentum())
                       : nlohmann::json(nullptr)},
      {"weight_decay", config.effective_weight_decay()},
      {"scheduler", config.effective_scheduler()},
      {"sdlora_mode", adapters ? nlohmann::json(config.sdlora_mode) : nlohmann::json(nullptr)},
      {"ignored", config.ignored_keys()},
      {"data_path", config.data_path},
      {"method", config.method},
      {"num_classes", order.num_classes()},
      {"train_images", d.train->size()},
      {"test_images", d.test->size()},
      {"seed", config.seed},
      {"seeds", config.seeds.size() > 1 ? nlohmann::json(config.seeds) : nlohmann::json(nullptr)},
      {"class_order_seed", config.effective_class_order_seed()},
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
