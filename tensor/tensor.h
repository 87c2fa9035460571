// Tensor: a handle to reference-counted storage plus shape, dtype and device. Tensors are always
// contiguous row-major; the two views (reshape, narrowing the leading dimension) keep that true
// and share storage. Everything else that changes layout (permute, slice, cat) materialises.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"

namespace sdlora {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

// Memory owned by tensors; freed (returned to its pool) when the last tensor lets go.
class Storage {
 public:
  Storage(size_t bytes, Device device, bool pinned);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Uninitialised memory. pinned = page-locked host memory for fast, asynchronous copies.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu(),
                      bool pinned = false);
  static Tensor zeros(const Shape& shape, DType dtype = DType::kFloat32,
                      Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::kFloat32,
                     Device device = Device::cpu());
  // Copies host values into a new tensor of T's dtype on `device`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = Device::cpu());
  template <typename T>
  static Tensor scalar(T value, Device device = Device::cpu()) {
    return from_vector<T>({value}, {}, device);
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const;
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool is_pinned() const { return storage_ && storage_->pinned(); }
  // "float32[2, 3] on cpu", for error messages.
  std::string describe() const;

  void* raw_data() const;
  // Typed pointer; throws if T does not match the dtype. Device pointers for CUDA tensors.
  template <typename T>
  T* data() const {
    SDLORA_CHECK(DTypeOf<T>::value == dtype_, "tensor is ", dtype_name(dtype_), ", accessed as ",
                 dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(raw_data());
  }

  // Views sharing storage. reshape accepts one -1.
  Tensor reshape(const Shape& shape) const;
  // Rows [start, start + length) of the leading dimension.
  Tensor narrow(int64_t start, int64_t length) const;
  Tensor flatten_to_2d() const;  // (..., C) -> (rows, C)

  // Copies. to() with the same device returns *this (no copy); non_blocking applies to
  // pinned-host <-> device copies, which then complete in stream order.
  Tensor to(Device device, bool non_blocking = false) const;
  Tensor to(DType dtype) const;  // cast; same dtype returns *this
  Tensor clone() const;
  // Copies src (same shape and dtype, any device) into this tensor's memory.
  void copy_(const Tensor& src, bool non_blocking = false);

  // Host values (copies from the device when needed).
  template <typename T>
  std::vector<T> to_vector() const;
  // The single value of a one-element tensor, as double.
  double item() const;

  // Identity of the storage, for tests of views.
  const Storage* storage() const { return storage_.get(); }

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::kFloat32;
};

// Raw byte copies between any two devices; the CUDA side runs on the device's compute stream.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes,
                bool non_blocking);

// Waits for everything queued on the device (no-op on the CPU).
void synchronize(Device device);

}  // namespace sdlora
