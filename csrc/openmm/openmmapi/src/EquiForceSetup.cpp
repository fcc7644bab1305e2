#include "EquiForceSetup.h"

#include "model.h"

#include "openmm/OpenMMException.h"

#include <cstdio>
#include <set>

using OpenMM::OpenMMException;

std::unique_ptr<equiforce::runtime::Model> EquiForcePlugin::loadEquiForceModel(
    const OpenMM::System& system, const EquiForce& force, const std::string& device, std::vector<int>& particles,
    std::vector<int64_t>& species) {
  std::unique_ptr<equiforce::runtime::Model> model;
  try {
    model = std::make_unique<equiforce::runtime::Model>(force.getModelPath(), device);
  } catch (const std::exception& e) {
    throw OpenMMException(std::string("EquiForce: ") + e.what());
  }
  const int n = force.getNumParticles();
  if (n == 0)
    throw OpenMMException("EquiForce: the force covers no particles; add them with addParticle(index, element), "
                          "or build it with equiforce.openmm.EquiForce(model, topology=...)");
  std::string known;
  for (const auto& s : model->metadata().species) known += " " + s;
  std::set<int> seen;
  particles.resize(n);
  species.resize(n);
  for (int k = 0; k < n; ++k) {
    const int p = force.getParticle(k);
    if (p >= system.getNumParticles())
      throw OpenMMException("EquiForce: particle " + std::to_string(p) + " does not exist: the System has " +
                            std::to_string(system.getNumParticles()) + " particles");
    if (!seen.insert(p).second) throw OpenMMException("EquiForce: particle " + std::to_string(p) + " was added twice");
    const std::string element = force.getParticleElement(k);
    species[k] = model->species_index(element);
    if (species[k] < 0)
      throw OpenMMException("EquiForce: particle " + std::to_string(p) + " is '" + element + "', which model '" +
                            force.getModelPath() + "' does not know (its species:" + known + ")");
    particles[k] = p;
  }
  return model;
}

void EquiForcePlugin::committeeSpread(const equiforce::runtime::Outputs& out, const std::string& modelPath,
                                      double& energyStd, std::vector<double>& forceStd) {
  if (!out.member_forces.defined())
    throw OpenMMException("EquiForce.getUncertainty: model '" + modelPath + "' is a single model; the uncertainty "
                          "is the spread of a committee: equiforce deploy CKPT1 CKPT2 CKPT3 -o committee.pt");
  energyStd = equiforce::runtime::energy_spread(out.member_energies) * kKJPerMolPerEv;
  const auto spread = (equiforce::runtime::force_spread(out.member_forces) * (kKJPerMolPerEv * kAngstromPerNm))
                          .to(torch::kCPU)
                          .contiguous();
  forceStd.assign(spread.data_ptr<double>(), spread.data_ptr<double>() + spread.numel());
}

OpenMM::OpenMMException EquiForcePlugin::modelError(const std::exception& e, const std::vector<int>& particles,
                                                    const std::string& where) {
  using equiforce::runtime::InputError;
  const auto* input = dynamic_cast<const InputError*>(&e);
  const auto particle = [&](int64_t k) {
    return std::to_string(k >= 0 && k < static_cast<int64_t>(particles.size()) ? particles[k] : k);
  };
  if (input && input->kind == InputError::Kind::CloseAtoms) {
    char distance[64];
    std::snprintf(distance, sizeof distance, "%.4g nm", input->distance / kAngstromPerNm);
    const std::string what = input->i == input->j
                                 ? "particle " + particle(input->i) + " is " + distance +
                                       " from its own periodic image (the box is far too small)"
                                 : "particles " + particle(input->i) + " and " + particle(input->j) + " are " +
                                       distance + " apart";
    char limit[32];
    std::snprintf(limit, sizeof limit, "%.4g nm", equiforce::runtime::kMinDistance / kAngstromPerNm);
    return OpenMMException("EquiForce: " + what + ", closer than " + limit +
                           ": overlapping particles; check the positions");
  }
  if (input && input->kind == InputError::Kind::NonFinite && input->i >= 0)
    return OpenMMException("EquiForce: the position of particle " + particle(input->i) +
                           " is not finite (NaN or inf): the simulation blew up earlier (try a smaller step or "
                           "minimise first) or the positions were never set");
  if (input) return OpenMMException("EquiForce: " + std::string(e.what()).substr(std::string("equiforce: ").size()));
  return OpenMMException("EquiForce: evaluating the model" + where + " failed: " + e.what());
}
