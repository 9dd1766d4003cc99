/* Normal-plus-low-rank (NPLR) form of a HiPPO matrix (docs/design.md section 3), as the
 * reference's `nplr` computes it:
 *   A + sum_r P_r P_r^T = c I + S,  S skew-symmetric,
 *   c = mean(diag(A + P P^T)),  -i S = W diag(w) W^*  (zheevd),  Lambda = c + i w,
 * eigenpairs sorted by Im(Lambda) ascending, the first N/2 (Im <= 0) kept, then
 * B <- V^* B (Im clipped to [-2, 2]) and P <- V^* P.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reference's `B_clip`: Im(V^* B) is clamped to [-B_CLIP, B_CLIP] (active for LegS). */
static const double B_CLIP = 2.0;

/* The reference treats |Lambda| below this as the FouT zero-frequency pair. */
static const double ZERO_PAIR_TOL = 1e-4;

/* Scratch of one s4_nplr call; every pointer is freed by scratch_free. */
typedef struct nplr_scratch {
    double *A, *b, *p;                  /* dense HiPPO: A [N x N], B [N], P [rank x N] */
    double complex *H;                  /* [N x N] column-major; eigenvectors on return */
    double *w;                          /* [N] eigenvalues of -i S, ascending */
    double complex *work;               /* zheevd workspaces */
    double *rwork;
    lapack_int *iwork;
    int *order;                         /* [N] sort permutation */
    double complex *Lam, *Bh, *Ph, *Vh; /* results: [Nh], [Nh], [rank x Nh], [N x Nh] */
} nplr_scratch;

static void scratch_free(nplr_scratch *s)
{
    s4__free(s->A);
    s4__free(s->b);
    s4__free(s->p);
    s4__free(s->H);
    s4__free(s->w);
    s4__free(s->work);
    s4__free(s->rwork);
    s4__free(s->iwork);
    s4__free(s->order);
    s4__free(s->Lam);
    s4__free(s->Bh);
    s4__free(s->Ph);
    s4__free(s->Vh);
}

/* Largest value a lapack_int can hold (LP64 or ILP64 builds of LAPACKE). */
static int64_t lapack_int_max(void)
{
    return sizeof(lapack_int) >= sizeof(int64_t) ? INT64_MAX : (int64_t)INT32_MAX;
}

/* Stable sort of indices 0..N-1 by w ascending. zheevd already returns ascending
 * eigenvalues, so this insertion sort is O(N) in practice; it guards the contract. */
static void stable_order(int N, const double *w, int *order)
{
    for (int i = 0; i < N; i++) {
        int j = i;
        while (j > 0 && w[order[j - 1]] > w[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

/* Eigendecomposition of -i S into s->H (eigenvectors, column-major) and s->w.
 * Reads only the strict lower triangle of AP, exactly as the reference's
 * torch.linalg.eigh(AP * -1j) (UPLO 'L'; the real part of the diagonal of -i AP is 0). */
static s4_status eigh_skew(const char *fn, int N, const double *AP, nplr_scratch *s)
{
    const size_t n = (size_t)N;
    for (size_t k = 0; k < n; k++) {
        s->H[k + k * n] = 0.0;
        for (size_t r = k + 1; r < n; r++) {
            const double a = AP[r * n + k]; /* AP[r][k], r > k */
            s->H[r + k * n] = CMPLX(0.0, -a); /* (-i AP)[r][k] */
            s->H[k + r * n] = CMPLX(0.0, a);  /* its conjugate: the matrix is Hermitian */
        }
    }

    /* Workspace query, then the decomposition with our own checked allocations. */
    double complex work_q;
    double rwork_q;
    lapack_int iwork_q;
    lapack_int info = LAPACKE_zheevd_work(LAPACK_COL_MAJOR, 'V', 'L', N, s->H, N, s->w,
                                          &work_q, -1, &rwork_q, -1, &iwork_q, -1);
    if (info != 0)
        return s4__fail(S4_ERR_NUMERICAL, "%s: zheevd workspace query failed (info = %d)", fn,
                        (int)info);
    const double lwork_d = creal(work_q), lrwork_d = rwork_q;
    if (!(lwork_d >= 1.0 && lrwork_d >= 1.0 && iwork_q >= 1) ||
        lwork_d > (double)lapack_int_max() || lrwork_d > (double)lapack_int_max())
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: N = %d: zheevd workspace is out of range",
                        fn, N);
    const lapack_int lwork = (lapack_int)lwork_d, lrwork = (lapack_int)lrwork_d;
    s->work = s4__alloc((size_t)lwork, sizeof *s->work);
    s->rwork = s4__alloc((size_t)lrwork, sizeof *s->rwork);
    s->iwork = s4__alloc((size_t)iwork_q, sizeof *s->iwork);
    if (!s->work || !s->rwork || !s->iwork)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: N = %d: out of memory for zheevd", fn, N);

    s4__blas_hold(); /* small: OpenBLAS's threads only cost (core/internal.h) */
    info = LAPACKE_zheevd_work(LAPACK_COL_MAJOR, 'V', 'L', N, s->H, N, s->w, s->work, lwork,
                               s->rwork, lrwork, s->iwork, iwork_q);
    s4__blas_release();
    if (info != 0)
        return s4__fail(S4_ERR_NUMERICAL, "%s: zheevd failed for N = %d (info = %d)", fn, N,
                        (int)info);
    return S4_OK;
}

/* Everything after validation; results land in s->Lam, s->Bh, s->Ph, s->Vh. */
static s4_status nplr_compute(const char *fn, s4_measure measure, int N, int rank,
                              nplr_scratch *s)
{
    const size_t n = (size_t)N, Nh = n / 2, r = (size_t)rank;
    s4_status st = s4_hippo(measure, N, rank, s->A, s->b, s->p);
    if (st != S4_OK)
        return st;

    /* AP = A + sum_r P_r P_r^T (the correction summed first, as the reference does). */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n; k++) {
            double pp = 0.0;
            for (size_t j = 0; j < r; j++)
                pp += s->p[j * n + i] * s->p[j * n + k];
            s->A[i * n + k] += pp;
        }
    }
    double c = 0.0;
    for (size_t i = 0; i < n; i++)
        c += s->A[i * n + i];
    c /= (double)N;

    if ((st = eigh_skew(fn, N, s->A, s)) != S4_OK)
        return st;

    stable_order(N, s->w, s->order);
    for (size_t j = 0; j < Nh; j++) {
        const int col = s->order[j];
        s->Lam[j] = CMPLX(c, s->w[col]);
        for (size_t i = 0; i < n; i++)
            s->Vh[i * Nh + j] = s->H[i + (size_t)col * n];
    }

    /* FouT: the zero-frequency block of A + P P^T is the 2 x 2 zero block on (e0, e1), a
     * doubly degenerate eigenvalue 0 for which zheevd returns an arbitrary basis of
     * span(e0, e1). The kept vector v must have conj(v) as its partner, so it is set to
     * (e0 + i e1)/sqrt2, the reference's choice. The reference applies this whenever
     * |Lambda[N/2-1]| < 1e-4, whatever the measure; for LagT, whose smallest |Im Lambda| is
     * tan(pi/(2N))/2, that would corrupt a genuine eigenvector for N > ~7850, so libs4
     * restricts it to FouT, where the pair is structural (same result for every N where the
     * reference itself runs). */
    if (measure == S4_MEASURE_FOUT) {
        if (cabs(s->Lam[Nh - 1]) >= ZERO_PAIR_TOL)
            return s4__fail(S4_ERR_NUMERICAL,
                            "%s: FouT N = %d: the zero-frequency eigenvalue came out as "
                            "%g%+gi",
                            fn, N, creal(s->Lam[Nh - 1]), cimag(s->Lam[Nh - 1]));
        for (size_t i = 0; i < n; i++)
            s->Vh[i * Nh + Nh - 1] = 0.0;
        s->Vh[0 * Nh + Nh - 1] = CMPLX(sqrt(0.5), 0.0);
        s->Vh[1 * Nh + Nh - 1] = CMPLX(0.0, sqrt(0.5));
    }

    /* B <- V^* B with Im clipped, P <- V^* P (row by row). */
    for (size_t j = 0; j < Nh; j++) {
        double complex acc = 0.0;
        for (size_t i = 0; i < n; i++)
            acc += conj(s->Vh[i * Nh + j]) * s->b[i];
        const double im = fmin(fmax(cimag(acc), -B_CLIP), B_CLIP);
        s->Bh[j] = CMPLX(creal(acc), im);
        for (size_t q = 0; q < r; q++) {
            double complex pq = 0.0;
            for (size_t i = 0; i < n; i++)
                pq += conj(s->Vh[i * Nh + j]) * s->p[q * n + i];
            s->Ph[q * Nh + j] = pq;
        }
    }

    for (size_t j = 0; j < Nh; j++) {
        if (!isfinite(creal(s->Lam[j])) || !isfinite(cimag(s->Lam[j])) ||
            !isfinite(creal(s->Bh[j])) || !isfinite(cimag(s->Bh[j])))
            return s4__fail(S4_ERR_NUMERICAL, "%s: N = %d: non-finite eigenvalue or B[%zu]",
                            fn, N, j);
    }
    return S4_OK;
}

s4_status s4_nplr(s4_measure measure, int N, int rank, double *Lambda, double *P, double *B,
                  double *V)
{
    static const char fn[] = "s4_nplr";
    const int natural = s4_measure_rank(measure);
    if (natural < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: measure = %d is not an s4_measure", fn,
                        (int)measure);
    if (N < 2 || N % 2 != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: N = %d must be even and >= 2", fn, N);
    /* Ranks above the natural one pad P with zero rows (the reference allows any). */
    if (rank < natural || rank > S4_MAX_RANK)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: rank = %d must be in [%d, %d] (the measure's natural rank up to "
                        "S4_MAX_RANK)",
                        fn, rank, natural, S4_MAX_RANK);

    /* N x N complex scratch, and zheevd's largest workspace 1 + 5N + 2N^2 must fit in a
     * lapack_int. */
    const size_t n = (size_t)N, Nh = n / 2;
    size_t NN, bytes;
    if (!s4__mul_size(n, n, &NN) || !s4__mul_size(NN, sizeof(double complex), &bytes) ||
        2 * (int64_t)N * (int64_t)N + 5 * (int64_t)N + 1 > lapack_int_max())
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: N = %d: the N x N eigenproblem is too large", fn, N);

    nplr_scratch s = {0};
    s.A = s4__alloc(NN, sizeof *s.A);
    s.b = s4__alloc(n, sizeof *s.b);
    s.p = s4__alloc((size_t)rank * n, sizeof *s.p);
    s.H = s4__alloc(NN, sizeof *s.H);
    s.w = s4__alloc(n, sizeof *s.w);
    s.order = s4__alloc(n, sizeof *s.order);
    s.Lam = s4__alloc(Nh, sizeof *s.Lam);
    s.Bh = s4__alloc(Nh, sizeof *s.Bh);
    s.Ph = s4__alloc((size_t)rank * Nh, sizeof *s.Ph);
    s.Vh = s4__alloc(n * Nh, sizeof *s.Vh);
    s4_status st;
    if (!s.A || !s.b || !s.p || !s.H || !s.w || !s.order || !s.Lam || !s.Bh || !s.Ph || !s.Vh)
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: N = %d: out of memory", fn, N);
    else
        st = nplr_compute(fn, measure, N, rank, &s);

    /* Outputs are written only once everything has succeeded. */
    if (st == S4_OK) {
        if (Lambda)
            memcpy(Lambda, s.Lam, Nh * sizeof *s.Lam);
        if (B)
            memcpy(B, s.Bh, Nh * sizeof *s.Bh);
        if (P)
            memcpy(P, s.Ph, (size_t)rank * Nh * sizeof *s.Ph);
        if (V)
            memcpy(V, s.Vh, n * Nh * sizeof *s.Vh);
    }
    scratch_free(&s);
    return st;
}
