// pair_style equiforce: an exported equiforce model (TorchScript .pt or AOTInductor .pt2) as a LAMMPS
// pair style, loaded as a plugin into an unpatched LAMMPS. Usage and design: README.md, "LAMMPS".
#pragma once

#include "pair.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace equiforce::runtime {
class Model;
}

namespace LAMMPS_NS {

class PairEquiforce : public Pair {
 public:
  explicit PairEquiforce(class LAMMPS*);
  ~PairEquiforce() override;

  void compute(int eflag, int vflag) override;
  void settings(int narg, char** arg) override;
  void coeff(int narg, char** arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  void finish() override;

 private:
  // Which atoms are nodes of the model's graph, and where each atom's edges point. Ghost atoms that
  // are periodic images of atoms this rank owns are folded onto their owner (an edge shift instead
  // of a node); the other ghosts are nodes, kept only as far as num_layers message-passing hops reach.
  void build_graph();
  void owners_by_tag();

  std::unique_ptr<equiforce::runtime::Model> model_;
  std::string model_path_;
  std::string device_ = "cpu";
  std::vector<int> species_of_type_;  // [ntypes + 1], -1 for NULL (not this style's atoms)
  double r_max_ = 0, ghost_cutoff_ = 0;
  int num_layers_ = 0;
  bool long_range_ = false;           // learned charges + Ewald: the model needs the whole cell (one rank)
  double energy_unit_ = 1.0;          // eV -> the run's energy unit

  std::unordered_map<tagint, int> local_of_tag_;
  std::vector<int> owner_;            // [nall] local atom an atom is an image of, or -1
  std::vector<int> hops_;             // [nall] message-passing hops from an owned atom
  std::vector<int> node_of_;          // [nall] node index, or -1
  std::vector<int> atom_of_node_;
  std::vector<double> pos_;
  std::vector<int64_t> species_, src_, dst_;
  std::vector<double> shift_;
  std::vector<int64_t> nodes_upto_, edges_upto_;  // [hop]: nodes / edges into nodes within that many hops
  std::vector<int64_t> layer_sizes_;              // [2, num_layers]: nodes, edges each layer uses
  int num_local_nodes_ = 0;

  double model_seconds_ = 0, pair_seconds_ = 0;
  bigint model_calls_ = 0;
};

}  // namespace LAMMPS_NS
