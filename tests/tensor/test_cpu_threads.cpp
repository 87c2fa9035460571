// CPU thread counts: set_cpu_threads reaches OpenBLAS and OpenMP, results do not depend on the
// count (a product large enough for OpenBLAS to split, an elementwise op past the size where the
// loops are threaded), and the OpenBLAS the binary runs with is the flavour the build chose.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sdlora::test {
namespace {

// Restores the library default when a test ends, whatever it set.
struct DefaultThreadsAfter {
  ~DefaultThreadsAfter() { set_cpu_threads(0); }
};

TEST(CpuThreads, SetReachesTheBlas) {
  DefaultThreadsAfter restore;
  set_cpu_threads(1);
  EXPECT_EQ(cpu_threads(), 1);
  set_cpu_threads(2);
  EXPECT_EQ(cpu_threads(), 2);
  set_cpu_threads(0);
  EXPECT_GE(cpu_threads(), 1);
}

TEST(CpuThreads, ResultsDoNotDependOnTheThreadCount) {
  DefaultThreadsAfter restore;
  Generator gen(11);
  const Device cpu = Device::cpu();
  const Tensor a = gen.normal({384, 256}, 0.0, 1.0, DType::kFloat32, cpu);
  const Tensor b = gen.normal({256, 320}, 0.0, 1.0, DType::kFloat32, cpu);
  const Tensor x = gen.normal({600, 512}, 0.0, 1.0, DType::kFloat32, cpu);  // 307k elements
  std::vector<std::vector<float>> products, gelus;
  for (int threads : {1, 2, 4}) {
    set_cpu_threads(threads);
    products.push_back(matmul(a, b).to_vector<float>());
    gelus.push_back(gelu(x).to_vector<float>());
  }
  // The naive double-precision product as the reference for the one-thread result.
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (size_t i = 0; i < 384; i += 37)
    for (size_t j = 0; j < 320; j += 29) {
      double ref = 0;
      for (size_t k = 0; k < 256; ++k)
        ref += static_cast<double>(av[i * 256 + k]) * static_cast<double>(bv[k * 320 + j]);
      EXPECT_NEAR(products[0][i * 320 + j], ref, 1e-4 * (1 + std::abs(ref))) << i << "," << j;
    }
  // Threads split rows and columns, never one element's sum: the same bits at every count.
  for (size_t t = 1; t < products.size(); ++t) {
    EXPECT_EQ(std::memcmp(products[t].data(), products[0].data(), products[0].size() * 4), 0)
        << "product at thread setting " << t;
    EXPECT_EQ(std::memcmp(gelus[t].data(), gelus[0].data(), gelus[0].size() * 4), 0)
        << "gelu at thread setting " << t;
  }
}

TEST(CpuThreads, TheBlasIsTheFlavourTheBuildChose) {
  const std::string expected = SDLORA_EXPECTED_BLAS_THREADING;
  if (expected.empty()) GTEST_SKIP() << "the build's OpenBLAS is not one of Debian's flavours";
  // A mismatch means the loader found another libopenblas.so.0 than the one linked (an
  // LD_LIBRARY_PATH or the alternatives system), and the thread-pool reasoning does not hold.
  EXPECT_EQ(std::string(cpu_blas_threading()), expected);
}

}  // namespace
}  // namespace sdlora::test
