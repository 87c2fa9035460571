// The report and the analyses on tiny runs trained here: every figure a valid PNG of its stated
// size with ink in the plot area; residuals against SD-LoRA-KD's own check, against a dense
// computation and against directions built to lie in the earlier span; interpolation endpoints
// against the runs' own accuracies; the commands end to end; the refusal without PLplot.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cl/run_dir.h"
#include "cl/run_model.h"
#include "nn/safetensors.h"
#include "report/analyze.h"
#include "report/report.h"
#include "tensor/ops.h"
#include "tests/apps/test_app_util.h"
#include "tests/report/report_test_util.h"

namespace sdlora::report {
namespace {

namespace fs = std::filesystem;
using test::tiny_runs_root;

#define SDLORA_REQUIRE_PLPLOT()                                                            \
  do {                                                                                     \
    if (!plotting_built())                                                                 \
      GTEST_SKIP() << "built without PLplot (Debian libplplot-dev, plplot-driver-cairo); " \
                      "the refusal is tested by PlottingRefusal";                          \
  } while (0)

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

void expect_figure(const std::string& path, FigureSize size) {
  SCOPED_TRACE(path);
  ASSERT_TRUE(fs::exists(path));
  const test::PngSize got = test::png_size(path);
  EXPECT_EQ(got.width, static_cast<uint32_t>(size.width));
  EXPECT_EQ(got.height, static_cast<uint32_t>(size.height));
  // Axes, lines, cells and text: well above nothing, well below a filled page.
  const double ink = test::ink_fraction(path);
  EXPECT_GT(ink, 0.01);
  EXPECT_LT(ink, 0.98);
}

TEST(PlottingRefusal, NamesTheMissingPackages) {
  const std::string msg = missing_plotting_message("sdlora report");
  EXPECT_NE(msg.find("libplplot-dev"), std::string::npos) << msg;
  EXPECT_NE(msg.find("plplot-driver-cairo"), std::string::npos) << msg;
  if (plotting_built()) {
    EXPECT_NO_THROW(require_plotting("sdlora report"));
  } else {
    try {
      require_plotting("sdlora report");
      ADD_FAILURE() << "require_plotting did not throw in a build without PLplot";
    } catch (const std::exception& e) {
      EXPECT_EQ(std::string(e.what()).find(msg) != std::string::npos, true) << e.what();
    }
  }
}

TEST(Report, EveryFigureIsAPngOfItsSizeWithInk) {
  SDLORA_REQUIRE_PLPLOT();
  const std::string root = tiny_runs_root();
  const auto runs = read_runs(expand_run_folders({root}));
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].method, "sdlora");  // the demo's order
  EXPECT_EQ(runs[1].method, "sdlora-kd");
  EXPECT_EQ(runs[2].method, "seq-lora");
  const std::string out = root + "/report";
  const ReportResult r = write_report(runs, out);
  std::vector<std::string> files;
  for (const FigureFile& f : r.figures) {
    files.push_back(f.file);
    expect_figure(out + "/" + f.file, f.size);
  }
  for (const char* want : {"accuracy.png", "accuracy_matrix.png", "magnitudes.png",
                           "ranks_params.png", "kd_residuals.png", "cost.png"})
    EXPECT_NE(std::find(files.begin(), files.end(), want), files.end()) << want;
  std::ifstream in(r.index);
  const std::string md((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::string& f : files) EXPECT_NE(md.find("](" + f + ")"), std::string::npos) << f;
  // The table's Acc column is metrics.json's acc_final.
  char acc[32];
  std::snprintf(acc, sizeof acc, "| %.2f |", runs[0].acc_final);
  EXPECT_NE(md.find(acc), std::string::npos) << md;
}

TEST(Residuals, EqualSDLoRAKDsOwnCheck) {
  const std::string run = tiny_runs_root() + "/sdlora-kd";
  const ResidualAnalysis a = analyze_residuals(run);
  const nlohmann::json m = read_json(run + "/metrics.json");
  ASSERT_EQ(a.tasks.size(), 2u);  // tasks 1 and 2; tau 0 keeps every direction
  for (const TaskResiduals& t : a.tasks) {
    SCOPED_TRACE(t.task);
    EXPECT_EQ(t.source, "checkpoint");
    EXPECT_EQ(t.earlier, t.task);
    const auto kd = m.at("per_task").at(t.task).at("kd").at("residuals").get<std::vector<double>>();
    ASSERT_EQ(t.residuals.size(), kd.size());
    ASSERT_EQ(t.residuals.size(), a.projections.size());
    for (size_t p = 0; p < kd.size(); ++p) EXPECT_NEAR(t.residuals[p], kd[p], 1e-9) << p;
  }
}

// Dense unit direction U D / ||U D|| of a component, as a flat vector.
std::vector<double> dense_direction(const Tensor& up, const Tensor& down) {
  const std::vector<float> v = matmul(up, down).to_vector<float>();
  double n = 0.0;
  for (float x : v) n += static_cast<double>(x) * x;
  std::vector<double> out;
  for (float x : v) out.push_back(x / std::sqrt(n));
  return out;
}

TEST(Residuals, TaskOneMatchesTheDenseSineOfTheAngle) {
  // With one earlier direction the residual is sqrt(1 - cos^2) of the dense unit directions.
  const std::string run = tiny_runs_root() + "/sdlora";
  const ResidualAnalysis a = analyze_residuals(run);
  ASSERT_FALSE(a.tasks.empty());
  ASSERT_EQ(a.tasks[0].task, 1);
  const SafetensorsFile f = load_safetensors(cl::checkpoint_path(run, 1), Device::cpu());
  for (size_t p = 0; p < a.projections.size(); ++p) {
    const std::string n = a.projections[p] + ".";
    const auto u0 = dense_direction(f.tensors.at(n + "0.up"), f.tensors.at(n + "0.down"));
    const auto u1 = dense_direction(f.tensors.at(n + "1.up"), f.tensors.at(n + "1.down"));
    double cos = 0.0;
    for (size_t i = 0; i < u0.size(); ++i) cos += u0[i] * u1[i];
    EXPECT_NEAR(a.tasks[0].residuals[p], std::sqrt(std::max(0.0, 1.0 - cos * cos)), 1e-4)
        << a.projections[p];
  }
}

TEST(Residuals, DirectionsInTheEarlierSpanHaveResidualZero) {
  const std::string src = tiny_runs_root() + "/sdlora";
  const std::string run = tiny_runs_root() + "/sdlora-span";
  fs::remove_all(run);
  fs::copy(src, run, fs::copy_options::recursive);
  const cl::Config config = cl::load_run_config(run);
  // Task 1's direction: 2.5 times task 0's. Task 2's: 1.5 u_0 - 0.7 u_1 as one rank-4 pair.
  for (int64_t t : {1, 2}) {
    SafetensorsFile f = load_safetensors(cl::checkpoint_path(run, t), Device::cpu());
    for (const std::string& proj : analyze_residuals(src).projections) {
      const std::string n = proj + ".";
      const Tensor u0 = f.tensors.at(n + "0.up"), d0 = f.tensors.at(n + "0.down");
      if (t == 1) {
        f.tensors[n + "1.up"] = mul(u0, 2.5);
        f.tensors[n + "1.down"] = d0.clone();
      } else {
        const Tensor u1 = f.tensors.at(n + "1.up"), d1 = f.tensors.at(n + "1.down");
        f.tensors[n + "2.up"] = cat({mul(u0, 1.5), mul(u1, -0.7)}, 1);
        f.tensors[n + "2.down"] = cat({d0, d1}, 0);
      }
    }
    // The pure function on the edited tensors, then the file for the whole analysis.
    const NewestDirection d = newest_direction_residuals(config, f.tensors, f.metadata);
    EXPECT_EQ(d.directions, t + 1);
    for (double r : d.residuals) EXPECT_LT(r, 2e-3) << "task " << t;
    save_safetensors(cl::checkpoint_path(run, t), f.tensors, f.metadata);
  }
  // The whole analysis reads the edited files: both tasks' directions lie in the earlier span.
  const ResidualAnalysis a = analyze_residuals(run);
  ASSERT_EQ(a.tasks.size(), 2u);
  for (const TaskResiduals& t : a.tasks) {
    EXPECT_EQ(t.source, "checkpoint");
    for (double r : t.residuals) EXPECT_LT(r, 2e-3) << "task " << t.task;
  }
  // An untouched direction of the original run is not in the span (the test can tell).
  double worst = 0.0;
  const ResidualAnalysis original = analyze_residuals(src);
  for (double r : original.tasks[0].residuals) worst = std::max(worst, r);
  EXPECT_GT(worst, 0.05);
  fs::remove_all(run);
}

TEST(Residuals, RefuseRunsWithoutComponents) {
  try {
    analyze_residuals(tiny_runs_root() + "/seq-lora");
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("SD-LoRA-family"), std::string::npos) << e.what();
  }
}

TEST(Interpolation, EndpointsAreTheCheckpointsOwnAccuracies) {
  for (const char* method : {"sdlora", "seq-lora"}) {
    SCOPED_TRACE(method);
    const std::string run = tiny_runs_root() + "/" + method;
    const RunSummary s = read_run(run);
    const InterpolationCurve c = analyze_interpolation(run, 0, 2, 3);
    ASSERT_EQ(c.lambdas.size(), 3u);
    EXPECT_EQ(c.lambdas.front(), 0.0);
    EXPECT_EQ(c.lambdas.back(), 1.0);
    ASSERT_EQ(c.accuracy.back().size(), 3u);
    ASSERT_EQ(c.accuracy_from.front().size(), 1u);
    // lambda 0 through task 0's classifier: R[0][0]; lambda 1 through task 2's: R[2][j].
    EXPECT_NEAR(c.accuracy_from.front()[0], s.acc_matrix[0][0], 1e-9);
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(c.accuracy.back()[j], s.acc_matrix[2][j], 1e-9) << j;
    for (const auto& row : c.loss)
      for (double l : row) EXPECT_TRUE(std::isfinite(l) && l > 0.0);
  }
}

TEST(Commands, AnalyzeAndReportEndToEnd) {
  SDLORA_REQUIRE_PLPLOT();
  const std::string root = tiny_runs_root();
  const std::string out = root + "/cmd";
  auto r = sdlora::test::run_sdlora("analyze interpolate --runs " + root + "/sdlora " + root +
                                    "/seq-lora --from 0 --to 1 --points 3 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("point 3/3"), std::string::npos) << r.output;  // progress lines
  const nlohmann::json j = read_json(out + "/interpolation.json");
  EXPECT_EQ(j.at("runs").size(), 2u);
  expect_figure(out + "/interpolation.png", {1400, 560});

  r = sdlora::test::run_sdlora("analyze residuals --run " + root + "/sdlora-kd --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(out + "/residuals.json").at("tasks").size(), 2u);
  expect_figure(out + "/residuals.png", {1000, 560});

  r = sdlora::test::run_sdlora("analyze magnitudes --run " + root + "/sdlora --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json mag = read_json(out + "/magnitudes.json");
  EXPECT_EQ(mag.at("final").size(), 3u);  // three components after three tasks
  expect_figure(out + "/magnitudes.png", {1400, 560});

  r = sdlora::test::run_sdlora("report --run " + root + "/sdlora");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(root + "/sdlora/report/report.md"));

  r = sdlora::test::run_sdlora("report --runs " + root + "/sdlora " + root + "/seq-lora");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  r = sdlora::test::run_sdlora("report --run " + root + "/data");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("neither a run folder"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sdlora::report
