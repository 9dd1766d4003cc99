/* s4-bench peak: this machine's float32 FMA throughput, so every figure can be reported
 * as a fraction of the limit. Independent FMA chains (more than latency x ports of them)
 * on the widest vector unit the CPU has, on one core and on all cores (OpenMP).
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "peak.h"

#include <immintrin.h>
#include <omp.h>
#include <time.h>

/* 16 independent accumulators cover FMA latency (4 cycles) x 2 ports x 2 with room. */
#define CHAINS 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* noipa: without it GCC infers these are const and moves them across the clock reads. */
__attribute__((target("avx512f"), noipa)) static float chains_avx512(long iters)
{
    __m512 acc[CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm512_fmadd_ps(acc[j], m, a);
    __m512 s = acc[0];
    for (int j = 1; j < CHAINS; j++)
        s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noipa)) static float chains_avx2(long iters)
{
    __m256 acc[CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS; j++)
        acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < CHAINS; j++)
            acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    __m256 s = acc[0];
    for (int j = 1; j < CHAINS; j++)
        s = _mm256_add_ps(s, acc[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* Flops of one chains_* call per iteration: CHAINS FMAs of `lanes` lanes, 2 flops each. */
static float run_chains(int lanes, long iters)
{
    return lanes == 16 ? chains_avx512(iters) : chains_avx2(iters);
}

int s4__peak_lanes(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 8;
    return 0;
}

double s4__peak_gflops(int threads, double seconds, const char **isa)
{
    const int lanes = s4__peak_lanes();
    *isa = lanes == 16 ? "avx512f" : lanes == 8 ? "avx2+fma" : "none";
    if (lanes == 0)
        return 0.0;
    /* Calibrate the iteration count on one thread to about `seconds`. */
    long iters = 1 << 20;
    volatile float sink = 0.0f;
    for (;;) {
        const double t0 = now();
        sink += run_chains(lanes, iters);
        if (now() - t0 > 0.05)
            break;
        iters *= 2;
    }
    double t0 = now();
    sink += run_chains(lanes, iters);
    iters = (long)((double)iters * seconds / (now() - t0)) + 1;

    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
#pragma omp parallel num_threads(threads)
        {
            const float r = run_chains(lanes, iters);
#pragma omp atomic
            sink += r;
        }
        const double t = now() - t0;
        const double flops = 2.0 * lanes * CHAINS * (double)iters * threads;
        if (flops / t > best)
            best = flops / t;
    }
    (void)sink;
    return best * 1e-9;
}
