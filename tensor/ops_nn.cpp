// Softmax, LayerNorm, cross-entropy, ViT patches and input image conversion: checks, shapes,
// dispatch.
#include <cmath>

#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

namespace {
Tensor softmax_impl(const Tensor& x, bool log, const char* op) {
  check_defined(x, op, "x");
  Backend& be = float_backend(x, op);
  SDLORA_CHECK(x.ndim() >= 1 && x.size(-1) > 0, op, ": needs a non-empty last dimension, got ",
               x.describe());
  const Tensor xc = compute_view(x);
  Tensor out = Tensor::empty(x.shape(), xc.dtype(), x.device());
  if (x.numel() > 0) be.softmax(xc, x.size(-1), log, out);
  return result_as(out, x.dtype());
}

Tensor softmax_backward_impl(const Tensor& y, const Tensor& dy, bool log, const char* op) {
  check_defined(y, op, "y");
  check_defined(dy, op, "dy");
  check_same_device(y, dy, op);
  check_same_dtype(y, dy, op);
  SDLORA_CHECK(y.shape() == dy.shape(), op, ": y ", y.describe(), " and dy ", dy.describe(),
               " differ in shape");
  Backend& be = float_backend(y, op);
  const Tensor yc = compute_view(y), dyc = compute_view(dy);
  Tensor dx = Tensor::empty(y.shape(), yc.dtype(), y.device());
  if (y.numel() > 0) be.softmax_backward(yc, dyc, y.size(-1), log, dx);
  return result_as(dx, y.dtype());
}
}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl(x, false, "softmax"); }
Tensor log_softmax(const Tensor& x) { return softmax_impl(x, true, "log_softmax"); }
Tensor softmax_backward(const Tensor& y, const Tensor& dy) {
  return softmax_backward_impl(y, dy, false, "softmax_backward");
}
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy) {
  return softmax_backward_impl(y, dy, true, "log_softmax_backward");
}

namespace {
void check_layernorm_params(const Tensor& x, const Tensor& w, const Tensor& b, const char* op) {
  check_defined(x, op, "x");
  check_defined(w, op, "weight");
  check_same_device(x, w, op);
  SDLORA_CHECK(x.ndim() >= 1, op, ": x needs at least one dimension, got ", x.describe());
  const int64_t C = x.size(-1);
  SDLORA_CHECK(w.shape() == Shape{C}, op, ": weight ", w.describe(), " should be [", C, "] for x ",
               x.describe());
  SDLORA_CHECK(is_floating(w.dtype()) && (w.dtype() == x.dtype() || w.dtype() == DType::kFloat32),
               op, ": weight ", w.describe(), " should be float32 or the dtype of x ",
               x.describe());
  if (b.defined()) {
    check_same_device(x, b, op);
    check_same_dtype(w, b, op);
    SDLORA_CHECK(b.shape() == Shape{C}, op, ": bias ", b.describe(), " should be [", C, "]");
  }
}
}  // namespace

LayerNormOut layernorm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  check_layernorm_params(x, w, b, "layernorm");
  Backend& be = float_backend(x, "layernorm");
  SDLORA_CHECK(b.defined(), "layernorm: bias is an undefined tensor");
  const int64_t C = x.size(-1);
  const int64_t rows = C == 0 ? 0 : x.numel() / C;
  const Tensor xc = compute_view(x), wc = compute_view(w), bc = compute_view(b);
  LayerNormOut r{Tensor::empty(x.shape(), xc.dtype(), x.device()),
                 Tensor::empty({rows}, DType::kFloat32, x.device()),
                 Tensor::empty({rows}, DType::kFloat32, x.device())};
  if (x.numel() > 0) be.layernorm_forward(xc, wc, bc, C, eps, r.y, r.mean, r.rstd);
  r.y = result_as(r.y, x.dtype());
  return r;
}

LayerNormGrads layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd) {
  check_layernorm_params(x, w, Tensor(), "layernorm_backward");
  check_defined(dy, "layernorm_backward", "dy");
  check_same_device(x, dy, "layernorm_backward");
  check_same_dtype(x, dy, "layernorm_backward");
  SDLORA_CHECK(dy.shape() == x.shape(), "layernorm_backward: dy ", dy.describe(), " and x ",
               x.describe(), " differ in shape");
  const int64_t C = x.size(-1);
  const int64_t rows = C == 0 ? 0 : x.numel() / C;
  for (const Tensor* s : {&mean, &rstd}) {
    check_defined(*s, "layernorm_backward", "mean/rstd");
    check_same_device(x, *s, "layernorm_backward");
    SDLORA_CHECK(s->dtype() == DType::kFloat32 && s->shape() == Shape{rows},
                 "layernorm_backward: statistics ", s->describe(), " should be float32[", rows,
                 "]");
  }
  Backend& be = float_backend(x, "layernorm_backward");
  const Tensor dyc = compute_view(dy), xc = compute_view(x), wc = compute_view(w);
  LayerNormGrads g{Tensor::empty(x.shape(), xc.dtype(), x.device()),
                   Tensor::empty({C}, wc.dtype(), x.device()),
                   Tensor::empty({C}, wc.dtype(), x.device())};
  if (rows == 0) {
    fill_(g.dw, 0.0);
    fill_(g.db, 0.0);
  } else {
    be.layernorm_backward(dyc, xc, wc, mean, rstd, C, g.dx, g.dw, g.db);
  }
  g.dx = result_as(g.dx, x.dtype());
  g.dw = result_as(g.dw, w.dtype());
  g.db = result_as(g.db, w.dtype());
  return g;
}

namespace {
void check_cross_entropy(const Tensor& logits, const Tensor& labels, const char* op) {
  check_defined(logits, op, "logits");
  check_defined(labels, op, "labels");
  check_same_device(logits, labels, op);
  check_index(labels, op);
  SDLORA_CHECK(logits.ndim() == 2 && logits.size(0) > 0 && logits.size(1) > 0, op,
               ": logits should be (B, C) with B, C > 0, got ", logits.describe());
  SDLORA_CHECK(labels.shape() == Shape{logits.size(0)}, op, ": labels ", labels.describe(),
               " should be [", logits.size(0), "] for logits ", logits.describe());
  if (labels.device().is_cpu()) {
    const int64_t C = logits.size(1);
    for (int64_t i = 0; i < labels.numel(); ++i) {
      const int64_t v =
          labels.dtype() == DType::kInt32 ? labels.data<int32_t>()[i] : labels.data<int64_t>()[i];
      SDLORA_CHECK(v >= 0 && v < C, op, ": label ", v, " of sample ", i, " out of range [0, ", C,
                   ") for logits ", logits.describe());
    }
  }
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_cross_entropy(logits, labels, "cross_entropy");
  Backend& be = float_backend(logits, "cross_entropy");
  Tensor loss = Tensor::empty({}, DType::kFloat32, logits.device());
  be.cross_entropy(compute_view(logits), labels, loss);
  return loss;
}

Tensor cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss) {
  check_cross_entropy(logits, labels, "cross_entropy_backward");
  check_defined(dloss, "cross_entropy_backward", "dloss");
  check_same_device(logits, dloss, "cross_entropy_backward");
  SDLORA_CHECK(dloss.dtype() == DType::kFloat32 && dloss.numel() == 1,
               "cross_entropy_backward: dloss should be one float32 value, got ", dloss.describe());
  Backend& be = float_backend(logits, "cross_entropy_backward");
  const Tensor lc = compute_view(logits);
  Tensor dlogits = Tensor::empty(logits.shape(), lc.dtype(), logits.device());
  be.cross_entropy_backward(lc, labels, dloss, dlogits);
  return result_as(dlogits, logits.dtype());
}

Tensor patchify(const Tensor& x, int64_t p) {
  check_defined(x, "patchify", "x");
  Backend& be = float_backend(x, "patchify");
  SDLORA_CHECK(x.ndim() == 4, "patchify: x should be (B, C, H, W), got ", x.describe());
  SDLORA_CHECK(p > 0 && x.size(2) % p == 0 && x.size(3) % p == 0, "patchify: image ", x.describe(),
               " is not divisible into ", p, "x", p, " patches");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const Tensor xc = compute_view(x);
  Tensor out = Tensor::empty({B, (H / p) * (W / p), C * p * p}, xc.dtype(), x.device());
  if (out.numel() > 0) be.patchify(xc, p, out);
  return result_as(out, x.dtype());
}

Tensor unpatchify(const Tensor& patches, int64_t channels, int64_t height, int64_t width,
                  int64_t p) {
  check_defined(patches, "unpatchify", "patches");
  Backend& be = float_backend(patches, "unpatchify");
  SDLORA_CHECK(p > 0 && height % p == 0 && width % p == 0, "unpatchify: image ", height, "x", width,
               " is not divisible into ", p, "x", p, " patches");
  const Shape want{patches.ndim() == 3 ? patches.size(0) : -1, (height / p) * (width / p),
                   channels * p * p};
  SDLORA_CHECK(patches.ndim() == 3 && patches.size(1) == want[1] && patches.size(2) == want[2],
               "unpatchify: patches ", patches.describe(), " should be (B, ", want[1], ", ",
               want[2], ")");
  const Tensor pc = compute_view(patches);
  Tensor out =
      Tensor::empty({patches.size(0), channels, height, width}, pc.dtype(), patches.device());
  if (out.numel() > 0) be.unpatchify(pc, p, out);
  return result_as(out, patches.dtype());
}

Tensor normalize_images(const Tensor& images, const std::vector<float>& mean,
                        const std::vector<float>& std) {
  check_defined(images, "normalize_images", "images");
  SDLORA_CHECK(images.dtype() == DType::kUInt8 && images.ndim() == 4,
               "normalize_images: images should be uint8 (B, H, W, C), got ", images.describe());
  const int64_t B = images.size(0), H = images.size(1), W = images.size(2), C = images.size(3);
  SDLORA_CHECK(C >= 1 && C <= ImageNorm::kMaxChannels, "normalize_images: ", C, " channels; 1 to ",
               ImageNorm::kMaxChannels, " are supported");
  SDLORA_CHECK(
      mean.size() == std.size() && (mean.empty() || static_cast<int64_t>(mean.size()) == C),
      "normalize_images: ", mean.size(), " means and ", std.size(), " stds for ", C,
      " channels (give one of each per channel, or none)");
  ImageNorm norm;
  norm.enabled = !mean.empty();
  for (size_t c = 0; c < mean.size(); ++c) {
    SDLORA_CHECK(std[c] > 0.0f && std::isfinite(std[c]) && std::isfinite(mean[c]),
                 "normalize_images: channel ", c, " has mean ", mean[c], " and std ", std[c],
                 " (std must be positive and both finite)");
    norm.mean[c] = mean[c];
    norm.inv_std[c] = 1.0f / std[c];
  }
  Tensor out = Tensor::empty({B, C, H, W}, DType::kFloat32, images.device());
  if (out.numel() > 0) backend_for(images.device()).normalize_images(images, norm, out);
  return out;
}

}  // namespace sdlora
