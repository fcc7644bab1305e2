#include "committee_uncertainty.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "pair.h"
#include "timer.h"
#include "update.h"

#include "model.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <numeric>
#include <utility>

using namespace LAMMPS_NS;

CommitteeUncertainty::CommitteeUncertainty(LAMMPS* lmp, Pair* pair) : Pointers(lmp), pair_(pair) {}

int CommitteeUncertainty::parse(int narg, char** arg, int i) {
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
  return i;
}

void CommitteeUncertainty::clear_thresholds() {
  stop_threshold_ = write_threshold_ = -1;
  frames_path_.clear();
}

void CommitteeUncertainty::configure(int members, std::vector<int> species_of_type,
                                     std::vector<std::string> type_names) {
  members_ = members;
  species_of_type_ = std::move(species_of_type);
  type_names_ = std::move(type_names);
}

void CommitteeUncertainty::start_run(double energy_unit) {
  energy_unit_ = energy_unit;
  if (stopped_run_) {  // the last run ended on the threshold; this one starts afresh
    timer->reset_timeout();
    stopped_run_ = false;
  }
}

void CommitteeUncertainty::compute_spread(const at::Tensor& member_energies, const at::Tensor& member_forces,
                                          const std::vector<int>& atom_of_node, double* pvector) {
  const int m = members_, width = 3 * members_;
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  const size_t rows = static_cast<size_t>(std::max({atom->nmax, nall, 1}));
  member_f_.assign(rows * width, 0.0);
  const auto forces = member_forces.to(torch::kCPU, torch::kFloat64).contiguous();  // [M, nodes, 3]
  const int64_t n = forces.size(1);
  const double* fk = forces.data_ptr<double>();
  for (int mm = 0; mm < m; ++mm)
    for (int64_t k = 0; k < n; ++k)
      for (int d = 0; d < 3; ++d) member_f_[atom_of_node[k] * width + 3 * mm + d] = fk[(mm * n + k) * 3 + d];
  if (comm->nprocs > 1) comm->reverse_comm(pair_);  // ghosts' member forces onto their owners

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
    write_frame(energy_std, max_std);
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

double* CommitteeUncertainty::force_std() {
  if (force_std_.size() < static_cast<size_t>(std::max(atom->nmax, 1))) force_std_.resize(std::max(atom->nmax, 1), 0.0);
  return force_std_.data();
}

void CommitteeUncertainty::write_frame(double energy_std, double max_std) {
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

int CommitteeUncertainty::pack_reverse_comm(int n, int first, double* buf) const {
  const int width = 3 * members_;
  int m = 0;
  for (int i = first; i < first + n; ++i)
    for (int c = 0; c < width; ++c) buf[m++] = member_f_[static_cast<size_t>(i) * width + c];
  return m;
}

void CommitteeUncertainty::unpack_reverse_comm(int n, const int* list, const double* buf) {
  const int width = 3 * members_;
  int m = 0;
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < width; ++c) member_f_[static_cast<size_t>(list[i]) * width + c] += buf[m++];
}

void CommitteeUncertainty::log_summary() const {
  if (comm->me != 0 || members_ == 0) return;
  utils::logmesg(lmp, "equiforce: committee of {}: largest force uncertainty {:.6g}{}\n", members_, max_std_seen_,
                 write_threshold_ > 0 ? fmt::format("; {} frames above {:.6g} written to {}", frames_written_,
                                                    write_threshold_, frames_path_)
                                      : "");
}
