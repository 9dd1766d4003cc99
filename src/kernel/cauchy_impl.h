/* Body of the Cauchy-sum block (see cauchy.h), included once per instruction set and
 * precision by cauchy.c with S4_CAUCHY_NAME, S4_CAUCHY_T (double or float), S4_CAUCHY_TARGET,
 * S4_CAUCHY_VB (vector bytes), S4_CAUCHY_CV (vectors of nodes per accumulator chunk) and
 * S4_CAUCHY_RECIP (a vector reciprocal) defined: one source, every variant.
 *
 * Written on explicit vectors (GNU vector extension) so that the accumulators of a chunk
 * are named registers: 4 accumulators x CV vectors per sum must fit the register file with
 * the 2 CV loads of g and p g (AVX-512: 16 + 8 of 32 zmm; AVX2 and SSE2: 8 + 4 of 16).
 * SPDX-License-Identifier: Apache-2.0 */

static S4_CAUCHY_TARGET
void S4_CAUCHY_NAME(int Nh, int nsum, const S4_CAUCHY_T *restrict geo,
                    const S4_CAUCHY_T *restrict coef, const S4_CAUCHY_T *restrict y2,
                    const int *restrict skip, S4_CAUCHY_T *restrict gw,
                    S4_CAUCHY_T *restrict acc)
{
    typedef S4_CAUCHY_T vd
        __attribute__((vector_size(S4_CAUCHY_VB), aligned(sizeof(S4_CAUCHY_T)), may_alias));
    typedef S4_CAUCHY_T real;
    enum { B = S4_CAUCHY_BLOCK, V = S4_CAUCHY_VB / (int)sizeof(real), CV = S4_CAUCHY_CV };
    _Static_assert(B % (V * CV) == 0, "a block is a whole number of chunks");
    /* Phase 1: the shared reciprocal g and p g of every (n, node). */
    for (int n = 0; n < Nh; n++) {
        const real a2 = geo[2 * n], c2 = geo[2 * n + 1];
        real *restrict g = gw + (size_t)n * 2 * B, *restrict w = g + B;
        for (int j = 0; j < B; j += V) {
            const vd yy = *(const vd *)(y2 + j);
            const vd p = a2 - yy;
            const vd gj = S4_CAUCHY_RECIP(p * p + c2 * yy);
            *(vd *)(g + j) = gj;
            *(vd *)(w + j) = p * gj;
        }
        /* Pairs [skip[2n], skip[2n+1]) of the block are left out (added elsewhere). */
        if (skip)
            for (int j = skip[2 * n]; j < skip[2 * n + 1]; j++)
                g[j] = w[j] = 0;
    }
    /* Phase 2: per chunk of CV vectors of nodes and per sum, four accumulators held in
     * registers across n; n ascending in every variant, so they differ from the portable
     * one only by FMA contraction. */
    for (int j0 = 0; j0 < B; j0 += V * CV) {
        int s = 0;
        /* Two sums per pass: each load of g and p g feeds four FMAs instead of two. */
        for (; s + 1 < nsum; s += 2) {
            vd a0[CV], a1[CV], a2[CV], a3[CV], b0[CV], b1[CV], b2[CV], b3[CV];
#pragma GCC unroll 4
            for (int v = 0; v < CV; v++)
                a0[v] = a1[v] = a2[v] = a3[v] = b0[v] = b1[v] = b2[v] = b3[v] = (vd){0};
            const real *restrict ka = coef + (size_t)s * Nh * 4, *restrict kb = ka + Nh * 4;
            for (int n = 0; n < Nh; n++) {
                const real *restrict g = gw + (size_t)n * 2 * B + j0, *restrict w = g + B;
#pragma GCC unroll 4
                for (int v = 0; v < CV; v++) {
                    const vd gv = *(const vd *)(g + v * V), wv = *(const vd *)(w + v * V);
                    a0[v] += ka[4 * n] * gv;
                    a1[v] += ka[4 * n + 1] * wv;
                    a2[v] += ka[4 * n + 2] * gv;
                    a3[v] += ka[4 * n + 3] * wv;
                    b0[v] += kb[4 * n] * gv;
                    b1[v] += kb[4 * n + 1] * wv;
                    b2[v] += kb[4 * n + 2] * gv;
                    b3[v] += kb[4 * n + 3] * wv;
                }
            }
            real *restrict oa = acc + (size_t)s * 4 * B + j0, *restrict ob = oa + 4 * B;
#pragma GCC unroll 4
            for (int v = 0; v < CV; v++) {
                *(vd *)(oa + v * V) = a0[v];
                *(vd *)(oa + B + v * V) = a1[v];
                *(vd *)(oa + 2 * B + v * V) = a2[v];
                *(vd *)(oa + 3 * B + v * V) = a3[v];
                *(vd *)(ob + v * V) = b0[v];
                *(vd *)(ob + B + v * V) = b1[v];
                *(vd *)(ob + 2 * B + v * V) = b2[v];
                *(vd *)(ob + 3 * B + v * V) = b3[v];
            }
        }
        for (; s < nsum; s++) {
            vd s0[CV], s1[CV], s2[CV], s3[CV];
#pragma GCC unroll 4
            for (int v = 0; v < CV; v++)
                s0[v] = s1[v] = s2[v] = s3[v] = (vd){0};
            const real *restrict k = coef + (size_t)s * Nh * 4;
            for (int n = 0; n < Nh; n++) {
                const real *restrict g = gw + (size_t)n * 2 * B + j0, *restrict w = g + B;
#pragma GCC unroll 4
                for (int v = 0; v < CV; v++) {
                    const vd gv = *(const vd *)(g + v * V), wv = *(const vd *)(w + v * V);
                    s0[v] += k[4 * n] * gv;
                    s1[v] += k[4 * n + 1] * wv;
                    s2[v] += k[4 * n + 2] * gv;
                    s3[v] += k[4 * n + 3] * wv;
                }
            }
            real *restrict out = acc + (size_t)s * 4 * B + j0;
#pragma GCC unroll 4
            for (int v = 0; v < CV; v++) {
                *(vd *)(out + v * V) = s0[v];
                *(vd *)(out + B + v * V) = s1[v];
                *(vd *)(out + 2 * B + v * V) = s2[v];
                *(vd *)(out + 3 * B + v * V) = s3[v];
            }
        }
    }
}
