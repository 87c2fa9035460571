// Tensor core: shapes, views, copies, dtypes, devices, the caching pool and its counters, errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "tensor/allocator.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

TEST(TensorCore, ShapeNumelAndDescribe) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.describe(), "float32[2, 3, 4] on cpu");
  EXPECT_THROW(t.size(3), Error);
  Tensor s = Tensor::scalar<float>(2.5f);
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_DOUBLE_EQ(s.item(), 2.5);
  EXPECT_FALSE(Tensor().defined());
}

TEST(TensorCore, FromVectorRoundTripsEveryDtype) {
  EXPECT_EQ((Tensor::from_vector<float>({1.5f, -2.f}, {2}).to_vector<float>()),
            (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ((Tensor::from_vector<double>({1e-300, 3.}, {2}).to_vector<double>()),
            (std::vector<double>{1e-300, 3.}));
  EXPECT_EQ((Tensor::from_vector<int32_t>({-7, 9}, {2}).to_vector<int32_t>()),
            (std::vector<int32_t>{-7, 9}));
  EXPECT_EQ((Tensor::from_vector<int64_t>({int64_t{1} << 40}, {1}).to_vector<int64_t>()[0]),
            int64_t{1} << 40);
  EXPECT_EQ((Tensor::from_vector<uint8_t>({0, 255}, {1, 2}).to_vector<uint8_t>()),
            (std::vector<uint8_t>{0, 255}));
  EXPECT_THROW(Tensor::from_vector<float>({1.f, 2.f, 3.f}, {2, 2}), Error);
  Tensor f = Tensor::from_vector<float>({1.f}, {1});
  EXPECT_THROW(f.to_vector<int32_t>(), Error);
  EXPECT_THROW(f.data<double>(), Error);
}

TEST(TensorCore, BFloat16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bfloat16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(BFloat16(1.0f + 1.0f / 256).bits, BFloat16(1.0f).bits);
  // 1 + 3 * 2^-8 lies between 1 + 2^-7 (odd mantissa) and 1 + 2^-6 (even): goes to 1 + 2^-6.
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_EQ(static_cast<float>(BFloat16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(static_cast<float>(BFloat16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(static_cast<float>(BFloat16(INFINITY))));
}

TEST(TensorCore, ReshapeIsAViewSharingStorage) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.storage(), t.storage());
  r.data<float>()[5] = 50.f;
  EXPECT_EQ(t.to_vector<float>()[5], 50.f);
  EXPECT_THROW(t.reshape({4, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({7}), Error);
}

TEST(TensorCore, NarrowSelectsLeadingRowsWithoutCopy) {
  Tensor t = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  Tensor n = t.narrow(1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 2}));
  EXPECT_EQ(n.storage(), t.storage());
  EXPECT_EQ(n.to_vector<int32_t>(), (std::vector<int32_t>{2, 3, 4, 5}));
  n.data<int32_t>()[0] = 20;
  EXPECT_EQ(t.to_vector<int32_t>()[2], 20);
  // A narrow of a narrow keeps the offset.
  EXPECT_EQ(n.narrow(1, 1).to_vector<int32_t>(), (std::vector<int32_t>{4, 5}));
  EXPECT_THROW(t.narrow(3, 2), Error);
  EXPECT_THROW(Tensor::scalar<float>(1.f).narrow(0, 1), Error);
}

TEST(TensorCore, CloneAndCopyAreDeep) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor c = t.clone();
  EXPECT_NE(c.storage(), t.storage());
  c.data<float>()[0] = 9.f;
  EXPECT_EQ(t.to_vector<float>()[0], 1.f);
  Tensor d = Tensor::zeros({3});
  d.copy_(t);
  EXPECT_EQ(d.to_vector<float>(), t.to_vector<float>());
  Tensor wrong = Tensor::zeros({4});
  EXPECT_THROW(wrong.copy_(t), Error);
  EXPECT_THROW(d.copy_(Tensor::zeros({3}, DType::kInt32)), Error);
}

TEST(TensorCore, ToSameDeviceOrDtypeReturnsSameStorage) {
  Tensor t = Tensor::zeros({2});
  EXPECT_EQ(t.to(Device::cpu()).storage(), t.storage());
  EXPECT_EQ(t.to(DType::kFloat32).storage(), t.storage());
  EXPECT_EQ(t.to(DType::kInt32).dtype(), DType::kInt32);
}

TEST(TensorCore, NegativeShapeIsAnError) {
  EXPECT_THROW(Tensor::empty({2, -1}, DType::kFloat32), Error);
}

TEST(Devices, ParseAndDefault) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
  // An index past int is a named error (with or without a GPU), not std::out_of_range.
  EXPECT_THROW(Device::parse("cuda:99999999999999999999"), Error);
  EXPECT_THROW(Device::parse("cuda:2147483648"), Error);
  if (cuda_available()) {
    EXPECT_EQ(default_device(), Device::cuda());
    EXPECT_EQ(Device::parse("cuda:0"), Device::cuda(0));
  } else {
    EXPECT_EQ(default_device(), Device::cpu());
  }
}

TEST(Devices, AskingForCudaWithoutAGpuThrowsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU error";
  try {
    (void)Device::cuda();
    FAIL() << "Device::cuda() should throw without a GPU";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("CUDA"), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("no GPU") != std::string::npos ||
                msg.find("no CUDA backend") != std::string::npos)
        << msg;
  }
  EXPECT_THROW(Device::parse("cuda"), Error);
}

TEST(Devices, OutOfRangeCudaIndexThrows) { EXPECT_THROW(Device::cuda(1000), Error); }

TEST(CachingPool, SizeClassesBoundWaste) {
  EXPECT_EQ(CachingPool::size_class(1), 512u);
  EXPECT_EQ(CachingPool::size_class(512), 512u);
  for (size_t b : {513u, 1000u, 4097u, 123457u, 10000000u}) {
    const size_t c = CachingPool::size_class(b);
    EXPECT_GE(c, b);
    EXPECT_LE(c, b + b / 4 + 1) << b;
    EXPECT_EQ(c % 64, 0u) << b;
  }
}

// A pool over a counting raw allocator, so reuse and the OOM path are visible on the CPU.
struct CountingRaw {
  int mallocs = 0, frees = 0;
  size_t limit = SIZE_MAX, held = 0;
  std::set<void*> live;
};

CachingPool make_pool(CountingRaw& raw, bool cache) {
  return CachingPool(
      "test pool",
      [&raw](size_t bytes) -> void* {
        if (raw.held + bytes > raw.limit) return nullptr;
        ++raw.mallocs;
        raw.held += bytes;
        void* p = std::malloc(bytes + sizeof(size_t));
        *static_cast<size_t*>(p) = bytes;
        raw.live.insert(p);
        return p;
      },
      [&raw](void* p) {
        ++raw.frees;
        raw.held -= *static_cast<size_t*>(p);
        raw.live.erase(p);
        std::free(p);
      },
      cache);
}

TEST(CachingPool, ReusesFreedBlocksOfTheSameClass) {
  CountingRaw raw;
  {
    CachingPool pool = make_pool(raw, /*cache=*/true);
    void* a = pool.allocate(1000);
    EXPECT_EQ(raw.mallocs, 1);
    EXPECT_EQ(pool.stats().live_bytes, static_cast<int64_t>(CachingPool::size_class(1000)));
    pool.release(a);
    EXPECT_EQ(pool.stats().live_bytes, 0);
    EXPECT_EQ(pool.stats().cached_bytes, static_cast<int64_t>(CachingPool::size_class(1000)));
    void* b = pool.allocate(1010);  // same size class
    EXPECT_EQ(b, a);
    EXPECT_EQ(raw.mallocs, 1);
    EXPECT_EQ(pool.stats().system_allocations, 1);
    EXPECT_EQ(pool.stats().allocations, 2);
    void* c = pool.allocate(100000);  // another class: a new block
    EXPECT_EQ(raw.mallocs, 2);
    EXPECT_EQ(pool.stats().peak_bytes, static_cast<int64_t>(CachingPool::size_class(1000) +
                                                            CachingPool::size_class(100000)));
    pool.release(b);
    pool.release(c);
    pool.reset_peak();
    EXPECT_EQ(pool.stats().peak_bytes, 0);
    pool.empty_cache();
    EXPECT_EQ(pool.stats().cached_bytes, 0);
    EXPECT_EQ(raw.frees, 2);
  }
  EXPECT_TRUE(raw.live.empty());
}

TEST(CachingPool, UncachedPoolFreesAtOnce) {
  CountingRaw raw;
  CachingPool pool = make_pool(raw, /*cache=*/false);
  pool.release(pool.allocate(4096));
  EXPECT_EQ(raw.frees, 1);
  EXPECT_EQ(pool.stats().cached_bytes, 0);
}

TEST(CachingPool, OutOfMemoryReleasesTheCacheThenFailsClearly) {
  CountingRaw raw;
  raw.limit = 3000;
  CachingPool pool = make_pool(raw, /*cache=*/true);
  void* a = pool.allocate(1500);  // class 1536
  pool.release(a);                // cached
  void* b = pool.allocate(2000);  // class 2048: needs the cache released first
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(raw.frees, 1);
  try {
    (void)pool.allocate(2000);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory on test pool"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2048 bytes"), std::string::npos) << msg;
  }
  pool.release(b);
}

TEST(MemoryCounters, CpuLiveAndPeakFollowTensors) {
  const MemoryStats before = memory_stats(Device::cpu());
  reset_peak_memory(Device::cpu());
  {
    Tensor t = Tensor::empty({1 << 20}, DType::kFloat32);  // 4 MiB
    const MemoryStats during = memory_stats(Device::cpu());
    EXPECT_EQ(during.live_bytes - before.live_bytes,
              static_cast<int64_t>(CachingPool::size_class(4u << 20)));
    Tensor view = t.reshape({1024, 1024}).narrow(0, 10);  // views allocate nothing
    EXPECT_EQ(memory_stats(Device::cpu()).live_bytes, during.live_bytes);
  }
  const MemoryStats after = memory_stats(Device::cpu());
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_GE(after.peak_bytes - before.live_bytes, static_cast<int64_t>(4u << 20));
}

TEST(MemoryCounters, PinnedRequestWithoutCudaIsPlainHostMemory) {
  if (cuda_available())
    GTEST_SKIP() << "a GPU is present; pinned memory is tested by the GPU suite";
  Tensor t = Tensor::empty({16}, DType::kUInt8, Device::cpu(), /*pinned=*/true);
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(pinned_memory_stats().live_bytes, 0);
}

TEST(Random, PhiloxMatchesPublishedKnownAnswers) {
  // Known-answer vectors of Philox-4x32-10 (Salmon et al., Random123's kat_vectors).
  Philox4 z = philox4x32(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(z.v[0], 0x6627e8d5u);
  EXPECT_EQ(z.v[1], 0xe169c58du);
  EXPECT_EQ(z.v[2], 0xbc57ac4cu);
  EXPECT_EQ(z.v[3], 0x9b00dbd8u);
  Philox4 f =
      philox4x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(f.v[0], 0x408f276du);
  EXPECT_EQ(f.v[1], 0x41c83b0eu);
  EXPECT_EQ(f.v[2], 0xa20bc7c6u);
  EXPECT_EQ(f.v[3], 0x6d5451fdu);
}

TEST(Random, GeneratorAdvancesAndReproduces) {
  Generator g1(7), g2(7);
  Tensor a = g1.uniform({100});
  Tensor b = g1.uniform({100});
  EXPECT_EQ(a.to_vector<float>(), g2.uniform({100}).to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(g1.offset(), 2u);
  // Element i does not depend on the tensor's size: a prefix of a longer draw is the shorter draw.
  Tensor longer = Tensor::empty({1000}, DType::kFloat32);
  uniform_(longer, 7, 0);
  const auto lv = longer.to_vector<float>();
  const auto av = a.to_vector<float>();
  EXPECT_TRUE(std::equal(av.begin(), av.end(), lv.begin()));
}

TEST(Errors, MessagesNameTheOpAndBothOperands) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({4, 5});
  try {
    (void)add(a, b);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("add"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 5]"), std::string::npos) << msg;
    EXPECT_NE(msg.find(".cpp:"), std::string::npos) << msg;  // file and line
  }
  try {
    (void)matmul(a, Tensor::zeros({3, 2}, DType::kInt32));
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("float32[2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("int32[3, 2]"), std::string::npos) << msg;
  }
  EXPECT_THROW(exp(Tensor::zeros({2}, DType::kInt32)), Error);
  EXPECT_THROW(add(Tensor(), a), Error);
}

}  // namespace
}  // namespace sdlora
