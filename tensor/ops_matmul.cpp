// Matrix products (plain, batched, mixed bf16 -> float32) and the TF32 switch: checks, shapes,
// dispatch to the backend's GEMM.
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
  SDLORA_CHECK(p.k == kb, op, ": inner dimensions differ: ", a.describe(), (ta ? " (transposed)" : ""),
               " times ", b.describe(), (tb ? " (transposed)" : ""));
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
