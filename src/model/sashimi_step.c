/* Sashimi and SashimiLM in recurrent mode (docs/models.md, "Sashimi: step mode"): one
 * sample of B streams per call. Activations are feature-major panels [H x B] (column b:
 * stream b), so each linear maps all streams in one pass over its weights.
 *
 * The caller's state holds the step count, every S4 block's layer state, and per level
 * the DownPool's collected samples and the UpPool's queue, both [H p x B] with row h p + s
 * for sub-step s: a completed DownPool's input is its buffer as it stands, and a queue
 * pops row block s. A level below the top runs only on the steps that complete every pool
 * above it; its UpPool's queue is refilled on exactly those steps, after the pop (the
 * reference's order, which makes the model causal).
 *
 * Threads: streams are independent, so the plan splits them into lanes, one per thread,
 * and each thread runs whole model steps for its lane's streams with single-threaded layer
 * plans: nothing inside a step waits for another thread, and one step costs one parallel
 * region. Every kernel computes each stream's values in an order that does not depend on
 * the streams beside it (the affine kernel's fixed order per output, the layer step's per
 * stream), so the outputs are bitwise the same for any split.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/sashimi.h"
#include "core/barrier.h"
#include "layer/layer.h" /* s4__step_team */

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct lane {
    const s4_model *m;
    const s4__sashimi *s;
    int B;
    s4_step **ls;           /* [n_sblocks]: the S4 blocks' step plans (NULL for FF) */
    size_t *state_off;      /* [n_sblocks] */
    size_t pool_off[S4_MAX_POOLS][2]; /* DownPool buffer, UpPool queue: [H p x B] floats */
    size_t count_off, state_size;
    int nsave;
    size_t layer_ws, work_size;
    s4_affine_fn affine;
    s4_gelu_row_fn gelu;
    int nt; /* threads of its team: > 1 only for a lane of one stream with threads to spare */
} lane;

enum { MAX_LANES = 64 };

struct s4__sstep {
    int nlanes;
    int b0[MAX_LANES + 1];          /* lane i: streams b0[i] .. b0[i + 1] - 1 */
    lane *lanes[MAX_LANES];
    size_t state_off[MAX_LANES], work_off[MAX_LANES];
    size_t state_size, work_size;
    const s4_model *m;
};

typedef struct stws {
    float *save[S4_MAX_POOLS + 1]; /* nsave panels [H_i x B] per level (1 at the centre) */
    float *cur[S4_MAX_POOLS + 1];
    float *z;           /* [H_max x B] per team thread: its own normalised input */
    float *ut, *yt;     /* [H_max x B] each: the layer's [B x H] in and out */
    float *scratch;     /* FF: (2 F + H) B; decoder: n_tokens B */
    void *layer;
    s4__barrier *bar;   /* the team's (core/barrier.h), set up before each step */
} stws;

static int level_H(const s4__sashimi *s, int i)
{
    return i == s->n_levels ? s->H_center : s->levels[i].H;
}

static size_t carve(const lane *p, unsigned char *base, stws *w)
{
    s4_carver c = {.base = base, .ok = true};
    stws dummy;
    if (!w)
        w = &dummy;
    const s4__sashimi *s = p->s;
    const size_t B = (size_t)p->B;
    for (int i = 0; i <= s->n_levels; i++) {
        const size_t n = (size_t)level_H(s, i) * B;
        w->save[i] = s4__carve(&c, (size_t)(i == s->n_levels ? 1 : p->nsave) * n, sizeof(float));
        w->cur[i] = s4__carve(&c, n, sizeof(float));
    }
    const size_t hb = (size_t)s->H_max * B;
    w->z = s4__carve(&c, hb * (size_t)(p->nt > 1 ? p->nt : 1), sizeof(float)); /* per thread */
    w->ut = s4__carve(&c, hb, sizeof(float));
    w->yt = s4__carve(&c, hb, sizeof(float));
    size_t sc = (2 * (size_t)s->F_max + (size_t)s->H_max) * B;
    if (p->m->cfg.architecture == S4_ARCH_SASHIMI_LM && (size_t)p->m->cfg.n_tokens * B > sc)
        sc = (size_t)p->m->cfg.n_tokens * B;
    w->scratch = s4__carve(&c, sc, sizeof(float));
    w->layer = s4__carve(&c, p->layer_ws, 1);
    w->bar = s4__carve(&c, 1, sizeof(s4__barrier));
    return c.ok ? c.off : 0;
}

static void lane_destroy(lane *p)
{
    if (!p)
        return;
    if (p->ls)
        for (int k = 0; k < p->s->n_sblocks; k++)
            s4_step_destroy(p->ls[k]);
    s4__free(p->ls);
    s4__free(p->state_off);
    s4__free(p);
}


static s4_status stage_plans(lane *p, const s4__sblock *blk, s4_step_mode mode,
                             bool natural, const s4_step_options *o, size_t *off,
                             const char *fn)
{
    for (int j = 0; j < p->s->n_blocks; j++) {
        if (!blk[j].layer)
            continue;
        s4_step_mode md = mode;
        if (natural) {
            s4_layer_config lc;
            md = s4_layer_get_config(blk[j].layer, &lc) == S4_OK && lc.ssm.mode == S4_MODE_DIAG
                     ? S4_STEP_DIAGONAL
                     : S4_STEP_LINEAR;
        }
        s4_step **ls = &p->ls[blk[j].id];
        const s4_status st = s4_step_create_with_options(blk[j].layer, md, p->B, o, ls);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: %s (width %d): %s", fn, blk[j].name, blk[j].H, msg);
        }
        p->state_off[blk[j].id] = *off;
        *off += s4__round_up(s4_step_state_size(*ls), 8);
        const size_t ws = s4_step_workspace_size(*ls);
        p->layer_ws = ws > p->layer_ws ? ws : p->layer_ws;
    }
    return S4_OK;
}

static s4_status lane_create(const char *fn, const s4_model *m, s4_step_mode mode,
                             bool natural, int B, const s4_step_options *o, int team,
                             lane **out)
{
    const s4__sashimi *s = m->sash;
    lane *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->m = m;
    p->s = s;
    p->B = B;
    p->nsave = m->cfg.unet ? s->n_blocks + 1 : 1;
    p->nt = team;
    p->affine = s4__affine_kernel(s4__cpu_isa());
    p->gelu = s4__gelu_row(s4__cpu_isa());
    p->ls = s4__calloc((size_t)s->n_sblocks + 1, sizeof *p->ls);
    p->state_off = s4__calloc((size_t)s->n_sblocks + 1, sizeof *p->state_off);
    s4_status st = p->ls && p->state_off
                       ? S4_OK
                       : s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    size_t off = 0;
    for (int i = 0; i <= s->n_levels && st == S4_OK; i++) {
        if (i < s->n_levels && s->levels[i].down)
            st = stage_plans(p, s->levels[i].down, mode, natural, o, &off, fn);
        if (st == S4_OK)
            st = stage_plans(p, s4__stage((s4__sashimi *)s, i, 1), mode, natural, o, &off, fn);
    }
    for (int i = 0; i < s->n_levels && st == S4_OK; i++)
        for (int k = 0; k < 2; k++) {
            p->pool_off[i][k] = off;
            off += s4__round_up((size_t)s->levels[i].H * (size_t)s->levels[i].p * (size_t)B *
                                    sizeof(float), 8);
        }
    p->count_off = off;
    p->state_size = off + sizeof(int64_t);
    if (st == S4_OK) {
        const size_t need = carve(p, NULL, NULL);
        if (!need || !s4__add_size(need, S4_ALIGN, &p->work_size))
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: the workspace does not fit in memory", fn);
    }
    if (st != S4_OK) {
        lane_destroy(p);
        return st;
    }
    *out = p;
    return S4_OK;
}

static s4_status lane_reset(const lane *p, void *state)
{
    memset(state, 0, p->state_size);
    for (int k = 0; k < p->s->n_sblocks; k++)
        if (p->ls[k]) {
            const s4_status st =
                s4_step_state_reset(p->ls[k], (unsigned char *)state + p->state_off[k]);
            if (st != S4_OK)
                return st;
        }
    return S4_OK;
}

static int64_t lane_count(const lane *p, const void *state)
{
    int64_t n;
    memcpy(&n, (const unsigned char *)state + p->count_off, sizeof n);
    return n;
}

/* A barrier of the lane's team (nothing for a team of one). */
#define TEAM_BARRIER(w, nt) s4__barrier_wait((w)->bar, (nt))

/* One residual block on the panel x [H x B] in place, by thread tid of the lane's team of
 * nt: the normalisation by thread 0, then the linears' rows and the layer's features split
 * (cpu/affine.h and s4__step_team: the same bits for any split). *err: the team's status,
 * set by thread 0 only, read by all after a barrier. */
static s4_status step_block(const lane *p, const s4__sblock *blk, float *x,
                            unsigned char *state, const stws *w, int tid, int nt,
                            s4_status *err)
{
    const size_t H = (size_t)blk->H, B = (size_t)p->B;
    const size_t T0 = (size_t)tid, NT = (size_t)nt;
    /* Every thread normalises x itself into its own z (the same bits): no barrier. */
    float *z = w->z + T0 * (size_t)p->s->H_max * B;
    memcpy(z, x, H * B * sizeof *x);
    s4__sblock_norm(blk, z, B, 0, B);
    if (!blk->layer) {
        const size_t F = (size_t)blk->ff1.M;
        float *u = w->scratch, *g = u + F * B, *t = g + F * B;
        const size_t f0 = F * T0 / NT, f1 = F * (T0 + 1) / NT;
        p->affine((int)H, blk->ff1.Wp, (int)f0, (int)f1, z, B, (int)B, u + f0 * B, B);
        p->gelu(u + f0 * B, g + f0 * B, (f1 - f0) * B);
        TEAM_BARRIER(w, nt);
        const size_t h0 = H * T0 / NT, h1 = H * (T0 + 1) / NT;
        p->affine((int)F, blk->ff2.Wp, (int)h0, (int)h1, g, B, (int)B, t + h0 * B, B);
        for (size_t o = h0 * B; o < h1 * B; o++)
            x[o] += t[o];
        TEAM_BARRIER(w, nt);
        return S4_OK;
    }
    /* The layer step takes and gives [B x H]; each thread fills the features it steps. */
    const size_t g0 = H * T0 / NT, g1 = H * (T0 + 1) / NT;
    for (size_t h = g0; h < g1; h++)
        for (size_t b = 0; b < B; b++)
            w->ut[b * H + h] = z[h * B + b];
    if (nt > 1) {
        /* The layer step would refuse a non-finite input: so does the team, all of it. */
        const size_t bad = s4__first_nonfinite_f(z, H * B);
        if (bad < H * B) {
            if (tid == 0)
                *err = s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: input %zu is not finite",
                                blk->name, bad);
            return S4_ERR_INVALID_ARGUMENT; /* every thread sees the same z */
        }
        s4__step_team(p->ls[blk->id], state + p->state_off[blk->id], w->ut, w->yt, w->layer,
                      w->bar, tid, nt);
    } else {
        const s4_status st = s4_step_execute(p->ls[blk->id], state + p->state_off[blk->id],
                                             w->ut, w->yt, w->layer, p->layer_ws);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return *err = s4__fail(st, "%s: %s", blk->name, msg);
        }
    }
    /* The rows of y this thread wrote (s4__step_team's split of the Fo = H rows). */
    for (size_t h = H * T0 / NT; h < H * (T0 + 1) / NT; h++)
        for (size_t b = 0; b < B; b++)
            x[h * B + b] += w->yt[b * H + h];
    TEAM_BARRIER(w, nt);
    return S4_OK;
}

static void add(float *x, const float *y, size_t n)
{
    for (size_t k = 0; k < n; k++)
        x[k] += y[k];
}

/* One step of the lane's streams by thread tid of its team of nt (nt 1: the lane alone).
 * The blocks split their heavy parts between the team (step_block); the rest runs on
 * thread 0, each part ending at a barrier. The step's control (which levels run, the pool
 * slots) is arithmetic on the step count, so every thread knows it without talking. */
static s4_status lane_execute(const char *fn, const lane *p, void *state, const float *x,
                              const int32_t *tokens, float *out, unsigned char *base, int tid,
                              int nt, s4_status *err)
{
    const s4_model_config *c = &p->m->cfg;
    const s4__sashimi *s = p->s;
    const size_t B = (size_t)p->B, d = (size_t)c->d_model;
    const int P = s->n_levels, nb = s->n_blocks;
    unsigned char *st8 = state;
    int64_t t;
    memcpy(&t, st8 + p->count_off, sizeof t);
    if (t < 0 || t == INT64_MAX)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: state's step count %lld is invalid (reset the state)", fn,
                        (long long)t);
    stws w;
    carve(p, base, &w);
    /* The deepest level this step completes, and the step's slot sub[i] in pool i. */
    int depth = P;
    size_t sub[S4_MAX_POOLS] = {0}; /* set for every level the step reaches */
    for (int64_t i = 0, ti = t; i < P; i++) {
        sub[i] = (size_t)(ti % s->levels[i].p);
        if (sub[i] + 1 < (size_t)s->levels[i].p) {
            depth = (int)i;
            break;
        }
        ti /= s->levels[i].p;
    }
    if (tid == 0)
        for (size_t b = 0; b < B; b++) {
            const float *src = tokens ? s->embed + (size_t)tokens[b] * d : x + b * d;
            for (size_t h = 0; h < d; h++)
                w.save[0][h * B + b] = src[h];
        }
    TEAM_BARRIER(&w, nt);
    s4_status st = S4_OK;
    /* Down: the U-Net blocks, then the DownPool's slot, and on completion the pool. */
    for (int i = 0; i < P && st == S4_OK; i++) {
        const s4__level *v = &s->levels[i];
        const size_t n = (size_t)v->H * B, H = (size_t)v->H, pp = (size_t)v->p;
        for (int j = 0; j < nb && p->nsave > 1 && st == S4_OK; j++) {
            if (tid == 0)
                memcpy(w.save[i] + (size_t)(j + 1) * n, w.save[i] + (size_t)j * n,
                       n * sizeof(float));
            TEAM_BARRIER(&w, nt);
            st = step_block(p, &v->down[j], w.save[i] + (size_t)(j + 1) * n, st8, &w, tid, nt,
                            err);
        }
        if (st != S4_OK)
            break;
        if (tid == 0) {
            float *buf = (float *)(void *)(st8 + p->pool_off[i][0]);
            const float *xl = w.save[i] + (size_t)(p->nsave - 1) * n;
            for (size_t h = 0; h < H; h++)
                memcpy(buf + (h * pp + sub[i]) * B, xl + h * B, B * sizeof(float));
            if (i < depth)
                p->affine((int)(H * pp), v->dpool.Wp, 0, v->dpool.M, buf, B, (int)B,
                          w.save[i + 1], B);
        }
        TEAM_BARRIER(&w, nt);
        if (i == depth)
            break;
    }
    if (st == S4_OK && depth == P) {
        const size_t n = (size_t)s->H_center * B;
        if (tid == 0)
            memcpy(w.cur[P], w.save[P], n * sizeof(float));
        TEAM_BARRIER(&w, nt);
        for (int j = 0; j < nb && st == S4_OK; j++)
            st = step_block(p, &s->center[j], w.cur[P], st8, &w, tid, nt, err);
        if (tid == 0 && st == S4_OK)
            add(w.cur[P], w.save[P], n);
        TEAM_BARRIER(&w, nt);
    }
    /* Up: pop the UpPool's queue (refilled after the pop when the pool completed), the
     * skips, the blocks. */
    for (int i = depth < P ? depth : P - 1; i >= 0 && st == S4_OK; i--) {
        const s4__level *v = &s->levels[i];
        const size_t n = (size_t)v->H * B, H = (size_t)v->H, pp = (size_t)v->p;
        if (tid == 0) {
            float *queue = (float *)(void *)(st8 + p->pool_off[i][1]);
            for (size_t h = 0; h < H; h++)
                memcpy(w.cur[i] + h * B, queue + (h * pp + sub[i]) * B, B * sizeof(float));
            if (i < depth) /* the pool completed: refill from this step's deeper output */
                p->affine(v->upool.K, v->upool.Wp, 0, v->upool.M, w.cur[i + 1], B, (int)B,
                          queue, B);
            if (c->unet) {
                add(w.cur[i], w.save[i] + (size_t)nb * n, n);
            } else {
                add(w.save[i], w.cur[i], n);
                memcpy(w.cur[i], w.save[i], n * sizeof(float));
            }
        }
        TEAM_BARRIER(&w, nt);
        for (int j = 0; j < nb && st == S4_OK; j++) {
            st = step_block(p, &v->up[j], w.cur[i], st8, &w, tid, nt, err);
            if (c->unet && st == S4_OK) {
                if (tid == 0)
                    add(w.cur[i], w.save[i] + (size_t)(nb - 1 - j) * n, n);
                TEAM_BARRIER(&w, nt);
            }
        }
        if (!c->unet && st == S4_OK) {
            if (tid == 0)
                add(w.cur[i], w.save[i], n);
            TEAM_BARRIER(&w, nt);
        }
    }
    if (st != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        return s4__fail(st, "%s: %s (reset the state)", fn, msg);
    }
    if (tid != 0)
        return S4_OK;
    t++;
    memcpy(st8 + p->count_off, &t, sizeof t);
    if (!out)
        return S4_OK;
    float *y = w.cur[0];
    s4__layernorm_cols(s->norm_w, s->norm_b, d, y, B, 0, B);
    const size_t bad = s4__first_nonfinite_f(y, d * B);
    if (bad < d * B)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: stream %zu's output is not finite at step %lld: an intermediate "
                        "value left the float range (reset the state)",
                        fn, bad % B, (long long)(t - 1));
    if (!tokens) {
        for (size_t b = 0; b < B; b++)
            for (size_t h = 0; h < d; h++)
                out[b * d + h] = y[h * B + b];
        return S4_OK;
    }
    const size_t V = (size_t)c->n_tokens;
    p->affine((int)d, s->decoder.Wp, 0, (int)V, y, B, (int)B, w.scratch, B);
    for (size_t b = 0; b < B; b++)
        for (size_t v = 0; v < V; v++)
            out[b * V + v] = w.scratch[v * B + b];
    return S4_OK;
}

/* ---- lanes of streams, one per thread ------------------------------------------------ */

void s4__sstep_destroy(struct s4__sstep *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nlanes; i++)
        lane_destroy(p->lanes[i]);
    s4__free(p);
}

size_t s4__sstep_state_size(const struct s4__sstep *p) { return p->state_size; }
size_t s4__sstep_workspace_size(const struct s4__sstep *p) { return p->work_size; }

s4_status s4__sstep_create(const char *fn, const s4_model *m, s4_step_mode mode, bool natural,
                           int B, const s4_step_options *o, struct s4__sstep **out)
{
    if (m->cfg.bidirectional)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the model is bidirectional: it has no recurrent mode (use the "
                        "convolution mode)",
                        fn);
    struct s4__sstep *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->m = m;
    const int Tall = o && o->threads > 0 ? o->threads : omp_get_max_threads();
    int T = Tall < B ? Tall : B;
    T = T < MAX_LANES ? T : MAX_LANES;
    p->nlanes = T > 0 ? T : 1;
    /* The layers of a lane run single-threaded when the lanes are the parallelism. */
    s4_step_options lo;
    s4_step_options_default(&lo);
    if (o)
        lo = *o;
    s4_status st = S4_OK;
    /* Fewer streams than threads: one stream gets a team (its layers' features and its
     * linears' rows split), several get a lane each. */
    const int team = B == 1 && Tall > 1 ? Tall : 1;
    lo.threads = team;
    for (int i = 0; i <= p->nlanes; i++)
        p->b0[i] = (int)((int64_t)B * i / p->nlanes);
    for (int i = 0; i < p->nlanes && st == S4_OK; i++) {
        st = lane_create(fn, m, mode, natural, p->b0[i + 1] - p->b0[i], &lo, team,
                         &p->lanes[i]);
        if (st != S4_OK)
            break;
        for (int k = 0; k < m->sash->n_sblocks && team > 1; k++)
            if (p->lanes[i]->ls[k] && s4__step_team_threads(p->lanes[i]->ls[k]) < team)
                p->lanes[i]->nt = 1; /* a layer plan that cannot: the lane runs alone */
        p->state_off[i] = p->state_size;
        p->work_off[i] = p->work_size;
        if (!s4__add_size(p->state_size, s4__round_up(p->lanes[i]->state_size, 64),
                          &p->state_size) ||
            !s4__add_size(p->work_size, s4__round_up(p->lanes[i]->work_size, 64), &p->work_size))
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: the state does not fit in memory", fn);
    }
    if (st == S4_OK && !s4__add_size(p->work_size, S4_ALIGN, &p->work_size))
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: the workspace does not fit in memory", fn);
    if (st != S4_OK) {
        s4__sstep_destroy(p);
        return st;
    }
    *out = p;
    return S4_OK;
}

s4_status s4__sstep_reset(const struct s4__sstep *p, void *state)
{
    for (int i = 0; i < p->nlanes; i++) {
        const s4_status st = lane_reset(p->lanes[i], (unsigned char *)state + p->state_off[i]);
        if (st != S4_OK)
            return st;
    }
    return S4_OK;
}

int64_t s4__sstep_count(const struct s4__sstep *p, const void *state)
{
    return lane_count(p->lanes[0], (const unsigned char *)state + p->state_off[0]);
}

s4_status s4__sstep_execute(const char *fn, const struct s4__sstep *p, void *state,
                            const float *x, const int32_t *tokens, float *out,
                            unsigned char *base)
{
    const s4_model_config *c = &p->m->cfg;
    const size_t din = (size_t)c->d_model, dout = (size_t)c->d_output;
    s4_status st[MAX_LANES] = {S4_OK};
    char msg[MAX_LANES][256];
    const int L = p->nlanes;
    if (L == 1 && p->lanes[0]->nt > 1) {
        /* One lane, a team of threads on it. */
        const int nt = p->lanes[0]->nt;
        s4_status err = S4_OK;
        stws w;
        carve(p->lanes[0], base, &w);
        s4__barrier_init(w.bar);
#pragma omp parallel num_threads(nt)
        {
            const int tid = omp_get_thread_num(), n = omp_get_num_threads();
            const s4_status r = lane_execute(fn, p->lanes[0], state, x, tokens, out, base, tid,
                                             n, &err);
            if (tid == 0) {
                st[0] = r;
                if (r != S4_OK)
                    snprintf(msg[0], sizeof msg[0], "%s", s4_last_error());
            }
        }
        return st[0] == S4_OK ? S4_OK : s4__fail(st[0], "%s", msg[0]);
    }
#pragma omp parallel for num_threads(L) schedule(static, 1) if (L > 1)
    for (int i = 0; i < L; i++) {
        const size_t b0 = (size_t)p->b0[i];
        s4_status err = S4_OK;
        /* Each lane's base stays 64-byte aligned: offsets are multiples of 64. */
        st[i] = lane_execute(fn, p->lanes[i], (unsigned char *)state + p->state_off[i],
                             x ? x + b0 * din : NULL, tokens ? tokens + b0 : NULL,
                             out ? out + b0 * dout : NULL, base + p->work_off[i], 0, 1, &err);
        if (st[i] != S4_OK) /* the message is this thread's: carry it to the caller's */
            snprintf(msg[i], sizeof msg[i], "%s", s4_last_error());
    }
    for (int i = 0; i < L; i++)
        if (st[i] != S4_OK)
            return s4__fail(st[i], "%s", msg[i]);
    return S4_OK;
}
