// The configuration of a class-incremental run: the released code's JSON keys (dataset,
// init_cls, increment, epochs, lrate, milestones, ...) with the same meaning, and this project's
// own (method, sdlora_mode, rank, rank_schedule, kd_tau, backbone, weights, ...). Unknown keys
// and bad values are errors that name the key.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nn/sdlora.h"
#include "nn/vit.h"

namespace sdlora::cl {

struct Config {
  // ---- the released code's keys
  std::string dataset = "cifar100";
  std::string data_path;
  std::string prefix;                    // free text recorded with the run
  bool shuffle = true;                   // false keeps the natural class order
  int64_t init_cls = 10;                 // classes of task 0
  int64_t increment = 10;                // classes of every later task
  int64_t init_epoch = 20;               // epochs of task 0
  int64_t epochs = 20;                   // epochs of every later task
  double init_lr = 0.01;                 // lr of task 0
  double lrate = 0.01;                   // lr of later tasks
  std::vector<int64_t> init_milestones;  // multi-step decay epochs of task 0
  std::vector<int64_t> milestones;       // and of later tasks
  double init_lr_decay = 0.1;
  double lrate_decay = 0.1;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";  // sgd | adam | adamw
  double momentum = 0.9;          // SGD only
  double weight_decay = 0.0;
  std::string scheduler = "multistep";  // constant | multistep | cosine (T_max = the epochs)
  int64_t seed = 1993;                  // the seed of this run (the first of `seeds`)
  // `seed` written as a list (the released form): one run per seed (cl/multi_seed.h).
  std::vector<int64_t> seeds;  // empty or one element: a single run
  int64_t num_workers = 2;

  // ---- keys only a released config (one with model_name) may hold; read in the released code's
  // semantics: its SD-LoRA learner always trains with SGD (momentum 0.9, no weight decay) and
  // MultiStepLR over the milestones, whatever optimizer, scheduler and weight decays say.
  std::string model_name;  // "sdlora"; its presence selects the released semantics
  int64_t memory_size = 0, memory_per_class = 0;  // rehearsal: must be 0 (SD-LoRA has none)
  bool fixed_memory = false;
  std::string filepath;  // the released code's adapter folder (ignored: see --out)
  double init_weight_decay = 0.0, min_lr = 0.0;
  int64_t tuned_epoch = 0;

  // ---- this project's keys
  std::string method = "sdlora";      // sdlora | sdlora-rr | sdlora-kd | seq-lora | linear-probe
  std::string sdlora_mode = "paper";  // paper | official
  int64_t rank = 10;                  // rank of every task (sdlora, sdlora-kd, seq-lora)
  // SD-LoRA-RR's (first task, rank) steps; empty = the released schedule 10/8/6 from tasks
  // 0/4/8. The other methods use the constant `rank` (so one config serves every method).
  std::vector<std::pair<int64_t, int64_t>> rank_schedule;
  double kd_tau = 9e-4;  // SD-LoRA-KD's redundancy threshold on the residuals
  std::string backbone = "vit_base_patch16_224";  // a ViT preset, or "custom"
  // Overrides of the preset's shape (0 = the preset's value; "custom" starts from ViT-B/16).
  int64_t image_size = 0, patch_size = 0, embed_dim = 0, depth = 0, num_heads = 0;
  double mlp_ratio = 0.0;            // 0 = the preset's
  std::string weights;               // the backbone's safetensors file (timm names); empty = random
  std::string transform = "vit224";  // data/transforms.h preset: vit224, smallN, none
  int64_t channels = 3;         // channels the backbone takes (images converted); 0 = as stored
  int64_t eval_batch_size = 0;  // 0 = batch_size
  // Subsampling for quick runs: the first N images of every class in the dataset's own order
  // (0 = all). The demo uses them to fit its time budget.
  int64_t train_per_class = 0, test_per_class = 0;
  int64_t cache_mb = 4096;      // decoded-image cache of each loader
  std::string device = "auto";  // auto (cuda when a GPU is present, else cpu) | cpu | cuda | cuda:N
  int64_t threads = 0;          // CPU threads (0 = the library default); applied by the caller
  int64_t log_every = 0;        // batches between progress lines in log.txt (0 = per epoch only)
  int64_t max_image_pixels = 89478485;  // image folders: larger images are refused (0 = no limit)
  bool tf32 = true;                     // TF32 tensor cores for float32 products on CUDA
  bool cuda_graph = true;  // replay the training step as a CUDA graph (cl/train_step.h) on a GPU
  std::string precision = "fp32";  // fp32 | bf16 (mixed precision: nn/precision.h)
  int64_t class_order_seed = -1;   // the class order's seed (-1: seed), fixed across `seeds`

  // A config with model_name: the released code's semantics (see above).
  bool released() const { return !model_name.empty(); }
  // The reader data::make_dataset opens: the released names cifar224, imagenetr, imageneta map
  // to cifar100, imagenet-r, imagenet-a.
  std::string dataset_reader() const;
  // The optimizer and schedule the run uses (released: sgd and multistep).
  std::string effective_optimizer() const { return released() ? "sgd" : optimizer; }
  std::string effective_scheduler() const { return released() ? "multistep" : scheduler; }
  double effective_momentum() const { return released() ? 0.9 : momentum; }
  double effective_weight_decay() const { return released() ? 0.0 : weight_decay; }
  int64_t effective_class_order_seed() const {
    return class_order_seed >= 0 ? class_order_seed : seed;
  }
  // The keys the run does not follow, each as "key = value (why)": the released code's ignored
  // keys for a released config; empty otherwise.
  std::vector<std::string> ignored_keys() const;
  // One config per seed of `seeds` (the config itself when it has one seed).
  std::vector<Config> per_seed() const;

  // Throws naming the first bad key and value.
  void validate() const;
  // The rank schedule the method uses.
  RankSchedule effective_rank_schedule() const;
  SDLoRAMode mode() const { return parse_sdlora_mode(sdlora_mode); }
  // The device to run on; throws when a GPU is asked for and none is present.
  Device resolved_device() const;
  // The backbone's shape: the preset with the overrides applied, no classifier head.
  ViTConfig vit_config() const;
  int64_t effective_eval_batch_size() const {
    return eval_batch_size > 0 ? eval_batch_size : batch_size;
  }

  // Every key with its value, as pretty-printed JSON text.
  std::string to_json() const;
};

// Parses JSON text (an object); unknown keys and values of the wrong type are errors naming the
// key; the result is validated. `source` names the text in messages (a file name).
Config config_from_json(const std::string& text, const std::string& source = "config");
Config load_config(const std::string& path);
// "key=value" from the command line: the value is read as the key's type (strings as given,
// numbers, true/false, lists as JSON "[10, 15]" or "10,15", rank_schedule as
// "[[0,10],[4,8]]"). Throws naming the key; the config is unchanged on error. Does not validate
// the whole config (call validate() after the last override).
void apply_override(Config& config, const std::string& assignment);

}  // namespace sdlora::cl
