// Smoke tests of the 64-bit kernel variants and of grids past 65,535 blocks: tensors of more than
// 2^31 elements (broadcast add, row and column sums, permute, index_select), and a transpose whose
// batch or tile count passes the grid's y and z limits. Each checks the elements past 2^31 against
// values computed on the host in closed form, and skips with a reason when the GPU lacks memory.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

constexpr int64_t k2G = int64_t{1} << 31;  // the first element index uint32 indexing cannot use
constexpr int64_t kGiB = int64_t{1} << 30;

// Skips (or, with SDLORA_REQUIRE_GPU=1, fails) unless the GPU has `bytes` free, plus a margin
// for the library's own workspaces; cached blocks are returned to the driver first.
#define SDLORA_REQUIRE_GPU_MEMORY(bytes)                                           \
  do {                                                                             \
    SDLORA_REQUIRE_GPU();                                                          \
    empty_cache();                                                                 \
    const int64_t sdlora_need_ = (bytes) + kGiB;                                   \
    const DeviceMemoryInfo sdlora_mem_ = device_memory_info(gpu());                \
    if (sdlora_mem_.free_bytes < sdlora_need_) {                                   \
      const std::string sdlora_why_ =                                              \
          "needs " + std::to_string(sdlora_need_ >> 20) + " MiB of GPU memory, " + \
          std::to_string(sdlora_mem_.free_bytes >> 20) + " MiB free of " +         \
          std::to_string(sdlora_mem_.total_bytes >> 20);                           \
      if (gpu_required_by_environment())                                           \
        GTEST_FAIL() << sdlora_why_ << " -- failed instead of skipped because "    \
                     << "SDLORA_REQUIRE_GPU=1";                                    \
      GTEST_SKIP() << sdlora_why_;                                                 \
    }                                                                              \
  } while (0)

// out = a (R, 1) + b (1, C) with R * C > 2^31: the broadcast kernel's 64-bit variant. Small
// integer values keep every sum exact in float32, so the host's closed form is compared exactly.
TEST(GpuLarge, BroadcastAddAndSumsPast2To31Elements) {
  constexpr int64_t R = 65537, C = 32769;  // R * C = 2^31 + 98305
  static_assert(R * C > k2G, "must pass 2^31 elements");
  SDLORA_REQUIRE_GPU_MEMORY(R * C * 4);
  std::vector<float> av(R), bv(C);
  for (int64_t i = 0; i < R; ++i) av[static_cast<size_t>(i)] = static_cast<float>(i % 251);
  for (int64_t j = 0; j < C; ++j) bv[static_cast<size_t>(j)] = static_cast<float>((j * 7) % 5);
  const Tensor a = Tensor::from_vector<float>(av, {R, 1}, gpu());
  const Tensor b = Tensor::from_vector<float>(bv, {1, C}, gpu());
  {
    const Tensor out = add(a, b);
    ASSERT_EQ(out.numel(), R * C);
    // Rows 65534..65536 hold every element from flat index 2^31 - 2 on; rows 0..1 the start.
    for (int64_t row : {int64_t{0}, int64_t{1}, R - 3, R - 2, R - 1}) {
      const std::vector<float> got = out.narrow(row, 1).to(Device::cpu()).to_vector<float>();
      int64_t bad = 0, first_bad = -1;
      for (int64_t j = 0; j < C; ++j)
        if (got[static_cast<size_t>(j)] !=
            av[static_cast<size_t>(row)] + bv[static_cast<size_t>(j)]) {
          if (first_bad < 0) first_bad = j;
          ++bad;
        }
      EXPECT_EQ(bad, 0) << "row " << row << ": first wrong column " << first_bad << " (flat index "
                        << row * C + first_bad << ")";
    }
    // Row sums: C a_i + sum(b); column sums: sum(a) + R b_j; all below 2^24, so exact.
    double sum_a = 0, sum_b = 0;
    for (float v : av) sum_a += v;
    for (float v : bv) sum_b += v;
    const std::vector<float> rows = sum(out, 1).to(Device::cpu()).to_vector<float>();
    ASSERT_EQ(static_cast<int64_t>(rows.size()), R);
    int64_t bad_rows = 0;
    for (int64_t i = 0; i < R; ++i)
      bad_rows += rows[static_cast<size_t>(i)] != C * av[static_cast<size_t>(i)] + sum_b;
    EXPECT_EQ(bad_rows, 0) << "row sums";
    const std::vector<float> cols = sum(out, 0).to(Device::cpu()).to_vector<float>();
    ASSERT_EQ(static_cast<int64_t>(cols.size()), C);
    int64_t bad_cols = 0;
    for (int64_t j = 0; j < C; ++j)
      bad_cols += cols[static_cast<size_t>(j)] != sum_a + R * bv[static_cast<size_t>(j)];
    EXPECT_EQ(bad_cols, 0) << "column sums";
  }
  empty_cache();
}

uint8_t pattern3(int64_t a, int64_t b, int64_t c) {
  return static_cast<uint8_t>((a * 7 + b * 13 + c + (c >> 8)) & 255);
}

// permute (A, B, C) -> (B, A, C) of uint8 with A * B * C > 2^31: the permute kernel's 64-bit
// variant (this permutation takes neither tiled transpose path).
TEST(GpuLarge, PermutePast2To31Elements) {
  constexpr int64_t A = 1024, B = 2049, C = 1024;  // 2^31 + 2^20 elements
  static_assert(A * B * C > k2G, "must pass 2^31 elements");
  SDLORA_REQUIRE_GPU_MEMORY(2 * A * B * C);
  Tensor host = Tensor::empty({A, B, C}, DType::kUInt8);
  uint8_t* h = host.data<uint8_t>();
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) h[(a * B + b) * C + c] = pattern3(a, b, c);
  {
    const Tensor x = host.to(gpu());
    host = Tensor();
    const Tensor out = permute(x, {1, 0, 2});
    ASSERT_EQ(out.shape(), (Shape{B, A, C}));
    // Out row B - 1 (flat indices from 2^31 on), and rows 0 and B - 2.
    for (int64_t b : {int64_t{0}, B - 2, B - 1}) {
      const Tensor row = out.narrow(b, 1).to(Device::cpu());
      const uint8_t* g = row.data<uint8_t>();
      int64_t bad = 0;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t c = 0; c < C; ++c) bad += g[a * C + c] != pattern3(a, b, c);
      EXPECT_EQ(bad, 0) << "out row " << b << " (flat index from " << b * A * C << ")";
    }
  }
  empty_cache();
}

uint8_t pattern2(int64_t r, int64_t j) {
  return static_cast<uint8_t>((r * 101 + j * 7 + (j >> 20)) & 255);
}

// index_select of 3 rows of 2^30 bytes: 3 * 2^30 output elements, the 64-bit variant.
TEST(GpuLarge, IndexSelectPast2To31Elements) {
  constexpr int64_t N = 2, W = int64_t{1} << 30;
  SDLORA_REQUIRE_GPU_MEMORY(5 * W);
  Tensor host = Tensor::empty({N, W}, DType::kUInt8);
  uint8_t* h = host.data<uint8_t>();
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < W; ++j) h[r * W + j] = pattern2(r, j);
  {
    const Tensor x = host.to(gpu());
    host = Tensor();
    const std::vector<int64_t> idx = {1, 0, 1};
    const Tensor out = index_select(x, 0, Tensor::from_vector<int64_t>(idx, {3}, gpu()));
    ASSERT_EQ(out.shape(), (Shape{3, W}));
    ASSERT_GT(out.numel(), k2G);
    // Row 2 holds flat indices 2^31 .. 3 * 2^30 - 1.
    const Tensor row = out.narrow(2, 1).to(Device::cpu());
    const uint8_t* g = row.data<uint8_t>();
    int64_t bad = 0, first_bad = -1;
    for (int64_t j = 0; j < W; ++j)
      if (g[j] != pattern2(idx[2], j)) {
        if (first_bad < 0) first_bad = j;
        ++bad;
      }
    EXPECT_EQ(bad, 0) << "first wrong element at flat index " << 2 * W + first_bad;
  }
  empty_cache();
}

// A batched transpose of 70,001 small matrices: the tiled kernel's grid z is capped at 65,535
// and the kernel loops over the rest. Then 2-D transposes with more than 65,535 row tiles (past
// the grid's y limit: the generic permute takes them) both ways. Bit-exact against the CPU.
TEST(GpuLarge, TransposeGridsPast65535Blocks) {
  SDLORA_REQUIRE_GPU();
  const Pair batched = random_pair({70001, 3, 5}, 21);
  EXPECT_TRUE(same_bits(transpose(batched.gpu, 1, 2), transpose(batched.cpu, 1, 2),
                        "transpose of 70001 batches"));
  const int64_t tall = 65536 * 32 + 40;  // 65,538 tiles of 32 rows
  const Pair wide = random_pair({3, tall}, 22);
  EXPECT_TRUE(
      same_bits(transpose(wide.gpu, 0, 1), transpose(wide.cpu, 0, 1), "transpose (3, tall)"));
  const Pair high = random_pair({tall, 3}, 23);
  EXPECT_TRUE(
      same_bits(transpose(high.gpu, 0, 1), transpose(high.cpu, 0, 1), "transpose (tall, 3)"));
}

// Row kernels over more rows than a grid dimension's 65,535 (the grid is capped, rows are
// strided): row sums and softmax against the CPU.
TEST(GpuLarge, RowKernelsOverMoreThan65535Rows) {
  SDLORA_REQUIRE_GPU();
  const Pair x = random_pair({100003, 7}, 24);
  const Tolerance st = sum_tol(DType::kFloat32, 7);
  EXPECT_TRUE(all_close(sum(x.gpu, 1), sum(x.cpu, 1), st.rtol, st.atol, "row sums"));
  EXPECT_TRUE(all_close(softmax(x.gpu), softmax(x.cpu), 1e-5, 1e-6, "softmax"));
  const Pair y = random_pair({100003, 1500}, 25);  // block-per-row rows
  const Tolerance yt = sum_tol(DType::kFloat32, 1500);
  EXPECT_TRUE(all_close(sum(y.gpu, 1), sum(y.cpu, 1), yt.rtol, yt.atol, "long row sums"));
}

}  // namespace
}  // namespace sdlora::test
