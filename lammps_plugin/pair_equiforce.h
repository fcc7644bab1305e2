// pair_style equiforce: an exported equiforce model (TorchScript .pt or AOTInductor .pt2) as a LAMMPS
// pair style, loaded as a plugin into an unpatched LAMMPS. Usage and design: README.md, "LAMMPS".
#pragma once

#include "pair.h"

#include <ATen/core/Tensor.h>

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
  // Committee models: "force_std", the per-atom force uncertainty of the owned atoms (the run's force
  // units), for `fix ID all pair N equiforce force_std 0`.
  void* extract_peratom(const char* name, int& ncol) override;
  int pack_reverse_comm(int n, int first, double* buf) override;
  void unpack_reverse_comm(int n, int* list, double* buf) override;

 private:
  // Which atoms are nodes of the model's graph, and where each atom's edges point. Ghost atoms that
  // are periodic images of atoms this rank owns are folded onto their owner (an edge shift instead
  // of a node); the other ghosts are nodes, kept only as far as num_layers message-passing hops reach.
  void build_graph();
  void owners_by_tag();
  // Committees: sums each member's forces onto the owned atoms, takes their spread (force_std_,
  // pvector) and acts on the uncertainty threshold.
  void committee_spread(const at::Tensor& member_energies, const at::Tensor& member_forces);
  void write_uncertain_frame(double energy_std, double max_std);

  std::unique_ptr<equiforce::runtime::Model> model_;
  std::string model_path_;
  std::string device_ = "cpu";
  std::vector<int> species_of_type_;  // [ntypes + 1], -1 for NULL (not this style's atoms)
  std::vector<std::string> type_names_;  // [ntypes + 1] element of each type ("X" for NULL)
  double r_max_ = 0, ghost_cutoff_ = 0;
  int num_layers_ = 0;
  bool long_range_ = false;           // learned charges + Ewald: the model needs the whole cell (one rank)
  double energy_unit_ = 1.0;          // eV -> the run's energy unit

  int committee_size_ = 0;            // members of a committee model, or 0
  std::vector<double> member_f_;      // [nmax, 3 * members]: each member's forces, summed onto owners
  std::vector<double> force_std_;     // [nmax]: per-atom force uncertainty (run's force units)
  double stop_threshold_ = -1;        // pair_style ... uncertainty T stop (force units), or < 0
  double write_threshold_ = -1;       // ... uncertainty T write FILE: frames appended as extxyz
  std::string frames_path_;
  bool stopped_run_ = false;
  bigint frames_written_ = 0;
  double max_std_seen_ = 0;

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
