// XML serialization of EquiForce (XmlSerializer, copy.deepcopy of a System, openmm-ml), and the
// plugin's registration.
#include "EquiForce.h"
#include "EquiForceKernels.h"
#include "../platforms/reference/ReferenceEquiForceKernels.h"
#ifdef EQUIFORCE_OPENMM_CUDA
#include "../platforms/cuda/CudaEquiForceKernels.h"
#endif

#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/reference/ReferencePlatform.h"
#include "openmm/serialization/SerializationNode.h"
#include "openmm/serialization/SerializationProxy.h"

#include <mutex>
#include <typeinfo>

using namespace EquiForcePlugin;

namespace {

class EquiForceProxy : public OpenMM::SerializationProxy {
 public:
  EquiForceProxy() : SerializationProxy("EquiForce") {}

  void serialize(const void* object, OpenMM::SerializationNode& node) const override {
    const auto& force = *reinterpret_cast<const EquiForce*>(object);
    node.setIntProperty("version", 1);
    node.setStringProperty("file", force.getModelPath());
    node.setBoolProperty("periodic", force.usesPeriodicBoundaryConditions());
    node.setIntProperty("forceGroup", force.getForceGroup());
    node.setStringProperty("name", force.getName());
    auto& particles = node.createChildNode("Particles");
    for (int k = 0; k < force.getNumParticles(); ++k)
      particles.createChildNode("Particle")
          .setIntProperty("index", force.getParticle(k))
          .setStringProperty("element", force.getParticleElement(k));
  }

  void* deserialize(const OpenMM::SerializationNode& node) const override {
    if (node.getIntProperty("version") != 1)
      throw OpenMM::OpenMMException("EquiForce: unsupported serialization version; upgrade equiforce");
    auto* force = new EquiForce(node.getStringProperty("file"));
    try {
      force->setUsesPeriodicBoundaryConditions(node.getBoolProperty("periodic"));
      force->setForceGroup(node.getIntProperty("forceGroup", 0));
      force->setName(node.getStringProperty("name", "EquiForce"));
      for (const auto& p : node.getChildNode("Particles").getChildren())
        force->addParticle(p.getIntProperty("index"), p.getStringProperty("element"));
    } catch (...) {
      delete force;
      throw;
    }
    return force;
  }
};

}  // namespace

extern "C" OPENMM_EXPORT void registerPlatforms() {}

// The Reference kernel serves every platform built on the Reference platform's data (Reference, CPU);
// the CUDA kernel, when compiled in, the CUDA platform.
extern "C" OPENMM_EXPORT void registerKernelFactories() {
  for (int i = 0; i < OpenMM::Platform::getNumPlatforms(); ++i) {
    OpenMM::Platform& platform = OpenMM::Platform::getPlatform(i);
    if (dynamic_cast<OpenMM::ReferencePlatform*>(&platform) != nullptr)
      platform.registerKernelFactory(CalcEquiForceKernel::Name(), new ReferenceEquiForceKernelFactory());
#ifdef EQUIFORCE_OPENMM_CUDA
    if (platform.getName() == "CUDA")
      platform.registerKernelFactory(CalcEquiForceKernel::Name(), new CudaEquiForceKernelFactory());
#endif
  }
}

void EquiForcePlugin::registerEquiForcePlugin() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerKernelFactories();
    OpenMM::SerializationProxy::registerProxy(typeid(EquiForce), new EquiForceProxy());
  });
}
