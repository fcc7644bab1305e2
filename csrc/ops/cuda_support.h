// The CUDA side of the ops (built with EQUIFORCE_CUDA): streams, device guards and the
// tensor-product descriptor on the device. The launchers are in csrc/cuda/ (torch-free).
#pragma once

#ifdef EQUIFORCE_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "../cpu/descriptor.h"
#include "../cuda/launchers.h"
#include "common.h"

namespace equiforce::ops {

inline void* cuda_stream(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

// The descriptor's tables on `device`, uploaded once per (contents, dtype, device) and kept: later
// calls (a captured CUDA graph included) copy nothing.
template <typename T>
kernels::TpDescriptor<T> device_descriptor(const cpu::HostDescriptor<T>& hd, const at::Device& device) {
  static std::mutex mutex;
  static std::unordered_map<std::string, at::Tensor> cache;
  const cuda::DeviceDescriptorLayout<T> layout(hd.view);
  const auto bytes = layout.pack();
  std::string key(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  key += "|" + std::to_string(sizeof(T)) + "|" + std::to_string(device.index());
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto host = at::empty({static_cast<int64_t>(bytes.size())}, at::TensorOptions().dtype(at::kByte));
    std::memcpy(host.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    it = cache.emplace(key, host.to(device)).first;
  }
  return layout.view(it->second.data_ptr<uint8_t>());
}

}  // namespace equiforce::ops
#endif
