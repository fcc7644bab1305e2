// CUDA launchers of the plain tensor product (csrc/kernels/tensor_product.h): one thread per sample
// running the same per-sample bodies as the CPU loop; per-thread scratch in a stream-ordered
// workspace. The fused convolution is in conv.cu. Torch-free: compiles with plain nvcc.
#include "common.cuh"

namespace equiforce::cuda {
namespace {

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
    kernels::tp_backward_mul_ir(d, s, x1, x2, w, per_sample, gout, g1, g2,
                                kernels::weight_grad_row(gw, per_sample, acc, d.weight_numel, s), a, b, ga, gb, go,
                                scratch);
  }
}

}  // namespace

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

#define EF_INSTANTIATE_TP(T)                                                                                        \
  template void tp_forward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t, const T*, \
                              const T*, const T*, bool, T*, void*);                                                 \
  template void tp_backward<T>(const kernels::TpDescriptor<T>&, const kernels::TpDescriptor<T>&, int64_t,          \
                               const T*, const T*, const T*, bool, const T*, T*, T*, T*, void*);
EF_INSTANTIATE_TP(float)
EF_INSTANTIATE_TP(double)

}  // namespace equiforce::cuda
