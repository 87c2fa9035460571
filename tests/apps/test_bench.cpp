// `sdlora bench` at a tiny size: valid JSON with every field, positive throughputs, finite losses;
// bf16 runs and holds less memory at its peak than fp32.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "tests/apps/test_app_util.h"

namespace sdlora {
namespace {

TEST(BenchCommand, TinyRunPrintsCompleteJson) {
  const test::RunResult r = test::run_sdlora(
      "bench --device cpu --preset vit_tiny_patch16_224 --image 32 --patch 16 --depth 2 --batch 2 "
      "--steps 3 --warmup 1 --rank 4 --past 2",
      true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("implementation"), "sdlora");
  EXPECT_EQ(j.at("device"), "cpu");
  EXPECT_EQ(j.at("precision"), "fp32");
  EXPECT_EQ(j.at("batch"), 2);
  EXPECT_EQ(j.at("model").at("width"), 192);
  EXPECT_EQ(j.at("model").at("depth"), 2);
  EXPECT_EQ(j.at("model").at("image"), 32);
  EXPECT_EQ(j.at("adapters").at("past_components"), 2);
  EXPECT_EQ(j.at("adapters").at("loss_classes"), nlohmann::json::array({20, 30}));
  // As the trainer trains task 2: current pairs (2 projections x 2 blocks x (r x 192 + 192 x r)),
  // 3 magnitudes, and the head's rows of the current task only (10 x 193).
  EXPECT_EQ(j.at("adapters").at("trainable_parameters"), 4 * 2 * 4 * 192 + 3 + 10 * 193);
  EXPECT_EQ(j.at("model").at("classes"), 30);
  for (const char* phase : {"train", "inference"}) {
    SCOPED_TRACE(phase);
    const auto& p = j.at(phase);
    EXPECT_GT(p.at("images_per_s").get<double>(), 0.0);
    EXPECT_GT(p.at("peak_bytes").get<int64_t>(), p.at("live_bytes_before").get<int64_t>());
  }
  EXPECT_GT(j.at("train").at("ms_per_step").get<double>(), 0.0);
  EXPECT_GT(j.at("inference").at("ms_per_batch").get<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(j.at("train").at("loss_first").get<double>()));
  EXPECT_TRUE(std::isfinite(j.at("train").at("loss_last").get<double>()));
  EXPECT_GT(j.at("max_rss_bytes").get<int64_t>(), 0);
}

TEST(BenchCommand, Bf16RunsAndPeaksBelowFp32AtTheSameBatch) {
  const std::string args =
      "bench --device cpu --preset vit_tiny_patch16_224 --image 32 --patch 16 --depth 2 --batch 4 "
      "--steps 2 --warmup 1 --rank 4 --past 1 --precision ";
  const test::RunResult fp = test::run_sdlora(args + "fp32", true);
  const test::RunResult bf = test::run_sdlora(args + "bf16", true);
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  ASSERT_EQ(bf.exit_code, 0) << bf.output;
  const auto jf = nlohmann::json::parse(fp.output), jb = nlohmann::json::parse(bf.output);
  EXPECT_EQ(jb.at("precision"), "bf16");
  EXPECT_TRUE(std::isfinite(jb.at("train").at("loss_last").get<double>()));
  EXPECT_LT(jb.at("train").at("peak_bytes").get<int64_t>(),
            jf.at("train").at("peak_bytes").get<int64_t>());
  EXPECT_LT(jb.at("inference").at("peak_bytes").get<int64_t>(),
            jf.at("inference").at("peak_bytes").get<int64_t>());
}

TEST(BenchCommand, BadArgumentsAreRefused) {
  EXPECT_NE(test::run_sdlora("bench --preset vit_huge").exit_code, 0);
  EXPECT_NE(test::run_sdlora("bench --precision fp16").exit_code, 0);
  const test::RunResult r = test::run_sdlora("bench --device cpu --batch 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--batch"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sdlora
