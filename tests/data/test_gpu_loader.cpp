// The loader on a GPU: pinned host batches copied to the device give the CPU loader's batches.
#include <gtest/gtest.h>

#include "data/loader.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

namespace sdlora::data {
namespace {

TEST(LoaderGpu, DeviceBatchesEqualHostBatches) {
  SDLORA_REQUIRE_GPU();
  std::vector<uint8_t> px;
  std::vector<int64_t> labels;
  for (int i = 0; i < 50; ++i) {
    const Image img = test::pattern_image(40, 30, 3, i);
    px.insert(px.end(), img.pixels.begin(), img.pixels.end());
    labels.push_back(i % 5);
  }
  auto ds = std::make_shared<InMemoryDataset>("gpu toy", "memory", 40, 30, 3, px, labels,
                                              std::vector<std::string>{"a", "b", "c", "d", "e"});
  LoaderOptions o;
  o.batch_size = 16;
  o.num_workers = 3;
  o.seed = 3;
  o.transform = std::make_shared<RandomResizedCrop>(24, 24, 0.05, 1.0, 0.75, 4.0 / 3.0);
  Loader cpu(ds, o);
  o.device = Device::cuda();
  Loader gpu(ds, o);
  for (int64_t epoch : {0, 1}) {
    cpu.start_epoch(epoch);
    gpu.start_epoch(epoch);
    Batch a, b;
    while (cpu.next(a)) {
      ASSERT_TRUE(gpu.next(b));
      ASSERT_TRUE(b.images.device().is_cuda());
      ASSERT_TRUE(b.labels.device().is_cuda());
      EXPECT_EQ(b.images.to_vector<float>(), a.images.to_vector<float>());
      EXPECT_EQ(b.labels.to_vector<int64_t>(), a.labels.to_vector<int64_t>());
    }
    EXPECT_FALSE(gpu.next(b));
  }
}

}  // namespace
}  // namespace sdlora::data
