// equiforce::spherical_harmonics: CPU and CUDA kernels and the autograd formula
// (forward -> spherical_harmonics_backward -> spherical_harmonics_double_backward, each an op).
#include "../cpu/spherical_harmonics_cpu.h"
#include "common.h"
#include "cuda_support.h"

namespace equiforce::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor checked_vectors(const at::Tensor& vectors, const char* op) {
  check_float(vectors, op, "vectors");
  TORCH_CHECK_VALUE(vectors.dim() == 2 && vectors.size(1) == 3, "equiforce::", op,
                    ": vectors must have shape [N, 3], got ", vectors.sizes(), "; reshape with .reshape(-1, 3)");
  return vectors.contiguous();
}

void check_lmax(int64_t lmax, const char* op) {
  TORCH_CHECK_VALUE(0 <= lmax && lmax <= kernels::kShLmaxSupported, "equiforce::", op,
                    ": lmax must be between 0 and ", kernels::kShLmaxSupported, ", got ", lmax);
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
  check_lmax(lmax, "spherical_harmonics");
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
  check_lmax(lmax, op);
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
  check_lmax(lmax, op);
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

// ---- autograd: each level calls the next op through the dispatcher ----

at::Tensor call_sh(const at::Tensor& v, int64_t lmax, bool normalize, c10::string_view norm) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::spherical_harmonics", "")
                       .typed<at::Tensor(const at::Tensor&, int64_t, bool, c10::string_view)>();
  return op.call(v, lmax, normalize, norm);
}

at::Tensor call_sh_backward(const at::Tensor& g, const at::Tensor& v, int64_t lmax, bool normalize,
                            c10::string_view norm) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::spherical_harmonics_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, bool, c10::string_view)>();
  return op.call(g, v, lmax, normalize, norm);
}

std::tuple<at::Tensor, at::Tensor> call_sh_double_backward(const at::Tensor& gg, const at::Tensor& g,
                                                           const at::Tensor& v, int64_t lmax, bool normalize,
                                                           c10::string_view norm) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::spherical_harmonics_double_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, int64_t, bool, c10::string_view)>();
  return op.call(gg, g, v, lmax, normalize, norm);
}

void save_config(AutogradContext* ctx, int64_t lmax, bool normalize, c10::string_view norm) {
  ctx->saved_data["lmax"] = lmax;
  ctx->saved_data["normalize"] = normalize;
  ctx->saved_data["normalization"] = std::string(norm);
}

class ShBackwardFunction : public torch::autograd::Function<ShBackwardFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_out, const at::Tensor& vectors, int64_t lmax,
                            bool normalize, c10::string_view norm) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({grad_out, vectors});
    save_config(ctx, lmax, normalize, norm);
    return call_sh_backward(grad_out, vectors, lmax, normalize, norm);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto norm = ctx->saved_data["normalization"].toStringRef();
    auto [grad_grad_out, grad_vectors] =
        call_sh_double_backward(grads[0], saved[0], saved[1], ctx->saved_data["lmax"].toInt(),
                                ctx->saved_data["normalize"].toBool(), norm);
    return {grad_grad_out, grad_vectors, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class ShFunction : public torch::autograd::Function<ShFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& vectors, int64_t lmax, bool normalize,
                            c10::string_view norm) {
    at::Tensor out;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      out = call_sh(vectors, lmax, normalize, norm);
    }
    ctx->save_for_backward({vectors});
    save_config(ctx, lmax, normalize, norm);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto norm = ctx->saved_data["normalization"].toStringRef();
    auto grad = ShBackwardFunction::apply(grads[0], saved[0], ctx->saved_data["lmax"].toInt(),
                                          ctx->saved_data["normalize"].toBool(), norm);
    return {grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor sh_autograd(const at::Tensor& vectors, int64_t lmax, bool normalize, c10::string_view norm) {
  return ShFunction::apply(vectors, lmax, normalize, norm);
}

at::Tensor sh_backward_autograd(const at::Tensor& grad_out, const at::Tensor& vectors, int64_t lmax, bool normalize,
                                c10::string_view norm) {
  return ShBackwardFunction::apply(grad_out, vectors, lmax, normalize, norm);
}

}  // namespace
}  // namespace equiforce::ops

TORCH_LIBRARY_IMPL(equiforce, CPU, m) {
  m.impl("spherical_harmonics", &equiforce::ops::sh_forward);
  m.impl("spherical_harmonics_backward", &equiforce::ops::sh_backward);
  m.impl("spherical_harmonics_double_backward", &equiforce::ops::sh_double_backward);
}

#ifdef EQUIFORCE_WITH_CUDA
TORCH_LIBRARY_IMPL(equiforce, CUDA, m) {
  m.impl("spherical_harmonics", &equiforce::ops::sh_forward);
  m.impl("spherical_harmonics_backward", &equiforce::ops::sh_backward);
  m.impl("spherical_harmonics_double_backward", &equiforce::ops::sh_double_backward);
}
#endif

TORCH_LIBRARY_IMPL(equiforce, Autograd, m) {
  m.impl("spherical_harmonics", &equiforce::ops::sh_autograd);
  m.impl("spherical_harmonics_backward", &equiforce::ops::sh_backward_autograd);
}
