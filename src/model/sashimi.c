/* Sashimi and SashimiLM (docs/models.md, "Sashimi"): the config rules, the parts and their
 * reference names, a fresh init, and the pointwise pieces both modes share.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/sashimi.h"

#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void s4_model_config_default_arch(s4_architecture arch, s4_model_config *config)
{
    if (!config)
        return;
    s4_model_config_default(config);
    if (arch != S4_ARCH_SASHIMI && arch != S4_ARCH_SASHIMI_LM)
        return;
    /* models/sashimi/sashimi.py's constructor defaults; S4Block layers, d_state 64. */
    config->architecture = arch;
    config->d_model = 64;
    config->n_layers = 8;
    config->prenorm = 1;
    config->layer_class = S4_MODEL_S4BLOCK;
    s4_layer_config_default(&config->layer);
    config->layer.ssm.H = 64;
    config->layer.ssm.N = 64;
    config->layer.transposed = 1;
    config->n_pool = 2;
    config->pool[0] = 4;
    config->pool[1] = 4;
    config->expand = 2;
    config->ff = 2;
    config->n_tokens = 256;
    config->sample_rate = 16000;
    config->d_input = arch == S4_ARCH_SASHIMI_LM ? 1 : 64;
    config->d_output = arch == S4_ARCH_SASHIMI_LM ? 256 : 64;
}

/* Width of level i (i == n_pool: the centre), or -1 past 2^20. */
static int level_width(const s4_model_config *c, int i)
{
    int64_t H = c->d_model;
    for (int k = 0; k < i; k++) {
        H *= c->expand;
        if (H > (1 << 20))
            return -1;
    }
    return (int)H;
}

s4_layer_config s4__sashimi_layer_config(const s4_model_config *c, int H)
{
    s4_layer_config l = c->layer;
    l.ssm.H = H;
    l.ssm.bidirectional = c->bidirectional;
    l.bidirectional = c->bidirectional;
    l.transposed = 1;
    return l;
}

s4_status s4__sashimi_check_config(const char *fn, const s4_model_config *c)
{
    const int lm = c->architecture == S4_ARCH_SASHIMI_LM;
    if (c->d_model < 1 || c->d_model > (1 << 16) || c->n_layers < 0 || c->n_layers > 4096)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: d_model = %d, n_layers = %d: need 1 <= d_model <= 2^16 and "
                        "0 <= n_layers <= 4096",
                        fn, c->d_model, c->n_layers);
    if (c->n_pool < 0 || c->n_pool > S4_MAX_POOLS)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: n_pool = %d must be in [0, %d]", fn,
                        c->n_pool, S4_MAX_POOLS);
    for (int i = 0; i < c->n_pool; i++)
        if (c->pool[i] < 1 || c->pool[i] > (1 << 16))
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: pool[%d] = %d must be in [1, 2^16]",
                            fn, i, c->pool[i]);
    if (c->expand < 1 || c->expand > (1 << 10))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: expand = %d must be in [1, 1024]", fn,
                        c->expand);
    if (c->ff < 0 || c->ff > 64)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: ff = %d must be in [0, 64]", fn, c->ff);
    if ((c->unet != 0 && c->unet != 1) || (c->bidirectional != 0 && c->bidirectional != 1) ||
        c->prenorm != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: unet = %d and bidirectional = %d must be 0 or 1, prenorm = %d "
                        "must be 1 (Sashimi's blocks are prenorm)",
                        fn, c->unet, c->bidirectional, c->prenorm);
    for (int i = 0; i <= c->n_pool; i++) {
        const int H = level_width(c, i);
        if (H < 0 || (i < c->n_pool && (int64_t)H * c->pool[i] > (1 << 22)) ||
            (int64_t)H * (c->ff ? c->ff : 1) > (1 << 22))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: level %d is too wide (d_model %d x expand %d ^ %d, pool, ff "
                            "must stay within 2^20 features, 2^22 per linear)",
                            fn, i, c->d_model, c->expand, i);
    }
    if (c->layer_class != S4_MODEL_S4BLOCK)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: layer_class = %d: Sashimi's S4 layers are S4Blocks", fn,
                        (int)c->layer_class);
    if (c->layer.ssm.H != c->d_model)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: layer.ssm.H = %d must equal d_model = %d",
                        fn, c->layer.ssm.H, c->d_model);
    const s4_layer_config *l = &c->layer;
    if (l->final_act == S4_FINAL_NONE && l->channels != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: layer.final_act = none with %d channels: the residual needs as "
                        "many outputs as inputs",
                        fn, l->channels);
    if (l->ssm.n_ssm > 0)
        for (int i = 0; i <= c->n_pool; i++)
            if (level_width(c, i) % l->ssm.n_ssm != 0)
                return s4__fail(S4_ERR_INVALID_ARGUMENT,
                                "%s: layer.n_ssm = %d does not divide the width %d of level %d",
                                fn, l->ssm.n_ssm, level_width(c, i), i);
    const int din = lm ? 1 : c->d_model, dout = lm ? c->n_tokens : c->d_model;
    if (lm && (c->n_tokens < 2 || c->n_tokens > (1 << 20) || c->sample_rate < 1 ||
               c->sample_rate > 10000000))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: n_tokens = %d must be in [2, 2^20] and sample_rate = %d in "
                        "[1, 10^7]",
                        fn, c->n_tokens, c->sample_rate);
    if (c->d_input != din || c->d_output != dout)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: d_input = %d, d_output = %d: a %s has %d and %d", fn, c->d_input,
                        c->d_output, lm ? "SashimiLM" : "Sashimi", din, dout);
    return S4_OK;
}

/* ---- parts --------------------------------------------------------------------------- */

static void free_blocks(s4__sblock *b, int n)
{
    if (!b)
        return;
    for (int j = 0; j < n; j++) {
        s4_layer_destroy(b[j].layer);
        s4__free(b[j].ln_w);
        s4__free(b[j].ln_b);
        s4__free(b[j].ff1.Wp);
        s4__free(b[j].ff2.Wp);
    }
    s4__free(b);
}

void s4__sashimi_free(s4__sashimi *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_levels; i++) {
        free_blocks(s->levels[i].down, s->n_blocks);
        free_blocks(s->levels[i].up, s->n_blocks);
        s4__free(s->levels[i].dpool.Wp);
        s4__free(s->levels[i].upool.Wp);
    }
    free_blocks(s->center, s->n_blocks);
    s4__free(s->norm_w);
    s4__free(s->norm_b);
    s4__free(s->embed);
    s4__free(s->decoder.Wp);
    s4__free(s);
}

static s4__sblock *alloc_blocks(int n, int H, int *next_id)
{
    s4__sblock *b = s4__calloc(n ? (size_t)n : 1, sizeof *b);
    for (int j = 0; b && j < n; j++) {
        b[j].H = H;
        b[j].id = (*next_id)++;
        b[j].ln_w = s4__alloc((size_t)H, sizeof(float));
        b[j].ln_b = s4__alloc((size_t)H, sizeof(float));
        if (!b[j].ln_w || !b[j].ln_b) {
            free_blocks(b, n);
            return NULL;
        }
    }
    return b;
}

s4_status s4__sashimi_alloc(const char *fn, const s4_model_config *c, s4__sashimi **out)
{
    s4__sashimi *s = s4__calloc(1, sizeof *s);
    if (!s)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    s->n_levels = c->n_pool;
    s->n_blocks = c->n_layers * (c->ff > 0 ? 2 : 1);
    int id = 0;
    bool ok = true;
    for (int i = 0; i < c->n_pool && ok; i++) {
        s4__level *v = &s->levels[i];
        v->H = level_width(c, i);
        v->p = c->pool[i];
        if (c->unet)
            ok = (v->down = alloc_blocks(s->n_blocks, v->H, &id)) != NULL;
    }
    s->H_center = level_width(c, c->n_pool);
    ok = ok && (s->center = alloc_blocks(s->n_blocks, s->H_center, &id)) != NULL;
    for (int i = c->n_pool - 1; i >= 0 && ok; i--)
        ok = (s->levels[i].up = alloc_blocks(s->n_blocks, s->levels[i].H, &id)) != NULL;
    s->n_sblocks = id;
    s->H_max = s->H_center > c->d_model ? s->H_center : c->d_model;
    s->F_max = s->H_max * (c->ff > 0 ? c->ff : 1);
    s->norm_w = s4__alloc((size_t)c->d_model, sizeof(float));
    s->norm_b = s4__alloc((size_t)c->d_model, sizeof(float));
    ok = ok && s->norm_w && s->norm_b;
    if (ok && c->architecture == S4_ARCH_SASHIMI_LM)
        ok = (s->embed = s4__alloc((size_t)c->n_tokens * (size_t)c->d_model, sizeof(float)));
    if (!ok) {
        s4__sashimi_free(s);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    *out = s;
    return S4_OK;
}

s4_status s4__linear_set(s4__linear *l, int M, int K, const float *W, const float *b)
{
    const size_t n = s4__affine_packed_floats(M, K);
    float *Wp = n ? s4__alloc(n, sizeof *Wp) : NULL;
    if (!Wp)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "out of memory for a %d x %d linear", M, K);
    s4__affine_pack(M, K, W, b, Wp);
    s4__free(l->Wp);
    l->M = M;
    l->K = K;
    l->Wp = Wp;
    return S4_OK;
}

/* One residual block under `pre` ("c_layers.3."): S4 or FF (ff > 0, odd j). */
static s4_status visit_block(const s4_model_config *c, s4__sblock *b, int j, const char *pre,
                             s4__spart_fn fn, void *ctx)
{
    char n[200];
    s4_status st;
    snprintf(b->name, sizeof b->name, "%.*s", (int)strlen(pre) - 1, pre); /* without the '.' */
    if (s4__sblock_is_s4(c, j)) {
        snprintf(n, sizeof n, "%slayer.", pre);
        if ((st = fn(ctx, S4__SP_LAYER, n, b->H, 0, &b->layer)) != S4_OK)
            return st;
    } else {
        const int F = b->H * c->ff;
        snprintf(n, sizeof n, "%slayer.ff.0.0", pre);
        if ((st = fn(ctx, S4__SP_LINEAR, n, F, b->H, &b->ff1)) != S4_OK)
            return st;
        snprintf(n, sizeof n, "%slayer.ff.2", pre);
        if ((st = fn(ctx, S4__SP_LINEAR, n, b->H, F, &b->ff2)) != S4_OK)
            return st;
    }
    float *norm[2] = {b->ln_w, b->ln_b};
    snprintf(n, sizeof n, "%snorm", pre);
    return fn(ctx, S4__SP_NORM, n, b->H, 0, norm);
}

s4_status s4__sashimi_visit(const s4_model_config *c, s4__sashimi *s, s4__spart_fn fn,
                            void *ctx)
{
    const bool lm = c->architecture == S4_ARCH_SASHIMI_LM;
    const char *bb = lm ? "backbone." : "";
    char pre[160];
    s4_status st = S4_OK;
    if (lm && (st = fn(ctx, S4__SP_EMBED, "encoder.weight", c->n_tokens, c->d_model,
                       &s->embed)) != S4_OK)
        return st;
    /* d_layers: per level the U-Net blocks, then the DownPool. */
    int d = 0;
    for (int i = 0; i < s->n_levels; i++) {
        s4__level *v = &s->levels[i];
        for (int j = 0; c->unet && j < s->n_blocks; j++, d++) {
            snprintf(pre, sizeof pre, "%sd_layers.%d.", bb, d);
            if ((st = visit_block(c, &v->down[j], j, pre, fn, ctx)) != S4_OK)
                return st;
        }
        snprintf(pre, sizeof pre, "%sd_layers.%d.linear", bb, d++);
        if ((st = fn(ctx, S4__SP_LINEAR, pre, v->H * c->expand, v->H * v->p, &v->dpool)) !=
            S4_OK)
            return st;
    }
    for (int j = 0; j < s->n_blocks; j++) {
        snprintf(pre, sizeof pre, "%sc_layers.%d.", bb, j);
        if ((st = visit_block(c, &s->center[j], j, pre, fn, ctx)) != S4_OK)
            return st;
    }
    /* u_layers: deepest level first; each the UpPool, then the blocks. */
    for (int k = 0; k < s->n_levels; k++) {
        s4__level *v = &s->levels[s->n_levels - 1 - k];
        snprintf(pre, sizeof pre, "%su_layers.%d.0.linear", bb, k);
        if ((st = fn(ctx, S4__SP_LINEAR, pre, v->H * v->p, v->H * c->expand, &v->upool)) !=
            S4_OK)
            return st;
        for (int j = 0; j < s->n_blocks; j++) {
            snprintf(pre, sizeof pre, "%su_layers.%d.%d.", bb, k, j + 1);
            if ((st = visit_block(c, &v->up[j], j, pre, fn, ctx)) != S4_OK)
                return st;
        }
    }
    float *norm[2] = {s->norm_w, s->norm_b};
    snprintf(pre, sizeof pre, "%snorm", bb);
    if ((st = fn(ctx, S4__SP_NORM, pre, c->d_model, 0, norm)) != S4_OK)
        return st;
    if (lm)
        st = fn(ctx, S4__SP_LINEAR, "decoder", c->n_tokens, c->d_model, &s->decoder);
    return st;
}

/* ---- fresh init ------------------------------------------------------------------------ */

typedef struct init_ctx {
    const s4_model_config *c;
    s4_rng rng;
} init_ctx;

static s4_status init_part(void *vctx, s4__spart kind, const char *name, int M, int K,
                           void *dst)
{
    init_ctx *x = vctx;
    switch (kind) {
    case S4__SP_LINEAR: {
        float *W = s4__alloc((size_t)M * (size_t)K + (size_t)M, sizeof *W);
        if (!W)
            return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
        const double a = 1.0 / sqrt((double)K);
        for (size_t i = 0; i < (size_t)M * (size_t)K + (size_t)M; i++)
            W[i] = (float)(a * (2.0 * s4__rng_uniform(&x->rng) - 1.0));
        const s4_status st = s4__linear_set(dst, M, K, W, W + (size_t)M * (size_t)K);
        s4__free(W);
        return st;
    }
    case S4__SP_NORM: {
        float **wb = dst;
        for (int i = 0; i < M; i++)
            wb[0][i] = 1.0f, wb[1][i] = 0.0f;
        return S4_OK;
    }
    case S4__SP_EMBED: {
        float *e = *(float **)dst;
        for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
            e[i] = (float)s4__rng_normal(&x->rng);
        return S4_OK;
    }
    case S4__SP_LAYER: {
        s4_layer_config lc = s4__sashimi_layer_config(x->c, M);
        lc.ssm.seed = s4__rng_next(&x->rng);
        const s4_status st = s4_layer_create(&lc, dst);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: %s", name, msg);
        }
        return S4_OK;
    }
    }
    return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: unknown part", name);
}

s4_status s4__sashimi_create(const char *fn, const s4_model_config *c, uint64_t seed,
                             s4__sashimi **out)
{
    s4__sashimi *s = NULL;
    s4_status st = s4__sashimi_alloc(fn, c, &s);
    if (st != S4_OK)
        return st;
    init_ctx x = {.c = c};
    s4__rng_seed(&x.rng, seed);
    if ((st = s4__sashimi_visit(c, s, init_part, &x)) != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        s4__sashimi_free(s);
        return s4__fail(st, "%s: %s", fn, msg);
    }
    *out = s;
    return S4_OK;
}

/* ---- pointwise pieces ------------------------------------------------------------------- */

void s4__sblock_norm(const s4__sblock *b, float *x, size_t ld, size_t t0, size_t t1)
{
    s4__layernorm_cols(b->ln_w, b->ln_b, (size_t)b->H, x, ld, t0, t1);
}

void s4__ff_apply(const s4__sblock *b, s4_affine_fn affine, s4_gelu_row_fn gelu,
                  const float *z, size_t ldz, float *x, size_t ldx, int n, float *scratch)
{
    const int H = b->H, F = b->ff1.M;
    float *u = scratch, *g = u + (size_t)F * (size_t)n, *t = g + (size_t)F * (size_t)n;
    affine(H, b->ff1.Wp, 0, F, z, ldz, n, u, (size_t)n);
    gelu(u, g, (size_t)F * (size_t)n);
    affine(F, b->ff2.Wp, 0, H, g, (size_t)n, n, t, (size_t)n);
    for (int o = 0; o < H; o++)
        for (int j = 0; j < n; j++)
            x[(size_t)o * ldx + (size_t)j] += t[(size_t)o * (size_t)n + (size_t)j];
}
