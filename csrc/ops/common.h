// Helpers shared by the op implementations: argument checks with messages that say what to do,
// and typed handles to the ops so autograd formulas call them through the dispatcher.
#pragma once

#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace equiforce::ops {

// at::parallel_for over [0, n): the CPU launchers' `par` argument.
struct TorchParallelFor {
  template <typename F>
  void operator()(int64_t n, int64_t grain, const F& fn) const {
    if (n <= 0) return;
    at::parallel_for(0, n, grain, fn);
  }
};

inline void check_float(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "equiforce::", op, ": ", name,
                   " must be float32 or float64, got ", t.scalar_type(), "; convert it with .float() or .double()");
}

inline void check_same_dtype(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                             const char* nb) {
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "equiforce::", op, ": ", na, " (", a.scalar_type(), ") and ",
                   nb, " (", b.scalar_type(), ") must have the same dtype");
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                              const char* nb) {
  TORCH_CHECK(a.device() == b.device(), "equiforce::", op, ": ", na, " is on ", a.device(), " but ", nb, " is on ",
              b.device(), "; move them to one device");
}

// Runs a torch-free launcher and turns its std::invalid_argument into a ValueError.
template <typename F>
auto translate_errors(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

int64_t normalization_code(c10::string_view normalization);

}  // namespace equiforce::ops
