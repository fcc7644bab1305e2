// OpenMP `parallel_for` for callers without torch (the pybind11 module). The torch ops pass
// at::parallel_for instead, so they share torch's thread pool and honour torch.set_num_threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace equiforce::cpu {

struct OpenMPParallelFor {
  template <typename F>
  void operator()(int64_t n, int64_t grain, const F& fn) const {
    if (n <= 0) return;
#ifdef _OPENMP
    const int64_t max_chunks = (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
    if (threads > 1) {
      std::exception_ptr error;
#pragma omp parallel num_threads(threads)
      {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t chunk = (n + nt - 1) / nt;
        const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
        try {
          if (begin < end) fn(begin, end);
        } catch (...) {
#pragma omp critical
          error = std::current_exception();
        }
      }
      if (error) std::rethrow_exception(error);
      return;
    }
#endif
    fn(int64_t(0), n);
  }
};

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace equiforce::cpu
