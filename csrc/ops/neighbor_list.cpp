// equiforce::neighbor_list: periodic cell-list neighbour search (CPU and CUDA). Integer outputs, so
// no autograd: models recompute edge vectors from positions and shifts, differentiably.
#include "../cpu/neighbor_list_cpu.h"
#include "common.h"
#include "cuda_support.h"

namespace equiforce::ops {
namespace {

using Pairs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// The grid on the host from a copy of the positions; the count and fill passes on the device.
Pairs neighbor_list_cuda(const at::Tensor& positions, const double cell_rows[3][3], const bool periodic[3],
                         double cutoff, bool self_interaction) {
#ifdef EQUIFORCE_WITH_CUDA
  const c10::cuda::CUDAGuard guard(positions.device());
  const auto host = positions.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = host.size(0);
  auto grid = translate_errors([&] {
    return cpu::build_neighbor_grid(host.data_ptr<double>(), n, cell_rows, periodic, cutoff);
  });
  const auto longs = positions.options().dtype(at::kLong);
  if (grid.empty) return {at::empty({0}, longs), at::empty({0}, longs), at::empty({0, 3}, longs)};
  const auto to_device = [&](auto& v, at::ScalarType type) {
    return at::from_blob(v.data(), {static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(type))
        .to(positions.device());
  };
  const auto bin_start = to_device(grid.bin_start, at::kLong), sorted_atoms = to_device(grid.sorted_atoms, at::kLong);
  const auto sorted_positions = to_device(grid.sorted_positions, at::kDouble);
  const auto atom_bin = to_device(grid.atom_bin, at::kLong), wrap_shift = to_device(grid.wrap_shift, at::kLong);
  const auto sorted_wrap = to_device(grid.sorted_wrap, at::kLong), wrapped = to_device(grid.wrapped, at::kDouble);
  kernels::CellGrid g = grid.grid;
  g.bin_start = bin_start.data_ptr<int64_t>();
  g.sorted_atoms = sorted_atoms.data_ptr<int64_t>();
  g.sorted_x = sorted_positions.data_ptr<double>();
  g.sorted_y = g.sorted_x + n;
  g.sorted_z = g.sorted_y + n;
  const cuda::DeviceGridArrays arrays{atom_bin.data_ptr<int64_t>(), wrap_shift.data_ptr<int64_t>(),
                                      sorted_wrap.data_ptr<int64_t>(), wrapped.data_ptr<double>()};
  void* stream = cuda_stream(positions);
  auto counts = at::empty({n}, longs);
  translate_errors([&] {
    cuda::neighbor_count(g, arrays, n, cutoff, self_interaction, counts.data_ptr<int64_t>(), stream);
  });
  auto offsets = at::zeros({n + 1}, longs);
  offsets.slice(0, 1).copy_(at::cumsum(counts, 0));
  const int64_t pairs = offsets[n].item<int64_t>();
  auto i = at::empty({pairs}, longs), j = at::empty({pairs}, longs), s = at::empty({pairs, 3}, longs);
  translate_errors([&] {
    cuda::neighbor_fill(g, arrays, n, cutoff, self_interaction, offsets.data_ptr<int64_t>(), i.data_ptr<int64_t>(),
                        j.data_ptr<int64_t>(), s.data_ptr<int64_t>(), stream);
  });
  return {i, j, s};
#else
  TORCH_CHECK(false, "equiforce::neighbor_list: this equiforce was built without CUDA; rebuild with EQUIFORCE_CUDA=ON "
              "(see the README) or pass CPU tensors");
#endif
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> neighbor_list(const at::Tensor& positions, const at::Tensor& cell,
                                                             const at::Tensor& pbc, double cutoff,
                                                             bool self_interaction) {
  const char* op = "neighbor_list";
  check_float(positions, op, "positions");
  TORCH_CHECK_VALUE(positions.dim() == 2 && positions.size(1) == 3, "equiforce::neighbor_list: positions must have ",
                    "shape [N, 3], got ", positions.sizes());
  TORCH_CHECK_VALUE(cell.dim() == 2 && cell.size(0) == 3 && cell.size(1) == 3 && cell.is_floating_point(),
                    "equiforce::neighbor_list: cell must be a float [3, 3] tensor (rows are lattice vectors), got ",
                    cell.sizes());
  TORCH_CHECK_VALUE(pbc.dim() == 1 && pbc.size(0) == 3 && pbc.scalar_type() == at::kBool,
                    "equiforce::neighbor_list: pbc must be a bool tensor of shape [3], got ", pbc.sizes(), " ",
                    pbc.scalar_type());
  const auto c = cell.to(at::kCPU, at::kDouble).contiguous();
  const auto p = pbc.to(at::kCPU).contiguous();
  double cell_rows[3][3];
  bool periodic[3];
  for (int k = 0; k < 3; ++k) {
    periodic[k] = p.data_ptr<bool>()[k];
    for (int a = 0; a < 3; ++a) cell_rows[k][a] = c.data_ptr<double>()[3 * k + a];
  }
  if (positions.is_cuda()) return neighbor_list_cuda(positions, cell_rows, periodic, cutoff, self_interaction);
  const auto pos = positions.contiguous();
  auto opts = positions.options().dtype(at::kLong);
  at::Tensor i, j, s;
  const auto allocate = [&](int64_t pairs) {
    i = at::empty({pairs}, opts), j = at::empty({pairs}, opts), s = at::empty({pairs, 3}, opts);
    return cpu::PairArrays{i.data_ptr<int64_t>(), j.data_ptr<int64_t>(), s.data_ptr<int64_t>()};
  };
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "equiforce_neighbor_list", [&] {
    translate_errors([&] {
      cpu::neighbor_list_cpu<scalar_t>(pos.data_ptr<scalar_t>(), pos.size(0), cell_rows, periodic, cutoff,
                                       self_interaction, allocate, TorchParallelFor{});
    });
  });
  return {i, j, s};
}

}  // namespace
}  // namespace equiforce::ops

TORCH_LIBRARY_IMPL(equiforce, CPU, m) { m.impl("neighbor_list", &equiforce::ops::neighbor_list); }

#ifdef EQUIFORCE_WITH_CUDA
TORCH_LIBRARY_IMPL(equiforce, CUDA, m) { m.impl("neighbor_list", &equiforce::ops::neighbor_list); }
#endif
