// gradcheck: analytic gradients (backward) against central finite differences, in float64 on
// the CPU, for any function of Vars.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace sdlora {

struct GradcheckResult {
  bool ok = true;
  int input = -1;         // the input holding the worst element (-1: no elements)
  int64_t element = -1;   // that element's flat index
  double analytic = 0.0;  // its gradient from backward
  double numeric = 0.0;   // and from finite differences
  double ratio = 0.0;     // |analytic - numeric| / (atol + rtol |numeric|); above 1 fails
  std::string message;    // names the input, the element and both values
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Var(const std::vector<Var>&)>;

// Checks the gradient of every input of f. inputs: float64 CPU tensors (copied into leaf Vars
// that require grad). The output is projected to a scalar, sum(f(x) * r) with r uniform in
// [-1, 1) from `seed`, so every output element takes part; its gradient from backward is
// compared with (s(x + eps e_j) - s(x - eps e_j)) / (2 eps) for every element j. Keep inputs
// away from kinks (ties of max, zeros of sqrt and log) by more than eps.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          double eps = 1e-6, double rtol = 1e-5, double atol = 1e-6,
                          uint64_t seed = 1234);

}  // namespace sdlora
