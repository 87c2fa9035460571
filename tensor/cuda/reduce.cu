// Reductions on CUDA (sum, mean, max, argmax) of x seen as (outer, n, inner) along n. Contiguous
// rows (inner == 1) get a block per row; otherwise threads run over inner and slices of n. When
// there are too few rows to fill the device, each row is split into chunks reduced in parallel
// and a second kernel combines the chunks. Float accumulation; the order is fixed by the launch
// configuration, so results are deterministic.
#include <cfloat>

#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// ---- reducers: identity, element, combine, and how the final value is stored

struct SumR {
  using Acc = float;
  __device__ static Acc identity() { return 0.0f; }
  __device__ static Acc make(float v, int64_t) { return v; }
  __device__ Acc operator()(Acc a, Acc b) const { return a + b; }
  template <typename O>
  __device__ static O finish(Acc a, float divisor) {
    return from_float<O>(a / divisor);  // divisor: 1 for sum, n for mean
  }
};

struct MaxR {
  using Acc = float;
  __device__ static Acc identity() { return -INFINITY; }
  __device__ static Acc make(float v, int64_t) { return v; }
  __device__ Acc operator()(Acc a, Acc b) const { return MaxOp{}(a, b); }
  template <typename O>
  __device__ static O finish(Acc a, float) {
    return from_float<O>(a);
  }
};

// The largest value; NaN counts as the largest; ties keep the smaller index (the first maximum).
struct ArgmaxR {
  using Acc = ValIdx;
  __device__ static Acc identity() { return {-INFINITY, INT64_MAX}; }
  __device__ static Acc make(float v, int64_t i) { return {v, i}; }
  __device__ Acc operator()(Acc a, Acc b) const {
    const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
  }
  template <typename O>
  __device__ static O finish(Acc a, float) {
    return static_cast<O>(a.i);
  }
};

// Where a block's result goes: the final output (row r), or slot (r, chunk) of the partials.
template <typename R, typename O>
struct FinalOut {
  O* out;
  float divisor;
  __device__ void store(int64_t row, int64_t, typename R::Acc a) const {
    out[row] = R::template finish<O>(a, divisor);
  }
};
template <typename R>
struct PartialOut {
  typename R::Acc* partial;
  int64_t chunks;
  __device__ void store(int64_t row, int64_t chunk, typename R::Acc a) const {
    partial[row * chunks + chunk] = a;
  }
};

// ---- kernels

// x (rows, n) contiguous: block (blockIdx.x + k gridDim.x) reduces chunk blockIdx.y of that row,
// elements [chunk * chunk_len, min(n, (chunk + 1) * chunk_len)).
template <typename T, typename R, typename Out>
__global__ void reduce_rows_kernel(const T* __restrict__ x, int64_t rows, int64_t n,
                                   int64_t chunk_len, Out out) {
  using Acc = typename R::Acc;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_len;
  const int64_t end = min(n, begin + chunk_len);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    Acc acc = R::identity();
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x)
      acc = R{}(acc, R::make(to_float(xr[j]), j));
    acc = block_reduce(acc, R{}, R::identity());
    if (threadIdx.x == 0) out.store(row, blockIdx.y, acc);
  }
}

// x (outer, n, inner) with inner > 1: a block is blockDim.x consecutive columns of one outer
// index (coalesced loads) times blockDim.y slices of chunk blockIdx.y of n; the slices are then
// combined through shared memory. blockDim.x * blockDim.y == kThreads, blockDim.y a power of 2.
template <typename T, typename R, typename Out>
__global__ void reduce_strided_kernel(const T* __restrict__ x, int64_t outer, int64_t n,
                                      int64_t inner, int64_t chunk_len, Out out) {
  using Acc = typename R::Acc;
  __shared__ Acc slots[kThreads];
  const int64_t tiles_per_outer = (inner + blockDim.x - 1) / blockDim.x;
  const int64_t tiles = outer * tiles_per_outer;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_len;
  const int64_t end = min(n, begin + chunk_len);
  const int slot = threadIdx.y * blockDim.x + threadIdx.x;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t o = tile / tiles_per_outer;
    const int64_t j = (tile % tiles_per_outer) * blockDim.x + threadIdx.x;
    Acc acc = R::identity();
    if (j < inner) {
      const T* xo = x + o * n * inner + j;
      for (int64_t r = begin + threadIdx.y; r < end; r += blockDim.y)
        acc = R{}(acc, R::make(to_float(xo[r * inner]), r));
    }
    slots[slot] = acc;
    __syncthreads();
    for (int half = blockDim.y / 2; half > 0; half >>= 1) {
      if (threadIdx.y < half) slots[slot] = R{}(slots[slot], slots[slot + half * blockDim.x]);
      __syncthreads();
    }
    if (threadIdx.y == 0 && j < inner) out.store(o * inner + j, blockIdx.y, slots[threadIdx.x]);
    __syncthreads();  // slots are reused by the next tile
  }
}

// Second pass: partial (rows, chunks) -> out (rows), a block per row.
template <typename R, typename O>
__global__ void reduce_partials_kernel(const typename R::Acc* __restrict__ partial, int64_t rows,
                                       int64_t chunks, FinalOut<R, O> out) {
  using Acc = typename R::Acc;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    Acc acc = R::identity();
    for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x)
      acc = R{}(acc, partial[row * chunks + c]);
    acc = block_reduce(acc, R{}, R::identity());
    if (threadIdx.x == 0) out.store(row, 0, acc);
  }
}

// ---- launchers

constexpr int64_t kMaxChunks = 1024;
constexpr int64_t kMinChunkPerThread = 16;  // elements per thread below which splitting stops

// Chunks per row so that `units` independent blocks become about `target`, each thread keeping
// at least kMinChunkPerThread elements.
int64_t choose_chunks(int64_t units, int64_t n, int64_t threads_along_n, int64_t target) {
  if (units >= target) return 1;
  int64_t chunks = (target + units - 1) / units;
  const int64_t by_size = n / (threads_along_n * kMinChunkPerThread);
  if (chunks > by_size) chunks = by_size;
  if (chunks > kMaxChunks) chunks = kMaxChunks;
  return chunks < 1 ? 1 : chunks;
}

template <typename T, typename R, typename O>
void run_reduce(const Tensor& x, const AxisPlan& plan, Tensor& out, float divisor) {
  using Acc = typename R::Acc;
  const int device = out.device().index;
  cudaStream_t s = stream_for(out);
  const int64_t rows = plan.outer * plan.inner;
  const int64_t target = static_cast<int64_t>(sm_count(device)) * 4;
  const int64_t grid_cap = static_cast<int64_t>(sm_count(device)) * 64;
  const FinalOut<R, O> final_out{ptr<O>(out), divisor};

  // Block shape and the number of independent blocks before splitting n.
  dim3 block;
  int64_t units;
  if (plan.inner == 1) {
    block = dim3(row_threads(plan.n, 8, 512));
    units = plan.outer;
  } else {
    int tx = 1;
    while (tx < kWarp && tx < plan.inner) tx *= 2;
    block = dim3(tx, kThreads / tx);
    units = plan.outer * ((plan.inner + tx - 1) / tx);
  }
  int64_t chunks = choose_chunks(units, plan.n, block.y * (plan.inner == 1 ? block.x : 1), target);
  const int64_t chunk_len = (plan.n + chunks - 1) / chunks;
  chunks = (plan.n + chunk_len - 1) / chunk_len;
  const dim3 grid(static_cast<unsigned>(units < grid_cap ? units : grid_cap),
                  static_cast<unsigned>(chunks));

  auto launch = [&](auto sink) {
    if (plan.inner == 1)
      reduce_rows_kernel<T, R>
          <<<grid, block, 0, s>>>(ptr<T>(x), plan.outer, plan.n, chunk_len, sink);
    else
      reduce_strided_kernel<T, R>
          <<<grid, block, 0, s>>>(ptr<T>(x), plan.outer, plan.n, plan.inner, chunk_len, sink);
    SDLORA_CUDA_CHECK_LAUNCH();
  };

  if (chunks == 1) {
    launch(final_out);
    return;
  }
  // Two passes through a scratch buffer from the caching pool; freeing it here is safe, since
  // the next user of the block queues its work behind these kernels on the same stream.
  Tensor scratch = Tensor::empty({rows * chunks * static_cast<int64_t>(sizeof(Acc))}, DType::kUInt8,
                                 out.device());
  Acc* partial = ptr<Acc>(scratch);
  launch(PartialOut<R>{partial, chunks});
  const int threads = row_threads(chunks, 4, 256);
  reduce_partials_kernel<R, O>
      <<<static_cast<unsigned>(rows < grid_cap ? rows : grid_cap), threads, 0, s>>>(
          partial, rows, chunks, final_out);
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const AxisPlan& plan, Tensor& out) {
  if (out.numel() == 0) return;
  if (plan.n == 0) {  // the empty sum (the ops layer allows no other empty reduction)
    fill(out, 0.0);
    return;
  }
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (op == ReduceOp::kArgmax) return run_reduce<T, ArgmaxR, int64_t>(x, plan, out, 1.0f);
    // Sum and mean may write another float dtype than they read (the cast fused in the store).
    dispatch_float(out.dtype(), "reduce", [&](auto out_tag) {
      using O = typename decltype(out_tag)::type;
      switch (op) {
        case ReduceOp::kSum:
          return run_reduce<T, SumR, O>(x, plan, out, 1.0f);
        case ReduceOp::kMean:
          return run_reduce<T, SumR, O>(x, plan, out, static_cast<float>(plan.n));
        case ReduceOp::kMax:
          return run_reduce<T, MaxR, O>(x, plan, out, 1.0f);
        case ReduceOp::kArgmax:
          break;
      }
      SDLORA_THROW("reduce: unknown op ", static_cast<int>(op));
    });
  });
}

}  // namespace sdlora::cuda
