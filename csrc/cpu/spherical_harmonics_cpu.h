// CPU launchers of the spherical-harmonics bodies: a parallel loop over vectors.
// `par(n, grain, fn)` runs fn(begin, end) over [0, n) (OpenMPParallelFor or at::parallel_for).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "../kernels/spherical_harmonics.h"

namespace equiforce::cpu {

enum ShNormalization : int64_t { kComponent = 0, kNorm = 1, kIntegral = 2 };

inline void sh_check_arguments(int64_t lmax, int64_t normalization) {
  if (lmax < 0 || lmax > kernels::kShLmaxSupported)
    throw std::invalid_argument("equiforce: spherical harmonics support 0 <= lmax <= " +
                                std::to_string(kernels::kShLmaxSupported) + ", got lmax=" + std::to_string(lmax));
  if (normalization < kComponent || normalization > kIntegral)
    throw std::invalid_argument("equiforce: normalization code must be 0 (component), 1 (norm) or 2 (integral)");
}

template <typename T>
struct ShScale {
  T value[kernels::kShLmaxSupported + 1];
  ShScale(int64_t lmax, int64_t normalization) {
    for (int64_t l = 0; l <= lmax; ++l) {
      double s = 1.0;
      if (normalization == kNorm) s = 1.0 / std::sqrt(2.0 * l + 1.0);
      if (normalization == kIntegral) s = 1.0 / std::sqrt(4.0 * M_PI);
      value[l] = static_cast<T>(s);
    }
  }
};

constexpr int64_t kShGrain = 1024;

// out[n, (lmax+1)^2] = Y(r[n, 3])
template <typename T, typename Par>
void sh_forward_cpu(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, T* out, Par&& par) {
  sh_check_arguments(lmax, normalization);
  const ShScale<T> scale(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  par(n, kShGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      kernels::sh_forward_one(static_cast<int>(lmax), normalize, scale.value, r + 3 * i, out + dim * i);
  });
}

// gr[n, 3] = d<gout, Y>/dr
template <typename T, typename Par>
void sh_backward_cpu(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout,
                     T* gr, Par&& par) {
  sh_check_arguments(lmax, normalization);
  const ShScale<T> scale(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  par(n, kShGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      kernels::sh_backward_one(static_cast<int>(lmax), normalize, scale.value, r + 3 * i, gout + dim * i, gr + 3 * i);
  });
}

// ggout[n, dim] = J ggr,  gr2[n, 3] = H[gout] ggr
template <typename T, typename Par>
void sh_double_backward_cpu(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r,
                            const T* gout, const T* ggr, T* ggout, T* gr2, Par&& par) {
  sh_check_arguments(lmax, normalization);
  const ShScale<T> scale(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  par(n, kShGrain / 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      kernels::sh_double_backward_one(static_cast<int>(lmax), normalize, scale.value, r + 3 * i, gout + dim * i,
                                      ggr + 3 * i, ggout + dim * i, gr2 + 3 * i);
  });
}

}  // namespace equiforce::cpu
