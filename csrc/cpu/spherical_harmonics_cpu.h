// CPU launchers of the spherical-harmonics bodies: a parallel loop over vectors.
// `par(n, grain, fn)` runs fn(begin, end) over [0, n) (OpenMPParallelFor or at::parallel_for).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include <algorithm>
#include <type_traits>

#include "../kernels/spherical_harmonics.h"
#include "pack.h"

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

// Runs `body(r, io)` on blocks of W vectors held in SIMD packs: r[3] are the coordinates and io[dim]
// the per-vector rows of `rows_in` (gathered) / `rows_out` (scattered). A short last block repeats
// its first vector in the unused lanes and discards them.
template <typename T, typename Body>
void sh_blocks(int64_t begin, int64_t end, int64_t dim, const T* r, const T* rows_in, T* rows_out, int64_t out_dim,
               const Body& body) {
  using P = Pack32<T>;
  constexpr int W = P::width;
  P rp[3], io[kernels::kShMaxDim];
  for (int64_t i0 = begin; i0 < end; i0 += W) {
    const int m = static_cast<int>(std::min<int64_t>(W, end - i0));
    for (int lane = 0; lane < W; ++lane) {
      const int64_t src = i0 + (lane < m ? lane : 0);
      for (int a = 0; a < 3; ++a) rp[a].v[lane] = r[3 * src + a];
      if (rows_in)
        for (int64_t k = 0; k < dim; ++k) io[k].v[lane] = rows_in[src * dim + k];
    }
    body(rp, io);
    for (int lane = 0; lane < m; ++lane)
      for (int64_t k = 0; k < out_dim; ++k) rows_out[(i0 + lane) * out_dim + k] = io[k].v[lane];
  }
}

// out[n, (lmax+1)^2] = Y(r[n, 3])
template <typename T, typename Par>
void sh_forward_cpu(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, T* out, Par&& par) {
  sh_check_arguments(lmax, normalization);
  const ShScale<T> scale(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  const int l = static_cast<int>(lmax);
  par(n, kShGrain, [&](int64_t begin, int64_t end) {
    sh_blocks(begin, end, dim, r, static_cast<const T*>(nullptr), out, dim, [&](const auto* rp, auto* io) {
      kernels::sh_forward_one(l, normalize, scale.value, rp, io);
    });
  });
}

// gr[n, 3] = d<gout, Y>/dr
template <typename T, typename Par>
void sh_backward_cpu(int64_t lmax, bool normalize, int64_t normalization, int64_t n, const T* r, const T* gout,
                     T* gr, Par&& par) {
  sh_check_arguments(lmax, normalization);
  const ShScale<T> scale(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  const int l = static_cast<int>(lmax);
  par(n, kShGrain, [&](int64_t begin, int64_t end) {
    sh_blocks(begin, end, dim, r, gout, gr, 3, [&](const auto* rp, auto* io) {
      std::remove_const_t<std::remove_pointer_t<decltype(rp)>> g[3];
      kernels::sh_backward_one(l, normalize, scale.value, rp, io, g);
      io[0] = g[0]; io[1] = g[1]; io[2] = g[2];
    });
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
