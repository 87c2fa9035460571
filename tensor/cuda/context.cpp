// Per-device CUDA state, created on first use: stream, library handles, memory pools.
#include "tensor/cuda/context.h"

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
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

struct DeviceContext {
  int index = 0;
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;
  cublasHandle_t cublas = nullptr;
#ifdef SDLORA_WITH_CUDNN
  cudnnHandle_t cudnn = nullptr;
#endif
  std::unique_ptr<CachingPool> pool;
  std::once_flag stream_once, copy_stream_once, cublas_once, cudnn_once;
};

// Contexts are never destroyed: handles must outlive every static tensor, and the driver
// reclaims everything at process exit.
std::vector<DeviceContext*>& contexts() {
  static std::vector<DeviceContext*>* all = [] {
    auto* v = new std::vector<DeviceContext*>();
    const int n = device_count();
    for (int i = 0; i < n; ++i) {
      auto* ctx = new DeviceContext();
      ctx->index = i;
      ctx->pool = std::make_unique<CachingPool>(
          "cuda:" + std::to_string(i),
          [i](size_t bytes) -> void* {
            set_device(i);
            void* p = nullptr;
            if (cudaMalloc(&p, bytes) != cudaSuccess) {
              (void)cudaGetLastError();  // clear the sticky out-of-memory error
              return nullptr;
            }
            return p;
          },
          [i](void* p) {
            set_device(i);
            (void)cudaFree(p);
          },
          /*cache=*/true, /*exact=*/CachingPool::caching_disabled_by_environment());
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
