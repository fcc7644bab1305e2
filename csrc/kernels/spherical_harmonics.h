// Per-vector bodies of the spherical-harmonics op: forward, vector-Jacobian product and
// Hessian-vector product. Called unchanged by the CPU loop and the CUDA kernel.
#pragma once

#include "common.h"
#include "sh_generated.h"

namespace equiforce::kernels {

constexpr int kShMaxDim = (kShLmaxSupported + 1) * (kShLmaxSupported + 1);
// e3nn's torch.nn.functional.normalize(x, dim=-1) divides by max(|x|, 1e-12).
constexpr double kShNormalizeEps = 1e-12;

// out[(lmax+1)^2] = scale[l] * Y^l(r or r/|r|).  V is T or Dual<T>; scale is plain T.
template <typename V, typename T>
EF_HOST_DEVICE inline void sh_forward_one(int lmax, bool normalize, const T* scale, const V* r, V* out) {
  V x = r[0], y = r[1], z = r[2];
  if (normalize) {
    const V n = sqrt(x * x + y * y + z * z);
    const V eps(kShNormalizeEps);
    const V inv = V(1.0) / select_gt(n, eps, n, eps);
    x = x * inv; y = y * inv; z = z * inv;
  }
  sh_component(lmax, x, y, z, out);
  for (int l = 0; l <= lmax; ++l)
    for (int i = l * l; i < (l + 1) * (l + 1); ++i) out[i] = out[i] * scale[l];
}

// gr[3] = d<gout, Y(r)>/dr.
template <typename V, typename T>
EF_HOST_DEVICE inline void sh_backward_one(int lmax, bool normalize, const T* scale, const V* r, const V* gout, V* gr) {
  V x = r[0], y = r[1], z = r[2];
  V inv(1.0), unclipped(1.0);
  if (normalize) {
    const V n = sqrt(x * x + y * y + z * z);
    const V eps(kShNormalizeEps);
    inv = V(1.0) / select_gt(n, eps, n, eps);
    unclipped = select_gt(n, eps, V(1.0), V(0.0));
    x = x * inv; y = y * inv; z = z * inv;
  }
  V Y[kShMaxDim], gY[kShMaxDim];
  sh_component(lmax, x, y, z, Y);
  for (int l = 0; l <= lmax; ++l)
    for (int i = l * l; i < (l + 1) * (l + 1); ++i) gY[i] = gout[i] * scale[l];
  V gx(0.0), gy(0.0), gz(0.0);
  sh_component_vjp(lmax, x, y, z, Y, gY, gx, gy, gz);
  if (normalize) {
    // d(r/|r|)/dr = (I - u u^T)/|r|; below eps the input was scaled by 1/eps instead (as e3nn).
    const V dot = (x * gx + y * gy + z * gz) * unclipped;
    gx = (gx - x * dot) * inv; gy = (gy - y * dot) * inv; gz = (gz - z * dot) * inv;
  }
  gr[0] = gx; gr[1] = gy; gr[2] = gz;
}

// Double backward at one vector: given the cotangent v of gr (ggr), returns
// ggout = J v (the tangent of Y) and gr2 = (d^2<gout, Y>/dr^2) v.
template <typename T>
EF_HOST_DEVICE inline void sh_double_backward_one(int lmax, bool normalize, const T* scale, const T* r, const T* gout,
                                                   const T* ggr, T* ggout, T* gr2) {
  using D = Dual<T>;
  D rd[3] = {D(r[0], ggr[0]), D(r[1], ggr[1]), D(r[2], ggr[2])};
  D Yd[kShMaxDim], god[kShMaxDim], grd[3];
  const int dim = (lmax + 1) * (lmax + 1);
  sh_forward_one(lmax, normalize, scale, rd, Yd);
  for (int i = 0; i < dim; ++i) { ggout[i] = Yd[i].d; god[i] = D(gout[i], T(0)); }
  sh_backward_one(lmax, normalize, scale, rd, god, grd);
  for (int a = 0; a < 3; ++a) gr2[a] = grd[a].d;
}

}  // namespace equiforce::kernels
