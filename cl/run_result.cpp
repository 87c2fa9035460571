// Run results as files: metrics.json, metrics.csv, the terminal table, and task records as JSON
// (run_result.h).
#include "cl/run_result.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cl/methods.h"

namespace sdlora::cl {

using json = nlohmann::json;

namespace {

json kd_json(const TaskRecord& r) {
  if (!r.end.kd_checked) return nullptr;
  return json{{"task", r.task},
              {"redundant", r.end.kd.redundant},
              {"decision", r.end.kd.redundant ? "absorbed" : "kept"},
              {"tau", r.end.kd.tau},
              {"residuals", r.end.kd.residuals}};
}

}  // namespace

json record_json(const TaskRecord& r) {
  return json{{"task", r.task},
              {"class_begin", r.class_begin},
              {"class_end", r.class_end},
              {"train_images", r.train_images},
              {"test_images", r.test_images},
              {"seconds", r.seconds},
              {"train_seconds", r.train_seconds},
              {"images_per_s", r.images_per_s},
              {"peak_bytes", r.peak_bytes},
              {"params_trainable", r.params_trainable},
              {"params_stored", r.params_stored},
              {"final_loss", r.final_loss},
              {"rank", r.end.rank},
              {"magnitudes", r.end.magnitudes},
              {"kd", kd_json(r)}};
}

TaskRecord record_from_json(const json& j) {
  TaskRecord r;
  r.task = j.at("task").get<int64_t>();
  r.class_begin = j.at("class_begin").get<int64_t>();
  r.class_end = j.at("class_end").get<int64_t>();
  r.train_images = j.at("train_images").get<int64_t>();
  r.test_images = j.at("test_images").get<int64_t>();
  r.seconds = j.at("seconds").get<double>();
  r.train_seconds = j.at("train_seconds").get<double>();
  r.images_per_s = j.at("images_per_s").get<double>();
  r.peak_bytes = j.at("peak_bytes").get<int64_t>();
  r.params_trainable = j.at("params_trainable").get<int64_t>();
  r.params_stored = j.at("params_stored").get<int64_t>();
  r.final_loss = j.at("final_loss").get<double>();
  r.end.rank = j.at("rank").get<int64_t>();
  r.end.magnitudes = j.at("magnitudes").get<std::vector<double>>();
  const json& kd = j.at("kd");
  if (!kd.is_null()) {
    r.end.kd_checked = true;
    r.end.kd.redundant = kd.at("redundant").get<bool>();
    r.end.kd.tau = kd.at("tau").get<double>();
    r.end.kd.residuals = kd.at("residuals").get<std::vector<double>>();
  }
  return r;
}

std::string RunResult::metrics_json() const {
  json ranks = json::array(), kd = json::array(), trainable = json::array(), stored = json::array(),
       per_task = json::array(), top5 = json::array(), old_acc = json::array(),
       new_acc = json::array();
  for (int64_t i = 0; i < matrix.num_tasks(); ++i) {  // NaN (not defined) is written as null
    top5.push_back(matrix.top5_after(i));
    old_acc.push_back(matrix.old_after(i));
    new_acc.push_back(matrix.new_after(i));
  }
  for (const TaskRecord& r : tasks) {
    ranks.push_back(r.end.rank);
    if (r.end.kd_checked) kd.push_back(kd_json(r));
    trainable.push_back(r.params_trainable);
    stored.push_back(r.params_stored);
    per_task.push_back(record_json(r));
  }
  const bool adapters = method_info(config.method).adapters;
  json j{{"method", config.method},
         {"mode", adapters ? json(config.sdlora_mode) : json(nullptr)},
         {"dataset", config.dataset},
         {"seed", config.seed},
         {"tf32", config.tf32 && config.device != "cpu"},
         {"released_config", config.released()},
         {"tasks", matrix.num_tasks()},
         {"acc_per_task", matrix.acc_per_task()},
         {"acc_final", matrix.acc_final()},
         {"aaa", matrix.aaa()},
         {"forgetting", matrix.forgetting()},
         {"forgetting_released", matrix.forgetting_released()},
         {"top5_per_task", top5},
         {"acc_old_per_task", old_acc},
         {"acc_new_per_task", new_acc},
         {"acc_matrix", matrix.matrix()},
         {"seconds", seconds},
         {"kd", kd},
         {"ranks", ranks},
         {"params_trainable", trainable},
         {"params_stored", stored},
         {"class_order", class_order},
         {"per_task", per_task}};
  return j.dump(2) + "\n";
}

std::string RunResult::metrics_csv() const {
  std::ostringstream o;
  o << std::setprecision(10);
  const int64_t n = matrix.num_tasks();
  o << "task,classes,acc,acc_top5,acc_old,acc_new";
  for (int64_t j = 0; j < n; ++j) o << ",R_" << j;
  o << ",seconds,images_per_s,peak_bytes,params_trainable,params_stored,rank,kd_decision,"
       "kd_max_residual,final_loss\n";
  for (int64_t i = 0; i < n; ++i) {
    const TaskRecord& r = tasks.at(static_cast<size_t>(i));
    o << i << ',' << r.class_end << ',' << matrix.accuracy_after(i);
    for (double v : {matrix.top5_after(i), matrix.old_after(i), matrix.new_after(i)}) {
      o << ',';
      if (!std::isnan(v)) o << v;  // empty cell: not defined
    }
    for (int64_t j = 0; j < n; ++j) {
      o << ',';
      if (j <= i) o << matrix.r(i, j);
    }
    double max_res = 0.0;
    for (double x : r.end.kd.residuals) max_res = std::max(max_res, x);
    o << ',' << r.seconds << ',' << r.images_per_s << ',' << r.peak_bytes << ','
      << r.params_trainable << ',' << r.params_stored << ',' << r.end.rank << ','
      << (r.end.kd_checked ? (r.end.kd.redundant ? "absorbed" : "kept") : "") << ',';
    if (r.end.kd_checked) o << max_res;
    o << ',' << r.final_loss << '\n';
  }
  return o.str();
}

std::string RunResult::table() const {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  const int64_t n = matrix.num_tasks();
  o << "after  ";
  for (int64_t j = 0; j < n; ++j) o << std::setw(8) << ("T" + std::to_string(j));
  o << std::setw(9) << "acc" << std::setw(9) << "top5" << std::setw(9) << "old" << std::setw(9)
    << "new" << '\n';
  for (int64_t i = 0; i < n; ++i) {
    o << std::setw(5) << ("T" + std::to_string(i)) << "  ";
    for (int64_t j = 0; j < n; ++j) {
      if (j <= i)
        o << std::setw(8) << matrix.r(i, j);
      else
        o << std::setw(8) << "";
    }
    o << std::setw(9) << matrix.accuracy_after(i);
    for (double v : {matrix.top5_after(i), matrix.old_after(i), matrix.new_after(i)}) {
      if (std::isnan(v))
        o << std::setw(9) << "-";
      else
        o << std::setw(9) << v;
    }
    o << '\n';
  }
  o << "Acc " << matrix.acc_final() << "  AAA " << matrix.aaa() << "  forgetting "
    << matrix.forgetting() << "  forgetting (released form) " << matrix.forgetting_released()
    << '\n';
  return o.str();
}

}  // namespace sdlora::cl
