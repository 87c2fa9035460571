// Glyph rendering with stb_truetype (its implementation is compiled here and nowhere else): font
// discovery and validation, per-face character coverage, the pose-to-pixels resampling, and the
// deterministic sample draws of GlyphDataset.
#include "pretrain/glyphs.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "data/rng.h"
#include "tensor/error.h"
#include "tensor/random.h"

#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#include <stb/stb_truetype.h>

namespace sdlora::pretrain {
namespace fs = std::filesystem;
using namespace data;  // the dataset types and helpers this file was written against

namespace {

const std::vector<std::pair<std::string, std::string>>& charsets() {
  static const std::vector<std::pair<std::string, std::string>> sets = {
      {"alnum62", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
      {"upper36", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
      {"digits10", "0123456789"},
  };
  return sets;
}

uint16_t read_u16(const std::vector<unsigned char>& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
uint32_t read_u32(const std::vector<unsigned char>& b, size_t at) {
  return (static_cast<uint32_t>(read_u16(b, at)) << 16) | read_u16(b, at + 2);
}

// stb_truetype trusts the file: check that the table directory and every table it lists lie
// inside the bytes, so a truncated or foreign file is rejected instead of read out of bounds.
std::string check_table_directory(const std::vector<unsigned char>& b) {
  if (b.size() < 12) return "file too short for a font header";
  const uint32_t tag = read_u32(b, 0);
  if (tag == 0x74746366u) return "font collections (.ttc) are not supported";
  if (tag != 0x00010000u && tag != 0x4F54544Fu /* OTTO */ && tag != 0x74727565u /* true */)
    return "not a TrueType/OpenType file (bad signature)";
  const size_t num_tables = read_u16(b, 4);
  if (num_tables == 0 || 12 + 16 * num_tables > b.size()) return "truncated table directory";
  for (size_t t = 0; t < num_tables; ++t) {
    const size_t rec = 12 + 16 * t;
    const uint64_t off = read_u32(b, rec + 8), len = read_u32(b, rec + 12);
    if (off + len > b.size()) return "a table lies past the end of the file (truncated?)";
  }
  return "";
}

// A name-table string as ASCII (UTF-16BE from the Windows platform, or Mac Roman), "" if absent.
std::string name_string(const stbtt_fontinfo& info, int name_id) {
  int len = 0;
  const char* s = stbtt_GetFontNameString(&info, &len, STBTT_PLATFORM_ID_MICROSOFT,
                                          STBTT_MS_EID_UNICODE_BMP, STBTT_MS_LANG_ENGLISH, name_id);
  std::string out;
  if (s) {
    for (int i = 0; i + 1 < len; i += 2) {
      const unsigned hi = static_cast<unsigned char>(s[i]),
                     lo = static_cast<unsigned char>(s[i + 1]);
      if (hi == 0 && lo < 128) out += static_cast<char>(lo);
    }
    return out;
  }
  s = stbtt_GetFontNameString(&info, &len, STBTT_PLATFORM_ID_MAC, STBTT_MAC_EID_ROMAN,
                              STBTT_MAC_LANG_ENGLISH, name_id);
  if (s) {
    for (int i = 0; i < len; ++i)
      if (static_cast<unsigned char>(s[i]) < 128) out += s[i];
  }
  return out;
}

// "DejaVu Sans Condensed" -> "dejavusans": lower-case words, trailing style words dropped, joined.
std::string normalise_family(const std::string& name) {
  static const std::set<std::string> kStyleWords = {
      "regular",       "bold",       "italic",   "oblique", "light",     "thin",
      "medium",        "semibold",   "demibold", "demi",    "extrabold", "ultrabold",
      "extralight",    "ultralight", "black",    "heavy",   "book",      "condensed",
      "semicondensed", "extended",   "narrow",   "roman",   "normal",    "slanted"};
  std::vector<std::string> words(1);
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      words.back() += static_cast<char>(std::tolower(c));
    } else if (!words.back().empty()) {
      words.emplace_back();
    }
  }
  if (words.back().empty()) words.pop_back();
  while (words.size() > 1 && kStyleWords.count(words.back())) words.pop_back();
  std::string out;
  for (const auto& w : words) out += w;
  return out;
}

// Whether two glyphs have the same outline up to scale and position (an upper-case-only font
// that draws 'a' as a copy or a small capital of 'A').
bool same_outline(const stbtt_fontinfo& info, int g1, int g2) {
  if (g1 == g2) return true;
  stbtt_vertex *v1 = nullptr, *v2 = nullptr;
  const int n1 = stbtt_GetGlyphShape(&info, g1, &v1);
  const int n2 = stbtt_GetGlyphShape(&info, g2, &v2);
  bool same = n1 == n2 && n1 > 0;
  if (same) {
    auto normalised = [](const stbtt_vertex* v, int n) {
      double x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30;
      for (int i = 0; i < n; ++i) {
        x0 = std::min(x0, double(v[i].x)), x1 = std::max(x1, double(v[i].x));
        y0 = std::min(y0, double(v[i].y)), y1 = std::max(y1, double(v[i].y));
      }
      const double s = std::max({x1 - x0, y1 - y0, 1.0});
      std::vector<double> out;
      for (int i = 0; i < n; ++i) {
        out.push_back((v[i].x - x0) / s), out.push_back((v[i].y - y0) / s);
        out.push_back((v[i].cx - x0) / s), out.push_back((v[i].cy - y0) / s);
      }
      return out;
    };
    for (int i = 0; i < n1 && same; ++i) same = v1[i].type == v2[i].type;
    if (same) {
      const auto a = normalised(v1, n1), b = normalised(v2, n2);
      for (size_t i = 0; i < a.size() && same; ++i) same = std::fabs(a[i] - b[i]) < 0.02;
    }
  }
  stbtt_FreeShape(&info, v1);
  stbtt_FreeShape(&info, v2);
  return same;
}

bool is_font_file(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".ttf" || ext == ".otf";
}

}  // namespace

const std::string& glyph_charset(const std::string& name) {
  for (const auto& [n, chars] : charsets())
    if (n == name) return chars;
  SDLORA_THROW("unknown glyph character set '", name, "' (known: ", join(glyph_charset_names()),
               ")");
}

const std::vector<std::string>& glyph_charset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, chars] : charsets()) n.push_back(name);
    return n;
  }();
  return names;
}

int64_t FontFace::num_chars() const {
  return static_cast<int64_t>(std::count(has_char.begin(), has_char.end(), true));
}

struct FontLibrary::Loaded {
  std::vector<unsigned char> bytes;
  stbtt_fontinfo info{};
  double cap_units = 0.0;   // capital height in font units
  std::vector<int> glyphs;  // glyph index per class (0: none)
};

FontLibrary::~FontLibrary() = default;

std::shared_ptr<const FontLibrary> FontLibrary::load(const std::vector<std::string>& dirs,
                                                     const std::string& charset) {
  SDLORA_CHECK(!dirs.empty(), "no font folders given");
  std::string searched;
  for (const auto& d : dirs) searched += (searched.empty() ? "" : ", ") + d;
  std::vector<std::string> paths;
  for (const auto& d : dirs) {
    std::error_code ec;
    SDLORA_CHECK(fs::is_directory(d, ec), "font folder ", d, " does not exist or is not a folder");
    const auto opts = fs::directory_options::follow_directory_symlink |
                      fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(d, opts, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file(ec) && is_font_file(it->path())) paths.push_back(it->path().string());
    }
    SDLORA_CHECK(!ec, "cannot list font folder ", d, ": ", ec.message());
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());

  std::shared_ptr<FontLibrary> lib(new FontLibrary());
  lib->charset_ = glyph_charset(charset);
  for (const auto& p : paths) lib->add(p, /*strict=*/false);
  SDLORA_CHECK(!lib->faces_.empty(), "no usable fonts (*.ttf, *.otf drawing any of '",
               lib->charset_, "') found in ", searched, " (", paths.size(), " font files seen, ",
               lib->warnings_.size(), " skipped); install some, e.g. Debian's fonts-dejavu-core");
  return lib;
}

std::shared_ptr<const FontLibrary> FontLibrary::load_files(const std::vector<std::string>& paths,
                                                           const std::string& charset) {
  SDLORA_CHECK(!paths.empty(), "no font files given");
  std::shared_ptr<FontLibrary> lib(new FontLibrary());
  lib->charset_ = glyph_charset(charset);
  for (const auto& p : paths) lib->add(p, /*strict=*/true);
  return lib;
}

// Loads one file; a problem is a warning (skip) or, when strict, an error naming the file.
void FontLibrary::add(const std::string& path, bool strict) {
  auto fail = [&](const std::string& why) {
    const std::string msg = "font " + path + ": " + why;
    if (strict) SDLORA_THROW(msg);
    warnings_.push_back(msg);
  };
  auto font = std::make_unique<Loaded>();
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open the file");
    font->bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return fail("read error");
  }
  if (const std::string bad = check_table_directory(font->bytes); !bad.empty()) return fail(bad);
  const int offset = stbtt_GetFontOffsetForIndex(font->bytes.data(), 0);
  if (offset < 0 || !stbtt_InitFont(&font->info, font->bytes.data(), offset))
    return fail("stb_truetype cannot parse it (missing tables or no Unicode character map)");

  FontFace face;
  face.path = path;
  std::string family = name_string(font->info, 16);
  if (family.empty()) family = name_string(font->info, 1);
  face.style = name_string(font->info, 17);
  if (face.style.empty()) face.style = name_string(font->info, 2);
  face.family = normalise_family(family);
  if (face.family.empty()) face.family = normalise_family(fs::path(path).stem().string());
  const std::string identity = family + "|" + face.style;
  for (size_t i = 0; i < identities_.size(); ++i)
    if (!family.empty() && identities_[i] == identity)
      return fail("duplicate of " + faces_[i].path + " (" + family + " " + face.style + ")");

  const int64_t n = static_cast<int64_t>(charset_.size());
  face.has_char.assign(static_cast<size_t>(n), false);
  font->glyphs.assign(static_cast<size_t>(n), 0);
  for (int64_t c = 0; c < n; ++c) {
    const int g = stbtt_FindGlyphIndex(&font->info, static_cast<unsigned char>(charset_[c]));
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    if (g == 0 || stbtt_IsGlyphEmpty(&font->info, g) ||
        !stbtt_GetGlyphBox(&font->info, g, &x0, &y0, &x1, &y1) || x1 <= x0 || y1 <= y0)
      continue;
    font->glyphs[c] = g;
    face.has_char[c] = true;
  }
  // Lower case drawn as a copy (or small capital) of upper case cannot be told apart: drop it.
  for (int64_t c = 0; c < n; ++c) {
    const char ch = charset_[c];
    if (!std::islower(static_cast<unsigned char>(ch)) || !face.has_char[c]) continue;
    const size_t upper =
        charset_.find(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    if (upper != std::string::npos && face.has_char[upper] &&
        same_outline(font->info, font->glyphs[upper], font->glyphs[c])) {
      face.has_char[c] = false;
      font->glyphs[c] = 0;
    }
  }
  if (face.num_chars() == 0) return fail("draws none of the characters '" + charset_ + "'");

  // Capital height: the box of 'H', else a typical share of the full height (descent <= 0).
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  const int h = stbtt_FindGlyphIndex(&font->info, 'H');
  if (h != 0 && stbtt_GetGlyphBox(&font->info, h, &x0, &y0, &x1, &y1) && y1 > y0) {
    font->cap_units = y1 - y0;
  } else {
    int ascent = 0, descent = 0, gap = 0;
    stbtt_GetFontVMetrics(&font->info, &ascent, &descent, &gap);
    font->cap_units = 0.7 * (ascent - descent);
  }
  if (!(font->cap_units > 0)) return fail("no usable vertical metrics");

  faces_.push_back(std::move(face));
  loaded_.push_back(std::move(font));
  identities_.push_back(identity);
}

const FontFace& FontLibrary::face(int64_t i) const {
  SDLORA_CHECK(i >= 0 && i < size(), "font index ", i, " out of range [0, ", size(), ")");
  return faces_[static_cast<size_t>(i)];
}

std::vector<std::string> FontLibrary::families() const {
  std::set<std::string> s;
  for (const auto& f : faces_) s.insert(f.family);
  return {s.begin(), s.end()};
}

Image FontLibrary::render(int64_t font, int64_t cls, const GlyphPose& pose, int h, int w) const {
  const FontFace& f = face(font);
  SDLORA_CHECK(cls >= 0 && cls < num_classes(), "glyph class ", cls, " out of range [0, ",
               num_classes(), ")");
  SDLORA_CHECK(f.has_char[static_cast<size_t>(cls)], "font ", f.path, " cannot draw '",
               charset_[static_cast<size_t>(cls)], "'");
  SDLORA_CHECK(h >= 8 && w >= 8, "glyph image ", h, "x", w, " too small (8x8 at least)");
  SDLORA_CHECK(pose.cap_px > 0 && pose.level > 0 && pose.level <= 1, "bad glyph pose (cap ",
               pose.cap_px, " px, level ", pose.level, ")");
  const Loaded& L = *loaded_[static_cast<size_t>(font)];
  const int g = L.glyphs[static_cast<size_t>(cls)];

  // Scale so the capital height is cap_px, shrunk when the glyph box would not fit with a margin.
  constexpr int kMargin = 2;
  double scale = pose.cap_px / L.cap_units;
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  stbtt_GetGlyphBitmapBox(&L.info, g, static_cast<float>(scale), static_cast<float>(scale), &x0,
                          &y0, &x1, &y1);
  const double fit = std::min({1.0, double(w - 2 * kMargin) / std::max(1, x1 - x0),
                               double(h - 2 * kMargin) / std::max(1, y1 - y0)});
  if (fit < 1.0) {
    scale *= fit;
    stbtt_GetGlyphBitmapBox(&L.info, g, static_cast<float>(scale), static_cast<float>(scale), &x0,
                            &y0, &x1, &y1);
  }
  const int gw = std::max(1, x1 - x0), gh = std::max(1, y1 - y0);
  std::vector<unsigned char> glyph(static_cast<size_t>(gw) * gh, 0);
  stbtt_MakeGlyphBitmap(&L.info, glyph.data(), gw, gh, gw, static_cast<float>(scale),
                        static_cast<float>(scale), g);

  // Anchor (in glyph-bitmap pixels) that lands on the image centre: the box's horizontal middle
  // and the middle of the capital band (the baseline is at -y0), moved so the box keeps the margin.
  const double ax = gw / 2.0;
  double ay = -y0 - L.cap_units * scale / 2.0;
  const double top = h / 2.0 - ay, bottom = top + gh;
  if (top < kMargin) ay = h / 2.0 - kMargin;
  if (bottom > h - kMargin) ay = h / 2.0 + gh - (h - kMargin);

  // Inverse map: image pixel centre -> glyph bitmap, through the offset and the rotation.
  const double th = pose.angle_deg * M_PI / 180.0, c = std::cos(th), s = std::sin(th);
  auto at = [&](int y, int x) -> double {
    if (x < 0 || y < 0 || x >= gw || y >= gh) return 0.0;
    return glyph[static_cast<size_t>(y) * gw + x];
  };
  Image out(h, w, 1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double px = x + 0.5 - w / 2.0 - pose.dx, py = y + 0.5 - h / 2.0 - pose.dy;
      const double qx = c * px - s * py + ax - 0.5, qy = s * px + c * py + ay - 0.5;
      const double fx = std::floor(qx), fy = std::floor(qy);
      const int ix = static_cast<int>(fx), iy = static_cast<int>(fy);
      const double tx = qx - fx, ty = qy - fy;
      const double v = (1 - ty) * ((1 - tx) * at(iy, ix) + tx * at(iy, ix + 1)) +
                       ty * ((1 - tx) * at(iy + 1, ix) + tx * at(iy + 1, ix + 1));
      out.at(y, x, 0) = static_cast<uint8_t>(std::clamp(std::lround(v * pose.level), 0L, 255L));
    }
  }
  return out;
}

double glyph_family_hash(const std::string& family, uint64_t split_seed) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char ch : family) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return philox_block(split_seed, h, 0).v[0] * (1.0 / 4294967296.0);
}

std::vector<std::string> glyph_test_families(const FontLibrary& fonts, double test_fraction,
                                             uint64_t split_seed) {
  SDLORA_CHECK(test_fraction > 0 && test_fraction < 1,
               "glyph test fraction must be in (0, 1), got ", test_fraction);
  const auto families = fonts.families();
  SDLORA_CHECK(families.size() >= 2,
               "the glyph train/test split needs at least two font families, found ",
               families.size(), families.empty() ? "" : " (" + families[0] + ")",
               "; add font folders or packages");
  std::vector<std::pair<double, std::string>> ranked;
  for (const auto& f : families) ranked.emplace_back(glyph_family_hash(f, split_seed), f);
  std::sort(ranked.begin(), ranked.end());
  size_t n_test = 0;
  while (n_test < ranked.size() && ranked[n_test].first < test_fraction) ++n_test;
  n_test = std::clamp<size_t>(n_test, 1, ranked.size() - 1);
  std::vector<std::string> test;
  for (size_t i = 0; i < n_test; ++i) test.push_back(ranked[i].second);
  std::sort(test.begin(), test.end());
  return test;
}

GlyphDataset::GlyphDataset(std::shared_ptr<const FontLibrary> fonts, GlyphOptions options)
    : fonts_(std::move(fonts)), options_(std::move(options)) {
  SDLORA_CHECK(fonts_ != nullptr, "glyph dataset without a font library");
  SDLORA_CHECK(options_.size >= 0, "glyph dataset size must be >= 0, got ", options_.size);
  SDLORA_CHECK(options_.channels == 1 || options_.channels == 3,
               "glyph images have 1 or 3 channels, got ", options_.channels);
  SDLORA_CHECK(options_.min_cap_px > 0 && options_.min_cap_px <= options_.max_cap_px,
               "bad glyph size range [", options_.min_cap_px, ", ", options_.max_cap_px, "]");
  SDLORA_CHECK(options_.min_level > 0 && options_.min_level <= 1,
               "glyph min level must be in (0, 1]");
  const auto test = glyph_test_families(*fonts_, options_.test_fraction, options_.split_seed);
  const bool want_test = options_.split == Split::kTest;
  const int64_t n_cls = fonts_->num_classes();
  faces_by_class_.resize(static_cast<size_t>(n_cls));
  for (int64_t i = 0; i < fonts_->size(); ++i) {
    const auto& f = fonts_->face(i);
    if (std::binary_search(test.begin(), test.end(), f.family) != want_test) continue;
    faces_.push_back(i);
    for (int64_t c = 0; c < n_cls; ++c)
      if (f.has_char[static_cast<size_t>(c)]) faces_by_class_[static_cast<size_t>(c)].push_back(i);
  }
  for (int64_t c = 0; c < n_cls; ++c) {
    SDLORA_CHECK(!faces_by_class_[static_cast<size_t>(c)].empty(), "glyph class '",
                 fonts_->charset()[static_cast<size_t>(c)], "' has no font in the ",
                 split_name(options_.split), " split (", faces_.size(), " faces)");
    class_names_.push_back(std::string(1, fonts_->charset()[static_cast<size_t>(c)]));
  }
}

std::string GlyphDataset::name() const {
  std::ostringstream os;
  os << "glyphs " << split_name(options_.split) << " (" << faces_.size() << " fonts, "
     << class_names_.size() << " classes)";
  return os.str();
}

int64_t GlyphDataset::label(int64_t i) const {
  check_index(i);
  return i % static_cast<int64_t>(class_names_.size());
}

void GlyphDataset::sample(int64_t i, int64_t& font, GlyphPose& pose) const {
  const int64_t cls = label(i);
  // The split owns one half of the stream space, so train and test draws never coincide.
  const uint64_t stream =
      (options_.split == Split::kTest ? uint64_t{1} << 62 : 0) | static_cast<uint64_t>(i);
  SampleRng rng(options_.seed, stream);
  const auto& cands = faces_by_class_[static_cast<size_t>(cls)];
  font = cands[static_cast<size_t>(rng.randint(0, static_cast<int64_t>(cands.size())))];
  pose.cap_px = rng.uniform(options_.min_cap_px, options_.max_cap_px);
  pose.dx = rng.uniform(-options_.max_offset_px, options_.max_offset_px);
  pose.dy = rng.uniform(-options_.max_offset_px, options_.max_offset_px);
  pose.angle_deg = rng.uniform(-options_.max_angle_deg, options_.max_angle_deg);
  pose.level = rng.uniform(options_.min_level, 1.0);
}

Image GlyphDataset::image(int64_t i) const {
  int64_t font = 0;
  GlyphPose pose;
  sample(i, font, pose);
  Image grey = fonts_->render(font, label(i), pose, options_.image_size, options_.image_size);
  if (options_.channels == 1) return grey;
  Image rgb(grey.h, grey.w, 3);
  for (size_t p = 0; p < grey.pixels.size(); ++p)
    for (int ch = 0; ch < 3; ++ch) rgb.pixels[p * 3 + ch] = grey.pixels[p];
  return rgb;
}

std::string GlyphDataset::source(int64_t i) const {
  int64_t font = 0;
  GlyphPose pose;
  sample(i, font, pose);
  std::ostringstream os;
  os.precision(3);
  os << "glyph '" << class_names_[static_cast<size_t>(label(i))] << "' of "
     << fonts_->face(font).path << " (cap " << pose.cap_px << " px, offset " << pose.dx << ","
     << pose.dy << " px, " << pose.angle_deg << " deg)";
  return os.str();
}

}  // namespace sdlora::pretrain
