// A SIMD pack of W lanes (GCC/Clang vector extension) with the arithmetic the kernel bodies use,
// so the generated spherical-harmonics recurrence runs on W vectors at once on the CPU.
#pragma once

#include <cmath>

namespace equiforce::cpu {

template <typename F, int W>
struct Pack {
  typedef F Vec __attribute__((vector_size(sizeof(F) * W)));
  static constexpr int width = W;
  Vec v;

  Pack() = default;
  Pack(double s) { v = Vec{} + static_cast<F>(s); }  // broadcast
  static Pack of(Vec x) { Pack p; p.v = x; return p; }

  Pack& operator+=(const Pack& o) { v += o.v; return *this; }
  Pack& operator-=(const Pack& o) { v -= o.v; return *this; }
  Pack& operator*=(const Pack& o) { v *= o.v; return *this; }
  friend Pack operator+(Pack a, const Pack& b) { return a += b; }
  friend Pack operator-(Pack a, const Pack& b) { return a -= b; }
  friend Pack operator*(Pack a, const Pack& b) { return a *= b; }
  friend Pack operator*(Pack a, F s) { a.v *= s; return a; }
  friend Pack operator/(Pack a, const Pack& b) { a.v /= b.v; return a; }
  friend Pack operator-(const Pack& a) { return of(-a.v); }
  friend Pack sqrt(const Pack& a) {
    Pack r;
    for (int i = 0; i < W; ++i) r.v[i] = std::sqrt(a.v[i]);
    return r;
  }
  friend Pack select_gt(const Pack& a, const Pack& b, const Pack& x, const Pack& y) {
    return of(a.v > b.v ? x.v : y.v);
  }
};

// 32-byte packs: 8 floats or 4 doubles (one AVX register; two SSE registers without AVX).
template <typename F>
using Pack32 = Pack<F, 32 / sizeof(F)>;

}  // namespace equiforce::cpu
