// Small dense linear algebra on the host, in double, for SD-LoRA's norms and the KD fit: r x r
// Gram products of low-rank factors (never forming U D) and the least-squares solve of a
// symmetric positive semi-definite system by Jacobi eigen-decomposition.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora {

// A row-major matrix of doubles copied from a 2-d tensor (any device, any float dtype).
struct HostMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> v;
  double at(int64_t i, int64_t j) const { return v[static_cast<size_t>(i * cols + j)]; }
};
HostMatrix host_matrix(const Tensor& t);

// <U_i D_i, U_j D_j>_F = sum((U_i^T U_j) o (D_i D_j^T)): two r x r products, never U D itself.
// ui (d_out, r_i), di (r_i, d_in), uj (d_out, r_j), dj (r_j, d_in).
double product_inner(const HostMatrix& ui, const HostMatrix& di, const HostMatrix& uj,
                     const HostMatrix& dj);
double frobenius(const HostMatrix& m);

// Solves G c = g for a symmetric positive semi-definite G (n x n, row-major) through its
// eigen-decomposition (cyclic Jacobi rotations), dropping eigenvalues below 1e-9 of the largest:
// the minimum-norm least-squares solution, well defined when directions are (nearly) dependent.
std::vector<double> solve_psd(std::vector<double> a, const std::vector<double>& g, int64_t n);

}  // namespace sdlora
