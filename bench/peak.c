/* s4-bench peak: this machine's float32 FMA throughput, so every figure can be reported
 * as a fraction of the limit. Independent FMA chains on the vector unit of the ISA libs4
 * runs (s4_isa: the widest the CPU has, or S4_ISA's), on one core and on all cores.
 *
 * Enough chains to cover FMA latency x FMA pipes (4-5 cycles x 2 on Haswell to Zen 5, so 8
 * to 10), and few enough that they and the two constants stay in the register file: a
 * spilled chain waits on a store and a load, which made the first version of this probe
 * read 57 GFLOP/s per core on Zen 3 (16 chains + 2 constants in AVX2's 16 registers)
 * against a true 98. AVX2 and SSE2 get 12 chains (14 of 16 registers), AVX-512 16 (of 32).
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "peak.h"

#include "s4.h"

#include <immintrin.h>
#include <omp.h>
#include <time.h>

enum { CHAINS_AVX512 = 16, CHAINS_AVX2 = 12, CHAINS_SSE = 12 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* noipa: without it GCC infers these are const and moves them across the clock reads. */
__attribute__((target("avx512f"), noipa)) static float chains_avx512(long iters)
{
    __m512 acc[CHAINS_AVX512];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS_AVX512; j++)
        acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int j = 0; j < CHAINS_AVX512; j++)
            acc[j] = _mm512_fmadd_ps(acc[j], m, a);
    __m512 s = acc[0];
    for (int j = 1; j < CHAINS_AVX512; j++)
        s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noipa)) static float chains_avx2(long iters)
{
    __m256 acc[CHAINS_AVX2];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS_AVX2; j++)
        acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int j = 0; j < CHAINS_AVX2; j++)
            acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    __m256 s = acc[0];
    for (int j = 1; j < CHAINS_AVX2; j++)
        s = _mm256_add_ps(s, acc[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* The portable path's unit: SSE2, no FMA, so a multiply and an add per lane and step. */
__attribute__((noipa)) static float chains_sse(long iters)
{
    __m128 acc[CHAINS_SSE];
    const __m128 m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS_SSE; j++)
        acc[j] = _mm_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int j = 0; j < CHAINS_SSE; j++)
            acc[j] = _mm_add_ps(_mm_mul_ps(acc[j], m), a);
    __m128 s = acc[0];
    for (int j = 1; j < CHAINS_SSE; j++)
        s = _mm_add_ps(s, acc[j]);
    float out[4];
    _mm_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3];
}

typedef struct unit {
    const char *name;
    int lanes, chains;
    float (*run)(long iters);
} unit;

static unit unit_for(s4_isa isa)
{
    switch (isa) {
    case S4_ISA_AVX512: return (unit){"avx512f", 16, CHAINS_AVX512, chains_avx512};
    case S4_ISA_AVX2: return (unit){"avx2+fma", 8, CHAINS_AVX2, chains_avx2};
    default: return (unit){"sse2 (mul+add)", 4, CHAINS_SSE, chains_sse};
    }
}

int s4__peak_lanes(void) { return unit_for(s4_cpu_isa()).lanes; }

double s4__peak_gflops(int threads, double seconds, const char **isa)
{
    const unit u = unit_for(s4_cpu_isa());
    *isa = u.name;
    /* Calibrate the iteration count on one thread to about `seconds`. */
    long iters = 1 << 20;
    volatile float sink = 0.0f;
    for (;;) {
        const double t0 = now();
        sink += u.run(iters);
        if (now() - t0 > 0.05)
            break;
        iters *= 2;
    }
    double t0 = now();
    sink += u.run(iters);
    iters = (long)((double)iters * seconds / (now() - t0)) + 1;

    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
#pragma omp parallel num_threads(threads)
        {
            const float r = u.run(iters);
#pragma omp atomic
            sink += r;
        }
        const double t = now() - t0;
        /* Each step of a chain: `lanes` lanes, 2 flops (one FMA, or a multiply and an add). */
        const double flops = 2.0 * u.lanes * u.chains * (double)iters * threads;
        if (flops / t > best)
            best = flops / t;
    }
    (void)sink;
    return best * 1e-9;
}
