// equiforce::neighbor_list: periodic cell-list neighbour search (CPU). Integer outputs, so no
// autograd: models recompute edge vectors from positions and shifts, differentiably.
#include "../cpu/neighbor_list_cpu.h"
#include "common.h"

namespace equiforce::ops {
namespace {

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
  const auto c = cell.to(at::kDouble).contiguous();
  const auto p = pbc.contiguous();
  double cell_rows[3][3];
  bool periodic[3];
  for (int k = 0; k < 3; ++k) {
    periodic[k] = p.data_ptr<bool>()[k];
    for (int a = 0; a < 3; ++a) cell_rows[k][a] = c.data_ptr<double>()[3 * k + a];
  }
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
