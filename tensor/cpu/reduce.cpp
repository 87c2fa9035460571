// CPU reductions along one axis of x seen as (outer, n, inner): sum and mean accumulate in
// double; max and argmax pick the first maximum (a NaN counts as the maximum, as in PyTorch).
#include <cmath>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

// Index along n of the first maximum of the strided run x[0], x[stride], ...
template <typename T>
int64_t first_max(const T* x, int64_t n, int64_t stride) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; ++k) {
    const T v = x[k * stride], cur = x[best * stride];
    if (std::isnan(cur)) break;
    if (v > cur || std::isnan(v)) best = k;
  }
  return best;
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const AxisPlan& plan, Tensor& out) {
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* ov = op == ReduceOp::kArgmax ? nullptr : out.data<T>();
    int64_t* oi = op == ReduceOp::kArgmax ? out.data<int64_t>() : nullptr;
    const int64_t n = plan.n, inner = plan.inner, total = plan.outer * plan.inner;
    SDLORA_OMP_FOR(total * n)
    for (int64_t idx = 0; idx < total; ++idx) {
      const int64_t o = idx / inner, j = idx % inner;
      const T* run = xp + o * n * inner + j;  // element k of the run at run[k * inner]
      switch (op) {
        case ReduceOp::kSum:
        case ReduceOp::kMean: {
          double acc = 0.0;
          for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(run[k * inner]);
          if (op == ReduceOp::kMean) acc /= static_cast<double>(n);
          ov[idx] = static_cast<T>(acc);
          break;
        }
        case ReduceOp::kMax:
          ov[idx] = run[first_max(run, n, inner) * inner];
          break;
        case ReduceOp::kArgmax:
          oi[idx] = first_max(run, n, inner);
          break;
      }
    }
  });
}

}  // namespace sdlora::cpu
