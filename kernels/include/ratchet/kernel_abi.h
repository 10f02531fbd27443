// The C ABI between the kernel harness and a candidate solution.
//
// A candidate is compiled into a shared library that exports `ratchet_run`.
// Calling convention is destination-passing: the harness allocates every
// input and output, in definition.json order, and the candidate writes each
// element of every output. Scalars (`"shape": null`) are 0-d tensors whose
// `data` points at one element. The candidate must not keep pointers across
// calls, must not modify inputs, and must have finished all of its work when
// it returns.
//
// Knobs chosen by the research loop reach the source as preprocessor macros
// (`-DNAME=value`), see docs/solutions.md.
#ifndef RATCHET_KERNEL_ABI_H_
#define RATCHET_KERNEL_ABI_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RATCHET_ABI_VERSION 1

typedef enum {
  RATCHET_FLOAT32 = 0,
  RATCHET_FLOAT16 = 1,
  RATCHET_BFLOAT16 = 2,
  RATCHET_FLOAT64 = 3,
  RATCHET_INT8 = 4,
  RATCHET_INT32 = 5,
  RATCHET_INT64 = 6,
  RATCHET_BOOL = 7,
  RATCHET_UINT8 = 8,
  RATCHET_FLOAT8_E4M3 = 9,   // float8_e4m3fn
  RATCHET_FLOAT8_E5M2 = 10,
  RATCHET_INT16 = 11,
} ratchet_dtype;

typedef struct {
  void* data;              // first element
  ratchet_dtype dtype;
  int32_t ndim;            // 0 for scalars
  const int64_t* shape;    // ndim entries
  const int64_t* strides;  // ndim entries, in elements (row-major contiguous today)
} ratchet_tensor;

// Returns 0 on success; any other value is reported as a crash with that code.
typedef int (*ratchet_run_fn)(const ratchet_tensor* inputs, int32_t num_inputs,
                              ratchet_tensor* outputs, int32_t num_outputs);

int ratchet_run(const ratchet_tensor* inputs, int32_t num_inputs,
                ratchet_tensor* outputs, int32_t num_outputs);

// CUDA solutions export this instead: every `data` is a device pointer (scalars
// too), and all work must be enqueued on `stream` (a cudaStream_t) or be
// finished when the call returns. The harness synchronises the whole device
// before it stops the clock, so work hidden on other streams is still timed.
typedef int (*ratchet_run_cuda_fn)(const ratchet_tensor* inputs, int32_t num_inputs,
                                   ratchet_tensor* outputs, int32_t num_outputs,
                                   void* stream);

int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                     ratchet_tensor* outputs, int32_t num_outputs, void* stream);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // RATCHET_KERNEL_ABI_H_
