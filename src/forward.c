/* Whole-layer forward in convolution mode (the reference S4Block.forward with FFTConv):
 * kernel and its spectrum at plan time, then per sequence FFT convolution + D u, channel
 * flattening, activation, output linear, final GLU (DESIGN.md 8, 11).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64, TILE = 32 };

struct s4_forward {
    int B, H, Cp, Fp, Fo;
    int64_t L;           /* input length */
    int64_t l;           /* kernel length (DESIGN.md 11) */
    int transposed, swap; /* swap: (h c) flattening with C' > 1 */
    s4_conv *conv;       /* B = 1: the batch is looped at execute, scratch is one sequence */
    float *spec;         /* [C' x H x (n/2 + 1) x 2] */
    float *D;            /* [C' x H] */
    s4_head head;        /* own copy: the plan outlives the layer */
    size_t conv_work;    /* bytes of the conv's workspace */
    size_t work_size;    /* whole workspace incl. alignment slack */
    void *own_work;
};

/* Workspace regions, each aligned to ALIGN bytes. */
typedef struct workspace {
    unsigned char *conv; /* conv_work bytes */
    float *pre;          /* [Fp x L] conv output, (c h) */
    float *swap;         /* [Fp x L] (h c) order; swap only */
    float *head;         /* s4__head_scratch floats */
    float *ut;           /* [H x L] u of one sequence; transposed == 0 only */
    float *yt;           /* [Fo x L] y of one sequence; transposed == 0 only */
} workspace;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Carves the workspace from `base` (aligned); returns its size in bytes, or 0 when it
 * overflows size_t (checked once at plan time, so execute's carve cannot). */
static size_t carve(const s4_forward *p, unsigned char *base, workspace *w)
{
    const size_t L = (size_t)p->L;
    size_t FpL = 0, HL = 0, FoL = 0, off = 0;
    bool ok = s4__mul_size((size_t)p->Fp, L, &FpL) && s4__mul_size((size_t)p->H, L, &HL) &&
              s4__mul_size((size_t)p->Fo, L, &FoL);
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
    REGION(pre, float, FpL);
    REGION(swap, float, p->swap ? FpL : 0);
    REGION(head, float, s4__head_scratch(&p->head, p->L));
    REGION(ut, float, p->transposed ? 0 : HL);
    REGION(yt, float, p->transposed ? 0 : FoL);
#undef REGION
    return ok ? off : 0;
}

static void plan_free(s4_forward *p)
{
    if (!p)
        return;
    s4_conv_destroy(p->conv);
    fftwf_free(p->spec);
    free(p->D);
    s4__head_free(&p->head);
    fftwf_free(p->own_work);
    free(p);
}

void s4_forward_destroy(s4_forward *plan) { plan_free(plan); }

size_t s4_forward_workspace_size(const s4_forward *plan) { return plan ? plan->work_size : 0; }

/* The reference's length rules (FFTConv.forward, SSMKernelDPLR.forward; DESIGN.md 11) on
 * `ssm` (a clone of the layer's bank): C-tilde for l_max on first use, then doubled while
 * round(rate l) > l_kernel. */
static s4_status setup_lengths(s4_ssm *ssm, int64_t l_max, int64_t l, double rate)
{
    s4_status st;
    if (ssm->l_kernel == 0 && l_max > 0 && (st = s4_ssm_setup_length(ssm, l_max)) != S4_OK)
        return st;
    int64_t continuous = s4__round_half_even(rate * (double)l);
    /* A raw C needs some length; below 1 the reference would keep the raw C, which is not
     * a C-tilde at all. One sample is the smallest meaningful C-tilde. */
    if (continuous < 1)
        continuous = 1;
    if (ssm->l_kernel == 0 || continuous > ssm->l_kernel)
        return s4_ssm_setup_length(ssm, continuous);
    return S4_OK;
}

s4_status s4_forward_create(s4_layer *layer, int B, int64_t L,
                            const s4_forward_options *options, s4_forward **out)
{
    static const char fn[] = "s4_forward_create";
    if (!layer || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !layer ? "layer" : "out");
    const double rate = options ? options->rate : 1.0;
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    const s4_planner planner = options ? options->planner : S4_PLANNER_ESTIMATE;
    if (planner != S4_PLANNER_ESTIMATE && planner != S4_PLANNER_MEASURE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: planner = %d is unknown", fn,
                        (int)planner);
    const int threads = options ? options->threads : 0;
    if (threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn, threads);
    if (B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be >= 1", fn, B);
    if (L < 1 || L > ((int64_t)1 << 40))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be in [1, 2^40]", fn,
                        (long long)L);
    /* FFTW plans take int lengths (the FFT length is about L + l). */
    if (L > INT32_MAX)
        return s4__fail(S4_ERR_UNSUPPORTED, "%s: L = %lld above 2^31 - 1", fn, (long long)L);

    const s4_layer_config *cfg = &layer->cfg;
    const int H = cfg->ssm.H, Cp = layer->ssm->Cp;
    const s4_head *head = &layer->head;
    /* Every array of one execute must be addressable: u, y, pre of the whole batch. */
    size_t n_u, n_y, n_pre;
    if (!s4__mul_size((size_t)B * (size_t)H, (size_t)L * sizeof(float), &n_u) ||
        !s4__mul_size((size_t)B * (size_t)head->Fo, (size_t)L * sizeof(float), &n_y) ||
        !s4__mul_size((size_t)B * (size_t)head->Fp, (size_t)L * sizeof(float), &n_pre))
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: B = %d, L = %lld: the batch's arrays overflow size_t", fn, B,
                        (long long)L);

    /* Kernel length: l = L (l_max None) or min(L, round(l_max / rate)). */
    int64_t l = L;
    if (cfg->l_max > 0) {
        const int64_t lr = s4__round_half_even((double)cfg->l_max / rate);
        if (lr < 1)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: l_max / rate = %lld / %g rounds to a kernel of length 0", fn,
                            (long long)cfg->l_max, rate);
        if (lr < l)
            l = lr;
    }

    /* The length rules may update C-tilde. Work on a clone and commit only on success, so
     * a failed call leaves the layer as it was. */
    s4_status st;
    s4_ssm *ssm = NULL;
    s4_kernel *kplan = NULL;
    float *K = NULL;
    s4_forward *p = NULL;
    if ((st = s4_ssm_clone(layer->ssm, &ssm)) != S4_OK)
        return st;
    if ((st = setup_lengths(ssm, cfg->l_max, l, rate)) != S4_OK)
        goto fail;
    /* The reference evaluates round(l_kernel / rate) nodes and keeps the first
     * min(l, that) taps; below l (rate < 1 can round so) the rest of the kernel is zero. */
    const int64_t Ld = s4__round_half_even((double)ssm->l_kernel / rate);
    const int64_t taps = Ld >= 1 && Ld < l ? Ld : l;
    const s4_kernel_options kopt = {.rate = rate, .threads = threads};
    if ((st = s4_kernel_create(ssm, taps, &kopt, &kplan)) != S4_OK)
        goto fail;

    p = calloc(1, sizeof *p);
    if (!p) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto fail;
    }
    p->B = B;
    p->H = H;
    p->Cp = Cp;
    p->Fp = head->Fp;
    p->Fo = head->Fo;
    p->L = L;
    p->l = l;
    p->transposed = cfg->transposed;
    p->swap = cfg->swap_channels && Cp > 1;
    const s4_conv_desc desc = {.B = 1,
                               .H = H,
                               .channels = Cp,
                               .bidirectional = cfg->bidirectional,
                               .L = L,
                               .l = l,
                               .planner = planner};
    if ((st = s4_conv_create(&desc, &p->conv)) != S4_OK)
        goto fail;
    if ((st = s4__head_copy(head, &p->head)) != S4_OK)
        goto fail;
    p->conv_work = s4_conv_workspace_size(p->conv);
    p->work_size = carve(p, NULL, NULL);
    if (p->work_size == 0 || !s4__add_size(p->work_size, ALIGN, &p->work_size)) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: workspace for L = %lld overflows", fn,
                      (long long)L);
        goto fail;
    }
    const int rows = s4_kernel_rows(kplan);
    const size_t nK = (size_t)rows * (size_t)H * (size_t)l; /* <= the conv's own arrays */
    const size_t nD = (size_t)Cp * (size_t)H;
    size_t nspec;
    K = s4__alloc(nK, sizeof *K);
    p->D = s4__alloc(nD, sizeof *p->D);
    p->own_work = fftwf_malloc(p->work_size);
    if (s4__mul_size(s4_conv_spectrum_size(p->conv), 2 * sizeof(float), &nspec))
        p->spec = fftwf_malloc(nspec);
    if (!K || !p->D || !p->own_work || !p->spec) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for B = %d, L = %lld", fn, B,
                      (long long)L);
        goto fail;
    }
    for (size_t i = 0; i < nD; i++)
        p->D[i] = (float)ssm->D[i];

    /* Kernel [C'' x H x l] into its spectrum; the kernel itself is not kept. */
    if ((st = s4_kernel_execute(kplan, ssm, K, (size_t)l, NULL, 0)) != S4_OK)
        goto fail;
    if (taps < l) {
        /* The reference pads a short kernel to the FFT length l + L: forward rows with
         * zeros at the end; backward rows, flipped and placed at the end of that length,
         * land l - taps later, i.e. k1'[m] = k1[m - (l - taps)]. */
        const size_t shift = (size_t)(l - taps);
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < H; h++) {
                float *row = K + ((size_t)r * (size_t)H + (size_t)h) * (size_t)l;
                if (r < Cp) {
                    memset(row + taps, 0, shift * sizeof *row);
                } else {
                    memmove(row + shift, row, (size_t)taps * sizeof *row);
                    memset(row, 0, shift * sizeof *row);
                }
            }
    }
    unsigned char *base = p->own_work;
    base += (ALIGN - (uintptr_t)base % ALIGN) % ALIGN;
    if ((st = s4_conv_spectrum(p->conv, K, (size_t)l, p->spec, base, p->conv_work)) != S4_OK)
        goto fail;

    /* Commit the length rules' C-tilde to the layer's bank (same sizes). */
    if (ssm->l_kernel != layer->ssm->l_kernel) {
        memcpy(layer->ssm->C, ssm->C,
               (size_t)ssm->rows * (size_t)ssm->H * (size_t)ssm->Nh * sizeof *ssm->C);
        layer->ssm->l_kernel = ssm->l_kernel;
    }
    free(K);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(ssm);
    *out = p;
    return S4_OK;

fail:
    free(K);
    plan_free(p);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(ssm);
    return st;
}

/* dst [cols x rows] = src [rows x cols]^T, both dense, in cache tiles. */
static void transpose(const float *src, size_t rows, size_t cols, float *dst)
{
    for (size_t i0 = 0; i0 < rows; i0 += TILE)
        for (size_t j0 = 0; j0 < cols; j0 += TILE) {
            const size_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
            const size_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    dst[j * rows + i] = src[i * cols + j];
        }
}

s4_status s4_forward_execute(const s4_forward *p, const float *u, float *y, float *pre,
                             void *work, size_t work_size)
{
    static const char fn[] = "s4_forward_execute";
    if (!p || !u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !u ? "u" : "y");
    unsigned char *base;
    if (work) {
        if (work_size < p->work_size)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: work_size = %zu is smaller than the %zu bytes required", fn,
                            work_size, p->work_size);
        base = work;
    } else {
        base = p->own_work;
    }
    base += (ALIGN - (uintptr_t)base % ALIGN) % ALIGN;
    workspace w;
    carve(p, base, &w);

    const size_t L = (size_t)p->L, H = (size_t)p->H, Cp = (size_t)p->Cp;
    const size_t Fp = (size_t)p->Fp, Fo = (size_t)p->Fo;
    for (size_t b = 0; b < (size_t)p->B; b++) {
        const float *ub = u + b * H * L;
        float *yb = y + b * Fo * L;
        float *pb = pre ? pre + b * Fp * L : NULL;
        if (!p->transposed) {
            transpose(ub, L, H, w.ut); /* [L x H] -> [H x L] */
            ub = w.ut;
        }
        /* Convolution + D u: [C' x H x L], the (c h) flattening. With a transposed layer
         * and no reordering it can land in the caller's `pre` directly. */
        const bool direct = pb && p->transposed && !p->swap;
        float *feat = direct ? pb : w.pre;
        const s4_status st =
            s4_conv_execute(p->conv, p->spec, ub, L, p->D, feat, L, w.conv, p->conv_work);
        if (st != S4_OK)
            return st; /* not reached with the plan's own sizes */
        if (p->swap) {
            /* (h c): feature h C' + c takes row c H + h. */
            float *dst = pb && p->transposed ? pb : w.swap;
            for (size_t c = 0; c < Cp; c++)
                for (size_t h = 0; h < H; h++)
                    memcpy(dst + (h * Cp + c) * L, feat + (c * H + h) * L, L * sizeof *dst);
            feat = dst;
        }
        if (pb && !p->transposed)
            transpose(feat, Fp, L, pb); /* [Fp x L] -> [L x Fp] */
        if (p->transposed) {
            s4__head_apply(&p->head, feat, p->L, yb, w.head);
        } else {
            s4__head_apply(&p->head, feat, p->L, w.yt, w.head);
            transpose(w.yt, Fo, L, yb); /* [Fo x L] -> [L x Fo] */
        }
    }
    return S4_OK;
}
