// EquiForce on OpenMM's CUDA platform: positions are read from the context's device arrays (in its
// atom order), the model runs on the context's device and stream, and forces are added to the
// context's 64-bit fixed-point force buffer — no host round trip. Compiled when OpenMM's CUDA
// headers (openmm-cuda-13) and the CUDA toolkit are found (EQUIFORCE_OPENMM_CUDA).
#pragma once

#include "EquiForceKernels.h"

#include "openmm/KernelFactory.h"

#include <torch/torch.h>

#include <memory>

namespace OpenMM {
class CudaContext;
}
namespace equiforce::runtime {
class Model;
struct Outputs;
}

namespace EquiForcePlugin {

class CudaCalcEquiForceKernel : public CalcEquiForceKernel {
 public:
  CudaCalcEquiForceKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::CudaContext& cu);
  ~CudaCalcEquiForceKernel() override;
  void initialize(const OpenMM::System& system, const EquiForce& force) override;
  double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) override;
  void uncertainty(OpenMM::ContextImpl& context, double& energyStd, std::vector<double>& forceStd) override;

 private:
  // The model at the context's positions; `slot` receives each System atom's row in the context's
  // (sorted) arrays. Runs on the context's stream (the caller holds the context selector).
  equiforce::runtime::Outputs evaluate(OpenMM::ContextImpl& context, torch::Tensor& slot);

  OpenMM::CudaContext& cu_;
  std::unique_ptr<equiforce::runtime::Model> model_;
  torch::Tensor particles_, species_;  // on the context's device
  std::vector<int> particleList_;      // particles_ on the host, for error messages
  bool periodic_ = false;
  std::string modelPath_;
};

class CudaEquiForceKernelFactory : public OpenMM::KernelFactory {
 public:
  OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                       OpenMM::ContextImpl& context) const override;
};

}  // namespace EquiForcePlugin
