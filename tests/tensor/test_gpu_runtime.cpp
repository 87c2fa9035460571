// The CUDA runtime around the kernels: the caching allocator's counters, host <-> device copies
// (pageable, pinned, non-blocking), and the errors a user sees for mixed devices and float64.
#include <gtest/gtest.h>

#include <string>

#include "tensor/allocator.h"
#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"
#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// An allocation size that no other test uses, so its size class starts out uncached or not in a
// way that does not matter to the assertions below.
constexpr int64_t kOddFloats = 1234567;

TEST(GpuMemory, FreedBlockIsReusedForTheSameSize) {
  SDLORA_REQUIRE_GPU();
  const Device d = gpu();
  synchronize(d);
  const MemoryStats base = memory_stats(d);
  {
    Tensor t = Tensor::empty({kOddFloats}, DType::kFloat32, d);
    const MemoryStats held = memory_stats(d);
    EXPECT_GE(held.live_bytes, base.live_bytes + kOddFloats * 4);
    EXPECT_EQ(held.allocations, base.allocations + 1);
  }
  const MemoryStats freed = memory_stats(d);
  EXPECT_EQ(freed.live_bytes, base.live_bytes);
  EXPECT_GE(freed.cached_bytes, kOddFloats * 4);
  {
    Tensor again = Tensor::empty({kOddFloats}, DType::kFloat32, d);
    const MemoryStats reused = memory_stats(d);
    EXPECT_EQ(reused.system_allocations, freed.system_allocations) << "no cudaMalloc on reuse";
    EXPECT_EQ(reused.live_bytes - base.live_bytes,
              static_cast<int64_t>(CachingPool::size_class(kOddFloats * 4)));
  }
  EXPECT_EQ(memory_stats(d).live_bytes, base.live_bytes);
}

TEST(GpuMemory, PeakBytesTrackTheHighWaterMark) {
  SDLORA_REQUIRE_GPU();
  const Device d = gpu();
  reset_peak_memory(d);
  const MemoryStats base = memory_stats(d);
  EXPECT_EQ(base.peak_bytes, base.live_bytes);
  const int64_t block = static_cast<int64_t>(CachingPool::size_class(kOddFloats * 4 * 2));
  {
    Tensor a = Tensor::empty({kOddFloats * 2}, DType::kFloat32, d);
    Tensor b = Tensor::empty({kOddFloats * 2}, DType::kFloat32, d);
    EXPECT_EQ(memory_stats(d).peak_bytes, base.live_bytes + 2 * block);
  }
  const MemoryStats after = memory_stats(d);
  EXPECT_EQ(after.live_bytes, base.live_bytes);
  EXPECT_EQ(after.peak_bytes, base.live_bytes + 2 * block);
  reset_peak_memory(d);
  EXPECT_EQ(memory_stats(d).peak_bytes, base.live_bytes);
}

TEST(GpuMemory, OpsInALoopStopCallingTheSystemAllocator) {
  SDLORA_REQUIRE_GPU();
  const Tensor x = random_tensor({197, 768}, 1, -1, 1, DType::kFloat32, gpu());
  // Warm-up: in steady state three blocks of the class circulate (the old y, the sum, the new y).
  Tensor y;
  for (int i = 0; i < 3; ++i) y = gelu(add(x, x));
  const int64_t before = memory_stats(gpu()).system_allocations;
  for (int i = 0; i < 20; ++i) y = gelu(add(x, x));
  EXPECT_EQ(memory_stats(gpu()).system_allocations, before);
}

TEST(GpuCopy, RoundTripEveryDType) {
  SDLORA_REQUIRE_GPU();
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat64, DType::kInt32,
                      DType::kInt64, DType::kUInt8}) {
    const Tensor host = cast(random_tensor({3, 1001}, 7, -100, 100), dtype);
    const Tensor dev = host.to(gpu());
    EXPECT_TRUE(dev.device().is_cuda());
    EXPECT_TRUE(
        same_bits(dev.to(Device::cpu()), host, std::string("round trip ") + dtype_name(dtype)));
    EXPECT_TRUE(same_bits(dev.clone(), host, std::string("device clone ") + dtype_name(dtype)));
    Tensor dst = Tensor::empty(host.shape(), dtype, gpu());
    dst.copy_(dev);
    EXPECT_TRUE(same_bits(dst, host, std::string("device copy_ ") + dtype_name(dtype)));
  }
}

TEST(GpuCopy, PinnedNonBlockingCopiesThenSynchronize) {
  SDLORA_REQUIRE_GPU();
  const int64_t n = 1 << 20;
  Tensor pinned = Tensor::empty({n}, DType::kFloat32, Device::cpu(), /*pinned=*/true);
  EXPECT_TRUE(pinned.is_pinned());
  const Tensor values = random_tensor({n}, 11);
  pinned.copy_(values);
  // Host -> device without blocking, then work on the stream, then device -> pinned host.
  const Tensor dev = pinned.to(gpu(), /*non_blocking=*/true);
  const Tensor doubled = mul(dev, 2.0);
  Tensor back = Tensor::empty({n}, DType::kFloat32, Device::cpu(), /*pinned=*/true);
  back.copy_(doubled, /*non_blocking=*/true);
  synchronize(gpu());
  EXPECT_TRUE(all_close(back, mul(values, 2.0), 0, 0, "pinned round trip"));
  // A pageable source with non_blocking falls back to a synchronous copy.
  const Tensor dev2 = values.to(gpu(), /*non_blocking=*/true);
  EXPECT_TRUE(same_bits(dev2, values, "pageable non-blocking"));
}

TEST(GpuCopy, ViewsCopyTheirOwnBytes) {
  SDLORA_REQUIRE_GPU();
  const Tensor host = random_tensor({10, 7}, 12);
  const Tensor dev = host.to(gpu());
  EXPECT_TRUE(same_bits(dev.narrow(3, 4), host.narrow(3, 4), "narrow"));
  EXPECT_TRUE(
      same_bits(dev.narrow(3, 4).reshape({-1}), host.narrow(3, 4).reshape({-1}), "reshape"));
  EXPECT_EQ(dev.narrow(3, 4).storage(), dev.storage());
}

// Whether f throws an sdlora::Error naming every one of `parts`.
template <typename F>
::testing::AssertionResult throws_naming_all(F&& f, const std::vector<std::string>& parts) {
  for (const std::string& p : parts) {
    ::testing::AssertionResult r = throws_naming(f, p);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

TEST(GpuErrors, MixingDevicesNamesBoth) {
  SDLORA_REQUIRE_GPU();
  const Tensor c = Tensor::zeros({2, 3});
  const Tensor g = Tensor::zeros({2, 3}, DType::kFloat32, gpu());
  EXPECT_TRUE(throws_naming_all([&] { add(c, g); }, {"add", "cpu", "cuda:0"}));
  EXPECT_TRUE(throws_naming_all([&] { add(g, c); }, {"add", "cpu", "cuda:0"}));
  EXPECT_TRUE(throws_naming_all([&] { matmul(c, g, false, true); }, {"matmul", "cpu", "cuda:0"}));
  Tensor out = Tensor::zeros({2, 2}, DType::kFloat32, gpu());
  EXPECT_TRUE(
      throws_naming_all([&] { matmul_out(g, c, out, false, true); }, {"matmul", "cpu", "cuda:0"}));
}

TEST(GpuErrors, Float64OpsRunOnTheCpuOnly) {
  SDLORA_REQUIRE_GPU();
  const Tensor g = Tensor::zeros({2, 3}, DType::kFloat64, gpu());  // storage and fill work
  EXPECT_TRUE(throws_naming_all([&] { add(g, g); }, {"float64", "cuda:0"}));
  EXPECT_TRUE(throws_naming_all([&] { exp(g); }, {"float64"}));
  EXPECT_TRUE(throws_naming_all([&] { sum(g); }, {"float64"}));
  EXPECT_TRUE(throws_naming_all([&] { matmul(g, g, false, true); }, {"float64"}));
  EXPECT_TRUE(throws_naming_all([&] { cast(g, DType::kFloat32); }, {"float64"}));
}

TEST(GpuErrors, MissingDeviceIndex) {
  SDLORA_REQUIRE_GPU();
  EXPECT_TRUE(throws_naming_all([] { Device::cuda(cuda_device_count()); }, {"cuda:"}));
}

TEST(GpuSettings, Tf32Toggle) {
  SDLORA_REQUIRE_GPU();
  const bool saved = allow_tf32();
  set_allow_tf32(true);
  EXPECT_TRUE(allow_tf32());
  set_allow_tf32(false);
  EXPECT_FALSE(allow_tf32());
  set_allow_tf32(saved);
}

}  // namespace
}  // namespace sdlora::test
