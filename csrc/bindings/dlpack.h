// DLPack for equiforce._C: arrays in from any producer (`__dlpack__`: CuPy, JAX, torch, NumPy) and
// results out as an object with `__dlpack__`/`__dlpack_device__` that consumers import
// (`cupy.from_dlpack`, `torch.from_dlpack`, `np.from_dlpack`). The structs are the DLPack ABI
// (v0.8, the "dltensor" capsule every framework speaks), declared here from the specification.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace equiforce::dlpack {

namespace py = pybind11;

enum DeviceType : int32_t { kCPU = 1, kCUDA = 2, kCUDAHost = 3, kCUDAManaged = 13 };
enum TypeCode : uint8_t { kInt = 0, kUInt = 1, kFloat = 2 };

struct Device {
  int32_t device_type, device_id;
};
struct DataType {
  uint8_t code, bits;
  uint16_t lanes;
};
struct Tensor {
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;  // null: row-major contiguous
  uint64_t byte_offset;
};
struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor*);
};

// A borrowed input: the producer's tensor, released (deleter) when this goes away.
class Input {
 public:
  // `stream`: what the consumer asks the producer to synchronise with (the DLPack protocol; 1 is
  // CUDA's legacy default stream, which the launchers use).
  explicit Input(const py::object& producer) {
    py::object capsule;
    const py::tuple device = producer.attr("__dlpack_device__")();
    const int device_type = device[0].cast<int>();
    capsule = device_type == kCUDA ? producer.attr("__dlpack__")(py::arg("stream") = 1) : producer.attr("__dlpack__")();
    PyObject* raw = capsule.ptr();
    if (!PyCapsule_IsValid(raw, "dltensor"))
      throw std::invalid_argument("equiforce._C: __dlpack__ did not return a 'dltensor' capsule (already consumed?)");
    managed_ = static_cast<ManagedTensor*>(PyCapsule_GetPointer(raw, "dltensor"));
    PyCapsule_SetName(raw, "used_dltensor");  // ours now: the producer's capsule destructor leaves it
  }
  ~Input() {
    if (managed_ && managed_->deleter) managed_->deleter(managed_);
  }
  Input(const Input&) = delete;

  const Tensor& tensor() const { return managed_->dl_tensor; }
  bool on_cuda() const { return tensor().device.device_type == kCUDA || tensor().device.device_type == kCUDAManaged; }
  bool is_float(int bits) const {
    return tensor().dtype.code == kFloat && tensor().dtype.bits == bits && tensor().dtype.lanes == 1;
  }
  int64_t size(int k) const { return tensor().shape[k]; }
  int ndim() const { return tensor().ndim; }
  // Throws unless row-major contiguous.
  void require_contiguous(const char* what) const {
    const Tensor& t = tensor();
    if (!t.strides) return;
    int64_t expected = 1;
    for (int k = t.ndim - 1; k >= 0; --k) {
      if (t.shape[k] != 1 && t.strides[k] != expected)
        throw std::invalid_argument(std::string("equiforce._C: ") + what +
                                    " must be contiguous (row-major); make a contiguous copy first");
      expected *= t.shape[k];
    }
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(static_cast<const char*>(tensor().data) + tensor().byte_offset);
  }

 private:
  ManagedTensor* managed_ = nullptr;
};

// An owned output: memory from `allocate`, freed by `release`, exported once through __dlpack__.
struct OutputState {
  ManagedTensor managed{};
  std::vector<int64_t> shape;
  std::function<void(void*)> release;
  bool exported = false;
};

inline void delete_output(ManagedTensor* self) {
  auto* state = static_cast<OutputState*>(self->manager_ctx);
  if (state->release) state->release(self->dl_tensor.data);
  delete state;
}

class Output {
 public:
  Output(void* data, Device device, DataType dtype, std::vector<int64_t> shape, std::function<void(void*)> release)
      : state_(new OutputState) {
    state_->shape = std::move(shape);
    state_->release = std::move(release);
    Tensor& t = state_->managed.dl_tensor;
    t.data = data;
    t.device = device;
    t.ndim = static_cast<int32_t>(state_->shape.size());
    t.dtype = dtype;
    t.shape = state_->shape.data();
    t.strides = nullptr;
    t.byte_offset = 0;
    state_->managed.manager_ctx = state_;
    state_->managed.deleter = delete_output;
  }
  ~Output() {
    if (state_ && !state_->exported) delete_output(&state_->managed);
  }
  Output(const Output&) = delete;
  Output(Output&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }

  py::capsule dlpack(const py::object& /*stream*/) {
    if (!state_ || state_->exported)
      throw std::runtime_error("equiforce._C: this result was already taken with from_dlpack; it can be taken once");
    state_->exported = true;
    // an unconsumed capsule frees the memory when it is collected
    return py::capsule(&state_->managed, "dltensor", [](PyObject* capsule) {
      if (PyCapsule_IsValid(capsule, "dltensor")) {
        auto* m = static_cast<ManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
        if (m && m->deleter) m->deleter(m);
      }
    });
  }
  py::tuple device() const {
    return py::make_tuple(state_->managed.dl_tensor.device.device_type, state_->managed.dl_tensor.device.device_id);
  }
  std::vector<int64_t> shape() const { return state_->shape; }
  void* data() const { return state_->managed.dl_tensor.data; }

 private:
  OutputState* state_;
};

}  // namespace equiforce::dlpack
