// Layout ops on the CPU: permute/transpose, cat, slice, slice_set_, index_select and index_add_,
// against naive index arithmetic, for float, integer and bfloat16 data; their error paths.
#include <cmath>
#include <numeric>
#include <utility>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// 0, 1, 2, ... as a tensor of the given dtype (exact in every dtype for small sizes).
Tensor iota(const Shape& shape, DType dtype = DType::kFloat32) {
  return cast(arange(0, static_cast<double>(shape_numel(shape)), 1, DType::kFloat64).reshape(shape),
              dtype);
}

std::vector<double> permute_reference(const Tensor& x, const std::vector<int64_t>& perm,
                                      Shape& out_shape) {
  const std::vector<double> v = host_values(x);
  const std::vector<int64_t> st = strides_of(x.shape());
  out_shape.clear();
  for (int64_t p : perm) out_shape.push_back(x.shape()[static_cast<size_t>(p)]);
  std::vector<double> out(v.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const std::vector<int64_t> c = unravel(static_cast<int64_t>(i), out_shape);
    int64_t flat = 0;
    for (size_t k = 0; k < perm.size(); ++k) flat += c[k] * st[static_cast<size_t>(perm[k])];
    out[i] = v[static_cast<size_t>(flat)];
  }
  return out;
}

TEST(OpsLayout, PermuteEveryDtype) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{3, 5}, {1, 0}},
      {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {0, 2, 1}},
      {{2, 3, 4}, {1, 0, 2}},
      {{2, 3, 4, 5}, {0, 2, 1, 3}},
      {{2, 3, 4, 5}, {3, 2, 1, 0}},
      {{1, 197, 3, 4}, {0, 2, 1, 3}},  // attention heads split
      {{2, 3, 4}, {0, 1, 2}},          // identity
      {{4, 1, 3}, {1, 0, 2}},          // moves a size-1 dim only
      {{2, 1, 2, 1, 3, 2}, {5, 4, 3, 2, 1, 0}},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kInt32,
                     DType::kInt64, DType::kUInt8}) {
      if (dt == DType::kUInt8 && shape_numel(c.shape) > 256) continue;  // values must fit
      const Tensor xs = iota(c.shape, dt);
      Shape want_shape;
      const std::vector<double> want = permute_reference(xs, c.perm, want_shape);
      const Tensor got = permute(xs, c.perm);
      ASSERT_EQ(got.shape(), want_shape);
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_EQ(host_values(got), want) << shape_str(c.shape) << " " << dtype_name(dt);
    }
  }
  // negative axes
  const Tensor x = iota({2, 3, 4});
  EXPECT_EQ(host_values(permute(x, {-1, 0, 1})), host_values(permute(x, {2, 0, 1})));
}

TEST(OpsLayout, TransposeRoundTrips) {
  const Tensor x = random_tensor({197, 33}, 400);
  const Tensor t = transpose(x, 0, 1);
  EXPECT_EQ(t.shape(), (Shape{33, 197}));
  const std::vector<float> xv = x.to_vector<float>(), tv = t.to_vector<float>();
  for (int64_t i = 0; i < 197; ++i)
    for (int64_t j = 0; j < 33; ++j)
      ASSERT_EQ(tv[static_cast<size_t>(j * 197 + i)], xv[static_cast<size_t>(i * 33 + j)]);
  EXPECT_EQ(transpose(t, -1, -2).to_vector<float>(), xv);
  const Tensor y = iota({2, 3, 4});
  EXPECT_EQ(transpose(y, 0, 2).shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(transpose(y, 1, 1).to_vector<float>(), y.to_vector<float>());
}

TEST(OpsLayout, CatAlongEachDim) {
  const Tensor a = iota({2, 3, 4}), b = add(iota({2, 3, 4}), 100.0);
  // dim 0
  const Tensor c0 = cat({a, b}, 0);
  EXPECT_EQ(c0.shape(), (Shape{4, 3, 4}));
  std::vector<float> want = a.to_vector<float>();
  for (float v : b.to_vector<float>()) want.push_back(v);
  EXPECT_EQ(c0.to_vector<float>(), want);
  // dim 1 and the last dim, with different sizes, against element-wise indexing
  for (int64_t dim : {1, 2, -1}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape sb = a.shape();
    sb[static_cast<size_t>(d)] = 5;
    const Tensor bb = add(iota(sb), 100.0);
    const Tensor c = cat({a, bb, a}, dim);
    Shape sc = a.shape();
    sc[static_cast<size_t>(d)] = 2 * a.shape()[static_cast<size_t>(d)] + 5;
    ASSERT_EQ(c.shape(), sc);
    const std::vector<float> av = a.to_vector<float>(), bv = bb.to_vector<float>(),
                             cv = c.to_vector<float>();
    const std::vector<int64_t> sta = strides_of(a.shape()), stb = strides_of(sb);
    const int64_t na = a.shape()[static_cast<size_t>(d)];
    for (size_t i = 0; i < cv.size(); ++i) {
      std::vector<int64_t> co = unravel(static_cast<int64_t>(i), sc);
      int64_t& k = co[static_cast<size_t>(d)];
      const std::vector<int64_t>* st = &sta;
      const std::vector<float>* src = &av;
      if (k >= na && k < na + 5) {
        k -= na;
        st = &stb;
        src = &bv;
      } else if (k >= na + 5) {
        k -= na + 5;
      }
      int64_t flat = 0;
      for (size_t q = 0; q < co.size(); ++q) flat += co[q] * (*st)[q];
      ASSERT_EQ(cv[i], (*src)[static_cast<size_t>(flat)]) << "cat dim " << dim << " element " << i;
    }
  }
  // integer and bfloat16 inputs, and a single input
  EXPECT_EQ(
      cat({Tensor::from_vector<int64_t>({1, 2}, {2}), Tensor::from_vector<int64_t>({3}, {1})}, 0)
          .to_vector<int64_t>(),
      (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(host_values(cat({iota({2, 2}, DType::kBFloat16), iota({2, 1}, DType::kBFloat16)}, 1)),
            (std::vector<double>{0, 1, 0, 2, 3, 1}));
  EXPECT_EQ(cat({a}, 1).to_vector<float>(), a.to_vector<float>());
}

TEST(OpsLayout, SliceAndSliceSet) {
  const Tensor x = iota({4, 5, 6});
  const std::vector<float> xv = x.to_vector<float>();
  // slice [1, 4) of dim 1
  const Tensor s = slice(x, 1, 1, 4);
  EXPECT_EQ(s.shape(), (Shape{4, 3, 6}));
  const std::vector<float> sv = s.to_vector<float>();
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 6; ++k)
        ASSERT_EQ(sv[static_cast<size_t>((i * 3 + j) * 6 + k)],
                  xv[static_cast<size_t>((i * 5 + j + 1) * 6 + k)]);
  // the last dim, negative dim, empty and full slices
  EXPECT_EQ(slice(x, -1, 5, 6).to_vector<float>(),
            (std::vector<float>{5,  11, 17, 23, 29, 35, 41,  47,  53,  59,
                                65, 71, 77, 83, 89, 95, 101, 107, 113, 119}));
  EXPECT_EQ(slice(x, 0, 2, 2).shape(), (Shape{0, 5, 6}));
  EXPECT_EQ(slice(x, 0, 0, 4).to_vector<float>(), xv);
  EXPECT_EQ(slice(x, 0, 3, 4).to_vector<float>(), std::vector<float>(xv.end() - 30, xv.end()));
  // slice_set_ writes the window back and leaves the rest alone
  Tensor dst = Tensor::zeros({4, 5, 6});
  slice_set_(dst, 1, 1, s);
  const std::vector<float> dv = dst.to_vector<float>();
  for (size_t i = 0; i < dv.size(); ++i) {
    const int64_t j = (static_cast<int64_t>(i) / 6) % 5;
    ASSERT_EQ(dv[i], (j >= 1 && j < 4) ? xv[i] : 0.f) << i;
  }
  // int64 and bfloat16
  Tensor di = Tensor::zeros({3, 4}, DType::kInt64);
  slice_set_(di, 1, 2, Tensor::from_vector<int64_t>({7, 8, 9, 10, 11, 12}, {3, 2}));
  EXPECT_EQ(di.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 7, 8, 0, 0, 9, 10, 0, 0, 11, 12}));
  EXPECT_EQ(host_values(slice(iota({3, 4}, DType::kBFloat16), 0, 1, 3)),
            (std::vector<double>{4, 5, 6, 7, 8, 9, 10, 11}));
}

TEST(OpsLayout, SliceBackwardIsZerosThenSliceSet) {
  // Every dim, windows at the start, the end, inside, empty and whole, in float, int64 and
  // bfloat16; the caching pool first receives a block of NaN of the same size, so a window edge
  // left unwritten would show.
  const Shape shape = {4, 5, 6};
  for (DType dtype : {DType::kFloat32, DType::kInt64, DType::kBFloat16})
    for (int64_t d = 0; d < 3; ++d) {
      const int64_t n = shape[static_cast<size_t>(d)];
      for (const auto& [start, end] : std::vector<std::pair<int64_t, int64_t>>{
               {0, n}, {0, 1}, {n - 1, n}, {1, 3}, {2, 2}, {0, 0}, {n, n}}) {
        Shape ws = shape;
        ws[static_cast<size_t>(d)] = end - start;
        // 1, 2, 3, ...: no zeros in dy
        const Tensor dy =
            cast(add(iota(ws, DType::kFloat64), Tensor::full(ws, 1.0, DType::kFloat64)), dtype);
        {
          Tensor dirty = Tensor::empty(shape, dtype);
          if (is_floating(dtype))
            fill_(dirty, std::nan(""));
          else
            fill_(dirty, -7);
        }
        const Tensor got = slice_backward(dy, shape, d, start);
        Tensor want = Tensor::zeros(shape, dtype);
        slice_set_(want, d, start, dy);
        ASSERT_EQ(got.shape(), shape);
        EXPECT_EQ(host_values(got), host_values(want))
            << dtype_name(dtype) << " dim " << d << " [" << start << ", " << end << ")";
      }
    }
  EXPECT_TRUE(throws_naming([] { slice_backward(iota({4, 3}), {4, 5}, 1, 3); }, "slice_set_"));
}

TEST(OpsLayout, IndexSelectAlongEachDim) {
  const Tensor x = iota({3, 4, 5});
  const std::vector<float> xv = x.to_vector<float>();
  for (DType idt : {DType::kInt32, DType::kInt64}) {
    const Tensor idx = cast(Tensor::from_vector<int64_t>({2, 0, 2, 1, 2}, {5}), idt);
    const std::vector<int64_t> iv = {2, 0, 2, 1, 2};
    for (int64_t dim : {0, 1, 2, -1}) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      const Tensor got = index_select(x, dim, idx);
      Shape want_shape = x.shape();
      want_shape[static_cast<size_t>(d)] = 5;
      ASSERT_EQ(got.shape(), want_shape);
      const std::vector<float> gv = got.to_vector<float>();
      for (size_t i = 0; i < gv.size(); ++i) {
        std::vector<int64_t> c = unravel(static_cast<int64_t>(i), want_shape);
        c[static_cast<size_t>(d)] = iv[static_cast<size_t>(c[static_cast<size_t>(d)])];
        ASSERT_EQ(gv[i], xv[static_cast<size_t>((c[0] * 4 + c[1]) * 5 + c[2])]) << "dim " << dim;
      }
    }
  }
  // an embedding lookup on int64 and bfloat16 tables, and an empty index
  const Tensor table = Tensor::from_vector<int64_t>({10, 11, 20, 21, 30, 31}, {3, 2});
  EXPECT_EQ(
      index_select(table, 0, Tensor::from_vector<int32_t>({2, 2, 0}, {3})).to_vector<int64_t>(),
      (std::vector<int64_t>{30, 31, 30, 31, 10, 11}));
  EXPECT_EQ(host_values(index_select(iota({3, 2}, DType::kBFloat16), 0,
                                     Tensor::from_vector<int64_t>({1}, {1}))),
            (std::vector<double>{2, 3}));
  EXPECT_EQ(index_select(x, 1, Tensor::empty({0}, DType::kInt64)).shape(), (Shape{3, 0, 5}));
}

TEST(OpsLayout, IndexAddAccumulatesRepeatedIndices) {
  // dst[index[i]] += src[i] along dim 0, index {1, 3, 1, 1}
  Tensor dst = Tensor::full({4, 2}, 1.0, DType::kFloat64);
  const Tensor src = make({1, 2, 10, 20, 100, 200, 1000, 2000}, {4, 2}, DType::kFloat64);
  index_add_(dst, 0, Tensor::from_vector<int64_t>({1, 3, 1, 1}, {4}), src);
  EXPECT_EQ(dst.to_vector<double>(), (std::vector<double>{1, 1, 1102, 2203, 1, 1, 11, 21}));
  // along a middle and the last dim, float32, int32 index, against a naive loop
  const Tensor base = random_tensor({3, 4, 5}, 410);
  for (int64_t dim : {1, 2}) {
    const std::vector<int64_t> iv = {0, 3, 3, 1, 0, 3};
    Shape ss = base.shape();
    ss[static_cast<size_t>(dim)] = static_cast<int64_t>(iv.size());
    const Tensor s = random_tensor(ss, 411 + static_cast<uint64_t>(dim));
    Tensor d = base.clone();
    index_add_(d, dim, cast(Tensor::from_vector<int64_t>(iv, {6}), DType::kInt32), s);
    std::vector<double> want = host_values(base);
    const std::vector<double> sv = host_values(s);
    const std::vector<int64_t> st = strides_of(base.shape());
    for (size_t i = 0; i < sv.size(); ++i) {
      std::vector<int64_t> c = unravel(static_cast<int64_t>(i), ss);
      c[static_cast<size_t>(dim)] = iv[static_cast<size_t>(c[static_cast<size_t>(dim)])];
      want[static_cast<size_t>(c[0] * st[0] + c[1] * st[1] + c[2])] += sv[i];
    }
    EXPECT_TRUE(all_close(d, want, 1e-6, 1e-6, "index_add_ dim " + std::to_string(dim)));
  }
  // index_add_ is the adjoint of index_select: <select(x), y> == <x, add(0, y)>
  const Tensor x = random_tensor({6, 7}, 420, -1, 1, DType::kFloat64);
  const Tensor y = random_tensor({9, 7}, 421, -1, 1, DType::kFloat64);
  const Tensor idx = Tensor::from_vector<int64_t>({5, 0, 0, 2, 5, 5, 1, 3, 4}, {9});
  Tensor z = Tensor::zeros({6, 7}, DType::kFloat64);
  index_add_(z, 0, idx, y);
  EXPECT_NEAR(dot(index_select(x, 0, idx), y), dot(x, z), 1e-13);
  // bfloat16 destination
  Tensor db = Tensor::zeros({2, 2}, DType::kBFloat16);
  index_add_(db, 1, Tensor::from_vector<int64_t>({1, 1}, {2}),
             make({1, 2, 3, 4}, {2, 2}, DType::kBFloat16));
  EXPECT_EQ(host_values(db), (std::vector<double>{0, 3, 0, 7}));
}

TEST(OpsLayout, BadArgumentsNameTheOp) {
  const Tensor x = iota({2, 3, 4});
  EXPECT_TRUE(throws_naming([&] { permute(x, {0, 0, 1}); }, "permute"));
  EXPECT_TRUE(throws_naming([&] { permute(x, {0, 1}); }, "permute"));
  EXPECT_TRUE(throws_naming([&] { permute(x, {0, 1, 3}); }, "permute"));
  EXPECT_TRUE(throws_naming([&] { transpose(x, 0, 3); }, "transpose"));
  EXPECT_TRUE(throws_naming([&] { cat({x, iota({2, 3})}, 0); }, "cat"));
  EXPECT_TRUE(throws_naming([&] { cat({x, iota({2, 3})}, 0); }, "rank"));
  EXPECT_TRUE(throws_naming([&] { cat({x, iota({2, 4, 4})}, 0); }, "cat"));
  EXPECT_TRUE(throws_naming([&] { cat({x, iota({2, 3, 4}, DType::kInt32)}, 0); }, "cat"));
  EXPECT_TRUE(throws_naming([&] { cat({}, 0); }, "cat"));
  EXPECT_TRUE(throws_naming([&] { slice(x, 1, 2, 4); }, "slice"));
  EXPECT_TRUE(throws_naming([&] { slice(x, 1, 2, 1); }, "slice"));
  EXPECT_TRUE(throws_naming([&] { slice(x, 3, 0, 1); }, "slice"));
  Tensor dst = Tensor::zeros({2, 3, 4});
  EXPECT_TRUE(throws_naming([&] { slice_set_(dst, 1, 2, iota({2, 2, 4})); }, "slice_set_"));
  EXPECT_TRUE(throws_naming([&] { slice_set_(dst, 1, 0, iota({2, 2, 3})); }, "slice_set_"));
  EXPECT_TRUE(throws_naming(
      [&] {
        index_select(x, 1, Tensor::from_vector<int64_t>({0, 3}, {2}));
      },
      "index_select"));
  EXPECT_TRUE(throws_naming([&] { index_select(x, 1, Tensor::from_vector<int64_t>({-1}, {1})); },
                            "out of range"));
  EXPECT_TRUE(throws_naming([&] { index_select(x, 0, make({0}, {1})); }, "index_select"));
  EXPECT_TRUE(throws_naming(
      [&] {
        index_select(x, 0, Tensor::from_vector<int64_t>({0, 1}, {1, 2}));
      },
      "index_select"));
  EXPECT_TRUE(throws_naming(
      [&] {
        index_add_(dst, 0, Tensor::from_vector<int64_t>({2}, {1}), Tensor::zeros({1, 3, 4}));
      },
      "index_add_"));
  EXPECT_TRUE(throws_naming(
      [&] {
        index_add_(dst, 0, Tensor::from_vector<int64_t>({1}, {1}), Tensor::zeros({2, 3, 4}));
      },
      "index_add_"));
  Tensor idst = Tensor::zeros({2, 3}, DType::kInt32);
  EXPECT_TRUE(throws_naming(
      [&] {
        index_add_(idst, 0, Tensor::from_vector<int64_t>({1}, {1}),
                   Tensor::zeros({1, 3}, DType::kInt32));
      },
      "index_add_"));
}

}  // namespace
}  // namespace sdlora::test
