// Glyph images rendered from TrueType/OpenType fonts (notMNIST-style): letters and digits in many
// fonts, sizes, offsets and rotations, white on black, for pre-training the demo's backbone on
// data other than the continual-learning benchmark. Train and test are split by font family, so
// test accuracy measures recognition of glyphs in typefaces the model never saw.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"

namespace sdlora::pretrain {

using data::Dataset;
using data::Image;
using data::Split;

// The character sets, by name: "alnum62" (0-9, A-Z, a-z), "upper36" (0-9, A-Z), "digits10".
// The class of a character is its position in the set. An unknown name lists the known ones.
const std::string& glyph_charset(const std::string& name);
const std::vector<std::string>& glyph_charset_names();

// Where and how a glyph is drawn. The glyph is scaled so that the font's capital height (the
// height of 'H') is cap_px pixels, which keeps lower case smaller than upper case as on the page;
// a glyph that would not fit in the image less a 2-pixel margin is shrunk to fit. The capital
// band is centred vertically and the glyph's box horizontally, then rotated by angle_deg
// (counter-clockwise) about the image centre and moved by (dx, dy) pixels, all in one bilinear
// resampling. level (0, 1] scales the ink (255 = full white).
struct GlyphPose {
  double cap_px = 18.0;
  double dx = 0.0, dy = 0.0;
  double angle_deg = 0.0;
  double level = 1.0;
};

// One face of the library: where it came from, its family (the unit of the train/test split) and
// which characters of the set it can draw.
struct FontFace {
  std::string path;
  std::string family;  // normalised family name: lower-case letters and digits, style words removed
  std::string style;   // subfamily as the font names it ("Bold Italic"), for messages
  std::vector<bool> has_char;  // per class of the character set
  int64_t num_chars() const;
};

// Fonts loaded into memory and parsed once; rendering is const and safe from many threads.
class FontLibrary {
 public:
  // Loads every *.ttf / *.otf under `dirs` (recursively, in sorted path order) that stb_truetype
  // can parse and that draws at least one character of `charset`. Unreadable or unparsable
  // files, faces drawing no character of the set and duplicates (same family and style as an
  // earlier file) are skipped with a warning (warnings()). Throws when a folder does not exist,
  // or when no usable font was found, naming the folders searched.
  static std::shared_ptr<const FontLibrary> load(const std::vector<std::string>& dirs,
                                                 const std::string& charset = "alnum62");
  // The same for explicit files; here a file that cannot be read or parsed is an error naming it.
  static std::shared_ptr<const FontLibrary> load_files(const std::vector<std::string>& paths,
                                                       const std::string& charset = "alnum62");

  ~FontLibrary();
  FontLibrary(const FontLibrary&) = delete;
  FontLibrary& operator=(const FontLibrary&) = delete;

  const std::string& charset() const { return charset_; }
  int64_t num_classes() const { return static_cast<int64_t>(charset_.size()); }
  int64_t size() const { return static_cast<int64_t>(faces_.size()); }
  const FontFace& face(int64_t i) const;
  const std::vector<std::string>& warnings() const { return warnings_; }
  // The distinct families, sorted.
  std::vector<std::string> families() const;

  // Draws class `cls` of face `font` as an h x w single-channel image; throws when the face lacks
  // the character.
  Image render(int64_t font, int64_t cls, const GlyphPose& pose, int h, int w) const;

 private:
  struct Loaded;  // file bytes and stb_truetype's parsed face
  FontLibrary() = default;
  void add(const std::string& path, bool strict);

  std::string charset_;
  std::vector<FontFace> faces_;
  std::vector<std::unique_ptr<Loaded>> loaded_;
  std::vector<std::string> identities_;  // "family|style" as named in the file, to spot duplicates
  std::vector<std::string> warnings_;
};

struct GlyphOptions {
  Split split = Split::kTrain;
  int64_t size = 10000;  // images
  uint64_t seed = 0;     // draws every sample's font, size, offset, rotation and level
  // Share of font families held out for the test split, chosen by a hash of the family name with
  // split_seed (so adding fonts moves no other family). Both splits get at least one family.
  double test_fraction = 0.15;
  uint64_t split_seed = 0;
  int image_size = 28;
  int channels = 1;  // 1, or 3 equal channels
  double min_cap_px = 13.0, max_cap_px = 20.0;
  double max_offset_px = 2.0;
  double max_angle_deg = 15.0;
  double min_level = 0.8;
};

// The glyphs of one split. Sample i has class i % num_classes (balanced classes); its font is
// drawn among the split's faces that have the character, and its pose uniformly from the
// options' ranges, from a random stream that depends only on (seed, split, i): the same image
// whatever the thread or order of access.
class GlyphDataset : public Dataset {
 public:
  // Throws when the library has fewer than two families (nothing to hold out), or when a class
  // has no face in this split.
  GlyphDataset(std::shared_ptr<const FontLibrary> fonts, GlyphOptions options);

  std::string name() const override;
  int64_t size() const override { return options_.size; }
  int64_t label(int64_t i) const override;
  Image image(int64_t i) const override;
  std::string source(int64_t i) const override;
  const std::vector<std::string>& class_names() const override { return class_names_; }

  // Indices into the library of this split's faces.
  const std::vector<int64_t>& faces() const { return faces_; }
  // The face and pose of sample i (what image(i) draws).
  void sample(int64_t i, int64_t& font, GlyphPose& pose) const;

 private:
  std::shared_ptr<const FontLibrary> fonts_;
  GlyphOptions options_;
  std::vector<int64_t> faces_;
  std::vector<std::vector<int64_t>> faces_by_class_;
  std::vector<std::string> class_names_;
};

// A number in [0, 1) from the family name and the split seed: families below test_fraction are
// held out (before the at-least-one-family adjustment).
double glyph_family_hash(const std::string& family, uint64_t split_seed);
// The library's test families for these settings (after the adjustment), sorted.
std::vector<std::string> glyph_test_families(const FontLibrary& fonts, double test_fraction,
                                             uint64_t split_seed);

}  // namespace sdlora::pretrain
