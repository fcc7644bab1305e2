#include "pair_equiforce.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include "model.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <exception>

using namespace LAMMPS_NS;

namespace {

constexpr int kUnreached = INT_MAX;
constexpr double kEvToKcalPerMol = 23.060547830618;  // 1 eV in kcal/mol (units real)

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PairEquiforce::PairEquiforce(LAMMPS* lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;              // pair_coeff names a file: give it again after read_restart
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the virial comes from the model's edge forces (ghosts folded)
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairEquiforce::~PairEquiforce() {
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairEquiforce::settings(int narg, char** arg) {
  device_ = "cpu";
  for (int i = 0; i < narg; i += 2) {
    if (std::strcmp(arg[i], "device") != 0 || i + 1 >= narg)
      error->all(FLERR, "Illegal pair_style equiforce argument '{}': expected 'pair_style equiforce "
                        "[device cpu|cuda]'", arg[i]);
    device_ = arg[i + 1];
    if (device_ != "cpu" && device_ != "cuda")
      error->all(FLERR, "pair_style equiforce: device must be cpu or cuda, not '{}'", device_);
  }
  if (device_ == "cuda" && !torch::cuda::is_available())
    error->all(FLERR, "pair_style equiforce device cuda: this torch has no usable CUDA device; "
                      "use 'device cpu' or a CUDA build of torch");
  model_.reset();
}

void PairEquiforce::coeff(int narg, char** arg) {
  const int ntypes = atom->ntypes;
  if (narg != 3 + ntypes || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for equiforce must be 'pair_coeff * * model.pt <element or NULL for "
                      "each of the {} atom types>'", ntypes);
  if (!allocated) {
    allocated = 1;
    memory->create(setflag, ntypes + 1, ntypes + 1, "pair:setflag");
    memory->create(cutsq, ntypes + 1, ntypes + 1, "pair:cutsq");
  }
  model_path_ = arg[2];
  try {
    model_ = std::make_unique<equiforce::runtime::Model>(model_path_, device_);
  } catch (const std::exception& e) {
    error->all(FLERR, "pair_style equiforce: {}", e.what());
  }
  const auto& meta = model_->metadata();
  r_max_ = meta.r_max;
  num_layers_ = static_cast<int>(meta.num_layers);
  ghost_cutoff_ = meta.ghost_cutoff > 0 ? meta.ghost_cutoff : num_layers_ * r_max_;
  const auto lr = meta.all.find("long_range");
  long_range_ = lr != meta.all.end() && lr->second != "none";

  std::string known;
  for (const auto& s : meta.species) known += " " + s;
  species_of_type_.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; ++t) {
    const std::string name = arg[2 + t];
    if (name == "NULL") continue;
    species_of_type_[t] = static_cast<int>(model_->species_index(name));
    if (species_of_type_[t] < 0)
      error->all(FLERR, "pair_coeff: atom type {} is '{}', which model '{}' does not know (its species:{}); "
                        "use one of those names, or NULL for atoms another pair style handles",
                 t, name, model_path_, known);
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = 1; j <= ntypes; ++j) setflag[i][j] = species_of_type_[i] >= 0 && species_of_type_[j] >= 0;
  if (comm->me == 0)
    utils::logmesg(lmp, "equiforce: model {} ({} {}, species{}, r_max {} A, {} layers) on {}\n", model_path_,
                   meta.format, meta.dtype, known, r_max_, num_layers_, device_);
}

void PairEquiforce::init_style() {
  if (!model_) error->all(FLERR, "pair_style equiforce needs 'pair_coeff * * model.pt <elements>'");
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style equiforce requires 'newton on': forces on ghost atoms go back to their "
                      "owners by reverse communication");
  if (!atom->tag_enable) error->all(FLERR, "pair_style equiforce needs atom IDs (remove 'atom_modify id no')");
  const std::string units = update->unit_style;
  if (units == "metal") {
    energy_unit_ = 1.0;
  } else if (units == "real") {
    energy_unit_ = kEvToKcalPerMol;  // lengths are Angstrom in both
  } else {
    error->all(FLERR, "pair_style equiforce: models are in eV and Angstrom; 'units {}' is not supported: "
                      "use 'units metal' (or 'units real', converted to kcal/mol)", units);
  }
  if (long_range_ && comm->nprocs > 1)
    error->all(FLERR, "pair_style equiforce: model {} has long-range electrostatics (learned charges, Ewald "
                      "summation over the whole cell), which this pair style evaluates on one MPI rank only: run "
                      "it with one rank (threads: OMP_NUM_THREADS), or use a model without long_range",
               model_path_);
  // One rank owns every atom, so every ghost is a periodic image of an owned atom and folds onto it:
  // the ordinary cutoff suffices. With several ranks, ghosts owned elsewhere carry messages, so their
  // features must be right num_layers - 1 hops in: ghosts out to num_layers x r_max, with neighbours.
  if (comm->nprocs == 1) {
    neighbor->add_request(this, NeighConst::REQ_FULL);
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: one MPI rank: periodic images fold onto their atoms, ghost cutoff "
                          "stays r_max + skin\n");
  } else {
    neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
    const double needed = ghost_cutoff_ + neighbor->skin;
    if (comm->cutghostuser < needed) comm->cutghostuser = needed;
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: ghost cutoff set to {} A = {} message-passing layers x r_max {} A + "
                          "skin {} A\n", comm->cutghostuser, num_layers_, r_max_, neighbor->skin);
  }
}

double PairEquiforce::init_one(int, int) { return r_max_; }

void PairEquiforce::owners_by_tag() {
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  const tagint* tag = atom->tag;
  local_of_tag_.clear();
  local_of_tag_.reserve(nlocal);
  for (int i = 0; i < nlocal; ++i) local_of_tag_[tag[i]] = i;
  owner_.assign(nall, -1);
  for (int i = 0; i < nlocal; ++i) owner_[i] = i;
  for (int i = nlocal; i < nall; ++i) {
    const auto it = local_of_tag_.find(tag[i]);
    if (it != local_of_tag_.end()) owner_[i] = it->second;
  }
}

void PairEquiforce::build_graph() {
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  const double* const* x = atom->x;
  const int* type = atom->type;
  const double rc2 = r_max_ * r_max_;
  const bool ghost_rows = comm->nprocs > 1;
  auto species = [&](int i) { return species_of_type_[type[i]]; };
  auto within = [&](int i, int j) {
    const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
    return dx * dx + dy * dy + dz * dz < rc2;
  };

  // Hops from owned atoms through edges, to ghosts owned elsewhere: those within num_layers - 1 hops
  // receive messages, those num_layers hops out only send them.
  hops_.assign(nall, kUnreached);
  std::vector<int> frontier, next;
  for (int i = 0; i < nlocal; ++i)
    if (species(i) >= 0) hops_[i] = 0, frontier.push_back(i);
  // On one rank every ghost folds onto its owner: nothing to reach.
  for (int hop = 1; ghost_rows && hop <= num_layers_ && !frontier.empty(); ++hop) {
    next.clear();
    for (int i : frontier) {
      const int* row = list->firstneigh[i];
      for (int jj = 0; jj < list->numneigh[i]; ++jj) {
        const int j = row[jj] & NEIGHMASK;
        if (owner_[j] >= 0 || hops_[j] != kUnreached || species(j) < 0 || !within(i, j)) continue;
        hops_[j] = hop;
        next.push_back(j);
      }
    }
    frontier.swap(next);
  }

  // Nodes by hops: owned atoms (the local ones), then ghosts one hop out, two hops, ... so that each
  // layer updates a prefix of the nodes from a prefix of the edges (layer_sizes_).
  node_of_.assign(nall, -1);
  atom_of_node_.clear();
  nodes_upto_.assign(num_layers_ + 1, 0);
  for (int hop = 0; hop <= num_layers_; ++hop) {
    for (int i = hop == 0 ? 0 : nlocal; i < (hop == 0 ? nlocal : nall); ++i)
      if (hops_[i] == hop && (hop == 0 || owner_[i] < 0)) {
        node_of_[i] = static_cast<int>(atom_of_node_.size());
        atom_of_node_.push_back(i);
      }
    nodes_upto_[hop] = static_cast<int64_t>(atom_of_node_.size());
  }
  num_local_nodes_ = static_cast<int>(nodes_upto_[0]);

  const size_t n = atom_of_node_.size();
  pos_.resize(3 * n);
  species_.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const int a = atom_of_node_[k];
    std::copy(x[a], x[a] + 3, &pos_[3 * k]);
    species_[k] = species(a);
  }
  src_.clear();
  dst_.clear();
  shift_.clear();
  edges_upto_.assign(num_layers_ + 1, 0);
  for (size_t k = 0; k < n; ++k) {
    const int i = atom_of_node_[k];
    if (hops_[i] >= num_layers_) break;  // the rest send messages only
    const int* row = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; ++jj) {
      const int j = row[jj] & NEIGHMASK;
      if (species(j) < 0 || !within(i, j)) continue;
      const int owner = owner_[j];
      const int source = owner >= 0 ? node_of_[owner] : node_of_[j];
      if (source < 0) error->one(FLERR, "equiforce: neighbour {} of atom {} is not a graph node (internal)", j, i);
      src_.push_back(source);
      dst_.push_back(static_cast<int64_t>(k));
      for (int d = 0; d < 3; ++d) shift_.push_back(owner >= 0 ? x[j][d] - x[owner][d] : 0.0);
    }
    for (int hop = hops_[i]; hop <= num_layers_; ++hop) edges_upto_[hop] = static_cast<int64_t>(src_.size());
  }
  // layer k (0-based) updates the nodes within num_layers - 1 - k hops, from the edges into them
  layer_sizes_.resize(2 * num_layers_);
  for (int k = 0; k < num_layers_; ++k) {
    layer_sizes_[k] = nodes_upto_[num_layers_ - 1 - k];
    layer_sizes_[num_layers_ + k] = edges_upto_[num_layers_ - 1 - k];
  }
}

void PairEquiforce::compute(int eflag, int vflag) {
  const auto t0 = std::chrono::steady_clock::now();
  ev_init(eflag, vflag);
  const int nall = atom->nlocal + atom->nghost;
  if (neighbor->ago == 0 || static_cast<int>(owner_.size()) != nall) owners_by_tag();
  build_graph();
  if (num_local_nodes_ == 0) return;  // an empty sub-domain, or only NULL-type atoms here

  const int64_t n = static_cast<int64_t>(atom_of_node_.size()), e = static_cast<int64_t>(src_.size());
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  equiforce::runtime::Outputs out;
  const auto t_model = std::chrono::steady_clock::now();
  try {
    if (long_range_) {  // one rank: the nodes are the owned atoms; the model sums Coulomb over the cell
      const double* h = domain->h;  // xprd yprd zprd yz xz xy
      const double cell[9] = {h[0], 0, 0, h[5], h[1], 0, h[4], h[3], h[2]};
      const bool periodic[3] = {domain->xperiodic != 0, domain->yperiodic != 0, domain->zperiodic != 0};
      const auto pbc = torch::tensor({periodic[0], periodic[1], periodic[2]}, torch::kBool);
      out = model_->compute(torch::from_blob(pos_.data(), {n, 3}, f64), torch::from_blob(species_.data(), {n}, i64),
                            torch::from_blob(const_cast<double*>(cell), {3, 3}, f64).clone(), pbc);
    } else {
      out = model_->compute(torch::from_blob(pos_.data(), {n, 3}, f64), torch::from_blob(species_.data(), {n}, i64),
                            torch::from_blob(src_.data(), {e}, i64), torch::from_blob(dst_.data(), {e}, i64),
                            torch::from_blob(shift_.data(), {e, 3}, f64), num_local_nodes_,
                            n > num_local_nodes_ ? torch::from_blob(layer_sizes_.data(), {2, num_layers_}, i64)
                                                 : torch::Tensor());
    }
  } catch (const std::exception& err) {
    error->one(FLERR, "pair_style equiforce: evaluating {} failed: {}", model_path_, err.what());
  }
  const auto forces = out.forces.to(torch::kCPU, torch::kFloat64).contiguous();
  model_seconds_ += seconds_since(t_model);
  ++model_calls_;

  const double u = energy_unit_;
  double** f = atom->f;
  const double* fk = forces.data_ptr<double>();
  for (int64_t k = 0; k < n; ++k)
    for (int d = 0; d < 3; ++d) f[atom_of_node_[k]][d] += u * fk[3 * k + d];
  if (eflag_global) eng_vdwl += u * out.energy;
  if (eflag_atom) {
    const auto atomic = out.atomic_energies.to(torch::kCPU, torch::kFloat64).contiguous();
    const double* ek = atomic.data_ptr<double>();
    for (int k = 0; k < num_local_nodes_; ++k) eatom[atom_of_node_[k]] += u * ek[k];
  }
  auto tally6 = [u](double* v, const double* w) {  // xx yy zz xy xz yz of a 3x3 (symmetrised)
    v[0] += u * w[0], v[1] += u * w[4], v[2] += u * w[8];
    v[3] += u * 0.5 * (w[1] + w[3]), v[4] += u * 0.5 * (w[2] + w[6]), v[5] += u * 0.5 * (w[5] + w[7]);
  };
  if (vflag_global) {
    const auto w = out.virial.to(torch::kCPU, torch::kFloat64).contiguous();
    tally6(virial, w.data_ptr<double>());
  }
  if (vflag_atom) {
    if (!out.atomic_virials.defined())
      error->all(FLERR, "pair_style equiforce: {} predates per-atom virials (compute stress/atom); export it "
                        "again with this equiforce: equiforce deploy CHECKPOINT -o {}", model_path_, model_path_);
    const auto w = out.atomic_virials.to(torch::kCPU, torch::kFloat64).contiguous();
    const double* wk = w.data_ptr<double>();
    for (int64_t k = 0; k < n; ++k) tally6(vatom[atom_of_node_[k]], wk + 9 * k);
  }
  pair_seconds_ += seconds_since(t0);
}

void PairEquiforce::finish() {
  double local[2] = {model_seconds_, pair_seconds_}, total[2] = {0, 0};
  MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, world);
  if (comm->me == 0 && model_calls_ > 0 && total[0] > 0)
    utils::logmesg(lmp, "equiforce: {} model calls; pair time {:.6g} s, of which model {:.6g} s: pair-style "
                        "overhead {:.2f}% of the model's time (sums over ranks)\n",
                   model_calls_, total[1], total[0], 100.0 * (total[1] - total[0]) / total[0]);
}
