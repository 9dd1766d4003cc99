/* Recurrent step mode (docs/design.md section 9): the discretized system of every feature,
 * set up once in double, then stepped one input at a time with the state in the caller's
 * buffer. Three forms of the same recurrence x_t = dA x_{t-1} + dB u_t,
 * y_t = 2 Re(C^T x_t) + D u_t (the update comes before the output, as in the reference's
 * SSMKernelDPLR.step), C the original C (recovered from C-tilde when l_kernel > 0):
 *   dense     real N x N form in the basis r = [Re x; Im x]      O(N^2) per step
 *   linear    the O(N) Woodbury step on the stored half state     (docs/design.md 6)
 *   diagonal  the eigenbasis of dA, z = V^-1 x_f                   O(N), refused when the
 *             eigenbasis cannot keep the outputs within 1e-3 of the dense recurrence.
 * Then the channels are flattened (c h), or (h c) with swap_channels -- the reference's
 * step ignores swap_channels, a defect libs4 does not copy, so step == conv here -- and the
 * layer's head (activation, output linear, final GLU) runs on the batch's columns.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/barrier.h"
#include "cpu/cpu.h"
#include "ssm/discretize.h"
#include "layer/layer.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* COLS: (batch element, time step) columns per head call, enough
 * for sgemm to run at full speed while pre/out stay in cache. */
enum { COLS = 256 };
_Static_assert(COLS <= 256, "one head call must be one head block (s4__head_apply_split)");

/* ---- linear mode: the fused step ------------------------------------------------------
 * The Woodbury step of docs/design.md 6 (s4__linear_step) makes four passes over the state:
 * q = Q_f^T x_f, w = E x - P q + 2 B u, rw = R_f^T w_f, x' = Dg (w - P rw). Its two
 * reductions are linear in x and u, so with s_q = q_q + rw_q (real, r of them)
 *   x' = A1 x - sum_q DP_q s_q + DB u,           A1 = Dg E, DP_q = Dg P_q, DB = 2 Dg B,
 *   s_q = 2 Re(G_q^T x) + m_q u,                 G_q = R_q E + sum_p (I - M)_qp Q_p,
 *   M_qp = 2 Re(R_q^T P_p),  m_q = 4 Re(R_q^T B)
 * (sums over the half; conjugate pairs give the 2 Re). One reduction per rank from the old
 * state, then one elementwise update, instead of two reductions and two updates; all set up
 * in double from s4__linear_setup's arrays. For rank 1, I - M = 1 / (1 + 2 Re(Q^T Dg P)) and
 * G = Q (1 + A1) / (1 + 2 Re(Q^T Dg P)): no cancellation. The output is taken from the new
 * state as before, y_c = 2 Re(C_c^T x') + D_c u. The state of each (b, h) is stored split,
 * [Re x (N/2); Im x (N/2)], so the update vectorises over n; coefficient rows are padded
 * with zeros to Np. */
enum { S4_STEP_LANES = 8, S4_STEP_LANES_F = 16 }; /* row padding: 64 bytes of double, float */

/* Batch elements per pass over the features (see s4_step_run). */
enum { LIN_BCHUNK = 4 };

/* Arrays of the plan's precision: double, or float in S4_PRECISION_SINGLE plans. */
typedef struct lin_feat {
    int Nh, Np, r, Cp;
    const void *c;    /* the feature's coefficient block */
    const void *m;    /* [r] */
    const void *D;    /* D of channel 0 of the feature; channel c at D[c Ds] */
    size_t Ds;
} lin_feat;

typedef struct lin_job {
    void *x;          /* state of the first batch element; element b at x + b xs elements */
    size_t xs;
    const float *u;   /* u of (b, t) at u[b ub + t ut] */
    size_t ub, ut;
    float *y;         /* y of (c, b, t) at y[c yc + b yb + t] */
    size_t yc, yb;
    int nb;
    int64_t T;
} lin_job;

typedef void (*lin_fn)(const lin_feat *k, const lin_job *jb);

#define S4_STEP_X86 S4_CPU_X86

/* The portable variants: baseline x86-64 (SSE2) or whatever the target's default is. */
#define S4_STEP_NAME lin_step_ref
#define S4_STEP_TARGET
#define S4_STEP_T double
#define S4_STEP_VL 2
#define S4_STEP_PAD S4_STEP_LANES
#define S4_STEP_GB 2
#include "layer/step_impl.h"

#define S4_STEP_NAME lin_step_ref_f32
#define S4_STEP_T float
#define S4_STEP_VL 4
#define S4_STEP_PAD S4_STEP_LANES_F
#include "layer/step_impl.h"
#undef S4_STEP_GB
#undef S4_STEP_TARGET

#if S4_STEP_X86
#define S4_STEP_TARGET S4_TARGET_AVX2
#define S4_STEP_GB 2
#define S4_STEP_NAME lin_step_avx2
#define S4_STEP_T double
#define S4_STEP_VL 4
#define S4_STEP_PAD S4_STEP_LANES
#include "layer/step_impl.h"

#define S4_STEP_NAME lin_step_avx2_f32
#define S4_STEP_T float
#define S4_STEP_VL 8
#define S4_STEP_PAD S4_STEP_LANES_F
#include "layer/step_impl.h"
#undef S4_STEP_GB
#undef S4_STEP_TARGET

#define S4_STEP_TARGET S4_TARGET_AVX512
#define S4_STEP_GB 4
#define S4_STEP_NAME lin_step_avx512
#define S4_STEP_T double
#define S4_STEP_VL 8
#define S4_STEP_PAD S4_STEP_LANES
#include "layer/step_impl.h"

#define S4_STEP_NAME lin_step_avx512_f32
#define S4_STEP_T float
#define S4_STEP_VL 16
#define S4_STEP_PAD S4_STEP_LANES_F
#include "layer/step_impl.h"
#undef S4_STEP_GB
#undef S4_STEP_TARGET
#endif

/* The variant of the dispatcher's ISA (cpu/cpu.h) and the plan's precision, chosen at
 * create, so executes never touch cpuid. */
static lin_fn lin_select(s4_isa isa, bool single)
{
#if S4_STEP_X86
    switch (isa) {
    case S4_ISA_AVX512: return single ? lin_step_avx512_f32 : lin_step_avx512;
    case S4_ISA_AVX2: return single ? lin_step_avx2_f32 : lin_step_avx2;
    default: break;
    }
#else
    (void)isa;
#endif
    return single ? lin_step_ref_f32 : lin_step_ref;
}

/* Diagonal-mode acceptance (see diag_feature): relative output error allowed against the
 * dense recurrence, and the impulse-response horizon checked. */
#define DIAG_TOL 1e-3
enum { DIAG_STEPS_MIN = 256, DIAG_STEPS_MAX = 4096 };

struct s4_step {
    s4_step_mode mode;
    int B, H, N, Nh, rank, Cp, Fp, Fo;
    int transposed;
    int swap;             /* (h c) flattening */
    double *D;            /* [C' x H] skip term, double */
    s4_head head;         /* own copy: the plan outlives the layer */

    /* dense: r = [Re x; Im x] */
    double *Ar;           /* [H x N x N] */
    double *Br;           /* [H x N] */
    double *Cr;           /* [H x C' x N] output rows: [2 Re C, -2 Im C] */

    /* linear: the fused step (see "linear mode" below), coefficients split real/imaginary */
    double *lc;           /* [H x lstride] per feature: G, DP, A1, DB, 2C rows of Np */
    double *lm;           /* [H x rank] m_q */
    size_t lstride;       /* elements per feature in lc/lcf (64-byte blocks) */
    int Np;               /* N/2 rounded up to S4_STEP_LANES (S4_STEP_LANES_F if single) */
    lin_fn lin_run;       /* the kernel variant chosen from cpuid at create */
    s4_isa isa;           /* its instruction set */
    bool single;          /* S4_PRECISION_SINGLE: float state, coefficients and arithmetic */
    float *lcf, *lmf, *Df; /* single: lc, lm and D rounded to float (lc freed) */

    /* diagonal: z = V^-1 x_f, z' = w z + g u, y = Re(Cv^T z) */
    double complex *w;    /* [H x N] eigenvalues of dA */
    double complex *g;    /* [H x N] V^-1 dB */
    double complex *Cv;   /* [H x C' x N] V^T C_f */
    double complex *V;    /* [H x N x N] eigenvectors (state_get) */
    double complex *Vi;   /* [H x N x N] V^-1 (state_set) */

    int threads;          /* OpenMP threads of one run, splitting the features */
    size_t per;           /* elements (double, float if single) of state per (b, h) */
    size_t esz;           /* bytes of one state element */
    size_t state_size;    /* bytes */
    int nb, tb;           /* columns of one head call: nb batch elements x tb steps */
    size_t work_size;     /* bytes incl. alignment slack */
    void *own_work;
};

/* Workspace regions, each 64-byte aligned. */
typedef struct workspace {
    float *pre;   /* [Fp x nb tb] */
    float *out;   /* [Fo x nb tb] */
    float *head;  /* s4__head_scratch floats */
    double *tmp;  /* 2N doubles: the dense product / the linear step's w */
} workspace;

/* Carves the workspace from `base` (aligned); returns its size in bytes (0 on overflow,
 * checked once at plan time). */
static size_t carve(const s4_step *p, unsigned char *base, workspace *w)
{
    const size_t cols = (size_t)p->nb * (size_t)p->tb;
    s4_carver c = {base, 0, true};
#define REGION(field, type, count)                                                            \
    do {                                                                                      \
        type *r_ = s4__carve(&c, (count), sizeof(type));                                      \
        if (w)                                                                                \
            w->field = r_;                                                                    \
    } while (0)
    REGION(pre, float, (size_t)p->Fp * cols);
    REGION(out, float, (size_t)p->Fo * cols);
    REGION(head, float, s4__head_scratch(&p->head, (int64_t)cols));
    REGION(tmp, double, 2 * (size_t)p->N * (size_t)p->threads); /* one per thread */
#undef REGION
    return c.ok ? c.off : 0;
}

static void plan_free(s4_step *p)
{
    if (!p)
        return;
    s4__free(p->D);
    s4__head_free(&p->head);
    s4__free(p->Ar);
    s4__free(p->Br);
    s4__free(p->Cr);
    s4__free(p->lc);
    s4__free(p->lm);
    s4__free(p->lcf);
    s4__free(p->lmf);
    s4__free(p->Df);
    s4__free(p->w);
    s4__free(p->g);
    s4__free(p->Cv);
    s4__free(p->V);
    s4__free(p->Vi);
    s4__free(p->own_work);
    s4__free(p);
}

void s4_step_destroy(s4_step *plan) { plan_free(plan); }

size_t s4_step_state_size(const s4_step *plan) { return plan ? plan->state_size : 0; }

size_t s4_step_workspace_size(const s4_step *plan) { return plan ? plan->work_size : 0; }


/* Re-issues the message of a failed internal call with the public function's name and the
 * feature in front (s4__fail's buffer is the source, so copy it first). */
static s4_status rewrap(s4_status st, const char *fn, int h)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", s4_last_error());
    return s4__fail(st, "%s: feature %d: %s", fn, h, msg);
}

/* ---- setup of one feature, per mode ------------------------------------------------- */

/* The dense real form (docs/design.md 5). On the half state x = a + i c the conjugate-extended
 * update x_f' = dA x_f + dB u reads x' = A11 x + A12 conj(x) + b u (A11, A12 the top blocks
 * of dA, b the top half of dB), so with R = Re, I = Im:
 *   a' = (R11 + R12) a + (I12 - I11) c + Re(b) u
 *   c' = (I11 + I12) a + (R11 - R12) c + Im(b) u
 * and y = 2 Re(C^T x) = 2 Re(C) . a - 2 Im(C) . c. */
static void dense_form(int N, int Cp, const double complex *dA, const double complex *dB,
                       const double complex *C, double *Ar, double *Br, double *Cr)
{
    const int Nh = N / 2;
    for (int i = 0; i < Nh; i++) {
        for (int j = 0; j < Nh; j++) {
            const double complex a11 = dA[(size_t)i * N + j], a12 = dA[(size_t)i * N + Nh + j];
            Ar[(size_t)i * N + j] = creal(a11) + creal(a12);
            Ar[(size_t)i * N + Nh + j] = cimag(a12) - cimag(a11);
            Ar[(size_t)(Nh + i) * N + j] = cimag(a11) + cimag(a12);
            Ar[(size_t)(Nh + i) * N + Nh + j] = creal(a11) - creal(a12);
        }
        Br[i] = creal(dB[i]);
        Br[Nh + i] = cimag(dB[i]);
    }
    for (int c = 0; c < Cp; c++)
        for (int n = 0; n < Nh; n++) {
            Cr[(size_t)c * N + n] = 2.0 * creal(C[(size_t)c * Nh + n]);
            Cr[(size_t)c * N + Nh + n] = -2.0 * cimag(C[(size_t)c * Nh + n]);
        }
}

/* Scratch of the diagonal setup of one feature. */
typedef struct diag_scratch {
    double complex *A, *M, *Cf; /* [N x N], [N x N], [C' x N] */
    lapack_int *ipiv;            /* [N] */
    double *Ar, *Br, *Cr;        /* the dense form, the check's reference */
    double *r, *r2;              /* [N] dense impulse state */
    double complex *z;           /* [N] diagonal impulse state */
} diag_scratch;

/* The eigenbasis of feature h and its acceptance test.
 *
 * zgeev gives dA V = V diag(w); V^-1 by LU (zgetrf/zgetri). The state lives in z = V^-1 x_f,
 * z' = w z + (V^-1 dB) u, y = Re((V^T C_f)^T z). In exact arithmetic this is the dense
 * recurrence; in floating point the eigenbasis of a non-normal dA (HiPPO: LegS, LegT, LagT)
 * can be so ill-conditioned that nothing of the output survives, even in double (a freshly
 * initialised LegS with N = 32 already loses everything). Two figures decide:
 *  - predicted: max(rho, eps kappa), with rho = ||V diag(w) V^-1 - dA||_F / ||dA||_F, the
 *    relative distance between the system the eigenbasis actually represents and dA, and
 *    kappa = ||V||_1 ||V^-1||_1, which bounds the relative error of converting a state
 *    into the basis and back (state_set / state_get). Over fresh LegS/LegT/LagT/FouT
 *    layers with N = 8..256 the measured error below came out between 0.07 rho and 6 rho
 *    (fresh LegS: rho ~1e-11 at N = 8, ~1e-4 at N = 16, ~1e+2 at N = 32; FouT ~1e-15;
 *    trained weights stored in float32 are much better conditioned: the golden LegS N = 64
 *    layers diagonalize to ~1e-9).
 *  - measured: the impulse response y_t = 2 Re(C^T dA^t dB) of every channel for T_c steps,
 *    T_c = round(l_kernel / rate) clamped to [256, 4096], run in both the eigenbasis and the
 *    dense real form (both double); max_{c,t} |y_diag - y_dense| / max_{c,t} |y_dense|.
 *    Any output of a run from zero state is a convolution with this response, so its error
 *    is bounded by the response's error (for lags up to T_c; later lags have decayed).
 * Either above DIAG_TOL refuses the mode (S4_ERR_NUMERICAL, the figures in the message);
 * the predicted figure is tested first and skips the run when it already fails. */
static s4_status diag_feature_body(s4_step *p, int h, const double complex *dA,
                                   const double complex *dB, const double complex *C,
                                   int64_t Tc, diag_scratch *s)
{
    static const char fn[] = "s4_step_create";
    const int N = p->N, Nh = p->Nh, Cp = p->Cp;
    const size_t NN = (size_t)N * (size_t)N;
    double complex *w = p->w + (size_t)h * N, *g = p->g + (size_t)h * N;
    double complex *V = p->V + (size_t)h * NN, *Vi = p->Vi + (size_t)h * NN;
    double complex *Cv = p->Cv + (size_t)h * Cp * N;
    const double complex one = 1.0, zero = 0.0, mone = -1.0;

    memcpy(s->A, dA, NN * sizeof *s->A);
    lapack_int info = LAPACKE_zgeev(LAPACK_ROW_MAJOR, 'N', 'V', N, s->A, N, w, NULL, 1, V, N);
    if (info != 0)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: diagonal mode: the eigendecomposition of dA of feature %d failed "
                        "(zgeev info %d); use S4_STEP_LINEAR or S4_STEP_DENSE",
                        fn, h, (int)info);
    memcpy(Vi, V, NN * sizeof *Vi);
    info = LAPACKE_zgetrf(LAPACK_ROW_MAJOR, N, N, Vi, N, s->ipiv);
    if (info == 0)
        info = LAPACKE_zgetri(LAPACK_ROW_MAJOR, N, Vi, N, s->ipiv);
    if (info != 0)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: diagonal mode: the eigenvectors of dA of feature %d are linearly "
                        "dependent (dA is defective; zgetrf/zgetri info %d); use "
                        "S4_STEP_LINEAR or S4_STEP_DENSE",
                        fn, h, (int)info);
    const double kappa = LAPACKE_zlange(LAPACK_ROW_MAJOR, '1', N, N, V, N) *
                         LAPACKE_zlange(LAPACK_ROW_MAJOR, '1', N, N, Vi, N);
    /* rho = ||V diag(w) V^-1 - dA|| / ||dA||. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            s->A[(size_t)i * N + j] = s4__cmul(V[(size_t)i * N + j], w[j]);
    memcpy(s->M, dA, NN * sizeof *s->M);
    cblas_zgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, &one, s->A, N, Vi, N,
                &mone, s->M, N);
    const double nA = LAPACKE_zlange(LAPACK_ROW_MAJOR, 'F', N, N, dA, N);
    const double rho = LAPACKE_zlange(LAPACK_ROW_MAJOR, 'F', N, N, s->M, N) / (nA > 0 ? nA : 1);
    double pred = DBL_EPSILON * kappa;
    if (rho > pred || isnan(rho))
        pred = rho;
    if (!(pred <= DIAG_TOL))
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: diagonal mode refused: feature %d: the eigenbasis of dA is too "
                        "ill-conditioned (kappa(V) = %.3g, ||V diag(w) V^-1 - dA|| / ||dA|| = "
                        "%.3g): predicted relative output error %.3g > %g; use "
                        "S4_STEP_LINEAR or S4_STEP_DENSE",
                        fn, h, kappa, rho, pred, DIAG_TOL);

    /* g = V^-1 dB, Cv_c = V^T C_f,c. */
    cblas_zgemv(CblasRowMajor, CblasNoTrans, N, N, &one, Vi, N, dB, 1, &zero, g, 1);
    for (int c = 0; c < Cp; c++)
        for (int n = 0; n < N; n++)
            s->Cf[(size_t)c * N + n] =
                n < Nh ? C[(size_t)c * Nh + n] : conj(C[(size_t)c * Nh + n - Nh]);
    for (int c = 0; c < Cp; c++)
        cblas_zgemv(CblasRowMajor, CblasTrans, N, N, &one, V, N, s->Cf + (size_t)c * N, 1,
                    &zero, Cv + (size_t)c * N, 1);

    /* The measured figure: impulse response, eigenbasis against the dense real form. */
    dense_form(N, Cp, dA, dB, C, s->Ar, s->Br, s->Cr);
    memcpy(s->r, s->Br, (size_t)N * sizeof *s->r);
    memcpy(s->z, g, (size_t)N * sizeof *s->z);
    double err = 0.0, scale = 0.0;
    for (int64_t t = 0; t < Tc; t++) {
        for (int c = 0; c < Cp; c++) {
            const double yd = cblas_ddot(N, s->Cr + (size_t)c * N, 1, s->r, 1);
            double yg = 0.0;
            const double complex *cv = Cv + (size_t)c * N;
            for (int n = 0; n < N; n++)
                yg += s4__cmul_re(cv[n], s->z[n]);
            const double e = fabs(yg - yd);
            if (e > err || isnan(e))
                err = e;
            if (fabs(yd) > scale)
                scale = fabs(yd);
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, N, N, 1.0, s->Ar, N, s->r, 1, 0.0, s->r2, 1);
        memcpy(s->r, s->r2, (size_t)N * sizeof *s->r);
        for (int n = 0; n < N; n++)
            s->z[n] = s4__cmul(w[n], s->z[n]);
    }
    const double meas = scale > 0.0 ? err / scale : (err == 0.0 ? 0.0 : INFINITY);
    if (!(meas <= DIAG_TOL))
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: diagonal mode refused: feature %d: over %lld impulse-response "
                        "steps the eigenbasis is %.3g (relative to max |y|) off the dense "
                        "recurrence, above %g (kappa(V) = %.3g, ||V diag(w) V^-1 - dA|| / "
                        "||dA|| = %.3g); use S4_STEP_LINEAR or S4_STEP_DENSE",
                        fn, h, (long long)Tc, meas, DIAG_TOL, kappa, rho);
    return S4_OK;
}

/* The eigenbasis on N x N matrices: OpenBLAS's threads only cost (core/internal.h). */
static s4_status diag_feature(s4_step *p, int h, const double complex *dA,
                              const double complex *dB, const double complex *C, int64_t Tc,
                              diag_scratch *s)
{
    s4__blas_hold();
    const s4_status st = diag_feature_body(p, h, dA, dB, C, Tc, s);
    s4__blas_release();
    return st;
}

/* ---- create --------------------------------------------------------------------------- */

/* The fused linear-step coefficients of feature h (see "linear mode" at the top) from
 * s4__linear_setup's Woodbury arrays L and the raw C [C' x N/2]. */
static void lin_coef(s4_step *p, int h, const s4_linear_step *L, const double complex *C)
{
    const int Nh = p->Nh, Np = p->Np, r = p->rank, Cp = p->Cp;
    double *G = p->lc + (size_t)h * p->lstride;
    double *DP = G + (size_t)2 * r * Np;
    double *A1 = DP + (size_t)2 * r * Np, *DB = A1 + 2 * (size_t)Np, *C2 = DB + 2 * (size_t)Np;
    double *m = p->lm + (size_t)h * r;
    double M[S4_LINEAR_MAX_RANK * S4_LINEAR_MAX_RANK];
    for (int q = 0; q < r; q++) {
        const double complex *R = L->R + (size_t)q * Nh;
        double acc = 0.0;
        for (int n = 0; n < Nh; n++)
            acc += creal(R[n] * L->B[n]);
        m[q] = 4.0 * acc;
        for (int pp = 0; pp < r; pp++) {
            const double complex *P = L->P + (size_t)pp * Nh;
            acc = 0.0;
            for (int n = 0; n < Nh; n++)
                acc += creal(R[n] * P[n]);
            M[q * r + pp] = 2.0 * acc;
        }
    }
    for (int n = 0; n < Nh; n++) {
        const double complex a1 = L->Dg[n] * L->E[n], db = 2.0 * L->Dg[n] * L->B[n];
        A1[n] = creal(a1);
        A1[Np + n] = cimag(a1);
        DB[n] = creal(db);
        DB[Np + n] = cimag(db);
        for (int q = 0; q < r; q++) {
            const double complex dp = L->Dg[n] * L->P[(size_t)q * Nh + n];
            double complex g = L->R[(size_t)q * Nh + n] * L->E[n];
            for (int pp = 0; pp < r; pp++)
                g += ((q == pp ? 1.0 : 0.0) - M[q * r + pp]) * L->Q[(size_t)pp * Nh + n];
            DP[(size_t)2 * q * Np + n] = creal(dp);
            DP[(size_t)(2 * q + 1) * Np + n] = cimag(dp);
            G[(size_t)2 * q * Np + n] = creal(g);
            G[(size_t)(2 * q + 1) * Np + n] = cimag(g);
        }
        for (int c = 0; c < Cp; c++) {
            C2[(size_t)2 * c * Np + n] = 2.0 * creal(C[(size_t)c * Nh + n]);
            C2[(size_t)(2 * c + 1) * Np + n] = 2.0 * cimag(C[(size_t)c * Nh + n]);
        }
    }
}

/* Allocates every array of the plan for its mode (sizes checked by the caller). */
static s4_status plan_arrays(s4_step *p)
{
    const size_t H = (size_t)p->H, N = (size_t)p->N, Nh = (size_t)p->Nh, Cp = (size_t)p->Cp;
    const size_t r = (size_t)p->rank;
    p->D = s4__alloc(Cp * H, sizeof *p->D);
    bool ok = p->D != NULL;
    switch (p->mode) {
    case S4_STEP_DENSE:
        p->Ar = s4__alloc(H * N * N, sizeof *p->Ar);
        p->Br = s4__alloc(H * N, sizeof *p->Br);
        p->Cr = s4__alloc(H * Cp * N, sizeof *p->Cr);
        ok = ok && p->Ar && p->Br && p->Cr;
        break;
    case S4_STEP_LINEAR: {
        /* 64-byte aligned feature blocks (lstride is a multiple of 8 doubles). */
        const size_t Np = s4__round_up(Nh, p->single ? S4_STEP_LANES_F : S4_STEP_LANES);
        size_t bytes = 0;
        p->Np = (int)Np;
        p->lstride = Np * (4 * r + 4 + 2 * Cp);
        if (s4__mul_size(H * p->lstride, sizeof(double), &bytes) &&
            (p->lc = s4__malloc(bytes)) != NULL)
            memset(p->lc, 0, bytes);
        p->lm = s4__alloc(H * r, sizeof *p->lm);
        ok = ok && p->lc && p->lm;
        break;
    }
    case S4_STEP_DIAGONAL:
        p->w = s4__alloc(H * N, sizeof *p->w);
        p->g = s4__alloc(H * N, sizeof *p->g);
        p->Cv = s4__alloc(H * Cp * N, sizeof *p->Cv);
        p->V = s4__alloc(H * N * N, sizeof *p->V);
        p->Vi = s4__alloc(H * N * N, sizeof *p->Vi);
        ok = ok && p->w && p->g && p->Cv && p->V && p->Vi;
        break;
    }
    return ok ? S4_OK : S4_ERR_OUT_OF_MEMORY;
}

/* Rounds the linear coefficients, m and D of a single-precision plan to float (set up in
 * double like every plan; the double lc and lm are freed). A coefficient beyond float range
 * (a layer whose step overflows float) refuses the precision. */
static s4_status to_single(s4_step *p)
{
    const size_t nc = (size_t)p->H * p->lstride, nm = (size_t)p->H * (size_t)p->rank;
    const size_t nd = (size_t)p->H * (size_t)p->Cp;
    if (!(p->lcf = s4__alloc(nc, sizeof *p->lcf)) || !(p->lmf = s4__alloc(nm, sizeof *p->lmf)) ||
        !(p->Df = s4__alloc(nd, sizeof *p->Df)))
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "s4_step_create: out of memory");
    const struct { const double *src; float *dst; size_t n; } arr[] = {
        {p->lc, p->lcf, nc}, {p->lm, p->lmf, nm}, {p->D, p->Df, nd}};
    for (size_t a = 0; a < 3; a++)
        for (size_t i = 0; i < arr[a].n; i++) {
            if (!(fabs(arr[a].src[i]) <= FLT_MAX))
                return s4__fail(S4_ERR_NUMERICAL,
                                "s4_step_create: precision S4_PRECISION_SINGLE: a step "
                                "coefficient of feature %zu (%g) is beyond float range; use "
                                "S4_PRECISION_DOUBLE",
                                a == 0 ? i / p->lstride
                                       : a == 1 ? i / (size_t)p->rank : i % (size_t)p->H,
                                arr[a].src[i]);
            arr[a].dst[i] = (float)arr[a].src[i];
        }
    s4__free(p->lc);
    s4__free(p->lm);
    p->lc = NULL;
    p->lm = NULL;
    return S4_OK;
}

s4_status s4_step_create(const s4_layer *layer, s4_step_mode mode, int B, double rate,
                         s4_step **out)
{
    /* The same default threads as s4_step_create_with_options(NULL). */
    const s4_step_options o = {.rate = rate, .threads = 0};
    return s4_step_create_with_options(layer, mode, B, &o, out);
}

s4_status s4_step_create_with_options(const s4_layer *layer, s4_step_mode mode, int B,
                                      const s4_step_options *options, s4_step **out)
{
    static const char fn[] = "s4_step_create";
    const double rate = options ? options->rate : 1.0;
    const s4_precision prec = options ? options->precision : S4_PRECISION_MIXED;
    if (options && options->threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        options->threads);
    if (prec != S4_PRECISION_MIXED && prec != S4_PRECISION_DOUBLE &&
        prec != S4_PRECISION_SINGLE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: precision = %d is unknown (S4_PRECISION_MIXED, S4_PRECISION_DOUBLE "
                        "or S4_PRECISION_SINGLE)",
                        fn, (int)prec);
    if (!layer || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !layer ? "layer" : "out");
    if (mode != S4_STEP_DENSE && mode != S4_STEP_LINEAR && mode != S4_STEP_DIAGONAL)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: mode = %d is unknown (S4_STEP_DENSE, S4_STEP_LINEAR or "
                        "S4_STEP_DIAGONAL)",
                        fn, (int)mode);
    if (B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be >= 1", fn, B);
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    const s4_ssm *ssm = layer->ssm;
    if (layer->cfg.bidirectional)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the layer is bidirectional: its backward kernel looks at future "
                        "inputs, so it has no recurrent step mode",
                        fn);
    if (ssm->rank > S4_LINEAR_MAX_RANK)
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: rank = %d above %d", fn, ssm->rank,
                        S4_LINEAR_MAX_RANK);
    if (ssm->cfg.mode == S4_MODE_DIAG) {
        /* S4D is diagonal already: its one step is the O(N) recurrence x' = dA x + dB u,
         * which is the linear mode's fused kernel at rank 0 (s4__linear_setup). */
        if (mode != S4_STEP_DIAGONAL)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: an S4D (diagonal) layer has one step algorithm, "
                            "S4_STEP_DIAGONAL; mode = %d",
                            fn, (int)mode);
        if (ssm->cfg.disc == S4_DISC_DSS)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: disc dss defines a kernel, not a recurrence: the reference "
                            "has no dss step either",
                            fn);
        mode = S4_STEP_LINEAR;
    } else if (prec == S4_PRECISION_SINGLE && mode != S4_STEP_LINEAR) {
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: precision S4_PRECISION_SINGLE runs the linear step (and an S4D "
                        "layer's diagonal step) only; mode = %s",
                        fn, mode == S4_STEP_DENSE ? "S4_STEP_DENSE" : "S4_STEP_DIAGONAL");
    }
    const bool single = prec == S4_PRECISION_SINGLE;

    const int H = ssm->H, N = ssm->N, Nh = ssm->Nh, Cp = ssm->Cp;
    /* State: N reals (dense), N/2 complex (linear), N complex (diagonal) per (b, h), in
     * double, or float when single. Every plan array is at most H x N x N complex or
     * H x C' x N complex: check those too. */
    const size_t per = mode == S4_STEP_DIAGONAL ? 2 * (size_t)N : (size_t)N;
    const size_t esz = single ? sizeof(float) : sizeof(double);
    size_t state_size, big;
    if (!s4__mul_size((size_t)B * (size_t)H, per * esz, &state_size) ||
        !s4__mul_size((size_t)H * (size_t)N, (size_t)N * 2 * sizeof(double), &big) ||
        !s4__mul_size((size_t)H * (size_t)Cp, (size_t)N * 2 * sizeof(double), &big))
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: B = %d, H = %d, N = %d: the state or the plan overflows size_t", fn,
                        B, H, N);

    s4_step *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->mode = mode;
    p->B = B;
    p->H = H;
    p->N = N;
    p->Nh = Nh;
    p->rank = ssm->rank;
    p->Cp = Cp;
    p->Fp = layer->head.Fp;
    p->Fo = layer->head.Fo;
    p->transposed = layer->cfg.transposed;
    p->swap = layer->cfg.swap_channels && Cp > 1;
    p->per = per;
    p->esz = esz;
    p->single = single;
    p->state_size = state_size;
    p->nb = B < COLS ? B : COLS;
    p->tb = COLS / p->nb;
    /* Threads split the features: no more than there are. */
    p->threads = options && options->threads > 0 ? options->threads : omp_get_max_threads();
    if (p->threads > H)
        p->threads = H;

    s4_status st;
    double complex *dA = NULL, *dB = NULL, *C = NULL, *lin_mem = NULL;
    s4_linear_step lin = {0};
    diag_scratch ds = {0};
    if ((st = s4__head_copy(&layer->head, &p->head)) != S4_OK ||
        (st = s4__head_pack(&p->head)) != S4_OK)
        goto fail;
    const size_t NN = (size_t)N * (size_t)N;
    st = plan_arrays(p);
    dA = s4__alloc(NN, sizeof *dA);
    dB = s4__alloc((size_t)N, sizeof *dB);
    C = s4__alloc((size_t)Cp * (size_t)Nh, sizeof *C);
    if (mode == S4_STEP_LINEAR) {
        const size_t r = (size_t)ssm->rank;
        p->isa = S4_STEP_X86 ? s4__cpu_isa() : S4_ISA_PORTABLE;
        p->lin_run = lin_select(p->isa, single);
        if ((lin_mem = s4__alloc((size_t)Nh * (3 + 3 * r), sizeof *lin_mem)) != NULL)
            lin = (s4_linear_step){.Nh = Nh,
                                   .rank = (int)r,
                                   .Dg = lin_mem,
                                   .E = lin_mem + Nh,
                                   .B = lin_mem + 2 * (size_t)Nh,
                                   .P = lin_mem + 3 * (size_t)Nh,
                                   .Q = lin_mem + 3 * (size_t)Nh + r * Nh,
                                   .R = lin_mem + 3 * (size_t)Nh + 2 * r * Nh};
        else
            st = S4_ERR_OUT_OF_MEMORY;
    }
    if (mode == S4_STEP_DIAGONAL) {
        ds.A = s4__alloc(NN, sizeof *ds.A);
        ds.M = s4__alloc(NN, sizeof *ds.M);
        ds.Cf = s4__alloc((size_t)Cp * (size_t)N, sizeof *ds.Cf);
        ds.ipiv = s4__alloc((size_t)N, sizeof *ds.ipiv);
        ds.Ar = s4__alloc(NN, sizeof *ds.Ar);
        ds.Br = s4__alloc((size_t)N, sizeof *ds.Br);
        ds.Cr = s4__alloc((size_t)Cp * (size_t)N, sizeof *ds.Cr);
        ds.r = s4__alloc((size_t)N, sizeof *ds.r);
        ds.r2 = s4__alloc((size_t)N, sizeof *ds.r2);
        ds.z = s4__alloc((size_t)N, sizeof *ds.z);
        if (!ds.A || !ds.M || !ds.Cf || !ds.ipiv || !ds.Ar || !ds.Br || !ds.Cr || !ds.r ||
            !ds.r2 || !ds.z)
            st = S4_ERR_OUT_OF_MEMORY;
    }
    p->work_size = carve(p, NULL, NULL);
    if (st != S4_OK || !dA || !dB || !C || p->work_size == 0 ||
        !s4__add_size(p->work_size, S4_ALIGN, &p->work_size) ||
        !(p->own_work = s4__malloc(p->work_size))) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for H = %d, N = %d, B = %d", fn,
                      H, N, B);
        goto fail;
    }
    memcpy(p->D, ssm->D, (size_t)Cp * (size_t)H * sizeof *p->D);

    /* Impulse-response horizon of the diagonal check: the layer's trained length at this
     * rate, clamped. */
    int64_t Tc = ssm->l_kernel > 0 ? s4__round_half_even((double)ssm->l_kernel / rate) : 0;
    Tc = Tc < DIAG_STEPS_MIN ? DIAG_STEPS_MIN : Tc > DIAG_STEPS_MAX ? DIAG_STEPS_MAX : Tc;

    for (int h = 0; h < H; h++) {
        /* The original C at the trained dt (docs/design.md 9; the C-tilde relation is at
         * rate 1). */
        if ((st = s4__raw_C_feature(ssm, h, C)) != S4_OK) {
            st = rewrap(st, fn, h);
            goto fail;
        }
        if (mode == S4_STEP_LINEAR) {
            if ((st = s4__linear_setup(ssm, h, rate, &lin)) != S4_OK) {
                st = rewrap(st, fn, h);
                goto fail;
            }
            lin_coef(p, h, &lin, C);
            continue;
        }
        if ((st = s4__discretize(ssm, h, rate, dA, dB)) != S4_OK) {
            st = rewrap(st, fn, h);
            goto fail;
        }
        if (mode == S4_STEP_DENSE) {
            dense_form(N, Cp, dA, dB, C, p->Ar + (size_t)h * NN, p->Br + (size_t)h * N,
                       p->Cr + (size_t)h * Cp * N);
        } else if ((st = diag_feature(p, h, dA, dB, C, Tc, &ds)) != S4_OK) {
            goto fail;
        }
    }
    if (single && (st = to_single(p)) != S4_OK)
        goto fail;
    s4__free(dA);
    s4__free(dB);
    s4__free(C);
    s4__free(lin_mem);
    s4__free(ds.A), s4__free(ds.M), s4__free(ds.Cf), s4__free(ds.ipiv);
    s4__free(ds.Ar), s4__free(ds.Br);
    s4__free(ds.Cr), s4__free(ds.r), s4__free(ds.r2), s4__free(ds.z);
    *out = p;
    return S4_OK;

fail:
    s4__free(dA);
    s4__free(dB);
    s4__free(C);
    s4__free(lin_mem);
    s4__free(ds.A), s4__free(ds.M), s4__free(ds.Cf), s4__free(ds.ipiv);
    s4__free(ds.Ar), s4__free(ds.Br);
    s4__free(ds.Cr), s4__free(ds.r), s4__free(ds.r2), s4__free(ds.z);
    plan_free(p);
    return st;
}

/* ---- state ------------------------------------------------------------------------------ */

static s4_status check_state(const char *fn, const s4_step *p, const void *state,
                             const char *name)
{
    if (!p)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: plan is NULL", fn);
    if (!state)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    if ((uintptr_t)state % sizeof(double) != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: %s = %p is not aligned to %zu bytes (a double)", fn, name, state,
                        sizeof(double));
    return S4_OK;
}

s4_status s4_step_state_reset(const s4_step *plan, void *state)
{
    s4_status st = check_state("s4_step_state_reset", plan, state, "state");
    if (st != S4_OK)
        return st;
    memset(state, 0, plan->state_size);
    return S4_OK;
}

s4_status s4_step_state_get(const s4_step *p, const void *state, double *x)
{
    static const char fn[] = "s4_step_state_get";
    s4_status st = check_state(fn, p, state, "state");
    if (st != S4_OK)
        return st;
    if (!x)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: x is NULL", fn);
    const size_t BH = (size_t)p->B * (size_t)p->H, Nh = (size_t)p->Nh, N = (size_t)p->N;
    for (size_t bh = 0; bh < BH; bh++) {
        double *xo = x + bh * 2 * Nh;
        if (p->single) { /* linear, [Re x; Im x] in float */
            const float *sf = (const float *)state + bh * p->per;
            for (size_t n = 0; n < Nh; n++) {
                xo[2 * n] = sf[n];
                xo[2 * n + 1] = sf[Nh + n];
            }
            continue;
        }
        const double *s = (const double *)state + bh * p->per;
        switch (p->mode) {
        case S4_STEP_DENSE: /* r = [Re x; Im x] */
        case S4_STEP_LINEAR:
            for (size_t n = 0; n < Nh; n++) {
                xo[2 * n] = s[n];
                xo[2 * n + 1] = s[Nh + n];
            }
            break;
        case S4_STEP_DIAGONAL: { /* x_f = V z, first half */
            const double complex *z = (const double complex *)(const void *)s;
            const double complex *V = p->V + (bh % (size_t)p->H) * N * N;
            for (size_t n = 0; n < Nh; n++) {
                double complex acc = 0.0;
                for (size_t m = 0; m < N; m++)
                    acc += s4__cmul(V[n * N + m], z[m]);
                xo[2 * n] = creal(acc);
                xo[2 * n + 1] = cimag(acc);
            }
            break;
        }
        }
    }
    return S4_OK;
}

s4_status s4_step_state_set(const s4_step *p, void *state, const double *x)
{
    static const char fn[] = "s4_step_state_set";
    s4_status st = check_state(fn, p, state, "state");
    if (st != S4_OK)
        return st;
    if (!x)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: x is NULL", fn);
    const size_t BH = (size_t)p->B * (size_t)p->H, Nh = (size_t)p->Nh, N = (size_t)p->N;
    for (size_t bh = 0; bh < BH; bh++) {
        const double *xi = x + bh * 2 * Nh;
        for (size_t i = 0; i < 2 * Nh; i++)
            if (!(fabs(xi[i]) <= (p->single ? FLT_MAX : DBL_MAX)))
                return s4__fail(S4_ERR_INVALID_ARGUMENT,
                                "%s: x[%zu] = %g is %s (b = %zu, h = %zu)", fn, bh * 2 * Nh + i,
                                xi[i], isfinite(xi[i]) ? "beyond the float range of the plan's "
                                                         "single precision" : "not finite",
                                bh / (size_t)p->H, bh % (size_t)p->H);
    }
    for (size_t bh = 0; bh < BH; bh++) {
        const double *xi = x + bh * 2 * Nh;
        if (p->single) { /* rounded to float */
            float *sf = (float *)state + bh * p->per;
            for (size_t n = 0; n < Nh; n++) {
                sf[n] = (float)xi[2 * n];
                sf[Nh + n] = (float)xi[2 * n + 1];
            }
            continue;
        }
        double *s = (double *)state + bh * p->per;
        switch (p->mode) {
        case S4_STEP_DENSE:
        case S4_STEP_LINEAR:
            for (size_t n = 0; n < Nh; n++) {
                s[n] = xi[2 * n];
                s[Nh + n] = xi[2 * n + 1];
            }
            break;
        case S4_STEP_DIAGONAL: { /* z = V^-1 [x; conj x] */
            double complex *z = (double complex *)(void *)s;
            const double complex *Vi = p->Vi + (bh % (size_t)p->H) * N * N;
            for (size_t n = 0; n < N; n++) {
                double complex acc = 0.0;
                for (size_t m = 0; m < Nh; m++) {
                    const double complex xm = CMPLX(xi[2 * m], xi[2 * m + 1]);
                    acc += s4__cmul(Vi[n * N + m], xm) + s4__cmul(Vi[n * N + Nh + m], conj(xm));
                }
                z[n] = acc;
            }
            break;
        }
        }
    }
    return S4_OK;
}

/* ---- stepping ------------------------------------------------------------------------------ */

/* Where the T steps of one (b, h) write: pre rows f_c (c = 0..C'-1) at columns col..col+T. */
typedef struct sink {
    float *pre;
    size_t ncols, col;
} sink;

/* Row of channel c of feature h in the flattened features: (c h) or (h c). */
static inline size_t feat_row(const s4_step *p, int c, int h)
{
    return p->swap ? (size_t)h * (size_t)p->Cp + (size_t)c : (size_t)c * (size_t)p->H + (size_t)h;
}

static void advance_dense(const s4_step *p, int h, double *r, const float *u, size_t us,
                          int64_t T, const sink *o, double *tmp)
{
    const int N = p->N, Cp = p->Cp;
    const double *Ar = p->Ar + (size_t)h * N * N, *Br = p->Br + (size_t)h * N;
    const double *Cr = p->Cr + (size_t)h * Cp * N;
    for (int64_t t = 0; t < T; t++) {
        const double ut = u[(size_t)t * us];
        cblas_dgemv(CblasRowMajor, CblasNoTrans, N, N, 1.0, Ar, N, r, 1, 0.0, tmp, 1);
        for (int n = 0; n < N; n++)
            r[n] = tmp[n] + Br[n] * ut;
        for (int c = 0; c < Cp; c++) {
            const double y = cblas_ddot(N, Cr + (size_t)c * N, 1, r, 1) +
                             p->D[(size_t)c * p->H + h] * ut;
            o->pre[feat_row(p, c, h) * o->ncols + o->col + (size_t)t] = (float)y;
        }
    }
}

static void advance_diag(const s4_step *p, int h, double complex *z, const float *u, size_t us,
                         int64_t T, const sink *o)
{
    const int N = p->N, Cp = p->Cp;
    const double complex *w = p->w + (size_t)h * N, *g = p->g + (size_t)h * N;
    const double complex *Cv = p->Cv + (size_t)h * Cp * N;
    for (int64_t t = 0; t < T; t++) {
        const double ut = u[(size_t)t * us];
        for (int n = 0; n < N; n++)
            z[n] = s4__cmul(w[n], z[n]) + ut * g[n];
        for (int c = 0; c < Cp; c++) {
            const double complex *cv = Cv + (size_t)c * N;
            double acc = 0.0;
            for (int n = 0; n < N; n++)
                acc += s4__cmul_re(cv[n], z[n]);
            const double y = acc + p->D[(size_t)c * p->H + h] * ut;
            o->pre[feat_row(p, c, h) * o->ncols + o->col + (size_t)t] = (float)y;
        }
    }
}

/* The linear mode over batch elements b0 .. b0 + bb - 1 and steps t0 .. t0 + tt - 1 into
 * pre [rows x bb tt]: LIN_BCHUNK batch elements at a time through every feature, so their
 * states (N doubles per feature) stream through the cache once per step while the
 * coefficients, read once per chunk, stay in it. */
static void run_linear(const s4_step *p, void *st0, const float *u, size_t Tz, size_t t0,
                       size_t tt, size_t b0, size_t bb, float *pre, size_t h0, size_t h1)
{
    const size_t H = (size_t)p->H, ncols = bb * tt, Cs = p->swap ? 1 : H;
    const size_t r = (size_t)p->rank;
    for (size_t bc = 0; bc < bb; bc += LIN_BCHUNK) {
        const size_t b = b0 + bc, nb = bb - bc < LIN_BCHUNK ? bb - bc : LIN_BCHUNK;
        for (size_t h = h0; h < h1; h++) {
            const lin_feat k =
                p->single ? (lin_feat){p->Nh, p->Np, p->rank, p->Cp, p->lcf + h * p->lstride,
                                       p->lmf + h * r, p->Df + h, H}
                          : (lin_feat){p->Nh, p->Np, p->rank, p->Cp, p->lc + h * p->lstride,
                                       p->lm + h * r, p->D + h, H};
            const float *ub = p->transposed ? u + (b * H + h) * Tz + t0 : u + (b * Tz + t0) * H + h;
            const lin_job jb = {(unsigned char *)st0 + (b * H + h) * p->per * p->esz,
                                H * p->per,
                                ub,
                                H * Tz,
                                p->transposed ? 1 : H,
                                pre + feat_row(p, 0, (int)h) * ncols + bc * tt,
                                Cs * ncols,
                                tt,
                                (int)nb,
                                (int64_t)tt};
            p->lin_run(&k, &jb);
        }
    }
}

/* out [Fo x (bb tt)] rows o0 .. o1 - 1 -> y [b][o][t] (transposed) or y [b][t][o]. */
static void scatter_rows(const s4_step *p, const float *out, size_t ncols, size_t b0, size_t bb,
                         size_t t0, size_t tt, size_t Tz, float *y, size_t o0, size_t o1)
{
    const size_t Fo = (size_t)p->Fo;
    for (size_t bi = 0; bi < bb; bi++) {
        const size_t b = b0 + bi;
        for (size_t o = o0; o < o1; o++) {
            const float *src = out + o * ncols + bi * tt;
            if (p->transposed && tt > 1) {
                memcpy(y + (b * Fo + o) * Tz + t0, src, tt * sizeof *y);
            } else if (p->transposed) {
                y[(b * Fo + o) * Tz + t0] = src[0]; /* one step: no call per float */
            } else {
                float *dst = y + (b * Tz + t0) * Fo + o;
                for (size_t t = 0; t < tt; t++)
                    dst[t * Fo] = src[t];
            }
        }
    }
}

/* Steps t0 .. t0 + tt - 1 of batch elements b0 .. b0 + bb - 1, features h0 .. h1 - 1, into
 * pre [rows x bb tt]; tmp: 2N doubles of this thread's. */
static void advance_features(const s4_step *p, void *st0, const float *u, size_t Tz,
                             size_t t0, size_t tt, size_t b0, size_t bb, float *pre,
                             double *tmp, size_t h0, size_t h1)
{
    if (p->mode == S4_STEP_LINEAR) {
        run_linear(p, st0, u, Tz, t0, tt, b0, bb, pre, h0, h1);
        return;
    }
    const size_t H = (size_t)p->H, ncols = bb * tt;
    for (size_t h = h0; h < h1; h++)
        for (size_t bi = 0; bi < bb; bi++) {
            const size_t b = b0 + bi;
            double *xs = (double *)st0 + (b * H + h) * p->per;
            /* u[b][h][t] (transposed) or u[b][t][h]. */
            const float *ub = p->transposed ? u + (b * H + h) * Tz + t0 : u + (b * Tz + t0) * H + h;
            const size_t us = p->transposed ? 1 : H;
            const sink o = {pre, ncols, bi * tt};
            if (p->mode == S4_STEP_DENSE)
                advance_dense(p, (int)h, xs, ub, us, (int64_t)tt, &o, tmp);
            else
                advance_diag(p, (int)h, (double complex *)(void *)xs, ub, us, (int64_t)tt, &o);
        }
}

/* Thread tid's part of steps t0 .. t0 + tt - 1 of batch elements b0 .. b0 + bb - 1 (one
 * head block): its features, a barrier of the team (bar, or OpenMP's when NULL), its rows
 * of the head and of y (the split's o range). */
static void team_part(const s4_step *p, const workspace *ws, void *st0, const float *u,
                      size_t Tz, size_t t0, size_t tt, size_t b0, size_t bb, float *y,
                      s4__barrier *bar, int tid, int nt)
{
    const size_t H = (size_t)p->H, Fo = (size_t)p->Fo, ncols = bb * tt;
    const size_t T0 = (size_t)tid, NT = (size_t)nt;
    advance_features(p, st0, u, Tz, t0, tt, b0, bb, ws->pre, ws->tmp + 2 * (size_t)p->N * T0,
                     H * T0 / NT, H * (T0 + 1) / NT);
    if (bar) {
        s4__barrier_wait(bar, nt);
    } else {
#pragma omp barrier
    }
    s4__head_apply_split(&p->head, ws->pre, (int64_t)ncols, ws->out, ws->head, tid, nt);
    scatter_rows(p, ws->out, ncols, b0, bb, t0, tt, Tz, y, Fo * T0 / NT, Fo * (T0 + 1) / NT);
}

s4_status s4_step_run(const s4_step *p, void *state, const float *u, int64_t T, float *y,
                      void *work, size_t work_size)
{
    static const char fn[] = "s4_step_run";
    s4_status st = check_state(fn, p, state, "state");
    if (st != S4_OK)
        return st;
    if (!u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !u ? "u" : "y");
    size_t n_u, n_y;
    if (T < 1 || !s4__mul_size((size_t)p->B * (size_t)p->H, (size_t)T, &n_u) ||
        !s4__mul_size((size_t)p->B * (size_t)p->Fo, (size_t)T, &n_y) ||
        !s4__mul_size(n_u > n_y ? n_u : n_y, sizeof(float), &n_u))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: T = %lld must be >= 1 and the arrays [B = %d x %d x T] must fit "
                        "in memory",
                        fn, (long long)T, p->B, p->H > p->Fo ? p->H : p->Fo);
    const size_t n_in = (size_t)p->B * (size_t)p->H * (size_t)T;
    const size_t bad = s4__first_nonfinite_f(u, n_in);
    if (bad < n_in)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: u[%zu] = %g is not finite", fn, bad,
                        (double)u[bad]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;
    workspace ws;
    carve(p, base, &ws);

    const size_t Tz = (size_t)T;
    void *st0 = state;
    if (p->threads > 1)
        s4__blas_hold(); /* measured: OpenBLAS's pool spinning beside ours halved B = 16 */
    for (int64_t t0 = 0; t0 < T; t0 += p->tb) {
        const size_t tt = (size_t)(T - t0 < p->tb ? T - t0 : p->tb);
        for (int b0 = 0; b0 < p->B; b0 += p->nb) {
            const size_t bb = (size_t)(p->B - b0 < p->nb ? p->B - b0 : p->nb);
            /* Features are independent: threads take contiguous ranges of them (each
             * (b, h) state and pre row belongs to one thread); then they split the head's
             * rows (bb tt <= COLS = one head block). */
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
            team_part(p, &ws, st0, u, Tz, (size_t)t0, tt, (size_t)b0, bb, y, NULL,
                      omp_get_thread_num(), omp_get_num_threads());
        }
    }
    if (p->threads > 1)
        s4__blas_release();
    return S4_OK;
}

static s4_isa p_isa(const s4_step *p)
{
    return p->mode == S4_STEP_LINEAR ? p->isa : S4_ISA_PORTABLE;
}

s4_status s4_step_info(const s4_step *plan, s4_plan_info *info)
{
    if (!plan || !info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_step_info: %s is NULL",
                        !plan ? "plan" : "info");
    /* Dense and eigenbasis modes run plain C loops and OpenBLAS (portable). */
    *info = (s4_plan_info){.isa = p_isa(plan),
                           .precision = plan->single ? S4_PRECISION_SINGLE : S4_PRECISION_DOUBLE,
                           .threads = plan->threads};
    return S4_OK;
}

int s4__step_team_threads(const s4_step *p)
{
    return p->B <= p->nb ? p->threads : 0;
}

/* The body of s4_step_run's parallel region for T = 1 and one batch chunk, for a caller
 * that already runs a team: this thread's features, the head's barrier, its head rows and
 * its rows of y. */
void s4__step_team(const s4_step *p, void *state, const float *u, float *y, void *work,
                   s4__barrier *bar, int tid, int nt)
{
    workspace ws;
    carve(p, work, &ws);
    team_part(p, &ws, state, u, 1, 0, 1, 0, (size_t)p->B, y, bar, tid, nt);
}

/* One step is a run of T = 1: u [B x H] and y [B x F] are then both layouts at once. */
s4_status s4_step_execute(const s4_step *plan, void *state, const float *u, float *y,
                          void *work, size_t work_size)
{
    static const char fn[] = "s4_step_execute";
    s4_status st = check_state(fn, plan, state, "state");
    if (st != S4_OK)
        return st;
    if (!u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !u ? "u" : "y");
    if (work && work_size < plan->work_size)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: work_size = %zu is smaller than the %zu bytes required", fn,
                        work_size, plan->work_size);
    const size_t n_u = (size_t)plan->B * (size_t)plan->H;
    const size_t bad = s4__first_nonfinite_f(u, n_u);
    if (bad < n_u)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: u[%zu] = %g is not finite", fn, bad,
                        (double)u[bad]);
    return s4_step_run(plan, state, u, 1, y, work, work_size);
}
