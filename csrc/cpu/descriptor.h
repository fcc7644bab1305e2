// Decodes and validates the flat tensor-product descriptor built by
// equiforce.algebra.TensorProductDescriptor.to_arrays(). Torch-free; throws std::invalid_argument.
//
// ints (int64): [version, n_seg1, n_seg2, n_seg_out, n_instr, nnz, dim1, dim2, dim_out, weight_numel,
//                segments (mul, l, offset) for in1, in2, out,
//                instructions (in1, in2, out, mode, has_weight, weight_offset, nnz_begin, nnz_end),
//                nonzeros (i, j, k)]
// floats (float64): [path_weight per instruction, coefficient per nonzero]
#pragma once

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../kernels/tensor_product.h"

namespace equiforce::cpu {

constexpr int64_t kDescriptorVersion = 1;
constexpr int64_t kDescriptorHeader = 10;

inline void descriptor_require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("equiforce: malformed tensor-product descriptor (" + what +
                                       "); build it with equiforce.algebra.TensorProductDescriptor");
}

// A validated copy of the descriptor: owns its integer tables and the float tables converted to T,
// so it stays valid (and valid-checked) whatever later happens to the arrays it was read from.
// `view` points into this object, which is therefore neither copied nor moved.
template <typename T>
struct HostDescriptor {
  std::vector<int64_t> tables;  // segments, instructions, nonzeros: the encoding after the header
  std::vector<T> path_weight, coeff;
  kernels::TpDescriptor<T> view{};

  HostDescriptor(const int64_t* ints, int64_t num_ints, const double* floats, int64_t num_floats) {
    descriptor_require(num_ints >= kDescriptorHeader, "too short");
    descriptor_require(ints[0] == kDescriptorVersion, "version " + std::to_string(ints[0]) + ", expected " +
                                                          std::to_string(kDescriptorVersion));
    auto& v = view;
    v.num_seg1 = ints[1]; v.num_seg2 = ints[2]; v.num_seg_out = ints[3]; v.num_instructions = ints[4];
    const int64_t nnz = ints[5];
    v.dim1 = ints[6]; v.dim2 = ints[7]; v.dim_out = ints[8]; v.weight_numel = ints[9];
    for (int64_t k = 1; k < kDescriptorHeader; ++k) descriptor_require(ints[k] >= 0, "negative size");
    const int64_t num_segs = v.num_seg1 + v.num_seg2 + v.num_seg_out;
    descriptor_require(num_ints == kDescriptorHeader + 3 * num_segs + 8 * v.num_instructions + 3 * nnz,
                       "length does not match header");
    descriptor_require(num_floats == v.num_instructions + nnz, "float table length does not match header");
    static_assert(sizeof(kernels::TpSegment) == 3 * sizeof(int64_t), "TpSegment must be 3 packed int64");
    static_assert(sizeof(kernels::TpInstruction) == 8 * sizeof(int64_t), "TpInstruction must be 8 packed int64");
    tables.assign(ints + kDescriptorHeader, ints + num_ints);
    const int64_t* p = tables.data();
    v.seg1 = reinterpret_cast<const kernels::TpSegment*>(p);
    v.seg2 = v.seg1 + v.num_seg1;
    v.seg_out = v.seg2 + v.num_seg2;
    v.instructions = reinterpret_cast<const kernels::TpInstruction*>(p + 3 * num_segs);
    v.nnz_ijk = p + 3 * num_segs + 8 * v.num_instructions;
    check_segments(v.seg1, v.num_seg1, v.dim1, "in1");
    check_segments(v.seg2, v.num_seg2, v.dim2, "in2");
    check_segments(v.seg_out, v.num_seg_out, v.dim_out, "out");
    int64_t scratch = 0;
    for (int64_t n = 0; n < v.num_instructions; ++n) {
      const auto& ins = v.instructions[n];
      descriptor_require(0 <= ins.in1 && ins.in1 < v.num_seg1 && 0 <= ins.in2 && ins.in2 < v.num_seg2 &&
                             0 <= ins.out && ins.out < v.num_seg_out,
                         "instruction segment index out of range");
      descriptor_require(0 <= ins.mode && ins.mode <= kernels::kUUU, "unknown connection mode");
      const auto &s1 = v.seg1[ins.in1], &s2 = v.seg2[ins.in2], &so = v.seg_out[ins.out];
      const int64_t shape[] = {s1.mul * s2.mul * so.mul, s1.mul * s2.mul, s1.mul * s2.mul, s1.mul * so.mul, s1.mul};
      const int64_t muls_ok[] = {1, so.mul == s1.mul, so.mul == s2.mul, s1.mul == s2.mul,
                                 s1.mul == s2.mul && s1.mul == so.mul};
      descriptor_require(muls_ok[ins.mode], "multiplicities do not fit the connection mode");
      if (ins.has_weight)
        descriptor_require(ins.weight_offset >= 0 && ins.weight_offset + shape[ins.mode] <= v.weight_numel,
                           "weight slice out of range");
      descriptor_require(0 <= ins.nnz_begin && ins.nnz_begin <= ins.nnz_end && ins.nnz_end <= nnz,
                         "nonzero range out of bounds");
      for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e)
        descriptor_require(0 <= v.nnz_ijk[3 * e] && v.nnz_ijk[3 * e] < s1.dim() && 0 <= v.nnz_ijk[3 * e + 1] &&
                               v.nnz_ijk[3 * e + 1] < s2.dim() && 0 <= v.nnz_ijk[3 * e + 2] &&
                               v.nnz_ijk[3 * e + 2] < so.dim(),
                           "nonzero index out of range");
      if (ins.mode == kernels::kUVW) scratch = std::max(scratch, 2 * so.dim() * s1.mul * s2.mul);
      if (ins.mode == kernels::kUUW) scratch = std::max(scratch, 2 * so.dim() * s1.mul);
      if (ins.mode == kernels::kUVU && s2.mul == 1)
        scratch = std::max(scratch, (2 * s1.dim() + s2.dim()) * s1.mul);
    }
    v.scratch = scratch;
    path_weight.assign(floats, floats + v.num_instructions);
    coeff.assign(floats + v.num_instructions, floats + num_floats);
    v.path_weight = path_weight.data();
    v.coeff = coeff.data();
  }

  HostDescriptor(const HostDescriptor&) = delete;
  HostDescriptor& operator=(const HostDescriptor&) = delete;

  // The tables as one block for a device: the integer tables, then path weights and coefficients
  // (T); `view_at(base)` is the view of a copy of these bytes at `base` (8-byte aligned).
  std::vector<unsigned char> pack() const {
    const size_t int_bytes = tables.size() * sizeof(int64_t);
    std::vector<unsigned char> out(int_bytes + (path_weight.size() + coeff.size()) * sizeof(T));
    if (!tables.empty()) std::memcpy(out.data(), tables.data(), int_bytes);
    if (!path_weight.empty()) std::memcpy(out.data() + int_bytes, path_weight.data(), path_weight.size() * sizeof(T));
    if (!coeff.empty())
      std::memcpy(out.data() + int_bytes + path_weight.size() * sizeof(T), coeff.data(), coeff.size() * sizeof(T));
    return out;
  }

  kernels::TpDescriptor<T> view_at(const void* base) const {
    kernels::TpDescriptor<T> v = view;
    const auto* ints = static_cast<const int64_t*>(base);
    const auto moved = [&](const void* p) { return ints + (static_cast<const int64_t*>(p) - tables.data()); };
    v.seg1 = reinterpret_cast<const kernels::TpSegment*>(moved(view.seg1));
    v.seg2 = reinterpret_cast<const kernels::TpSegment*>(moved(view.seg2));
    v.seg_out = reinterpret_cast<const kernels::TpSegment*>(moved(view.seg_out));
    v.instructions = reinterpret_cast<const kernels::TpInstruction*>(moved(view.instructions));
    v.nnz_ijk = moved(view.nnz_ijk);
    v.path_weight = reinterpret_cast<const T*>(ints + tables.size());
    v.coeff = v.path_weight + path_weight.size();
    return v;
  }

 private:
  static void check_segments(const kernels::TpSegment* segs, int64_t n, int64_t dim, const char* name) {
    int64_t offset = 0;
    for (int64_t s = 0; s < n; ++s) {
      descriptor_require(segs[s].mul >= 0 && segs[s].l >= 0 && segs[s].offset == offset,
                         std::string("segments of ") + name + " are not contiguous");
      offset += segs[s].mul * segs[s].dim();
    }
    descriptor_require(offset == dim, std::string("segments of ") + name + " do not add up to its dimension");
  }
};

}  // namespace equiforce::cpu
