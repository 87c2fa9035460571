// Recorded graphs (tensor/graph.h) on the CPU twin: the recording runs the host code once and
// each replay runs it again; inside either, host reads, uploads and synchronisation throw naming
// themselves; the thread's recording state is restored after a failure.
#include <gtest/gtest.h>

#include <vector>

#include "tensor/graph.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using test::throws_naming;

TEST(RecordedGraph, CpuTwinRunsTheBodyWhenRecordingAndAtEachReplay) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor out;
  int runs = 0;
  bool inside = false;
  RecordedGraph g(Device::cpu(), [&] {
    ++runs;
    inside = graph_capturing();
    out = add(mul(x, 2.0), 1.0);  // a fresh output each run, as a recorded step's loss
  });
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(inside);
  EXPECT_FALSE(graph_capturing());
  EXPECT_FALSE(g.on_device());
  EXPECT_EQ(g.pool_bytes(), 0);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{3, 5, 7}));
  // New input values in the same tensor: the replay sees them.
  x.copy_(Tensor::from_vector<float>({10, 20, 30}, {3}));
  g.replay();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{21, 41, 61}));
}

TEST(RecordedGraph, HostReadsUploadsAndSynchronisationAreRefusedWhileRecording) {
  const Tensor x = Tensor::from_vector<float>({1, 2}, {2});
  const Tensor one = Tensor::from_vector<float>({4}, {});
  struct Case {
    const char* name;
    std::function<void()> body;
  };
  const std::vector<Case> cases = {
      {"item()", [&] { (void)sum(x).item(); }},
      {"to_vector()", [&] { (void)x.to_vector<float>(); }},
      {"Tensor::from_vector", [&] { (void)Tensor::from_vector<float>({1}, {1}); }},
      {"synchronize()", [&] { synchronize(Device::cpu()); }},
      {"item()", [&] { (void)one.item(); }},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(throws_naming([&] { RecordedGraph g(Device::cpu(), c.body); }, c.name)) << c.name;
    EXPECT_TRUE(throws_naming([&] { RecordedGraph g(Device::cpu(), c.body); },
                              "cannot be part of a recorded graph"));
    EXPECT_FALSE(graph_capturing()) << "the recording state leaked after " << c.name;
  }
  // Outside a recording the same calls work.
  EXPECT_EQ(sum(x).item(), 3.0);
  EXPECT_NO_THROW(check_not_capturing("anything"));
}

TEST(RecordedGraph, AReplayThatFailsLeavesTheThreadUsable) {
  bool fail = false;
  RecordedGraph g(Device::cpu(), [&] {
    if (fail) (void)Tensor::from_vector<float>({1}, {1});
  });
  fail = true;
  EXPECT_TRUE(throws_naming([&] { g.replay(); }, "from_vector"));
  EXPECT_FALSE(graph_capturing());
  fail = false;
  EXPECT_NO_THROW(g.replay());
}

TEST(RecordedGraph, NeedsABody) {
  EXPECT_TRUE(throws_naming([] { RecordedGraph g(Device::cpu(), nullptr); }, "no body"));
}

}  // namespace
}  // namespace sdlora
