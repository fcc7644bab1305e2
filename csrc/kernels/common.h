// Shared definitions for the torch-free kernel bodies: they compile as plain C++ and as CUDA.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define EF_HOST_DEVICE __host__ __device__
#else
#define EF_HOST_DEVICE
#endif

namespace equiforce::kernels {

using std::sqrt;

// Forward-mode dual number a + b*eps (eps^2 = 0). Running a reverse-mode body on duals gives
// Hessian-vector products, which is how the double backward of the spherical harmonics works.
template <typename F>
struct Dual {
  F v, d;
  EF_HOST_DEVICE constexpr Dual() : v(0), d(0) {}
  EF_HOST_DEVICE constexpr Dual(double value) : v(static_cast<F>(value)), d(0) {}
  EF_HOST_DEVICE constexpr Dual(F value, F tangent) : v(value), d(tangent) {}
  EF_HOST_DEVICE Dual& operator+=(const Dual& o) { v += o.v; d += o.d; return *this; }
  EF_HOST_DEVICE Dual& operator-=(const Dual& o) { v -= o.v; d -= o.d; return *this; }
  EF_HOST_DEVICE Dual& operator*=(const Dual& o) { d = d * o.v + v * o.d; v *= o.v; return *this; }
};

template <typename F> EF_HOST_DEVICE inline Dual<F> operator+(Dual<F> a, const Dual<F>& b) { return a += b; }
template <typename F> EF_HOST_DEVICE inline Dual<F> operator-(Dual<F> a, const Dual<F>& b) { return a -= b; }
template <typename F> EF_HOST_DEVICE inline Dual<F> operator-(const Dual<F>& a) { return Dual<F>(-a.v, -a.d); }
template <typename F> EF_HOST_DEVICE inline Dual<F> operator*(Dual<F> a, const Dual<F>& b) { return a *= b; }
template <typename F> EF_HOST_DEVICE inline Dual<F> operator*(const Dual<F>& a, F s) { return Dual<F>(a.v * s, a.d * s); }
template <typename F> EF_HOST_DEVICE inline Dual<F> operator/(const Dual<F>& a, const Dual<F>& b) {
  return Dual<F>(a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v));
}
template <typename F> EF_HOST_DEVICE inline bool operator>(const Dual<F>& a, const Dual<F>& b) { return a.v > b.v; }
template <typename F> EF_HOST_DEVICE inline Dual<F> sqrt(const Dual<F>& a) {
  const F s = sqrt(a.v);
  return Dual<F>(s, s > F(0) ? a.d / (F(2) * s) : F(0));
}

// Branch-free `a > b ? x : y`, so that the same body runs on scalars, duals and SIMD packs
// (csrc/cpu/pack.h overloads it lane by lane).
template <typename F>
EF_HOST_DEVICE inline F select_gt(const F& a, const F& b, const F& x, const F& y) { return a > b ? x : y; }

}  // namespace equiforce::kernels
