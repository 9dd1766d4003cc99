/* Sashimi and SashimiLM in convolution mode (docs/models.md, "Sashimi"): whole sequences,
 * level by level, on feature-major arrays [B x H_i x L_i] (L_i = L / (p_0 ... p_{i-1})).
 *
 * The skips follow the reference's forward: every level keeps its input (and, with U-Net,
 * every down block's output) until the up path adds it back. The S4 blocks run their
 * layer's s4_forward plan (kernel spectra cached at creation); everything else is
 * pointwise over (sequence, column tile) tasks whose outputs are each one fixed-order
 * computation, so any split between threads gives the same bits.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/sashimi.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { TB = 64 }; /* columns of a pointwise tile */

struct s4__sfwd {
    const s4_model *m;
    const s4__sashimi *s;
    int B, threads;
    int64_t L[S4_MAX_POOLS + 1]; /* each level's length; [n_levels]: the centre's */
    int nsave;                   /* saved activations per level: U-Net n_blocks + 1, else 1 */
    s4_forward **lf;             /* [n_sblocks]: the S4 blocks' plans (NULL for FF) */
    size_t layer_ws, tile_floats, work_size;
    s4_affine_fn affine;
    s4_gelu_row_fn gelu;
};

typedef struct sws {
    float *save[S4_MAX_POOLS + 1]; /* nsave arrays [B x H_i x L_i] per level (1 at the centre) */
    float *cur[S4_MAX_POOLS + 1];  /* the up path's activation per level */
    float *z, *y;                  /* an S4 block's normalised input and output, widest level */
    float *tiles;                  /* threads x tile_floats */
    void *layer;
} sws;

/* Floats of level i's activations [B x H_i x L_i]; SIZE_MAX when that overflows (the
 * carver then fails). */
static size_t level_floats(const struct s4__sfwd *p, int i)
{
    const int H = i == p->s->n_levels ? p->s->H_center : p->s->levels[i].H;
    size_t n;
    if (!s4__mul_size((size_t)p->B, (size_t)H, &n) || !s4__mul_size(n, (size_t)p->L[i], &n))
        return SIZE_MAX;
    return n;
}

static size_t carve(const struct s4__sfwd *p, unsigned char *base, sws *w)
{
    s4_carver c = {.base = base, .ok = true};
    sws dummy;
    if (!w)
        w = &dummy;
    size_t widest = 0;
    for (int i = 0; i <= p->s->n_levels; i++) {
        const size_t n = level_floats(p, i);
        widest = n > widest ? n : widest;
        const size_t ns = i == p->s->n_levels ? 1 : (size_t)p->nsave;
        size_t nsn = SIZE_MAX;
        if (n != SIZE_MAX && !s4__mul_size(ns, n, &nsn))
            nsn = SIZE_MAX;
        w->save[i] = s4__carve(&c, nsn, sizeof(float));
        w->cur[i] = s4__carve(&c, n, sizeof(float));
    }
    w->z = s4__carve(&c, widest, sizeof(float));
    w->y = s4__carve(&c, widest, sizeof(float));
    size_t tiles = SIZE_MAX;
    if (!s4__mul_size((size_t)p->threads, p->tile_floats, &tiles))
        tiles = SIZE_MAX;
    w->tiles = s4__carve(&c, tiles, sizeof(float));
    w->layer = s4__carve(&c, p->layer_ws, 1);
    return c.ok ? c.off : 0;
}

void s4__sfwd_destroy(struct s4__sfwd *p)
{
    if (!p)
        return;
    if (p->lf)
        for (int k = 0; k < p->s->n_sblocks; k++)
            s4_forward_destroy(p->lf[k]);
    s4__free(p->lf);
    s4__free(p);
}

size_t s4__sfwd_workspace_size(const struct s4__sfwd *p) { return p ? p->work_size : 0; }

/* The S4 blocks' plans of one stage of width H at length L. */
static s4_status stage_plans(struct s4__sfwd *p, s4__sblock *blk, int64_t L,
                             const s4_forward_options *o, const char *fn)
{
    for (int j = 0; j < p->s->n_blocks; j++) {
        if (!blk[j].layer)
            continue;
        const s4_status st = s4_forward_create(blk[j].layer, p->B, L, o, &p->lf[blk[j].id]);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: %s (width %d, length %lld): %s", fn, blk[j].name,
                            blk[j].H, (long long)L, msg);
        }
        const size_t ws = s4_forward_workspace_size(p->lf[blk[j].id]);
        p->layer_ws = ws > p->layer_ws ? ws : p->layer_ws;
    }
    return S4_OK;
}

s4_status s4__sfwd_create(const char *fn, s4_model *m, int B, int64_t L,
                          const s4_forward_options *o, struct s4__sfwd **out)
{
    s4__sashimi *s = m->sash;
    int64_t prod = 1;
    for (int i = 0; i < s->n_levels; i++) {
        if (s->levels[i].p > L / prod) /* checked before multiplying: no overflow */
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: L = %lld is not a multiple of the product of the pools (at "
                            "least %lld x %d)",
                            fn, (long long)L, (long long)prod, s->levels[i].p);
        prod *= s->levels[i].p;
    }
    if (L % prod != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: L = %lld is not a multiple of the product of the pools (%lld)", fn,
                        (long long)L, (long long)prod);
    struct s4__sfwd *p = s4__calloc(1, sizeof *p);
    if (!p)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    p->m = m;
    p->s = s;
    p->B = B;
    p->threads = o && o->threads > 0 ? o->threads : omp_get_max_threads();
    p->nsave = m->cfg.unet ? s->n_blocks + 1 : 1;
    p->L[0] = L;
    for (int i = 0; i < s->n_levels; i++)
        p->L[i + 1] = p->L[i] / s->levels[i].p;
    p->affine = s4__affine_kernel(s4__cpu_isa());
    p->gelu = s4__gelu_row(s4__cpu_isa());
    /* A tile: a normalised copy [H x TB], then FF scratch (2 F + H) TB or a pool's
     * gathered input / output [H p x TB]; the decoder's [n_tokens x TB]. */
    size_t tile = 0;
    for (int i = 0; i <= s->n_levels; i++) {
        const size_t H = (size_t)(i == s->n_levels ? s->H_center : s->levels[i].H);
        const size_t F = H * (size_t)(m->cfg.ff > 0 ? m->cfg.ff : 1);
        const size_t hp = i < s->n_levels ? H * (size_t)s->levels[i].p : 0;
        size_t t = H * TB + (2 * F + H) * TB;
        t = t > 2 * hp * TB ? t : 2 * hp * TB;
        tile = t > tile ? t : tile;
    }
    if (m->cfg.architecture == S4_ARCH_SASHIMI_LM) {
        const size_t t = (size_t)m->cfg.n_tokens * TB + (size_t)m->cfg.d_model * TB;
        tile = t > tile ? t : tile;
    }
    p->tile_floats = s4__round_up(tile, 16);
    p->lf = s4__calloc((size_t)s->n_sblocks + 1, sizeof *p->lf);
    s4_status st = p->lf ? S4_OK : s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int i = 0; i <= s->n_levels && st == S4_OK; i++) {
        if (i < s->n_levels && s->levels[i].down)
            st = stage_plans(p, s->levels[i].down, p->L[i], o, fn);
        if (st == S4_OK)
            st = stage_plans(p, s4__stage(s, i, 1), p->L[i], o, fn);
    }
    if (st == S4_OK) {
        const size_t need = carve(p, NULL, NULL);
        if (!need || !s4__add_size(need, S4_ALIGN, &p->work_size))
            st = s4__fail(S4_ERR_OUT_OF_MEMORY,
                          "%s: the workspace for B = %d, L = %lld does not fit in memory", fn,
                          B, (long long)L);
    }
    if (st != S4_OK) {
        s4__sfwd_destroy(p);
        return st;
    }
    *out = p;
    return S4_OK;
}

/* ---- the pieces, each over (sequence, column tile) tasks ------------------------------- */

#define TASKS(p, L) ((size_t)(p)->B * (((size_t)(L) + TB - 1) / TB))

/* One residual block on x [B x H x L] in place. */
static s4_status run_block(const struct s4__sfwd *p, const s4__sblock *blk, float *x,
                           int64_t L64, const sws *w)
{
    const size_t H = (size_t)blk->H, L = (size_t)L64, nt = (L + TB - 1) / TB;
    const int T = p->threads;
    if (blk->layer) {
        memcpy(w->z, x, (size_t)p->B * H * L * sizeof *x);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (size_t q = 0; q < TASKS(p, L); q++) {
            const size_t b = q / nt, t0 = (q % nt) * TB;
            s4__sblock_norm(blk, w->z + b * H * L, L, t0, t0 + TB < L ? t0 + TB : L);
        }
        const s4_status st =
            s4_forward_execute(p->lf[blk->id], w->z, w->y, NULL, w->layer, p->layer_ws);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            return s4__fail(st, "%s: %s", blk->name, msg);
        }
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
        for (size_t r = 0; r < (size_t)p->B * H; r++)
            for (size_t t = 0; t < L; t++)
                x[r * L + t] += w->y[r * L + t];
        return S4_OK;
    }
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t q = 0; q < TASKS(p, L); q++) {
        const size_t b = q / nt, t0 = (q % nt) * TB, n = t0 + TB < L ? TB : L - t0;
        float *z = w->tiles + (size_t)omp_get_thread_num() * p->tile_floats;
        float *xb = x + b * H * L + t0;
        for (size_t o = 0; o < H; o++)
            memcpy(z + o * TB, xb + o * L, n * sizeof *z);
        s4__sblock_norm(blk, z, TB, 0, n);
        s4__ff_apply(blk, p->affine, p->gelu, z, TB, xb, L, (int)n, z + H * TB);
    }
    return S4_OK;
}

/* DownPool of level i: out [B x H e x L/p] from x [B x H x L]; input channel h p + s of
 * coarse step l is x[h, l p + s]. */
static void down_pool(const struct s4__sfwd *p, int i, const float *x, float *out,
                      const sws *w)
{
    const s4__level *v = &p->s->levels[i];
    const size_t H = (size_t)v->H, P = (size_t)v->p, L = (size_t)p->L[i];
    const size_t Lc = (size_t)p->L[i + 1], nt = (Lc + TB - 1) / TB, M = (size_t)v->dpool.M;
    const int T = p->threads;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t q = 0; q < TASKS(p, Lc); q++) {
        const size_t b = q / nt, l0 = (q % nt) * TB, n = l0 + TB < Lc ? TB : Lc - l0;
        float *g = w->tiles + (size_t)omp_get_thread_num() * p->tile_floats;
        const float *xb = x + b * H * L;
        for (size_t h = 0; h < H; h++)
            for (size_t s = 0; s < P; s++)
                for (size_t l = 0; l < n; l++)
                    g[(h * P + s) * TB + l] = xb[h * L + (l0 + l) * P + s];
        p->affine((int)(H * P), v->dpool.Wp, 0, (int)M, g, TB, (int)n, out + b * M * Lc + l0,
                  Lc);
    }
}

/* UpPool of level i: out [B x H x L] = the projection of x [B x H e x L/p], shifted one
 * coarse step to the future (coarse step 0 gets zeros), channel h p + s to sample l p + s. */
static void up_pool(const struct s4__sfwd *p, int i, const float *x, float *out,
                    const sws *w)
{
    const s4__level *v = &p->s->levels[i];
    const size_t H = (size_t)v->H, P = (size_t)v->p, L = (size_t)p->L[i];
    const size_t Lc = (size_t)p->L[i + 1], nt = (Lc + TB - 1) / TB, K = (size_t)v->upool.K;
    const int T = p->threads;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t q = 0; q < TASKS(p, Lc); q++) {
        const size_t b = q / nt, l0 = (q % nt) * TB, n = l0 + TB < Lc ? TB : Lc - l0;
        float *g = w->tiles + (size_t)omp_get_thread_num() * p->tile_floats;
        float *ob = out + b * H * L;
        p->affine((int)K, v->upool.Wp, 0, (int)(H * P), x + b * K * Lc + l0, Lc, (int)n, g,
                  TB);
        for (size_t h = 0; h < H; h++)
            for (size_t s = 0; s < P; s++) {
                if (l0 == 0)
                    ob[h * L + s] = 0.0f;
                for (size_t l = 0; l < n && l0 + l + 1 < Lc; l++)
                    ob[h * L + (l0 + l + 1) * P + s] = g[(h * P + s) * TB + l];
            }
    }
}

static void add_into(const struct s4__sfwd *p, float *x, const float *y, size_t n)
{
    const int T = p->threads;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t k = 0; k < n; k++)
        x[k] += y[k];
}

s4_status s4__sfwd_execute(const char *fn, const struct s4__sfwd *p, const float *x,
                           const int32_t *tokens, float *out, unsigned char *base)
{
    const s4_model_config *c = &p->m->cfg;
    const s4__sashimi *s = p->s;
    const size_t B = (size_t)p->B, L = (size_t)p->L[0], d = (size_t)c->d_model;
    const int T = p->threads, P = s->n_levels, nb = s->n_blocks;
    sws w;
    carve(p, base, &w);
    /* The input, feature-major: x0[b][h][t]. */
    float *x0 = w.save[0];
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t bt = 0; bt < B * L; bt++) {
        const size_t b = bt / L, t = bt % L;
        const float *src = tokens ? s->embed + (size_t)tokens[bt] * d : x + bt * d;
        for (size_t h = 0; h < d; h++)
            x0[(b * d + h) * L + t] = src[h];
    }
    s4_status st = S4_OK;
    /* Down: the level input, the U-Net blocks (each output kept), the DownPool. */
    for (int i = 0; i < P && st == S4_OK; i++) {
        const size_t n = level_floats(p, i);
        for (int j = 0; j < nb && p->nsave > 1 && st == S4_OK; j++) {
            memcpy(w.save[i] + (size_t)(j + 1) * n, w.save[i] + (size_t)j * n, n * sizeof(float));
            st = run_block(p, &s->levels[i].down[j], w.save[i] + (size_t)(j + 1) * n, p->L[i],
                           &w);
        }
        down_pool(p, i, w.save[i] + (size_t)(p->nsave - 1) * n, w.save[i + 1], &w);
    }
    /* Centre: blocks, plus its input. */
    const size_t nc = level_floats(p, P);
    memcpy(w.cur[P], w.save[P], nc * sizeof(float));
    for (int j = 0; j < nb && st == S4_OK; j++)
        st = run_block(p, &s->center[j], w.cur[P], p->L[P], &w);
    if (st == S4_OK)
        add_into(p, w.cur[P], w.save[P], nc);
    /* Up: the UpPool, then the skips of docs/models.md. */
    for (int i = P - 1; i >= 0 && st == S4_OK; i--) {
        const size_t n = level_floats(p, i);
        up_pool(p, i, w.cur[i + 1], w.cur[i], &w);
        if (c->unet) {
            add_into(p, w.cur[i], w.save[i] + (size_t)nb * n, n);
            for (int j = 0; j < nb && st == S4_OK; j++) {
                st = run_block(p, &s->levels[i].up[j], w.cur[i], p->L[i], &w);
                add_into(p, w.cur[i], w.save[i] + (size_t)(nb - 1 - j) * n, n);
            }
        } else {
            add_into(p, w.save[i], w.cur[i], n); /* s = UpPool + level input */
            memcpy(w.cur[i], w.save[i], n * sizeof(float));
            for (int j = 0; j < nb && st == S4_OK; j++)
                st = run_block(p, &s->levels[i].up[j], w.cur[i], p->L[i], &w);
            add_into(p, w.cur[i], w.save[i], n);
        }
    }
    if (st != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        return s4__fail(st, "%s: %s", fn, msg);
    }
    /* Final LayerNorm, then the output (B, L, d) or the decoder's logits (B, L, V). */
    const size_t nt = (L + TB - 1) / TB, V = (size_t)c->n_tokens;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (size_t q = 0; q < B * nt; q++) {
        const size_t b = q / nt, t0 = (q % nt) * TB, n = t0 + TB < L ? TB : L - t0;
        float *xb = w.cur[0] + b * d * L;
        s4__layernorm_cols(s->norm_w, s->norm_b, d, xb, L, t0, t0 + n);
        if (!tokens) {
            for (size_t t = 0; t < n; t++)
                for (size_t h = 0; h < d; h++)
                    out[(b * L + t0 + t) * d + h] = xb[h * L + t0 + t];
            continue;
        }
        float *g = w.tiles + (size_t)omp_get_thread_num() * p->tile_floats;
        p->affine((int)d, s->decoder.Wp, 0, (int)V, xb + t0, L, (int)n, g, TB);
        for (size_t t = 0; t < n; t++)
            for (size_t v = 0; v < V; v++)
                out[(b * L + t0 + t) * V + v] = g[v * TB + t];
    }
    /* A value past float's range inside the network (a residual sum, a pool, an FF block)
     * ends as Inf or NaN here: refuse it rather than return it. */
    const size_t nout = B * L * (tokens ? V : d), bad = s4__first_nonfinite_f(out, nout);
    if (bad < nout)
        return s4__fail(S4_ERR_NUMERICAL,
                        "%s: output %zu (sequence %zu, step %zu) is not finite: an intermediate "
                        "value left the float range",
                        fn, bad, bad / (nout / B), bad % (nout / B) / (tokens ? V : d));
    return S4_OK;
}
