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
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t k = 0; k < d.dim_out; ++k) o[k] = T(0);
      for (int64_t p = by_dst.ptr[i]; p < by_dst.ptr[i + 1]; ++p) {
        const int64_t e = by_dst.order[p];
        kernels::to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
        const T* we = w ? (per_edge_weights ? w + e * d.weight_numel : w) : nullptr;
        kernels::tp_forward_sample(d, xt.data() + src[e] * d.dim1, b, we, o, scratch);
      }
      kernels::to_mul_ir(d.seg_out, d.num_seg_out, o, out + i * d.dim_out);
    }
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
    WeightGradSink<T> sink(gw, per_edge_weights, d.weight_numel, gw_mutex);
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
      for (int64_t p = by_src.ptr[j]; p < by_src.ptr[j + 1]; ++p) {
        const int64_t e = by_src.order[p];
        kernels::to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
        for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
        const T* we = w ? (per_edge_weights ? w + e * d.weight_numel : w) : nullptr;
        kernels::tp_backward_sample(d, xt.data() + j * d.dim1, b, we, got.data() + dst[e] * d.dim_out, ga, gb,
                                    sink.row(e), scratch);
        kernels::to_mul_ir(d.seg2, d.num_seg2, gb, gattr + e * d.dim2);
      }
      kernels::to_mul_ir(d.seg1, d.num_seg1, ga, gx + j * d.dim1);
    }
  });
}

}  // namespace equiforce::cpu
