/* The FFT + GEMM floor of s4-bench forward. SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_BENCH_FLOOR_H
#define S4_BENCH_FLOOR_H

#include <stdint.h>

/* Median seconds of `rows` rows of length L, zero-padded to n: r2c, a product with a
 * spectrum, c2r (FFTW_MEASURE plans), the rows split over `threads` OpenMP threads;
 * -1 when out of memory. */
double s4__floor_fft(int64_t rows, int64_t L, int64_t n, int threads, int repeat);

/* Median seconds of one sgemm [M x K] x [K x cols] (OpenBLAS's own threads); -1 when out
 * of memory. */
double s4__floor_gemm(int M, int K, int64_t cols, int repeat);

#endif
