/* A small dense affine map out = W a + b with a summation order fixed per output element,
 * for the step mode's output linear (docs/cpu.md, "Determinism").
 *
 * Why not sgemm: an optimised BLAS picks its micro-kernel per call shape, so the rounding
 * of one output can change with the rows a call covers (OpenBLAS's Haswell-class sgemm does:
 * 940 of 2,760 outputs of a step changed between one and two threads). Here every output is
 *   s = b[o];  s = s + W[o][k] a[k][j]  for k = 0, 1, ..., K - 1
 * with a fused multiply-add on the AVX2 and AVX-512 paths (which therefore agree bit for
 * bit) and a multiply then an add on the portable one, whatever rows, columns or threads a
 * call covers. W is packed once, when a plan is made: panels of S4_AFFINE_MR rows, each the
 * panel's bias then its K columns, rows past M zero, so the hot loop reads W in order and
 * never repacks it.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CPU_AFFINE_H
#define S4_CPU_AFFINE_H

#include "cpu/cpu.h"

#include <stddef.h>

enum { S4_AFFINE_MR = 16 }; /* rows of a packed panel: one AVX-512 vector of floats */

/* Floats of the packed form of an M x K map, or 0 when that overflows. */
size_t s4__affine_packed_floats(int M, int K);

/* Wp <- the packed form of W [M x K] (row-major, leading dimension K) and b [M]. */
void s4__affine_pack(int M, int K, const float *W, const float *b, float *Wp);

/* out[(o - r0) * ldo + j] = b[o] + sum_k W[o][k] a[k * lda + j], r0 <= o < r1, j < n.
 * Wp: s4__affine_pack of K columns; 0 <= r0 <= r1 <= M. Allocates nothing. */
typedef void (*s4_affine_fn)(int K, const float *Wp, int r0, int r1, const float *a,
                             size_t lda, int n, float *out, size_t ldo);

/* The kernel of `isa` (which the CPU must run). */
s4_affine_fn s4__affine_kernel(s4_isa isa);

#endif
