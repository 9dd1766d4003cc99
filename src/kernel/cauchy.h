/* Cauchy sums of the S4 kernel on purely imaginary nodes (docs/design.md section 7.3).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CAUCHY_H
#define S4_CAUCHY_H

#include <stddef.h>

/* Precision. All in float32 the per-sum coefficients are rounded independently, which
 * breaks the exact cancellation of a pole's residues inside the Woodbury combination
 * (docs/design.md 7.4): for LegT/FouT poles (Re Lambda = -1e-4) a node that lands within a
 * relative distance delta of a pole leaves an error of eps_f32 / delta in k; measured
 * 1.8e-4 relative for LegT N = 64 against the power method. In double the same sweep is
 * 2.3e-7 (the final float32 rounding of K). The kernel's default is mixed (kernel.c): the
 * pairs within a relative distance rho of their pole in double, all others by the float
 * block below, so that eps_f32 / rho bounds the float part's error (the kernel option
 * precision = S4_PRECISION_DOUBLE selects the all-double block).
 *
 * Nodes per block: the accumulators of one sum over one block stay in registers. */
enum { S4_CAUCHY_BLOCK = 32 };

/* With z = i y (bilinear nodes are purely imaginary: z_k = 2 i tan(pi k / Ld)) and
 * a = dt Lambda_n, v = dt X_n Y_n, the term pair of docs/design.md 7.3 becomes
 *   (2Re(v) z - 2Re(v conj a)) / ((z - a)(z - conj a))
 *     = g [(alpha c y^2 - beta p) + i y (beta c + alpha p)],
 * p = |a|^2 - y^2, c = -2 Re(a), g = 1 / (p^2 + c^2 y^2), alpha = 2Re(v), beta = 2Re(v conj a).
 * So per (n, node) one reciprocal serves every sum, and each sum needs four real
 * accumulators: S0 += (alpha c) g, S1 += beta (p g), S2 += (beta c) g, S3 += alpha (p g);
 * then r = (y^2 S0 - S1) + i y (S2 + S3).
 *
 * geo  [Nh x 2]          |a_n|^2, c_n^2
 * coef [nsum x Nh x 4]   alpha c, beta, beta c, alpha of sum s at state n
 * y2   [S4_CAUCHY_BLOCK] squared node ordinates of the block
 * skip [Nh x 2] or NULL  block-local nodes [skip[2n], skip[2n+1]) left out for state n
 * gw   [Nh x 2 x BLOCK]  scratch
 * acc  [nsum x 4 x BLOCK] output: S0..S3 of every sum, every node of the block. */
typedef void (*s4_cauchy_block_fn)(int Nh, int nsum, const double *geo, const double *coef,
                                   const double *y2, const int *skip, double *gw,
                                   double *acc);

/* The same block in float: the kernel's mixed precision evaluates in float every
 * (n, node) pair farther than a relative distance S4_CAUCHY_RHO from its pole, where a
 * pair's float error eps32 |term| stays within eps32 / rho of the sum, and adds the few
 * pairs nearer than that in double, where float would break the pole-residue cancellation
 * described above (kernel.c). skip [Nh x 2] (or NULL): block-local node range [skip[2n],
 * skip[2n+1]) of state n left out of the sums (its g and p g zeroed between the phases). */
typedef void (*s4_cauchy_block_f_fn)(int Nh, int nsum, const float *geo, const float *coef,
                                     const float *y2, const int *skip, float *gw, float *acc);

#include "cpu/cpu.h"


/* Variants compiled in, indexed by s4_isa: i-th name and its double and float blocks
 * (either out-pointer may be NULL), or NULL when variant i does not exist or this CPU
 * cannot run it. */
int s4__cauchy_variant_count(void);
const char *s4__cauchy_variant(int i, s4_cauchy_block_fn *fn, s4_cauchy_block_f_fn *fn_f);

/* The variant of the dispatcher's ISA (s4__cpu_isa): its double block; *name receives its
 * name and *fn_f its float block (either may be NULL). */
s4_cauchy_block_fn s4__cauchy_select(const char **name, s4_cauchy_block_f_fn *fn_f);

#endif
