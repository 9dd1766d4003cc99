/* The SSM parameter bank: sizes, stored parameters, derived values, C-tilde management.
 * docs/design.md sections 1, 3, 4, 7.1.
 * SPDX-License-Identifier: Apache-2.0 */
#include "ssm/discretize.h"
#include "core/rng.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sanity caps: far above any S4 model, low enough that every size product below fits. */
enum { S4_MAX_N = 1 << 16, S4_MAX_ROWS = 1 << 12 };

void s4_ssm_config_default(s4_ssm_config *config)
{
    if (!config)
        return;
    *config = (s4_ssm_config){
        .H = 1,
        .N = 64,
        .rank = 1,
        .n_ssm = 0,
        .channels = 1,
        .bidirectional = 0,
        .init = S4_INIT_LEGS,
        .dt_min = 1e-3,
        .dt_max = 1e-1,
        .dt_transform = S4_TRANSFORM_EXP,
        .real_transform = S4_TRANSFORM_EXP,
        .imag_transform = S4_TRANSFORM_NONE,
        .seed = 0,
        .mode = S4_MODE_DPLR,
        .disc = S4_DISC_ZOH,
    };
}

double s4__transform(s4_transform t, double x)
{
    switch (t) {
    case S4_TRANSFORM_NONE: return x;
    case S4_TRANSFORM_EXP: return exp(x);
    case S4_TRANSFORM_RELU: return (x > 0.0 ? x : 0.0) + 1e-4;
    case S4_TRANSFORM_SIGMOID: return 1.0 / (1.0 + exp(-x));
    /* log(1 + e^x) without overflow for large x. */
    case S4_TRANSFORM_SOFTPLUS: return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return NAN;
}

/* Reference `inv_transform`: clamp to >= 1e-4, then invert the transform. */
static double inv_transform(s4_transform t, double p)
{
    if (p < 1e-4)
        p = 1e-4;
    switch (t) {
    case S4_TRANSFORM_NONE:
    case S4_TRANSFORM_RELU: return p;
    case S4_TRANSFORM_EXP: return log(p);
    case S4_TRANSFORM_SIGMOID: return log(p / (1.0 - p)); /* NaN/Inf when p >= 1 */
    case S4_TRANSFORM_SOFTPLUS: return p + log(-expm1(-p)); /* log(e^p - 1) */
    }
    return NAN;
}

static bool transform_valid(s4_transform t)
{
    return t >= S4_TRANSFORM_NONE && t <= S4_TRANSFORM_SOFTPLUS;
}

/* Validates sizes and options shared by both constructors. */
static s4_status check_config(const char *fn, const s4_ssm_config *c, bool for_init)
{
    if (!c)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: config is NULL", fn);
    if (c->H < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: H = %d must be >= 1", fn, c->H);
    if (c->N < 2 || c->N % 2 != 0 || c->N > S4_MAX_N)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: N = %d must be even and in [2, %d]", fn, c->N, S4_MAX_N);
    /* Ranks above the natural one pad P with zero rows, as the reference does. */
    if (c->mode != S4_MODE_DIAG && (c->rank < 1 || c->rank > S4_MAX_RANK))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rank = %d must be in [1, %d]", fn,
                        c->rank, S4_MAX_RANK);
    if (c->n_ssm < 0 || c->n_ssm > c->H || (c->n_ssm > 0 && c->H % c->n_ssm != 0))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: n_ssm = %d must be 0 (= H) or divide H = %d", fn, c->n_ssm, c->H);
    if (c->channels < 1 || c->channels > S4_MAX_ROWS / 2)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: channels = %d must be in [1, %d]", fn,
                        c->channels, S4_MAX_ROWS / 2);
    if (c->bidirectional != 0 && c->bidirectional != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: bidirectional = %d must be 0 or 1", fn,
                        c->bidirectional);
    if (c->mode != S4_MODE_DPLR && c->mode != S4_MODE_DIAG)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: mode = %d is unknown (S4_MODE_DPLR or S4_MODE_DIAG)", fn,
                        (int)c->mode);
    if (c->mode == S4_MODE_DIAG && c->disc != S4_DISC_ZOH && c->disc != S4_DISC_BILINEAR &&
        c->disc != S4_DISC_DSS)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: disc = %d is unknown (S4_DISC_ZOH, S4_DISC_BILINEAR or S4_DISC_DSS)",
                        fn, (int)c->disc);
    if (!transform_valid(c->dt_transform) || !transform_valid(c->real_transform) ||
        !transform_valid(c->imag_transform))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: dt_transform/real_transform/imag_transform = %d/%d/%d: unknown",
                        fn, (int)c->dt_transform, (int)c->real_transform,
                        (int)c->imag_transform);
    if (for_init) {
        const int natural = s4__init_rank(c->init);
        if (natural < 0)
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: init = %d is unknown", fn,
                            (int)c->init);
        if (c->mode != S4_MODE_DIAG && c->rank < natural)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: rank = %d is below the init's natural rank %d", fn, c->rank,
                            natural);
        const int S = c->n_ssm ? c->n_ssm : c->H;
        if ((c->init == S4_INIT_HIPPO || c->init == S4_INIT_DIAG) && S % 2 != 0)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: init %s splits n_ssm = %d copies in two halves: must be even",
                            fn, c->init == S4_INIT_HIPPO ? "hippo" : "diag", S);
        if (!(c->dt_min > 0.0) || !(c->dt_max >= c->dt_min) || !isfinite(c->dt_max))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: dt_min = %g, dt_max = %g must satisfy 0 < dt_min <= dt_max < inf",
                            fn, c->dt_min, c->dt_max);
    }
    return S4_OK;
}

/* Allocates a bank with every array sized from a validated config. */
static s4_status ssm_alloc(const char *fn, const s4_ssm_config *c, s4_ssm **out)
{
    s4_ssm *s = s4__calloc(1, sizeof *s);
    if (!s)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    s->cfg = *c;
    s->H = c->H;
    s->N = c->N;
    s->Nh = c->N / 2;
    s->rank = c->mode == S4_MODE_DIAG ? 0 : c->rank; /* S4D: no low-rank term */
    s->S = c->n_ssm ? c->n_ssm : c->H;
    s->cfg.n_ssm = s->S;
    s->Cp = c->channels;
    s->rows = c->channels * (1 + c->bidirectional);

    size_t SN, PN, CN, DN;
    bool ok = s4__mul_size((size_t)s->S, (size_t)s->Nh, &SN) &&
              s4__mul_size(SN, (size_t)s->rank, &PN) &&
              s4__mul_size((size_t)s->rows, (size_t)s->H, &CN) &&
              s4__mul_size(CN, (size_t)s->Nh, &CN) &&
              s4__mul_size((size_t)s->Cp, (size_t)s->H, &DN) &&
              s4__mul_size(CN, 2 * sizeof(double), &(size_t){0});
    if (ok) {
        s->inv_dt = s4__alloc((size_t)s->H, sizeof(double));
        s->dt = s4__alloc((size_t)s->H, sizeof(double));
        s->A_real = s4__alloc(SN, sizeof(double));
        s->A_imag = s4__alloc(SN, sizeof(double));
        s->B = s4__alloc(SN, sizeof(double complex));
        s->Lambda = s4__alloc(SN, sizeof(double complex));
        s->P = s4__alloc(PN, sizeof(double complex));
        s->C = s4__alloc(CN, sizeof(double complex));
        s->D = s4__calloc(DN, sizeof(double));
    }
    if (!ok || !s->inv_dt || !s->dt || !s->A_real || !s->A_imag || !s->B || !s->Lambda ||
        !s->P || !s->C || !s->D) {
        const int rows = s->rows;
        s4_ssm_destroy(s);
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: parameters for H = %d, N = %d, rank = %d, rows = %d do not fit in "
                        "memory",
                        fn, c->H, c->N, c->rank, rows);
    }
    *out = s;
    return S4_OK;
}

/* Fills dt and Lambda from the stored form and checks that they describe a stable SSM. */
static s4_status derive(const char *fn, s4_ssm *s)
{
    for (int h = 0; h < s->H; h++) {
        s->dt[h] = s4__transform(s->cfg.dt_transform, s->inv_dt[h]);
        if (!(s->dt[h] > 0.0) || !isfinite(s->dt[h]))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: inv_dt[%d] = %g gives dt = %g: dt must be positive and finite",
                            fn, h, s->inv_dt[h], s->dt[h]);
    }
    const size_t SN = (size_t)s->S * (size_t)s->Nh;
    for (size_t i = 0; i < SN; i++) {
        const double re = -s4__transform(s->cfg.real_transform, s->A_real[i]);
        const double im = -s4__transform(s->cfg.imag_transform, s->A_imag[i]);
        /* Re(Lambda) < 0 keeps every Cauchy denominator away from zero (docs/design.md 7.3). A
         * diagonal bank has no Cauchy sums: the reference's DSS normalises growing modes,
         * and zoh/bilinear kernels check their range when they are evaluated. */
        if (s->cfg.mode == S4_MODE_DPLR ? !(re < 0.0) || !isfinite(re) || !isfinite(im)
                                        : !isfinite(re) || !isfinite(im))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: A_real/A_imag[%zu] = %g/%g give Lambda = %g%+gi: Re(Lambda) "
                            "must be %s and finite",
                            fn, i, s->A_real[i], s->A_imag[i], re, im,
                            s->cfg.mode == S4_MODE_DPLR ? "negative" : "finite");
        s->Lambda[i] = CMPLX(re, im);
    }
    return S4_OK;
}

/* Lambda and B of the reference's diagonal inits (dplr.py `dplr` with P_scale 0; docs/design.md
 * 10): Re Lambda = -1/2 (diag-real: -(n+1)), Im Lambda from the init with N the full state
 * size, B = 1, P = 0. */
static void diag_init(s4_init init, int N, double complex *Lam, double complex *B,
                      double complex *P, int rank)
{
    const int Nh = N / 2;
    for (int n = 0; n < Nh; n++) {
        double re = 0.5, im = 0.0;
        switch (init) {
        case S4_INIT_DIAG_LIN: im = S4_PI * n; break;
        case S4_INIT_DIAG_INV: im = N / S4_PI * (N / (2.0 * n + 1.0) - 1.0); break;
        case S4_INIT_DIAG_INV2: im = N / S4_PI * (N / (n + 1.0) - 1.0); break;
        case S4_INIT_DIAG_QUAD: im = (2.0 * n + 1.0) * (2.0 * n + 1.0) / S4_PI; break;
        case S4_INIT_DIAG_REAL: re = n + 1.0; break;
        default: break;
        }
        Lam[n] = CMPLX(-re, -im);
        B[n] = 1.0;
    }
    for (size_t i = 0; i < (size_t)rank * (size_t)Nh; i++)
        P[i] = 0.0;
}

/* Lambda, P, B of one init for `count` copies, written at copy offset s0 (docs/design.md 3, 10):
 * HiPPO inits through the NPLR form (a diagonal bank drops P), diagonal inits directly. */
static s4_status init_copies(const char *fn, s4_ssm *s, s4_init init, int s0, int count)
{
    static const s4_measure measure_of[] = {
        [S4_INIT_LEGS] = S4_MEASURE_LEGS,
        [S4_INIT_LEGT] = S4_MEASURE_LEGT,
        [S4_INIT_LAGT] = S4_MEASURE_LAGT,
        [S4_INIT_FOUT] = S4_MEASURE_FOUT,
    };
    const int Nh = s->Nh, r = s->rank;
    const bool hippo = init <= S4_INIT_FOUT;
    /* The NPLR form needs at least the measure's natural rank, even when P is dropped. */
    const int nr = hippo && r < s4__init_rank(init) ? s4__init_rank(init) : r;
    double complex *Lam = s4__alloc((size_t)Nh, sizeof *Lam);
    double complex *P = s4__alloc((size_t)nr * (size_t)Nh, sizeof *P);
    double complex *B = s4__alloc((size_t)Nh, sizeof *B);
    s4_status st = S4_OK;
    if (!Lam || !P || !B)
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    else if (hippo)
        st = s4_nplr(measure_of[init], s->N, nr, (double *)Lam, (double *)P, (double *)B, NULL);
    else
        diag_init(init, s->N, Lam, B, P, nr);
    for (int k = s0; st == S4_OK && k < s0 + count; k++) {
        for (int n = 0; n < Nh; n++) {
            const size_t i = (size_t)k * (size_t)Nh + (size_t)n;
            s->A_real[i] = inv_transform(s->cfg.real_transform, -creal(Lam[n]));
            s->A_imag[i] = inv_transform(s->cfg.imag_transform, -cimag(Lam[n]));
            if (!isfinite(s->A_real[i]) || !isfinite(s->A_imag[i]))
                st = s4__fail(S4_ERR_INVALID_ARGUMENT,
                              "%s: Lambda[%d] = %g%+gi cannot be stored under the real/imag "
                              "transforms %d/%d",
                              fn, n, creal(Lam[n]), cimag(Lam[n]), (int)s->cfg.real_transform,
                              (int)s->cfg.imag_transform);
            s->B[i] = B[n];
            for (int j = 0; j < r; j++)
                s->P[((size_t)j * (size_t)s->S + (size_t)k) * (size_t)Nh + (size_t)n] =
                    P[(size_t)j * (size_t)Nh + (size_t)n];
        }
    }
    s4__free(Lam);
    s4__free(P);
    s4__free(B);
    return st;
}

s4_status s4_ssm_create(const s4_ssm_config *config, s4_ssm **out)
{
    static const char fn[] = "s4_ssm_create";
    s4_status st = check_config(fn, config, true);
    if (st != S4_OK)
        return st;
    if (!out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    s4_ssm *s;
    if ((st = ssm_alloc(fn, config, &s)) != S4_OK)
        return st;

    if (config->init == S4_INIT_HIPPO || config->init == S4_INIT_DIAG) {
        /* The reference's `combination`: 'hippo' is legs copies first, then fourier; 'diag'
         * is diag-inv copies first, then diag-lin. */
        const bool h = config->init == S4_INIT_HIPPO;
        st = init_copies(fn, s, h ? S4_INIT_LEGS : S4_INIT_DIAG_INV, 0, s->S / 2);
        if (st == S4_OK)
            st = init_copies(fn, s, h ? S4_INIT_FOUT : S4_INIT_DIAG_LIN, s->S / 2, s->S / 2);
    } else {
        st = init_copies(fn, s, config->init, 0, s->S);
    }

    /* Draw order is part of the seed contract: dt (H), then C (rows x H x Nh, re/im), D. */
    s4_rng rng;
    s4__rng_seed(&rng, config->seed);
    const double log_lo = log(config->dt_min), log_hi = log(config->dt_max);
    for (int h = 0; st == S4_OK && h < s->H; h++) {
        const double log_dt = s4__rng_uniform(&rng) * (log_hi - log_lo) + log_lo;
        s->inv_dt[h] = config->dt_transform == S4_TRANSFORM_EXP
                           ? log_dt
                           : inv_transform(config->dt_transform, exp(log_dt));
    }
    /* Complex standard normal as torch.randn(cfloat): real and imaginary parts N(0, 1/2). */
    const size_t CN = (size_t)s->rows * (size_t)s->H * (size_t)s->Nh;
    for (size_t i = 0; st == S4_OK && i < CN; i++) {
        const double re = s4__rng_normal(&rng), im = s4__rng_normal(&rng);
        s->C[i] = CMPLX(re * S4_SQRT1_2, im * S4_SQRT1_2);
    }
    const size_t DN = (size_t)s->Cp * (size_t)s->H;
    for (size_t i = 0; st == S4_OK && i < DN; i++)
        s->D[i] = s4__rng_normal(&rng);
    s->l_kernel = 0;

    if (st == S4_OK)
        st = derive(fn, s);
    if (st != S4_OK) {
        s4_ssm_destroy(s);
        return st;
    }
    *out = s;
    return S4_OK;
}

/* Copies n doubles, refusing NaN and Inf with a message naming the array and index. */
static s4_status copy_finite(const char *fn, const char *name, double *dst, const double *src,
                             size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s[%zu] = %g is not finite", fn, name,
                            i, src[i]);
    memcpy(dst, src, n * sizeof *dst);
    return S4_OK;
}

s4_status s4_ssm_create_from_arrays(const s4_ssm_config *config, const s4_ssm_arrays *a,
                                    s4_ssm **out)
{
    static const char fn[] = "s4_ssm_create_from_arrays";
    s4_status st = check_config(fn, config, false);
    if (st != S4_OK)
        return st;
    if (!a || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !a ? "arrays" : "out");
    const char *missing = !a->inv_dt   ? "inv_dt"
                          : !a->A_real ? "A_real"
                          : !a->A_imag ? "A_imag"
                          : !a->B      ? "B"
                          : !a->P && config->mode != S4_MODE_DIAG ? "P"
                          : !a->C      ? "C"
                                       : NULL;
    if (missing)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: arrays->%s is NULL", fn, missing);
    if (a->l_kernel < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: l_kernel = %lld must be >= 0", fn,
                        (long long)a->l_kernel);
    if (config->mode == S4_MODE_DIAG && (a->P || a->l_kernel != 0))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: a diagonal (S4D) bank has %s: arrays->%s must be %s", fn,
                        a->P ? "no low-rank term" : "no C-tilde", a->P ? "P" : "l_kernel",
                        a->P ? "NULL" : "0");
    s4_ssm *s;
    if ((st = ssm_alloc(fn, config, &s)) != S4_OK)
        return st;
    const size_t SN = (size_t)s->S * (size_t)s->Nh;
    const size_t CN = (size_t)s->rows * (size_t)s->H * (size_t)s->Nh;
    if (st == S4_OK)
        st = copy_finite(fn, "inv_dt", s->inv_dt, a->inv_dt, (size_t)s->H);
    if (st == S4_OK)
        st = copy_finite(fn, "A_real", s->A_real, a->A_real, SN);
    if (st == S4_OK)
        st = copy_finite(fn, "A_imag", s->A_imag, a->A_imag, SN);
    if (st == S4_OK)
        st = copy_finite(fn, "B", (double *)s->B, a->B, 2 * SN);
    if (st == S4_OK && s->rank > 0)
        st = copy_finite(fn, "P", (double *)s->P, a->P, 2 * SN * (size_t)s->rank);
    if (st == S4_OK)
        st = copy_finite(fn, "C", (double *)s->C, a->C, 2 * CN);
    if (st == S4_OK && a->D) {
        st = copy_finite(fn, "D", s->D, a->D, (size_t)s->Cp * (size_t)s->H);
        /* The convolution applies D in float32: a value beyond its range would be Inf. */
        for (size_t i = 0; st == S4_OK && i < (size_t)s->Cp * (size_t)s->H; i++)
            if (fabs(s->D[i]) > FLT_MAX)
                st = s4__fail(S4_ERR_INVALID_ARGUMENT,
                              "%s: D[%zu] = %g is beyond the float32 range", fn, i, s->D[i]);
    }
    if (st == S4_OK)
        st = derive(fn, s);
    if (st != S4_OK) {
        s4_ssm_destroy(s);
        return st;
    }
    s->l_kernel = a->l_kernel;
    *out = s;
    return S4_OK;
}

void s4_ssm_destroy(s4_ssm *s)
{
    if (!s)
        return;
    s4__free(s->inv_dt);
    s4__free(s->dt);
    s4__free(s->A_real);
    s4__free(s->A_imag);
    s4__free(s->B);
    s4__free(s->Lambda);
    s4__free(s->P);
    s4__free(s->C);
    s4__free(s->D);
    s4__free(s);
}

s4_status s4_ssm_clone(const s4_ssm *src, s4_ssm **out)
{
    static const char fn[] = "s4_ssm_clone";
    if (!src || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !src ? "ssm" : "out");
    s4_ssm *s;
    s4_status st = ssm_alloc(fn, &src->cfg, &s);
    if (st != S4_OK)
        return st;
    const size_t SN = (size_t)s->S * (size_t)s->Nh;
    const size_t CN = (size_t)s->rows * (size_t)s->H * (size_t)s->Nh;
    memcpy(s->inv_dt, src->inv_dt, (size_t)s->H * sizeof(double));
    memcpy(s->dt, src->dt, (size_t)s->H * sizeof(double));
    memcpy(s->A_real, src->A_real, SN * sizeof(double));
    memcpy(s->A_imag, src->A_imag, SN * sizeof(double));
    memcpy(s->B, src->B, SN * sizeof(double complex));
    memcpy(s->Lambda, src->Lambda, SN * sizeof(double complex));
    memcpy(s->P, src->P, SN * (size_t)s->rank * sizeof(double complex));
    memcpy(s->C, src->C, CN * sizeof(double complex));
    memcpy(s->D, src->D, (size_t)s->Cp * (size_t)s->H * sizeof(double));
    s->l_kernel = src->l_kernel;
    *out = s;
    return S4_OK;
}

s4_status s4_ssm_get_config(const s4_ssm *ssm, s4_ssm_config *config)
{
    if (!ssm || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_ssm_get_config: %s is NULL",
                        !ssm ? "ssm" : "config");
    *config = ssm->cfg;
    return S4_OK;
}

int64_t s4_ssm_l_kernel(const s4_ssm *ssm) { return ssm ? ssm->l_kernel : 0; }

size_t s4_ssm_param_size(const s4_ssm *s, s4_param which)
{
    if (!s)
        return 0;
    const size_t SN = (size_t)s->S * (size_t)s->Nh;
    switch (which) {
    case S4_PARAM_INV_DT:
    case S4_PARAM_DT: return (size_t)s->H;
    case S4_PARAM_A_REAL:
    case S4_PARAM_A_IMAG: return SN;
    case S4_PARAM_B:
    case S4_PARAM_LAMBDA: return 2 * SN;
    case S4_PARAM_P: return 2 * SN * (size_t)s->rank;
    case S4_PARAM_C: return 2 * (size_t)s->rows * (size_t)s->H * (size_t)s->Nh;
    case S4_PARAM_D: return (size_t)s->Cp * (size_t)s->H;
    }
    return 0;
}

s4_status s4_ssm_get_param(const s4_ssm *s, s4_param which, double *out, size_t n)
{
    static const char fn[] = "s4_ssm_get_param";
    if (!s || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !s ? "ssm" : "out");
    const size_t need = s4_ssm_param_size(s, which);
    if (need == 0 && which == S4_PARAM_P)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: a diagonal (S4D) bank has no P", fn);
    if (need == 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: which = %d is unknown", fn, (int)which);
    if (n < need)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: n = %zu is smaller than the %zu values "
                        "of parameter %d", fn, n, need, (int)which);
    const void *src = NULL;
    switch (which) {
    case S4_PARAM_INV_DT: src = s->inv_dt; break;
    case S4_PARAM_A_REAL: src = s->A_real; break;
    case S4_PARAM_A_IMAG: src = s->A_imag; break;
    case S4_PARAM_B: src = s->B; break;
    case S4_PARAM_P: src = s->P; break;
    case S4_PARAM_C: src = s->C; break;
    case S4_PARAM_D: src = s->D; break;
    case S4_PARAM_DT: src = s->dt; break;
    case S4_PARAM_LAMBDA: src = s->Lambda; break;
    }
    memcpy(out, src, need * sizeof(double));
    return S4_OK;
}

/* out[m] = X_f[m] + sign * (M^T X_f)[m] for m < Nh, with X_f = [X; conj X] (docs/design.md 7.1:
 * sign -1 turns C into C-tilde, sign +1 doubles C-tilde's length). */
static void transpose_update(int N, const double complex *M, const double complex *X,
                             double sign, double complex *out)
{
    const int Nh = N / 2;
    for (int m = 0; m < Nh; m++) {
        double complex acc = 0.0;
        for (int n = 0; n < N; n++) {
            const double complex xn = n < Nh ? X[n] : conj(X[n - Nh]);
            acc += M[(size_t)n * (size_t)N + (size_t)m] * xn;
        }
        out[m] = X[m] + sign * acc;
    }
}

/* Applies transpose_update to every kernel row of feature h in C (in place). */
static void update_rows(const s4_ssm *s, double complex *C, int h, const double complex *M,
                        double sign, double complex *tmp)
{
    for (int c = 0; c < s->rows; c++) {
        double complex *row = C + ((size_t)c * (size_t)s->H + (size_t)h) * (size_t)s->Nh;
        transpose_update(s->N, M, row, sign, tmp);
        memcpy(row, tmp, (size_t)s->Nh * sizeof *tmp);
    }
}

s4_status s4_ssm_setup_length(s4_ssm *s, int64_t L)
{
    static const char fn[] = "s4_ssm_setup_length";
    if (!s)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ssm is NULL", fn);
    if (L < 1 || L > ((int64_t)1 << 40))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be in [1, 2^40]", fn,
                        (long long)L);
    if ((s->l_kernel > 0 && L <= s->l_kernel) || s->cfg.mode == S4_MODE_DIAG)
        return S4_OK; /* a diagonal bank's C is always raw (docs/design.md 10) */

    const int N = s->N, Nh = s->Nh;
    const size_t NN = (size_t)N * (size_t)N;
    const size_t CN = (size_t)s->rows * (size_t)s->H * (size_t)Nh;
    /* New C into a copy, committed only when every feature succeeded. */
    double complex *Cnew = s4__alloc(CN, sizeof *Cnew);
    double complex *dA = s4__alloc(NN, sizeof *dA);
    double complex *M = s4__alloc(NN, sizeof *M);
    double complex *scratch = s4__alloc(2 * NN, sizeof *scratch);
    double complex *tmp = s4__alloc((size_t)Nh, sizeof *tmp);
    s4_status st = S4_OK;
    int64_t Lk_new = s->l_kernel;
    if (!Cnew || !dA || !M || !scratch || !tmp) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for N = %d", fn, N);
        goto done;
    }
    memcpy(Cnew, s->C, CN * sizeof *Cnew);
    for (int h = 0; h < s->H && st == S4_OK; h++) {
        if ((st = s4__discretize(s, h, 1.0, dA, NULL)) != S4_OK)
            break;
        int64_t Lk = s->l_kernel;
        if (Lk == 0) {
            /* Raw C: C-tilde = (I - dA^L)^T C_f directly. */
            if ((st = s4__matrix_power(N, dA, L, M, scratch)) != S4_OK)
                break;
            update_rows(s, Cnew, h, M, -1.0, tmp);
            Lk = L;
        } else {
            /* The reference's doubling: C-tilde <- (I + dA^Lk)^T C-tilde, Lk <- 2 Lk. */
            if ((st = s4__matrix_power(N, dA, Lk, M, scratch)) != S4_OK)
                break;
            while (L > Lk) {
                update_rows(s, Cnew, h, M, 1.0, tmp);
                Lk *= 2;
                if (L > Lk && (st = s4__matrix_power(N, M, 2, M, scratch)) != S4_OK)
                    break;
            }
        }
        Lk_new = Lk;
    }
    for (size_t i = 0; st == S4_OK && i < 2 * CN; i++)
        if (!isfinite(((const double *)Cnew)[i]))
            st = s4__fail(S4_ERR_NUMERICAL, "%s: C-tilde for L = %lld is not finite", fn,
                          (long long)L);
    if (st == S4_OK) {
        memcpy(s->C, Cnew, CN * sizeof *Cnew);
        s->l_kernel = Lk_new;
    }
done:
    s4__free(Cnew);
    s4__free(dA);
    s4__free(M);
    s4__free(scratch);
    s4__free(tmp);
    return st;
}

s4_status s4__raw_C_feature(const s4_ssm *s, int h, double complex *C)
{
    static const char fn[] = "s4_ssm_raw_C";
    const int N = s->N, Nh = s->Nh, rows = s->rows;
    for (int c = 0; c < rows; c++)
        memcpy(C + (size_t)c * Nh, s->C + ((size_t)c * (size_t)s->H + (size_t)h) * Nh,
               (size_t)Nh * sizeof *C);
    if (s->l_kernel == 0)
        return S4_OK;

    const size_t NN = (size_t)N * (size_t)N;
    double complex *dA = s4__alloc(NN, sizeof *dA);
    double complex *M = s4__alloc(NN, sizeof *M);
    double complex *T = s4__alloc(NN, sizeof *T);
    double complex *scratch = s4__alloc(2 * NN, sizeof *scratch);
    double complex *X = s4__alloc((size_t)N * (size_t)rows, sizeof *X);
    lapack_int *ipiv = s4__alloc((size_t)N, sizeof *ipiv);
    s4_status st = S4_OK;
    if (!dA || !M || !T || !scratch || !X || !ipiv) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for N = %d", fn, N);
        goto done;
    }
    if ((st = s4__discretize(s, h, 1.0, dA, NULL)) != S4_OK ||
        (st = s4__matrix_power(N, dA, s->l_kernel, M, scratch)) != S4_OK)
        goto done;
    /* T = (I - dA^Lk)^T, right-hand sides X[:, c] = C-tilde_f of row c. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            T[(size_t)i * N + j] = (i == j ? 1.0 : 0.0) - M[(size_t)j * N + i];
    for (int c = 0; c < rows; c++)
        for (int n = 0; n < N; n++)
            X[(size_t)n * rows + c] =
                n < Nh ? C[(size_t)c * Nh + n] : conj(C[(size_t)c * Nh + n - Nh]);
    s4__blas_hold(); /* an N x N system: OpenBLAS's threads only cost (core/internal.h) */
    const lapack_int info = LAPACKE_zgesv(LAPACK_ROW_MAJOR, N, rows, T, N, ipiv, X, rows);
    s4__blas_release();
    if (info != 0) {
        st = s4__fail(S4_ERR_NUMERICAL,
                      "%s: I - dA^Lk of feature %d is singular (zgesv info %d): C cannot be "
                      "recovered from C-tilde for l_kernel = %lld",
                      fn, h, (int)info, (long long)s->l_kernel);
        goto done;
    }
    for (int c = 0; c < rows; c++)
        for (int n = 0; n < Nh; n++)
            C[(size_t)c * Nh + n] = X[(size_t)n * rows + c];
done:
    s4__free(dA);
    s4__free(M);
    s4__free(T);
    s4__free(scratch);
    s4__free(X);
    s4__free(ipiv);
    return st;
}

s4_status s4_ssm_raw_C(const s4_ssm *s, double *C, size_t n)
{
    static const char fn[] = "s4_ssm_raw_C";
    if (!s || !C)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !s ? "ssm" : "C");
    const size_t need = s4_ssm_param_size(s, S4_PARAM_C);
    if (n < need)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: n = %zu is smaller than %zu", fn, n, need);
    const size_t Nh = (size_t)s->Nh, rows = (size_t)s->rows;
    double complex *out = s4__alloc(need / 2, sizeof *out);
    double complex *feat = s4__alloc(rows * Nh, sizeof *feat);
    s4_status st = S4_OK;
    if (!out || !feat)
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int h = 0; st == S4_OK && h < s->H; h++) {
        if ((st = s4__raw_C_feature(s, h, feat)) != S4_OK)
            break;
        for (size_t c = 0; c < rows; c++)
            memcpy(out + (c * (size_t)s->H + (size_t)h) * Nh, feat + c * Nh, Nh * sizeof *feat);
    }
    if (st == S4_OK)
        memcpy(C, out, need * sizeof(double));
    s4__free(out);
    s4__free(feat);
    return st;
}
