// Reading run folders for the report (run_data.h).
#include "report/run_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cl/methods.h"
#include "tensor/error.h"

namespace sdlora::report {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The methods in the order `sdlora demo` runs them (the registry's order).
const std::vector<std::string> kDemoOrder = cl::method_names();

// The folder's own name, also for "runs/sdlora/".
std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

}  // namespace

bool is_sdlora_family(const std::string& method) { return method.rfind("sdlora", 0) == 0; }

bool is_run_folder(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / "metrics.json");
}

RunSummary read_run(const std::string& dir) {
  const std::string path = (fs::path(dir) / "metrics.json").string();
  SDLORA_CHECK(fs::is_regular_file(path), "'", dir,
               "' is not a run folder with metrics (no metrics.json; `sdlora train --out DIR` "
               "writes one after every task)");
  std::ifstream in(path);
  SDLORA_CHECK(in.good(), "cannot read '", path, "'");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    SDLORA_THROW("'", path, "' is not valid JSON: ", e.what());
  }
  RunSummary r;
  r.dir = dir;
  try {
    r.method = j.at("method").get<std::string>();
    r.mode = get_or<std::string>(j, "mode", "");
    r.dataset = get_or<std::string>(j, "dataset", "");
    r.acc_matrix = j.at("acc_matrix").get<std::vector<std::vector<double>>>();
    r.num_tasks = static_cast<int64_t>(r.acc_matrix.size());
    r.acc_final = get_or<double>(j, "acc_final", 0.0);
    r.aaa = get_or<double>(j, "aaa", 0.0);
    r.forgetting = get_or<double>(j, "forgetting", 0.0);
    const auto acc = j.at("acc_per_task").get<std::vector<double>>();
    const json& per_task = j.at("per_task");
    SDLORA_CHECK(per_task.size() == r.acc_matrix.size() && acc.size() == r.acc_matrix.size(), "'",
                 path, "': acc_matrix has ", r.acc_matrix.size(), " rows, acc_per_task ",
                 acc.size(), " values and per_task ", per_task.size(), " entries");
    for (size_t i = 0; i < per_task.size(); ++i) {
      const json& t = per_task[i];
      TaskSummary s;
      s.task = t.at("task").get<int64_t>();
      s.accuracy = acc[i];
      s.seconds = get_or<double>(t, "seconds", 0.0);
      s.train_seconds = get_or<double>(t, "train_seconds", 0.0);
      s.images_per_s = get_or<double>(t, "images_per_s", 0.0);
      s.peak_bytes = get_or<int64_t>(t, "peak_bytes", 0);
      s.params_trainable = get_or<int64_t>(t, "params_trainable", 0);
      s.params_stored = get_or<int64_t>(t, "params_stored", 0);
      s.rank = get_or<int64_t>(t, "rank", 0);
      s.magnitudes = get_or<std::vector<double>>(t, "magnitudes", {});
      auto kd = t.find("kd");
      if (kd != t.end() && kd->is_object()) {
        s.kd_checked = true;
        s.kd_absorbed = get_or<bool>(*kd, "redundant", false);
        s.kd_tau = get_or<double>(*kd, "tau", 0.0);
        s.kd_residuals = get_or<std::vector<double>>(*kd, "residuals", {});
      }
      r.tasks.push_back(std::move(s));
    }
  } catch (const json::exception& e) {
    SDLORA_THROW("'", path, "': ", e.what());
  }
  r.label = r.method;
  return r;
}

std::vector<std::string> expand_run_folders(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    SDLORA_CHECK(fs::is_directory(in), "'", in, "': no such folder");
    if (is_run_folder(in)) {
      out.push_back(in);
      continue;
    }
    std::vector<std::string> subs;
    for (const auto& e : fs::directory_iterator(in))
      if (e.is_directory() && is_run_folder(e.path().string())) subs.push_back(e.path().string());
    SDLORA_CHECK(!subs.empty(), "'", in,
                 "' is neither a run folder (no metrics.json) nor a folder of run folders "
                 "(as `sdlora demo --out DIR` writes)");
    auto rank = [](const std::string& dir) {
      const std::string name = fs::path(dir).filename().string();
      const auto it = std::find(kDemoOrder.begin(), kDemoOrder.end(), name);
      return std::make_pair(static_cast<size_t>(it - kDemoOrder.begin()), name);
    };
    std::sort(subs.begin(), subs.end(),
              [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
    out.insert(out.end(), subs.begin(), subs.end());
  }
  return out;
}

std::vector<RunSummary> read_runs(const std::vector<std::string>& dirs) {
  std::vector<RunSummary> runs;
  std::map<std::string, int> count;
  for (const std::string& d : dirs) {
    runs.push_back(read_run(d));
    count[runs.back().method] += 1;
  }
  for (RunSummary& r : runs)
    if (count[r.method] > 1) r.label = r.method + " (" + folder_name(r.dir) + ")";
  return runs;
}

}  // namespace sdlora::report
