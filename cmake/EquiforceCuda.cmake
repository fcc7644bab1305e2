# The CUDA launchers (csrc/cuda/*.cu, torch-free) behind EQUIFORCE_CUDA, as one object library that
# the op library and the pybind11 module both link. Needs a CUDA build of torch (EQUIFORCE_TORCH_CUDA,
# from equiforce_find_torch) and nvcc. Sets EQUIFORCE_CUDA_ENABLED; equiforce_use_cuda(target) links
# the kernels and defines EQUIFORCE_WITH_CUDA for that target's sources.
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
    if(DEFINED ENV{TORCH_CUDA_ARCH_LIST})  # "8.0 9.0+PTX" -> 80;90
      string(REPLACE "." "" equiforce_archs "$ENV{TORCH_CUDA_ARCH_LIST}")
      string(REPLACE "+PTX" "" equiforce_archs "${equiforce_archs}")
      string(REPLACE " " ";" equiforce_archs "${equiforce_archs}")
    else()
      set(equiforce_archs 80 90)
    endif()
    find_package(CUDAToolkit REQUIRED)
    add_library(equiforce_cuda_kernels OBJECT
      csrc/cuda/spherical_harmonics.cu csrc/cuda/tensor_product.cu csrc/cuda/neighbor_list.cu)
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
