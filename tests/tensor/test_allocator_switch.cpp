// SDLORA_NO_CACHING_ALLOCATOR=1 (for memory checkers): the process's pools allocate exact sizes,
// reuse nothing and free at once; without it they round to size classes and reuse freed blocks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/tensor.h"

namespace sdlora::test {
namespace {

constexpr const char* kSwitch = "SDLORA_NO_CACHING_ALLOCATOR";

// A pool over malloc that records every raw allocation's size and every raw free, created as the
// process's pools are (exact when the switch is on), with the switch set to `value` (nullptr:
// unset); the environment is restored afterwards.
struct RecordingPool {
  std::map<void*, size_t> live;  // raw blocks not yet freed
  int raw_allocs = 0, raw_frees = 0;
  std::vector<size_t> sizes;
  std::optional<CachingPool> pool;

  explicit RecordingPool(const char* value) {
    std::optional<std::string> old;
    if (const char* v = std::getenv(kSwitch)) old = std::string(v);
    if (value)
      setenv(kSwitch, value, 1);
    else
      unsetenv(kSwitch);
    pool.emplace(
        "test",
        [this](size_t bytes) -> void* {
          void* p = std::malloc(bytes);
          ++raw_allocs;
          sizes.push_back(bytes);
          live[p] = bytes;
          return p;
        },
        [this](void* p) {
          ++raw_frees;
          live.erase(p);
          std::free(p);
        },
        /*cache=*/true, /*exact=*/CachingPool::caching_disabled_by_environment());
    if (old)
      setenv(kSwitch, old->c_str(), 1);
    else
      unsetenv(kSwitch);
  }
  ~RecordingPool() { pool.reset(); }
};

TEST(CachingSwitch, OnExactSizesNoReuseFreedAtOnce) {
  RecordingPool r("1");
  CachingPool& p = *r.pool;
  EXPECT_FALSE(p.size_classes());
  void* a = p.allocate(1001);
  ASSERT_EQ(r.sizes.size(), 1u);
  EXPECT_EQ(r.sizes[0], 1001u) << "the raw allocator gets the exact request";
  EXPECT_EQ(p.stats().live_bytes, 1001);
  p.release(a);
  EXPECT_EQ(r.raw_frees, 1) << "freed at once";
  EXPECT_TRUE(r.live.empty());
  EXPECT_EQ(p.stats().cached_bytes, 0);
  EXPECT_EQ(p.stats().live_bytes, 0);
  void* b = p.allocate(1001);
  EXPECT_EQ(r.raw_allocs, 2) << "a freed block is never reused";
  void* c = p.allocate(3);
  EXPECT_EQ(r.sizes.back(), 3u);
  void* d = p.allocate(0);
  EXPECT_EQ(r.sizes.back(), 1u) << "an empty request still gets a block of its own";
  const MemoryStats s = p.stats();
  EXPECT_EQ(s.live_bytes, 1001 + 3 + 1);
  EXPECT_EQ(s.peak_bytes, 1001 + 3 + 1);
  EXPECT_EQ(s.allocations, 4);
  EXPECT_EQ(s.system_allocations, 4);
  for (void* q : {b, c, d}) p.release(q);
  EXPECT_EQ(r.raw_frees, 4);
  EXPECT_TRUE(r.live.empty());
}

TEST(CachingSwitch, OffSizeClassesAndReuse) {
  RecordingPool r(nullptr);
  CachingPool& p = *r.pool;
  EXPECT_TRUE(p.size_classes());
  void* a = p.allocate(1001);
  ASSERT_EQ(r.sizes.size(), 1u);
  EXPECT_EQ(r.sizes[0], CachingPool::size_class(1001));
  EXPECT_GT(r.sizes[0], 1001u);
  p.release(a);
  EXPECT_EQ(r.raw_frees, 0) << "kept for reuse";
  EXPECT_EQ(p.stats().cached_bytes, static_cast<int64_t>(CachingPool::size_class(1001)));
  void* b = p.allocate(1001);
  EXPECT_EQ(b, a) << "the cached block serves the next request of its class";
  EXPECT_EQ(r.raw_allocs, 1);
  EXPECT_EQ(p.stats().system_allocations, 1);
  p.release(b);
}

TEST(CachingSwitch, OnlyTheValue1TurnsCachingOff) {
  for (const char* v : {"0", "", "true"}) {
    RecordingPool r(v);
    EXPECT_TRUE(r.pool->size_classes()) << kSwitch << "='" << v << "'";
  }
  RecordingPool on("1");
  EXPECT_FALSE(on.pool->size_classes());
}

// The process's own CPU pool, which reads the switch when first used. ctest runs this once as
// discovered (caching on) and once as CpuPool.NoCachingAllocator with the switch set (see
// tests/tensor/CMakeLists.txt); the line printed says which mode was checked.
TEST(CpuPool, FollowsTheCachingSwitch) {
  const bool exact = CachingPool::caching_disabled_by_environment();
  const Device cpu = Device::cpu();
  const int64_t n = 1001;  // bytes; no size class is this size
  const MemoryStats before = memory_stats(cpu);
  {
    Tensor t = Tensor::empty({n}, DType::kUInt8, cpu);
    const MemoryStats held = memory_stats(cpu);
    EXPECT_EQ(held.live_bytes - before.live_bytes,
              exact ? n : static_cast<int64_t>(CachingPool::size_class(n)));
    EXPECT_EQ(held.system_allocations - before.system_allocations, 1);
  }
  const MemoryStats after = memory_stats(cpu);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(after.cached_bytes - before.cached_bytes,
            exact ? 0 : static_cast<int64_t>(CachingPool::size_class(n)))
      << (exact ? "freed at once" : "kept for reuse");
  {
    Tensor t = Tensor::empty({n}, DType::kUInt8, cpu);
    EXPECT_EQ(memory_stats(cpu).system_allocations - after.system_allocations, exact ? 1 : 0)
        << (exact ? "a freed block is never reused" : "the cached block serves the request");
  }
  std::cout << "CPU pool checked with "
            << (exact ? "exact sizes (caching allocator off)" : "size classes") << "\n";
}

}  // namespace
}  // namespace sdlora::test
