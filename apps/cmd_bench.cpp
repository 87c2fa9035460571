// sdlora bench: the figure users care about (docs/performance.md): the trainer's own SD-LoRA
// training step (cl/train_step.h) during task 2 (two frozen components and the current pair,
// rank 10, on q and v of every block; the growing head; the loss over the current task's
// columns; SGD) and merged inference with the head, on random weights and random data, timed by
// wall clock after synchronising, median over steps; one JSON object on stdout.
// bench/torch_reference.py measures the same in PyTorch and bench/compare.py runs both.
//
//   sdlora bench [--device cpu|cuda] [--batch N] [--preset NAME] [--image N] [--patch N]
//                [--width N] [--depth N] [--heads N] [--mlp-ratio R] [--steps N] [--warmup N]
//                [--precision fp32|bf16]
//                [--rank R] [--past K] [--classes-per-task C] [--lr LR] [--seed S] [--[no-]tf32]
//                [--[no-]cuda-graph]
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "autograd/functions.h"
#include "cl/head.h"
#include "cl/learner.h"
#include "cl/train_step.h"
#include "data/loader.h"
#include "nn/optim.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/timing.h"

namespace sdlora::apps {

namespace {

struct BenchOptions {
  std::string device;
  std::string preset = "vit_base_patch16_224";
  std::string precision = "fp32";
  int64_t batch = 128;
  int64_t image = 0, patch = 0, width = 0, depth = 0, heads = 0;  // 0: the preset's
  double mlp_ratio = 0;                                           // 0: the preset's
  int64_t steps = 10, warmup = 2;
  int64_t rank = 10, past = 2, classes_per_task = 10;
  double lr = 0.01;
  uint64_t seed = 0;
  bool tf32 = true;        // TF32 tensor cores for float32 products; CUDA only
  bool cuda_graph = true;  // the training step replayed as a CUDA graph; CUDA only
};

int64_t max_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

// Times `body` (which must leave the device idle: it ends with synchronize) `warmup` times
// untimed, then `steps` times; returns each timed run's milliseconds.
template <typename F>
std::vector<double> time_runs(int64_t warmup, int64_t steps, const char* what, F&& body) {
  for (int64_t i = 0; i < warmup; ++i) body();
  std::vector<double> ms;
  for (int64_t i = 0; i < steps; ++i) {
    const Stopwatch clock;
    body();
    ms.push_back(clock.ms());
    std::cerr << "sdlora bench: " << what << " " << i + 1 << "/" << steps << ": " << ms.back()
              << " ms\n";
  }
  return ms;
}

ViTConfig bench_config(const BenchOptions& o, int64_t num_classes) {
  ViTConfig c = vit_preset(o.preset, num_classes);
  if (o.image) c.image_size = o.image;
  if (o.patch) c.patch_size = o.patch;
  if (o.width) c.embed_dim = o.width;
  if (o.depth) c.depth = o.depth;
  if (o.heads) c.num_heads = o.heads;
  if (o.mlp_ratio > 0) c.mlp_ratio = o.mlp_ratio;
  c.validate();
  return c;
}

void run_bench(const BenchOptions& o) {
  SDLORA_CHECK(o.batch > 0 && o.steps > 0 && o.warmup >= 0 && o.rank > 0 && o.past >= 0 &&
                   o.classes_per_task > 0,
               "--batch, --steps, --rank and --classes-per-task must be positive and --warmup, "
               "--past non-negative");
  const Device device = o.device.empty() ? default_device() : Device::parse(o.device);
  const bool tf32 = device.is_cuda() && o.tf32;
  set_allow_tf32(tf32);

  // Task `past` of a class-incremental stream, built as the trainer builds it: the learner's
  // adapters (`past` frozen components and the current pair), the growing head (classes_per_task
  // rows per task, the current task's trainable), the config's optimizer; the step is the
  // trainer's own (cl/train_step.h): loss over the current task's columns, backward, SGD.
  const int64_t col_begin = o.past * o.classes_per_task, col_end = col_begin + o.classes_per_task;
  const ViTConfig c = bench_config(o, 0);
  cl::Config cfg;
  cfg.method = "sdlora";
  cfg.sdlora_mode = "paper";
  cfg.rank = o.rank;
  cfg.optimizer = "sgd";
  cfg.momentum = 0.9;
  cfg.weight_decay = 0.0;
  Generator gen(o.seed);
  ViT vit(c, device);
  vit.init_weights(gen);
  vit.set_precision(parse_precision(o.precision));  // bf16: backbone and activations in bfloat16
  const std::unique_ptr<cl::Learner> learner = cl::make_learner(cfg, vit);
  const SDLoRA& adapters = *learner->adapters();
  cl::GrowingHead head(c.embed_dim, device);
  auto randomise_current = [&] {  // non-zero up factors, as after training
    for (int64_t p = 0; p < adapters.num_projections(); ++p) {
      Tensor up = adapters.projection(p).current_up().data();
      up.copy_(gen.normal(up.shape(), 0.0, 0.02, DType::kFloat32, device));
    }
  };
  for (int64_t k = 0; k <= o.past; ++k) {
    head.grow(o.classes_per_task, gen);
    learner->begin_task(k, gen);  // freezes the previous task's pair
    randomise_current();
    if (k < o.past) learner->end_task(k);
  }
  std::vector<Var> trainable = learner->trainable_parameters();
  for (const Var& v : head.trainable_parameters()) trainable.push_back(v);
  int64_t trainable_numel = 0;
  for (const Var& v : trainable) trainable_numel += v.numel();
  const std::unique_ptr<Optimizer> optimizer = cl::make_optimizer(cfg, trainable, o.lr);

  // Random data (never zeros): images uniform in [0, 1), labels among the current task's classes.
  const Tensor images = gen.uniform({o.batch, c.in_channels, c.image_size, c.image_size}, 0.0, 1.0,
                                    DType::kFloat32, device);
  std::vector<int64_t> label_values;
  for (float u : gen.uniform({o.batch}).to_vector<float>())
    label_values.push_back(
        col_begin +
        std::min<int64_t>(static_cast<int64_t>(u * o.classes_per_task), o.classes_per_task - 1));
  const Tensor labels = Tensor::from_vector<int64_t>(label_values, {o.batch}, device);

  // ---- training step: the trainer's step, the loss left on the device (read back at the end).
  // Stepped as the epoch loop steps (cl::StepRunner): on a GPU the first step is eager and the
  // rest replay it as a recorded CUDA graph unless --no-cuda-graph.
  cl::LossWindow window(device, o.warmup + o.steps);
  data::Batch batch;
  batch.images = images;
  batch.labels = labels;
  cl::StepRunner runner(
      *optimizer, window,
      [&](const data::Batch& b) {
        return cl::task_loss(vit, head, b.images, b.labels, col_begin, col_end);
      },
      o.cuda_graph ? cl::GraphMode::kDevice : cl::GraphMode::kOff,
      [](const std::string& line) { std::cerr << "sdlora bench: " << line << "\n"; });
  auto train_step = [&] {
    runner.step(batch);
    synchronize(device);
  };
  synchronize(device);
  const int64_t train_live = memory_stats(device).live_bytes;
  reset_peak_memory(device);
  const std::vector<double> train_ms = time_runs(o.warmup, o.steps, "train step", train_step);
  const int64_t train_peak = memory_stats(device).peak_bytes;
  window.read("the benchmark's steps");
  const std::vector<double>& losses = window.batch_losses();

  // ---- merged inference: the adapters folded into the qkv weights, then the head, as `sdlora
  // eval` and an exported model run it; no graph recorded.
  std::unique_ptr<ViT> merged = adapters.merged_vit();
  merged->set_precision(vit.precision());
  merged->eval();
  auto infer = [&] {
    NoGradGuard no_grad;
    head.forward(merged->forward(images).features);
    synchronize(device);
  };
  synchronize(device);
  const int64_t infer_live = memory_stats(device).live_bytes;
  reset_peak_memory(device);
  const std::vector<double> infer_ms = time_runs(o.warmup, o.steps, "inference", infer);
  const int64_t infer_peak = memory_stats(device).peak_bytes;

  const double train_med = median(train_ms), infer_med = median(infer_ms);
  nlohmann::ordered_json j;
  j["implementation"] = "sdlora";
  j["device"] = device.str();
  j["threads"] = device.is_cpu() ? cpu_threads() : 0;
  j["blas_threading"] = cpu_blas_threading();
  j["precision"] = o.precision;
  j["tf32"] = tf32;
  j["cuda_graph"] = runner.replaying();
  j["model"] = {{"preset", o.preset},           {"image", c.image_size}, {"patch", c.patch_size},
                {"width", c.embed_dim},         {"depth", c.depth},      {"heads", c.num_heads},
                {"mlp_hidden", c.mlp_hidden()}, {"classes", col_end}};
  j["adapters"] = {{"mode", "paper"},
                   {"rank", o.rank},
                   {"past_components", o.past},
                   {"loss_classes", {col_begin, col_end}},
                   {"trainable_parameters", trainable_numel}};
  j["optimizer"] = {{"type", "sgd"}, {"lr", o.lr}, {"momentum", 0.9}};
  j["batch"] = o.batch;
  j["steps"] = o.steps;
  j["warmup"] = o.warmup;
  j["timing"] = "wall clock after synchronize, median over steps";
  j["train"] = {{"ms_per_step", train_med},
                {"ms_min", *std::min_element(train_ms.begin(), train_ms.end())},
                {"images_per_s", 1000.0 * static_cast<double>(o.batch) / train_med},
                {"peak_bytes", train_peak},
                {"live_bytes_before", train_live},
                {"loss_first", losses.front()},
                {"loss_last", losses.back()}};
  j["inference"] = {{"ms_per_batch", infer_med},
                    {"ms_min", *std::min_element(infer_ms.begin(), infer_ms.end())},
                    {"images_per_s", 1000.0 * static_cast<double>(o.batch) / infer_med},
                    {"peak_bytes", infer_peak},
                    {"live_bytes_before", infer_live}};
  j["max_rss_bytes"] = max_rss_bytes();
  std::cout << j.dump(2) << std::endl;
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand(
      "bench",
      "Time an SD-LoRA training step during task 2 (frozen components + the current pair on q "
      "and v) and merged inference on random weights and data; prints JSON");
  app->add_option("--device", o->device, "cpu, cuda or cuda:N (default: cuda when present)");
  app->add_option("--batch", o->batch, "images per step")->capture_default_str();
  app->add_option("--preset", o->preset, "ViT preset")
      ->capture_default_str()
      ->check(CLI::IsMember(vit_preset_names()));
  app->add_option("--image", o->image, "image size (default: the preset's)");
  app->add_option("--patch", o->patch, "patch size (default: the preset's)");
  app->add_option("--width", o->width, "embedding width (default: the preset's)");
  app->add_option("--depth", o->depth, "number of blocks (default: the preset's)");
  app->add_option("--heads", o->heads, "attention heads (default: the preset's)");
  app->add_option("--mlp-ratio", o->mlp_ratio,
                  "MLP hidden width over embedding width (default: the preset's)")
      ->check(CLI::PositiveNumber);
  app->add_option("--steps", o->steps, "timed steps (the median is reported)")
      ->capture_default_str();
  app->add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
  app->add_option("--precision", o->precision,
                  "fp32 (TF32 products on CUDA unless --no-tf32) or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app->add_option("--rank", o->rank, "rank of every component")->capture_default_str();
  app->add_option("--past", o->past, "frozen components (the task index)")->capture_default_str();
  app->add_option("--classes-per-task", o->classes_per_task, "classes per task")
      ->capture_default_str();
  app->add_option("--lr", o->lr, "SGD learning rate (momentum 0.9)")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the random weights and data")->capture_default_str();
  app->add_flag("--tf32,!--no-tf32", o->tf32,
                "TF32 tensor cores for float32 products on CUDA (default on; ignored on the CPU); "
                "the JSON's tf32 says what was used");
  app->add_flag("--cuda-graph,!--no-cuda-graph", o->cuda_graph,
                "replay the training step as a CUDA graph after its first (eager) step, as the "
                "trainer does (default on; ignored on the CPU); the JSON's cuda_graph says "
                "whether it replayed");
  return {app, [o] { run_bench(*o); }};
}

}  // namespace sdlora::apps
