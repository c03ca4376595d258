// shim.h: just enough of CUDA to compile kernels/cuda/*.cu as host C++17
// (g++ or clang++) and run them on the CPU; see harness.cpp for how it is
// used. Include it before any kernel file.
//
// * The CUDA qualifiers (__global__, __device__, __shared__, ...) become
//   nothing; `extern __shared__ u64 tile[]` in ntt.cu then names the
//   `tile` array defined here (one block runs at a time, so one array is
//   enough). `#pragma unroll` is an unknown pragma to the host compiler.
// * threadIdx, blockIdx, blockDim and gridDim are globals the launcher
//   (harness.cpp) sets before it runs each thread.
// * __umul64hi is the high word of the 128-bit product; __syncthreads()
//   is the launcher's block barrier (a fiber switch).

#ifndef HEFORMER_CUDA_HOST_SHIM_H
#define HEFORMER_CUDA_HOST_SHIM_H

#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__

struct HostDim3 {
    unsigned x, y, z;
};

inline HostDim3 threadIdx, blockIdx, blockDim, gridDim;

// Shared memory of the running block: the fused NTT's tile holds at most
// 2^11 words (ntt_plan::TILE_WORDS_LOG); the launcher checks the request.
constexpr unsigned SHARED_WORDS = 1u << 11;
inline unsigned long long tile[SHARED_WORDS];

inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// Defined by the launcher in harness.cpp.
void __syncthreads();

#endif // HEFORMER_CUDA_HOST_SHIM_H
