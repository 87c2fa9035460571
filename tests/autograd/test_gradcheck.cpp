// Central finite differences in float64 for every differentiable op (tests/autograd/op_cases.cpp),
// and the checker itself: it must catch a wrong rule and name where.
#include <gtest/gtest.h>

#include <algorithm>

#include "autograd/autograd.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tests/autograd/op_cases.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

class OpGradcheck : public ::testing::TestWithParam<std::string> {};

TEST_P(OpGradcheck, MatchesFiniteDifferences) {
  const OpCase c = op_case(GetParam());
  const GradcheckResult r = gradcheck(c.f, c.inputs, 1e-6, c.rtol, c.atol);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpGradcheck, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(OpCases, CoverEveryDifferentiableOp) {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases()) names.push_back(c.name);
  for (const char* op : {"matmul",    "linear",       "add",           "sub",
                         "mul",       "div",          "add_scalar",    "sub_scalar",
                         "rsub",      "mul_scalar",   "div_scalar",    "rdiv",
                         "pow_3",     "neg",          "exp",           "log",
                         "sqrt",      "tanh",         "gelu",          "scale",
                         "sum",       "sum_dim",      "mean",          "mean_dim",
                         "max",       "max_dim",      "softmax",       "log_softmax",
                         "layernorm", "attention",    "cross_entropy", "cross_entropy_range",
                         "reshape",   "permute",      "transpose",     "cat",
                         "slice",     "index_select", "broadcast_to",  "patchify"})
    EXPECT_NE(std::find(names.begin(), names.end(), op), names.end())
        << "no gradcheck case for " << op;
}

// y = 3 x whose rule claims dx = 2 dy: the checker must fail and point at the input.
Var wrong_triple(const Var& x) {
  return record("wrong_triple", mul(x.data(), 3.0), {x},
                {[](const Tensor& dy) { return mul(dy, 2.0); }});
}

TEST(Gradcheck, CatchesAWrongRuleAndNamesTheElement) {
  const Tensor a = random_tensor({2, 3}, 1, -1.0, 1.0, DType::kFloat64);
  const Tensor b = random_tensor({3}, 2, -1.0, 1.0, DType::kFloat64);
  const GradcheckResult r =
      gradcheck([](const std::vector<Var>& v) { return v[0] + wrong_triple(v[1]); }, {a, b});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.input, 1);
  EXPECT_GE(r.element, 0);
  EXPECT_NEAR(r.analytic / r.numeric, 2.0 / 3.0, 1e-6);
  EXPECT_NE(r.message.find("FAILED"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("input 1 [3]"), std::string::npos) << r.message;
}

TEST(Gradcheck, RejectsFloat32Inputs) {
  const Tensor a = random_tensor({2}, 1);
  EXPECT_THROW(gradcheck([](const std::vector<Var>& v) { return v[0] * 2.0; }, {a}), Error);
}

TEST(Gradcheck, InputsThatDoNotReachTheOutputHaveZeroGradient) {
  const Tensor a = random_tensor({2}, 1, -1.0, 1.0, DType::kFloat64);
  const Tensor b = random_tensor({2}, 2, -1.0, 1.0, DType::kFloat64);
  const GradcheckResult r = gradcheck([](const std::vector<Var>& v) { return exp(v[0]); }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace sdlora::test
