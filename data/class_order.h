// Class-incremental splits: the class order (numpy's legacy RandomState(seed).permutation,
// reproduced bit for bit), labels remapped to their position in it, and the classes and samples
// of each task.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/error.h"

namespace sdlora::data {

class Dataset;

// numpy's legacy RandomState: MT19937 seeded with init_genrand(seed). Only the draws the
// benchmarks' protocol needs are provided.
class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed);
  uint32_t next_uint32();
  // A uniform integer in [0, max], numpy's masked rejection sampling (random_interval).
  uint64_t interval(uint64_t max);
  // RandomState.permutation(n): Fisher-Yates over 0..n-1 from the last element down.
  std::vector<int64_t> permutation(int64_t n);

 private:
  void refill();
  uint32_t mt_[624];
  int pos_ = 624;
};

// The class order of a run and the tasks it is cut into: init_cls classes, then increment
// classes per task (the last task may hold fewer when they do not divide evenly).
class ClassOrder {
 public:
  // seed < 0 keeps the natural order 0..n-1 (the official code's `shuffle: false`).
  ClassOrder(int64_t n_classes, int64_t seed, int64_t init_cls, int64_t increment);
  // An explicit order (a permutation of 0..n-1).
  ClassOrder(std::vector<int64_t> order, int64_t init_cls, int64_t increment);

  int64_t num_classes() const { return static_cast<int64_t>(order_.size()); }
  const std::vector<int64_t>& order() const { return order_; }
  // Original label -> position in the order (the label the model sees).
  int64_t remap(int64_t original) const;
  const std::vector<int64_t>& remap_table() const { return remap_; }

  int64_t num_tasks() const { return static_cast<int64_t>(task_start_.size()) - 1; }
  // Remapped labels of task t are [task_begin(t), task_end(t)).
  int64_t task_begin(int64_t t) const;
  int64_t task_end(int64_t t) const;
  int64_t task_size(int64_t t) const { return task_end(t) - task_begin(t); }
  // The task that remapped label l belongs to.
  int64_t task_of(int64_t remapped) const;

 private:
  void build(int64_t init_cls, int64_t increment);
  std::vector<int64_t> order_, remap_, task_start_;
};

// Indices of the samples of `dataset` whose remapped label lies in [begin, end).
std::vector<int64_t> samples_in_classes(const Dataset& dataset, const ClassOrder& order,
                                        int64_t begin, int64_t end);
// Task t's training samples: its own classes only.
std::vector<int64_t> task_train_indices(const Dataset& train, const ClassOrder& order, int64_t t);
// The test samples after task t: every class seen so far (tasks 0..t).
std::vector<int64_t> task_test_indices(const Dataset& test, const ClassOrder& order, int64_t t);
// The same as datasets whose labels are already remapped to positions in the order.
std::shared_ptr<Dataset> task_train_set(std::shared_ptr<const Dataset> train,
                                        const ClassOrder& order, int64_t t);
std::shared_ptr<Dataset> task_test_set(std::shared_ptr<const Dataset> test, const ClassOrder& order,
                                       int64_t t);

}  // namespace sdlora::data
