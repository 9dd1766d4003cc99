/* Body of the Vandermonde register tile (see vandermonde.h), included once per instruction
 * set by vandermonde.c with S4_VAND_NAME, S4_VAND_TARGET and S4_VAND_VB (vector bytes):
 * RB block rows x two vectors of outputs in registers, one pass over the KD = N reals.
 * SPDX-License-Identifier: Apache-2.0 */

static S4_VAND_TARGET void S4_VAND_NAME(int KD, int T, const float *restrict W,
                                        const float *restrict Z, float *restrict out,
                                        size_t ldo)
{
    typedef float vf __attribute__((vector_size(S4_VAND_VB), aligned(4), may_alias));
    enum { V = S4_VAND_VB / (int)sizeof(float), RB = S4_VAND_RB };
    for (int j0 = 0; j0 < T; j0 += 2 * V) {
        vf a0[RB], a1[RB];
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
            a0[r] = a1[r] = (vf){0};
        for (int k = 0; k < KD; k++) {
            const vf z0 = *(const vf *)(Z + (size_t)k * T + j0);
            const vf z1 = *(const vf *)(Z + (size_t)k * T + j0 + V);
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) {
                const float w = W[(size_t)r * KD + k];
                a0[r] += w * z0;
                a1[r] += w * z1;
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) {
            *(vf *)(out + (size_t)r * ldo + j0) = a0[r];
            *(vf *)(out + (size_t)r * ldo + j0 + V) = a1[r];
        }
    }
}
