// CPU launchers of the tensor-product bodies: a parallel loop over the batch with per-chunk
// scratch. Weights are either shared ([weight_numel]) or per sample ([B, weight_numel]).
#pragma once

#include <algorithm>
#include <mutex>
#include <vector>

#include "../kernels/tensor_product.h"

namespace equiforce::cpu {

// Samples per task: enough work per chunk to hide the scheduling cost.
constexpr int64_t kTpGrain = 64;

// A task's accumulator of shared-weight gradients, added into gw under a lock when the task ends
// (kernels::weight_grad_row hands it out). Empty when the weights are per sample or gw is null.
template <typename T>
class SharedWeightGrad {
 public:
  SharedWeightGrad(T* gw, bool per_row, int64_t numel, std::mutex& mutex)
      : gw_(gw), numel_(numel), mutex_(mutex), acc_(gw && !per_row ? numel : 0, T(0)) {}
  T* data() { return acc_.empty() ? nullptr : acc_.data(); }
  ~SharedWeightGrad() {
    if (acc_.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t q = 0; q < numel_; ++q) gw_[q] += acc_[q];
  }

 private:
  T* gw_;
  int64_t numel_;
  std::mutex& mutex_;
  std::vector<T> acc_;
};

// out[b] = TP(x1[b], x2[b]; w or w[b])
template <typename T, typename Par>
void tp_forward_cpu(const kernels::TpDescriptor<T>& d, int64_t batch, const T* x1, const T* x2, const T* w,
                    bool per_sample_weights, T* out, Par&& par) {
  par(batch, kTpGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(d.dim1 + d.dim2 + d.dim_out + d.scratch);
    T* a = buffer.data();
    T* b = a + d.dim1;
    T* o = b + d.dim2;
    T* scratch = o + d.dim_out;
    for (int64_t s = begin; s < end; ++s)
      kernels::tp_forward_mul_ir(d, s, x1, x2, w, per_sample_weights, out, a, b, o, scratch);
  });
}

// g1[b], g2[b] = d<gout[b], out[b]>/dx1, /dx2;  gw = d/dw (per sample, or summed over the batch
// when shared; may be null). Every output is overwritten.
template <typename T, typename Par>
void tp_backward_cpu(const kernels::TpDescriptor<T>& d, int64_t batch, const T* x1, const T* x2, const T* w,
                     bool per_sample_weights, const T* gout, T* g1, T* g2, T* gw, Par&& par) {
  std::mutex gw_mutex;
  if (gw && !per_sample_weights)
    for (int64_t q = 0; q < d.weight_numel; ++q) gw[q] = T(0);
  par(batch, kTpGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(2 * (d.dim1 + d.dim2) + d.dim_out + d.scratch);
    T* a = buffer.data();
    T* b = a + d.dim1;
    T* ga = b + d.dim2;
    T* gb = ga + d.dim1;
    T* go = gb + d.dim2;
    T* scratch = go + d.dim_out;
    SharedWeightGrad<T> shared(gw, per_sample_weights, d.weight_numel, gw_mutex);
    for (int64_t s = begin; s < end; ++s)
      kernels::tp_backward_mul_ir(d, s, x1, x2, w, per_sample_weights, gout, g1, g2,
                                  kernels::weight_grad_row(gw, per_sample_weights, shared.data(), d.weight_numel, s),
                                  a, b, ga, gb, go, scratch);
  });
}

}  // namespace equiforce::cpu
