// PIL-style separable resampling (Pillow's Resample.c, re-derived): per output pixel, a window
// of input pixels around its centre weighted by the filter scaled by max(1, in/out).
#include "data/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace sdlora::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // fixed-point fraction bits of the coefficients

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Keys' cubic convolution with a = -0.5.
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Window and fixed-point weights of each output pixel along one axis.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;  // input window [first, first + count)
  std::vector<int32_t> k;         // out_size * ksize weights, scaled by 2^kPrecisionBits
};

Coeffs precompute(int in_size, int out_size, Interp interp) {
  const double support_1 = interp == Interp::kBicubic ? 2.0 : 1.0;
  double (*filter)(double) = interp == Interp::kBicubic ? bicubic_filter : bilinear_filter;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = support_1 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    // Truncation toward zero as in C, then clamped: the window's rounded ends.
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter((x + xmin - center + 0.5) / filterscale);
      total += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? w[x] / total : w[x];
      const double scaled = v * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? scaled - 0.5 : scaled + 0.5);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t v) {
  const int64_t q = v >> kPrecisionBits;  // floor
  return static_cast<uint8_t>(std::clamp<int64_t>(q, 0, 255));
}

// Resamples rows [row0, row0 + out.h) of `in` horizontally into out (out.w columns).
void pass_horizontal(const Image& in, int row0, const Coeffs& c, Image& out) {
  const int C = in.c;
  for (int y = 0; y < out.h; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y + row0) * in.w * C;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * out.w * C;
    for (int xx = 0; xx < out.w; ++xx) {
      const int32_t* k = c.k.data() + static_cast<size_t>(xx) * c.ksize;
      const uint8_t* s = src + static_cast<size_t>(c.first[xx]) * C;
      for (int ch = 0; ch < C; ++ch) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (int x = 0; x < c.count[xx]; ++x) acc += static_cast<int64_t>(s[x * C + ch]) * k[x];
        dst[xx * C + ch] = clip8(acc);
      }
    }
  }
}

// Resamples `in` vertically into out; window starts are shifted by -row0.
void pass_vertical(const Image& in, int row0, const Coeffs& c, Image& out) {
  const size_t row = static_cast<size_t>(in.w) * in.c;
  std::vector<int64_t> acc(row);
  for (int yy = 0; yy < out.h; ++yy) {
    std::fill(acc.begin(), acc.end(), int64_t{1} << (kPrecisionBits - 1));
    const int32_t* k = c.k.data() + static_cast<size_t>(yy) * c.ksize;
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* src = in.pixels.data() + static_cast<size_t>(c.first[yy] - row0 + y) * row;
      const int64_t ky = k[y];
      for (size_t i = 0; i < row; ++i) acc[i] += src[i] * ky;
    }
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(yy) * row;
    for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
}

Image resize_nearest(const Image& in, int out_h, int out_w) {
  // PIL's nearest: the input pixel under the output pixel's centre.
  Image out(out_h, out_w, in.c);
  const double sy_scale = static_cast<double>(in.h) / out_h,
               sx_scale = static_cast<double>(in.w) / out_w;
  for (int y = 0; y < out_h; ++y) {
    const int sy = std::min(static_cast<int>((y + 0.5) * sy_scale), in.h - 1);
    for (int x = 0; x < out_w; ++x) {
      const int sx = std::min(static_cast<int>((x + 0.5) * sx_scale), in.w - 1);
      std::memcpy(&out.at(y, x, 0), &in.at(sy, sx, 0), static_cast<size_t>(in.c));
    }
  }
  return out;
}

}  // namespace

const char* interp_name(Interp i) {
  switch (i) {
    case Interp::kNearest:
      return "nearest";
    case Interp::kBilinear:
      return "bilinear";
    case Interp::kBicubic:
      return "bicubic";
  }
  return "?";
}

Interp parse_interp(const std::string& name) {
  if (name == "nearest") return Interp::kNearest;
  if (name == "bilinear") return Interp::kBilinear;
  if (name == "bicubic") return Interp::kBicubic;
  SDLORA_THROW("unknown interpolation '", name, "' (known: nearest, bilinear, bicubic)");
}

Image resize(const Image& in, int out_h, int out_w, Interp interp) {
  SDLORA_CHECK(in.h > 0 && in.w > 0 && in.c > 0, "resize of an empty image");
  SDLORA_CHECK(out_h > 0 && out_w > 0, "resize to ", out_h, "x", out_w, ": sizes must be positive");
  if (out_h == in.h && out_w == in.w) return in;
  if (interp == Interp::kNearest) return resize_nearest(in, out_h, out_w);

  const Coeffs ch = precompute(in.w, out_w, interp);
  const Coeffs cv = precompute(in.h, out_h, interp);
  // Rows the vertical pass reads; the horizontal pass computes only those.
  const int row0 = cv.first[0];
  const int row1 = cv.first[out_h - 1] + cv.count[out_h - 1];
  const bool need_h = out_w != in.w, need_v = out_h != in.h;
  if (need_h && !need_v) {
    Image out(out_h, out_w, in.c);
    pass_horizontal(in, 0, ch, out);
    return out;
  }
  if (!need_h) {
    Image out(out_h, out_w, in.c);
    pass_vertical(in, 0, cv, out);
    return out;
  }
  Image mid(row1 - row0, out_w, in.c);
  pass_horizontal(in, row0, ch, mid);
  Image out(out_h, out_w, in.c);
  pass_vertical(mid, row0, cv, out);
  return out;
}

Image crop(const Image& in, int top, int left, int h, int w) {
  SDLORA_CHECK(h > 0 && w > 0 && top >= 0 && left >= 0 && top + h <= in.h && left + w <= in.w,
               "crop (top ", top, ", left ", left, ", ", h, "x", w, ") outside the ", in.h, "x",
               in.w, " image");
  Image out(h, w, in.c);
  const size_t row = static_cast<size_t>(w) * in.c;
  for (int y = 0; y < h; ++y) std::memcpy(&out.at(y, 0, 0), &in.at(top + y, left, 0), row);
  return out;
}

}  // namespace sdlora::data
