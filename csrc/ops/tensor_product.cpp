// equiforce::tensor_product: CPU kernels and the autograd formula
// (forward -> tensor_product_backward -> tensor_product_double_backward, each an op).
#include "../cpu/tensor_product_cpu.h"
#include "cuda_support.h"
#include "descriptor_args.h"

namespace equiforce::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Checked inputs of one tensor-product call, made contiguous.
struct TpArgs {
  at::Tensor x1, x2, weight;
  bool per_sample_weights = false;
};

template <typename T>
TpArgs check_args(const cpu::HostDescriptor<T>& hd, const at::Tensor& x1, const at::Tensor& x2,
                  const at::Tensor& weight, const char* op) {
  const auto& d = hd.view;
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
    const auto hd = host_descriptor<scalar_t>(descriptor, coefficients, op);
    TORCH_CHECK_VALUE(dim_out == hd.view.dim_out, "equiforce::", op, ": dim_out=", dim_out,
                      " does not match the descriptor (", hd.view.dim_out, ")");
    const auto a = check_args(hd, x1, x2, weight, op);
    out = at::empty({a.x1.size(0), dim_out}, a.x1.options());
    if (a.x1.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
      const c10::cuda::CUDAGuard guard(a.x1.device());
      translate_errors([&] {
        cuda::tp_forward<scalar_t>(device_descriptor(hd, a.x1.device()), hd.view, a.x1.size(0),
                                   a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                   data_or_null<scalar_t>(a.weight), a.per_sample_weights, out.data_ptr<scalar_t>(),
                                   cuda_stream(a.x1));
      });
#endif
      return;
    }
    cpu::tp_forward_cpu<scalar_t>(hd.view, a.x1.size(0), a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
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
    const auto hd = host_descriptor<scalar_t>(descriptor, coefficients, op);
    const auto a = check_args(hd, x1, x2, weight, op);
    check_same_dtype(grad_out, x1, op, "grad_out", "x1");
    TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(0) == a.x1.size(0) && grad_out.size(1) == hd.view.dim_out,
                      "equiforce::", op, ": grad_out must have shape [", a.x1.size(0), ", ", hd.view.dim_out,
                      "], got ", grad_out.sizes());
    const auto go = grad_out.contiguous();
    g1 = at::empty_like(a.x1);
    g2 = at::empty_like(a.x2);
    gw = at::empty_like(a.weight);
    if (a.x1.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
      const c10::cuda::CUDAGuard guard(a.x1.device());
      translate_errors([&] {
        cuda::tp_backward<scalar_t>(device_descriptor(hd, a.x1.device()), hd.view, a.x1.size(0),
                                    a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                    data_or_null<scalar_t>(a.weight), a.per_sample_weights, go.data_ptr<scalar_t>(),
                                    g1.data_ptr<scalar_t>(), g2.data_ptr<scalar_t>(),
                                    gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, cuda_stream(a.x1));
      });
#endif
      return;
    }
    cpu::tp_backward_cpu<scalar_t>(hd.view, a.x1.size(0), a.x1.data_ptr<scalar_t>(), a.x2.data_ptr<scalar_t>(),
                                   data_or_null<scalar_t>(a.weight), a.per_sample_weights, go.data_ptr<scalar_t>(),
                                   g1.data_ptr<scalar_t>(), g2.data_ptr<scalar_t>(),
                                   gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, TorchParallelFor{});
  });
  return {g1, g2, gw};
}

// ---- calls through the dispatcher (so CPU and, later, CUDA kernels are both reached) ----

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

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> call_tp_double_backward(
    const at::Tensor& gg1, const at::Tensor& gg2, const at::Tensor& ggw, const at::Tensor& go, const at::Tensor& x1,
    const at::Tensor& x2, const at::Tensor& w, const at::Tensor& desc, const at::Tensor& coeff) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::tensor_product_double_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                           const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                           const std::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  const auto opt = [](const at::Tensor& t) { return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt; };
  return op.call(opt(gg1), opt(gg2), opt(ggw), go, x1, x2, w, desc, coeff);
}

class TpBackwardFunction : public torch::autograd::Function<TpBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_out, const at::Tensor& x1,
                               const at::Tensor& x2, const at::Tensor& w, const at::Tensor& desc,
                               const at::Tensor& coeff) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({grad_out, x1, x2, w, desc, coeff});
    auto [g1, g2, gw] = call_tp_backward(grad_out, x1, x2, w, desc, coeff);
    return {g1, g2, gw};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    auto [d_go, d_x1, d_x2, d_w] = call_tp_double_backward(grads[0], grads[1], grads[2], s[0], s[1], s[2], s[3],
                                                            s[4], s[5]);
    return {d_go, d_x1, d_x2, d_w, at::Tensor(), at::Tensor()};
  }
};

class TpFunction : public torch::autograd::Function<TpFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& w,
                            const at::Tensor& desc, const at::Tensor& coeff, int64_t dim_out) {
    at::Tensor out;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      out = call_tp(x1, x2, w, desc, coeff, dim_out);
    }
    ctx->save_for_backward({x1, x2, w, desc, coeff});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    auto g = TpBackwardFunction::apply(grads[0], s[0], s[1], s[2], s[3], s[4]);
    return {g[0], g[1], g[2], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor tp_autograd(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& w, const at::Tensor& desc,
                       const at::Tensor& coeff, int64_t dim_out) {
  return TpFunction::apply(x1, x2, w, desc, coeff, dim_out);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tp_backward_autograd(const at::Tensor& go, const at::Tensor& x1,
                                                                    const at::Tensor& x2, const at::Tensor& w,
                                                                    const at::Tensor& desc, const at::Tensor& coeff) {
  auto g = TpBackwardFunction::apply(go, x1, x2, w, desc, coeff);
  return {g[0], g[1], g[2]};
}

}  // namespace
}  // namespace equiforce::ops

TORCH_LIBRARY_IMPL(equiforce, CPU, m) {
  m.impl("tensor_product", &equiforce::ops::tp_forward);
  m.impl("tensor_product_backward", &equiforce::ops::tp_backward);
  m.impl("tensor_product_double_backward", &equiforce::ops::tp_double_backward);
}

#ifdef EQUIFORCE_WITH_CUDA
TORCH_LIBRARY_IMPL(equiforce, CUDA, m) {
  m.impl("tensor_product", &equiforce::ops::tp_forward);
  m.impl("tensor_product_backward", &equiforce::ops::tp_backward);
  m.impl("tensor_product_double_backward", &equiforce::ops::tp_double_backward);
}
#endif

TORCH_LIBRARY_IMPL(equiforce, Autograd, m) {
  m.impl("tensor_product", &equiforce::ops::tp_autograd);
  m.impl("tensor_product_backward", &equiforce::ops::tp_backward_autograd);
}
