# The CUDA launchers (csrc/cuda/*.cu, torch-free) behind EQUIFORCE_CUDA, as one object library that
# the op library and the pybind11 module both link. Needs a CUDA build of torch (EQUIFORCE_TORCH_CUDA,
# from equiforce_find_torch) and nvcc. Sets EQUIFORCE_CUDA_ENABLED; equiforce_use_cuda(target) links
# the kernels and defines EQUIFORCE_WITH_CUDA for that target's sources.
# TORCH_CUDA_ARCH_LIST ("7.0;8.0 9.0+PTX", torch's spelling: "." optional, ";" or " " between entries)
# as CMake CUDA_ARCHITECTURES in ${out}: "X.Y" -> XY-real (SASS only), "X.Y+PTX" -> XY (SASS and PTX),
# as torch's own extensions build them. An entry that is no compute capability is an error.
function(equiforce_cuda_architectures list out)
  string(REPLACE " " ";" entries "${list}")
  set(archs "")
  foreach(entry IN LISTS entries)
    if(entry STREQUAL "")
      continue()
    endif()
    if(NOT entry MATCHES "^([0-9]+)\\.?([0-9a]*)(\\+PTX)?$")
      message(FATAL_ERROR "equiforce: TORCH_CUDA_ARCH_LIST entry '${entry}' is not a compute capability such as "
                          "8.0 or 9.0+PTX")
    endif()
    if(CMAKE_MATCH_3)
      list(APPEND archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
    else()
      list(APPEND archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}-real")
    endif()
  endforeach()
  if(NOT archs)
    message(FATAL_ERROR "equiforce: TORCH_CUDA_ARCH_LIST='${list}' names no architecture")
  endif()
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()

macro(equiforce_setup_cuda)
  set(EQUIFORCE_CUDA_ENABLED OFF)
  string(TOUPPER "${EQUIFORCE_CUDA}" equiforce_cuda_mode)
  if(NOT equiforce_cuda_mode STREQUAL "OFF")
    if(NOT EQUIFORCE_TORCH_CUDA OR NOT CMAKE_CUDA_COMPILER)
      if(equiforce_cuda_mode STREQUAL "ON")
        message(FATAL_ERROR "equiforce: EQUIFORCE_CUDA=ON needs a CUDA build of torch (this one: "
                            "'${EQUIFORCE_TORCH_CUDA}') and nvcc; install torch with CUDA and the CUDA toolkit, "
                            "or build with EQUIFORCE_CUDA=AUTO/OFF")
      endif()
      message(STATUS "equiforce: CUDA kernels off (torch CUDA '${EQUIFORCE_TORCH_CUDA}', nvcc '${CMAKE_CUDA_COMPILER}')")
    else()
      set(EQUIFORCE_CUDA_ENABLED ON)
    endif()
  endif()
  if(EQUIFORCE_CUDA_ENABLED)
    if(DEFINED ENV{TORCH_CUDA_ARCH_LIST})  # torch's spelling: "8.0 9.0+PTX" -> 80-real;90 (90: SASS and PTX)
      equiforce_cuda_architectures("$ENV{TORCH_CUDA_ARCH_LIST}" equiforce_archs)
    else()
      set(equiforce_archs 80-real 90)  # A100, H100/H200, and PTX for newer GPUs to compile on load
    endif()
    find_package(CUDAToolkit REQUIRED)
    add_library(equiforce_cuda_kernels OBJECT
      csrc/cuda/common.cu csrc/cuda/spherical_harmonics.cu csrc/cuda/tensor_product.cu csrc/cuda/conv.cu
      csrc/cuda/neighbor_list.cu)
    target_include_directories(equiforce_cuda_kernels PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
    set_target_properties(equiforce_cuda_kernels PROPERTIES CUDA_ARCHITECTURES "${equiforce_archs}"
                          CUDA_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
    target_compile_options(equiforce_cuda_kernels PRIVATE --expt-relaxed-constexpr --extended-lambda -O3)
    message(STATUS "equiforce: CUDA kernels on, architectures ${equiforce_archs}")
  endif()
endmacro()

function(equiforce_use_cuda target)
  if(EQUIFORCE_CUDA_ENABLED)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:equiforce_cuda_kernels>)
    target_compile_definitions(${target} PRIVATE EQUIFORCE_WITH_CUDA)
    target_link_libraries(${target} PRIVATE CUDA::cudart)
  endif()
endfunction()
