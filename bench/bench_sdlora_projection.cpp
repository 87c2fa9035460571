// One SD-LoRA-adapted qkv projection, forward and backward, at several task counts: does the
// cost stay flat as frozen components pile up? The projection is a ViT-B block's qkv (width 768,
// 8 x 197 tokens on the CPU) with the SD-LoRA adapter on q and v, evaluated through the library's
// own path (nn/sdlora.h: Attention's adapter, stacked factors, autograd): y = x W0^T + b, then
// q and v get the stacked low-rank update. Backward sends gradients to x (as the block below
// needs), the current pair and every magnitude; the frozen W0 gets none. K = 0 (no adapter) is
// timed too, as the backbone's own cost. Median of --reps repetitions after --warmup, the
// configurations taking turns; one JSON object on stdout.
//
//   bench_sdlora_projection [--tasks 2,20] [--batch 8] [--tokens 197] [--width 768] [--rank 10]
//                           [--reps 15] [--warmup 3] [--device cpu|cuda] [--seed S]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/ops.h"
#include "tensor/random.h"

using namespace sdlora;

namespace {

struct Args {
  std::vector<int64_t> tasks{2, 20};
  int64_t batch = 8, tokens = 197, width = 768, rank = 10, reps = 15, warmup = 3;
  std::string device = "cpu";
  uint64_t seed = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app{
      "One SD-LoRA-adapted ViT qkv projection, forward and backward, per task count; JSON"};
  app.add_option("--tasks", a.tasks, "frozen-component counts to compare")->delimiter(',');
  app.add_option("--batch", a.batch, "images")->capture_default_str();
  app.add_option("--tokens", a.tokens, "tokens per image")->capture_default_str();
  app.add_option("--width", a.width, "model width d (the qkv is 3d x d)")->capture_default_str();
  app.add_option("--rank", a.rank, "rank of every component")->capture_default_str();
  app.add_option("--reps", a.reps, "timed repetitions (the median is reported)")
      ->capture_default_str();
  app.add_option("--warmup", a.warmup, "untimed repetitions first")->capture_default_str();
  app.add_option("--device", a.device, "cpu or cuda")->capture_default_str();
  app.add_option("--seed", a.seed, "seed of weights and inputs")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (a.tasks.empty() || a.batch <= 0 || a.tokens <= 0 || a.width <= 0 || a.rank <= 0 ||
      a.reps <= 0 || a.warmup < 0)
    throw std::runtime_error("sizes, --reps and --tasks must be positive (--warmup >= 0)");
  for (int64_t t : a.tasks)
    if (t < 0) throw std::runtime_error("--tasks: task counts must be >= 0");
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

using Clock = std::chrono::steady_clock;
double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Timing {
  int64_t tasks = 0;       // frozen components K (task index); -1: no adapter at all
  int64_t total_rank = 0;  // per projection, frozen components and the current pair
  double forward_ms = 0, backward_ms = 0, adapter_forward_ms = 0;
};

// One configuration: a depth-1 ViT of the requested width supplies the qkv projection and its
// adapter hook; the SDLoRA object attaches the adapter and drives the task boundaries.
class Setup {
 public:
  Setup(const Args& a, int64_t tasks, bool adapted, Device device)
      : device_(device), gen_(a.seed), vit_(config(a), device), ad_(vit_, SDLoRAMode::kPaper) {
    vit_.init_weights(gen_);
    timing_.tasks = adapted ? tasks : -1;
    if (adapted) {
      for (int64_t k = 0; k < tasks; ++k) {
        ad_.begin_task(a.rank, gen_);
        randomise_up();
        ad_.end_task();
      }
      ad_.begin_task(a.rank, gen_);
      randomise_up();
      timing_.total_rank = ad_.projection(0).total_rank();
      adapter_ = vit_.block(0).attn().adapter().get();
    }
    x_ = Var(gen_.normal({a.batch, a.tokens, a.width}, 0.0, 1.0, DType::kFloat32, device), true);
    dout_ = gen_.normal({a.batch, a.tokens, 3 * a.width}, 0.0, 1.0, DType::kFloat32, device);
    trainable_ = ad_.trainable_parameters();
  }

  // One forward and backward; the times are kept unless this is a warm-up repetition.
  void run(bool keep) {
    const int64_t D = x_.size(2);
    x_.clear_grad();  // as zero_grad(set_to_none) between steps
    for (Var& v : trainable_) v.clear_grad();
    synchronize(device_);
    const auto t0 = Clock::now();
    const Var y = vit_.block(0).attn().qkv().forward(x_);  // (B, N, 3D)
    Var q = slice(y, 2, 0, D), k = slice(y, 2, D, 2 * D), v = slice(y, 2, 2 * D, 3 * D);
    synchronize(device_);
    const auto t1 = Clock::now();
    if (adapter_) adapter_->adapt(x_, q, v);
    synchronize(device_);
    const auto t2 = Clock::now();
    const Var out = cat({q, k, v}, 2);
    synchronize(device_);
    const auto t3 = Clock::now();
    backward(out, dout_);
    synchronize(device_);
    const auto t4 = Clock::now();
    if (!keep) return;
    fwd_.push_back(ms(t0, t3));
    adapt_fwd_.push_back(ms(t1, t2));
    bwd_.push_back(ms(t3, t4));
  }

  Timing timing() const {
    Timing t = timing_;
    t.forward_ms = median(fwd_);
    t.backward_ms = median(bwd_);
    t.adapter_forward_ms = median(adapt_fwd_);
    return t;
  }

 private:
  static ViTConfig config(const Args& a) {
    ViTConfig c;
    c.image_size = 16;
    c.patch_size = 16;
    c.embed_dim = a.width;
    c.depth = 1;
    c.num_heads = a.width % 64 == 0 ? a.width / 64 : 1;
    c.num_classes = 0;
    return c;
  }
  void randomise_up() {
    for (int64_t p = 0; p < ad_.num_projections(); ++p) {
      Tensor up = ad_.projection(p).current_up().data();
      up.copy_(gen_.normal(up.shape(), 0.0, 0.02, DType::kFloat32, device_));
    }
  }

  Device device_;
  Generator gen_;
  ViT vit_;
  SDLoRA ad_;
  const QKVAdapter* adapter_ = nullptr;
  Var x_;
  Tensor dout_;
  std::vector<Var> trainable_;
  Timing timing_;
  std::vector<double> fwd_, bwd_, adapt_fwd_;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    const Device device = Device::parse(a.device);
    // Every configuration lives side by side and the repetitions take turns, so that load from
    // other processes falls on all of them alike.
    std::vector<std::unique_ptr<Setup>> setups;
    setups.push_back(std::make_unique<Setup>(a, 0, false, device));
    for (int64_t t : a.tasks) setups.push_back(std::make_unique<Setup>(a, t, true, device));
    for (int64_t rep = 0; rep < a.warmup + a.reps; ++rep)
      for (auto& s : setups) s->run(rep >= a.warmup);
    std::vector<Timing> runs;
    for (const auto& s : setups) runs.push_back(s->timing());
    // The adapter's multiply-adds per token: one down-product for q and v together (2 R d) and
    // one up-product each (2 R d), against the frozen qkv product's 3 d^2.
    const double d = static_cast<double>(a.width);
    std::printf("{\n  \"benchmark\": \"sdlora_projection\",\n  \"device\": \"%s\",\n",
                device.str().c_str());
    std::printf(
        "  \"shape\": {\"batch\": %lld, \"tokens\": %lld, \"width\": %lld, \"rank\": %lld},\n",
        static_cast<long long>(a.batch), static_cast<long long>(a.tokens),
        static_cast<long long>(a.width), static_cast<long long>(a.rank));
    std::printf(
        "  \"projection\": \"qkv (3d x d, bias) with SD-LoRA on q and v; backward to x, the "
        "current pair and the magnitudes\",\n");
    std::printf("  \"reps\": %lld,\n  \"warmup\": %lld,\n  \"statistic\": \"median\",\n",
                static_cast<long long>(a.reps), static_cast<long long>(a.warmup));
    std::printf("  \"runs\": [\n");
    for (size_t i = 0; i < runs.size(); ++i) {
      const Timing& t = runs[i];
      const double adapter_macs = 4.0 * static_cast<double>(t.total_rank) * d;
      std::printf(
          "    {\"frozen_components\": %s, \"total_rank\": %lld, \"forward_ms\": %.3f, "
          "\"adapter_forward_ms\": %.3f, \"backward_ms\": %.3f, \"adapter_flops_share\": %.4f}%s\n",
          t.tasks < 0 ? "null" : std::to_string(t.tasks).c_str(),
          static_cast<long long>(t.total_rank), t.forward_ms, t.adapter_forward_ms, t.backward_ms,
          adapter_macs / (3.0 * d * d + adapter_macs), i + 1 < runs.size() ? "," : "");
    }
    std::printf("  ],\n");
    // Ratios of the last task count to the first (e.g. task 20 over task 2).
    const Timing& lo = runs[1];
    const Timing& hi = runs.back();
    std::printf(
        "  \"ratio\": {\"tasks\": [%lld, %lld], \"forward\": %.3f, \"backward\": %.3f, "
        "\"total\": %.3f}\n}\n",
        static_cast<long long>(lo.tasks), static_cast<long long>(hi.tasks),
        hi.forward_ms / lo.forward_ms, hi.backward_ms / lo.backward_ms,
        (hi.forward_ms + hi.backward_ms) / (lo.forward_ms + lo.backward_ms));
  } catch (const std::exception& e) {
    std::cerr << "bench_sdlora_projection: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
