// Finding 3 on any run (analyze.h): the merged models after tasks T1 and T2, the straight line
// between them, and every seen task's accuracy and loss along it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "cl/run_model.h"
#include "data/class_order.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "report/analyze.h"
#include "tensor/ops.h"

namespace sdlora::report {
namespace {

// The model's backbone as one plain ViT: adapters merged, or a copy of the backbone.
std::map<std::string, Tensor> merged_state(const cl::RunModel& m) {
  if (const SDLoRA* adapters = m.learner->adapters()) return adapters->merged_vit()->state_dict();
  return m.backbone->state_dict();
}

// Correct predictions and summed cross-entropy per task of one classifier.
struct Score {
  std::vector<int64_t> correct, total;
  std::vector<double> loss_sum;
  explicit Score(int64_t tasks)
      : correct(static_cast<size_t>(tasks), 0),
        total(static_cast<size_t>(tasks), 0),
        loss_sum(static_cast<size_t>(tasks), 0.0) {}

  // logits (B, C) on any device; the label's task from the order. Images of tasks >= the
  // classifier's own are skipped.
  void add(const Tensor& logits, const std::vector<int64_t>& labels,
           const data::ClassOrder& order) {
    const int64_t C = logits.size(1);
    const std::vector<float> v = logits.to(Device::cpu()).to_vector<float>();
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto task = static_cast<size_t>(order.task_of(labels[i]));
      if (task >= total.size() || labels[i] >= C) continue;
      const float* row = v.data() + i * static_cast<size_t>(C);
      const int64_t pred = std::max_element(row, row + C) - row;  // first maximum, as argmax
      double top = row[0];
      for (int64_t c = 1; c < C; ++c) top = std::max(top, static_cast<double>(row[c]));
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(row[c]) - top);
      total[task] += 1;
      correct[task] += pred == labels[i] ? 1 : 0;
      loss_sum[task] += top + std::log(sum) - static_cast<double>(row[labels[i]]);
    }
  }
  std::vector<double> accuracy() const {
    std::vector<double> a;
    for (size_t j = 0; j < total.size(); ++j)
      a.push_back(total[j] > 0
                      ? 100.0 * static_cast<double>(correct[j]) / static_cast<double>(total[j])
                      : 0.0);
    return a;
  }
  std::vector<double> loss() const {
    std::vector<double> l;
    for (size_t j = 0; j < total.size(); ++j)
      l.push_back(total[j] > 0 ? loss_sum[j] / static_cast<double>(total[j]) : 0.0);
    return l;
  }
};

}  // namespace

InterpolationCurve analyze_interpolation(const std::string& run_dir, int64_t from, int64_t to,
                                         int64_t points, const std::string& device,
                                         const ProgressFn& progress) {
  SDLORA_CHECK(points >= 2, "--points ", points, ": need at least 2 (the two endpoints)");
  SDLORA_CHECK(from >= 0 && to > from, "--from ", from, " --to ", to,
               ": need 0 <= T1 < T2 (tasks of the run)");
  const int64_t last = cl::last_finished_task(run_dir);
  SDLORA_CHECK(to <= last, "--to ", to, ": run '", run_dir, "' has finished tasks 0..", last);
  cl::RunModel a = cl::load_run_model(run_dir, from, device);
  cl::RunModel b = cl::load_run_model(run_dir, to, device);
  set_cpu_threads(static_cast<int>(b.config.threads));
  const std::map<std::string, Tensor> theta_a = merged_state(a), theta_b = merged_state(b);

  const cl::Config& c = b.config;
  const cl::Datasets d = cl::open_datasets(c);
  const data::ClassOrder order(b.class_order, c.init_cls, c.increment);
  const data::Pipeline pipe = data::make_pipeline(c.transform, static_cast<int>(c.channels));
  data::LoaderOptions lo;
  lo.batch_size = c.effective_eval_batch_size();
  lo.shuffle = false;
  lo.num_workers = static_cast<int>(c.num_workers);
  lo.device = b.backbone->device();
  lo.cache_bytes = c.cache_mb * (int64_t{1} << 20);
  lo.transform = pipe.test;
  data::Loader loader(data::task_test_set(d.test, order, to), lo);

  InterpolationCurve curve;
  curve.run = run_dir;
  curve.method = c.method;
  curve.from = from;
  curve.to = to;
  ViT vit(b.backbone->config(), b.backbone->device());
  vit.set_requires_grad(false);
  NoGradGuard no_grad;
  for (int64_t i = 0; i < points; ++i) {
    if (progress) progress("point", i, points);
    const double l = static_cast<double>(i) / static_cast<double>(points - 1);
    std::map<std::string, Tensor> theta;
    for (const auto& [name, ta] : theta_a) {
      const auto it = theta_b.find(name);
      SDLORA_CHECK(it != theta_b.end() && it->second.shape() == ta.shape(), "interpolate: tensor ",
                   name, " differs in shape between tasks ", from, " and ", to);
      // (1 - l) a + l b: exactly a at l = 0 and exactly b at l = 1.
      theta[name] = l == 0.0   ? ta
                    : l == 1.0 ? it->second
                               : add(mul(ta, 1.0 - l), mul(it->second, l));
    }
    vit.load_state_dict(theta);
    Score full(to + 1), own(from + 1);
    loader.start_epoch(0);
    data::Batch batch;
    while (loader.next(batch)) {
      const Var features = vit.forward(batch.images).features;
      const std::vector<int64_t> labels = batch.labels.to(Device::cpu()).to_vector<int64_t>();
      full.add(b.head->forward(features).data(), labels, order);
      own.add(a.head->forward(features).data(), labels, order);
    }
    curve.lambdas.push_back(l);
    curve.accuracy.push_back(full.accuracy());
    curve.loss.push_back(full.loss());
    curve.accuracy_from.push_back(own.accuracy());
    curve.loss_from.push_back(own.loss());
    curve.test_images = full.total;
  }
  if (progress) progress("point", points, points);
  return curve;
}

std::string interpolation_json(const std::vector<InterpolationCurve>& curves) {
  nlohmann::json runs = nlohmann::json::array();
  for (const InterpolationCurve& c : curves)
    runs.push_back({{"run", c.run},
                    {"method", c.method},
                    {"from", c.from},
                    {"to", c.to},
                    {"lambda", c.lambdas},
                    {"test_images", c.test_images},
                    {"accuracy", c.accuracy},
                    {"loss", c.loss},
                    {"accuracy_with_from_classifier", c.accuracy_from},
                    {"loss_with_from_classifier", c.loss_from}});
  nlohmann::json j{
      {"analysis", "interpolate"},
      {"model",
       "(1 - lambda) * merged backbone after `from` + lambda * merged backbone after `to`"},
      {"classifier",
       "accuracy/loss: the classifier after `to` (every class seen then), per task <= to; "
       "*_with_from_classifier: the classifier after `from`, per task <= from"},
      {"runs", runs}};
  return j.dump(2) + "\n";
}

FigureFile interpolation_figure(const std::vector<InterpolationCurve>& curves,
                                const std::string& out_dir) {
  SDLORA_CHECK(!curves.empty(), "interpolate: no curves");
  FigureFile f{"interpolation.png",
               "Along the straight line from the merged model after T1 (lambda 0) to the one "
               "after T2 (lambda 1): accuracy and loss on T1's and T2's test images",
               {1400, 560}};
  const int64_t t1 = curves.front().from, t2 = curves.front().to;
  Panel acc{"Accuracy", "lambda", "accuracy (%)", {}, {}, false, true, 100.0};
  Panel loss{"Loss", "lambda", "cross-entropy", {}, {}, false, true, 0.0};
  for (const InterpolationCurve& c : curves) {
    const std::string who = curves.size() > 1 ? c.method + ": " : "";
    for (const int64_t task : {t1, t2}) {
      // T1's own task through T1's classifier (its endpoint is T1's own accuracy); T2's task
      // through T2's.
      const bool own = task == t1;
      Series sa{who + "task " + std::to_string(task), c.lambdas, {}, own};
      Series sl = sa;
      for (size_t i = 0; i < c.lambdas.size(); ++i) {
        sa.y.push_back(own ? c.accuracy_from[i][task] : c.accuracy[i][task]);
        sl.y.push_back(own ? c.loss_from[i][task] : c.loss[i][task]);
      }
      acc.series.push_back(sa);
      loss.series.push_back(sl);
    }
  }
  draw_line_figure(
      (std::filesystem::path(out_dir) / f.file).string(),
      "Interpolation from task " + std::to_string(t1) + " to task " + std::to_string(t2),
      {acc, loss}, f.size, 2);
  return f;
}

}  // namespace sdlora::report
