// The report's index and the order of its figures (report.h).
#include "report/report.h"

#include <filesystem>
#include <iomanip>
#include <sstream>

#include "data/file_io.h"
#include "tensor/error.h"

namespace sdlora::report {

std::string default_report_dir(const std::vector<std::string>& inputs) {
  if (inputs.size() != 1) return "";
  return (std::filesystem::path(inputs.front()) / "report").string();
}

ReportResult write_report(const std::vector<RunSummary>& runs, const std::string& out_dir) {
  SDLORA_CHECK(!runs.empty(), "report: no runs");
  SDLORA_CHECK(!out_dir.empty(), "report: no output folder");
  require_plotting("sdlora report");
  std::filesystem::create_directories(out_dir);
  ReportResult res;
  res.out_dir = out_dir;
  res.figures.push_back(figure_accuracy(runs, out_dir));
  res.figures.push_back(figure_accuracy_matrix(runs, out_dir));
  if (auto f = figure_magnitudes(runs, out_dir)) res.figures.push_back(*f);
  res.figures.push_back(figure_ranks_params(runs, out_dir));
  if (auto f = figure_kd(runs, out_dir)) res.figures.push_back(*f);
  res.figures.push_back(figure_cost(runs, out_dir));

  std::ostringstream md;
  md << std::fixed << std::setprecision(2);
  md << "# Continual-learning report\n\n";
  md << "| method | run folder | tasks | Acc (%) | AAA (%) | forgetting | stored params | "
        "seconds |\n|---|---|---|---|---|---|---|---|\n";
  for (const RunSummary& r : runs) {
    double seconds = 0.0;
    for (const TaskSummary& t : r.tasks) seconds += t.seconds;
    md << "| " << r.label << " | `" << r.dir << "` | " << r.num_tasks << " | " << r.acc_final
       << " | " << r.aaa << " | " << r.forgetting << " | "
       << (r.tasks.empty() ? 0 : r.tasks.back().params_stored) << " | " << std::setprecision(1)
       << seconds << std::setprecision(2) << " |\n";
  }
  for (const FigureFile& f : res.figures)
    md << "\n## " << f.caption << "\n\n![" << f.file << "](" << f.file << ")\n";
  res.index = (std::filesystem::path(out_dir) / "report.md").string();
  data::write_file_atomic(res.index, md.str());
  return res;
}

}  // namespace sdlora::report
