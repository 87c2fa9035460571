// The learners of learner.h.
#include <algorithm>

#include "cl/learner.h"
#include "cl/methods.h"
#include "tensor/error.h"

namespace sdlora::cl {
namespace {

int64_t sdlora_stored(const SDLoRA& s) {
  int64_t n = static_cast<int64_t>(s.alphas().size());  // the shared alphas
  for (int64_t p = 0; p < s.num_projections(); ++p) {
    const SDLoRAProjection& proj = s.projection(p);
    for (int64_t k = 0; k < proj.num_components(); ++k)
      n += proj.up(k).numel() + proj.down(k).numel() + 1;  // + beta
    if (proj.has_current()) n += proj.current_up().numel() + proj.current_down().numel();
  }
  return n;
}

std::vector<double> alpha_values(const SDLoRA& s) {
  std::vector<double> a;
  for (const Var& v : s.alphas()) a.push_back(v.data().item());
  return a;
}

// SD-LoRA, SD-LoRA-RR (a rank schedule) and SD-LoRA-KD (kd = true).
class SDLoRALearner : public Learner {
 public:
  SDLoRALearner(ViT& vit, std::string method, SDLoRAMode mode, RankSchedule schedule, bool kd,
                double tau)
      : method_(std::move(method)),
        sdlora_(vit, mode),
        schedule_(std::move(schedule)),
        kd_(kd),
        tau_(tau) {}

  std::string method() const override { return method_; }
  void begin_task(int64_t task, Generator& gen) override {
    rank_ = schedule_.rank_for(task);
    sdlora_.begin_task(rank_, gen);
  }
  std::vector<std::pair<std::string, Var>> named_trainable_parameters() const override {
    return sdlora_.named_trainable_parameters();
  }
  // The function the task trained is kept: the pair stays current (unnormalised, with its
  // learned alpha_t) until the next begin_task freezes it. KD decides here and, when the new
  // component is redundant, absorbs it into the earlier ones (unchanged up to the residual).
  TaskEnd end_task(int64_t task) override {
    TaskEnd end;
    end.rank = rank_;
    if (kd_ && task >= 1 && sdlora_.num_components() > 0) {
      end.kd_checked = true;
      end.kd = sdlora_.kd_decide(tau_);
      if (end.kd.redundant) sdlora_.kd_absorb();
    }
    end.magnitudes = alpha_values(sdlora_);
    return end;
  }
  int64_t stored_parameters() const override { return sdlora_stored(sdlora_); }
  std::map<std::string, Tensor> state_dict() const override { return sdlora_.state_dict(true); }
  std::map<std::string, std::string> metadata() const override { return sdlora_.metadata(true); }
  void load_state_dict(const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) override {
    sdlora_.load_state_dict(tensors, metadata);
  }
  const SDLoRA* adapters() const override { return &sdlora_; }

 private:
  std::string method_;
  SDLoRA sdlora_;
  RankSchedule schedule_;
  bool kd_;
  double tau_;
  int64_t rank_ = 0;
};

// Sequential LoRA fine-tuning: one pair, opened at task 0 and trained on every task in turn.
class SeqLoRALearner : public Learner {
 public:
  SeqLoRALearner(ViT& vit, SDLoRAMode mode, int64_t rank) : sdlora_(vit, mode), rank_(rank) {}

  std::string method() const override { return "seq-lora"; }
  void begin_task(int64_t task, Generator& gen) override {
    (void)task;
    if (!sdlora_.has_current()) sdlora_.begin_task(rank_, gen);
    fix_magnitude();
  }
  std::vector<std::pair<std::string, Var>> named_trainable_parameters() const override {
    std::vector<std::pair<std::string, Var>> out;  // the pair; the magnitude is fixed
    for (const auto& named : sdlora_.named_trainable_parameters())
      if (named.second.requires_grad()) out.push_back(named);
    return out;
  }
  TaskEnd end_task(int64_t task) override {
    (void)task;
    TaskEnd end;
    end.rank = rank_;
    return end;
  }
  int64_t stored_parameters() const override { return sdlora_stored(sdlora_); }
  std::map<std::string, Tensor> state_dict() const override { return sdlora_.state_dict(true); }
  std::map<std::string, std::string> metadata() const override { return sdlora_.metadata(true); }
  void load_state_dict(const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) override {
    sdlora_.load_state_dict(tensors, metadata);
    fix_magnitude();
  }
  const SDLoRA* adapters() const override { return &sdlora_; }

 private:
  // The pair's magnitude stays the mode's initial value (1 in mode paper: plain LoRA).
  void fix_magnitude() {
    for (const Var& a : sdlora_.alphas()) {
      Var handle = a;
      handle.set_requires_grad(false);
    }
  }

  SDLoRA sdlora_;
  int64_t rank_;
};

class LinearProbeLearner : public Learner {
 public:
  explicit LinearProbeLearner(ViT& vit) { vit.set_requires_grad(false); }
  std::string method() const override { return "linear-probe"; }
  void begin_task(int64_t, Generator&) override {}
  std::vector<std::pair<std::string, Var>> named_trainable_parameters() const override {
    return {};
  }
  TaskEnd end_task(int64_t) override { return {}; }
  int64_t stored_parameters() const override { return 0; }
  std::map<std::string, Tensor> state_dict() const override { return {}; }
  std::map<std::string, std::string> metadata() const override { return {}; }
  void load_state_dict(const std::map<std::string, Tensor>&,
                       const std::map<std::string, std::string>&) override {}
};

}  // namespace

std::unique_ptr<Learner> make_learner(const Config& config, ViT& vit) {
  const std::string& m = config.method;
  if (m == "sdlora" || m == "sdlora-rr" || m == "sdlora-kd")
    return std::make_unique<SDLoRALearner>(vit, m, config.mode(), config.effective_rank_schedule(),
                                           m == "sdlora-kd", config.kd_tau);
  if (m == "seq-lora") return std::make_unique<SeqLoRALearner>(vit, config.mode(), config.rank);
  if (m == "linear-probe") return std::make_unique<LinearProbeLearner>(vit);
  method_info(m);  // throws listing the methods
  SDLORA_THROW("method '", m, "' is registered (cl/methods.cpp) but has no learner here");
}

}  // namespace sdlora::cl
