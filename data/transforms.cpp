// Transforms: torchvision's geometry (sizes, rounding, fallbacks) over PIL-style resampling.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "tensor/error.h"

namespace sdlora::data {

namespace {
// Python's round() to an int: halves go to the even neighbour.
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }
}  // namespace

// ---- Compose

Image Compose::apply(const Image& in, SampleRng& rng) const {
  // The input is often a cached image: copy it only when no part produces a new one.
  size_t first = 0;
  while (first < parts_.size() && parts_[first]->identity_on(in)) ++first;
  if (first == parts_.size()) return in;
  Image img = parts_[first]->apply(in, rng);
  for (size_t i = first + 1; i < parts_.size(); ++i)
    if (!parts_[i]->identity_on(img)) img = parts_[i]->apply(img, rng);
  return img;
}

std::string Compose::describe() const {
  std::string s = "Compose(";
  for (size_t i = 0; i < parts_.size(); ++i) s += (i ? ", " : "") + parts_[i]->describe();
  return s + ")";
}

bool Compose::random() const {
  for (const TransformPtr& t : parts_)
    if (t->random()) return true;
  return false;
}

// ---- Resize

void Resize::output_size(int in_h, int in_w, int& out_h, int& out_w) const {
  if (size_ <= 0) {
    out_h = h_;
    out_w = w_;
    return;
  }
  const int short_side = std::min(in_h, in_w), long_side = std::max(in_h, in_w);
  const int new_long = static_cast<int>(static_cast<double>(size_) * long_side / short_side);
  if (in_w <= in_h) {
    out_w = size_;
    out_h = new_long;
  } else {
    out_h = size_;
    out_w = new_long;
  }
}

bool Resize::identity_on(const Image& img) const {
  int oh, ow;
  output_size(img.h, img.w, oh, ow);
  return oh == img.h && ow == img.w;
}

Image Resize::apply(const Image& in, SampleRng&) const {
  int oh, ow;
  output_size(in.h, in.w, oh, ow);
  return resize(in, oh, ow, interp_);
}

std::string Resize::describe() const {
  std::ostringstream os;
  os << "Resize(";
  if (size_ > 0)
    os << size_;
  else
    os << h_ << "x" << w_;
  os << ", " << interp_name(interp_) << ")";
  return os.str();
}

// ---- CenterCrop

Image CenterCrop::apply(const Image& in, SampleRng&) const {
  const Image* src = &in;
  Image padded;
  if (h_ > in.h || w_ > in.w) {
    const int ph = std::max(h_ - in.h, 0), pw = std::max(w_ - in.w, 0);
    padded = pad_zeros(in, ph / 2, pw / 2, (ph + 1) / 2, (pw + 1) / 2);
    src = &padded;
  }
  const int top = round_half_even((src->h - h_) / 2.0);
  const int left = round_half_even((src->w - w_) / 2.0);
  return crop(*src, top, left, h_, w_);
}

std::string CenterCrop::describe() const {
  return "CenterCrop(" + std::to_string(h_) + "x" + std::to_string(w_) + ")";
}

// ---- RandomResizedCrop

RandomResizedCrop::RandomResizedCrop(int h, int w, double scale_lo, double scale_hi,
                                     double ratio_lo, double ratio_hi, Interp interp)
    : h_(h),
      w_(w),
      scale_lo_(scale_lo),
      scale_hi_(scale_hi),
      ratio_lo_(ratio_lo),
      ratio_hi_(ratio_hi),
      interp_(interp) {
  SDLORA_CHECK(h > 0 && w > 0, "RandomResizedCrop: size must be positive, got ", h, "x", w);
  SDLORA_CHECK(scale_lo > 0 && scale_lo <= scale_hi && ratio_lo > 0 && ratio_lo <= ratio_hi,
               "RandomResizedCrop: bad ranges scale [", scale_lo, ", ", scale_hi, "], ratio [",
               ratio_lo, ", ", ratio_hi, "]");
}

RandomResizedCrop::Box RandomResizedCrop::sample_box(int H, int W, SampleRng& rng) const {
  const double area = static_cast<double>(H) * W;
  const double log_lo = std::log(ratio_lo_), log_hi = std::log(ratio_hi_);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale_lo_, scale_hi_);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int w = round_half_even(std::sqrt(target * aspect));
    const int h = round_half_even(std::sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const int top = static_cast<int>(rng.randint(0, H - h + 1));
      const int left = static_cast<int>(rng.randint(0, W - w + 1));
      return {top, left, h, w};
    }
  }
  // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
  const double in_ratio = static_cast<double>(W) / H;
  int w = W, h = H;
  if (in_ratio < ratio_lo_) {
    h = round_half_even(W / ratio_lo_);
  } else if (in_ratio > ratio_hi_) {
    w = round_half_even(H * ratio_hi_);
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

Image RandomResizedCrop::apply(const Image& in, SampleRng& rng) const {
  const Box b = sample_box(in.h, in.w, rng);
  return resize(crop(in, b.top, b.left, b.h, b.w), h_, w_, interp_);
}

std::string RandomResizedCrop::describe() const {
  std::ostringstream os;
  os << "RandomResizedCrop(" << h_ << "x" << w_ << ", scale " << scale_lo_ << "-" << scale_hi_
     << ", ratio " << ratio_lo_ << "-" << ratio_hi_ << ", " << interp_name(interp_) << ")";
  return os.str();
}

// ---- Flip, pad, random crop

Image flip_horizontal(const Image& in) {
  Image out(in.h, in.w, in.c);
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x)
      std::memcpy(&out.at(y, in.w - 1 - x, 0), &in.at(y, x, 0), static_cast<size_t>(in.c));
  return out;
}

Image RandomHorizontalFlip::apply(const Image& in, SampleRng& rng) const {
  return rng.uniform() < p_ ? flip_horizontal(in) : in;
}

std::string RandomHorizontalFlip::describe() const {
  std::ostringstream os;
  os << "RandomHorizontalFlip(" << p_ << ")";
  return os.str();
}

Image pad_zeros(const Image& in, int top, int left, int bottom, int right) {
  Image out(in.h + top + bottom, in.w + left + right, in.c);
  const size_t row = static_cast<size_t>(in.w) * in.c;
  for (int y = 0; y < in.h; ++y) std::memcpy(&out.at(y + top, left, 0), &in.at(y, 0, 0), row);
  return out;
}

Image RandomCrop::apply(const Image& in, SampleRng& rng) const {
  const Image padded = padding_ > 0 ? pad_zeros(in, padding_, padding_, padding_, padding_) : in;
  SDLORA_CHECK(padded.h >= h_ && padded.w >= w_, "RandomCrop(", h_, "x", w_,
               "): the padded image is only ", padded.h, "x", padded.w);
  const int top = static_cast<int>(rng.randint(0, padded.h - h_ + 1));
  const int left = static_cast<int>(rng.randint(0, padded.w - w_ + 1));
  return crop(padded, top, left, h_, w_);
}

std::string RandomCrop::describe() const {
  return "RandomCrop(" + std::to_string(h_) + "x" + std::to_string(w_) + ", padding " +
         std::to_string(padding_) + ")";
}

// ---- Channels

Image ToChannels::apply(const Image& in, SampleRng&) const {
  if (in.c == channels_) return in;
  Image out(in.h, in.w, channels_);
  const size_t n = static_cast<size_t>(in.h) * in.w;
  if (in.c == 1 && channels_ == 3) {
    for (size_t p = 0; p < n; ++p)
      out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = in.pixels[p];
  } else if (in.c == 3 && channels_ == 1) {
    for (size_t p = 0; p < n; ++p) {
      const uint32_t r = in.pixels[3 * p], g = in.pixels[3 * p + 1], b = in.pixels[3 * p + 2];
      out.pixels[p] = static_cast<uint8_t>((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16);
    }
  } else {
    SDLORA_THROW("ToChannels: cannot convert ", in.c, " channels to ", channels_);
  }
  return out;
}

std::string ToChannels::describe() const { return "ToChannels(" + std::to_string(channels_) + ")"; }

// ---- To float

void image_to_chw(const Image& img, const Normalize& norm, float* out) {
  SDLORA_CHECK(!norm.enabled() || (static_cast<int>(norm.mean.size()) == img.c &&
                                   static_cast<int>(norm.std.size()) == img.c),
               "normalisation has ", norm.mean.size(), " means and ", norm.std.size(), " stds for ",
               img.c, " channels");
  const size_t plane = static_cast<size_t>(img.h) * img.w;
  for (int ch = 0; ch < img.c; ++ch) {
    float* dst = out + ch * plane;
    const uint8_t* src = img.pixels.data() + ch;
    if (norm.enabled()) {
      const float m = norm.mean[static_cast<size_t>(ch)],
                  inv = 1.0f / norm.std[static_cast<size_t>(ch)];
      for (size_t p = 0; p < plane; ++p)
        dst[p] = (static_cast<float>(src[p * img.c]) / 255.0f - m) * inv;
    } else {
      for (size_t p = 0; p < plane; ++p) dst[p] = static_cast<float>(src[p * img.c]) / 255.0f;
    }
  }
}

// ---- Presets

const std::vector<std::string>& pipeline_names() {
  static const std::vector<std::string> kNames = {"vit224", "small28", "small32", "none"};
  return kNames;
}

Pipeline make_pipeline(const std::string& preset, int channels) {
  SDLORA_CHECK(channels == 0 || channels == 1 || channels == 3,
               "pipeline channels must be 0, 1 or 3, got ", channels);
  std::vector<TransformPtr> train, test;
  if (channels) {
    train.push_back(std::make_shared<ToChannels>(channels));
    test.push_back(std::make_shared<ToChannels>(channels));
  }
  Pipeline p;
  if (preset == "vit224") {
    train.push_back(std::make_shared<RandomResizedCrop>(224, 224, 0.05, 1.0, 3.0 / 4.0, 4.0 / 3.0,
                                                        Interp::kBilinear));
    train.push_back(std::make_shared<RandomHorizontalFlip>(0.5));
    test.push_back(std::make_shared<Resize>(256, Interp::kBicubic));
    test.push_back(std::make_shared<CenterCrop>(224, 224));
    p.height = p.width = 224;
  } else if (preset.rfind("small", 0) == 0 && preset.size() > 5 &&
             preset.find_first_not_of("0123456789", 5) == std::string::npos) {
    const int n = std::stoi(preset.substr(5));
    SDLORA_CHECK(n >= 8 && n <= 1024, "pipeline ", preset, ": size must be in [8, 1024]");
    // Resize(n, n) is a no-op on images already n x n.
    train.push_back(std::make_shared<Resize>(n, n, Interp::kBilinear));
    train.push_back(std::make_shared<RandomCrop>(n, n, n / 8));
    train.push_back(std::make_shared<RandomHorizontalFlip>(0.5));
    test.push_back(std::make_shared<Resize>(n, n, Interp::kBilinear));
    p.height = p.width = n;
  } else if (preset != "none") {
    SDLORA_THROW("unknown transform pipeline '", preset, "'; known: ", join(pipeline_names()),
                 " (smallN for any N)");
  }
  p.train = std::make_shared<Compose>(std::move(train));
  p.test = std::make_shared<Compose>(std::move(test));
  return p;
}

}  // namespace sdlora::data
