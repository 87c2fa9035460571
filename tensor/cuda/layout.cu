// Layout kernels on CUDA: permute (tiled through shared memory for batched 2-D transposes),
// strided 2-D copies, index_select and its adjoint index_add. Data movers take every dtype and
// move elements as unsigned words of the element's size; index_add adds floats.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// out index (i_0..i_{ndim-1}) reads x at sum i_d * in_stride[d]; dims are already merged.
struct PermutePlan {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
};

// Index is uint32_t when every index fits (cheaper division), else int64_t.
template <typename E, typename Index>
__global__ void permute_kernel(const E* __restrict__ x, E* __restrict__ out, int64_t numel,
                               PermutePlan plan) {
  const Index n = static_cast<Index>(numel);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    Index rem = i, offset = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 1; --d) {
      if (d < plan.ndim) {
        const Index size = static_cast<Index>(plan.shape[d]);
        offset += (rem % size) * static_cast<Index>(plan.in_stride[d]);
        rem /= size;
      }
    }
    offset += rem * static_cast<Index>(plan.in_stride[0]);
    out[i] = x[offset];
  }
}

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// x (batch, rows, cols) -> out (batch, cols, rows) through a 32x32 shared-memory tile, so both
// the loads and the stores are coalesced. Block (32, 8); grid (col tiles, row tiles, batch slices).
template <typename E>
__global__ void transpose_kernel(const E* __restrict__ x, E* __restrict__ out, int64_t batch,
                                 int64_t rows, int64_t cols) {
  __shared__ E tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const E* xb = x + b * rows * cols;
    E* ob = out + b * rows * cols;
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t r = r0 + k, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[k][threadIdx.x] = xb[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t c = c0 + k, r = r0 + threadIdx.x;
      if (r < rows && c < cols) ob[c * rows + r] = tile[threadIdx.x][k];
    }
    __syncthreads();  // the tile is reused by the next batch slice
  }
}

// out (outer, m, inner)[o, k, j] = x (outer, n, inner)[o, index[k], j]; zero for an index out of
// range (never read outside x).
template <typename E, typename I, typename Index>
__global__ void index_select_kernel(const E* __restrict__ x, const I* __restrict__ index,
                                    E* __restrict__ out, int64_t numel, int64_t n, int64_t m,
                                    int64_t inner) {
  const Index total = static_cast<Index>(numel), m_ = static_cast<Index>(m);
  const Index inner_ = static_cast<Index>(inner);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const Index j = i % inner_, t = i / inner_;
    const Index k = t % m_, o = t / m_;
    const int64_t src = static_cast<int64_t>(index[k]);
    out[i] = (src >= 0 && src < n)
                 ? x[(static_cast<int64_t>(o) * n + src) * inner + static_cast<int64_t>(j)]
                 : E(0);
  }
}

// dst (outer, n, inner)[o, index[k], j] += src (outer, m, inner)[o, k, j]; repeated indices
// accumulate through atomics; indices out of range are skipped.
template <typename T, typename I, typename Index>
__global__ void index_add_kernel(const T* __restrict__ src, const I* __restrict__ index,
                                 T* __restrict__ dst, int64_t numel, int64_t n, int64_t m,
                                 int64_t inner) {
  const Index total = static_cast<Index>(numel), m_ = static_cast<Index>(m);
  const Index inner_ = static_cast<Index>(inner);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const Index j = i % inner_, t = i / inner_;
    const Index k = t % m_, o = t / m_;
    const int64_t d = static_cast<int64_t>(index[k]);
    if (d >= 0 && d < n)
      atomicAdd(dst + (static_cast<int64_t>(o) * n + d) * inner + static_cast<int64_t>(j), src[i]);
  }
}

// uint32 indexing needs every index, including i + the grid stride, below 2^32.
bool fits_uint32(int64_t numel, unsigned grid) {
  const int64_t limit = int64_t{1} << 31;
  return numel < limit && static_cast<int64_t>(grid) * kThreads < limit;
}

// The device owning a device pointer (for copies that come without a tensor).
int pointer_device(const void* p) {
  cudaPointerAttributes attr{};
  SDLORA_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged ? attr.device : 0;
}

}  // namespace

void CudaBackend::permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) {
  const int64_t numel = x.numel();
  if (numel == 0) return;
  const int nd = static_cast<int>(perm.size());
  std::vector<int64_t> in_stride(static_cast<size_t>(nd));
  for (int64_t d = nd - 1, st = 1; d >= 0; --d) {
    in_stride[static_cast<size_t>(d)] = st;
    st *= x.shape()[static_cast<size_t>(d)];
  }
  // Output dims with their input strides; size-1 dims dropped, and an output dim merged into the
  // previous one when, in x, it directly follows it.
  std::vector<int64_t> shape, stride;
  for (int i = 0; i < nd; ++i) {
    const size_t p = static_cast<size_t>(perm[static_cast<size_t>(i)]);
    const int64_t size = x.shape()[p];
    if (size == 1) continue;
    if (!shape.empty() && stride.back() == in_stride[p] * size) {
      shape.back() *= size;
      stride.back() = in_stride[p];
    } else {
      shape.push_back(size);
      stride.push_back(in_stride[p]);
    }
  }
  if (shape.empty()) {  // a single element
    shape.push_back(1);
    stride.push_back(1);
  }
  cudaStream_t s = stream_for(out);
  const int device = out.device().index;
  const size_t md = shape.size();

  // A batched 2-D transpose: out (B, C, R) from x (B, R, C), i.e. strides (R C, 1, C).
  const bool transpose2d = md == 2 && stride[1] == shape[0] && stride[0] == 1;
  const bool transpose3d =
      md == 3 && stride[1] == 1 && stride[2] == shape[1] && stride[0] == shape[1] * shape[2];
  if (transpose2d || transpose3d) {
    const int64_t batch = transpose3d ? shape[0] : 1;
    const int64_t cols = shape[md - 2], rows = shape[md - 1];  // of x
    const dim3 block(kTile, kTileRows);
    const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                    static_cast<unsigned>((rows + kTile - 1) / kTile),
                    static_cast<unsigned>(batch < 65535 ? batch : 65535));
    if ((rows + kTile - 1) / kTile <= 65535) {
      dispatch_bytes(x.dtype(), [&](auto tag) {
        using E = typename decltype(tag)::type;
        transpose_kernel<E><<<grid, block, 0, s>>>(ptr<E>(x), ptr<E>(out), batch, rows, cols);
      });
      SDLORA_CUDA_CHECK_LAUNCH();
      return;
    }
  }

  PermutePlan plan;
  plan.ndim = static_cast<int>(md);
  for (size_t i = 0; i < md; ++i) {
    plan.shape[i] = shape[i];
    plan.in_stride[i] = stride[i];
  }
  const unsigned grid = grid_for(numel, kThreads, device);
  dispatch_bytes(x.dtype(), [&](auto tag) {
    using E = typename decltype(tag)::type;
    if (fits_uint32(numel, grid))
      permute_kernel<E, uint32_t><<<grid, kThreads, 0, s>>>(ptr<E>(x), ptr<E>(out), numel, plan);
    else
      permute_kernel<E, int64_t><<<grid, kThreads, 0, s>>>(ptr<E>(x), ptr<E>(out), numel, plan);
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch,
                          int64_t row_bytes, int64_t rows) {
  if (row_bytes == 0 || rows == 0) return;
  const int device = pointer_device(dst);
  set_device(device);
  cudaStream_t s = stream(device);
  if (dst_pitch == row_bytes && src_pitch == row_bytes) {  // one contiguous block
    SDLORA_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(row_bytes * rows), cudaMemcpyDefault, s));
    return;
  }
  int max_pitch = 0;
  SDLORA_CUDA_CHECK(cudaDeviceGetAttribute(&max_pitch, cudaDevAttrMaxPitch, device));
  if (dst_pitch <= max_pitch && src_pitch <= max_pitch) {
    SDLORA_CUDA_CHECK(cudaMemcpy2DAsync(
        dst, static_cast<size_t>(dst_pitch), src, static_cast<size_t>(src_pitch),
        static_cast<size_t>(row_bytes), static_cast<size_t>(rows), cudaMemcpyDefault, s));
    return;
  }
  // Pitches beyond what the 2-D copy accepts (rows of over 2 GiB): one copy per row.
  for (int64_t r = 0; r < rows; ++r)
    SDLORA_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + r * dst_pitch,
                                      static_cast<const char*>(src) + r * src_pitch,
                                      static_cast<size_t>(row_bytes), cudaMemcpyDefault, s));
}

void CudaBackend::zero_2d(void* dst, int64_t pitch, int64_t row_bytes, int64_t rows) {
  if (row_bytes == 0 || rows == 0) return;
  const int device = pointer_device(dst);
  set_device(device);
  cudaStream_t s = stream(device);
  if (pitch == row_bytes) {  // one contiguous block
    SDLORA_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(row_bytes * rows), s));
    return;
  }
  int max_pitch = 0;
  SDLORA_CUDA_CHECK(cudaDeviceGetAttribute(&max_pitch, cudaDevAttrMaxPitch, device));
  if (pitch <= max_pitch) {
    SDLORA_CUDA_CHECK(cudaMemset2DAsync(dst, static_cast<size_t>(pitch), 0,
                                        static_cast<size_t>(row_bytes), static_cast<size_t>(rows),
                                        s));
    return;
  }
  for (int64_t r = 0; r < rows; ++r)  // pitches beyond what the 2-D memset accepts
    SDLORA_CUDA_CHECK(
        cudaMemsetAsync(static_cast<char*>(dst) + r * pitch, 0, static_cast<size_t>(row_bytes), s));
}

void CudaBackend::index_select(const Tensor& x, const Tensor& index, const AxisPlan& plan,
                               Tensor& out) {
  const int64_t numel = out.numel();
  if (numel == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(numel, kThreads, out.device().index);
  const int64_t m = index.numel();
  dispatch_bytes(x.dtype(), [&](auto etag) {
    using E = typename decltype(etag)::type;
    dispatch_index(index.dtype(), "index_select", [&](auto itag) {
      using I = typename decltype(itag)::type;
      if (fits_uint32(numel, grid))
        index_select_kernel<E, I, uint32_t><<<grid, kThreads, 0, s>>>(
            ptr<E>(x), ptr<I>(index), ptr<E>(out), numel, plan.n, m, plan.inner);
      else
        index_select_kernel<E, I, int64_t><<<grid, kThreads, 0, s>>>(
            ptr<E>(x), ptr<I>(index), ptr<E>(out), numel, plan.n, m, plan.inner);
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::index_add(const Tensor& src, const Tensor& index, const AxisPlan& plan,
                            Tensor& dst) {
  const int64_t numel = src.numel();
  if (numel == 0) return;
  cudaStream_t s = stream_for(dst);
  const unsigned grid = grid_for(numel, kThreads, dst.device().index);
  const int64_t m = index.numel();
  dispatch_float(dst.dtype(), "index_add_", [&](auto ttag) {
    using T = typename decltype(ttag)::type;
    dispatch_index(index.dtype(), "index_add_", [&](auto itag) {
      using I = typename decltype(itag)::type;
      if (fits_uint32(numel, grid))
        index_add_kernel<T, I, uint32_t><<<grid, kThreads, 0, s>>>(
            ptr<T>(src), ptr<I>(index), ptr<T>(dst), numel, plan.n, m, plan.inner);
      else
        index_add_kernel<T, I, int64_t><<<grid, kThreads, 0, s>>>(
            ptr<T>(src), ptr<I>(index), ptr<T>(dst), numel, plan.n, m, plan.inner);
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace sdlora::cuda
