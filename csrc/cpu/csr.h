// Grouping edges by an endpoint (counting sort): the CSR layout that lets the convolution
// accumulate per receiver (forward) and per sender (backward) without atomics. Torch-free.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace equiforce::cpu {

struct Csr {
  std::vector<int64_t> ptr;   // [num_groups + 1]: edges of group g are order[ptr[g] .. ptr[g+1])
  std::vector<int64_t> order; // [num_edges]: edge ids, grouped, in their original order within a group
};

// Throws unless every key[e] lies in [0, num_groups).
inline void check_indices(const int64_t* key, int64_t num_edges, int64_t num_groups, const char* what) {
  for (int64_t e = 0; e < num_edges; ++e)
    if (key[e] < 0 || key[e] >= num_groups)
      throw std::invalid_argument(std::string("equiforce::conv: ") + what + "[" + std::to_string(e) + "] = " +
                                  std::to_string(key[e]) + " is outside [0, " + std::to_string(num_groups) + ")");
}

// Groups edges 0..E-1 by key[e] in [0, num_groups); throws when a key is out of range.
inline Csr group_edges(const int64_t* key, int64_t num_edges, int64_t num_groups, const char* what) {
  Csr csr;
  check_indices(key, num_edges, num_groups, what);
  csr.ptr.assign(num_groups + 1, 0);
  for (int64_t e = 0; e < num_edges; ++e) ++csr.ptr[key[e] + 1];
  for (int64_t g = 0; g < num_groups; ++g) csr.ptr[g + 1] += csr.ptr[g];
  csr.order.resize(num_edges);
  std::vector<int64_t> next(csr.ptr.begin(), csr.ptr.end() - 1);
  for (int64_t e = 0; e < num_edges; ++e) csr.order[next[key[e]]++] = e;
  return csr;
}

}  // namespace equiforce::cpu
