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

// Where a task writes weight gradients: row s of gw (per-sample weights, zeroed on first use) or
// a task-local accumulator added into gw under a lock at the end (shared weights). gw may be null.
template <typename T>
class WeightGradSink {
 public:
  WeightGradSink(T* gw, bool per_row, int64_t numel, std::mutex& mutex)
      : gw_(gw), per_row_(per_row), numel_(numel), mutex_(mutex), shared_(gw && !per_row ? numel : 0, T(0)) {}
  T* row(int64_t s) {
    if (!gw_) return nullptr;
    if (!per_row_) return shared_.data();
    T* r = gw_ + s * numel_;
    std::fill(r, r + numel_, T(0));
    return r;
  }
  ~WeightGradSink() {
    if (shared_.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t q = 0; q < numel_; ++q) gw_[q] += shared_[q];
  }

 private:
  T* gw_;
  bool per_row_;
  int64_t numel_;
  std::mutex& mutex_;
  std::vector<T> shared_;
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
    WeightGradSink<T> sink(gw, per_sample_weights, d.weight_numel, gw_mutex);
    for (int64_t s = begin; s < end; ++s) {
      kernels::to_ir_mul(d.seg1, d.num_seg1, x1 + s * d.dim1, a);
      kernels::to_ir_mul(d.seg2, d.num_seg2, x2 + s * d.dim2, b);
      kernels::to_ir_mul(d.seg_out, d.num_seg_out, gout + s * d.dim_out, go);
      for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
      for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
      const T* ws = w ? (per_sample_weights ? w + s * d.weight_numel : w) : nullptr;
      kernels::tp_backward_sample(d, a, b, ws, go, ga, gb, sink.row(s), scratch);
      kernels::to_mul_ir(d.seg1, d.num_seg1, ga, g1 + s * d.dim1);
      kernels::to_mul_ir(d.seg2, d.num_seg2, gb, g2 + s * d.dim2);
    }
  });
}

}  // namespace equiforce::cpu
