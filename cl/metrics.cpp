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
  SDLORA_CHECK(counts.correct5.empty() || counts.correct5.size() == want,
               "AccuracyMatrix: the evaluation after task ", rows_.size(), " has ",
               counts.correct5.size(), " top-5 counts for ", want, " tasks");
  for (size_t j = 0; j < want; ++j) {
    SDLORA_CHECK(counts.correct[j] >= 0 && counts.correct[j] <= counts.total[j],
                 "AccuracyMatrix: task ", j, ": ", counts.correct[j], " correct of ",
                 counts.total[j]);
    SDLORA_CHECK(counts.correct5.empty() || (counts.correct5[j] >= counts.correct[j] &&
                                             counts.correct5[j] <= counts.total[j]),
                 "AccuracyMatrix: task ", j, ": ", counts.correct5[j], " top-5 correct of ",
                 counts.total[j], " with ", counts.correct[j], " top-1 correct");
  }
  rows_.push_back(counts);
}

double AccuracyMatrix::r(int64_t i, int64_t j) const {
  const TaskCounts& row = counts(i);
  SDLORA_CHECK(j >= 0 && j <= i, "AccuracyMatrix: R[", i, "][", j, "] is not defined (j <= i)");
  const auto jj = static_cast<size_t>(j);
  return row.total[jj] > 0
             ? 100.0 * static_cast<double>(row.correct[jj]) / static_cast<double>(row.total[jj])
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

namespace {

// Percent of the tasks [begin, end) of one row: correct (or correct5) over total.
double percent(const std::vector<int64_t>& correct, const std::vector<int64_t>& total, size_t begin,
               size_t end) {
  int64_t c = 0, n = 0;
  for (size_t j = begin; j < end; ++j) {
    c += correct[j];
    n += total[j];
  }
  return n > 0 ? 100.0 * static_cast<double>(c) / static_cast<double>(n) : 0.0;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double AccuracyMatrix::accuracy_after(int64_t i) const {
  const TaskCounts& row = counts(i);
  return percent(row.correct, row.total, 0, row.total.size());
}

double AccuracyMatrix::top5_after(int64_t i) const {
  const TaskCounts& row = counts(i);
  return row.correct5.empty() ? kNaN : percent(row.correct5, row.total, 0, row.total.size());
}

double AccuracyMatrix::old_after(int64_t i) const {
  const TaskCounts& row = counts(i);
  return i == 0 ? kNaN : percent(row.correct, row.total, 0, static_cast<size_t>(i));
}

double AccuracyMatrix::new_after(int64_t i) const {
  const TaskCounts& row = counts(i);
  return percent(row.correct, row.total, static_cast<size_t>(i), static_cast<size_t>(i) + 1);
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

double AccuracyMatrix::forgetting_released() const {
  const int64_t last = num_tasks() - 1;
  if (last < 1) return 0.0;
  double s = 0.0;
  for (int64_t j = 0; j < last; ++j) {
    double best = r(j, j);
    for (int64_t i = j + 1; i <= last; ++i) best = std::max(best, r(i, j));
    s += best - r(last, j);
  }
  return s / static_cast<double>(last);
}

}  // namespace sdlora::cl
