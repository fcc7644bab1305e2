// Schemas of the equiforce operators. Implementations register per dispatch key in the other files;
// fake kernels live in python/equiforce/ops/_fake.py.
#include "../kernels/sh_options.h"
#include "descriptor_args.h"

namespace equiforce::ops {

int64_t normalization_code(c10::string_view normalization) {
  return translate_errors(
      [&] { return kernels::sh_normalization_code(std::string_view(normalization.data(), normalization.size())); });
}

namespace {

at::Tensor make_weighted_paths_only(const at::Tensor& descriptor) {
  const c10::InferenceMode normal_tensor(false);  // it is kept and may be saved for backward later
  auto out = descriptor.contiguous().clone();
  TORCH_CHECK_VALUE(out.scalar_type() == at::kLong && out.numel() >= cpu::kDescriptorHeader,
                    "equiforce: malformed tensor-product descriptor");
  auto* p = out.data_ptr<int64_t>();
  const int64_t num_segs = p[1] + p[2] + p[3];
  TORCH_CHECK_VALUE(p[1] >= 0 && p[2] >= 0 && p[3] >= 0 && p[4] >= 0 &&
                        out.numel() >= cpu::kDescriptorHeader + 3 * num_segs + 8 * p[4],
                    "equiforce: malformed tensor-product descriptor");
  auto* ins = reinterpret_cast<kernels::TpInstruction*>(p + cpu::kDescriptorHeader + 3 * num_segs);
  for (int64_t n = 0; n < p[4]; ++n)
    if (!ins[n].has_weight) ins[n].nnz_end = ins[n].nnz_begin;
  return out;
}

}  // namespace

at::Tensor weighted_paths_only(const at::Tensor& descriptor) {
  static TensorKeyedCache<at::Tensor, 1> cache(kDescriptorCacheCapacity);
  return *cache.get({descriptor}, [](const std::array<at::Tensor, 1>& t) {
    return std::make_shared<const at::Tensor>(make_weighted_paths_only(t[0]));
  });
}

}  // namespace equiforce::ops

// Referenced by the runtime library so that linking it always loads (and so registers) the ops.
extern "C" __attribute__((visibility("default"))) const char* equiforce_ops_library_version() {
  return EQUIFORCE_VERSION;
}

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
  m.def(
      "conv(Tensor x, Tensor edge_attr, Tensor edge_weight, Tensor edge_src, Tensor edge_dst, SymInt num_nodes, "
      "Tensor descriptor, Tensor coefficients, int dim_out) -> Tensor");
  m.def(
      "conv_backward(Tensor grad_out, Tensor x, Tensor edge_attr, Tensor edge_weight, Tensor edge_src, "
      "Tensor edge_dst, Tensor descriptor, Tensor coefficients) -> (Tensor, Tensor, Tensor)");
  m.def(
      "conv_double_backward(Tensor? grad_grad_x, Tensor? grad_grad_edge_attr, Tensor? grad_grad_edge_weight, "
      "Tensor grad_out, Tensor x, Tensor edge_attr, Tensor edge_weight, Tensor edge_src, Tensor edge_dst, "
      "Tensor descriptor, Tensor coefficients) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff, bool self_interaction) "
      "-> (Tensor, Tensor, Tensor)");
}
