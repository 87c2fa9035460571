// Counter-based random numbers (Philox-4x32-10). Element i of a draw depends only on
// (seed, offset, i), so the CPU and CUDA produce the same numbers for the same seed:
// uniform draws are bit-identical; normal draws go through double-precision Box-Muller and
// agree to the last float bit except in rare rounding ties.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/tensor.h"

#if defined(__CUDACC__)
#define SDLORA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SDLORA_HOST_DEVICE inline
#endif

namespace sdlora {

struct Philox4 {
  uint32_t v[4];
};

// Philox-4x32 with 10 rounds: counter (c0..c3), key (k0, k1).
SDLORA_HOST_DEVICE Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                      uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// The four 32-bit words of block `block` of the stream (seed, offset).
SDLORA_HOST_DEVICE Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                    static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform element i in [0, 1): the top 24 bits of word i % 4 of block i / 4.
SDLORA_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  const Philox4 r = philox_block(seed, offset, i / 4);
  return static_cast<float>(r.v[i % 4] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal element i: Box-Muller on words 0 and 1 of block i, in double precision.
SDLORA_HOST_DEVICE double philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const Philox4 r = philox_block(seed, offset, i);
  const double u1 = (static_cast<double>(r.v[0]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
  const double u2 = static_cast<double>(r.v[1]) * (1.0 / 4294967296.0);          // [0, 1)
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586476925 * u2);
}

// A seeded stream: each draw uses the next offset, so successive draws differ and a run is
// reproducible from its seed.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

  // Float tensors (float32, bfloat16, float64) on any device.
  Tensor uniform(const Shape& shape, double lo = 0.0, double hi = 1.0,
                 DType dtype = DType::kFloat32, Device device = Device::cpu());
  Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0,
                DType dtype = DType::kFloat32, Device device = Device::cpu());

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// Fills t in place from the stream (seed, offset).
void uniform_(Tensor& t, uint64_t seed, uint64_t offset, double lo = 0.0, double hi = 1.0);
void normal_(Tensor& t, uint64_t seed, uint64_t offset, double mean = 0.0, double std = 1.0);

}  // namespace sdlora
