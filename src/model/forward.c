/* S4Model in convolution mode (docs/models.md): encoder, then per layer (LayerNorm,) the
 * layer's s4_forward plan, the residual (, LayerNorm), then mean pooling and the decoder.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/model.h"
#include "model/sashimi.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


struct s4_model_forward {
    const s4_model *m;
    int B;
    int64_t L;
    int threads;
    s4_forward **lf;  /* [n_layers] */
    size_t layer_ws;  /* the largest layer plan's workspace */
    size_t work_size; /* bytes, alignment slack included */
    void *own_work;
    struct s4__sfwd *sash; /* Sashimi and SashimiLM (sashimi_forward.c) */
};

typedef struct workspace {
    float *h, *z, *y; /* [B x L x H] each */
    double *sum;      /* [B x H] */
    void *layer;      /* layer_ws bytes */
} workspace;

/* Carves the workspace from `base` (64-byte aligned; NULL: sizes only); its bytes, or 0 on
 * overflow. */
static size_t carve(const s4_model_forward *p, unsigned char *base, workspace *w)
{
    const size_t H = (size_t)p->m->cfg.d_model;
    size_t act, off = 0;
    if (!s4__mul_size((size_t)p->B * H, (size_t)p->L, &act) ||
        !s4__mul_size(act, sizeof(float), &act) || act > SIZE_MAX / 4)
        return 0;
    act = s4__round_up(act, S4_ALIGN);
    if (w) {
        w->h = (float *)(void *)(base + off);
        w->z = (float *)(void *)(base + off + act);
        w->y = (float *)(void *)(base + off + 2 * act);
    }
    off += 3 * act;
    if (w)
        w->sum = (double *)(void *)(base + off);
    off += s4__round_up((size_t)p->B * H * sizeof(double), S4_ALIGN);
    if (w)
        w->layer = base + off;
    if (!s4__add_size(off, s4__round_up(p->layer_ws, S4_ALIGN), &off))
        return 0;
    return off;
}

void s4_model_forward_destroy(s4_model_forward *p)
{
    if (!p)
        return;
    if (p->lf)
        for (int i = 0; i < p->m->cfg.n_layers; i++)
            s4_forward_destroy(p->lf[i]);
    s4__free(p->lf);
    s4__sfwd_destroy(p->sash);
    s4__free(p->own_work);
    s4__free(p);
}

size_t s4_model_forward_workspace_size(const s4_model_forward *plan)
{
    return plan ? plan->work_size : 0;
}

s4_status s4_model_forward_create(s4_model *model, int B, int64_t L,
                                  const s4_forward_options *options, s4_model_forward **out)
{
    static const char fn[] = "s4_model_forward_create";
    if (!model || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !model ? "model" : "out");
    if (B < 1 || L < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d and L = %lld must be >= 1", fn, B,
                        (long long)L);
    if (options && options->threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        options->threads);
    s4_model_forward *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->m = model;
    p->B = B;
    p->L = L;
    p->threads = options && options->threads > 0 ? options->threads : omp_get_max_threads();
    if (model->sash) {
        s4_status st = s4__sfwd_create(fn, model, B, L, options, &p->sash);
        if (st == S4_OK && !(p->own_work = s4__malloc(p->work_size =
                                                          s4__sfwd_workspace_size(p->sash))))
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace (%zu "
                                                "bytes)", fn, p->work_size);
        if (st != S4_OK) {
            s4_model_forward_destroy(p);
            return st;
        }
        *out = p;
        return S4_OK;
    }
    const int nl = model->cfg.n_layers;
    p->lf = s4__calloc(nl ? (size_t)nl : 1, sizeof *p->lf);
    if (!p->lf) {
        s4_model_forward_destroy(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    for (int i = 0; i < nl; i++) {
        const s4_status st = s4_forward_create(model->layers[i], B, L, options, &p->lf[i]);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            s4_model_forward_destroy(p);
            return s4__fail(st, "%s: layer %d: %s", fn, i, msg);
        }
        const size_t ws = s4_forward_workspace_size(p->lf[i]);
        p->layer_ws = ws > p->layer_ws ? ws : p->layer_ws;
    }
    const size_t need = carve(p, NULL, NULL);
    if (!need || !s4__add_size(need, S4_ALIGN, &p->work_size)) {
        s4_model_forward_destroy(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: the workspace for B = %d, L = %lld does not "
                        "fit in memory", fn, B, (long long)L);
    }
    if (!(p->own_work = s4__malloc(p->work_size))) {
        s4_model_forward_destroy(p);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace (%zu bytes)",
                        fn, need);
    }
    *out = p;
    return S4_OK;
}

s4_status s4_model_forward_execute(const s4_model_forward *p, const float *x, float *logits,
                                   void *work, size_t work_size)
{
    static const char fn[] = "s4_model_forward_execute";
    if (!p || !x || !logits)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !x ? "x" : "logits");
    const s4_model *m = p->m;
    if (m->cfg.architecture == S4_ARCH_SASHIMI_LM)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: a SashimiLM takes tokens: use s4_model_forward_execute_tokens", fn);
    if (p->sash) {
        const size_t n = (size_t)p->B * (size_t)p->L * (size_t)m->cfg.d_model;
        const size_t bad = s4__first_nonfinite_f(x, n);
        if (bad < n)
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: x[%zu] = %g is not finite", fn, bad,
                            (double)x[bad]);
        unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
        return base ? s4__sfwd_execute(fn, p->sash, x, NULL, logits, base)
                    : S4_ERR_INVALID_ARGUMENT;
    }
    const size_t H = (size_t)m->cfg.d_model, rows = (size_t)p->B * (size_t)p->L;
    const size_t nx = rows * (size_t)m->cfg.d_input;
    const size_t bad = s4__first_nonfinite_f(x, nx);
    if (bad < nx)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: x[%zu] = %g is not finite", fn, bad,
                        (double)x[bad]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;
    workspace w;
    carve(p, base, &w);
    const int T = p->threads;
    const size_t L = (size_t)p->L, B = (size_t)p->B, din = (size_t)m->cfg.d_input;
    const size_t TB = 64, nblk = (L + TB - 1) / TB; /* column blocks of one sequence */
    /* The layers run on (B, H, L) arrays. Every pointwise part is independent across
     * (sequence, column block) pairs or (sequence, feature) rows, and each output is one
     * fixed-order computation, so a static split of them changes no bit (docs/cpu.md). */
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t bo = 0; bo < B * H; bo++) {
        const size_t b = bo / H, o = bo % H;
        float *row = w.h + bo * L;
        for (size_t t = 0; t < L; t++) {
            double acc = m->enc_b[o];
            for (size_t k = 0; k < din; k++)
                acc += (double)m->enc_W[o * din + k] * x[(b * L + t) * din + k];
            row[t] = (float)acc;
        }
    }
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const float *in = w.h;
        if (m->cfg.prenorm) {
            memcpy(w.z, w.h, rows * H * sizeof *w.z);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
            for (size_t q = 0; q < B * nblk; q++) {
                const size_t b = q / nblk, t0 = (q % nblk) * TB;
                s4__model_norm_cols(m, i, w.z + b * H * L, L, t0, t0 + TB < L ? t0 + TB : L);
            }
            in = w.z;
        }
        const s4_status st =
            s4_forward_execute(p->lf[i], in, w.y, NULL, w.layer, p->layer_ws);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: layer %d: %s", fn, i, msg);
        }
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (size_t q = 0; q < B * nblk; q++) {
            const size_t b = q / nblk, t0 = (q % nblk) * TB, t1 = t0 + TB < L ? t0 + TB : L;
            float *hb = w.h + b * H * L;
            const float *yb = w.y + b * H * L;
            for (size_t o = 0; o < H; o++)
                for (size_t t = t0; t < t1; t++)
                    hb[o * L + t] += yb[o * L + t];
            if (!m->cfg.prenorm)
                s4__model_norm_cols(m, i, hb, L, t0, t1);
        }
    }
    /* Mean over time: each (b, o) row summed in time order, in double. */
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t bo = 0; bo < B * H; bo++) {
        double s = 0.0;
        for (size_t t = 0; t < L; t++)
            s += w.h[bo * L + t];
        w.sum[bo] = s;
    }
    s4__model_decode(m, w.sum, 1.0 / (double)L, logits, (size_t)p->B);
    return S4_OK;
}

/* Index of the first token outside [0, V) in t[0 .. n), or n. */
size_t s4__first_bad_token(const int32_t *t, size_t n, int V)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= V)
            return i;
    return n;
}

s4_status s4_model_forward_execute_tokens(const s4_model_forward *p, const int32_t *tokens,
                                          float *logits, void *work, size_t work_size)
{
    static const char fn[] = "s4_model_forward_execute_tokens";
    if (!p || !tokens || !logits)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !tokens ? "tokens" : "logits");
    const s4_model_config *c = &p->m->cfg;
    if (c->architecture != S4_ARCH_SASHIMI_LM)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the model takes float inputs, not tokens: use "
                        "s4_model_forward_execute", fn);
    const size_t n = (size_t)p->B * (size_t)p->L, bad = s4__first_bad_token(tokens, n, c->n_tokens);
    if (bad < n)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: tokens[%zu] = %d is outside [0, %d)", fn,
                        bad, (int)tokens[bad], c->n_tokens);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    return base ? s4__sfwd_execute(fn, p->sash, NULL, tokens, logits, base)
                : S4_ERR_INVALID_ARGUMENT;
}
