// Host linear algebra for SD-LoRA (host_linalg.h).
#include "nn/host_linalg.h"

#include <algorithm>
#include <cmath>

#include "tensor/ops.h"

namespace sdlora {

HostMatrix host_matrix(const Tensor& t) {
  HostMatrix m;
  m.rows = t.size(0);
  m.cols = t.size(1);
  m.v = cast(t.to(Device::cpu()), DType::kFloat64).to_vector<double>();
  return m;
}

double product_inner(const HostMatrix& ui, const HostMatrix& di, const HostMatrix& uj,
                     const HostMatrix& dj) {
  double total = 0.0;
  for (int64_t a = 0; a < ui.cols; ++a)
    for (int64_t b = 0; b < uj.cols; ++b) {
      double uu = 0.0, dd = 0.0;
      for (int64_t r = 0; r < ui.rows; ++r) uu += ui.at(r, a) * uj.at(r, b);
      for (int64_t c = 0; c < di.cols; ++c) dd += di.at(a, c) * dj.at(b, c);
      total += uu * dd;
    }
  return total;
}

double frobenius(const HostMatrix& m) {
  double s = 0.0;
  for (double x : m.v) s += x * x;
  return std::sqrt(s);
}

std::vector<double> solve_psd(std::vector<double> a, const std::vector<double>& g, int64_t n) {
  auto A = [&](int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * n + j)]; };
  std::vector<double> vec(static_cast<size_t>(n * n), 0.0);
  auto V = [&](int64_t i, int64_t j) -> double& { return vec[static_cast<size_t>(i * n + j)]; };
  for (int64_t i = 0; i < n; ++i) V(i, i) = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) (i == j ? diag : off) += A(i, j) * A(i, j);
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        if (A(p, q) == 0.0) continue;
        // Rotation J (c at pp and qq, s at pq, -s at qp) zeroing A(p, q) in J^T A J.
        const double theta = (A(q, q) - A(p, p)) / (2.0 * A(p, q));
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          const double kp = A(k, p), kq = A(k, q);
          A(k, p) = c * kp - s * kq;
          A(k, q) = s * kp + c * kq;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double pk = A(p, k), qk = A(q, k);
          A(p, k) = c * pk - s * qk;
          A(q, k) = s * pk + c * qk;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double kp = V(k, p), kq = V(k, q);
          V(k, p) = c * kp - s * kq;
          V(k, q) = s * kp + c * kq;
        }
      }
  }
  double top = 0.0;
  for (int64_t i = 0; i < n; ++i) top = std::max(top, A(i, i));
  std::vector<double> c(static_cast<size_t>(n), 0.0);
  for (int64_t e = 0; e < n; ++e) {
    const double lambda = A(e, e);
    if (!(lambda > 1e-9 * top)) continue;
    double proj = 0.0;
    for (int64_t i = 0; i < n; ++i) proj += V(i, e) * g[static_cast<size_t>(i)];
    for (int64_t i = 0; i < n; ++i) c[static_cast<size_t>(i)] += V(i, e) * proj / lambda;
  }
  return c;
}

}  // namespace sdlora
