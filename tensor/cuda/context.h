// The per-device CUDA context: one compute stream and one copy stream, one cuBLAS handle (and one
// cuDNN handle when built with cuDNN), created lazily; the device memory pools. Host code only.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "tensor/allocator.h"

#ifdef SDLORA_WITH_CUDNN
#include <cudnn.h>
#endif

namespace sdlora::cuda {

// What CUDA's start-up reported, probed once: the device count, cudaGetDeviceCount's result and
// the driver's CUDA version (0: no driver installed).
struct InitStatus {
  int device_count = 0;
  cudaError_t error = cudaSuccess;
  int driver_version = 0;
  int runtime_version = 0;
};
const InitStatus& init_status();

// Usable devices; 0 when there is no driver, no GPU, or CUDA failed to start (init_status says
// which).
int device_count();
// Makes `index` the calling thread's current device.
void set_device(int index);
cudaStream_t stream(int index = 0);
// The device's copy stream: host-to-device uploads that overlap the compute stream (tensor/upload.h
// orders them against it with events).
cudaStream_t copy_stream(int index = 0);
cublasHandle_t cublas(int index = 0);
#ifdef SDLORA_WITH_CUDNN
cudnnHandle_t cudnn(int index = 0);
#endif
// Waits for all work queued on the device's compute stream.
void synchronize(int index = 0);

// TF32 tensor cores for float32 matrix products (off by default, as in PyTorch).
void set_allow_tf32(bool allow);
bool allow_tf32();

// cudaMemGetInfo of a device: free and total bytes.
struct MemInfo {
  size_t free = 0, total = 0;
};
MemInfo mem_get_info(int index);

CachingPool& device_pool(int index);

// Device allocations of the calling thread: from the private pool of the graph this thread is
// recording (tensor/graph.h), else from the device's pool. A block goes back to whichever pool
// owns it.
void* device_allocate(int index, size_t bytes);
void device_release(int index, void* ptr);
// The device pool's counters plus every graph pool's: live and cached bytes summed; the peak is the
// most the device held at once in live tensors plus all the graph pools held (their blocks are
// kept for replays, so all of them count as in use).
MemoryStats device_stats(int index);
void device_reset_peak(int index);
// Returns the device pool's cached blocks to the driver (after a recording: the eager steps'
// blocks, which the replays no longer need).
void device_release_cached(int index);

// A pool private to one recorded graph: blocks allocated while recording are kept (never handed to
// other work) until the graph is gone and every tensor allocated in it has been released.
class GraphPool {
 public:
  explicit GraphPool(int index);
  ~GraphPool();  // retires the pool: cached blocks are freed now, live ones when released
  GraphPool(const GraphPool&) = delete;
  GraphPool& operator=(const GraphPool&) = delete;
  // While alive, this thread's device allocations on the pool's device come from the pool.
  class Use {
   public:
    explicit Use(GraphPool& pool);
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    CachingPool* previous_;
    int index_;
  };
  int64_t reserved_bytes() const;  // live + cached

 private:
  int index_;
  CachingPool* pool_;  // owned by the device's registry of graph pools
};
CachingPool& pinned_pool();
// Pinned blocks are reused only once the copies queued on them have finished.
void* allocate_pinned(size_t bytes);
void release_pinned(void* ptr);

}  // namespace sdlora::cuda
