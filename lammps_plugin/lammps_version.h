// The LAMMPS the plugin was built against versus the one that loads it, with no LAMMPS headers (tested
// alone by tests/lammps/test_plugin_version.py). LAMMPS names a version by its release date: the
// numeric id 20250722 (LAMMPS::num_ver) and the string "22 Jul 2025" (LAMMPS::version).
#pragma once

#include <string>

namespace equiforce::lammps {

// "22 Jul 2025" for 20250722, as LAMMPS::version reads; "unknown" for ids that are no date.
inline std::string lammps_version_string(long num_ver) {
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const long year = num_ver / 10000, month = num_ver / 100 % 100, day = num_ver % 100;
  if (year < 1000 || month < 1 || month > 12 || day < 1 || day > 31) return "unknown";
  return std::to_string(day) + " " + months[month - 1] + " " + std::to_string(year);
}

// The log line for a plugin built against LAMMPS `built` and loaded into `running` (numeric ids), or
// "" when they are the same release. Classes the plugin derives from (Pair) may change between
// releases, so a difference is worth a line; it is not refused, as LAMMPS itself does not refuse it.
inline std::string version_mismatch_note(long built, long running) {
  if (built == running) return "";
  return "equiforce: pair_style equiforce was built against LAMMPS " + lammps_version_string(built) +
         " and is loaded into LAMMPS " + lammps_version_string(running) +
         ": if it misbehaves, rebuild equiforce against this LAMMPS's headers (-DLAMMPS_DIR=..., README \"LAMMPS\")\n";
}

// Why the plugin cannot run in this LAMMPS, or "": atom IDs, step numbers and image flags are read
// straight from LAMMPS's arrays, so their integer sizes (LAMMPS_SMALLBIG, BIGBIG, SMALLSMALL) must be
// those the plugin was compiled with. Sizes in bytes, as lammps_extract_setting reports them.
inline std::string integer_size_mismatch(int built_tagint, int built_bigint, int built_imageint, int tagint,
                                         int bigint, int imageint) {
  if (built_tagint == tagint && built_bigint == bigint && built_imageint == imageint) return "";
  auto sizes = [](int t, int b, int im) {
    return "tagint " + std::to_string(8 * t) + ", bigint " + std::to_string(8 * b) + ", imageint " +
           std::to_string(8 * im) + " bits";
  };
  return "pair_style equiforce was built for a LAMMPS with " + sizes(built_tagint, built_bigint, built_imageint) +
         ", but this LAMMPS has " + sizes(tagint, bigint, imageint) +
         " (another LAMMPS_SIZES setting): rebuild equiforce against this LAMMPS's headers (-DLAMMPS_DIR=..., "
         "README \"LAMMPS\")";
}

}  // namespace equiforce::lammps
