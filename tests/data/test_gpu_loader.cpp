// The loader on a GPU: uint8 batches uploaded on the copy stream and converted on the device, and
// float32 batches converted on the host, give the CPU loader's batches, also when an epoch is
// restarted with an upload under way.
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
  for (const auto convert : {LoaderOptions::Convert::kAuto, LoaderOptions::Convert::kHost}) {
    SCOPED_TRACE(convert == LoaderOptions::Convert::kAuto ? "device conversion"
                                                          : "host conversion");
    LoaderOptions o;
    o.batch_size = 16;
    o.num_workers = 3;
    o.seed = 3;
    o.transform = std::make_shared<RandomResizedCrop>(24, 24, 0.05, 1.0, 0.75, 4.0 / 3.0);
    o.normalize = {{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
    Loader cpu(ds, o);
    o.device = Device::cuda();
    o.convert = convert;
    Loader gpu(ds, o);
    EXPECT_EQ(gpu.converts_on_device(), convert == LoaderOptions::Convert::kAuto);
    // Epoch 1 twice: the first pass is abandoned after two batches, an upload under way.
    const std::pair<int64_t, bool> passes[] = {{0, false}, {1, true}, {1, false}};
    for (const auto& [epoch, abandon] : passes) {
      cpu.start_epoch(epoch);
      gpu.start_epoch(epoch);
      Batch a, b;
      int64_t n = 0;
      while (cpu.next(a)) {
        ASSERT_TRUE(gpu.next(b));
        ASSERT_TRUE(b.images.device().is_cuda());
        ASSERT_TRUE(b.labels.device().is_cuda());
        // The host conversion's float operations on the device: the same values.
        EXPECT_EQ(b.images.to_vector<float>(), a.images.to_vector<float>());
        EXPECT_EQ(b.labels.to_vector<int64_t>(), a.labels.to_vector<int64_t>());
        if (abandon && ++n == 2) break;
      }
      if (!abandon) {
        EXPECT_FALSE(gpu.next(b));
      }
    }
  }
}

}  // namespace
}  // namespace sdlora::data
