// The op cases: every differentiable op at small awkward shapes, broadcasting variants, and
// composites shaped like a ViT block and an SD-LoRA projection.
#include "tests/autograd/op_cases.h"

#include <numeric>

#include "nn/sdlora.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {

namespace {

using V = std::vector<Var>;

Tensor rnd(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return random_tensor(shape, seed, lo, hi, DType::kFloat64);
}

// Distinct values 0.1 apart in a scrambled order: max has no near-ties (the kink of max).
Tensor separated(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  int64_t step = 7;
  while (std::gcd(step, n) != 1) ++step;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] =
        0.1 * static_cast<double>((i * step) % n) - 0.05 * static_cast<double>(n);
  return Tensor::from_vector<double>(v, shape);
}

Tensor labels(const std::vector<int64_t>& values) {
  return Tensor::from_vector<int64_t>(values, {static_cast<int64_t>(values.size())});
}

// A pre-norm transformer block with a classifier head and the loss, as the ViT composes it.
Var vit_block(const V& v, const Tensor& y) {
  const Var &x = v[0], &ln_w = v[1], &ln_b = v[2], &qkv_w = v[3], &qkv_b = v[4], &proj_w = v[5],
            &head_w = v[6];
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), H = 2, D = C / H;
  const Var h = layernorm(x, ln_w, ln_b, 1e-6);
  const Var qkv = permute(reshape(linear(h, qkv_w, qkv_b), {B, N, 3, H, D}), {2, 0, 3, 1, 4});
  const Var q = reshape(slice(qkv, 0, 0, 1), {B, H, N, D});
  const Var k = reshape(slice(qkv, 0, 1, 2), {B, H, N, D});
  const Var vv = reshape(slice(qkv, 0, 2, 3), {B, H, N, D});
  const Var o = reshape(transpose(attention(q, k, vv), 1, 2), {B, N, C});
  const Var x2 = x + linear(gelu(o), proj_w);
  const Var cls = reshape(slice(x2, 1, 0, 1), {B, C});
  return cross_entropy(linear(cls, head_w), y.to(x.device()));
}

// One SD-LoRA-adapted qkv projection evaluated by the library's own adapter functions
// (nn/sdlora.h: scaled_up, qkv_lowrank_update): the base product, then for q and for v one frozen
// component (rank 2) scaled by (alpha_0 + beta_0) / n_0 and the current pair (rank 2) by alpha_1,
// stacked, one down-product for both projections, accumulated into the q and v columns. The
// norms n_0 are constants, as they are for frozen components.
Var sdlora_projection(const V& v) {
  const Var &x = v[0], &w0 = v[1], &a0 = v[10], &a1 = v[11];
  auto constant = [&](std::vector<double> values) {
    const auto n = static_cast<int64_t>(values.size());
    return cast(Tensor::from_vector<double>(values, {n}), x.dtype()).to(x.device());
  };
  const Tensor beta = constant({0.3, 0.0});
  const Tensor term = Tensor::from_vector<int64_t>({0, 0, 1, 1}, {4}).to(x.device());
  const Var up_q =
      scaled_up({a0, a1}, beta, constant({1.0 / 1.7, 1.0}), term, cat({v[2], v[4]}, 1));
  const Var up_v =
      scaled_up({a0, a1}, beta, constant({1.0 / 2.1, 1.0}), term, cat({v[6], v[8]}, 1));
  return qkv_lowrank_update(x, linear(x, w0), cat({v[3], v[5]}, 0), up_q, cat({v[7], v[9]}, 0),
                            up_v);
}

}  // namespace

std::vector<OpCase> op_cases() {
  std::vector<OpCase> c;
  auto add_case = [&](std::string name, std::vector<Tensor> inputs, GradcheckFn f) {
    c.push_back({std::move(name), std::move(inputs), std::move(f)});
  };

  // matrix products: every transpose combination, batched, and shared 2-D operands
  add_case("matmul", {rnd({3, 4}, 1), rnd({4, 5}, 2)},
           [](const V& v) { return matmul(v[0], v[1]); });
  add_case("matmul_ta", {rnd({4, 3}, 3), rnd({4, 5}, 4)},
           [](const V& v) { return matmul(v[0], v[1], true, false); });
  add_case("matmul_tb", {rnd({3, 4}, 5), rnd({5, 4}, 6)},
           [](const V& v) { return matmul(v[0], v[1], false, true); });
  add_case("matmul_ta_tb", {rnd({4, 3}, 7), rnd({5, 4}, 8)},
           [](const V& v) { return matmul(v[0], v[1], true, true); });
  add_case("matmul_batched", {rnd({2, 3, 4}, 9), rnd({2, 4, 5}, 10)},
           [](const V& v) { return matmul(v[0], v[1]); });
  add_case("matmul_batched_ta_tb", {rnd({2, 4, 3}, 11), rnd({2, 5, 4}, 12)},
           [](const V& v) { return matmul(v[0], v[1], true, true); });
  add_case("matmul_shared_b", {rnd({2, 3, 4}, 13), rnd({4, 5}, 14)},
           [](const V& v) { return matmul(v[0], v[1]); });
  add_case("matmul_shared_b_tb", {rnd({2, 3, 4}, 15), rnd({5, 4}, 16)},
           [](const V& v) { return matmul(v[0], v[1], false, true); });
  add_case("matmul_shared_b_ta", {rnd({2, 4, 3}, 17), rnd({4, 5}, 18)},
           [](const V& v) { return matmul(v[0], v[1], true, false); });
  add_case("matmul_shared_a", {rnd({3, 4}, 19), rnd({2, 4, 5}, 20)},
           [](const V& v) { return matmul(v[0], v[1]); });
  add_case("matmul_shared_a_ta_tb", {rnd({4, 3}, 21), rnd({2, 5, 4}, 22)},
           [](const V& v) { return matmul(v[0], v[1], true, true); });
  add_case("linear", {rnd({2, 3, 4}, 23), rnd({5, 4}, 24), rnd({5}, 25)},
           [](const V& v) { return linear(v[0], v[1], v[2]); });
  add_case("linear_no_bias", {rnd({3, 4}, 26), rnd({5, 4}, 27)},
           [](const V& v) { return linear(v[0], v[1]); });

  // elementwise with broadcasting
  add_case("add", {rnd({2, 3, 4}, 30), rnd({3, 1}, 31)},
           [](const V& v) { return add(v[0], v[1]); });
  add_case("add_both_broadcast", {rnd({2, 1, 4}, 32), rnd({3, 1}, 33)},
           [](const V& v) { return v[0] + v[1]; });
  add_case("sub", {rnd({4}, 34), rnd({2, 3, 4}, 35)}, [](const V& v) { return sub(v[0], v[1]); });
  add_case("mul", {rnd({2, 3, 4}, 36), rnd({4}, 37)}, [](const V& v) { return mul(v[0], v[1]); });
  add_case("mul_scalar_tensor", {rnd({2, 3}, 38), rnd({}, 39)},
           [](const V& v) { return v[0] * v[1]; });
  add_case("div", {rnd({2, 3}, 40), rnd({3}, 41, 0.5, 1.5)},
           [](const V& v) { return div(v[0], v[1]); });
  add_case("square_same_var", {rnd({3, 4}, 42)}, [](const V& v) { return v[0] * v[0]; });

  // elementwise with constants, and unary
  add_case("add_scalar", {rnd({3, 4}, 50)}, [](const V& v) { return add(v[0], 0.7); });
  add_case("sub_scalar", {rnd({3, 4}, 51)}, [](const V& v) { return sub(v[0], 0.7); });
  add_case("rsub", {rnd({3, 4}, 52)}, [](const V& v) { return rsub(0.7, v[0]); });
  add_case("mul_scalar", {rnd({3, 4}, 53)}, [](const V& v) { return mul(v[0], -1.3); });
  add_case("div_scalar", {rnd({3, 4}, 54)}, [](const V& v) { return div(v[0], 1.7); });
  add_case("rdiv", {rnd({3, 4}, 55, 0.5, 1.5)}, [](const V& v) { return rdiv(2.0, v[0]); });
  add_case("pow_3", {rnd({3, 4}, 56)}, [](const V& v) { return pow(v[0], 3.0); });
  add_case("pow_fractional", {rnd({3, 4}, 57, 0.5, 1.5)},
           [](const V& v) { return pow(v[0], -1.5); });
  add_case("neg", {rnd({3, 4}, 58)}, [](const V& v) { return -v[0]; });
  add_case("exp", {rnd({3, 4}, 59)}, [](const V& v) { return exp(v[0]); });
  add_case("log", {rnd({3, 4}, 60, 0.5, 2.0)}, [](const V& v) { return log(v[0]); });
  add_case("sqrt", {rnd({3, 4}, 61, 0.5, 2.0)}, [](const V& v) { return sqrt(v[0]); });
  add_case("tanh", {rnd({3, 4}, 62, -2.0, 2.0)}, [](const V& v) { return tanh(v[0]); });
  add_case("gelu", {rnd({3, 5}, 63, -3.0, 3.0)}, [](const V& v) { return gelu(v[0]); });
  add_case("scale", {rnd({2, 3, 4}, 64), rnd({1}, 65)},
           [](const V& v) { return scale(v[0], v[1]); });

  // reductions
  add_case("sum", {rnd({2, 3, 4}, 70)}, [](const V& v) { return sum(v[0]); });
  add_case("sum_dim", {rnd({2, 3, 4}, 71)}, [](const V& v) { return sum(v[0], 1); });
  add_case("sum_dim_keepdim", {rnd({2, 3, 4}, 72)}, [](const V& v) { return sum(v[0], -1, true); });
  add_case("mean", {rnd({2, 3, 4}, 73)}, [](const V& v) { return mean(v[0]); });
  add_case("mean_dim", {rnd({2, 3, 4}, 74)}, [](const V& v) { return mean(v[0], 0); });
  add_case("mean_dim_keepdim", {rnd({2, 3, 4}, 75)},
           [](const V& v) { return mean(v[0], 2, true); });
  add_case("max", {separated({3, 4})}, [](const V& v) { return max(v[0]); });
  add_case("max_dim", {separated({3, 4, 5})}, [](const V& v) { return max(v[0], 1); });
  add_case("max_dim_last_keepdim", {separated({3, 5})},
           [](const V& v) { return max(v[0], -1, true); });

  // softmax, LayerNorm, attention
  add_case("softmax", {rnd({3, 5}, 80, -2.0, 2.0)}, [](const V& v) { return softmax(v[0]); });
  add_case("log_softmax", {rnd({2, 3, 4}, 81, -2.0, 2.0)},
           [](const V& v) { return log_softmax(v[0]); });
  add_case("layernorm", {rnd({2, 3, 6}, 82, -2.0, 2.0), rnd({6}, 83, 0.5, 1.5), rnd({6}, 84)},
           [](const V& v) { return layernorm(v[0], v[1], v[2], 1e-5); });
  add_case("attention", {rnd({2, 2, 5, 4}, 85), rnd({2, 2, 5, 4}, 86), rnd({2, 2, 5, 4}, 87)},
           [](const V& v) { return attention(v[0], v[1], v[2]); });
  add_case("attention_cross", {rnd({1, 3, 3, 4}, 88), rnd({1, 3, 5, 4}, 89), rnd({1, 3, 5, 6}, 90)},
           [](const V& v) { return attention(v[0], v[1], v[2]); });

  // losses
  const Tensor y_all = labels({0, 5, 2, 3});
  add_case("cross_entropy", {rnd({4, 6}, 91, -2.0, 2.0)},
           [y_all](const V& v) { return cross_entropy(v[0], y_all.to(v[0].device())); });
  const Tensor y_range = labels({2, 4, 3, 2});
  add_case("cross_entropy_range", {rnd({4, 6}, 92, -2.0, 2.0)},
           [y_range](const V& v) { return cross_entropy(v[0], y_range.to(v[0].device()), 2, 5); });

  // layout
  add_case("reshape", {rnd({2, 3, 4}, 100)}, [](const V& v) {
    return reshape(v[0], {4, -1}) * reshape(v[0], {4, 6});
  });
  add_case("permute", {rnd({2, 3, 4}, 101)}, [](const V& v) { return permute(v[0], {2, 0, 1}); });
  add_case("transpose", {rnd({2, 3, 4}, 102)}, [](const V& v) { return transpose(v[0], 0, -1); });
  add_case("cat", {rnd({2, 1, 3}, 103), rnd({2, 4, 3}, 104), rnd({2, 2, 3}, 105)}, [](const V& v) {
    return cat({v[0], v[1], v[2]}, 1);
  });
  add_case("slice", {rnd({3, 5, 2}, 106)}, [](const V& v) { return slice(v[0], 1, 1, 4); });
  const Tensor idx = labels({2, 0, 2, 1});
  add_case("index_select", {rnd({3, 4}, 107)},
           [idx](const V& v) { return index_select(v[0], 0, idx.to(v[0].device())); });
  add_case("broadcast_to", {rnd({3, 1}, 108)}, [](const V& v) {
    return broadcast_to(v[0], {2, 3, 4});
  });
  add_case("patchify", {rnd({2, 3, 4, 6}, 109)}, [](const V& v) { return patchify(v[0], 2); });

  // composites
  const Tensor y_vit = labels({1, 4});
  add_case(
      "vit_block",
      {rnd({2, 5, 8}, 120), rnd({8}, 121, 0.5, 1.5), rnd({8}, 122), rnd({24, 8}, 123, -0.5, 0.5),
       rnd({24}, 124), rnd({8, 8}, 125, -0.5, 0.5), rnd({6, 8}, 126)},
      [y_vit](const V& v) { return vit_block(v, y_vit); });
  // x (2, 3, 6); qkv weight (18, 6); q factors U0 (6, 2), D0 (2, 6), U1, D1; v likewise; alphas.
  add_case("sdlora_projection",
           {rnd({2, 3, 6}, 130), rnd({18, 6}, 131), rnd({6, 2}, 132), rnd({2, 6}, 133),
            rnd({6, 2}, 134), rnd({2, 6}, 135), rnd({6, 2}, 138), rnd({2, 6}, 139),
            rnd({6, 2}, 140), rnd({2, 6}, 141), rnd({1}, 136, 0.5, 1.5), rnd({1}, 137, 0.5, 1.5)},
           [](const V& v) { return sdlora_projection(v); });
  return c;
}

std::vector<std::string> op_case_names() {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases()) names.push_back(c.name);
  return names;
}

OpCase op_case(const std::string& name) {
  for (OpCase& c : op_cases())
    if (c.name == name) return std::move(c);
  SDLORA_THROW("no op case named ", name);
}

}  // namespace sdlora::test
