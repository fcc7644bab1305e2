// equiforce._C: the CPU kernels on NumPy arrays, for callers without torch. No torch headers here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "../cpu/descriptor.h"
#include "../cpu/parallel.h"
#include "../cpu/spherical_harmonics_cpu.h"
#include "../cpu/tensor_product_cpu.h"

namespace py = pybind11;
using namespace equiforce;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

int64_t normalization_code(const std::string& name) {
  if (name == "component") return cpu::kComponent;
  if (name == "norm") return cpu::kNorm;
  if (name == "integral") return cpu::kIntegral;
  throw std::invalid_argument("normalization must be 'component', 'norm' or 'integral', got '" + name + "'");
}

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

py::array spherical_harmonics(const py::array& vectors, int64_t lmax, bool normalize, const std::string& normalization) {
  const int64_t norm = normalization_code(normalization);
  cpu::sh_check_arguments(lmax, norm);
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

py::array tensor_product(const py::array& x1, const py::array& x2, const std::optional<py::array>& weight,
                         const CArray<int64_t>& ints, const CArray<double>& floats) {
  return is_float32(x1) ? tp_impl<float>(x1, x2, weight, ints, floats) : tp_impl<double>(x1, x2, weight, ints, floats);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "equiforce CPU kernels on NumPy arrays (float32 or float64; other dtypes are converted to float64)";
  m.def("spherical_harmonics", &spherical_harmonics, py::arg("vectors"), py::arg("lmax"), py::arg("normalize"),
        py::arg("normalization") = "integral",
        "vectors[N, 3] -> Y[N, (lmax+1)^2], e3nn's real spherical harmonics of every degree 0..lmax");
  m.def("tensor_product", &tensor_product, py::arg("x1"), py::arg("x2"), py::arg("weight"), py::arg("descriptor"),
        py::arg("coefficients"),
        "x1[B, d1], x2[B, d2], weight[numel] or [B, numel] or None -> out[B, d_out]; descriptor arrays from "
        "TensorProductDescriptor.to_arrays()");
  m.def("build_info", [] {
    py::dict info;
    info["version"] = EQUIFORCE_VERSION;
    info["cuda"] = false;
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
