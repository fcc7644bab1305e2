// CUDA launchers of the tensor-product bodies (csrc/kernels/tensor_product.h): the plain tensor
// product (one thread per sample) and the fused convolution (one thread per receiver in the
// forward, per sender in the backward, over edges grouped on the device by a stable radix sort).
// The same bodies as the CPU loops; per-thread scratch lives in a stream-ordered workspace.
// Torch-free: compiles with plain nvcc.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common.cuh"

namespace equiforce::cuda {
namespace {

// Stream-ordered device memory, freed (stream-ordered) when it goes out of scope.
class Workspace {
 public:
  Workspace(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes == 0) return;
    if (cudaMallocAsync(&ptr_, bytes, stream) != cudaSuccess)
      throw std::runtime_error("equiforce: out of GPU memory for a " + std::to_string(bytes >> 20) +
                               " MiB workspace; use smaller batches");
  }
  ~Workspace() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Workspace(const Workspace&) = delete;
  template <typename P>
  P* as() const { return static_cast<P*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Threads that carry a scratch slot: a grid-stride loop over the rows reuses them.
constexpr int64_t kMaxSlots = 32768;
constexpr int64_t kMaxSlotsSharedGrad = 1024;  // each also accumulates a [numel] weight gradient

int64_t slots_for(int64_t rows, int64_t cap) { return std::max<int64_t>(1, std::min(rows, cap)); }

template <typename T>
__global__ void tp_forward_kernel(kernels::TpDescriptor<T> d, int64_t n, const T* x1, const T* x2, const T* w,
                                  bool per_sample, T* out, T* work, int64_t per_slot) {
  const int64_t slot = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  T* a = work + slot * per_slot;
  T* b = a + d.dim1;
  T* o = b + d.dim2;
  T* scratch = o + d.dim_out;
  EF_CUDA_FOR(s, n) { kernels::tp_forward_mul_ir(d, s, x1, x2, w, per_sample, out, a, b, o, scratch); }
}

// Weight gradients: row s of gw (per sample) or the slot's own accumulator (shared; summed after).
template <typename T>
__device__ T* weight_grad_row(T* gw, bool per_sample, T* slot_acc, int64_t numel, int64_t s) {
  if (!gw) return nullptr;
  if (!per_sample) return slot_acc;
  T* r = gw + s * numel;
  for (int64_t q = 0; q < numel; ++q) r[q] = T(0);
  return r;
}

template <typename T>
__global__ void tp_backward_kernel(kernels::TpDescriptor<T> d, int64_t n, const T* x1, const T* x2, const T* w,
                                   bool per_sample, const T* gout, T* g1, T* g2, T* gw, T* work, int64_t per_slot) {
  const int64_t slot = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  T* a = work + slot * per_slot;
  T* b = a + d.dim1;
  T* ga = b + d.dim2;
  T* gb = ga + d.dim1;
  T* go = gb + d.dim2;
  T* acc = go + d.dim_out;  // [numel] when the weights are shared
  T* scratch = acc + d.weight_numel;
  if (gw && !per_sample)
    for (int64_t q = 0; q < d.weight_numel; ++q) acc[q] = T(0);
  EF_CUDA_FOR(s, n) {
    kernels::to_ir_mul(d.seg1, d.num_seg1, x1 + s * d.dim1, a);
    kernels::to_ir_mul(d.seg2, d.num_seg2, x2 + s * d.dim2, b);
    kernels::to_ir_mul(d.seg_out, d.num_seg_out, gout + s * d.dim_out, go);
    for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
    for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
    const T* ws = w ? (per_sample ? w + s * d.weight_numel : w) : nullptr;
    kernels::tp_backward_sample(d, a, b, ws, go, ga, gb, weight_grad_row(gw, per_sample, acc, d.weight_numel, s),
                                scratch);
    kernels::to_mul_ir(d.seg1, d.num_seg1, ga, g1 + s * d.dim1);
    kernels::to_mul_ir(d.seg2, d.num_seg2, gb, g2 + s * d.dim2);
  }
}

// gw[q] = sum over slots of their accumulators (shared weights), one thread per q.
template <typename T>
__global__ void sum_slot_accumulators(int64_t slots, int64_t numel, const T* work, int64_t per_slot, int64_t offset,
                                      T* gw) {
  EF_CUDA_FOR(q, numel) {
    T total(0);
    for (int64_t s = 0; s < slots; ++s) total += work[s * per_slot + offset + q];
    gw[q] = total;
  }
}

template <typename T>
__global__ void rows_to_ir_mul(const kernels::TpSegment* segs, int64_t num_segs, int64_t dim, int64_t rows,
                               const T* src, T* dst) {
  EF_CUDA_FOR(r, rows) { kernels::to_ir_mul(segs, num_segs, src + r * dim, dst + r * dim); }
}

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
  EF_CUDA_FOR(i, num_nodes) {
    for (int64_t k = 0; k < d.dim_out; ++k) o[k] = T(0);
    for (int64_t p = ptr[i]; p < ptr[i + 1]; ++p) {
      const int64_t e = order[p];
      kernels::to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
      const T* we = w ? (per_edge ? w + e * d.weight_numel : w) : nullptr;
      kernels::tp_forward_sample(d, xt + src[e] * d.dim1, b, we, o, scratch);
    }
    kernels::to_mul_ir(d.seg_out, d.num_seg_out, o, out + i * d.dim_out);
  }
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
  T* acc = gb + d.dim2;
  T* scratch = acc + d.weight_numel;
  if (gw && !per_edge)
    for (int64_t q = 0; q < d.weight_numel; ++q) acc[q] = T(0);
  EF_CUDA_FOR(j, num_senders) {
    for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
    for (int64_t p = ptr[j]; p < ptr[j + 1]; ++p) {
      const int64_t e = order[p];
      kernels::to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
      for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
      const T* we = w ? (per_edge ? w + e * d.weight_numel : w) : nullptr;
      kernels::tp_backward_sample(d, xt + j * d.dim1, b, we, got + dst[e] * d.dim_out, ga, gb,
                                  weight_grad_row(gw, per_edge, acc, d.weight_numel, e), scratch);
      kernels::to_mul_ir(d.seg2, d.num_seg2, gb, gattr + e * d.dim2);
    }
    kernels::to_mul_ir(d.seg1, d.num_seg1, ga, gx + j * d.dim1);
  }
}

template <typename T>
__global__ void fill_zero(int64_t n, T* p) {
  EF_CUDA_FOR(i, n) { p[i] = T(0); }
}

}  // namespace

// ---- descriptor ----

template <typename T>
DeviceDescriptorLayout<T>::DeviceDescriptorLayout(const kernels::TpDescriptor<T>& view) : host(view) {
  for (int64_t k = 0; k < view.num_instructions; ++k) nnz = std::max(nnz, view.instructions[k].nnz_end);
  num_ints = 3 * (view.num_seg1 + view.num_seg2 + view.num_seg_out) + 8 * view.num_instructions + 3 * nnz;
}

template <typename T>
std::vector<unsigned char> DeviceDescriptorLayout<T>::pack() const {
  std::vector<unsigned char> out(num_ints * 8 + (host.num_instructions + nnz) * sizeof(T));
  unsigned char* p = out.data();
  const auto put = [&p](const void* src, size_t bytes) {
    if (bytes) std::memcpy(p, src, bytes);
    p += bytes;
  };
  put(host.seg1, host.num_seg1 * sizeof(kernels::TpSegment));
  put(host.seg2, host.num_seg2 * sizeof(kernels::TpSegment));
  put(host.seg_out, host.num_seg_out * sizeof(kernels::TpSegment));
  put(host.instructions, host.num_instructions * sizeof(kernels::TpInstruction));
  put(host.nnz_ijk, 3 * nnz * sizeof(int64_t));
  put(host.path_weight, host.num_instructions * sizeof(T));
  put(host.coeff, nnz * sizeof(T));
  return out;
}

template <typename T>
kernels::TpDescriptor<T> DeviceDescriptorLayout<T>::view(const void* base) const {
  kernels::TpDescriptor<T> v = host;
  const auto* segs = static_cast<const kernels::TpSegment*>(base);
  v.seg1 = segs;
  v.seg2 = v.seg1 + host.num_seg1;
  v.seg_out = v.seg2 + host.num_seg2;
  v.instructions = reinterpret_cast<const kernels::TpInstruction*>(v.seg_out + host.num_seg_out);
  v.nnz_ijk = reinterpret_cast<const int64_t*>(v.instructions + host.num_instructions);
  const auto* floats = reinterpret_cast<const T*>(static_cast<const unsigned char*>(base) + num_ints * 8);
  v.path_weight = floats;
  v.coeff = floats + host.num_instructions;
  return v;
}

// ---- tensor product ----

template <typename T>
void tp_forward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t n, const T* x1,
                const T* x2, const T* w, bool per_sample_weights, T* out, void* stream) {
  if (n == 0) return;
  const cudaStream_t s = as_stream(stream);
  const int64_t per_slot = host.dim1 + host.dim2 + host.dim_out + host.scratch;
  const int64_t slots = slots_for(n, kMaxSlots);
  const int64_t blocks = (slots + kBlock - 1) / kBlock;
  Workspace work(static_cast<size_t>(blocks * kBlock * per_slot) * sizeof(T), s);
  tp_forward_kernel<T><<<blocks, kBlock, 0, s>>>(d, n, x1, x2, w, per_sample_weights, out, work.as<T>(), per_slot);
  check_cuda("tensor_product");
}

template <typename T>
void tp_backward(const kernels::TpDescriptor<T>& d, const kernels::TpDescriptor<T>& host, int64_t n, const T* x1,
                 const T* x2, const T* w, bool per_sample_weights, const T* gout, T* g1, T* g2, T* gw, void* stream) {
  const cudaStream_t s = as_stream(stream);
  const bool shared_grad = gw && !per_sample_weights;
  if (n == 0) {
    if (shared_grad) fill_zero<T><<<grid_for(host.weight_numel), kBlock, 0, s>>>(host.weight_numel, gw);
    return;
  }
  const int64_t per_slot = 2 * (host.dim1 + host.dim2) + host.dim_out + host.weight_numel + host.scratch;
  const int64_t slots = slots_for(n, shared_grad ? kMaxSlotsSharedGrad : kMaxSlots);
  const int64_t blocks = (slots + kBlock - 1) / kBlock;
  Workspace work(static_cast<size_t>(blocks * kBlock * per_slot) * sizeof(T), s);
  tp_backward_kernel<T><<<blocks, kBlock, 0, s>>>(d, n, x1, x2, w, per_sample_weights, gout, g1, g2, gw, work.as<T>(),
                                                  per_slot);
  if (shared_grad)
    sum_slot_accumulators<T><<<grid_for(host.weight_numel), kBlock, 0, s>>>(
        blocks * kBlock, host.weight_numel, work.as<T>(), per_slot, 2 * (host.dim1 + host.dim2) + host.dim_out, gw);
  check_cuda("tensor_product_backward");
}

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

#define EF_INSTANTIATE_TP(T)                                                                                        \
  template struct DeviceDescriptorLayout<T>;                                                                        \
  template void tp_forward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t, const T*, \
                              const T*, const T*, bool, T*, void*);                                                 \
  template void tp_backward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,          \
                               const T*, const T*, const T*, bool, const T*, T*, T*, T*, void*);                    \
  template void conv_forward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,         \
                                int64_t, int64_t, const T*, const T*, const T*, bool, const int64_t*,               \
                                const int64_t*, T*, void*);                                                         \
  template void conv_backward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,        \
                                 int64_t, int64_t, const T*, const T*, const T*, bool, const int64_t*,              \
                                 const int64_t*, const T*, T*, T*, T*, void*);
EF_INSTANTIATE_TP(float)
EF_INSTANTIATE_TP(double)

}  // namespace equiforce::cuda
