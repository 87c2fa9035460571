// CUDA layout kernels against the CPU, bit for bit: permute and transpose (generic and tiled
// paths), slice/cat/slice_set_ (2-D copies), index_select and index_add (with repeated and
// out-of-range indices), patchify and unpatchify; every dtype where the op takes it.
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

const DType kMoverDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kInt32, DType::kInt64,
                              DType::kUInt8};

// Random values of any dtype (integers from [-100, 100), wrapped for uint8).
Pair random_any(const Shape& shape, uint64_t seed, DType dtype) {
  return pair_of(cast(random_tensor(shape, seed, -100, 100), dtype));
}

TEST(GpuLayout, PermuteMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const Case cases[] = {
      {{2, 3, 4, 5}, {0, 2, 1, 3}},
      {{2, 3, 4, 5}, {3, 2, 1, 0}},
      {{2, 3, 4, 5}, {1, 0, 3, 2}},
      {{2, 3, 4, 5}, {0, 1, 3, 2}},
      {{2, 3, 4, 5}, {2, 0, 3, 1}},
      {{197, 768}, {1, 0}},  // tiled 2-D transpose
      {{33, 65}, {1, 0}},
      {{1, 1}, {1, 0}},
      {{5, 197, 64}, {0, 2, 1}},               // tiled batched transpose
      {{2, 197, 3, 12, 64}, {2, 0, 3, 1, 4}},  // qkv split of attention
      {{2, 12, 197, 64}, {0, 2, 1, 3}},        // heads back to tokens
      {{1, 5, 1, 3}, {3, 1, 0, 2}},            // size-1 dims
      {{7, 1, 9}, {2, 1, 0}},
      {{3, 70001, 2}, {2, 1, 0}},
      {{2, 2, 2, 2, 2, 2, 2, 3}, {7, 6, 5, 4, 3, 2, 1, 0}},  // eight dims
  };
  uint64_t seed = 1;
  for (const Case& c : cases)
    for (DType dtype : kMoverDTypes) {
      const Pair x = random_any(c.shape, seed++, dtype);
      EXPECT_TRUE(
          same_bits(permute(x.gpu, c.perm), permute(x.cpu, c.perm),
                    std::string("permute ") + dtype_name(dtype) + " " + shape_str(c.shape)));
    }
  const Pair x = random_any({4, 33, 70}, 99, DType::kFloat32);
  EXPECT_TRUE(same_bits(transpose(x.gpu, -1, -2), transpose(x.cpu, -1, -2), "transpose"));
  EXPECT_TRUE(same_bits(transpose(x.gpu, 0, 2), transpose(x.cpu, 0, 2), "transpose 0 2"));
}

TEST(GpuLayout, SliceCatAndSliceSet) {
  SDLORA_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dtype : kMoverDTypes) {
    const std::string tag = dtype_name(dtype);
    const Pair x = random_any({197, 768}, seed++, dtype);
    EXPECT_TRUE(same_bits(slice(x.gpu, 1, 5, 700), slice(x.cpu, 1, 5, 700), "slice dim 1 " + tag));
    EXPECT_TRUE(same_bits(slice(x.gpu, 0, 1, 197), slice(x.cpu, 0, 1, 197), "slice dim 0 " + tag));
    EXPECT_TRUE(
        same_bits(slice(x.gpu, 1, 767, 768), slice(x.cpu, 1, 767, 768), "last column " + tag));
    const Pair a = random_any({3, 5, 2}, seed++, dtype), b = random_any({3, 7, 2}, seed++, dtype);
    EXPECT_TRUE(
        same_bits(cat({a.gpu, b.gpu, a.gpu}, 1), cat({a.cpu, b.cpu, a.cpu}, 1), "cat " + tag));
    EXPECT_TRUE(same_bits(cat({a.gpu, a.gpu}, 0), cat({a.cpu, a.cpu}, 0), "cat dim 0 " + tag));
    Tensor dg = x.gpu.clone(), dc = x.cpu.clone();
    const Pair patch = random_any({197, 10}, seed++, dtype);
    slice_set_(dg, 1, 300, patch.gpu);
    slice_set_(dc, 1, 300, patch.cpu);
    EXPECT_TRUE(same_bits(dg, dc, "slice_set_ " + tag));
    // The adjoint of slice: the window copied, the rest zeroed by 2-D memsets (and one block).
    EXPECT_TRUE(same_bits(slice_backward(patch.gpu, {197, 768}, 1, 300),
                          slice_backward(patch.cpu, {197, 768}, 1, 300), "slice_backward " + tag));
    const Pair row = random_any({1, 768}, seed++, dtype);
    EXPECT_TRUE(same_bits(slice_backward(row.gpu, {197, 768}, 0, 0),
                          slice_backward(row.cpu, {197, 768}, 0, 0), "class-token row " + tag));
  }
}

TEST(GpuLayout, IndexSelectMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  uint64_t seed = 200;
  const Shape shape{6, 197, 5};
  for (DType dtype : kMoverDTypes)
    for (DType index_dtype : {DType::kInt32, DType::kInt64})
      for (int64_t dim = 0; dim < 3; ++dim) {
        const int64_t n = shape[static_cast<size_t>(dim)];
        // Repeated indices, the last one, and more indices than the dim has.
        const Tensor idx =
            cast(random_tensor({2 * n + 1}, seed++, 0, static_cast<double>(n)), index_dtype);
        const Pair x = random_any(shape, seed++, dtype);
        EXPECT_TRUE(same_bits(index_select(x.gpu, dim, idx.to(gpu())),
                              index_select(x.cpu, dim, idx),
                              std::string("index_select ") + dtype_name(dtype) + " by " +
                                  dtype_name(index_dtype) + " dim " + std::to_string(dim)));
      }
}

TEST(GpuLayout, IndexAddMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  uint64_t seed = 300;
  const Shape shape{6, 50, 33};
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (DType index_dtype : {DType::kInt32, DType::kInt64})
      for (int64_t dim = 0; dim < 3; ++dim) {
        const int64_t n = shape[static_cast<size_t>(dim)];
        const std::string tag = std::string(dtype_name(dtype)) + " by " + dtype_name(index_dtype) +
                                " dim " + std::to_string(dim);
        // float32: repeated indices (atomics in any order); bfloat16: a permutation, so each
        // destination gets one addition and both sides round once.
        const Tensor idx =
            dtype == DType::kFloat32
                ? cast(random_tensor({3 * n}, seed++, 0, static_cast<double>(n)), index_dtype)
                : cast(arange(static_cast<double>(n - 1), -1, -1, DType::kInt64), index_dtype);
        Shape src_shape = shape;
        src_shape[static_cast<size_t>(dim)] = idx.numel();
        const Pair dst = random_pair(shape, seed++, dtype);
        const Pair src = random_pair(src_shape, seed++, dtype);
        Tensor dg = dst.gpu.clone(), dc = dst.cpu.clone();
        index_add_(dg, dim, idx.to(gpu()), src.gpu);
        index_add_(dc, dim, idx, src.cpu);
        const Tolerance tol =
            dtype == DType::kFloat32 ? Tolerance{1e-6, 1e-6} : Tolerance{1e-2, 1e-3};
        EXPECT_TRUE(all_close(dg, dc, tol.rtol, tol.atol, "index_add_ " + tag));
      }
}

TEST(GpuLayout, OutOfRangeIndicesDoNotTouchMemory) {
  SDLORA_REQUIRE_GPU();
  // Device indices are not checked on the host (that would synchronise): the kernels skip them.
  const Tensor x = random_tensor({4, 3}, 400, -1, 1, DType::kFloat32, gpu());
  const Tensor idx = Tensor::from_vector<int64_t>({2, -1, 4, 1000000000, 0}, {5}, gpu());
  const std::vector<float> got = index_select(x, 0, idx).to_vector<float>();
  const std::vector<float> xv = x.to_vector<float>();
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(got[static_cast<size_t>(j)], xv[static_cast<size_t>(6 + j)]);   // row 2
    EXPECT_EQ(got[static_cast<size_t>(3 + j)], 0.0f);                         // -1: zero
    EXPECT_EQ(got[static_cast<size_t>(6 + j)], 0.0f);                         // 4: zero
    EXPECT_EQ(got[static_cast<size_t>(9 + j)], 0.0f);                         // huge: zero
    EXPECT_EQ(got[static_cast<size_t>(12 + j)], xv[static_cast<size_t>(j)]);  // row 0
  }
  Tensor dst = Tensor::zeros({4, 3}, DType::kFloat32, gpu());
  index_add_(dst, 0, idx, Tensor::full({5, 3}, 1.0, DType::kFloat32, gpu()));
  EXPECT_TRUE(all_close(dst, std::vector<double>{1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0}, 0, 0,
                        "index_add_ skipping bad indices"));
  synchronize(gpu());
}

TEST(GpuLayout, PatchifyAndUnpatchify) {
  SDLORA_REQUIRE_GPU();
  struct Case {
    Shape shape;
    int64_t p;
  };
  const Case cases[] = {{{2, 3, 32, 48}, 16},   {{1, 1, 4, 4}, 2}, {{3, 5, 9, 6}, 3},
                        {{1, 3, 224, 224}, 16}, {{2, 1, 7, 7}, 7}, {{1, 2, 3, 3}, 1}};
  uint64_t seed = 500;
  for (const Case& c : cases)
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      const std::string tag =
          std::string(dtype_name(dtype)) + " " + shape_str(c.shape) + " p " + std::to_string(c.p);
      const Pair x = random_pair(c.shape, seed++, dtype);
      const Tensor pg = patchify(x.gpu, c.p);
      EXPECT_TRUE(same_bits(pg, patchify(x.cpu, c.p), "patchify " + tag));
      const Pair patches = random_pair(pg.shape(), seed++, dtype);
      const int64_t C = c.shape[1], H = c.shape[2], W = c.shape[3];
      EXPECT_TRUE(same_bits(unpatchify(patches.gpu, C, H, W, c.p),
                            unpatchify(patches.cpu, C, H, W, c.p), "unpatchify " + tag));
      EXPECT_TRUE(same_bits(unpatchify(pg, C, H, W, c.p), x.gpu, "round trip " + tag));
    }
}

}  // namespace
}  // namespace sdlora::test
