// The cl tests' synthetic problem and tiny config (cl_test_util.h).
#include "cl_test_util.h"

#include "tensor/random.h"

namespace sdlora::cl::test {

std::shared_ptr<data::Dataset> synthetic_dataset(int64_t n_classes, int64_t per_class,
                                                 uint64_t seed, const std::string& name) {
  constexpr int kSize = 8;
  const int64_t n = n_classes * per_class;
  std::vector<uint8_t> pixels(static_cast<size_t>(n * kSize * kSize));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::vector<std::string> names;
  for (int64_t c = 0; c < n_classes; ++c) names.push_back("class" + std::to_string(c));
  Generator gen(seed);
  const std::vector<float> noise =
      gen.uniform(Shape{n * kSize * kSize}, 0.0, 60.0).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % n_classes;
    labels[static_cast<size_t>(i)] = c;
    // A 3 x 3 bright square at one of the places of a grid, one place per class.
    const int64_t r0 = (c / 3) * 3 % 6, c0 = (c % 3) * 3 % 6;
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x) {
        const size_t k = static_cast<size_t>((i * kSize + y) * kSize + x);
        const bool on = y >= r0 && y < r0 + 3 && x >= c0 && x < c0 + 3;
        pixels[k] = static_cast<uint8_t>((on ? 180.0f : 0.0f) + noise[k]);
      }
  }
  return std::make_shared<data::InMemoryDataset>(name, "synthetic", kSize, kSize, 1,
                                                 std::move(pixels), std::move(labels), names);
}

Datasets synthetic_datasets(int64_t n_classes, int64_t train_per_class, int64_t test_per_class) {
  return {synthetic_dataset(n_classes, train_per_class, 11, "synthetic train"),
          synthetic_dataset(n_classes, test_per_class, 22, "synthetic test")};
}

Config tiny_config(const std::string& method) {
  Config c;
  c.dataset = "synthetic";
  c.method = method;
  c.init_cls = 2;
  c.increment = 2;
  c.seed = 1993;
  c.init_epoch = 6;
  c.epochs = 6;
  c.init_lr = 0.1;
  c.lrate = 0.1;
  c.scheduler = "constant";
  c.batch_size = 16;
  c.rank = 2;
  c.backbone = "custom";
  c.image_size = 8;
  c.patch_size = 4;
  c.embed_dim = 16;
  c.depth = 1;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.channels = 1;
  c.transform = "none";
  c.device = "cpu";
  c.num_workers = 1;
  c.cache_mb = 16;
  c.validate();
  return c;
}

}  // namespace sdlora::cl::test
