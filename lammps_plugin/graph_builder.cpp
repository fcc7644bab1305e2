#include "graph_builder.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace equiforce::lammps {

GraphBuilder::GraphBuilder(double r_max, int num_layers, std::vector<int> species_of_type, double pair_cutoff)
    : r_max_(r_max), pair_cutoff_(pair_cutoff), num_layers_(num_layers), species_of_type_(std::move(species_of_type)) {
  if (pair_cutoff_ > 0 && num_layers_ != 1)
    throw std::logic_error("equiforce graph: a pair cutoff needs a graph of one hop (internal)");
}

bool GraphBuilder::within(const AtomArrays& atoms, int i, int j, double cutoff) const {
  const double* xi = atoms.x + 3 * static_cast<size_t>(i);
  const double* xj = atoms.x + 3 * static_cast<size_t>(j);
  const double dx = xj[0] - xi[0], dy = xj[1] - xi[1], dz = xj[2] - xi[2];
  return dx * dx + dy * dy + dz * dz < cutoff * cutoff;
}

// Breadth-first from the owned atoms through edges, to ghosts owned elsewhere. Images of owned atoms
// are never entered (they fold onto their owner), so on one rank nothing past the owned atoms is reached.
void GraphBuilder::find_hops(const AtomArrays& atoms) {
  const int nall = atoms.nlocal + atoms.nghost;
  hops_.assign(nall, kUnreached);
  std::vector<int> frontier, next;
  for (int i = 0; i < atoms.nlocal; ++i)
    if (species(atoms, i) >= 0) hops_[i] = 0, frontier.push_back(i);
  const double reach = std::max(r_max_, pair_cutoff_);  // pair_cutoff: one hop only
  for (int hop = 1; hop <= num_layers_ && !frontier.empty(); ++hop) {
    next.clear();
    for (int i : frontier) {
      const int* row = atoms.neighbors[i];
      for (int jj = 0; jj < atoms.num_neighbors[i]; ++jj) {
        const int j = row[jj] & atoms.index_mask;
        if (owner_[j] >= 0 || hops_[j] != kUnreached || species(atoms, j) < 0 || !within(atoms, i, j, reach))
          continue;
        hops_[j] = hop;
        next.push_back(j);
      }
    }
    frontier.swap(next);
  }
}

const Graph& GraphBuilder::build(const AtomArrays& atoms) {
  const int nlocal = atoms.nlocal, nall = atoms.nlocal + atoms.nghost;
  if (!has_owners_for(nall))
    throw std::logic_error("equiforce graph: find_owners was not called for these " + std::to_string(nall) +
                           " atoms (call it after every re-neighbouring)");
  find_hops(atoms);
  Graph& g = graph_;

  // Nodes by hops: owned atoms, then ghosts one hop out, two hops, ...
  node_of_.assign(nall, -1);
  g.atom_of_node.clear();
  nodes_upto_.assign(num_layers_ + 1, 0);
  for (int hop = 0; hop <= num_layers_; ++hop) {
    for (int i = hop == 0 ? 0 : nlocal; i < (hop == 0 ? nlocal : nall); ++i)
      if (hops_[i] == hop && (hop == 0 || owner_[i] < 0)) {
        node_of_[i] = static_cast<int>(g.atom_of_node.size());
        g.atom_of_node.push_back(i);
      }
    nodes_upto_[hop] = g.num_nodes();
  }
  g.num_local_nodes = nodes_upto_[0];

  const size_t n = g.atom_of_node.size();
  g.positions.resize(3 * n);
  g.species.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const int a = g.atom_of_node[k];
    std::copy(atoms.x + 3 * static_cast<size_t>(a), atoms.x + 3 * static_cast<size_t>(a) + 3, &g.positions[3 * k]);
    g.species[k] = species(atoms, a);
  }

  // Edges into each node that receives messages (within num_layers - 1 hops), in node order.
  g.edge_src.clear();
  g.edge_dst.clear();
  g.edge_shift.clear();
  edges_upto_.assign(num_layers_ + 1, 0);
  for (size_t k = 0; k < n; ++k) {
    const int i = g.atom_of_node[k];
    if (hops_[i] >= num_layers_) break;  // the rest send messages only
    const int* row = atoms.neighbors[i];
    for (int jj = 0; jj < atoms.num_neighbors[i]; ++jj) {
      const int j = row[jj] & atoms.index_mask;
      if (species(atoms, j) < 0 || !within(atoms, i, j, r_max_)) continue;
      link(atoms, i, j, static_cast<int64_t>(k), g.edge_src, g.edge_dst, g.edge_shift);
    }
    for (int hop = hops_[i]; hop <= num_layers_; ++hop) edges_upto_[hop] = g.num_edges();
  }
  // layer k (0-based) updates the nodes within num_layers - 1 - k hops, from the edges into them
  g.layer_sizes.resize(2 * static_cast<size_t>(num_layers_));
  for (int k = 0; k < num_layers_; ++k) {
    g.layer_sizes[k] = nodes_upto_[num_layers_ - 1 - k];
    g.layer_sizes[num_layers_ + k] = edges_upto_[num_layers_ - 1 - k];
  }
  list_pairs(atoms);
  return g;
}

// Atom j (a neighbour of atom i, node k) -> node k: an image of an owned atom points at its owner, with the
// image's offset as the shift.
void GraphBuilder::link(const AtomArrays& atoms, int i, int j, int64_t k, std::vector<int64_t>& src,
                        std::vector<int64_t>& dst, std::vector<double>& shift) const {
  const int owner = owner_[j];
  const int source = owner >= 0 ? node_of_[owner] : node_of_[j];
  if (source < 0)
    throw std::logic_error("equiforce graph: neighbour " + std::to_string(j) + " of atom " + std::to_string(i) +
                           " is not a graph node (internal: the neighbour list does not reach far enough)");
  src.push_back(source);
  dst.push_back(k);
  for (int d = 0; d < 3; ++d)
    shift.push_back(owner >= 0 ? atoms.x[3 * static_cast<size_t>(j) + d] - atoms.x[3 * static_cast<size_t>(owner) + d]
                               : 0.0);
}

void GraphBuilder::list_pairs(const AtomArrays& atoms) {
  Graph& g = graph_;
  g.pair_src.clear();
  g.pair_dst.clear();
  g.pair_shift.clear();
  if (pair_cutoff_ <= 0) return;
  for (int64_t k = 0; k < g.num_local_nodes; ++k) {
    const int i = g.atom_of_node[k];
    const int* row = atoms.neighbors[i];
    for (int jj = 0; jj < atoms.num_neighbors[i]; ++jj) {
      const int j = row[jj] & atoms.index_mask;
      if (species(atoms, j) < 0 || !within(atoms, i, j, pair_cutoff_)) continue;
      link(atoms, i, j, k, g.pair_src, g.pair_dst, g.pair_shift);
    }
  }
}

}  // namespace equiforce::lammps
