#include "ReferenceEquiForceKernels.h"

#include "EquiForceSetup.h"
#include "model.h"

#include "openmm/OpenMMException.h"
#include "openmm/Vec3.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferencePlatform.h"

#include <cmath>

using namespace EquiForcePlugin;
using OpenMM::OpenMMException;
using OpenMM::Vec3;

namespace {

std::vector<Vec3>& extractPositions(OpenMM::ContextImpl& context) {
  auto* data = reinterpret_cast<OpenMM::ReferencePlatform::PlatformData*>(context.getPlatformData());
  return *data->positions;
}

std::vector<Vec3>& extractForces(OpenMM::ContextImpl& context) {
  auto* data = reinterpret_cast<OpenMM::ReferencePlatform::PlatformData*>(context.getPlatformData());
  return *data->forces;
}

}  // namespace

ReferenceCalcEquiForceKernel::ReferenceCalcEquiForceKernel(const std::string& name, const OpenMM::Platform& platform)
    : CalcEquiForceKernel(name, platform) {}

ReferenceCalcEquiForceKernel::~ReferenceCalcEquiForceKernel() = default;

void ReferenceCalcEquiForceKernel::initialize(const OpenMM::System& system, const EquiForce& force) {
  model_ = loadEquiForceModel(system, force, "cpu", particles_, species_);
  modelPath_ = force.getModelPath();
  periodic_ = force.usesPeriodicBoundaryConditions();
}

equiforce::runtime::Outputs ReferenceCalcEquiForceKernel::evaluate(OpenMM::ContextImpl& context) {
  const std::vector<Vec3>& pos = extractPositions(context);
  const int64_t n = static_cast<int64_t>(particles_.size());
  positions_.resize(3 * n);
  for (int64_t k = 0; k < n; ++k)
    for (int d = 0; d < 3; ++d) positions_[3 * k + d] = pos[particles_[k]][d] * kAngstromPerNm;
  double box[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  if (periodic_) {
    Vec3 a, b, c;
    context.getPeriodicBoxVectors(a, b, c);
    const Vec3* rows[3] = {&a, &b, &c};
    for (int r = 0; r < 3; ++r)
      for (int d = 0; d < 3; ++d) box[3 * r + d] = (*rows[r])[d] * kAngstromPerNm;
    // Wrap into the box (OpenMM's reduced form: a along x, b in the xy plane), as OpenMM does for its
    // own forces: same energies and forces, and coordinates stay small for a float32 model.
    for (int64_t k = 0; k < n; ++k) {
      double* p = &positions_[3 * k];
      for (int r = 2; r >= 0; --r) {
        const double shift = std::floor(p[r] / box[4 * r]);
        for (int d = 0; d < 3; ++d) p[d] -= shift * box[3 * r + d];
      }
    }
  }
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  equiforce::runtime::Outputs out;
  try {
    out = model_->compute(torch::from_blob(positions_.data(), {n, 3}, f64),
                          torch::from_blob(species_.data(), {n}, torch::TensorOptions().dtype(torch::kInt64)),
                          torch::from_blob(box, {3, 3}, f64), torch::full({3}, periodic_, torch::kBool));
  } catch (const std::exception& e) {
    throw modelError(e, particles_, "");
  }
  return out;
}

void ReferenceCalcEquiForceKernel::uncertainty(OpenMM::ContextImpl& context, double& energyStd,
                                               std::vector<double>& forceStd) {
  committeeSpread(evaluate(context), modelPath_, energyStd, forceStd);
}

double ReferenceCalcEquiForceKernel::execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) {
  const auto out = evaluate(context);
  const int64_t n = static_cast<int64_t>(particles_.size());
  if (includeForces) {
    const auto forces = out.forces.to(torch::kCPU, torch::kFloat64).contiguous();
    const double* fk = forces.data_ptr<double>();
    std::vector<Vec3>& f = extractForces(context);
    const double scale = kKJPerMolPerEv * kAngstromPerNm;  // eV/A -> kJ/mol/nm
    for (int64_t k = 0; k < n; ++k) f[particles_[k]] += Vec3(fk[3 * k], fk[3 * k + 1], fk[3 * k + 2]) * scale;
  }
  return includeEnergy ? out.energy * kKJPerMolPerEv : 0.0;
}

OpenMM::KernelImpl* ReferenceEquiForceKernelFactory::createKernelImpl(std::string name,
                                                                      const OpenMM::Platform& platform,
                                                                      OpenMM::ContextImpl& context) const {
  if (name == CalcEquiForceKernel::Name()) return new ReferenceCalcEquiForceKernel(name, platform);
  throw OpenMMException("EquiForce: unknown kernel '" + name + "'");
}
