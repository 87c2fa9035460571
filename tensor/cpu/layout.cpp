// CPU layout kernels: permute, pitched 2-D byte copies (slice, cat), index_select and its
// adjoint index_add. Everything but index_add moves elements as opaque words, so any dtype works.
#include <cstring>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

// Calls f(U{}) with an unsigned word type of the element size of dtype.
template <typename F>
void dispatch_word(DType dtype, F&& f) {
  switch (dtype_size(dtype)) {
    case 1:
      f(uint8_t{});
      return;
    case 2:
      f(uint16_t{});
      return;
    case 4:
      f(uint32_t{});
      return;
    case 8:
      f(uint64_t{});
      return;
  }
  SDLORA_THROW("cpu: no word type for ", dtype_name(dtype));
}

}  // namespace

// out[i_0, .., i_{d-1}] = x[...] with x's dim perm[k] indexed by i_k
void CpuBackend::permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) {
  const int nd = static_cast<int>(perm.size());
  if (out.numel() == 0) return;
  if (nd == 0) {
    std::memcpy(out.raw_data(), x.raw_data(), x.nbytes());
    return;
  }
  // Stride in x of each out dim.
  int64_t x_stride[kMaxDims] = {}, out_shape[kMaxDims] = {};
  int64_t s = 1;
  std::vector<int64_t> contiguous(static_cast<size_t>(nd));
  for (int d = nd - 1; d >= 0; --d) {
    contiguous[static_cast<size_t>(d)] = s;
    s *= x.shape()[static_cast<size_t>(d)];
  }
  for (int k = 0; k < nd; ++k) {
    x_stride[k] = contiguous[static_cast<size_t>(perm[static_cast<size_t>(k)])];
    out_shape[k] = out.shape()[static_cast<size_t>(k)];
  }
  dispatch_word(x.dtype(), [&](auto tag) {
    using U = decltype(tag);
    const U* xp = static_cast<const U*>(x.raw_data());
    U* op = static_cast<U*>(out.raw_data());
    const int64_t cols = out_shape[nd - 1], col_stride = x_stride[nd - 1];
    const int64_t rows = out.numel() / cols;
    SDLORA_OMP_FOR(out.numel())
    for (int64_t r = 0; r < rows; ++r) {
      int64_t rest = r, offset = 0;
      for (int d = nd - 2; d >= 0; --d) {
        offset += (rest % out_shape[d]) * x_stride[d];
        rest /= out_shape[d];
      }
      U* orow = op + r * cols;
      for (int64_t j = 0; j < cols; ++j) orow[j] = xp[offset + j * col_stride];
    }
  });
}

void CpuBackend::copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch,
                         int64_t row_bytes, int64_t rows) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(d + r * dst_pitch, s + r * src_pitch, static_cast<size_t>(row_bytes));
}

void CpuBackend::zero_2d(void* dst, int64_t pitch, int64_t row_bytes, int64_t rows) {
  char* d = static_cast<char*>(dst);
  if (pitch == row_bytes) {  // one contiguous block
    std::memset(d, 0, static_cast<size_t>(row_bytes * rows));
    return;
  }
  for (int64_t r = 0; r < rows; ++r) std::memset(d + r * pitch, 0, static_cast<size_t>(row_bytes));
}

// out[o, i, :] = x[o, index[i], :]
void CpuBackend::index_select(const Tensor& x, const Tensor& index, const AxisPlan& plan,
                              Tensor& out) {
  const std::vector<int64_t> idx = index_values(index);
  const int64_t m = static_cast<int64_t>(idx.size());
  const size_t es = dtype_size(x.dtype());
  const size_t chunk = static_cast<size_t>(plan.inner) * es;
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  SDLORA_OMP_FOR(out.numel())
  for (int64_t o = 0; o < plan.outer; ++o)
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(op + static_cast<size_t>(o * m + i) * chunk,
                  xp + static_cast<size_t>(o * plan.n + idx[static_cast<size_t>(i)]) * chunk,
                  chunk);
}

// dst[o, index[i], :] += src[o, i, :]; rows sharing an index accumulate in index order.
void CpuBackend::index_add(const Tensor& src, const Tensor& index, const AxisPlan& plan,
                           Tensor& dst) {
  const std::vector<int64_t> idx = index_values(index);
  const int64_t m = static_cast<int64_t>(idx.size());
  dispatch_float(dst.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    const T* sp = src.data<T>();
    T* dp = dst.data<T>();
    const int64_t inner = plan.inner;
    SDLORA_OMP_FOR(src.numel())
    for (int64_t o = 0; o < plan.outer; ++o)  // each o owns its own slab of dst
      for (int64_t i = 0; i < m; ++i) {
        const T* srow = sp + (o * m + i) * inner;
        T* drow = dp + (o * plan.n + idx[static_cast<size_t>(i)]) * inner;
        for (int64_t j = 0; j < inner; ++j) drow[j] += srow[j];
      }
  });
}

}  // namespace sdlora::cpu
