// SD-LoRA: the per-projection component stacks, the qkv adapter that evaluates them as two
// products, task boundaries, KD and merging (checkpoints: sdlora_checkpoint.cpp).
#include "nn/sdlora.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "autograd/functions.h"
#include "nn/host_linalg.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace sdlora {

// ---- modes and the rank schedule

SDLoRAMode parse_sdlora_mode(const std::string& text) {
  if (text == "paper") return SDLoRAMode::kPaper;
  if (text == "official") return SDLoRAMode::kOfficial;
  SDLORA_THROW("sdlora_mode must be \"paper\" or \"official\", got \"", text, "\"");
}

const char* sdlora_mode_name(SDLoRAMode mode) {
  return mode == SDLoRAMode::kPaper ? "paper" : "official";
}

double sdlora_alpha_init(SDLoRAMode mode) { return mode == SDLoRAMode::kPaper ? 1.0 : 0.8; }

void RankSchedule::validate() const {
  SDLORA_CHECK(!steps.empty() && steps.front().first == 0,
               "rank schedule: the first step must start at task 0");
  for (size_t i = 0; i < steps.size(); ++i) {
    SDLORA_CHECK(steps[i].second > 0, "rank schedule: step ", i, " (first task ", steps[i].first,
                 ") has rank ", steps[i].second, "; ranks must be positive");
    SDLORA_CHECK(i == 0 || steps[i].first > steps[i - 1].first, "rank schedule: step ", i,
                 " starts at task ", steps[i].first, ", not after the previous step's task ",
                 steps[i - 1].first);
  }
}

int64_t RankSchedule::rank_for(int64_t task) const {
  validate();
  SDLORA_CHECK(task >= 0, "rank schedule: task ", task, " is negative");
  int64_t rank = steps.front().second;
  for (const auto& [first, r] : steps)
    if (first <= task) rank = r;
  return rank;
}

namespace {

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

}  // namespace

// ---- one projection

SDLoRAProjection::SDLoRAProjection(int64_t d_in, int64_t d_out, Device device)
    : d_in_(d_in), d_out_(d_out), device_(device) {}

int64_t SDLoRAProjection::total_rank() const {
  int64_t r = has_current() ? cur_down_.size(0) : 0;
  for (const Tensor& d : downs_) r += d.size(0);
  return r;
}

void SDLoRAProjection::refresh() {
  const int64_t K = num_components();
  up_past_ = K > 0 ? cat(ups_, 1) : Tensor();
  down_past_ = K > 0 ? cat(downs_, 0) : Tensor();
  std::vector<float> beta, inv_norm;
  std::vector<int64_t> term;
  for (int64_t k = 0; k < K; ++k) {
    beta.push_back(betas_[static_cast<size_t>(k)]);
    // A component whose factors are zero (a task that never trained) contributes nothing.
    const double n = mode_norms_[static_cast<size_t>(k)];
    inv_norm.push_back(n > 0 ? static_cast<float>(1.0 / n) : 0.0f);
    term.insert(term.end(), static_cast<size_t>(downs_[static_cast<size_t>(k)].size(0)), k);
  }
  if (has_current()) {  // the current term: coefficient alpha_t exactly (beta 0, norm 1)
    beta.push_back(0.0f);
    inv_norm.push_back(1.0f);
    term.insert(term.end(), static_cast<size_t>(cur_down_.size(0)), K);
  }
  const int64_t T = static_cast<int64_t>(beta.size());
  if (T == 0) {
    beta_terms_ = inv_norm_terms_ = term_of_column_ = Tensor();
    return;
  }
  beta_terms_ = Tensor::from_vector<float>(beta, {T}, device_);
  inv_norm_terms_ = Tensor::from_vector<float>(inv_norm, {T}, device_);
  term_of_column_ =
      Tensor::from_vector<int64_t>(term, {static_cast<int64_t>(term.size())}, device_);
}

Var SDLoRAProjection::stacked_down() const {
  if (num_components() == 0) return cur_down_;  // undefined when there are no terms at all
  if (!has_current()) return Var(down_past_);
  return cat({Var(down_past_), cur_down_}, 0);
}

// Built from Vars by autograd composition (no fused node): the per-term coefficients
// (alpha + beta) / n form one vector, expanded to the rank columns by index_select and applied
// to the stacked up factors by one broadcast multiply, so each alpha_k receives its gradient
// sum(dU_all[:, cols of k] o U_k) / n_k through the same two products that evaluate the layer.
Var SDLoRAProjection::stacked_up(const std::vector<Var>& alphas) const {
  const int64_t K = num_components(), T = K + (has_current() ? 1 : 0);
  SDLORA_CHECK(static_cast<int64_t>(alphas.size()) == T, "SD-LoRA: ", alphas.size(),
               " magnitudes for ", T, " terms");
  if (T == 0) return Var();
  Var up;
  if (K == 0)
    up = cur_up_;
  else if (!has_current())
    up = Var(up_past_);
  else
    up = cat({Var(up_past_), cur_up_}, 1);
  return scaled_up(alphas, beta_terms_, inv_norm_terms_, term_of_column_, up);
}

Var scaled_up(const std::vector<Var>& alphas, const Tensor& beta, const Tensor& inv_norm,
              const Tensor& term_of_column, const Var& up) {
  std::vector<Var> a;
  for (const Var& alpha : alphas) a.push_back(reshape(alpha, {1}));
  const Var alpha_vec = a.size() == 1 ? a.front() : cat(a, 0);     // (T)
  const Var coef = mul(add(alpha_vec, Var(beta)), Var(inv_norm));  // (T)
  const Var per_column = index_select(coef, 0, term_of_column);    // (R)
  return mul(up, per_column);  // (d_out, R), column j scaled by its term's coefficient
}

Var qkv_lowrank_update(const Var& x, const Var& qkv, const Var& down_q, const Var& up_q,
                       const Var& down_v, const Var& up_v) {
  const int64_t rq = down_q.size(0), D = qkv.size(-1) / 3;
  Var t = matmul(x, cat({down_q, down_v}, 0), false, true);  // (B, N, rq + rv)
  if (t.dtype() != qkv.dtype()) t = cast(t, qkv.dtype());
  return add_lowrank_columns_(qkv, t, {{0, 0, up_q}, {2 * D, rq, up_v}});
}

void SDLoRAProjection::begin_current(int64_t rank, Generator& gen) {
  SDLORA_CHECK(rank > 0, "SD-LoRA: rank must be positive, got ", rank);
  // nn.Linear's Kaiming-uniform (a = sqrt(5)): bound = 1 / sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(d_in_));
  cur_down_ = Var(gen.uniform({rank, d_in_}, -bound, bound, DType::kFloat32, device_), true);
  cur_up_ = Var(Tensor::zeros({d_out_, rank}, DType::kFloat32, device_), true);
  refresh();
}

void SDLoRAProjection::set_current(Tensor up, Tensor down) {
  cur_up_ = Var(std::move(up), true);
  cur_down_ = Var(std::move(down), true);
  refresh();
}

void SDLoRAProjection::add_component(Tensor up, Tensor down, double beta, SDLoRAMode mode) {
  SDLORA_CHECK(up.ndim() == 2 && down.ndim() == 2 && up.size(0) == d_out_ &&
                   down.size(1) == d_in_ && up.size(1) == down.size(0) && up.size(1) > 0,
               "SD-LoRA: component up ", up.describe(), " and down ", down.describe(),
               " should be (", d_out_, ", r) and (r, ", d_in_, ")");
  const HostMatrix u = host_matrix(up), d = host_matrix(down);
  const double product = std::sqrt(std::max(0.0, product_inner(u, d, u, d)));
  product_norms_.push_back(product);
  mode_norms_.push_back(mode == SDLoRAMode::kPaper ? product : frobenius(u) * frobenius(d));
  betas_.push_back(static_cast<float>(beta));
  ups_.push_back(std::move(up));
  downs_.push_back(std::move(down));
  refresh();
}

void SDLoRAProjection::freeze_current(SDLoRAMode mode) {
  SDLORA_CHECK(has_current(), "SD-LoRA: no current pair to freeze");
  // Copies, so an optimizer still holding the current Vars cannot change a frozen component.
  Tensor up = cur_up_.data().clone(), down = cur_down_.data().clone();
  cur_up_ = cur_down_ = Var();
  add_component(std::move(up), std::move(down), 0.0, mode);
}

void SDLoRAProjection::drop_current() {
  cur_up_ = cur_down_ = Var();
  refresh();
}

void SDLoRAProjection::add_to_beta(int64_t k, double delta) {
  float& b = betas_.at(static_cast<size_t>(k));
  b = static_cast<float>(b + delta);
  refresh();
}

void SDLoRAProjection::clear() {
  ups_.clear();
  downs_.clear();
  betas_.clear();
  product_norms_.clear();
  mode_norms_.clear();
  cur_up_ = cur_down_ = Var();
  refresh();
}

void SDLoRAProjection::to(Device device) {
  device_ = device;
  for (Tensor& t : ups_) t = t.to(device);
  for (Tensor& t : downs_) t = t.to(device);
  for (Var* v : {&cur_up_, &cur_down_})
    if (v->defined()) {
      v->clear_grad();
      v->set_data(v->data().to(device));
    }
  refresh();
}

// ---- the qkv adapter of one block

class SDLoRAQKV final : public QKVAdapter {
 public:
  SDLoRAQKV(const SDLoRA* owner, int64_t block) : owner_(owner), block_(block) {}

  // y_q += (x D_all,q^T) U_all,q^T and y_v likewise, with one down-product for q and v together
  // (x is read once), then one up-product each. Under bf16 x is bfloat16 and the factors float32:
  // the products run on bfloat16 operands and the factors' gradients come back float32.
  void adapt(const Var& x, Var& q, Var& v) const override {
    const SDLoRAProjection& pq = owner_->projection(2 * block_);
    const SDLoRAProjection& pv = owner_->projection(2 * block_ + 1);
    const Var dq = pq.stacked_down(), dv = pv.stacked_down();
    if (!dq.defined()) return;  // no components yet: the backbone's own function
    const int64_t rq = dq.size(0), rv = dv.size(0);
    const Var t = matmul(x, cat({dq, dv}, 0), false, true);  // (B, N, rq + rv)
    q = add(q, matmul(slice(t, -1, 0, rq), pq.stacked_up(owner_->alphas_), false, true));
    v = add(v, matmul(slice(t, -1, rq, rq + rv), pv.stacked_up(owner_->alphas_), false, true));
  }

  // The same on the qkv output itself: one down-product over the stacked factors of both
  // projections, then each up-product accumulates into its columns of qkv (q at 0, v at 2D) with
  // beta = 1, in place: no slices of qkv, no separate adds, no concatenation.
  Var adapt_qkv(const Var& x, const Var& qkv) const override {
    const SDLoRAProjection& pq = owner_->projection(2 * block_);
    const SDLoRAProjection& pv = owner_->projection(2 * block_ + 1);
    const Var dq = pq.stacked_down(), dv = pv.stacked_down();
    if (!dq.defined()) return qkv;  // no components yet: the backbone's own function
    return qkv_lowrank_update(x, qkv, dq, pq.stacked_up(owner_->alphas_), dv,
                              pv.stacked_up(owner_->alphas_));
  }

 private:
  const SDLoRA* owner_;
  int64_t block_;
};

// ---- SDLoRA: set-up and task boundaries

SDLoRA::SDLoRA(ViT& vit, SDLoRAMode mode) : vit_(vit), mode_(mode), device_(vit.device()) {
  const int64_t D = vit.config().embed_dim;
  for (auto& [name, p] : vit.named_parameters()) p.set_requires_grad(name.rfind("head.", 0) == 0);
  for (int64_t i = 0; i < vit.depth(); ++i) {
    SDLORA_CHECK(!vit.block(i).attn().adapter(), "SD-LoRA: block ", i,
                 " already carries an adapter");
    projections_.push_back(std::make_unique<SDLoRAProjection>(D, D, device_));  // q
    projections_.push_back(std::make_unique<SDLoRAProjection>(D, D, device_));  // v
  }
  for (int64_t i = 0; i < vit.depth(); ++i)
    vit.block(i).attn().set_adapter(std::make_shared<SDLoRAQKV>(this, i));
}

SDLoRA::~SDLoRA() {
  for (int64_t i = 0; i < vit_.depth(); ++i) vit_.block(i).attn().set_adapter(nullptr);
}

std::string SDLoRA::projection_name(int64_t p) const {
  SDLORA_CHECK(p >= 0 && p < num_projections(), "SD-LoRA: projection ", p, " out of range [0, ",
               num_projections(), ")");
  return "blocks." + std::to_string(p / 2) + ".attn.qkv.lora_" + (p % 2 == 0 ? "q" : "v");
}

int64_t SDLoRA::num_components() const { return projections_.front()->num_components(); }
bool SDLoRA::has_current() const { return projections_.front()->has_current(); }

void SDLoRA::begin_task(int64_t rank, Generator& gen) {
  if (has_current()) end_task();
  for (auto& p : projections_) p->begin_current(rank, gen);
  const double init = sdlora_alpha_init(mode_);
  for (const Var& a : alphas_) {
    Tensor value = a.data();
    fill_(value, init);
  }
  alphas_.emplace_back(Tensor::full({1}, init, DType::kFloat32, device_), true);
}

void SDLoRA::end_task() {
  SDLORA_CHECK(has_current(), "SD-LoRA: end_task without a running task");
  for (auto& p : projections_) p->freeze_current(mode_);
}

std::vector<std::pair<std::string, Var>> SDLoRA::named_trainable_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  if (has_current()) {
    const std::string k = std::to_string(num_components());
    for (int64_t p = 0; p < num_projections(); ++p) {
      out.emplace_back(projection_name(p) + "." + k + ".down", projection(p).current_down());
      out.emplace_back(projection_name(p) + "." + k + ".up", projection(p).current_up());
    }
  }
  for (size_t k = 0; k < alphas_.size(); ++k)
    out.emplace_back("sdlora.alpha." + std::to_string(k), alphas_[k]);
  return out;
}

std::vector<Var> SDLoRA::trainable_parameters() const {
  std::vector<Var> out;
  for (auto& [name, v] : named_trainable_parameters()) out.push_back(v);
  return out;
}

void SDLoRA::to(Device device) {
  device_ = device;
  for (auto& p : projections_) p->to(device);
  for (Var& a : alphas_) {
    a.clear_grad();
    a.set_data(a.data().to(device));
  }
}

// ---- KD

KDFit SDLoRA::kd_fit(int64_t p) const {
  const SDLoRAProjection& proj = projection(p);
  SDLORA_CHECK(proj.has_current(), "SD-LoRA KD: ", projection_name(p), " has no current pair");
  const int64_t K = proj.num_components();
  KDFit fit;
  fit.coefficients.assign(static_cast<size_t>(K), 0.0);
  const HostMatrix ut = host_matrix(proj.current_up().data());
  const HostMatrix dt = host_matrix(proj.current_down().data());
  const double mt = std::sqrt(std::max(0.0, product_inner(ut, dt, ut, dt)));
  if (K == 0) return fit;  // nothing to fit on: residual 1
  if (mt == 0.0) {         // a zero update is trivially redundant
    fit.residual = 0.0;
    return fit;
  }
  std::vector<HostMatrix> u, d;
  std::vector<double> m;
  for (int64_t k = 0; k < K; ++k) {
    u.push_back(host_matrix(proj.up(k)));
    d.push_back(host_matrix(proj.down(k)));
    m.push_back(proj.product_norm(k));
  }
  // Unit directions u_k = U_k D_k / ||U_k D_k||: G_ij = <u_i, u_j>, g_i = <u_i, u_t>. A zero
  // component has a zero row and column and gets coefficient 0.
  std::vector<double> G(static_cast<size_t>(K * K), 0.0), g(static_cast<size_t>(K), 0.0);
  for (int64_t i = 0; i < K; ++i) {
    if (m[i] == 0.0) continue;
    g[i] = product_inner(u[i], d[i], ut, dt) / (m[i] * mt);
    for (int64_t j = 0; j <= i; ++j) {
      if (m[j] == 0.0) continue;
      const double gij = i == j ? 1.0 : product_inner(u[i], d[i], u[j], d[j]) / (m[i] * m[j]);
      G[static_cast<size_t>(i * K + j)] = G[static_cast<size_t>(j * K + i)] = gij;
    }
  }
  fit.coefficients = solve_psd(G, g, K);
  double cg = 0.0;
  for (int64_t i = 0; i < K; ++i) cg += fit.coefficients[i] * g[i];
  fit.residual = std::sqrt(std::max(0.0, 1.0 - cg));
  return fit;
}

KDDecision SDLoRA::kd_decide(double tau) const {
  KDDecision d;
  d.tau = tau;
  d.redundant = num_components() > 0;
  for (int64_t p = 0; p < num_projections(); ++p) {
    d.residuals.push_back(kd_fit(p).residual);
    if (!(d.residuals.back() <= tau)) d.redundant = false;
  }
  return d;
}

std::string KDDecision::describe() const {
  double worst = 0.0;
  for (double r : residuals) worst = std::max(worst, r);
  std::string s = std::string("KD: ") + (redundant ? "absorbed" : "kept") + " (max residual " +
                  fmt(worst) + (redundant ? " <= " : " > ") + "tau " + fmt(tau) + "); residuals:";
  for (double r : residuals) s += " " + fmt(r);
  return s;
}

void SDLoRA::kd_absorb() {
  SDLORA_CHECK(has_current(), "SD-LoRA KD: kd_absorb without a running task");
  SDLORA_CHECK(num_components() > 0, "SD-LoRA KD: no earlier component to absorb into");
  const double alpha_t = alphas_.back().data().item();
  std::vector<KDFit> fits;
  for (int64_t p = 0; p < num_projections(); ++p) fits.push_back(kd_fit(p));
  for (int64_t p = 0; p < num_projections(); ++p) {
    SDLoRAProjection& proj = projection(p);
    const HostMatrix ut = host_matrix(proj.current_up().data());
    const HostMatrix dt = host_matrix(proj.current_down().data());
    const double s = alpha_t * std::sqrt(std::max(0.0, product_inner(ut, dt, ut, dt)));
    for (int64_t k = 0; k < proj.num_components(); ++k) {
      if (proj.product_norm(k) == 0.0) continue;
      proj.add_to_beta(k, s * fits[p].coefficients[k] * proj.mode_norm(k) / proj.product_norm(k));
    }
    proj.drop_current();
  }
  alphas_.pop_back();
}

// ---- merging

Tensor SDLoRA::merged_qkv_weight(int64_t block) const {
  NoGradGuard no_grad;
  const int64_t D = vit_.config().embed_dim;
  // (3D, D), float32 also under bf16 (cast copies, so W is this function's own tensor)
  Tensor W = cast(vit_.block(block).attn().qkv().weight().data(), DType::kFloat32);
  for (int64_t part = 0; part < 2; ++part) {  // q rows [0, D), v rows [2D, 3D)
    const SDLoRAProjection& proj = projection(2 * block + part);
    const Var down = proj.stacked_down();
    if (!down.defined()) continue;
    const Tensor delta = matmul(proj.stacked_up(alphas_).data(), down.data());  // (D, D)
    const int64_t row = part == 0 ? 0 : 2 * D;
    slice_set_(W, 0, row, add(slice(W, 0, row, row + D), delta));
  }
  return W;
}

std::unique_ptr<ViT> SDLoRA::merged_vit() const {
  auto merged = std::make_unique<ViT>(vit_.config(), vit_.device());
  merged->load_state_dict(vit_.state_dict());
  for (int64_t i = 0; i < vit_.depth(); ++i) {
    Tensor w = merged->block(i).attn().qkv().weight().data();
    w.copy_(merged_qkv_weight(i));
  }
  merged->set_requires_grad(false);
  return merged;
}

}  // namespace sdlora
