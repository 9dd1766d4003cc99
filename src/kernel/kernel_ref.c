/* The slow reference kernel: K[l] = C_f^T dA^l dB by the power method in double, used to
 * validate the Cauchy path (docs/design.md section 7, "Check").
 * SPDX-License-Identifier: Apache-2.0 */
#include "ssm/diag.h"
#include "ssm/discretize.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A diagonal bank term by term: K[c][l] = scale Re sum_n C_cn w_n exp(lz_n (l - s_n)), every
 * power its own complex exponential in double (no recurrence at all). Results go to a
 * scratch copy first, so K is untouched on failure. */
static s4_status diag_reference(const char *fn, const s4_ssm *ssm, int h, int64_t L,
                                double rate, double *K, size_t ldk)
{
    const int Nh = ssm->Nh, rows = ssm->rows;
    double complex *lz = s4__alloc(2 * (size_t)Nh, sizeof *lz), *w = lz ? lz + Nh : NULL;
    double *shift = s4__calloc((size_t)Nh, sizeof *shift);
    double *out = s4__alloc((size_t)rows * (size_t)L, sizeof *out);
    s4_status st = S4_OK;
    if (!lz || !shift || !out) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for L = %lld", fn, (long long)L);
        goto done;
    }
    const bool dss = ssm->cfg.disc == S4_DISC_DSS;
    st = dss ? s4__diag_dss(ssm, h, rate, L, w, lz, shift)
             : s4__diag_modes(ssm, h, rate, NULL, lz, w);
    if (st != S4_OK)
        goto done;
    for (int c = 0; c < rows; c++) {
        const double complex *C = ssm->C + ((size_t)c * (size_t)ssm->H + (size_t)h) * Nh;
        for (int64_t l = 0; l < L; l++) {
            double acc = 0.0;
            for (int n = 0; n < Nh; n++)
                acc += creal(C[n] * w[n] * cexp(lz[n] * ((double)l - shift[n])));
            out[(size_t)c * (size_t)L + (size_t)l] = (dss ? 1.0 : 2.0) * acc;
        }
    }
    for (int c = 0; c < rows; c++)
        memcpy(K + (size_t)c * ldk, out + (size_t)c * (size_t)L, (size_t)L * sizeof *K);
done:
    s4__free(lz);
    s4__free(shift);
    s4__free(out);
    return st;
}

s4_status s4_kernel_reference(const s4_ssm *ssm, int h, int64_t L, double rate, double *K,
                              size_t ldk)
{
    static const char fn[] = "s4_kernel_reference";
    if (!ssm || !K)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !ssm ? "ssm" : "K");
    if (h < 0 || h >= ssm->H)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: h = %d must be in [0, H = %d)", fn, h,
                        ssm->H);
    if (L < 1 || L > ((int64_t)1 << 30))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be in [1, 2^30]", fn,
                        (long long)L);
    if (ldk < (size_t)L)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldk = %zu is smaller than L = %lld", fn,
                        ldk, (long long)L);
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    size_t nK = 0; /* K [C'' x ldk] doubles must be addressable */
    if (!s4__mul_size((size_t)ssm->rows, ldk, &nK) || !s4__mul_size(nK, sizeof(double), &nK))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rows x ldk doubles overflow size_t", fn);
    if (ssm->cfg.mode == S4_MODE_DIAG)
        return diag_reference(fn, ssm, h, L, rate, K, ldk);
    const int N = ssm->N, Nh = ssm->Nh, rows = ssm->rows;
    double complex *dA = s4__alloc((size_t)N * (size_t)N, sizeof *dA);
    double complex *x = s4__alloc(2 * (size_t)N, sizeof *x);
    double complex *C = s4__alloc((size_t)rows * (size_t)Nh, sizeof *C);
    double *out = s4__alloc((size_t)rows * (size_t)L, sizeof *out);
    s4_status st = S4_OK;
    if (!dA || !x || !C || !out) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for N = %d, L = %lld", fn, N,
                      (long long)L);
        goto done;
    }
    double complex *xn = x + N;
    if ((st = s4__discretize(ssm, h, rate, dA, x)) != S4_OK ||
        (st = s4__raw_C_feature(ssm, h, C)) != S4_OK)
        goto done;
    const double complex one = 1.0, zero = 0.0;
    for (int64_t l = 0; l < L; l++) {
        /* y = C_f^T x_f = 2 Re(C^T x) on the half, since x stays conjugate-symmetric. */
        for (int c = 0; c < rows; c++) {
            double complex acc = 0.0;
            for (int n = 0; n < Nh; n++)
                acc += C[(size_t)c * Nh + n] * x[n];
            out[(size_t)c * (size_t)L + (size_t)l] = 2.0 * creal(acc);
        }
        cblas_zgemv(CblasRowMajor, CblasNoTrans, N, N, &one, dA, N, x, 1, &zero, xn, 1);
        memcpy(x, xn, (size_t)N * sizeof *x);
    }
    for (int c = 0; c < rows; c++)
        memcpy(K + (size_t)c * ldk, out + (size_t)c * (size_t)L, (size_t)L * sizeof *K);
done:
    s4__free(dA);
    s4__free(x);
    s4__free(C);
    s4__free(out);
    return st;
}
