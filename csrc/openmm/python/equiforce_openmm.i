// SWIG interface of EquiForce (Python: equiforce.openmm). Built with SWIG from PyPI (>= 4.4): the
// proxies Debian's SWIG 4.1 makes are rejected by OpenMM 8.6's Python layer.
%module(package="equiforce.openmm") _swig

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include "swig/typemaps.i"
%include <std_string.i>

%{
#include "EquiForce.h"
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
%}

%init %{
  EquiForcePlugin::registerEquiForcePlugin();
%}

// C++ exceptions become openmm.OpenMMException, as for OpenMM's own classes.
%exception {
  try {
    $action
  } catch (std::exception& e) {
    PyObject* module = PyImport_ImportModule("openmm");
    PyObject* type = module ? PyObject_GetAttrString(module, "OpenMMException") : NULL;
    PyErr_SetString(type ? type : PyExc_RuntimeError, e.what());
    Py_XDECREF(type);
    Py_XDECREF(module);
    SWIG_fail;
  }
}

namespace EquiForcePlugin {

class EquiForce : public OpenMM::Force {
 public:
  EquiForce(const std::string& modelPath);
  const std::string& getModelPath() const;
  void setModelPath(const std::string& path);
  int addParticle(int particle, const std::string& element);
  int getNumParticles() const;
  int getParticle(int index) const;
  std::string getParticleElement(int index) const;
  void setUsesPeriodicBoundaryConditions(bool periodic);
  bool usesPeriodicBoundaryConditions() const;

  %extend {
    static EquiForcePlugin::EquiForce& cast(OpenMM::Force& force) {
      return dynamic_cast<EquiForcePlugin::EquiForce&>(force);
    }
    static bool isinstance(OpenMM::Force& force) {
      return dynamic_cast<EquiForcePlugin::EquiForce*>(&force) != nullptr;
    }
  }
};

}  // namespace EquiForcePlugin
