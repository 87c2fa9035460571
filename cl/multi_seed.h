// Several runs of one config, one per seed of its `seed` list (the released configs' form): each
// into DIR/seed-<s>/ as a run folder of its own, then DIR/summary.json and DIR/summary.txt with
// the mean and standard deviation of Acc, AAA and forgetting over the finished seeds. The paper
// reports means over 5 runs; single runs differ by a few points from seed to seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cl/config.h"
#include "cl/task_loop.h"

namespace sdlora::cl {

struct SeedRun {
  int64_t seed = 0;
  std::string dir;
  RunResult result;
  bool finished = false;  // every task done
};

struct MultiSeedResult {
  std::vector<SeedRun> runs;
  // Mean and sample standard deviation (n - 1; 0 for one run) over the finished runs.
  struct Stat {
    double mean = 0.0, std = 0.0;
  };
  Stat acc, aaa, forgetting, forgetting_released;
  int64_t finished = 0;

  std::string summary_json() const;
  std::string table() const;  // one row per seed, then mean +- std
};

MultiSeedResult::Stat mean_std(const std::vector<double>& values);

std::string seed_dir(const std::string& dir, int64_t seed);

// Runs (or, with options.resume, continues) every seed of config.seeds into options.run_dir:
// finished seeds are read back, unfinished ones resumed, missing ones started. Writes
// DIR/config.json (the whole config) and the summary after every seed.
MultiSeedResult run_seeds(const Config& config, const Datasets& datasets,
                          const RunOptions& options);
// The same, opening the config's datasets.
MultiSeedResult run_seeds(const Config& config, const RunOptions& options);

}  // namespace sdlora::cl
