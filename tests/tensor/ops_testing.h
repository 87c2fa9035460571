// Helpers for the op tests: tensors from double values, error-message checks, central finite
// differences in float64 and index arithmetic for naive reference loops.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {

// A tensor of the given dtype holding `values` (rounded as cast() rounds).
inline Tensor make(const std::vector<double>& values, const Shape& shape,
                   DType dtype = DType::kFloat32) {
  return cast(Tensor::from_vector<double>(values, shape), dtype);
}

// Row-major strides of a shape, in elements.
inline std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> st(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * shape[i];
  return st;
}

// The coordinates of flat index `flat` in a row-major shape.
inline std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> c(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    c[i] = flat % shape[i];
    flat /= shape[i];
  }
  return c;
}

using test::throws_naming;  // tests/common/test_util.h

// Central differences (f(x + h e_i) - f(x - h e_i)) / 2h of a scalar function of a float64 tensor.
inline std::vector<double> numeric_grad(const Tensor& x,
                                        const std::function<double(const Tensor&)>& f,
                                        double h = 1e-5) {
  std::vector<double> g(static_cast<size_t>(x.numel()));
  Tensor xp = x.clone();
  double* p = xp.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = f(xp);
    p[i] = keep - h;
    const double down = f(xp);
    p[i] = keep;
    g[static_cast<size_t>(i)] = (up - down) / (2 * h);
  }
  return g;
}

// sum(a * b) over two tensors of the same size, in double.
inline double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = host_values(a), vb = host_values(b);
  double s = 0.0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

}  // namespace sdlora::test
