#include "model.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

extern "C" const char* equiforce_ops_library_version();

namespace equiforce::runtime {
namespace {

constexpr int64_t kFormatVersion = 1;

Outputs unpack(const c10::IValue& value) {
  const auto t = value.toTuple();
  Outputs out;
  out.energy = t->elements()[0].toTensor().item<double>();
  out.atomic_energies = t->elements()[1].toTensor();
  out.forces = t->elements()[2].toTensor();
  out.virial = t->elements()[3].toTensor();
  return out;
}

}  // namespace

Model::Model(const std::string& path, const std::string& device) : device_(device) {
  (void)equiforce_ops_library_version();  // the ops the model calls are registered by now
  if (!std::filesystem::exists(path))
    throw std::runtime_error("equiforce: model file '" + path + "' does not exist");
  torch::jit::ExtraFilesMap extra{{"equiforce_metadata.txt", ""}};
  try {
    module_ = torch::jit::load(path, device_, extra);
  } catch (const c10::Error& e) {
    throw std::runtime_error("equiforce: cannot load '" + path + "' as an exported model (" +
                             std::string(e.what_without_backtrace()) + "); export one with `equiforce deploy`");
  }
  std::istringstream lines(extra["equiforce_metadata.txt"]);
  for (std::string line; std::getline(lines, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) metadata_.all[line.substr(0, eq)] = line.substr(eq + 1);
  }
  auto& m = metadata_.all;
  if (m["format"] != "equiforce-deployed")
    throw std::runtime_error("equiforce: '" + path + "' is TorchScript but not an equiforce model");
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
  module_.eval();
}

int64_t Model::species_index(const std::string& element) const {
  for (size_t n = 0; n < metadata_.species.size(); ++n)
    if (metadata_.species[n] == element) return static_cast<int64_t>(n);
  return -1;
}

Outputs Model::compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& edge_src,
                       const at::Tensor& edge_dst, const at::Tensor& edge_shift, int64_t num_local) {
  return unpack(module_.forward({positions.to(device_), species.to(device_), edge_src.to(device_),
                                 edge_dst.to(device_), edge_shift.to(device_), num_local}));
}

Outputs Model::compute(const at::Tensor& positions, const at::Tensor& species, const at::Tensor& cell,
                       const at::Tensor& pbc) {
  return unpack(module_.get_method("compute")({positions.to(device_), species.to(device_), cell, pbc}));
}

}  // namespace equiforce::runtime
