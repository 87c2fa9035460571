// The per-device CUDA context: one compute stream, one cuBLAS handle (and one cuDNN handle when
// built with cuDNN), created lazily; the device memory pools. Host code only.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "tensor/allocator.h"

#ifdef SDLORA_WITH_CUDNN
#include <cudnn.h>
#endif

namespace sdlora::cuda {

int device_count();
// Makes `index` the calling thread's current device.
void set_device(int index);
cudaStream_t stream(int index = 0);
cublasHandle_t cublas(int index = 0);
#ifdef SDLORA_WITH_CUDNN
cudnnHandle_t cudnn(int index = 0);
#endif
// Waits for all work queued on the device's compute stream.
void synchronize(int index = 0);

// TF32 tensor cores for float32 matrix products (off by default, as in PyTorch).
void set_allow_tf32(bool allow);
bool allow_tf32();

CachingPool& device_pool(int index);
CachingPool& pinned_pool();
// Pinned blocks are reused only once the copies queued on them have finished.
void* allocate_pinned(size_t bytes);
void release_pinned(void* ptr);

}  // namespace sdlora::cuda
