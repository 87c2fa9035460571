// Elementwise kernels on CUDA: unary maps, tensor-scalar ops, broadcast binary ops and the GELU
// derivative. Values are loaded as float, computed in float and stored in the tensor's dtype;
// binary ops may read and write float32 and bfloat16 in any mix (casts fused).
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// ---- the maths, one functor per op

struct NegF {
  __device__ float operator()(float x) const { return -x; }
};
struct ExpF {
  __device__ float operator()(float x) const { return expf(x); }
};
struct LogF {
  __device__ float operator()(float x) const { return logf(x); }
};
struct SqrtF {
  __device__ float operator()(float x) const { return sqrtf(x); }
};
struct TanhF {
  __device__ float operator()(float x) const { return tanhf(x); }
};
// 0.5 x (1 + erf(x / sqrt 2)), the exact GELU.
struct GeluF {
  __device__ float operator()(float x) const {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
  }
};

struct AddS {
  float s;
  __device__ float operator()(float x) const { return x + s; }
};
struct SubS {
  float s;
  __device__ float operator()(float x) const { return x - s; }
};
struct RSubS {
  float s;
  __device__ float operator()(float x) const { return s - x; }
};
struct MulS {
  float s;
  __device__ float operator()(float x) const { return x * s; }
};
struct DivS {
  float s;
  __device__ float operator()(float x) const { return x / s; }
};
struct RDivS {
  float s;
  __device__ float operator()(float x) const { return s / x; }
};
struct PowS {
  float s;
  __device__ float operator()(float x) const { return powf(x, s); }
};

struct AddF {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct SubF {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct MulF {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct DivF {
  __device__ float operator()(float a, float b) const { return a / b; }
};

// dy * d/dx gelu(x) = dy * (Phi(x) + x phi(x)).
struct GeluBackwardF {
  __device__ float operator()(float x, float dy) const {
    const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
    const float pdf = 0.39894228040143267794f * expf(-0.5f * x * x);
    return dy * (cdf + x * pdf);
  }
};

// ---- kernels

// out[i] = f(x[i]); out may alias x. With vec, x and out are 16-byte aligned and the bulk moves
// in 16-byte vectors, the tail element by element.
template <typename T, typename F>
__global__ void map_kernel(const T* x, T* out, int64_t n, bool vec, F f) {
  constexpr int N = kVecWidth<T>;
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    const int64_t nv = n / N;
    const auto* xv = reinterpret_cast<const Vec<T, N>*>(x);
    auto* ov = reinterpret_cast<Vec<T, N>*>(out);
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T, N> a = xv[i];
#pragma unroll
      for (int k = 0; k < N; ++k) a.v[k] = from_float<T>(f(to_float(a.v[k])));
      ov[i] = a;
    }
    done = nv * N;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = from_float<T>(f(to_float(x[i])));
}

// out[i] = f(a[i], b[i]) for same-shape operands; out may alias a or b.
template <typename T, typename F>
__global__ void map2_kernel(const T* a, const T* b, T* out, int64_t n, bool vec, F f) {
  constexpr int N = kVecWidth<T>;
  const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    const int64_t nv = n / N;
    const auto* av = reinterpret_cast<const Vec<T, N>*>(a);
    const auto* bv = reinterpret_cast<const Vec<T, N>*>(b);
    auto* ov = reinterpret_cast<Vec<T, N>*>(out);
    for (int64_t i = tid; i < nv; i += stride) {
      Vec<T, N> va = av[i];
      const Vec<T, N> vb = bv[i];
#pragma unroll
      for (int k = 0; k < N; ++k) va.v[k] = from_float<T>(f(to_float(va.v[k]), to_float(vb.v[k])));
      ov[i] = va;
    }
    done = nv * N;
  }
  for (int64_t i = done + tid; i < n; i += stride)
    out[i] = from_float<T>(f(to_float(a[i]), to_float(b[i])));
}

// Broadcast binary op: element i of out reads a and b at the offsets the plan gives.
// Index is uint32_t when every offset fits (cheaper division), else int64_t.
// A, B and O may differ (float32 / bfloat16): the casts are fused in the loads and the store.
template <typename A, typename B, typename O, typename Index, typename F>
__global__ void broadcast_kernel(const A* a, const B* b, O* out, BroadcastPlan plan, F f) {
  const Index n = static_cast<Index>(plan.numel);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    Index rem = i, oa = 0, ob = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 1; --d) {
      if (d < plan.ndim) {
        const Index size = static_cast<Index>(plan.shape[d]);
        const Index idx = rem % size;
        rem /= size;
        oa += idx * static_cast<Index>(plan.a_stride[d]);
        ob += idx * static_cast<Index>(plan.b_stride[d]);
      }
    }
    if (plan.ndim > 0) {  // the outermost index is what remains: no division
      oa += rem * static_cast<Index>(plan.a_stride[0]);
      ob += rem * static_cast<Index>(plan.b_stride[0]);
    }
    out[i] = from_float<O>(f(to_float(a[oa]), to_float(b[ob])));
  }
}

// ---- launchers

template <typename T, typename F>
void launch_map(const Tensor& x, Tensor& out, F f) {
  const int64_t n = x.numel();
  const bool vec = aligned16(x.raw_data()) && aligned16(out.raw_data());
  const int64_t items = vec ? n / kVecWidth<T> + kVecWidth<T> : n;
  cudaStream_t s = stream_for(out);
  map_kernel<T><<<grid_for(items, kThreads, out.device().index), kThreads, 0, s>>>(
      ptr<T>(x), ptr<T>(out), n, vec, f);
  SDLORA_CUDA_CHECK_LAUNCH();
}

template <typename T, typename F>
void launch_map2(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const int64_t n = out.numel();
  const bool vec = aligned16(a.raw_data()) && aligned16(b.raw_data()) && aligned16(out.raw_data());
  const int64_t items = vec ? n / kVecWidth<T> + kVecWidth<T> : n;
  cudaStream_t s = stream_for(out);
  map2_kernel<T><<<grid_for(items, kThreads, out.device().index), kThreads, 0, s>>>(
      ptr<T>(a), ptr<T>(b), ptr<T>(out), n, vec, f);
  SDLORA_CUDA_CHECK_LAUNCH();
}

template <typename A, typename B, typename O, typename F>
void launch_broadcast(const Tensor& a, const Tensor& b, const BroadcastPlan& plan, Tensor& out,
                      F f) {
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(plan.numel, kThreads, out.device().index);
  // uint32 indexing needs every index below 2^32, including i + grid stride.
  const int64_t limit = int64_t{1} << 31;
  if (plan.numel < limit && static_cast<int64_t>(grid) * kThreads < limit) {
    broadcast_kernel<A, B, O, uint32_t>
        <<<grid, kThreads, 0, s>>>(ptr<A>(a), ptr<B>(b), ptr<O>(out), plan, f);
  } else {
    broadcast_kernel<A, B, O, int64_t>
        <<<grid, kThreads, 0, s>>>(ptr<A>(a), ptr<B>(b), ptr<O>(out), plan, f);
  }
  SDLORA_CUDA_CHECK_LAUNCH();
}

template <typename T, typename F>
void launch_binary(const Tensor& a, const Tensor& b, const BroadcastPlan& plan, Tensor& out, F f) {
  // Same-shape contiguous operands: the vectorised map.
  if (plan.ndim == 1 && plan.a_stride[0] == 1 && plan.b_stride[0] == 1) {
    launch_map2<T>(a, b, out, f);
    return;
  }
  launch_broadcast<T, T, T>(a, b, plan, out, f);
}

// Operands and output of float32 / bfloat16 in any mix: the broadcast kernel with fused casts.
template <typename F>
void launch_mixed(const Tensor& a, const Tensor& b, const BroadcastPlan& plan, Tensor& out, F f) {
  dispatch_float(a.dtype(), "binary op", [&](auto ta) {
    dispatch_float(b.dtype(), "binary op", [&](auto tb) {
      dispatch_float(out.dtype(), "binary op", [&](auto to) {
        launch_broadcast<typename decltype(ta)::type, typename decltype(tb)::type,
                         typename decltype(to)::type>(a, b, plan, out, f);
      });
    });
  });
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "unary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case UnaryOp::kNeg:
        return launch_map<T>(x, out, NegF{});
      case UnaryOp::kExp:
        return launch_map<T>(x, out, ExpF{});
      case UnaryOp::kLog:
        return launch_map<T>(x, out, LogF{});
      case UnaryOp::kSqrt:
        return launch_map<T>(x, out, SqrtF{});
      case UnaryOp::kTanh:
        return launch_map<T>(x, out, TanhF{});
      case UnaryOp::kGelu:
        return launch_map<T>(x, out, GeluF{});
    }
    SDLORA_THROW("unary: unknown op ", static_cast<int>(op));
  });
}

void CudaBackend::scalar(ScalarOp op, const Tensor& x, double s, Tensor& out) {
  if (x.numel() == 0) return;
  const float v = static_cast<float>(s);
  dispatch_float(x.dtype(), "scalar op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case ScalarOp::kAdd:
        return launch_map<T>(x, out, AddS{v});
      case ScalarOp::kSub:
        return launch_map<T>(x, out, SubS{v});
      case ScalarOp::kRSub:
        return launch_map<T>(x, out, RSubS{v});
      case ScalarOp::kMul:
        return launch_map<T>(x, out, MulS{v});
      case ScalarOp::kDiv:
        return launch_map<T>(x, out, DivS{v});
      case ScalarOp::kRDiv:
        return launch_map<T>(x, out, RDivS{v});
      case ScalarOp::kPow:
        return launch_map<T>(x, out, PowS{v});
    }
    SDLORA_THROW("scalar: unknown op ", static_cast<int>(op));
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const BroadcastPlan& plan,
                         Tensor& out) {
  if (plan.numel == 0) return;
  if (a.dtype() != b.dtype() || a.dtype() != out.dtype()) {
    switch (op) {
      case BinaryOp::kAdd:
        return launch_mixed(a, b, plan, out, AddF{});
      case BinaryOp::kSub:
        return launch_mixed(a, b, plan, out, SubF{});
      case BinaryOp::kMul:
        return launch_mixed(a, b, plan, out, MulF{});
      case BinaryOp::kDiv:
        return launch_mixed(a, b, plan, out, DivF{});
    }
    SDLORA_THROW("binary: unknown op ", static_cast<int>(op));
  }
  dispatch_float(a.dtype(), "binary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case BinaryOp::kAdd:
        return launch_binary<T>(a, b, plan, out, AddF{});
      case BinaryOp::kSub:
        return launch_binary<T>(a, b, plan, out, SubF{});
      case BinaryOp::kMul:
        return launch_binary<T>(a, b, plan, out, MulF{});
      case BinaryOp::kDiv:
        return launch_binary<T>(a, b, plan, out, DivF{});
    }
    SDLORA_THROW("binary: unknown op ", static_cast<int>(op));
  });
}

void CudaBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "gelu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map2<T>(x, dy, dx, GeluBackwardF{});
  });
}

}  // namespace sdlora::cuda
