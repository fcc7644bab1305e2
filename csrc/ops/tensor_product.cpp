// equiforce::tensor_product: CPU kernels and the autograd formula
// (forward -> tensor_product_backward -> tensor_product_double_backward, each an op).
#include "../cpu/tensor_product_cpu.h"
#include "autograd.h"
#include "cuda_support.h"
#include "descriptor_args.h"

namespace equiforce::ops {
namespace {

// Checked inputs of one tensor-product call, made contiguous.
struct TpArgs {
  at::Tensor x1, x2, weight;
  bool per_sample_weights = false;
};

template <typename T>
TpArgs check_args(const kernels::TpDescriptor<T>& d, const at::Tensor& x1, const at::Tensor& x2,
                  const at::Tensor& weight, const char* op) {
  check_float(x1, op, "x1");
  check_same_dtype(x1, x2, op, "x1", "x2");
  check_same_device(x1, x2, op, "x1", "x2");
  TORCH_CHECK_VALUE(x1.dim() == 2 && x1.size(1) == d.dim1, "equiforce::", op, ": x1 must have shape [batch, ",
                    d.dim1, "] (irreps_in1.dim), got ", x1.sizes());
  TORCH_CHECK_VALUE(x2.dim() == 2 && x2.size(1) == d.dim2, "equiforce::", op, ": x2 must have shape [batch, ",
                    d.dim2, "] (irreps_in2.dim), got ", x2.sizes());
  TORCH_CHECK_VALUE(x1.size(0) == x2.size(0), "equiforce::", op, ": x1 and x2 have different batch sizes (",
                    x1.size(0), " and ", x2.size(0), "); broadcast them first");
  TpArgs args{x1.contiguous(), x2.contiguous(), weight};
  args.per_sample_weights = check_weight(weight, x1, d.weight_numel, x1.size(0), op, "sample");
  args.weight = weight.contiguous();
  return args;
}

at::Tensor tp_forward(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& weight,
                      const at::Tensor& descriptor, const at::Tensor& coefficients, int64_t dim_out) {
  const char* op = "tensor_product";
  check_float(x1, op, "x1");
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x1.scalar_type(), "equiforce_tp_forward", [&] {
    const auto cd = compiled_descriptor<scalar_t>(descriptor, coefficients, op);
    TORCH_CHECK_VALUE(dim_out == cd->host().dim_out, "equiforce::", op, ": dim_out=", dim_out,
                      " does not match the descriptor (", cd->host().dim_out, ")");
    const auto a = check_args(cd->host(), x1, x2, weight, op);
    out = at::empty({a.x1.size(0), dim_out}, a.x1.options());
    if (a.x1.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
      const c10::cuda::CUDAGuard guard(a.x1.device());
      translate_errors([&] {
        cuda::tp_forward<scalar_t>(cd->on_device(a.x1.device()), cd->host(), a.x1.size(0),
                                   a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                   data_or_null<scalar_t>(a.weight), a.per_sample_weights, out.data_ptr<scalar_t>(),
                                   cuda_stream(a.x1));
      });
#endif
      return;
    }
    cpu::tp_forward_cpu<scalar_t>(cd->host(), a.x1.size(0), a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                  data_or_null<scalar_t>(a.weight), a.per_sample_weights, out.data_ptr<scalar_t>(),
                                  TorchParallelFor{});
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tp_backward(const at::Tensor& grad_out, const at::Tensor& x1,
                                                           const at::Tensor& x2, const at::Tensor& weight,
                                                           const at::Tensor& descriptor,
                                                           const at::Tensor& coefficients) {
  const char* op = "tensor_product_backward";
  check_float(x1, op, "x1");
  at::Tensor g1, g2, gw;
  AT_DISPATCH_FLOATING_TYPES(x1.scalar_type(), "equiforce_tp_backward", [&] {
    const auto cd = compiled_descriptor<scalar_t>(descriptor, coefficients, op);
    const auto a = check_args(cd->host(), x1, x2, weight, op);
    check_same_dtype(grad_out, x1, op, "grad_out", "x1");
    TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(0) == a.x1.size(0) && grad_out.size(1) == cd->host().dim_out,
                      "equiforce::", op, ": grad_out must have shape [", a.x1.size(0), ", ", cd->host().dim_out,
                      "], got ", grad_out.sizes());
    const auto go = grad_out.contiguous();
    g1 = at::empty_like(a.x1);
    g2 = at::empty_like(a.x2);
    gw = at::empty_like(a.weight);
    if (a.x1.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
      const c10::cuda::CUDAGuard guard(a.x1.device());
      translate_errors([&] {
        cuda::tp_backward<scalar_t>(cd->on_device(a.x1.device()), cd->host(), a.x1.size(0),
                                    a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                    data_or_null<scalar_t>(a.weight), a.per_sample_weights, go.data_ptr<scalar_t>(),
                                    g1.data_ptr<scalar_t>(), g2.data_ptr<scalar_t>(),
                                    gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, cuda_stream(a.x1));
      });
#endif
      return;
    }
    cpu::tp_backward_cpu<scalar_t>(cd->host(), a.x1.size(0), a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                   data_or_null<scalar_t>(a.weight), a.per_sample_weights, go.data_ptr<scalar_t>(),
                                   g1.data_ptr<scalar_t>(), g2.data_ptr<scalar_t>(),
                                   gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, TorchParallelFor{});
  });
  return {g1, g2, gw};
}

// ---- calls through the dispatcher (so the CPU and the CUDA kernels are both reached) ----

at::Tensor call_tp(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& w, const at::Tensor& desc,
                   const at::Tensor& coeff, int64_t dim_out) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::tensor_product", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, int64_t)>();
  return op.call(x1, x2, w, desc, coeff, dim_out);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_tp_backward(const at::Tensor& go, const at::Tensor& x1,
                                                                const at::Tensor& x2, const at::Tensor& w,
                                                                const at::Tensor& desc, const at::Tensor& coeff) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("equiforce::tensor_product_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&)>();
  return op.call(go, x1, x2, w, desc, coeff);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> tp_double_backward(
    const std::optional<at::Tensor>& gg1, const std::optional<at::Tensor>& gg2, const std::optional<at::Tensor>& ggw,
    const at::Tensor& grad_out, const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& w,
    const at::Tensor& desc, const at::Tensor& coeff) {
  const int64_t dim_out = grad_out.size(1);
  return trilinear_double_backward(
      gg1, gg2, ggw, grad_out, x1, x2, w, desc,
      [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d) {
        return call_tp(a, b, c, d, coeff, dim_out);
      },
      [&](const at::Tensor& go, const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d) {
        return call_tp_backward(go, a, b, c, d, coeff);
      });
}

struct TpSpec {
  static constexpr const char* kForward = "equiforce::tensor_product";
  static constexpr const char* kBackward = "equiforce::tensor_product_backward";
  static constexpr const char* kDoubleBackward = "equiforce::tensor_product_double_backward";
  static constexpr size_t kDifferentiable = 3;                              // x1, x2, weight
  static constexpr std::array<size_t, 5> kBackwardArgs = {0, 1, 2, 3, 4};  // all but dim_out
};

void register_kernels(torch::Library& m) {
  m.impl("tensor_product", &tp_forward);
  m.impl("tensor_product_backward", &tp_backward);
  m.impl("tensor_product_double_backward", &tp_double_backward);
}

}  // namespace
}  // namespace equiforce::ops

EQUIFORCE_DEVICE_KERNELS(equiforce::ops::register_kernels)

TORCH_LIBRARY_IMPL(equiforce, Autograd, m) { equiforce::ops::autograd::register_autograd<equiforce::ops::TpSpec>(m); }
