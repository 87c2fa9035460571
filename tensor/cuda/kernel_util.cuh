// Helpers shared by the CUDA kernels (internal to tensor/cuda/): launch configuration, dtype
// dispatch, loads and stores through float, and warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/tensor.h"

namespace sdlora::cuda {

using bf16 = __nv_bfloat16;

// ---- host side: launch configuration

constexpr int kThreads = 256;  // default block size of the elementwise kernels
constexpr int kWarp = 32;

// Streaming multiprocessors of a device, queried once per device (the first 64 devices).
inline int sm_count(int device) {
  static std::array<std::atomic<int>, 64> cache{};
  const bool cached = device >= 0 && device < static_cast<int>(cache.size());
  int n = cached ? cache[static_cast<size_t>(device)].load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    SDLORA_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    if (cached) cache[static_cast<size_t>(device)].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Blocks for a grid-stride loop over n items: enough to fill the device, never more than needed.
inline unsigned grid_for(int64_t n, int threads, int device) {
  const int64_t want = (n + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(sm_count(device)) * 32;
  const int64_t g = want < cap ? want : cap;
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

// Makes t's device current and returns its compute stream.
inline cudaStream_t stream_for(const Tensor& t) {
  const int index = t.device().index;
  set_device(index);
  return stream(index);
}

inline int round_up(int64_t v, int64_t m) { return static_cast<int>((v + m - 1) / m * m); }

// Threads for a block that owns one row of `cols` elements: a multiple of 32, at least 32, about
// `per_thread` elements each, at most `max_threads`.
inline int row_threads(int64_t cols, int per_thread, int max_threads) {
  const int64_t want = (cols + per_thread - 1) / per_thread;
  if (want >= max_threads) return max_threads;
  return want <= kWarp ? kWarp : round_up(want, kWarp);
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// ---- host side: dtype dispatch. f receives a Tag<T>; `using T = typename decltype(tag)::type`.

template <typename T>
struct Tag {
  using type = T;
};

// Float kernels: float32 and bfloat16.
template <typename F>
void dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      f(Tag<float>{});
      return;
    case DType::kBFloat16:
      f(Tag<bf16>{});
      return;
    default:
      SDLORA_THROW(op, ": CUDA float kernels take float32 or bfloat16, got ", dtype_name(dtype));
  }
}

// Every dtype.
template <typename F>
void dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      f(Tag<float>{});
      return;
    case DType::kBFloat16:
      f(Tag<bf16>{});
      return;
    case DType::kFloat64:
      f(Tag<double>{});
      return;
    case DType::kInt32:
      f(Tag<int32_t>{});
      return;
    case DType::kInt64:
      f(Tag<int64_t>{});
      return;
    case DType::kUInt8:
      f(Tag<uint8_t>{});
      return;
  }
  SDLORA_THROW("unknown dtype ", static_cast<int>(dtype));
}

// Index tensors: int32 and int64.
template <typename F>
void dispatch_index(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kInt32:
      f(Tag<int32_t>{});
      return;
    case DType::kInt64:
      f(Tag<int64_t>{});
      return;
    default:
      SDLORA_THROW(op, ": index tensors are int32 or int64, got ", dtype_name(dtype));
  }
}

// Layout kernels move elements as unsigned words of the element's size.
template <typename F>
void dispatch_bytes(DType dtype, F&& f) {
  switch (dtype_size(dtype)) {
    case 1:
      f(Tag<uint8_t>{});
      return;
    case 2:
      f(Tag<uint16_t>{});
      return;
    case 4:
      f(Tag<uint32_t>{});
      return;
    case 8:
      f(Tag<uint64_t>{});
      return;
    default:
      SDLORA_THROW("no CUDA layout kernel for elements of ", dtype_size(dtype), " bytes");
  }
}

// ---- device side: loads and stores through float

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(bf16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float v) {
  return __float2bfloat16(v);  // round to nearest even, as the host's BFloat16
}

// Aligned vector of N elements for 16-byte loads and stores.
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};
template <typename T>
constexpr int kVecWidth = 16 / sizeof(T);

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- device side: reductions. Block reductions need blockDim.x a multiple of 32 (at most 1024)
// and every thread of the block to call them; every thread receives the result.

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
// NaN wins, as in PyTorch.
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const {
    return (a > b || a != a) ? a : b;
  }
};
struct Sum2Op {
  __device__ __forceinline__ float2 operator()(float2 a, float2 b) const {
    return make_float2(a.x + b.x, a.y + b.y);
  }
};

// A value and its index along the reduced dimension (argmax).
struct ValIdx {
  float v;
  int64_t i;
};

__device__ __forceinline__ float shfl_xor(float v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ float2 shfl_xor(float2 v, int mask) {
  return make_float2(shfl_xor(v.x, mask), shfl_xor(v.y, mask));
}
__device__ __forceinline__ ValIdx shfl_xor(ValIdx v, int mask) {
  return {shfl_xor(v.v, mask),
          static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v.i), mask))};
}

// Butterfly reduction: every lane of the warp receives the result.
template <typename V, typename Op>
__device__ __forceinline__ V warp_reduce(V v, Op op) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = op(v, shfl_xor(v, offset));
  return v;
}

template <typename V, typename Op>
__device__ __forceinline__ V block_reduce(V v, Op op, V identity) {
  __shared__ V partial[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call may still be reading `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / kWarp;
  v = lane < nwarps ? partial[lane] : identity;
  return warp_reduce(v, op);  // every warp reduces the partials, so every thread has the result
}

// A reduction over the threads that share a row: one warp (kWarpRow) or the whole block.
template <bool kWarpRow, typename V, typename Op>
__device__ __forceinline__ V row_reduce(V v, Op op, V identity) {
  if constexpr (kWarpRow)
    return warp_reduce(v, op);
  else
    return block_reduce(v, op, identity);
}

// Row kernels run with either a warp per row (short rows) or a block per row (long rows).
// RowLayout gives each thread its first row, its row step, and its lane and width in the row.
template <bool kWarpRow>
struct RowLayout {
  int64_t first_row, row_step;
  int lane, width;
  __device__ __forceinline__ RowLayout() {
    if constexpr (kWarpRow) {
      const int warps = blockDim.x / kWarp;
      first_row = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / kWarp;
      row_step = static_cast<int64_t>(gridDim.x) * warps;
      lane = threadIdx.x % kWarp;
      width = kWarp;
    } else {
      first_row = blockIdx.x;
      row_step = gridDim.x;
      lane = threadIdx.x;
      width = blockDim.x;
    }
  }
};

// Rows up to this length get a warp each.
constexpr int64_t kWarpRowMax = 1024;

// Launches a row kernel over `rows` rows of `cols`: kernel<true> (a warp per row, 8 rows per
// block) for short rows, kernel<false> (a block per row) otherwise. launch(grid, block, warp_row).
template <typename Launch>
void launch_rows(int64_t rows, int64_t cols, int device, Launch&& launch) {
  const int64_t cap = static_cast<int64_t>(sm_count(device)) * 64;
  if (cols <= kWarpRowMax) {
    const int64_t rows_per_block = kThreads / kWarp;
    const int64_t want = (rows + rows_per_block - 1) / rows_per_block;
    launch(static_cast<unsigned>(want < cap ? want : cap), kThreads, true);
  } else {
    launch(static_cast<unsigned>(rows < cap ? rows : cap), row_threads(cols, 8, 1024), false);
  }
}

}  // namespace sdlora::cuda
