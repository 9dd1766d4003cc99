/* Block Vandermonde evaluation, the S4D kernel's hot path (docs/design.md section 10):
 *   K[r][l] = Re sum_n c[r][n] exp(lz_n (l - s_n)),   l < L, r < rows.
 * Powers never come from L repeated multiplications: with blocks of T steps,
 *   exp(lz (l0 + j - s)) = exp(lz (l0 + g (T-1) - s)) * exp(lz (j - g (T-1)))
 * (g = 1 for a growing mode, so that both factors stay bounded), the block-start factors
 * and the in-block table come from exact complex exponentials re-anchored every
 * S4_VAND_ANCHOR steps with double-precision products in between (error <= ANCHOR ulps of
 * double, independent of L). The sum over modes is then a real matrix product in float
 *   K[r][bT + j] = sum_k W[r][b][k] Z[k][j],  k < 2 N/2:  W = [Re q, -Im q], Z = [Re z; Im z]
 * run by a register-tiled kernel compiled per instruction set.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_VANDERMONDE_H
#define S4_VANDERMONDE_H

#include "cpu/cpu.h"
#include "core/internal.h"

enum {
    S4_VAND_RB = 6,     /* block rows of one register tile */
    S4_VAND_JB = 32,    /* T is a multiple of this (two AVX-512 vectors of floats) */
    S4_VAND_ANCHOR = 16 /* exact exponentials every this many steps */
};

/* RB output rows (stride ldo) of length T: out[r][j] = sum_k W[r][k] Z[k][j], k < KD. */
typedef void (*s4_vand_tile_fn)(int KD, int T, const float *W, const float *Z, float *out,
                                size_t ldo);

typedef struct s4_vand {
    int Nh, rows;
    int64_t L;
    int T;      /* block length */
    int64_t nb; /* blocks per row, ceil(L / T) */
    s4_vand_tile_fn tile;
} s4_vand;

/* The tile kernel of `isa` (which the CPU must run). */
s4_vand_tile_fn s4__vand_tile(s4_isa isa);

/* Sizes for Nh modes, `rows` coefficient rows and L outputs; picks T and the ISA variant. */
void s4__vand_init(s4_vand *v, int Nh, int rows, int64_t L);

/* Bytes of scratch of one s4__vand_eval (64-byte aligned regions, alignment included);
 * 0 if the size overflows. */
size_t s4__vand_work_bytes(const s4_vand *v);

/* K[r * ldk + l] for r < rows, l < L. lz [Nh] exponents, shift [Nh] (NULL: all 0),
 * c [rows x Nh]. work: s4__vand_work_bytes, 64-byte aligned. Returns false (K untouched)
 * when a term would leave the float range. */
bool s4__vand_eval(const s4_vand *v, const double complex *lz, const double *shift,
                   const double complex *c, float *K, size_t ldk, void *work);

#endif
