// CUDA conversion of uploaded uint8 images (B, H, W, C) to normalised float32 (B, C, H, W): the
// loader hands the device bytes (a quarter of the float32 traffic) and the device does the
// arithmetic of the host conversion (data/transforms.cpp image_to_chw), one thread per output.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

template <typename Index>
__global__ void normalize_images_kernel(const uint8_t* __restrict__ x, float* __restrict__ out,
                                        int64_t numel, int64_t C, int64_t plane, ImageNorm norm) {
  const Index total = static_cast<Index>(numel), c_n = static_cast<Index>(C),
              hw = static_cast<Index>(plane);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const Index p = i % hw, bc = i / hw;
    const Index c = bc % c_n, b = bc / c_n;
    // __fdiv_rn and __fmul_rn: IEEE rounding whatever the compiler flags, as on the host.
    const float v = __fdiv_rn(static_cast<float>(x[(b * hw + p) * c_n + c]), 255.0f);
    out[i] = norm.enabled ? __fmul_rn(__fsub_rn(v, norm.mean[c]), norm.inv_std[c]) : v;
  }
}

}  // namespace

void CudaBackend::normalize_images(const Tensor& x, const ImageNorm& norm, Tensor& out) {
  const int64_t numel = out.numel();
  if (numel == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(numel, kThreads, out.device().index);
  const int64_t C = x.size(3), plane = x.size(1) * x.size(2);
  const int64_t limit = int64_t{1} << 31;
  if (numel < limit && static_cast<int64_t>(grid) * kThreads < limit)
    normalize_images_kernel<uint32_t>
        <<<grid, kThreads, 0, s>>>(ptr<uint8_t>(x), ptr<float>(out), numel, C, plane, norm);
  else
    normalize_images_kernel<int64_t>
        <<<grid, kThreads, 0, s>>>(ptr<uint8_t>(x), ptr<float>(out), numel, C, plane, norm);
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace sdlora::cuda
