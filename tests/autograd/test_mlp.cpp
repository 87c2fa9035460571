// End to end on the CPU: the two-layer MLP learns the three spirals.
#include <gtest/gtest.h>

#include "tests/autograd/mlp_spirals.h"

namespace sdlora::test {
namespace {

TEST(Mlp, LearnsThreeSpiralsWithSgdOnCpu) {
  const MlpRun run = train_mlp_on_spirals(Device::cpu());
  std::printf("spirals on cpu: loss %.4f -> %.4f, accuracy %.1f%%\n", run.initial_loss,
              run.final_loss, 100.0 * run.accuracy);
  EXPECT_LT(run.final_loss, 0.25 * run.initial_loss);
  EXPECT_GE(run.accuracy, 0.95);
}

}  // namespace
}  // namespace sdlora::test
