// SD-LoRA: the adapted tiny ViT during task 2 against PyTorch (logits, loss and every trainable
// gradient, both modes), task boundaries, merging, KD absorption, checkpoints and their errors,
// and the RR rank schedule.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "autograd/functions.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

namespace sdlora {
namespace {

using test::all_close;
using test::host_values;
using test::random_tensor;

using test::error_of;

std::string temp_path(const std::string& name) { return test::temp_path("ad_" + name); }

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : host_values(t)) m = std::max(m, std::fabs(x));
  return m;
}

using test::rel_close;

ViTConfig tiny_config(int64_t classes) { return test::tiny_vit_config(classes); }

// The fixture model: backbone and adapters loaded from the file (adapters through the
// checkpoint loader itself, current pair included).
struct FixtureModel {
  SafetensorsFile file;
  std::unique_ptr<ViT> vit;
  std::unique_ptr<SDLoRA> ad;  // declared after vit: destroyed first
  int64_t col_begin = 0, col_end = 0;
  const Tensor& t(const std::string& name) const { return file.tensors.at(name); }
};

FixtureModel load_fixture(const std::string& mode) {
  FixtureModel m;
  m.file =
      load_safetensors(std::string(SDLORA_NN_FIXTURES) + "/sdlora_task2_" + mode + ".safetensors");
  auto meta = [&](const char* k) { return std::stoll(m.file.metadata.at(k)); };
  ViTConfig c;
  c.image_size = meta("image_size");
  c.patch_size = meta("patch_size");
  c.in_channels = meta("in_channels");
  c.embed_dim = meta("embed_dim");
  c.depth = meta("depth");
  c.num_heads = meta("num_heads");
  c.mlp_ratio = static_cast<double>(meta("mlp_ratio"));
  c.num_classes = meta("num_classes");
  m.col_begin = meta("loss_col_begin");
  m.col_end = meta("loss_col_end");
  m.vit = std::make_unique<ViT>(c);
  std::map<std::string, Tensor> backbone;
  for (const auto& [name, t] : m.file.tensors)
    if (!SDLoRA::is_adapter_key(name) && name.rfind("input.", 0) != 0 &&
        name.rfind("expected.", 0) != 0)
      backbone[name] = t;
  m.vit->load_state_dict(backbone);
  // "released": mode official with every magnitude at 0.8, as the released module starts a task.
  m.ad = std::make_unique<SDLoRA>(*m.vit, parse_sdlora_mode(m.file.metadata.at("sdlora_mode")));
  m.ad->load_state_dict(m.file.tensors, m.file.metadata);
  return m;
}

class SDLoRAFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(SDLoRAFixture, LogitsLossAndEveryTrainableGradientMatchPyTorch) {
  FixtureModel m = load_fixture(GetParam());
  SDLoRA& ad = *m.ad;
  ASSERT_EQ(ad.num_components(), 2);
  ASSERT_TRUE(ad.has_current());
  ASSERT_EQ(ad.alphas().size(), 3u);
  // Only the current pairs, the magnitudes and the head train.
  EXPECT_EQ(m.vit->trainable_parameters().size(), 2u);
  EXPECT_EQ(ad.trainable_parameters().size(), 2u * 4 + 3);

  const ViTOutput out = m.vit->forward(m.t("input.images"));
  const Var loss = cross_entropy(out.logits, m.t("input.labels"), m.col_begin, m.col_end);
  EXPECT_TRUE(rel_close(out.features.data(), m.t("expected.features"), 1e-4, "features"));
  EXPECT_TRUE(rel_close(out.logits.data(), m.t("expected.logits"), 1e-4, "logits"));
  EXPECT_TRUE(rel_close(loss.data().reshape({1}), m.t("expected.loss"), 1e-4, "loss"));
  backward(loss);

  int checked = 0;
  for (auto& [name, v] : ad.named_trainable_parameters()) {
    if (name.rfind("sdlora.alpha", 0) == 0) continue;
    ASSERT_TRUE(v.grad().defined()) << name;
    EXPECT_TRUE(rel_close(v.grad(), m.t("expected.grad." + name), 1e-4, "grad " + name));
    ++checked;
  }
  EXPECT_EQ(checked, 8);
  std::vector<Tensor> dalpha;
  for (const Var& a : ad.alphas()) dalpha.push_back(a.grad());
  EXPECT_TRUE(rel_close(cat(dalpha, 0), m.t("expected.grad.sdlora.alpha"), 1e-4, "grad alpha"));
  for (const char* name : {"head.weight", "head.bias"})
    EXPECT_TRUE(rel_close(m.vit->find(name).grad(), m.t(std::string("expected.grad.") + name), 1e-4,
                          std::string("grad ") + name));
  // The frozen backbone receives no gradient.
  EXPECT_FALSE(m.vit->block(0).attn().qkv().weight().grad().defined());
}

TEST_P(SDLoRAFixture, MergedWeightsAndMergedForwardEqualTheAdaptedModel) {
  FixtureModel m = load_fixture(GetParam());
  for (int64_t i = 0; i < 2; ++i) {
    const std::string name = "blocks." + std::to_string(i) + ".attn.qkv.weight";
    EXPECT_TRUE(rel_close(m.ad->merged_qkv_weight(i), m.t("expected.merged." + name), 1e-5, name));
  }
  const std::unique_ptr<ViT> merged = m.ad->merged_vit();
  EXPECT_FALSE(merged->block(0).attn().adapter());
  EXPECT_TRUE(merged->trainable_parameters().empty());
  NoGradGuard no_grad;
  const Tensor adapted = m.vit->forward(m.t("input.images")).logits.data();
  EXPECT_TRUE(
      rel_close(merged->forward(m.t("input.images")).logits.data(), adapted, 1e-5, "merged"));
}

INSTANTIATE_TEST_SUITE_P(Modes, SDLoRAFixture, ::testing::Values("paper", "official", "released"),
                         [](const auto& info) { return info.param; });

// ---- task boundaries

// The dense update of projection p from its factors, as the spec writes it.
Tensor dense_delta(const SDLoRA& ad, int64_t p) {
  const SDLoRAProjection& proj = ad.projection(p);
  Tensor delta = Tensor::zeros({proj.d_out(), proj.d_in()});
  for (int64_t k = 0; k < proj.num_components(); ++k) {
    const double c = (ad.alphas()[k].data().item() + proj.beta(k)) / proj.mode_norm(k);
    add_(delta, matmul(proj.up(k), proj.down(k)), c);
  }
  if (proj.has_current())
    add_(delta, matmul(proj.current_up().data(), proj.current_down().data()),
         ad.alphas().back().data().item());
  return delta;
}

void randomise_current(SDLoRA& ad, uint64_t seed) {
  for (int64_t p = 0; p < ad.num_projections(); ++p) {
    Tensor u = ad.projection(p).current_up().data();
    u.copy_(random_tensor(u.shape(), seed + static_cast<uint64_t>(p), -0.5, 0.5));
  }
}

TEST(SDLoRA, TaskBoundariesFollowTheSpec) {
  for (SDLoRAMode mode : {SDLoRAMode::kPaper, SDLoRAMode::kOfficial}) {
    ViT vit(tiny_config(0));
    Generator init(1);
    vit.init_weights(init);
    SDLoRA ad(vit, mode);
    const Tensor x = random_tensor({2, 3, 8, 8}, 5);
    const Tensor base = vit.forward(x).features.data().clone();
    EXPECT_TRUE(vit.trainable_parameters().empty());

    Generator gen(2);
    ad.begin_task(4, gen);
    const double a0 = sdlora_alpha_init(mode);
    ASSERT_EQ(ad.alphas().size(), 1u);
    EXPECT_EQ(ad.alphas()[0].data().item(), static_cast<float>(a0));
    const SDLoRAProjection& p0 = ad.projection(0);
    EXPECT_EQ(p0.current_down().shape(), (Shape{4, 16}));
    EXPECT_EQ(max_abs(p0.current_up().data()), 0.0);     // U = 0: training starts from the backbone
    EXPECT_LE(max_abs(p0.current_down().data()), 0.25);  // Kaiming-uniform bound 1/sqrt(16)
    EXPECT_GT(max_abs(p0.current_down().data()), 0.2);
    EXPECT_EQ(vit.forward(x).features.data().to_vector<float>(), base.to_vector<float>());

    randomise_current(ad, 10);
    Tensor a = ad.alphas()[0].data();
    fill_(a, 1.7);  // as if learned
    ad.end_task();
    EXPECT_EQ(ad.num_components(), 1);
    EXPECT_FALSE(ad.has_current());
    EXPECT_TRUE(ad.trainable_parameters().size() == 1u);  // the magnitude alone
    // Frozen as a normalised direction: its term is alpha_0 / n U_0 D_0.
    const Tensor u0 = p0.up(0), d0 = p0.down(0);
    const double product = std::sqrt(sum(mul(matmul(u0, d0), matmul(u0, d0))).item());
    const double split = std::sqrt(sum(mul(u0, u0)).item() * sum(mul(d0, d0)).item());
    EXPECT_NEAR(p0.product_norm(0), product, 1e-5 * product);  // the Gram trick
    EXPECT_NEAR(p0.mode_norm(0), mode == SDLoRAMode::kPaper ? product : split, 1e-5 * product);
    const Tensor W = ad.merged_qkv_weight(0);
    const Tensor want_q = add(slice(vit.block(0).attn().qkv().weight().data(), 0, 0, 16),
                              mul(matmul(u0, d0), 1.7 / p0.mode_norm(0)));
    EXPECT_TRUE(rel_close(slice(W, 0, 0, 16), want_q, 1e-6, "merged q after end_task"));

    // Task 1 (RR rank 2): the old magnitude is re-initialised, a new one added.
    ad.begin_task(RankSchedule{{{0, 4}, {1, 2}}}.rank_for(1), gen);
    ASSERT_EQ(ad.alphas().size(), 2u);
    EXPECT_EQ(ad.alphas()[0].data().item(), static_cast<float>(a0));
    EXPECT_EQ(ad.projection(3).current_up().shape(), (Shape{16, 2}));
    EXPECT_EQ(ad.projection(3).total_rank(), 6);
    const auto named = ad.named_trainable_parameters();
    ASSERT_EQ(named.size(), 4u * 2 + 2);
    EXPECT_EQ(named[0].first, "blocks.0.attn.qkv.lora_q.1.down");
    EXPECT_EQ(named[3].first, "blocks.0.attn.qkv.lora_v.1.up");
    EXPECT_EQ(named[9].first, "sdlora.alpha.1");
  }
}

TEST(SDLoRA, StackedEvaluationEqualsTheDenseFormula) {
  ViT vit(tiny_config(0));
  Generator gen(3);
  vit.init_weights(gen);
  SDLoRA ad(vit, SDLoRAMode::kPaper);
  for (int task = 0; task < 3; ++task) {
    ad.begin_task(3 - task, gen);
    randomise_current(ad, 100 * static_cast<uint64_t>(task));
    if (task < 2) ad.end_task();
  }
  Tensor a = ad.alphas()[1].data();
  fill_(a, 0.6);
  for (int64_t p = 0; p < ad.num_projections(); ++p) {
    const Tensor W0 = vit.block(p / 2).attn().qkv().weight().data();
    const int64_t row = p % 2 == 0 ? 0 : 32;
    const Tensor want = add(slice(W0, 0, row, row + 16), dense_delta(ad, p));
    EXPECT_TRUE(rel_close(slice(ad.merged_qkv_weight(p / 2), 0, row, row + 16), want, 1e-6,
                          ad.projection_name(p)));
  }
}

// ---- KD

struct KDModel {
  std::unique_ptr<ViT> vit;
  std::unique_ptr<SDLoRA> ad;
};

// Two frozen components (with non-zero betas), then a running task 2.
KDModel two_components(SDLoRAMode mode) {
  KDModel m;
  m.vit = std::make_unique<ViT>(tiny_config(4));
  Generator gen(4);
  m.vit->init_weights(gen);
  m.ad = std::make_unique<SDLoRA>(*m.vit, mode);
  for (int task = 0; task < 2; ++task) {
    m.ad->begin_task(3 - task, gen);
    randomise_current(*m.ad, 50 + 10 * static_cast<uint64_t>(task));
    m.ad->end_task();
  }
  for (int64_t p = 0; p < m.ad->num_projections(); ++p)
    m.ad->projection(p).add_to_beta(0, 0.1 * (p + 1));
  m.ad->begin_task(5, gen);
  Tensor at = m.ad->alphas().back().data();
  fill_(at, 1.4);
  return m;
}

TEST(SDLoRA, KDAbsorbsAnExactlyRedundantComponentWithoutChangingTheFunction) {
  for (SDLoRAMode mode : {SDLoRAMode::kPaper, SDLoRAMode::kOfficial}) {
    KDModel m = two_components(mode);
    SDLoRA& ad = *m.ad;
    // U_t D_t = 2 U_0 D_0 - 0.5 U_1 D_1 exactly: U_t = [2 U_0, -0.5 U_1], D_t = [D_0; D_1].
    for (int64_t p = 0; p < ad.num_projections(); ++p) {
      SDLoRAProjection& proj = ad.projection(p);
      Tensor u = proj.current_up().data(), d = proj.current_down().data();
      u.copy_(cat({mul(proj.up(0), 2.0), mul(proj.up(1), -0.5)}, 1));
      d.copy_(cat({proj.down(0), proj.down(1)}, 0));
    }
    const Tensor x = random_tensor({3, 3, 8, 8}, 9);
    NoGradGuard no_grad;
    const Tensor before = m.vit->forward(x).logits.data().clone();

    const KDFit fit = ad.kd_fit(0);
    ASSERT_EQ(fit.coefficients.size(), 2u);
    const SDLoRAProjection& p0 = ad.projection(0);
    // u_t = (2 m_0 u_0 - 0.5 m_1 u_1) / m_t in unit directions.
    const double mt = std::sqrt(sum(mul(matmul(p0.current_up().data(), p0.current_down().data()),
                                        matmul(p0.current_up().data(), p0.current_down().data())))
                                    .item());
    EXPECT_NEAR(fit.coefficients[0], 2.0 * p0.product_norm(0) / mt, 1e-5);
    EXPECT_NEAR(fit.coefficients[1], -0.5 * p0.product_norm(1) / mt, 1e-5);
    const KDDecision d = ad.kd_decide(9e-4);
    EXPECT_TRUE(d.redundant) << d.describe();
    EXPECT_EQ(d.residuals.size(), 4u);
    EXPECT_NE(d.describe().find("absorbed"), std::string::npos);

    const double beta_before = p0.beta(0);
    ad.kd_absorb();
    EXPECT_FALSE(ad.has_current());
    EXPECT_EQ(ad.num_components(), 2);
    EXPECT_EQ(ad.alphas().size(), 2u);
    EXPECT_NE(p0.beta(0), beta_before);
    EXPECT_TRUE(rel_close(m.vit->forward(x).logits.data(), before, 1e-5, "logits after absorb"));
  }
}

TEST(SDLoRA, KDSolvesWithLinearlyDependentEarlierDirections) {
  // Component 1 = 3 x component 0 (the same direction): G is singular, and the minimum-norm
  // solution must still reproduce a current term along that direction exactly.
  KDModel m = two_components(SDLoRAMode::kPaper);
  auto state = m.ad->state_dict(true);
  for (int64_t p = 0; p < m.ad->num_projections(); ++p) {
    const std::string n = m.ad->projection_name(p) + ".";
    state[n + "1.up"] = mul(state[n + "0.up"], 3.0);
    state[n + "1.down"] = state[n + "0.down"].clone();
    state[n + "2.up"] = mul(state[n + "0.up"], -1.5);
    state[n + "2.down"] = state[n + "0.down"].clone();
  }
  ViT vit(tiny_config(4));
  vit.load_state_dict(m.vit->state_dict());
  SDLoRA ad(vit, SDLoRAMode::kPaper);
  ad.load_state_dict(state, m.ad->metadata(true));
  const Tensor x = random_tensor({2, 3, 8, 8}, 21);
  NoGradGuard no_grad;
  const Tensor before = vit.forward(x).logits.data().clone();
  const KDDecision d = ad.kd_decide(9e-4);
  EXPECT_TRUE(d.redundant) << d.describe();
  const KDFit fit = ad.kd_fit(1);
  EXPECT_NEAR(fit.coefficients[0], fit.coefficients[1], 1e-6);  // split evenly (minimum norm)
  EXPECT_NEAR(fit.coefficients[0] + fit.coefficients[1], -1.0, 1e-6);
  ad.kd_absorb();
  EXPECT_TRUE(rel_close(vit.forward(x).logits.data(), before, 1e-5, "logits after absorb"));
}

TEST(SDLoRA, KDKeepsAnIndependentComponent) {
  KDModel m = two_components(SDLoRAMode::kPaper);
  randomise_current(*m.ad, 777);
  const KDDecision d = m.ad->kd_decide(9e-4);
  EXPECT_FALSE(d.redundant);
  for (double r : d.residuals) EXPECT_GT(r, 0.1);
  EXPECT_NE(d.describe().find("kept"), std::string::npos);
  m.ad->end_task();
  EXPECT_EQ(m.ad->num_components(), 3);
  // Task 0 has nothing to fit on.
  ViT vit(tiny_config(0));
  SDLoRA fresh(vit, SDLoRAMode::kPaper);
  Generator gen(1);
  fresh.begin_task(2, gen);
  EXPECT_FALSE(fresh.kd_decide(9e-4).redundant);
  EXPECT_EQ(fresh.kd_fit(0).residual, 1.0);
}

// ---- checkpoints

void expect_same_state(const std::map<std::string, Tensor>& a,
                       const std::map<std::string, Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(b.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(b.at(name).to_vector<float>(), t.to_vector<float>()) << name;
  }
}

// The trained pair stays current (unnormalised, its learned alpha) after its task; the next
// begin_task freezes it first, exactly as an explicit end_task would, then re-initialises every
// magnitude: the released code's order.
TEST(SDLoRA, BeginTaskFreezesTheRunningPairFirst) {
  for (SDLoRAMode mode : {SDLoRAMode::kPaper, SDLoRAMode::kOfficial}) {
    auto build = [&](std::unique_ptr<ViT>& vit, std::unique_ptr<SDLoRA>& ad) {
      vit = std::make_unique<ViT>(tiny_config(4));
      Generator init(1);
      vit->init_weights(init);
      ad = std::make_unique<SDLoRA>(*vit, mode);
      Generator gen(2);
      ad->begin_task(3, gen);
      randomise_current(*ad, 12);
      Tensor a = ad->alphas()[0].data();
      fill_(a, 1.3);
    };
    std::unique_ptr<ViT> vit_a, vit_b;
    std::unique_ptr<SDLoRA> implicit, explicit_end;  // destroyed before their ViTs
    build(vit_a, implicit);
    build(vit_b, explicit_end);
    Generator g1(7), g2(7);
    implicit->begin_task(2, g1);  // no end_task in between
    explicit_end->end_task();
    explicit_end->begin_task(2, g2);
    ASSERT_EQ(implicit->num_components(), 1);
    ASSERT_TRUE(implicit->has_current());
    expect_same_state(implicit->state_dict(true), explicit_end->state_dict(true));
    for (const Var& a : implicit->alphas())
      EXPECT_EQ(a.data().item(), static_cast<float>(sdlora_alpha_init(mode)));
  }
}

TEST(SDLoRA, CheckpointRoundTripsAreExact) {
  KDModel m = two_components(SDLoRAMode::kOfficial);
  randomise_current(*m.ad, 31);
  const Tensor x = random_tensor({2, 3, 8, 8}, 8);
  NoGradGuard no_grad;

  // Mid-task, with the current pair.
  const std::string path = temp_path("mid.safetensors");
  m.ad->save(path, true);
  const SafetensorsFile f = load_safetensors(path);
  EXPECT_EQ(f.metadata.at("sdlora_mode"), "official");
  EXPECT_EQ(f.metadata.at("sdlora_current"), "true");
  EXPECT_EQ(f.tensors.at("sdlora.alpha").shape(), Shape{3});
  EXPECT_EQ(f.tensors.at("blocks.1.attn.qkv.lora_v.2.up").shape(), (Shape{16, 5}));
  EXPECT_EQ(f.tensors.at("blocks.1.attn.qkv.lora_v.beta").shape(), Shape{3});
  {
    ViT vit2(tiny_config(4));
    vit2.load_state_dict(m.vit->state_dict());
    SDLoRA ad2(vit2, SDLoRAMode::kOfficial);
    ad2.load(path);
    EXPECT_TRUE(ad2.has_current());
    expect_same_state(ad2.state_dict(true), m.ad->state_dict(true));
    EXPECT_EQ(vit2.forward(x).logits.data().to_vector<float>(),
              m.vit->forward(x).logits.data().to_vector<float>());
    EXPECT_EQ(ad2.trainable_parameters().size(), 2u * 4 + 3);
  }

  // Between tasks: frozen components only, whatever include_current says.
  m.ad->end_task();
  m.ad->save(path);
  const SafetensorsFile g = load_safetensors(path);
  EXPECT_EQ(g.metadata.at("sdlora_current"), "false");
  EXPECT_EQ(g.tensors.size(), 4u * (3 * 2 + 1) + 1);
  ViT vit3(tiny_config(4));
  vit3.load_state_dict(m.vit->state_dict());
  SDLoRA ad3(vit3, SDLoRAMode::kOfficial);
  ad3.load(path);
  EXPECT_FALSE(ad3.has_current());
  EXPECT_EQ(ad3.num_components(), 3);
  expect_same_state(ad3.state_dict(), m.ad->state_dict());
  EXPECT_EQ(vit3.forward(x).logits.data().to_vector<float>(),
            m.vit->forward(x).logits.data().to_vector<float>());
  std::filesystem::remove(path);
}

TEST(SDLoRA, LoadingAWrongCheckpointNamesEveryProblem) {
  KDModel m = two_components(SDLoRAMode::kPaper);
  m.ad->end_task();
  auto state = m.ad->state_dict();
  auto meta = m.ad->metadata();

  ViT vit(tiny_config(4));
  SDLoRA official(vit, SDLoRAMode::kOfficial);
  std::string err = error_of([&] { official.load_state_dict(state, meta); });
  EXPECT_NE(err.find("checkpoint mode \"paper\", adapters in mode \"official\""), std::string::npos)
      << err;

  state.erase("blocks.1.attn.qkv.lora_q.2.down");
  state["blocks.0.attn.qkv.lora_v.1.up"] = Tensor::zeros({16, 3});  // rank 2 in down
  state["blocks.0.attn.qkv.lora_q.beta"] = Tensor::zeros({2});
  state["blocks.0.attn.qkv.lora_k.0.up"] = Tensor::zeros({16, 2});
  state["blocks.0.attn.qkv.lora_q.3.up"] = Tensor::zeros({16, 2});
  state["patch_embed.proj.weight"] = Tensor::zeros({1});  // not an adapter tensor: ignored
  ViT vit2(tiny_config(4));
  SDLoRA paper(vit2, SDLoRAMode::kPaper);
  err = error_of([&] { paper.load_state_dict(state, meta); });
  for (const char* s :
       {"missing (1): blocks.1.attn.qkv.lora_q.2.down",
        "unexpected (2): blocks.0.attn.qkv.lora_k.0.up, blocks.0.attn.qkv.lora_q.3.up",
        "blocks.0.attn.qkv.lora_v.1 (down has rank 2, up rank 3)",
        "blocks.0.attn.qkv.lora_q.beta (checkpoint [2], want [3])"})
    EXPECT_NE(err.find(s), std::string::npos) << "missing '" << s << "' in:\n" << err;
  EXPECT_EQ(paper.num_components(), 0) << "a failed load must change nothing";

  meta.erase("sdlora_mode");
  EXPECT_NE(error_of([&] {
              paper.load_state_dict(m.ad->state_dict(), meta);
            }).find("sdlora_mode is missing"),
            std::string::npos);
}

// The number of components a checkpoint claims is bounded by the tensors it holds before any
// per-component check runs: names without an index, indices past int64, an index or an alpha
// count beyond the file are named errors, never an exception from the string library or a loop
// over a hostile count (found by fuzz_checkpoint).
TEST(SDLoRA, HostileComponentCountsAreNamedErrors) {
  KDModel m = two_components(SDLoRAMode::kPaper);
  m.ad->end_task();
  const auto meta = m.ad->metadata();
  auto without_alpha = m.ad->state_dict();
  without_alpha.erase("sdlora.alpha");
  ViT vit(tiny_config(4));
  SDLoRA ad(vit, SDLoRAMode::kPaper);
  struct Case {
    std::string name, expect;
  };
  const std::vector<Case> cases = {
      {"blocks.0.attn.qkv.lora_", "unexpected (1): blocks.0.attn.qkv.lora_"},
      {"blocks.0.attn.qkv.lora_q", "unexpected (1): blocks.0.attn.qkv.lora_q"},
      {"blocks.0.attn.qkv.lora_q.99999999999999999999.down",
       "blocks.0.attn.qkv.lora_q.99999999999999999999.down: component index beyond the"},
      {"blocks.0.attn.qkv.lora_q.1000000000.down", "component index beyond the 29 tensors"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto state = without_alpha;
    state[c.name] = Tensor::zeros({1});
    const std::string err = error_of([&] { ad.load_state_dict(state, meta); });
    EXPECT_NE(err.find("missing (1): sdlora.alpha"), std::string::npos) << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
  auto state = m.ad->state_dict();
  const int64_t n = static_cast<int64_t>(state.size());
  state["sdlora.alpha"] = Tensor::zeros({n + 1});
  const std::string err = error_of([&] { ad.load_state_dict(state, meta); });
  EXPECT_NE(err.find("sdlora.alpha holds " + std::to_string(n + 1) + " magnitudes, more than the " +
                     std::to_string(n) + " tensors"),
            std::string::npos)
      << err;
  EXPECT_EQ(ad.num_components(), 0) << "a failed load must change nothing";
}

// ---- the RR schedule and modes

TEST(SDLoRA, RankScheduleAndModes) {
  const RankSchedule rr = RankSchedule::reduced();
  const std::vector<int64_t> want{10, 10, 10, 10, 8, 8, 8, 8, 6, 6, 6};
  for (int64_t t = 0; t < 11; ++t) EXPECT_EQ(rr.rank_for(t), want[static_cast<size_t>(t)]) << t;
  EXPECT_EQ(RankSchedule::constant(7).rank_for(30), 7);
  EXPECT_NE(error_of([] {
              (void)RankSchedule{{{1, 4}}}.rank_for(0);
            }).find("task 0"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              (void)RankSchedule{{{0, 4}, {0, 2}}}.rank_for(0);
            }).find("step 1"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              (void)RankSchedule{{{0, 0}}}.rank_for(0);
            }).find("positive"),
            std::string::npos);
  EXPECT_EQ(parse_sdlora_mode("official"), SDLoRAMode::kOfficial);
  EXPECT_EQ(sdlora_alpha_init(SDLoRAMode::kOfficial), 0.8);
  EXPECT_NE(error_of([] { (void)parse_sdlora_mode("Paper"); }).find("\"Paper\""),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora
