// The CUDA side of the ops (built with EQUIFORCE_CUDA): streams and device guards. The launchers
// are in csrc/cuda/ (torch-free); the descriptor's device copy in descriptor_args.h.
#pragma once

#ifdef EQUIFORCE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../cuda/launchers.h"
#include "common.h"

namespace equiforce::ops {

inline void* cuda_stream(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

}  // namespace equiforce::ops
#endif
