// numpy's legacy permutation (MT19937 and bounded draws) and the task bookkeeping built on it.
#include "data/class_order.h"

#include <algorithm>
#include <numeric>

#include "data/dataset.h"
#include "tensor/error.h"

namespace sdlora::data {

// ---- MT19937 as numpy's legacy seeding uses it (init_genrand).

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  mt_[0] = seed;
  for (uint32_t i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + i;
  pos_ = 624;
}

void NumpyRandomState::refill() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrixA = 0x9908b0dfu;
  for (int i = 0; i < 624; ++i) {
    const uint32_t y = (mt_[i] & kUpper) | (mt_[(i + 1) % 624] & kLower);
    mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  }
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ >= 624) refill();
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0) return 0;
  // The smallest all-ones mask covering max; draws above max are rejected.
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t v;
  if (max <= 0xffffffffull) {
    while ((v = (next_uint32() & mask)) > max) {
    }
  } else {
    do {
      const uint64_t hi = next_uint32();
      v = ((hi << 32) | next_uint32()) & mask;
    } while (v > max);
  }
  return v;
}

std::vector<int64_t> NumpyRandomState::permutation(int64_t n) {
  SDLORA_CHECK(n >= 0, "permutation of a negative count ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) {
    const auto j = static_cast<int64_t>(interval(static_cast<uint64_t>(i)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

// ---- ClassOrder

ClassOrder::ClassOrder(int64_t n_classes, int64_t seed, int64_t init_cls, int64_t increment) {
  SDLORA_CHECK(n_classes > 0, "class order: need at least one class, got ", n_classes);
  if (seed < 0) {
    order_.resize(static_cast<size_t>(n_classes));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  } else {
    SDLORA_CHECK(seed <= 0xffffffffll, "class order: seed ", seed,
                 " does not fit numpy's 32-bit seeds");
    order_ = NumpyRandomState(static_cast<uint32_t>(seed)).permutation(n_classes);
  }
  build(init_cls, increment);
}

ClassOrder::ClassOrder(std::vector<int64_t> order, int64_t init_cls, int64_t increment)
    : order_(std::move(order)) {
  SDLORA_CHECK(!order_.empty(), "class order: empty order");
  build(init_cls, increment);
}

void ClassOrder::build(int64_t init_cls, int64_t increment) {
  const int64_t n = num_classes();
  remap_.assign(static_cast<size_t>(n), -1);
  for (int64_t pos = 0; pos < n; ++pos) {
    const int64_t c = order_[static_cast<size_t>(pos)];
    SDLORA_CHECK(c >= 0 && c < n && remap_[static_cast<size_t>(c)] < 0,
                 "class order: not a permutation of 0..", n - 1, " (class ", c, " at position ",
                 pos, ")");
    remap_[static_cast<size_t>(c)] = pos;
  }
  SDLORA_CHECK(init_cls > 0 && init_cls <= n, "class order: init_cls must be in [1, ", n, "], got ",
               init_cls);
  SDLORA_CHECK(increment > 0, "class order: increment must be positive, got ", increment);
  task_start_ = {0};
  for (int64_t end = init_cls; task_start_.back() < n; end += increment)
    task_start_.push_back(std::min(end, n));
}

int64_t ClassOrder::remap(int64_t original) const {
  SDLORA_CHECK(original >= 0 && original < num_classes(), "class order: label ", original,
               " outside [0, ", num_classes(), ")");
  return remap_[static_cast<size_t>(original)];
}

int64_t ClassOrder::task_begin(int64_t t) const {
  SDLORA_CHECK(t >= 0 && t < num_tasks(), "task ", t, " outside [0, ", num_tasks(), ")");
  return task_start_[static_cast<size_t>(t)];
}

int64_t ClassOrder::task_end(int64_t t) const {
  SDLORA_CHECK(t >= 0 && t < num_tasks(), "task ", t, " outside [0, ", num_tasks(), ")");
  return task_start_[static_cast<size_t>(t) + 1];
}

int64_t ClassOrder::task_of(int64_t remapped) const {
  SDLORA_CHECK(remapped >= 0 && remapped < num_classes(), "class ", remapped, " outside [0, ",
               num_classes(), ")");
  int64_t t = 0;
  while (task_start_[static_cast<size_t>(t) + 1] <= remapped) ++t;
  return t;
}

// ---- Task subsets

std::vector<int64_t> samples_in_classes(const Dataset& dataset, const ClassOrder& order,
                                        int64_t begin, int64_t end) {
  SDLORA_CHECK(dataset.num_classes() == order.num_classes(), "dataset ", dataset.name(), " has ",
               dataset.num_classes(), " classes but the class order has ", order.num_classes());
  std::vector<int64_t> out;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const int64_t r = order.remap(dataset.label(i));
    if (r >= begin && r < end) out.push_back(i);
  }
  return out;
}

std::vector<int64_t> task_train_indices(const Dataset& train, const ClassOrder& order, int64_t t) {
  return samples_in_classes(train, order, order.task_begin(t), order.task_end(t));
}

std::vector<int64_t> task_test_indices(const Dataset& test, const ClassOrder& order, int64_t t) {
  return samples_in_classes(test, order, 0, order.task_end(t));
}

std::shared_ptr<Dataset> task_train_set(std::shared_ptr<const Dataset> train,
                                        const ClassOrder& order, int64_t t) {
  auto idx = task_train_indices(*train, order, t);
  return make_subset(std::move(train), std::move(idx), order.remap_table());
}

std::shared_ptr<Dataset> task_test_set(std::shared_ptr<const Dataset> test, const ClassOrder& order,
                                       int64_t t) {
  auto idx = task_test_indices(*test, order, t);
  return make_subset(std::move(test), std::move(idx), order.remap_table());
}

}  // namespace sdlora::data
