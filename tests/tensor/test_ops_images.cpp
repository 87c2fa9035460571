// Input images on the CPU: normalize_images against a float64 reference of (x / 255 - mean) / std
// with HWC -> CHW reordering, without normalisation, and its errors; the upload ring on the CPU.
#include "tensor/upload.h"
#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

Tensor byte_images(const Shape& bhwc, uint32_t seed) {
  std::vector<uint8_t> v(static_cast<size_t>(bhwc[0] * bhwc[1] * bhwc[2] * bhwc[3]));
  for (uint8_t& b : v) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(seed >> 24);
  }
  if (v.size() >= 2) {
    v[0] = 0;
    v[1] = 255;  // both ends of the range
  }
  return Tensor::from_vector(v, bhwc);
}

std::vector<double> reference(const Tensor& x, const std::vector<float>& mean,
                              const std::vector<float>& std) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::vector<uint8_t> v = x.to_vector<uint8_t>();
  std::vector<double> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          double y = v[static_cast<size_t>(((b * H + h) * W + w) * C + c)] / 255.0;
          if (!mean.empty()) y = (y - mean[static_cast<size_t>(c)]) / std[static_cast<size_t>(c)];
          out[static_cast<size_t>(((b * C + c) * H + h) * W + w)] = y;
        }
  return out;
}

TEST(OpsImages, NormalizeMatchesTheReference) {
  const std::vector<float> mean3 = {0.485f, 0.456f, 0.406f}, std3 = {0.229f, 0.224f, 0.225f};
  const Tensor rgb = byte_images({3, 5, 7, 3}, 1);
  const Tensor y = normalize_images(rgb, mean3, std3);
  ASSERT_EQ(y.shape(), (Shape{3, 3, 5, 7}));
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_TRUE(all_close(y, reference(rgb, mean3, std3), 1e-6, 1e-6, "normalised rgb"));
  const Tensor grey = byte_images({2, 4, 6, 1}, 2);
  EXPECT_TRUE(all_close(normalize_images(grey, {}, {}), reference(grey, {}, {}), 1e-7, 1e-7,
                        "grey, no normalisation"));
  EXPECT_EQ(normalize_images(byte_images({0, 4, 4, 3}, 3), {}, {}).shape(), (Shape{0, 3, 4, 4}));
}

TEST(OpsImages, BadArgumentsAreNamed) {
  const Tensor rgb = byte_images({1, 2, 2, 3}, 4);
  EXPECT_TRUE(throws_naming([&] { normalize_images(cast(rgb, DType::kFloat32), {}, {}); },
                            "uint8 (B, H, W, C)"));
  EXPECT_TRUE(throws_naming(
      [&] {
        normalize_images(rgb.reshape({1, 4, 3}), {}, {});
      },
      "uint8 (B, H, W, C)"));
  EXPECT_TRUE(throws_naming([&] { normalize_images(rgb, {0.5f}, {0.5f}); }, "1 means"));
  EXPECT_TRUE(throws_naming([&] { normalize_images(rgb, {0, 0, 0}, {1, 0, 1}); }, "channel 1"));
  EXPECT_TRUE(throws_naming(
      [&] {
        normalize_images(byte_images({1, 2, 2, 5}, 5), {}, {});
      },
      "5 channels"));
}

TEST(UploadRing, OnTheCpuAnUploadIsTheHostTensor) {
  UploadRing ring(Device::cpu());
  const Tensor host = byte_images({2, 3, 3, 3}, 6);
  UploadRing::Ticket t = ring.upload(host);
  EXPECT_EQ(t.device.raw_data(), host.raw_data());
  const Tensor y = ring.consume(t, [](const Tensor& u8) { return normalize_images(u8, {}, {}); });
  EXPECT_TRUE(all_close(y, reference(host, {}, {}), 1e-7, 1e-7, "consumed"));
  EXPECT_FALSE(t.host.defined());
  EXPECT_TRUE(
      throws_naming([&] { ring.consume(t, [](const Tensor& x) { return x; }); }, "empty ticket"));
  EXPECT_TRUE(throws_naming([] { UploadRing bad(Device::cpu(), 0); }, "at least one slot"));
}

}  // namespace
}  // namespace sdlora::test
