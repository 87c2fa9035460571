// Creation kernels on CUDA: fill, arange, casts between any dtypes, Philox uniform and normal
// draws (the formulas of tensor/backend.h, so the CPU and CUDA draw the same numbers). Also
// defines cuda_backend(), the one CudaBackend instance.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"
#include "tensor/random.h"

namespace sdlora {
namespace cuda {
namespace {

// Element conversions as the CPU backend does them: bfloat16 goes through float on both sides;
// float to integer truncates through int64 (NaN -> 0, saturating at the int64 range, which the
// device conversion does by itself), then wraps to the narrower type.
template <typename Dst, typename Src>
__device__ __forceinline__ Dst convert(Src v) {
  if constexpr (std::is_same_v<Src, Dst>) {
    return v;
  } else if constexpr (std::is_same_v<Src, bf16>) {
    return convert<Dst>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<Dst, bf16>) {
    return __float2bfloat16(static_cast<float>(v));
  } else if constexpr (std::is_floating_point_v<Dst> || std::is_integral_v<Src>) {
    return static_cast<Dst>(v);
  } else {
    return static_cast<Dst>(static_cast<int64_t>(v));
  }
}

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, double value) {
  const T v = convert<T>(value);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = v;
}

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = convert<T>(start + static_cast<double>(i) * step);
}

template <typename Src, typename Dst>
__global__ void cast_kernel(const Src* __restrict__ x, Dst* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = convert<Dst>(x[i]);
}

template <typename T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                               double hi) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double u = philox_uniform(seed, offset, static_cast<uint64_t>(i));
    out[i] = from_float<T>(static_cast<float>(fma(hi - lo, u, lo)));
  }
}

template <typename T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                              double std) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double z = philox_normal(seed, offset, static_cast<uint64_t>(i));
    out[i] = from_float<T>(static_cast<float>(fma(std, z, mean)));
  }
}

}  // namespace

void CudaBackend::fill(Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(n, kThreads, out.device().index);
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T><<<grid, kThreads, 0, s>>>(ptr<T>(out), n, value);
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::arange(Tensor& out, double start, double step) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(n, kThreads, out.device().index);
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    arange_kernel<T><<<grid, kThreads, 0, s>>>(ptr<T>(out), n, start, step);
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::cast(const Tensor& x, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = stream_for(out);
  if (x.dtype() == out.dtype()) {
    if (x.raw_data() != out.raw_data())
      SDLORA_CUDA_CHECK(
          cudaMemcpyAsync(out.raw_data(), x.raw_data(), x.nbytes(), cudaMemcpyDeviceToDevice, s));
    return;
  }
  const unsigned grid = grid_for(n, kThreads, out.device().index);
  dispatch_all(x.dtype(), [&](auto src_tag) {
    using Src = typename decltype(src_tag)::type;
    dispatch_all(out.dtype(), [&](auto dst_tag) {
      using Dst = typename decltype(dst_tag)::type;
      cast_kernel<Src, Dst><<<grid, kThreads, 0, s>>>(ptr<Src>(x), ptr<Dst>(out), n);
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(n, kThreads, out.device().index);
  dispatch_float(out.dtype(), "uniform", [&](auto tag) {
    using T = typename decltype(tag)::type;
    uniform_kernel<T><<<grid, kThreads, 0, s>>>(ptr<T>(out), n, seed, offset, lo, hi);
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(n, kThreads, out.device().index);
  dispatch_float(out.dtype(), "normal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    normal_kernel<T><<<grid, kThreads, 0, s>>>(ptr<T>(out), n, seed, offset, mean, std);
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

// The one CUDA backend; its kernels queue on each device's compute stream.
Backend& cuda_backend() {
  static cuda::CudaBackend backend;
  return backend;
}

}  // namespace sdlora
