// cuBLASLt products with epilogues (bias, the residual as C, bias gradient): the fused linear
// layers' CUDA path. Host code only.
#pragma once

#include "tensor/backend.h"

namespace sdlora::cuda {

// Runs c = epilogue(op(a) op(b)) through cublasLtMatmul on c's device and compute stream, with
// the same row-major conventions as CudaBackend::gemm (batch 1). Returns false, having queued
// nothing, when cuBLASLt offers no algorithm for this combination of shapes, dtypes and
// epilogue; the caller then runs the unfused composition.
bool lt_matmul(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan,
               const GemmEpilogue& epilogue);

}  // namespace sdlora::cuda
