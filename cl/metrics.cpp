// The accuracy matrix and the figures derived from it (definitions in metrics.h).
#include "cl/metrics.h"

#include <algorithm>

#include "tensor/error.h"

namespace sdlora::cl {

void AccuracyMatrix::add(const TaskCounts& counts) {
  const size_t want = rows_.size() + 1;
  SDLORA_CHECK(counts.correct.size() == want && counts.total.size() == want,
               "AccuracyMatrix: the evaluation after task ", rows_.size(), " must cover ", want,
               " tasks, got ", counts.correct.size(), " correct and ", counts.total.size(),
               " total counts");
  for (size_t j = 0; j < want; ++j)
    SDLORA_CHECK(counts.correct[j] >= 0 && counts.correct[j] <= counts.total[j],
                 "AccuracyMatrix: task ", j, ": ", counts.correct[j], " correct of ",
                 counts.total[j]);
  rows_.push_back(counts);
}

double AccuracyMatrix::r(int64_t i, int64_t j) const {
  const TaskCounts& row = counts(i);
  SDLORA_CHECK(j >= 0 && j <= i, "AccuracyMatrix: R[", i, "][", j, "] is not defined (j <= i)");
  const auto jj = static_cast<size_t>(j);
  return row.total[jj] > 0 ? 100.0 * static_cast<double>(row.correct[jj]) /
                                 static_cast<double>(row.total[jj])
                           : 0.0;
}

std::vector<std::vector<double>> AccuracyMatrix::matrix() const {
  std::vector<std::vector<double>> m;
  for (int64_t i = 0; i < num_tasks(); ++i) {
    m.emplace_back();
    for (int64_t j = 0; j <= i; ++j) m.back().push_back(r(i, j));
  }
  return m;
}

double AccuracyMatrix::accuracy_after(int64_t i) const {
  const TaskCounts& row = counts(i);
  int64_t correct = 0, total = 0;
  for (size_t j = 0; j < row.total.size(); ++j) {
    correct += row.correct[j];
    total += row.total[j];
  }
  return total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

std::vector<double> AccuracyMatrix::acc_per_task() const {
  std::vector<double> a;
  for (int64_t i = 0; i < num_tasks(); ++i) a.push_back(accuracy_after(i));
  return a;
}

double AccuracyMatrix::acc_final() const {
  return num_tasks() > 0 ? accuracy_after(num_tasks() - 1) : 0.0;
}

double AccuracyMatrix::aaa() const {
  if (num_tasks() == 0) return 0.0;
  double s = 0.0;
  for (double a : acc_per_task()) s += a;
  return s / static_cast<double>(num_tasks());
}

double AccuracyMatrix::forgetting() const {
  const int64_t last = num_tasks() - 1;
  if (last < 1) return 0.0;
  double s = 0.0;
  for (int64_t j = 0; j < last; ++j) {
    double best = r(j, j);
    for (int64_t i = j + 1; i < last; ++i) best = std::max(best, r(i, j));
    s += best - r(last, j);
  }
  return s / static_cast<double>(last);
}

}  // namespace sdlora::cl
