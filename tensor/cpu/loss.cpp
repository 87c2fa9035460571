// CPU cross-entropy over logits (B, C) and integer labels (B): the batch-mean loss and its
// gradient. Row statistics in double; each row's max is subtracted before exponentiating
// (SLEEF's vector exp, vmath.h).
#include <cmath>
#include <vector>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vmath.h"

namespace sdlora::cpu {
namespace {

// The row's max, e[j] = exp(x[j] - max) and log sum_j e[j]; e is a per-thread scratch row.
template <typename T>
const double* row_logsumexp(const T* x, int64_t C, double& mx, double& log_denom) {
  thread_local std::vector<double> buf;
  if (buf.size() < static_cast<size_t>(C)) buf.resize(static_cast<size_t>(C));
  double* e = buf.data();
  mx = x[0];
  for (int64_t j = 1; j < C; ++j) mx = std::fmax(mx, static_cast<double>(x[j]));
  for (int64_t j = 0; j < C; ++j) e[j] = static_cast<double>(x[j]) - mx;
  exp_f64(e, e, C);
  double denom = 0.0;
  for (int64_t j = 0; j < C; ++j) denom += e[j];
  log_denom = std::log(denom);
  return e;
}

}  // namespace

// loss = (1/B) sum_b [logsumexp(logits[b]) - logits[b, label_b]]
void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss) {
  const std::vector<int64_t> lab = index_values(labels);
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* lp = logits.data<T>();
    const int64_t B = logits.size(0), C = logits.size(1);
    double total = 0.0;
    for (int64_t b = 0; b < B; ++b) {
      const T* row = lp + b * C;
      double mx, log_denom;
      row_logsumexp(row, C, mx, log_denom);
      total += mx + log_denom - static_cast<double>(row[lab[static_cast<size_t>(b)]]);
    }
    loss.data<float>()[0] = static_cast<float>(total / static_cast<double>(B));
  });
}

// dlogits[b, j] = (softmax(logits[b])_j - [j == label_b]) dloss / B
void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& labels,
                                        const Tensor& dloss, Tensor& dlogits) {
  const std::vector<int64_t> lab = index_values(labels);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* lp = logits.data<T>();
    T* dp = dlogits.data<T>();
    const int64_t B = logits.size(0), C = logits.size(1);
    const double scale = static_cast<double>(dloss.data<float>()[0]) / static_cast<double>(B);
    SDLORA_OMP_FOR(logits.numel())
    for (int64_t b = 0; b < B; ++b) {
      const T* row = lp + b * C;
      double mx, log_denom;
      const double* e = row_logsumexp(row, C, mx, log_denom);
      const double inv = std::exp(-log_denom);  // softmax_j = e_j / sum e
      const int64_t label = lab[static_cast<size_t>(b)];
      for (int64_t j = 0; j < C; ++j) {
        const double p = e[j] * inv;
        dp[b * C + j] = static_cast<T>((p - (j == label ? 1.0 : 0.0)) * scale);
      }
    }
  });
}

}  // namespace sdlora::cpu
