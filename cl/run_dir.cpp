// Run folder files: atomic writes, metrics.json / metrics.csv / the terminal table, and the
// state a resume reads back.
#include "cl/run_dir.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace sdlora::cl {
namespace {

using json = nlohmann::json;

json kd_json(const TaskRecord& r) {
  if (!r.end.kd_checked) return nullptr;
  return json{{"task", r.task},
              {"redundant", r.end.kd.redundant},
              {"decision", r.end.kd.redundant ? "absorbed" : "kept"},
              {"tau", r.end.kd.tau},
              {"residuals", r.end.kd.residuals}};
}

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

}  // namespace

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  SDLORA_CHECK(out.good(), "cannot append to '", path, "'");
  out << line << '\n';
}

std::string checkpoint_path(const std::string& run_dir, int64_t task) {
  return (std::filesystem::path(run_dir) / "checkpoints" /
          ("task_" + std::to_string(task) + ".safetensors"))
      .string();
}

std::string RunResult::metrics_json() const {
  json ranks = json::array(), kd = json::array(), trainable = json::array(),
       stored = json::array(), per_task = json::array(), top5 = json::array(),
       old_acc = json::array(), new_acc = json::array();
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
  const bool adapters = config.method.rfind("sdlora", 0) == 0 || config.method == "seq-lora";
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
  o << std::setw(9) << "acc" << std::setw(9) << "top5" << std::setw(9) << "old"
    << std::setw(9) << "new" << '\n';
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

std::string run_state_json(const RunState& state) {
  json tasks = json::array();
  for (int64_t i = 0; i < state.result.matrix.num_tasks(); ++i) {
    json r = record_json(state.result.tasks.at(static_cast<size_t>(i)));
    r["correct"] = state.result.matrix.counts(i).correct;
    r["total"] = state.result.matrix.counts(i).total;
    r["correct5"] = state.result.matrix.counts(i).correct5;
    tasks.push_back(r);
  }
  json j{{"version", 1},
         {"config", json::parse(state.result.config.to_json())},
         {"finished_tasks", state.result.matrix.num_tasks()},
         {"generator_offset", state.generator_offset},
         {"class_order", state.result.class_order},
         {"tasks", tasks}};
  return j.dump(2) + "\n";
}

RunState load_run_state(const std::string& run_dir, const Config& config) {
  const std::string path = (std::filesystem::path(run_dir) / "state.json").string();
  std::ifstream in(path);
  SDLORA_CHECK(in.good(), "cannot resume: '", path, "' does not exist (no task has finished)");
  std::stringstream ss;
  ss << in.rdbuf();
  RunState state;
  try {
    const json j = json::parse(ss.str());
    const Config saved = config_from_json(j.at("config").dump(), path);
    check_resume_config(saved, config);
    state.result.config = config;
    state.generator_offset = j.at("generator_offset").get<uint64_t>();
    state.result.class_order = j.at("class_order").get<std::vector<int64_t>>();
    for (const json& t : j.at("tasks")) {
      TaskRecord r = record_from_json(t);
      state.result.matrix.add(
          TaskCounts{t.at("correct").get<std::vector<int64_t>>(),
                     t.at("total").get<std::vector<int64_t>>(),
                     t.value("correct5", std::vector<int64_t>{})});
      state.result.seconds += r.seconds;
      state.result.tasks.push_back(r);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    SDLORA_THROW("cannot resume from '", path, "': ", e.what());
  }
  return state;
}

void check_resume_config(const Config& saved, const Config& config) {
  static const std::set<std::string> free_keys{"threads", "num_workers", "device",
                                               "cache_mb", "log_every", "prefix"};
  const json a = json::parse(saved.to_json()), b = json::parse(config.to_json());
  for (const auto& [key, value] : a.items()) {
    if (free_keys.count(key)) continue;
    SDLORA_CHECK(b.contains(key) && b.at(key) == value, "cannot resume: config key '", key,
                 "' was ", value.dump(), " in the run, now ", b.value(key, json()).dump());
  }
}

}  // namespace sdlora::cl
