/* The S4 layer (the reference S4Block with its FFTConv): configuration, parameters and
 * construction (docs/design.md 4, 8). Its head: head.c; length rules: lengths.c.
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
