// EquiForce: an exported equiforce model (TorchScript .pt or AOTInductor .pt2) as an OpenMM Force.
// The model covers the particles added with addParticle (all of them, or a subset for ML/MM), each
// with its element; with periodic boundary conditions the box comes from the context every step.
#pragma once

#include "openmm/Context.h"
#include "openmm/Force.h"

#include <string>
#include <vector>

namespace EquiForcePlugin {

class EquiForce : public OpenMM::Force {
 public:
  explicit EquiForce(const std::string& modelPath = "");

  const std::string& getModelPath() const { return modelPath_; }
  void setModelPath(const std::string& path) { modelPath_ = path; }

  // Adds a particle the model covers (its index in the System and its element symbol); returns
  // its position in this force's list.
  int addParticle(int particle, const std::string& element);
  int getNumParticles() const { return static_cast<int>(particles_.size()); }
  int getParticle(int index) const;
  std::string getParticleElement(int index) const;

  void setUsesPeriodicBoundaryConditions(bool periodic) { periodic_ = periodic; }
  bool usesPeriodicBoundaryConditions() const override { return periodic_; }

  // For a committee model (`equiforce deploy A B C -o committee.pt`): the members' spread at the
  // context's current positions (one evaluation): energyStd in kJ/mol, and forceStd in kJ/mol/nm, one
  // per covered particle in addParticle order (the norm of the per-component standard deviation).
  // Call it on the force object that was added to the context's System. Throws for a single model.
  void getUncertainty(OpenMM::Context& context, double& energyStd, std::vector<double>& forceStd);

 protected:
  OpenMM::ForceImpl* createImpl() const override;

 private:
  std::string modelPath_;
  std::vector<int> particles_;
  std::vector<std::string> elements_;
  bool periodic_ = false;
};

// Registers the Reference/CPU kernels and the XML serialization proxy (idempotent). The Python
// module calls it on import; OpenMM's plugin loader calls registerKernelFactories().
void registerEquiForcePlugin();

}  // namespace EquiForcePlugin
