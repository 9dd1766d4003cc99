#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* The S4 layer in convolution mode: every golden S4 case replayed stage by stage through
 * s4_forward (output y and the pre-activation `pre` against the float64 reference), the
 * (B, L, H) layout, each activation against its formula, the output linear against a double
 * computation, l_max and rate rules against an explicit convolution, plans outliving their
 * layer, caller workspaces, concurrent execution, and argument checking.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include "layer_case.h"

#include "layer/layer.h" /* the head (s4__head_*) and the layer's stored linear */

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The bound on max|x - x_ref| / max|x_ref| for y and pre against the float64
 * golden outputs. Never loosen. */
#define TOL_GOLDEN 1e-4
/* A float32 FFT convolution against the same convolution in double (same kernel). */
#define TOL_CONV 1e-5
/* The float head against the same head in double. */
#define TOL_HEAD 1e-5

static const float FSENTINEL = -12345.5f;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static int fall_equal(const float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}


/* ---- golden cases: config.json and the state dict --------------------------------- */










/* Files of one stage not in s4t_stage: u, y_f64, ssm_f64; and the case's config.json. */
typedef struct stage_files {
    char u[S4T_PATH_MAX], y[S4T_PATH_MAX], pre[S4T_PATH_MAX];
} stage_files;

typedef struct layer_case {
    const s4t_case *c;
    char config[S4T_PATH_MAX];
    int B;
    stage_files st[S4T_MAX_STAGES];
} layer_case;

static layer_case *layer_cases_load(const s4t_case *cases, int count)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "cases.json");
    char *text = s4t_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    layer_case *lc = calloc((size_t)(count ? count : 1), sizeof *lc);
    assert_non_null(lc);
    const cJSON *list = s4t_jget(root, "cases", path);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        assert_true(i < count);
        lc[i].c = &cases[i];
        assert_string_equal(s4t_jstr(item, "name", path), cases[i].name);
        snprintf(lc[i].config, sizeof lc[i].config, "%s",
                 s4t_jstr(s4t_jget(item, "files", path), "config", path));
        lc[i].B = (int)s4t_jint(s4t_jget(item, "config", path), "B", 0, path);
        int s = 0;
        const cJSON *sj;
        cJSON_ArrayForEach(sj, s4t_jget(item, "stages", path)) {
            const cJSON *f = s4t_jget(sj, "files", path);
            snprintf(lc[i].st[s].u, S4T_PATH_MAX, "%s", s4t_jstr(f, "u", path));
            snprintf(lc[i].st[s].y, S4T_PATH_MAX, "%s", s4t_jstr(f, "y_f64", path));
            snprintf(lc[i].st[s].pre, S4T_PATH_MAX, "%s", s4t_jstr(f, "ssm_f64", path));
            s++;
        }
        assert_int_equal(s, cases[i].n_stages);
        i++;
    }
    assert_int_equal(i, count);
    cJSON_Delete(root);
    return lc;
}

static s4_forward *forward_or_fail(s4_layer *layer, int B, int64_t L,
                                   const s4_forward_options *opt, const char *what)
{
    s4_forward *plan = NULL;
    s4_status st = s4_forward_create(layer, B, L, opt, &plan);
    if (st != S4_OK || !plan)
        fail_msg("%s: s4_forward_create(B = %d, L = %lld): %s: %s", what, B, (long long)L,
                 s4_status_str(st), s4_last_error());
    return plan;
}

static void execute_or_fail(const s4_forward *plan, const float *u, float *y, float *pre,
                            void *work, size_t ws, const char *what)
{
    s4_status st = s4_forward_execute(plan, u, y, pre, work, ws);
    if (st != S4_OK)
        fail_msg("%s: s4_forward_execute: %s: %s", what, s4_status_str(st), s4_last_error());
}


/* Every stage of a case on one layer (C-tilde set up on the first, doubled on later
 * ones), against y_f64 and ssm_f64; a twin layer with transposed = 0 must give exactly the
 * transposed arrays. */
static void test_golden(void **state)
{
    const layer_case *lc = *state;
    const s4t_case *c = lc->c;
    s4_layer_config cfg;
    s4t_layer_config_from_case(lc->config, &cfg);
    assert_int_equal(cfg.ssm.H, c->H);
    assert_int_equal(cfg.ssm.N, c->N);
    assert_int_equal(cfg.transposed, 1);
    s4_layer *layer = s4t_layer_from_params(&cfg, c->params_init);
    s4_layer_config cfg_t = cfg;
    cfg_t.transposed = 0;
    s4_layer *layer_t = s4t_layer_from_params(&cfg_t, c->params_init);

    const int B = lc->B, H = c->H, Fo = s4_layer_output_features(layer);
    const int Fp = s4t_case_cprime(c) * H;
    assert_int_equal(Fo, cfg.final_act == S4_FINAL_NONE ? Fp : H);
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), 0);
    for (int s = 0; s < c->n_stages; s++) {
        const int64_t L = c->stages[s].L;
        double *u = s4t_npy3(lc->st[s].u, B, H, L);
        double *y_ref = s4t_npy3(lc->st[s].y, B, Fo, L);
        double *pre_ref = s4t_npy3(lc->st[s].pre, B, Fp, L);
        const size_t nu = (size_t)B * H * (size_t)L, ny = (size_t)B * Fo * (size_t)L;
        const size_t np = (size_t)B * Fp * (size_t)L;
        float *uf = s4t_falloc(nu, 0.0f), *y = s4t_falloc(ny, FSENTINEL), *pre = s4t_falloc(np, FSENTINEL);
        s4t_d2f(u, uf, nu);

        double t0 = now();
        s4_forward *plan = forward_or_fail(layer, B, L, NULL, c->name);
        double t1 = now();
        execute_or_fail(plan, uf, y, pre, NULL, 0, c->name);
        double t2 = now();
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), c->stages[s].l_kernel_after);

        double *yd = s4t_f2d_alloc(y, ny), *pd = s4t_f2d_alloc(pre, np);
        const double ey = s4t_max_rel_err(yd, y_ref, ny), ep = s4t_max_rel_err(pd, pre_ref, np);
        print_message("%-28s stage %d B %d L %5lld Lk %5lld: y %.2e  pre %.2e  "
                      "(create %.3f s, execute %.4f s)\n",
                      c->name, s, B, (long long)L, (long long)c->stages[s].l_kernel_after, ey,
                      ep, t1 - t0, t2 - t1);
        assert_rel_err(ey, TOL_GOLDEN, "y vs y_f64");
        assert_rel_err(ep, TOL_GOLDEN, "pre vs ssm_f64");

        /* The (B, L, H) layout: the same numbers, transposed, bit for bit. */
        s4_forward *plan_t = forward_or_fail(layer_t, B, L, NULL, "transposed = 0");
        float *ut = s4t_transpose_batch(uf, (size_t)B, (size_t)H, (size_t)L);
        float *yt = s4t_falloc(ny, FSENTINEL), *pt = s4t_falloc(np, FSENTINEL);
        execute_or_fail(plan_t, ut, yt, pt, NULL, 0, "transposed = 0");
        float *yt2 = s4t_transpose_batch(yt, (size_t)B, (size_t)L, (size_t)Fo);
        float *pt2 = s4t_transpose_batch(pt, (size_t)B, (size_t)L, (size_t)Fp);
        if (memcmp(yt2, y, ny * sizeof *y) != 0 || memcmp(pt2, pre, np * sizeof *pre) != 0)
            fail_msg("%s stage %d: transposed = 0 differs from the transposed result", c->name,
                     s);
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer_t)), c->stages[s].l_kernel_after);

        /* Without `pre` the output is the same. */
        float *y2 = s4t_falloc(ny, FSENTINEL);
        execute_or_fail(plan, uf, y2, NULL, NULL, 0, "pre = NULL");
        assert_memory_equal(y, y2, ny * sizeof *y);

        free(u), free(y_ref), free(pre_ref), free(uf), free(y), free(pre), free(yd), free(pd);
        free(ut), free(yt), free(pt), free(yt2), free(pt2), free(y2);
        s4_forward_destroy(plan);
        s4_forward_destroy(plan_t);
    }
    s4_layer_destroy(layer);
    s4_layer_destroy(layer_t);
}

/* ---- the head: activations, output linear, final GLU --------------------------------- */

static double sigmoid_d(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

static double activation_d(s4_activation a, double x)
{
    switch (a) {
    /* The formulas 0.5 x (1 + erf(x / sqrt2)) and 0.5 x (1 + tanh(z)), written with
     * 1 + erf(-t) = erfc(t) and 1 + tanh(z) = 2 sigmoid(2z) so that double evaluation does
     * not cancel to 0 in the negative tail (where the true values are ~1e-37, not 0). */
    case S4_ACT_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    case S4_ACT_GELU_TANH:
        return x * sigmoid_d(2.0 * sqrt(2.0 / S4_PI) * (x + 0.044715 * x * x * x));
    case S4_ACT_RELU: return x > 0 ? x : 0.0;
    case S4_ACT_SILU: return x * sigmoid_d(x);
    case S4_ACT_TANH: return tanh(x);
    case S4_ACT_SIGMOID: return sigmoid_d(x);
    case S4_ACT_IDENTITY:
    case S4_ACT_GLU: return x;
    }
    return NAN;
}

/* Head with the given shape and a seeded linear (float W, b). */
static s4_head make_head(s4_activation act, s4_final_act fin, int H, int Cp, unsigned seed)
{
    s4_head h = {.activation = act, .final_act = fin, .Fp = Cp * H};
    h.Fa = act == S4_ACT_GLU ? h.Fp / 2 : h.Fp;
    h.Flin = fin == S4_FINAL_GLU ? 2 * H : fin == S4_FINAL_IDENTITY ? H : 0;
    h.Fo = fin == S4_FINAL_NONE ? h.Fa : H;
    if (h.Flin > 0) {
        /* Library-owned arrays: s4__head_free releases them with s4__free. */
        h.W = s4__alloc((size_t)h.Flin * (size_t)h.Fa, sizeof *h.W);
        h.b = s4__alloc((size_t)h.Flin, sizeof *h.b);
        assert_true(h.W && h.b);
        srand(seed);
        for (size_t i = 0; i < (size_t)h.Flin * (size_t)h.Fa; i++)
            h.W[i] = (float)(2.0 * rand() / RAND_MAX - 1.0) / sqrtf((float)h.Fa);
        for (int i = 0; i < h.Flin; i++)
            h.b[i] = (float)(2.0 * rand() / RAND_MAX - 1.0);
    }
    return h;
}

/* The head in double: pre [Fp x n] -> out [Fo x n]. */
static void head_d(const s4_head *h, const float *pre, size_t n, double *out)
{
    double *act = malloc((size_t)h->Fa * n * sizeof *act);
    assert_non_null(act);
    for (size_t f = 0; f < (size_t)h->Fa; f++)
        for (size_t j = 0; j < n; j++)
            act[f * n + j] = h->activation == S4_ACT_GLU
                                 ? (double)pre[f * n + j] *
                                       sigmoid_d((double)pre[(f + (size_t)h->Fa) * n + j])
                                 : activation_d(h->activation, (double)pre[f * n + j]);
    if (h->Flin == 0) {
        memcpy(out, act, (size_t)h->Fa * n * sizeof *out);
        free(act);
        return;
    }
    double *lin = malloc((size_t)h->Flin * n * sizeof *lin);
    assert_non_null(lin);
    for (size_t o = 0; o < (size_t)h->Flin; o++)
        for (size_t j = 0; j < n; j++) {
            double acc = h->b[o];
            for (size_t f = 0; f < (size_t)h->Fa; f++)
                acc += (double)h->W[o * (size_t)h->Fa + f] * act[f * n + j];
            lin[o * n + j] = acc;
        }
    for (size_t o = 0; o < (size_t)h->Fo; o++)
        for (size_t j = 0; j < n; j++)
            out[o * n + j] = h->final_act == S4_FINAL_GLU
                                 ? lin[o * n + j] * sigmoid_d(lin[(o + (size_t)h->Fo) * n + j])
                                 : lin[o * n + j];
    free(act);
    free(lin);
}

/* Each activation on a grid of 20001 points in [-30, 30] plus the float extremes, through
 * s4__head_apply without an output linear, against its formula in double. */
static void test_activations(void **state)
{
    (void)state;
    static const struct { s4_activation a; const char *name; } acts[] = {
        {S4_ACT_GELU, "gelu"}, {S4_ACT_GELU_TANH, "gelu_tanh"}, {S4_ACT_RELU, "relu"},
        {S4_ACT_SILU, "silu"}, {S4_ACT_TANH, "tanh"},           {S4_ACT_SIGMOID, "sigmoid"},
        {S4_ACT_IDENTITY, "identity"},
    };
    enum { NG = 20001, NX = NG + 6 };
    float *x = s4t_falloc(NX, 0.0f);
    for (int i = 0; i < NG; i++)
        x[i] = (float)(-30.0 + 60.0 * i / (NG - 1));
    const float extra[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f};
    memcpy(x + NG, extra, sizeof extra);
    double *want = malloc(NX * sizeof *want), *got = malloc(NX * sizeof *got);
    float *out = s4t_falloc(NX, FSENTINEL);
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
        s4_head h = make_head(acts[k].a, S4_FINAL_NONE, 1, 1, 0);
        assert_int_equal(s4__head_scratch(&h, NX), 0);
        s4__head_apply(&h, x, NX, out, NULL);
        head_d(&h, x, NX, want);
        s4t_f2d(out, got, NX);
        /* A few float ulps of the result plus a few ulps of the argument times the
         * condition |x f'(x)| (float rounds x / sqrt2 or x^3 before erfc or exp: in the
         * GELU tail |x f'| / |f| ~ x^2, which no float evaluation avoids), and an absolute
         * 1e-37 where the result underflows. */
        double worst = 0.0;
        for (int i = 0; i < NX; i++) {
            const double err = fabs(got[i] - want[i]), xd = x[i];
            const double dx = fabs(xd) * 1e-6;
            const double cond =
                dx > 0.0 && isfinite(xd)
                    ? fabs(xd) * fabs(activation_d(acts[k].a, xd + dx) -
                                      activation_d(acts[k].a, xd - dx)) / (2.0 * dx)
                    : 0.0;
            const double bound = 4.0 * FLT_EPSILON * (fabs(want[i]) + cond) + 1e-37;
            if (!(err <= bound))
                fail_msg("%s(%.9g) = %.9g, formula %.17g (error %.3g > %.3g)", acts[k].name,
                         (double)x[i], got[i], want[i], err, bound);
            if (fabs(want[i]) >= FLT_MIN && fabs(xd) <= 8.0)
                worst = fmax(worst, err / fabs(want[i]));
        }
        print_message("%-10s worst relative error %.2e for |x| <= 8 (%d points in all)\n",
                      acts[k].name, worst, NX);
    }
    /* GLU pairs feature f with f + Fp/2 over the flattened axis: Fp = 6 features. */
    s4_head g = make_head(S4_ACT_GLU, S4_FINAL_NONE, 3, 2, 0);
    assert_int_equal(g.Fa, 3);
    assert_int_equal(g.Fo, 3);
    enum { NC = 1001 };
    float *pre = s4t_falloc(6 * NC, 0.0f), *o3 = s4t_falloc(3 * NC, FSENTINEL);
    for (int i = 0; i < 6 * NC; i++)
        pre[i] = (float)(40.0 * sin(0.37 * i + 0.1) * cos(0.011 * i));
    s4__head_apply(&g, pre, NC, o3, NULL);
    double *w3 = malloc(3 * NC * sizeof *w3);
    for (int f = 0; f < 3; f++)
        for (int j = 0; j < NC; j++)
            w3[f * NC + j] = (double)pre[f * NC + j] * sigmoid_d((double)pre[(f + 3) * NC + j]);
    double *g3 = s4t_f2d_alloc(o3, 3 * NC);
    assert_allclose(g3, w3, 3 * NC, 4.0 * FLT_EPSILON, 1e-37, "GLU activation");
    free(x), free(want), free(got), free(out), free(pre), free(o3), free(w3), free(g3);
}

/* Output linear and final GLU (and identity) against double, for column counts around the
 * head's block size, with the scratch the head asks for and nothing more. */
static void test_head_linear(void **state)
{
    (void)state;
    static const s4_activation acts[] = {S4_ACT_GELU, S4_ACT_GLU, S4_ACT_TANH};
    static const s4_final_act fins[] = {S4_FINAL_GLU, S4_FINAL_IDENTITY, S4_FINAL_NONE};
    static const int64_t ncols[] = {1, 7, 255, 256, 257, 700};
    int combo = 0;
    for (size_t a = 0; a < 3; a++)
        for (size_t f = 0; f < 3; f++)
            for (size_t k = 0; k < sizeof ncols / sizeof ncols[0]; k++, combo++) {
                const int H = 1 + combo % 5, Cp = 2 * (1 + combo % 2);
                const int64_t n = ncols[k];
                s4_head h = make_head(acts[a], fins[f], H, Cp, (unsigned)combo);
                s4_head copy;
                assert_int_equal(s4__head_copy(&h, &copy), S4_OK);
                s4__head_free(&h);
                assert_null(h.W);
                const size_t np = (size_t)copy.Fp * (size_t)n, no = (size_t)copy.Fo * (size_t)n;
                float *pre = s4t_falloc(np, 0.0f), *out = s4t_falloc(no + 5, FSENTINEL);
                for (size_t i = 0; i < np; i++)
                    pre[i] = (float)(3.0 * sin(0.7 * (double)i + combo));
                const size_t ns = s4__head_scratch(&copy, n);
                float *scratch = s4t_falloc(ns, FSENTINEL);
                float *pre0 = s4t_falloc(np, 0.0f);
                memcpy(pre0, pre, np * sizeof *pre);
                s4__head_apply(&copy, pre, n, out, ns ? scratch : NULL);
                assert_memory_equal(pre, pre0, np * sizeof *pre); /* pre not modified */
                assert_true(fall_equal(out + no, 5, FSENTINEL));
                double *want = malloc(no * sizeof *want);
                head_d(&copy, pre, (size_t)n, want);
                double *got = s4t_f2d_alloc(out, no);
                char what[96];
                snprintf(what, sizeof what, "head act %d final %d H %d C' %d ncols %lld",
                         (int)acts[a], (int)fins[f], H, Cp, (long long)n);
                assert_rel_err(s4t_max_rel_err(got, want, no), TOL_HEAD, what);
                free(pre), free(out), free(scratch), free(pre0), free(want), free(got);
                s4__head_free(&copy);
            }
}

/* ---- layer construction ------------------------------------------------------------ */

static s4_layer *small_layer(s4_activation act, s4_final_act fin, int channels, int bidir,
                             int swap, int transposed, int64_t l_max, uint64_t seed)
{
    s4_layer_config cfg;
    s4_layer_config_default(&cfg);
    cfg.ssm.H = 3;
    cfg.ssm.N = 16;
    cfg.ssm.seed = seed;
    cfg.activation = act;
    cfg.final_act = fin;
    cfg.channels = channels;
    cfg.bidirectional = bidir;
    cfg.swap_channels = swap;
    cfg.transposed = transposed;
    cfg.l_max = l_max;
    s4_layer *layer = NULL;
    s4_status st = s4_layer_create(&cfg, &layer);
    if (st != S4_OK)
        fail_msg("s4_layer_create: %s: %s", s4_status_str(st), s4_last_error());
    return layer;
}

static void test_create(void **state)
{
    (void)state;
    s4_layer_config d;
    memset(&d, 0x5a, sizeof d);
    s4_layer_config_default(&d);
    s4_ssm_config sd;
    s4_ssm_config_default(&sd);
    assert_int_equal(d.ssm.H, sd.H);
    assert_int_equal(d.ssm.N, sd.N);
    assert_int_equal(d.ssm.rank, sd.rank);
    assert_int_equal(d.ssm.n_ssm, sd.n_ssm);
    assert_int_equal(d.ssm.init, sd.init);
    assert_true(d.ssm.dt_min == sd.dt_min && d.ssm.dt_max == sd.dt_max);
    assert_int_equal(d.ssm.dt_transform, sd.dt_transform);
    assert_int_equal(d.ssm.real_transform, sd.real_transform);
    assert_int_equal(d.ssm.imag_transform, sd.imag_transform);
    assert_int_equal(d.ssm.seed, sd.seed);
    assert_int_equal(d.channels, 1);
    assert_int_equal(d.bidirectional, 0);
    assert_int_equal(d.activation, S4_ACT_GELU);
    assert_int_equal(d.final_act, S4_FINAL_GLU);
    assert_int_equal(d.swap_channels, 0);
    assert_int_equal(d.transposed, 1);
    assert_int_equal(d.l_max, 0);
    s4_layer_config_default(NULL); /* no-op */

    /* Derived sizes and config round trip. */
    s4_layer *l = small_layer(S4_ACT_GLU, S4_FINAL_GLU, 2, 1, 1, 0, 40, 7);
    s4_layer_config got;
    assert_int_equal(s4_layer_get_config(l, &got), S4_OK);
    assert_int_equal(got.ssm.H, 3);
    assert_int_equal(got.ssm.n_ssm, 3);
    assert_int_equal(got.ssm.channels, 4); /* C' = 2 channels x GLU */
    assert_int_equal(got.ssm.bidirectional, 1);
    assert_int_equal(got.channels, 2);
    assert_int_equal(got.activation, S4_ACT_GLU);
    assert_int_equal(got.swap_channels, 1);
    assert_int_equal(got.transposed, 0);
    assert_int_equal(got.l_max, 40);
    s4_ssm_config sc;
    assert_int_equal(s4_ssm_get_config(s4_layer_ssm(l), &sc), S4_OK);
    assert_int_equal(sc.channels, 4);
    assert_int_equal(sc.bidirectional, 1);
    assert_int_equal(s4_layer_output_features(l), 3);
    assert_int_equal(l->head.Fp, 12);
    assert_int_equal(l->head.Fa, 6);
    assert_int_equal(l->head.Flin, 6);
    /* torch.nn.Linear bounds 1/sqrt(fan_in); W and b stored as float of the doubles. */
    const double bound = 1.0 / sqrt(6.0);
    for (int i = 0; i < 6 * 6; i++) {
        assert_true(fabs(l->W64[i]) <= bound);
        assert_true(l->head.W[i] == (float)l->W64[i]);
    }
    for (int i = 0; i < 6; i++)
        assert_true(fabs(l->b64[i]) <= bound && l->head.b[i] == (float)l->b64[i]);
    /* Same seed, same layer; the SSM bank is that of a bare bank with the same seed. */
    s4_layer *l2 = small_layer(S4_ACT_GLU, S4_FINAL_GLU, 2, 1, 1, 0, 40, 7);
    assert_memory_equal(l->W64, l2->W64, 36 * sizeof(double));
    assert_memory_equal(l->b64, l2->b64, 6 * sizeof(double));
    s4_ssm *bare = NULL;
    assert_int_equal(s4_ssm_create(&sc, &bare), S4_OK);
    double *C1 = s4t_get_param(bare, S4_PARAM_C, NULL);
    size_t nC = 0;
    double *C2 = s4t_get_param(s4_layer_ssm(l), S4_PARAM_C, &nC);
    assert_memory_equal(C1, C2, nC * sizeof(double));
    s4_layer *l3 = small_layer(S4_ACT_GLU, S4_FINAL_GLU, 2, 1, 1, 0, 40, 8);
    assert_true(memcmp(l->W64, l3->W64, 36 * sizeof(double)) != 0);
    free(C1), free(C2);
    s4_ssm_destroy(bare);
    s4_layer_destroy(l), s4_layer_destroy(l2), s4_layer_destroy(l3);

    /* Output features per final_act and activation. */
    s4_layer *n1 = small_layer(S4_ACT_GELU, S4_FINAL_NONE, 2, 0, 0, 1, 0, 1);
    assert_int_equal(s4_layer_output_features(n1), 6);
    assert_null(n1->head.W);
    s4_layer *n2 = small_layer(S4_ACT_GLU, S4_FINAL_NONE, 2, 0, 0, 1, 0, 1);
    assert_int_equal(s4_layer_output_features(n2), 6);
    s4_layer *n3 = small_layer(S4_ACT_RELU, S4_FINAL_IDENTITY, 1, 0, 0, 1, 0, 1);
    assert_int_equal(s4_layer_output_features(n3), 3);
    assert_int_equal(n3->head.Flin, 3);
    s4_layer_destroy(n1), s4_layer_destroy(n2), s4_layer_destroy(n3);
    assert_null(s4_layer_ssm(NULL));
    assert_int_equal(s4_layer_output_features(NULL), 0);
    s4_layer_destroy(NULL);
}

/* ---- forward against an explicit convolution: l_max, rate, channels, directions ---- */

/* pre computed from the layer's kernel in double: y[c][h][t] = sum k0 u + sum k1 u + D u,
 * flattened (c h) or (h c), for one sequence u [H x L]. The kernel has `taps` <= l taps
 * (the reference's round(l_kernel / rate) when that is below l); the reference then pads it
 * to its FFT length l + L, which moves the flipped backward kernel l - taps steps later. */
static void direct_pre(const s4_layer *layer, int64_t l, int64_t taps, double rate,
                       const float *u, int64_t L, double *out)
{
    const s4_ssm *ssm = s4_layer_ssm(layer);
    s4_layer_config cfg;
    assert_int_equal(s4_layer_get_config(layer, &cfg), S4_OK);
    const int H = cfg.ssm.H, Cp = cfg.ssm.channels, rows = Cp * (1 + cfg.bidirectional);
    s4_kernel_options ko = {.rate = rate, .threads = 1};
    s4_kernel *kp = NULL;
    assert_int_equal(s4_kernel_create(ssm, taps, &ko, &kp), S4_OK);
    float *K = s4t_falloc((size_t)rows * H * (size_t)taps, 0.0f);
    assert_int_equal(s4_kernel_execute(kp, ssm, K, (size_t)taps, NULL, 0), S4_OK);
    const int64_t shift = l - taps;
    double *D = s4t_get_param(ssm, S4_PARAM_D, NULL);
    for (int c = 0; c < Cp; c++)
        for (int h = 0; h < H; h++) {
            const float *k0 = K + ((size_t)c * H + h) * (size_t)taps;
            const float *k1 = K + ((size_t)(Cp + c) * H + h) * (size_t)taps;
            const float *uh = u + (size_t)h * (size_t)L;
            const size_t f = cfg.swap_channels ? (size_t)h * Cp + c : (size_t)c * H + h;
            for (int64_t t = 0; t < L; t++) {
                double acc = (double)(float)D[c * H + h] * uh[t];
                for (int64_t m = 0; m < taps && m <= t; m++)
                    acc += (double)k0[m] * uh[t - m];
                if (cfg.bidirectional)
                    for (int64_t j = 0; j < taps && t + 1 + shift + j < L; j++)
                        acc += (double)k1[j] * uh[t + 1 + shift + j];
                out[f * (size_t)L + (size_t)t] = acc;
            }
        }
    free(K), free(D);
    s4_kernel_destroy(kp);
}

/* The same from a whole kernel K [C'' x H x ldk] of l taps as s4_layer_kernel gives it
 * (a short kernel already padded: backward rows start l - taps later). */
static void direct_pre_K(const s4_layer *layer, const float *K, size_t ldk, int64_t l,
                         const float *u, int64_t L, double *out)
{
    const s4_ssm *ssm = s4_layer_ssm(layer);
    s4_layer_config cfg;
    assert_int_equal(s4_layer_get_config(layer, &cfg), S4_OK);
    const int H = cfg.ssm.H, Cp = cfg.ssm.channels;
    double *D = s4t_get_param(ssm, S4_PARAM_D, NULL);
    for (int c = 0; c < Cp; c++)
        for (int h = 0; h < H; h++) {
            const float *k0 = K + ((size_t)c * H + h) * ldk;
            const float *k1 = K + ((size_t)(Cp + c) * H + h) * ldk;
            const float *uh = u + (size_t)h * (size_t)L;
            const size_t f = cfg.swap_channels ? (size_t)h * Cp + c : (size_t)c * H + h;
            for (int64_t t = 0; t < L; t++) {
                double acc = (double)(float)D[c * H + h] * uh[t];
                for (int64_t m = 0; m < l && m <= t; m++)
                    acc += (double)k0[m] * uh[t - m];
                if (cfg.bidirectional)
                    for (int64_t j = 0; j < l && t + 1 + j < L; j++)
                        acc += (double)k1[j] * uh[t + 1 + j];
                out[f * (size_t)L + (size_t)t] = acc;
            }
        }
    free(D);
}

static void test_rules_vs_direct(void **state)
{
    (void)state;
    static const struct {
        int64_t l_max, L;
        double rate;
        int64_t l, taps, lk_after; /* kernel length, its nonzero taps, l_kernel after */
        int channels, bidir, swap;
        s4_activation act;
    } sc[] = {
        {16, 40, 1.0, 16, 16, 16, 1, 0, 0, S4_ACT_GELU}, /* l_max < L: truncated kernel */
        {16, 40, 0.5, 32, 32, 16, 1, 0, 0, S4_ACT_GELU}, /* round(16 / 0.5) = 32 */
        {16, 40, 2.0, 8, 8, 16, 2, 0, 1, S4_ACT_GELU},   /* round(16 / 2) = 8, (h c) */
        {16, 40, 3.0, 5, 5, 16, 1, 1, 0, S4_ACT_TANH},   /* round(5.33) = 5, bidirectional */
        {10, 30, 0.8, 12, 12, 10, 2, 1, 1, S4_ACT_GLU},  /* round(12.5) = 12 (half to even) */
        {0, 40, 1.5, 40, 40, 60, 1, 0, 0, S4_ACT_GELU},  /* l_max None: C-tilde for 60 */
        /* round(0.25 * 33) = 8 = l_kernel gives round(8 / 0.25) = 32 nodes < l = 33 */
        {0, 33, 0.25, 33, 32, 8, 2, 1, 0, S4_ACT_RELU},
        {0, 33, 0.25, 33, 32, 8, 1, 0, 0, S4_ACT_GELU},
        {64, 17, 1.0, 17, 17, 64, 1, 0, 0, S4_ACT_SILU}, /* L < l_max: C-tilde for 64 */
        {0, 1, 1.0, 1, 1, 1, 1, 0, 0, S4_ACT_GELU},      /* L = 1 */
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        s4_layer *layer = small_layer(sc[i].act, S4_FINAL_GLU, sc[i].channels, sc[i].bidir,
                                      sc[i].swap, 1, sc[i].l_max, 100 + i);
        const int B = 2, H = 3, Cp = sc[i].channels * (sc[i].act == S4_ACT_GLU ? 2 : 1);
        const int64_t L = sc[i].L;
        const size_t Fp = (size_t)Cp * H, nu = (size_t)B * H * (size_t)L;
        s4_forward_options opt = {.rate = sc[i].rate, .planner = S4_PLANNER_ESTIMATE};
        char what[96];
        snprintf(what, sizeof what, "l_max %lld L %lld rate %g", (long long)sc[i].l_max,
                 (long long)L, sc[i].rate);
        /* The public answer to "which kernel will the forward apply", asked first: sizes,
         * then the kernel, the layer untouched (its C-tilde length as it was). */
        s4_layer_kernel_info ki;
        const int64_t lk0 = s4_ssm_l_kernel(s4_layer_ssm(layer));
        assert_int_equal(s4_layer_kernel_size(layer, L, sc[i].rate, &ki), S4_OK);
        const int rows = ki.rows;
        const int64_t kl = ki.length, ktaps = ki.taps;
        assert_int_equal(ki.l_kernel, sc[i].lk_after);
        s4_layer_config lc;
        assert_int_equal(s4_layer_get_config(layer, &lc), S4_OK);
        assert_int_equal(rows, lc.ssm.channels * (1 + sc[i].bidir));
        assert_int_equal(kl, sc[i].l);
        assert_int_equal(ktaps, sc[i].taps);
        const size_t ldk = (size_t)kl + 3;
        float *Kl = s4t_falloc((size_t)rows * H * ldk, FSENTINEL);
        assert_int_equal(s4_layer_kernel(layer, L, sc[i].rate, Kl, ldk), S4_OK);
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), lk0);
        for (size_t r = 0; r < (size_t)rows * H; r++)
            for (size_t k = (size_t)kl; k < ldk; k++)
                assert_true(Kl[r * ldk + k] == FSENTINEL);
        s4_forward *plan = forward_or_fail(layer, B, L, &opt, what);
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), sc[i].lk_after);
        float *u = s4t_falloc(nu, 0.0f), *y = s4t_falloc((size_t)B * H * (size_t)L, FSENTINEL);
        float *pre = s4t_falloc((size_t)B * Fp * (size_t)L, FSENTINEL);
        for (size_t k = 0; k < nu; k++)
            u[k] = (float)sin(0.3 * (double)k + 0.2 * (double)i);
        execute_or_fail(plan, u, y, pre, NULL, 0, what);
        double *want = malloc(Fp * (size_t)L * sizeof *want);
        double worst = 0.0;
        for (int b = 0; b < B; b++) {
            direct_pre(layer, sc[i].l, sc[i].taps, sc[i].rate, u + (size_t)b * H * (size_t)L,
                       L, want);
            double *got = s4t_f2d_alloc(pre + (size_t)b * Fp * (size_t)L, Fp * (size_t)L);
            worst = fmax(worst, s4t_max_rel_err(got, want, Fp * (size_t)L));
            direct_pre_K(layer, Kl, ldk, kl, u + (size_t)b * H * (size_t)L, L, want);
            worst = fmax(worst, s4t_max_rel_err(got, want, Fp * (size_t)L));
            free(got);
            /* y = head(pre) of the layer's own head, in double. */
            double *yw = malloc((size_t)H * (size_t)L * sizeof *yw);
            head_d(&layer->head, pre + (size_t)b * Fp * (size_t)L, (size_t)L, yw);
            double *yg = s4t_f2d_alloc(y + (size_t)b * H * (size_t)L, (size_t)H * (size_t)L);
            assert_rel_err(s4t_max_rel_err(yg, yw, (size_t)H * (size_t)L), TOL_HEAD, what);
            free(yw), free(yg);
        }
        print_message("%-32s l %3lld taps %3lld: pre vs direct convolution %.2e\n", what,
                      (long long)sc[i].l, (long long)sc[i].taps, worst);
        assert_rel_err(worst, TOL_CONV, what);
        free(u), free(y), free(pre), free(want), free(Kl);
        s4_forward_destroy(plan);
        s4_layer_destroy(layer);
    }
}

/* ---- plans, workspaces, threads -------------------------------------------------------- */

static void test_plan_outlives_layer(void **state)
{
    (void)state;
    const int B = 3;
    const int64_t L = 50;
    s4_layer *layer = small_layer(S4_ACT_GELU, S4_FINAL_GLU, 2, 1, 1, 1, 0, 21);
    s4_forward *plan = forward_or_fail(layer, B, L, NULL, "outlives");
    const size_t nu = (size_t)B * 3 * (size_t)L, ny = nu, np = 2 * nu;
    float *u = s4t_falloc(nu, 0.0f), *y0 = s4t_falloc(ny, FSENTINEL), *y1 = s4t_falloc(ny, FSENTINEL);
    float *p0 = s4t_falloc(np, FSENTINEL), *p1 = s4t_falloc(np, FSENTINEL);
    for (size_t i = 0; i < nu; i++)
        u[i] = (float)cos(0.05 * (double)i * (double)i);
    execute_or_fail(plan, u, y0, p0, NULL, 0, "before destroy");
    s4_layer_destroy(layer);
    execute_or_fail(plan, u, y1, p1, NULL, 0, "after destroy");
    assert_memory_equal(y0, y1, ny * sizeof *y0);
    assert_memory_equal(p0, p1, np * sizeof *p0);
    free(u), free(y0), free(y1), free(p0), free(p1);
    s4_forward_destroy(plan);
}

static void test_workspace(void **state)
{
    (void)state;
    const int B = 2;
    const int64_t L = 300;
    for (int transposed = 0; transposed <= 1; transposed++) {
        s4_layer *layer = small_layer(S4_ACT_GLU, S4_FINAL_IDENTITY, 2, 0, 1, transposed, 0, 3);
        s4_forward *plan = forward_or_fail(layer, B, L, NULL, "workspace");
        const size_t ws = s4_forward_workspace_size(plan);
        assert_true(ws > 0);
        const size_t nu = (size_t)B * 3 * (size_t)L, ny = nu, np = (size_t)B * 12 * (size_t)L;
        float *u = s4t_falloc(nu, 0.0f), *y0 = s4t_falloc(ny, FSENTINEL), *y1 = s4t_falloc(ny, FSENTINEL);
        float *p0 = s4t_falloc(np, FSENTINEL), *p1 = s4t_falloc(np, FSENTINEL);
        for (size_t i = 0; i < nu; i++)
            u[i] = (float)sin(0.01 * (double)i) * (float)(i % 7);
        execute_or_fail(plan, u, y0, p0, NULL, 0, "own workspace");
        unsigned char *buf = malloc(ws + 64);
        assert_non_null(buf);
        for (size_t off = 0; off < 8; off += 1 + off) {
            memset(buf, 0xCD, ws + 64);
            execute_or_fail(plan, u, y1, p1, buf + off, ws, "caller workspace");
            if (memcmp(y0, y1, ny * sizeof *y0) != 0 || memcmp(p0, p1, np * sizeof *p0) != 0)
                fail_msg("transposed %d: caller workspace at offset %zu changes the result",
                         transposed, off);
            for (size_t i = off + ws; i < ws + 64; i++)
                if (buf[i] != 0xCD)
                    fail_msg("byte %zu past the workspace was written", i - off - ws);
        }
        free(u), free(y0), free(y1), free(p0), free(p1), free(buf);
        s4_forward_destroy(plan);
        s4_layer_destroy(layer);
    }
}

typedef struct exec_job {
    const s4_forward *plan;
    const float *u;
    float *y;
    void *work;
    size_t ws;
    s4_status st;
} exec_job;

static void *exec_thread(void *arg)
{
    exec_job *j = arg;
    for (int r = 0; r < 3 && j->st == S4_OK; r++)
        j->st = s4_forward_execute(j->plan, j->u, j->y, NULL, j->work, j->ws);
    return NULL;
}

/* Several threads on one plan, each with its own workspace: identical results. */
static void test_threads(void **state)
{
    (void)state;
    const int B = 2;
    const int64_t L = 500;
    s4_layer *layer = small_layer(S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 1, 0, 5);
    s4_forward *plan = forward_or_fail(layer, B, L, NULL, "threads");
    const size_t nu = (size_t)B * 3 * (size_t)L, ws = s4_forward_workspace_size(plan);
    float *u = s4t_falloc(nu, 0.0f), *y0 = s4t_falloc(nu, FSENTINEL);
    for (size_t i = 0; i < nu; i++)
        u[i] = (float)sin(0.2 * (double)i);
    execute_or_fail(plan, u, y0, NULL, NULL, 0, "serial");
    enum { JOBS = 4 };
    exec_job jobs[JOBS];
    pthread_t tid[JOBS];
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (exec_job){plan, u, s4t_falloc(nu, FSENTINEL), malloc(ws), ws, S4_OK};
        assert_int_equal(pthread_create(&tid[i], NULL, exec_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(jobs[i].st, S4_OK);
        assert_memory_equal(jobs[i].y, y0, nu * sizeof *y0);
        free(jobs[i].y), free(jobs[i].work);
    }
    free(u), free(y0);
    s4_forward_destroy(plan);
    s4_layer_destroy(layer);
}

/* options.threads: the same bits for every thread count (batch split, feature and column
 * block split, and the mix when B is not a multiple of the threads), with and without
 * `pre`, in both layouts, with (h c) swapping, bidirectional and GLU activations; and a
 * caller workspace of exactly the size asked for. */
static void test_thread_counts(void **state)
{
    (void)state;
    static const struct {
        s4_activation act;
        s4_final_act fin;
        int channels, bidir, swap, transposed;
    } cfgs[] = {
        {S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 1},     {S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 0},
        {S4_ACT_GLU, S4_FINAL_IDENTITY, 2, 1, 1, 1}, {S4_ACT_TANH, S4_FINAL_NONE, 2, 0, 1, 0},
    };
    static const int Bs[] = {1, 3};
    const int64_t L = 700; /* several head column blocks */
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++)
        for (size_t ib = 0; ib < sizeof Bs / sizeof Bs[0]; ib++) {
            const int B = Bs[ib];
            s4_layer *layer = small_layer(cfgs[k].act, cfgs[k].fin, cfgs[k].channels,
                                          cfgs[k].bidir, cfgs[k].swap, cfgs[k].transposed, 0,
                                          40 + k);
            const int F = s4_layer_output_features(layer);
            const size_t nu = (size_t)B * 3 * (size_t)L, ny = (size_t)B * (size_t)F * (size_t)L;
            const size_t np = (size_t)B * 3 * (size_t)cfgs[k].channels *
                              (cfgs[k].act == S4_ACT_GLU ? 2 : 1) * (size_t)L;
            float *u = s4t_falloc(nu, 0.0f);
            for (size_t i = 0; i < nu; i++)
                u[i] = (float)(2.0 * sin(0.37 * (double)i) + 0.5 * cos(0.011 * (double)i));
            float *y1 = s4t_falloc(ny, FSENTINEL), *p1 = s4t_falloc(np, FSENTINEL);
            s4_forward_options opt = {.rate = 1.0, .planner = S4_PLANNER_ESTIMATE, .threads = 1};
            s4_forward *ref = forward_or_fail(layer, B, L, &opt, "threads = 1");
            execute_or_fail(ref, u, y1, p1, NULL, 0, "threads = 1");
            for (int t = 0; t <= 4; t++) {
                opt.threads = t;
                s4_forward *plan = forward_or_fail(layer, B, L, &opt, "threads");
                /* What it runs: this process's ISA, the S4 kernel's default mixed sums, and
                 * the threads asked for (no more than there is work for; 0: default). */
                s4_plan_info info;
                assert_int_equal(s4_forward_info(plan, &info), S4_OK);
                assert_int_equal(info.isa, s4_cpu_isa());
                assert_int_equal(info.precision, S4_PRECISION_MIXED);
                assert_true(info.threads >= 1 && (t == 0 || info.threads <= t));
                const size_t ws = s4_forward_workspace_size(plan);
                unsigned char *work = malloc(ws);
                assert_non_null(work);
                float *yt = s4t_falloc(ny, FSENTINEL), *pt = s4t_falloc(np, FSENTINEL);
                for (int with_pre = 0; with_pre <= 1; with_pre++) {
                    memset(yt, 0xCD, ny * sizeof *yt);
                    execute_or_fail(plan, u, yt, with_pre ? pt : NULL, work, ws, "threads");
                    if (memcmp(yt, y1, ny * sizeof *yt) != 0 ||
                        (with_pre && memcmp(pt, p1, np * sizeof *pt) != 0))
                        fail_msg("config %zu, B = %d, threads = %d, pre %d: result differs "
                                 "from threads = 1",
                                 k, B, t, with_pre);
                }
                free(work), free(yt), free(pt);
                s4_forward_destroy(plan);
            }
            s4_forward_destroy(ref);
            free(u), free(y1), free(p1);
            s4_layer_destroy(layer);
        }
}

/* ---- invalid arguments ----------------------------------------------------------------- */

static void test_create_invalid(void **state)
{
    (void)state;
    s4_layer *const SENT = (s4_layer *)(uintptr_t)0x5eed;
    s4_layer *out = SENT;
    s4_layer_config ok;
    s4_layer_config_default(&ok);
    ok.ssm.H = 2;
    ok.ssm.N = 8;
    s4_layer_config c;

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create(NULL, &out));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create(&ok, NULL));
#define BAD(field, value)                                                                     \
    do {                                                                                      \
        c = ok;                                                                               \
        c.field = value;                                                                      \
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create(&c, &out));                     \
    } while (0)
    BAD(activation, (s4_activation)8);
    BAD(activation, (s4_activation)-1);
    BAD(final_act, (s4_final_act)3);
    BAD(final_act, (s4_final_act)-1);
    BAD(channels, 0);
    BAD(channels, -2);
    BAD(channels, 1025);
    BAD(bidirectional, 2);
    BAD(bidirectional, -1);
    BAD(swap_channels, 2);
    BAD(transposed, -1);
    BAD(transposed, 2);
    BAD(l_max, -1);
    BAD(l_max, INT64_MAX);
    BAD(ssm.H, 0);
    BAD(ssm.H, -5);
    BAD(ssm.H, INT32_MAX / 2 + 1); /* 2H features overflow int */
    BAD(ssm.N, 7);             /* the bank's own checks */
    BAD(ssm.rank, 0);
    BAD(ssm.init, (s4_init)99);
    BAD(ssm.dt_transform, (s4_transform)9);
    c = ok;
    c.ssm.H = 1 << 29;
    c.channels = 2;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create(&c, &out));
    assert_ptr_equal(out, SENT);

    /* Arrays: a valid set first (from a fresh layer's bank), then each defect. */
    s4_layer *ref = NULL;
    assert_int_equal(s4_layer_create(&ok, &ref), S4_OK);
    const s4_ssm *ssm = s4_layer_ssm(ref);
    double *inv_dt = s4t_get_param(ssm, S4_PARAM_INV_DT, NULL);
    double *A_real = s4t_get_param(ssm, S4_PARAM_A_REAL, NULL);
    double *A_imag = s4t_get_param(ssm, S4_PARAM_A_IMAG, NULL);
    double *Bp = s4t_get_param(ssm, S4_PARAM_B, NULL);
    double *P = s4t_get_param(ssm, S4_PARAM_P, NULL);
    double *C = s4t_get_param(ssm, S4_PARAM_C, NULL);
    double *D = s4t_get_param(ssm, S4_PARAM_D, NULL);
    double W[4 * 2], b[4];
    memcpy(W, ref->W64, sizeof W);
    memcpy(b, ref->b64, sizeof b);
    const s4_layer_arrays good = {{inv_dt, A_real, A_imag, Bp, P, C, D, 0}, W, b};
    s4_layer_arrays a = good;
    s4_layer *made = NULL;
    assert_int_equal(s4_layer_create_from_arrays(&ok, &good, &made), S4_OK);
    assert_memory_equal(made->W64, W, sizeof W);
    assert_memory_equal(made->b64, b, sizeof b);
    s4_layer_destroy(made);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(NULL, &good, &out));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, NULL, &out));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &good, NULL));
    c = ok;
    c.activation = (s4_activation)42;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&c, &good, &out));
    a = good;
    a.W = NULL; /* final GLU needs W */
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
    a = good;
    a.b = NULL;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
    c = ok;
    c.final_act = S4_FINAL_IDENTITY;
    a = good;
    a.W = NULL;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&c, &a, &out));
    const double bad_values[] = {NAN, INFINITY, -INFINITY, 1e39};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        double W2[8], b2[4];
        memcpy(W2, W, sizeof W2);
        memcpy(b2, b, sizeof b2);
        W2[5] = bad_values[i];
        a = good;
        a.W = W2;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
        a = good;
        b2[3] = bad_values[i];
        a.b = b2;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
    }
    a = good;
    a.ssm.C = NULL;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
    double nan_dt[2] = {inv_dt[0], NAN};
    a = good;
    a.ssm.inv_dt = nan_dt;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_create_from_arrays(&ok, &a, &out));
    assert_ptr_equal(out, SENT);
    /* No output linear: W and b may be NULL (and are ignored if given). */
    c = ok;
    c.final_act = S4_FINAL_NONE;
    a = good;
    a.W = NULL;
    a.b = NULL;
    assert_int_equal(s4_layer_create_from_arrays(&c, &a, &made), S4_OK);
    assert_int_equal(s4_layer_output_features(made), 2);
    s4_layer_destroy(made);

    s4_layer_config got;
    memset(&got, 0x77, sizeof got);
    s4_layer_config got0 = got;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_get_config(NULL, &got));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_layer_get_config(ref, NULL));
    assert_memory_equal(&got, &got0, sizeof got);
    free(inv_dt), free(A_real), free(A_imag), free(Bp), free(P), free(C), free(D);
    s4_layer_destroy(ref);
}

static void test_forward_invalid(void **state)
{
    (void)state;
    s4_forward *const SENT = (s4_forward *)(uintptr_t)0x5eed;
    s4_forward *plan = SENT;
    s4_layer *layer = small_layer(S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 1, 0, 9);
    const s4_ssm *ssm = s4_layer_ssm(layer);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(NULL, 1, 16, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, 16, NULL, NULL));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 0, 16, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, -1, 16, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, 0, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, -7, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, INT64_MIN, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, INT64_MAX, NULL, &plan));
    assert_fails(S4_ERR_UNSUPPORTED,
                 s4_forward_create(layer, 1, (int64_t)INT32_MAX + 1, NULL, &plan));
    /* B H L floats overflow size_t on 64-bit only beyond 2^62: B 2^31 x L 2^31 x H 3. */
    assert_fails(S4_ERR_OUT_OF_MEMORY,
                 s4_forward_create(layer, INT32_MAX, INT32_MAX, NULL, &plan));
    const double bad_rates[] = {0.0, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        s4_forward_options o = {.rate = bad_rates[i]};
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, 16, &o, &plan));
    }
    s4_forward_options o = {.rate = 1.0, .planner = (s4_planner)2};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, 16, &o, &plan));
    o = (s4_forward_options){.rate = 1.0, .threads = -1};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(layer, 1, 16, &o, &plan));
    assert_ptr_equal(plan, SENT);
    assert_int_equal(s4_ssm_l_kernel(ssm), 0); /* nothing set up by failed calls */

    /* l_max / rate rounding to 0 */
    s4_layer *lm = small_layer(S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 1, 4, 9);
    o = (s4_forward_options){.rate = 9.0};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(lm, 1, 16, &o, &plan));
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(lm)), 0);
    s4_layer_destroy(lm);
    /* A failure after the length rules ran (too many kernel nodes for l_max = 2^31) leaves
     * the layer's C-tilde as it was. */
    s4_layer *big = small_layer(S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 0, 1, (int64_t)1 << 31, 9);
    double *C0 = s4t_get_param(s4_layer_ssm(big), S4_PARAM_C, NULL);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_create(big, 1, 16, NULL, &plan));
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(big)), 0);
    size_t nC = 0;
    double *C1 = s4t_get_param(s4_layer_ssm(big), S4_PARAM_C, &nC);
    assert_memory_equal(C0, C1, nC * sizeof *C0);
    free(C0), free(C1);
    s4_layer_destroy(big);
    assert_ptr_equal(plan, SENT);

    /* execute */
    const int B = 2;
    const int64_t L = 16;
    s4_forward *p = forward_or_fail(layer, B, L, NULL, "execute_invalid");
    const size_t n = (size_t)B * 3 * (size_t)L, ws = s4_forward_workspace_size(p);
    float *u = s4t_falloc(n, 0.5f), *y = s4t_falloc(n, FSENTINEL), *pre = s4t_falloc(n, FSENTINEL);
    unsigned char *work = malloc(ws);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_execute(NULL, u, y, pre, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_execute(p, NULL, y, pre, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_execute(p, u, NULL, pre, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_execute(p, u, y, pre, work, ws - 1));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_forward_execute(p, u, y, pre, work, 0));
    assert_true(fall_equal(y, n, FSENTINEL));
    assert_true(fall_equal(pre, n, FSENTINEL));
    free(u), free(y), free(pre), free(work);
    s4_forward_destroy(p);
    s4_forward_destroy(NULL);
    assert_int_equal(s4_forward_workspace_size(NULL), 0);
    s4_layer_destroy(layer);
}

int main(int argc, char **argv)
{
    int count = 0;
    s4t_case *cases = s4t_cases_load(&count);
    layer_case *lc = layer_cases_load(cases, count);
    s4t_suite s = {0};
    for (int i = 0; i < count; i++) {
        char name[160];
        snprintf(name, sizeof name, "golden/%s", cases[i].name);
        s4t_suite_add(&s, name, test_golden, &lc[i]);
    }
    s4t_suite_add(&s, "activations", test_activations, NULL);
    s4t_suite_add(&s, "head_linear", test_head_linear, NULL);
    s4t_suite_add(&s, "create", test_create, NULL);
    s4t_suite_add(&s, "rules_vs_direct", test_rules_vs_direct, NULL);
    s4t_suite_add(&s, "plan_outlives_layer", test_plan_outlives_layer, NULL);
    s4t_suite_add(&s, "workspace", test_workspace, NULL);
    s4t_suite_add(&s, "threads", test_threads, NULL);
    s4t_suite_add(&s, "thread_counts", test_thread_counts, NULL);
    s4t_suite_add(&s, "create_invalid", test_create_invalid, NULL);
    s4t_suite_add(&s, "forward_invalid", test_forward_invalid, NULL);
    int failures = s4t_suite_run(&s, "layer", argc, argv);
    free(lc);
    free(cases);
    return failures;
}
