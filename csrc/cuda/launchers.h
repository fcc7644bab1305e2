// CUDA launchers over the torch-free bodies of csrc/kernels/: the CUDA twins of csrc/cpu/*.
// This header needs neither CUDA nor torch, so the op registrations (C++) and the pybind11 module
// include it; the definitions are in csrc/cuda/*.cu, compiled by nvcc. Pointers are device pointers,
// `stream` a cudaStream_t (nullptr: the default stream). Errors (bad arguments, CUDA failures) are
// std::invalid_argument / std::runtime_error with a message that says what to do.
#pragma once

#include <cstdint>
#include <vector>

#include "../kernels/neighbor_list.h"
#include "../kernels/tensor_product.h"

namespace equiforce::cuda {

// ---- spherical harmonics: one thread per vector ----
template <typename T>
void sh_forward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, T* out, void* stream);
template <typename T>
void sh_backward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout, T* gr,
                 void* stream);
template <typename T>
void sh_double_backward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout,
                        const T* ggr, T* ggout, T* gr2, void* stream);

// Launchers allocate their temporary memory (per-thread scratch, CSR arrays) stream-ordered
// (cudaMallocAsync), so they can be captured in a CUDA graph once warmed up.

// ---- tensor product: one thread per sample; x1, x2, out in mul_ir ----
// w: [n, numel] (per_sample_weights), [numel] or null. `d` is a device view (a copy of
// cpu::HostDescriptor::pack(), seen through view_at), `host` the same descriptor on the host (sizes).
template <typename T>
void tp_forward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t n, const T* x1,
                const T* x2, const T* w, bool per_sample_weights, T* out, void* stream);
// g1, g2, gw overwritten (gw: [n, numel], or [numel] summed over samples when shared, or null).
template <typename T>
void tp_backward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t n, const T* x1,
                 const T* x2, const T* w, bool per_sample_weights, const T* gout, T* g1, T* g2, T* gw, void* stream);

// ---- fused convolution: out[i] = sum_{e: dst[e] = i} TP(x[src[e]], attr[e]; w[e]) ----
// Edges grouped by receiver (forward) or by sender (backward) on the device (a stable radix sort):
// every output row has one writer, no atomics, no [E, d_out] messages. Indices are checked unless
// the stream is capturing a graph.
template <typename T>
void conv_forward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t num_senders,
                  int64_t num_nodes, int64_t num_edges, const T* x, const T* attr, const T* w, bool per_edge_weights,
                  const int64_t* src, const int64_t* dst, T* out, void* stream);
template <typename T>
void conv_backward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t num_senders,
                   int64_t num_nodes, int64_t num_edges, const T* x, const T* attr, const T* w, bool per_edge_weights,
                   const int64_t* src, const int64_t* dst, const T* gout, T* gx, T* gattr, T* gw, void* stream);

// ---- neighbour list: the cell grid is built on the host (csrc/cpu/neighbor_list_cpu.h), the pair
// search runs on the device: a count pass, a scan, a fill pass ----
struct DeviceGridArrays {  // device copies of a NeighborGrid's arrays
  const int64_t *atom_bin, *wrap_shift, *sorted_wrap;
  const double* wrapped;
};
void neighbor_count(const kernels::CellGrid& grid, const DeviceGridArrays& a, int64_t n, double cutoff,
                    bool self_interaction, int64_t* counts, void* stream);
void neighbor_fill(const kernels::CellGrid& grid, const DeviceGridArrays& a, int64_t n, double cutoff,
                   bool self_interaction, const int64_t* offsets, int64_t* i_out, int64_t* j_out, int64_t* shift_out,
                   void* stream);

// Throws std::runtime_error naming `what` if the last CUDA call failed.
void check_cuda(const char* what);
void synchronize(void* stream);

}  // namespace equiforce::cuda
