/* The S4 layer (the reference S4Block with its FFTConv): configuration, parameters, and the
 * "head" that every mode shares -- activation, output linear, final GLU (docs/design.md 4, 8).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/layer.h"
#include "cpu/activation.h"
#include "core/rng.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The output linear is drawn from its own stream, seeded with seed ^ LINEAR_STREAM, so
 * the SSM's draws (s4_ssm_create) are exactly those of a bare bank with the same seed.
 * The constant is MurmurHash2's multiplier, repeated to 64 bits: any fixed odd pattern
 * would do, this one is part of the seed contract. */
#define LINEAR_STREAM 0x5bd1e9955bd1e995ull

/* Columns the head processes at a time: the activation block [Fa x HEAD_BLOCK] and the
 * output linear's block [Flin x HEAD_BLOCK] stay in L2 for H up to a few hundred, and
 * 256 columns keep sgemm at full speed. */
enum { HEAD_BLOCK = 256, FLOAT_ALIGN = 16 /* floats per 64 bytes */ };


/* OpenBLAS's thread count while an execute runs (forward.c, step.c). The head's sgemm runs
 * on our threads (each on its own column blocks), so OpenBLAS must not start threads of
 * its own under them: libopenblas-pthread (Debian's default) ignores OpenMP -- it would give every
 * concurrent call its whole thread pool and serialise the calls on its level-3 lock --
 * and its only control is the process-wide openblas_set_num_threads (0.3.21 has no
 * per-thread setting). So executes hold it at 1 with a process-wide count: the first
 * execute to start saves the count and sets 1, the last to finish restores it. The
 * OpenMP build needs nothing (it runs one thread inside a parallel region), nor a BLAS
 * without these calls: they are weak references, resolved only if OpenBLAS is linked. */
extern int openblas_get_parallel(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

static int blas_holders, blas_saved_threads;

static bool blas_pthreads(void)
{
    return openblas_get_parallel && openblas_get_num_threads && openblas_set_num_threads &&
           openblas_get_parallel() == 1;
}

void s4__blas_hold(void)
{
    if (!blas_pthreads())
        return;
#pragma omp critical(s4_openblas_threads)
    {
        if (blas_holders++ == 0) {
            blas_saved_threads = openblas_get_num_threads();
            if (blas_saved_threads > 1)
                openblas_set_num_threads(1);
        }
    }
}

void s4__blas_release(void)
{
    if (!blas_pthreads())
        return;
#pragma omp critical(s4_openblas_threads)
    {
        if (--blas_holders == 0 && blas_saved_threads > 1)
            openblas_set_num_threads(blas_saved_threads);
    }
}

/* ---- configuration --------------------------------------------------------------- */

void s4_layer_config_default(s4_layer_config *config)
{
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    s4_ssm_config_default(&config->ssm);
    config->channels = 1;
    config->bidirectional = 0;
    config->activation = S4_ACT_GELU;
    config->final_act = S4_FINAL_GLU;
    config->swap_channels = 0;
    config->transposed = 1;
    config->l_max = 0;
}

/* Feature counts of a head (layer.h) for H features and C' channels. */
static void head_sizes(s4_head *h, s4_activation act, s4_final_act fin, int H, int Cp)
{
    h->activation = act;
    h->final_act = fin;
    h->Fp = Cp * H;
    h->Fa = act == S4_ACT_GLU ? h->Fp / 2 : h->Fp;
    h->Flin = fin == S4_FINAL_GLU ? 2 * H : fin == S4_FINAL_IDENTITY ? H : 0;
    h->Fo = fin == S4_FINAL_NONE ? h->Fa : H;
    h->W = NULL;
    h->b = NULL;
    h->isa = S4_ISA_PORTABLE;
    h->Wp = NULL;
    h->affine = NULL;
}

/* Validates what the layer adds to an s4_ssm_config and fills the bank's config (C' and
 * the direction derived) and the head's sizes. */
static s4_status check_config(const char *fn, const s4_layer_config *c, s4_ssm_config *ssm,
                              s4_head *head)
{
    if (!c)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: config is NULL", fn);
    if (c->activation < S4_ACT_GELU || c->activation > S4_ACT_GLU)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: activation = %d is unknown", fn,
                        (int)c->activation);
    if (c->final_act < S4_FINAL_GLU || c->final_act > S4_FINAL_NONE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: final_act = %d is unknown", fn,
                        (int)c->final_act);
    /* The SSM caps C'' at 4096 rows; with GLU C' = 2c, so c <= 1024 here already. */
    if (c->channels < 1 || c->channels > 1024)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: channels = %d must be in [1, 1024]", fn,
                        c->channels);
    if (c->bidirectional != 0 && c->bidirectional != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: bidirectional = %d must be 0 or 1", fn,
                        c->bidirectional);
    if (c->swap_channels != 0 && c->swap_channels != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: swap_channels = %d must be 0 or 1", fn,
                        c->swap_channels);
    if (c->transposed != 0 && c->transposed != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: transposed = %d must be 0 or 1", fn,
                        c->transposed);
    if (c->l_max < 0 || c->l_max > ((int64_t)1 << 40))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: l_max = %lld must be 0 (None) or in [1, 2^40]", fn,
                        (long long)c->l_max);
    if (c->ssm.H < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ssm.H = %d must be >= 1", fn, c->ssm.H);
    const int Cp = c->channels * (c->activation == S4_ACT_GLU ? 2 : 1);
    /* Feature counts are ints (head, BLAS): C' H and 2H must fit. */
    if (c->ssm.H > INT_MAX / 2 / Cp)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: ssm.H = %d with C' = %d channels gives too many features", fn,
                        c->ssm.H, Cp);
    *ssm = c->ssm;
    ssm->channels = Cp;
    ssm->bidirectional = c->bidirectional;
    head_sizes(head, c->activation, c->final_act, c->ssm.H, Cp);
    /* W is [Flin x Fa] in both double and float. */
    if (!s4__mul_size((size_t)head->Flin * (size_t)head->Fa, sizeof(double), &(size_t){0}))
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: output linear [%d x %d] overflows", fn,
                        head->Flin, head->Fa);
    return S4_OK;
}

/* ---- construction ---------------------------------------------------------------- */

void s4_layer_destroy(s4_layer *layer)
{
    if (!layer)
        return;
    s4_ssm_destroy(layer->ssm);
    s4__head_free(&layer->head);
    s4__free(layer->W64);
    s4__free(layer->b64);
    s4__free(layer);
}

/* A layer around `ssm` (taken over, destroyed on failure) with the linear's arrays
 * allocated but not filled. */
static s4_status layer_alloc(const char *fn, const s4_layer_config *c, const s4_head *sizes,
                             s4_ssm *ssm, s4_layer **out)
{
    s4_layer *l = s4__calloc(1, sizeof *l);
    if (!l) {
        s4_ssm_destroy(ssm);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    l->ssm = ssm;
    l->head = *sizes;
    l->cfg.ssm = ssm->cfg; /* n_ssm resolved, C' and direction derived */
    l->cfg.channels = c->channels;
    l->cfg.bidirectional = c->bidirectional;
    l->cfg.activation = c->activation;
    l->cfg.final_act = c->final_act;
    l->cfg.swap_channels = c->swap_channels;
    l->cfg.transposed = c->transposed;
    l->cfg.l_max = c->l_max;
    const size_t nW = (size_t)sizes->Flin * (size_t)sizes->Fa, nb = (size_t)sizes->Flin;
    if (nb > 0) {
        l->W64 = s4__alloc(nW, sizeof *l->W64);
        l->b64 = s4__alloc(nb, sizeof *l->b64);
        l->head.W = s4__alloc(nW, sizeof *l->head.W);
        l->head.b = s4__alloc(nb, sizeof *l->head.b);
        if (!l->W64 || !l->b64 || !l->head.W || !l->head.b) {
            s4_layer_destroy(l);
            return s4__fail(S4_ERR_OUT_OF_MEMORY,
                            "%s: out of memory for the output linear [%d x %d]", fn,
                            sizes->Flin, sizes->Fa);
        }
    }
    *out = l;
    return S4_OK;
}

/* Float copy of the stored linear for the head. */
static void linear_to_head(s4_layer *l)
{
    const size_t nW = (size_t)l->head.Flin * (size_t)l->head.Fa, nb = (size_t)l->head.Flin;
    for (size_t i = 0; i < nW; i++)
        l->head.W[i] = (float)l->W64[i];
    for (size_t i = 0; i < nb; i++)
        l->head.b[i] = (float)l->b64[i];
}

s4_status s4_layer_create(const s4_layer_config *config, s4_layer **out)
{
    static const char fn[] = "s4_layer_create";
    s4_ssm_config sc;
    s4_head sizes;
    s4_status st = check_config(fn, config, &sc, &sizes);
    if (st != S4_OK)
        return st;
    if (!out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    s4_ssm *ssm = NULL;
    if ((st = s4_ssm_create(&sc, &ssm)) != S4_OK)
        return st;
    s4_layer *l;
    if ((st = layer_alloc(fn, config, &sizes, ssm, &l)) != S4_OK)
        return st;
    /* torch.nn.Linear's init: kaiming_uniform(a = sqrt 5) gives W ~ U(-1/sqrt(fan_in),
     * 1/sqrt(fan_in)), and the bias the same bound. Draw order: W row-major, then b. */
    if (sizes.Flin > 0) {
        s4_rng rng;
        s4__rng_seed(&rng, config->ssm.seed ^ LINEAR_STREAM);
        const double bound = 1.0 / sqrt((double)sizes.Fa);
        const size_t nW = (size_t)sizes.Flin * (size_t)sizes.Fa;
        for (size_t i = 0; i < nW; i++)
            l->W64[i] = (2.0 * s4__rng_uniform(&rng) - 1.0) * bound;
        for (int i = 0; i < sizes.Flin; i++)
            l->b64[i] = (2.0 * s4__rng_uniform(&rng) - 1.0) * bound;
        linear_to_head(l);
    }
    *out = l;
    return S4_OK;
}

/* Copies n doubles, refusing values that are not finite or do not fit in a float (the head
 * computes in float). */
static s4_status copy_linear(const char *fn, const char *name, double *dst, const double *src,
                             size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]) || fabs(src[i]) > FLT_MAX)
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s[%zu] = %g is not a finite float",
                            fn, name, i, src[i]);
    memcpy(dst, src, n * sizeof *dst);
    return S4_OK;
}

s4_status s4_layer_create_from_arrays(const s4_layer_config *config,
                                      const s4_layer_arrays *arrays, s4_layer **out)
{
    static const char fn[] = "s4_layer_create_from_arrays";
    s4_ssm_config sc;
    s4_head sizes;
    s4_status st = check_config(fn, config, &sc, &sizes);
    if (st != S4_OK)
        return st;
    if (!arrays || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !arrays ? "arrays" : "out");
    if (sizes.Flin > 0 && (!arrays->W || !arrays->b))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: arrays->%s is NULL: final_act %d needs the output linear "
                        "(W [%d x %d], b [%d])",
                        fn, !arrays->W ? "W" : "b", (int)config->final_act, sizes.Flin,
                        sizes.Fa, sizes.Flin);
    s4_ssm *ssm = NULL;
    if ((st = s4_ssm_create_from_arrays(&sc, &arrays->ssm, &ssm)) != S4_OK)
        return st;
    s4_layer *l;
    if ((st = layer_alloc(fn, config, &sizes, ssm, &l)) != S4_OK)
        return st;
    if (sizes.Flin > 0) {
        st = copy_linear(fn, "W", l->W64, arrays->W, (size_t)sizes.Flin * (size_t)sizes.Fa);
        if (st == S4_OK)
            st = copy_linear(fn, "b", l->b64, arrays->b, (size_t)sizes.Flin);
        if (st != S4_OK) {
            s4_layer_destroy(l);
            return st;
        }
        linear_to_head(l);
    }
    *out = l;
    return S4_OK;
}

s4_status s4_layer_get_config(const s4_layer *layer, s4_layer_config *config)
{
    if (!layer || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_get_config: %s is NULL",
                        !layer ? "layer" : "config");
    *config = layer->cfg;
    return S4_OK;
}

const s4_ssm *s4_layer_ssm(const s4_layer *layer) { return layer ? layer->ssm : NULL; }

int s4_layer_output_features(const s4_layer *layer) { return layer ? layer->head.Fo : 0; }

/* ---- the head ---------------------------------------------------------------------- */

s4_status s4__head_copy(const s4_head *src, s4_head *dst)
{
    s4_head h = *src;
    h.W = NULL;
    h.b = NULL;
    h.Wp = NULL;
    h.isa = s4__cpu_isa();
    h.affine = s4__affine_kernel(h.isa);
    if (src->Flin > 0) {
        const size_t nW = (size_t)src->Flin * (size_t)src->Fa;
        h.W = s4__alloc(nW, sizeof *h.W);
        h.b = s4__alloc((size_t)src->Flin, sizeof *h.b);
        if (!h.W || !h.b) {
            s4__free(h.W);
            s4__free(h.b);
            return s4__fail(S4_ERR_OUT_OF_MEMORY,
                            "s4__head_copy: out of memory for the output linear [%d x %d]",
                            src->Flin, src->Fa);
        }
        memcpy(h.W, src->W, nW * sizeof *h.W);
        memcpy(h.b, src->b, (size_t)src->Flin * sizeof *h.b);
    }
    *dst = h;
    return S4_OK;
}

s4_status s4__head_pack(s4_head *head)
{
    if (head->Flin == 0)
        return S4_OK;
    const size_t n = s4__affine_packed_floats(head->Flin, head->Fa);
    float *Wp = n ? s4__alloc(n, sizeof *Wp) : NULL;
    if (!Wp)
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "s4__head_pack: out of memory for the packed output linear [%d x %d]",
                        head->Flin, head->Fa);
    s4__affine_pack(head->Flin, head->Fa, head->W, head->b, Wp);
    s4__free(head->Wp);
    head->Wp = Wp;
    return S4_OK;
}

void s4__head_free(s4_head *head)
{
    if (!head)
        return;
    s4__free(head->W);
    s4__free(head->b);
    s4__free(head->Wp);
    head->W = NULL;
    head->b = NULL;
    head->Wp = NULL;
}

/* Scratch layout for a block of nb columns: act [Fa x nb] (padded to 64 bytes), then
 * lin [Flin x nb]. Without an output linear the activation writes straight into `out`. */
static size_t act_floats(const s4_head *head, size_t nb)
{
    const size_t n = (size_t)head->Fa * nb;
    return (n + FLOAT_ALIGN - 1) / FLOAT_ALIGN * FLOAT_ALIGN;
}

size_t s4__head_scratch(const s4_head *head, int64_t ncols)
{
    if (!head || ncols <= 0 || head->Flin == 0)
        return 0;
    const size_t nb = ncols < HEAD_BLOCK ? (size_t)ncols : HEAD_BLOCK;
    return act_floats(head, nb) + (size_t)head->Flin * nb;
}

/* Logistic function without overflow: exp of a non-positive argument only. */
static inline float sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

typedef struct head_rows {
    s4_gelu_row_fn gelu;
    s4_glu_row_fn glu;
} head_rows;

/* The row functions of the head's ISA (cpu/activation.h). */
static head_rows rows_for(s4_isa isa)
{
    return (head_rows){s4__gelu_row(isa), s4__glu_row(isa)};
}

/* The reference's activations (models/s4/s4.py Activation) other than GELU and GLU, which
 * run as rows (cpu/activation.h). The tanh form of GELU uses 1 + tanh(z) = 2 sigmoid(2 z),
 * so that its negative tail keeps its relative accuracy. */
static inline float activate(s4_activation a, float x)
{
    switch (a) {
    case S4_ACT_GELU_TANH: {
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        return x * sigmoid(2.0f * k * (x + 0.044715f * x * x * x));
    }
    case S4_ACT_RELU: return x < 0.0f ? 0.0f : x; /* NaN passes through, as in torch */
    case S4_ACT_SILU: return x * sigmoid(x);
    case S4_ACT_TANH: return tanhf(x);
    case S4_ACT_SIGMOID: return sigmoid(x);
    case S4_ACT_GELU:     /* rows: activation_block */
    case S4_ACT_IDENTITY:
    case S4_ACT_GLU: return x; /* GLU pairs features: handled by the caller */
    }
    return x;
}

/* dst[f * ldd + j] = activation of features f < Fa, columns j0 <= j < j0 + nb of pre. */
static void activation_block(const s4_head *head, const head_rows *vr, const float *pre,
                             int64_t ncols, int64_t j0, size_t nb, float *dst, size_t ldd,
                             size_t f0, size_t f1)
{
    const size_t ld = (size_t)ncols;
    if (ld == nb && ldd == nb && f1 > f0) {
        /* Rows f0 .. f1 - 1 are one run in both arrays: one row call for all of them (the
         * step's head has a column or a few per row; a call per row would cost more than
         * its arithmetic). An output does not depend on its place in a row. */
        nb *= f1 - f0;
        f1 = f0 + 1;
    }
    if (head->activation == S4_ACT_GLU) {
        /* GLU over the flattened feature axis: a[f] * sigmoid(a[f + Fp/2]). */
        const size_t half = (size_t)head->Fa;
        for (size_t f = f0; f < f1; f++) {
            const float *a = pre + f * ld + (size_t)j0, *g = pre + (f + half) * ld + (size_t)j0;
            vr->glu(a, g, dst + f * ldd, nb);
        }
        return;
    }
    const s4_activation act = head->activation;
    for (size_t f = f0; f < f1; f++) {
        const float *a = pre + f * ld + (size_t)j0;
        float *d = dst + f * ldd;
        switch (act) { /* one loop per activation, so each inlines into its own loop */
        case S4_ACT_IDENTITY:
            memcpy(d, a, nb * sizeof *d);
            break;
#define CASE(A)                                                                               \
    case A:                                                                                   \
        for (size_t j = 0; j < nb; j++)                                                       \
            d[j] = activate(A, a[j]);                                                         \
        break;
        case S4_ACT_GELU:
            vr->gelu(a, d, nb);
            break;
            CASE(S4_ACT_GELU_TANH)
            CASE(S4_ACT_RELU)
            CASE(S4_ACT_SILU)
            CASE(S4_ACT_TANH)
            CASE(S4_ACT_SIGMOID)
#undef CASE
        case S4_ACT_GLU:
            break;
        }
    }
}

int64_t s4__head_block_cols(void) { return HEAD_BLOCK; }

void s4__head_apply_range(const s4_head *head, const float *pre, int64_t ncols, int64_t j0,
                          int64_t j1, float *out, float *scratch)
{
    if (j0 < 0)
        j0 = 0;
    if (j1 > ncols)
        j1 = ncols;
    if (j1 <= j0)
        return;
    const head_rows vr = rows_for(head->isa);
    const size_t ld = (size_t)ncols;
    if (head->Flin == 0) {
        activation_block(head, &vr, pre, ncols, j0, (size_t)(j1 - j0), out + j0, ld, 0,
                         (size_t)head->Fa);
        return;
    }
    const size_t Fo = (size_t)head->Fo, Flin = (size_t)head->Flin;
    /* Blocks sit at multiples of HEAD_BLOCK from column 0 whatever the range, so a split of
     * the columns at those multiples computes exactly what one call over all does. */
    for (int64_t jb = j0; jb < j1;) {
        const int64_t je0 = (jb / HEAD_BLOCK + 1) * HEAD_BLOCK, je = je0 < j1 ? je0 : j1;
        const size_t nb = (size_t)(je - jb);
        float *act = scratch, *lin = scratch + act_floats(head, nb);
        activation_block(head, &vr, pre, ncols, jb, nb, act, nb, 0, (size_t)head->Fa);
        /* lin = W act + b: the bias first, then sgemm accumulates (beta = 1). */
        for (size_t o = 0; o < Flin; o++)
            for (size_t j = 0; j < nb; j++)
                lin[o * nb + j] = head->b[o];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Flin, (int)nb, head->Fa,
                    1.0f, head->W, head->Fa, act, (int)nb, 1.0f, lin, (int)nb);
        if (head->final_act == S4_FINAL_GLU) {
            /* y[o] = lin[o] * sigmoid(lin[o + H]). */
            for (size_t o = 0; o < Fo; o++)
                vr.glu(lin + o * nb, lin + (o + Fo) * nb, out + o * ld + (size_t)jb, nb);
        } else {
            for (size_t o = 0; o < Fo; o++)
                memcpy(out + o * ld + (size_t)jb, lin + o * nb, nb * sizeof *out);
        }
        jb = je;
    }
}

void s4__head_apply_split(const s4_head *head, const float *pre, int64_t ncols, float *out,
                          float *scratch, int part, int nparts)
{
    const head_rows vr = rows_for(head->isa);
    const size_t nb = (size_t)ncols, P = (size_t)part, NP = (size_t)nparts;
    const size_t Fa = (size_t)head->Fa, Fo = (size_t)head->Fo, Flin = (size_t)head->Flin;
    if (Flin == 0) {
        activation_block(head, &vr, pre, ncols, 0, nb, out, nb, Fa * P / NP, Fa * (P + 1) / NP);
        return;
    }
    float *act = scratch, *lin = scratch + act_floats(head, nb);
    activation_block(head, &vr, pre, ncols, 0, nb, act, nb, Fa * P / NP, Fa * (P + 1) / NP);
#pragma omp barrier
    /* Output rows o0 .. o1 - 1 need lin rows o (and o + Fo for GLU). */
    const size_t o0 = Fo * P / NP, o1 = Fo * (P + 1) / NP;
    for (size_t r = 0; r < Flin / Fo && o1 > o0; r++) {
        const size_t r0 = r * Fo + o0;
        head->affine(head->Fa, head->Wp, (int)r0, (int)(r0 + o1 - o0), act, nb, (int)nb,
                     lin + r0 * nb, nb);
    }
    /* Rows o0 .. o1 - 1 of lin and out are one run each (leading dimension nb). */
    if (head->final_act == S4_FINAL_GLU)
        vr.glu(lin + o0 * nb, lin + (o0 + Fo) * nb, out + o0 * nb, (o1 - o0) * nb);
    else
        memcpy(out + o0 * nb, lin + o0 * nb, (o1 - o0) * nb * sizeof *out);
}

void s4__head_apply(const s4_head *head, const float *pre, int64_t ncols, float *out,
                    float *scratch)
{
    s4__head_apply_range(head, pre, ncols, 0, ncols, out, scratch);
}

void s4_forward_options_default(s4_forward_options *options)
{
    if (options)
        *options = (s4_forward_options){.rate = 1.0, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
}

void s4_step_options_default(s4_step_options *options)
{
    if (options)
        *options = (s4_step_options){.rate = 1.0, .threads = 0};
}

void s4_kernel_options_default(s4_kernel_options *options)
{
    if (options)
        *options = (s4_kernel_options){.rate = 1.0, .threads = 0};
}

s4_status s4__forward_options(const char *fn, const s4_forward_options *options, double *rate,
                              s4_planner *planner, int *threads)
{
    *rate = options ? options->rate : 1.0;
    if (!(*rate > 0.0) || !isfinite(*rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, *rate);
    *planner = options ? options->planner : S4_PLANNER_ESTIMATE;
    if (*planner != S4_PLANNER_ESTIMATE && *planner != S4_PLANNER_MEASURE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: planner = %d is unknown", fn,
                        (int)*planner);
    *threads = options ? options->threads : 0;
    if (*threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        *threads);
    return S4_OK;
}

s4_status s4__kernel_length(const char *fn, const s4_layer *layer, int64_t L, double rate,
                            int64_t *l)
{
    *l = L;
    if (layer->cfg.l_max > 0) {
        const int64_t lr = s4__round_half_even((double)layer->cfg.l_max / rate);
        if (lr < 1)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: l_max / rate = %lld / %g rounds to a kernel of length 0", fn,
                            (long long)layer->cfg.l_max, rate);
        if (lr < *l)
            *l = lr;
    }
    return S4_OK;
}

s4_status s4__setup_lengths(s4_ssm *ssm, int64_t l_max, int64_t l, double rate)
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
