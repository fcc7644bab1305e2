#include "pair_equiforce.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "timer.h"
#include "update.h"

#include "model.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <exception>
#include <fstream>
#include <numeric>

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
  nextra = 2;  // committees: energy_std and the largest force_std (compute pair equiforce)
  pvector = new double[nextra]{0.0, 0.0};
}

PairEquiforce::~PairEquiforce() {
  delete[] pvector;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairEquiforce::settings(int narg, char** arg) {
  device_ = "cpu";
  stop_threshold_ = write_threshold_ = -1;
  frames_path_.clear();
  for (int i = 0; i < narg;) {
    const std::string key = arg[i];
    if (key == "device" && i + 1 < narg) {
      device_ = arg[i + 1];
      if (device_ != "cpu" && device_ != "cuda")
        error->all(FLERR, "pair_style equiforce: device must be cpu or cuda, not '{}'", device_);
      i += 2;
    } else if (key == "uncertainty" && i + 1 < narg) {  // uncertainty T ACTION [ACTION]; may repeat
      const double threshold = utils::numeric(FLERR, arg[i + 1], false, lmp);
      if (threshold <= 0)
        error->all(FLERR, "pair_style equiforce uncertainty: the threshold is a force_std in the run's force units "
                          "and must be > 0, not {}", arg[i + 1]);
      int actions = 0;
      for (i += 2; i < narg; ++actions) {
        if (std::strcmp(arg[i], "stop") == 0) {
          stop_threshold_ = threshold, ++i;
        } else if (std::strcmp(arg[i], "write") == 0 && i + 1 < narg) {
          write_threshold_ = threshold, frames_path_ = arg[i + 1], i += 2;
        } else {
          break;
        }
      }
      if (actions == 0)
        error->all(FLERR, "pair_style equiforce uncertainty {}: say what to do above it: 'stop' (end the run), "
                          "'write FILE' (append the frame as extxyz) or both", threshold);
    } else {
      error->all(FLERR, "Illegal pair_style equiforce argument '{}': expected 'pair_style equiforce [device cpu|cuda] "
                        "[uncertainty THRESHOLD [stop] [write FILE] ...]'", arg[i]);
    }
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
  committee_size_ = static_cast<int>(model_->committee_size());
  comm_reverse = 3 * committee_size_;  // each member's forces on ghosts go back to their owners

  std::string known;
  for (const auto& s : meta.species) known += " " + s;
  species_of_type_.assign(ntypes + 1, -1);
  type_names_.assign(ntypes + 1, "X");
  for (int t = 1; t <= ntypes; ++t) {
    const std::string name = arg[2 + t];
    if (name == "NULL") continue;
    type_names_[t] = name;
    species_of_type_[t] = static_cast<int>(model_->species_index(name));
    if (species_of_type_[t] < 0)
      error->all(FLERR, "pair_coeff: atom type {} is '{}', which model '{}' does not know (its species:{}); "
                        "use one of those names, or NULL for atoms another pair style handles",
                 t, name, model_path_, known);
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = 1; j <= ntypes; ++j) setflag[i][j] = species_of_type_[i] >= 0 && species_of_type_[j] >= 0;
  if (comm->me == 0)
    utils::logmesg(lmp, "equiforce: model {} ({} {}, species{}, r_max {} A, {} layers{}) on {}\n", model_path_,
                   meta.format, meta.dtype, known, r_max_, num_layers_,
                   committee_size_ ? fmt::format(", committee of {}", committee_size_) : "", device_);
}

void PairEquiforce::init_style() {
  if (!model_) error->all(FLERR, "pair_style equiforce needs 'pair_coeff * * model.pt <elements>'");
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style equiforce requires 'newton on': forces on ghost atoms go back to their "
                      "owners by reverse communication");
  if (!atom->tag_enable) error->all(FLERR, "pair_style equiforce needs atom IDs (remove 'atom_modify id no')");
  if ((stop_threshold_ > 0 || write_threshold_ > 0) && committee_size_ == 0)
    error->all(FLERR, "pair_style equiforce uncertainty: model {} is a single model; the uncertainty is the spread "
                      "of a committee: equiforce deploy CKPT1 CKPT2 CKPT3 -o committee.pt", model_path_);
  if (stopped_run_) {  // the last run ended on the threshold; this one starts afresh
    timer->reset_timeout();
    stopped_run_ = false;
  }
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
  if (num_local_nodes_ == 0) {  // an empty sub-domain, or only NULL-type atoms here
    if (committee_size_ > 0)     // the spread is collective: take part with nothing
      committee_spread(torch::zeros({committee_size_}, torch::kFloat64),
                       torch::zeros({committee_size_, 0, 3}, torch::kFloat64));
    return;
  }

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
  if (committee_size_ > 0) committee_spread(out.member_energies, out.member_forces);
  pair_seconds_ += seconds_since(t0);
}

void PairEquiforce::committee_spread(const at::Tensor& member_energies, const at::Tensor& member_forces) {
  const int m = committee_size_, width = 3 * committee_size_;
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  const size_t rows = static_cast<size_t>(std::max({atom->nmax, nall, 1}));
  member_f_.assign(rows * width, 0.0);
  const auto forces = member_forces.to(torch::kCPU, torch::kFloat64).contiguous();  // [M, nodes, 3]
  const int64_t n = forces.size(1);
  const double* fk = forces.data_ptr<double>();
  for (int mm = 0; mm < m; ++mm)
    for (int64_t k = 0; k < n; ++k)
      for (int d = 0; d < 3; ++d) member_f_[atom_of_node_[k] * width + 3 * mm + d] = fk[(mm * n + k) * 3 + d];
  if (comm->nprocs > 1) comm->reverse_comm(this);  // ghosts' member forces onto their owners

  const double u = energy_unit_;
  force_std_.assign(rows, 0.0);
  double local_max = 0.0;
  if (nlocal > 0) {
    const auto per_member = torch::from_blob(member_f_.data(), {nlocal, m, 3}, torch::kFloat64).permute({1, 0, 2});
    const auto spread = equiforce::runtime::force_spread(per_member).contiguous();
    const double* sk = spread.data_ptr<double>();
    for (int i = 0; i < nlocal; ++i) {
      force_std_[i] = species_of_type_[atom->type[i]] >= 0 ? u * sk[i] : 0.0;
      local_max = std::max(local_max, force_std_[i]);
    }
  }
  const auto energies = member_energies.to(torch::kCPU, torch::kFloat64).contiguous();
  std::vector<double> mine(energies.data_ptr<double>(), energies.data_ptr<double>() + m), total(m);
  MPI_Allreduce(mine.data(), total.data(), m, MPI_DOUBLE, MPI_SUM, world);
  const double energy_std = u * equiforce::runtime::energy_spread(torch::from_blob(total.data(), {m}, torch::kFloat64));
  double max_std = 0.0;
  MPI_Allreduce(&local_max, &max_std, 1, MPI_DOUBLE, MPI_MAX, world);
  // compute pair sums pvector over ranks: rank 0 holds the values
  pvector[0] = comm->me == 0 ? energy_std : 0.0;
  pvector[1] = comm->me == 0 ? max_std : 0.0;
  max_std_seen_ = std::max(max_std_seen_, max_std);
  if (write_threshold_ > 0 && max_std > write_threshold_) {
    write_uncertain_frame(energy_std, max_std);
    ++frames_written_;
  }
  if (stop_threshold_ > 0 && max_std > stop_threshold_ && !stopped_run_) {
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: step {}: committee force uncertainty {:.6g} exceeds the threshold {:.6g}: "
                          "stopping the run (pair_style equiforce uncertainty ... stop)\n",
                     update->ntimestep, max_std, stop_threshold_);
    timer->force_timeout();  // the run loop ends before the next step, as fix halt ... error soft does
    stopped_run_ = true;
  }
}

void PairEquiforce::write_uncertain_frame(double energy_std, double max_std) {
  // owned atoms of every rank -> rank 0, as (tag, type, x, y, z, force_std), written in tag order
  const int nlocal = atom->nlocal;
  constexpr int kFields = 6;
  std::vector<double> mine(static_cast<size_t>(kFields) * nlocal);
  for (int i = 0; i < nlocal; ++i) {
    double* row = &mine[static_cast<size_t>(kFields) * i];
    row[0] = static_cast<double>(atom->tag[i]);
    row[1] = atom->type[i];
    for (int d = 0; d < 3; ++d) row[2 + d] = atom->x[i][d] - domain->boxlo[d];
    row[5] = force_std_[i];
  }
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(comm->nprocs), offsets(comm->nprocs, 0);
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  std::vector<double> all;
  if (comm->me == 0) {
    std::partial_sum(counts.begin(), counts.end() - 1, offsets.begin() + 1);
    all.resize(static_cast<size_t>(offsets.back()) + counts.back());
  }
  MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), offsets.data(), MPI_DOUBLE, 0, world);
  if (comm->me != 0) return;
  const size_t natoms = all.size() / kFields;
  std::vector<size_t> order(natoms);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all[kFields * a] < all[kFields * b]; });
  std::ofstream out(frames_path_, std::ios::app);
  if (!out) error->one(FLERR, "pair_style equiforce uncertainty write: cannot open '{}' for appending", frames_path_);
  const double* h = domain->h;  // xprd yprd zprd yz xz xy: rows a = (xprd, 0, 0), b = (xy, yprd, 0), c = (xz, yz, zprd)
  out << natoms << "\n"
      << fmt::format("Lattice=\"{:.10g} 0 0 {:.10g} {:.10g} 0 {:.10g} {:.10g} {:.10g}\" "
                     "Properties=species:S:1:pos:R:3:force_std:R:1 step={} energy_std={:.8g} max_force_std={:.8g} "
                     "pbc=\"{} {} {}\"\n",
                     h[0], h[5], h[1], h[4], h[3], h[2], update->ntimestep, energy_std, max_std,
                     domain->xperiodic ? "T" : "F", domain->yperiodic ? "T" : "F", domain->zperiodic ? "T" : "F");
  for (size_t k : order) {
    const double* row = &all[kFields * k];
    out << fmt::format("{} {:.10f} {:.10f} {:.10f} {:.8g}\n", type_names_[static_cast<int>(row[1])], row[2], row[3],
                       row[4], row[5]);
  }
}

int PairEquiforce::pack_reverse_comm(int n, int first, double* buf) {
  const int width = 3 * committee_size_;
  int m = 0;
  for (int i = first; i < first + n; ++i)
    for (int c = 0; c < width; ++c) buf[m++] = member_f_[static_cast<size_t>(i) * width + c];
  return m;
}

void PairEquiforce::unpack_reverse_comm(int n, int* list, double* buf) {
  const int width = 3 * committee_size_;
  int m = 0;
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < width; ++c) member_f_[static_cast<size_t>(list[i]) * width + c] += buf[m++];
}

void* PairEquiforce::extract_peratom(const char* name, int& ncol) {
  ncol = 0;
  if (std::strcmp(name, "force_std") != 0) return nullptr;
  if (model_ && committee_size_ == 0)
    error->all(FLERR, "pair_style equiforce: force_std is the spread of a committee, and model {} is a single "
                      "model: deploy several with equiforce deploy CKPT1 CKPT2 CKPT3 -o committee.pt", model_path_);
  if (force_std_.size() < static_cast<size_t>(std::max(atom->nmax, 1))) force_std_.resize(std::max(atom->nmax, 1), 0.0);
  return force_std_.data();
}

void PairEquiforce::finish() {
  double local[2] = {model_seconds_, pair_seconds_}, total[2] = {0, 0};
  MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, world);
  if (comm->me == 0 && model_calls_ > 0 && total[0] > 0)
    utils::logmesg(lmp, "equiforce: {} model calls; pair time {:.6g} s, of which model {:.6g} s: pair-style "
                        "overhead {:.2f}% of the model's time (sums over ranks)\n",
                   model_calls_, total[1], total[0], 100.0 * (total[1] - total[0]) / total[0]);
  if (comm->me == 0 && committee_size_ > 0)
    utils::logmesg(lmp, "equiforce: committee of {}: largest force uncertainty {:.6g}{}\n", committee_size_,
                   max_std_seen_, write_threshold_ > 0 ? fmt::format("; {} frames above {:.6g} written to {}",
                                                                      frames_written_, write_threshold_, frames_path_)
                                                        : "");
}
