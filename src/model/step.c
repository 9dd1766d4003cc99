/* S4Model in recurrent mode (docs/models.md): one time step of every layer's step plan per
 * call, the pointwise parts on that step's rows, and a running sum of the last layer's
 * output in the caller's state, so that the logits after T steps are the convolution
 * mode's on the first T inputs.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/model.h"
#include "model/sashimi.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>


struct s4_model_step {
    const s4_model *m;
    int B;
    s4_step **ls;       /* [n_layers] */
    size_t *state_off;  /* [n_layers] byte offsets of each layer's state */
    size_t sum_off;     /* [B x H] doubles: the running sum over time */
    size_t count_off;   /* int64_t: steps since the reset */
    size_t state_size;
    size_t layer_ws;
    size_t work_size;
    void *own_work;
    struct s4__sstep *sash; /* Sashimi and SashimiLM (sashimi_step.c) */
};

void s4_model_step_destroy(s4_model_step *p)
{
    if (!p)
        return;
    if (p->ls)
        for (int i = 0; i < p->m->cfg.n_layers; i++)
            s4_step_destroy(p->ls[i]);
    s4__free(p->ls);
    s4__free(p->state_off);
    s4__sstep_destroy(p->sash);
    s4__free(p->own_work);
    s4__free(p);
}

size_t s4_model_step_state_size(const s4_model_step *p) { return p ? p->state_size : 0; }
size_t s4_model_step_workspace_size(const s4_model_step *p) { return p ? p->work_size : 0; }

/* The step mode of layer `l` for the model mode. */
static s4_step_mode mode_for(const s4_layer *l, s4_model_step_mode mode)
{
    switch (mode) {
    case S4_MODEL_STEP_DENSE: return S4_STEP_DENSE;
    case S4_MODEL_STEP_LINEAR: return S4_STEP_LINEAR;
    case S4_MODEL_STEP_DIAGONAL: return S4_STEP_DIAGONAL;
    default: break;
    }
    s4_layer_config c;
    if (s4_layer_get_config(l, &c) != S4_OK)
        return S4_STEP_LINEAR;
    return c.ssm.mode == S4_MODE_DIAG ? S4_STEP_DIAGONAL : S4_STEP_LINEAR;
}

s4_status s4_model_step_create(const s4_model *model, s4_model_step_mode mode, int B,
                               const s4_step_options *options, s4_model_step **out)
{
    static const char fn[] = "s4_model_step_create";
    if (!model || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !model ? "model" : "out");
    if (mode < S4_MODEL_STEP_NATURAL || mode > S4_MODEL_STEP_DIAGONAL)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: mode = %d is unknown", fn, (int)mode);
    if (B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be >= 1", fn, B);
    if (options && options->threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        options->threads);
    if (model->sash) {
        static const s4_step_mode modes[] = {S4_STEP_LINEAR, S4_STEP_DENSE, S4_STEP_LINEAR,
                                             S4_STEP_DIAGONAL};
        s4_model_step *p = s4__calloc(1, sizeof *p);
        if (!p)
            return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        p->m = model;
        p->B = B;
        s4_status st = s4__sstep_create(fn, model, modes[mode], mode == S4_MODEL_STEP_NATURAL,
                                        B, options, &p->sash);
        if (st == S4_OK) {
            p->state_size = s4__sstep_state_size(p->sash);
            p->work_size = s4__sstep_workspace_size(p->sash);
            if (!(p->own_work = s4__malloc(p->work_size)))
                st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace", fn);
        }
        if (st != S4_OK) {
            s4_model_step_destroy(p);
            return st;
        }
        *out = p;
        return S4_OK;
    }
    const int nl = model->cfg.n_layers;
    for (int i = 0; i < nl; i++) {
        s4_layer_config c;
        if (s4_layer_get_config(model->layers[i], &c) == S4_OK && c.bidirectional)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: layer %d is bidirectional: a bidirectional model has no "
                            "recurrent mode (use the convolution mode)",
                            fn, i);
    }
    s4_model_step *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->m = model;
    p->B = B;
    p->ls = s4__calloc(nl ? (size_t)nl : 1, sizeof *p->ls);
    p->state_off = s4__calloc(nl ? (size_t)nl : 1, sizeof *p->state_off);
    if (!p->ls || !p->state_off) {
        s4_model_step_destroy(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    size_t off = 0;
    for (int i = 0; i < nl; i++) {
        const s4_status st = s4_step_create_with_options(
            model->layers[i], mode_for(model->layers[i], mode), B, options, &p->ls[i]);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            s4_model_step_destroy(p);
            return s4__fail(st, "%s: layer %d: %s", fn, i, msg);
        }
        p->state_off[i] = off;
        off += s4__round_up(s4_step_state_size(p->ls[i]), 8);
        const size_t ws = s4_step_workspace_size(p->ls[i]);
        p->layer_ws = ws > p->layer_ws ? ws : p->layer_ws;
    }
    const size_t H = (size_t)model->cfg.d_model;
    p->sum_off = off;
    off += (size_t)B * H * sizeof(double);
    p->count_off = off;
    p->state_size = off + sizeof(int64_t);
    /* Workspace: h, z, y [B x H] floats, then a layer's scratch. */
    const size_t act = s4__round_up((size_t)B * H * sizeof(float), S4_ALIGN);
    p->work_size = 3 * act + s4__round_up(p->layer_ws, S4_ALIGN) + S4_ALIGN;
    if (!(p->own_work = s4__malloc(p->work_size))) {
        s4_model_step_destroy(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace", fn);
    }
    *out = p;
    return S4_OK;
}

s4_status s4_model_step_state_reset(const s4_model_step *p, void *state)
{
    if (!p || !state)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_model_step_state_reset: %s is NULL",
                        !p ? "plan" : "state");
    if (p->sash)
        return s4__sstep_reset(p->sash, state);
    memset(state, 0, p->state_size);
    for (int i = 0; i < p->m->cfg.n_layers; i++) {
        const s4_status st =
            s4_step_state_reset(p->ls[i], (unsigned char *)state + p->state_off[i]);
        if (st != S4_OK)
            return st;
    }
    return S4_OK;
}

int64_t s4_model_step_count(const s4_model_step *p, const void *state)
{
    if (!p || !state)
        return 0;
    if (p->sash)
        return s4__sstep_count(p->sash, state);
    int64_t n;
    memcpy(&n, (const unsigned char *)state + p->count_off, sizeof n);
    return n;
}

s4_status s4_model_step_execute(const s4_model_step *p, void *state, const float *x,
                                float *logits, void *work, size_t work_size)
{
    static const char fn[] = "s4_model_step_execute";
    if (!p || !state || !x)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !state ? "state" : "x");
    if ((uintptr_t)state % 8 != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state is not 8-byte aligned", fn);
    const s4_model *m = p->m;
    if (m->cfg.architecture == S4_ARCH_SASHIMI_LM)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: a SashimiLM takes tokens: use s4_model_step_execute_tokens", fn);
    const size_t H = (size_t)m->cfg.d_model, B = (size_t)p->B;
    const size_t nx = B * (size_t)m->cfg.d_input;
    const size_t bad = s4__first_nonfinite_f(x, nx);
    if (bad < nx)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: x[%zu] = %g is not finite", fn, bad,
                        (double)x[bad]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;
    if (p->sash)
        return s4__sstep_execute(fn, p->sash, state, x, NULL, logits, base);
    const size_t act = s4__round_up(B * H * sizeof(float), S4_ALIGN);
    float *h = (float *)(void *)base, *z = (float *)(void *)(base + act);
    float *y = (float *)(void *)(base + 2 * act);
    void *lw = base + 3 * act;
    unsigned char *st8 = state;
    int64_t count;
    memcpy(&count, st8 + p->count_off, sizeof count);
    if (count < 0 || count == INT64_MAX)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: state's step count %lld is invalid (reset the state)", fn,
                        (long long)count);
    s4__model_encode(m, x, h, B);
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const float *in = h;
        if (m->cfg.prenorm) {
            memcpy(z, h, B * H * sizeof *z);
            s4__model_norm(m, i, z, B);
            in = z;
        }
        const s4_status st = s4_step_execute(p->ls[i], st8 + p->state_off[i], in, y, lw,
                                             p->layer_ws);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: layer %d: %s", fn, i, msg);
        }
        for (size_t r = 0; r < B * H; r++)
            h[r] += y[r];
        if (!m->cfg.prenorm)
            s4__model_norm(m, i, h, B);
    }
    /* The sum lives in the (8-byte aligned) state: add this step, in time order. */
    double *sum = (double *)(void *)(st8 + p->sum_off);
    for (size_t r = 0; r < B * H; r++)
        sum[r] += h[r];
    count++;
    memcpy(st8 + p->count_off, &count, sizeof count);
    if (logits)
        s4__model_decode(m, sum, 1.0 / (double)count, logits, B);
    return S4_OK;
}

s4_status s4_model_step_execute_tokens(const s4_model_step *p, void *state,
                                       const int32_t *tokens, float *logits, void *work,
                                       size_t work_size)
{
    static const char fn[] = "s4_model_step_execute_tokens";
    if (!p || !state || !tokens)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !state ? "state" : "tokens");
    if ((uintptr_t)state % 8 != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state is not 8-byte aligned", fn);
    const s4_model_config *c = &p->m->cfg;
    if (c->architecture != S4_ARCH_SASHIMI_LM)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the model takes float inputs, not tokens: use "
                        "s4_model_step_execute", fn);
    const size_t bad = s4__first_bad_token(tokens, (size_t)p->B, c->n_tokens);
    if (bad < (size_t)p->B)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: tokens[%zu] = %d is outside [0, %d)", fn,
                        bad, (int)tokens[bad], c->n_tokens);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    return base ? s4__sstep_execute(fn, p->sash, state, NULL, tokens, logits, base)
                : S4_ERR_INVALID_ARGUMENT;
}
