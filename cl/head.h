// The growing classifier: width -> classes seen so far. At each task new rows are added
// (Kaiming-uniform with linear gain, bound sqrt(3 / width), bias 0) and only they are trainable;
// the rows of earlier tasks are kept as frozen tensors, so no optimizer (whatever its weight
// decay or moments) can change them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "tensor/random.h"

namespace sdlora::cl {

class GrowingHead {
 public:
  GrowingHead(int64_t width, Device device);

  int64_t width() const { return width_; }
  int64_t num_classes() const { return frozen_classes() + current_classes(); }
  int64_t frozen_classes() const { return frozen_w_.defined() ? frozen_w_.size(0) : 0; }
  int64_t current_classes() const { return cur_w_.defined() ? cur_w_.size(0) : 0; }

  // Adds `classes` trainable rows (the previous trainable rows are frozen first).
  void grow(int64_t classes, Generator& gen);
  // Freezes the trainable rows.
  void freeze();
  // features (B, width) -> logits (B, num_classes): frozen rows first, then the current ones.
  Var forward(const Var& features) const;
  // The current rows' weight (classes, width) and bias (classes).
  std::vector<Var> trainable_parameters() const;

  // head.weight (classes, width) and head.bias (classes), all rows; load_state_dict restores
  // them all as frozen rows.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& tensors);

 private:
  int64_t width_;
  Device device_;
  Tensor frozen_w_, frozen_b_;
  Var cur_w_, cur_b_;
};

}  // namespace sdlora::cl
