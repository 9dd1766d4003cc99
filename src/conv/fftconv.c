/* FFT convolution of inputs with kernels (docs/design.md section 8): per feature, one real FFT
 * of the zero-padded input, a product with each channel's precomputed kernel spectrum and
 * one inverse real FFT, plus the skip term D u. Causal and bidirectional kernels.
 *
 * Circular convolution of length n equals the linear one on [0, L) when nothing wraps.
 * Only lags |t - j| < L ever reach the output, so the spectrum uses at most
 *   a = min(l, L)      forward taps  k0[0 .. a-1]  at circular positions m = 0 .. a-1,
 *   b = min(l, L - 1)  backward taps k1[0 .. b-1]  at positions n - d, d = 1 .. b
 * (b = 0 for a causal plan). For an output t < L and an input j < L the circular index is
 * m = t - j (0 <= m <= L - 1) or n - d with d = j - t (1 <= d <= L - 1). No wraparound needs
 *   (i)   the two tap regions disjoint:            a + b <= n;
 *   (ii)  a causal lag m >= a to miss k1's region:  L - 1 < n - b, i.e. n >= L + b;
 *   (iii) an anti-causal lag d > b to miss k0's:    n - (L - 1) >= a, i.e. n >= L + a - 1.
 * Causal (b = 0): n >= L + l - 1 gives (i)-(iii) since a <= l. Bidirectional: n >= L + l
 * gives them, since a <= l and b <= l - 1 when l < L, and a + b <= 2L - 1 < L + l otherwise.
 * So the header's FFT lengths are exact for every l, including l > L (where the brief's
 * alternative max(L + l, 2l) would only be needed if all l taps were placed).
 *
 * SPDX-License-Identifier: Apache-2.0 */
/* complex.h (via internal.h) before fftw3.h makes fftwf_complex a C99 float complex. */
#include "core/internal.h"

#include <fftw3.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>


struct s4_conv {
    int B, H, Cp, bidir;
    int64_t L, l;
    int n;            /* FFT length, 7-smooth */
    size_t nc;        /* n/2 + 1 complex entries of a half spectrum */
    int64_t taps0;    /* forward taps that reach the output: min(l, L) */
    int64_t taps1;    /* backward taps that do: min(l, L - 1), 0 when causal */
    size_t buf_bytes; /* workspace regions, each rounded up to S4_ALIGN */
    size_t spc_bytes;
    size_t work_size; /* 1 real buffer + 2 half spectra + alignment slack */
    void *own_work;   /* scratch used when a call passes work = NULL */
    fftwf_plan r2c;   /* buf -> U */
    fftwf_plan c2r;   /* W -> buf, destroys W */
};

/* Workspace: the real buffer (padded input, padded kernel, then the c2r output) and two
 * half spectra (the input's, and its product with one kernel row). Regions are S4_ALIGN-
 * aligned, so fftwf_alignment_of agrees with the fftwf_malloc'ed planning arrays (both 0),
 * which is what FFTW's new-array execute functions require. */
typedef struct workspace {
    float *buf;
    fftwf_complex *U, *W;
} workspace;

/* The caller's pointer is aligned up internally: work_size includes S4_ALIGN bytes of slack. */
static void carve(const s4_conv *p, void *work, workspace *w)
{
    unsigned char *base = work;
    base += (S4_ALIGN - (uintptr_t)base % S4_ALIGN) % S4_ALIGN;
    w->buf = (float *)(void *)base;
    w->U = (fftwf_complex *)(void *)(base + p->buf_bytes);
    w->W = (fftwf_complex *)(void *)(base + p->buf_bytes + p->spc_bytes);
}

/* Smallest 2^a 3^b 5^c 7^d >= m (1 <= m <= INT_MAX): lengths FFTW's codelets make fast.
 * Every candidate stays below 14 m, far from int64 overflow. */
static int64_t next_smooth(int64_t m)
{
    int64_t best = INT64_MAX;
    for (int64_t p7 = 1;; p7 *= 7) {
        for (int64_t p5 = p7;; p5 *= 5) {
            for (int64_t p3 = p5;; p3 *= 3) {
                int64_t v = p3;
                while (v < m)
                    v *= 2;
                if (v < best)
                    best = v;
                if (p3 >= m)
                    break;
            }
            if (p5 >= m)
                break;
        }
        if (p7 >= m)
            break;
    }
    return best;
}

static void plan_free(s4_conv *p)
{
    if (!p)
        return;
    if (p->r2c || p->c2r) {
        s4__fftw_lock();
        if (p->r2c)
            fftwf_destroy_plan(p->r2c);
        if (p->c2r)
            fftwf_destroy_plan(p->c2r);
        s4__fftw_unlock();
    }
    s4__free(p->own_work);
    s4__free(p);
}

void s4_conv_destroy(s4_conv *plan) { plan_free(plan); }

s4_status s4_conv_create(const s4_conv_desc *desc, s4_conv **out)
{
    static const char fn[] = "s4_conv_create";
    if (!desc || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !desc ? "desc" : "out");
    if (desc->B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->B = %d must be >= 1", fn, desc->B);
    if (desc->H < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->H = %d must be >= 1", fn, desc->H);
    if (desc->channels < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->channels = %d must be >= 1", fn,
                        desc->channels);
    if (desc->bidirectional != 0 && desc->bidirectional != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->bidirectional = %d must be 0 or 1",
                        fn, desc->bidirectional);
    if (desc->L < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->L = %lld must be >= 1", fn,
                        (long long)desc->L);
    if (desc->l < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: desc->l = %lld must be >= 1", fn,
                        (long long)desc->l);
    if (desc->planner != S4_PLANNER_ESTIMATE && desc->planner != S4_PLANNER_MEASURE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: desc->planner = %d is neither S4_PLANNER_ESTIMATE nor "
                        "S4_PLANNER_MEASURE",
                        fn, (int)desc->planner);
    /* FFT length: >= L + l - 1 causal, >= L + l bidirectional (top of this file). FFTW
     * plans take int lengths. */
    int64_t need;
    if (__builtin_add_overflow(desc->L, desc->l - 1 + desc->bidirectional, &need) ||
        need > INT_MAX)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: desc->L = %lld with desc->l = %lld needs an FFT longer than "
                        "FFTW's limit %d",
                        fn, (long long)desc->L, (long long)desc->l, INT_MAX);
    const int64_t n = next_smooth(need);
    if (n > INT_MAX)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: desc->L = %lld with desc->l = %lld needs an FFT of length %lld, "
                        "above FFTW's limit %d",
                        fn, (long long)desc->L, (long long)desc->l, (long long)n, INT_MAX);
    const size_t nc = (size_t)n / 2 + 1;
    /* The arrays the desc implies must be addressable, in bytes: the spectrum
     * [C' x H x nc x 2], the kernels [C'' x H x l], the outputs [B x C' x H x L] (the inputs
     * [B x H x L] are no larger). Execute and spectrum then index without overflow. */
    size_t rowsH, nspec, nK, nout;
    const bool fits =
        s4__mul_size((size_t)desc->channels * (1 + (size_t)desc->bidirectional),
                     (size_t)desc->H, &rowsH) &&
        s4__mul_size(rowsH, nc, &nspec) && nspec <= SIZE_MAX / (2 * sizeof(float)) &&
        s4__mul_size(rowsH, (size_t)desc->l, &nK) && nK <= SIZE_MAX / sizeof(float) &&
        s4__mul_size((size_t)desc->B, (size_t)desc->H, &nout) &&
        s4__mul_size(nout, (size_t)desc->channels, &nout) &&
        s4__mul_size(nout, (size_t)desc->L, &nout) && nout <= SIZE_MAX / sizeof(float);
    if (!fits)
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: desc sizes B = %d, H = %d, channels = %d, L = %lld, l = %lld: "
                        "array sizes overflow size_t",
                        fn, desc->B, desc->H, desc->channels, (long long)desc->L,
                        (long long)desc->l);

    s4_conv *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->B = desc->B;
    p->H = desc->H;
    p->Cp = desc->channels;
    p->bidir = desc->bidirectional;
    p->L = desc->L;
    p->l = desc->l;
    p->n = (int)n;
    p->nc = nc;
    p->taps0 = desc->l < desc->L ? desc->l : desc->L;
    p->taps1 = !p->bidir ? 0 : desc->l < desc->L - 1 ? desc->l : desc->L - 1;
    p->buf_bytes = s4__round_up((size_t)n * sizeof(float), S4_ALIGN);
    p->spc_bytes = s4__round_up(nc * sizeof(fftwf_complex), S4_ALIGN);
    p->work_size = p->buf_bytes + 2 * p->spc_bytes + S4_ALIGN;
    p->own_work = s4__malloc(p->work_size);
    if (!p->own_work) {
        plan_free(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace of FFT "
                        "length %lld", fn, (long long)n);
    }

    /* Planned on fftwf_malloc'ed arrays (aligned at least as FFTW's SIMD needs, like our
     * S4_ALIGN regions), out of place as execution will be. FFTW_DESTROY_INPUT lets both
     * transforms scribble on their input: the padded buffer and W are scratch rebuilt
     * before every use. MEASURE overwrites the arrays while planning: they are temporary. */
    const unsigned flags =
        (desc->planner == S4_PLANNER_MEASURE ? FFTW_MEASURE : FFTW_ESTIMATE) |
        FFTW_DESTROY_INPUT;
    float *buf = fftwf_alloc_real((size_t)n);
    fftwf_complex *U = fftwf_alloc_complex(nc), *W = fftwf_alloc_complex(nc);
    const bool allocated = buf && U && W;
    if (allocated) {
        s4__fftw_lock();
        p->r2c = fftwf_plan_dft_r2c_1d(p->n, buf, U, flags);
        p->c2r = fftwf_plan_dft_c2r_1d(p->n, W, buf, flags);
        s4__fftw_unlock();
    }
    fftwf_free(buf);
    fftwf_free(U);
    fftwf_free(W);
    if (!allocated) {
        plan_free(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory planning FFT length %lld",
                        fn, (long long)n);
    }
    if (!p->r2c || !p->c2r) {
        plan_free(p);
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: FFTW could not plan real FFTs of length %lld",
                        fn, (long long)n);
    }
    *out = p;
    return S4_OK;
}

int64_t s4_conv_fft_length(const s4_conv *plan) { return plan ? plan->n : 0; }

size_t s4_conv_spectrum_size(const s4_conv *plan)
{
    return plan ? (size_t)plan->Cp * (size_t)plan->H * plan->nc : 0;
}

size_t s4_conv_workspace_size(const s4_conv *plan) { return plan ? plan->work_size : 0; }

/* Workspace check shared by spectrum and execute: the caller's scratch, or the plan's own
 * when work is NULL (house style, like every other plan; such calls must not overlap). */
static s4_status check_work(const s4_conv *p, const char *fn, void **work, size_t work_size)
{
    if (!*work) {
        *work = p->own_work;
        return S4_OK;
    }
    if (work_size < p->work_size)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: work_size = %zu is smaller than the %zu bytes required", fn,
                        work_size, p->work_size);
    return S4_OK;
}

s4_status s4_conv_spectrum(const s4_conv *p, const float *K, size_t ldk, float *spec,
                           void *work, size_t work_size)
{
    static const char fn[] = "s4_conv_spectrum";
    if (!p || !K || !spec)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !K ? "K" : "spec");
    if (ldk < (size_t)p->l)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldk = %zu is smaller than l = %lld", fn,
                        ldk, (long long)p->l);
    const size_t rows = (size_t)p->Cp * (1 + (size_t)p->bidir);
    size_t nK;
    if (!s4__mul_size(rows * (size_t)p->H, ldk, &nK) || nK > SIZE_MAX / sizeof(float))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldk = %zu: C'' x H x ldk overflows", fn,
                        ldk);
    const s4_status st = check_work(p, fn, &work, work_size);
    if (st != S4_OK)
        return st;

    workspace w;
    carve(p, work, &w);
    const size_t n = (size_t)p->n, H = (size_t)p->H, Cp = (size_t)p->Cp;
    const size_t a = (size_t)p->taps0, b = (size_t)p->taps1;
    /* The 1/n of the unnormalised inverse FFT is folded in here, rounded once from double,
     * so execute needs no scaling pass. */
    const double scale = 1.0 / (double)p->n;
    for (size_t c = 0; c < Cp; c++) {
        for (size_t h = 0; h < H; h++) {
            /* Circular kernel G (top of this file): k0 at 0 .. a-1, k1 reversed at n-b .. n-1. */
            const float *k0 = K + (c * H + h) * ldk;
            memcpy(w.buf, k0, a * sizeof *w.buf);
            memset(w.buf + a, 0, (n - a - b) * sizeof *w.buf);
            if (b) {
                const float *k1 = K + ((Cp + c) * H + h) * ldk;
                for (size_t d = 1; d <= b; d++)
                    w.buf[n - d] = k1[d - 1];
            }
            fftwf_execute_dft_r2c(p->r2c, w.buf, w.U);
            const float *Uf = (const float *)(const void *)w.U;
            float *dst = spec + (c * H + h) * p->nc * 2;
            for (size_t k = 0; k < 2 * p->nc; k++)
                dst[k] = (float)((double)Uf[k] * scale);
        }
    }
    return S4_OK;
}

/* W = U * S over nc complex entries (interleaved re, im), in reals so that the compiler
 * vectorises it and emits no C99 Annex G NaN fix-up call. */
static void cmul(size_t nc, const float *restrict U, const float *restrict S, float *restrict W)
{
    for (size_t k = 0; k < nc; k++) {
        const float ur = U[2 * k], ui = U[2 * k + 1];
        const float sr = S[2 * k], si = S[2 * k + 1];
        W[2 * k] = ur * sr - ui * si;
        W[2 * k + 1] = ur * si + ui * sr;
    }
}

s4_status s4_conv_execute(const s4_conv *p, const float *spec, const float *u, size_t ldu,
                          const float *D, float *y, size_t ldy, void *work, size_t work_size)
{
    static const char fn[] = "s4_conv_execute";
    if (!p || !spec || !u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !spec ? "spec" : !u ? "u" : "y");
    if (ldu < (size_t)p->L)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldu = %zu is smaller than L = %lld", fn,
                        ldu, (long long)p->L);
    if (ldy < (size_t)p->L)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldy = %zu is smaller than L = %lld", fn,
                        ldy, (long long)p->L);
    /* B H and B C' H fit in size_t: s4_conv_create checked B C' H L. */
    const size_t B = (size_t)p->B, H = (size_t)p->H, Cp = (size_t)p->Cp, L = (size_t)p->L;
    size_t tmp;
    if (!s4__mul_size(B * H, ldu, &tmp) || tmp > SIZE_MAX / sizeof(float))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldu = %zu: B x H x ldu overflows", fn,
                        ldu);
    if (!s4__mul_size(B * Cp * H, ldy, &tmp) || tmp > SIZE_MAX / sizeof(float))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldy = %zu: B x C' x H x ldy overflows",
                        fn, ldy);
    const s4_status st = check_work(p, fn, &work, work_size);
    if (st != S4_OK)
        return st;

    workspace w;
    carve(p, work, &w);
    const size_t n = (size_t)p->n, nc = p->nc;
    for (size_t b = 0; b < B; b++) {
        for (size_t h = 0; h < H; h++) {
            const float *ur = u + (b * H + h) * ldu;
            memcpy(w.buf, ur, L * sizeof *w.buf);
            memset(w.buf + L, 0, (n - L) * sizeof *w.buf);
            fftwf_execute_dft_r2c(p->r2c, w.buf, w.U); /* buf is free again after this */
            for (size_t c = 0; c < Cp; c++) {
                cmul(nc, (const float *)(const void *)w.U, spec + (c * H + h) * nc * 2,
                     (float *)(void *)w.W);
                fftwf_execute_dft_c2r(p->c2r, w.W, w.buf);
                float *yr = y + ((b * Cp + c) * H + h) * ldy;
                if (D) {
                    const float Dv = D[c * H + h];
                    for (size_t t = 0; t < L; t++)
                        yr[t] = w.buf[t] + Dv * ur[t];
                } else {
                    memcpy(yr, w.buf, L * sizeof *yr);
                }
            }
        }
    }
    return S4_OK;
}
