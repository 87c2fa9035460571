// The task loop on a tiny synthetic problem: splits and head growth, old classifier rows left
// untouched, the accuracy matrix against an independent evaluation of every checkpoint, RR ranks,
// KD through the learner, interruption and resume equality, and the --dry-run plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "cl/learner.h"
#include "cl/run_dir.h"
#include "cl/run_model.h"
#include "cl_test_util.h"
#include "data/class_order.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

using test::synthetic_datasets;
using test::temp_dir;
using test::tiny_config;

RunResult run(const Config& c, const Datasets& d, const RunOptions& o = {}) {
  auto vit = make_backbone(c);
  return run_training(c, d, *vit, o);
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(TaskLoop, SplitsHeadGrowthAndUntouchedOldRows) {
  const Config c = tiny_config("sdlora");
  const Datasets d = synthetic_datasets();
  const std::string dir = temp_dir("splits");
  RunOptions o;
  o.run_dir = dir;
  const RunResult r = run(c, d, o);
  ASSERT_EQ(r.tasks.size(), 3u);
  for (int64_t t = 0; t < 3; ++t) {
    const TaskRecord& rec = r.tasks[static_cast<size_t>(t)];
    EXPECT_EQ(rec.class_begin, 2 * t);
    EXPECT_EQ(rec.class_end, 2 * t + 2);
    EXPECT_EQ(rec.train_images, 2 * 24);           // the task's own classes only
    EXPECT_EQ(rec.test_images, 2 * (t + 1) * 10);  // every seen class
    EXPECT_EQ(rec.end.rank, 2);
  }
  // The class order is numpy's RandomState(1993).permutation(6).
  EXPECT_EQ(r.class_order, data::ClassOrder(6, 1993, 2, 2).order());

  // The head grows by 2 rows per task; rows of earlier tasks are bit-identical afterwards (the
  // loss covers the current task's classes only and old rows are frozen tensors).
  Tensor prev_w, prev_b;
  for (int64_t t = 0; t < 3; ++t) {
    const SafetensorsFile f = load_safetensors(checkpoint_path(dir, t));
    const Tensor& w = f.tensors.at("head.weight");
    const Tensor& b = f.tensors.at("head.bias");
    ASSERT_EQ(w.shape(), (Shape{2 * (t + 1), 16}));
    ASSERT_EQ(b.shape(), (Shape{2 * (t + 1)}));
    if (t > 0) {
      EXPECT_TRUE(same_tensor(w.narrow(0, 2 * t), prev_w)) << "old rows changed in task " << t;
      EXPECT_TRUE(same_tensor(b.narrow(0, 2 * t), prev_b)) << "old biases changed in task " << t;
    }
    prev_w = w.clone();
    prev_b = b.clone();
    // After task t: t frozen components and the trained pair as the current one (component t).
    EXPECT_EQ(f.metadata.at("sdlora_current"), "true");
    EXPECT_EQ(f.tensors.at("sdlora.alpha").numel(), t + 1);
    EXPECT_TRUE(f.tensors.count("blocks.0.attn.qkv.lora_q." + std::to_string(t) + ".up"));
  }
  // The loop trains: in tasks 1 and 2 the loss over the task's own two classes ends far below
  // chance level (ln 2 = 0.69). (Task 0 starts from a random backbone whose class token barely
  // depends on the image, and the current pair's up factor starts at zero: the slow one.)
  EXPECT_LT(r.tasks[1].final_loss, 0.3);
  EXPECT_LT(r.tasks[2].final_loss, 0.3);
}

TEST(TaskLoop, AccuracyMatrixMatchesAnIndependentEvaluation) {
  const Config c = tiny_config("sdlora");
  const Datasets d = synthetic_datasets();
  const std::string dir = temp_dir("matrix");
  RunOptions o;
  o.run_dir = dir;
  const RunResult r = run(c, d, o);
  const data::ClassOrder order(6, c.seed, c.init_cls, c.increment);
  for (int64_t i = 0; i < 3; ++i) {
    // Restore checkpoint i and count correct predictions per task with a plain loop.
    RunModel m = load_run_model(dir, i);
    std::vector<int64_t> correct(static_cast<size_t>(i + 1), 0), total(correct.size(), 0);
    NoGradGuard no_grad;
    for (int64_t s = 0; s < d.test->size(); ++s) {
      const int64_t label = order.remap(d.test->label(s));
      const int64_t task = order.task_of(label);
      if (task > i) continue;
      const data::Image img = d.test->image(s);
      std::vector<float> px(img.pixels.begin(), img.pixels.end());
      for (float& v : px) v /= 255.0f;
      const Tensor x = Tensor::from_vector<float>(px, {1, 1, 8, 8});
      const Tensor logits = m.head->forward(m.backbone->forward(x).features).data();
      const std::vector<float> l = logits.to_vector<float>();
      ASSERT_EQ(static_cast<int64_t>(l.size()), 2 * (i + 1));
      const int64_t pred = std::max_element(l.begin(), l.end()) - l.begin();
      total[static_cast<size_t>(task)] += 1;
      correct[static_cast<size_t>(task)] += pred == label ? 1 : 0;
    }
    EXPECT_EQ(r.matrix.counts(i).total, total) << "after task " << i;
    EXPECT_EQ(r.matrix.counts(i).correct, correct) << "after task " << i;
  }
  // metrics.json holds the same figures, with Acc, AAA and forgetting recomputed here from R.
  const nlohmann::json j = read_json(dir + "/metrics.json");
  EXPECT_EQ(j.at("method"), "sdlora");
  EXPECT_EQ(j.at("mode"), "paper");
  EXPECT_EQ(j.at("tasks"), 3);
  const auto R = j.at("acc_matrix").get<std::vector<std::vector<double>>>();
  ASSERT_EQ(R.size(), 3u);
  double aaa = 0;
  std::vector<double> acc;
  for (int64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(R[static_cast<size_t>(i)].size(), static_cast<size_t>(i + 1));
    int64_t cor = 0, tot = 0;
    for (int64_t k = 0; k <= i; ++k) {
      cor += r.matrix.counts(i).correct[static_cast<size_t>(k)];
      tot += r.matrix.counts(i).total[static_cast<size_t>(k)];
      EXPECT_NEAR(R[i][k], 100.0 * r.matrix.counts(i).correct[k] / r.matrix.counts(i).total[k],
                  1e-9);
    }
    acc.push_back(100.0 * cor / tot);
    aaa += acc.back() / 3.0;
  }
  const auto acc_json = j.at("acc_per_task").get<std::vector<double>>();
  ASSERT_EQ(acc_json.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(acc_json[i], acc[i], 1e-9);
  EXPECT_NEAR(j.at("acc_final").get<double>(), acc[2], 1e-9);
  EXPECT_NEAR(j.at("aaa").get<double>(), aaa, 1e-9);
  const double forgetting = ((std::max(R[0][0], R[1][0]) - R[2][0]) + (R[1][1] - R[2][1])) / 2.0;
  EXPECT_NEAR(j.at("forgetting").get<double>(), forgetting, 1e-9);
  for (const char* key : {"seconds", "kd", "ranks", "params_trainable", "params_stored"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(std::filesystem::exists(dir + "/metrics.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/log.txt"));
}

TEST(TaskLoop, RankReductionFollowsTheSchedule) {
  Config c = tiny_config("sdlora-rr");
  c.rank_schedule = {{0, 3}, {1, 2}, {2, 1}};
  c.validate();
  const std::string dir = temp_dir("rr");
  RunOptions o;
  o.run_dir = dir;
  const RunResult r = run(c, synthetic_datasets(), o);
  ASSERT_EQ(r.tasks.size(), 3u);
  const int64_t want[] = {3, 2, 1};
  const SafetensorsFile f = load_safetensors(checkpoint_path(dir, 2));
  for (int64_t t = 0; t < 3; ++t) {
    EXPECT_EQ(r.tasks[static_cast<size_t>(t)].end.rank, want[t]);
    for (const char* proj : {"lora_q", "lora_v"}) {
      const std::string base = std::string("blocks.0.attn.qkv.") + proj + "." + std::to_string(t);
      EXPECT_EQ(f.tensors.at(base + ".down").shape(), (Shape{want[t], 16}));
      EXPECT_EQ(f.tensors.at(base + ".up").shape(), (Shape{16, want[t]}));
    }
  }
  // Trainable per task: the pair on q and v (r (16 + 16) each), the magnitudes, the new head rows.
  for (int64_t t = 0; t < 3; ++t)
    EXPECT_EQ(r.tasks[static_cast<size_t>(t)].params_trainable,
              2 * want[t] * 32 + (t + 1) + 2 * 17);
  // The released default when no schedule is given: 10 / 8 / 6 from tasks 0 / 4 / 8.
  EXPECT_EQ(tiny_config("sdlora-rr").effective_rank_schedule().rank_for(4), 8);
}

// Sets every projection's current pair from the frozen component 0: U_t = scale U_0, D_t = D_0.
void copy_component_zero(const SDLoRA& ad, double scale) {
  for (int64_t p = 0; p < ad.num_projections(); ++p) {
    const SDLoRAProjection& proj = ad.projection(p);
    Tensor u = proj.current_up().data(), dn = proj.current_down().data();
    u.copy_(mul(proj.up(0), scale));
    dn.copy_(proj.down(0));
  }
}

void randomise_current(const SDLoRA& ad, uint64_t seed) {
  for (int64_t p = 0; p < ad.num_projections(); ++p) {
    Tensor u = ad.projection(p).current_up().data();
    u.copy_(sdlora::test::random_tensor(u.shape(), seed + static_cast<uint64_t>(p), -0.5, 0.5));
  }
}

TEST(Learners, KDAbsorbsARedundantComponentAndKeepsAnIndependentOne) {
  for (const char* mode : {"paper", "official"}) {
    SCOPED_TRACE(mode);
    Config c = tiny_config("sdlora-kd");
    c.sdlora_mode = mode;
    auto vit = make_backbone(c);
    auto learner = make_learner(c, *vit);
    const SDLoRA& ad = *learner->adapters();
    Generator gen(5);
    learner->begin_task(0, gen);
    randomise_current(ad, 100);
    EXPECT_FALSE(learner->end_task(0).kd_checked);  // nothing to compare with in task 0
    ASSERT_EQ(ad.num_components(), 0);  // the trained pair stays current until task 1 begins
    ASSERT_TRUE(ad.has_current());
    // Once frozen, component 0 also stores one beta per projection.
    const int64_t stored = learner->stored_parameters() + ad.num_projections();

    // Task 1: the new direction equals component 0's (scaled): redundant, absorbed.
    learner->begin_task(1, gen);
    copy_component_zero(ad, 3.0);
    const Tensor x = sdlora::test::random_tensor({4, 1, 8, 8}, 7, 0.0, 1.0);
    Tensor before;
    {
      NoGradGuard g;
      before = vit->forward(x).features.data().clone();
    }
    const TaskEnd absorbed = learner->end_task(1);
    EXPECT_TRUE(absorbed.kd_checked);
    EXPECT_TRUE(absorbed.kd.redundant) << absorbed.kd.describe();
    for (double res : absorbed.kd.residuals) EXPECT_LT(res, 1e-3);
    EXPECT_EQ(ad.num_components(), 1);
    EXPECT_EQ(learner->stored_parameters(), stored);  // no parameters added for the task
    {
      NoGradGuard g;
      EXPECT_TRUE(sdlora::test::all_close(vit->forward(x).features.data(), before, 1e-5, 1e-6,
                                          "features after absorption"));
    }
    // Task 2: an independent direction is kept.
    learner->begin_task(2, gen);
    randomise_current(ad, 200);
    const TaskEnd kept = learner->end_task(2);
    EXPECT_TRUE(kept.kd_checked);
    EXPECT_FALSE(kept.kd.redundant);
    for (double res : kept.kd.residuals) EXPECT_GT(res, 0.1);
    EXPECT_EQ(ad.num_components(), 1);
    EXPECT_TRUE(ad.has_current());  // kept as trained, frozen when the next task begins
    EXPECT_GT(learner->stored_parameters(), stored);
  }
}

TEST(Learners, BaselinesTrainWhatTheySay) {
  const Datasets d = synthetic_datasets();
  // Linear probe: only the head's new rows (2 classes x (16 + 1)).
  const RunResult lp = run(tiny_config("linear-probe"), d);
  ASSERT_EQ(lp.tasks.size(), 3u);
  for (const TaskRecord& t : lp.tasks) EXPECT_EQ(t.params_trainable, 2 * 17);
  EXPECT_EQ(lp.tasks.back().params_stored, 6 * 17);
  // Sequential LoRA: one pair of rank 2 on q and v, the same size in every task.
  const RunResult seq = run(tiny_config("seq-lora"), d);
  ASSERT_EQ(seq.tasks.size(), 3u);
  for (const TaskRecord& t : seq.tasks) EXPECT_EQ(t.params_trainable, 2 * 2 * 32 + 2 * 17);
  EXPECT_EQ(seq.tasks[0].params_stored - 2 * 17, seq.tasks[2].params_stored - 6 * 17);
}

class StopAt : public Reporter {
 public:
  StopAt(int64_t task, std::atomic<bool>* flag) : task_(task), flag_(flag) {}
  void on_batch(const Progress& p) override {
    if (p.task == task_ && p.batch == 1) flag_->store(true);
  }

 private:
  int64_t task_;
  std::atomic<bool>* flag_;
};

TEST(TaskLoop, InterruptedRunResumesToIdenticalResults) {
  for (const char* method : {"sdlora-kd", "seq-lora"}) {
    SCOPED_TRACE(method);
    const Config c = tiny_config(method);
    const Datasets d = synthetic_datasets();
    const std::string full_dir = temp_dir(std::string("full_") + method);
    RunOptions full;
    full.run_dir = full_dir;
    const RunResult want = run(c, d, full);

    // Stopped in the middle of task 1: task 0 stays saved, task 1 is lost.
    const std::string dir = temp_dir(std::string("resumed_") + method);
    std::atomic<bool> stop{false};
    StopAt reporter(1, &stop);
    RunOptions o;
    o.run_dir = dir;
    o.stop = &stop;
    o.reporter = &reporter;
    EXPECT_THROW(run(c, d, o), RunInterrupted);
    EXPECT_EQ(last_finished_task(dir), 0);
    EXPECT_TRUE(std::filesystem::exists(checkpoint_path(dir, 0)));
    EXPECT_FALSE(std::filesystem::exists(checkpoint_path(dir, 1)));

    RunOptions again;
    again.run_dir = dir;
    again.resume = true;
    const RunResult got = run(c, d, again);
    ASSERT_EQ(got.matrix.num_tasks(), 3);
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got.matrix.counts(i).correct, want.matrix.counts(i).correct);
      EXPECT_EQ(got.matrix.counts(i).total, want.matrix.counts(i).total);
    }
    const SafetensorsFile a = load_safetensors(checkpoint_path(full_dir, 2));
    const SafetensorsFile b = load_safetensors(checkpoint_path(dir, 2));
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
      ASSERT_TRUE(b.tensors.count(name)) << name;
      EXPECT_TRUE(same_tensor(cast(t, DType::kFloat32), cast(b.tensors.at(name), DType::kFloat32)))
          << name << " differs after resume";
    }
    // A finished run resumed again does nothing and reports the same.
    const RunResult done = run(c, d, again);
    EXPECT_EQ(done.matrix.num_tasks(), 3);
    // Resuming with a config that changes results is refused, naming the key.
    Config other = c;
    other.lrate = 0.5;
    try {
      run(other, d, again);
      ADD_FAILURE() << "resume with another lrate was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("lrate"), std::string::npos) << e.what();
    }
  }
}

// A run killed before its first task ended starts over from its saved config; a run killed
// between state.json and metrics.json has its metrics repaired from state.json on resume.
TEST(TaskLoop, ResumeStartsOverOrRepairsMetrics) {
  const Config c = tiny_config("sdlora");
  const Datasets d = synthetic_datasets();
  RunOptions full;
  full.run_dir = temp_dir("restart_full");
  const RunResult want = run(c, d, full);

  const std::string dir = temp_dir("restart");
  std::atomic<bool> stop{false};
  StopAt reporter(0, &stop);
  RunOptions o;
  o.run_dir = dir;
  o.stop = &stop;
  o.reporter = &reporter;
  EXPECT_THROW(run(c, d, o), RunInterrupted);
  EXPECT_EQ(last_finished_task(dir), -1);
  RunOptions again;
  again.run_dir = dir;
  again.resume = true;
  const RunResult got = run(c, d, again);
  ASSERT_EQ(got.matrix.num_tasks(), 3);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_EQ(got.matrix.counts(i).correct, want.matrix.counts(i).correct);

  // Stale metrics (as after a kill between the state.json and metrics.json renames).
  const std::string metrics = dir + "/metrics.json";
  { std::ofstream(metrics) << "{\"stale\": true}\n"; }
  std::filesystem::remove(dir + "/metrics.csv");
  run(c, d, again);  // finished: trains nothing, repairs the metrics
  EXPECT_EQ(read_json(metrics).at("acc_final").get<double>(), want.matrix.acc_final());
  EXPECT_TRUE(std::filesystem::exists(dir + "/metrics.csv"));
  // TF32 is stated: off on the CPU whatever the key says.
  EXPECT_FALSE(read_json(metrics).at("tf32").get<bool>());
  std::ifstream log(dir + "/log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("tf32 off"), std::string::npos);
}

// A learning rate that makes the loss overflow stops the run with a named error in the task it
// happens, keeping the finished tasks; a task of a single batch is checked too.
TEST(TaskLoop, DivergenceStopsTheRunAndKeepsFinishedTasks) {
  Config c = tiny_config("sdlora");
  c.lrate = 1e30;     // task 1 diverges at once
  c.batch_size = 64;  // one batch per epoch
  const Datasets d = synthetic_datasets();
  RunOptions o;
  o.run_dir = temp_dir("diverge");
  try {
    run(c, d, o);
    ADD_FAILURE() << "a run with lr 1e30 finished";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("diverged"), std::string::npos) << m;
    EXPECT_NE(m.find("task 1"), std::string::npos) << m;
  }
  EXPECT_EQ(last_finished_task(o.run_dir), 0);
}

TEST(TaskLoop, DryRunPlan) {
  Config c = tiny_config("sdlora");
  c.increment = 3;
  c.init_cls = 1;  // tasks of 1, 3 and 2 classes
  c.validate();
  const Datasets d = synthetic_datasets();
  const nlohmann::json j = nlohmann::json::parse(plan_json(c, d));
  const data::ClassOrder order(6, 1993, 1, 3);
  EXPECT_EQ(j.at("dataset"), "synthetic");
  EXPECT_EQ(j.at("class_order").get<std::vector<int64_t>>(), order.order());
  ASSERT_EQ(j.at("tasks").size(), 3u);
  const std::vector<int64_t> sizes = {1, 3, 2};
  int64_t first = 0, seen = 0;
  for (size_t t = 0; t < 3; ++t) {
    const nlohmann::json& task = j.at("tasks")[t];
    const auto classes = task.at("classes").get<std::vector<int64_t>>();
    ASSERT_EQ(static_cast<int64_t>(classes.size()), sizes[t]);
    for (int64_t k = 0; k < sizes[t]; ++k)
      EXPECT_EQ(classes[static_cast<size_t>(k)], order.order()[static_cast<size_t>(first + k)]);
    first += sizes[t];
    seen += sizes[t];
    EXPECT_EQ(task.at("train_images"), sizes[t] * 24);
    EXPECT_EQ(task.at("test_images"), sizes[t] * 10);
    EXPECT_EQ(task.at("test_images_seen"), seen * 10);
  }
}

}  // namespace
}  // namespace sdlora::cl
