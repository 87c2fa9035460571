// Fused attention over the qkv output: cuDNN's SDPA where it runs (CUDA, bfloat16, a supported
// shape, a build with cudnn-frontend; tensor/cuda/sdpa.*), with a one-line note on stderr the first
// time each attention path runs, so a run's log says which one it used.
#include <cmath>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "tensor/ops_common.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/sdpa.h"
#endif

namespace sdlora {

bool fused_attention_available(const Tensor& qkv, int64_t heads) {
#ifdef SDLORA_WITH_CUDA
  return cuda::sdpa_supported(qkv, heads);
#else
  (void)qkv;
  (void)heads;
  return false;
#endif
}

#ifdef SDLORA_WITH_CUDA
namespace {
float attention_scale(const Tensor& qkv, int64_t heads) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(qkv.size(2) / (3 * heads))));
}
}  // namespace
#endif

FusedAttentionOut fused_attention(const Tensor& qkv, int64_t heads) {
  SDLORA_CHECK(fused_attention_available(qkv, heads), "fused_attention: qkv ", qkv.describe(),
               " with ", heads,
               " heads has no fused path (CUDA, bfloat16, head dim a multiple of "
               "8 up to 128, a build with cudnn-frontend)");
  const int64_t B = qkv.size(0), N = qkv.size(1), C = qkv.size(2) / 3;
  FusedAttentionOut r{Tensor::empty({B, N, C}, qkv.dtype(), qkv.device()),
                      Tensor::empty({B, heads, N, 1}, DType::kFloat32, qkv.device())};
#ifdef SDLORA_WITH_CUDA
  cuda::sdpa_forward(qkv, heads, attention_scale(qkv, heads), r.o, r.stats);
#endif
  return r;
}

Tensor fused_attention_backward(const Tensor& qkv, const Tensor& o, const Tensor& d_o,
                                const Tensor& stats, int64_t heads) {
  SDLORA_CHECK(fused_attention_available(qkv, heads), "fused_attention_backward: qkv ",
               qkv.describe(), " has no fused path");
  SDLORA_CHECK(o.shape() == d_o.shape() && o.dtype() == qkv.dtype() && d_o.dtype() == qkv.dtype() &&
                   o.ndim() == 3 && o.size(2) * 3 == qkv.size(2),
               "fused_attention_backward: o ", o.describe(), " and do ", d_o.describe(),
               " should be (B, N, C) of qkv's dtype for qkv ", qkv.describe());
  Tensor dqkv = Tensor::empty(qkv.shape(), qkv.dtype(), qkv.device());
#ifdef SDLORA_WITH_CUDA
  cuda::sdpa_backward(qkv, o, d_o, stats, heads, attention_scale(qkv, heads), dqkv);
#else
  (void)stats;
#endif
  return dqkv;
}

void note_attention_path(const std::string& path) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mutex);
  if (seen.insert(path).second) std::fprintf(stderr, "sdlora: attention path: %s\n", path.c_str());
}

}  // namespace sdlora
