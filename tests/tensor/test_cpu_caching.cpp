// The CPU caching pool: a training-like sequence of ops reaches the system allocator only in its
// first run (later runs reuse the freed blocks), live and peak bytes stay exact, and the cache
// limit returns blocks past it to the system. Under SDLORA_NO_CACHING_ALLOCATOR=1 every run
// allocates afresh (ctest runs CpuPool.FollowsTheCachingSwitch under the switch as well).
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sdlora::test {
namespace {

// Products, a broadcast bias, GELU, softmax, a reduction: the temporaries of a small step.
double step(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const Tensor h = gelu(add(matmul(x, w), bias));
  const Tensor p = softmax(matmul(h, w, false, true));
  return sum(mul(p, x)).item();
}

TEST(CpuCaching, StepsAfterTheFirstReuseFreedBlocks) {
  const Device cpu = Device::cpu();
  Generator gen(5);
  const Tensor x = gen.normal({64, 96}, 0.0, 1.0, DType::kFloat32, cpu);
  const Tensor w = gen.normal({96, 192}, 0.0, 0.1, DType::kFloat32, cpu);
  const Tensor bias = gen.normal({192}, 0.0, 0.1, DType::kFloat32, cpu);
  const bool exact = CachingPool::caching_disabled_by_environment();
  const MemoryStats start = memory_stats(cpu);
  std::vector<int64_t> system;  // system allocations of each step
  std::vector<double> results;
  for (int s = 0; s < 3; ++s) {
    const int64_t before = memory_stats(cpu).system_allocations;
    results.push_back(step(x, w, bias));
    system.push_back(memory_stats(cpu).system_allocations - before);
    EXPECT_EQ(memory_stats(cpu).live_bytes, start.live_bytes) << "step " << s << " leaked";
  }
  EXPECT_EQ(results[1], results[0]);  // reused (uncleared) blocks do not change results
  EXPECT_EQ(results[2], results[0]);
  EXPECT_GT(system[0], 0);
  if (exact) {
    EXPECT_EQ(system[1], system[0]) << "no reuse with the caching allocator off";
  } else {
    EXPECT_EQ(system[1], 0) << "the second step reuses the first step's blocks";
    EXPECT_EQ(system[2], 0);
    EXPECT_GT(memory_stats(cpu).cached_bytes, 0);
  }
}

TEST(CpuCaching, PeakCountsLiveBytesNotCachedOnes) {
  const Device cpu = Device::cpu();
  const bool exact = CachingPool::caching_disabled_by_environment();
  const auto held = [&](int64_t bytes) {
    return exact ? bytes
                 : static_cast<int64_t>(CachingPool::size_class(static_cast<size_t>(bytes)));
  };
  { Tensor warm = Tensor::empty({1 << 20}, DType::kFloat32, cpu); }  // a cached block, maybe
  reset_peak_memory(cpu);
  const MemoryStats base = memory_stats(cpu);
  EXPECT_EQ(base.peak_bytes, base.live_bytes);
  {
    Tensor a = Tensor::empty({1 << 20}, DType::kFloat32, cpu);
    Tensor b = Tensor::empty({1000}, DType::kFloat32, cpu);
    const MemoryStats s = memory_stats(cpu);
    EXPECT_EQ(s.live_bytes - base.live_bytes, held(4 << 20) + held(4000));
  }
  const MemoryStats after = memory_stats(cpu);
  EXPECT_EQ(after.live_bytes, base.live_bytes);
  EXPECT_EQ(after.peak_bytes - base.live_bytes, held(4 << 20) + held(4000));
}

TEST(CpuCaching, BlocksPastTheLimitGoBackToTheSystem) {
  int frees = 0;
  CachingPool pool(
      "limited", [](size_t bytes) { return std::malloc(bytes); },
      [&frees](void* p) {
        ++frees;
        std::free(p);
      },
      /*cache=*/true);
  const size_t cls = CachingPool::size_class(10000);
  pool.set_cache_limit(cls);  // room for one block of this class
  void* a = pool.allocate(10000);
  void* b = pool.allocate(10000);
  pool.release(a);
  EXPECT_EQ(frees, 0) << "the first block fits under the limit";
  pool.release(b);
  EXPECT_EQ(frees, 1) << "the second would exceed it";
  EXPECT_EQ(pool.stats().cached_bytes, static_cast<int64_t>(cls));
  EXPECT_EQ(pool.allocate(10000), a);
  EXPECT_EQ(pool.stats().system_allocations, 2);
  pool.release(a);
}

}  // namespace
}  // namespace sdlora::test
