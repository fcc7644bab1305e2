// equiforce::spherical_harmonics: CPU and CUDA kernels and the autograd formula
// (forward -> spherical_harmonics_backward -> spherical_harmonics_double_backward, each an op).
#include "../cpu/spherical_harmonics_cpu.h"
#include "common.h"
#include "autograd.h"
#include "cuda_support.h"

namespace equiforce::ops {
namespace {

at::Tensor checked_vectors(const at::Tensor& vectors, const char* op) {
  check_float(vectors, op, "vectors");
  TORCH_CHECK_VALUE(vectors.dim() == 2 && vectors.size(1) == 3, "equiforce::", op,
                    ": vectors must have shape [N, 3], got ", vectors.sizes(), "; reshape with .reshape(-1, 3)");
  return vectors.contiguous();
}

void check_lmax(int64_t lmax) {
  translate_errors([&] { kernels::sh_check_lmax(lmax); });
}

at::Tensor checked_grad(const at::Tensor& grad, const at::Tensor& vectors, int64_t dim, const char* op,
                        const char* name) {
  check_same_dtype(grad, vectors, op, name, "vectors");
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == vectors.size(0) && grad.size(1) == dim, "equiforce::", op,
                    ": ", name, " must have shape [", vectors.size(0), ", ", dim, "], got ", grad.sizes());
  return grad.contiguous();
}

at::Tensor sh_forward(const at::Tensor& vectors_in, int64_t lmax, bool normalize, c10::string_view normalization) {
  const auto vectors = checked_vectors(vectors_in, "spherical_harmonics");
  check_lmax(lmax);
  const int64_t norm = normalization_code(normalization);
  auto out = at::empty({vectors.size(0), (lmax + 1) * (lmax + 1)}, vectors.options());
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "equiforce_sh_forward", [&] {
    translate_errors([&] {
      if (vectors.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
        const c10::cuda::CUDAGuard guard(vectors.device());
        cuda::sh_forward<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                   out.data_ptr<scalar_t>(), cuda_stream(vectors));
#endif
        return;
      }
      cpu::sh_forward_cpu<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                    out.data_ptr<scalar_t>(), TorchParallelFor{});
    });
  });
  return out;
}

at::Tensor sh_backward(const at::Tensor& grad_out_in, const at::Tensor& vectors_in, int64_t lmax, bool normalize,
                       c10::string_view normalization) {
  const char* op = "spherical_harmonics_backward";
  const auto vectors = checked_vectors(vectors_in, op);
  check_lmax(lmax);
  const auto grad_out = checked_grad(grad_out_in, vectors, (lmax + 1) * (lmax + 1), op, "grad_out");
  const int64_t norm = normalization_code(normalization);
  auto grad_vectors = at::empty_like(vectors);
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "equiforce_sh_backward", [&] {
    translate_errors([&] {
      if (vectors.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
        const c10::cuda::CUDAGuard guard(vectors.device());
        cuda::sh_backward<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                    grad_out.data_ptr<scalar_t>(), grad_vectors.data_ptr<scalar_t>(),
                                    cuda_stream(vectors));
#endif
        return;
      }
      cpu::sh_backward_cpu<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                     grad_out.data_ptr<scalar_t>(), grad_vectors.data_ptr<scalar_t>(),
                                     TorchParallelFor{});
    });
  });
  return grad_vectors;
}

std::tuple<at::Tensor, at::Tensor> sh_double_backward(const at::Tensor& ggv_in, const at::Tensor& grad_out_in,
                                                      const at::Tensor& vectors_in, int64_t lmax, bool normalize,
                                                      c10::string_view normalization) {
  const char* op = "spherical_harmonics_double_backward";
  const auto vectors = checked_vectors(vectors_in, op);
  check_lmax(lmax);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  const auto grad_out = checked_grad(grad_out_in, vectors, dim, op, "grad_out");
  const auto ggv = checked_grad(ggv_in, vectors, 3, op, "grad_grad_vectors");
  const int64_t norm = normalization_code(normalization);
  auto grad_grad_out = at::empty_like(grad_out);
  auto grad_vectors = at::empty_like(vectors);
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "equiforce_sh_double_backward", [&] {
    translate_errors([&] {
      if (vectors.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
        const c10::cuda::CUDAGuard guard(vectors.device());
        cuda::sh_double_backward<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                           grad_out.data_ptr<scalar_t>(), ggv.data_ptr<scalar_t>(),
                                           grad_grad_out.data_ptr<scalar_t>(), grad_vectors.data_ptr<scalar_t>(),
                                           cuda_stream(vectors));
#endif
        return;
      }
      cpu::sh_double_backward_cpu<scalar_t>(lmax, normalize, norm, vectors.size(0), vectors.data_ptr<scalar_t>(),
                                            grad_out.data_ptr<scalar_t>(), ggv.data_ptr<scalar_t>(),
                                            grad_grad_out.data_ptr<scalar_t>(), grad_vectors.data_ptr<scalar_t>(),
                                            TorchParallelFor{});
    });
  });
  return {grad_grad_out, grad_vectors};
}

struct ShSpec {
  static constexpr const char* kForward = "equiforce::spherical_harmonics";
  static constexpr const char* kBackward = "equiforce::spherical_harmonics_backward";
  static constexpr const char* kDoubleBackward = "equiforce::spherical_harmonics_double_backward";
  static constexpr size_t kDifferentiable = 1;                        // vectors
  static constexpr std::array<size_t, 4> kBackwardArgs = {0, 1, 2, 3};  // vectors, lmax, normalize, normalization
};

void register_kernels(torch::Library& m) {
  m.impl("spherical_harmonics", &sh_forward);
  m.impl("spherical_harmonics_backward", &sh_backward);
  m.impl("spherical_harmonics_double_backward", &sh_double_backward);
}

}  // namespace
}  // namespace equiforce::ops

EQUIFORCE_DEVICE_KERNELS(equiforce::ops::register_kernels)

TORCH_LIBRARY_IMPL(equiforce, Autograd, m) { equiforce::ops::autograd::register_autograd<equiforce::ops::ShSpec>(m); }
