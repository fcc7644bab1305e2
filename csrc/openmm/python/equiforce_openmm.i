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
    // (energy_std in kJ/mol, [force_std per covered particle in kJ/mol/nm]) of a committee model at
    // the context's current positions; call it on the force that was added to the context's System.
    PyObject* getUncertainty(OpenMM::Context& context) {
      double energyStd = 0;
      std::vector<double> forceStd;
      PyThreadState* python = PyEval_SaveThread();  // torch's autograd engine must run without the GIL
      try {
        self->getUncertainty(context, energyStd, forceStd);
      } catch (...) {
        PyEval_RestoreThread(python);
        throw;
      }
      PyEval_RestoreThread(python);
      PyObject* perParticle = PyList_New(static_cast<Py_ssize_t>(forceStd.size()));
      for (size_t i = 0; i < forceStd.size(); ++i)
        PyList_SET_ITEM(perParticle, static_cast<Py_ssize_t>(i), PyFloat_FromDouble(forceStd[i]));
      return Py_BuildValue("(dN)", energyStd, perParticle);
    }
    static EquiForcePlugin::EquiForce& cast(OpenMM::Force& force) {
      return dynamic_cast<EquiForcePlugin::EquiForce&>(force);
    }
    static bool isinstance(OpenMM::Force& force) {
      return dynamic_cast<EquiForcePlugin::EquiForce*>(&force) != nullptr;
    }
  }
};

}  // namespace EquiForcePlugin
