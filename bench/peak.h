/* The FMA peak probe of s4-bench. SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_BENCH_PEAK_H
#define S4_BENCH_PEAK_H

/* float32 lanes of the vector unit of s4_isa(): 16 (AVX-512), 8 (AVX2+FMA), 4 (SSE2). */
int s4__peak_lanes(void);

/* Best of three runs of `seconds` each: float32 FMA GFLOP/s on `threads` threads; *isa
 * names the instruction set used. */
double s4__peak_gflops(int threads, double seconds, const char **isa);

#endif
