// The growing classifier (head.h).
#include "cl/head.h"

#include <cmath>

#include "autograd/functions.h"
#include "nn/module.h"
#include "tensor/ops.h"

namespace sdlora::cl {

GrowingHead::GrowingHead(int64_t width, Device device) : width_(width), device_(device) {
  SDLORA_CHECK(width > 0, "GrowingHead: width must be positive, got ", width);
}

void GrowingHead::freeze() {
  if (!cur_w_.defined()) return;
  const Tensor w = cur_w_.data().clone(), b = cur_b_.data().clone();
  frozen_w_ = frozen_w_.defined() ? cat({frozen_w_, w}, 0) : w;
  frozen_b_ = frozen_b_.defined() ? cat({frozen_b_, b}, 0) : b;
  cur_w_ = Var();
  cur_b_ = Var();
}

void GrowingHead::grow(int64_t classes, Generator& gen) {
  SDLORA_CHECK(classes > 0, "GrowingHead: cannot grow by ", classes, " classes");
  freeze();
  const double bound = std::sqrt(3.0 / static_cast<double>(width_));
  cur_w_ = Var(gen.uniform({classes, width_}, -bound, bound, DType::kFloat32, device_), true);
  cur_b_ = Var(Tensor::zeros({classes}, DType::kFloat32, device_), true);
}

Var GrowingHead::forward(const Var& features) const {
  SDLORA_CHECK(num_classes() > 0, "GrowingHead: no classes yet (grow the head first)");
  std::vector<Var> parts;
  if (frozen_w_.defined()) parts.push_back(linear(features, Var(frozen_w_), Var(frozen_b_)));
  if (cur_w_.defined()) parts.push_back(linear(features, cur_w_, cur_b_));
  return parts.size() == 1 ? parts[0] : cat(parts, 1);
}

std::vector<Var> GrowingHead::trainable_parameters() const {
  if (!cur_w_.defined()) return {};
  return {cur_w_, cur_b_};
}

std::map<std::string, Tensor> GrowingHead::state_dict() const {
  std::vector<Tensor> ws, bs;
  if (frozen_w_.defined()) {
    ws.push_back(frozen_w_);
    bs.push_back(frozen_b_);
  }
  if (cur_w_.defined()) {
    ws.push_back(cur_w_.data());
    bs.push_back(cur_b_.data());
  }
  if (ws.empty()) return {};
  return {{"head.weight", ws.size() == 1 ? ws[0] : cat(ws, 0)},
          {"head.bias", bs.size() == 1 ? bs[0] : cat(bs, 0)}};
}

void GrowingHead::load_state_dict(const std::map<std::string, Tensor>& tensors) {
  auto w = tensors.find("head.weight"), b = tensors.find("head.bias");
  LoadReport report;
  if (w == tensors.end()) report.missing.push_back("head.weight");
  if (b == tensors.end()) report.missing.push_back("head.bias");
  if (report.missing.empty() && !(w->second.ndim() == 2 && w->second.size(1) == width_ &&
                                  b->second.ndim() == 1 && b->second.size(0) == w->second.size(0)))
    report.misshaped.push_back("head.weight " + w->second.describe() + " and head.bias " +
                               b->second.describe() + " (want [classes, " + std::to_string(width_) +
                               "] and [classes])");
  report.throw_if_any("classifier checkpoint", "a head of width " + std::to_string(width_));
  frozen_w_ = w->second.to(DType::kFloat32).to(device_).clone();
  frozen_b_ = b->second.to(DType::kFloat32).to(device_).clone();
  cur_w_ = Var();
  cur_b_ = Var();
}

}  // namespace sdlora::cl
