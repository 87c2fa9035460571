// Run folder files: log lines, checkpoint paths, and the state a resume reads back (metrics.json
// and metrics.csv are written from run_result.h).
#include "cl/run_dir.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tensor/error.h"

namespace sdlora::cl {
namespace {

using json = nlohmann::json;

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
      state.result.matrix.add(TaskCounts{t.at("correct").get<std::vector<int64_t>>(),
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
  static const std::set<std::string> free_keys{"threads",  "num_workers", "device",
                                               "cache_mb", "log_every",   "prefix"};
  const json a = json::parse(saved.to_json()), b = json::parse(config.to_json());
  for (const auto& [key, value] : a.items()) {
    if (free_keys.count(key)) continue;
    SDLORA_CHECK(b.contains(key) && b.at(key) == value, "cannot resume: config key '", key,
                 "' was ", value.dump(), " in the run, now ", b.value(key, json()).dump());
  }
}

}  // namespace sdlora::cl
