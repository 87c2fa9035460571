// The recorded training step on the CPU twin (cl::StepRunner with GraphMode::kAlways): the same
// losses and parameters, bit for bit, as the eager step, including an eager step of another
// shape between replays; a loss closure a graph cannot hold falls back to eager steps with a log
// line naming the reason.
#include <gtest/gtest.h>

#include "graph_step_util.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

void expect_same_run(const test::GraphStepRun& got, const test::GraphStepRun& want) {
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (size_t i = 0; i < want.losses.size(); ++i) EXPECT_EQ(got.losses[i], want.losses[i]) << i;
  ASSERT_EQ(got.params.size(), want.params.size());
  for (size_t i = 0; i < want.params.size(); ++i)
    EXPECT_TRUE(sdlora::test::all_close(got.params[i], want.params[i], 0.0, 0.0, "param"));
}

TEST(GraphStep, CpuTwinMatchesTheEagerStep) {
  const test::GraphStepRun eager = test::run_graph_steps(Device::cpu(), GraphMode::kOff);
  const test::GraphStepRun graphed = test::run_graph_steps(Device::cpu(), GraphMode::kAlways);
  EXPECT_FALSE(eager.replayed);
  EXPECT_TRUE(graphed.replayed);
  expect_same_run(graphed, eager);
  ASSERT_EQ(graphed.log.size(), 1u);
  EXPECT_NE(graphed.log[0].find("replays as a recorded graph from batch 1"), std::string::npos)
      << graphed.log[0];
  // The losses moved: the steps trained something.
  EXPECT_NE(eager.losses.front(), eager.losses[3]);
}

TEST(GraphStep, DeviceModeKeepsTheCpuEager) {
  const test::GraphStepRun r = test::run_graph_steps(Device::cpu(), GraphMode::kDevice);
  EXPECT_FALSE(r.replayed);
  EXPECT_TRUE(r.log.empty());
}

TEST(GraphStep, AClosureThatReadsBackFallsBackToEagerSteps) {
  const test::GraphStepRun eager = test::run_graph_steps(Device::cpu(), GraphMode::kOff, true);
  const test::GraphStepRun r = test::run_graph_steps(Device::cpu(), GraphMode::kAlways, true);
  EXPECT_FALSE(r.replayed);
  ASSERT_EQ(r.log.size(), 1u);
  EXPECT_NE(r.log[0].find("runs eagerly"), std::string::npos) << r.log[0];
  EXPECT_NE(r.log[0].find("item()"), std::string::npos) << r.log[0];
  expect_same_run(r, eager);
}

}  // namespace
}  // namespace sdlora::cl
