// Tensor construction, views, copies between devices.
#include "tensor/tensor.h"

#include <cstring>
#include <sstream>

#include "tensor/graph.h"
#include "tensor/ops.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

Storage::Storage(size_t bytes, Device device, bool pinned)
    : bytes_(bytes), device_(device), pinned_(pinned && device.is_cpu()) {
  data_ = allocate_bytes(device_, bytes_ == 0 ? 1 : bytes_, pinned_);
}

Storage::~Storage() { release_bytes(device_, data_, pinned_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, bool pinned) {
  for (int64_t d : shape) SDLORA_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device, pinned);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_(t, value);
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  SDLORA_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
               "from_vector: ", values.size(), " values for shape ", shape_str(shape));
  check_not_capturing("Tensor::from_vector (an upload of host values)");
  Tensor t = empty(shape, DTypeOf<T>::value, device);
  copy_bytes(t.raw_data(), device, values.data(), Device::cpu(), t.nbytes(), false);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = ndim();
  SDLORA_CHECK(d >= -n && d < n, "dimension ", d, " out of range for tensor ", describe());
  return shape_[static_cast<size_t>(d < 0 ? d + n : d)];
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " on " + device().str();
}

void* Tensor::raw_data() const {
  SDLORA_CHECK(defined(), "access to the data of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

Tensor Tensor::reshape(const Shape& shape) const {
  SDLORA_CHECK(defined(), "reshape of an undefined tensor");
  Shape out = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      SDLORA_CHECK(infer < 0, "reshape to ", shape_str(shape), ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      SDLORA_CHECK(out[i] >= 0, "reshape to ", shape_str(shape), ": negative dimension");
      known *= out[i];
    }
  }
  if (infer >= 0) {
    SDLORA_CHECK(known > 0 && numel_ % known == 0, "cannot reshape ", describe(), " to ",
                 shape_str(shape));
    out[static_cast<size_t>(infer)] = numel_ / known;
  }
  SDLORA_CHECK(shape_numel(out) == numel_, "cannot reshape ", describe(), " to ", shape_str(shape),
               ": ", numel_, " elements vs ", shape_numel(out));
  Tensor t = *this;
  t.shape_ = out;
  return t;
}

Tensor Tensor::narrow(int64_t start, int64_t length) const {
  SDLORA_CHECK(ndim() >= 1, "narrow needs at least one dimension, got ", describe());
  SDLORA_CHECK(start >= 0 && length >= 0 && start + length <= shape_[0], "narrow(", start, ", ",
               length, ") out of range for ", describe());
  Tensor t = *this;
  const int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  t.shape_[0] = length;
  t.numel_ = row * length;
  t.offset_ = offset_ + static_cast<size_t>(start * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::flatten_to_2d() const {
  SDLORA_CHECK(ndim() >= 1, "flatten_to_2d needs at least one dimension, got ", describe());
  return reshape({-1, shape_.back()});
}

void synchronize(Device device) {
  check_not_capturing("synchronize()");
#ifdef SDLORA_WITH_CUDA
  if (device.is_cuda()) cuda::synchronize(device.index);
#else
  (void)device;
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes,
                bool non_blocking) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() != src_device.is_cpu())
    check_not_capturing("a copy between host and device memory");
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef SDLORA_WITH_CUDA
  const Device gpu = dst_device.is_cuda() ? dst_device : src_device;
  cuda::set_device(gpu.index);
  cudaStream_t s = cuda::stream(gpu.index);
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    SDLORA_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, bytes, s));
  } else {
    SDLORA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
  }
  if (!non_blocking) SDLORA_CUDA_CHECK(cudaStreamSynchronize(s));
#else
  (void)non_blocking;
  SDLORA_THROW("copy between ", src_device.str(), " and ", dst_device.str(),
               ": this build has no CUDA backend");
#endif
}

Tensor Tensor::to(Device device, bool non_blocking) const {
  SDLORA_CHECK(defined(), "to(", device.str(), ") of an undefined tensor");
  if (device == this->device()) return *this;
  Tensor t = empty(shape_, dtype_, device, /*pinned=*/false);
  t.copy_(*this, non_blocking);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  SDLORA_CHECK(defined(), "to(", dtype_name(dtype), ") of an undefined tensor");
  if (dtype == dtype_) return *this;
  return cast(*this, dtype);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_(*this);
  return t;
}

void Tensor::copy_(const Tensor& src, bool non_blocking) {
  SDLORA_CHECK(defined() && src.defined(), "copy_ with an undefined tensor");
  SDLORA_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_: destination ", describe(),
               " and source ", src.describe(), " differ in shape or dtype");
  // A non-blocking copy is only safe (and only asynchronous) when the host side is pinned.
  const bool host_pinned =
      (device().is_cpu() && is_pinned()) || (src.device().is_cpu() && src.is_pinned());
  const bool device_only = device().is_cuda() && src.device().is_cuda();
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes(),
             non_blocking && (host_pinned || device_only));
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  SDLORA_CHECK(defined(), "to_vector of an undefined tensor");
  SDLORA_CHECK(DTypeOf<T>::value == dtype_, "to_vector: tensor is ", dtype_name(dtype_),
               ", read as ", dtype_name(DTypeOf<T>::value));
  check_not_capturing("to_vector() (a read back to the host)");
  std::vector<T> out(static_cast<size_t>(numel_));
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes(), false);
  return out;
}

double Tensor::item() const {
  SDLORA_CHECK(numel_ == 1, "item() needs a one-element tensor, got ", describe());
  check_not_capturing("item() (a read back to the host)");
  const Tensor host = to(Device::cpu());
  const void* p = host.raw_data();
  switch (dtype_) {
    case DType::kFloat32:
      return *static_cast<const float*>(p);
    case DType::kBFloat16:
      return static_cast<float>(*static_cast<const BFloat16*>(p));
    case DType::kFloat64:
      return *static_cast<const double*>(p);
    case DType::kInt32:
      return *static_cast<const int32_t*>(p);
    case DType::kInt64:
      return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::kUInt8:
      return *static_cast<const uint8_t*>(p);
  }
  SDLORA_THROW("item(): unknown dtype");
}

#define SDLORA_INSTANTIATE(T)                                                          \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&, Device); \
  template std::vector<T> Tensor::to_vector<T>() const;
SDLORA_INSTANTIATE(float)
SDLORA_INSTANTIATE(BFloat16)
SDLORA_INSTANTIATE(double)
SDLORA_INSTANTIATE(int32_t)
SDLORA_INSTANTIATE(int64_t)
SDLORA_INSTANTIATE(uint8_t)
#undef SDLORA_INSTANTIATE

}  // namespace sdlora
