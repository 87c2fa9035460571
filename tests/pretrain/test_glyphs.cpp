// Glyph rendering for the demo backbone's pre-training (pretrain/glyphs.h): the train/test split is
// by font family (no family on both sides), samples are deterministic whatever the order of
// access, images show ink, and unreadable font files are skipped by load() and named by
// load_files(). Uses Debian's DejaVu fonts (fonts-dejavu-core).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "pretrain/glyphs.h"
#include "tests/common/test_util.h"

namespace sdlora::pretrain {
namespace {

const char* kDejaVu = "/usr/share/fonts/truetype/dejavu";

std::set<std::string> families_of(const FontLibrary& fonts, const GlyphDataset& d) {
  std::set<std::string> out;
  for (int64_t f : d.faces()) out.insert(fonts.face(f).family);
  return out;
}

TEST(Glyphs, SplitByFamilyAndDeterministic) {
  if (!std::filesystem::exists(kDejaVu)) GTEST_SKIP() << kDejaVu << " missing (fonts-dejavu-core)";
  const auto fonts = FontLibrary::load({kDejaVu}, "digits10");
  ASSERT_GE(fonts->families().size(), 2u);
  GlyphOptions o;
  o.size = 40;
  o.test_fraction = 0.3;
  const GlyphDataset train(fonts, o);
  o.split = Split::kTest;
  const GlyphDataset test(fonts, o);

  const auto train_families = families_of(*fonts, train);
  const auto test_families = families_of(*fonts, test);
  ASSERT_FALSE(train_families.empty());
  ASSERT_FALSE(test_families.empty());
  for (const auto& f : test_families)
    EXPECT_EQ(train_families.count(f), 0u) << f << " on both sides";
  const auto want = glyph_test_families(*fonts, 0.3, 0);
  EXPECT_EQ(std::vector<std::string>(test_families.begin(), test_families.end()), want);

  for (int64_t i : {7, 3, 7}) {  // balanced classes; the same image on every access
    EXPECT_EQ(train.label(i), i % 10);
    const Image a = train.image(i), b = train.image(i);
    EXPECT_EQ(a.pixels, b.pixels);
    int64_t ink = 0;
    for (uint8_t p : a.pixels) ink += p > 128;
    EXPECT_GT(ink, 5) << "sample " << i << " drew nothing";
  }
  EXPECT_NE(train.image(1).pixels, train.image(11).pixels) << "two draws of '1' are identical";
}

TEST(Glyphs, BadFontFilesAreSkippedOrNamed) {
  if (!std::filesystem::exists(kDejaVu)) GTEST_SKIP() << kDejaVu << " missing (fonts-dejavu-core)";
  const test::TempDir tmp;
  const std::filesystem::path dir = tmp.path();
  const std::string bad = (dir / "broken.ttf").string();
  std::ofstream(bad) << "not a font at all";
  std::filesystem::copy_file(std::string(kDejaVu) + "/DejaVuSans.ttf", dir / "DejaVuSans.ttf");

  const auto lib = FontLibrary::load({dir.string()}, "digits10");
  EXPECT_EQ(lib->size(), 1);
  ASSERT_EQ(lib->warnings().size(), 1u);
  EXPECT_NE(lib->warnings()[0].find(bad), std::string::npos) << lib->warnings()[0];
  try {
    FontLibrary::load_files({bad}, "digits10");
    ADD_FAILURE() << "a corrupt font file was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  EXPECT_THROW(FontLibrary::load({(dir / "missing").string()}, "digits10"), std::exception);
}

}  // namespace
}  // namespace sdlora::pretrain
