// The tensor-product descriptor, decoded and validated once per (descriptor, coefficients) pair of
// tensors and kept in a bounded process-wide cache, with its copy on each device it has run on.
//
// Why a cache and not a TorchBind object: the op schemas stay `Tensor descriptor, Tensor
// coefficients`, so every model already exported (TorchScript .pt, AOTInductor .pt2) keeps loading,
// and torch.export sees plain tensors. A call finds its entry in O(1) from the two tensors'
// identities, never from their contents:
//   storage, data pointer, numel, stride and version counter of each tensor.
// An entry holds strong references to both tensors, so their memory cannot be freed and reused by
// another tensor while the entry lives (no stale hit on a recycled address), and an in-place write
// through torch bumps the version counter, which makes the next call validate the new contents.
// Writes that bypass torch (through a NumPy array sharing the memory) are not seen, as for autograd's
// saved tensors. Inference tensors have no version counter: they are decoded on every call.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace equiforce::ops {

// Who a tensor is, for the cache: equal identities mean the same bytes unless written outside torch.
struct TensorIdentity {
  const void* storage = nullptr;
  const void* data = nullptr;
  int64_t numel = 0, stride = 0;
  int64_t version = 0;
  bool operator==(const TensorIdentity& o) const {
    return storage == o.storage && data == o.data && numel == o.numel && stride == o.stride && version == o.version;
  }
};

inline TensorIdentity identity_of(const at::Tensor& t) {
  return {t.storage().unsafeGetStorageImpl(), t.data_ptr(), t.numel(), t.dim() == 1 ? t.stride(0) : 0, t._version()};
}

// Value objects made from N tensors by `make(tensors)`, at most `capacity` of them (the oldest go first).
template <typename Value, size_t N>
class TensorKeyedCache {
 public:
  using Tensors = std::array<at::Tensor, N>;
  explicit TensorKeyedCache(size_t capacity) : capacity_(capacity) {}

  template <typename Make>
  std::shared_ptr<const Value> get(const Tensors& tensors, const Make& make) {
    for (const auto& t : tensors)
      if (t.is_inference() || !t.has_storage()) return make(tensors);
    Key key;
    for (size_t k = 0; k < N; ++k) key[k] = identity_of(tensors[k]);
    {
      std::shared_lock<std::shared_mutex> lock(mutex_);
      const auto it = entries_.find(key);
      if (it != entries_.end()) return it->second.value;
    }
    std::shared_ptr<const Value> value = make(tensors);  // validation may throw: nothing is cached then
    std::unique_lock<std::shared_mutex> lock(mutex_);
    const auto [it, inserted] = entries_.try_emplace(key, Entry{tensors, value});
    if (!inserted) return it->second.value;  // another thread made it meanwhile
    order_.push_back(key);
    while (order_.size() > capacity_) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    return value;
  }

  size_t size() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  using Key = std::array<TensorIdentity, N>;
  struct Hash {
    size_t operator()(const Key& key) const {
      size_t h = 0;
      const auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
      for (const auto& id : key) {
        mix(reinterpret_cast<size_t>(id.data));
        mix(static_cast<size_t>(id.numel));
        mix(static_cast<size_t>(id.version));
      }
      return h;
    }
  };
  struct Entry {
    Tensors keep_alive;  // holds the storages the key points to
    std::shared_ptr<const Value> value;
  };

  const size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<Key, Entry, Hash> entries_;
  std::deque<Key> order_;
};

// Enough for every tensor product of a few models at once (each layer holds one or two).
constexpr size_t kDescriptorCacheCapacity = 256;

}  // namespace equiforce::ops
