// Autograd and kernel registration of the equiforce ops, written once.
//
// Every differentiable op comes as three schemas: the forward F, its backward B (the vector-Jacobian
// product: grad_out and the saved arguments in, one gradient per differentiable input out) and the
// double backward BB (the vector-Jacobian product of B), so forces in a loss can be trained on. Each
// level calls the next through the dispatcher, which reaches the CPU or the CUDA kernel (and fake
// kernels under torch.compile/export). An op describes itself with a Spec:
//
//   struct Spec {
//     static constexpr const char* kForward = "equiforce::op";          // F(args...) -> Tensor
//     static constexpr const char* kBackward = "equiforce::op_backward"; // B(grad_out, args[kBackwardArgs]...)
//     static constexpr const char* kDoubleBackward = "equiforce::op_double_backward";
//     static constexpr size_t kDifferentiable = 3;  // F's first arguments, tensors, each with a gradient
//     static constexpr std::array<size_t, N> kBackwardArgs = {...};  // F's arguments that B takes, in order
//   };
//
// B returns the kDifferentiable gradients; BB(gg[kDifferentiable] (None where undefined), grad_out,
// args[kBackwardArgs]...) returns (d grad_out, d args[0], ..., d args[kDifferentiable - 1]). The
// autograd kernels are boxed: tensors travel as autograd inputs (saved for backward), every other
// argument (ints, strings, SymInts) as plain values.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <vector>

namespace equiforce::ops::autograd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// An argument list split for autograd: its tensors, and the rest with None where the tensors were.
struct SplitArgs {
  std::vector<at::Tensor> tensors;
  std::vector<c10::IValue> values;
  std::vector<int64_t> tensor_slots;

  explicit SplitArgs(std::vector<c10::IValue> args) : values(std::move(args)) {
    for (size_t k = 0; k < values.size(); ++k)
      if (values[k].isTensor()) {
        tensors.push_back(values[k].toTensor());
        tensor_slots.push_back(static_cast<int64_t>(k));
        values[k] = c10::IValue();
      }
  }
};

// The argument list back, with `tensors` in the slots.
inline std::vector<c10::IValue> joined(std::vector<c10::IValue> values, const std::vector<int64_t>& slots,
                                       const variable_list& tensors) {
  for (size_t k = 0; k < slots.size(); ++k) values[slots[k]] = tensors[k];
  return values;
}

// F, B and BB of a Spec, found once.
inline c10::OperatorHandle find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

enum Level { kF, kB, kBB };

template <typename Spec, Level L>
std::vector<c10::IValue> call(std::vector<c10::IValue> stack) {
  static const c10::OperatorHandle op =
      find_op(L == kF ? Spec::kForward : L == kB ? Spec::kBackward : Spec::kDoubleBackward);
  op.callBoxed(&stack);
  return stack;
}

inline variable_list tensors_of(const std::vector<c10::IValue>& values) {
  variable_list out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(v.isTensor() ? v.toTensor() : at::Tensor());
  return out;
}

inline std::vector<c10::IValue> kept(AutogradContext* ctx) {
  return joined(ctx->saved_data["values"].toTupleRef().elements().vec(), ctx->saved_data["slots"].toIntVector(),
                ctx->get_saved_variables());
}

// Level 2: B(grad_out, ...) as a differentiable function of grad_out and the saved tensors.
template <typename Spec>
class BackwardFunction : public torch::autograd::Function<BackwardFunction<Spec>> {
 public:
  // B's whole argument list (grad_out first): its tensors, and the rest with None in their slots.
  static variable_list forward(AutogradContext* ctx, at::TensorList tensors, const std::vector<c10::IValue>& values,
                               const std::vector<int64_t>& slots) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const variable_list inputs = tensors.vec();
    ctx->save_for_backward(inputs);
    ctx->saved_data["values"] = c10::ivalue::Tuple::create(values);
    ctx->saved_data["slots"] = slots;
    return tensors_of(call<Spec, kB>(joined(values, slots, inputs)));
  }

  // Gradients for B's tensors (grad_out first, then the differentiable arguments), and none for the
  // two plain-value arguments.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto num_tensors = ctx->saved_data["slots"].toIntVector().size();
    variable_list out(num_tensors + 2);
    bool any = false;
    std::vector<c10::IValue> stack;
    for (size_t k = 0; k < Spec::kDifferentiable; ++k) {
      any = any || grads[k].defined();
      stack.push_back(grads[k].defined() ? c10::IValue(grads[k]) : c10::IValue());
    }
    if (!any) return out;
    for (auto& v : kept(ctx)) stack.push_back(std::move(v));
    const auto d = tensors_of(call<Spec, kBB>(std::move(stack)));
    for (size_t k = 0; k <= Spec::kDifferentiable; ++k) out[k] = d[k];  // grad_out, then the inputs
    return out;
  }
};

// B's whole argument list from F's: grad_out, then F's arguments that B takes.
template <typename Spec>
std::vector<c10::IValue> backward_args(const at::Tensor& grad_out, const std::vector<c10::IValue>& forward_args) {
  std::vector<c10::IValue> out{grad_out};
  for (const size_t k : Spec::kBackwardArgs) out.push_back(forward_args[k]);
  return out;
}

template <typename Spec>
variable_list apply_backward(const std::vector<c10::IValue>& args) {
  const SplitArgs split(args);
  return BackwardFunction<Spec>::apply(at::TensorList(split.tensors), split.values, split.tensor_slots);
}

// Level 1: F as a differentiable function of its tensors.
template <typename Spec>
class ForwardFunction : public torch::autograd::Function<ForwardFunction<Spec>> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList tensors, const std::vector<c10::IValue>& values,
                               const std::vector<int64_t>& slots) {
    const variable_list inputs = tensors.vec();
    variable_list out;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      out = tensors_of(call<Spec, kF>(joined(values, slots, inputs)));
    }
    ctx->save_for_backward(inputs);
    ctx->saved_data["values"] = c10::ivalue::Tuple::create(values);
    ctx->saved_data["slots"] = slots;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(ctx->saved_data["slots"].toIntVector().size() + 2);
    if (!grads[0].defined()) return out;
    const auto g = apply_backward<Spec>(backward_args<Spec>(grads[0], kept(ctx)));
    for (size_t k = 0; k < Spec::kDifferentiable; ++k) out[k] = g[k];  // F's first arguments
    return out;
  }
};

// Boxed Autograd kernels of F and B: split the stack, apply the Function, push its outputs.
template <typename Spec, bool kIsBackward>
void boxed_autograd(const c10::OperatorHandle& op, c10::DispatchKeySet, torch::jit::Stack* stack) {
  auto args = torch::jit::pop(*stack, op.schema().arguments().size());
  const SplitArgs split(std::move(args));
  const auto out =
      kIsBackward ? BackwardFunction<Spec>::apply(at::TensorList(split.tensors), split.values, split.tensor_slots)
                  : ForwardFunction<Spec>::apply(at::TensorList(split.tensors), split.values, split.tensor_slots);
  for (const auto& t : out) torch::jit::push(*stack, t);
}

// The schema name without "equiforce::", as Library::impl takes it.
inline const char* op_name(const char* qualified) { return qualified + sizeof("equiforce::") - 1; }

template <typename Spec>
void register_autograd(torch::Library& m) {
  m.impl(op_name(Spec::kForward), torch::CppFunction::makeFromBoxedFunction<&boxed_autograd<Spec, false>>());
  m.impl(op_name(Spec::kBackward), torch::CppFunction::makeFromBoxedFunction<&boxed_autograd<Spec, true>>());
}

}  // namespace equiforce::ops::autograd

// The device kernels of a file, registered for CPU and, in CUDA builds, for CUDA: each kernel looks at
// its inputs' device itself. `register_fn(torch::Library&)` makes the m.impl calls.
#ifdef EQUIFORCE_WITH_CUDA
#define EQUIFORCE_CUDA_KERNELS(register_fn) \
  TORCH_LIBRARY_IMPL(equiforce, CUDA, m) { register_fn(m); }
#else
#define EQUIFORCE_CUDA_KERNELS(register_fn)
#endif
#define EQUIFORCE_DEVICE_KERNELS(register_fn)                  \
  TORCH_LIBRARY_IMPL(equiforce, CPU, m) { register_fn(m); }    \
  EQUIFORCE_CUDA_KERNELS(register_fn)
