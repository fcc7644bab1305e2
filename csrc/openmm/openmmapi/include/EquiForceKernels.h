// The kernel EquiForce's implementation asks the context's platform for (OpenMM's plugin layout).
#pragma once

#include "EquiForce.h"

#include "openmm/KernelImpl.h"
#include "openmm/Platform.h"
#include "openmm/System.h"

#include <string>
#include <vector>

namespace OpenMM {
class ContextImpl;
}

namespace EquiForcePlugin {

class CalcEquiForceKernel : public OpenMM::KernelImpl {
 public:
  static std::string Name() { return "CalcEquiForce"; }
  CalcEquiForceKernel(const std::string& name, const OpenMM::Platform& platform) : KernelImpl(name, platform) {}
  // Loads the model and maps the force's particles to the model's species; throws
  // OpenMM::OpenMMException with what to do on bad input.
  virtual void initialize(const OpenMM::System& system, const EquiForce& force) = 0;
  // Adds the model's forces to the context's and returns its energy (kJ/mol).
  virtual double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) = 0;
  // A committee's spread at the current positions (EquiForce::getUncertainty), in OpenMM's units.
  virtual void uncertainty(OpenMM::ContextImpl& context, double& energyStd, std::vector<double>& forceStd) = 0;
};

}  // namespace EquiForcePlugin
