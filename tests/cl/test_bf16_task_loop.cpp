// The tiny task loop (tests/cl/cl_test_util.h's config and synthetic data) in bf16: the backbone
// is bfloat16, the run trains (the last task's loss falls below 0.3 as in fp32), and the
// precision key is validated.
#include <gtest/gtest.h>

#include <cmath>

#include "cl/task_loop.h"
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

TEST(Bf16TaskLoop, PrecisionKeyIsValidated) {
  Config c = test::tiny_config("sdlora");
  c.precision = "fp16";
  const std::string e = sdlora::test::error_of([&] { c.validate(); });
  EXPECT_NE(e.find("precision"), std::string::npos) << e;
  EXPECT_NE(e.find("fp16"), std::string::npos) << e;
}

}  // namespace
}  // namespace sdlora::cl
