/* Per-node work of the S4 kernel that does not grow with N (docs/design.md 7.3-7.6),
 * included once per instruction set by kernel.c with S4_KB_SFX (name suffix) and
 * S4_KB_TARGET (target attribute): the mixed path's conversion of the float sums and its
 * near pairs in double, the rank-1 Woodbury finish, and the final scaling. They are half of
 * the execute at N = 64, and built only for the baseline they ran as SSE2 on every CPU.
 * SPDX-License-Identifier: Apache-2.0 */

#define S4_KB_CAT_(a, b) a##b
#define S4_KB_CAT(a, b) S4_KB_CAT_(a, b)

/* acc <- the float block's sums, plus the near pairs [skip[2n], skip[2n+1]) of each state
 * in double. Near pairs are contiguous nodes per state, so each loop runs over j. */
static S4_KB_TARGET void S4_KB_CAT(near_, S4_KB_SFX)(int Nh, int nsum, const double *geo,
                                                     const double *coef,
                                                     const double *restrict y2,
                                                     const int *skip, const float *accf,
                                                     double *restrict acc)
{
    for (size_t i = 0; i < (size_t)nsum * 4 * BLK; i++)
        acc[i] = (double)accf[i];
    double g[BLK], pg[BLK];
    for (int n = 0; n < Nh; n++) {
        const int j0 = skip[2 * n], j1 = skip[2 * n + 1];
        if (j0 >= j1)
            continue;
        const double a2 = geo[2 * n], c2 = geo[2 * n + 1];
        for (int j = j0; j < j1; j++) {
            const double pp = a2 - y2[j];
            g[j] = 1.0 / (pp * pp + c2 * y2[j]);
            pg[j] = pp * g[j];
        }
        for (int s = 0; s < nsum; s++) {
            const double *c = coef + ((size_t)s * Nh + (size_t)n) * 4;
            double *restrict a0 = acc + (size_t)s * 4 * BLK, *restrict a1 = a0 + BLK;
            double *restrict a2s = a1 + BLK, *restrict a3 = a2s + BLK;
            for (int j = j0; j < j1; j++) {
                a0[j] += c[0] * g[j];
                a1[j] += c[1] * pg[j];
                a2s[j] += c[2] * g[j];
                a3[j] += c[3] * pg[j];
            }
        }
    }
}

/* Sum s at node j of a block in real form: r = (y^2 S0 - S1) + i y (S2 + S3). */
#define SUM_RE(acc, s, j, yy)                                                                 \
    ((yy) * (acc)[(size_t)(s) * 4 * BLK + (j)] - (acc)[(size_t)(s) * 4 * BLK + BLK + (j)])
#define SUM_IM(acc, s, j, y)                                                                  \
    ((y) * ((acc)[(size_t)(s) * 4 * BLK + 2 * BLK + (j)] +                                    \
            (acc)[(size_t)(s) * 4 * BLK + 3 * BLK + (j)]))

/* Rank 1, the common case: k = (r_CB - r_CP r_QB / (1 + r_QP)) (1 + i y / 2), one shared
 * quotient for all rows. Written in real arithmetic over the block's nodes, branch-free,
 * so that it vectorises: a scalar complex version took 40% as long as the Cauchy sums.
 * The quotient uses Smith's scaling (as crecip), selected per lane. */
static S4_KB_TARGET bool S4_KB_CAT(rank1_, S4_KB_SFX)(const s4_kernel *p, int64_t k0, int nj,
                                                     const double *restrict acc,
                                                     fftwf_complex *out)
{
    const int rows = p->rows;
    const double *restrict yv = p->y + k0;
    double zr[BLK], zi[BLK];
    bool ok = true;
    for (int j = 0; j < nj; j++) {
        const double y = yv[j], yy = y * y;
        const double a = 1.0 + SUM_RE(acc, rows * 2 + 1, j, yy);
        const double b = SUM_IM(acc, rows * 2 + 1, j, y);
        const bool big = fabs(a) >= fabs(b);
        const double num = big ? b : a, piv = big ? a : b;
        const double t = num / piv, inv = 1.0 / (piv + num * t);
        const double ir = big ? inv : t * inv, ii = big ? -t * inv : -inv; /* 1 / (a + ib) */
        ok &= fabs(a) + fabs(b) > 0.0;
        const double qr = SUM_RE(acc, rows * 2, j, yy), qi = SUM_IM(acc, rows * 2, j, y);
        zr[j] = qr * ir - qi * ii;
        zi[j] = qr * ii + qi * ir;
    }
    if (!ok)
        return false;
    for (int c = 0; c < rows; c++) {
        float *restrict o = (float *)(void *)(out + (size_t)c * p->spec_ld);
        for (int j = 0; j < nj; j++) {
            const double y = yv[j], yy = y * y;
            const double cr = SUM_RE(acc, c * 2 + 1, j, yy), ci = SUM_IM(acc, c * 2 + 1, j, y);
            const double kr = SUM_RE(acc, c * 2, j, yy) - (cr * zr[j] - ci * zi[j]);
            const double ki = SUM_IM(acc, c * 2, j, y) - (cr * zi[j] + ci * zr[j]);
            /* times (1 + i y/2) */
            o[2 * j] = (float)(kr - 0.5 * y * ki);
            o[2 * j + 1] = (float)(ki + 0.5 * y * kr);
        }
    }
    return true;
}
#undef SUM_RE
#undef SUM_IM

/* dst[l] = src[l] scale, l < L. */
static S4_KB_TARGET void S4_KB_CAT(scale_, S4_KB_SFX)(const float *restrict src, float scale,
                                                      int64_t L, float *restrict dst)
{
    for (int64_t l = 0; l < L; l++)
        dst[l] = src[l] * scale;
}

#undef S4_KB_CAT
#undef S4_KB_CAT_
