// Argument handling shared by the tensor-product and convolution ops: the descriptor tables and
// the three weight layouts (none, shared [numel], one row per sample/edge [rows, numel]).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "../cpu/descriptor.h"
#include "common.h"
#include "descriptor_cache.h"

namespace equiforce::ops {

// A descriptor decoded and validated once (csrc/ops/descriptor_cache.h says when "once" ends):
// the host view for the CPU loops and the sizes, and a copy of its tables on each device it ran on.
template <typename T>
class CompiledDescriptor {
 public:
  CompiledDescriptor(const at::Tensor& ints, const at::Tensor& floats)
      : host_(ints.data_ptr<int64_t>(), ints.numel(), floats.data_ptr<double>(), floats.numel()) {}

  const kernels::TpDescriptor<T>& host() const { return host_.view; }

  // The view of the tables on `device`, uploaded there on first use and kept: later calls (a
  // captured CUDA graph included) copy nothing.
  kernels::TpDescriptor<T> on_device(const at::Device& device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [where, table] : device_tables_)
      if (where == device) return host_.view_at(table.data_ptr());
    const auto bytes = host_.pack();
    auto staged = at::empty({static_cast<int64_t>(std::max<size_t>(bytes.size(), 8))}, at::dtype(at::kByte));
    std::memcpy(staged.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    device_tables_.emplace_back(device, staged.to(device));
    return host_.view_at(device_tables_.back().second.data_ptr());
  }

 private:
  cpu::HostDescriptor<T> host_;
  mutable std::mutex mutex_;
  mutable std::vector<std::pair<at::Device, at::Tensor>> device_tables_;
};

template <typename T>
std::shared_ptr<const CompiledDescriptor<T>> compiled_descriptor(const at::Tensor& descriptor,
                                                                 const at::Tensor& coefficients, const char* op) {
  TORCH_CHECK_VALUE(descriptor.scalar_type() == at::kLong && descriptor.dim() == 1 && descriptor.is_cpu(),
                    "equiforce::", op, ": descriptor must be a 1-D int64 CPU tensor from TensorProductDescriptor");
  TORCH_CHECK_VALUE(coefficients.scalar_type() == at::kDouble && coefficients.dim() == 1 && coefficients.is_cpu(),
                    "equiforce::", op, ": coefficients must be a 1-D float64 CPU tensor from TensorProductDescriptor");
  static TensorKeyedCache<CompiledDescriptor<T>, 2> cache(kDescriptorCacheCapacity);
  return cache.get({descriptor, coefficients}, [](const std::array<at::Tensor, 2>& t) {
    const auto ints = t[0].contiguous(), floats = t[1].contiguous();
    return translate_errors([&] { return std::make_shared<const CompiledDescriptor<T>>(ints, floats); });
  });
}

// Checks `weight` against the descriptor; returns true for one row per sample ([rows, numel]).
inline bool check_weight(const at::Tensor& weight, const at::Tensor& like, int64_t weight_numel, int64_t rows,
                         const char* op, const char* rows_name) {
  if (weight_numel == 0) {
    TORCH_CHECK_VALUE(weight.numel() == 0, "equiforce::", op,
                      ": this tensor product has no weights; pass an empty tensor, got ", weight.sizes());
    return false;
  }
  check_same_dtype(like, weight, op, "inputs", "weight");
  check_same_device(like, weight, op, "inputs", "weight");
  if (weight.dim() == 1 && weight.size(0) == weight_numel) return false;
  TORCH_CHECK_VALUE(weight.dim() == 2 && weight.size(0) == rows && weight.size(1) == weight_numel, "equiforce::", op,
                    ": weight must have shape [", weight_numel, "] (shared) or [", rows, ", ", weight_numel, "] (one row per ",
                    rows_name, "), got ", weight.sizes());
  return true;
}

template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.numel() ? t.data_ptr<T>() : nullptr;
}

// The descriptor with the nonzero ranges of unweighted instructions emptied: the part of the
// product that depends on the weights (unweighted paths are bilinear in the two inputs only).
// Made once per descriptor and kept, so the calls that take it find their compiled descriptor.
at::Tensor weighted_paths_only(const at::Tensor& descriptor);

// Double backward of any op that is trilinear in (a, b, w) on its weighted paths and bilinear in
// (a, b) on the others, given its forward F(a, b, w) and backward B(go; a, b, w) -> (ga, gb, gw).
// With S = <gga, ga> + <ggb, gb> + <ggw, gw>:
//   dS/dgo = F(gga, b, w) + F(a, ggb, w) + F_weighted(a, b, ggw)
//   dS/da = B_a(go; ggb, w) + B_a(go; b, ggw),  and alike for b and w,
// i.e. three forward and three backward calls with substituted arguments.
template <typename Forward, typename Backward>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> trilinear_double_backward(
    const std::optional<at::Tensor>& gga, const std::optional<at::Tensor>& ggb, const std::optional<at::Tensor>& ggw,
    const at::Tensor& go, const at::Tensor& a, const at::Tensor& b, const at::Tensor& w, const at::Tensor& descriptor,
    const Forward& forward, const Backward& backward) {
  at::AutoDispatchBelowADInplaceOrView guard;
  const auto defined = [](const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); };
  const auto add = [](const at::Tensor& x, const at::Tensor& y) { return x.defined() ? x + y : y; };
  at::Tensor d_go, d_a, d_b, d_w;
  if (defined(gga)) {
    d_go = add(d_go, forward(*gga, b, w, descriptor));
    auto [unused, gb, gw] = backward(go, *gga, b, w, descriptor);
    d_b = add(d_b, gb);
    d_w = add(d_w, gw);
  }
  if (defined(ggb)) {
    d_go = add(d_go, forward(a, *ggb, w, descriptor));
    auto [ga, unused, gw] = backward(go, a, *ggb, w, descriptor);
    d_a = add(d_a, ga);
    d_w = add(d_w, gw);
  }
  if (defined(ggw) && ggw->numel() > 0) {
    const auto weighted = weighted_paths_only(descriptor);
    d_go = add(d_go, forward(a, b, *ggw, weighted));
    auto [ga, gb, unused] = backward(go, a, b, *ggw, weighted);
    d_a = add(d_a, ga);
    d_b = add(d_b, gb);
  }
  // autograd wants tensors of the right shape where a term is absent
  return {d_go.defined() ? d_go : at::zeros_like(go), d_a.defined() ? d_a : at::zeros_like(a),
          d_b.defined() ? d_b : at::zeros_like(b), d_w.defined() ? d_w : at::zeros_like(w)};
}

}  // namespace equiforce::ops
