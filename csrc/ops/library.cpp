// Schemas of the equiforce operators. Implementations register per dispatch key in the other files;
// fake kernels live in python/equiforce/ops/_fake.py.
#include "common.h"

namespace equiforce::ops {

int64_t normalization_code(c10::string_view normalization) {
  if (normalization == "component") return 0;
  if (normalization == "norm") return 1;
  if (normalization == "integral") return 2;
  TORCH_CHECK_VALUE(false, "equiforce: normalization must be 'component', 'norm' or 'integral', got '",
                    std::string(normalization), "'");
}

}  // namespace equiforce::ops

TORCH_LIBRARY(equiforce, m) {
  m.def("spherical_harmonics(Tensor vectors, int lmax, bool normalize, str normalization) -> Tensor");
  m.def(
      "spherical_harmonics_backward(Tensor grad_out, Tensor vectors, int lmax, bool normalize, str normalization) "
      "-> Tensor");
  m.def(
      "spherical_harmonics_double_backward(Tensor grad_grad_vectors, Tensor grad_out, Tensor vectors, int lmax, "
      "bool normalize, str normalization) -> (Tensor, Tensor)");
  m.def(
      "tensor_product(Tensor x1, Tensor x2, Tensor weight, Tensor descriptor, Tensor coefficients, int dim_out) "
      "-> Tensor");
  m.def(
      "tensor_product_backward(Tensor grad_out, Tensor x1, Tensor x2, Tensor weight, Tensor descriptor, "
      "Tensor coefficients) -> (Tensor, Tensor, Tensor)");
  m.def(
      "tensor_product_double_backward(Tensor? grad_grad_x1, Tensor? grad_grad_x2, Tensor? grad_grad_weight, "
      "Tensor grad_out, Tensor x1, Tensor x2, Tensor weight, Tensor descriptor, Tensor coefficients) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
}
