// Loads an exported equiforce model for C++ hosts such as the LAMMPS and OpenMM plugins — TorchScript
// (`.pt`) or AOTInductor (`.pt2`), both from `equiforce deploy` — checks its metadata, and evaluates
// the deployed-model contract. Hosts see one interface whatever the format.
// Linking this library also loads the operator library, which registers the ops the model calls.
#pragma once

#include <torch/script.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace equiforce::runtime {

// Atoms closer than this (Angstrom) are refused: at zero distance the edge direction is undefined
// (NaN energies and forces), and well before it a model is far outside anything it was trained on.
constexpr double kMinDistance = 0.1;

// Input that no model can evaluate, found before the model runs. `what()` is one line in terms of
// the indices of the positions passed; hosts with their own numbering (LAMMPS atom IDs, OpenMM
// particle indices) catch it and report i, j in theirs.
struct InputError : std::runtime_error {
  enum class Kind {
    NonFinite,   // positions[i] (or, with i = -1, the cell or an edge shift) holds NaN or inf
    CloseAtoms,  // atoms i and j are `distance` apart, closer than kMinDistance (i == j: its own image)
    BadCell,     // a periodic cell without three (or as many as periodic directions) independent vectors
  };
  InputError(Kind kind, const std::string& message, int64_t i = -1, int64_t j = -1, double distance = 0)
      : std::runtime_error(message), kind(kind), i(i), j(j), distance(distance) {}
  Kind kind;
  int64_t i = -1, j = -1;
  double distance = 0;
};

// The checks Model::compute runs before the model: finite positions (and cell / edge shifts) and no
// two atoms closer than kMinDistance — over the given edges, or over the periodic structure (its
// cell vectors checked too). Throw InputError.
void check_edges(const at::Tensor& positions, const at::Tensor& edge_src, const at::Tensor& edge_dst,
                 const at::Tensor& edge_shift);
void check_structure(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc);

struct Metadata {
  std::vector<std::string> species;  // in the model's order
  double r_max = 0;                  // Angstrom
  int64_t num_layers = 0;
  double ghost_cutoff = 0;  // num_layers * r_max: how far ghost atoms must reach
  std::string dtype;        // "float32" or "float64"
  std::string format;       // "torchscript" or "aoti"
  int64_t format_version = 0;
  std::map<std::string, std::string> all;
};

struct Outputs {
  double energy = 0;              // of the local atoms (eV)
  at::Tensor atomic_energies;     // [N]
  at::Tensor forces;              // [N, 3] (eV/A), on local and ghost atoms
  at::Tensor virial;              // [3, 3] (eV), from edge forces
  at::Tensor atomic_virials;      // [N, 3, 3] (eV), summing to the virial; undefined for models
                                  // exported before format version 2
  // Committees only (metadata committee_size; the fields above are the members' means):
  at::Tensor member_energies;     // [M] (eV), of the local atoms
  at::Tensor member_forces;       // [M, N, 3] (eV/A), on local and ghost atoms
};

// A committee's spread from its members' energies [M] and forces [M, N, 3] (forces already summed
// onto their owners where a host has ghost atoms): the sample standard deviation (ddof 1) of the
// energy, and per atom the norm of the per-component sample standard deviation of the force, [N].
// The same formula as equiforce.deploy.committee.committee_spread.
double energy_spread(const at::Tensor& member_energies);
at::Tensor force_spread(const at::Tensor& member_forces);

// What a host with ghost atoms owned by other processes (LAMMPS on several MPI ranks) does between two
// message-passing layers when it exchanges node features instead of recomputing a halo
// (Model::compute_exchanged). Tensors are [nodes, width], float64 on the CPU, nodes [0, num_local)
// owned here and the rest ghosts.
class FeatureExchange {
 public:
  virtual ~FeatureExchange() = default;
  // Fill the ghost rows of x (layer `layer`'s output of committee member `member`) from their owners.
  virtual void forward(at::Tensor& x, int64_t member, int64_t layer) = 0;
  // g: the gradient of the energy with respect to x (local and ghost rows). Add every ghost row to its
  // owner's row, wherever that is; afterwards the local rows hold the whole gradient.
  virtual void reverse(at::Tensor& g, int64_t member, int64_t layer) = 0;
  // Long-range models: every process's rows (this one's: `rows` [num_local, C]) in one array, in an order
  // all processes share; `mine` receives (int64) where this process's rows are in it.
  virtual at::Tensor all_gather(const at::Tensor& rows, at::Tensor& mine) = 0;
  // Periodic long-range models: replace `values` (1-D) by its sum over all processes.
  virtual void all_reduce(at::Tensor& values) = 0;
};

// Periodic long-range models on several processes: every pair within the model's ewald_cutoff (metadata)
// into a local atom, in the nodes' numbering (a sender may be a ghost, or a local atom with an image's
// shift; pair vector pos[src] - pos[dst] + shift), ghosts that far among the nodes. With them the Ewald sum
// is split over the processes (a structure factor summed by all_reduce, the real-space part over ghosts)
// instead of gathering every atom.
struct CoulombPairs {
  at::Tensor src, dst;  // [P] int64
  at::Tensor shift;     // [P, 3]
  bool defined() const { return src.defined(); }
};

class Model {
 public:
  // Throws std::runtime_error with a message that says what to do (missing file, foreign file,
  // newer format version). The compute methods throw InputError for input no model can evaluate.
  explicit Model(const std::string& path, const std::string& device = "cpu");
  ~Model();
  Model(Model&&) noexcept;

  const Metadata& metadata() const { return metadata_; }
  // Members of a committee model (their means are the outputs; Outputs::member_* their spread), or 0.
  int64_t committee_size() const { return committee_size_; }
  // Index of an element in the model's species, or -1.
  int64_t species_index(const std::string& element) const;

  // Host neighbour list: messages flow edge_src -> edge_dst, edge vector pos[src] - pos[dst] + shift.
  // layer_sizes (optional, int64 [2, num_layers]): nodes and edges each layer updates and uses, for
  // hosts with ghost atoms that order nodes by hops from the local atoms and edges by their
  // receiver's hops (DeployedPotential.forward); used by TorchScript models that accept it.
  Outputs compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                  const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local,
                  const at::Tensor& layer_sizes = at::Tensor());
  // The same contract, stage by stage, for hosts whose ghosts are owned elsewhere: every edge's receiver
  // is local (edge_dst < num_local), ghosts need only be within r_max of a local atom, and `exchange`
  // fills their features before each layer after the first and sends their gradients back in the
  // backward (collective across processes: every process calls this each step, with no local atoms
  // too). Per-atom energies past num_local are zero. Needs has_stages(). It does not check its input: a
  // process that threw would leave the others waiting in the exchange, so hosts call check_edges first
  // and agree that every process may go on.
  // Long-range models (learned charges + Coulomb) also need the cell (rows are lattice vectors) and pbc
  // [3]: periodic cells with `pairs` (and splits_ewald()) split the Ewald sum over the processes; otherwise
  // every process gathers all atoms' positions and raw charges and evaluates the whole structure's Coulomb
  // term, keeping its own atoms' shares (equiforce.deploy.staged says how).
  Outputs compute_exchanged(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                            const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local,
                            FeatureExchange& exchange, const at::Tensor& cell = at::Tensor(),
                            const at::Tensor& pbc = at::Tensor(), const CoulombPairs& pairs = CoulombPairs());
  bool long_range() const;
  // Long-range models whose Ewald sum can be split over processes (stage_ewald_*; metadata ewald_cutoff),
  // and that real-space cutoff (A), else 0.
  double ewald_cutoff() const;
  // Whether the file has the stages (stage_* methods and node_widths metadata: TorchScript exports
  // made since they were added; AOTInductor packages and older exports have not).
  bool has_stages() const { return has_stages_; }
  // [members][num_layers]: each layer's output width (numbers per node), from the metadata.
  const std::vector<std::vector<int64_t>>& node_widths() const { return node_widths_; }

  // The model's own neighbour list from a cell (rows are lattice vectors) and pbc [3].
  Outputs compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& cell,
                  const at::Tensor& pbc);

 private:
  void read_metadata(const std::string& path, std::map<std::string, std::string> all);
  struct CoulombShare;
  CoulombShare coulomb_gathered(const at::Tensor& pos, const at::Tensor& raw, int64_t num_local, const at::Tensor& cell,
                                const at::Tensor& pbc, FeatureExchange& exchange);
  CoulombShare ewald_split(const at::Tensor& pos, const at::Tensor& raw, int64_t num_local, const CoulombPairs& pairs,
                           const at::Tensor& cell, FeatureExchange& exchange);
  void check_total_charge(double total, double magnitude, at::ScalarType dtype) const;
  Outputs run_aoti(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                   const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local);

  torch::jit::Module module_;                                  // TorchScript
  bool takes_layer_sizes_ = false;                             // its forward has layer_sizes
  bool has_stages_ = false;
  std::vector<std::vector<int64_t>> node_widths_;
  int64_t committee_size_ = 0;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> aoti_;  // or AOTInductor
  Metadata metadata_;
  torch::Device device_;
};

}  // namespace equiforce::runtime
