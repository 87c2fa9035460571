// CUDA graphs (tensor/graph.h) against the eager CUDA result and the CPU twin: a recorded body's
// kernels run only at replay, on the same addresses, from a private pool whose memory is counted
// and returned; a body that reads back to the host fails cleanly and the stream stays usable.
#include <gtest/gtest.h>

#include "tensor/allocator.h"
#include "tensor/graph.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora {
namespace {

using test::gpu;

// y = gelu(x @ w + b) * 0.5, a few kernels and temporaries.
Tensor body_op(const Tensor& x, const Tensor& w, const Tensor& b) {
  return mul(gelu(add(matmul(x, w), b)), 0.5);
}

TEST(GpuGraph, ReplayMatchesEagerOnNewInputs) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope no_tf32(false);
  const test::Pair x = test::random_pair({16, 32}, 1), w = test::random_pair({32, 8}, 2),
                   b = test::random_pair({8}, 3);
  Tensor xg = x.gpu.clone();
  Tensor out;
  RecordedGraph g(gpu(), [&] { out = body_op(xg, w.gpu, b.gpu); });
  EXPECT_TRUE(g.on_device());
  EXPECT_GT(g.pool_bytes(), 0) << "the outputs come from the graph's pool";
  for (uint64_t seed : {11u, 12u, 13u}) {
    const Tensor xc = test::random_tensor({16, 32}, seed);
    xg.copy_(xc.to(gpu()));
    g.replay();
    const Tensor want = body_op(xc, w.cpu, b.cpu);
    EXPECT_TRUE(test::all_close(out, want, 1e-5, 1e-6, "replayed output"));
    EXPECT_TRUE(test::same_bits(out, body_op(xg, w.gpu, b.gpu), "replay vs eager CUDA"));
  }
}

TEST(GpuGraph, PrivatePoolIsCountedAndReturned) {
  SDLORA_REQUIRE_GPU();
  synchronize(gpu());
  const int64_t base = memory_stats(gpu()).live_bytes;
  {
    const Tensor x = test::random_tensor({64, 64}, 4, -1, 1, DType::kFloat32, gpu());
    Tensor out;
    {
      RecordedGraph g(gpu(), [&] { out = add(mul(x, 3.0), 1.0); });
      g.replay();
      EXPECT_GE(memory_stats(gpu()).live_bytes, base + out.nbytes() + x.nbytes());
      EXPECT_GE(memory_stats(gpu()).peak_bytes, memory_stats(gpu()).live_bytes);
    }
    // The graph is gone; its output still holds the last replay's values.
    EXPECT_TRUE(test::all_close(out, add(mul(x.to(Device::cpu()), 3.0), 1.0), 1e-6, 1e-6, "out"));
  }
  synchronize(gpu());
  EXPECT_EQ(memory_stats(gpu()).live_bytes, base) << "the retired graph pool kept live blocks";
}

TEST(GpuGraph, AHostReadFailsTheRecordingAndTheStreamStaysUsable) {
  SDLORA_REQUIRE_GPU();
  const Tensor x = test::random_tensor({8}, 5, -1, 1, DType::kFloat32, gpu());
  EXPECT_TRUE(
      test::throws_naming([&] { RecordedGraph g(gpu(), [&] { (void)sum(x).item(); }); }, "item()"));
  EXPECT_FALSE(graph_capturing());
  // Eager work after the abandoned capture runs and is correct.
  EXPECT_NEAR(sum(mul(x, 2.0)).item(), 2.0 * sum(x.to(Device::cpu())).item(), 1e-5);
}

}  // namespace
}  // namespace sdlora
