/* Streaming: convolution mode chunk by chunk with a carried state (DESIGN.md 9; the
 * reference's FFTConv.forward(x, state) with SSMKernelDPLR.forward(state=...) and
 * forward_state). A chunk u_0..u_{T-1} with incoming state x0 (the state after the previous
 * chunk's last step) gives
 *   y_t     = (K * u)_t + D u_t + 2 Re(C^T dA^(t+1) x0)            t < T
 *   x_{T-1} = dA^T x0 + sum_j dA^(T-1-j) dB u_j                      (the outgoing state)
 * The convolution runs in float through FFTs of a kernel of length max_chunk; the state
 * terms run the O(N) Woodbury recurrence (DESIGN.md 6) in double.
 *
 * Streaming follows the exact recurrence: the kernel is the untruncated K[l] = C^T dA^l dB,
 * l < max_chunk, and the state carries everything older. So concatenated chunks equal one
 * chunk of the whole sequence, equal step mode (s4_step_*), and equal conv mode
 * (s4_forward_*) when the layer's l_max is 0 or >= the sequence length (with a shorter
 * l_max the reference truncates the conv-mode kernel, and conv mode differs legitimately).
 * SPDX-License-Identifier: Apache-2.0 */
#include "diag.h"
#include "discretize.h"
#include "layer.h"
#include "vandermonde.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

struct s4_stream {
    int B, H, N, Nh, rank, Cp, Fp, Fo;
    int64_t Lc;           /* max_chunk */
    int transposed, swap;
    s4_conv *conv;        /* B = 1, L = l = max_chunk: exact for zero-padded chunks */
    float *spec;          /* [C' x H x (n/2 + 1) x 2] */
    float *D;             /* [C' x H] */
    s4_head head;
    s4_linear_step *lin;  /* [H] Woodbury step at dt * rate, arrays in lin_mem */
    double complex *lin_mem;
    double complex *Ch;   /* [H x C' x N/2] raw C */
    /* S4D: the state terms by Vandermonde products, as the reference's SSMKernelDiag does
     * (its forward(state=) folds the state into the kernel; forward_state is the transposed
     * product), instead of stepping the recurrence: both parallel over the chunk. */
    bool diag;
    s4_vand vand;         /* rows C', L = max_chunk */
    double complex *lz;   /* [H x N/2] log dA at dt * rate */
    double complex *dAd;  /* [H x N/2] dA */
    double complex *dBd;  /* [H x N/2] dB */
    size_t vbytes;        /* one thread's Vandermonde scratch */
    int threads;          /* features split between OpenMP threads */
    size_t conv_work;
    size_t work_size;
    void *own_work;
};

typedef struct workspace {
    unsigned char *conv; /* conv_work bytes */
    float *u1;           /* [H x Lc] one sequence's chunk, zero-padded */
    float *yc;           /* [C' x H x Lc] convolution + D u */
    float *pre;          /* [Fp x T] flattened features (dense in T for the head) */
    float *head;         /* s4__head_scratch(Lc) floats */
    float *yt;           /* [Fo x Lc] head output before the (B, L, F) transpose */
    double complex *xn;  /* [B x H x N/2] outgoing states, committed at the end */
    unsigned char *thr;  /* threads x thr_bytes: per-thread scratch (tscratch) */
    size_t thr_bytes;
} workspace;

/* One thread's scratch. */
typedef struct tscratch {
    double complex *xf;   /* [N/2] free evolution dA^(t+1) x0 (DPLR), or S (S4D) */
    double complex *w;    /* [N/2] Woodbury scratch */
    double complex *coef; /* [C' x N/2] S4D state coefficients */
    float *kst;           /* [C' x Lc] S4D state outputs */
    unsigned char *v;     /* vbytes: Vandermonde scratch */
} tscratch;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Carves one thread's scratch from base (aligned) or, with t NULL, sizes it; 0 on overflow. */
static size_t carve_thread(const s4_stream *p, unsigned char *base, tscratch *t)
{
    const size_t Nh = (size_t)p->Nh, Cp = (size_t)p->Cp;
    size_t CN = 0, CL = 0, off = 0;
    bool ok = s4__mul_size(Cp, p->diag ? Nh : 0, &CN) &&
              s4__mul_size(Cp, p->diag ? (size_t)p->Lc : 0, &CL);
#define TREGION(field, type, count)                                                           \
    do {                                                                                      \
        size_t n_ = 0;                                                                        \
        ok = ok && s4__mul_size((count), sizeof(type), &n_) && n_ <= SIZE_MAX - ALIGN &&      \
             s4__add_size(off, round_up(n_, ALIGN), &n_);                                     \
        if (ok && t)                                                                          \
            t->field = (type *)(void *)(base + off);                                          \
        if (ok)                                                                               \
            off = n_;                                                                         \
    } while (0)
    TREGION(xf, double complex, Nh);
    TREGION(w, double complex, Nh);
    TREGION(coef, double complex, CN);
    TREGION(kst, float, CL);
    TREGION(v, unsigned char, p->diag ? p->vbytes : 0);
#undef TREGION
    return ok ? off : 0;
}

static size_t carve(const s4_stream *p, unsigned char *base, workspace *w)
{
    const size_t Lc = (size_t)p->Lc, H = (size_t)p->H, Nh = (size_t)p->Nh;
    size_t HL = 0, CHL = 0, FpL = 0, FoL = 0, BHN = 0, off = 0;
    bool ok = s4__mul_size(H, Lc, &HL) && s4__mul_size(HL, (size_t)p->Cp, &CHL) &&
              s4__mul_size((size_t)p->Fp, Lc, &FpL) && s4__mul_size((size_t)p->Fo, Lc, &FoL) &&
              s4__mul_size((size_t)p->B * H, Nh, &BHN);
#define REGION(field, type, count)                                                            \
    do {                                                                                      \
        size_t n_ = 0;                                                                        \
        ok = ok && s4__mul_size((count), sizeof(type), &n_) && n_ <= SIZE_MAX - ALIGN &&      \
             s4__add_size(off, round_up(n_, ALIGN), &n_);                                     \
        if (ok && w)                                                                          \
            w->field = (type *)(void *)(base + off);                                          \
        if (ok)                                                                               \
            off = n_;                                                                         \
    } while (0)
    REGION(conv, unsigned char, p->conv_work);
    REGION(u1, float, HL);
    REGION(yc, float, CHL);
    REGION(pre, float, FpL);
    REGION(head, float, s4__head_scratch(&p->head, p->Lc));
    REGION(yt, float, p->transposed ? 0 : FoL);
    REGION(xn, double complex, BHN);
    const size_t tb = carve_thread(p, NULL, NULL);
    size_t tall = 0;
    ok = ok && tb > 0 && s4__mul_size(tb, (size_t)p->threads, &tall);
    if (w)
        w->thr_bytes = tb;
    REGION(thr, unsigned char, tall);
#undef REGION
    return ok ? off : 0;
}

static void plan_free(s4_stream *p)
{
    if (!p)
        return;
    s4_conv_destroy(p->conv);
    s4__free(p->spec);
    s4__free(p->D);
    s4__head_free(&p->head);
    s4__free(p->lin);
    s4__free(p->lin_mem);
    s4__free(p->Ch);
    s4__free(p->lz);
    s4__free(p->dAd);
    s4__free(p->dBd);
    s4__free(p->own_work);
    s4__free(p);
}

void s4_stream_destroy(s4_stream *plan) { plan_free(plan); }

size_t s4_stream_workspace_size(const s4_stream *plan) { return plan ? plan->work_size : 0; }

static s4_status rewrap(s4_status st, const char *fn, const char *what)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", s4_last_error());
    return s4__fail(st, "%s: %s: %s", fn, what, msg);
}

s4_status s4_stream_create(s4_layer *layer, int B, int64_t max_chunk,
                           const s4_forward_options *options, s4_stream **out)
{
    static const char fn[] = "s4_stream_create";
    if (!layer || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !layer ? "layer" : "out");
    double rate;
    s4_planner planner;
    int threads;
    s4_status st = s4__forward_options(fn, options, &rate, &planner, &threads);
    if (st != S4_OK)
        return st;
    if (B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be >= 1", fn, B);
    /* The head's BLAS calls and the FFTs index columns with int. */
    if (max_chunk < 1 || max_chunk > INT32_MAX / 2)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: max_chunk = %lld must be in [1, 2^30 - 1]",
                        fn, (long long)max_chunk);
    if (layer->cfg.bidirectional)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the layer is bidirectional: its backward kernel looks at future "
                        "inputs, so it cannot be streamed",
                        fn);
    const s4_ssm *lssm = layer->ssm;
    if (lssm->rank > S4_LINEAR_MAX_RANK)
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: rank = %d above %d", fn, lssm->rank,
                        S4_LINEAR_MAX_RANK);
    const int H = lssm->H, Nh = lssm->Nh, Cp = lssm->Cp, r = lssm->rank;
    const s4_head *head = &layer->head;
    size_t n_u, n_y, n_x;
    if (!s4__mul_size((size_t)B * (size_t)H, (size_t)max_chunk * sizeof(float), &n_u) ||
        !s4__mul_size((size_t)B * (size_t)head->Fo, (size_t)max_chunk * sizeof(float), &n_y) ||
        !s4__mul_size((size_t)B * (size_t)H, (size_t)Nh * 2 * sizeof(double), &n_x))
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: B = %d, max_chunk = %lld: the batch's arrays overflow size_t", fn,
                        B, (long long)max_chunk);

    /* Same kernel length as s4_forward_create would use for inputs of max_chunk steps. */
    int64_t l;
    if ((st = s4__kernel_length(fn, layer, max_chunk, rate, &l)) != S4_OK)
        return st;
    s4_ssm *ssm = NULL, *kssm = NULL;
    s4_kernel *kplan = NULL;
    float *K = NULL;
    s4_stream *p = NULL;
    double complex *Cfeat = NULL;

    /* The reference's length rules on a clone, committed to the layer on success (as
     * s4_forward_create does), so a layer's C-tilde evolves the same whichever mode runs. */
    if ((st = s4_ssm_clone(lssm, &ssm)) != S4_OK)
        return st;
    if ((st = s4__setup_lengths(ssm, layer->cfg.l_max, l, rate)) != S4_OK)
        goto fail;

    p = s4__calloc(1, sizeof *p);
    if (!p) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto fail;
    }
    p->B = B;
    p->H = H;
    p->N = lssm->N;
    p->Nh = Nh;
    p->rank = r;
    p->Cp = Cp;
    p->Fp = head->Fp;
    p->Fo = head->Fo;
    p->Lc = max_chunk;
    p->transposed = layer->cfg.transposed;
    p->swap = layer->cfg.swap_channels && Cp > 1;
    p->threads = threads > 0 ? threads : omp_get_max_threads();
    if (p->threads > H)
        p->threads = H;
    p->diag = lssm->cfg.mode == S4_MODE_DIAG;
    if (p->diag) {
        s4__vand_init(&p->vand, Nh, Cp, max_chunk);
        const size_t ve = s4__vand_work_bytes(&p->vand), vt = s4__vand_transpose_bytes(&p->vand);
        p->vbytes = ve > vt ? ve : vt;
        p->lz = s4__alloc((size_t)H * (size_t)Nh, sizeof *p->lz);
        p->dAd = s4__alloc((size_t)H * (size_t)Nh, sizeof *p->dAd);
        p->dBd = s4__alloc((size_t)H * (size_t)Nh, sizeof *p->dBd);
        if (!ve || !vt || !p->lz || !p->dAd || !p->dBd) {
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for H = %d, N = %d", fn, H,
                          p->N);
            goto fail;
        }
        for (int h = 0; h < H; h++) {
            const size_t o = (size_t)h * (size_t)Nh;
            if ((st = s4__diag_modes(ssm, h, rate, p->dAd + o, p->lz + o, p->dBd + o)) !=
                S4_OK) {
                st = rewrap(st, fn, "S4D discretization");
                goto fail;
            }
        }
    }
    if ((st = s4__head_copy(head, &p->head)) != S4_OK)
        goto fail;
    p->D = s4__alloc((size_t)Cp * (size_t)H, sizeof *p->D);
    p->lin = s4__alloc((size_t)H, sizeof *p->lin);
    p->lin_mem = s4__alloc((size_t)H * (size_t)Nh * (3 + 3 * (size_t)r), sizeof *p->lin_mem);
    p->Ch = s4__alloc((size_t)H * (size_t)Cp * (size_t)Nh, sizeof *p->Ch);
    Cfeat = s4__alloc((size_t)Cp * (size_t)Nh, sizeof *Cfeat);
    if (!p->D || !p->lin || !p->lin_mem || !p->Ch || !Cfeat) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for H = %d, N = %d", fn, H,
                      p->N);
        goto fail;
    }
    for (size_t i = 0; i < (size_t)Cp * (size_t)H; i++)
        p->D[i] = (float)ssm->D[i];

    /* The kernel bank: the raw C, dt already scaled by rate, C-tilde for exactly max_chunk.
     * Then K[l] = C^T dA^l dB for l < max_chunk at every rate. (At rate 1 the layer's own
     * C-tilde would give the same kernel; at other rates the reference's rule -- C-tilde of
     * the trained dt, nodes round(Lk / rate) -- only approximates the recurrence at
     * dt * rate, and chunks would no longer compose.) Raw C and the step data come from the
     * committed C-tilde, at the trained dt for C (DESIGN.md 9). */
    if ((st = s4_ssm_clone(ssm, &kssm)) != S4_OK)
        goto fail;
    for (int h = 0; h < H; h++) {
        s4_linear_step *L = &p->lin[h];
        double complex *m = p->lin_mem + (size_t)h * Nh * (3 + 3 * (size_t)r);
        *L = (s4_linear_step){.Nh = Nh,
                              .rank = r,
                              .Dg = m,
                              .E = m + Nh,
                              .B = m + 2 * (size_t)Nh,
                              .P = m + 3 * (size_t)Nh,
                              .Q = m + 3 * (size_t)Nh + (size_t)r * Nh,
                              .R = m + 3 * (size_t)Nh + 2 * (size_t)r * Nh};
        if ((st = s4__raw_C_feature(ssm, h, Cfeat)) != S4_OK ||
            (st = s4__linear_setup(ssm, h, rate, L)) != S4_OK) {
            char what[32];
            snprintf(what, sizeof what, "feature %d", h);
            st = rewrap(st, fn, what);
            goto fail;
        }
        memcpy(p->Ch + (size_t)h * Cp * Nh, Cfeat, (size_t)Cp * (size_t)Nh * sizeof *Cfeat);
        for (int c = 0; c < kssm->rows; c++)
            memcpy(kssm->C + ((size_t)c * (size_t)H + (size_t)h) * Nh, Cfeat + (size_t)c * Nh,
                   (size_t)Nh * sizeof *Cfeat);
        kssm->dt[h] *= rate;
    }
    kssm->l_kernel = 0;
    if ((st = s4_ssm_setup_length(kssm, max_chunk)) != S4_OK) {
        st = rewrap(st, fn, "C-tilde of the chunk kernel");
        goto fail;
    }
    const s4_kernel_options kopt = {.rate = 1.0, .threads = threads};
    if ((st = s4_kernel_create(kssm, max_chunk, &kopt, &kplan)) != S4_OK)
        goto fail;

    /* Circular convolution of length n >= 2 max_chunk - 1 with input support [0, T) is the
     * linear one for t < T <= max_chunk. */
    const s4_conv_desc desc = {.B = 1,
                               .H = H,
                               .channels = Cp,
                               .bidirectional = 0,
                               .L = max_chunk,
                               .l = max_chunk,
                               .planner = planner};
    if ((st = s4_conv_create(&desc, &p->conv)) != S4_OK)
        goto fail;
    p->conv_work = s4_conv_workspace_size(p->conv);
    p->work_size = carve(p, NULL, NULL);
    if (p->work_size == 0 || !s4__add_size(p->work_size, ALIGN, &p->work_size)) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: workspace for max_chunk = %lld overflows", fn,
                      (long long)max_chunk);
        goto fail;
    }
    size_t nspec;
    K = s4__alloc((size_t)Cp * (size_t)H * (size_t)max_chunk, sizeof *K);
    p->own_work = s4__malloc(p->work_size);
    if (s4__mul_size(s4_conv_spectrum_size(p->conv), 2 * sizeof(float), &nspec))
        p->spec = s4__malloc(nspec);
    if (!K || !p->own_work || !p->spec) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for max_chunk = %lld", fn,
                      (long long)max_chunk);
        goto fail;
    }
    if ((st = s4_kernel_execute(kplan, kssm, K, (size_t)max_chunk, NULL, 0)) != S4_OK)
        goto fail;
    unsigned char *base = p->own_work;
    base += (ALIGN - (uintptr_t)base % ALIGN) % ALIGN;
    if ((st = s4_conv_spectrum(p->conv, K, (size_t)max_chunk, p->spec, base, p->conv_work)) !=
        S4_OK)
        goto fail;

    if (ssm->l_kernel != lssm->l_kernel) {
        memcpy(layer->ssm->C, ssm->C,
               (size_t)ssm->rows * (size_t)ssm->H * (size_t)ssm->Nh * sizeof *ssm->C);
        layer->ssm->l_kernel = ssm->l_kernel;
    }
    s4__free(K);
    s4__free(Cfeat);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(kssm);
    s4_ssm_destroy(ssm);
    *out = p;
    return S4_OK;

fail:
    s4__free(K);
    s4__free(Cfeat);
    plan_free(p);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(kssm);
    s4_ssm_destroy(ssm);
    return st;
}


/* x <- dA x + dB u on the half state (s4__linear_step, in place with scratch w). */
static void linear_step_inplace(const s4_linear_step *L, double complex *x, double u,
                                double complex *w)
{
    const int Nh = L->Nh, r = L->rank;
    double qx[S4_LINEAR_MAX_RANK], rw[S4_LINEAR_MAX_RANK];
    for (int q = 0; q < r; q++) {
        const double complex *Q = L->Q + (size_t)q * Nh;
        double acc = 0.0;
        for (int n = 0; n < Nh; n++)
            acc += s4__cmul_re(Q[n], x[n]);
        qx[q] = 2.0 * acc;
    }
    for (int n = 0; n < Nh; n++) {
        double complex v = s4__cmul(L->E[n], x[n]) + 2.0 * u * L->B[n];
        for (int q = 0; q < r; q++)
            v -= L->P[(size_t)q * Nh + n] * qx[q];
        w[n] = v;
    }
    for (int q = 0; q < r; q++) {
        const double complex *R = L->R + (size_t)q * Nh;
        double acc = 0.0;
        for (int n = 0; n < Nh; n++)
            acc += s4__cmul_re(R[n], w[n]);
        rw[q] = 2.0 * acc;
    }
    for (int n = 0; n < Nh; n++) {
        double complex v = w[n];
        for (int q = 0; q < r; q++)
            v -= L->P[(size_t)q * Nh + n] * rw[q];
        x[n] = s4__cmul(L->Dg[n], v);
    }
}

/* DPLR state terms of feature h by the O(N) recurrence: the free evolution
 * x_t = dA^(t+1) x0 adds 2 Re(C^T x_t) to yc (skipped for a zero state: the first chunk),
 * and the outgoing state runs the full recurrence from x0 over the chunk's inputs uh. */
static void linear_state(const s4_stream *p, size_t h, const double complex *x0, bool zero,
                         const float *uh, size_t Tz, float *yc, double complex *xn,
                         const tscratch *ts)
{
    const s4_linear_step *L = &p->lin[h];
    const size_t H = (size_t)p->H, Nh = (size_t)p->Nh, Cp = (size_t)p->Cp, Lc = (size_t)p->Lc;
    const double complex *Ch = p->Ch + h * Cp * Nh;
    if (!zero) {
        memcpy(ts->xf, x0, Nh * sizeof *ts->xf);
        for (size_t t = 0; t < Tz; t++) {
            linear_step_inplace(L, ts->xf, 0.0, ts->w);
            for (size_t c = 0; c < Cp; c++) {
                const double complex *Cc = Ch + c * Nh;
                double acc = 0.0;
                for (size_t n = 0; n < Nh; n++)
                    acc += s4__cmul_re(Cc[n], ts->xf[n]);
                yc[(c * H + h) * Lc + t] += (float)(2.0 * acc);
            }
        }
    }
    memcpy(xn, x0, Nh * sizeof *xn);
    for (size_t t = 0; t < Tz; t++)
        linear_step_inplace(L, xn, (double)uh[t], ts->w);
}

/* S4D state terms of feature h (the reference's SSMKernelDiag.forward(state=) and
 * forward_state): the free evolution 2 Re sum_n C_n dA_n^(t+1) x0_n is a Vandermonde
 * product with coefficients 2 C_n dA_n x0_n, and the outgoing state is
 * dA^T x0 + dB sum_j u_j dA^(T-1-j), a transposed one. False if the free evolution
 * leaves the float range. */
static bool diag_state(const s4_stream *p, size_t h, const double complex *x0, bool zero,
                       const float *uh, size_t Tz, float *yc, double complex *xn,
                       const tscratch *ts)
{
    const size_t H = (size_t)p->H, Nh = (size_t)p->Nh, Cp = (size_t)p->Cp, Lc = (size_t)p->Lc;
    const double complex *lz = p->lz + h * Nh, *dA = p->dAd + h * Nh, *dB = p->dBd + h * Nh;
    s4_vand v = p->vand; /* the plan's blocks, this chunk's length */
    v.L = (int64_t)Tz;
    v.nb = (v.L + v.T - 1) / v.T;
    if (!zero) {
        const double complex *Ch = p->Ch + h * Cp * Nh;
        for (size_t c = 0; c < Cp; c++)
            for (size_t n = 0; n < Nh; n++)
                ts->coef[c * Nh + n] = 2.0 * s4__cmul(Ch[c * Nh + n], s4__cmul(dA[n], x0[n]));
        if (!s4__vand_eval(&v, lz, NULL, ts->coef, ts->kst, Lc, ts->v))
            return false;
        for (size_t c = 0; c < Cp; c++) {
            float *row = yc + (c * H + h) * Lc;
            const float *k = ts->kst + c * Lc;
            for (size_t t = 0; t < Tz; t++)
                row[t] += k[t];
        }
    }
    s4__vand_transpose(&v, lz, uh, 1, ts->xf, ts->v);
    for (size_t n = 0; n < Nh; n++) {
        const double complex aT = cexp(lz[n] * (double)Tz); /* dA^T, exact */
        xn[n] = s4__cmul(aT, x0[n]) + s4__cmul(dB[n], ts->xf[n]);
    }
    return true;
}

s4_status s4_stream_execute(const s4_stream *p, double *state, const float *u, int64_t T,
                            float *y, void *work, size_t work_size)
{
    static const char fn[] = "s4_stream_execute";
    if (!p || !state || !u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !state ? "state" : !u ? "u" : "y");
    if ((uintptr_t)state % sizeof(double) != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state = %p is not aligned to %zu bytes",
                        fn, (void *)state, sizeof(double));
    if (T < 1 || T > p->Lc)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: T = %lld must be in [1, max_chunk = %lld]", fn, (long long)T,
                        (long long)p->Lc);
    const size_t n_in = (size_t)p->B * (size_t)p->H * (size_t)T;
    const size_t bad = s4__first_nonfinite_f(u, n_in);
    if (bad < n_in)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: u[%zu] = %g is not finite", fn, bad,
                        (double)u[bad]);
    const size_t n_state = (size_t)p->B * (size_t)p->H * (size_t)p->Nh * 2;
    const size_t bad_state = s4__first_nonfinite_d(state, n_state);
    if (bad_state < n_state)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state[%zu] = %g is not finite", fn,
                        bad_state, state[bad_state]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;
    workspace ws;
    carve(p, base, &ws);

    const size_t H = (size_t)p->H, Nh = (size_t)p->Nh, Cp = (size_t)p->Cp;
    const size_t Lc = (size_t)p->Lc, Tz = (size_t)T, Fo = (size_t)p->Fo;
    const double complex *x_in = (const double complex *)(const void *)state;
    for (size_t b = 0; b < (size_t)p->B; b++) {
        /* u of this sequence as [H x Lc], zero past T. */
        for (size_t h = 0; h < H; h++) {
            float *dst = ws.u1 + h * Lc;
            if (p->transposed) {
                memcpy(dst, u + (b * H + h) * Tz, Tz * sizeof *dst);
            } else {
                const float *src = u + b * Tz * H + h;
                for (size_t t = 0; t < Tz; t++)
                    dst[t] = src[t * H];
            }
            memset(dst + Tz, 0, (Lc - Tz) * sizeof *dst);
        }
        const s4_status st =
            s4_conv_execute(p->conv, p->spec, ws.u1, Lc, p->D, ws.yc, Lc, ws.conv, p->conv_work);
        if (st != S4_OK)
            return st; /* not reached with the plan's own sizes */

        /* The state terms of every feature: independent, split between threads. */
        int overflow = 0;
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
        {
            tscratch ts;
            carve_thread(p, ws.thr + (size_t)omp_get_thread_num() * ws.thr_bytes, &ts);
#pragma omp for schedule(static)
            for (size_t h = 0; h < H; h++) {
                const double complex *x0 = x_in + (b * H + h) * Nh;
                double complex *xn = ws.xn + (b * H + h) * Nh;
                bool zero = true;
                for (size_t n = 0; n < Nh && zero; n++)
                    zero = creal(x0[n]) == 0.0 && cimag(x0[n]) == 0.0;
                if (p->diag) {
                    if (!diag_state(p, h, x0, zero, ws.u1 + h * Lc, Tz, ws.yc, xn, &ts)) {
#pragma omp atomic write
                        overflow = 1;
                    }
                } else {
                    linear_state(p, h, x0, zero, ws.u1 + h * Lc, Tz, ws.yc, xn, &ts);
                }
            }
        }
        if (overflow)
            return s4__fail(S4_ERR_NUMERICAL,
                            "%s: the incoming state's free evolution overflows float (a "
                            "growing mode, Re Lambda > 0); the state is unchanged",
                            fn);

        /* pre [Fp x T]: (c h) or (h c) rows, dense in T for the head. */
        for (size_t c = 0; c < Cp; c++)
            for (size_t h = 0; h < H; h++) {
                const size_t f = p->swap ? h * Cp + c : c * H + h;
                memcpy(ws.pre + f * Tz, ws.yc + (c * H + h) * Lc, Tz * sizeof *ws.pre);
            }
        if (p->transposed) {
            s4__head_apply(&p->head, ws.pre, T, y + b * Fo * Tz, ws.head);
        } else {
            s4__head_apply(&p->head, ws.pre, T, ws.yt, ws.head);
            float *yb = y + b * Tz * Fo;
            for (size_t o = 0; o < Fo; o++)
                for (size_t t = 0; t < Tz; t++)
                    yb[t * Fo + o] = ws.yt[o * Tz + t];
        }
    }
    memcpy(state, ws.xn, (size_t)p->B * H * Nh * sizeof *ws.xn);
    return S4_OK;
}
