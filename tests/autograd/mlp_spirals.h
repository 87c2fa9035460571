// A two-layer MLP trained with plain SGD on three interleaved spirals: the end-to-end check of
// autograd on a device.
#pragma once

#include "tensor/tensor.h"

namespace sdlora::test {

struct MlpRun {
  double initial_loss = 0.0;
  double final_loss = 0.0;
  double accuracy = 0.0;  // on the training points, after training
};

// 3 classes x 100 points in 2-D (fixed seed), MLP 2 -> 64 (GELU) -> 3, full-batch SGD.
MlpRun train_mlp_on_spirals(Device device, int steps = 2000, double lr = 1.0);

}  // namespace sdlora::test
