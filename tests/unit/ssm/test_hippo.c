/* HiPPO matrices and their NPLR form (docs/design.md sections 2-3): s4_measure_rank, s4_hippo,
 * s4_nplr against the reference's float64 golden data (testdata/hippo), the exact
 * reconstruction of A from (Lambda, P, V) over a sweep of N, and argument validation.
 * The worst figures of each family are printed (golden_report after the golden tests);
 * S4_TEST_VERBOSE=1 in the environment adds per-case figures of the sweep.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include "core/internal.h"

#include <complex.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct golden_case {
    s4_measure measure;
    const char *name; /* file prefix: legs, legt, lagt, fourier */
    int N;
} golden_case;

static const golden_case golden_cases[] = {
    {S4_MEASURE_LEGS, "legs", 8},    {S4_MEASURE_LEGS, "legs", 16},
    {S4_MEASURE_LEGS, "legs", 64},   {S4_MEASURE_LEGT, "legt", 8},
    {S4_MEASURE_LEGT, "legt", 16},   {S4_MEASURE_LEGT, "legt", 64},
    {S4_MEASURE_LAGT, "lagt", 8},    {S4_MEASURE_LAGT, "lagt", 16},
    {S4_MEASURE_LAGT, "lagt", 64},   {S4_MEASURE_FOUT, "fourier", 8},
    {S4_MEASURE_FOUT, "fourier", 16}, {S4_MEASURE_FOUT, "fourier", 64},
};
enum { N_GOLDEN = sizeof golden_cases / sizeof *golden_cases };

static const s4_measure all_measures[] = {S4_MEASURE_LEGS, S4_MEASURE_LEGT, S4_MEASURE_LAGT,
                                          S4_MEASURE_FOUT};
enum { N_MEASURES = sizeof all_measures / sizeof *all_measures };

/* Worst figures seen, printed at the end of each family (the numbers the report quotes). */
static void note(const char *what, double err)
{
    print_message("  %-44s %.3e\n", what, err);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    assert_non_null(p);
    return p;
}

/* Loads tensor `name` and checks its element count. */
static double *load(const char *path, const char *name, size_t want)
{
    size_t n = 0;
    double *x = s4t_load_tensor(path, name, &n);
    if (n != want)
        fail_msg("%s: tensor %s has %zu elements, expected %zu", path, name, n, want);
    return x;
}

static double complex *as_c(double *x) { return (double complex *)x; }

/* ---- s4_measure_rank and s4__init_rank ------------------------------------------ */

static void test_measure_rank(void **state)
{
    (void)state;
    assert_int_equal(s4_measure_rank(S4_MEASURE_LEGS), 1);
    assert_int_equal(s4_measure_rank(S4_MEASURE_LEGT), 2);
    assert_int_equal(s4_measure_rank(S4_MEASURE_LAGT), 1);
    assert_int_equal(s4_measure_rank(S4_MEASURE_FOUT), 1);
    assert_int_equal(s4_measure_rank((s4_measure)99), -1);
    assert_int_equal(s4_measure_rank((s4_measure)-1), -1);

    assert_int_equal(s4__init_rank(S4_INIT_LEGS), 1);
    assert_int_equal(s4__init_rank(S4_INIT_LEGT), 2);
    assert_int_equal(s4__init_rank(S4_INIT_LAGT), 1);
    assert_int_equal(s4__init_rank(S4_INIT_FOUT), 1);
    assert_int_equal(s4__init_rank(S4_INIT_HIPPO), 1);
    assert_int_equal(s4__init_rank((s4_init)99), -1);
}

/* ---- golden data: dense A, B, P ------------------------------------------------- */

static double worst_dense = 0.0, worst_dense_fout_P = 0.0;

static void test_golden_hippo(void **state)
{
    const golden_case *g = *state;
    const int N = g->N, r = s4_measure_rank(g->measure);
    const size_t n = (size_t)N;
    char path[S4T_PATH_MAX];
    s4t_path(path, "hippo/%s_N%d.safetensors", g->name, N);

    double *A = xcalloc(n * n, sizeof *A), *B = xcalloc(n, sizeof *B);
    double *P = xcalloc((size_t)r * n, sizeof *P);
    assert_int_equal(s4_hippo(g->measure, N, r, A, B, P), S4_OK);

    double *gA = load(path, "A", n * n), *gB = load(path, "B", n);
    double *gP = load(path, "P_lowrank", (size_t)r * n);
    assert_allclose(A, gA, n * n, 0.0, 1e-12, "A");
    assert_allclose(B, gB, n, 0.0, 1e-12, "B");
    worst_dense = fmax(worst_dense, s4t_max_rel_err(A, gA, n * n));
    worst_dense = fmax(worst_dense, s4t_max_rel_err(B, gB, n));
    if (g->measure == S4_MEASURE_FOUT) {
        /* The reference builds the FouT correction in float32 (its P_lowrank is F32:
         * sqrt2 -> 1.41421353816986), libs4 in double: agreement to float32 rounding. */
        assert_allclose(P, gP, (size_t)r * n, 0.0, 1e-7, "P (FouT, float32 reference)");
        worst_dense_fout_P = fmax(worst_dense_fout_P, s4t_max_rel_err(P, gP, (size_t)r * n));
    } else {
        assert_allclose(P, gP, (size_t)r * n, 0.0, 1e-12, "P");
        worst_dense = fmax(worst_dense, s4t_max_rel_err(P, gP, (size_t)r * n));
    }
    free(A), free(B), free(P), free(gA), free(gB), free(gP);
}

/* ---- golden data: NPLR ---------------------------------------------------------- */

static double worst_lambda = 0.0, worst_lambda_fout = 0.0, worst_V = 0.0, worst_PB = 0.0,
              worst_inv = 0.0, worst_V_fout = 0.0, worst_PB_fout = 0.0, worst_inv_fout = 0.0;

static void test_golden_nplr(void **state)
{
    const golden_case *g = *state;
    const int N = g->N, Nh = N / 2, r = s4_measure_rank(g->measure);
    const size_t n = (size_t)N, nh = (size_t)Nh, rr = (size_t)r;
    char path[S4T_PATH_MAX];
    s4t_path(path, "hippo/%s_N%d.safetensors", g->name, N);

    double *Lam = xcalloc(2 * nh, sizeof *Lam), *P = xcalloc(2 * rr * nh, sizeof *P);
    double *B = xcalloc(2 * nh, sizeof *B), *V = xcalloc(2 * n * nh, sizeof *V);
    assert_int_equal(s4_nplr(g->measure, N, r, Lam, P, B, V), S4_OK);

    double *gw = load(path, "w", 2 * nh), *gP = load(path, "P", 2 * rr * nh);
    double *gB = load(path, "B_nplr", 2 * nh), *gBn = load(path, "B_nplr_noclip", 2 * nh);
    double *gV = load(path, "V", 2 * n * nh);

    /* Lambda: relative to max |Lambda|. The reference's FouT real part is -4.5e-8 to
     * -5.8e-8 (its float32 rank correction) where the exact value is 0, so for FouT the
     * real parts get an absolute 1e-7 and only the imaginary parts the 1e-10. */
    if (g->measure == S4_MEASURE_FOUT) {
        double scale = s4t_max_abs(gw, 2 * nh), err_im = 0.0, err_re = 0.0;
        for (size_t j = 0; j < nh; j++) {
            err_re = fmax(err_re, fabs(Lam[2 * j] - gw[2 * j]));
            err_im = fmax(err_im, fabs(Lam[2 * j + 1] - gw[2 * j + 1]) / scale);
            assert_true(Lam[2 * j] == 0.0); /* exact: diag(A + P P^T) is exactly 0 */
        }
        assert_rel_err(err_im, 1e-10, "Im Lambda (FouT)");
        assert_true(err_re <= 1e-7);
        worst_lambda = fmax(worst_lambda, err_im);
        worst_lambda_fout = fmax(worst_lambda_fout, err_re);
    } else {
        const double err = s4t_max_rel_err(Lam, gw, 2 * nh);
        assert_rel_err(err, 1e-10, "Lambda");
        worst_lambda = fmax(worst_lambda, err);
    }
    /* Sorted by imaginary part ascending, all kept ones with Im <= 0. */
    for (size_t j = 0; j < nh; j++) {
        assert_true(Lam[2 * j + 1] <= 1e-12);
        if (j > 0)
            assert_true(Lam[2 * j - 1] <= Lam[2 * j + 1]);
    }

    double complex *cV = as_c(V), *cgV = as_c(gV), *cP = as_c(P), *cB = as_c(B);

    /* Our own consistency, phase-free: B = clip(V^* b), P = V^* p with b, p from
     * s4_hippo (so the clip is tested whatever LAPACK's phases are). */
    double *b = xcalloc(n, sizeof *b), *p = xcalloc(rr * n, sizeof *p);
    assert_int_equal(s4_hippo(g->measure, N, r, NULL, b, p), S4_OK);
    double complex *Bn = xcalloc(nh, sizeof *Bn); /* our unclipped V^* b */
    for (size_t j = 0; j < nh; j++) {
        for (size_t i = 0; i < n; i++)
            Bn[j] += conj(cV[i * nh + j]) * b[i];
        assert_true(fabs(creal(cB[j]) - creal(Bn[j])) <= 1e-12 * (1.0 + cabs(Bn[j])));
        assert_true(fabs(cimag(cB[j]) - fmin(fmax(cimag(Bn[j]), -2.0), 2.0)) <=
                    1e-12 * (1.0 + cabs(Bn[j])));
        for (size_t q = 0; q < rr; q++) {
            double complex pq = 0.0;
            for (size_t i = 0; i < n; i++)
                pq += conj(cV[i * nh + j]) * p[q * n + i];
            assert_true(cabs(cP[q * nh + j] - pq) <= 1e-12 * (1.0 + cabs(pq)));
        }
    }

    /* Eigenvectors are unique up to one phase per column (the eigenvalues are distinct;
     * FouT's degenerate zero pair is pinned to (e0 + i e1)/sqrt2 by both): take the
     * golden's phase phi_j (V_gold[:, j] = phi_j V[:, j]); then P_gold = conj(phi_j) P, and
     * likewise B. The clipped golden B is compared with clip(conj(phi) V^* b), i.e. what
     * libs4 returns once its phase is the reference's.
     * Tolerances: 1e-10 relative to the array's max, except FouT. The reference builds the
     * FouT correction in float32 (sqrt2 -> 1.41421353816986), which perturbs its A + P P^T
     * by ~1e-8: its eigenvectors carry up to ~3e-8 leakage between blocks (V gets 1e-7),
     * and its B = V^* b, P = V^* p inherit that as |v^* b - v_ref^* b| <= ||v - v_ref|| ||b||
     * plus, for P, ||p - p_ref|| (the float32 rounding of p itself). Those bounds are
     * computed from the data below; all FouT arrays are O(1), so they serve as relative. */
    const bool fout = g->measure == S4_MEASURE_FOUT;
    double tol = 1e-10, tolB = 1e-10, tolP = 1e-10;
    if (fout) {
        double *gp = load(path, "P_lowrank", rr * n);
        double dp = 0.0, nb = 0.0, np = 0.0, dv = 0.0;
        for (size_t i = 0; i < rr * n; i++) {
            dp += (p[i] - gp[i]) * (p[i] - gp[i]);
            np += p[i] * p[i];
        }
        for (size_t i = 0; i < n; i++)
            nb += b[i] * b[i];
        for (size_t j = 0; j < nh; j++) { /* ||phi_j v_j - v_ref,j||_2 */
            double complex phi = 0.0;
            for (size_t i = 0; i < n; i++)
                phi += conj(cV[i * nh + j]) * cgV[i * nh + j];
            phi /= cabs(phi);
            double d = 0.0;
            for (size_t i = 0; i < n; i++)
                d += pow(cabs(phi * cV[i * nh + j] - cgV[i * nh + j]), 2);
            dv = fmax(dv, sqrt(d));
        }
        free(gp);
        tol = 1e-7;
        tolB = 1e-12 + dv * sqrt(nb);
        tolP = 1e-12 + dv * sqrt(np) + sqrt(dp);
    }
    if (fout) {
        const double complex s = sqrt(0.5);
        assert_true(cV[0 * nh + nh - 1] == s);
        assert_true(cV[1 * nh + nh - 1] == I * s);
        for (size_t i = 2; i < n; i++)
            assert_true(cV[i * nh + nh - 1] == 0.0);
    }
    double *Va = xcalloc(2 * n * nh, sizeof *Va), *Pa = xcalloc(2 * rr * nh, sizeof *Pa);
    double *Ba = xcalloc(2 * nh, sizeof *Ba), *Bc = xcalloc(2 * nh, sizeof *Bc);
    for (size_t j = 0; j < nh; j++) {
        double complex phi = 0.0;
        for (size_t i = 0; i < n; i++)
            phi += conj(cV[i * nh + j]) * cgV[i * nh + j];
        assert_true(cabs(phi) > 0.5);
        phi /= cabs(phi);
        for (size_t i = 0; i < n; i++)
            as_c(Va)[i * nh + j] = phi * cV[i * nh + j];
        for (size_t q = 0; q < rr; q++)
            as_c(Pa)[q * nh + j] = conj(phi) * cP[q * nh + j];
        const double complex bj = conj(phi) * Bn[j];
        as_c(Ba)[j] = bj;
        as_c(Bc)[j] = CMPLX(creal(bj), fmin(fmax(cimag(bj), -2.0), 2.0));
    }
    const double eV = s4t_max_rel_err(Va, gV, 2 * n * nh);
    const double eP = s4t_max_rel_err(Pa, gP, 2 * rr * nh);
    const double eB = s4t_max_rel_err(Ba, gBn, 2 * nh);
    const double eBc = s4t_max_rel_err(Bc, gB, 2 * nh);
    assert_rel_err(eV, tol, "V (phase-aligned)");
    assert_rel_err(eP, tolP, "P (phase-aligned)");
    assert_rel_err(eB, tolB, "B unclipped (phase-aligned)");
    assert_rel_err(eBc, tolB, "B clipped (phase-aligned)");
    double *worst_v = fout ? &worst_V_fout : &worst_V;
    double *worst_pb = fout ? &worst_PB_fout : &worst_PB;
    *worst_v = fmax(*worst_v, eV);
    *worst_pb = fmax(*worst_pb, fmax(eP, fmax(eB, eBc)));
    free(Va), free(Pa), free(Ba), free(Bc);

    /* Phase-invariant products, index by index (what the kernel's Cauchy sums consume):
     * P_q[j] conj(P_s[j]), B[j] conj(P_q[j]) and |B[j]|^2 (unclipped B). */
    const double complex *cgP = as_c(gP), *cgBn = as_c(gBn);
    double e_inv = 0.0, scale = 0.0;
    for (size_t j = 0; j < nh; j++) {
        for (size_t q = 0; q < rr; q++) {
            for (size_t t = 0; t < rr; t++) {
                const double complex want = cgP[q * nh + j] * conj(cgP[t * nh + j]);
                e_inv = fmax(e_inv, cabs(cP[q * nh + j] * conj(cP[t * nh + j]) - want));
                scale = fmax(scale, cabs(want));
            }
            const double complex want = cgBn[j] * conj(cgP[q * nh + j]);
            e_inv = fmax(e_inv, cabs(Bn[j] * conj(cP[q * nh + j]) - want));
            scale = fmax(scale, cabs(want));
        }
        const double want = creal(cgBn[j] * conj(cgBn[j]));
        e_inv = fmax(e_inv, fabs(creal(Bn[j] * conj(Bn[j])) - want));
        scale = fmax(scale, want);
    }
    e_inv /= scale;
    /* |x y^* - x_ref y_ref^*| <= |x - x_ref| |y| + |x_ref| |y - y_ref|, |.| <= ~1.5 here. */
    assert_rel_err(e_inv, fout ? 3.0 * (tolB + tolP) : 1e-10, "P P^*, B P^*, B B^* per index");
    double *worst_i = fout ? &worst_inv_fout : &worst_inv;
    *worst_i = fmax(*worst_i, e_inv);

    free(Lam), free(P), free(B), free(V), free(gw), free(gP), free(gB), free(gBn), free(gV);
    free(b), free(p), free(Bn);
}

static void test_golden_report(void **state)
{
    (void)state;
    print_message("hippo golden: worst figures (max abs error / max abs golden)\n");
    note("A, B, P (legs/legt/lagt, A and B FouT)", worst_dense);
    note("P FouT vs float32 reference", worst_dense_fout_P);
    note("Lambda (FouT: imaginary part)", worst_lambda);
    note("Re Lambda FouT, absolute (reference -5e-8)", worst_lambda_fout);
    note("V phase-aligned", worst_V);
    note("P, B, clipped B phase-aligned", worst_PB);
    note("P P^*, B P^*, B B^* per index", worst_inv);
    note("FouT V phase-aligned", worst_V_fout);
    note("FouT P, B, clipped B phase-aligned", worst_PB_fout);
    note("FouT P P^*, B P^*, B B^* per index", worst_inv_fout);
}

/* ---- reconstruction over a sweep of N ------------------------------------------- */

static double worst_rec = 0.0, worst_orth = 0.0, worst_normal = 0.0;

/* For N in {2, ..., 256} and every measure, at the natural rank and one padded rank:
 *   - A + P^T P = c I + skew (the premise of section 3);
 *   - V_f = [V, conj V] is unitary;
 *   - V_f (diag(Lambda_f) - P_f P_f^H) V_f^H = A (section 5) to 1e-10 relative, with
 *     P_f = [P; conj P] the NPLR P (never clipped), evaluated as
 *     2 Re(V diag(Lambda) V^*) - sum_q u_q u_q^T, u_q = V_f P_f[:, q] = 2 Re(V P_q):
 *     the same expression with the conjugate halves summed in closed form. */
static void test_reconstruction(void **state)
{
    (void)state;
    static const int Ns[] = {2, 4, 8, 16, 64, 128, 256};
    for (size_t mi = 0; mi < N_MEASURES; mi++) {
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
            const s4_measure m = all_measures[mi];
            const int N = Ns[ni], Nh = N / 2, nat = s4_measure_rank(m);
            for (int r = nat; r <= nat + 1; r++) {
                const size_t n = (size_t)N, nh = (size_t)Nh, rr = (size_t)r;
                double *A = xcalloc(n * n, sizeof *A), *p = xcalloc(rr * n, sizeof *p);
                double complex *Lam = xcalloc(nh, sizeof *Lam);
                double complex *P = xcalloc(rr * nh, sizeof *P);
                double complex *V = xcalloc(n * nh, sizeof *V);
                assert_int_equal(s4_hippo(m, N, r, A, NULL, p), S4_OK);
                assert_int_equal(
                    s4_nplr(m, N, r, (double *)Lam, (double *)P, NULL, (double *)V), S4_OK);
                const double Amax = s4t_max_abs(A, n * n);

                /* Padded rows of P are zero, here and in the NPLR P. */
                for (size_t q = (size_t)nat; q < rr; q++) {
                    for (size_t i = 0; i < n; i++)
                        assert_true(p[q * n + i] == 0.0);
                    for (size_t j = 0; j < nh; j++)
                        assert_true(P[q * nh + j] == 0.0);
                }

                /* A + P^T P = c I + skew. */
                double en = 0.0, c = 0.0;
                for (size_t i = 0; i < n; i++) {
                    double d = A[i * n + i];
                    for (size_t q = 0; q < rr; q++)
                        d += p[q * n + i] * p[q * n + i];
                    c += d / (double)N;
                }
                for (size_t i = 0; i < n; i++)
                    for (size_t k = 0; k <= i; k++) {
                        double s = A[i * n + k] + A[k * n + i];
                        for (size_t q = 0; q < rr; q++)
                            s += 2.0 * p[q * n + i] * p[q * n + k];
                        en = fmax(en, fabs(s - (i == k ? 2.0 * c : 0.0)) / Amax);
                    }
                assert_rel_err(en, 1e-13, "A + P^T P = c I + skew");
                worst_normal = fmax(worst_normal, en);
                for (size_t j = 0; j < nh; j++)
                    assert_true(fabs(creal(Lam[j]) - c) <= 1e-13 * Amax);

                /* V^* V = I and V^T V = 0 (conj V spans the other half). */
                double eh = 0.0, et = 0.0;
                for (size_t j = 0; j < nh; j++)
                    for (size_t l = 0; l < nh; l++) {
                        double complex h = 0.0, t = 0.0;
                        for (size_t i = 0; i < n; i++) {
                            h += conj(V[i * nh + j]) * V[i * nh + l];
                            t += V[i * nh + j] * V[i * nh + l];
                        }
                        eh = fmax(eh, cabs(h - (j == l ? 1.0 : 0.0)));
                        et = fmax(et, cabs(t));
                    }
                if (getenv("S4_TEST_VERBOSE"))
                    print_message("m %d N %4d r %d: normal %.2e V^*V %.2e V^TV %.2e\n",
                                  (int)m, N, r, en, eh, et);
                /* V^* V is zheevd's orthonormality (N eps). V^T V pairs each kept vector with
                 * the conjugate of another, i.e. two separately computed eigenvectors of
                 * -i S for w and -w': their error is eps ||S|| / |w + w'|, largest for
                 * LegS (1.3e-12 at N = 256, where ||S|| ~ 2N and min |w| ~ 0.2). The
                 * reference (same zheevd) has the same figure. */
                assert_rel_err(eh, 1e-13, "V^* V = I");
                assert_rel_err(et, 1e-11, "V^T V = 0");
                worst_orth = fmax(worst_orth, fmax(eh, et));

                /* A_rec. */
                double *u = xcalloc(rr * n, sizeof *u);
                for (size_t q = 0; q < rr; q++)
                    for (size_t i = 0; i < n; i++) {
                        double complex s = 0.0;
                        for (size_t j = 0; j < nh; j++)
                            s += V[i * nh + j] * P[q * nh + j];
                        u[q * n + i] = 2.0 * creal(s);
                    }
                double er = 0.0;
                for (size_t i = 0; i < n; i++)
                    for (size_t k = 0; k < n; k++) {
                        double complex s = 0.0;
                        for (size_t j = 0; j < nh; j++)
                            s += V[i * nh + j] * Lam[j] * conj(V[k * nh + j]);
                        double a = 2.0 * creal(s);
                        for (size_t q = 0; q < rr; q++)
                            a -= u[q * n + i] * u[q * n + k];
                        er = fmax(er, fabs(a - A[i * n + k]));
                    }
                er /= Amax;
                char what[96];
                snprintf(what, sizeof what, "A reconstruction, measure %d, N %d, rank %d",
                         (int)m, N, r);
                assert_rel_err(er, 1e-10, what);
                worst_rec = fmax(worst_rec, er);
                free(A), free(p), free(Lam), free(P), free(V), free(u);
            }
        }
    }
    print_message("hippo reconstruction: worst figures over N = 2..256, 4 measures\n");
    note("A_rec vs A (max abs / max |A|)", worst_rec);
    note("V_f^H V_f - I (max abs; V^T V part)", worst_orth);
    note("A + P^T P - (c I + skew) (max abs / max |A|)", worst_normal);
}

/* Odd N for the non-FouT measures: s4_hippo only (s4_nplr needs N even). */
static void test_hippo_odd_N(void **state)
{
    (void)state;
    for (size_t mi = 0; mi < 3; mi++) {
        const s4_measure m = all_measures[mi];
        for (int N = 1; N <= 9; N += 2) {
            const int r = s4_measure_rank(m);
            double A[81], B[9], P[18];
            assert_int_equal(s4_hippo(m, N, r, A, B, P), S4_OK);
            double c = 0.0;
            for (int i = 0; i < N; i++) {
                double d = A[i * N + i];
                for (int q = 0; q < r; q++)
                    d += P[q * N + i] * P[q * N + i];
                c += d / N;
            }
            for (int i = 0; i < N; i++)
                for (int k = 0; k < N; k++) {
                    double s = A[i * N + k] + A[k * N + i];
                    for (int q = 0; q < r; q++)
                        s += 2.0 * P[q * N + i] * P[q * N + k];
                    assert_true(fabs(s - (i == k ? 2.0 * c : 0.0)) <= 1e-13 * (2.0 * N));
                }
        }
    }
}

/* NULL outputs are allowed, and each output alone equals the same output of a full call. */
static void test_null_outputs(void **state)
{
    (void)state;
    const int N = 16, Nh = 8, r = 2;
    assert_int_equal(s4_hippo(S4_MEASURE_LEGT, N, r, NULL, NULL, NULL), S4_OK);
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, NULL, NULL, NULL, NULL), S4_OK);
    double L1[2 * Nh], P1[2 * r * Nh], B1[2 * Nh], V1[2 * N * Nh];
    double L2[2 * Nh], P2[2 * r * Nh], B2[2 * Nh], V2[2 * N * Nh];
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, L1, P1, B1, V1), S4_OK);
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, L2, NULL, NULL, NULL), S4_OK);
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, NULL, P2, NULL, NULL), S4_OK);
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, NULL, NULL, B2, NULL), S4_OK);
    assert_int_equal(s4_nplr(S4_MEASURE_LEGT, N, r, NULL, NULL, NULL, V2), S4_OK);
    assert_memory_equal(L1, L2, sizeof L1);
    assert_memory_equal(P1, P2, sizeof P1);
    assert_memory_equal(B1, B2, sizeof B1);
    assert_memory_equal(V1, V2, sizeof V1);
}

/* ---- invalid arguments ---------------------------------------------------------- */

enum { SENT_N = 4096 };
static const double SENTINEL = -12345.678;

static void fill(double *x) { for (int i = 0; i < SENT_N; i++) x[i] = SENTINEL; }
static void assert_untouched(const double *x)
{
    for (int i = 0; i < SENT_N; i++)
        if (x[i] != SENTINEL)
            fail_msg("output element %d was written by a failing call", i);
}

/* The last error must mention `word` (the offending argument). */
static void assert_message_names(const char *word)
{
    if (!strstr(s4_last_error(), word))
        fail_msg("last error \"%s\" does not name \"%s\"", s4_last_error(), word);
}

#define CHECK_HIPPO_FAILS(want, word, m, N, r)                                              \
    do {                                                                                    \
        fill(A), fill(B), fill(P);                                                          \
        assert_fails(want, s4_hippo(m, N, r, A, B, P));                                     \
        assert_message_names(word);                                                         \
        assert_untouched(A), assert_untouched(B), assert_untouched(P);                      \
    } while (0)

#define CHECK_NPLR_FAILS(want, word, m, N, r)                                               \
    do {                                                                                    \
        fill(A), fill(B), fill(P), fill(V);                                                 \
        assert_fails(want, s4_nplr(m, N, r, A, P, B, V));                                   \
        assert_message_names(word);                                                         \
        assert_untouched(A), assert_untouched(B), assert_untouched(P), assert_untouched(V); \
    } while (0)

static void test_invalid_arguments(void **state)
{
    (void)state;
    double *A = xcalloc(SENT_N, sizeof *A), *B = xcalloc(SENT_N, sizeof *B);
    double *P = xcalloc(SENT_N, sizeof *P), *V = xcalloc(SENT_N, sizeof *V);

    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "measure", (s4_measure)99, 8, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "measure", (s4_measure)-1, 8, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "N = 0", S4_MEASURE_LEGS, 0, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "N = -3", S4_MEASURE_LAGT, -3, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "N = 7", S4_MEASURE_FOUT, 7, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 1", S4_MEASURE_LEGT, 8, 1);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 0", S4_MEASURE_LEGS, 8, 0);
    CHECK_HIPPO_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 65", S4_MEASURE_LEGS, 8, 65);
    /* A [N x N] cannot exist: its byte size overflows size_t. */
    CHECK_HIPPO_FAILS(S4_ERR_OUT_OF_MEMORY, "N = 2147483646", S4_MEASURE_LEGS, INT_MAX - 1, 1);

    CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "measure", (s4_measure)99, 8, 1);
    CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "N = 0", S4_MEASURE_LEGS, 0, 1);
    for (size_t mi = 0; mi < N_MEASURES; mi++) {
        CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "N = 7", all_measures[mi], 7, 2);
        CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "N = 1", all_measures[mi], 1, 2);
    }
    CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 1", S4_MEASURE_LEGT, 8, 1);
    CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 0", S4_MEASURE_FOUT, 8, 0);
    CHECK_NPLR_FAILS(S4_ERR_INVALID_ARGUMENT, "rank = 65", S4_MEASURE_LAGT, 8, 65);
    /* Too large for the eigensolver's workspace (and for memory): refused before any
     * allocation. */
    CHECK_NPLR_FAILS(S4_ERR_OUT_OF_MEMORY, "N = 40000", S4_MEASURE_LEGS, 40000, 1);
    CHECK_NPLR_FAILS(S4_ERR_OUT_OF_MEMORY, "N = 2147483646", S4_MEASURE_LEGS, INT_MAX - 1, 1);

    free(A), free(B), free(P), free(V);
}

int main(int argc, char **argv)
{
    s4t_suite s = {0};
    s4t_suite_add(&s, "measure_rank", test_measure_rank, NULL);
    char name[64];
    for (size_t i = 0; i < N_GOLDEN; i++) {
        snprintf(name, sizeof name, "golden_hippo/%s_N%d", golden_cases[i].name,
                 golden_cases[i].N);
        s4t_suite_add(&s, name, test_golden_hippo, (void *)&golden_cases[i]);
    }
    for (size_t i = 0; i < N_GOLDEN; i++) {
        snprintf(name, sizeof name, "golden_nplr/%s_N%d", golden_cases[i].name,
                 golden_cases[i].N);
        s4t_suite_add(&s, name, test_golden_nplr, (void *)&golden_cases[i]);
    }
    s4t_suite_add(&s, "golden_report", test_golden_report, NULL);
    s4t_suite_add(&s, "reconstruction", test_reconstruction, NULL);
    s4t_suite_add(&s, "hippo_odd_N", test_hippo_odd_N, NULL);
    s4t_suite_add(&s, "null_outputs", test_null_outputs, NULL);
    s4t_suite_add(&s, "invalid_arguments", test_invalid_arguments, NULL);
    return s4t_suite_run(&s, "hippo", argc, argv);
}
