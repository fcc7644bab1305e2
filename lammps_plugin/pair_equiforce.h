// pair_style equiforce: an exported equiforce model (TorchScript .pt or AOTInductor .pt2) as a LAMMPS
// pair style, loaded as a plugin into an unpatched LAMMPS. Usage and design: README.md, "LAMMPS".
// The graph the model sees is built by graph_builder.h (no LAMMPS in it); committees' uncertainty is
// committee_uncertainty.h.
#pragma once

#include "pair.h"

#include "committee_uncertainty.h"
#include "graph_builder.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace equiforce::runtime {
class Model;
struct InputError;
struct Outputs;
}  // namespace equiforce::runtime

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
  // Several ranks, halo exchange: node features to ghosts before each layer (forward), their gradients
  // back to the owners in the backward (reverse).
  int pack_forward_comm(int n, int* list, double* buf, int pbc_flag, int* pbc) override;
  void unpack_forward_comm(int n, int first, double* buf) override;

 private:
  const equiforce::lammps::Graph& build_graph();
  // The model on the graph's nodes (or, for long-range models, on the owned atoms and the box).
  equiforce::runtime::Outputs call_model(const equiforce::lammps::Graph& graph);
  // Throws InputError for input no model can evaluate (what the runtime checks before the model runs).
  void check_input(const equiforce::lammps::Graph& graph) const;
  // An input the model refuses (overlapping atoms, NaN positions), said in atom IDs.
  std::string describe(const equiforce::runtime::InputError& err, const equiforce::lammps::Graph& graph) const;
  // Collective: if any rank's `problem` is not empty, every rank stops with the lowest such rank's message.
  void stop_if_any_rank_failed(const std::string& problem);

  friend class FeatureComm;  // the runtime's FeatureExchange through this style's communication
  enum class Halo { Exchange, Recompute };
  // Whether this run exchanges node features between layers (several ranks, a model with stages).
  bool exchanging() const;
  void count_work(const equiforce::lammps::Graph& graph);

  std::unique_ptr<equiforce::runtime::Model> model_;
  std::string model_path_;
  std::string device_ = "cpu";
  std::vector<int> species_of_type_;  // [ntypes + 1], -1 for NULL (not this style's atoms)
  double r_max_ = 0, ghost_cutoff_ = 0;
  int num_layers_ = 0;
  bool long_range_ = false;           // learned charges + Coulomb (Ewald, or a direct sum for open boxes)
  double ewald_cutoff_ = 0;           // > 0: the Ewald sum splits over ranks; ghosts out to its real-space cutoff
  bool splitting_ewald() const;       // several ranks, a periodic box and such a model
  double energy_unit_ = 1.0;          // eV -> the run's energy unit

  std::optional<equiforce::lammps::GraphBuilder> graph_builder_;  // from pair_coeff
  CommitteeUncertainty committee_;

  Halo halo_ = Halo::Exchange;  // pair_style keyword `halo exchange|recompute`
  bool model_has_stages_ = false;
  // The feature exchange's per-atom rows ([nlocal + nghost, width]) and what the comm hooks move now.
  enum class Moving { MemberForces, Features };
  Moving moving_ = Moving::MemberForces;
  std::vector<double> rows_;
  int width_ = 0;

  double model_seconds_ = 0, pair_seconds_ = 0;
  bigint model_calls_ = 0;
  // Counters for the log (finish): node and edge updates done and those of the periodic graph (each
  // atom and each edge into it, once per layer), doubles packed for the feature exchange, its time.
  double node_updates_ = 0, edge_updates_ = 0, ideal_node_updates_ = 0, ideal_edge_updates_ = 0;
  double doubles_packed_ = 0, comm_seconds_ = 0;
  bigint run_calls_ = 0;  // compute() calls this run (each rank: one per step)
};

}  // namespace LAMMPS_NS
