/* Bilinear discretization of the DPLR system: the dense form (docs/design.md sections 5-6) and
 * the O(N) Woodbury step form (section 6).
 * SPDX-License-Identifier: Apache-2.0 */
#include "ssm/discretize.h"
#include "ssm/diag.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Entry n of the conjugate-extended vector [x; conj x] (docs/design.md section 5). */
static inline double complex ext(const double complex *x, int Nh, int n)
{
    return n < Nh ? x[n] : conj(x[n - Nh]);
}

/* A diagonal bank in the dense conjugate-extended form: dA = diag(dA_n, conj dA_n),
 * dB = [dB_n, conj dB_n] (docs/design.md 5, 10). */
static s4_status diag_dense(const s4_ssm *s, int h, double rate, double complex *dA,
                            double complex *dB)
{
    const int N = s->N, Nh = s->Nh;
    if (s->cfg.disc == S4_DISC_DSS)
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "s4_ssm_discretize: disc dss defines a kernel, not a discrete system "
                        "(the reference has no dss step)");
    double complex *m = s4__alloc(2 * (size_t)Nh, sizeof *m);
    if (!m)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "s4_ssm_discretize: out of memory");
    const s4_status st = s4__diag_modes(s, h, rate, m, NULL, m + Nh);
    if (st == S4_OK) {
        if (dA) {
            memset(dA, 0, (size_t)N * (size_t)N * sizeof *dA);
            for (int n = 0; n < Nh; n++) {
                dA[(size_t)n * N + n] = m[n];
                dA[(size_t)(n + Nh) * N + n + Nh] = conj(m[n]);
            }
        }
        if (dB)
            for (int n = 0; n < Nh; n++) {
                dB[n] = m[Nh + n];
                dB[n + Nh] = conj(m[Nh + n]);
            }
    }
    s4__free(m);
    return st;
}

s4_status s4__discretize(const s4_ssm *s, int h, double rate, double complex *dA,
                         double complex *dB)
{
    if (s->cfg.mode == S4_MODE_DIAG)
        return diag_dense(s, h, rate, dA, dB);
    const int N = s->N, Nh = s->Nh, r = s->rank, k = s4__copy_of(s, h);
    const double dt = s->dt[h] * rate;
    const double complex *Lam = s->Lambda + (size_t)k * Nh;
    const double complex *B = s->B + (size_t)k * Nh;
    const size_t ld = (size_t)N + 1;

    double complex *M = s4__alloc((size_t)N * (size_t)N, sizeof *M);
    double complex *X = s4__alloc((size_t)N * ld, sizeof *X);
    lapack_int *ipiv = s4__alloc((size_t)N, sizeof *ipiv);
    s4_status st = S4_OK;
    if (!M || !X || !ipiv) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "s4_ssm_discretize: out of memory for N = %d", N);
        goto done;
    }
    /* A = diag(Lambda_f) - P_f P_f^H; M = I - dt/2 A; X = [I + dt/2 A | dt B_f]. */
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            double complex a = i == j ? ext(Lam, Nh, i) : 0.0;
            for (int q = 0; q < r; q++) {
                const double complex *P = s->P + ((size_t)q * (size_t)s->S + (size_t)k) * Nh;
                a -= ext(P, Nh, i) * conj(ext(P, Nh, j));
            }
            const double id = i == j ? 1.0 : 0.0;
            M[(size_t)i * N + j] = id - 0.5 * dt * a;
            X[(size_t)i * ld + j] = id + 0.5 * dt * a;
        }
        X[(size_t)i * ld + N] = dt * ext(B, Nh, i);
    }
    s4__blas_hold(); /* a 64 x 64 system: OpenBLAS's threads only cost (core/internal.h) */
    const lapack_int info = LAPACKE_zgesv(LAPACK_ROW_MAJOR, N, N + 1, M, N, ipiv, X, (int)ld);
    s4__blas_release();
    if (info != 0) {
        st = s4__fail(S4_ERR_NUMERICAL,
                      "s4_ssm_discretize: I - dt/2 A of feature %d is singular (zgesv info %d)",
                      h, (int)info);
        goto done;
    }
    for (int i = 0; i < N; i++) {
        if (dA)
            memcpy(dA + (size_t)i * N, X + (size_t)i * ld, (size_t)N * sizeof *dA);
        if (dB)
            dB[i] = X[(size_t)i * ld + N];
    }
done:
    s4__free(M);
    s4__free(X);
    s4__free(ipiv);
    return st;
}

s4_status s4_ssm_discretize(const s4_ssm *ssm, int h, double rate, double *dA, double *dB)
{
    static const char fn[] = "s4_ssm_discretize";
    if (!ssm)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ssm is NULL", fn);
    if (h < 0 || h >= ssm->H)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: h = %d must be in [0, H = %d)", fn, h,
                        ssm->H);
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    if (!dA && !dB)
        return S4_OK;
    /* Into scratch first, so a failure leaves the caller's arrays untouched. */
    const size_t NN = (size_t)ssm->N * (size_t)ssm->N;
    double complex *A = s4__alloc(NN + (size_t)ssm->N, sizeof *A);
    if (!A)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for N = %d", fn, ssm->N);
    const s4_status st = s4__discretize(ssm, h, rate, A, A + NN);
    if (st == S4_OK) {
        if (dA)
            memcpy(dA, A, NN * sizeof *A);
        if (dB)
            memcpy(dB, A + NN, (size_t)ssm->N * sizeof *A);
    }
    s4__free(A);
    return st;
}

s4_status s4__matrix_power(int N, const double complex *A, int64_t e, double complex *M,
                           double complex *scratch)
{
    const size_t NN = (size_t)N * (size_t)N;
    const double complex one = 1.0, zero = 0.0;
    double complex *base = scratch, *tmp = scratch + NN;
    memcpy(base, A, NN * sizeof *base); /* A may alias M */
    bool have = false;
    s4__blas_hold(); /* N x N products: OpenBLAS's threads only cost (core/internal.h) */
    while (e > 0) {
        if (e & 1) {
            if (!have) {
                memcpy(M, base, NN * sizeof *M);
                have = true;
            } else {
                cblas_zgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, &one, M, N,
                            base, N, &zero, tmp, N);
                memcpy(M, tmp, NN * sizeof *M);
            }
        }
        e >>= 1;
        if (e > 0) {
            cblas_zgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, &one, base, N,
                        base, N, &zero, tmp, N);
            memcpy(base, tmp, NN * sizeof *base);
        }
    }
    s4__blas_release();
    if (!have) {
        memset(M, 0, NN * sizeof *M);
        for (int i = 0; i < N; i++)
            M[(size_t)i * N + i] = 1.0;
    }
    return S4_OK;
}

/* docs/design.md section 6 on the stored half: every sum over the conjugate-extended space of a
 * conjugate-symmetric product is 2 Re of the sum over the half. */
s4_status s4__linear_setup(const s4_ssm *s, int h, double rate, s4_linear_step *out)
{
    if (s->cfg.mode == S4_MODE_DIAG) {
        /* Rank 0: x' = Dg (E x + 2 B u) is the diagonal recurrence with Dg = 1, E = dA,
         * B = dB / 2, so every O(N) step path serves S4D unchanged. */
        if (s->cfg.disc == S4_DISC_DSS)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "disc dss defines a kernel, not a recurrence (the reference has no "
                            "dss step)");
        out->Nh = s->Nh;
        out->rank = 0;
        const s4_status st = s4__diag_modes(s, h, rate, out->E, NULL, out->B);
        for (int n = 0; st == S4_OK && n < s->Nh; n++) {
            out->Dg[n] = 1.0;
            out->B[n] *= 0.5;
        }
        return st;
    }
    const int Nh = s->Nh, r = s->rank, k = s4__copy_of(s, h);
    const double dt = s->dt[h] * rate;
    out->Nh = Nh;
    out->rank = r;
    for (int n = 0; n < Nh; n++) {
        const double complex lam = s->Lambda[(size_t)k * Nh + n];
        out->Dg[n] = 1.0 / (2.0 / dt - lam);
        out->E[n] = 2.0 / dt + lam;
        out->B[n] = s->B[(size_t)k * Nh + n];
        for (int q = 0; q < r; q++) {
            const double complex p = s->P[((size_t)q * (size_t)s->S + (size_t)k) * Nh + n];
            out->P[(size_t)q * Nh + n] = p;
            out->Q[(size_t)q * Nh + n] = conj(p);
        }
    }
    /* G = I_r + Q_f^T D_f P_f (real r x r), then R = G^-1 (Q^T D) on the half. */
    double G[S4_LINEAR_MAX_RANK * S4_LINEAR_MAX_RANK];
    double complex *R = out->R;
    for (int i = 0; i < r; i++) {
        for (int j = 0; j < r; j++) {
            double complex acc = 0.0;
            for (int n = 0; n < Nh; n++)
                acc += out->Q[(size_t)i * Nh + n] * out->Dg[n] * out->P[(size_t)j * Nh + n];
            G[i * r + j] = (i == j ? 1.0 : 0.0) + 2.0 * creal(acc);
        }
        for (int n = 0; n < Nh; n++)
            R[(size_t)i * Nh + n] = out->Q[(size_t)i * Nh + n] * out->Dg[n];
    }
    lapack_int ipiv[S4_LINEAR_MAX_RANK];
    /* Real G, complex right-hand sides: factor once, solve real and imaginary parts. */
    lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, r, r, G, r, ipiv);
    if (info == 0) {
        double *Rre = s4__alloc((size_t)r * (size_t)Nh * 2, sizeof *Rre);
        if (!Rre)
            return s4__fail(S4_ERR_OUT_OF_MEMORY, "linear step setup: out of memory");
        double *Rim = Rre + (size_t)r * Nh;
        for (size_t i = 0; i < (size_t)r * Nh; i++) {
            Rre[i] = creal(R[i]);
            Rim[i] = cimag(R[i]);
        }
        info = LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'N', r, Nh, G, r, ipiv, Rre, Nh);
        if (info == 0)
            info = LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'N', r, Nh, G, r, ipiv, Rim, Nh);
        for (size_t i = 0; i < (size_t)r * Nh; i++)
            R[i] = CMPLX(Rre[i], Rim[i]);
        s4__free(Rre);
    }
    if (info != 0)
        return s4__fail(S4_ERR_NUMERICAL,
                        "linear step setup: I + Q^T D P of feature %d is singular (info %d)", h,
                        (int)info);
    return S4_OK;
}

void s4__linear_step(const s4_linear_step *p, const double complex *x, double u,
                     double complex *x_out)
{
    const int Nh = p->Nh, r = p->rank;
    double qx[S4_LINEAR_MAX_RANK], rw[S4_LINEAR_MAX_RANK];
    /* w = E x - P (Q_f^T x_f) + 2 B u, with Q_f^T x_f = 2 Re(Q^T x). */
    for (int q = 0; q < r; q++) {
        double complex acc = 0.0;
        for (int n = 0; n < Nh; n++)
            acc += p->Q[(size_t)q * Nh + n] * x[n];
        qx[q] = 2.0 * creal(acc);
    }
    for (int n = 0; n < Nh; n++) {
        double complex w = p->E[n] * x[n] + 2.0 * p->B[n] * u;
        for (int q = 0; q < r; q++)
            w -= p->P[(size_t)q * Nh + n] * qx[q];
        x_out[n] = w;
    }
    /* x' = D (w - P (R_f w_f)), R_f w_f = 2 Re(R w). */
    for (int q = 0; q < r; q++) {
        double complex acc = 0.0;
        for (int n = 0; n < Nh; n++)
            acc += p->R[(size_t)q * Nh + n] * x_out[n];
        rw[q] = 2.0 * creal(acc);
    }
    for (int n = 0; n < Nh; n++) {
        double complex w = x_out[n];
        for (int q = 0; q < r; q++)
            w -= p->P[(size_t)q * Nh + n] * rw[q];
        x_out[n] = p->Dg[n] * w;
    }
}
