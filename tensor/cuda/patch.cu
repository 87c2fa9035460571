// ViT patch extraction on CUDA: x (B, C, H, W) <-> patches (B, N, C p p), N = (H/p)(W/p) in
// row-major grid order, each patch flattened in (c, i, j) order. Both directions are gathers
// over a bijection (a thread per output element, no atomics); elements move as raw words.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

struct PatchGeometry {
  int64_t C, H, W, p;
};

// out[b, n, (c, i, j)] = x[b, c, gy p + i, gx p + j] with n = gy (W/p) + gx.
template <typename E, typename Index>
__global__ void patchify_kernel(const E* __restrict__ x, E* __restrict__ out, int64_t numel,
                                PatchGeometry g) {
  const Index p = static_cast<Index>(g.p), pp = p * p;
  const Index cpp = static_cast<Index>(g.C) * pp;
  const Index gw = static_cast<Index>(g.W) / p;
  const Index n_patches = (static_cast<Index>(g.H) / p) * gw;
  const Index H = static_cast<Index>(g.H), W = static_cast<Index>(g.W), C = static_cast<Index>(g.C);
  const Index total = static_cast<Index>(numel);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const Index e = i % cpp, t = i / cpp;
    const Index n = t % n_patches, b = t / n_patches;
    const Index c = e / pp, r = e % pp;
    const Index h = (n / gw) * p + r / p, w = (n % gw) * p + r % p;
    out[i] = x[((b * C + c) * H + h) * W + w];
  }
}

// The adjoint: out[b, c, h, w] = patches[b, n, (c, h % p, w % p)], n = (h / p)(W/p) + w / p.
template <typename E, typename Index>
__global__ void unpatchify_kernel(const E* __restrict__ patches, E* __restrict__ out, int64_t numel,
                                  PatchGeometry g) {
  const Index p = static_cast<Index>(g.p), pp = p * p;
  const Index cpp = static_cast<Index>(g.C) * pp;
  const Index gw = static_cast<Index>(g.W) / p;
  const Index n_patches = (static_cast<Index>(g.H) / p) * gw;
  const Index H = static_cast<Index>(g.H), W = static_cast<Index>(g.W), C = static_cast<Index>(g.C);
  const Index total = static_cast<Index>(numel);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const Index w = i % W, t = i / W;
    const Index h = t % H, t2 = t / H;
    const Index c = t2 % C, b = t2 / C;
    const Index n = (h / p) * gw + w / p;
    const Index e = (c * p + h % p) * p + w % p;
    out[i] = patches[(b * n_patches + n) * cpp + e];
  }
}

template <bool kForward>
void launch_patch(const Tensor& in, Tensor& out, const PatchGeometry& g) {
  const int64_t numel = out.numel();
  if (numel == 0) return;
  cudaStream_t s = stream_for(out);
  const unsigned grid = grid_for(numel, kThreads, out.device().index);
  const int64_t limit = int64_t{1} << 31;
  const bool small = numel < limit && static_cast<int64_t>(grid) * kThreads < limit;
  dispatch_bytes(in.dtype(), [&](auto tag) {
    using E = typename decltype(tag)::type;
    if constexpr (kForward) {
      if (small)
        patchify_kernel<E, uint32_t><<<grid, kThreads, 0, s>>>(ptr<E>(in), ptr<E>(out), numel, g);
      else
        patchify_kernel<E, int64_t><<<grid, kThreads, 0, s>>>(ptr<E>(in), ptr<E>(out), numel, g);
    } else {
      if (small)
        unpatchify_kernel<E, uint32_t><<<grid, kThreads, 0, s>>>(ptr<E>(in), ptr<E>(out), numel, g);
      else
        unpatchify_kernel<E, int64_t><<<grid, kThreads, 0, s>>>(ptr<E>(in), ptr<E>(out), numel, g);
    }
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace

void CudaBackend::patchify(const Tensor& x, int64_t p, Tensor& out) {
  launch_patch<true>(x, out, PatchGeometry{x.size(1), x.size(2), x.size(3), p});
}

void CudaBackend::unpatchify(const Tensor& patches, int64_t p, Tensor& out) {
  launch_patch<false>(patches, out, PatchGeometry{out.size(1), out.size(2), out.size(3), p});
}

}  // namespace sdlora::cuda
