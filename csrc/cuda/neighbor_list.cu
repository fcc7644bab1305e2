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
    kernels::write_pairs_of(grid, i, a.atom_bin + 3 * i, a.wrapped + 3 * i, a.wrap_shift + 3 * i, a.sorted_wrap, cutoff,
                            self_interaction, offsets[i], i_out, j_out, shift_out);
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
