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
#include <cstring>
#include <exception>

using namespace LAMMPS_NS;
using equiforce::lammps::Graph;
using equiforce::runtime::InputError;

namespace {

constexpr double kEvToKcalPerMol = 23.060547830618;  // 1 eV in kcal/mol (units real)

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace LAMMPS_NS {

// The runtime's FeatureExchange as LAMMPS's pair communication: owners' rows are copied into the
// per-atom rows, forward communication fills the ghosts' (and passes them on between ranks), and in the
// backward the ghosts' gradients travel back to their owners by reverse communication, summed on the
// way. Ghosts that are periodic images of this rank's own atoms are folded onto them in the graph, so
// their rows stay zero in the reverse direction.
class FeatureComm : public equiforce::runtime::FeatureExchange {
 public:
  FeatureComm(PairEquiforce* pair, const Graph& graph) : pair_(pair), graph_(graph) {}

  void forward(at::Tensor& x, int64_t, int64_t) override {
    auto& p = *pair_;
    const auto t0 = std::chrono::steady_clock::now();
    const int w = prepare(x);
    const int64_t local = graph_.num_local_nodes, n = graph_.num_nodes();
    double* xk = x.data_ptr<double>();
    for (int64_t k = 0; k < local; ++k)
      std::copy(xk + w * k, xk + w * (k + 1), &p.rows_[static_cast<size_t>(w) * graph_.atom_of_node[k]]);
    p.comm->forward_comm(&p);
    for (int64_t k = local; k < n; ++k) {
      const double* row = &p.rows_[static_cast<size_t>(w) * graph_.atom_of_node[k]];
      std::copy(row, row + w, xk + w * k);
    }
    p.comm_seconds_ += seconds_since(t0);
  }

  void reverse(at::Tensor& g, int64_t, int64_t) override {
    auto& p = *pair_;
    const auto t0 = std::chrono::steady_clock::now();
    const int w = prepare(g);
    const int64_t local = graph_.num_local_nodes, n = graph_.num_nodes();
    double* gk = g.data_ptr<double>();
    for (int64_t k = local; k < n; ++k)
      std::copy(gk + w * k, gk + w * (k + 1), &p.rows_[static_cast<size_t>(w) * graph_.atom_of_node[k]]);
    p.comm->reverse_comm(&p);
    for (int64_t k = 0; k < local; ++k) {
      const double* row = &p.rows_[static_cast<size_t>(w) * graph_.atom_of_node[k]];
      for (int c = 0; c < w; ++c) gk[w * k + c] += row[c];
    }
    p.moving_ = PairEquiforce::Moving::MemberForces;
    p.comm_seconds_ += seconds_since(t0);
  }

  void all_reduce(at::Tensor& values) override {
    auto& p = *pair_;
    const auto t0 = std::chrono::steady_clock::now();
    if (values.scalar_type() != at::kDouble || !values.device().is_cpu() || !values.is_contiguous())
      throw std::logic_error("equiforce: internal: all_reduce got values it cannot sum");
    auto sums = at::empty_like(values);
    MPI_Allreduce(values.data_ptr<double>(), sums.data_ptr<double>(), static_cast<int>(values.numel()), MPI_DOUBLE,
                  MPI_SUM, p.world);
    values = sums;
    p.comm_seconds_ += seconds_since(t0);
  }

  // Every rank's rows ordered by atom ID (the same order on every rank, whatever the decomposition).
  at::Tensor all_gather(const at::Tensor& rows, at::Tensor& mine) override {
    auto& p = *pair_;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t local = graph_.num_local_nodes, width = rows.size(1);
    if (rows.size(0) != local || rows.scalar_type() != at::kDouble || !rows.is_contiguous())
      throw std::logic_error("equiforce: internal: all_gather got rows that are not this rank's atoms");
    const int nprocs = p.comm->nprocs;
    int count = static_cast<int>(local);
    std::vector<int> counts(nprocs), offsets(nprocs + 1, 0);
    MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, p.world);
    for (int r = 0; r < nprocs; ++r) offsets[r + 1] = offsets[r] + counts[r];
    const int total = offsets[nprocs];
    std::vector<int64_t> tags(local), all_tags(total);
    for (int64_t k = 0; k < local; ++k) tags[k] = static_cast<int64_t>(p.atom->tag[graph_.atom_of_node[k]]);
    MPI_Allgatherv(tags.data(), count, MPI_INT64_T, all_tags.data(), counts.data(), offsets.data(), MPI_INT64_T,
                   p.world);
    std::vector<int> value_counts(nprocs), value_offsets(nprocs);
    for (int r = 0; r < nprocs; ++r) value_counts[r] = counts[r] * width, value_offsets[r] = offsets[r] * width;
    auto gathered = at::empty({total, width}, rows.options());
    MPI_Allgatherv(rows.data_ptr<double>(), count * static_cast<int>(width), MPI_DOUBLE, gathered.data_ptr<double>(),
                   value_counts.data(), value_offsets.data(), MPI_DOUBLE, p.world);
    std::vector<int64_t> order(total);  // position in ID order -> gathered row
    for (int i = 0; i < total; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return all_tags[a] < all_tags[b]; });
    std::vector<int64_t> rank_of(total);
    for (int i = 0; i < total; ++i) rank_of[order[i]] = i;
    mine = at::tensor(std::vector<int64_t>(rank_of.begin() + offsets[p.comm->me],
                                           rank_of.begin() + offsets[p.comm->me] + local), at::kLong);
    p.comm_seconds_ += seconds_since(t0);
    return gathered.index_select(0, at::tensor(order, at::kLong));
  }

 private:
  int prepare(const at::Tensor& t) {
    auto& p = *pair_;
    if (t.scalar_type() != at::kDouble || !t.device().is_cpu() || !t.is_contiguous() || t.dim() != 2 ||
        t.size(0) != graph_.num_nodes() || t.size(1) > p.comm_forward)
      throw std::logic_error("equiforce: internal: the feature exchange got rows it cannot send");
    p.width_ = static_cast<int>(t.size(1));
    p.moving_ = PairEquiforce::Moving::Features;
    p.rows_.assign(static_cast<size_t>(p.width_) * (p.atom->nlocal + p.atom->nghost), 0.0);
    return p.width_;
  }

  PairEquiforce* pair_;
  const Graph& graph_;
};

}  // namespace LAMMPS_NS

PairEquiforce::PairEquiforce(LAMMPS* lmp) : Pair(lmp), committee_(lmp, this) {
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
  halo_ = Halo::Exchange;
  committee_.clear_thresholds();
  for (int i = 0; i < narg;) {
    const std::string key = arg[i];
    if (key == "device" && i + 1 < narg) {
      device_ = arg[i + 1];
      if (device_ != "cpu" && device_ != "cuda")
        error->all(FLERR, "pair_style equiforce: device must be cpu or cuda, not '{}'", device_);
      i += 2;
    } else if (key == "halo" && i + 1 < narg) {
      const std::string how = arg[i + 1];
      if (how != "exchange" && how != "recompute")
        error->all(FLERR, "pair_style equiforce halo: 'exchange' (node features sent to ghosts between layers, "
                          "ghost cutoff r_max) or 'recompute' (ghosts out to layers x r_max, recomputed), not '{}'",
                   how);
      halo_ = how == "exchange" ? Halo::Exchange : Halo::Recompute;
      i += 2;
    } else if (key == "uncertainty" && i + 1 < narg) {  // uncertainty T ACTION [ACTION]; may repeat
      i = committee_.parse(narg, arg, i);
    } else {
      error->all(FLERR, "Illegal pair_style equiforce argument '{}': expected 'pair_style equiforce [device cpu|cuda] "
                        "[halo exchange|recompute] [uncertainty THRESHOLD [stop] [write FILE] ...]'", arg[i]);
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
  ewald_cutoff_ = model_->ewald_cutoff();
  const int members = static_cast<int>(model_->committee_size());
  model_has_stages_ = model_->has_stages();
  int widest = 0;
  for (const auto& widths : model_->node_widths())
    for (const auto w : widths) widest = std::max(widest, static_cast<int>(w));
  comm_forward = widest;                           // node features to ghosts (halo exchange)
  comm_reverse = std::max(3 * members, widest);    // their gradients back; each member's forces on ghosts

  std::string known;
  for (const auto& s : meta.species) known += " " + s;
  species_of_type_.assign(ntypes + 1, -1);
  std::vector<std::string> type_names(ntypes + 1, "X");
  for (int t = 1; t <= ntypes; ++t) {
    const std::string name = arg[2 + t];
    if (name == "NULL") continue;
    type_names[t] = name;
    species_of_type_[t] = static_cast<int>(model_->species_index(name));
    if (species_of_type_[t] < 0)
      error->all(FLERR, "pair_coeff: atom type {} is '{}', which model '{}' does not know (its species:{}); "
                        "use one of those names, or NULL for atoms another pair style handles",
                 t, name, model_path_, known);
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = 1; j <= ntypes; ++j) setflag[i][j] = species_of_type_[i] >= 0 && species_of_type_[j] >= 0;
  committee_.configure(members, species_of_type_, type_names);
  if (comm->me == 0)
    utils::logmesg(lmp, "equiforce: model {} ({} {}, species{}, r_max {} A, {} layers{}) on {}\n", model_path_,
                   meta.format, meta.dtype, known, r_max_, num_layers_,
                   members ? fmt::format(", committee of {}", members) : "", device_);
}

void PairEquiforce::init_style() {
  if (!model_) error->all(FLERR, "pair_style equiforce needs 'pair_coeff * * model.pt <elements>'");
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style equiforce requires 'newton on': forces on ghost atoms go back to their "
                      "owners by reverse communication");
  if (!atom->tag_enable) error->all(FLERR, "pair_style equiforce needs atom IDs (remove 'atom_modify id no')");
  if (committee_.has_thresholds() && committee_.members() == 0)
    error->all(FLERR, "pair_style equiforce uncertainty: model {} is a single model; the uncertainty is the spread "
                      "of a committee: equiforce deploy CKPT1 CKPT2 CKPT3 -o committee.pt", model_path_);
  const std::string units = update->unit_style;
  if (units == "metal") {
    energy_unit_ = 1.0;
  } else if (units == "real") {
    energy_unit_ = kEvToKcalPerMol;  // lengths are Angstrom in both
  } else {
    error->all(FLERR, "pair_style equiforce: models are in eV and Angstrom; 'units {}' is not supported: "
                      "use 'units metal' (or 'units real', converted to kcal/mol)", units);
  }
  committee_.start_run(energy_unit_);
  if (force->pair != this) {  // a hybrid sub-style: Comm sizes its buffers from the hybrid's counts, taken
    force->pair->comm_forward = std::max(force->pair->comm_forward, comm_forward);  // before pair_coeff
    force->pair->comm_reverse = std::max(force->pair->comm_reverse, comm_reverse);
  }
  node_updates_ = edge_updates_ = ideal_node_updates_ = ideal_edge_updates_ = 0;  // finish() logs this run's
  doubles_packed_ = comm_seconds_ = 0;
  run_calls_ = 0;
  if (long_range_) {
    const int periodic = domain->xperiodic + domain->yperiodic + domain->zperiodic;
    if (periodic != 0 && periodic != 3)
      error->all(FLERR, "pair_style equiforce: model {} has long-range electrostatics, which need a box periodic "
                        "in all three directions (Ewald) or in none (a direct sum), not a slab or wire: use "
                        "'boundary p p p' (with vacuum) or 'boundary f f f'", model_path_);
    if (comm->nprocs > 1 && !exchanging())
      error->all(FLERR, "pair_style equiforce: model {} has long-range electrostatics, which on several MPI ranks "
                        "need the halo exchange and a model with stages: {}", model_path_,
                 halo_ == Halo::Recompute ? "leave out 'halo recompute'"
                                          : "export it again as TorchScript (equiforce deploy CHECKPOINT -o " +
                                                model_path_ + ", or without the checkpoint equiforce deploy " +
                                                model_path_ + " --config TRAINING.yaml -o NEW.pt), or run it on "
                                                "one rank");
  }
  // One rank owns every atom, so every ghost is a periodic image of an owned atom and folds onto it:
  // the ordinary cutoff suffices. With several ranks, ghosts owned elsewhere carry messages, so their
  // features must be right num_layers - 1 hops in: ghosts out to num_layers x r_max, with neighbours.
  // Several ranks with a staged model: each layer updates the owned atoms only, and their ghosts' features
  // come from their owners before each layer: ghosts out to r_max. Without stages, or with
  // `halo recompute`, the halo is recomputed: ghosts out to num_layers x r_max, with neighbours.
  const bool several = comm->nprocs > 1;
  graph_builder_.emplace(r_max_, exchanging() ? 1 : num_layers_, species_of_type_,
                         splitting_ewald() ? ewald_cutoff_ : 0.0);
  if (several && halo_ == Halo::Exchange && !model_has_stages_ && comm->me == 0)
    utils::logmesg(lmp, "equiforce: model {} has no stages (an AOTInductor package, or exported by an older "
                        "equiforce), so the halo is recomputed instead of exchanged; for the exchange export it "
                        "as TorchScript again: equiforce deploy CHECKPOINT -o {} (without the checkpoint: equiforce "
                        "deploy {} --config TRAINING.yaml -o NEW.pt)\n", model_path_, model_path_, model_path_);
  if (!several) {
    neighbor->add_request(this, NeighConst::REQ_FULL);
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: one MPI rank: periodic images fold onto their atoms, ghost cutoff "
                          "stays r_max + skin\n");
  } else if (exchanging()) {
    neighbor->add_request(this, NeighConst::REQ_FULL);
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: {} MPI ranks, halo exchange: node features go to ghosts before each of the "
                          "{} layers after the first; ghost cutoff r_max + skin = {} A\n", comm->nprocs,
                     num_layers_ - 1, r_max_ + neighbor->skin);
    if (splitting_ewald() && comm->me == 0)
      utils::logmesg(lmp, "equiforce: Ewald split over {} ranks: structure factor summed across ranks, real-space part "
                          "over ghosts; ghost cutoff max(r_max, Ewald real-space cutoff {} A) + skin = {} A\n",
                     comm->nprocs, ewald_cutoff_, std::max(r_max_, ewald_cutoff_) + neighbor->skin);
    else if (long_range_ && comm->me == 0)
      utils::logmesg(lmp, "equiforce: long range on {} ranks: every rank gathers all atoms' positions and charges "
                          "({})\n", comm->nprocs, domain->nonperiodic ? "open box: the direct sum needs every pair"
                                                                       : "the model predates the split Ewald sum; export "
                                                                         "it again to split it");
  } else {
    neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
    const double needed = ghost_cutoff_ + neighbor->skin;
    if (comm->cutghostuser < needed) comm->cutghostuser = needed;
    if (comm->me == 0)
      utils::logmesg(lmp, "equiforce: {} MPI ranks, halo recomputed: ghost cutoff set to {} A = {} message-passing "
                          "layers x r_max {} A + skin {} A\n", comm->nprocs, comm->cutghostuser, num_layers_, r_max_,
                     neighbor->skin);
  }
}

double PairEquiforce::init_one(int, int) { return splitting_ewald() ? std::max(r_max_, ewald_cutoff_) : r_max_; }

bool PairEquiforce::splitting_ewald() const {
  return long_range_ && ewald_cutoff_ > 0 && exchanging() && domain->nonperiodic == 0;
}

const Graph& PairEquiforce::build_graph() {
  const int nlocal = atom->nlocal, nghost = atom->nghost;
  auto& builder = *graph_builder_;
  if (neighbor->ago == 0 || !builder.has_owners_for(nlocal + nghost)) builder.find_owners(nlocal, nghost, atom->tag);
  equiforce::lammps::AtomArrays atoms;
  atoms.nlocal = nlocal;
  atoms.nghost = nghost;
  atoms.x = nlocal + nghost > 0 ? atom->x[0] : nullptr;  // LAMMPS's per-atom arrays are contiguous
  atoms.type = atom->type;
  atoms.neighbors = list->firstneigh;
  atoms.num_neighbors = list->numneigh;
  atoms.index_mask = NEIGHMASK;
  return builder.build(atoms);
}

void PairEquiforce::compute(int eflag, int vflag) {
  const auto t0 = std::chrono::steady_clock::now();
  ev_init(eflag, vflag);
  const Graph* built = nullptr;
  equiforce::runtime::Outputs out;
  std::string problem;  // this rank's, said once by rank 0 for every rank (stop_if_any_rank_failed)
  auto t_model = t0;
  try {
    built = &build_graph();
    t_model = std::chrono::steady_clock::now();
    if (exchanging())  // collective from here: every rank checks its input before any rank starts
      check_input(*built);
    else if (built->num_local_nodes > 0)
      out = call_model(*built);
    count_work(*built);
    ++run_calls_;
  } catch (const InputError& err) {
    problem = built ? describe(err, *built) : err.what();
  } catch (const std::exception& err) {
    problem = built ? "evaluating " + model_path_ + " failed: " + err.what() : err.what();
  }
  stop_if_any_rank_failed(problem);
  if (exchanging()) {
    try {
      out = call_model(*built);
    } catch (const std::exception& err) {  // mid-exchange: the other ranks cannot be told; stop them all
      error->one(FLERR, "pair_style equiforce: evaluating {} failed: {}", model_path_, err.what());
    }
  }
  const Graph& graph = *built;
  const int members = committee_.members();
  if (graph.num_local_nodes == 0) {  // an empty sub-domain, or only NULL-type atoms here
    pair_seconds_ += seconds_since(t0);
    if (members > 0)                 // the spread is collective: take part with nothing
      committee_.compute_spread(torch::zeros({members}, torch::kFloat64),
                                torch::zeros({members, 0, 3}, torch::kFloat64), graph.atom_of_node, pvector);
    return;
  }
  const auto forces = out.forces.to(torch::kCPU, torch::kFloat64).contiguous();
  model_seconds_ += seconds_since(t_model);
  ++model_calls_;

  const double u = energy_unit_;
  const int64_t n = graph.num_nodes();
  const auto& atom_of_node = graph.atom_of_node;
  double** f = atom->f;
  const double* fk = forces.data_ptr<double>();
  for (int64_t k = 0; k < n; ++k)
    for (int d = 0; d < 3; ++d) f[atom_of_node[k]][d] += u * fk[3 * k + d];
  if (eflag_global) eng_vdwl += u * out.energy;
  if (eflag_atom) {
    const auto atomic = out.atomic_energies.to(torch::kCPU, torch::kFloat64).contiguous();
    const double* ek = atomic.data_ptr<double>();
    for (int64_t k = 0; k < graph.num_local_nodes; ++k) eatom[atom_of_node[k]] += u * ek[k];
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
    for (int64_t k = 0; k < n; ++k) tally6(vatom[atom_of_node[k]], wk + 9 * k);
  }
  if (members > 0) committee_.compute_spread(out.member_energies, out.member_forces, atom_of_node, pvector);
  pair_seconds_ += seconds_since(t0);
}

equiforce::runtime::Outputs PairEquiforce::call_model(const Graph& g) {
  const int64_t n = g.num_nodes(), e = g.num_edges();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  // views of the graph's arrays (the model reads its inputs, never writes them)
  auto view = [](const auto& v, at::IntArrayRef shape, const torch::TensorOptions& o) {
    return torch::from_blob(const_cast<void*>(static_cast<const void*>(v.data())), shape, o);
  };
  const double* h = domain->h;  // xprd yprd zprd yz xz xy
  const double rows[9] = {h[0], 0, 0, h[5], h[1], 0, h[4], h[3], h[2]};
  const auto cell = torch::from_blob(const_cast<double*>(rows), {3, 3}, f64).clone();
  const auto pbc = torch::tensor({domain->xperiodic != 0, domain->yperiodic != 0, domain->zperiodic != 0},
                                 torch::kBool);
  if (exchanging()) {  // layer by layer (long-range models: the Coulomb term from every rank's atoms)
    FeatureComm exchange(this, g);
    equiforce::runtime::CoulombPairs pairs;
    if (splitting_ewald()) {
      const int64_t p = static_cast<int64_t>(g.pair_src.size());
      pairs = {view(g.pair_src, {p}, i64), view(g.pair_dst, {p}, i64), view(g.pair_shift, {p, 3}, f64)};
    }
    return model_->compute_exchanged(view(g.positions, {n, 3}, f64), view(g.species, {n}, i64),
                                     view(g.edge_src, {e}, i64), view(g.edge_dst, {e}, i64),
                                     view(g.edge_shift, {e, 3}, f64), g.num_local_nodes, exchange,
                                     long_range_ ? cell : torch::Tensor(), long_range_ ? pbc : torch::Tensor(), pairs);
  }
  if (long_range_)  // one rank: the nodes are the owned atoms; the model sums Coulomb over the cell
    return model_->compute(view(g.positions, {n, 3}, f64), view(g.species, {n}, i64), cell, pbc);
  return model_->compute(view(g.positions, {n, 3}, f64), view(g.species, {n}, i64), view(g.edge_src, {e}, i64),
                         view(g.edge_dst, {e}, i64), view(g.edge_shift, {e, 3}, f64), g.num_local_nodes,
                         g.has_ghost_nodes() ? view(g.layer_sizes, {2, num_layers_}, i64) : torch::Tensor());
}

void PairEquiforce::check_input(const Graph& g) const {
  if (g.num_local_nodes == 0) return;
  const int64_t n = g.num_nodes(), e = g.num_edges();
  auto view = [](const auto& v, at::IntArrayRef shape, at::ScalarType t) {
    return torch::from_blob(const_cast<void*>(static_cast<const void*>(v.data())), shape, torch::dtype(t));
  };
  equiforce::runtime::check_edges(view(g.positions, {n, 3}, torch::kFloat64), view(g.edge_src, {e}, torch::kInt64),
                                  view(g.edge_dst, {e}, torch::kInt64), view(g.edge_shift, {e, 3}, torch::kFloat64));
}

std::string PairEquiforce::describe(const InputError& err, const Graph& g) const {
  // The runtime numbers atoms by node; LAMMPS users know them by atom ID.
  auto id = [&](int64_t node) { return atom->tag[g.atom_of_node[node]]; };
  auto is_node = [&](int64_t node) { return node >= 0 && node < g.num_nodes(); };
  const bigint step = update->ntimestep;
  const double closest = equiforce::runtime::kMinDistance;
  if (err.kind == InputError::Kind::CloseAtoms && is_node(err.i) && is_node(err.j)) {
    const tagint a = std::min(id(err.i), id(err.j)), b = std::max(id(err.i), id(err.j));
    if (a == b)
      return fmt::format("atom {} is {:.4g} A from its own periodic image (closer than {} A) at step {}: the box is "
                         "far too small", a, err.distance, closest, step);
    return fmt::format("atoms {} and {} are {:.4g} A apart (closer than {} A) at step {}: overlapping atoms; check "
                       "the input structure", a, b, err.distance, closest, step);
  }
  if (err.kind == InputError::Kind::NonFinite && is_node(err.i))
    return fmt::format("atom {} has a position that is not finite (NaN or inf) at step {}: check the input "
                       "structure (in MD: the trajectory blew up earlier)", id(err.i), step);
  std::string what = err.what();  // the cell, a shift: no atom to name
  if (what.rfind("equiforce: ", 0) == 0) what = what.substr(std::strlen("equiforce: "));
  return fmt::format("{} (step {})", what, step);
}

void PairEquiforce::stop_if_any_rank_failed(const std::string& problem) {
  // Every rank calls compute, so the check is collective: the lowest failing rank's message goes to all
  // and error->all says it once. (error->one from two ranks at once races to MPI_Abort, which can kill
  // both before either message leaves the stdout buffer.) One integer all-reduce per step.
  const int me = comm->me, nprocs = comm->nprocs;
  if (nprocs == 1) {
    if (!problem.empty()) error->all(FLERR, "pair_style equiforce: {}", problem);
    return;
  }
  const int mine = problem.empty() ? nprocs : me;
  int first = nprocs;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, world);
  if (first == nprocs) return;
  int length = me == first ? static_cast<int>(problem.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, world);
  std::string message = me == first ? problem : std::string(length, ' ');
  MPI_Bcast(message.data(), length, MPI_CHAR, first, world);
  error->all(FLERR, "pair_style equiforce: {}{}", message, first == 0 ? "" : fmt::format(" (found on rank {})", first));
}

bool PairEquiforce::exchanging() const {
  return comm->nprocs > 1 && halo_ == Halo::Exchange && model_has_stages_;
}

void PairEquiforce::count_work(const Graph& g) {
  const double layers = num_layers_;
  const double edges_in = g.has_ghost_nodes() && !exchanging() ? g.layer_sizes[2 * num_layers_ - 1] : g.num_edges();
  ideal_node_updates_ += layers * g.num_local_nodes;
  ideal_edge_updates_ += layers * edges_in;
  if (g.has_ghost_nodes() && !exchanging()) {  // halo recomputed: layer k updates a prefix of the nodes
    for (int k = 0; k < num_layers_; ++k) {
      node_updates_ += g.layer_sizes[k];
      edge_updates_ += g.layer_sizes[num_layers_ + k];
    }
  } else {
    node_updates_ += layers * g.num_local_nodes;
    edge_updates_ += layers * g.num_edges();
  }
}

// Node features to ghosts (halo exchange): the rows of the atoms in `list`, `width_` numbers each.
int PairEquiforce::pack_forward_comm(int n, int* list, double* buf, int, int*) {
  const size_t w = width_;
  for (int i = 0; i < n; ++i) std::copy(&rows_[w * list[i]], &rows_[w * list[i]] + w, buf + w * i);
  doubles_packed_ += static_cast<double>(w) * n;
  return static_cast<int>(w) * n;
}

void PairEquiforce::unpack_forward_comm(int n, int first, double* buf) {
  std::copy(buf, buf + static_cast<size_t>(width_) * n, &rows_[static_cast<size_t>(width_) * first]);
}

// Feature gradients of ghosts back to their owners (halo exchange), or committees' member forces.
int PairEquiforce::pack_reverse_comm(int n, int first, double* buf) {
  if (moving_ == Moving::MemberForces) return committee_.pack_reverse_comm(n, first, buf);
  const size_t w = width_;
  std::copy(&rows_[w * first], &rows_[w * first] + w * n, buf);
  doubles_packed_ += static_cast<double>(w) * n;
  return static_cast<int>(w) * n;
}

void PairEquiforce::unpack_reverse_comm(int n, int* list, double* buf) {
  if (moving_ == Moving::MemberForces) return committee_.unpack_reverse_comm(n, list, buf);
  const size_t w = width_;
  for (int i = 0; i < n; ++i)
    for (size_t c = 0; c < w; ++c) rows_[w * list[i] + c] += buf[w * i + c];
}

void* PairEquiforce::extract_peratom(const char* name, int& ncol) {
  ncol = 0;
  if (std::strcmp(name, "force_std") != 0) return nullptr;
  if (model_ && committee_.members() == 0)
    error->all(FLERR, "pair_style equiforce: force_std is the spread of a committee, and model {} is a single "
                      "model: deploy several with equiforce deploy CKPT1 CKPT2 CKPT3 -o committee.pt", model_path_);
  return committee_.force_std();
}

void PairEquiforce::finish() {
  double local[8] = {model_seconds_, pair_seconds_, node_updates_, edge_updates_, ideal_node_updates_,
                     ideal_edge_updates_, doubles_packed_, comm_seconds_};
  double total[8] = {};
  MPI_Allreduce(local, total, 8, MPI_DOUBLE, MPI_SUM, world);
  bigint calls = run_calls_, most_calls = 0;  // every rank calls compute once per step
  MPI_Allreduce(&calls, &most_calls, 1, MPI_LMP_BIGINT, MPI_MAX, world);
  if (comm->me == 0 && model_calls_ > 0 && total[0] > 0)
    utils::logmesg(lmp, "equiforce: {} model calls; pair time {:.6g} s, of which model {:.6g} s: pair-style "
                        "overhead {:.2f}% of the model's time (sums over ranks)\n",
                   model_calls_, total[1], total[0], 100.0 * (total[1] - total[0]) / total[0]);
  if (comm->me == 0 && most_calls > 0 && total[4] > 0) {
    const double ghost_cutoff = exchanging() || comm->nprocs == 1 ? init_one(1, 1) + neighbor->skin : comm->cutghostuser;
    const double ideal = total[4] + total[5];
    utils::logmesg(lmp, "equiforce: halo {} on {} ranks: ghost cutoff {:.6g} A; work factor {:.4f} (node updates "
                        "{:.4f}, edge updates {:.4f} of the periodic graph's, summed over ranks and layers); node "
                        "features communicated {:.6g} bytes per step per rank; {:.6g} s in that communication (sum "
                        "over ranks, {:.2f}% of pair time)\n",
                   comm->nprocs == 1 ? "folded" : exchanging() ? "exchange" : "recompute", comm->nprocs, ghost_cutoff,
                   (total[2] + total[3]) / ideal, total[2] / total[4], total[5] > 0 ? total[3] / total[5] : 1.0,
                   8.0 * total[6] / (static_cast<double>(most_calls) * comm->nprocs), total[7],
                   total[1] > 0 ? 100.0 * total[7] / total[1] : 0.0);
  }
  committee_.log_summary();
}
