// Low-rank updates accumulated in place into column windows of a product's output (the SD-LoRA
// up-products writing into the q and v columns of the qkv output with beta = 1), one fused node.
#include <algorithm>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace sdlora {

namespace {

// y and t seen as (M, Ny) and (M, R); part j is y[:, col_j : col_j + d_j] += t[:, t_j : t_j + r_j]
// u_j^T. Backward: dy passes through unchanged; dt[:, t_j : t_j + r_j] = dY[:, cols j] u_j and
// du_j = dY[:, cols j]^T t[:, t_j : t_j + r_j].
class LowRankColumnsNode final : public Node {
 public:
  LowRankColumnsNode(std::vector<Edge> edges, Tensor t, std::vector<Tensor> ups,
                     std::vector<LowRankColumns> parts, bool t_covered)
      : Node("add_lowrank_columns", std::move(edges)),
        t_(std::move(t)),
        ups_(std::move(ups)),
        t_covered_(t_covered) {
    for (const LowRankColumns& p : parts) {
      cols_.push_back(p.col);
      t_begin_.push_back(p.t_begin);
      up_dtypes_.push_back(p.up.dtype());
    }
  }

  std::vector<Tensor> backward(const Tensor& dy) override {
    std::vector<Tensor> g(num_inputs());
    const DType cd = t_.dtype();
    const Tensor dY = as_dtype(dy, cd);
    const int64_t Ny = dY.size(-1), R = t_.size(-1), M = t_.numel() / std::max<int64_t>(R, 1);
    if (needs_grad(0)) g[0] = dy;
    if (needs_grad(1)) {
      g[1] = t_covered_ ? Tensor::empty(t_.shape(), cd, t_.device())
                        : Tensor::zeros(t_.shape(), cd, t_.device());
    }
    for (size_t j = 0; j < ups_.size(); ++j) {
      const int64_t d = ups_[j].size(0), r = ups_[j].size(1);
      if (M == 0) {  // no rows: zero gradients
        if (needs_grad(j + 2)) g[j + 2] = Tensor::zeros({d, r}, up_dtypes_[j], dY.device());
        continue;
      }
      const MatrixView dyw{dY, cols_[j], M, d, Ny, 0, 0};
      if (needs_grad(1))
        matmul_view(dyw, false, MatrixView{ups_[j], 0, d, r, r, 0, 0}, false,
                    MatrixView{g[1], t_begin_[j], M, r, R, 0, 0}, 1, 1);
      if (needs_grad(j + 2)) {
        // bfloat16 operands write a float32 gradient directly (float32 accumulation)
        const DType out = up_dtypes_[j] == DType::kFloat32 ? DType::kFloat32 : cd;
        Tensor du = Tensor::empty({d, r}, out, dY.device());
        matmul_view(dyw, true, MatrixView{t_, t_begin_[j], M, r, R, 0, 0}, false,
                    MatrixView{du, 0, d, r, r, 0, 0}, 1, 1);
        g[j + 2] = as_dtype(du, up_dtypes_[j]);
      }
    }
    return g;
  }
  void release_saved() override {
    t_ = Tensor();
    ups_.clear();
  }

 private:
  Tensor t_;
  std::vector<Tensor> ups_;
  std::vector<int64_t> cols_, t_begin_;
  std::vector<DType> up_dtypes_;
  bool t_covered_;
};

}  // namespace

Var add_lowrank_columns_(const Var& y, const Var& t, const std::vector<LowRankColumns>& parts) {
  SDLORA_CHECK(y.defined() && t.defined() && y.ndim() >= 1 && t.ndim() == y.ndim(),
               "add_lowrank_columns_: y and t must be defined with the same rank, got ",
               y.describe(), " and ", t.describe());
  const Tensor Y = y.data();
  const DType cd = Y.dtype();
  SDLORA_CHECK(t.dtype() == cd, "add_lowrank_columns_: t ", t.describe(),
               " should have y's dtype (", Y.describe(), ")");
  for (int64_t i = 0; i + 1 < Y.ndim(); ++i)
    SDLORA_CHECK(Y.size(i) == t.size(i), "add_lowrank_columns_: y ", Y.describe(), " and t ",
                 t.describe(), " differ in their leading dimensions");
  const int64_t Ny = Y.size(-1), R = t.size(-1), M = R > 0 ? t.numel() / R : 0;
  std::vector<Var> inputs{y, t};
  std::vector<Tensor> ups;
  std::vector<std::pair<int64_t, int64_t>> t_ranges;
  int64_t covered = 0;
  for (size_t j = 0; j < parts.size(); ++j) {
    const LowRankColumns& p = parts[j];
    SDLORA_CHECK(
        p.up.defined() && p.up.ndim() == 2 && p.up.size(0) > 0 && p.up.size(1) > 0 && p.col >= 0 &&
            p.col + p.up.size(0) <= Ny && p.t_begin >= 0 && p.t_begin + p.up.size(1) <= R,
        "add_lowrank_columns_: part ", j, " (up ", p.up.describe(), ", column ", p.col,
        ", t column ", p.t_begin, ") does not fit y ", Y.describe(), " and t ", t.describe());
    for (const auto& [b, e] : t_ranges)
      SDLORA_CHECK(p.t_begin >= e || p.t_begin + p.up.size(1) <= b, "add_lowrank_columns_: part ",
                   j, " reads t columns another part reads");
    t_ranges.emplace_back(p.t_begin, p.t_begin + p.up.size(1));
    covered += p.up.size(1);
    ups.push_back(as_dtype(p.up.data(), cd));
    inputs.push_back(p.up);
  }
  Tensor out = Y;  // shares y's memory: updated in place
  const Tensor T = t.data();
  if (M > 0)
    for (size_t j = 0; j < parts.size(); ++j) {
      const int64_t d = ups[j].size(0), r = ups[j].size(1);
      matmul_view(MatrixView{T, parts[j].t_begin, M, r, R, 0, 0}, false,
                  MatrixView{ups[j], 0, d, r, r, 0, 0}, true,
                  MatrixView{out, parts[j].col, M, d, Ny, 0, 0}, 1, 1, 1.0f, 1.0f);
    }
  return record_node<LowRankColumnsNode>(std::move(out), inputs, T, std::move(ups), parts,
                                         covered == R);
}

}  // namespace sdlora
