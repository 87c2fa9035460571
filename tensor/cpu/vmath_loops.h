// The loop shared by the SSE2 and AVX2 files of vmath: whole vectors of W lanes, then the tail
// once through a zero-padded copy, so the kernels never read or write past n.
#pragma once

#include <cstdint>
#include <cstring>

namespace sdlora::cpu {

// kernel(in0, in1, out) handles W lanes; in1 may be nullptr for one-input kernels.
template <int W, typename T, typename K>
void vector_loop(const T* in0, const T* in1, T* out, int64_t n, K&& kernel) {
  int64_t i = 0;
  for (; i + W <= n; i += W) kernel(in0 + i, in1 ? in1 + i : nullptr, out + i);
  if (i < n) {
    const size_t rest = static_cast<size_t>(n - i) * sizeof(T);
    T a[W] = {}, b[W] = {}, y[W];
    std::memcpy(a, in0 + i, rest);
    if (in1) std::memcpy(b, in1 + i, rest);
    kernel(a, in1 ? b : nullptr, y);
    std::memcpy(out + i, y, rest);
  }
}

}  // namespace sdlora::cpu
