// Per-device CUDA state, created on first use: stream, library handles, memory pools.
#include "tensor/cuda/context.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tensor/cuda/check.h"

namespace sdlora::cuda {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

namespace {

// cudaMalloc, allowed while this thread records a graph: the allocation is not a stream operation,
// and the blocks stay with the graph's private pool (the caching allocators of graph-capturing
// frameworks switch the thread to the relaxed capture mode the same way).
void* raw_device_malloc(int index, size_t bytes) {
  set_device(index);
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  void* p = nullptr;
  const cudaError_t st = cudaMalloc(&p, bytes);
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky out-of-memory error
    return nullptr;
  }
  return p;
}

std::unique_ptr<CachingPool> make_device_pool(int index, const std::string& name) {
  return std::make_unique<CachingPool>(
      name, [index](size_t bytes) { return raw_device_malloc(index, bytes); },
      [index](void* p) {
        set_device(index);
        (void)cudaFree(p);
      },
      /*cache=*/true, /*exact=*/CachingPool::caching_disabled_by_environment());
}

struct DeviceContext {
  int index = 0;
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;
#ifdef SDLORA_WITH_CUDNN
  cudnnHandle_t cudnn = nullptr;
#endif
  std::unique_ptr<CachingPool> pool;
  // Private pools of recorded graphs; a retired one (its graph gone) is dropped once empty.
  struct GraphPoolEntry {
    std::unique_ptr<CachingPool> pool;
    bool retired = false;
  };
  std::mutex graph_mu;
  std::vector<GraphPoolEntry> graph_pools;
  std::atomic<int> graph_pool_count{0};  // graph_pools.size(), read without the lock
  // The most (live bytes of the device pool + everything the graph pools hold) at any allocation.
  std::atomic<int64_t> combined_peak{0};
  std::once_flag stream_once, copy_stream_once, cublas_once, cudnn_once;
};

// The graph pool this thread records into, per device (nullptr: none).
thread_local std::vector<CachingPool*> t_capture_pool;

// Contexts are never destroyed: handles must outlive every static tensor, and the driver
// reclaims everything at process exit.
std::vector<DeviceContext*>& contexts() {
  static std::vector<DeviceContext*>* all = [] {
    auto* v = new std::vector<DeviceContext*>();
    const int n = device_count();
    for (int i = 0; i < n; ++i) {
      auto* ctx = new DeviceContext();
      ctx->index = i;
      ctx->pool = make_device_pool(i, "cuda:" + std::to_string(i));
      v->push_back(ctx);
    }
    return v;
  }();
  return *all;
}

DeviceContext& context(int index) {
  auto& all = contexts();
  SDLORA_CHECK(index >= 0 && index < static_cast<int>(all.size()), "no CUDA device cuda:", index,
               " (", all.size(), " available)");
  return *all[index];
}

std::atomic<bool> g_allow_tf32{false};

}  // namespace

const InitStatus& init_status() {
  static const InitStatus status = [] {
    InitStatus st;
    (void)cudaDriverGetVersion(&st.driver_version);  // 0 when no driver is installed
    (void)cudaRuntimeGetVersion(&st.runtime_version);
    int n = 0;
    st.error = cudaGetDeviceCount(&n);
    if (st.error == cudaSuccess) {
      st.device_count = n;
    } else {
      (void)cudaGetLastError();  // the failure is kept in `error`, not left for the next check
    }
    return st;
  }();
  return status;
}

int device_count() { return init_status().device_count; }

void set_device(int index) {
  thread_local int current = -1;
  if (current == index) return;
  SDLORA_CUDA_CHECK(cudaSetDevice(index));
  current = index;
}

cudaStream_t stream(int index) {
  DeviceContext& ctx = context(index);
  std::call_once(ctx.stream_once, [&] {
    set_device(index);
    SDLORA_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  });
  return ctx.stream;
}

cudaStream_t copy_stream(int index) {
  DeviceContext& ctx = context(index);
  std::call_once(ctx.copy_stream_once, [&] {
    set_device(index);
    SDLORA_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx.copy_stream, cudaStreamNonBlocking));
  });
  return ctx.copy_stream;
}

cublasHandle_t cublas(int index) {
  DeviceContext& ctx = context(index);
  std::call_once(ctx.cublas_once, [&] {
    set_device(index);
    SDLORA_CUBLAS_CHECK(cublasCreate(&ctx.cublas));
    SDLORA_CUBLAS_CHECK(cublasSetStream(ctx.cublas, stream(index)));
    // A workspace of our own (what cuBLAS asks for on Hopper), so that no product allocates while
    // a graph is being recorded; never freed, like the handle.
    constexpr size_t kCublasWorkspace = size_t{32} << 20;
    SDLORA_CUDA_CHECK(cudaMalloc(&ctx.cublas_workspace, kCublasWorkspace));
    SDLORA_CUBLAS_CHECK(cublasSetWorkspace(ctx.cublas, ctx.cublas_workspace, kCublasWorkspace));
  });
  return ctx.cublas;
}

#ifdef SDLORA_WITH_CUDNN
cudnnHandle_t cudnn(int index) {
  DeviceContext& ctx = context(index);
  std::call_once(ctx.cudnn_once, [&] {
    set_device(index);
    SDLORA_CUDNN_CHECK(cudnnCreate(&ctx.cudnn));
    SDLORA_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, stream(index)));
  });
  return ctx.cudnn;
}
#endif

void synchronize(int index) {
  set_device(index);
  SDLORA_CUDA_CHECK(cudaStreamSynchronize(stream(index)));
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

CachingPool& device_pool(int index) { return *context(index).pool; }

namespace {
CachingPool* capture_pool(int index) {
  return index < static_cast<int>(t_capture_pool.size()) ? t_capture_pool[index] : nullptr;
}

// Drops retired graph pools that hold no live block (caller holds graph_mu).
void drop_empty_retired(DeviceContext& ctx) {
  auto& pools = ctx.graph_pools;
  pools.erase(std::remove_if(pools.begin(), pools.end(),
                             [](const DeviceContext::GraphPoolEntry& e) {
                               return e.retired && e.pool->stats().live_bytes == 0;
                             }),
              pools.end());
  ctx.graph_pool_count = static_cast<int>(pools.size());
}

// In use now: the device pool's live bytes and all that the graph pools hold.
int64_t in_use_now(DeviceContext& ctx) {
  int64_t bytes = ctx.pool->stats().live_bytes;
  std::lock_guard<std::mutex> lock(ctx.graph_mu);
  for (const auto& e : ctx.graph_pools) {
    const MemoryStats gs = e.pool->stats();
    bytes += gs.live_bytes + gs.cached_bytes;
  }
  return bytes;
}
}  // namespace

void* device_allocate(int index, size_t bytes) {
  DeviceContext& ctx = context(index);
  CachingPool* p = capture_pool(index);
  void* ptr = (p != nullptr ? *p : *ctx.pool).allocate(bytes);
  if (ctx.graph_pool_count > 0) {  // the device pool's own peak is exact without graph pools
    const int64_t now = in_use_now(ctx);
    int64_t seen = ctx.combined_peak.load();
    while (now > seen && !ctx.combined_peak.compare_exchange_weak(seen, now)) {
    }
  }
  return ptr;
}

void device_reset_peak(int index) {
  DeviceContext& ctx = context(index);
  ctx.pool->reset_peak();
  ctx.combined_peak = in_use_now(ctx);
}

void device_release_cached(int index) { context(index).pool->empty_cache(); }

void device_release(int index, void* ptr) {
  DeviceContext& ctx = context(index);
  if (ctx.pool->try_release(ptr)) return;
  std::lock_guard<std::mutex> lock(ctx.graph_mu);
  for (auto& e : ctx.graph_pools) {
    if (!e.pool->try_release(ptr)) continue;
    if (e.retired) {  // the graph is gone: nothing will replay into the block
      e.pool->empty_cache();
      drop_empty_retired(ctx);
    }
    return;
  }
  ctx.pool->release(ptr);  // reports the foreign block
}

MemoryStats device_stats(int index) {
  DeviceContext& ctx = context(index);
  MemoryStats s = ctx.pool->stats();
  int64_t in_use = s.live_bytes;  // graph pools' cached blocks count as in use: replays write them
  std::lock_guard<std::mutex> lock(ctx.graph_mu);
  for (const auto& e : ctx.graph_pools) {
    const MemoryStats gs = e.pool->stats();
    s.live_bytes += gs.live_bytes;
    s.cached_bytes += gs.cached_bytes;
    s.allocations += gs.allocations;
    s.system_allocations += gs.system_allocations;
    in_use += gs.live_bytes + gs.cached_bytes;
  }
  s.peak_bytes = std::max({s.peak_bytes, ctx.combined_peak.load(), in_use});
  return s;
}

GraphPool::GraphPool(int index) : index_(index) {
  DeviceContext& ctx = context(index);
  std::lock_guard<std::mutex> lock(ctx.graph_mu);
  ctx.graph_pools.push_back({make_device_pool(
      index, "the private pool of a CUDA graph on cuda:" + std::to_string(index))});
  ctx.graph_pool_count = static_cast<int>(ctx.graph_pools.size());
  pool_ = ctx.graph_pools.back().pool.get();
}

GraphPool::~GraphPool() {
  DeviceContext& ctx = context(index_);
  std::lock_guard<std::mutex> lock(ctx.graph_mu);
  for (auto& e : ctx.graph_pools)
    if (e.pool.get() == pool_) e.retired = true;
  pool_->empty_cache();  // live blocks (tensors the graph left behind) go when released
  drop_empty_retired(ctx);
}

int64_t GraphPool::reserved_bytes() const {
  const MemoryStats s = pool_->stats();
  return s.live_bytes + s.cached_bytes;
}

GraphPool::Use::Use(GraphPool& pool) {
  if (static_cast<int>(t_capture_pool.size()) <= pool.index_)
    t_capture_pool.resize(static_cast<size_t>(pool.index_) + 1, nullptr);
  previous_ = t_capture_pool[static_cast<size_t>(pool.index_)];
  t_capture_pool[static_cast<size_t>(pool.index_)] = pool.pool_;
  index_ = pool.index_;
}

GraphPool::Use::~Use() { t_capture_pool[static_cast<size_t>(index_)] = previous_; }

MemInfo mem_get_info(int index) {
  (void)context(index);  // checks the index
  set_device(index);
  MemInfo m;
  SDLORA_CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
  return m;
}

CachingPool& pinned_pool() {
  static CachingPool* pool = new CachingPool(
      "pinned host memory",
      [](size_t bytes) -> void* {
        void* p = nullptr;
        if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
          (void)cudaGetLastError();
          return nullptr;
        }
        return p;
      },
      [](void* p) { (void)cudaFreeHost(p); }, /*cache=*/true,
      /*exact=*/CachingPool::caching_disabled_by_environment());
  return *pool;
}

namespace {
// Pinned blocks released while an asynchronous copy may still read or write them wait here,
// behind an event recorded on every device's stream, before going back to the pool.
struct PendingPinned {
  void* ptr;
  std::vector<cudaEvent_t> events;
};
std::mutex g_pending_mu;
std::deque<PendingPinned> g_pending;

// Returns the blocks whose copies have finished to the pool, oldest first, stopping at the first
// that is still busy. cudaEventQuery answers cudaErrorNotReady for a busy event and the runtime
// records that as the thread's last error: it is cleared here, or the next launch check would
// throw it. Any other error throws when `may_throw`; otherwise (the release path, called from
// destructors) it is left as the thread's last error for the next checked call to report.
void collect_finished_pinned(bool may_throw) {
  std::lock_guard<std::mutex> lock(g_pending_mu);
  while (!g_pending.empty()) {
    PendingPinned& front = g_pending.front();
    for (cudaEvent_t e : front.events) {
      const cudaError_t st = cudaEventQuery(e);
      if (st == cudaErrorNotReady) {
        (void)cudaGetLastError();  // not an error: the copy is still running
        return;
      }
      if (st != cudaSuccess) {
        if (may_throw) SDLORA_CUDA_CHECK(st);
        return;
      }
    }
    for (cudaEvent_t e : front.events) (void)cudaEventDestroy(e);
    pinned_pool().release(front.ptr);
    g_pending.pop_front();
  }
}
}  // namespace

void* allocate_pinned(size_t bytes) {
  collect_finished_pinned(/*may_throw=*/true);
  return pinned_pool().allocate(bytes);
}

void release_pinned(void* ptr) {
  PendingPinned pending{ptr, {}};
  for (int i = 0; i < device_count(); ++i) {
    cudaEvent_t e = nullptr;
    set_device(i);
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventRecord(e, stream(i)) != cudaSuccess) {
      // Cannot track the copies: wait for them instead of risking reuse under a live copy.
      (void)cudaGetLastError();
      (void)cudaStreamSynchronize(stream(i));
      if (e) (void)cudaEventDestroy(e);
      continue;
    }
    pending.events.push_back(e);
  }
  {
    std::lock_guard<std::mutex> lock(g_pending_mu);
    g_pending.push_back(std::move(pending));
  }
  collect_finished_pinned(/*may_throw=*/false);
}

}  // namespace sdlora::cuda
