// Per-atom body of the cell-list neighbour search. The grid is in fractional coordinates of an
// effective basis (the cell's periodic vectors, completed by unit normals for open directions),
// so triclinic cells, mixed boundary conditions and cells smaller than the cutoff all follow the
// same path. Called by the CPU loops and by the CUDA count and fill kernels.
#pragma once

#include "common.h"

namespace equiforce::kernels {

struct CellGrid {
  double basis[3][3];    // rows: effective lattice vectors
  int64_t bins[3];       // bins per direction
  int64_t reach[3];      // how many bins away a neighbour can be
  bool periodic[3];
  const int64_t* bin_start;  // [num_bins + 1], atoms of bin b are sorted_atoms[bin_start[b] .. bin_start[b+1])
  const int64_t* sorted_atoms;
  const double* sorted_x;  // wrapped positions in bin order, one array per coordinate
  const double* sorted_y;
  const double* sorted_z;
};

EF_HOST_DEVICE inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Calls visit(p_begin, p_end, shift, s0, s1, s2) for every bin within reach of atom i's bin, where
// shift = s.basis - p_i and s is the lattice shift of that bin's image (0 along open directions).
template <typename Visit>
EF_HOST_DEVICE inline void visit_bins(const CellGrid& g, const int64_t* bin, const double* pi, const Visit& visit) {
  for (int64_t d0 = -g.reach[0]; d0 <= g.reach[0]; ++d0) {
    int64_t b0 = bin[0] + d0, s0 = 0;
    if (g.periodic[0]) { s0 = floor_div(b0, g.bins[0]); b0 -= s0 * g.bins[0]; }
    else if (b0 < 0 || b0 >= g.bins[0]) continue;
    for (int64_t d1 = -g.reach[1]; d1 <= g.reach[1]; ++d1) {
      int64_t b1 = bin[1] + d1, s1 = 0;
      if (g.periodic[1]) { s1 = floor_div(b1, g.bins[1]); b1 -= s1 * g.bins[1]; }
      else if (b1 < 0 || b1 >= g.bins[1]) continue;
      for (int64_t d2 = -g.reach[2]; d2 <= g.reach[2]; ++d2) {
        int64_t b2 = bin[2] + d2, s2 = 0;
        if (g.periodic[2]) { s2 = floor_div(b2, g.bins[2]); b2 -= s2 * g.bins[2]; }
        else if (b2 < 0 || b2 >= g.bins[2]) continue;
        double shift[3];
        for (int a = 0; a < 3; ++a)
          shift[a] = s0 * g.basis[0][a] + s1 * g.basis[1][a] + s2 * g.basis[2][a] - pi[a];
        const int64_t b = (b0 * g.bins[1] + b1) * g.bins[2] + b2;
        visit(g.bin_start[b], g.bin_start[b + 1], shift, s0, s1, s2);
      }
    }
  }
}

// Number of neighbours of atom i (branch-free inner loop, so it vectorises).
EF_HOST_DEVICE inline int64_t count_neighbors_of(const CellGrid& g, const int64_t* bin, const double* pi,
                                                 double cutoff, bool self_interaction) {
  const double cutoff2 = cutoff * cutoff;
  int64_t count = 0;
  visit_bins(g, bin, pi, [&](int64_t begin, int64_t end, const double* shift, int64_t, int64_t, int64_t) {
    int64_t c = 0;
    for (int64_t p = begin; p < end; ++p) {
      const double dx = g.sorted_x[p] + shift[0], dy = g.sorted_y[p] + shift[1], dz = g.sorted_z[p] + shift[2];
      c += (dx * dx + dy * dy + dz * dz < cutoff2) ? 1 : 0;
    }
    count += c;
  });
  // atom i meets itself once, at distance 0 in its own bin without shift
  return (self_interaction || cutoff <= 0) ? count : count - 1;
}

// Calls emit(p, s0, s1, s2) for every atom j = sorted_atoms[p] and lattice shift s (periodic
// directions only) with |p_j + s.basis - p_i| < cutoff, where p are the wrapped positions; skips
// j == i at s == 0 unless self_interaction.
template <typename Emit>
EF_HOST_DEVICE inline void neighbors_of(const CellGrid& g, int64_t i, const int64_t* bin, const double* pi,
                                        double cutoff, bool self_interaction, const Emit& emit) {
  const double cutoff2 = cutoff * cutoff;
  visit_bins(g, bin, pi, [&](int64_t begin, int64_t end, const double* shift, int64_t s0, int64_t s1, int64_t s2) {
    const bool skip_self = !self_interaction && s0 == 0 && s1 == 0 && s2 == 0;
    for (int64_t p = begin; p < end; ++p) {
      const double dx = g.sorted_x[p] + shift[0], dy = g.sorted_y[p] + shift[1], dz = g.sorted_z[p] + shift[2];
      if (dx * dx + dy * dy + dz * dz >= cutoff2) continue;
      if (skip_self && g.sorted_atoms[p] == i) continue;
      emit(p, s0, s1, s2);
    }
  });
}


// Writes atom i's pairs (i, j, S) to rows first, first + 1, ... of i_out, j_out, shift_out[., 3]: S is
// the lattice shift between the unwrapped positions (wrap_i: atom i's wrap shift; sorted_wrap: the
// wrap shifts in bin order), so |x_j - x_i + S.cell| < cutoff. As many rows as count_neighbors_of says.
EF_HOST_DEVICE inline void write_pairs_of(const CellGrid& g, int64_t i, const int64_t* bin, const double* pi,
                                          const int64_t* wrap_i, const int64_t* sorted_wrap, double cutoff,
                                          bool self_interaction, int64_t first, int64_t* i_out, int64_t* j_out,
                                          int64_t* shift_out) {
  int64_t q = first;
  neighbors_of(g, i, bin, pi, cutoff, self_interaction, [&](int64_t p, int64_t s0, int64_t s1, int64_t s2) {
    const int64_t* wj = sorted_wrap + 3 * p;
    i_out[q] = i;
    j_out[q] = g.sorted_atoms[p];
    shift_out[3 * q] = s0 + wrap_i[0] - wj[0];
    shift_out[3 * q + 1] = s1 + wrap_i[1] - wj[1];
    shift_out[3 * q + 2] = s2 + wrap_i[2] - wj[2];
    ++q;
  });
}

}  // namespace equiforce::kernels
