// The recorded training step on CUDA: replayed as a CUDA graph, it gives the eager CUDA step's
// losses and parameters (the same kernels on the same data), and both match the CPU within
// float32 tolerance; a closure that reads back falls back to eager steps.
#include <gtest/gtest.h>

#include "graph_step_util.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

TEST(GpuGraphStep, ReplayMatchesEagerCudaAndTheCpu) {
  SDLORA_REQUIRE_GPU();
  const sdlora::test::Tf32Scope no_tf32(false);
  const test::GraphStepRun cpu = test::run_graph_steps(Device::cpu(), GraphMode::kOff);
  const test::GraphStepRun eager = test::run_graph_steps(Device::cuda(0), GraphMode::kOff);
  const test::GraphStepRun graphed = test::run_graph_steps(Device::cuda(0), GraphMode::kDevice);
  EXPECT_TRUE(graphed.replayed);
  ASSERT_EQ(graphed.losses.size(), eager.losses.size());
  for (size_t i = 0; i < eager.losses.size(); ++i) {
    EXPECT_NEAR(graphed.losses[i], eager.losses[i], 1e-6 * (1 + eager.losses[i])) << i;
    EXPECT_NEAR(graphed.losses[i], cpu.losses[i], 1e-4 * (1 + cpu.losses[i])) << i;
  }
  for (size_t i = 0; i < eager.params.size(); ++i) {
    EXPECT_TRUE(sdlora::test::all_close(graphed.params[i], eager.params[i], 1e-6, 1e-7, "param"));
    EXPECT_TRUE(sdlora::test::all_close(graphed.params[i], cpu.params[i], 1e-3, 1e-5, "param"));
  }
}

TEST(GpuGraphStep, AClosureThatReadsBackFallsBackToEagerSteps) {
  SDLORA_REQUIRE_GPU();
  const test::GraphStepRun r =
      test::run_graph_steps(Device::cuda(0), GraphMode::kDevice, /*with_item=*/true);
  EXPECT_FALSE(r.replayed);
  ASSERT_EQ(r.log.size(), 1u);
  EXPECT_NE(r.log[0].find("item()"), std::string::npos) << r.log[0];
  EXPECT_EQ(r.losses.size(), 5u);
}

}  // namespace
}  // namespace sdlora::cl
