/* s4-bench forward's floor: the FFT and GEMM work of a layer forward timed alone, with the
 * libraries at their best (FFTW_MEASURE plans, one sgemm over every column with OpenBLAS's
 * own threads), so the forward's figure can be read as a multiple of what its two big
 * library parts cost by themselves. Everything else the forward does (kernel spectrum
 * product, D u, activation, GLU, layout) is what the multiple charges it for.
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "floor.h"

#include <cblas.h>
#include <complex.h>
#include <fftw3.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double s4__floor_fft(int64_t rows, int64_t L, int64_t n, int threads, int repeat)
{
    const size_t nf = (size_t)n / 2 + 1;
    /* Every thread's rows at the planning arrays' alignment, as new-array execution needs
     * (64 bytes: FFTW's SIMD codelets assume what they saw when planning). */
    const size_t nfp = (nf + 7) / 8 * 8, np = ((size_t)n + 15) / 16 * 16;
    float *buf = fftwf_alloc_real(np * (size_t)threads);
    fftwf_complex *U = fftwf_alloc_complex(nfp * (size_t)threads);
    fftwf_complex *Kf = fftwf_alloc_complex(nf);
    if (!buf || !U || !Kf)
        return -1.0;
    for (size_t i = 0; i < nf; i++)
        Kf[i] = 1.0f / (float)(i + 1);
    const fftwf_plan r2c = fftwf_plan_dft_r2c_1d((int)n, buf, U, FFTW_MEASURE);
    const fftwf_plan c2r = fftwf_plan_dft_c2r_1d((int)n, U, buf, FFTW_MEASURE);
    double times[64];
    repeat = repeat < 1 ? 1 : repeat > 64 ? 64 : repeat;
    for (int rep = -1; rep < repeat; rep++) {
        const double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const size_t t = (size_t)omp_get_thread_num();
            float *b = buf + t * np;
            fftwf_complex *u = U + t * nfp;
            for (int64_t l = 0; l < L; l++) /* the input row, zero padded to n */
                b[l] = (float)((r + l) % 7) - 3.0f;
            memset(b + L, 0, (size_t)(n - L) * sizeof *b);
            fftwf_execute_dft_r2c(r2c, b, u);
            for (size_t k = 0; k < nf; k++)
                u[k] *= Kf[k];
            fftwf_execute_dft_c2r(c2r, u, b);
        }
        if (rep >= 0)
            times[rep] = now() - t0;
    }
    fftwf_destroy_plan(r2c);
    fftwf_destroy_plan(c2r);
    fftwf_free(buf);
    fftwf_free(U);
    fftwf_free(Kf);
    qsort(times, (size_t)repeat, sizeof *times, cmp);
    return times[repeat / 2];
}

double s4__floor_gemm(int M, int K, int64_t cols, int repeat)
{
    float *A = malloc((size_t)M * (size_t)K * sizeof *A);
    float *X = malloc((size_t)K * (size_t)cols * sizeof *X);
    float *Y = malloc((size_t)M * (size_t)cols * sizeof *Y);
    if (!A || !X || !Y) {
        free(A), free(X), free(Y);
        return -1.0;
    }
    for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
        A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)K * (size_t)cols; i++)
        X[i] = (float)(i % 11) * 0.1f;
    double times[64];
    repeat = repeat < 1 ? 1 : repeat > 64 ? 64 : repeat;
    for (int rep = -1; rep < repeat; rep++) {
        const double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, (int)cols, K, 1.0f, A, K, X,
                    (int)cols, 0.0f, Y, (int)cols);
        if (rep >= 0)
            times[rep] = now() - t0;
    }
    free(A), free(X), free(Y);
    qsort(times, (size_t)repeat, sizeof *times, cmp);
    return times[repeat / 2];
}
