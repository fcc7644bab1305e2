// Shared by the platform kernels: units, and loading the model for an EquiForce (internal header).
#pragma once

#include "EquiForce.h"

#include "openmm/OpenMMException.h"
#include "openmm/System.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace equiforce::runtime {
class Model;
struct Outputs;
}

namespace EquiForcePlugin {

// The model is eV and Angstrom; OpenMM is kJ/mol and nm.
constexpr double kAngstromPerNm = 10.0;
constexpr double kKJPerMolPerEv = 96.48533212331002;

// Loads force's model on `device` and resolves its particles (System indices) and their species;
// throws OpenMM::OpenMMException that says what to do (missing or foreign file, no particles, a
// particle the System lacks or added twice, an element the model does not know).
std::unique_ptr<equiforce::runtime::Model> loadEquiForceModel(const OpenMM::System& system, const EquiForce& force,
                                                              const std::string& device, std::vector<int>& particles,
                                                              std::vector<int64_t>& species);

// The OpenMMException for a failed model evaluation: input no model can evaluate (overlapping or
// non-finite positions, a degenerate box; equiforce::runtime::InputError) in terms of the System's
// particle indices, anything else with the runtime's message.
OpenMM::OpenMMException modelError(const std::exception& e, const std::vector<int>& particles,
                                   const std::string& where);

// A committee's spread from one evaluation, in kJ/mol and kJ/mol/nm; throws OpenMM::OpenMMException
// for a single model (no member outputs).
void committeeSpread(const equiforce::runtime::Outputs& out, const std::string& modelPath, double& energyStd,
                     std::vector<double>& forceStd);

}  // namespace EquiForcePlugin
