#include "EquiForce.h"

#include "EquiForceImpl.h"
#include "EquiForceKernels.h"

#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"

using namespace EquiForcePlugin;

EquiForce::EquiForce(const std::string& modelPath) : modelPath_(modelPath) {}

int EquiForce::addParticle(int particle, const std::string& element) {
  if (particle < 0) throw OpenMM::OpenMMException("EquiForce.addParticle: particle index must be >= 0");
  particles_.push_back(particle);
  elements_.push_back(element);
  return static_cast<int>(particles_.size()) - 1;
}

int EquiForce::getParticle(int index) const {
  if (index < 0 || index >= getNumParticles())
    throw OpenMM::OpenMMException("EquiForce.getParticle: index out of range");
  return particles_[index];
}

std::string EquiForce::getParticleElement(int index) const {
  if (index < 0 || index >= getNumParticles())
    throw OpenMM::OpenMMException("EquiForce.getParticleElement: index out of range");
  return elements_[index];
}

OpenMM::ForceImpl* EquiForce::createImpl() const { return new EquiForceImpl(*this); }

void EquiForce::getUncertainty(OpenMM::Context& context, double& energyStd, std::vector<double>& forceStd) {
  dynamic_cast<EquiForceImpl&>(getImplInContext(context)).getUncertainty(getContextImpl(context), energyStd, forceStd);
}

void EquiForceImpl::getUncertainty(OpenMM::ContextImpl& context, double& energyStd, std::vector<double>& forceStd) {
  kernel_.getAs<CalcEquiForceKernel>().uncertainty(context, energyStd, forceStd);
}

void EquiForceImpl::initialize(OpenMM::ContextImpl& context) {
  kernel_ = context.getPlatform().createKernel(CalcEquiForceKernel::Name(), context);
  kernel_.getAs<CalcEquiForceKernel>().initialize(context.getSystem(), owner_);
}

double EquiForceImpl::calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy,
                                          int groups) {
  if ((groups & (1 << owner_.getForceGroup())) == 0) return 0.0;
  return kernel_.getAs<CalcEquiForceKernel>().execute(context, includeForces, includeEnergy);
}

std::vector<std::string> EquiForceImpl::getKernelNames() { return {CalcEquiForceKernel::Name()}; }
