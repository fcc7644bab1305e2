// CUDA launchers of the fused equivariant convolution (csrc/kernels/tensor_product.h): one thread
// per receiver in the forward and per sender in the backward, running the same per-row bodies as the
// CPU loops (csrc/cpu/conv_cpu.h), over edges grouped on the device by a stable radix sort.
// Torch-free: compiles with plain nvcc.
#include <cub/device/device_radix_sort.cuh>

#include <memory>

#include "common.cuh"

namespace equiforce::cuda {
namespace {

// ---- grouping edges by an endpoint: CSR on the device ----

__global__ void iota_kernel(int64_t n, int64_t* out) {
  EF_CUDA_FOR(i, n) { out[i] = i; }
}

__global__ void check_keys(int64_t n, const int64_t* key, int64_t groups, int* bad) {
  EF_CUDA_FOR(e, n) {
    if (key[e] < 0 || key[e] >= groups) atomicExch(bad, 1);
  }
}

// ptr[g] = first position p with sorted[p] >= g (lower bound), for g in [0, groups].
__global__ void csr_pointers(int64_t n, const int64_t* sorted, int64_t groups, int64_t* ptr) {
  EF_CUDA_FOR(g, groups + 1) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (sorted[mid] < g) lo = mid + 1;
      else hi = mid;
    }
    ptr[g] = lo;
  }
}

int key_bits(int64_t groups) {
  int bits = 1;
  while (bits < 63 && (int64_t(1) << bits) < groups) ++bits;
  return bits;
}

struct DeviceCsr {
  DeviceCsr(size_t bytes, cudaStream_t stream) : memory(bytes, stream) {}
  Workspace memory;
  const int64_t* ptr = nullptr;    // [groups + 1]
  const int64_t* order = nullptr;  // [num_edges]
};

// Throws unless every key lies in [0, groups): a wrong index must not pass silently. Skipped while
// the stream captures a CUDA graph (the check waits for the device).
void check_indices(const int64_t* key, int64_t num_edges, int64_t groups, const char* what, cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(stream, &capture);
  if (capture != cudaStreamCaptureStatusNone || num_edges == 0) return;
  Workspace flag(sizeof(int), stream);
  cudaMemsetAsync(flag.as<int>(), 0, sizeof(int), stream);
  check_keys<<<grid_for(num_edges), kBlock, 0, stream>>>(num_edges, key, groups, flag.as<int>());
  int bad = 0;
  cudaMemcpyAsync(&bad, flag.as<int>(), sizeof(int), cudaMemcpyDeviceToHost, stream);
  cudaStreamSynchronize(stream);
  check_cuda(what);
  if (bad)
    throw std::invalid_argument(std::string("equiforce::conv: ") + what + " has entries outside [0, " +
                                std::to_string(groups) + ")");
}

// Stable: within a group, edges keep their order, so sums are deterministic.
std::unique_ptr<DeviceCsr> group_edges(const int64_t* key, int64_t num_edges, int64_t groups, const char* what,
                                       cudaStream_t stream) {
  check_indices(key, num_edges, groups, what, stream);
  size_t temp_bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, key, static_cast<int64_t*>(nullptr),
                                  static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr), num_edges, 0,
                                  key_bits(groups + 1), stream);
  const size_t ints = static_cast<size_t>(3 * num_edges + groups + 1);
  const size_t temp_offset = (ints * 8 + 255) / 256 * 256;
  auto csr = std::make_unique<DeviceCsr>(temp_offset + temp_bytes, stream);
  int64_t* base = csr->memory.as<int64_t>();
  int64_t* ids = base;                      // [E]
  int64_t* order = ids + num_edges;         // [E]
  int64_t* sorted_keys = order + num_edges; // [E]
  int64_t* ptr = sorted_keys + num_edges;   // [groups + 1]
  if (num_edges > 0) {
    iota_kernel<<<grid_for(num_edges), kBlock, 0, stream>>>(num_edges, ids);
    cub::DeviceRadixSort::SortPairs(reinterpret_cast<unsigned char*>(base) + temp_offset, temp_bytes, key,
                                    sorted_keys, ids, order, num_edges, 0, key_bits(groups + 1), stream);
  }
  csr_pointers<<<grid_for(groups + 1), kBlock, 0, stream>>>(num_edges, sorted_keys, groups, ptr);
  check_cuda(what);
  csr->ptr = ptr;
  csr->order = order;
  return csr;
}

template <typename T>
__global__ void conv_forward_kernel(kernels::TpDescriptor<T> d, int64_t num_nodes, const T* xt, const T* attr,
                                    const T* w, bool per_edge, const int64_t* src, const int64_t* ptr,
                                    const int64_t* order, T* out, T* work, int64_t per_slot) {
  const int64_t slot = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  T* b = work + slot * per_slot;
  T* o = b + d.dim2;
  T* scratch = o + d.dim_out;
  EF_CUDA_FOR(i, num_nodes) { kernels::conv_receiver(d, i, xt, attr, w, per_edge, src, ptr, order, out, b, o, scratch); }
}

template <typename T>
__global__ void conv_backward_kernel(kernels::TpDescriptor<T> d, int64_t num_senders, const T* xt, const T* attr,
                                     const T* w, bool per_edge, const int64_t* dst, const int64_t* ptr,
                                     const int64_t* order, const T* got, T* gx, T* gattr, T* gw, T* work,
                                     int64_t per_slot) {
  const int64_t slot = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  T* b = work + slot * per_slot;
  T* ga = b + d.dim2;
  T* gb = ga + d.dim1;
  T* acc = gb + d.dim2;  // [numel] when the weights are shared
  T* scratch = acc + d.weight_numel;
  if (gw && !per_edge)
    for (int64_t q = 0; q < d.weight_numel; ++q) acc[q] = T(0);
  EF_CUDA_FOR(j, num_senders) {
    kernels::conv_sender(d, j, xt, attr, w, per_edge, dst, ptr, order, got, gx, gattr, gw, acc, b, ga, gb, scratch);
  }
}

}  // namespace

// ---- convolution ----

template <typename T>
void conv_forward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t num_senders,
                  int64_t num_nodes, int64_t num_edges, const T* x, const T* attr, const T* w, bool per_edge_weights,
                  const int64_t* src, const int64_t* dst, T* out, void* stream) {
  const cudaStream_t s = as_stream(stream);
  if (num_nodes == 0) return;
  check_indices(src, num_edges, num_senders, "edge_src", s);
  const auto by_dst = group_edges(dst, num_edges, num_nodes, "edge_dst", s);
  Workspace xt(static_cast<size_t>(num_senders * host.dim1) * sizeof(T), s);
  if (num_senders > 0)
    rows_to_ir_mul<T><<<grid_for(num_senders), kBlock, 0, s>>>(d.seg1, host.num_seg1, host.dim1, num_senders, x,
                                                                xt.as<T>());
  const int64_t per_slot = host.dim2 + host.dim_out + host.scratch;
  const int64_t blocks = (slots_for(num_nodes, kMaxSlots) + kBlock - 1) / kBlock;
  Workspace work(static_cast<size_t>(blocks * kBlock * per_slot) * sizeof(T), s);
  conv_forward_kernel<T><<<blocks, kBlock, 0, s>>>(d, num_nodes, xt.as<T>(), attr, w, per_edge_weights, src,
                                                   by_dst->ptr, by_dst->order, out, work.as<T>(), per_slot);
  check_cuda("conv");
}

template <typename T>
void conv_backward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t num_senders,
                   int64_t num_nodes, int64_t num_edges, const T* x, const T* attr, const T* w, bool per_edge_weights,
                   const int64_t* src, const int64_t* dst, const T* gout, T* gx, T* gattr, T* gw, void* stream) {
  const cudaStream_t s = as_stream(stream);
  const bool shared_grad = gw && !per_edge_weights;
  if (shared_grad) fill_zero<T><<<grid_for(host.weight_numel), kBlock, 0, s>>>(host.weight_numel, gw);
  if (num_senders == 0) return;
  check_indices(dst, num_edges, num_nodes, "edge_dst", s);
  const auto by_src = group_edges(src, num_edges, num_senders, "edge_src", s);
  Workspace xt(static_cast<size_t>(num_senders * host.dim1) * sizeof(T), s);
  Workspace got(static_cast<size_t>(num_nodes * host.dim_out) * sizeof(T), s);
  rows_to_ir_mul<T><<<grid_for(num_senders), kBlock, 0, s>>>(d.seg1, host.num_seg1, host.dim1, num_senders, x,
                                                              xt.as<T>());
  if (num_nodes > 0)
    rows_to_ir_mul<T><<<grid_for(num_nodes), kBlock, 0, s>>>(d.seg_out, host.num_seg_out, host.dim_out, num_nodes,
                                                              gout, got.as<T>());
  const int64_t per_slot = host.dim2 + host.dim1 + host.dim2 + host.weight_numel + host.scratch;
  const int64_t blocks = (slots_for(num_senders, shared_grad ? kMaxSlotsSharedGrad : kMaxSlots) + kBlock - 1) / kBlock;
  Workspace work(static_cast<size_t>(blocks * kBlock * per_slot) * sizeof(T), s);
  conv_backward_kernel<T><<<blocks, kBlock, 0, s>>>(d, num_senders, xt.as<T>(), attr, w, per_edge_weights, dst,
                                                    by_src->ptr, by_src->order, got.as<T>(), gx, gattr, gw,
                                                    work.as<T>(), per_slot);
  if (shared_grad) {  // the sum over slots replaces the zeros written above
    sum_slot_accumulators<T><<<grid_for(host.weight_numel), kBlock, 0, s>>>(
        blocks * kBlock, host.weight_numel, work.as<T>(), per_slot, 2 * host.dim2 + host.dim1, gw);
  }
  check_cuda("conv_backward");
}

#define EF_INSTANTIATE_CONV(T)                                                                                \
  template void conv_forward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,     \
                                int64_t, int64_t, const T*, const T*, const T*, bool, const int64_t*,           \
                                const int64_t*, T*, void*);                                                     \
  template void conv_backward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,    \
                                 int64_t, int64_t, const T*, const T*, const T*, bool, const int64_t*,          \
                                 const int64_t*, const T*, T*, T*, T*, void*);
EF_INSTANTIATE_CONV(float)
EF_INSTANTIATE_CONV(double)

}  // namespace equiforce::cuda
