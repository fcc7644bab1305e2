// Per-sample bodies of the Clebsch-Gordan tensor product, read from a descriptor.
//
//   out[k w] += path_weight * C[i j k] * weight[...] * x1[i u] * x2[j v]   (indices per connection mode)
//
// Features enter in e3nn's mul_ir layout and are transposed per sample to ir_mul, so the inner
// loops run over the multiplicity with unit stride. The per-row bodies at the end (one sample, one
// receiver, one sender) are what the CPU loops and the CUDA kernels both run.
#pragma once

#include "common.h"

namespace equiforce::kernels {

// Connection modes, numbered as in equiforce.algebra.tensor_product.MODES.
enum TpMode : int64_t { kUVW = 0, kUVU = 1, kUVV = 2, kUUW = 3, kUUU = 4 };

struct TpSegment {
  int64_t mul, l, offset;
  EF_HOST_DEVICE int64_t dim() const { return 2 * l + 1; }
};

struct TpInstruction {
  int64_t in1, in2, out, mode, has_weight, weight_offset, nnz_begin, nnz_end;
};

// A read-only view of a validated descriptor (see csrc/cpu/descriptor.h for the flat encoding).
template <typename T>
struct TpDescriptor {
  const TpSegment* seg1;
  const TpSegment* seg2;
  const TpSegment* seg_out;
  const TpInstruction* instructions;
  const int64_t* nnz_ijk;  // [nnz, 3]
  const T* path_weight;    // [num_instructions]
  const T* coeff;          // [nnz]
  int64_t num_seg1, num_seg2, num_seg_out, num_instructions;
  int64_t dim1, dim2, dim_out, weight_numel;
  int64_t scratch;  // elements of per-sample scratch the bodies need
};

// dst[i*mul + u] = src[u*d + i] for every segment (mul_ir -> ir_mul); `to_mul_ir` goes back.
template <typename T>
EF_HOST_DEVICE inline void to_ir_mul(const TpSegment* segs, int64_t n, const T* src, T* dst) {
  for (int64_t s = 0; s < n; ++s) {
    const int64_t mul = segs[s].mul, d = segs[s].dim(), o = segs[s].offset;
    for (int64_t u = 0; u < mul; ++u)
      for (int64_t i = 0; i < d; ++i) dst[o + i * mul + u] = src[o + u * d + i];
  }
}

template <typename T>
EF_HOST_DEVICE inline void to_mul_ir(const TpSegment* segs, int64_t n, const T* src, T* dst) {
  for (int64_t s = 0; s < n; ++s) {
    const int64_t mul = segs[s].mul, d = segs[s].dim(), o = segs[s].offset;
    for (int64_t u = 0; u < mul; ++u)
      for (int64_t i = 0; i < d; ++i) dst[o + u * d + i] = src[o + i * mul + u];
  }
}

template <typename T>
EF_HOST_DEVICE inline T weight_at(const T* w, int64_t index) { return w ? w[index] : T(1); }

// out (ir_mul, accumulated) += TP(a, b; w). a, b in ir_mul; w is this sample's weight row or null.
template <typename T>
EF_HOST_DEVICE void tp_forward_sample(const TpDescriptor<T>& d, const T* a_all, const T* b_all, const T* w_all,
                                      T* out_all, T* scratch) {
  for (int64_t n = 0; n < d.num_instructions; ++n) {
    const TpInstruction& ins = d.instructions[n];
    const TpSegment &s1 = d.seg1[ins.in1], &s2 = d.seg2[ins.in2], &so = d.seg_out[ins.out];
    const int64_t m1 = s1.mul, m2 = s2.mul, mo = so.mul, dk = so.dim();
    const T* a = a_all + s1.offset;
    const T* b = b_all + s2.offset;
    T* o = out_all + so.offset;
    const T* w = (ins.has_weight && w_all) ? w_all + ins.weight_offset : nullptr;
    const T pw = d.path_weight[n];
    switch (ins.mode) {
      case kUVU:  // o[k][u] += pw sum_v w[u,v] C a[i][u] b[j][v]
        if (m2 == 1) {  // NequIP's convolution (edge attributes of multiplicity 1): weights applied once
          T* __restrict__ aw = scratch;  // aw[i][u] = w[u] a[i][u]
          const int64_t d1 = s1.dim();
          for (int64_t i = 0; i < d1; ++i)
            for (int64_t u = 0; u < m1; ++u) aw[i * m1 + u] = weight_at(w, u) * a[i * m1 + u];
          for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
            const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
            const T cb = pw * d.coeff[e] * b[j];
            T* __restrict__ ok = o + k * mo;
            const T* __restrict__ ai = aw + i * m1;
            for (int64_t u = 0; u < m1; ++u) ok[u] += cb * ai[u];
          }
          break;
        }
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t v = 0; v < m2; ++v) {
            const T cb = c * b[j * m2 + v];
            for (int64_t u = 0; u < m1; ++u) o[k * mo + u] += cb * weight_at(w, u * m2 + v) * a[i * m1 + u];
          }
        }
        break;
      case kUVV:  // o[k][v] += pw sum_u w[u,v] C a[i][u] b[j][v]
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t u = 0; u < m1; ++u) {
            const T ca = c * a[i * m1 + u];
            for (int64_t v = 0; v < m2; ++v) o[k * mo + v] += ca * weight_at(w, u * m2 + v) * b[j * m2 + v];
          }
        }
        break;
      case kUUU:  // o[k][u] += pw w[u] C a[i][u] b[j][u]
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t u = 0; u < m1; ++u) o[k * mo + u] += c * weight_at(w, u) * a[i * m1 + u] * b[j * m1 + u];
        }
        break;
      case kUUW:    // xx[k][u] = sum C a[i][u] b[j][u]; o[k][w] += pw sum_u W[u,w] xx[k][u]
      case kUVW: {  // xx[k][u,v] = sum C a[i][u] b[j][v]; o[k][w] += pw sum_uv W[uv,w] xx[k][uv]
        const int64_t muv = ins.mode == kUVW ? m1 * m2 : m1;
        T* xx = scratch;
        for (int64_t q = 0; q < dk * muv; ++q) xx[q] = T(0);
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = d.coeff[e];
          if (ins.mode == kUVW) {
            for (int64_t u = 0; u < m1; ++u) {
              const T ca = c * a[i * m1 + u];
              for (int64_t v = 0; v < m2; ++v) xx[k * muv + u * m2 + v] += ca * b[j * m2 + v];
            }
          } else {
            for (int64_t u = 0; u < m1; ++u) xx[k * muv + u] += c * a[i * m1 + u] * b[j * m1 + u];
          }
        }
        for (int64_t k = 0; k < dk; ++k)
          for (int64_t uv = 0; uv < muv; ++uv) {
            const T t = pw * xx[k * muv + uv];
            for (int64_t q = 0; q < mo; ++q) o[k * mo + q] += t * weight_at(w, uv * mo + q);
          }
        break;
      }
      default:
        break;
    }
  }
}

// Sample s of a batch in e3nn's mul_ir layout: out[s] = TP(x1[s], x2[s]; w or w[s]), through the
// ir_mul buffers a [dim1], b [dim2], o [dim_out] and scratch. The body of the CPU loop and the CUDA kernel.
template <typename T>
EF_HOST_DEVICE void tp_forward_mul_ir(const TpDescriptor<T>& d, int64_t s, const T* x1, const T* x2, const T* w,
                                      bool per_sample_weights, T* out, T* a, T* b, T* o, T* scratch) {
  to_ir_mul(d.seg1, d.num_seg1, x1 + s * d.dim1, a);
  to_ir_mul(d.seg2, d.num_seg2, x2 + s * d.dim2, b);
  for (int64_t k = 0; k < d.dim_out; ++k) o[k] = T(0);
  const T* ws = w ? (per_sample_weights ? w + s * d.weight_numel : w) : nullptr;
  tp_forward_sample(d, a, b, ws, o, scratch);
  to_mul_ir(d.seg_out, d.num_seg_out, o, out + s * d.dim_out);
}

// Reverse of tp_forward_sample for one sample: accumulates into ga, gb (ir_mul) and gw (this
// sample's weight-gradient row, or null when not wanted), given go = d loss / d out (ir_mul).
template <typename T>
EF_HOST_DEVICE void tp_backward_sample(const TpDescriptor<T>& d, const T* a_all, const T* b_all, const T* w_all,
                                       const T* go_all, T* ga_all, T* gb_all, T* gw_all, T* scratch) {
  for (int64_t n = 0; n < d.num_instructions; ++n) {
    const TpInstruction& ins = d.instructions[n];
    const TpSegment &s1 = d.seg1[ins.in1], &s2 = d.seg2[ins.in2], &so = d.seg_out[ins.out];
    const int64_t m1 = s1.mul, m2 = s2.mul, mo = so.mul, dk = so.dim();
    const T* a = a_all + s1.offset;
    const T* b = b_all + s2.offset;
    const T* go = go_all + so.offset;
    T* ga = ga_all + s1.offset;
    T* gb = gb_all + s2.offset;
    const bool weighted = ins.has_weight && w_all;
    const T* w = weighted ? w_all + ins.weight_offset : nullptr;
    T* gw = (weighted && gw_all) ? gw_all + ins.weight_offset : nullptr;
    const T pw = d.path_weight[n];
    switch (ins.mode) {
      case kUVU:
        if (m2 == 1) {
          // t[i][u] = sum over nonzeros with this i of c b[j] go[k][u]; then ga = w t, gw = sum_i a t.
          // gb[j] = sum over nonzeros c <w a[i], go[k]>, kept as vectors acc[j][u] and reduced once per
          // j: two multiply-adds per nonzero and channel, no horizontal sum per nonzero.
          const int64_t d1 = s1.dim(), d2 = s2.dim();
          T* __restrict__ aw = scratch;
          T* __restrict__ t = scratch + d1 * m1;
          T* __restrict__ acc = t + d1 * m1;
          for (int64_t i = 0; i < d1; ++i)
            for (int64_t u = 0; u < m1; ++u) {
              aw[i * m1 + u] = weight_at(w, u) * a[i * m1 + u];
              t[i * m1 + u] = T(0);
            }
          for (int64_t q = 0; q < d2 * m1; ++q) acc[q] = T(0);
          for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
            const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
            const T c = pw * d.coeff[e];
            const T cb = c * b[j];
            const T* __restrict__ gk = go + k * mo;
            const T* __restrict__ ai = aw + i * m1;
            T* __restrict__ ti = t + i * m1;
            T* __restrict__ aj = acc + j * m1;
            for (int64_t u = 0; u < m1; ++u) {
              ti[u] += cb * gk[u];
              aj[u] += c * ai[u] * gk[u];
            }
          }
          for (int64_t j = 0; j < d2; ++j) {
            T sum = T(0);
            for (int64_t u = 0; u < m1; ++u) sum += acc[j * m1 + u];
            gb[j] += sum;
          }
          for (int64_t i = 0; i < d1; ++i)
            for (int64_t u = 0; u < m1; ++u) {
              ga[i * m1 + u] += weight_at(w, u) * t[i * m1 + u];
              if (gw) gw[u] += a[i * m1 + u] * t[i * m1 + u];
            }
          break;
        }
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t v = 0; v < m2; ++v) {
            const T bv = b[j * m2 + v];
            T acc_b = T(0);
            for (int64_t u = 0; u < m1; ++u) {
              const T g = go[k * mo + u], au = a[i * m1 + u], wu = weight_at(w, u * m2 + v);
              ga[i * m1 + u] += c * bv * wu * g;
              acc_b += wu * au * g;
              if (gw) gw[u * m2 + v] += c * bv * au * g;
            }
            gb[j * m2 + v] += c * acc_b;
          }
        }
        break;
      case kUVV:
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t u = 0; u < m1; ++u) {
            const T au = a[i * m1 + u];
            T acc_a = T(0);
            for (int64_t v = 0; v < m2; ++v) {
              const T g = go[k * mo + v], bv = b[j * m2 + v], wv = weight_at(w, u * m2 + v);
              gb[j * m2 + v] += c * au * wv * g;
              acc_a += wv * bv * g;
              if (gw) gw[u * m2 + v] += c * au * bv * g;
            }
            ga[i * m1 + u] += c * acc_a;
          }
        }
        break;
      case kUUU:
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = pw * d.coeff[e];
          for (int64_t u = 0; u < m1; ++u) {
            const T g = c * go[k * mo + u], au = a[i * m1 + u], bu = b[j * m1 + u], wu = weight_at(w, u);
            ga[i * m1 + u] += g * wu * bu;
            gb[j * m1 + u] += g * wu * au;
            if (gw) gw[u] += g * au * bu;
          }
        }
        break;
      case kUUW:
      case kUVW: {
        const int64_t muv = ins.mode == kUVW ? m1 * m2 : m1;
        T* xx = scratch;             // forward intermediate, needed for the weight gradient
        T* gxx = scratch + dk * muv;  // d loss / d xx
        for (int64_t q = 0; q < dk * muv; ++q) { xx[q] = T(0); gxx[q] = T(0); }
        if (gw) {
          for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
            const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
            const T c = d.coeff[e];
            if (ins.mode == kUVW) {
              for (int64_t u = 0; u < m1; ++u)
                for (int64_t v = 0; v < m2; ++v) xx[k * muv + u * m2 + v] += c * a[i * m1 + u] * b[j * m2 + v];
            } else {
              for (int64_t u = 0; u < m1; ++u) xx[k * muv + u] += c * a[i * m1 + u] * b[j * m1 + u];
            }
          }
        }
        for (int64_t k = 0; k < dk; ++k)
          for (int64_t uv = 0; uv < muv; ++uv) {
            T acc = T(0);
            const T x = pw * xx[k * muv + uv];
            for (int64_t q = 0; q < mo; ++q) {
              const T g = go[k * mo + q];
              acc += weight_at(w, uv * mo + q) * g;
              if (gw) gw[uv * mo + q] += x * g;
            }
            gxx[k * muv + uv] = pw * acc;
          }
        for (int64_t e = ins.nnz_begin; e < ins.nnz_end; ++e) {
          const int64_t i = d.nnz_ijk[3 * e], j = d.nnz_ijk[3 * e + 1], k = d.nnz_ijk[3 * e + 2];
          const T c = d.coeff[e];
          if (ins.mode == kUVW) {
            for (int64_t u = 0; u < m1; ++u) {
              T acc_a = T(0);
              const T au = a[i * m1 + u];
              for (int64_t v = 0; v < m2; ++v) {
                const T g = c * gxx[k * muv + u * m2 + v];
                acc_a += g * b[j * m2 + v];
                gb[j * m2 + v] += g * au;
              }
              ga[i * m1 + u] += acc_a;
            }
          } else {
            for (int64_t u = 0; u < m1; ++u) {
              const T g = c * gxx[k * muv + u];
              ga[i * m1 + u] += g * b[j * m1 + u];
              gb[j * m1 + u] += g * a[i * m1 + u];
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }
}


// ---- per-row bodies of the launchers: the CPU loops and the CUDA kernels run these ----

// Where sample s's weight gradient goes: row s of gw (per-sample weights; zeroed here), the caller's
// accumulator `shared` (shared weights: a task's or a thread's, summed into gw afterwards), or
// nowhere (null) when no weight gradient is asked for.
template <typename T>
EF_HOST_DEVICE inline T* weight_grad_row(T* gw, bool per_sample, T* shared, int64_t numel, int64_t s) {
  if (!gw) return nullptr;
  if (!per_sample) return shared;
  T* r = gw + s * numel;
  for (int64_t q = 0; q < numel; ++q) r[q] = T(0);
  return r;
}

// Backward of sample s in mul_ir: g1[s], g2[s] overwritten, the weight gradient added into gw_row
// (weight_grad_row; may be null). a, b, ga, gb, go: [dim1], [dim2], [dim1], [dim2], [dim_out] of scratch.
template <typename T>
EF_HOST_DEVICE void tp_backward_mul_ir(const TpDescriptor<T>& d, int64_t s, const T* x1, const T* x2, const T* w,
                                       bool per_sample_weights, const T* gout, T* g1, T* g2, T* gw_row, T* a, T* b,
                                       T* ga, T* gb, T* go, T* scratch) {
  to_ir_mul(d.seg1, d.num_seg1, x1 + s * d.dim1, a);
  to_ir_mul(d.seg2, d.num_seg2, x2 + s * d.dim2, b);
  to_ir_mul(d.seg_out, d.num_seg_out, gout + s * d.dim_out, go);
  for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
  for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
  const T* ws = w ? (per_sample_weights ? w + s * d.weight_numel : w) : nullptr;
  tp_backward_sample(d, a, b, ws, go, ga, gb, gw_row, scratch);
  to_mul_ir(d.seg1, d.num_seg1, ga, g1 + s * d.dim1);
  to_mul_ir(d.seg2, d.num_seg2, gb, g2 + s * d.dim2);
}

// The fused convolution out[i] = sum over edges e into i of TP(x[src[e]], attr[e]; w[e]), one row
// at a time. Edges come grouped by an endpoint (CSR: the edges of group g are order[ptr[g] ..
// ptr[g + 1])), so every output row has one writer. xt: the senders' features in ir_mul.

// Receiver i: out[i] (mul_ir) overwritten. b, o: [dim2], [dim_out] of scratch.
template <typename T>
EF_HOST_DEVICE void conv_receiver(const TpDescriptor<T>& d, int64_t i, const T* xt, const T* attr, const T* w,
                                  bool per_edge_weights, const int64_t* src, const int64_t* ptr,
                                  const int64_t* order, T* out, T* b, T* o, T* scratch) {
  for (int64_t k = 0; k < d.dim_out; ++k) o[k] = T(0);
  for (int64_t p = ptr[i]; p < ptr[i + 1]; ++p) {
    const int64_t e = order[p];
    to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
    const T* we = w ? (per_edge_weights ? w + e * d.weight_numel : w) : nullptr;
    tp_forward_sample(d, xt + src[e] * d.dim1, b, we, o, scratch);
  }
  to_mul_ir(d.seg_out, d.num_seg_out, o, out + i * d.dim_out);
}

// Sender j (edges grouped by sender): gx[j] and gattr[e] of its edges overwritten, weight gradients
// as weight_grad_row(gw, per_edge_weights, shared, ...). got: grad_out in ir_mul. b, ga, gb: [dim2],
// [dim1], [dim2] of scratch.
template <typename T>
EF_HOST_DEVICE void conv_sender(const TpDescriptor<T>& d, int64_t j, const T* xt, const T* attr, const T* w,
                                bool per_edge_weights, const int64_t* dst, const int64_t* ptr, const int64_t* order,
                                const T* got, T* gx, T* gattr, T* gw, T* shared, T* b, T* ga, T* gb, T* scratch) {
  for (int64_t k = 0; k < d.dim1; ++k) ga[k] = T(0);
  for (int64_t p = ptr[j]; p < ptr[j + 1]; ++p) {
    const int64_t e = order[p];
    to_ir_mul(d.seg2, d.num_seg2, attr + e * d.dim2, b);
    for (int64_t k = 0; k < d.dim2; ++k) gb[k] = T(0);
    const T* we = w ? (per_edge_weights ? w + e * d.weight_numel : w) : nullptr;
    tp_backward_sample(d, xt + j * d.dim1, b, we, got + dst[e] * d.dim_out, ga, gb,
                       weight_grad_row(gw, per_edge_weights, shared, d.weight_numel, e), scratch);
    to_mul_ir(d.seg2, d.num_seg2, gb, gattr + e * d.dim2);
  }
  to_mul_ir(d.seg1, d.num_seg1, ga, gx + j * d.dim1);
}

}  // namespace equiforce::kernels
