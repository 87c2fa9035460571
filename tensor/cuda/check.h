// One family of check macros for the CUDA runtime, cuBLAS and cuDNN: a failing call throws
// sdlora::Error naming the call, the file, the line and the library's own message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "tensor/error.h"

namespace sdlora::cuda {
const char* cublas_status_name(cublasStatus_t s);
}

#define SDLORA_CUDA_CHECK(call)                                                      \
  do {                                                                               \
    const cudaError_t sdlora_err_ = (call);                                          \
    if (sdlora_err_ != cudaSuccess) {                                                \
      (void)cudaGetLastError();                                                      \
      ::sdlora::detail::throw_error(                                                 \
          __FILE__, __LINE__,                                                        \
          ::sdlora::detail::concat("CUDA call ", #call,                              \
                                   " failed: ", cudaGetErrorName(sdlora_err_), " (", \
                                   cudaGetErrorString(sdlora_err_), ")"));           \
    }                                                                                \
  } while (0)

#define SDLORA_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                            \
    const cublasStatus_t sdlora_st_ = (call);                                                     \
    if (sdlora_st_ != CUBLAS_STATUS_SUCCESS)                                                      \
      ::sdlora::detail::throw_error(                                                              \
          __FILE__, __LINE__,                                                                     \
          ::sdlora::detail::concat("cuBLAS call ", #call,                                         \
                                   " failed: ", ::sdlora::cuda::cublas_status_name(sdlora_st_))); \
  } while (0)

#ifdef SDLORA_WITH_CUDNN
#include <cudnn.h>
#define SDLORA_CUDNN_CHECK(call)                                                                \
  do {                                                                                          \
    const cudnnStatus_t sdlora_st_ = (call);                                                    \
    if (sdlora_st_ != CUDNN_STATUS_SUCCESS)                                                     \
      ::sdlora::detail::throw_error(__FILE__, __LINE__,                                         \
                                    ::sdlora::detail::concat("cuDNN call ", #call, " failed: ", \
                                                             cudnnGetErrorString(sdlora_st_))); \
  } while (0)
#endif

// After a kernel launch: reports a bad launch configuration at the launch site.
#define SDLORA_CUDA_CHECK_LAUNCH() SDLORA_CUDA_CHECK(cudaGetLastError())
