/* The Cauchy-sum hot loop of kernel generation (DESIGN.md section 7.3; see cauchy.h for the
 * real-arithmetic form on imaginary nodes).
 * SPDX-License-Identifier: Apache-2.0 */
#include "cauchy.h"

#define BLK S4_CAUCHY_BLOCK

/* GCC/Clang emit one clone per ISA and pick one at load time from cpuid, so the build
 * needs no -march flag and the same binary runs everywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(S4_NO_MULTIVERSION)
#define S4_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define S4_CLONES
#endif

S4_CLONES
void s4__cauchy_block(int Nh, int nsum, const double *restrict geo, const double *restrict coef,
                      const double *restrict y2, double *restrict gw, double *restrict acc)
{
    /* Phase 1: the shared reciprocal g and p g of every (n, node). */
    for (int n = 0; n < Nh; n++) {
        const double a2 = geo[2 * n], c2 = geo[2 * n + 1];
        double *restrict g = gw + (size_t)n * 2 * BLK, *restrict w = g + BLK;
        for (int j = 0; j < BLK; j++) {
            const double p = a2 - y2[j];
            const double gj = 1.0f / (p * p + c2 * y2[j]);
            g[j] = gj;
            w[j] = p * gj;
        }
    }
    /* Phase 2: one sum at a time, its four accumulators held across the n loop. */
    for (int s = 0; s < nsum; s++) {
        double s0[BLK] = {0}, s1[BLK] = {0}, s2[BLK] = {0}, s3[BLK] = {0};
        const double *restrict k = coef + (size_t)s * Nh * 4;
        for (int n = 0; n < Nh; n++) {
            const double k0 = k[4 * n], k1 = k[4 * n + 1], k2 = k[4 * n + 2], k3 = k[4 * n + 3];
            const double *restrict g = gw + (size_t)n * 2 * BLK, *restrict w = g + BLK;
            for (int j = 0; j < BLK; j++) {
                s0[j] += k0 * g[j];
                s1[j] += k1 * w[j];
                s2[j] += k2 * g[j];
                s3[j] += k3 * w[j];
            }
        }
        double *restrict out = acc + (size_t)s * 4 * BLK;
        for (int j = 0; j < BLK; j++) {
            out[j] = s0[j];
            out[BLK + j] = s1[j];
            out[2 * BLK + j] = s2[j];
            out[3 * BLK + j] = s3[j];
        }
    }
}
