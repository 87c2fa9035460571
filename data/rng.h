// Per-sample random streams for augmentation and shuffling, built on the library's counter-based
// Philox: the numbers a sample gets depend only on (seed, epoch, sample), never on which thread
// draws them or in what order.
#pragma once

#include <cstdint>

#include "tensor/random.h"

namespace sdlora::data {

class SampleRng {
 public:
  // The stream of sample `index` in epoch `epoch`.
  static SampleRng for_sample(uint64_t seed, int64_t epoch, int64_t index) {
    return SampleRng(seed, (static_cast<uint64_t>(epoch) << 32) ^ static_cast<uint64_t>(index));
  }
  // The stream that shuffles epoch `epoch` (disjoint from every sample stream).
  static SampleRng for_shuffle(uint64_t seed, int64_t epoch) {
    return SampleRng(seed, (uint64_t{1} << 63) | static_cast<uint64_t>(epoch));
  }
  SampleRng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

  uint32_t next_u32() {
    if (used_ == 4) {
      block_ = philox_block(seed_, stream_, counter_++);
      used_ = 0;
    }
    return block_.v[used_++];
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() {
    const uint64_t hi = next_u32() >> 5, lo = next_u32() >> 6;  // 27 + 26 bits
    return (static_cast<double>(hi) * 67108864.0 + static_cast<double>(lo)) *
           (1.0 / 9007199254740992.0);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi), unbiased (rejection of the incomplete top range).
  int64_t randint(int64_t lo, int64_t hi) {
    const uint64_t n = static_cast<uint64_t>(hi - lo);
    if (n <= 1) return lo;
    const uint64_t limit = (~uint64_t{0} / n) * n;
    uint64_t v;
    do {
      v = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
    } while (v >= limit);
    return lo + static_cast<int64_t>(v % n);
  }

 private:
  uint64_t seed_, stream_;
  uint64_t counter_ = 0;
  Philox4 block_{};
  int used_ = 4;
};

}  // namespace sdlora::data
