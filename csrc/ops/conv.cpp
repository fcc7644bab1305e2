// equiforce::conv, the fused equivariant convolution
//   out[i] = sum over edges e with edge_dst[e] = i of TP(x[edge_src[e]], edge_attr[e]; edge_weight[e])
// CPU kernels and its autograd (forward -> conv_backward -> conv_double_backward, each an op).
#include "../cpu/conv_cpu.h"
#include "autograd.h"
#include "cuda_support.h"
#include "descriptor_args.h"

namespace equiforce::ops {
namespace {

struct ConvArgs {
  at::Tensor x, attr, weight, src, dst;
  bool per_edge_weights = false;
};

template <typename T>
ConvArgs check_conv_args(const kernels::TpDescriptor<T>& d, const at::Tensor& x, const at::Tensor& attr,
                         const at::Tensor& weight, const at::Tensor& src, const at::Tensor& dst, const char* op) {
  check_float(x, op, "x");
  check_same_dtype(x, attr, op, "x", "edge_attr");
  check_same_device(x, attr, op, "x", "edge_attr");
  TORCH_CHECK_VALUE(x.dim() == 2 && x.size(1) == d.dim1, "equiforce::", op, ": x must have shape [num_senders, ",
                    d.dim1, "] (irreps_in1.dim), got ", x.sizes());
  TORCH_CHECK_VALUE(attr.dim() == 2 && attr.size(1) == d.dim2, "equiforce::", op,
                    ": edge_attr must have shape [num_edges, ", d.dim2, "] (irreps_in2.dim), got ", attr.sizes());
  const int64_t num_edges = attr.size(0);
  for (const auto* t : {&src, &dst}) {
    TORCH_CHECK_TYPE(t->scalar_type() == at::kLong || t->scalar_type() == at::kInt, "equiforce::", op,
                     ": edge_src and edge_dst must be int64 (or int32) tensors, got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == num_edges, "equiforce::", op,
                      ": edge_src and edge_dst must have shape [num_edges] = [", num_edges, "], got ", t->sizes());
    check_same_device(x, *t, op, "x", "edge indices");
  }
  ConvArgs args{x.contiguous(), attr.contiguous(), weight, src.to(at::kLong).contiguous(),
                dst.to(at::kLong).contiguous()};
  args.per_edge_weights = check_weight(weight, x, d.weight_numel, num_edges, op, "edge");
  args.weight = weight.contiguous();
  return args;
}

at::Tensor conv_forward(const at::Tensor& x, const at::Tensor& attr, const at::Tensor& weight, const at::Tensor& src,
                        const at::Tensor& dst, int64_t num_nodes, const at::Tensor& desc, const at::Tensor& coeff,
                        int64_t dim_out) {
  const char* op = "conv";
  check_float(x, op, "x");
  TORCH_CHECK_VALUE(num_nodes >= 0, "equiforce::conv: num_nodes must be >= 0, got ", num_nodes);
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "equiforce_conv_forward", [&] {
    const auto cd = compiled_descriptor<scalar_t>(desc, coeff, op);
    TORCH_CHECK_VALUE(dim_out == cd->host().dim_out, "equiforce::conv: dim_out=", dim_out,
                      " does not match the descriptor (", cd->host().dim_out, ")");
    const auto a = check_conv_args(cd->host(), x, attr, weight, src, dst, op);
    out = at::empty({num_nodes, dim_out}, a.x.options());
    translate_errors([&] {
      if (a.x.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
        const c10::cuda::CUDAGuard guard(a.x.device());
        cuda::conv_forward<scalar_t>(cd->on_device(a.x.device()), cd->host(), a.x.size(0), num_nodes,
                                     a.attr.size(0), a.x.data_ptr<scalar_t>(), a.attr.data_ptr<scalar_t>(),
                                     data_or_null<scalar_t>(a.weight), a.per_edge_weights, a.src.data_ptr<int64_t>(),
                                     a.dst.data_ptr<int64_t>(), out.data_ptr<scalar_t>(), cuda_stream(a.x));
#endif
        return;
      }
      cpu::conv_forward_cpu<scalar_t>(cd->host(), a.x.size(0), num_nodes, a.attr.size(0), a.x.data_ptr<scalar_t>(),
                                      a.attr.data_ptr<scalar_t>(), data_or_null<scalar_t>(a.weight),
                                      a.per_edge_weights, a.src.data_ptr<int64_t>(), a.dst.data_ptr<int64_t>(),
                                      out.data_ptr<scalar_t>(), TorchParallelFor{});
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(const at::Tensor& grad_out, const at::Tensor& x,
                                                             const at::Tensor& attr, const at::Tensor& weight,
                                                             const at::Tensor& src, const at::Tensor& dst,
                                                             const at::Tensor& desc, const at::Tensor& coeff) {
  const char* op = "conv_backward";
  check_float(x, op, "x");
  at::Tensor gx, gattr, gw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "equiforce_conv_backward", [&] {
    const auto cd = compiled_descriptor<scalar_t>(desc, coeff, op);
    const auto a = check_conv_args(cd->host(), x, attr, weight, src, dst, op);
    check_same_dtype(grad_out, x, op, "grad_out", "x");
    TORCH_CHECK_VALUE(grad_out.dim() == 2 && grad_out.size(1) == cd->host().dim_out, "equiforce::", op,
                      ": grad_out must have shape [num_nodes, ", cd->host().dim_out, "], got ", grad_out.sizes());
    const auto go = grad_out.contiguous();
    gx = at::empty_like(a.x);
    gattr = at::empty_like(a.attr);
    gw = at::empty_like(a.weight);
    translate_errors([&] {
      if (a.x.is_cuda()) {
#ifdef EQUIFORCE_WITH_CUDA
        const c10::cuda::CUDAGuard guard(a.x.device());
        cuda::conv_backward<scalar_t>(cd->on_device(a.x.device()), cd->host(), a.x.size(0), go.size(0),
                                      a.attr.size(0), a.x.data_ptr<scalar_t>(), a.attr.data_ptr<scalar_t>(),
                                      data_or_null<scalar_t>(a.weight), a.per_edge_weights,
                                      a.src.data_ptr<int64_t>(), a.dst.data_ptr<int64_t>(), go.data_ptr<scalar_t>(),
                                      gx.data_ptr<scalar_t>(), gattr.data_ptr<scalar_t>(),
                                      gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, cuda_stream(a.x));
#endif
        return;
      }
      cpu::conv_backward_cpu<scalar_t>(cd->host(), a.x.size(0), go.size(0), a.attr.size(0), a.x.data_ptr<scalar_t>(),
                                       a.attr.data_ptr<scalar_t>(), data_or_null<scalar_t>(a.weight),
                                       a.per_edge_weights, a.src.data_ptr<int64_t>(), a.dst.data_ptr<int64_t>(),
                                       go.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), gattr.data_ptr<scalar_t>(),
                                       gw.numel() ? gw.data_ptr<scalar_t>() : nullptr, TorchParallelFor{});
    });
  });
  return {gx, gattr, gw};
}

// num_nodes is a SymInt so that tracing with symbolic sizes (torch.export, AOTInductor) keeps it symbolic.
at::Tensor call_conv(const at::Tensor& x, const at::Tensor& attr, const at::Tensor& w, const at::Tensor& src,
                     const at::Tensor& dst, const c10::SymInt& num_nodes, const at::Tensor& desc, const at::Tensor& coeff,
                     int64_t dim_out) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::conv", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, c10::SymInt, const at::Tensor&, const at::Tensor&,
                                         int64_t)>();
  return op.call(x, attr, w, src, dst, num_nodes, desc, coeff, dim_out);
}

using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Triple call_conv_backward(const at::Tensor& go, const at::Tensor& x, const at::Tensor& attr, const at::Tensor& w,
                          const at::Tensor& src, const at::Tensor& dst, const at::Tensor& desc,
                          const at::Tensor& coeff) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("equiforce::conv_backward", "")
                       .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(go, x, attr, w, src, dst, desc, coeff);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv_double_backward(
    const std::optional<at::Tensor>& ggx, const std::optional<at::Tensor>& gga, const std::optional<at::Tensor>& ggw,
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& attr, const at::Tensor& w,
    const at::Tensor& src, const at::Tensor& dst, const at::Tensor& desc, const at::Tensor& coeff) {
  const c10::SymInt num_nodes = grad_out.sym_size(0);
  const int64_t dim_out = grad_out.size(1);
  return trilinear_double_backward(
      ggx, gga, ggw, grad_out, x, attr, w, desc,
      [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d) {
        return call_conv(a, b, c, src, dst, num_nodes, d, coeff, dim_out);
      },
      [&](const at::Tensor& go, const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Tensor& d) {
        return call_conv_backward(go, a, b, c, src, dst, d, coeff);
      });
}

struct ConvSpec {
  static constexpr const char* kForward = "equiforce::conv";
  static constexpr const char* kBackward = "equiforce::conv_backward";
  static constexpr const char* kDoubleBackward = "equiforce::conv_double_backward";
  static constexpr size_t kDifferentiable = 3;                                    // x, edge_attr, weight
  static constexpr std::array<size_t, 7> kBackwardArgs = {0, 1, 2, 3, 4, 6, 7};  // not num_nodes, dim_out
};

void register_kernels(torch::Library& m) {
  m.impl("conv", &conv_forward);
  m.impl("conv_backward", &conv_backward);
  m.impl("conv_double_backward", &conv_double_backward);
}

}  // namespace
}  // namespace equiforce::ops

EQUIFORCE_DEVICE_KERNELS(equiforce::ops::register_kernels)

TORCH_LIBRARY_IMPL(equiforce, Autograd, m) { equiforce::ops::autograd::register_autograd<equiforce::ops::ConvSpec>(m); }
