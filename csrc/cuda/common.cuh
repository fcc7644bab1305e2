// Shared pieces of the CUDA launchers: grid sizes, stream-ordered scratch, the slot accumulators of
// shared-weight gradients, layout transposes. Torch-free; check_cuda and synchronize are in common.cu.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "launchers.h"

namespace equiforce::cuda {

constexpr int kBlock = 128;

inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// Grid-stride loop over [0, n).
#define EF_CUDA_FOR(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

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

inline int64_t slots_for(int64_t rows, int64_t cap) { return std::max<int64_t>(1, std::min(rows, cap)); }

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

// Transposes every row of a [rows, dim] mul_ir matrix to ir_mul.
template <typename T>
__global__ void rows_to_ir_mul(const kernels::TpSegment* segs, int64_t num_segs, int64_t dim, int64_t rows,
                               const T* src, T* dst) {
  EF_CUDA_FOR(r, rows) { kernels::to_ir_mul(segs, num_segs, src + r * dim, dst + r * dim); }
}

template <typename T>
__global__ void fill_zero(int64_t n, T* p) {
  EF_CUDA_FOR(i, n) { p[i] = T(0); }
}

}  // namespace equiforce::cuda
