// Multi-seed runs (multi_seed.h).
#include "cl/multi_seed.h"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cl/run_dir.h"
#include "data/file_io.h"
#include "tensor/error.h"

namespace sdlora::cl {

MultiSeedResult::Stat mean_std(const std::vector<double>& v) {
  MultiSeedResult::Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0.0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return s;
}

std::string seed_dir(const std::string& dir, int64_t seed) {
  return (std::filesystem::path(dir) / ("seed-" + std::to_string(seed))).string();
}

namespace {

void summarise(MultiSeedResult& r) {
  std::vector<double> acc, aaa, fgt, fgt_rel;
  r.finished = 0;
  for (const SeedRun& s : r.runs) {
    if (!s.finished) continue;
    ++r.finished;
    const AccuracyMatrix& m = s.result.matrix;
    acc.push_back(m.acc_final());
    aaa.push_back(m.aaa());
    fgt.push_back(m.forgetting());
    fgt_rel.push_back(m.forgetting_released());
  }
  r.acc = mean_std(acc);
  r.aaa = mean_std(aaa);
  r.forgetting = mean_std(fgt);
  r.forgetting_released = mean_std(fgt_rel);
}

// A seed's run folder: read back when every task is done, else resumed or started.
SeedRun run_one(const Config& c, const Datasets& d, const RunOptions& options) {
  SeedRun s;
  s.seed = c.seed;
  s.dir = seed_dir(options.run_dir, c.seed);
  RunOptions o = options;
  o.run_dir = s.dir;
  const bool exists = std::filesystem::exists(std::filesystem::path(s.dir) / "config.json");
  SDLORA_CHECK(options.resume || !exists, "'", s.dir,
               "' already holds a run; continue it with "
               "--resume ",
               options.run_dir);
  o.resume = exists;  // a finished run returns at once; an unfinished one continues
  const std::unique_ptr<ViT> backbone = make_backbone(c);
  s.result = run_training(c, d, *backbone, o);
  const AccuracyMatrix& m = s.result.matrix;
  s.finished = m.num_tasks() > 0 &&
               s.result.tasks.back().class_end == static_cast<int64_t>(s.result.class_order.size());
  return s;
}

}  // namespace

MultiSeedResult run_seeds(const Config& config, const RunOptions& options) {
  config.validate();
  return run_seeds(config, open_datasets(config), options);
}

MultiSeedResult run_seeds(const Config& config, const Datasets& d, const RunOptions& options) {
  config.validate();
  SDLORA_CHECK(!options.run_dir.empty(), "a multi-seed run needs a run folder");
  std::filesystem::create_directories(options.run_dir);
  const std::string config_path = (std::filesystem::path(options.run_dir) / "config.json").string();
  if (!options.resume || !std::filesystem::exists(config_path))
    data::write_file_atomic(config_path, config.to_json() + "\n");
  MultiSeedResult r;
  for (const Config& c : config.per_seed()) {
    if (options.reporter != nullptr)
      options.reporter->on_line(detail::concat("seed ", c.seed, " (", r.runs.size() + 1, " of ",
                                               config.seeds.size(), ")"));
    r.runs.push_back(run_one(c, d, options));
    summarise(r);
    const std::filesystem::path dir(options.run_dir);
    data::write_file_atomic((dir / "summary.json").string(), r.summary_json());
    data::write_file_atomic((dir / "summary.txt").string(), r.table());
  }
  return r;
}

std::string MultiSeedResult::summary_json() const {
  using json = nlohmann::json;
  json runs = json::array();
  for (const SeedRun& s : this->runs) {
    const AccuracyMatrix& m = s.result.matrix;
    runs.push_back({{"seed", s.seed},
                    {"dir", std::filesystem::path(s.dir).filename().string()},
                    {"finished", s.finished},
                    {"tasks", m.num_tasks()},
                    {"acc_final", m.acc_final()},
                    {"aaa", m.aaa()},
                    {"forgetting", m.forgetting()},
                    {"forgetting_released", m.forgetting_released()},
                    {"acc_per_task", m.acc_per_task()}});
  }
  auto stat = [](const Stat& s) { return json{{"mean", s.mean}, {"std", s.std}}; };
  json j{{"runs", runs},
         {"finished", finished},
         {"std", "sample standard deviation (n - 1) over the finished runs"},
         {"acc_final", stat(acc)},
         {"aaa", stat(aaa)},
         {"forgetting", stat(forgetting)},
         {"forgetting_released", stat(forgetting_released)}};
  return j.dump(2) + "\n";
}

std::string MultiSeedResult::table() const {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  o << std::setw(8) << "seed" << std::setw(10) << "Acc" << std::setw(10) << "AAA" << std::setw(12)
    << "forgetting" << '\n';
  for (const SeedRun& s : runs) {
    const AccuracyMatrix& m = s.result.matrix;
    o << std::setw(8) << s.seed << std::setw(10) << m.acc_final() << std::setw(10) << m.aaa()
      << std::setw(12) << m.forgetting() << (s.finished ? "" : "  (unfinished)") << '\n';
  }
  auto pm = [](const Stat& s) {
    std::ostringstream t;
    t << std::fixed << std::setprecision(2) << s.mean << " +- " << s.std;
    return t.str();
  };
  o << "mean +- std over " << finished << " finished seeds: Acc " << pm(acc) << "  AAA " << pm(aaa)
    << "  forgetting " << pm(forgetting) << '\n';
  return o.str();
}

}  // namespace sdlora::cl
