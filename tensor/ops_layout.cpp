// Layout ops (permute, transpose, cat, slice, index_select and their adjoints): checks, shapes,
// dispatch. These move bytes, so they take any dtype.
#include <numeric>

#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm) {
  check_defined(x, "permute", "x");
  const int64_t nd = x.ndim();
  SDLORA_CHECK(static_cast<int64_t>(perm.size()) == nd, "permute: ", perm.size(),
               " axes given for ", x.describe());
  std::vector<int64_t> p(perm.size());
  std::vector<bool> seen(perm.size(), false);
  Shape out_shape(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    p[i] = wrap_dim(perm[i], nd, "permute", x);
    SDLORA_CHECK(!seen[static_cast<size_t>(p[i])], "permute: axis ", perm[i], " repeated");
    seen[static_cast<size_t>(p[i])] = true;
    out_shape[i] = x.shape()[static_cast<size_t>(p[i])];
  }
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (std::is_sorted(p.begin(), p.end())) {
    out.copy_(x.reshape(out_shape));
    return out;
  }
  SDLORA_CHECK(nd <= kMaxDims, "permute: at most ", kMaxDims, " dims, got ", x.describe());
  backend_for(x.device()).permute(x, p, out);
  return out;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  check_defined(x, "transpose", "x");
  std::vector<int64_t> perm(static_cast<size_t>(x.ndim()));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[static_cast<size_t>(wrap_dim(d0, x.ndim(), "transpose", x))],
            perm[static_cast<size_t>(wrap_dim(d1, x.ndim(), "transpose", x))]);
  return permute(x, perm);
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  SDLORA_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& first = xs.front();
  check_defined(first, "cat", "xs[0]");
  const int64_t d = wrap_dim(dim, first.ndim(), "cat", first);
  Shape out_shape = first.shape();
  out_shape[static_cast<size_t>(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    check_defined(x, "cat", "an input");
    check_same_device(first, x, "cat");
    check_same_dtype(first, x, "cat");
    SDLORA_CHECK(x.ndim() == first.ndim(), "cat: input ", i, " ", x.describe(),
                 " has a different rank from input 0 ", first.describe());
    for (int64_t k = 0; k < x.ndim(); ++k)
      SDLORA_CHECK(
          k == d || x.shape()[static_cast<size_t>(k)] == first.shape()[static_cast<size_t>(k)],
          "cat along dim ", d, ": input ", i, " ", x.describe(), " does not match input 0 ",
          first.describe());
    out_shape[static_cast<size_t>(d)] += x.shape()[static_cast<size_t>(d)];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    slice_set_(out, d, start, x);
    start += x.shape()[static_cast<size_t>(d)];
  }
  return out;
}

namespace {
// Copies src into the [start, start + src.size(dim)) window of dst along dim, or the window of
// src into dst when to_window is false; both are (outer, n, inner) with matching outer/inner.
void window_copy(Tensor& dst, const Tensor& src, int64_t dim, int64_t start, bool into_dst) {
  const Tensor& big = into_dst ? dst : src;
  const Tensor& small = into_dst ? src : dst;
  const AxisPlan pb = axis_plan(big.shape(), dim);
  const AxisPlan ps = axis_plan(small.shape(), dim);
  const int64_t es = static_cast<int64_t>(dtype_size(big.dtype()));
  const int64_t row_bytes = ps.n * ps.inner * es;
  const int64_t big_pitch = pb.n * pb.inner * es;
  if (row_bytes == 0 || pb.outer == 0) return;
  char* big_ptr = static_cast<char*>(big.raw_data()) + start * pb.inner * es;
  Backend& be = backend_for(big.device());
  if (into_dst)
    be.copy_2d(big_ptr, big_pitch, small.raw_data(), row_bytes, row_bytes, pb.outer);
  else
    be.copy_2d(small.raw_data(), row_bytes, big_ptr, big_pitch, row_bytes, pb.outer);
}
}  // namespace

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  check_defined(x, "slice", "x");
  const int64_t d = wrap_dim(dim, x.ndim(), "slice", x);
  const int64_t n = x.shape()[static_cast<size_t>(d)];
  SDLORA_CHECK(start >= 0 && start <= end && end <= n, "slice: [", start, ", ", end,
               ") out of range for dim ", d, " of ", x.describe());
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(d)] = end - start;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  window_copy(out, x, d, start, /*into_dst=*/false);
  return out;
}

void slice_set_(Tensor& dst, int64_t dim, int64_t start, const Tensor& src) {
  check_defined(dst, "slice_set_", "dst");
  check_defined(src, "slice_set_", "src");
  check_same_device(dst, src, "slice_set_");
  check_same_dtype(dst, src, "slice_set_");
  const int64_t d = wrap_dim(dim, dst.ndim(), "slice_set_", dst);
  SDLORA_CHECK(src.ndim() == dst.ndim(), "slice_set_: ", src.describe(), " and ", dst.describe(),
               " differ in rank");
  for (int64_t k = 0; k < dst.ndim(); ++k)
    SDLORA_CHECK(
        k == d || src.shape()[static_cast<size_t>(k)] == dst.shape()[static_cast<size_t>(k)],
        "slice_set_: ", src.describe(), " does not fit ", dst.describe(), " along dim ", d);
  const int64_t len = src.shape()[static_cast<size_t>(d)];
  SDLORA_CHECK(start >= 0 && start + len <= dst.shape()[static_cast<size_t>(d)], "slice_set_: [",
               start, ", ", start + len, ") out of range for dim ", d, " of ", dst.describe());
  window_copy(dst, src, d, start, /*into_dst=*/true);
}

Tensor slice_backward(const Tensor& dy, const Shape& shape, int64_t dim, int64_t start) {
  check_defined(dy, "slice_backward", "dy");
  Tensor dx = Tensor::empty(shape, dy.dtype(), dy.device());
  const int64_t d = wrap_dim(dim, dx.ndim(), "slice_backward", dx);
  slice_set_(dx, d, start, dy);  // checks that dy fits the window
  // The rest of each (outer) row: [0, start) and [start + len, n) along dim, zeroed in place.
  const AxisPlan p = axis_plan(shape, d);
  const int64_t es = static_cast<int64_t>(dtype_size(dx.dtype()));
  const int64_t len = dy.shape()[static_cast<size_t>(d)];
  const int64_t pitch = p.n * p.inner * es, before = start * p.inner * es;
  const int64_t after = (p.n - start - len) * p.inner * es;
  if (p.outer == 0 || pitch == 0) return dx;
  Backend& be = backend_for(dx.device());
  char* base = static_cast<char*>(dx.raw_data());
  if (before > 0) be.zero_2d(base, pitch, before, p.outer);
  if (after > 0) be.zero_2d(base + before + len * p.inner * es, pitch, after, p.outer);
  return dx;
}

namespace {
void check_index_range(const Tensor& index, int64_t n, const char* op) {
  // Checked on the host for CPU indices; CUDA kernels skip out-of-range entries (no sync here).
  if (!index.device().is_cpu()) return;
  for (int64_t i = 0; i < index.numel(); ++i) {
    const int64_t v =
        index.dtype() == DType::kInt32 ? index.data<int32_t>()[i] : index.data<int64_t>()[i];
    SDLORA_CHECK(v >= 0 && v < n, op, ": index ", v, " at position ", i, " out of range [0, ", n,
                 ")");
  }
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined(x, "index_select", "x");
  check_defined(index, "index_select", "index");
  check_same_device(x, index, "index_select");
  check_index(index, "index_select");
  SDLORA_CHECK(index.ndim() == 1, "index_select: index must be 1-D, got ", index.describe());
  const int64_t d = wrap_dim(dim, x.ndim(), "index_select", x);
  const AxisPlan plan = axis_plan(x.shape(), d);
  check_index_range(index, plan.n, "index_select");
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(d)] = index.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (out.numel() > 0) backend_for(x.device()).index_select(x, index, plan, out);
  return out;
}

void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  check_defined(dst, "index_add_", "dst");
  check_defined(src, "index_add_", "src");
  check_defined(index, "index_add_", "index");
  check_same_device(dst, src, "index_add_");
  check_same_device(dst, index, "index_add_");
  check_same_dtype(dst, src, "index_add_");
  check_index(index, "index_add_");
  Backend& be = float_backend(dst, "index_add_");
  SDLORA_CHECK(index.ndim() == 1, "index_add_: index must be 1-D, got ", index.describe());
  const int64_t d = wrap_dim(dim, dst.ndim(), "index_add_", dst);
  Shape want = dst.shape();
  want[static_cast<size_t>(d)] = index.numel();
  SDLORA_CHECK(src.shape() == want, "index_add_: src ", src.describe(), " should have shape ",
               shape_str(want), " for dst ", dst.describe(), " and ", index.numel(), " indices");
  const AxisPlan plan = axis_plan(dst.shape(), d);
  check_index_range(index, plan.n, "index_add_");
  if (src.numel() == 0) return;
  if (needs_cpu_upcast(dst)) {
    Tensor acc = cast(dst, DType::kFloat32);
    be.index_add(cast(src, DType::kFloat32), index, plan, acc);
    dst.copy_(cast(acc, dst.dtype()));
    return;
  }
  be.index_add(src, index, plan, dst);
}

}  // namespace sdlora
