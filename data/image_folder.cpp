// Image-folder datasets: scanning class folders, the seeded per-class split and its file, the
// list-file layout, and decoding on demand.
#include "data/image_folder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "data/class_order.h"
#include "data/file_io.h"
#include "data/image_io.h"
#include "tensor/error.h"

namespace sdlora::data {

namespace fs = std::filesystem;

namespace {

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

// Sorted class folder names under dir (hidden folders skipped).
std::vector<std::string> class_folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && !hidden(e.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Image files under dir, recursively, as paths relative to `base` with '/' separators, sorted.
std::vector<std::string> image_files(const fs::path& dir, const fs::path& base) {
  std::vector<std::string> files;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && is_image_file_name(it->path().filename().string()))
      files.push_back(it->path().lexically_relative(base).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(std::string name, std::vector<std::string> paths, std::vector<int64_t> labels,
                     std::vector<std::string> class_names, int64_t max_pixels)
      : name_(std::move(name)),
        paths_(std::move(paths)),
        labels_(std::move(labels)),
        class_names_(std::move(class_names)),
        max_pixels_(max_pixels) {}

  std::string name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  int64_t label(int64_t i) const override {
    check_index(i);
    return labels_[static_cast<size_t>(i)];
  }
  Image image(int64_t i) const override {
    check_index(i);
    // Colour always: grey files become three equal channels, as PIL's convert("RGB").
    return load_image(paths_[static_cast<size_t>(i)], 3, max_pixels_);
  }
  std::string source(int64_t i) const override {
    check_index(i);
    return paths_[static_cast<size_t>(i)];
  }
  const std::vector<std::string>& class_names() const override { return class_names_; }

 private:
  std::string name_;
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
  int64_t max_pixels_;
};

struct Listing {
  std::vector<std::string> paths;  // full paths
  std::vector<int64_t> labels;
  std::vector<std::string> classes;
};

// Pre-split layout: root/<split>/<class>/...; classes are those of train/.
Listing scan_presplit(const fs::path& root, Split split) {
  Listing out;
  out.classes = class_folders(root / "train");
  SDLORA_CHECK(!out.classes.empty(), "no class folders in ", (root / "train").string());
  const fs::path dir = root / split_name(split);
  std::map<std::string, int64_t> index;
  for (size_t c = 0; c < out.classes.size(); ++c) index[out.classes[c]] = static_cast<int64_t>(c);
  for (const std::string& cls : class_folders(dir)) {
    const auto it = index.find(cls);
    SDLORA_CHECK(it != index.end(), "class folder ", (dir / cls).string(),
                 " has no counterpart in ", (root / "train").string());
    const std::vector<std::string> files = image_files(dir / cls, dir);
    SDLORA_CHECK(!files.empty(),
                 "empty class folder (no .jpg, .jpeg or .png files): ", (dir / cls).string());
    for (const std::string& f : files) {
      out.paths.push_back((dir / f).string());
      out.labels.push_back(it->second);
    }
  }
  SDLORA_CHECK(!out.paths.empty(), "no class folders in ", dir.string());
  return out;
}

// One-tree layout: writes or reads the split file, then lists the requested half.
Listing scan_tree(const fs::path& root, const ImageFolderOptions& o) {
  Listing out;
  out.classes = class_folders(root);
  SDLORA_CHECK(!out.classes.empty(), "no class folders in ", root.string(),
               " (expected class folders, or train/ and test/ folders holding them)");
  std::map<std::string, int64_t> index;
  for (size_t c = 0; c < out.classes.size(); ++c) index[out.classes[c]] = static_cast<int64_t>(c);

  const std::string split_path =
      o.split_file.empty() ? default_split_file(root.string(), o.split_seed) : o.split_file;
  std::vector<std::pair<std::string, std::string>> entries;  // (split, relative path)
  if (fs::exists(split_path)) {
    const std::vector<uint8_t> b = read_file(split_path);
    std::istringstream in(std::string(b.begin(), b.end()));
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      const size_t tab = line.find('\t');
      const std::string which = line.substr(0, tab);
      SDLORA_CHECK(tab != std::string::npos && (which == "train" || which == "test") &&
                       tab + 1 < line.size(),
                   "split file ", split_path, " line ", line_no,
                   ": expected 'train<TAB>path' or 'test<TAB>path'");
      entries.emplace_back(which, line.substr(tab + 1));
    }
  } else {
    SDLORA_CHECK(o.train_fraction > 0.0 && o.train_fraction <= 1.0,
                 "train fraction must be in (0, 1], got ", o.train_fraction);
    SDLORA_CHECK(o.split_seed >= 0 && o.split_seed <= 0xffffffffll, "split seed ", o.split_seed,
                 " does not fit numpy's 32-bit seeds");
    // Per class in class order: permute its sorted files with one RandomState(seed) stream and
    // send the first round(n * fraction) to train (at least one to each side when n >= 2).
    NumpyRandomState rs(static_cast<uint32_t>(o.split_seed));
    std::ostringstream text;
    text << "# sdlora image-folder split of " << root.string() << "\n# seed " << o.split_seed
         << ", train fraction " << o.train_fraction
         << "; lines: train|test <TAB> path relative to the root\n";
    for (const std::string& cls : out.classes) {
      const std::vector<std::string> files = image_files(root / cls, root);
      SDLORA_CHECK(!files.empty(),
                   "empty class folder (no .jpg, .jpeg or .png files): ", (root / cls).string());
      const auto n = static_cast<int64_t>(files.size());
      int64_t n_train =
          static_cast<int64_t>(std::llround(static_cast<double>(n) * o.train_fraction));
      n_train = n >= 2 ? std::clamp<int64_t>(n_train, 1, n - 1) : n;
      if (o.train_fraction >= 1.0) n_train = n;
      const std::vector<int64_t> perm = rs.permutation(n);
      std::vector<char> is_train(static_cast<size_t>(n), 0);
      for (int64_t k = 0; k < n_train; ++k)
        is_train[static_cast<size_t>(perm[static_cast<size_t>(k)])] = 1;
      for (int64_t k = 0; k < n; ++k) {
        const char* which = is_train[static_cast<size_t>(k)] ? "train" : "test";
        entries.emplace_back(which, files[static_cast<size_t>(k)]);
        text << which << '\t' << files[static_cast<size_t>(k)] << '\n';
      }
    }
    try {
      write_file_atomic(split_path, text.str());
    } catch (const Error& e) {
      SDLORA_THROW("cannot write the split file of ", root.string(), " (", e.what(),
                   "); choose a writable location with the split_file option");
    }
  }

  const std::string want = split_name(o.split);
  std::vector<char> listed(out.classes.size(), 0);
  for (const auto& [which, rel] : entries) {
    const std::string cls = rel.substr(0, rel.find('/'));
    const auto it = index.find(cls);
    SDLORA_CHECK(it != index.end() && rel.find('/') != std::string::npos, "split file ", split_path,
                 " lists ", rel, " whose class folder is not in ", root.string());
    listed[static_cast<size_t>(it->second)] = 1;
    if (which != want) continue;
    out.paths.push_back((root / rel).string());
    out.labels.push_back(it->second);
  }
  // A class folder added after the split file was written has no line in it: an empty one is
  // an error as everywhere, a full one would silently be a class without images.
  for (size_t c = 0; c < out.classes.size(); ++c) {
    if (listed[c]) continue;
    const fs::path dir = root / out.classes[c];
    SDLORA_CHECK(!image_files(dir, root).empty(),
                 "empty class folder (no .jpg, .jpeg or .png files): ", dir.string());
    SDLORA_THROW("class folder ", dir.string(), " has no line in the split file ", split_path,
                 " (added after the split was written?): delete the split file to split again, "
                 "or choose another split_file");
  }
  return out;
}

// One list file's lines "relative/path label": the label a strict decimal number.
struct ListEntry {
  std::string rel;
  int64_t label;
  std::string where;  // "list file F line N", for messages
};
std::vector<ListEntry> read_list(const fs::path& list) {
  std::vector<ListEntry> out;
  const std::vector<uint8_t> b = read_file(list.string());
  std::istringstream in(std::string(b.begin(), b.end()));
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    const std::string where = "list file " + list.string() + " line " + std::to_string(line_no);
    const size_t sp = line.find_last_of(" \t");
    SDLORA_CHECK(sp != std::string::npos && sp > 0, where, ": expected 'relative/path label'");
    const std::string text = line.substr(sp + 1);
    int64_t label = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), label);
    SDLORA_CHECK(ec == std::errc() && end == text.data() + text.size() && label >= 0, where,
                 ": bad label '", text.substr(0, 40), "' (expected a class number from 0)");
    out.push_back({line.substr(0, sp), label, where});
  }
  return out;
}

// List-file layout: every root/*_<split>.txt, lines "relative/path label". The classes are
// declared by the train lists: each label names one class folder (the files' parent folder),
// and the labels are exactly 0 .. n-1. Every label of the requested split must be one of them,
// with the same folder name.
Listing scan_lists(const fs::path& root, const std::vector<fs::path>& train_lists,
                   const std::vector<fs::path>& lists) {
  std::map<int64_t, std::pair<std::string, std::string>> declared;  // label -> (folder, where)
  for (const fs::path& list : train_lists) {
    for (const ListEntry& e : read_list(list)) {
      const std::string folder = fs::path(e.rel).parent_path().filename().string();
      const auto [it, added] = declared.emplace(e.label, std::make_pair(folder, e.where));
      SDLORA_CHECK(added || it->second.first == folder, e.where, ": label ", e.label,
                   " is class folder '", folder, "' here but '", it->second.first, "' at ",
                   it->second.second);
    }
  }
  SDLORA_CHECK(!declared.empty(), "list files *_train.txt in ", root.string(), " list no images");
  const auto n_classes = static_cast<int64_t>(declared.size());
  for (const auto& [label, info] : declared)
    SDLORA_CHECK(label < n_classes, info.second, ": label ", label, " but the train lists declare ",
                 n_classes, " classes (labels must be 0 to ", n_classes - 1,
                 ", each with images in the train lists)");
  Listing out;
  for (const auto& [label, info] : declared) out.classes.push_back(info.first);
  for (const fs::path& list : lists) {
    for (const ListEntry& e : read_list(list)) {
      const auto it = declared.find(e.label);
      SDLORA_CHECK(it != declared.end(), e.where, ": label ", e.label,
                   " is not one of the train lists' ", n_classes, " classes");
      const std::string folder = fs::path(e.rel).parent_path().filename().string();
      SDLORA_CHECK(folder == it->second.first, e.where, ": label ", e.label, " is class folder '",
                   it->second.first, "' in the train lists, not '", folder, "'");
      out.paths.push_back((root / e.rel).string());
      out.labels.push_back(e.label);
    }
  }
  SDLORA_CHECK(!out.paths.empty(), "list files in ", root.string(), " list no images");
  return out;
}

}  // namespace

std::string default_split_file(const std::string& root, int64_t seed) {
  return (fs::path(root) / ("split-seed" + std::to_string(seed) + ".txt")).string();
}

std::shared_ptr<Dataset> open_image_folder(const std::string& root_text,
                                           const ImageFolderOptions& o, const std::string& kind) {
  const fs::path root(root_text);
  SDLORA_CHECK(is_dir(root), kind, " folder not found: ", root_text);
  const bool has_train = is_dir(root / "train"), has_test = is_dir(root / "test");

  // List files: any root/*_train.txt selects that layout; the requested split's lists are read.
  auto lists_of = [&](Split split) {
    const std::string suffix = std::string("_") + split_name(split) + ".txt";
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string f = e.path().filename().string();
      if (e.is_regular_file() && f.size() > suffix.size() &&
          f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        found.push_back(e.path());
    }
    std::sort(found.begin(), found.end());
    return found;
  };
  const bool has_lists = !lists_of(Split::kTrain).empty();

  Listing listing;
  if (has_train || has_test) {
    SDLORA_CHECK(has_train, "missing split folder ", (root / "train").string(), " (",
                 (root / "test").string(), " exists)");
    SDLORA_CHECK(has_test, "missing split folder ", (root / "test").string(), " (",
                 (root / "train").string(), " exists)");
    listing = scan_presplit(root, o.split);
  } else if (has_lists) {
    const std::vector<fs::path> lists = lists_of(o.split);
    SDLORA_CHECK(!lists.empty(), "missing list files ",
                 (root / ("*_" + std::string(split_name(o.split)) + ".txt")).string(), " (",
                 root_text, " has *_train.txt lists)");
    listing = scan_lists(root, lists_of(Split::kTrain), lists);
  } else {
    listing = scan_tree(root, o);
  }
  return std::make_shared<ImageFolderDataset>(
      kind + " " + split_name(o.split) + " (" + root_text + ")", std::move(listing.paths),
      std::move(listing.labels), std::move(listing.classes), o.max_image_pixels);
}

}  // namespace sdlora::data
