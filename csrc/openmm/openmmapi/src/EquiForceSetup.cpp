#include "EquiForceSetup.h"

#include "model.h"

#include "openmm/OpenMMException.h"

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
