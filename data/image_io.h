// Image decoding with errors that name the file: JPEG through libjpeg-turbo (TurboJPEG API),
// PNG through stb_image. Truncated files (which both would otherwise decode with a grey bottom)
// and images larger than a pixel limit (checked from the header, before any pixel is decoded)
// are errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace sdlora::data {

// The default pixel limit (width x height): Pillow's MAX_IMAGE_PIXELS, about 9459 x 9459.
constexpr int64_t kDefaultMaxImagePixels = 89478485;

// Decodes an encoded JPEG or PNG held in memory; `name` (the file) appears in every error.
// channels = 0 keeps the file's own count (1 grey, 3 colour; grey+alpha and RGBA lose alpha),
// 1 or 3 converts. An image of more than max_pixels pixels is refused before decoding, naming
// the file and its size (max_pixels = 0: no limit but the formats' own).
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0,
                   int64_t max_pixels = kDefaultMaxImagePixels);
// Reads and decodes an image file.
Image load_image(const std::string& path, int channels = 0,
                 int64_t max_pixels = kDefaultMaxImagePixels);
// Whether a file name has an image extension this project decodes (.jpg, .jpeg, .png, any case).
bool is_image_file_name(const std::string& name);

}  // namespace sdlora::data
