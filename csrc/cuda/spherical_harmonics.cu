// CUDA launchers of the spherical-harmonics bodies (csrc/kernels/spherical_harmonics.h): one thread
// per vector, the same body as the CPU loop. Torch-free: compiles with plain nvcc.
#include "../kernels/sh_options.h"
#include "../kernels/spherical_harmonics.h"
#include "common.cuh"

namespace equiforce::cuda {
namespace {

template <typename T>
__global__ void sh_forward_kernel(int lmax, bool normalize, kernels::ShScale<T> scale, int64_t n,
                                  const T* __restrict__ r, T* __restrict__ out) {
  const int64_t dim = (lmax + 1) * (lmax + 1);
  EF_CUDA_FOR(i, n) {
    T y[kernels::kShMaxDim];
    const T v[3] = {r[3 * i], r[3 * i + 1], r[3 * i + 2]};
    kernels::sh_forward_one(lmax, normalize, scale.value, v, y);
    for (int64_t k = 0; k < dim; ++k) out[i * dim + k] = y[k];
  }
}

template <typename T>
__global__ void sh_backward_kernel(int lmax, bool normalize, kernels::ShScale<T> scale, int64_t n,
                                   const T* __restrict__ r, const T* __restrict__ gout, T* __restrict__ gr) {
  const int64_t dim = (lmax + 1) * (lmax + 1);
  EF_CUDA_FOR(i, n) {
    T go[kernels::kShMaxDim];
    for (int64_t k = 0; k < dim; ++k) go[k] = gout[i * dim + k];
    const T v[3] = {r[3 * i], r[3 * i + 1], r[3 * i + 2]};
    T g[3];
    kernels::sh_backward_one(lmax, normalize, scale.value, v, go, g);
    gr[3 * i] = g[0], gr[3 * i + 1] = g[1], gr[3 * i + 2] = g[2];
  }
}

template <typename T>
__global__ void sh_double_backward_kernel(int lmax, bool normalize, kernels::ShScale<T> scale, int64_t n,
                                          const T* __restrict__ r, const T* __restrict__ gout, const T* __restrict__ ggr,
                                          T* __restrict__ ggout, T* __restrict__ gr2) {
  const int64_t dim = (lmax + 1) * (lmax + 1);
  EF_CUDA_FOR(i, n) {
    kernels::sh_double_backward_one(lmax, normalize, scale.value, r + 3 * i, gout + dim * i, ggr + 3 * i,
                                    ggout + dim * i, gr2 + 3 * i);
  }
}

}  // namespace

template <typename T>
void sh_forward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, T* out, void* stream) {
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
  if (n == 0) return;
  sh_forward_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<int>(lmax), normalize, scale, n, r,
                                                                      out);
  check_cuda("spherical_harmonics");
}

template <typename T>
void sh_backward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout, T* gr,
                 void* stream) {
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
  if (n == 0) return;
  sh_backward_kernel<T><<<grid_for(n), kBlock, 0, as_stream(stream)>>>(static_cast<int>(lmax), normalize, scale, n,
                                                                       r, gout, gr);
  check_cuda("spherical_harmonics_backward");
}

template <typename T>
void sh_double_backward(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout,
                        const T* ggr, T* ggout, T* gr2, void* stream) {
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
  if (n == 0) return;
  sh_double_backward_kernel<T><<<grid_for(n, 64), 64, 0, as_stream(stream)>>>(static_cast<int>(lmax), normalize,
                                                                              scale, n, r, gout, ggr, ggout, gr2);
  check_cuda("spherical_harmonics_double_backward");
}

#define EF_INSTANTIATE_SH(T)                                                                                    \
  template void sh_forward<T>(int64_t, bool, int64_t, int64_t, const T*, T*, void*);                          \
  template void sh_backward<T>(int64_t, bool, int64_t, int64_t, const T*, const T*, T*, void*);               \
  template void sh_double_backward<T>(int64_t, bool, int64_t, int64_t, const T*, const T*, const T*, T*, T*, \
                                      void*);
EF_INSTANTIATE_SH(float)
EF_INSTANTIATE_SH(double)

}  // namespace equiforce::cuda
