// The device side of device_check.h. Every rule is the host's, operation for
// operation: loads convert exactly (every element type fits a double), and
// the arithmetic uses round-to-nearest intrinsics so that no fused
// multiply-add changes a borderline element's verdict.
#include "kernels/cuda/device_check.h"

#include <climits>
#include <cstring>

#include "kernels/include/ratchet/kernel_abi.h"

namespace ratchet::kernels::device_check {
namespace {

constexpr int kThreads = 256;

__device__ double Bits16ToHalf(uint16_t h) {  // as HalfToFloat (dtype.cc)
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return __uint_as_float(sign);
    const double v = static_cast<double>(mant) * 5.9604644775390625e-8;  // mant * 2^-24
    return sign ? -v : v;
  }
  return __uint_as_float(sign | ((exp + 112) << 23) | (mant << 13));
}

__device__ double Fp8E4M3(uint8_t v) {  // float8_e4m3fn: no Inf, NaN = S.1111.111
  const double sign = (v & 0x80) ? -1.0 : 1.0;
  const int exp = (v >> 3) & 0xf, mant = v & 7;
  if (exp == 15 && mant == 7) return __longlong_as_double(0x7ff8000000000000ll);
  if (exp == 0) return sign * ldexp(static_cast<double>(mant), -9);
  return sign * ldexp(1.0 + mant / 8.0, exp - 7);
}

__device__ double Fp8E5M2(uint8_t v) {
  const double sign = (v & 0x80) ? -1.0 : 1.0;
  const int exp = (v >> 2) & 0x1f, mant = v & 3;
  if (exp == 31)
    return mant == 0 ? sign * __longlong_as_double(0x7ff0000000000000ll)
                     : __longlong_as_double(0x7ff8000000000000ll);
  if (exp == 0) return sign * ldexp(static_cast<double>(mant), -16);
  return sign * ldexp(1.0 + mant / 4.0, exp - 15);
}

__device__ double Load(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case RATCHET_FLOAT32: return static_cast<const float*>(p)[i];
    case RATCHET_FLOAT64: return static_cast<const double*>(p)[i];
    case RATCHET_FLOAT16: return Bits16ToHalf(static_cast<const uint16_t*>(p)[i]);
    case RATCHET_BFLOAT16:
      return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
    case RATCHET_INT8: return static_cast<const int8_t*>(p)[i];
    case RATCHET_UINT8: return static_cast<const uint8_t*>(p)[i];
    case RATCHET_INT16: return static_cast<const int16_t*>(p)[i];
    case RATCHET_INT32: return static_cast<const int32_t*>(p)[i];
    case RATCHET_INT64: return __ll2double_rn(static_cast<const long long*>(p)[i]);
    case RATCHET_BOOL: return static_cast<const uint8_t*>(p)[i];
    case RATCHET_FLOAT8_E4M3: return Fp8E4M3(static_cast<const uint8_t*>(p)[i]);
    case RATCHET_FLOAT8_E5M2: return Fp8E5M2(static_cast<const uint8_t*>(p)[i]);
  }
  return 0;
}

__device__ bool IsFloatingType(int dtype) {
  return dtype == RATCHET_FLOAT32 || dtype == RATCHET_FLOAT64 || dtype == RATCHET_FLOAT16 ||
         dtype == RATCHET_BFLOAT16 || dtype == RATCHET_FLOAT8_E4M3 ||
         dtype == RATCHET_FLOAT8_E5M2;
}

__device__ double UlpAt(int dtype, double x) {  // as UlpAt (compare.cc)
  int mantissa = 0, min_exp = 0;
  switch (dtype) {
    case RATCHET_FLOAT64: mantissa = 52, min_exp = -1022; break;
    case RATCHET_FLOAT32: mantissa = 23, min_exp = -126; break;
    case RATCHET_BFLOAT16: mantissa = 7, min_exp = -126; break;
    case RATCHET_FLOAT16: mantissa = 10, min_exp = -14; break;
    case RATCHET_FLOAT8_E4M3: mantissa = 3, min_exp = -6; break;
    case RATCHET_FLOAT8_E5M2: mantissa = 2, min_exp = -14; break;
    default: return 0;
  }
  if (!isfinite(x)) return 0;
  if (x == 0) return ldexp(1.0, min_exp - mantissa);
  int e = 0;
  (void)frexp(fabs(x), &e);
  return ldexp(1.0, max(e - 1, min_exp) - mantissa);
}

__device__ unsigned long long WarpSum(unsigned long long v) {
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  return v;
}

__device__ unsigned long long WarpMax(unsigned long long v) {
  for (int d = 16; d > 0; d >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, d));
  return v;
}

__global__ void CompareKernel(CompareArgs a, int64_t decoy_step, OutputCounts* counts) {
  unsigned long long matched = 0, nonfinite = 0, beyond = 0, out_nz = 0, ref_nz = 0;
  unsigned long long differ = 0, nearer = 0;
  double max_err = 0;
  const bool bounded = IsFloatingType(a.out_dtype);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.count;
       i += stride) {
    const double o = Load(a.out, a.out_dtype, i);
    const double e = Load(a.ref, a.ref_dtype, i);
    if (a.decoy != nullptr && i % decoy_step == 0) {  // NearerDecoy's sample
      const double d = Load(a.decoy, a.out_dtype, i);
      if (!(e == d || !isfinite(e) || !isfinite(d))) {
        ++differ;
        nearer += fabs(__dsub_rn(o, d)) < fabs(__dsub_rn(o, e));
      }
    }
    if (!isfinite(o)) {
      ++nonfinite;
      continue;
    }
    out_nz += o != 0;
    ref_nz += e != 0;
    const double diff = fabs(__dsub_rn(o, e));
    if (isfinite(e) && diff > max_err) max_err = diff;
    const double t = __dadd_rn(a.atol, __dmul_rn(a.rtol, fabs(e)));
    matched += diff <= t;
    if (bounded && isfinite(e) && diff > 0 && diff > t) {
      double scale = t;
      const double u1 = UlpAt(a.out_dtype, e), u2 = UlpAt(a.ref_dtype, e);
      if (u1 > scale) scale = u1;
      if (u2 > scale) scale = u2;
      beyond += __ddiv_rn(diff, scale) > a.max_error_factor;
    }
  }
  unsigned long long v[8] = {matched, nonfinite, beyond, out_nz, ref_nz, differ, nearer,
                             static_cast<unsigned long long>(__double_as_longlong(max_err))};
  __shared__ unsigned long long part[8][kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int k = 0; k < 8; ++k) {
    // A non-negative double's bits order as the double does.
    v[k] = k == 7 ? WarpMax(v[k]) : WarpSum(v[k]);
    if (lane == 0) part[k][warp] = v[k];
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  unsigned long long* dst = &counts->matched;
  for (int k = 0; k < 8; ++k) {
    unsigned long long s = 0;
    for (int w = 0; w < kThreads / 32; ++w) s = k == 7 ? max(s, part[k][w]) : s + part[k][w];
    if (k == 7) {
      atomicMax(&counts->max_abs_error_bits, s);
    } else if (s != 0) {
      atomicAdd(dst + k, s);
    }
  }
}

__global__ void BytesDifferKernel(const unsigned char* a, const unsigned char* b, size_t n,
                                  unsigned int* differs) {
  const size_t words = n / 16;
  const uint4* a4 = reinterpret_cast<const uint4*>(a);
  const uint4* b4 = reinterpret_cast<const uint4*>(b);
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  bool differ = false;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < words;
       i += stride) {
    const uint4 x = a4[i], y = b4[i];
    differ = differ || x.x != y.x || x.y != y.y || x.z != y.z || x.w != y.w;
  }
  if (blockIdx.x == 0 && threadIdx.x < n % 16)
    differ = differ || a[words * 16 + threadIdx.x] != b[words * 16 + threadIdx.x];
  if (__syncthreads_or(differ) && threadIdx.x == 0) *differs = 1;
}

struct CanaryRegions {
  uint64_t offset[kMaxCanaryRegions];
};

__global__ void CanaryKernel(const char* base, CanaryRegions r, int bytes, unsigned char value,
                             int* first_bad) {
  const int k = blockIdx.x;
  bool bad = false;
  for (int i = threadIdx.x; i < bytes; i += blockDim.x)
    bad = bad || static_cast<unsigned char>(base[r.offset[k] + i]) != value;
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicMin(first_bad, k);
}

int BlocksFor(int64_t items) {
  const int64_t b = (items + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 4096 ? 4096 : b));
}

}  // namespace

cudaError_t LaunchCompare(const CompareArgs& a, OutputCounts* counts, cudaStream_t stream) {
  if (a.count <= 0) return cudaSuccess;
  // NearerDecoy looks at every step-th element: about a million of them.
  const int64_t step = a.count / (int64_t{1} << 20) > 1 ? a.count / (int64_t{1} << 20) : 1;
  CompareKernel<<<BlocksFor(a.count), kThreads, 0, stream>>>(a, step, counts);
  return cudaGetLastError();
}

cudaError_t LaunchBytesDiffer(const void* a, const void* b, size_t n, unsigned int* differs,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  BytesDifferKernel<<<BlocksFor(static_cast<int64_t>(n / 16) + 1), kThreads, 0, stream>>>(
      static_cast<const unsigned char*>(a), static_cast<const unsigned char*>(b), n, differs);
  return cudaGetLastError();
}

cudaError_t LaunchCanaryCheck(const char* base, const uint64_t* offsets, int count, int bytes,
                              unsigned char value, int* first_bad, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  if (count > kMaxCanaryRegions) return cudaErrorInvalidValue;
  CanaryRegions r;
  std::memcpy(r.offset, offsets, sizeof(uint64_t) * static_cast<size_t>(count));
  CanaryKernel<<<count, kThreads, 0, stream>>>(base, r, bytes, value, first_bad);
  return cudaGetLastError();
}

bool Passes(const OutputCounts& c, int64_t count, double min_matched_fraction) {
  if (c.nonfinite > 0) return false;
  if (count > 0 && c.out_nonzero == 0 && c.ref_nonzero > 0) return false;
  const double matched_fraction =
      count > 0 ? static_cast<double>(c.matched) / static_cast<double>(count) : 1;
  if (matched_fraction < min_matched_fraction) return false;
  if (c.beyond_bound > 0) return false;
  return !(c.decoy_differ >= 8 && c.decoy_nearer * 10 >= c.decoy_differ * 9);
}

}  // namespace ratchet::kernels::device_check
