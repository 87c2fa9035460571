// Class-incremental metrics as docs/sdlora-spec.md defines them: the accuracy matrix R[i][j]
// (accuracy on task j's classes after training task i, j <= i), the sample-weighted accuracy
// after each task, Acc (after the last task), AAA (the mean of those) and forgetting. Built from
// correct / total counts per task, so every figure is exact and reproducible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace sdlora::cl {

// Correct predictions and test images per task j <= i, counted after training task i.
// correct5: images whose label is among the 5 largest logits (top-5, as the released code logs
// it); empty in runs recorded before it was counted.
struct TaskCounts {
  std::vector<int64_t> correct, total, correct5;
};

class AccuracyMatrix {
 public:
  // Appends the evaluation after the next task; it must cover tasks 0..i (i = num_tasks()).
  void add(const TaskCounts& counts);
  int64_t num_tasks() const { return static_cast<int64_t>(rows_.size()); }
  const TaskCounts& counts(int64_t i) const { return rows_.at(static_cast<size_t>(i)); }

  // R[i][j] in percent (j <= i); a task without test images counts as 0.
  double r(int64_t i, int64_t j) const;
  std::vector<std::vector<double>> matrix() const;  // row i has i + 1 entries
  // Accuracy after task i over every seen test image (sample-weighted), percent.
  double accuracy_after(int64_t i) const;
  std::vector<double> acc_per_task() const;
  double acc_final() const;  // 0 with no tasks
  double aaa() const;
  // mean over j < last of (max over j <= i < last of R[i][j]) - R[last][j]; 0 with one task.
  double forgetting() const;
  // The released code's form: the max runs over every row including the last, so each term
  // is >= 0: mean over j < last of (max over j <= i <= last of R[i][j]) - R[last][j].
  double forgetting_released() const;
  // Top-5 accuracy after task i over every seen test image (NaN when not counted).
  double top5_after(int64_t i) const;
  // Accuracy after task i on the classes of earlier tasks (j < i; NaN for i = 0) and on task
  // i's own classes, sample-weighted, as the released code's "old" and "new".
  double old_after(int64_t i) const;
  double new_after(int64_t i) const;

 private:
  std::vector<TaskCounts> rows_;
};

}  // namespace sdlora::cl
