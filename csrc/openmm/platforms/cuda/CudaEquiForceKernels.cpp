#include "CudaEquiForceKernels.h"

#include "EquiForceSetup.h"
#include "model.h"

#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/cuda/CudaContext.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/ContextImpl.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

using namespace EquiForcePlugin;
using OpenMM::OpenMMException;

CudaCalcEquiForceKernel::CudaCalcEquiForceKernel(const std::string& name, const OpenMM::Platform& platform,
                                                 OpenMM::CudaContext& cu)
    : CalcEquiForceKernel(name, platform), cu_(cu) {}

CudaCalcEquiForceKernel::~CudaCalcEquiForceKernel() = default;

void CudaCalcEquiForceKernel::initialize(const OpenMM::System& system, const EquiForce& force) {
  OpenMM::ContextSelector selector(cu_);
  const torch::Device device(torch::kCUDA, cu_.getDeviceIndex());
  std::vector<int> particles;
  std::vector<int64_t> species;
  model_ = loadEquiForceModel(system, force, device.str(), particles, species);
  particles_ = torch::tensor(std::vector<int64_t>(particles.begin(), particles.end())).to(device);
  particleList_ = particles;
  species_ = torch::tensor(species).to(device);
  periodic_ = force.usesPeriodicBoundaryConditions();
  modelPath_ = force.getModelPath();
}

equiforce::runtime::Outputs CudaCalcEquiForceKernel::evaluate(OpenMM::ContextImpl& context, torch::Tensor& slot) {
  const int index = cu_.getDeviceIndex();
  const torch::Device device(torch::kCUDA, index);
  const int64_t natoms = cu_.getNumAtoms(), padded = cu_.getPaddedNumAtoms();
  const auto real = torch::TensorOptions().device(device).dtype(cu_.getUseDoublePrecision() ? torch::kFloat64
                                                                                              : torch::kFloat32);
  // posq holds x, y, z, q per atom in the context's (sorted) order; atomIndex maps it to the System's
  auto posq = torch::from_blob(reinterpret_cast<void*>(cu_.getPosq().getDevicePointer()), {padded, 4}, real);
  auto xyz = posq.slice(0, 0, natoms).slice(1, 0, 3).to(torch::kFloat64);
  if (cu_.getUseMixedPrecision()) {
    auto correction = torch::from_blob(reinterpret_cast<void*>(cu_.getPosqCorrection().getDevicePointer()),
                                       {padded, 4}, real.dtype(torch::kFloat32));
    xyz = xyz + correction.slice(0, 0, natoms).slice(1, 0, 3).to(torch::kFloat64);
  }
  auto order = torch::from_blob(reinterpret_cast<void*>(cu_.getAtomIndexArray().getDevicePointer()), {padded},
                                torch::TensorOptions().device(device).dtype(torch::kInt32))
                   .slice(0, 0, natoms)
                   .to(torch::kInt64);
  slot = torch::empty({natoms}, order.options()).index_copy_(0, order, torch::arange(natoms, order.options()));
  auto pos = xyz.index_select(0, slot.index_select(0, particles_)) * kAngstromPerNm;

  auto box = torch::zeros({3, 3}, torch::kFloat64);
  if (periodic_) {
    OpenMM::Vec3 a, b, c;
    context.getPeriodicBoxVectors(a, b, c);
    const OpenMM::Vec3* rows[3] = {&a, &b, &c};
    for (int r = 0; r < 3; ++r)
      for (int d = 0; d < 3; ++d) box[r][d] = (*rows[r])[d] * kAngstromPerNm;
    box = box.to(device);
    for (int r = 2; r >= 0; --r)  // wrap into the reduced box, as the Reference kernel does
      pos = pos - torch::floor(pos.select(1, r) / box[r][r]).unsqueeze(1) * box[r].unsqueeze(0);
  } else {
    box = box.to(device);
  }
  equiforce::runtime::Outputs out;
  try {
    const auto pbc = torch::full({3}, periodic_, torch::TensorOptions().device(device).dtype(torch::kBool));
    out = model_->compute(pos, species_, box, pbc);
  } catch (const std::exception& e) {
    throw modelError(e, particleList_, " on CUDA");
  }
  return out;
}

void CudaCalcEquiForceKernel::uncertainty(OpenMM::ContextImpl& context, double& energyStd,
                                          std::vector<double>& forceStd) {
  OpenMM::ContextSelector selector(cu_);
  const int index = cu_.getDeviceIndex();
  c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromExternal(cu_.getCurrentStream(), index));
  torch::Tensor slot;
  committeeSpread(evaluate(context, slot), modelPath_, energyStd, forceStd);
}

double CudaCalcEquiForceKernel::execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) {
  OpenMM::ContextSelector selector(cu_);
  const int index = cu_.getDeviceIndex();
  const torch::Device device(torch::kCUDA, index);
  c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromExternal(cu_.getCurrentStream(), index));
  const int64_t padded = cu_.getPaddedNumAtoms();
  torch::Tensor slot;
  const auto out = evaluate(context, slot);
  if (includeForces) {
    // OpenMM's force buffer: 64-bit fixed point (2^32 per kJ/mol/nm), x, y, z blocks of paddedNumAtoms
    auto buffer = torch::from_blob(reinterpret_cast<void*>(cu_.getLongForceBuffer().getDevicePointer()), {3, padded},
                                   torch::TensorOptions().device(device).dtype(torch::kInt64));
    auto fixed = (out.forces.to(torch::kFloat64) * (kKJPerMolPerEv * kAngstromPerNm * 4294967296.0)).round();
    buffer.index_add_(1, slot.index_select(0, particles_), fixed.to(torch::kInt64).t());
  }
  return includeEnergy ? out.energy * kKJPerMolPerEv : 0.0;
}

OpenMM::KernelImpl* CudaEquiForceKernelFactory::createKernelImpl(std::string name, const OpenMM::Platform& platform,
                                                                 OpenMM::ContextImpl& context) const {
  auto& data = *static_cast<OpenMM::CudaPlatform::PlatformData*>(context.getPlatformData());
  if (name == CalcEquiForceKernel::Name()) return new CudaCalcEquiForceKernel(name, platform, *data.contexts[0]);
  throw OpenMMException("EquiForce: unknown kernel '" + name + "'");
}
