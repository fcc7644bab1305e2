// The CUDA error checks every launcher ends with (declared in launchers.h, so torch-side code and the
// pybind11 module call them too). Torch-free: compiles with plain nvcc.
#include "common.cuh"

namespace equiforce::cuda {

void check_cuda(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("equiforce: CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

void synchronize(void* stream) {
  const cudaError_t err = cudaStreamSynchronize(as_stream(stream));
  if (err != cudaSuccess) throw std::runtime_error(std::string("equiforce: CUDA error: ") + cudaGetErrorString(err));
}

}  // namespace equiforce::cuda
