// Transforms against hand-computed outputs on tiny images, and the resampler against Pillow's
// outputs recorded in fixtures/resize_reference.txt.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "data/resize.h"
#include "data/transforms.h"
#include "tests/data/data_test_util.h"

namespace sdlora::data {
namespace {

Image make(int h, int w, int c, std::vector<int> values) {
  Image img(h, w, c);
  EXPECT_EQ(values.size(), img.pixels.size());
  for (size_t i = 0; i < values.size(); ++i) img.pixels[i] = static_cast<uint8_t>(values[i]);
  return img;
}

std::vector<int> values(const Image& img) {
  return std::vector<int>(img.pixels.begin(), img.pixels.end());
}

TEST(Resize, SameSizeIsIdentity) {
  const Image a = test::pattern_image(5, 7, 3, 1);
  for (Interp i : {Interp::kNearest, Interp::kBilinear, Interp::kBicubic})
    EXPECT_EQ(resize(a, 5, 7, i).pixels, a.pixels);
}

TEST(Resize, TwoByTwoToOneAveragesWithRoundingPerPass) {
  // Horizontal pass: (10 + 20) / 2 = 15, (30 + 41) / 2 = 35.5 -> 36 (halves round up);
  // vertical pass: (15 + 36) / 2 = 25.5 -> 26.
  EXPECT_EQ(values(resize(make(2, 2, 1, {10, 20, 30, 41}), 1, 1, Interp::kBilinear)),
            (std::vector<int>{26}));
  // Colour channels are independent.
  EXPECT_EQ(values(resize(make(1, 2, 3, {0, 10, 200, 100, 30, 220}), 1, 1, Interp::kBilinear)),
            (std::vector<int>{50, 20, 210}));
}

TEST(Resize, BilinearDownscaleIsAntialiased) {
  // 4 -> 2 columns: the triangle filter is stretched to support 2, so output 0 (centre 1.0)
  // weighs inputs 0, 1, 2 by 0.75, 0.75, 0.25 (normalised: 3/7, 3/7, 1/7):
  // 70 * 3/7 + 140 / 7 = 50; output 1: 70 / 7 + 140 * 3/7 + 210 * 3/7 = 160.
  // (Plain bilinear sampling would give 35 and 175.)
  EXPECT_EQ(values(resize(make(1, 4, 1, {0, 70, 140, 210}), 1, 2, Interp::kBilinear)),
            (std::vector<int>{50, 160}));
}

TEST(Resize, BicubicDownscaleIsAntialiased) {
  // Keys' cubic (a = -0.5) stretched to support 4: output 0 (centre 1.0) weighs inputs 0..3 by
  // f(-0.25), f(0.25), f(0.75), f(1.25) = 0.8671875, 0.8671875, 0.2265625, -0.0703125
  // (sum 1.890625): (70 * 0.8671875 + 140 * 0.2265625 - 210 * 0.0703125) / 1.890625 = 41.07 -> 41;
  // output 1 by symmetry: (0 * -0.0703125 + 70 * 0.2265625 + (140 + 210) * 0.8671875) / 1.890625 =
  // 168.93 -> 169.
  EXPECT_EQ(values(resize(make(1, 4, 1, {0, 70, 140, 210}), 1, 2, Interp::kBicubic)),
            (std::vector<int>{41, 169}));
}

TEST(Resize, BilinearUpscaleMatchesHalfPixelCentres) {
  // Output centres 0.25, 0.75, 1.25, 1.75 of a 2-pixel row [0, 100]: 0, 25, 75, 100 (edges clamp).
  EXPECT_EQ(values(resize(make(1, 2, 1, {0, 100}), 1, 4, Interp::kBilinear)),
            (std::vector<int>{0, 25, 75, 100}));
}

TEST(Resize, NearestTakesThePixelUnderTheCentre) {
  EXPECT_EQ(values(resize(make(1, 4, 1, {1, 2, 3, 4}), 1, 2, Interp::kNearest)),
            (std::vector<int>{2, 4}));
  EXPECT_EQ(values(resize(make(1, 2, 1, {7, 9}), 1, 3, Interp::kNearest)),
            (std::vector<int>{7, 9, 9}));
}

TEST(Resize, MatchesPillowBitForBit) {
  std::ifstream in(test::fixtures_dir() + "/resize_reference.txt");
  ASSERT_TRUE(in.good()) << "missing fixture resize_reference.txt";
  int cases = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string interp;
    int seed, h, w, c, oh, ow;
    ls >> interp >> seed >> h >> w >> c >> oh >> ow;
    std::vector<int> want;
    for (int v; ls >> v;) want.push_back(v);
    const Image out = resize(test::pattern_image(h, w, c, seed), oh, ow, parse_interp(interp));
    EXPECT_EQ(values(out), want) << interp << " " << h << "x" << w << "x" << c << " -> " << oh
                                 << "x" << ow;
    ++cases;
  }
  EXPECT_EQ(cases, 10);
}

TEST(Resize, ShorterSideRuleOfTorchvision) {
  const Resize r(256, Interp::kBicubic);
  int oh, ow;
  r.output_size(375, 500, oh, ow);  // landscape: height is the shorter side
  EXPECT_EQ(oh, 256);
  EXPECT_EQ(ow, 341);  // int(256 * 500 / 375) = int(341.33)
  r.output_size(500, 375, oh, ow);
  EXPECT_EQ(oh, 341);
  EXPECT_EQ(ow, 256);
  r.output_size(300, 300, oh, ow);
  EXPECT_EQ(oh, 256);
  EXPECT_EQ(ow, 256);
}

TEST(CenterCrop, RoundsHalfOffsetsToEven) {
  // 4 x 5 image with values 0..19; crop 2 x 2: top = round(1.0) = 1, left = round(1.5) = 2.
  std::vector<int> v(20);
  for (int i = 0; i < 20; ++i) v[i] = i;
  SampleRng rng(0, 0);
  EXPECT_EQ(values(CenterCrop(2, 2).apply(make(4, 5, 1, v), rng)),
            (std::vector<int>{7, 8, 12, 13}));
  // 3 x 3 crop 2 x 2: offsets round(0.5) = 0.
  EXPECT_EQ(values(CenterCrop(2, 2).apply(make(3, 3, 1, {1, 2, 3, 4, 5, 6, 7, 8, 9}), rng)),
            (std::vector<int>{1, 2, 4, 5}));
}

TEST(CenterCrop, PadsImagesSmallerThanTheCrop) {
  SampleRng rng(0, 0);
  EXPECT_EQ(values(CenterCrop(3, 3).apply(make(1, 1, 1, {9}), rng)),
            (std::vector<int>{0, 0, 0, 0, 9, 0, 0, 0, 0}));
  // Width 2 -> 3: one zero column on the right ((3 - 2) // 2 = 0 left, 1 right).
  EXPECT_EQ(values(CenterCrop(1, 3).apply(make(1, 2, 1, {4, 5}), rng)),
            (std::vector<int>{4, 5, 0}));
}

TEST(Flip, MirrorsColumnsKeepingChannels) {
  const Image a = make(1, 3, 2, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(values(flip_horizontal(a)), (std::vector<int>{5, 6, 3, 4, 1, 2}));
  SampleRng rng(7, 0);
  EXPECT_EQ(values(RandomHorizontalFlip(1.0).apply(a, rng)), (std::vector<int>{5, 6, 3, 4, 1, 2}));
  EXPECT_EQ(values(RandomHorizontalFlip(0.0).apply(a, rng)), values(a));
}

TEST(Flip, HalfTheSamplesFlipAndEachSampleIsReproducible) {
  const Image a = make(1, 2, 1, {1, 2});
  const RandomHorizontalFlip flip(0.5);
  int flipped = 0;
  for (int i = 0; i < 2000; ++i) {
    SampleRng r1 = SampleRng::for_sample(3, 1, i), r2 = SampleRng::for_sample(3, 1, i);
    const Image x = flip.apply(a, r1);
    EXPECT_EQ(x.pixels, flip.apply(a, r2).pixels);
    flipped += x.pixels[0] == 2;
  }
  EXPECT_GT(flipped, 900);
  EXPECT_LT(flipped, 1100);
}

TEST(RandomCrop, WindowsOfTheZeroPaddedImage) {
  // 2 x 2 image padded by 1 -> 4 x 4; a 2 x 2 window has 9 positions, all of which occur.
  const Image a = make(2, 2, 1, {1, 2, 3, 4});
  const Image padded = pad_zeros(a, 1, 1, 1, 1);
  EXPECT_EQ(values(padded), (std::vector<int>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0}));
  const RandomCrop rc(2, 2, 1);
  std::set<std::vector<int>> seen;
  for (int i = 0; i < 300; ++i) {
    SampleRng rng = SampleRng::for_sample(1, 0, i);
    seen.insert(values(rc.apply(a, rng)));
  }
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_TRUE(seen.count({0, 0, 0, 1}));  // top-left window
  EXPECT_TRUE(seen.count({1, 2, 3, 4}));  // centre
  EXPECT_TRUE(seen.count({4, 0, 0, 0}));  // bottom-right
}

TEST(RandomResizedCrop, BoxesStayInsideAndFollowTheRanges) {
  const RandomResizedCrop rrc(224, 224, 0.05, 1.0, 3.0 / 4.0, 4.0 / 3.0);
  for (int i = 0; i < 500; ++i) {
    SampleRng rng = SampleRng::for_sample(0, 0, i);
    const auto b = rrc.sample_box(375, 500, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_LE(b.top + b.h, 375);
    ASSERT_LE(b.left + b.w, 500);
    const double area = static_cast<double>(b.h) * b.w / (375.0 * 500.0);
    EXPECT_GE(area, 0.045);  // 0.05 less the rounding of both sides
    const double ratio = static_cast<double>(b.w) / b.h;
    EXPECT_GE(ratio, 0.7);
    EXPECT_LE(ratio, 1.4);
  }
}

TEST(RandomResizedCrop, FallsBackToACentredCropAtTheRatioLimit) {
  // A 1 x 100 strip: no box with ratio in [3/4, 4/3] and area >= 100 fits in 10 tries, so
  // torchvision's fallback: h = 1, w = round(1 * 4/3) = 1, centred at (100 - 1) // 2 = 49.
  const RandomResizedCrop rrc(2, 2, 1.0, 1.0, 3.0 / 4.0, 4.0 / 3.0);
  SampleRng rng(0, 0);
  const auto b = rrc.sample_box(1, 100, rng);
  EXPECT_EQ(b.top, 0);
  EXPECT_EQ(b.left, 49);
  EXPECT_EQ(b.h, 1);
  EXPECT_EQ(b.w, 1);
  // A square image with scale 1 and ratio 1: the whole image, so the output is the input.
  const RandomResizedCrop whole(4, 4, 1.0, 1.0, 1.0, 1.0);
  const Image a = test::pattern_image(4, 4, 3, 2);
  EXPECT_EQ(whole.apply(a, rng).pixels, a.pixels);
}

TEST(ToChannels, GreyToColourAndPilLuma) {
  SampleRng rng(0, 0);
  EXPECT_EQ(values(ToChannels(3).apply(make(1, 2, 1, {7, 200}), rng)),
            (std::vector<int>{7, 7, 7, 200, 200, 200}));
  // PIL's convert("L"): red 255 -> 76, green 255 -> 150, blue 255 -> 29, white stays 255.
  EXPECT_EQ(values(ToChannels(1).apply(
                make(1, 4, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}), rng)),
            (std::vector<int>{76, 150, 29, 255}));
}

TEST(ToFloat, ScalesToUnitRangeAndNormalises) {
  const Image a = make(1, 2, 2, {0, 255, 51, 102});  // HWC
  std::vector<float> out(4);
  image_to_chw(a, Normalize{}, out.data());
  EXPECT_FLOAT_EQ(out[0], 0.0f);  // channel 0: pixels 0 and 51
  EXPECT_FLOAT_EQ(out[1], 0.2f);
  EXPECT_FLOAT_EQ(out[2], 1.0f);  // channel 1: pixels 255 and 102
  EXPECT_FLOAT_EQ(out[3], 0.4f);
  image_to_chw(a, Normalize{{0.5f, 0.5f}, {0.5f, 0.25f}}, out.data());
  EXPECT_FLOAT_EQ(out[0], -1.0f);
  EXPECT_NEAR(out[1], -0.6f, 1e-6);
  EXPECT_FLOAT_EQ(out[2], 2.0f);
  EXPECT_NEAR(out[3], -0.4f, 1e-6);
  EXPECT_THROW(image_to_chw(a, Normalize{{0.5f}, {0.5f}}, out.data()), Error);
}

TEST(Pipelines, OutputSizesOfThePresets) {
  const Pipeline vit = make_pipeline("vit224");
  const Image photo = test::pattern_image(375, 500, 3, 1);
  SampleRng rng = SampleRng::for_sample(0, 0, 0);
  const Image tr = vit.train->apply(photo, rng);
  const Image te = vit.test->apply(photo, rng);
  EXPECT_EQ(tr.shape_str(), "224x224x3");
  EXPECT_EQ(te.shape_str(), "224x224x3");
  EXPECT_TRUE(vit.train->random());
  EXPECT_FALSE(vit.test->random());

  const Pipeline small = make_pipeline("small28", 3);
  const Image digit = test::pattern_image(28, 28, 1, 0);
  EXPECT_EQ(small.train->apply(digit, rng).shape_str(), "28x28x3");
  const Image te2 = small.test->apply(digit, rng);
  ASSERT_EQ(te2.shape_str(), "28x28x3");
  EXPECT_EQ(te2.at(5, 6, 2), digit.at(5, 6, 0));
  EXPECT_EQ(
      make_pipeline("small32").test->apply(test::pattern_image(28, 28, 1, 0), rng).shape_str(),
      "32x32x1");
  try {
    make_pipeline("imagenet");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vit224"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sdlora::data
