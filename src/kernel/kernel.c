/* Convolution-kernel generation, the S4 algorithm (docs/design.md section 7): truncated
 * generating function at the roots of unity through Cauchy sums, Woodbury correction for
 * the low-rank term, bilinear factor, inverse real FFT.
 * SPDX-License-Identifier: Apache-2.0 */
/* complex.h (via internal.h) before fftw3.h makes fftwf_complex a C99 float complex. */
#include "kernel/cauchy.h"
#include "kernel/kernel_diag.h"
#include "ssm/ssm.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BLK S4_CAUCHY_BLOCK

struct s4_kernel {
    s4_ssm_mode mode; /* DIAG: the Vandermonde kernel (kernel_diag.c) replaces all below */
    s4_disc disc;
    s4_vand vand;
    int H, N, Nh, rank, rows, S;
    int64_t Lk;      /* C-tilde length the plan serves */
    int64_t Ld;      /* nodes / FFT length: round(Lk / rate) */
    int64_t L;       /* output length, L <= Ld */
    double rate;
    int nsum;        /* (rows + rank) x (1 + rank) Cauchy sums */
    int64_t nfreq;   /* Ld/2 + 1 spectrum entries */
    int64_t ncauchy; /* nodes evaluated by Cauchy sums: all but omega = -1 */
    int64_t nblock;  /* ceil(ncauchy / BLK) */
    size_t spec_ld;  /* spectrum row stride in complex entries (keeps rows aligned) */
    double *y;       /* [nblock x BLK] node ordinates y_k = 2 tan(pi k / Ld); 0 padded */
    double *y2;       /* [nblock x BLK] y_k^2 rounded once */
    float *y2f;       /* [nblock x BLK] y_k^2 in float, for the mixed-precision block */
    fftwf_plan c2r;
    s4_cauchy_block_fn cauchy; /* SIMD variant chosen at plan time */
    s4_cauchy_block_f_fn cauchy_f; /* the same in float (far pairs) */
    struct kernel_blocks {         /* kernel_block_impl.h of the plan's ISA */
        void (*near)(int Nh, int nsum, const double *geo, const double *coef,
                     const double *y2, const int *skip, const float *accf, double *acc);
        bool (*rank1)(const s4_kernel *p, int64_t k0, int nj, const double *acc,
                      fftwf_complex *out);
        void (*scale)(const float *src, float scale, int64_t L, float *dst);
    } blocks;
    bool mixed;       /* float far pairs + double near pairs (s4_precision) */
    s4_isa isa;       /* of every kernel the plan runs */
    int threads;      /* OpenMP threads of one execute (1: run on the caller's thread) */
    size_t work_one;  /* bytes of one thread's workspace */
    size_t work_size; /* threads * work_one + alignment slack */
    void *own_work;
};

/* The per-node blocks of an ISA (kernel_block_impl.h, below). */
static struct kernel_blocks blocks_for(s4_isa isa);

/* Workspace layout, every region aligned to S4_ALIGN bytes. */
typedef struct workspace {
    double *geo, *coef, *gw, *acc;
    float *geof, *coeff, *gwf, *accf; /* the mixed path's float copies */
    int64_t *near;                    /* [Nh x 2] node range of each state's near pairs */
    int *skip;                        /* [Nh x 2] the same, local to the current block */
    fftwf_complex *spec;
    float *out;
} workspace;

/* Carves a workspace from `base` (already aligned; NULL: sizes only); returns its size in
 * bytes, 0 on overflow. */
static size_t carve(const s4_kernel *p, unsigned char *base, workspace *w)
{
    s4_carver c = {base, 0, true};
#define REGION(field, type, count)                                                            \
    do {                                                                                      \
        type *r_ = s4__carve(&c, (size_t)(count), sizeof(type));                              \
        if (w)                                                                                \
            w->field = r_;                                                                    \
    } while (0)
    REGION(geo, double, 2 * (size_t)p->Nh);
    REGION(coef, double, (size_t)p->nsum * (size_t)p->Nh * 4);
    REGION(gw, double, (size_t)p->Nh * 2 * BLK);
    REGION(acc, double, (size_t)p->nsum * 4 * BLK);
    REGION(geof, float, 2 * (size_t)p->Nh);
    REGION(coeff, float, (size_t)p->nsum * (size_t)p->Nh * 4);
    REGION(gwf, float, (size_t)p->Nh * 2 * BLK);
    REGION(accf, float, (size_t)p->nsum * 4 * BLK);
    REGION(near, int64_t, 2 * (size_t)p->Nh);
    REGION(skip, int, 2 * (size_t)p->Nh);
    REGION(spec, fftwf_complex, (size_t)p->rows * p->spec_ld);
    REGION(out, float, (size_t)p->Ld);
#undef REGION
    return c.ok ? c.off : 0;
}

static void plan_free(s4_kernel *p)
{
    if (!p)
        return;
    if (p->c2r) {
        s4__fftw_lock();
        fftwf_destroy_plan(p->c2r);
        s4__fftw_unlock();
    }
    s4__free(p->y);
    s4__free(p->y2);
    s4__free(p->y2f);
    s4__free(p->own_work);
    s4__free(p);
}

void s4_kernel_destroy(s4_kernel *plan) { plan_free(plan); }

/* The plan's own scratch: one work_one region per thread, plus slack to align a pointer. */
static bool alloc_workspace(s4_kernel *p)
{
    return p->work_one > 0 && s4__mul_size((size_t)p->threads, p->work_one, &p->work_size) &&
           s4__add_size(p->work_size, S4_ALIGN, &p->work_size) &&
           (p->own_work = s4__malloc(p->work_size)) != NULL;
}

static int plan_threads(const s4_kernel_options *options, int H)
{
    const int t = options && options->threads > 0 ? options->threads : omp_get_max_threads();
    return t > H ? H : t; /* threads split the features */
}

/* A plan for a diagonal bank: no nodes, no FFT; the same threading and workspace rules. */
static s4_status diag_create(const char *fn, const s4_ssm *ssm, int64_t L, double rate,
                             const s4_kernel_options *options, s4_kernel **out)
{
    if (L > ((int64_t)1 << 40))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be at most 2^40", fn,
                        (long long)L);
    s4_kernel *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->mode = S4_MODE_DIAG;
    p->isa = s4__cpu_isa();
    p->disc = ssm->cfg.disc;
    p->H = ssm->H;
    p->N = ssm->N;
    p->Nh = ssm->Nh;
    p->rows = ssm->rows;
    p->S = ssm->S;
    p->L = L;
    p->rate = rate;
    s4__vand_init(&p->vand, p->Nh, p->rows, L);
    p->threads = plan_threads(options, p->H);
    p->work_one = s4__round_up(s4__kdiag_work_bytes(&p->vand), S4_ALIGN);
    if (!alloc_workspace(p)) {
        plan_free(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for L = %lld", fn,
                        (long long)L);
    }
    *out = p;
    return S4_OK;
}

s4_status s4_kernel_create(const s4_ssm *ssm, int64_t L, const s4_kernel_options *options,
                           s4_kernel **out)
{
    static const char fn[] = "s4_kernel_create";
    if (!ssm || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !ssm ? "ssm" : "out");
    const double rate = options ? options->rate : 1.0;
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    if (options && options->threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        options->threads);
    if (options && options->precision == S4_PRECISION_SINGLE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: precision S4_PRECISION_SINGLE is a step plans' option; kernels "
                        "take S4_PRECISION_MIXED or S4_PRECISION_DOUBLE",
                        fn);
    if (options && options->precision != S4_PRECISION_MIXED &&
        options->precision != S4_PRECISION_DOUBLE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: precision = %d is unknown", fn,
                        (int)options->precision);
    if (L < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be >= 1", fn, (long long)L);
    if (ssm->cfg.mode == S4_MODE_DIAG)
        return diag_create(fn, ssm, L, rate, options, out);
    if (ssm->l_kernel == 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: ssm holds raw C (l_kernel = 0); call s4_ssm_setup_length first",
                        fn);
    if (ssm->rank > S4_MAX_RANK)
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: rank = %d above %d", fn, ssm->rank, S4_MAX_RANK);
    const int64_t Ld = s4__round_half_even((double)ssm->l_kernel / rate);
    if (Ld < 1 || Ld > ((int64_t)1 << 30))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: l_kernel / rate = %lld / %g gives %lld nodes: must be in [1, 2^30]",
                        fn, (long long)ssm->l_kernel, rate, (long long)Ld);
    if (L > Ld)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: L = %lld exceeds the %lld nodes of l_kernel = %lld at rate %g; "
                        "call s4_ssm_setup_length(ssm, round(rate * L)) first",
                        fn, (long long)L, (long long)Ld, (long long)ssm->l_kernel, rate);

    s4_kernel *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->H = ssm->H;
    p->N = ssm->N;
    p->Nh = ssm->Nh;
    p->rank = ssm->rank;
    p->rows = ssm->rows;
    p->S = ssm->S;
    p->Lk = ssm->l_kernel;
    p->Ld = Ld;
    p->L = L;
    p->rate = rate;
    p->nsum = (p->rows + p->rank) * (1 + p->rank);
    p->nfreq = Ld / 2 + 1;
    p->ncauchy = (Ld + 1) / 2; /* k < Ld/2; the omega = -1 node of even Ld is exact */
    p->nblock = (p->ncauchy + BLK - 1) / BLK;
    p->spec_ld = s4__round_up((size_t)p->nfreq, S4_ALIGN / sizeof(fftwf_complex));
    const size_t nnode = (size_t)p->nblock * BLK;
    p->y = s4__calloc(nnode, sizeof *p->y);
    p->y2 = s4__calloc(nnode, sizeof *p->y2);
    p->y2f = s4__calloc(nnode, sizeof *p->y2f);
    p->cauchy = s4__cauchy_select(NULL, &p->cauchy_f);
    p->isa = s4__cpu_isa();
    p->blocks = blocks_for(p->isa);
    p->mixed = !(options && options->precision == S4_PRECISION_DOUBLE);
    p->threads = plan_threads(options, p->H);
    p->work_one = carve(p, NULL, NULL);
    if (!p->y || !p->y2 || !p->y2f || !alloc_workspace(p)) {
        plan_free(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for L = %lld", fn,
                        (long long)L);
    }
    /* Nodes by sincos, never by powers (docs/design.md 7.2): y_k = 2 tan(pi k / Ld). Past the
     * quarter turn use cot of the complement, whose argument pi (Ld - 2k) / (2 Ld) is
     * exact in integers, so y keeps full relative accuracy up to the pole. */
    for (int64_t k = 0; k < p->ncauchy; k++) {
        double y;
        if (4 * k <= Ld) {
            y = 2.0 * tan(S4_PI * (double)k / (double)Ld);
        } else {
            const double t = S4_PI * (double)(Ld - 2 * k) / (2.0 * (double)Ld);
            y = 2.0 * cos(t) / sin(t);
        }
        p->y[k] = y;
        p->y2[k] = y * y;
        p->y2f[k] = (float)(y * y);
    }
    workspace w;
    carve(p, (unsigned char *)p->own_work, &w);
    s4__fftw_lock();
    p->c2r = fftwf_plan_dft_c2r_1d((int)Ld, w.spec, w.out, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    s4__fftw_unlock();
    if (!p->c2r) {
        plan_free(p);
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: FFTW could not plan a c2r of length %lld",
                        fn, (long long)Ld);
    }
    *out = p;
    return S4_OK;
}

size_t s4_kernel_workspace_size(const s4_kernel *plan) { return plan ? plan->work_size : 0; }
int64_t s4_kernel_length(const s4_kernel *plan) { return plan ? plan->L : 0; }
int s4_kernel_rows(const s4_kernel *plan) { return plan ? plan->rows : 0; }

void s4_kernel_options_default(s4_kernel_options *options)
{
    if (options)
        *options = (s4_kernel_options){.rate = 1.0, .threads = 0};
}

s4_status s4_kernel_info(const s4_kernel *plan, s4_plan_info *info)
{
    if (!plan || !info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_kernel_info: %s is NULL",
                        !plan ? "plan" : "info");
    *info = (s4_plan_info){.isa = plan->isa,
                           .precision = plan->mode == S4_MODE_DPLR && plan->mixed
                                            ? S4_PRECISION_MIXED
                                            : S4_PRECISION_DOUBLE,
                           .threads = plan->threads};
    return S4_OK;
}

/* |re| + |im|: the usual pivot magnitude for complex elimination, without hypot. */
static inline double cmag1(double complex z) { return fabs(creal(z)) + fabs(cimag(z)); }

/* 1 / z with the denominator scaled by max(|re|, |im|) (Smith's idea), avoiding both
 * overflow and the slow Annex G path of C99 complex division. z != 0. */
static inline double complex crecip(double complex z)
{
    const double a = creal(z), b = cimag(z);
    if (fabs(a) >= fabs(b)) {
        const double t = b / a, d = a + b * t;
        return CMPLX(1.0 / d, -t / d);
    }
    const double t = a / b, d = a * t + b;
    return CMPLX(t / d, -1.0 / d);
}

/* Solves (I + M) z = b for an r x r complex M by Gaussian elimination with partial
 * pivoting (docs/design.md 7.4: the closed forms lose accuracy near poles). M and b are
 * overwritten; false if the system is singular. */
static bool woodbury_solve(int r, double complex *M, double complex *b)
{
    for (int i = 0; i < r; i++)
        M[i * r + i] += 1.0;
    for (int col = 0; col < r; col++) {
        int piv = col;
        for (int i = col + 1; i < r; i++)
            if (cmag1(M[i * r + col]) > cmag1(M[piv * r + col]))
                piv = i;
        if (!(cmag1(M[piv * r + col]) > 0.0))
            return false;
        if (piv != col) {
            for (int j = 0; j < r; j++) {
                const double complex t = M[col * r + j];
                M[col * r + j] = M[piv * r + j];
                M[piv * r + j] = t;
            }
            const double complex t = b[col];
            b[col] = b[piv];
            b[piv] = t;
        }
        const double complex inv = crecip(M[col * r + col]);
        for (int i = col + 1; i < r; i++) {
            const double complex f = M[i * r + col] * inv;
            for (int j = col; j < r; j++)
                M[i * r + j] -= f * M[col * r + j];
            b[i] -= f * b[col];
        }
    }
    for (int i = r - 1; i >= 0; i--) {
        double complex acc = b[i];
        for (int j = i + 1; j < r; j++)
            acc -= M[i * r + j] * b[j];
        b[i] = acc * crecip(M[i * r + i]);
    }
    return true;
}

/* Per-state coefficients of every Cauchy sum of feature h (cauchy.h). Sum index
 * s = x (1 + rank) + y over X in {C-tilde rows, Q rows} and Y in {B, P rows}. */
static void feature_coefficients(const s4_kernel *p, const s4_ssm *ssm, int h, double dt,
                                 workspace *w)
{
    const int Nh = p->Nh, r = p->rank, k = s4__copy_of(ssm, h);
    const double complex *Lam = ssm->Lambda + (size_t)k * Nh;
    for (int n = 0; n < Nh; n++) {
        const double complex a = dt * Lam[n];
        const double c = -2.0 * creal(a);
        w->geo[2 * n] = (creal(a) * creal(a) + cimag(a) * cimag(a));
        w->geo[2 * n + 1] = (c * c);
        for (int x = 0; x < p->rows + r; x++) {
            const double complex X =
                x < p->rows ? ssm->C[((size_t)x * (size_t)p->H + (size_t)h) * Nh + n]
                            : conj(ssm->P[((size_t)(x - p->rows) * (size_t)p->S + (size_t)k) *
                                              Nh + n]);
            for (int yi = 0; yi <= r; yi++) {
                const double complex Y =
                    yi == 0 ? ssm->B[(size_t)k * Nh + n]
                            : ssm->P[((size_t)(yi - 1) * (size_t)p->S + (size_t)k) * Nh + n];
                const double complex v = dt * X * Y;
                const double alpha = 2.0 * creal(v), beta = 2.0 * creal(v * conj(a));
                double *coef = w->coef + ((size_t)(x * (r + 1) + yi) * Nh + (size_t)n) * 4;
                coef[0] = (alpha * c);
                coef[1] = beta;
                coef[2] = (beta * c);
                coef[3] = alpha;
            }
        }
    }
}

#define S4_KB_SFX ref
#define S4_KB_TARGET
#include "kernel/kernel_block_impl.h"
#undef S4_KB_SFX
#undef S4_KB_TARGET
#if S4_CPU_X86
#define S4_KB_SFX avx2
#define S4_KB_TARGET S4_TARGET_AVX2
#include "kernel/kernel_block_impl.h"
#undef S4_KB_SFX
#undef S4_KB_TARGET
#define S4_KB_SFX avx512
#define S4_KB_TARGET S4_TARGET_AVX512
#include "kernel/kernel_block_impl.h"
#undef S4_KB_SFX
#undef S4_KB_TARGET
#endif

static struct kernel_blocks blocks_for(s4_isa isa)
{
#if S4_CPU_X86
    if (isa == S4_ISA_AVX512)
        return (struct kernel_blocks){near_avx512, rank1_avx512, scale_avx512};
    if (isa == S4_ISA_AVX2)
        return (struct kernel_blocks){near_avx2, rank1_avx2, scale_avx2};
#endif
    return (struct kernel_blocks){near_ref, rank1_ref, scale_ref};
}

/* Woodbury (docs/design.md 7.4) and the bilinear factor 2 / (1 + omega) = 1 + z/2 (7.5) for the
 * nodes of block b, from the accumulated sums; writes spectrum entries. Sum s = x (r+1) + y
 * holds X in {C rows, Q rows}, Y in {B, P rows}; its value at node j is
 * (y^2 S0 - S1) + i y (S2 + S3) (cauchy.h). */
static bool finish_block(const s4_kernel *p, int64_t b, const double *acc, fftwf_complex *spec)
{
    const int r = p->rank, rows = p->rows, R1 = r + 1;
    const int64_t k0 = b * BLK;
    const int nj = (int)(p->ncauchy - k0 < BLK ? p->ncauchy - k0 : BLK);
    fftwf_complex *out = spec + k0;
#define SUM(s, j)                                                                             \
    CMPLX(yy * acc[(size_t)(s) * 4 * BLK + (j)] - acc[(size_t)(s) * 4 * BLK + BLK + (j)],      \
          y * (acc[(size_t)(s) * 4 * BLK + 2 * BLK + (j)] +                                    \
               acc[(size_t)(s) * 4 * BLK + 3 * BLK + (j)]))
    if (r == 1)
        return p->blocks.rank1(p, k0, nj, acc, out);
    double complex M[S4_MAX_RANK * S4_MAX_RANK], z[S4_MAX_RANK];
    for (int j = 0; j < nj; j++) {
        const double y = p->y[k0 + j], yy = y * y;
        for (int i = 0; i < r; i++) {
            z[i] = SUM((rows + i) * R1, j);
            for (int jj = 0; jj < r; jj++)
                M[i * r + jj] = SUM((rows + i) * R1 + 1 + jj, j);
        }
        if (!woodbury_solve(r, M, z))
            return false;
        const double complex factor = CMPLX(1.0, 0.5 * y);
        for (int c = 0; c < rows; c++) {
            double complex kc = SUM(c * R1, j);
            for (int i = 0; i < r; i++)
                kc -= SUM(c * R1 + 1 + i, j) * z[i];
            out[(size_t)c * p->spec_ld + (size_t)j] = (fftwf_complex)(kc * factor);
        }
    }
#undef SUM
    return true;
}

/* Kernel rows of feature h into K (docs/design.md 7.2-7.6). Returns 0, or 1 when Woodbury is
 * singular at a node, 2 when the result is not finite (*at says where). */
/* Mixed precision (cauchy.h): a pair (n, node) is near when the node lies within a
 * relative distance RHO of state n's pole, |i y - conj a_n| < RHO |a_n|; such pairs run in
 * double, all others in float, whose error per pair, eps32 |term|, is then at most
 * eps32 / RHO of the pole's far-field size: about 1e-6 with RHO = 1/16. */
#define RHO 0.0625
/* Below this |a_n| float denominators (RHO |a|)^4 could leave the normal float range:
 * such a feature runs all in double. */
#define MIXED_MIN_A 1e-6

/* Float copies of the coefficients and each state's near node range [near[2n],
 * near[2n+1]) (node k has y_k = 2 tan(pi k / Ld), so k = Ld/pi atan(y/2); one node of
 * margin each side against rounding: a near set too large only costs time). False when
 * the feature must stay in double. */
static bool mixed_setup(const s4_kernel *p, const s4_ssm *ssm, int h, double dt, workspace *w)
{
    const int Nh = p->Nh, k = s4__copy_of(ssm, h);
    const double complex *Lam = ssm->Lambda + (size_t)k * Nh;
    const double scale = (double)p->Ld / S4_PI;
    for (int n = 0; n < Nh; n++) {
        const double complex a = dt * Lam[n];
        const double a2 = w->geo[2 * n], re = creal(a);
        if (!(sqrt(a2) >= MIXED_MIN_A))
            return false;
        const double d2 = RHO * RHO * a2 - re * re; /* near: (y - |Im a|)^2 < d2 */
        int64_t lo = 0, hi = 0;
        if (d2 > 0.0) {
            const double yc = fabs(cimag(a)), d = sqrt(d2);
            const double ylo = yc - d > 0.0 ? yc - d : 0.0;
            lo = (int64_t)floor(scale * atan(0.5 * ylo)) - 1;
            hi = (int64_t)ceil(scale * atan(0.5 * (yc + d))) + 2;
            lo = lo < 0 ? 0 : lo;
            hi = hi > p->ncauchy ? p->ncauchy : hi;
        }
        w->near[2 * n] = lo;
        w->near[2 * n + 1] = hi > lo ? hi : lo;
    }
    for (size_t i = 0; i < 2 * (size_t)Nh; i++)
        w->geof[i] = (float)w->geo[i];
    for (size_t i = 0; i < (size_t)p->nsum * (size_t)Nh * 4; i++)
        w->coeff[i] = (float)w->coef[i];
    return true;
}

/* Block b: the far pairs by the float block, converted, plus the near pairs in double --
 * the same four accumulators per sum as the double block (cauchy.h). */
static void mixed_block(const s4_kernel *p, int64_t b, workspace *w)
{
    const int Nh = p->Nh;
    const int64_t k0 = b * BLK;
    for (int n = 0; n < Nh; n++) {
        const int64_t lo = w->near[2 * n] - k0, hi = w->near[2 * n + 1] - k0;
        w->skip[2 * n] = (int)(lo < 0 ? 0 : lo > BLK ? BLK : lo);
        w->skip[2 * n + 1] = (int)(hi < 0 ? 0 : hi > BLK ? BLK : hi);
    }
    p->cauchy_f(Nh, p->nsum, w->geof, w->coeff, p->y2f + k0, w->skip, w->gwf, w->accf);
    p->blocks.near(Nh, p->nsum, w->geo, w->coef, p->y2 + k0, w->skip, w->accf, w->acc);
}

static int feature_kernel(const s4_kernel *p, const s4_ssm *ssm, int h, workspace *w,
                          float *K, size_t ldk, int64_t *at)
{
    const double dt = ssm->dt[h] * p->rate;
    const float scale = (float)(1.0 / (double)p->Ld);
    feature_coefficients(p, ssm, h, dt, w);
    const bool mixed = p->mixed && mixed_setup(p, ssm, h, dt, w);
    for (int64_t b = 0; b < p->nblock; b++) {
        if (mixed)
            mixed_block(p, b, w);
        else
            p->cauchy(p->Nh, p->nsum, w->geo, w->coef, p->y2 + b * BLK, NULL, w->gw, w->acc);
        if (!finish_block(p, b, w->acc, w->spec)) {
            *at = b * BLK;
            return 1;
        }
    }
    if (p->Ld % 2 == 0) {
        /* omega = -1: (I - omega dA)^-1 dB = dt B / 2 exactly, so
         * k = C-tilde_f^T dt B_f / 2 = dt Re sum_n C-tilde_n B_n (docs/design.md 7.5). */
        const int k = s4__copy_of(ssm, h);
        for (int c = 0; c < p->rows; c++) {
            double complex acc = 0.0;
            for (int n = 0; n < p->Nh; n++)
                acc += ssm->C[((size_t)c * (size_t)p->H + (size_t)h) * p->Nh + n] *
                       ssm->B[(size_t)k * p->Nh + n];
            w->spec[(size_t)c * p->spec_ld + (size_t)(p->Ld / 2)] =
                (fftwf_complex)(dt * creal(acc));
        }
    }
    for (int c = 0; c < p->rows; c++) {
        fftwf_execute_dft_c2r(p->c2r, w->spec + (size_t)c * p->spec_ld, w->out);
        float *restrict dst = K + ((size_t)c * (size_t)p->H + (size_t)h) * ldk;
        const float *restrict src = w->out;
        /* Scale first (a loop without exits vectorises), then look for a non-finite value. */
        p->blocks.scale(src, scale, p->L, dst);
        const size_t bad = s4__first_nonfinite_f(dst, (size_t)p->L);
        if (bad < (size_t)p->L) {
            *at = (int64_t)bad;
            return 2;
        }
    }
    return 0;
}

s4_status s4_kernel_execute(const s4_kernel *p, const s4_ssm *ssm, float *K, size_t ldk,
                            void *work, size_t work_size)
{
    static const char fn[] = "s4_kernel_execute";
    if (!p || !ssm || !K)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !ssm ? "ssm" : "K");
    if (ssm->H != p->H || ssm->N != p->N || ssm->rank != p->rank || ssm->rows != p->rows ||
        ssm->S != p->S)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: ssm (H %d, N %d, rank %d, rows %d, S %d) does not match the plan "
                        "(H %d, N %d, rank %d, rows %d, S %d)",
                        fn, ssm->H, ssm->N, ssm->rank, ssm->rows, ssm->S, p->H, p->N, p->rank,
                        p->rows, p->S);
    if (ssm->cfg.mode != p->mode || (p->mode == S4_MODE_DIAG && ssm->cfg.disc != p->disc))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: ssm (mode %d, disc %d) does not match the plan (mode %d, disc %d)",
                        fn, (int)ssm->cfg.mode, (int)ssm->cfg.disc, (int)p->mode, (int)p->disc);
    if (ssm->l_kernel != p->Lk)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: ssm l_kernel = %lld differs from the plan's %lld", fn,
                        (long long)ssm->l_kernel, (long long)p->Lk);
    if (ldk < (size_t)p->L)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldk = %zu is smaller than L = %lld", fn,
                        ldk, (long long)p->L);
    /* K is addressed in bytes: rows x H x ldk floats must fit a size_t. */
    size_t nK = 0;
    if (!s4__mul_size((size_t)p->rows * (size_t)p->H, ldk, &nK) ||
        !s4__mul_size(nK, sizeof(float), &nK))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rows x H x ldk floats overflow size_t",
                        fn);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;

    /* Features are independent: split them over threads, each with its own workspace.
     * The error message buffer is thread-local, so workers only record what failed and
     * the calling thread reports it. */
    int fail_h = -1, fail_kind = 0;
    int64_t fail_at = 0;
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
    {
        unsigned char *mine = base + (size_t)omp_get_thread_num() * p->work_one;
        workspace w;
        if (p->mode == S4_MODE_DPLR)
            carve(p, mine, &w);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < p->H; h++) {
            int64_t at = 0;
            int kind;
#pragma omp atomic read
            kind = fail_kind;
            if (kind)
                continue;
            if (p->mode == S4_MODE_DIAG) {
                /* 1 (discretization) and 2 (overflow) become failure kinds 3 and 4. */
                kind = s4__kdiag_feature(&p->vand, ssm, h, p->rate, K, ldk, mine);
                kind = kind ? kind + 2 : 0;
            } else {
                kind = feature_kernel(p, ssm, h, &w, K, ldk, &at);
            }
            if (kind) {
#pragma omp critical(s4_kernel_fail)
                if (!fail_kind || h < fail_h) {
                    fail_kind = kind;
                    fail_h = h;
                    fail_at = at;
                }
            }
        }
    }
    if (fail_kind == 1)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: feature %d: I + r_QP is singular near node %lld (dA has an "
                        "eigenvalue on the unit circle); K is unspecified",
                        fn, fail_h, (long long)fail_at);
    if (fail_kind == 2)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: feature %d: kernel is not finite at l = %lld; K is unspecified", fn,
                        fail_h, (long long)fail_at);
    if (fail_kind == 3)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: feature %d: dt Lambda gives a non-finite discretization; K is "
                        "unspecified",
                        fn, fail_h);
    if (fail_kind == 4)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: feature %d: a growing mode (Re Lambda > 0) overflows float within "
                        "L = %lld; K is unspecified",
                        fn, fail_h, (long long)p->L);
    return S4_OK;
}
