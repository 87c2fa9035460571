// matmul_view (products on strided views with leading dimensions and two batch levels) against a
// naive float64 loop over the same flat memory; only c's elements change; bad views are errors.
#include <gtest/gtest.h>

#include <vector>

#include "tensor/ops.h"
#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// Element (i, j) of op(v) for matrix (o, b), read from the flat values of v's base.
double at(const std::vector<double>& flat, const MatrixView& v, bool trans, int64_t o, int64_t b,
          int64_t i, int64_t j) {
  if (trans) std::swap(i, j);
  return flat[static_cast<size_t>(v.offset + o * v.outer_stride + b * v.batch_stride + i * v.ld +
                                  j)];
}

// The expected flat values of c's base after the product.
std::vector<double> reference(const MatrixView& a, bool ta, const MatrixView& b, bool tb,
                              const MatrixView& c, int64_t outer, int64_t batch, double alpha,
                              double beta) {
  const std::vector<double> fa = host_values(a.base), fb = host_values(b.base);
  std::vector<double> fc = host_values(c.base);
  const int64_t k = ta ? a.rows : a.cols;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t i = 0; i < c.rows; ++i)
        for (int64_t j = 0; j < c.cols; ++j) {
          double s = 0.0;
          for (int64_t q = 0; q < k; ++q)
            s += at(fa, a, ta, o, bi, i, q) * at(fb, b, tb, o, bi, q, j);
          double& out = fc[static_cast<size_t>(c.offset + o * c.outer_stride + bi * c.batch_stride +
                                               i * c.ld + j)];
          out = alpha * s + (beta == 0.0 ? 0.0 : beta * out);
        }
  return fc;
}

// The attention layout: q, k and v of B x H heads read from one (B, N, 3, H, hd) buffer, the
// scores written (B, H, N, N), then the output written in the (B, N, H, hd) token layout.
TEST(MatmulView, AttentionLayoutMatchesNaiveLoop) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
    const int64_t B = 2, N = 5, H = 3, hd = 4, C = H * hd;
    const Tensor qkv = random_tensor({B, N, 3 * C}, 1, -1.0, 1.0, dt);
    auto head = [&](int64_t part) {
      MatrixView v;
      v.base = qkv;
      v.offset = part * C;
      v.rows = N;
      v.cols = hd;
      v.ld = 3 * C;
      v.outer_stride = hd;         // heads
      v.batch_stride = N * 3 * C;  // images
      return v;
    };
    Tensor s = random_tensor({B, H, N, N}, 2, -1.0, 1.0, dt);
    MatrixView sv{s, 0, N, N, N, N * N, H * N * N};
    const std::vector<double> want_s = reference(head(0), false, head(1), true, sv, H, B, 0.5, 0.0);
    matmul_view(head(0), false, head(1), true, sv, H, B, 0.5f, 0.0f);
    const Tolerance tol = dt == DType::kBFloat16 ? Tolerance{1e-2, 1e-2} : Tolerance{1e-6, 1e-6};
    EXPECT_TRUE(all_close(s.reshape({s.numel()}), want_s, tol.rtol, tol.atol, "scores"));

    Tensor o = random_tensor({B, N, C}, 3, -1.0, 1.0, dt);
    MatrixView ov{o, 0, N, hd, C, hd, N * C};
    const std::vector<double> want_o = reference(sv, false, head(2), false, ov, H, B, 1.0, 0.0);
    matmul_view(sv, false, head(2), false, ov, H, B);
    EXPECT_TRUE(all_close(o.reshape({o.numel()}), want_o, tol.rtol, tol.atol, "output"));
  }
}

// Transposed operands, beta = 1 accumulation into a column window of a wider c (the SD-LoRA
// up-product into qkv), a shared operand (stride 0), and one batch level.
TEST(MatmulView, TransposesAccumulationAndSharedOperands) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t m = 7, k = 3, n = 5;
      const Tensor a = random_tensor({2, ta ? k : m, (ta ? m : k) + 2}, 10);  // padded rows
      const Tensor b = random_tensor({tb ? n : k, tb ? k : n}, 11);           // shared
      Tensor c = random_tensor({2, m, 3 * n}, 12);
      const MatrixView av{
          a, 1, ta ? k : m, ta ? m : k, (ta ? m : k) + 2, 0, (ta ? k : m) * ((ta ? m : k) + 2)};
      const MatrixView bv{b, 0, tb ? n : k, tb ? k : n, tb ? k : n, 0, 0};
      const MatrixView cv{c, 2 * n, m, n, 3 * n, 0, m * 3 * n};
      const std::vector<double> want = reference(av, ta, bv, tb, cv, 1, 2, 1.5, 1.0);
      matmul_view(av, ta, bv, tb, cv, 1, 2, 1.5f, 1.0f);
      EXPECT_TRUE(all_close(c.reshape({c.numel()}), want, 1e-6, 1e-6, "c"))
          << "trans_a " << ta << " trans_b " << tb;
    }
}

// A bfloat16 product written to a float32 c (float32 accumulation, no bfloat16 rounding).
TEST(MatmulView, Bf16OperandsFloat32Result) {
  const Tensor a = random_tensor({4, 6}, 20, -1.0, 1.0, DType::kBFloat16);
  const Tensor b = random_tensor({6, 4}, 21, -1.0, 1.0, DType::kBFloat16);
  Tensor c = Tensor::zeros({4, 2}, DType::kFloat32);
  const MatrixView av{a, 0, 4, 3, 6, 0, 0}, bv{b, 1, 3, 2, 4, 0, 0}, cv{c, 0, 4, 2, 2, 0, 0};
  const std::vector<double> want = reference(av, false, bv, false, cv, 1, 1, 1.0, 0.0);
  matmul_view(av, false, bv, false, cv, 1, 1);
  EXPECT_TRUE(all_close(c.reshape({8}), want, 1e-6, 1e-6, "c"));
}

TEST(MatmulView, BadViewsAreErrors) {
  const Tensor a = random_tensor({4, 4}, 30);
  Tensor c = Tensor::zeros({4, 4});
  const MatrixView ok{a, 0, 2, 2, 4, 0, 0};
  MatrixView past = ok;
  past.offset = 11;  // last element 11 + 4 + 1 = 16: one past the end
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul_view(past, false, ok, false, MatrixView{c, 0, 2, 2, 4, 0, 0}, 1, 1);
      },
      "reaches element 16"));
  MatrixView narrow_ld = ok;
  narrow_ld.ld = 1;
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul_view(narrow_ld, false, ok, false, MatrixView{c, 0, 2, 2, 4, 0, 0}, 1, 1);
      },
      "ld >= cols"));
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul_view(ok, false, ok, false, MatrixView{c, 0, 2, 3, 4, 0, 0}, 1, 1);
      },
      "do not fit"));
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul_view(ok, false, ok, false, MatrixView{c, 0, 2, 2, 4, 0, 0}, 1, 2);
      },
      "would write one matrix"));
  Tensor shared = Tensor::zeros({4, 4});
  const MatrixView in_shared{shared, 0, 2, 2, 4, 0, 0}, out_shared{shared, 2, 2, 2, 4, 0, 0};
  EXPECT_TRUE(throws_naming([&] { matmul_view(in_shared, false, ok, false, out_shared, 1, 1); },
                            "overlaps"));
  const MatrixView beside{shared, 8, 2, 2, 4, 0, 0};  // rows 2-3: no overlap with rows 0-1
  EXPECT_NO_THROW(matmul_view(in_shared, false, ok, false, beside, 1, 1));
}

}  // namespace
}  // namespace sdlora::test
