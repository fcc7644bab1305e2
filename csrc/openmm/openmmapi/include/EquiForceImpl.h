#pragma once

#include "EquiForce.h"

#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"

#include <map>
#include <string>
#include <vector>

namespace EquiForcePlugin {

class EquiForceImpl : public OpenMM::ForceImpl {
 public:
  explicit EquiForceImpl(const EquiForce& owner) : owner_(owner) {}
  void initialize(OpenMM::ContextImpl& context) override;
  const EquiForce& getOwner() const override { return owner_; }
  void updateContextState(OpenMM::ContextImpl&, bool&) override {}
  double calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy,
                             int groups) override;
  std::map<std::string, double> getDefaultParameters() override { return {}; }
  std::vector<std::string> getKernelNames() override;
  void getUncertainty(OpenMM::ContextImpl& context, double& energyStd, std::vector<double>& forceStd);

 private:
  const EquiForce& owner_;
  OpenMM::Kernel kernel_;
};

}  // namespace EquiForcePlugin
