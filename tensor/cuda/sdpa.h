// cuDNN's fused scaled-dot-product attention (forward and backward, bfloat16) through
// cudnn-frontend's graph API, reading q, k and v in place from the qkv output (B, N, 3C) and
// writing the token layout (B, N, C): no (B, H, N, N) tensor, 197 tokens unpadded. Built when
// CMake finds the frontend's headers (.deps/cudnn-frontend, scripts/fetch-cudnn-frontend.sh).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace sdlora::cuda {

// Whether cuDNN's SDPA can run this shape: bfloat16 qkv on CUDA, head dim a multiple of 8 up to
// 128, and (built once per shape and cached) forward and backward graphs cuDNN accepts. False on
// builds without the frontend.
bool sdpa_supported(const Tensor& qkv, int64_t heads);
// o (B, N, C) bfloat16, stats (B, H, N, 1) float32 (the log-sum-exp of each score row).
void sdpa_forward(const Tensor& qkv, int64_t heads, float scale, Tensor& o, Tensor& stats);
// dqkv (B, N, 3C) bfloat16, every element written.
void sdpa_backward(const Tensor& qkv, const Tensor& o, const Tensor& d_o, const Tensor& stats,
                   int64_t heads, float scale, Tensor& dqkv);

}  // namespace sdlora::cuda
