// The shared training-step pieces of train_step.h.
#include "cl/train_step.h"

#include <cmath>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace sdlora::cl {

LossWindow::LossWindow(Device device, int64_t read_every)
    : device_(device), read_every_(read_every),
      window_(Tensor::zeros({}, DType::kFloat32, device)) {}

void LossWindow::add(const Var& loss, int64_t images) {
  add_(window_, cast(loss.data(), DType::kFloat32).reshape({}), static_cast<double>(images));
  images_ += images;
}

bool LossWindow::due(int64_t batch_index, bool force) const {
  return force || device_.is_cpu() || (batch_index + 1) % read_every_ == 0;
}

double LossWindow::read(const std::string& where) {
  const double sum = window_.item();
  const int64_t n = images_;
  SDLORA_CHECK(std::isfinite(sum), "training diverged: the loss is ",
               n > 0 ? sum / static_cast<double>(n) : sum, " in ", where,
               "; lower the learning rate");
  fill_(window_, 0.0);
  images_ = 0;
  sum_read_ += sum;
  images_read_ += n;
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

void check_finite(const std::vector<std::pair<std::string, Var>>& tensors, bool gradients,
                  const std::string& where) {
  // sum(x * 0) is 0 when every element is finite and NaN otherwise (inf * 0 = NaN).
  auto probe = [&](const Var& v) -> Tensor {
    const Tensor& t = gradients ? v.grad() : v.data();
    if (!t.defined() || t.numel() == 0) return Tensor();
    return sum(mul(cast(t, DType::kFloat32), 0.0));
  };
  Tensor total;
  for (const auto& named : tensors) {
    const Tensor p = probe(named.second);
    if (!p.defined()) continue;
    if (!total.defined())
      total = p.clone();
    else
      add_(total, p);
  }
  if (!total.defined() || std::isfinite(total.item())) return;
  for (const auto& [name, v] : tensors) {  // the slow path: find the tensor to name
    const Tensor p = probe(v);
    if (p.defined() && !std::isfinite(p.item()))
      SDLORA_THROW("training diverged: ", gradients ? "the gradient of " : "", name,
                   " holds NaN or infinity in ", where, "; lower the learning rate");
  }
}

}  // namespace sdlora::cl
