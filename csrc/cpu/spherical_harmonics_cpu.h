// CPU launchers of the spherical-harmonics bodies: a parallel loop over vectors.
// `par(n, grain, fn)` runs fn(begin, end) over [0, n) (OpenMPParallelFor or at::parallel_for).
#pragma once

#include <algorithm>
#include <type_traits>

#include "../kernels/sh_options.h"
#include "../kernels/spherical_harmonics.h"
#include "pack.h"

namespace equiforce::cpu {

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
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
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
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
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
  const auto scale = kernels::sh_scale<T>(lmax, normalization);
  const int64_t dim = (lmax + 1) * (lmax + 1);
  par(n, kShGrain / 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      kernels::sh_double_backward_one(static_cast<int>(lmax), normalize, scale.value, r + 3 * i, gout + dim * i,
                                      ggr + 3 * i, ggout + dim * i, gr2 + 3 * i);
  });
}

}  // namespace equiforce::cpu
