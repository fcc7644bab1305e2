// equiforce._C: the kernels for callers without torch. NumPy arrays (CPU), or any array that speaks
// DLPack (`__dlpack__`): CPU ones run the CPU kernels, CUDA ones (CuPy, JAX, torch) the CUDA kernels
// when the module was built with them, and the result comes back as an object that
// `cupy.from_dlpack` / `torch.from_dlpack` import without a copy. No torch headers here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "../cpu/descriptor.h"
#include "../cpu/parallel.h"
#include "../cpu/spherical_harmonics_cpu.h"
#include "../cpu/tensor_product_cpu.h"
#include "../kernels/sh_options.h"
#include "dlpack.h"
#ifdef EQUIFORCE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "../cuda/launchers.h"
#endif

namespace py = pybind11;
using namespace equiforce;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

bool is_float32(const py::array& a) { return a.dtype().is(py::dtype::of<float>()); }

template <typename T>
py::array sh_impl(const py::array& vectors_in, int64_t lmax, bool normalize, int64_t norm) {
  const auto vectors = CArray<T>::ensure(vectors_in);
  if (!vectors || vectors.ndim() != 2 || vectors.shape(1) != 3)
    throw std::invalid_argument("spherical_harmonics: vectors must be a float array of shape [N, 3]");
  const int64_t n = vectors.shape(0);
  CArray<T> out({n, (lmax + 1) * (lmax + 1)});
  const T* r = vectors.data();
  T* y = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::sh_forward_cpu<T>(lmax, normalize, norm, n, r, y, cpu::OpenMPParallelFor{});
  }
  return out;
}

py::array numpy_spherical_harmonics(const py::array& vectors, int64_t lmax, bool normalize, int64_t norm) {
  kernels::sh_check_arguments(lmax, norm);
  return is_float32(vectors) ? sh_impl<float>(vectors, lmax, normalize, norm)
                             : sh_impl<double>(vectors, lmax, normalize, norm);
}

template <typename T>
py::array tp_impl(const py::array& x1_in, const py::array& x2_in, const std::optional<py::array>& weight_in,
                  const CArray<int64_t>& ints, const CArray<double>& floats) {
  const cpu::HostDescriptor<T> hd(ints.data(), ints.size(), floats.data(), floats.size());
  const auto& d = hd.view;
  const auto x1 = CArray<T>::ensure(x1_in);
  const auto x2 = CArray<T>::ensure(x2_in);
  if (!x1 || !x2 || x1.ndim() != 2 || x2.ndim() != 2 || x1.shape(1) != d.dim1 || x2.shape(1) != d.dim2 ||
      x1.shape(0) != x2.shape(0))
    throw std::invalid_argument("tensor_product: x1 and x2 must have shapes [B, " + std::to_string(d.dim1) + "] and [B, " +
                                std::to_string(d.dim2) + "]");
  const int64_t batch = x1.shape(0);
  CArray<T> weight;
  bool per_sample = false;
  if (d.weight_numel > 0) {
    if (!weight_in) throw std::invalid_argument("tensor_product: this descriptor needs weights");
    weight = CArray<T>::ensure(*weight_in);
    if (weight && weight.ndim() == 2 && weight.shape(0) == batch && weight.shape(1) == d.weight_numel)
      per_sample = true;
    else if (!(weight && weight.ndim() == 1 && weight.shape(0) == d.weight_numel))
      throw std::invalid_argument("tensor_product: weight must have shape [" + std::to_string(d.weight_numel) +
                                  "] or [B, " + std::to_string(d.weight_numel) + "]");
  }
  CArray<T> out({batch, d.dim_out});
  const T* w = d.weight_numel > 0 ? weight.data() : nullptr;
  const T *a = x1.data(), *b = x2.data();
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::tp_forward_cpu<T>(d, batch, a, b, w, per_sample, o, cpu::OpenMPParallelFor{});
  }
  return out;
}

py::array numpy_tensor_product(const py::array& x1, const py::array& x2, const std::optional<py::array>& weight,
                               const CArray<int64_t>& ints, const CArray<double>& floats) {
  return is_float32(x1) ? tp_impl<float>(x1, x2, weight, ints, floats) : tp_impl<double>(x1, x2, weight, ints, floats);
}

// ---- DLPack ----

bool is_dlpack_producer(const py::object& o) {
  return !py::isinstance<py::array>(o) && py::hasattr(o, "__dlpack__") && py::hasattr(o, "__dlpack_device__");
}

bool dlpack_on_cuda(const py::object& o) {
  const py::tuple device = o.attr("__dlpack_device__")();
  const int type = device[0].cast<int>();
  return type == dlpack::kCUDA || type == dlpack::kCUDAManaged;
}

py::object as_numpy(const py::object& o) { return py::module_::import("numpy").attr("from_dlpack")(o); }

#ifdef EQUIFORCE_WITH_CUDA
void cuda_require(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("equiforce._C: ") + what + ": " + cudaGetErrorString(err));
}

template <typename T>
dlpack::Output cuda_output(int device, std::vector<int64_t> shape) {
  int64_t count = 1;
  for (int64_t s : shape) count *= s;
  void* data = nullptr;
  cuda_require(cudaMalloc(&data, std::max<int64_t>(count, 1) * sizeof(T)), "cudaMalloc");
  return dlpack::Output(data, {dlpack::kCUDA, device}, {dlpack::kFloat, static_cast<uint8_t>(8 * sizeof(T)), 1},
                        std::move(shape), [](void* p) { cudaFree(p); });
}

template <typename T>
dlpack::Output sh_cuda(const dlpack::Input& v, int64_t lmax, bool normalize, int64_t norm) {
  const int device = v.tensor().device.device_id;
  cuda_require(cudaSetDevice(device), "cudaSetDevice");
  auto out = cuda_output<T>(device, {v.size(0), (lmax + 1) * (lmax + 1)});
  cuda::sh_forward<T>(lmax, normalize, norm, v.size(0), v.data<T>(), static_cast<T*>(out.data()), nullptr);
  cuda::synchronize(nullptr);
  return out;
}
#endif

py::object dlpack_spherical_harmonics(const py::object& vectors, int64_t lmax, bool normalize, int64_t norm) {
  if (!dlpack_on_cuda(vectors))
    return numpy_spherical_harmonics(as_numpy(vectors), lmax, normalize, norm);
  const dlpack::Input v(vectors);
  if (v.ndim() != 2 || v.size(1) != 3 || !(v.is_float(32) || v.is_float(64)))
    throw std::invalid_argument("spherical_harmonics: vectors must be a float32 or float64 array of shape [N, 3]");
  v.require_contiguous("vectors");
#ifdef EQUIFORCE_WITH_CUDA
  return py::cast(v.is_float(32) ? sh_cuda<float>(v, lmax, normalize, norm) : sh_cuda<double>(v, lmax, normalize, norm));
#else
  throw std::runtime_error("equiforce._C was built without CUDA: rebuild on a machine with nvcc and a CUDA build of "
                           "torch (EQUIFORCE_CUDA=ON, see the README), or pass CPU arrays");
#endif
}

#ifdef EQUIFORCE_WITH_CUDA
template <typename T>
dlpack::Output tp_cuda(const dlpack::Input& x1, const dlpack::Input& x2, const dlpack::Input* weight,
                       const CArray<int64_t>& ints, const CArray<double>& floats) {
  const cpu::HostDescriptor<T> hd(ints.data(), ints.size(), floats.data(), floats.size());
  const auto& d = hd.view;
  for (const auto* x : {&x1, &x2}) {
    if (!x->is_float(8 * sizeof(T)) || x->ndim() != 2) throw std::invalid_argument("tensor_product: x1 and x2 must "
                                                                                    "be 2-D arrays of one float dtype");
    x->require_contiguous("x1 and x2");
  }
  if (x1.size(1) != d.dim1 || x2.size(1) != d.dim2 || x1.size(0) != x2.size(0) ||
      x2.tensor().device.device_id != x1.tensor().device.device_id)
    throw std::invalid_argument("tensor_product: x1 and x2 must have shapes [B, " + std::to_string(d.dim1) + "] and [B, " +
                                std::to_string(d.dim2) + "] on one GPU");
  const int64_t batch = x1.size(0);
  bool per_sample = false;
  const T* w = nullptr;
  if (d.weight_numel > 0) {
    if (!weight || !weight->on_cuda() || !weight->is_float(8 * sizeof(T)))
      throw std::invalid_argument("tensor_product: this descriptor needs weights on the GPU, of x1's dtype");
    weight->require_contiguous("weight");
    per_sample = weight->ndim() == 2 && weight->size(0) == batch && weight->size(1) == d.weight_numel;
    if (!per_sample && !(weight->ndim() == 1 && weight->size(0) == d.weight_numel))
      throw std::invalid_argument("tensor_product: weight must have shape [" + std::to_string(d.weight_numel) +
                                  "] or [B, " + std::to_string(d.weight_numel) + "]");
    w = weight->data<T>();
  }
  const int device = x1.tensor().device.device_id;
  cuda_require(cudaSetDevice(device), "cudaSetDevice");
  const auto bytes = hd.pack();
  void* table = nullptr;
  cuda_require(cudaMalloc(&table, std::max<size_t>(bytes.size(), 8)), "cudaMalloc");
  cuda_require(cudaMemcpy(table, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
  auto out = cuda_output<T>(device, {batch, d.dim_out});
  try {
    cuda::tp_forward<T>(hd.view_at(table), d, batch, x1.data<T>(), x2.data<T>(), w, per_sample,
                        static_cast<T*>(out.data()), nullptr);
    cuda::synchronize(nullptr);
  } catch (...) {
    cudaFree(table);
    throw;
  }
  cudaFree(table);
  return out;
}
#endif

py::object dlpack_tensor_product(const py::object& x1, const py::object& x2, const std::optional<py::object>& weight,
                                 const CArray<int64_t>& ints, const CArray<double>& floats) {
  if (!dlpack_on_cuda(x1)) {
    std::optional<py::array> w;
    if (weight && !weight->is_none()) w = is_dlpack_producer(*weight) ? as_numpy(*weight) : py::array(*weight);
    return numpy_tensor_product(as_numpy(x1), is_dlpack_producer(x2) ? as_numpy(x2) : py::array(x2), w, ints, floats);
  }
  const dlpack::Input a(x1), b(x2);
  std::optional<dlpack::Input> w;
  if (weight && !weight->is_none()) w.emplace(*weight);
#ifdef EQUIFORCE_WITH_CUDA
  const dlpack::Input* wp = w ? &*w : nullptr;
  return py::cast(a.is_float(32) ? tp_cuda<float>(a, b, wp, ints, floats) : tp_cuda<double>(a, b, wp, ints, floats));
#else
  throw std::runtime_error("equiforce._C was built without CUDA: rebuild on a machine with nvcc and a CUDA build of "
                           "torch (EQUIFORCE_CUDA=ON, see the README), or pass CPU arrays");
#endif
}

py::object spherical_harmonics(const py::object& vectors, int64_t lmax, bool normalize,
                               const std::string& normalization) {
  const int64_t norm = kernels::sh_normalization_code(normalization);
  kernels::sh_check_arguments(lmax, norm);
  if (is_dlpack_producer(vectors)) return dlpack_spherical_harmonics(vectors, lmax, normalize, norm);
  return numpy_spherical_harmonics(py::array(vectors), lmax, normalize, norm);
}

py::object tensor_product(const py::object& x1, const py::object& x2, const std::optional<py::object>& weight,
                          const CArray<int64_t>& ints, const CArray<double>& floats) {
  if (is_dlpack_producer(x1)) return dlpack_tensor_product(x1, x2, weight, ints, floats);
  std::optional<py::array> w;
  if (weight && !weight->is_none()) w = py::array(*weight);
  return numpy_tensor_product(py::array(x1), py::array(x2), w, ints, floats);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "equiforce kernels on NumPy arrays (CPU; float32 or float64, other dtypes become float64) and on any "
            "DLPack array (CPU, or CUDA when built with CUDA: the result is a DLPackArray for from_dlpack)";
  m.def("spherical_harmonics", &spherical_harmonics, py::arg("vectors"), py::arg("lmax"), py::arg("normalize"),
        py::arg("normalization") = "integral",
        "vectors[N, 3] -> Y[N, (lmax+1)^2], e3nn's real spherical harmonics of every degree 0..lmax");
  m.def("tensor_product", &tensor_product, py::arg("x1"), py::arg("x2"), py::arg("weight"), py::arg("descriptor"),
        py::arg("coefficients"),
        "x1[B, d1], x2[B, d2], weight[numel] or [B, numel] or None -> out[B, d_out]; descriptor arrays from "
        "TensorProductDescriptor.to_arrays()");
  py::class_<dlpack::Output>(m, "DLPackArray",
                             "A result on the GPU: import it with cupy.from_dlpack, torch.from_dlpack or "
                             "jax.dlpack.from_dlpack (once; no copy)")
      .def(  // max_version, dl_device, copy (DLPack 1.0 keywords) are accepted; the capsule is the classic one
          "__dlpack__", [](dlpack::Output& o, const py::object& stream, const py::kwargs&) { return o.dlpack(stream); },
          py::arg("stream") = py::none())
      .def("__dlpack_device__", &dlpack::Output::device)
      .def_property_readonly("shape", &dlpack::Output::shape);
  m.def("build_info", [] {
    py::dict info;
    info["version"] = EQUIFORCE_VERSION;
#ifdef EQUIFORCE_WITH_CUDA
    info["cuda"] = true;
#else
    info["cuda"] = false;
#endif
#ifdef _OPENMP
    info["openmp"] = true;
#else
    info["openmp"] = false;
#endif
    info["openmp_threads"] = cpu::max_threads();
    info["sh_lmax_supported"] = kernels::kShLmaxSupported;
    return info;
  });
}
