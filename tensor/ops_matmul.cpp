// Matrix products (plain, batched, mixed bf16 -> float32, on strided views) and the TF32 switch:
// checks, shapes, dispatch to the backend's GEMM.
#include "tensor/ops_common.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

using namespace detail;

namespace {

struct MatmulShape {
  GemmPlan plan;
  Shape out;
};

MatmulShape matmul_shape(const Tensor& a, const Tensor& b, bool ta, bool tb, const char* op) {
  check_defined(a, op, "a");
  check_defined(b, op, "b");
  check_same_device(a, b, op);
  check_same_dtype(a, b, op);
  SDLORA_CHECK(a.ndim() >= 2 && b.ndim() >= 2, op, ": operands need at least 2 dims, got ",
               a.describe(), " and ", b.describe());
  const int64_t am = a.size(-2), ak = a.size(-1), bk = b.size(-2), bn = b.size(-1);
  GemmPlan p;
  p.trans_a = ta;
  p.trans_b = tb;
  p.m = ta ? ak : am;
  p.k = ta ? am : ak;
  const int64_t kb = tb ? bn : bk;
  p.n = tb ? bk : bn;
  SDLORA_CHECK(p.k == kb, op, ": inner dimensions differ: ", a.describe(),
               (ta ? " (transposed)" : ""), " times ", b.describe(), (tb ? " (transposed)" : ""));
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  const Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  SDLORA_CHECK(batch_a.empty() || batch_b.empty() || batch_a == batch_b, op,
               ": batch dimensions differ: ", a.describe(), " and ", b.describe());
  const Shape& batch = batch_a.empty() ? batch_b : batch_a;
  p.batch = shape_numel(batch);
  p.stride_a = batch_a.empty() ? 0 : p.m * p.k;
  p.stride_b = batch_b.empty() ? 0 : p.k * p.n;
  p.stride_c = p.m * p.n;
  // A batched a times a shared b without transposing a is one tall product.
  if (p.batch > 1 && p.stride_b == 0 && !ta) {
    p.m *= p.batch;
    p.batch = 1;
    p.stride_a = p.stride_c = 0;
  }
  MatmulShape r{p, batch};
  r.out.push_back(ta ? ak : am);
  r.out.push_back(p.n);
  return r;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  MatmulShape s = matmul_shape(a, b, trans_a, trans_b, "matmul");
  Tensor c = Tensor::empty(s.out, a.dtype(), a.device());
  matmul_out(a, b, c, trans_a, trans_b);
  return c;
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, DType out) {
  MatmulShape s = matmul_shape(a, b, trans_a, trans_b, "matmul");
  Tensor c = Tensor::empty(s.out, out, a.device());
  matmul_out(a, b, c, trans_a, trans_b);
  return c;
}

void matmul_out(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b,
                float alpha, float beta) {
  MatmulShape s = matmul_shape(a, b, trans_a, trans_b, "matmul");
  check_defined(c, "matmul", "c");
  check_same_device(a, c, "matmul");
  // bfloat16 operands may write a float32 result (float32 accumulation, no rounding to bf16).
  const bool wide_out = a.dtype() == DType::kBFloat16 && c.dtype() == DType::kFloat32;
  if (!wide_out) check_same_dtype(a, c, "matmul");
  SDLORA_CHECK(c.shape() == s.out, "matmul: output ", c.describe(), " should have shape ",
               shape_str(s.out));
  Backend& be = float_backend(a, "matmul");
  s.plan.alpha = alpha;
  s.plan.beta = beta;
  if (c.numel() == 0) return;
  if (needs_cpu_upcast(a) && wide_out) {  // float32 accumulation straight into c
    be.gemm(cast(a, DType::kFloat32), cast(b, DType::kFloat32), c, s.plan);
    return;
  }
  if (needs_cpu_upcast(a)) {
    Tensor cf = cast(c, DType::kFloat32);
    be.gemm(cast(a, DType::kFloat32), cast(b, DType::kFloat32), cf, s.plan);
    c.copy_(cast(cf, c.dtype()));
    return;
  }
  be.gemm(a, b, c, s.plan);
}

// ---- strided views

namespace {

int64_t view_last(const MatrixView& v, int64_t outer, int64_t batch) {
  return v.offset + (outer - 1) * v.outer_stride + (batch - 1) * v.batch_stride +
         (v.rows - 1) * v.ld + v.cols - 1;
}

void check_view(const MatrixView& v, int64_t outer, int64_t batch, const char* name) {
  check_defined(v.base, "matmul_view", name);
  SDLORA_CHECK(v.rows > 0 && v.cols > 0 && v.ld >= v.cols && v.offset >= 0 && v.outer_stride >= 0 &&
                   v.batch_stride >= 0,
               "matmul_view: ", name, " (", v.rows, " x ", v.cols, ", ld ", v.ld, ", offset ",
               v.offset, ", strides ", v.outer_stride, ", ", v.batch_stride,
               ") needs positive sizes, ld >= cols and non-negative offset and strides");
  SDLORA_CHECK(view_last(v, outer, batch) < v.base.numel(), "matmul_view: ", name, " (", v.rows,
               " x ", v.cols, ", ld ", v.ld, ", offset ", v.offset, ", strides ", v.outer_stride,
               ", ", v.batch_stride, ", ", outer, " x ", batch, " matrices) reaches element ",
               view_last(v, outer, batch), " of ", v.base.describe());
}

// The view's base from its offset on, as a flat tensor sharing storage.
Tensor view_data(const MatrixView& v) {
  const int64_t n = v.base.numel();
  return v.base.reshape({n}).narrow(v.offset, n - v.offset);
}

bool views_overlap(const MatrixView& c, const MatrixView& x, int64_t outer, int64_t batch) {
  if (c.base.storage() != x.base.storage()) return false;
  const auto start = [](const MatrixView& v) {
    return static_cast<const char*>(v.base.raw_data()) +
           v.offset * static_cast<int64_t>(dtype_size(v.base.dtype()));
  };
  const auto end = [&](const MatrixView& v) {
    return start(v) + (view_last(v, outer, batch) - v.offset + 1) *
                          static_cast<int64_t>(dtype_size(v.base.dtype()));
  };
  return start(c) < end(x) && start(x) < end(c);
}

}  // namespace

void matmul_view(const MatrixView& a, bool trans_a, const MatrixView& b, bool trans_b,
                 const MatrixView& c, int64_t outer, int64_t batch, float alpha, float beta) {
  SDLORA_CHECK(outer > 0 && batch > 0, "matmul_view: ", outer, " x ", batch,
               " matrices; both counts must be positive");
  check_view(a, outer, batch, "a");
  check_view(b, outer, batch, "b");
  check_view(c, outer, batch, "c");
  check_same_device(a.base, b.base, "matmul_view");
  check_same_device(a.base, c.base, "matmul_view");
  check_same_dtype(a.base, b.base, "matmul_view");
  const bool wide_out = a.base.dtype() == DType::kBFloat16 && c.base.dtype() == DType::kFloat32;
  if (!wide_out) check_same_dtype(a.base, c.base, "matmul_view");
  GemmPlan p;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.m = trans_a ? a.cols : a.rows;
  p.k = trans_a ? a.rows : a.cols;
  p.n = trans_b ? b.rows : b.cols;
  const int64_t kb = trans_b ? b.cols : b.rows;
  SDLORA_CHECK(p.k == kb && c.rows == p.m && c.cols == p.n, "matmul_view: op(a) is ", p.m, " x ",
               p.k, ", op(b) ", kb, " x ", p.n, " and c ", c.rows, " x ", c.cols,
               "; they do not fit");
  SDLORA_CHECK((outer == 1 || c.outer_stride > 0) && (batch == 1 || c.batch_stride > 0),
               "matmul_view: c's batch strides (", c.outer_stride, ", ", c.batch_stride,
               ") would write one matrix for several products");
  SDLORA_CHECK(!views_overlap(c, a, outer, batch) && !views_overlap(c, b, outer, batch),
               "matmul_view: c overlaps an operand");
  p.lda = a.ld;
  p.ldb = b.ld;
  p.ldc = c.ld;
  p.outer = outer;
  p.batch = batch;
  p.outer_a = a.outer_stride;
  p.outer_b = b.outer_stride;
  p.outer_c = c.outer_stride;
  p.stride_a = a.batch_stride;
  p.stride_b = b.batch_stride;
  p.stride_c = c.batch_stride;
  p.alpha = alpha;
  p.beta = beta;
  Backend& be = float_backend(a.base, "matmul_view");
  Tensor cd = view_data(c);
  if (needs_cpu_upcast(a.base)) {  // CPU bfloat16: float32 products, c rounded once
    const Tensor af = cast(view_data(a), DType::kFloat32), bf = cast(view_data(b), DType::kFloat32);
    if (wide_out) {
      be.gemm(af, bf, cd, p);
      return;
    }
    Tensor cf = cast(cd, DType::kFloat32);
    be.gemm(af, bf, cf, p);
    cd.copy_(cast(cf, cd.dtype()));  // untouched elements round-trip exactly
    return;
  }
  be.gemm(view_data(a), view_data(b), cd, p);
}

void set_allow_tf32(bool allow) {
#ifdef SDLORA_WITH_CUDA
  cuda::set_allow_tf32(allow);
#else
  (void)allow;
#endif
}

bool allow_tf32() {
#ifdef SDLORA_WITH_CUDA
  return cuda::allow_tf32();
#else
  return false;
#endif
}

}  // namespace sdlora
