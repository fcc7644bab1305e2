// Spherical-harmonics options shared by every front-end (CPU and CUDA launchers, the torch ops and
// the pybind11 module): the normalisation names and codes, the l_max range, and the per-degree
// scale each normalisation applies. Host-only, torch-free; errors are std::invalid_argument.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sh_generated.h"

namespace equiforce::kernels {

// e3nn's normalisations: component (|Y^l|^2 = 2l+1), norm (|Y^l| = 1), integral (mean over the sphere 1/4pi).
enum ShNormalization : int64_t { kComponent = 0, kNorm = 1, kIntegral = 2 };

inline int64_t sh_normalization_code(std::string_view name) {
  if (name == "component") return kComponent;
  if (name == "norm") return kNorm;
  if (name == "integral") return kIntegral;
  throw std::invalid_argument("equiforce: normalization must be 'component', 'norm' or 'integral', got '" +
                              std::string(name) + "'");
}

inline const char* sh_normalization_name(int64_t code) {
  return code == kComponent ? "component" : code == kNorm ? "norm" : "integral";
}

inline void sh_check_lmax(int64_t lmax) {
  if (lmax < 0 || lmax > kShLmaxSupported)
    throw std::invalid_argument("equiforce: spherical harmonics support 0 <= lmax <= " +
                                std::to_string(kShLmaxSupported) + ", got lmax=" + std::to_string(lmax));
}

inline void sh_check_arguments(int64_t lmax, int64_t normalization) {
  sh_check_lmax(lmax);
  if (normalization < kComponent || normalization > kIntegral)
    throw std::invalid_argument("equiforce: normalization code must be 0 (component), 1 (norm) or 2 (integral)");
}

// value[l]: the factor on the component-normalised Y^l. Plain data, so a CUDA kernel takes it by value.
template <typename T>
struct ShScale {
  T value[kShLmaxSupported + 1];
};

// Checks the arguments (throws) and returns the scale of every degree 0..lmax.
template <typename T>
ShScale<T> sh_scale(int64_t lmax, int64_t normalization) {
  sh_check_arguments(lmax, normalization);
  ShScale<T> s{};
  for (int64_t l = 0; l <= lmax; ++l) {
    double v = 1.0;
    if (normalization == kNorm) v = 1.0 / std::sqrt(2.0 * l + 1.0);
    if (normalization == kIntegral) v = 1.0 / std::sqrt(4.0 * M_PI);
    s.value[l] = static_cast<T>(v);
  }
  return s;
}

}  // namespace equiforce::kernels
