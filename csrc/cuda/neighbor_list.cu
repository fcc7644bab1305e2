// CUDA count and fill passes of the cell-list neighbour search (csrc/kernels/neighbor_list.h): one
// thread per atom, the same per-atom bodies as the CPU loops. The grid itself is built on the host
// (O(N), csrc/cpu/neighbor_list_cpu.h) and copied over. Torch-free: compiles with plain nvcc.
#include "common.cuh"

namespace equiforce::cuda {
namespace {

__global__ void count_kernel(kernels::CellGrid grid, DeviceGridArrays a, int64_t n, double cutoff,
                             bool self_interaction, int64_t* counts) {
  EF_CUDA_FOR(i, n) {
    counts[i] = kernels::count_neighbors_of(grid, a.atom_bin + 3 * i, a.wrapped + 3 * i, cutoff, self_interaction);
  }
}

__global__ void fill_kernel(kernels::CellGrid grid, DeviceGridArrays a, int64_t n, double cutoff,
                            bool self_interaction, const int64_t* offsets, int64_t* i_out, int64_t* j_out,
                            int64_t* shift_out) {
  EF_CUDA_FOR(i, n) {
    const int64_t* wi = a.wrap_shift + 3 * i;
    int64_t q = offsets[i];
    kernels::neighbors_of(grid, i, a.atom_bin + 3 * i, a.wrapped + 3 * i, cutoff, self_interaction,
                          [&](int64_t p, int64_t s0, int64_t s1, int64_t s2) {
                            const int64_t* wj = a.sorted_wrap + 3 * p;
                            i_out[q] = i;
                            j_out[q] = grid.sorted_atoms[p];
                            shift_out[3 * q] = s0 + wi[0] - wj[0];
                            shift_out[3 * q + 1] = s1 + wi[1] - wj[1];
                            shift_out[3 * q + 2] = s2 + wi[2] - wj[2];
                            ++q;
                          });
  }
}

}  // namespace

void neighbor_count(const kernels::CellGrid& grid, const DeviceGridArrays& a, int64_t n, double cutoff,
                    bool self_interaction, int64_t* counts, void* stream) {
  if (n == 0) return;
  count_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(grid, a, n, cutoff, self_interaction, counts);
  check_cuda("neighbor_list (count)");
}

void neighbor_fill(const kernels::CellGrid& grid, const DeviceGridArrays& a, int64_t n, double cutoff,
                   bool self_interaction, const int64_t* offsets, int64_t* i_out, int64_t* j_out, int64_t* shift_out,
                   void* stream) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), kBlock, 0, as_stream(stream)>>>(grid, a, n, cutoff, self_interaction, offsets, i_out,
                                                             j_out, shift_out);
  check_cuda("neighbor_list (fill)");
}

}  // namespace equiforce::cuda
