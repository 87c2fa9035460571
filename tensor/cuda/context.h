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
CachingPool& pinned_pool();
// Pinned blocks are reused only once the copies queued on them have finished.
void* allocate_pinned(size_t bytes);
void release_pinned(void* ptr);

}  // namespace sdlora::cuda
