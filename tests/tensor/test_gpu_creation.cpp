// CUDA against the CPU: fill, arange, casts between every dtype pair, and the Philox draws
// (uniform bit-identical, normal within 1e-6).
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

const DType kAllDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat64,
                            DType::kInt32,   DType::kInt64,    DType::kUInt8};

TEST(GpuCreation, FillEveryDType) {
  SDLORA_REQUIRE_GPU();
  for (DType dtype : kAllDTypes) {
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{3, 5}, Shape{197, 768}}) {
      for (double value : {0.0, 1.0, -2.5, 200.0}) {
        const Tensor want = Tensor::full(shape, value, dtype, Device::cpu());
        const Tensor got = Tensor::full(shape, value, dtype, gpu());
        EXPECT_TRUE(same_bits(got, want, std::string("fill ") + dtype_name(dtype)));
      }
    }
  }
}

TEST(GpuCreation, FillViewLeavesTheRestAlone) {
  SDLORA_REQUIRE_GPU();
  Tensor t = Tensor::zeros({4, 3}, DType::kFloat32, gpu());
  Tensor rows = t.narrow(1, 2);
  fill_(rows, 7.0);
  EXPECT_TRUE(all_close(t, std::vector<double>{0, 0, 0, 7, 7, 7, 7, 7, 7, 0, 0, 0}, 0, 0, "t"));
}

TEST(GpuCreation, ArangeMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  struct Case {
    double start, end, step;
    DType dtype;
  };
  const Case cases[] = {{0, 1, 1, DType::kInt64},         {0, 1000, 3, DType::kInt64},
                        {-5.5, 7, 0.25, DType::kFloat32}, {10, -10, -0.7, DType::kFloat32},
                        {0, 300, 1, DType::kBFloat16},    {0, 100000, 7, DType::kInt32},
                        {0, 256, 1, DType::kUInt8},       {0, 0, 1, DType::kFloat32}};
  for (const Case& c : cases) {
    const Tensor want = arange(c.start, c.end, c.step, c.dtype, Device::cpu());
    const Tensor got = arange(c.start, c.end, c.step, c.dtype, gpu());
    EXPECT_TRUE(same_bits(got, want, std::string("arange ") + dtype_name(c.dtype)));
  }
}

TEST(GpuCreation, CastEveryPairMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  // Values that exercise rounding to bfloat16, truncation toward zero and the uint8 wrap.
  const std::vector<double> values = {-300.75, -3.7,    -1.0,    -0.5,  0.0,   0.49,
                                      0.5,     1.0,     2.5,     3.999, 127.9, 255.0,
                                      1000.25, 65537.0, 1.0 / 3, 1e-3,  -1e-3, 12345.678};
  const Tensor base = Tensor::from_vector<double>(values, {static_cast<int64_t>(values.size())});
  for (DType from : kAllDTypes) {
    if (from == DType::kFloat64) continue;  // float64 runs on the CPU only
    const Tensor src_cpu = cast(base, from);
    const Tensor src_gpu = src_cpu.to(gpu());
    for (DType to : kAllDTypes) {
      if (to == DType::kFloat64) continue;
      const Tensor want = cast(src_cpu, to);
      const Tensor got = cast(src_gpu, to);
      EXPECT_TRUE(
          same_bits(got, want, std::string("cast ") + dtype_name(from) + " -> " + dtype_name(to)));
    }
  }
}

TEST(GpuCreation, CastLargeTensor) {
  SDLORA_REQUIRE_GPU();
  const Pair x = random_pair({1000, 1003}, 11, DType::kFloat32, -1000.0, 1000.0);
  for (DType to : {DType::kBFloat16, DType::kInt32, DType::kInt64, DType::kUInt8}) {
    EXPECT_TRUE(
        same_bits(cast(x.gpu, to), cast(x.cpu, to), std::string("cast to ") + dtype_name(to)));
    EXPECT_TRUE(same_bits(cast(cast(x.gpu, to), DType::kFloat32),
                          cast(cast(x.cpu, to), DType::kFloat32), "cast back"));
  }
}

TEST(GpuRandom, UniformIsBitIdenticalToCpu) {
  SDLORA_REQUIRE_GPU();
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{1000003}}) {
      for (uint64_t offset : {uint64_t{0}, uint64_t{7}, (uint64_t{1} << 40) + 3}) {
        Tensor want = Tensor::empty({n}, dtype, Device::cpu());
        Tensor got = Tensor::empty({n}, dtype, gpu());
        uniform_(want, 1234567890123ull, offset, -2.0, 3.0);
        uniform_(got, 1234567890123ull, offset, -2.0, 3.0);
        EXPECT_TRUE(same_bits(
            got, want, std::string("uniform ") + dtype_name(dtype) + " n=" + std::to_string(n)));
      }
    }
  }
}

TEST(GpuRandom, GeneratorStreamsMatchAcrossDevices) {
  SDLORA_REQUIRE_GPU();
  Generator on_cpu(42), on_gpu(42);
  for (int draw = 0; draw < 3; ++draw) {
    const Tensor want = on_cpu.uniform({197, 5}, 0.0, 1.0, DType::kFloat32, Device::cpu());
    const Tensor got = on_gpu.uniform({197, 5}, 0.0, 1.0, DType::kFloat32, gpu());
    EXPECT_TRUE(same_bits(got, want, "draw " + std::to_string(draw)));
  }
}

TEST(GpuRandom, NormalMatchesCpuWithin1e6) {
  SDLORA_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
    Tensor want = Tensor::empty({n}, DType::kFloat32, Device::cpu());
    Tensor got = Tensor::empty({n}, DType::kFloat32, gpu());
    normal_(want, 99, 5, 0.5, 2.0);
    normal_(got, 99, 5, 0.5, 2.0);
    EXPECT_TRUE(all_close(got, want, 1e-6, 1e-6, "normal n=" + std::to_string(n)));
  }
  // bfloat16 draws round the same float: at most one bfloat16 step apart.
  Tensor want = Tensor::empty({4099}, DType::kBFloat16, Device::cpu());
  Tensor got = Tensor::empty({4099}, DType::kBFloat16, gpu());
  normal_(want, 3, 0, 0.0, 1.0);
  normal_(got, 3, 0, 0.0, 1.0);
  EXPECT_TRUE(all_close(got, want, 8e-3, 1e-6, "normal bfloat16"));
}

}  // namespace
}  // namespace sdlora::test
