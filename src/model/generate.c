/* Autoregressive generation with a token model (docs/models.md, "Generation"): B streams
 * in the model's recurrent mode; each step samples every stream's next token from its
 * logits and feeds it back. Also the 8-bit mu-law of the reference framework's audio
 * datasets, which turns the tokens into sound and a WAV prime into tokens.
 *
 * Reproducibility: stream b samples with its own generator (seed and b), in the stream's
 * order of steps, from logits that are bitwise independent of the thread count (the step
 * plan's contract); so the tokens depend on nothing but the model, prime, options and
 * seed, however the samples are split into calls.
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/model.h"

#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct s4_generator {
    const s4_model *m;
    int B, V;
    s4_generate_options o;
    s4_model_step *plan;
    void *state;
    float *logits;   /* [B x V]: what the next sample draws from, when have_logits */
    int32_t *tokens; /* [B]: the tokens being fed */
    double *p;       /* [V] sampling scratch */
    int *top;        /* [top_k] */
    s4_rng *rng;     /* [B] */
    int64_t count;
    bool have_logits;
};

void s4_generate_options_default(s4_generate_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->temperature = 1.0;
}

void s4_generator_destroy(s4_generator *g)
{
    if (!g)
        return;
    s4_model_step_destroy(g->plan);
    s4__free(g->state);
    s4__free(g->logits);
    s4__free(g->tokens);
    s4__free(g->p);
    s4__free(g->top);
    s4__free(g->rng);
    s4__free(g);
}

/* Stream b's sampler at the start: splitmix-seeded from seed + b times the golden ratio,
 * so neighbouring streams are unrelated. */
static void seed_samplers(s4_generator *g)
{
    for (int b = 0; b < g->B; b++)
        s4__rng_seed(&g->rng[b], g->o.seed + (uint64_t)b * UINT64_C(0x9E3779B97F4A7C15));
}

s4_status s4_generator_reset(s4_generator *g)
{
    if (!g)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_generator_reset: gen is NULL");
    const s4_status st = s4_model_step_state_reset(g->plan, g->state);
    seed_samplers(g);
    g->count = 0;
    g->have_logits = false;
    return st;
}

s4_status s4_generator_create(const s4_model *model, int B, const s4_generate_options *options,
                              s4_generator **out)
{
    static const char fn[] = "s4_generator_create";
    if (!model || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !model ? "model" : "out");
    if (model->cfg.architecture != S4_ARCH_SASHIMI_LM)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the model is not a token model (SashimiLM): nothing to sample", fn);
    if (B < 1 || B > (1 << 20))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be in [1, 2^20]", fn, B);
    s4_generate_options o;
    s4_generate_options_default(&o);
    if (options)
        o = *options;
    if (!(o.temperature >= 0.0) || !isfinite(o.temperature) || o.top_k < 0 || o.threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: temperature = %g must be finite and >= 0, top_k = %d and threads "
                        "= %d >= 0",
                        fn, o.temperature, o.top_k, o.threads);
    s4_generator *g = s4__calloc(1, sizeof *g);
    if (!g)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    g->m = model;
    g->B = B;
    g->V = model->cfg.n_tokens;
    g->o = o;
    if (g->o.top_k > g->V)
        g->o.top_k = g->V;
    s4_step_options so;
    s4_step_options_default(&so);
    so.threads = o.threads;
    so.precision = o.precision;
    s4_status st = s4_model_step_create(model, S4_MODEL_STEP_NATURAL, B, &so, &g->plan);
    if (st != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        s4_generator_destroy(g);
        return s4__fail(st, "%s: %s", fn, msg);
    }
    g->state = s4__malloc(s4_model_step_state_size(g->plan));
    g->logits = s4__alloc((size_t)B * (size_t)g->V, sizeof *g->logits);
    g->tokens = s4__alloc((size_t)B, sizeof *g->tokens);
    g->p = s4__alloc((size_t)g->V, sizeof *g->p);
    g->top = s4__alloc(g->o.top_k ? (size_t)g->o.top_k : 1, sizeof *g->top);
    g->rng = s4__alloc((size_t)B, sizeof *g->rng);
    if (!g->state || !g->logits || !g->tokens || !g->p || !g->top || !g->rng) {
        s4_generator_destroy(g);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if ((st = s4_generator_reset(g)) != S4_OK) {
        s4_generator_destroy(g);
        return st;
    }
    *out = g;
    return S4_OK;
}

/* Feeds g->tokens to every stream: the logits of the next sample. */
static s4_status feed(s4_generator *g, const char *fn)
{
    const s4_status st =
        s4_model_step_execute_tokens(g->plan, g->state, g->tokens, g->logits, NULL, 0);
    if (st != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        if (s4_generator_reset(g) != S4_OK) /* cannot fail: the plan and state are valid */
            return s4__fail(st, "%s: %s", fn, msg);
        return s4__fail(st, "%s: %s (the generator was reset)", fn, msg);
    }
    g->have_logits = true;
    return S4_OK;
}

s4_status s4_generator_prime(s4_generator *g, const int32_t *prime, int64_t P)
{
    static const char fn[] = "s4_generator_prime";
    if (!g || !prime)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !g ? "gen" : "prime");
    if (P < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: P = %lld must be >= 1", fn, (long long)P);
    const size_t n = (size_t)g->B * (size_t)P;
    for (size_t i = 0; i < n; i++)
        if (prime[i] < 0 || prime[i] >= g->V)
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: prime[%zu] = %d is outside [0, %d)",
                            fn, i, (int)prime[i], g->V);
    s4_status st = s4_generator_reset(g);
    for (int64_t t = 0; t < P && st == S4_OK; t++) {
        for (int b = 0; b < g->B; b++)
            g->tokens[b] = prime[(size_t)b * (size_t)P + (size_t)t];
        st = feed(g, fn);
    }
    return st;
}

/* Stream b's next token from its logits row l [V]. */
static int32_t sample(s4_generator *g, int b, const float *l)
{
    const int V = g->V, k = g->o.top_k;
    if (g->o.temperature == 0.0) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (l[v] > l[best])
                best = v;
        return best;
    }
    /* Candidates: every token, or the k largest logits (ties: the lower index first). */
    int n = V;
    const int *idx = NULL;
    if (k > 0 && k < V) {
        int m = 0; /* kept so far, in decreasing order */
        for (int v = 0; v < V; v++) {
            if (m == k && !(l[v] > l[g->top[k - 1]]))
                continue; /* not above the smallest kept: on a tie the lower index stays */
            int pos = m < k ? m : k - 1;
            for (; pos > 0 && l[g->top[pos - 1]] < l[v]; pos--)
                g->top[pos] = g->top[pos - 1];
            g->top[pos] = v;
            if (m < k)
                m++;
        }
        n = k;
        idx = g->top;
    }
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, l[idx ? idx[i] : i]);
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        g->p[i] = exp(((double)l[idx ? idx[i] : i] - mx) / g->o.temperature);
        total += g->p[i];
    }
    /* Inverse CDF in candidate order; u < total, so some candidate is always picked. */
    const double u = s4__rng_uniform(&g->rng[b]) * total;
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += g->p[i];
        if (u < acc)
            return idx ? idx[i] : i;
    }
    return idx ? idx[n - 1] : n - 1;
}

s4_status s4_generator_next(s4_generator *g, int64_t n, int32_t *tokens)
{
    static const char fn[] = "s4_generator_next";
    if (!g || (!tokens && n > 0))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !g ? "gen" : "tokens");
    if (n < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: n = %lld must be >= 0", fn, (long long)n);
    s4_status st = S4_OK;
    if (!g->have_logits) { /* unconditional: start from silence, as the framework does */
        for (int b = 0; b < g->B; b++)
            g->tokens[b] = g->V / 2;
        st = feed(g, fn);
    }
    for (int64_t i = 0; i < n && st == S4_OK; i++) {
        for (int b = 0; b < g->B; b++) {
            const float *l = g->logits + (size_t)b * (size_t)g->V;
            for (int v = 0; v < g->V; v++)
                if (!isfinite(l[v])) {
                    const int64_t at = g->count;
                    st = s4_generator_reset(g);
                    return s4__fail(S4_ERR_NUMERICAL,
                                    "%s: stream %d's logit %d is not finite at sample %lld (the "
                                    "generator was reset)",
                                    fn, b, v, (long long)at);
                }
            g->tokens[b] = sample(g, b, l);
            tokens[(size_t)b * (size_t)n + (size_t)i] = g->tokens[b];
        }
        g->count++;
        st = feed(g, fn);
    }
    return st;
}

int64_t s4_generator_count(const s4_generator *g) { return g ? g->count : 0; }

/* ---- mu-law ---------------------------------------------------------------------------- */

#define MU 255.0

s4_status s4_mulaw_encode(const double *a, size_t n, int32_t *tokens)
{
    if ((!a || !tokens) && n > 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_mulaw_encode: %s is NULL",
                        !a ? "a" : "tokens");
    const size_t bad = s4__first_nonfinite_d(a, n);
    if (bad < n)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_mulaw_encode: a[%zu] = %g is not finite",
                        bad, a[bad]);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        lo = fmin(lo, a[i]), hi = fmax(hi, a[i]);
    for (size_t i = 0; i < n; i++) {
        /* The framework's steps: min-max to [0, 1] (1e-6 guards a constant clip), to
         * [-1, 1], compress, quantize with its epsilon 0.01. */
        /* Halves, so that a range wider than DBL_MAX stays finite; the same value
         * otherwise (halving is exact). */
        const double s = 2.0 * ((0.5 * a[i] - 0.5 * lo) / (0.5 * hi - 0.5 * lo + 0.5e-6)) - 1.0;
        const double e = (s > 0 ? 1.0 : s < 0 ? -1.0 : 0.0) *
                         (log1p(MU * fabs(s + 1e-8)) / log1p(MU));
        const double q = floor((e + 1.0) / 2.0 * (256.0 - 0.01) + 0.005);
        tokens[i] = (int32_t)fmin(fmax(q, 0.0), 255.0);
    }
    return S4_OK;
}

s4_status s4_mulaw_decode(const int32_t *tokens, size_t n, double *a)
{
    if ((!a || !tokens) && n > 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_mulaw_decode: %s is NULL",
                        !tokens ? "tokens" : "a");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] > 255)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4_mulaw_decode: tokens[%zu] = %d is outside [0, 255]", i,
                            (int)tokens[i]);
    for (size_t i = 0; i < n; i++) {
        const double x = tokens[i] / 128.0 - 1.0;
        a[i] = (x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0) * (pow(1.0 + MU, fabs(x)) - 1.0) / MU;
    }
    return S4_OK;
}
