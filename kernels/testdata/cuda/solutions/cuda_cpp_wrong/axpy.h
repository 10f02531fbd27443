#pragma once
#include <cuda_runtime.h>

#ifndef OFFSET
#define OFFSET 0.0f
#endif

void axpy_launch(const float* a, const float* b, float alpha, float* c, long n,
                 cudaStream_t stream);
