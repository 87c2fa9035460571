// Image transforms as small composable objects, matching torchvision's semantics on PIL images
// (the released code's pipelines): resize, center crop, RandomResizedCrop, horizontal flip,
// pad-and-random-crop, channel conversion; then pixels to float [0, 1] with optional mean/std.
// Randomness comes only from the SampleRng passed in, so a sample's augmentation is fixed by
// (seed, epoch, sample).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/resize.h"
#include "data/rng.h"

namespace sdlora::data {

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Image apply(const Image& in, SampleRng& rng) const = 0;
  virtual std::string describe() const = 0;
  // Whether apply draws random numbers (deterministic transforms may run before caching).
  virtual bool random() const { return false; }
  // Whether apply would return `img` unchanged without drawing numbers (Compose skips the copy).
  virtual bool identity_on(const Image& img) const {
    (void)img;
    return false;
  }
};
using TransformPtr = std::shared_ptr<const Transform>;

// Applies its parts in order.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> parts) : parts_(std::move(parts)) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool random() const override;
  const std::vector<TransformPtr>& parts() const { return parts_; }

 private:
  std::vector<TransformPtr> parts_;
};

// Resize(size): the shorter side to `size`, the longer to int(size * long / short) (torchvision);
// Resize(h, w): exactly h x w.
class Resize : public Transform {
 public:
  Resize(int size, Interp interp) : size_(size), interp_(interp) {}
  Resize(int h, int w, Interp interp) : h_(h), w_(w), interp_(interp) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool identity_on(const Image& img) const override;
  // The output size for an input of h x w.
  void output_size(int in_h, int in_w, int& out_h, int& out_w) const;

 private:
  int size_ = 0, h_ = 0, w_ = 0;
  Interp interp_;
};

// The centre h x w; top = round((H - h) / 2) with round-half-even (Python's round). An image
// smaller than the crop is first padded with zeros, as torchvision does.
class CenterCrop : public Transform {
 public:
  CenterCrop(int h, int w) : h_(h), w_(w) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  int h_, w_;
};

// torchvision's RandomResizedCrop: up to 10 tries of an area fraction in [scale_lo, scale_hi]
// and a log-uniform aspect ratio in [ratio_lo, ratio_hi]; the first crop that fits is taken at
// a uniform position, else a centre crop clamped to the ratio range; then resized to h x w.
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int h, int w, double scale_lo = 0.08, double scale_hi = 1.0,
                    double ratio_lo = 3.0 / 4.0, double ratio_hi = 4.0 / 3.0,
                    Interp interp = Interp::kBilinear);
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool random() const override { return true; }
  struct Box {
    int top, left, h, w;
  };
  // The crop chosen for an H x W image (exposed for tests).
  Box sample_box(int H, int W, SampleRng& rng) const;

 private:
  int h_, w_;
  double scale_lo_, scale_hi_, ratio_lo_, ratio_hi_;
  Interp interp_;
};

// Mirrors left-right with probability p (drawn as uniform() < p).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool random() const override { return true; }

 private:
  double p_;
};

// torchvision's RandomCrop(size, padding): zero-pad every side by `padding`, then an h x w
// window at a uniform position.
class RandomCrop : public Transform {
 public:
  RandomCrop(int h, int w, int padding) : h_(h), w_(w), padding_(padding) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool random() const override { return true; }

 private:
  int h_, w_, padding_;
};

// Channel conversion: grey -> colour repeats the channel; colour -> grey uses PIL's
// ITU-R 601-2 luma, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
class ToChannels : public Transform {
 public:
  explicit ToChannels(int channels) : channels_(channels) {}
  Image apply(const Image& in, SampleRng& rng) const override;
  std::string describe() const override;
  bool identity_on(const Image& img) const override { return img.c == channels_; }

 private:
  int channels_;
};

// Mirrors an image left-right (the deterministic core of RandomHorizontalFlip).
Image flip_horizontal(const Image& in);
// Adds `pad` zero pixels on every side.
Image pad_zeros(const Image& in, int top, int left, int bottom, int right);

// Pixels to float: out (C, H, W) = (pixel / 255 - mean[c]) / std[c]; empty mean/std = [0, 1].
struct Normalize {
  std::vector<float> mean, std;
  bool enabled() const { return !mean.empty(); }
};
void image_to_chw(const Image& img, const Normalize& norm, float* out);

// The pipelines of the released code and of the small demo, by name:
//   "vit224":  train RandomResizedCrop(224, scale 0.05-1, ratio 3/4-4/3, bilinear) + flip 0.5;
//              test  Resize(256, bicubic) + CenterCrop(224)
//   "smallN" (e.g. "small28", "small32"): train Resize(N) when needed + RandomCrop(N, padding N/8)
//              + flip 0.5; test Resize(N) when needed
//   "none":    no transform (images must already share one size)
// channels (1 or 3, 0 = keep) prepends the channel conversion.
struct Pipeline {
  TransformPtr train, test;
  int height = 0, width = 0;  // output size (0 for "none")
};
Pipeline make_pipeline(const std::string& preset, int channels = 0);
const std::vector<std::string>& pipeline_names();

}  // namespace sdlora::data
