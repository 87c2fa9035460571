// Finite-difference gradient checks (see gradcheck.h).
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/ops.h"
#include "tensor/random.h"

namespace sdlora {

namespace {

// "[1, 0, 2]": the multi-index of flat element i of shape.
std::string index_str(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] == 0 ? 0 : i % shape[d];
    i = shape[d] == 0 ? 0 : i / shape[d];
  }
  return shape_str(idx);
}

// sum(out * r) in double on the host.
double project(const Var& out, const std::vector<double>& r) {
  const std::vector<double> v = out.data().to_vector<double>();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, double eps,
                          double rtol, double atol, uint64_t seed) {
  std::vector<Var> vars;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    SDLORA_CHECK(x.defined() && x.dtype() == DType::kFloat64 && x.device().is_cpu(),
                 "gradcheck: input ", i, " should be a float64 cpu tensor, got ", x.describe());
    vars.emplace_back(x.clone(), /*requires_grad=*/true);
  }

  // Analytic: one backward of the projection.
  const Var out = f(vars);
  SDLORA_CHECK(out.dtype() == DType::kFloat64 && out.device().is_cpu(),
               "gradcheck: the output should be float64 on the cpu, got ", out.describe());
  Generator gen(seed);
  const Tensor r = gen.uniform(out.shape(), -1.0, 1.0, DType::kFloat64);
  const std::vector<double> rv = r.to_vector<double>();
  if (out.requires_grad()) backward(out, r);

  GradcheckResult res;
  for (size_t i = 0; i < vars.size(); ++i) {
    const Tensor& g = vars[i].grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>()
                    : std::vector<double>(static_cast<size_t>(vars[i].numel()), 0.0);
    double* x = vars[i].data().data<double>();
    for (int64_t j = 0; j < vars[i].numel(); ++j) {
      const double saved = x[j];
      double plus, minus;
      {
        NoGradGuard no_grad;
        x[j] = saved + eps;
        plus = project(f(vars), rv);
        x[j] = saved - eps;
        minus = project(f(vars), rv);
        x[j] = saved;
      }
      const double numeric = (plus - minus) / (2.0 * eps);
      const double a = analytic[static_cast<size_t>(j)];
      double ratio = std::fabs(a - numeric) / (atol + rtol * std::fabs(numeric));
      if (std::isnan(ratio)) ratio = INFINITY;
      if (res.input < 0 || ratio > res.ratio) {
        res.input = static_cast<int>(i);
        res.element = j;
        res.analytic = a;
        res.numeric = numeric;
        res.ratio = ratio;
      }
    }
  }
  res.ok = res.input < 0 || res.ratio <= 1.0;
  std::ostringstream os;
  if (res.input < 0) {
    os << "gradcheck: no input elements to check";
  } else {
    const Shape& s = vars[static_cast<size_t>(res.input)].shape();
    os << "gradcheck " << (res.ok ? "passed" : "FAILED") << "; worst element: input " << res.input
       << " " << shape_str(s) << " at " << index_str(s, res.element) << ": analytic "
       << res.analytic << ", numeric " << res.numeric << ", error "
       << std::fabs(res.analytic - res.numeric) << " (" << res.ratio << " x the tolerance atol "
       << atol << " + rtol " << rtol << " |numeric|)";
  }
  res.message = os.str();
  return res;
}

}  // namespace sdlora
