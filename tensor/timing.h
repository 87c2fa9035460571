// Wall-clock timing shared by the trainer, pre-training and the benchmarks: a stopwatch and the
// median of repeated measurements.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace sdlora {

class Stopwatch {
 public:
  Stopwatch() : t0_(Clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  double ms() const { return 1e3 * seconds(); }
  void restart() { t0_ = Clock::now(); }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_;
};

// The median (the mean of the middle two for an even count; 0 for none).
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace sdlora
