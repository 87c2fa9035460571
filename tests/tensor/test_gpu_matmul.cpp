// cuBLAS products against the CPU: the four transpose combinations, batched and shared operands,
// alpha/beta, the empty inner dimension, bfloat16, and TF32 with its own (looser) bound.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

// op(A) is (m, k): stored (k, m) when transposed.
Shape stored(int64_t rows, int64_t cols, bool trans) {
  return trans ? Shape{cols, rows} : Shape{rows, cols};
}
Shape batched(int64_t batch, Shape s) {
  s.insert(s.begin(), batch);
  return s;
}

// Bounds for products over k terms of magnitude up to 1 against the float32 CPU reference.
Tolerance product_tol(DType dtype, int64_t k, bool tf32 = false) {
  const double s = std::sqrt(static_cast<double>(k));
  if (dtype == DType::kBFloat16) return {1e-2, 1e-3 * s};  // one bfloat16 rounding of the result
  if (tf32) return {2e-3, 2e-3 * s};                       // 10-bit mantissa products
  return {1e-5, 5e-6 * s};
}

// Restores the TF32 setting on scope exit.
using test::Tf32Scope;

struct Dims {
  int64_t m, k, n;
};
const Dims kDims[] = {{1, 1, 1},     {3, 5, 7},   {197, 768, 64},
                      {64, 33, 129}, {1, 300, 2}, {257, 1, 31}};

TEST(GpuMatmul, FourTransposeCombinations) {
  SDLORA_REQUIRE_GPU();
  Tf32Scope tf32(false);
  uint64_t seed = 1;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (const Dims& d : kDims)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const Pair a = random_pair(stored(d.m, d.k, ta), seed++, dtype);
          const Pair b = random_pair(stored(d.k, d.n, tb), seed++, dtype);
          const Tolerance tol = product_tol(dtype, d.k);
          const Tensor got = matmul(a.gpu, b.gpu, ta, tb);
          ASSERT_EQ(got.shape(), (Shape{d.m, d.n}));
          EXPECT_TRUE(all_close(got, matmul(a.cpu, b.cpu, ta, tb), tol.rtol, tol.atol,
                                std::string("matmul ") + dtype_name(dtype) +
                                    " m=" + std::to_string(d.m) + " k=" + std::to_string(d.k) +
                                    " n=" + std::to_string(d.n) + (ta ? " ta" : "") +
                                    (tb ? " tb" : "")));
        }
}

TEST(GpuMatmul, BatchedAndSharedOperands) {
  SDLORA_REQUIRE_GPU();
  Tf32Scope tf32(false);
  uint64_t seed = 100;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t B = 3, m = 197, k = 64, n = 45;
        const Tolerance tol = product_tol(dtype, k);
        const std::string tag =
            std::string(dtype_name(dtype)) + (ta ? " ta" : "") + (tb ? " tb" : "");
        // Both batched (attention-like).
        const Pair a = random_pair(batched(B, stored(m, k, ta)), seed++, dtype);
        const Pair b = random_pair(batched(B, stored(k, n, tb)), seed++, dtype);
        EXPECT_TRUE(all_close(matmul(a.gpu, b.gpu, ta, tb), matmul(a.cpu, b.cpu, ta, tb), tol.rtol,
                              tol.atol, "batched " + tag));
        // Shared b (a linear layer over a batch; without ta this folds into one tall product).
        const Pair w = random_pair(stored(k, n, tb), seed++, dtype);
        EXPECT_TRUE(all_close(matmul(a.gpu, w.gpu, ta, tb), matmul(a.cpu, w.cpu, ta, tb), tol.rtol,
                              tol.atol, "shared b " + tag));
        // Shared a (stride 0 on cuBLAS's second operand).
        const Pair s = random_pair(stored(m, k, ta), seed++, dtype);
        EXPECT_TRUE(all_close(matmul(s.gpu, b.gpu, ta, tb), matmul(s.cpu, b.cpu, ta, tb), tol.rtol,
                              tol.atol, "shared a " + tag));
      }
  // Batch of one and a 4-d batch.
  const Pair a = random_pair({2, 3, 17, 9}, 200);
  const Pair b = random_pair({2, 3, 9, 11}, 201);
  const Tolerance tol = product_tol(DType::kFloat32, 9);
  EXPECT_TRUE(
      all_close(matmul(a.gpu, b.gpu), matmul(a.cpu, b.cpu), tol.rtol, tol.atol, "4-d batch"));
  const Pair a1 = random_pair({1, 5, 4}, 202);
  const Pair b1 = random_pair({1, 4, 6}, 203);
  EXPECT_TRUE(
      all_close(matmul(a1.gpu, b1.gpu), matmul(a1.cpu, b1.cpu), tol.rtol, tol.atol, "batch 1"));
}

TEST(GpuMatmul, AlphaBetaAccumulate) {
  SDLORA_REQUIRE_GPU();
  Tf32Scope tf32(false);
  uint64_t seed = 300;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t m = 33, k = 70, n = 19;
        const Pair a = random_pair(batched(2, stored(m, k, ta)), seed++, dtype);
        const Pair b = random_pair(stored(k, n, tb), seed++, dtype);
        const Pair c = random_pair({2, m, n}, seed++, dtype);
        Tensor cg = c.gpu.clone(), cc = c.cpu.clone();
        matmul_out(a.gpu, b.gpu, cg, ta, tb, 0.5f, -1.25f);
        matmul_out(a.cpu, b.cpu, cc, ta, tb, 0.5f, -1.25f);
        const Tolerance tol = product_tol(dtype, k);
        EXPECT_TRUE(all_close(cg, cc, tol.rtol, tol.atol,
                              std::string("alpha/beta ") + dtype_name(dtype) + (ta ? " ta" : "") +
                                  (tb ? " tb" : "")));
      }
}

TEST(GpuMatmul, BetaZeroIgnoresGarbageInC) {
  SDLORA_REQUIRE_GPU();
  const Pair a = random_pair({20, 30}, 400);
  const Pair b = random_pair({30, 10}, 401);
  Tensor c = Tensor::full({20, 10}, std::nan(""), DType::kFloat32, gpu());
  matmul_out(a.gpu, b.gpu, c, false, false, 1.0f, 0.0f);
  const Tolerance tol = product_tol(DType::kFloat32, 30);
  EXPECT_TRUE(all_close(c, matmul(a.cpu, b.cpu), tol.rtol, tol.atol, "beta 0 over NaN"));
}

TEST(GpuMatmul, EmptyInnerDimension) {
  SDLORA_REQUIRE_GPU();
  const Tensor a = Tensor::zeros({4, 0}, DType::kFloat32, gpu());
  const Tensor b = Tensor::zeros({0, 3}, DType::kFloat32, gpu());
  EXPECT_TRUE(all_close(matmul(a, b), std::vector<double>(12, 0.0), 0, 0, "k = 0"));
  Tensor c = Tensor::full({4, 3}, 2.0, DType::kFloat32, gpu());
  matmul_out(a, b, c, false, false, 1.0f, 0.5f);
  EXPECT_TRUE(all_close(c, std::vector<double>(12, 1.0), 0, 0, "k = 0, beta 0.5"));
}

TEST(GpuMatmul, SmallIntegersAreExact) {
  SDLORA_REQUIRE_GPU();
  Tf32Scope tf32(false);
  // Integer-valued inputs make float32 products exact on both sides.
  Tensor a = cast(cast(random_tensor({37, 41}, 500, -8, 8), DType::kInt32), DType::kFloat32);
  Tensor b = cast(cast(random_tensor({41, 29}, 501, -8, 8), DType::kInt32), DType::kFloat32);
  EXPECT_TRUE(same_bits(matmul(a.to(gpu()), b.to(gpu())), matmul(a, b), "integer product"));
}

TEST(GpuMatmul, Tf32WithinItsBound) {
  SDLORA_REQUIRE_GPU();
  Tf32Scope tf32(true);
  ASSERT_TRUE(allow_tf32());
  uint64_t seed = 600;
  for (const Dims& d : kDims)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const Pair a = random_pair(batched(2, stored(d.m, d.k, ta)), seed++);
        const Pair b = random_pair(batched(2, stored(d.k, d.n, tb)), seed++);
        const Tolerance tol = product_tol(DType::kFloat32, d.k, /*tf32=*/true);
        EXPECT_TRUE(all_close(matmul(a.gpu, b.gpu, ta, tb), matmul(a.cpu, b.cpu, ta, tb), tol.rtol,
                              tol.atol, "tf32 k=" + std::to_string(d.k)));
      }
}

}  // namespace
}  // namespace sdlora::test
