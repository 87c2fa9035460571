// The task loop on CUDA against the CPU: the same tiny run (splits, SD-LoRA-KD, checkpoints) on
// both devices gives the same checkpoint tensors within float32 tolerance and the same ranks and
// KD decisions.
#include <gtest/gtest.h>

#include "cl/run_dir.h"
#include "cl_test_util.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

TEST(GpuTaskLoop, TinyRunMatchesTheCpu) {
  SDLORA_REQUIRE_GPU();
  const sdlora::test::Tf32Scope restore_tf32(false);  // the run sets TF32 from its config
  const Datasets d = test::synthetic_datasets();
  RunResult results[2];
  std::string dirs[2];
  for (int i = 0; i < 2; ++i) {
    Config c = test::tiny_config("sdlora-kd");
    c.device = i == 0 ? "cpu" : "cuda";
    c.epochs = c.init_epoch = 2;
    c.tf32 = false;  // float32 products on both sides
    dirs[i] = test::temp_dir(std::string("gpu_") + c.device);
    RunOptions o;
    o.run_dir = dirs[i];
    auto vit = make_backbone(c);
    results[i] = run_training(c, d, *vit, o);
  }
  ASSERT_EQ(results[0].tasks.size(), results[1].tasks.size());
  for (size_t t = 0; t < results[0].tasks.size(); ++t) {
    EXPECT_EQ(results[0].tasks[t].end.rank, results[1].tasks[t].end.rank);
    EXPECT_EQ(results[0].tasks[t].end.kd.redundant, results[1].tasks[t].end.kd.redundant);
    EXPECT_NEAR(results[0].tasks[t].final_loss, results[1].tasks[t].final_loss,
                1e-3 * (1.0 + results[0].tasks[t].final_loss));
  }
  const SafetensorsFile a = load_safetensors(checkpoint_path(dirs[0], 2));
  const SafetensorsFile b = load_safetensors(checkpoint_path(dirs[1], 2));
  for (const auto& [name, t] : a.tensors) {
    if (!is_floating(t.dtype())) continue;
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_TRUE(sdlora::test::all_close(b.tensors.at(name), t, 2e-3, 2e-5, name));
  }
}

}  // namespace
}  // namespace sdlora::cl
