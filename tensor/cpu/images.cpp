// CPU conversion of decoded uint8 images (B, H, W, C) to normalised float32 (B, C, H, W), the
// formula of the loader's host conversion (data/transforms.cpp image_to_chw).
#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {

void CpuBackend::normalize_images(const Tensor& x, const ImageNorm& norm, Tensor& out) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t plane = H * W;
  const uint8_t* src = x.data<uint8_t>();
  float* dst = out.data<float>();
  SDLORA_OMP_FOR(B * C * plane)
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const int64_t b = bc / C, c = bc % C;
    const uint8_t* in = src + b * plane * C + c;
    float* o = dst + bc * plane;
    if (norm.enabled) {
      const float m = norm.mean[c], inv = norm.inv_std[c];
      for (int64_t p = 0; p < plane; ++p) o[p] = (static_cast<float>(in[p * C]) / 255.0f - m) * inv;
    } else {
      for (int64_t p = 0; p < plane; ++p) o[p] = static_cast<float>(in[p * C]) / 255.0f;
    }
  }
}

}  // namespace sdlora::cpu
