// EquiForce on OpenMM's Reference and CPU platforms (the CPU platform keeps its positions and forces
// in the Reference platform's data): the exported model through csrc/runtime.
#pragma once

#include "EquiForceKernels.h"

#include "openmm/KernelFactory.h"

#include <memory>
#include <vector>

namespace equiforce::runtime {
class Model;
struct Outputs;
}

namespace EquiForcePlugin {

class ReferenceCalcEquiForceKernel : public CalcEquiForceKernel {
 public:
  ReferenceCalcEquiForceKernel(const std::string& name, const OpenMM::Platform& platform);
  ~ReferenceCalcEquiForceKernel() override;
  void initialize(const OpenMM::System& system, const EquiForce& force) override;
  double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;
  void uncertainty(OpenMM::ContextImpl& context, double& energyStd, std::vector<double>& forceStd) override;

 private:
  equiforce::runtime::Outputs evaluate(OpenMM::ContextImpl& context);

  std::unique_ptr<equiforce::runtime::Model> model_;
  std::vector<int> particles_;
  std::vector<int64_t> species_;
  std::vector<double> positions_;
  bool periodic_ = false;
  std::string modelPath_;
};

class ReferenceEquiForceKernelFactory : public OpenMM::KernelFactory {
 public:
  OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                       OpenMM::ContextImpl& context) const override;
};

}  // namespace EquiForcePlugin
