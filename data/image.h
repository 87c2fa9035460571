// Image: a decoded picture as uint8 pixels in HWC order (rows, then columns, then channels), the
// form every reader produces and every transform consumes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdlora::data {

struct Image {
  int h = 0, w = 0, c = 0;
  std::vector<uint8_t> pixels;  // h * w * c bytes, HWC

  Image() = default;
  Image(int height, int width, int channels)
      : h(height), w(width), c(channels), pixels(static_cast<size_t>(height) * width * channels) {}

  size_t bytes() const { return pixels.size(); }
  bool empty() const { return pixels.empty(); }
  uint8_t& at(int y, int x, int ch) { return pixels[(static_cast<size_t>(y) * w + x) * c + ch]; }
  const uint8_t& at(int y, int x, int ch) const {
    return pixels[(static_cast<size_t>(y) * w + x) * c + ch];
  }
  // "32x24x3", for error messages.
  std::string shape_str() const {
    return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
  }
};

}  // namespace sdlora::data
