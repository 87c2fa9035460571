// Config: a table of keys, each with its JSON reader and writer, so that loading, overrides and
// printing share one definition of every key's type.
#include "cl/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cl/methods.h"
#include "data/dataset.h"
#include "data/transforms.h"
#include "tensor/error.h"

namespace sdlora::cl {
namespace {

using json = nlohmann::json;

struct Key {
  std::string name;
  bool is_string;  // command-line values are taken verbatim
  std::function<void(Config&, const json&)> read;
  std::function<json(const Config&)> write;  // null: an alias, written under its target's name
  bool released_only = false;  // accepted only in a released config (one with model_name)
};

// The value as messages show it: scalars as written, containers by type and size (a deeply
// nested hostile value is never walked).
std::string describe(const json& v) {
  if (v.is_array() || v.is_object())
    return std::string(v.type_name()) + " of " + std::to_string(v.size()) + " entries";
  const std::string text = v.dump();
  return text.size() <= 80 ? text : text.substr(0, 80) + "...";
}

[[noreturn]] void bad_type(const std::string& key, const json& v, const char* want) {
  SDLORA_THROW("config key '", key, "': expected ", want, ", got ", describe(v));
}

int64_t read_int(const std::string& key, const json& v) {
  if (v.is_number_unsigned()) {  // above INT64_MAX would wrap through get<int64_t>
    if (v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) return v.get<int64_t>();
  } else if (v.is_number_integer()) {
    return v.get<int64_t>();
  } else if (v.is_number_float()) {
    // Integral and inside [-2^63, 2^63) before the cast (outside it the cast is undefined).
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && d >= -9223372036854775808.0 &&
        d < 9223372036854775808.0)
      return static_cast<int64_t>(d);
  }
  bad_type(key, v, "an integer");
}

double read_double(const std::string& key, const json& v) {
  if (v.is_number()) return v.get<double>();
  bad_type(key, v, "a number");
}

std::vector<int64_t> read_int_list(const std::string& key, const json& v) {
  if (!v.is_array()) bad_type(key, v, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : v) out.push_back(read_int(key, e));
  return out;
}

template <typename T>
Key make_key(const std::string& name, T Config::*member) {
  Key k{name, false, nullptr, nullptr};
  if constexpr (std::is_same_v<T, std::string>) {
    k.is_string = true;
    k.read = [name, member](Config& c, const json& v) {
      if (!v.is_string()) bad_type(name, v, "a string");
      c.*member = v.get<std::string>();
    };
  } else if constexpr (std::is_same_v<T, bool>) {
    k.read = [name, member](Config& c, const json& v) {
      if (!v.is_boolean()) bad_type(name, v, "true or false");
      c.*member = v.get<bool>();
    };
  } else if constexpr (std::is_same_v<T, int64_t>) {
    k.read = [name, member](Config& c, const json& v) { c.*member = read_int(name, v); };
  } else if constexpr (std::is_same_v<T, double>) {
    k.read = [name, member](Config& c, const json& v) { c.*member = read_double(name, v); };
  } else {
    k.read = [name, member](Config& c, const json& v) { c.*member = read_int_list(name, v); };
  }
  k.write = [member](const Config& c) { return json(c.*member); };
  return k;
}

const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    std::vector<Key> t{
        make_key("dataset", &Config::dataset),
        make_key("data_path", &Config::data_path),
        make_key("prefix", &Config::prefix),
        make_key("shuffle", &Config::shuffle),
        make_key("init_cls", &Config::init_cls),
        make_key("increment", &Config::increment),
        make_key("init_epoch", &Config::init_epoch),
        make_key("epochs", &Config::epochs),
        make_key("init_lr", &Config::init_lr),
        make_key("lrate", &Config::lrate),
        make_key("init_milestones", &Config::init_milestones),
        make_key("milestones", &Config::milestones),
        make_key("init_lr_decay", &Config::init_lr_decay),
        make_key("lrate_decay", &Config::lrate_decay),
        make_key("batch_size", &Config::batch_size),
        make_key("optimizer", &Config::optimizer),
        make_key("momentum", &Config::momentum),
        make_key("weight_decay", &Config::weight_decay),
        make_key("scheduler", &Config::scheduler),
    };
    // seed: an integer, or a list (the released form): one run per seed.
    t.push_back(
        Key{"seed", false,
            [](Config& c, const json& v) {
              if (v.is_array()) {
                if (v.empty()) bad_type("seed", v, "an integer or a non-empty list");
                c.seeds = read_int_list("seed", v);
                c.seed = c.seeds.front();
                if (c.seeds.size() == 1) c.seeds.clear();
              } else {
                c.seed = read_int("seed", v);
                c.seeds.clear();
              }
            },
            [](const Config& c) { return c.seeds.size() > 1 ? json(c.seeds) : json(c.seed); }});
    // The released configs' own keys.
    for (Key k :
         {make_key("model_name", &Config::model_name),
          make_key("memory_size", &Config::memory_size),
          make_key("memory_per_class", &Config::memory_per_class),
          make_key("fixed_memory", &Config::fixed_memory), make_key("filepath", &Config::filepath),
          make_key("init_weight_decay", &Config::init_weight_decay),
          make_key("min_lr", &Config::min_lr), make_key("tuned_epoch", &Config::tuned_epoch)}) {
      k.released_only = k.name != "model_name";
      t.push_back(std::move(k));
    }
    // backbone_type: the released name of `backbone` (written back as backbone).
    Key backbone_type = make_key("backbone_type", &Config::backbone);
    backbone_type.write = nullptr;
    backbone_type.released_only = true;
    t.push_back(std::move(backbone_type));
    for (Key k :
         {make_key("num_workers", &Config::num_workers), make_key("method", &Config::method),
          make_key("sdlora_mode", &Config::sdlora_mode), make_key("rank", &Config::rank)})
      t.push_back(std::move(k));
    t.push_back(Key{"rank_schedule", false,
                    [](Config& c, const json& v) {
                      const char* want = "a list of [first_task, rank] pairs";
                      if (!v.is_array()) bad_type("rank_schedule", v, want);
                      std::vector<std::pair<int64_t, int64_t>> steps;
                      for (const auto& e : v) {
                        if (!e.is_array() || e.size() != 2) bad_type("rank_schedule", v, want);
                        steps.emplace_back(read_int("rank_schedule", e[0]),
                                           read_int("rank_schedule", e[1]));
                      }
                      c.rank_schedule = steps;
                    },
                    [](const Config& c) {
                      json a = json::array();
                      for (const auto& [task, rank] : c.rank_schedule) a.push_back({task, rank});
                      return a;
                    }});
    for (Key k : {make_key("kd_tau", &Config::kd_tau),
                  make_key("backbone", &Config::backbone),
                  make_key("image_size", &Config::image_size),
                  make_key("patch_size", &Config::patch_size),
                  make_key("embed_dim", &Config::embed_dim),
                  make_key("depth", &Config::depth),
                  make_key("num_heads", &Config::num_heads),
                  make_key("mlp_ratio", &Config::mlp_ratio),
                  make_key("weights", &Config::weights),
                  make_key("transform", &Config::transform),
                  make_key("channels", &Config::channels),
                  make_key("eval_batch_size", &Config::eval_batch_size),
                  make_key("train_per_class", &Config::train_per_class),
                  make_key("test_per_class", &Config::test_per_class),
                  make_key("cache_mb", &Config::cache_mb),
                  make_key("threads", &Config::threads),
                  make_key("log_every", &Config::log_every),
                  make_key("max_image_pixels", &Config::max_image_pixels),
                  make_key("tf32", &Config::tf32),
                  make_key("cuda_graph", &Config::cuda_graph),
                  make_key("precision", &Config::precision),
                  make_key("class_order_seed", &Config::class_order_seed)})
      t.push_back(std::move(k));
    // device: a string, or the released configs' list of GPU ids (["0"] is cuda:0).
    Key device = make_key("device", &Config::device);
    device.read = [](Config& c, const json& v) {
      if (v.is_string()) {
        c.device = v.get<std::string>();
        return;
      }
      if (!v.is_array() || v.empty()) bad_type("device", v, "a string or a list of GPU ids");
      // Several ids load (so the plan can be printed) as "cuda:0,1"; starting such a run is
      // refused (resolved_device) until data parallel training exists.
      std::string ids;
      for (const json& id : v) {
        const std::string text = id.is_string()           ? id.get<std::string>()
                                 : id.is_number_integer() ? std::to_string(id.get<int64_t>())
                                                          : std::string();
        if (text == "-1" && v.size() == 1) {
          c.device = "cpu";  // the released code's id for the CPU
          return;
        }
        SDLORA_CHECK(!text.empty() && text.find_first_not_of("0123456789") == std::string::npos,
                     "config key 'device': GPU id ", id.dump(), " is not a number");
        ids += (ids.empty() ? "" : ",") + text;
      }
      c.device = "cuda:" + ids;
    };
    t.push_back(std::move(device));
    return t;
  }();
  return table;
}

const Key* find_key(const std::string& name) {
  for (const auto& k : keys())
    if (k.name == name) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const std::string& name, const std::string& source) {
  std::vector<std::string> names;
  for (const auto& k : keys()) names.push_back(k.name);
  const std::string known = join(names);
  SDLORA_THROW(source, ": unknown config key '", name, "' (known keys: ", known, ")");
}

template <typename T>
void check_one_of(const std::string& key, const std::string& value, const T& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  SDLORA_THROW("config key '", key, "': '", value, "' is not one of ", join(allowed));
}

void check_milestones(const std::string& key, const std::vector<int64_t>& m) {
  for (size_t i = 0; i < m.size(); ++i) {
    SDLORA_CHECK(m[i] > 0, "config key '", key, "': milestone ", m[i], " is not a positive epoch");
    SDLORA_CHECK(i == 0 || m[i] > m[i - 1], "config key '", key,
                 "': milestones must increase, got ", m[i - 1], " then ", m[i]);
  }
}

// What the released code does where its config is silent: mode official (its normalisation
// and magnitudes), the backbone timm loads for backbone_type (a local file here), the data in
// data/<reader>.
void apply_released_defaults(Config& c, const json& j) {
  if (!j.contains("sdlora_mode")) c.sdlora_mode = "official";
  if (!j.contains("weights"))
    c.weights = "models/" + c.backbone +
                (c.backbone == "vit_base_patch16_224" ? ".augreg2_in21k_ft_in1k" : "") +
                ".safetensors";
  if (!j.contains("data_path")) c.data_path = "data/" + c.dataset_reader();
}

}  // namespace

std::string Config::dataset_reader() const {
  if (dataset == "cifar224") return "cifar100";
  if (dataset == "imagenetr") return "imagenet-r";
  if (dataset == "imageneta") return "imagenet-a";
  return dataset;
}

std::vector<std::string> Config::ignored_keys() const {
  if (!released()) return {};
  auto num = [](double v) { return json(v).dump(); };
  const char* why = " (ignored, as the released code ignores it)";
  return {"optimizer = " + optimizer + why,
          "scheduler = " + scheduler + why,
          "weight_decay = " + num(weight_decay) + why,
          "init_weight_decay = " + num(init_weight_decay) + why,
          "min_lr = " + num(min_lr) + why,
          "tuned_epoch = " + std::to_string(tuned_epoch) + why,
          "fixed_memory = " + std::string(fixed_memory ? "true" : "false") + why,
          "filepath = " + (filepath.empty() ? std::string("\"\"") : filepath) +
              " (ignored: the run folder is --out)"};
}

std::vector<Config> Config::per_seed() const {
  if (seeds.size() <= 1) return {*this};
  std::vector<Config> out;
  for (int64_t s : seeds) {
    Config c = *this;
    c.seed = s;
    c.seeds.clear();
    out.push_back(std::move(c));
  }
  return out;
}

void Config::validate() const {
  SDLORA_CHECK(!dataset.empty(), "config key 'dataset': empty");
  SDLORA_CHECK(init_cls > 0, "config key 'init_cls': must be positive, got ", init_cls);
  SDLORA_CHECK(increment > 0, "config key 'increment': must be positive, got ", increment);
  SDLORA_CHECK(init_epoch >= 0, "config key 'init_epoch': must be >= 0, got ", init_epoch);
  SDLORA_CHECK(epochs >= 0, "config key 'epochs': must be >= 0, got ", epochs);
  SDLORA_CHECK(init_lr > 0, "config key 'init_lr': must be positive, got ", init_lr);
  SDLORA_CHECK(lrate > 0, "config key 'lrate': must be positive, got ", lrate);
  // The released configs write decay 0 with a milestone never reached for a constant rate.
  const double min_decay = released() ? 0.0 : 1e-300;
  SDLORA_CHECK(init_lr_decay >= min_decay, "config key 'init_lr_decay': must be positive, got ",
               init_lr_decay);
  SDLORA_CHECK(lrate_decay >= min_decay, "config key 'lrate_decay': must be positive, got ",
               lrate_decay);
  check_milestones("init_milestones", init_milestones);
  check_milestones("milestones", milestones);
  SDLORA_CHECK(batch_size > 0, "config key 'batch_size': must be positive, got ", batch_size);
  SDLORA_CHECK(eval_batch_size >= 0, "config key 'eval_batch_size': must be >= 0, got ",
               eval_batch_size);
  check_one_of("optimizer", optimizer, std::vector<std::string>{"sgd", "adam", "adamw"});
  SDLORA_CHECK(momentum >= 0 && momentum < 1, "config key 'momentum': must be in [0, 1), got ",
               momentum);
  SDLORA_CHECK(weight_decay >= 0, "config key 'weight_decay': must be >= 0, got ", weight_decay);
  if (released())
    check_one_of("scheduler", scheduler,
                 std::vector<std::string>{"constant", "multistep", "cosine", "steplr"});
  else
    check_one_of("scheduler", scheduler,
                 std::vector<std::string>{"constant", "multistep", "cosine"});
  SDLORA_CHECK(seed >= 0 && seed <= 0xFFFFFFFFll, "config key 'seed': must be in [0, 2^32), got ",
               seed);
  for (size_t i = 0; i < seeds.size(); ++i) {
    SDLORA_CHECK(seeds[i] >= 0 && seeds[i] <= 0xFFFFFFFFll, "config key 'seed': ", seeds[i],
                 " is not in [0, 2^32)");
    for (size_t j = 0; j < i; ++j)
      SDLORA_CHECK(seeds[i] != seeds[j], "config key 'seed': ", seeds[i], " is listed twice");
  }
  SDLORA_CHECK(seeds.empty() || seeds.front() == seed, "config key 'seed': the run's seed ", seed,
               " is not the first of the list");
  SDLORA_CHECK(class_order_seed >= -1 && class_order_seed <= 0xFFFFFFFFll,
               "config key 'class_order_seed': must be -1 (the seed) or in [0, 2^32), got ",
               class_order_seed);
  if (released()) {
    SDLORA_CHECK(model_name == "sdlora", "config key 'model_name': '", model_name,
                 "' is not run by this project; it runs the released code's sdlora (and, with "
                 "our own configs, methods ",
                 join(method_names()), ")");
    SDLORA_CHECK(memory_size == 0 && memory_per_class == 0,
                 "config keys 'memory_size'/'memory_per_class': ", memory_size, "/",
                 memory_per_class, " ask for rehearsal; SD-LoRA is rehearsal-free (use 0)");
  }
  SDLORA_CHECK(num_workers >= 0, "config key 'num_workers': must be >= 0, got ", num_workers);
  check_one_of("method", method, method_names());
  check_one_of("sdlora_mode", sdlora_mode, std::vector<std::string>{"paper", "official"});
  check_one_of("precision", precision, std::vector<std::string>{"fp32", "bf16"});
  SDLORA_CHECK(rank > 0, "config key 'rank': must be positive, got ", rank);
  if (!rank_schedule.empty()) {
    try {
      RankSchedule{rank_schedule}.validate();
    } catch (const std::exception& e) {
      SDLORA_THROW("config key 'rank_schedule': ", e.what());
    }
  }
  SDLORA_CHECK(kd_tau >= 0, "config key 'kd_tau': must be >= 0, got ", kd_tau);
  if (backbone != "custom") {
    try {
      vit_preset(backbone, 0);
    } catch (const std::exception& e) {
      SDLORA_THROW("config key 'backbone': ", e.what(), " or custom");
    }
  }
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"image_size", image_size},
                               {"patch_size", patch_size},
                               {"embed_dim", embed_dim},
                               {"depth", depth},
                               {"num_heads", num_heads}})
    SDLORA_CHECK(v >= 0, "config key '", key, "': must be >= 0 (0 = the preset's), got ", v);
  SDLORA_CHECK(mlp_ratio >= 0, "config key 'mlp_ratio': must be >= 0 (0 = the preset's), got ",
               mlp_ratio);
  SDLORA_CHECK(train_per_class >= 0, "config key 'train_per_class': must be >= 0 (0 = all), got ",
               train_per_class);
  SDLORA_CHECK(test_per_class >= 0, "config key 'test_per_class': must be >= 0 (0 = all), got ",
               test_per_class);
  try {
    vit_config().validate();
  } catch (const std::exception& e) {
    SDLORA_THROW("config keys backbone/image_size/patch_size/embed_dim/depth/num_heads/mlp_ratio: ",
                 e.what());
  }
  try {
    data::make_pipeline(transform, static_cast<int>(channels));
  } catch (const std::exception& e) {
    SDLORA_THROW("config key 'transform': ", e.what());
  }
  SDLORA_CHECK(channels == 0 || channels == 1 || channels == 3,
               "config key 'channels': must be 0, 1 or 3, got ", channels);
  SDLORA_CHECK(cache_mb >= 0, "config key 'cache_mb': must be >= 0, got ", cache_mb);
  // The form only: whether a GPU is present is checked when the run starts, so that configs
  // written for a GPU machine load (and dry-run) anywhere.
  const bool cuda_form =
      device == "cuda" ||
      (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
       device.find_first_not_of("0123456789,", 5) == std::string::npos && device.back() != ',' &&
       device.find(",,") == std::string::npos && device[5] != ',');
  SDLORA_CHECK(device == "auto" || device == "cpu" || cuda_form,
               "config key 'device': expected auto, cpu, cuda or cuda:N, got '", device, "'");
  SDLORA_CHECK(threads >= 0, "config key 'threads': must be >= 0, got ", threads);
  SDLORA_CHECK(log_every >= 0, "config key 'log_every': must be >= 0, got ", log_every);
  SDLORA_CHECK(max_image_pixels >= 0, "config key 'max_image_pixels': must be >= 0, got ",
               max_image_pixels);
}

Device Config::resolved_device() const {
  SDLORA_CHECK(device.find(',') == std::string::npos, "config key 'device': '", device,
               "' asks for several GPUs; data parallel training does not exist yet: give one, "
               "e.g. --device cuda:0");
  return device == "auto" ? default_device() : Device::parse(device);
}

RankSchedule Config::effective_rank_schedule() const {
  if (method != "sdlora-rr") return RankSchedule::constant(rank);
  return rank_schedule.empty() ? RankSchedule::reduced() : RankSchedule{rank_schedule};
}

ViTConfig Config::vit_config() const {
  ViTConfig c = backbone == "custom" ? ViTConfig() : vit_preset(backbone, 0);
  c.num_classes = 0;
  if (image_size > 0) c.image_size = image_size;
  if (patch_size > 0) c.patch_size = patch_size;
  if (embed_dim > 0) c.embed_dim = embed_dim;
  if (depth > 0) c.depth = depth;
  if (num_heads > 0) c.num_heads = num_heads;
  if (mlp_ratio > 0) c.mlp_ratio = mlp_ratio;
  if (channels > 0) c.in_channels = channels;
  return c;
}

std::string Config::to_json() const {
  json j = json::object();
  for (const auto& k : keys())
    if (k.write && (released() || !k.released_only)) j[k.name] = k.write(*this);
  // nlohmann sorts object keys; the file reads fine either way.
  return j.dump(2);
}

Config config_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    SDLORA_THROW(source, ": not valid JSON: ", e.what());
  }
  SDLORA_CHECK(j.is_object(), source, ": a config is a JSON object, got ", j.type_name());
  Config c;
  const bool released = j.contains("model_name");
  for (const auto& [name, value] : j.items()) {
    const Key* k = find_key(name);
    if (k == nullptr) unknown_key(name, source);
    SDLORA_CHECK(released || !k->released_only, source, ": config key '", name,
                 "' belongs to the released code's configs (those with model_name); this "
                 "project's own configs do not take it");
    try {
      k->read(c, value);
    } catch (const std::exception& e) {
      SDLORA_THROW(source, ": ", e.what());
    }
  }
  if (released) apply_released_defaults(c, j);
  try {
    c.validate();
  } catch (const std::exception& e) {
    SDLORA_THROW(source, ": ", e.what());
  }
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  SDLORA_CHECK(in.good(), "cannot open config file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return config_from_json(ss.str(), path);
}

void apply_override(Config& config, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  SDLORA_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment, "': expected key=value");
  const std::string name = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const Key* k = find_key(name);
  if (k == nullptr) unknown_key(name, "--set");
  SDLORA_CHECK(config.released() || !k->released_only, "--set ", name,
               ": the key belongs to the released code's configs (those with model_name)");
  json value;
  if (k->is_string) {
    // Config values are written back as JSON (run folders, checkpoints), which holds UTF-8 text
    // only; a NUL would cut a path short at the operating system.
    SDLORA_CHECK(text.find('\0') == std::string::npos, "--set ", name,
                 ": the value holds a NUL byte");
    value = text;
    try {
      (void)value.dump();
    } catch (const json::type_error&) {
      SDLORA_THROW("--set ", name, ": the value is not valid UTF-8 text");
    }
  } else {
    std::string t = text;
    const bool is_list = name.find("milestones") != std::string::npos || name == "rank_schedule" ||
                         (name == "seed" && t.find(',') != std::string::npos);
    if (is_list && (t.empty() || t.front() != '[')) t = "[" + t + "]";
    try {
      value = json::parse(t);
    } catch (const std::exception&) {
      SDLORA_THROW("--set ", name, ": cannot read '", text, "' as a value of this key");
    }
  }
  Config updated = config;
  k->read(updated, value);
  config = std::move(updated);
}

}  // namespace sdlora::cl
