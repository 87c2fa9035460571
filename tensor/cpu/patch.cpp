// CPU ViT patch kernels: patchify (B, C, H, W) -> (B, N, C p p) and its adjoint unpatchify.
// Patches are non-overlapping, so unpatchify is also the inverse: a pure permutation of elements.
#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

// Visits every (image offset, patch offset) pair of an image batch (B, C, H, W) with p x p
// patches: patch n = gh * (W / p) + gw holds x[b, c, gh p + i, gw p + j] at c p p + i p + j.
template <typename F>
void for_each_patch_element(int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, F&& f) {
  const int64_t gw_n = W / p, n_patches = (H / p) * gw_n, K = C * p * p;
  SDLORA_OMP_FOR(B * C * H * W)
  for (int64_t bn = 0; bn < B * n_patches; ++bn) {
    const int64_t b = bn / n_patches, n = bn % n_patches;
    const int64_t gh = n / gw_n, gw = n % gw_n;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < p; ++i)
        for (int64_t j = 0; j < p; ++j) {
          const int64_t img = ((b * C + c) * H + gh * p + i) * W + gw * p + j;
          const int64_t patch = bn * K + (c * p + i) * p + j;
          f(img, patch);
        }
  }
}

}  // namespace

void CpuBackend::patchify(const Tensor& x, int64_t p, Tensor& out) {
  dispatch_float(x.dtype(), "patchify", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for_each_patch_element(x.size(0), x.size(1), x.size(2), x.size(3), p,
                           [&](int64_t img, int64_t patch) { op[patch] = xp[img]; });
  });
}

void CpuBackend::unpatchify(const Tensor& patches, int64_t p, Tensor& out) {
  dispatch_float(patches.dtype(), "unpatchify", [&](auto tag) {
    using T = decltype(tag);
    const T* pp = patches.data<T>();
    T* op = out.data<T>();
    for_each_patch_element(out.size(0), out.size(1), out.size(2), out.size(3), p,
                           [&](int64_t img, int64_t patch) { op[img] = pp[patch]; });
  });
}

}  // namespace sdlora::cpu
