#include "model.h"

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/autograd.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <stdexcept>

extern "C" const char* equiforce_ops_library_version();

namespace equiforce::runtime {
namespace {

constexpr int64_t kFormatVersion = 2;  // 2 added per-atom virials; 1 still loads
constexpr int64_t kAotiMinSize = 2;  // the compiled graph's smallest atom and edge counts (deploy/aoti.py)

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

Outputs unpack(const c10::IValue& value) {
  const auto t = value.toTuple();
  Outputs out;
  out.energy = t->elements()[0].toTensor().item<double>();
  out.atomic_energies = t->elements()[1].toTensor();
  out.forces = t->elements()[2].toTensor();
  out.virial = t->elements()[3].toTensor();
  if (t->elements().size() > 4) out.atomic_virials = t->elements()[4].toTensor();
  if (t->elements().size() > 6) {
    out.member_energies = t->elements()[5].toTensor();
    out.member_forces = t->elements()[6].toTensor();
  }
  return out;
}

// TorchScript's graph-executor optimisations (profiling, autodiff subgraphs, fusion) make our models
// about 1.8x slower on the CPU (Cu, 8k atoms: 3.3 s -> 1.8 s per call without them): run without.
// The setting is thread-local; the guard restores it.
class PlainExecution {
 public:
  PlainExecution() : saved_(torch::jit::getGraphExecutorOptimize()) { torch::jit::setGraphExecutorOptimize(false); }
  ~PlainExecution() { torch::jit::setGraphExecutorOptimize(saved_); }

 private:
  bool saved_;
};

std::string format_distance(double d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", d);
  return text;
}

// Row of the first non-finite entry of x [rows, cols], or -1.
int64_t first_non_finite_row(const at::Tensor& x) {
  const auto bad = at::logical_not(at::isfinite(x)).reshape({x.size(0), -1}).any(1);
  if (!bad.any().item<bool>()) return -1;
  return bad.nonzero().select(1, 0)[0].item<int64_t>();
}

void check_positions(const at::Tensor& positions) {
  const int64_t row = first_non_finite_row(positions);
  if (row >= 0)
    throw InputError(InputError::Kind::NonFinite, "equiforce: positions[" + std::to_string(row) +
                     "] is not finite (NaN or inf); check the structure (in MD: the trajectory blew up earlier)", row);
}

[[noreturn]] void throw_close_atoms(int64_t i, int64_t j, double distance) {
  const std::string what = i == j ? "atom " + std::to_string(i) + " is " + format_distance(distance) +
                                        " A from its own periodic image (the cell is far too small)"
                                  : "atoms " + std::to_string(i) + " and " + std::to_string(j) + " are " +
                                        format_distance(distance) + " A apart";
  throw InputError(InputError::Kind::CloseAtoms, "equiforce: " + what + ", closer than " +
                   format_distance(kMinDistance) + " A: overlapping atoms; check the structure", i, j, distance);
}

}  // namespace

void check_edges(const at::Tensor& positions, const at::Tensor& edge_src, const at::Tensor& edge_dst,
                 const at::Tensor& edge_shift) {
  check_positions(positions);
  if (edge_src.numel() == 0) return;
  const auto pos = positions.to(at::kDouble);
  const auto shift = edge_shift.to(pos.device(), at::kDouble);
  if (first_non_finite_row(shift) >= 0)
    throw InputError(InputError::Kind::NonFinite, "equiforce: an edge shift is not finite (NaN or inf): the "
                     "host's cell or periodic images are broken");
  const auto src = edge_src.to(pos.device(), at::kLong), dst = edge_dst.to(pos.device(), at::kLong);
  const auto r = (pos.index_select(0, src) - pos.index_select(0, dst) + shift).norm(2, 1);
  const auto closest = r.argmin().item<int64_t>();
  const double distance = r[closest].item<double>();
  if (distance < kMinDistance) throw_close_atoms(dst[closest].item<int64_t>(), src[closest].item<int64_t>(), distance);
}

void check_structure(const at::Tensor& positions, const at::Tensor& cell, const at::Tensor& pbc) {
  check_positions(positions);
  if (first_non_finite_row(cell.reshape({3, 3})) >= 0)
    throw InputError(InputError::Kind::NonFinite, "equiforce: the cell is not finite (NaN or inf)");
  static auto neighbor_list =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("equiforce::neighbor_list", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&, double, bool)>();
  const auto pos = positions.to(at::kDouble).contiguous();
  at::Tensor i, j, shift;
  try {
    std::tie(i, j, shift) = neighbor_list.call(pos, cell.to(pos.device(), at::kDouble).reshape({3, 3}).contiguous(),
                                               pbc.to(pos.device(), at::kBool), kMinDistance, false);
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    const std::string prefix = "equiforce::neighbor_list: ";
    if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
    throw InputError(InputError::Kind::BadCell, "equiforce: " + message.substr(0, message.find('\n')));
  }
  if (i.numel() == 0) return;
  const auto box = cell.to(pos.device(), at::kDouble).reshape({3, 3});
  const auto r = (pos.index_select(0, j) - pos.index_select(0, i) + shift.to(at::kDouble).matmul(box)).norm(2, 1);
  const auto closest = r.argmin().item<int64_t>();
  throw_close_atoms(i[closest].item<int64_t>(), j[closest].item<int64_t>(), r[closest].item<double>());
}

Model::Model(const std::string& path, const std::string& device) : device_(device) {
  (void)equiforce_ops_library_version();  // the ops the model calls are registered by now
  if (!std::filesystem::exists(path))
    throw std::runtime_error("equiforce: model file '" + path + "' does not exist");
  std::string torchscript_error;
  if (!ends_with(path, ".pt2")) {
    torch::jit::ExtraFilesMap extra{{"equiforce_metadata.txt", ""}};
    try {
      module_ = torch::jit::load(path, device_, extra);
      std::map<std::string, std::string> all;
      std::istringstream lines(extra["equiforce_metadata.txt"]);
      for (std::string line; std::getline(lines, line);) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) all[line.substr(0, eq)] = line.substr(eq + 1);
      }
      read_metadata(path, std::move(all));
      metadata_.format = "torchscript";
      module_.eval();
      // self, positions, species, edge_src, edge_dst, edge_shift, num_local[, layer_sizes]
      takes_layer_sizes_ = module_.get_method("forward").function().getSchema().arguments().size() > 7;
      has_stages_ = module_.find_method("stage_layer").has_value() && !node_widths_.empty();
      return;
    } catch (const c10::Error& e) {
      torchscript_error = e.what_without_backtrace();
    }
  }
  try {  // an AOTInductor package (.pt2), or a file TorchScript could not read
    aoti_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
  } catch (const std::exception& e) {
    throw std::runtime_error("equiforce: cannot load '" + path + "' as an exported model (" +
                             (torchscript_error.empty() ? std::string(e.what()) : torchscript_error) +
                             "); export one with `equiforce deploy`");
  }
  const auto found = aoti_->get_metadata();
  read_metadata(path, std::map<std::string, std::string>(found.begin(), found.end()));
  metadata_.format = "aoti";
  if (!device_.is_cpu())
    throw std::runtime_error("equiforce: '" + path + "' is an AOTInductor package compiled for the CPU; "
                             "export it with --format aoti on a GPU machine to run it on " + device_.str());
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;

void Model::read_metadata(const std::string& path, std::map<std::string, std::string> all) {
  metadata_.all = std::move(all);
  auto& m = metadata_.all;
  if (m["format"] != "equiforce-deployed")
    throw std::runtime_error("equiforce: '" + path + "' is an exported model but not an equiforce one "
                             "(no equiforce metadata)");
  metadata_.format_version = std::stoll(m["format_version"]);
  if (metadata_.format_version > kFormatVersion)
    throw std::runtime_error("equiforce: '" + path + "' has format version " + m["format_version"] +
                             "; this build reads up to " + std::to_string(kFormatVersion) + ": upgrade equiforce");
  std::istringstream species(m["species"]);
  for (std::string s; species >> s;) metadata_.species.push_back(s);
  metadata_.r_max = std::stod(m["r_max"]);
  metadata_.num_layers = std::stoll(m["num_layers"]);
  metadata_.ghost_cutoff = std::stod(m["ghost_cutoff"]);
  metadata_.dtype = m["dtype"];
  if (m.count("committee_size")) committee_size_ = std::stoll(m["committee_size"]);
  node_widths_.clear();
  if (m.count("node_widths")) {
    std::istringstream text(m["node_widths"]);
    std::vector<int64_t> all;
    for (int64_t w; text >> w;) all.push_back(w);
    const int64_t members = std::max<int64_t>(committee_size_, 1), layers = metadata_.num_layers;
    if (static_cast<int64_t>(all.size()) != members * layers)
      throw std::runtime_error("equiforce: '" + path + "' has inconsistent metadata (node_widths: " +
                               std::to_string(all.size()) + " numbers for " + std::to_string(members) + " x " +
                               std::to_string(layers) + " layers); export it again with `equiforce deploy`");
    for (int64_t k = 0; k < members; ++k)
      node_widths_.emplace_back(all.begin() + k * layers, all.begin() + (k + 1) * layers);
  }
}

double energy_spread(const at::Tensor& member_energies) {
  return member_energies.to(at::kDouble).var(0, /*unbiased=*/true).sqrt().item<double>();
}

at::Tensor force_spread(const at::Tensor& member_forces) {
  return member_forces.to(at::kDouble).var(0, /*unbiased=*/true).sum(-1).sqrt();
}

int64_t Model::species_index(const std::string& element) const {
  for (size_t n = 0; n < metadata_.species.size(); ++n)
    if (metadata_.species[n] == element) return static_cast<int64_t>(n);
  return -1;
}

Outputs Model::compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                       const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local,
                       const at::Tensor& layer_sizes) {
  check_edges(positions, edge_src, edge_dst, edge_shift);
  if (aoti_) return run_aoti(positions, species, edge_src, edge_dst, edge_shift, num_local);
  PlainExecution plain;
  std::vector<c10::IValue> inputs{positions.to(device_), species.to(device_), edge_src.to(device_),
                                  edge_dst.to(device_), edge_shift.to(device_), num_local};
  if (takes_layer_sizes_ && layer_sizes.defined()) inputs.emplace_back(layer_sizes.to(at::kLong));
  if (committee_size_ > 0) return unpack(module_.get_method("committee")(inputs));
  return unpack(module_.forward(inputs));
}

bool Model::long_range() const {
  const auto it = metadata_.all.find("long_range");
  return it != metadata_.all.end() && it->second != "none";
}

double Model::ewald_cutoff() const {
  const auto it = metadata_.all.find("ewald_cutoff");
  if (!long_range() || it == metadata_.all.end() || aoti_ || !module_.find_method("stage_ewald").has_value()) return 0;
  return std::stod(it->second);
}

// One process's part of the Coulomb term: its atoms' energies [n] (float64), forces on its nodes [N, 3]
// (or on its atoms only), its share of the virial, the per-atom virial of every atom, and dE/draw [n].
struct Model::CoulombShare {
  at::Tensor energies, forces, virial, atom_virial, g_raw;
};

// Every atom gathered; the whole structure's Coulomb term evaluated on every process.
Model::CoulombShare Model::coulomb_gathered(const at::Tensor& pos, const at::Tensor& raw, int64_t num_local,
                                            const at::Tensor& cell, const at::Tensor& pbc, FeatureExchange& exchange) {
  const auto dtype = pos.scalar_type();
  const auto rows = at::cat({pos.slice(0, 0, num_local).detach().to(at::kCPU, at::kDouble),
                             raw.detach().to(at::kCPU, at::kDouble).unsqueeze(1)}, 1).contiguous();
  at::Tensor mine;
  const auto all = exchange.all_gather(rows, mine);
  CoulombShare share;
  if (num_local == 0) return share;
  const auto result = module_.get_method("stage_coulomb")({all.slice(1, 0, 3).to(device_, dtype).contiguous(),
                                                            all.select(1, 3).to(device_, dtype).contiguous(),
                                                            cell.to(device_, dtype), pbc.to(device_, at::kBool)})
                          .toTuple();
  const bool holds_first = (mine == 0).any().item<bool>();  // it counts the Coulomb virial
  mine = mine.to(device_, at::kLong);
  share.energies = result->elements()[0].toTensor().index_select(0, mine).to(at::kCPU, at::kDouble);
  share.forces = at::zeros({pos.size(0), 3}, pos.options());
  share.forces.slice(0, 0, num_local).copy_(result->elements()[1].toTensor().index_select(0, mine));
  const auto virial = result->elements()[2].toTensor();
  share.virial = holds_first ? virial : at::zeros_like(virial);
  share.atom_virial = virial / static_cast<double>(all.size(0));
  share.g_raw = result->elements()[3].toTensor().index_select(0, mine);
  return share;
}

// The charges summed over processes equal the model's total charge (every process shifts its raw charges
// by the same amount); otherwise the processes disagree about the atoms they own. Collective: every
// process sees the same sums, so all of them throw.
void Model::check_total_charge(double total, double magnitude, at::ScalarType dtype) const {
  const auto it = metadata_.all.find("total_charge");
  const double expected = it == metadata_.all.end() ? 0.0 : std::stod(it->second);
  const double tol = (dtype == at::kFloat ? 1e-4 : 1e-9) * std::max(1.0, magnitude);
  if (!(std::abs(total - expected) <= tol))
    throw std::runtime_error("equiforce: the charges sum to " + std::to_string(total) + " e over all processes, not "
                             "the model's total charge " + std::to_string(expected) + " e: the processes disagree "
                             "about the atoms they own (every atom must be owned by exactly one process)");
}

// The Ewald sum split over processes (equiforce.deploy.staged.ewald_exchanged): four collective calls.
Model::CoulombShare Model::ewald_split(const at::Tensor& pos, const at::Tensor& raw, int64_t num_local,
                                       const CoulombPairs& pairs, const at::Tensor& cell, FeatureExchange& exchange) {
  const auto dtype = pos.scalar_type();
  const auto cpu64 = at::TensorOptions().dtype(at::kDouble);
  const auto box = cell.to(device_, dtype);
  auto totals = at::tensor({raw.detach().to(at::kDouble).sum().item<double>(), static_cast<double>(num_local)}, cpu64);
  exchange.all_reduce(totals);
  const auto charged = module_.get_method("stage_ewald_structure")({pos.slice(0, 0, num_local), raw.detach(), totals,
                                                                     box}).toTuple();
  const auto q = charged->elements()[0].toTensor();
  auto structure = charged->elements()[1].toTensor().to(at::kCPU, at::kDouble).contiguous();
  exchange.all_reduce(structure);
  auto q_nodes = at::zeros({pos.size(0), 1}, cpu64);  // the ghosts' charges from their owners
  q_nodes.slice(0, 0, num_local).copy_(q.to(at::kCPU, at::kDouble).unsqueeze(1));
  exchange.forward(q_nodes, 0, -1);
  const auto result = module_.get_method("stage_ewald")({pos, num_local, q_nodes.squeeze(1).to(device_, dtype),
                                                          pairs.src.to(device_, at::kLong), pairs.dst.to(device_, at::kLong),
                                                          pairs.shift.to(device_, dtype), structure.to(device_, dtype), box})
                          .toTuple();
  const auto phi = result->elements()[0].toTensor();
  const auto virial_pairs = result->elements()[2].toTensor(), virial_structure = result->elements()[3].toTensor();
  const auto q64 = q.detach().to(at::kCPU, at::kDouble);
  auto sums = at::cat({phi.detach().to(at::kCPU, at::kDouble).sum().reshape({1}),
                       virial_pairs.detach().to(at::kCPU, at::kDouble).reshape({9}), q64.sum().reshape({1}),
                       q64.abs().sum().reshape({1})}).contiguous();
  exchange.all_reduce(sums);
  check_total_charge(sums[10].item<double>(), sums[11].item<double>(), dtype);
  const double atoms = totals[1].item<double>();
  CoulombShare share;
  share.energies = (0.5 * q.to(at::kCPU, at::kDouble) * phi.to(at::kCPU, at::kDouble));
  share.forces = result->elements()[1].toTensor();
  share.virial = virial_pairs + virial_structure * (static_cast<double>(num_local) / atoms);
  share.atom_virial = ((sums.slice(0, 1, 10).reshape({3, 3}) + virial_structure.to(at::kCPU, at::kDouble)) / atoms)
                          .to(device_, dtype);
  share.g_raw = phi - sums[0].item<double>() / atoms;
  return share;
}

// The algorithm (and its Python twin, tested against the whole-model contract): equiforce.deploy.staged.
Outputs Model::compute_exchanged(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                                 const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local,
                                 FeatureExchange& exchange, const at::Tensor& cell, const at::Tensor& pbc,
                                 const CoulombPairs& pairs) {
  if (!has_stages_)
    throw std::runtime_error("equiforce: this model file has no stages (an AOTInductor package, or exported by an "
                             "older equiforce); export it again as TorchScript with `equiforce deploy CHECKPOINT -o NEW.pt`, or "
                             "without the checkpoint `equiforce deploy OLD.pt --config TRAINING.yaml -o NEW.pt`");
  const int64_t members = std::max<int64_t>(committee_size_, 1), layers = metadata_.num_layers;
  const int64_t n = positions.size(0);
  const auto cpu64 = at::TensorOptions().dtype(at::kDouble);
  const bool coulomb = long_range();
  if (coulomb && (!cell.defined() || !pbc.defined()))
    throw std::runtime_error("equiforce: a long-range model needs the cell and pbc (internal)");
  const bool split = coulomb && pairs.defined() && ewald_cutoff() > 0 && pbc.all().item<bool>();
  const auto dtype = metadata_.dtype == "float32" ? at::kFloat : at::kDouble;
  auto coulomb_share = [&](const at::Tensor& pos, const at::Tensor& raw, int64_t local) {
    return split ? ewald_split(pos, raw, local, pairs, cell, exchange)
                 : coulomb_gathered(pos, raw, local, cell, pbc, exchange);
  };
  Outputs out;
  if (num_local == 0) {  // collective: take part in every exchange, with nothing of our own
    for (int64_t m = 0; m < members; ++m) {
      for (int64_t k = 0; k + 1 < layers; ++k) {
        auto x = at::zeros({n, node_widths_[m][k]}, cpu64);
        exchange.forward(x, m, k);
      }
      if (coulomb) coulomb_share(at::zeros({n, 3}, at::TensorOptions().dtype(dtype).device(device_)),
                                 at::zeros({0}, at::TensorOptions().dtype(dtype).device(device_)), 0);
      for (int64_t k = layers - 1; k > 0; --k) {
        auto g = at::zeros({n, node_widths_[m][k - 1]}, cpu64);
        exchange.reverse(g, m, k - 1);
      }
    }
    out.atomic_energies = at::zeros({n}, cpu64);
    out.forces = at::zeros({n, 3}, cpu64);
    out.virial = at::zeros({3, 3}, cpu64);
    out.atomic_virials = at::zeros({n, 3, 3}, cpu64);
    if (committee_size_ > 0) {
      out.member_energies = at::zeros({members}, cpu64);
      out.member_forces = at::zeros({members, n, 3}, cpu64);
    }
    return out;
  }
  PlainExecution plain;  // the input is checked by the host (collectively) with check_edges
  at::AutoGradMode grad_mode(true);
  const auto pos = positions.to(device_, dtype);
  const auto spec = species.to(device_, at::kLong);
  const auto src = edge_src.to(device_, at::kLong), dst = edge_dst.to(device_, at::kLong);
  const auto vec = (pos.index_select(0, src) - pos.index_select(0, dst) + edge_shift.to(device_, dtype))
                       .detach()
                       .requires_grad_(true);
  auto edges_stage = module_.get_method("stage_edges"), embedding_stage = module_.get_method("stage_embedding");
  auto layer_stage = module_.get_method("stage_layer"), readout_stage = module_.get_method("stage_readout");
  auto forces_stage = module_.get_method("stage_forces");
  std::vector<at::Tensor> atomic(members), forces(members), virial(members), atomic_virials(members);
  std::vector<double> member_energies(members);
  for (int64_t m = 0; m < members; ++m) {
    const auto edge = edges_stage({m, vec}).toTuple();
    const auto sh = edge->elements()[0].toTensor(), radial = edge->elements()[1].toTensor();
    const auto sh_in = sh.detach().requires_grad_(true), radial_in = radial.detach().requires_grad_(true);
    auto x = embedding_stage({m, spec}).toTensor();
    std::vector<at::Tensor> inputs(layers), outputs(layers);
    for (int64_t k = 0; k < layers; ++k) {
      inputs[k] = x.detach().requires_grad_(k > 0);  // the embedding has no gradient to take
      outputs[k] = layer_stage({m, k, inputs[k], spec, sh_in, radial_in, src, dst, num_local}).toTensor();
      if (k + 1 < layers) {
        auto full = at::zeros({n, outputs[k].size(1)}, cpu64);
        full.slice(0, 0, num_local).copy_(outputs[k].detach());
        exchange.forward(full, m, k);
        x = full.to(device_, dtype);
      }
    }
    const auto last = outputs.back().detach().requires_grad_(true);
    const auto energies = readout_stage({m, last, spec}).toTensor();
    at::Tensor g;
    CoulombShare share;
    if (coulomb) {  // the whole structure's Coulomb term: dE/draw joins the readout's gradient
      const auto raw = module_.get_method("stage_charges")({m, last}).toTensor();
      share = coulomb_share(pos, raw, num_local);
      g = torch::autograd::grad({energies, raw}, {last}, {at::ones_like(energies), share.g_raw.to(raw.dtype())})[0];
    } else {
      g = torch::autograd::grad({energies.sum()}, {last})[0];
    }
    auto g_sh = at::zeros_like(sh), g_radial = at::zeros_like(radial);
    for (int64_t k = layers - 1; k >= 0; --k) {  // layer by layer, each layer's graph freed after its backward
      std::vector<at::Tensor> wrt{sh_in, radial_in};
      if (k > 0) wrt.push_back(inputs[k]);
      const auto grads = torch::autograd::grad({outputs[k]}, wrt, {g}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      if (grads[0].defined()) g_sh += grads[0];
      if (grads[1].defined()) g_radial += grads[1];
      if (k > 0) {
        auto full = grads[2].defined() ? grads[2].to(at::kCPU, at::kDouble).clone()
                                       : at::zeros({n, inputs[k].size(1)}, cpu64);
        exchange.reverse(full, m, k - 1);
        g = full.slice(0, 0, num_local).to(device_, dtype);
      }
      outputs[k] = at::Tensor();
      inputs[k] = at::Tensor();
    }
    auto g_vec = torch::autograd::grad({sh, radial}, {vec}, {g_sh, g_radial}, false, false, true)[0];
    if (!g_vec.defined()) g_vec = at::zeros_like(vec);
    const auto derived = forces_stage({vec.detach(), g_vec, src, dst, n}).toTuple();
    auto e64 = energies.detach().to(at::kCPU, at::kDouble);
    forces[m] = derived->elements()[0].toTensor();
    virial[m] = derived->elements()[1].toTensor();
    atomic_virials[m] = derived->elements()[2].toTensor();
    if (coulomb) {  // this process's atoms' shares; per atom the Coulomb virial spread over all atoms
      e64 = e64 + share.energies;
      forces[m] = forces[m] + share.forces.to(forces[m].dtype());
      virial[m] = virial[m] + share.virial.to(virial[m].dtype());
      atomic_virials[m] = atomic_virials[m].clone();
      atomic_virials[m].slice(0, 0, num_local).add_(share.atom_virial.to(atomic_virials[m].dtype()));
    }
    member_energies[m] = e64.sum().item<double>();
    atomic[m] = at::cat({e64, at::zeros({n - num_local}, cpu64)});
  }
  out.member_energies = at::tensor(member_energies, cpu64);
  out.energy = out.member_energies.mean().item<double>();
  out.atomic_energies = at::stack(atomic).mean(0);
  out.member_forces = at::stack(forces);
  out.forces = out.member_forces.mean(0);
  out.virial = at::stack(virial).mean(0);
  out.atomic_virials = at::stack(atomic_virials).mean(0);
  if (committee_size_ == 0) out.member_energies = out.member_forces = at::Tensor();
  return out;
}

Outputs Model::compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& cell,
                       const at::Tensor& pbc) {
  check_structure(positions, cell, pbc);
  if (!aoti_) {
    PlainExecution plain;
    return unpack(module_.get_method(committee_size_ > 0 ? "compute_committee" : "compute")(
        {positions.to(device_), species.to(device_), cell, pbc}));
  }
  static auto neighbor_list =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("equiforce::neighbor_list", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&, double, bool)>();
  const auto dtype = metadata_.dtype == "float32" ? at::kFloat : at::kDouble;
  const auto pos = positions.to(dtype).contiguous();
  const auto box = cell.to(dtype).contiguous();
  auto [i, j, shift] = neighbor_list.call(pos, box, pbc.to(at::kBool), metadata_.r_max, false);
  return run_aoti(pos, species, j, i, shift.to(dtype).matmul(box), pos.size(0));
}

Outputs Model::run_aoti(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                        const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local) {
  // The compiled graph takes at least kAotiMinSize atoms and edges: pad with a far ghost atom (not
  // local) and self-edges of atom 0 longer than the cutoff, which contribute exactly nothing.
  const auto dtype = metadata_.dtype == "float32" ? at::kFloat : at::kDouble;
  auto pos = positions.to(dtype);
  auto spec = species.to(at::kLong);
  auto src = edge_src.to(at::kLong), dst = edge_dst.to(at::kLong);
  auto shift = edge_shift.to(dtype);
  const int64_t n = pos.size(0);
  if (n < kAotiMinSize) {
    pos = at::cat({pos, at::full({kAotiMinSize - n, 3}, 1e6, pos.options())});
    spec = at::cat({spec, at::zeros({kAotiMinSize - n}, spec.options())});
  }
  if (src.size(0) < kAotiMinSize) {
    const int64_t missing = kAotiMinSize - src.size(0);
    auto far = at::zeros({missing, 3}, shift.options());
    far.select(1, 0).fill_(2.0 * metadata_.r_max + 1.0);
    src = at::cat({src, at::zeros({missing}, src.options())});
    dst = at::cat({dst, at::zeros({missing}, dst.options())});
    shift = at::cat({shift, far});
  }
  const auto result = aoti_->run({pos.contiguous(), spec.contiguous(), src.contiguous(), dst.contiguous(),
                                  shift.contiguous(), at::full({1}, num_local, at::kLong)});
  Outputs out;
  out.energy = result[0].item<double>();
  out.atomic_energies = result[1].slice(0, 0, n);
  out.forces = result[2].slice(0, 0, n);
  out.virial = result[3];
  if (result.size() > 4) out.atomic_virials = result[4].slice(0, 0, n);
  return out;
}

}  // namespace equiforce::runtime
