// CPU launchers of the fused equivariant convolution
//
//   out[i] = sum over edges e with dst[e] = i of TP(x[src[e]], attr[e]; w[e])
//
// over the tensor-product bodies of csrc/kernels/tensor_product.h. The forward walks edges grouped
// by receiver and the backward walks them grouped by sender, so every output row has one writer:
// no atomics, and no [E, d_out] message tensor is ever formed.
#pragma once

#include <mutex>
#include <vector>

#include "../kernels/tensor_product.h"
#include "csr.h"
#include "tensor_product_cpu.h"

namespace equiforce::cpu {

constexpr int64_t kConvGrain = 16;  // nodes per task

// Transposes every row of a [rows, dim] mul_ir matrix to ir_mul.
template <typename T, typename Par>
std::vector<T> rows_to_ir_mul(const kernels::TpSegment* segs, int64_t num_segs, int64_t dim, int64_t rows,
                              const T* src, Par&& par) {
  std::vector<T> out(rows * dim);
  par(rows, 256, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) kernels::to_ir_mul(segs, num_segs, src + r * dim, out.data() + r * dim);
  });
  return out;
}

// out[num_nodes, dim_out]; w is [E, numel] (per edge), [numel] (shared) or null.
template <typename T, typename Par>
void conv_forward_cpu(const kernels::TpDescriptor<T>& d, int64_t num_senders, int64_t num_nodes, int64_t num_edges,
                      const T* x, const T* attr, const T* w, bool per_edge_weights, const int64_t* src,
                      const int64_t* dst, T* out, Par&& par) {
  const Csr by_dst = group_edges(dst, num_edges, num_nodes, "edge_dst");
  check_indices(src, num_edges, num_senders, "edge_src");
  const std::vector<T> xt = rows_to_ir_mul(d.seg1, d.num_seg1, d.dim1, num_senders, x, par);
  par(num_nodes, kConvGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(d.dim2 + d.dim_out + d.scratch);
    T* b = buffer.data();
    T* o = b + d.dim2;
    T* scratch = o + d.dim_out;
    for (int64_t i = begin; i < end; ++i)
      kernels::conv_receiver(d, i, xt.data(), attr, w, per_edge_weights, src, by_dst.ptr.data(), by_dst.order.data(),
                             out, b, o, scratch);
  });
}

// gx[num_senders, d1], gattr[E, d2], gw[E, numel] (or [numel] summed when shared, or null), all
// overwritten, given gout[num_nodes, d_out]. One pass over senders: each edge is visited once.
template <typename T, typename Par>
void conv_backward_cpu(const kernels::TpDescriptor<T>& d, int64_t num_senders, int64_t num_nodes, int64_t num_edges,
                       const T* x, const T* attr, const T* w, bool per_edge_weights, const int64_t* src,
                       const int64_t* dst, const T* gout, T* gx, T* gattr, T* gw, Par&& par) {
  const Csr by_src = group_edges(src, num_edges, num_senders, "edge_src");
  check_indices(dst, num_edges, num_nodes, "edge_dst");
  const std::vector<T> xt = rows_to_ir_mul(d.seg1, d.num_seg1, d.dim1, num_senders, x, par);
  const std::vector<T> got = rows_to_ir_mul(d.seg_out, d.num_seg_out, d.dim_out, num_nodes, gout, par);
  std::mutex gw_mutex;
  if (gw && !per_edge_weights)
    for (int64_t q = 0; q < d.weight_numel; ++q) gw[q] = T(0);
  par(num_senders, kConvGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(d.dim2 + d.dim1 + d.dim2 + d.scratch);
    T* b = buffer.data();
    T* ga = b + d.dim2;
    T* gb = ga + d.dim1;
    T* scratch = gb + d.dim2;
    SharedWeightGrad<T> shared(gw, per_edge_weights, d.weight_numel, gw_mutex);
    for (int64_t j = begin; j < end; ++j)
      kernels::conv_sender(d, j, xt.data(), attr, w, per_edge_weights, dst, by_src.ptr.data(), by_src.order.data(),
                           got.data(), gx, gattr, gw, shared.data(), b, ga, gb, scratch);
  });
}

}  // namespace equiforce::cpu
