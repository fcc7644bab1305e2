# The OpenMM plugin (csrc/openmm): found against the PyPI `openmm` wheel of ${Python_EXECUTABLE}
# (headers and libOpenMM.so under site-packages/OpenMM.libs) or OPENMM_DIR (an OpenMM install with
# include/ and lib/). Its Python wrapper needs SWIG >= 4.4 (`pip install swig`; Debian's 4.1 makes
# proxies OpenMM 8.6 rejects). Sets EQUIFORCE_OPENMM_FOUND.
#
# EQUIFORCE_OPENMM: AUTO builds the plugin when both are found; ON insists (an error says what is
# missing); OFF never (CMakeLists.txt does not call this then).
macro(equiforce_build_openmm)
  string(TOUPPER "${EQUIFORCE_OPENMM}" equiforce_openmm_mode)
  if(equiforce_openmm_mode MATCHES "^(ON|TRUE|YES|Y|1)$")
    set(equiforce_openmm_mode ON)
  elseif(NOT equiforce_openmm_mode STREQUAL "AUTO")
    message(FATAL_ERROR "equiforce: EQUIFORCE_OPENMM is '${EQUIFORCE_OPENMM}'; use AUTO, ON or OFF")
  endif()
  set(EQUIFORCE_OPENMM_FOUND OFF)
  if(NOT OPENMM_DIR)
    execute_process(
      COMMAND ${Python_EXECUTABLE} -c "import importlib.util, os; s = importlib.util.find_spec('openmm'); print(os.path.join(os.path.dirname(os.path.dirname(s.origin)), 'OpenMM.libs') if s else '')"
      OUTPUT_VARIABLE OPENMM_DIR OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
  get_filename_component(python_bin "${Python_EXECUTABLE}" DIRECTORY)
  find_program(EQUIFORCE_SWIG swig HINTS "${python_bin}" NO_DEFAULT_PATH)
  if(NOT EQUIFORCE_SWIG)
    find_program(EQUIFORCE_SWIG swig)
  endif()
  set(swig_ok OFF)
  if(EQUIFORCE_SWIG)
    execute_process(COMMAND ${EQUIFORCE_SWIG} -version OUTPUT_VARIABLE swig_version_text)
    string(REGEX MATCH "SWIG Version ([0-9]+\\.[0-9]+)" _ "${swig_version_text}")
    if(CMAKE_MATCH_1 VERSION_GREATER_EQUAL 4.4)
      set(swig_ok ON)
    endif()
  endif()
  if(OPENMM_DIR AND EXISTS "${OPENMM_DIR}/include/openmm/Force.h" AND EXISTS "${OPENMM_DIR}/lib/libOpenMM.so" AND swig_ok)
    set(EQUIFORCE_OPENMM_FOUND ON)
    message(STATUS "equiforce: OpenMM plugin against ${OPENMM_DIR}, SWIG ${EQUIFORCE_SWIG}")
    set(om ${CMAKE_CURRENT_SOURCE_DIR}/csrc/openmm)
    add_library(equiforce_openmm SHARED
      ${om}/openmmapi/src/EquiForce.cpp
      ${om}/openmmapi/src/EquiForceSetup.cpp
      ${om}/platforms/reference/ReferenceEquiForceKernels.cpp
      ${om}/serialization/EquiForceProxy.cpp)
    target_include_directories(equiforce_openmm PUBLIC ${om}/openmmapi/include "${OPENMM_DIR}/include")
    target_link_libraries(equiforce_openmm PUBLIC "${OPENMM_DIR}/lib/libOpenMM.so" PRIVATE equiforce_runtime)
    target_compile_options(equiforce_openmm PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-unused-function)
    # The CUDA-platform kernel: with OpenMM's CUDA headers (pip install openmm-cuda-13), the CUDA
    # toolkit, and a CUDA build of torch (the model runs on the context's device and stream).
    if(EQUIFORCE_TORCH_CUDA AND EXISTS "${OPENMM_DIR}/include/openmm/cuda/CudaContext.h")
      find_package(CUDAToolkit REQUIRED)
      target_sources(equiforce_openmm PRIVATE ${om}/platforms/cuda/CudaEquiForceKernels.cpp)
      target_compile_definitions(equiforce_openmm PRIVATE EQUIFORCE_OPENMM_CUDA)
      target_link_libraries(equiforce_openmm PRIVATE CUDA::cuda_driver "${OPENMM_DIR}/lib/plugins/libOpenMMCUDA.so")
      message(STATUS "equiforce: OpenMM CUDA-platform kernel enabled")
    endif()
    set_target_properties(equiforce_openmm PROPERTIES
      INSTALL_RPATH "$ORIGIN/..;$ORIGIN/../../../OpenMM.libs/lib;$ORIGIN/../../../torch/lib;${OPENMM_DIR}/lib;${EQUIFORCE_TORCH_PREFIX}/../../lib")
    install(TARGETS equiforce_openmm LIBRARY DESTINATION ${EQUIFORCE_INSTALL_DIR}/lib/openmm)

    set(swig_out ${CMAKE_CURRENT_BINARY_DIR}/openmm_swig)
    add_custom_command(
      OUTPUT ${swig_out}/openmm_swig_wrap.cxx ${swig_out}/openmm_swig.py
      COMMAND ${CMAKE_COMMAND} -E make_directory ${swig_out}
      COMMAND ${EQUIFORCE_SWIG} -python -c++ -module openmm_swig -outdir ${swig_out}
              -o ${swig_out}/openmm_swig_wrap.cxx -I${OPENMM_DIR}/include -I${om}/openmmapi/include
              ${om}/python/equiforce_openmm.i
      DEPENDS ${om}/python/equiforce_openmm.i ${om}/openmmapi/include/EquiForce.h
      COMMENT "SWIG: equiforce.openmm")
    Python_add_library(_openmm_swig MODULE WITH_SOABI ${swig_out}/openmm_swig_wrap.cxx)
    target_link_libraries(_openmm_swig PRIVATE equiforce_openmm)
    target_compile_options(_openmm_swig PRIVATE -Wno-unused-parameter -Wno-missing-field-initializers)
    set_target_properties(_openmm_swig PROPERTIES
      INSTALL_RPATH "$ORIGIN/../lib/openmm;$ORIGIN/../lib;$ORIGIN/../../OpenMM.libs/lib;$ORIGIN/../../torch/lib;${OPENMM_DIR}/lib;${EQUIFORCE_TORCH_PREFIX}/../../lib")
    install(TARGETS _openmm_swig LIBRARY DESTINATION ${EQUIFORCE_INSTALL_DIR}/openmm)
    install(FILES ${swig_out}/openmm_swig.py DESTINATION ${EQUIFORCE_INSTALL_DIR}/openmm)
  else()
    set(equiforce_openmm_missing "needs `pip install openmm==8.6.1 swig` first, or OPENMM_DIR; found OpenMM "
                                 "'${OPENMM_DIR}', SWIG '${EQUIFORCE_SWIG}' ${CMAKE_MATCH_1}")
    if(equiforce_openmm_mode STREQUAL "ON")
      message(FATAL_ERROR "equiforce: EQUIFORCE_OPENMM=ON, but the OpenMM plugin cannot be built: "
                          "${equiforce_openmm_missing} (or build with EQUIFORCE_OPENMM=AUTO/OFF)")
    endif()
    message(STATUS "equiforce: OpenMM plugin not built (${equiforce_openmm_missing}; EQUIFORCE_OPENMM=AUTO)")
  endif()
endmacro()
