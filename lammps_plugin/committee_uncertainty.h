// The uncertainty of a committee model in pair_style equiforce: per-atom force spread (`fix pair ...
// force_std`), energy spread and largest force spread (`compute pair equiforce`), and the thresholds of
// `pair_style equiforce uncertainty T stop | write FILE` (end the run; append the frame as extxyz).
#pragma once

#include "pointers.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace LAMMPS_NS {

class CommitteeUncertainty : protected Pointers {
 public:
  // `pair` does the reverse communication (its pack/unpack_reverse_comm call this class's).
  CommitteeUncertainty(LAMMPS* lmp, class Pair* pair);

  // Parses "uncertainty T ACTION [ACTION]" from arg[i] == "uncertainty" (i + 1 < narg); returns the index
  // after it. May repeat, with other thresholds.
  int parse(int narg, char** arg, int i);
  void clear_thresholds();
  bool has_thresholds() const { return stop_threshold_ > 0 || write_threshold_ > 0; }

  // pair_coeff: members of the committee (0: a single model, nothing to do), and the atom types' species
  // (-1: not this style's atoms) and element names for written frames.
  void configure(int members, std::vector<int> species_of_type, std::vector<std::string> type_names);
  int members() const { return members_; }
  // init_style: each run starts afresh (a run stopped on the threshold ends its timeout).
  void start_run(double energy_unit);

  // Collective, every step: member_energies [M] and member_forces [M, nodes, 3] (eV, eV/A) of this rank's
  // nodes, node k being atom atom_of_node[k]. Fills force_std and pvector (rank 0: energy_std, max force_std).
  void compute_spread(const at::Tensor& member_energies, const at::Tensor& member_forces,
                      const std::vector<int>& atom_of_node, double* pvector);
  double* force_std();  // [nmax] per-atom force spread of the owned atoms (run's force units)

  int pack_reverse_comm(int n, int first, double* buf) const;
  void unpack_reverse_comm(int n, const int* list, const double* buf);
  void log_summary() const;  // finish(): rank 0

 private:
  void write_frame(double energy_std, double max_std);

  class Pair* pair_;
  int members_ = 0;
  std::vector<int> species_of_type_;
  std::vector<std::string> type_names_;
  double energy_unit_ = 1.0;
  std::vector<double> member_f_;   // [nmax, 3 * members]: each member's forces, summed onto owners
  std::vector<double> force_std_;  // [nmax]
  double stop_threshold_ = -1;     // force units, or < 0
  double write_threshold_ = -1;
  std::string frames_path_;
  bool stopped_run_ = false;
  bigint frames_written_ = 0;
  double max_std_seen_ = 0;
};

}  // namespace LAMMPS_NS
