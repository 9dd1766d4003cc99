/* Whole-layer forward in convolution mode (the reference S4Block.forward with FFTConv):
 * kernel and its spectrum at plan time, then per sequence FFT convolution + D u, channel
 * flattening, activation, output linear, final GLU (docs/design.md 8, 11).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/layer.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { TILE = 32 };


struct s4_forward {
    int B, H, Cp, Fp, Fo;
    int64_t L;           /* input length */
    int64_t l;           /* kernel length (docs/design.md 11) */
    int transposed, swap; /* swap: (h c) flattening with C' > 1 */
    int threads;         /* OpenMP threads of one execute (1: the caller's thread only) */
    int seq_slots;       /* sequences in flight at once: min(threads, B), 1 if unthreaded */
    s4_conv *conv;       /* ONE feature (B = 1, H = 1, C' channels): execute loops over the
                            batch and the features, so threads can split either */
    size_t spec_row;     /* floats of one feature's spectrum: C' x (n/2 + 1) x 2 */
    float *spec;         /* [H x C' x (n/2 + 1) x 2]: feature h's C' rows together */
    float *D;            /* [H x C'] (transposed, for the one-feature conv) */
    s4_head head;        /* own copy: the plan outlives the layer */
    s4_precision precision; /* of the kernel made at creation (s4_forward_info) */
    size_t conv_work;    /* bytes of the conv's workspace */
    size_t thread_bytes; /* bytes of one thread's slice: conv scratch + head scratch */
    size_t seq_bytes;    /* bytes of one sequence slot: pre, swap, ut, yt */
    size_t work_size;    /* whole workspace incl. alignment slack */
    void *own_work;
};

/* Workspace: `threads` thread slices, then `seq_slots` sequence slots, every region
 * aligned to S4_ALIGN bytes. A thread slice is private to one thread; a sequence slot holds
 * the arrays of one sequence, private to a thread when threads split the batch and shared
 * by the team when they split one sequence. */
typedef struct thread_ws {
    unsigned char *conv; /* conv_work bytes */
    float *head;         /* s4__head_scratch floats */
} thread_ws;
typedef struct seq_ws {
    float *pre;  /* [Fp x L] conv output, (c h) */
    float *swap; /* [Fp x L] (h c) order; swap only */
    float *ut;   /* [H x L] u of one sequence; transposed == 0 only */
    float *yt;   /* [Fo x L] y of one sequence; transposed == 0 only */
} seq_ws;

/* Region sizes in bytes for one thread slice (seq == 0) or one sequence slot (seq == 1),
 * with pointers into `base` when ws is not NULL; returns the bytes, or 0 when they
 * overflow size_t (checked once at plan time, so execute's carve cannot). */
static size_t carve(const s4_forward *p, int seq, unsigned char *base, void *ws)
{
    const size_t L = (size_t)p->L;
    size_t FpL = 0, HL = 0, FoL = 0;
    s4_carver c = {base, 0, true};
    c.ok = s4__mul_size((size_t)p->Fp, L, &FpL) && s4__mul_size((size_t)p->H, L, &HL) &&
           s4__mul_size((size_t)p->Fo, L, &FoL);
#define REGION(w, field, type, count)                                                         \
    do {                                                                                      \
        type *r_ = s4__carve(&c, (count), sizeof(type));                                      \
        if (w)                                                                                \
            (w)->field = r_;                                                                  \
    } while (0)
    if (!seq) {
        thread_ws *w = ws;
        REGION(w, conv, unsigned char, p->conv_work);
        REGION(w, head, float, s4__head_scratch(&p->head, p->L));
    } else {
        seq_ws *w = ws;
        REGION(w, pre, float, FpL);
        REGION(w, swap, float, p->swap ? FpL : 0);
        REGION(w, ut, float, p->transposed ? 0 : HL);
        REGION(w, yt, float, p->transposed ? 0 : FoL);
    }
#undef REGION
    return c.ok && c.off > 0 ? c.off : (c.ok ? S4_ALIGN : 0);
}

/* Whole workspace: threads x thread_bytes + seq_slots x seq_bytes + S4_ALIGN; 0 on overflow. */
static size_t total_work(const s4_forward *p)
{
    size_t a, b, t;
    if (!s4__mul_size((size_t)p->threads, p->thread_bytes, &a) ||
        !s4__mul_size((size_t)p->seq_slots, p->seq_bytes, &b) || !s4__add_size(a, b, &t) ||
        !s4__add_size(t, S4_ALIGN, &t))
        return 0;
    return t;
}

static void carve_thread(const s4_forward *p, unsigned char *base, int i, thread_ws *w)
{
    carve(p, 0, base + (size_t)i * p->thread_bytes, w);
}

static void carve_seq(const s4_forward *p, unsigned char *base, int i, seq_ws *w)
{
    carve(p, 1, base + (size_t)p->threads * p->thread_bytes + (size_t)i * p->seq_bytes, w);
}

static void plan_free(s4_forward *p)
{
    if (!p)
        return;
    s4_conv_destroy(p->conv);
    s4__free(p->spec);
    s4__free(p->D);
    s4__head_free(&p->head);
    s4__free(p->own_work);
    s4__free(p);
}

void s4_forward_destroy(s4_forward *plan) { plan_free(plan); }

size_t s4_forward_workspace_size(const s4_forward *plan) { return plan ? plan->work_size : 0; }

/* The kernel plan s4_forward applies for kernel length l (docs/design.md 11): the length
 * rules set up C-tilde on `ssm` (a copy of the layer's bank), then round(l_kernel / rate)
 * nodes give min(l, that) taps (rate < 1 can round below l). */
static int64_t kernel_taps(const s4_ssm *ssm, int64_t l, double rate)
{
    const int64_t Ld = s4__round_half_even((double)ssm->l_kernel / rate);
    return Ld >= 1 && Ld < l ? Ld : l;
}

static s4_status kernel_plan(s4_ssm *ssm, int64_t l_max, int64_t l, double rate, int threads,
                             s4_kernel **plan)
{
    s4_status st = s4__setup_lengths(ssm, l_max, l, rate);
    if (st != S4_OK)
        return st;
    const s4_kernel_options kopt = {.rate = rate, .threads = threads};
    return s4_kernel_create(ssm, kernel_taps(ssm, l, rate), &kopt, plan);
}

/* The kernel of `plan` into K [C'' x H x ldk], each row l long: a plan of fewer taps than
 * l is padded as the reference pads it to the FFT length l + L, forward rows with zeros at
 * the end; backward rows (r >= Cp), flipped and placed at the end of that length, land
 * l - taps later, i.e. k1'[m] = k1[m - (l - taps)]. */
static s4_status kernel_run(const s4_kernel *plan, const s4_ssm *ssm, int64_t l, int Cp,
                            float *K, size_t ldk)
{
    const s4_status st = s4_kernel_execute(plan, ssm, K, ldk, NULL, 0);
    const int64_t taps = s4_kernel_length(plan);
    if (st != S4_OK || taps >= l)
        return st;
    const size_t shift = (size_t)(l - taps);
    const int rows = s4_kernel_rows(plan), H = ssm->H;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < H; h++) {
            float *row = K + ((size_t)r * (size_t)H + (size_t)h) * ldk;
            if (r < Cp) {
                memset(row + taps, 0, shift * sizeof *row);
            } else {
                memmove(row + shift, row, (size_t)taps * sizeof *row);
                memset(row, 0, shift * sizeof *row);
            }
        }
    return S4_OK;
}

/* The arguments and the kernel length l of s4_layer_kernel_size and s4_layer_kernel. */
static s4_status kernel_length(const char *fn, const s4_layer *layer, int64_t L, double rate,
                               int64_t *l)
{
    if (!layer)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: layer is NULL", fn);
    if (L < 1 || L > ((int64_t)1 << 40))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: L = %lld must be in [1, 2^40]", fn,
                        (long long)L);
    if (!(rate > 0.0) || !isfinite(rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, rate);
    return s4__kernel_length(fn, layer, L, rate, l);
}

s4_status s4_layer_kernel_size(const s4_layer *layer, int64_t L, double rate,
                               s4_layer_kernel_info *info)
{
    static const char fn[] = "s4_layer_kernel_size";
    if (!info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    int64_t l;
    s4_status st = kernel_length(fn, layer, L, rate, &l);
    if (st != S4_OK)
        return st;
    int64_t taps = l, lk = 0;
    if (layer->cfg.ssm.mode == S4_MODE_DPLR) {
        /* The node count follows the C-tilde length the rules would set up: on a copy. */
        s4_ssm *ssm = NULL;
        if ((st = s4_ssm_clone(layer->ssm, &ssm)) == S4_OK &&
            (st = s4__setup_lengths(ssm, layer->cfg.l_max, l, rate)) == S4_OK) {
            taps = kernel_taps(ssm, l, rate);
            lk = ssm->l_kernel;
        }
        s4_ssm_destroy(ssm);
        if (st != S4_OK)
            return st;
    }
    *info = (s4_layer_kernel_info){
        .rows = layer->ssm->rows, .length = l, .taps = taps, .l_kernel = lk};
    return S4_OK;
}

s4_status s4_layer_kernel(const s4_layer *layer, int64_t L, double rate, float *K, size_t ldk)
{
    static const char fn[] = "s4_layer_kernel";
    int64_t l;
    s4_status st = kernel_length(fn, layer, L, rate, &l);
    if (st != S4_OK)
        return st;
    if (!K)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: K is NULL", fn);
    if (ldk < (size_t)l)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ldk = %zu is below the kernel length %lld",
                        fn, ldk, (long long)l);
    const int rows = layer->ssm->rows;
    size_t n;
    if (!s4__mul_size((size_t)rows * (size_t)layer->cfg.ssm.H, ldk, &n) ||
        !s4__mul_size(n, sizeof(float), &n))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: K [%d x %d x ldk = %zu] overflows size_t",
                        fn, rows, layer->cfg.ssm.H, ldk);
    /* The length rules on a copy of the bank, once: the plan's taps follow from it. */
    s4_ssm *ssm = NULL;
    s4_kernel *plan = NULL;
    if ((st = s4_ssm_clone(layer->ssm, &ssm)) == S4_OK &&
        (st = kernel_plan(ssm, layer->cfg.l_max, l, rate, 0, &plan)) == S4_OK)
        st = kernel_run(plan, ssm, l, layer->ssm->Cp, K, ldk);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
    return st;
}

s4_status s4_forward_info(const s4_forward *plan, s4_plan_info *info)
{
    if (!plan || !info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_forward_info: %s is NULL",
                        !plan ? "plan" : "info");
    *info = (s4_plan_info){
        .isa = plan->head.isa, .precision = plan->precision, .threads = plan->threads};
    return S4_OK;
}

s4_status s4_forward_create(s4_layer *layer, int B, int64_t L,
                            const s4_forward_options *options, s4_forward **out)
{
    static const char fn[] = "s4_forward_create";
    if (!layer || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !layer ? "layer" : "out");
    double rate;
    s4_planner planner;
    int threads;
    s4_status st = s4__forward_options(fn, options, &rate, &planner, &threads);
    if (st != S4_OK)
        return st;
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
    int64_t l;
    if ((st = s4__kernel_length(fn, layer, L, rate, &l)) != S4_OK)
        return st;

    /* The length rules may update C-tilde. Work on a clone and commit only on success, so
     * a failed call leaves the layer as it was. */
    s4_ssm *ssm = NULL;
    s4_kernel *kplan = NULL;
    float *K = NULL;
    s4_forward *p = NULL;
    if ((st = s4_ssm_clone(layer->ssm, &ssm)) != S4_OK)
        return st;
    if ((st = kernel_plan(ssm, cfg->l_max, l, rate, threads, &kplan)) != S4_OK)
        goto fail;

    p = s4__calloc(1, sizeof *p);
    if (!p) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto fail;
    }
    p->B = B;
    p->H = H;
    p->Cp = Cp;
    /* kernel_plan's options leave the Cauchy sums at the default, mixed (S4D: none). */
    p->precision = cfg->ssm.mode == S4_MODE_DPLR ? S4_PRECISION_MIXED : S4_PRECISION_DOUBLE;
    p->Fp = head->Fp;
    p->Fo = head->Fo;
    p->L = L;
    p->l = l;
    p->transposed = cfg->transposed;
    p->swap = cfg->swap_channels && Cp > 1;
    /* Threads: 0 = omp_get_max_threads(). No more than there is work for: sequences,
     * features of the convolution, column blocks of the head. */
    {
        const int64_t hb = s4__head_block_cols(), nblk = (L + hb - 1) / hb;
        int64_t useful = B > H ? B : H;
        if (nblk > useful)
            useful = nblk;
        int t = threads > 0 ? threads : omp_get_max_threads();
        if (t < 1)
            t = 1;
        p->threads = (int64_t)t > useful ? (int)useful : t;
        p->seq_slots = p->threads > B ? B : p->threads;
    }
    /* One feature at a time: execute splits features (or sequences) over threads. The FFT
     * length depends only on L, l and the direction, so every feature gets the same FFTW
     * plan and the same arithmetic as a whole-bank plan. */
    const s4_conv_desc desc = {.B = 1,
                               .H = 1,
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
    p->thread_bytes = carve(p, 0, NULL, NULL);
    p->seq_bytes = carve(p, 1, NULL, NULL);
    if (p->thread_bytes == 0 || p->seq_bytes == 0 || (p->work_size = total_work(p)) == 0) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: workspace for L = %lld overflows", fn,
                      (long long)L);
        goto fail;
    }
    const int rows = s4_kernel_rows(kplan);
    const size_t nK = (size_t)rows * (size_t)H * (size_t)l; /* <= the conv's own arrays */
    const size_t nD = (size_t)Cp * (size_t)H;
    size_t nspec;
    p->spec_row = s4_conv_spectrum_size(p->conv) * 2; /* C' x nc complex, as floats */
    K = s4__alloc(nK, sizeof *K);
    p->D = s4__alloc(nD, sizeof *p->D);
    p->own_work = s4__malloc(p->work_size);
    if (s4__mul_size(p->spec_row, (size_t)H * sizeof(float), &nspec))
        p->spec = s4__malloc(nspec);
    if (!K || !p->D || !p->own_work || !p->spec) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for B = %d, L = %lld", fn, B,
                      (long long)L);
        goto fail;
    }
    for (size_t c = 0; c < (size_t)Cp; c++)
        for (size_t h = 0; h < (size_t)H; h++)
            p->D[h * (size_t)Cp + c] = (float)ssm->D[c * (size_t)H + h];

    /* Kernel [C'' x H x l] into its spectrum; the kernel itself is not kept. */
    if ((st = kernel_run(kplan, ssm, l, Cp, K, (size_t)l)) != S4_OK)
        goto fail;
    /* Feature h's rows r are K[r][h] = K + h l + r (H l): the one-feature plan reads them
     * with ldk = H l. Features are independent: threads take them with their own slices. */
    {
        unsigned char *base = p->own_work;
        base += (S4_ALIGN - (uintptr_t)base % S4_ALIGN) % S4_ALIGN;
        int failed = 0;
#pragma omp parallel num_threads(p->threads) if (p->threads > 1)
        {
            thread_ws w;
            carve_thread(p, base, omp_get_thread_num(), &w);
#pragma omp for schedule(static)
            for (int h = 0; h < H; h++) {
                if (s4_conv_spectrum(p->conv, K + (size_t)h * (size_t)l, (size_t)H * (size_t)l,
                                     p->spec + (size_t)h * p->spec_row, w.conv,
                                     p->conv_work) != S4_OK) {
#pragma omp atomic write
                    failed = 1;
                }
            }
        }
        if (failed) { /* not reached with the plan's own sizes */
            st = s4__fail(S4_ERR_NUMERICAL, "%s: kernel spectrum failed", fn);
            goto fail;
        }
    }

    /* Commit the length rules' C-tilde to the layer's bank (same sizes). */
    if (ssm->l_kernel != layer->ssm->l_kernel) {
        memcpy(layer->ssm->C, ssm->C,
               (size_t)ssm->rows * (size_t)ssm->H * (size_t)ssm->Nh * sizeof *ssm->C);
        layer->ssm->l_kernel = ssm->l_kernel;
    }
    s4__free(K);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(ssm);
    *out = p;
    return S4_OK;

fail:
    s4__free(K);
    plan_free(p);
    s4_kernel_destroy(kplan);
    s4_ssm_destroy(ssm);
    return st;
}

/* Tile rows [t0, t1) of dst [cols x rows] = src [rows x cols]^T, both dense; a tile row is
 * TILE rows of src. Threads may take disjoint tile rows. */
static void transpose_part(const float *src, size_t rows, size_t cols, float *dst, size_t t0,
                           size_t t1)
{
    for (size_t i0 = t0 * TILE; i0 < rows && i0 < t1 * TILE; i0 += TILE)
        for (size_t j0 = 0; j0 < cols; j0 += TILE) {
            const size_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
            const size_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    dst[j * rows + i] = src[i * cols + j];
        }
}

static size_t tiles(size_t rows) { return (rows + TILE - 1) / TILE; }

/* Where one sequence's arrays live during an execute. */
typedef struct seq_io {
    const float *u; /* [H x L] (ut when the layer is not transposed) */
    float *feat;    /* [C' x H x L] convolution output + D u, (c h) */
    float *swapped; /* [Fp x L] (h c) copy of feat, or NULL without swap */
    float *act_in;  /* what the head reads: swapped or feat */
    float *out;     /* [Fo x L]: y (transposed layer) or yt */
} seq_io;

static seq_io seq_arrays(const s4_forward *p, const float *ub, float *pb, const seq_ws *s)
{
    seq_io io;
    io.u = p->transposed ? ub : s->ut;
    /* With a transposed layer and no reordering the convolution lands in the caller's
     * `pre` directly; with swap the (h c) copy does. */
    io.feat = pb && p->transposed && !p->swap ? pb : s->pre;
    io.swapped = p->swap ? (pb && p->transposed ? pb : s->swap) : NULL;
    io.act_in = io.swapped ? io.swapped : io.feat;
    io.out = s->yt; /* replaced by y for a transposed layer by the caller */
    return io;
}

/* Features [h0, h1) of one sequence: convolution + D u into feat, and the (h c) copy. */
static s4_status conv_features(const s4_forward *p, const seq_io *io, int h0, int h1,
                               const thread_ws *w)
{
    const size_t L = (size_t)p->L, H = (size_t)p->H, Cp = (size_t)p->Cp;
    for (size_t h = (size_t)h0; h < (size_t)h1; h++) {
        /* Row c of feature h goes to feat + (c H + h) L: the one-feature plan's y with
         * ldy = H L. */
        const s4_status st =
            s4_conv_execute(p->conv, p->spec + h * p->spec_row, io->u + h * L, L,
                            p->D + h * Cp, io->feat + h * L, H * L, w->conv, p->conv_work);
        if (st != S4_OK)
            return st; /* not reached with the plan's own sizes */
        if (io->swapped)
            for (size_t c = 0; c < Cp; c++) /* (h c): feature h C' + c takes row c H + h */
                memcpy(io->swapped + (h * Cp + c) * L, io->feat + (c * H + h) * L,
                       L * sizeof *io->swapped);
    }
    return S4_OK;
}

/* One whole sequence on the calling thread. */
static s4_status run_sequence(const s4_forward *p, const float *ub, float *yb, float *pb,
                              const seq_ws *s, const thread_ws *w)
{
    const size_t L = (size_t)p->L, H = (size_t)p->H;
    const size_t Fp = (size_t)p->Fp, Fo = (size_t)p->Fo;
    if (!p->transposed)
        transpose_part(ub, L, H, s->ut, 0, tiles(L)); /* [L x H] -> [H x L] */
    seq_io io = seq_arrays(p, ub, pb, s);
    const s4_status st = conv_features(p, &io, 0, p->H, w);
    if (st != S4_OK)
        return st;
    if (pb && !p->transposed)
        transpose_part(io.act_in, Fp, L, pb, 0, tiles(Fp)); /* [Fp x L] -> [L x Fp] */
    float *out = p->transposed ? yb : io.out;
    s4__head_apply_range(&p->head, io.act_in, p->L, 0, p->L, out, w->head);
    if (!p->transposed)
        transpose_part(out, Fo, L, yb, 0, tiles(Fo)); /* [Fo x L] -> [L x Fo] */
    return S4_OK;
}

/* One sequence shared by the team: every thread of the enclosing parallel region calls
 * this; work-sharing loops split the transposes by tile rows, the convolution by features
 * and the head by its column blocks (at the head's own block boundaries, so the result
 * is the one-thread result). Returns a failure of this thread's part. */
static s4_status team_sequence(const s4_forward *p, const float *ub, float *yb, float *pb,
                               const seq_ws *s, const thread_ws *w)
{
    const size_t L = (size_t)p->L, H = (size_t)p->H;
    const size_t Fp = (size_t)p->Fp, Fo = (size_t)p->Fo;
    s4_status st = S4_OK;
    if (!p->transposed) {
#pragma omp for schedule(static)
        for (size_t t = 0; t < tiles(L); t++)
            transpose_part(ub, L, H, s->ut, t, t + 1);
    }
    seq_io io = seq_arrays(p, ub, pb, s);
#pragma omp for schedule(dynamic, 1)
    for (int h = 0; h < p->H; h++)
        if (st == S4_OK)
            st = conv_features(p, &io, h, h + 1, w);
    if (pb && !p->transposed) {
#pragma omp for schedule(static) nowait
        for (size_t t = 0; t < tiles(Fp); t++)
            transpose_part(io.act_in, Fp, L, pb, t, t + 1);
    }
    float *out = p->transposed ? yb : io.out;
    const int64_t hb = s4__head_block_cols(), nblk = (p->L + hb - 1) / hb;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < nblk; k++)
        s4__head_apply_range(&p->head, io.act_in, p->L, k * hb, (k + 1) * hb, out, w->head);
    if (!p->transposed) {
#pragma omp for schedule(static)
        for (size_t t = 0; t < tiles(Fo); t++)
            transpose_part(out, Fo, L, yb, t, t + 1);
    }
    return st;
}

s4_status s4_forward_execute(const s4_forward *p, const float *u, float *y, float *pre,
                             void *work, size_t work_size)
{
    static const char fn[] = "s4_forward_execute";
    if (!p || !u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !u ? "u" : "y");
    const size_t n_u = (size_t)p->B * (size_t)p->H * (size_t)p->L;
    const size_t bad = s4__first_nonfinite_f(u, n_u);
    if (bad < n_u)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: u[%zu] = %g is not finite", fn, bad,
                        (double)u[bad]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;

    const size_t L = (size_t)p->L, H = (size_t)p->H;
    const size_t Fp = (size_t)p->Fp, Fo = (size_t)p->Fo;
    const int T = p->threads, B = p->B;
    /* Threads split the batch while there are at least as many sequences left as threads
     * (each thread a whole sequence in its own slot: no synchronisation, caches kept);
     * the remaining B mod T sequences (all of them when B < T) are split inside, by
     * features and column blocks. Every sequence is computed by the same arithmetic either
     * way, so y does not depend on the thread count. The error message is thread-local:
     * workers record the first failure and the calling thread reports it. */
    const int nbatch = T > 1 ? B / T * T : B;
    s4_status fail = S4_OK;
    s4__blas_hold();
#pragma omp parallel num_threads(T) if (T > 1)
    {
        const int tid = omp_get_thread_num();
        thread_ws w;
        seq_ws s;
        carve_thread(p, base, tid, &w);
        carve_seq(p, base, tid < p->seq_slots ? tid : 0, &s);
        s4_status st = S4_OK;
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nbatch; b++)
            if (st == S4_OK)
                st = run_sequence(p, u + (size_t)b * H * L, y + (size_t)b * Fo * L,
                                  pre ? pre + (size_t)b * Fp * L : NULL, &s, &w);
        seq_ws s0;
        carve_seq(p, base, 0, &s0);
        /* Every thread must meet the same work-sharing loops: no early exit here. */
        for (int b = nbatch; b < B; b++) {
            const s4_status sb = team_sequence(p, u + (size_t)b * H * L, y + (size_t)b * Fo * L,
                                               pre ? pre + (size_t)b * Fp * L : NULL, &s0, &w);
            if (st == S4_OK)
                st = sb;
        }
        if (st != S4_OK) {
#pragma omp critical(s4_forward_fail)
            if (fail == S4_OK)
                fail = st;
        }
    }
    s4__blas_release();
    if (fail != S4_OK) /* not reached with the plan's own sizes */
        return s4__fail(fail, "%s: the convolution failed (%s)", fn, s4_status_str(fail));
    return S4_OK;
}
