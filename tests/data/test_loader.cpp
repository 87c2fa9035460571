// The threaded loader: order and augmentation independent of the thread count, batches and
// labels, the decode cache, error propagation and shutdown in the middle of an epoch.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "data/image_folder.h"
#include "data/loader.h"
#include "tests/data/data_test_util.h"

namespace sdlora::data {
namespace {

// n pattern images of 6 x 5 x 3, labels i % 4; counts decodes; can fail or sleep on demand.
class ToyDataset : public Dataset {
 public:
  explicit ToyDataset(int64_t n, int64_t bad = -1, int sleep_ms = 0, bool std_error = false)
      : n_(n), bad_(bad), sleep_ms_(sleep_ms), std_error_(std_error), names_{"a", "b", "c", "d"} {}
  std::string name() const override { return "toy"; }
  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return i % 4; }
  Image image(int64_t i) const override {
    ++decodes;
    if (sleep_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (i == bad_) {
      if (std_error_) throw std::runtime_error("plain failure");
      SDLORA_THROW("corrupt image ", source(i));
    }
    return test::pattern_image(6 + (i == size_mismatch ? 1 : 0), 5, 3, static_cast<int>(i));
  }
  std::string source(int64_t i) const override { return "/toy/" + std::to_string(i) + ".jpg"; }
  const std::vector<std::string>& class_names() const override { return names_; }

  mutable std::atomic<int64_t> decodes{0};
  int64_t size_mismatch = -1;

 private:
  int64_t n_, bad_;
  int sleep_ms_;
  bool std_error_;
  std::vector<std::string> names_;
};

LoaderOptions options(int workers, int64_t batch = 8) {
  LoaderOptions o;
  o.batch_size = batch;
  o.num_workers = workers;
  o.seed = 11;
  o.transform = std::make_shared<Compose>(std::vector<TransformPtr>{
      std::make_shared<RandomCrop>(4, 4, 1), std::make_shared<RandomHorizontalFlip>(0.5)});
  return o;
}

struct EpochRecord {
  std::vector<int64_t> indices, labels;
  std::vector<float> pixels;
  std::vector<int64_t> batch_sizes;
};

EpochRecord run_epoch(Loader& loader, int64_t epoch) {
  EpochRecord r;
  loader.start_epoch(epoch);
  Batch b;
  int64_t expected_index = 0;
  while (loader.next(b)) {
    EXPECT_EQ(b.index, expected_index++);
    EXPECT_EQ(b.images.dtype(), DType::kFloat32);
    EXPECT_EQ(b.labels.dtype(), DType::kInt64);
    EXPECT_EQ(b.images.ndim(), 4);
    EXPECT_EQ(b.images.size(0), b.labels.size(0));
    r.batch_sizes.push_back(b.labels.size(0));
    r.indices.insert(r.indices.end(), b.indices.begin(), b.indices.end());
    const auto l = b.labels.to_vector<int64_t>();
    r.labels.insert(r.labels.end(), l.begin(), l.end());
    const auto p = b.images.to_vector<float>();
    r.pixels.insert(r.pixels.end(), p.begin(), p.end());
  }
  return r;
}

TEST(Loader, SameBatchesWhateverTheThreadCount) {
  auto ds = std::make_shared<ToyDataset>(37);
  std::vector<EpochRecord> e0, e1;
  for (int workers : {0, 1, 3}) {
    Loader loader(ds, options(workers));
    e0.push_back(run_epoch(loader, 0));
    e1.push_back(run_epoch(loader, 1));
  }
  for (size_t k = 1; k < e0.size(); ++k) {
    EXPECT_EQ(e0[k].indices, e0[0].indices);
    EXPECT_EQ(e0[k].pixels, e0[0].pixels);
    EXPECT_EQ(e1[k].indices, e1[0].indices);
    EXPECT_EQ(e1[k].pixels, e1[0].pixels);
  }
  EXPECT_NE(e0[0].indices, e1[0].indices);  // each epoch reshuffles
}

TEST(Loader, DeviceConversionGivesTheHostConversionsValues) {
  // uint8 batches converted by normalize_images (on the CPU here; on a GPU in
  // test_gpu_loader.cpp) against the workers' float conversion, with and without normalisation.
  auto ds = std::make_shared<ToyDataset>(29);
  for (const bool normalise : {false, true}) {
    for (int workers : {0, 3}) {
      SCOPED_TRACE(::testing::Message() << "normalise " << normalise << ", workers " << workers);
      LoaderOptions o = options(workers);
      if (normalise) o.normalize = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
      Loader host(ds, o);
      o.convert = LoaderOptions::Convert::kDevice;
      Loader device(ds, o);
      EXPECT_FALSE(host.converts_on_device());
      EXPECT_TRUE(device.converts_on_device());
      for (int64_t epoch : {0, 1}) {
        const EpochRecord a = run_epoch(host, epoch), b = run_epoch(device, epoch);
        EXPECT_EQ(b.indices, a.indices);
        EXPECT_EQ(b.labels, a.labels);
        EXPECT_EQ(b.batch_sizes, a.batch_sizes);
        EXPECT_EQ(b.pixels, a.pixels);  // the same float operations: bit for bit
      }
    }
  }
}

TEST(Loader, EveryEpochVisitsEverySampleOnceInBatches) {
  auto ds = std::make_shared<ToyDataset>(37);
  Loader loader(ds, options(2));
  EXPECT_EQ(loader.num_batches(), 5);
  const EpochRecord r = run_epoch(loader, 3);
  EXPECT_EQ(r.batch_sizes, (std::vector<int64_t>{8, 8, 8, 8, 5}));
  std::vector<int64_t> sorted = r.indices;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(37);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  for (size_t k = 0; k < r.indices.size(); ++k) EXPECT_EQ(r.labels[k], r.indices[k] % 4);
  EXPECT_EQ(r.indices, loader.epoch_order(3));

  LoaderOptions o = options(2);
  o.drop_last = true;
  o.shuffle = false;
  Loader dropping(ds, o);
  const EpochRecord d = run_epoch(dropping, 0);
  EXPECT_EQ(d.batch_sizes, (std::vector<int64_t>{8, 8, 8, 8}));
  EXPECT_EQ(d.indices, std::vector<int64_t>(all.begin(), all.begin() + 32));
}

TEST(Loader, EachSampleGetsItsOwnSeededAugmentation) {
  auto ds = std::make_shared<ToyDataset>(10);
  const LoaderOptions o = options(2, 4);
  Loader loader(ds, o);
  loader.start_epoch(5);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  const auto got = b.images.to_vector<float>();
  ASSERT_EQ(b.images.shape(), (Shape{4, 3, 4, 4}));
  for (int k = 0; k < 4; ++k) {
    const int64_t idx = b.indices[static_cast<size_t>(k)];
    SampleRng rng = SampleRng::for_sample(o.seed, 5, idx);
    const Image img = o.transform->apply(ds->image(idx), rng);
    std::vector<float> want(48);
    image_to_chw(img, Normalize{}, want.data());
    EXPECT_EQ(std::vector<float>(got.begin() + k * 48, got.begin() + (k + 1) * 48), want)
        << "sample " << idx;
  }
}

TEST(Loader, CacheKeepsDecodedImagesAcrossEpochsWithinTheBudget) {
  auto ds = std::make_shared<ToyDataset>(20);
  LoaderOptions o = options(2);
  o.cache_bytes = 1 << 20;
  Loader loader(ds, o);
  const EpochRecord first = run_epoch(loader, 0);
  const EpochRecord second = run_epoch(loader, 0);
  EXPECT_EQ(ds->decodes.load(), 20);  // the second epoch decoded nothing
  EXPECT_EQ(loader.stats().cache_hits, 20);
  EXPECT_EQ(loader.stats().cached_images, 20);
  EXPECT_EQ(loader.stats().cached_bytes, 20 * 90);
  EXPECT_EQ(first.pixels, second.pixels);  // same epoch number: same augmentation

  auto ds2 = std::make_shared<ToyDataset>(20);
  o.cache_bytes = 90 * 7 + 50;  // room for 7 images of 6 x 5 x 3
  Loader small(ds2, o);
  run_epoch(small, 0);
  run_epoch(small, 1);
  EXPECT_EQ(small.stats().cached_images, 7);
  EXPECT_EQ(ds2->decodes.load(), 20 + 13);
}

TEST(Loader, PreTransformRunsOnceBeforeTheCache) {
  auto ds = std::make_shared<ToyDataset>(6);
  LoaderOptions o = options(1, 3);
  o.pre_transform = std::make_shared<Resize>(12, 10, Interp::kBilinear);
  o.transform = std::make_shared<CenterCrop>(8, 8);
  o.cache_bytes = 1 << 20;
  Loader loader(ds, o);
  run_epoch(loader, 0);
  EXPECT_EQ(loader.stats().cached_bytes, 6 * 12 * 10 * 3);
  o.pre_transform = std::make_shared<RandomHorizontalFlip>(0.5);
  EXPECT_THROW(Loader(ds, o), Error);
}

TEST(Loader, AWorkerErrorReachesTheConsumerWithTheFileName) {
  for (int workers : {0, 2}) {
    for (bool std_error : {false, true}) {
      auto ds = std::make_shared<ToyDataset>(20, /*bad=*/13, 0, std_error);
      LoaderOptions o = options(workers, 4);
      o.shuffle = false;
      Loader loader(ds, o);
      loader.start_epoch(0);
      Batch b;
      int delivered = 0, failed = 0;
      for (int k = 0; k < 5; ++k) {
        try {
          ASSERT_TRUE(loader.next(b));
          ++delivered;
        } catch (const Error& e) {
          ++failed;
          const std::string m = e.what();
          EXPECT_NE(m.find("/toy/13.jpg"), std::string::npos) << m;
          EXPECT_NE(m.find(std_error ? "plain failure" : "corrupt image"), std::string::npos) << m;
        }
      }
      EXPECT_EQ(failed, 1);
      EXPECT_EQ(delivered, 4);
      EXPECT_FALSE(loader.next(b));
    }
  }
}

TEST(Loader, ACorruptJpegInAFolderNamesTheFile) {
  test::TempDir dir;
  for (int i = 0; i < 6; ++i)
    test::write_jpeg(dir.file("c/" + std::to_string(i) + ".jpg"),
                     test::pattern_image(64, 64, 3, i));
  const std::string bad = dir.path() + "/c/3.jpg";
  auto bytes = test::read_bytes(bad);
  bytes.resize(bytes.size() / 2);
  test::write_bytes(bad, bytes);
  ImageFolderOptions fo;
  fo.train_fraction = 1.0;
  auto ds = open_image_folder(dir.path(), fo);
  LoaderOptions o = options(3, 2);
  Loader loader(ds, o);
  loader.start_epoch(0);
  Batch b;
  std::string message;
  int batches = 0;
  while (true) {
    try {
      if (!loader.next(b)) break;
      ++batches;
    } catch (const Error& e) {
      message = e.what();
    }
  }
  EXPECT_EQ(batches, 2);
  EXPECT_NE(message.find("truncated JPEG " + bad), std::string::npos) << message;
}

TEST(Loader, MismatchedSizesInABatchAreAnError) {
  auto ds = std::make_shared<ToyDataset>(4);
  ds->size_mismatch = 2;
  LoaderOptions o = options(1, 4);
  o.transform = nullptr;
  o.shuffle = false;
  Loader loader(ds, o);
  loader.start_epoch(0);
  Batch b;
  try {
    loader.next(b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/toy/2.jpg"), std::string::npos) << e.what();
  }
}

TEST(Loader, StopsCleanlyInTheMiddleOfAnEpoch) {
  auto ds = std::make_shared<ToyDataset>(400, -1, /*sleep_ms=*/2);
  const auto start = std::chrono::steady_clock::now();
  {
    Loader loader(ds, options(3, 16));
    loader.start_epoch(0);
    Batch b;
    ASSERT_TRUE(loader.next(b));
  }  // destructor: workers are mid-batch
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(s, 5.0);
  EXPECT_LT(ds->decodes.load(), 400);
}

TEST(Loader, RestartingAnEpochMidwayGivesTheFullEpoch) {
  auto ds = std::make_shared<ToyDataset>(30);
  Loader loader(ds, options(2, 4));
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  ASSERT_TRUE(loader.next(b));
  const EpochRecord again = run_epoch(loader, 1);
  Loader fresh(ds, options(0, 4));
  EXPECT_EQ(again.indices, run_epoch(fresh, 1).indices);
  EXPECT_EQ(again.indices.size(), 30u);
}

TEST(Loader, MisuseIsAnError) {
  auto ds = std::make_shared<ToyDataset>(3);
  Loader loader(ds, options(1));
  Batch b;
  EXPECT_THROW(loader.next(b), Error);
  LoaderOptions o = options(1);
  o.batch_size = 0;
  EXPECT_THROW(Loader(ds, o), Error);
  auto empty = std::make_shared<ToyDataset>(0);
  Loader none(empty, options(2));
  none.start_epoch(0);
  EXPECT_FALSE(none.next(b));
}

}  // namespace
}  // namespace sdlora::data
