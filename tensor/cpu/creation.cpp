// CPU creation kernels: fill, arange, casts between every dtype pair, Philox uniform/normal.
// Also defines cpu_backend(), the one CpuBackend instance.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/random.h"

namespace sdlora {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

namespace cpu {
namespace {

// Calls f(T{}) with the C++ element type of any dtype.
template <typename F>
void dispatch_any(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      f(float{});
      return;
    case DType::kBFloat16:
      f(BFloat16{});
      return;
    case DType::kFloat64:
      f(double{});
      return;
    case DType::kInt32:
      f(int32_t{});
      return;
    case DType::kInt64:
      f(int64_t{});
      return;
    case DType::kUInt8:
      f(uint8_t{});
      return;
  }
  SDLORA_THROW("cpu: unknown dtype ", static_cast<int>(dtype));
}

// Float -> integer: truncation toward zero through int64 (NaN -> 0, saturating at the int64
// range), then the two's-complement wrap of the narrower type, as PyTorch does on x86.
template <typename Dst>
Dst float_to_int(double v) {
  if (std::isnan(v)) return Dst{0};
  constexpr double kLimit = 9223372036854775808.0;  // 2^63
  if (v >= kLimit) return static_cast<Dst>(std::numeric_limits<int64_t>::max());
  if (v < -kLimit) return static_cast<Dst>(std::numeric_limits<int64_t>::min());
  return static_cast<Dst>(static_cast<int64_t>(v));
}

// One element from Src to Dst. bfloat16 travels through float32 both ways (rounded to nearest
// even on the way in); integers convert exactly where the target can hold the value.
template <typename Dst, typename Src>
Dst convert(Src v) {
  if constexpr (std::is_same_v<Dst, Src>) {
    return v;
  } else if constexpr (std::is_same_v<Src, BFloat16>) {
    return convert<Dst>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<Dst, BFloat16>) {
    return BFloat16(static_cast<float>(v));
  } else if constexpr (std::is_floating_point_v<Dst> || std::is_integral_v<Src>) {
    return static_cast<Dst>(v);
  } else {
    return float_to_int<Dst>(static_cast<double>(v));
  }
}

}  // namespace

void CpuBackend::fill(Tensor& out, double value) {
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = convert<T>(value);
    T* o = static_cast<T*>(out.raw_data());
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  });
}

void CpuBackend::arange(Tensor& out, double start, double step) {
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(start + static_cast<double>(i) * step);
  });
}

void CpuBackend::cast(const Tensor& x, Tensor& out) {
  if (x.dtype() == out.dtype()) {
    if (x.nbytes() > 0 && x.raw_data() != out.raw_data())
      std::memcpy(out.raw_data(), x.raw_data(), x.nbytes());
    return;
  }
  dispatch_any(x.dtype(), [&](auto src_tag) {
    using Src = decltype(src_tag);
    dispatch_any(out.dtype(), [&](auto dst_tag) {
      using Dst = decltype(dst_tag);
      const Src* s = static_cast<const Src*>(x.raw_data());
      Dst* d = static_cast<Dst*>(out.raw_data());
      const int64_t n = x.numel();
      SDLORA_OMP_FOR(n)
      for (int64_t i = 0; i < n; ++i) d[i] = convert<Dst>(s[i]);
    });
  });
}

void CpuBackend::uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_float(out.dtype(), "uniform", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const int64_t n = out.numel();
    SDLORA_OMP_FOR(n * 8)
    for (int64_t i = 0; i < n; ++i) {
      const double u = philox_uniform(seed, offset, static_cast<uint64_t>(i));
      o[i] = static_cast<T>(std::fma(hi - lo, u, lo));
    }
  });
}

void CpuBackend::normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_float(out.dtype(), "normal", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const int64_t n = out.numel();
    SDLORA_OMP_FOR(n * 8)
    for (int64_t i = 0; i < n; ++i) {
      const double z = philox_normal(seed, offset, static_cast<uint64_t>(i));
      o[i] = static_cast<T>(std::fma(std, z, mean));
    }
  });
}

}  // namespace cpu
}  // namespace sdlora
