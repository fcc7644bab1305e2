// The model's graph on one MPI rank, from the atoms and neighbour list as LAMMPS holds them, with no
// LAMMPS headers (plain arrays in, plain arrays out; tested alone by tests/lammps/test_graph_builder.py).
//
// Nodes are the owned atoms of this style's types, then ghosts owned by other ranks by hops from them.
// A ghost that is a periodic image of an atom this rank owns is not a node: its edges point at its
// owner, with the image's offset as the edge shift. The other ghosts are kept only as far as
// num_layers message-passing hops reach: those within num_layers - 1 hops receive messages, those
// num_layers hops out only send them. Nodes and edges are ordered by hops, so that message-passing
// layer k updates a prefix of the nodes from a prefix of the edges (Graph::layer_sizes).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace equiforce::lammps {

// One rank's atoms: the nlocal owned atoms first, then the nghost ghosts (copies of atoms owned by
// other ranks, and periodic images of any atom).
struct AtomArrays {
  int nlocal = 0, nghost = 0;
  const double* x = nullptr;  // [nlocal + nghost][3], Angstrom, contiguous
  const int* type = nullptr;  // [nlocal + nghost] atom types (1-based, as LAMMPS numbers them)
  // A full neighbour list: atom i's neighbours are neighbors[i][0 .. num_neighbors[i]), each index
  // masked with index_mask (LAMMPS keeps special-bond bits above NEIGHMASK). Rows of ghosts are read
  // only for ghosts that are nodes (several ranks: LAMMPS's REQ_GHOST).
  const int* const* neighbors = nullptr;
  const int* num_neighbors = nullptr;
  int index_mask = ~0;
};

struct Graph {
  std::vector<int> atom_of_node;             // [nodes] atom index (into AtomArrays) of each node
  std::vector<double> positions;             // [nodes, 3]
  std::vector<int64_t> species;              // [nodes] the model's species index
  std::vector<int64_t> edge_src, edge_dst;   // [edges] sender, receiver node; grouped by receiver
  std::vector<double> edge_shift;            // [edges, 3] x[image] - x[owner] of a folded sender, else 0
  std::vector<int64_t> layer_sizes;          // [2, num_layers]: nodes, edges layer k updates / reads
  int64_t num_local_nodes = 0;               // the owned atoms: nodes [0, num_local_nodes)
  // With a pair cutoff (long-range models on several ranks): every pair within it into an owned atom, in
  // the same numbering and convention as the edges (the real-space part of the Ewald sum)
  std::vector<int64_t> pair_src, pair_dst;   // [pairs]
  std::vector<double> pair_shift;            // [pairs, 3]

  int64_t num_nodes() const { return static_cast<int64_t>(atom_of_node.size()); }
  int64_t num_edges() const { return static_cast<int64_t>(edge_src.size()); }
  bool has_ghost_nodes() const { return num_nodes() > num_local_nodes; }
};

class GraphBuilder {
 public:
  // Edges join atoms closer than r_max. species_of_type[t] is the model's species of atom type t, or -1
  // for types this style leaves to others (they are neither nodes nor neighbours).
  // pair_cutoff > 0 (one hop only): ghosts within it of an owned atom are nodes too, and the graph lists
  // the pairs within it (Graph::pair_src ...).
  GraphBuilder(double r_max, int num_layers, std::vector<int> species_of_type, double pair_cutoff = 0);

  // Which owned atom each atom is (an image of), by atom ID (LAMMPS's tag; any integer type):
  // owner(i) = i for owned atoms, the owned atom with the same ID for images of it, else -1.
  // Call after every re-neighbouring (ghosts change then).
  template <typename Tag>
  void find_owners(int nlocal, int nghost, const Tag* tag);
  bool has_owners_for(int nall) const { return static_cast<int>(owner_.size()) == nall; }

  // Throws std::logic_error if find_owners has not seen these atoms, or an edge leads to an atom that
  // is not a node (an inconsistent neighbour list).
  const Graph& build(const AtomArrays& atoms);
  const Graph& graph() const { return graph_; }

  const std::vector<int>& owners() const { return owner_; }  // [nall]
  const std::vector<int>& hops() const { return hops_; }     // [nall] hops from an owned atom, or kUnreached
  static constexpr int kUnreached = 1 << 30;

 private:
  void find_hops(const AtomArrays& atoms);
  int species(const AtomArrays& atoms, int i) const { return species_of_type_[atoms.type[i]]; }
  bool within(const AtomArrays& atoms, int i, int j, double cutoff) const;
  void list_pairs(const AtomArrays& atoms);
  void link(const AtomArrays& atoms, int i, int j, int64_t k, std::vector<int64_t>& src, std::vector<int64_t>& dst,
            std::vector<double>& shift) const;

  double r_max_, pair_cutoff_;
  int num_layers_;
  std::vector<int> species_of_type_;
  std::vector<int> owner_, hops_, node_of_;
  std::vector<int64_t> nodes_upto_, edges_upto_;  // [hop]: nodes within that many hops, edges into them
  Graph graph_;
};

template <typename Tag>
void GraphBuilder::find_owners(int nlocal, int nghost, const Tag* tag) {
  std::unordered_map<int64_t, int> local_of_tag;
  local_of_tag.reserve(nlocal);
  for (int i = 0; i < nlocal; ++i) local_of_tag[static_cast<int64_t>(tag[i])] = i;
  owner_.assign(nlocal + nghost, -1);
  for (int i = 0; i < nlocal; ++i) owner_[i] = i;
  for (int i = nlocal; i < nlocal + nghost; ++i) {
    const auto it = local_of_tag.find(static_cast<int64_t>(tag[i]));
    if (it != local_of_tag.end()) owner_[i] = it->second;
  }
}

}  // namespace equiforce::lammps
