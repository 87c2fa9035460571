// The demo's config and report (demo.h).
#include "apps/demo.h"

#include <filesystem>
#include <iomanip>
#include <sstream>

#include "apps/demo_config.h"
#include "cl/methods.h"

namespace sdlora::apps {

cl::Config demo_config() { return cl::config_from_json(kDemoConfigJson, "the demo config"); }

const std::vector<std::string>& demo_methods() {
  static const std::vector<std::string> kMethods = cl::method_names();
  return kMethods;
}

std::string locate_project_file(const std::string& path) {
  if (path.empty() || std::filesystem::exists(path)) return path;
  const std::filesystem::path p(path);
  if (p.is_relative()) {
    const std::filesystem::path in_source = std::filesystem::path(kSourceDir) / p;
    if (std::filesystem::exists(in_source)) return in_source.string();
  }
  return path;
}

std::string demo_report(const std::vector<DemoRun>& runs) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  const bool several = !runs.empty() && runs.front().seeds.runs.size() > 1;
  if (several) {  // mean +- sample std over the finished seeds
    o << std::left << std::setw(14) << "method" << std::right << std::setw(16) << "Acc"
      << std::setw(16) << "AAA" << std::setw(16) << "forgetting" << std::setw(8) << "seeds" << '\n';
    auto pm = [](const cl::MultiSeedResult::Stat& s) {
      std::ostringstream t;
      t << std::fixed << std::setprecision(2) << s.mean << " +- " << s.std;
      return t.str();
    };
    for (const DemoRun& r : runs)
      o << std::left << std::setw(14) << r.method << std::right << std::setw(16) << pm(r.seeds.acc)
        << std::setw(16) << pm(r.seeds.aaa) << std::setw(16) << pm(r.seeds.forgetting)
        << std::setw(8) << r.seeds.finished << '\n';
    o << "\nfirst seed's run:\n";
  }
  o << std::left << std::setw(14) << "method" << std::right << std::setw(8) << "Acc" << std::setw(8)
    << "AAA" << std::setw(12) << "forgetting" << std::setw(16) << "stored params" << std::setw(10)
    << "seconds" << '\n';
  for (const DemoRun& r : runs) {
    const cl::AccuracyMatrix& m = r.result.matrix;
    const int64_t stored = r.result.tasks.empty() ? 0 : r.result.tasks.back().params_stored;
    o << std::left << std::setw(14) << r.method << std::right << std::setw(8) << m.acc_final()
      << std::setw(8) << m.aaa() << std::setw(12) << m.forgetting() << std::setw(16) << stored
      << std::setw(10) << std::setprecision(1) << r.result.seconds << std::setprecision(2) << '\n';
  }
  for (const DemoRun& r : runs) {
    if (r.method == "sdlora") {
      o << "\nSD-LoRA accuracy matrix (row: after task i; column: task j's classes, %)\n"
        << r.result.table();
      if (!r.result.tasks.empty()) {
        o << "SD-LoRA magnitudes alpha_0..alpha_t after each task:\n";
        for (const cl::TaskRecord& t : r.result.tasks) {
          o << "  T" << t.task << ":";
          for (double a : t.end.magnitudes) o << " " << std::setprecision(4) << a;
          o << std::setprecision(2) << '\n';
        }
      }
    }
    if (r.method == "sdlora-kd") {
      o << "\nSD-LoRA-KD decisions (redundant when every projection's residual <= tau):\n";
      for (const cl::TaskRecord& t : r.result.tasks)
        if (t.end.kd_checked) o << "  T" << t.task << ": " << t.end.kd.describe() << '\n';
    }
  }
  return o.str();
}

}  // namespace sdlora::apps
