# Finds the torch of ${Python_EXECUTABLE} for C++ (shared by the package and tests/cpp).
# Sets EQUIFORCE_TORCH_PREFIX and, via find_package(Torch), the `torch` target; switches to C++20
# for torch >= 2.14, whose headers need it.
macro(equiforce_find_torch)
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import torch; print(torch.utils.cmake_prefix_path); print(torch.version.cuda or '')"
    OUTPUT_VARIABLE torch_query OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE torch_found)
  if(NOT torch_found EQUAL 0)
    message(FATAL_ERROR "equiforce: cannot import torch with ${Python_EXECUTABLE}; install torch first "
                        "(pip install torch==2.13.0) and build with --no-build-isolation")
  endif()
  string(REPLACE "\n" ";" torch_query "${torch_query}")
  list(GET torch_query 0 EQUIFORCE_TORCH_PREFIX)
  list(LENGTH torch_query torch_query_length)
  if(torch_query_length GREATER 1)
    list(GET torch_query 1 EQUIFORCE_TORCH_CUDA)
  endif()
  if(EQUIFORCE_TORCH_CUDA)
    # A CUDA build of torch needs the CUDA toolkit to be found, even for CPU-only code. The nvcc on
    # PATH may be a wrapper script, so take the toolkit root from the compiler CMake finds.
    if(CMAKE_VERSION VERSION_LESS 3.30)  # the first CMake that knows CUDA 13's toolkit layout
      message(FATAL_ERROR "equiforce: torch ${EQUIFORCE_TORCH_CUDA} is a CUDA build, which needs CMake >= 3.30 "
                          "(this is ${CMAKE_VERSION}); pip install 'cmake>=3.30'")
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(NOT CMAKE_CUDA_COMPILER)
      message(FATAL_ERROR "equiforce: torch ${EQUIFORCE_TORCH_CUDA} is a CUDA build but no CUDA compiler was found; "
                          "install the CUDA toolkit (nvcc) or use the CPU build of torch (pip install torch==2.13.0)")
    endif()
    enable_language(CUDA)
    set(CUDA_TOOLKIT_ROOT_DIR "${CMAKE_CUDA_COMPILER_TOOLKIT_ROOT}")
  endif()
  set(Torch_DIR "${EQUIFORCE_TORCH_PREFIX}/Torch")
  set(Caffe2_DIR "${EQUIFORCE_TORCH_PREFIX}/Caffe2")
  find_package(Torch REQUIRED)
  if(Torch_VERSION VERSION_GREATER_EQUAL 2.14)
    set(CMAKE_CXX_STANDARD 20)
  endif()
endmacro()
