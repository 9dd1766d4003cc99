/* Body of one ISA's affine kernel (affine.h), included by affine.c with
 *   S4_AFF_NAME    the function's name
 *   S4_AFF_TARGET  its target attribute
 *   S4_AFF_VW      floats per vector, dividing S4_AFFINE_MR
 *   VT, VLOAD(p), VSTORE(p, v), VSET1(x), VMADD(w, a, s)  (s + w a, fused or not)
 *   S4_AFF_P1      panels of the one-column tile
 *   S4_AFF_PJ, S4_AFF_J  panels and columns of the wide tile
 * chosen so that the tile's accumulators, a broadcast per column and one W vector fit the
 * ISA's vector registers (16 for SSE2 and AVX2, 32 for AVX-512). It undefines them all at
 * its end, so the next ISA's block starts clean.
 * SPDX-License-Identifier: Apache-2.0 */

#define S4_AFF_PV (S4_AFFINE_MR / S4_AFF_VW) /* vectors per panel */
#define S4_AFF_TILE_MAXP (S4_AFF_P1 > S4_AFF_PJ ? S4_AFF_P1 : S4_AFF_PJ)
#define S4_AFF_CAT_(a, b) a##b
#define S4_AFF_CAT(a, b) S4_AFF_CAT_(a, b)
#define S4_AFF_TILE S4_AFF_CAT(S4_AFF_NAME, _tile)
#define S4_AFF_STORE S4_AFF_CAT(S4_AFF_NAME, _store)

/* t[j][p MR + i] = the P panels' outputs (rows p MR + i of the tile) for its J columns. */
static S4_AFF_TARGET inline __attribute__((always_inline)) void
S4_AFF_TILE(int K, const float *restrict Wp, size_t ps, const int P, const int J,
            const float *restrict a, size_t lda, float *restrict t)
{
    VT acc[S4_AFF_TILE_MAXP * S4_AFF_PV][S4_AFF_J > 1 ? S4_AFF_J : 1];
#pragma GCC unroll 16
    for (int p = 0; p < P; p++)
#pragma GCC unroll 16
        for (int v = 0; v < S4_AFF_PV; v++)
#pragma GCC unroll 8
            for (int j = 0; j < J; j++)
                acc[p * S4_AFF_PV + v][j] = VLOAD(Wp + (size_t)p * ps + (size_t)v * S4_AFF_VW);
    const float *w = Wp + S4_AFFINE_MR;
    for (int k = 0; k < K; k++, w += S4_AFFINE_MR, a += lda) {
        VT bc[S4_AFF_J > 1 ? S4_AFF_J : 1];
#pragma GCC unroll 8
        for (int j = 0; j < J; j++)
            bc[j] = VSET1(a[j]);
#pragma GCC unroll 16
        for (int p = 0; p < P; p++)
#pragma GCC unroll 16
            for (int v = 0; v < S4_AFF_PV; v++) {
                const VT wv = VLOAD(w + (size_t)p * ps + (size_t)v * S4_AFF_VW);
#pragma GCC unroll 8
                for (int j = 0; j < J; j++)
                    acc[p * S4_AFF_PV + v][j] = VMADD(wv, bc[j], acc[p * S4_AFF_PV + v][j]);
            }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; p++)
#pragma GCC unroll 16
        for (int v = 0; v < S4_AFF_PV; v++)
#pragma GCC unroll 8
            for (int j = 0; j < J; j++)
                VSTORE(t + (size_t)j * (size_t)P * S4_AFFINE_MR + (size_t)p * S4_AFFINE_MR +
                           (size_t)v * S4_AFF_VW,
                       acc[p * S4_AFF_PV + v][j]);
}

/* Rows [g0, g0 + P MR) of the tile t, columns j0 .. j0 + J - 1, into out where in [r0, r1). */
static inline void S4_AFF_STORE(const float *t, int P, int J, int g0, int r0, int r1, int j0,
                                float *out, size_t ldo)
{
    const int lo = g0 > r0 ? g0 : r0, hi = g0 + P * S4_AFFINE_MR < r1 ? g0 + P * S4_AFFINE_MR : r1;
    for (int o = lo; o < hi; o++)
        for (int j = 0; j < J; j++)
            out[(size_t)(o - r0) * ldo + (size_t)(j0 + j)] =
                t[(size_t)j * (size_t)P * S4_AFFINE_MR + (size_t)(o - g0)];
}

static S4_AFF_TARGET void S4_AFF_NAME(int K, const float *Wp, int r0, int r1, const float *a,
                                      size_t lda, int n, float *out, size_t ldo)
{
    if (r1 <= r0 || n <= 0)
        return;
    const size_t ps = ((size_t)K + 1) * S4_AFFINE_MR;
    const int p0 = r0 / S4_AFFINE_MR, p1 = (r1 + S4_AFFINE_MR - 1) / S4_AFFINE_MR;
    float t[S4_AFF_TILE_MAXP * S4_AFFINE_MR * (S4_AFF_J > 1 ? S4_AFF_J : 1)]
        __attribute__((aligned(64)));
    int j = 0;
    for (; j + S4_AFF_J <= n && S4_AFF_J > 1; j += S4_AFF_J) {
        int p = p0;
        for (; p + S4_AFF_PJ <= p1; p += S4_AFF_PJ) {
            S4_AFF_TILE(K, Wp + (size_t)p * ps, ps, S4_AFF_PJ, S4_AFF_J, a + j, lda, t);
            S4_AFF_STORE(t, S4_AFF_PJ, S4_AFF_J, p * S4_AFFINE_MR, r0, r1, j, out, ldo);
        }
        for (; p < p1; p++) {
            S4_AFF_TILE(K, Wp + (size_t)p * ps, ps, 1, S4_AFF_J, a + j, lda, t);
            S4_AFF_STORE(t, 1, S4_AFF_J, p * S4_AFFINE_MR, r0, r1, j, out, ldo);
        }
    }
    for (; j < n; j++) {
        int p = p0;
        for (; p + S4_AFF_P1 <= p1; p += S4_AFF_P1) {
            S4_AFF_TILE(K, Wp + (size_t)p * ps, ps, S4_AFF_P1, 1, a + j, lda, t);
            S4_AFF_STORE(t, S4_AFF_P1, 1, p * S4_AFFINE_MR, r0, r1, j, out, ldo);
        }
        for (; p < p1; p++) {
            S4_AFF_TILE(K, Wp + (size_t)p * ps, ps, 1, 1, a + j, lda, t);
            S4_AFF_STORE(t, 1, 1, p * S4_AFFINE_MR, r0, r1, j, out, ldo);
        }
    }
}

#undef S4_AFF_PV
#undef S4_AFF_TILE_MAXP
#undef S4_AFF_TILE
#undef S4_AFF_STORE
#undef S4_AFF_NAME
#undef S4_AFF_TARGET
#undef S4_AFF_VW
#undef S4_AFF_P1
#undef S4_AFF_PJ
#undef S4_AFF_J
#undef VT
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VMADD
