// SD-LoRA adapters (docs/sdlora-spec.md; README.md, section nn) on the q and v parts of every
// block's qkv projection of a ViT: frozen past components (directions with shared learnable
// magnitudes alpha_k and frozen per-projection offsets beta_{k,p}) evaluated as one stacked
// low-rank product, the current task's learnable pair, the rank-reduction schedule (RR), the
// redundancy check with absorption (KD), merging into dense weights, and checkpoints.
//
// Checkpoint names (a safetensors file any tool can read):
//   blocks.{i}.attn.qkv.lora_q.{k}.down   (r_k, d_in)     component k's down factor D_k
//   blocks.{i}.attn.qkv.lora_q.{k}.up     (d_out, r_k)    its up factor U_k (unnormalised)
//   blocks.{i}.attn.qkv.lora_q.beta       (K)             beta_{k,p}, one per component
//   likewise lora_v; sdlora.alpha (K): the shared magnitudes, one per component;
//   __metadata__: sdlora_mode = paper | official, sdlora_current = true | false.
// Saved with include_current (what the task loop does after every task: the model exactly as
// the task trained it), the current pair is component K (the last index, beta 0, unnormalised),
// alpha holds K + 1 values and sdlora_current = "true"; loading such a file restores it as the
// current pair. Without include_current the file holds the K frozen components only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "nn/vit.h"
#include "tensor/random.h"

namespace sdlora {

// paper: directions normalised by ||U D||_F, magnitudes re-initialised to 1.0 at each task.
// official (the released code): by ||U||_F ||D||_F, magnitudes re-initialised to 0.8.
enum class SDLoRAMode { kPaper, kOfficial };
SDLoRAMode parse_sdlora_mode(const std::string& text);  // "paper" | "official", else throws
const char* sdlora_mode_name(SDLoRAMode mode);
double sdlora_alpha_init(SDLoRAMode mode);

// The RR rank schedule: (first task, rank) steps; the rank of task t is that of the last step
// whose first task is <= t. Steps start at task 0 with strictly increasing first tasks.
struct RankSchedule {
  std::vector<std::pair<int64_t, int64_t>> steps{{0, 10}};

  int64_t rank_for(int64_t task) const;
  void validate() const;  // throws naming the bad step
  static RankSchedule constant(int64_t rank) { return RankSchedule{{{0, rank}}}; }
  // The released code's SD-LoRA-RR: tasks 0-3 rank 10, 4-7 rank 8, 8 and later rank 6.
  static RankSchedule reduced() { return RankSchedule{{{0, 10}, {4, 8}, {8, 6}}}; }
};

// One adapted projection p (the q or the v part of one qkv): K frozen components and, during a
// task, the current pair. Frozen factors are plain tensors; the current pair is two leaf Vars.
class SDLoRAProjection {
 public:
  SDLoRAProjection(int64_t d_in, int64_t d_out, Device device);

  int64_t d_in() const { return d_in_; }
  int64_t d_out() const { return d_out_; }
  int64_t num_components() const { return static_cast<int64_t>(ups_.size()); }       // frozen ones
  const Tensor& up(int64_t k) const { return ups_.at(static_cast<size_t>(k)); }      // (d_out, r_k)
  const Tensor& down(int64_t k) const { return downs_.at(static_cast<size_t>(k)); }  // (r_k, d_in)
  double beta(int64_t k) const { return betas_.at(static_cast<size_t>(k)); }
  // ||U_k D_k||_F (from the r x r Gram matrices) and the mode's norm n_{k,p}.
  double product_norm(int64_t k) const { return product_norms_.at(static_cast<size_t>(k)); }
  double mode_norm(int64_t k) const { return mode_norms_.at(static_cast<size_t>(k)); }

  bool has_current() const { return cur_up_.defined(); }
  const Var& current_up() const { return cur_up_; }      // (d_out, r_t), learnable
  const Var& current_down() const { return cur_down_; }  // (r_t, d_in), learnable
  int64_t total_rank() const;  // of everything evaluated: frozen components and the current pair

  // The stacked factors of every term: D_all = [D_0; ...; D_{K-1}; D_t] (R, d_in) and
  // U_all = [c_0 U_0, ..., c_{K-1} U_{K-1}, alpha_t U_t] (d_out, R) with
  // c_k = (alpha_k + beta_k) / n_k, so the update is x D_all^T U_all^T: two products whatever K.
  // alphas holds K (+1 with a current pair) one-element Vars; their gradients flow through
  // U_all. Undefined Vars when there are no terms.
  Var stacked_down() const;
  Var stacked_up(const std::vector<Var>& alphas) const;

  // Structure changes (SDLoRA drives them; they keep the device caches in step).
  void begin_current(int64_t rank, Generator& gen);  // D Kaiming-uniform, U zeros
  void set_current(Tensor up, Tensor down);          // loading a mid-task checkpoint
  void freeze_current(SDLoRAMode mode);              // the current pair becomes component K
  void drop_current();
  void add_component(Tensor up, Tensor down, double beta, SDLoRAMode mode);
  void add_to_beta(int64_t k, double delta);
  void clear();
  void to(Device device);

 private:
  void refresh();  // rebuilds the stacked tensors below from the lists

  int64_t d_in_, d_out_;
  Device device_;
  std::vector<Tensor> ups_, downs_;
  std::vector<float> betas_;  // float32, as checkpoints store them, so round trips are exact
  std::vector<double> product_norms_, mode_norms_;
  Var cur_up_, cur_down_;
  // Device caches for the stacked evaluation: frozen factors stacked along the rank, and per term
  // (frozen components, then the current pair with beta 0 and norm 1) beta, 1 / n and, per rank
  // column, the index of its term.
  Tensor up_past_, down_past_, beta_terms_, inv_norm_terms_, term_of_column_;
};

// The adapter's evaluation as free functions of Vars (what SDLoRAQKV runs, and what the
// autograd suite gradchecks in float64):
//   scaled_up: U_all with column j scaled by (alpha_k + beta_k) / n_k of its term k,
//     alphas (T) one-element Vars, beta and inv_norm (T), term_of_column (R) int64, up (d_out, R);
//   qkv_lowrank_update: qkv (B, N, 3D) plus (x D_q^T) U_q^T into its q columns [0, D) and
//     (x D_v^T) U_v^T into its v columns [2D, 3D), after one down-product over both projections.
Var scaled_up(const std::vector<Var>& alphas, const Tensor& beta, const Tensor& inv_norm,
              const Tensor& term_of_column, const Var& up);
Var qkv_lowrank_update(const Var& x, const Var& qkv, const Var& down_q, const Var& up_q,
                       const Var& down_v, const Var& up_v);

// The KD least-squares fit of the current direction on the frozen ones of one projection, with
// every direction at unit Frobenius norm: coefficients c (K) and residual sqrt(max(0, 1 - c.g)).
struct KDFit {
  std::vector<double> coefficients;
  double residual = 1.0;
};

struct KDDecision {
  bool redundant = false;  // every residual <= tau
  double tau = 0.0;
  std::vector<double> residuals;  // per projection, in projection order
  std::string describe() const;   // one line for the log
};

class SDLoRA {
 public:
  // Attaches adapters to every block of `vit` (which must outlive this object) and freezes the
  // backbone: every parameter except head.* stops requiring grad. No components yet.
  SDLoRA(ViT& vit, SDLoRAMode mode);
  ~SDLoRA();  // detaches the adapters
  SDLoRA(const SDLoRA&) = delete;
  SDLoRA& operator=(const SDLoRA&) = delete;

  SDLoRAMode mode() const { return mode_; }
  ViT& vit() const { return vit_; }
  // Projections p = 2 i (block i's q) and 2 i + 1 (its v).
  int64_t num_projections() const { return static_cast<int64_t>(projections_.size()); }
  SDLoRAProjection& projection(int64_t p) { return *projections_.at(static_cast<size_t>(p)); }
  const SDLoRAProjection& projection(int64_t p) const {
    return *projections_.at(static_cast<size_t>(p));
  }
  std::string projection_name(int64_t p) const;  // "blocks.3.attn.qkv.lora_v"

  int64_t num_components() const;  // frozen components (the same for every projection)
  bool has_current() const;
  // alpha_0 .. alpha_{K-1}, then alpha_t during a task: one-element leaf Vars shared by every
  // projection.
  const std::vector<Var>& alphas() const { return alphas_; }

  // Starts a task. A pair still current from the previous task is frozen first (end_task), as
  // the released code does when it rebuilds its model for a new task; then every projection gets
  // a current pair of this rank (D Kaiming-uniform with bound 1/sqrt(d_in), U zeros), every
  // magnitude is re-initialised to the mode's value and alpha_t is added with it.
  void begin_task(int64_t rank, Generator& gen);
  // Freezes the current pairs: each becomes component K, normalised as the mode says, keeping
  // alpha_t. This changes the function (alpha_t then scales a unit-norm direction), so the task
  // loop does not call it when a task ends: the trained pair stays current until begin_task.
  void end_task();
  // The current pairs (down, up per projection, in projection order), then every alpha. The
  // classifier's parameters are the caller's.
  std::vector<Var> trainable_parameters() const;
  // The same with their checkpoint names (alpha k as "sdlora.alpha.{k}").
  std::vector<std::pair<std::string, Var>> named_trainable_parameters() const;

  // ---- SD-LoRA-KD, called at the end of task t >= 1 instead of end_task when redundant.
  KDFit kd_fit(int64_t p) const;
  KDDecision kd_decide(double tau) const;
  // Folds every projection's current term into its frozen components' betas
  // (beta_k += s c_k n_k / ||U_k D_k||_F with s = alpha_t ||U_t D_t||_F) and discards the current
  // pairs and alpha_t; the function is unchanged up to the fit's residual.
  void kd_absorb();

  // ---- merging: W0 plus every term, for inference at the backbone's cost.
  Tensor merged_qkv_weight(int64_t block) const;  // (3D, D)
  // A new plain ViT (same config and device, no adapters, frozen) with the merged weights.
  std::unique_ptr<ViT> merged_vit() const;

  // ---- checkpoints (names in the file comment). state_dict tensors share storage with the
  // adapters; load replaces every component, validating the whole file first: a wrong mode, or
  // any missing, unexpected or mis-shaped adapter tensor, throws one error naming them all.
  // Tensors that are not adapter tensors (a backbone stored in the same file) are ignored.
  std::map<std::string, Tensor> state_dict(bool include_current = false) const;
  std::map<std::string, std::string> metadata(bool include_current = false) const;
  void load_state_dict(const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata);
  void save(const std::string& path, bool include_current = false) const;
  void load(const std::string& path);
  // blocks.*.attn.qkv.lora_* and sdlora.*: the names load_state_dict reads.
  static bool is_adapter_key(const std::string& name);

  // Moves every adapter tensor (call with the ViT's own move).
  void to(Device device);

 private:
  friend class SDLoRAQKV;

  ViT& vit_;
  SDLoRAMode mode_;
  Device device_;
  std::vector<std::unique_ptr<SDLoRAProjection>> projections_;
  std::vector<Var> alphas_;
};

}  // namespace sdlora
