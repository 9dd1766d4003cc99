#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* Recurrent step mode and streaming: every golden S4 case with a `steps` entry replayed
 * (conv-mode stages first, so l_kernel and C-tilde are what the reference had when it
 * stepped), each step mode against the reference's float64 step outputs and against
 * libs4's own conv output (including L = 16384); the same from the stored C-tilde
 * (params_after); the diagonal mode's acceptance and refusal; swap_channels honoured;
 * streaming in chunks of 1, 7, 64, 1000, L and a random mix against one whole chunk and the
 * conv forward, its carried state against step mode's; state conversion across modes; rate;
 * layouts, batches larger than a block, caller workspaces; bidirectional layers refused;
 * argument checking with untouched outputs.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include "layer_case.h"

#include "layer/layer.h" /* the layer's head sizes in the batch test */

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds on max|x - x_ref| / max|x_ref|. Never loosen. */
#define TOL_GOLDEN 1e-4      /* dense and linear step vs the float64 reference step */
#define TOL_DIAG 1e-3        /* diagonal step vs the reference, when accepted */
#define TOL_CONV 1e-4        /* step vs libs4's conv forward on the same input */
#define TOL_CHUNK 1e-5       /* streaming chunks vs one whole chunk; whole vs conv */
#define TOL_STATE 1e-9       /* carried states (double) between stream and step modes */
#define TOL_SAME 1e-6        /* the same computation through another route (float out) */
#define TOL_SINGLE_STATE 1e-5 /* float state after a short run vs the double linear step's */

static const float FSENTINEL = -12345.5f;
static const double DSENTINEL = -777.25;

static const char *const MODE_NAME[3] = {"dense", "linear", "diagonal"};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- figures for the report ----------------------------------------------------------- */

static struct {
    double gold[3], conv[3];    /* worst step error per mode vs golden / vs conv */
    double single_gold, single_conv; /* the linear step in S4_PRECISION_SINGLE */
    double after_gold;          /* from params_after */
    double chunk, whole_conv;   /* streaming */
    double state_stream, state_modes;
    int diag_refused, diag_accepted;
    double diag_worst_accepted;
} fig;


/* ---- small helpers ---------------------------------------------------------------- */



static int fall_equal(const float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}

static int dall_equal(const double *x, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}



static float *frand(size_t n)
{
    float *x = s4t_falloc(n, 0.0f);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)s4t_urand();
    return x;
}


/* ---- golden cases: config.json, the state dict, the step files ----------------------- */











/* What a step test needs of a case beyond s4t_case. */
typedef struct step_case {
    const s4t_case *c;
    char config[S4T_PATH_MAX];
    int B;
    char u[S4T_MAX_STAGES][S4T_PATH_MAX];
    int has_steps;
    char step[3][S4T_PATH_MAX]; /* step_{dense,linear,diagonal}_f64.npy */
} step_case;

static step_case *step_cases_load(const s4t_case *cases, int count)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "cases.json");
    char *text = s4t_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    step_case *sc = calloc((size_t)(count ? count : 1), sizeof *sc);
    assert_non_null(sc);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, s4t_jget(root, "cases", path)) {
        assert_true(i < count);
        sc[i].c = &cases[i];
        assert_string_equal(s4t_jstr(item, "name", path), cases[i].name);
        snprintf(sc[i].config, S4T_PATH_MAX, "%s",
                 s4t_jstr(s4t_jget(item, "files", path), "config", path));
        sc[i].B = (int)s4t_jint(s4t_jget(item, "config", path), "B", 0, path);
        int s = 0;
        const cJSON *sj;
        cJSON_ArrayForEach(sj, s4t_jget(item, "stages", path)) {
            snprintf(sc[i].u[s], S4T_PATH_MAX, "%s", s4t_jstr(s4t_jget(sj, "files", path), "u", path));
            s++;
        }
        assert_int_equal(s, cases[i].n_stages);
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(item, "steps");
        if (steps && cJSON_GetObjectItemCaseSensitive(steps, "dense")) {
            sc[i].has_steps = 1;
            for (int m = 0; m < 3; m++) {
                const cJSON *f64 = s4t_jget(s4t_jget(steps, MODE_NAME[m], path), "f64", path);
                snprintf(sc[i].step[m], S4T_PATH_MAX, "%s", s4t_jstr(f64, "file", path));
            }
        }
        i++;
    }
    assert_int_equal(i, count);
    cJSON_Delete(root);
    return sc;
}

/* ---- library wrappers that fail the test --------------------------------------------- */


static void run_or_fail(const s4_step *p, void *state, const float *u, int64_t T, float *y,
                        const char *what)
{
    s4_status st = s4_step_run(p, state, u, T, y, NULL, 0);
    if (st != S4_OK)
        fail_msg("%s: s4_step_run(T = %lld): %s: %s", what, (long long)T, s4_status_str(st),
                 s4_last_error());
}

/* The reference form x [B x H x N/2 x 2] of a step state. */
static double *state_x(const s4_step *p, const void *state, size_t nx)
{
    double *x = s4t_dalloc(nx, DSENTINEL);
    assert_int_equal(s4_step_state_get(p, state, x), S4_OK);
    return x;
}

static s4_forward *forward_or_fail(s4_layer *layer, int B, int64_t L, const char *what)
{
    s4_forward *plan = NULL;
    s4_status st = s4_forward_create(layer, B, L, NULL, &plan);
    if (st != S4_OK || !plan)
        fail_msg("%s: s4_forward_create(B = %d, L = %lld): %s: %s", what, B, (long long)L,
                 s4_status_str(st), s4_last_error());
    return plan;
}

static s4_stream *stream_or_fail(s4_layer *layer, int B, int64_t max_chunk, double rate,
                                 const char *what)
{
    s4_stream *p = NULL;
    const s4_forward_options o = {.rate = rate};
    s4_status st = s4_stream_create(layer, B, max_chunk, &o, &p);
    if (st != S4_OK || !p)
        fail_msg("%s: s4_stream_create(B = %d, max_chunk = %lld): %s: %s", what, B,
                 (long long)max_chunk, s4_status_str(st), s4_last_error());
    return p;
}

/* The layer of a case with the reference's forward stages replayed in conv mode on their
 * inputs (so l_kernel and C-tilde are what the reference had when it stepped). Returns the
 * layer; *y_conv (if non-NULL) receives the last stage's conv output [B x Fo x L]. */
static s4_layer *replayed_layer(const step_case *sc, const s4_layer_config *cfg, float **y_conv)
{
    const s4t_case *c = sc->c;
    s4_layer *layer = s4t_layer_from_params(cfg, c->params_init);
    const int B = sc->B, H = c->H, Fo = s4_layer_output_features(layer);
    for (int s = 0; s < c->n_stages; s++) {
        const int64_t L = c->stages[s].L;
        double *u = s4t_npy3(sc->u[s], B, H, L);
        const size_t nu = (size_t)B * H * (size_t)L, ny = (size_t)B * Fo * (size_t)L;
        float *uf = s4t_falloc(nu, 0.0f), *y = s4t_falloc(ny, FSENTINEL);
        s4t_d2f(u, uf, nu);
        s4_forward *plan = forward_or_fail(layer, B, L, c->name);
        assert_int_equal(s4_forward_execute(plan, uf, y, NULL, NULL, 0), S4_OK);
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), c->stages[s].l_kernel_after);
        s4_forward_destroy(plan);
        if (s == c->n_stages - 1 && y_conv)
            *y_conv = y;
        else
            free(y);
        free(u), free(uf);
    }
    return layer;
}

/* The last stage's input as floats [B x H x L]. */
static float *last_u(const step_case *sc)
{
    const s4t_case *c = sc->c;
    const int64_t L = c->stages[c->n_stages - 1].L;
    const size_t nu = (size_t)sc->B * c->H * (size_t)L;
    double *u = s4t_npy3(sc->u[c->n_stages - 1], sc->B, c->H, L);
    float *uf = s4t_falloc(nu, 0.0f);
    s4t_d2f(u, uf, nu);
    free(u);
    return uf;
}

/* ---- golden: every mode vs the reference's float64 step and vs conv mode --------------- */

static void test_golden(void **state)
{
    const step_case *sc = *state;
    const s4t_case *c = sc->c;
    s4_layer_config cfg;
    s4t_layer_config_from_case(sc->config, &cfg);
    float *y_conv = NULL;
    const double t0 = now();
    s4_layer *layer = replayed_layer(sc, &cfg, &y_conv);
    const double t1 = now();
    const int B = sc->B, H = c->H, N = c->N, Fo = s4_layer_output_features(layer);
    const int64_t L = c->stages[c->n_stages - 1].L;
    const size_t ny = (size_t)B * Fo * (size_t)L, nx = (size_t)B * H * (size_t)N;
    float *u = last_u(sc);

    /* The reference's step ignores swap_channels (its known defect): its outputs are those
     * of the same layer flattened (c h). libs4 honours the flag, so its step is checked
     * against its own conv output, and the (c h) twin against the reference. */
    s4_layer *twin = NULL;
    if (cfg.swap_channels) {
        s4_layer_config ct = cfg;
        ct.swap_channels = 0;
        twin = replayed_layer(sc, &ct, NULL);
    }

    double *x_modes[3] = {NULL, NULL, NULL};
    for (int m = 0; m < 3; m++) {
        s4_step *p = NULL;
        const double ta = now();
        s4_status st = s4_step_create(layer, (s4_step_mode)m, B, 1.0, &p);
        const double tb = now();
        if (m == S4_STEP_DIAGONAL && st == S4_ERR_NUMERICAL) {
            print_message("%-28s %-8s refused: %s\n", c->name, MODE_NAME[m], s4_last_error());
            fig.diag_refused++;
            assert_null(p);
            continue;
        }
        if (st != S4_OK)
            fail_msg("%s: s4_step_create(%s): %s: %s", c->name, MODE_NAME[m], s4_status_str(st),
                     s4_last_error());
        void *xs = s4t_state_alloc(p);
        float *y = s4t_falloc(ny, FSENTINEL);
        run_or_fail(p, xs, u, L, y, c->name);
        const double tc = now();
        double *yd = s4t_f2d_alloc(y, ny);
        double *ref = s4t_npy3(sc->step[m], B, Fo, L);
        const double e_conv = s4t_frel(y, y_conv, ny);
        double e_gold;
        if (twin) {
            s4_step *pt = s4t_step_or_fail(twin, (s4_step_mode)m, B, 1.0, "(c h) twin");
            void *xt = s4t_state_alloc(pt);
            float *yt = s4t_falloc(ny, FSENTINEL);
            run_or_fail(pt, xt, u, L, yt, "(c h) twin");
            double *ytd = s4t_f2d_alloc(yt, ny);
            e_gold = s4t_max_rel_err(ytd, ref, ny);
            /* ... and the reference's output is not libs4's swapped output. */
            assert_true(s4t_max_rel_err(yd, ref, ny) > 1e-2);
            free(ytd), free(yt), free(xt);
            s4_step_destroy(pt);
        } else {
            e_gold = s4t_max_rel_err(yd, ref, ny);
        }
        print_message("%-28s %-8s B %d L %5lld: vs ref step %.2e  vs conv %.2e%s  "
                      "(create %.3f s, run %.3f s)\n",
                      c->name, MODE_NAME[m], B, (long long)L, e_gold, e_conv,
                      twin ? " (ref via the (c h) twin)" : "", tb - ta, tc - tb);
        s4t_worst(&fig.gold[m], e_gold);
        s4t_worst(&fig.conv[m], e_conv);
        if (m == S4_STEP_DIAGONAL) {
            fig.diag_accepted++;
            s4t_worst(&fig.diag_worst_accepted, e_gold);
        }
        const double tol = m == S4_STEP_DIAGONAL ? TOL_DIAG : TOL_GOLDEN;
        assert_rel_err(e_gold, tol, "step vs the reference's float64 step");
        assert_rel_err(e_conv, m == S4_STEP_DIAGONAL ? TOL_DIAG : TOL_CONV,
                       "step vs libs4's conv forward");
        x_modes[m] = state_x(p, xs, nx);
        free(yd), free(ref), free(y), free(xs);
        s4_step_destroy(p);
    }
    /* The linear step in float (S4_PRECISION_SINGLE), the reference's own precision: the
     * same bar against the float64 reference. */
    {
        const s4_step_options so = {.rate = 1.0, .threads = 0,
                                    .precision = S4_PRECISION_SINGLE};
        double e_gold = 0.0, e_conv = 0.0;
        for (int k = 0; k < (twin ? 2 : 1); k++) {
            s4_step *p = NULL;
            const s4_status st =
                s4_step_create_with_options(k ? twin : layer, S4_STEP_LINEAR, B, &so, &p);
            if (st != S4_OK)
                fail_msg("%s: s4_step_create(linear, single): %s: %s", c->name,
                         s4_status_str(st), s4_last_error());
            s4_plan_info info;
            assert_int_equal(s4_step_info(p, &info), S4_OK);
            assert_int_equal(info.precision, S4_PRECISION_SINGLE);
            void *xs = s4t_state_alloc(p);
            assert_int_equal(s4_step_state_size(p), (size_t)B * H * N * sizeof(float));
            float *y = s4t_falloc(ny, FSENTINEL);
            run_or_fail(p, xs, u, L, y, c->name);
            double *yd = s4t_f2d_alloc(y, ny);
            double *ref = s4t_npy3(sc->step[S4_STEP_LINEAR], B, Fo, L);
            if (k == 0)
                e_conv = s4t_frel(y, y_conv, ny);
            if (k == (twin ? 1 : 0))
                e_gold = s4t_max_rel_err(yd, ref, ny);
            free(yd), free(ref), free(y), free(xs);
            s4_step_destroy(p);
        }
        print_message("%-28s %-8s B %d L %5lld: vs ref step %.2e  vs conv %.2e\n", c->name,
                      "single", B, (long long)L, e_gold, e_conv);
        s4t_worst(&fig.single_gold, e_gold);
        s4t_worst(&fig.single_conv, e_conv);
        assert_rel_err(e_gold, TOL_GOLDEN, "single-precision step vs the reference's step");
        assert_rel_err(e_conv, TOL_CONV, "single-precision step vs libs4's conv forward");
    }

    /* Every mode ends in the same state (reference form). */
    for (int m = 1; m < 3; m++)
        if (x_modes[m]) {
            const double e = s4t_max_rel_err(x_modes[m], x_modes[0], nx);
            s4t_worst(&fig.state_modes, e);
            assert_rel_err(e, m == S4_STEP_DIAGONAL ? TOL_DIAG : TOL_STATE,
                           "final state vs dense mode's");
        }
    print_message("%-28s replay (forward stages) %.3f s\n", c->name, t1 - t0);
    for (int m = 0; m < 3; m++)
        free(x_modes[m]);
    free(u), free(y_conv);
    s4_layer_destroy(twin);
    s4_layer_destroy(layer);
}

/* ---- the same from the stored C-tilde (params_after_f64, l_kernel > 0) ---------------- */

static void test_params_after(void **state)
{
    const step_case *sc = *state;
    const s4t_case *c = sc->c;
    s4_layer_config cfg;
    s4t_layer_config_from_case(sc->config, &cfg);
    const s4t_stage *last = &c->stages[c->n_stages - 1];
    s4_layer *after = s4t_layer_from_params(&cfg, last->params_after_f64);
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(after)), last->l_kernel_after);
    s4_layer *replayed = replayed_layer(sc, &cfg, NULL);
    const int B = sc->B, Fo = s4_layer_output_features(after);
    const int64_t L = last->L;
    const size_t ny = (size_t)B * Fo * (size_t)L;
    float *u = last_u(sc);
    for (int m = 0; m < 2; m++) {
        s4_step *pa = s4t_step_or_fail(after, (s4_step_mode)m, B, 1.0, "params_after");
        s4_step *pr = s4t_step_or_fail(replayed, (s4_step_mode)m, B, 1.0, "replayed");
        void *xa = s4t_state_alloc(pa), *xr = s4t_state_alloc(pr);
        float *ya = s4t_falloc(ny, FSENTINEL), *yr = s4t_falloc(ny, FSENTINEL);
        run_or_fail(pa, xa, u, L, ya, "params_after");
        run_or_fail(pr, xr, u, L, yr, "replayed");
        double *ref = s4t_npy3(sc->step[m], B, Fo, L);
        double *yd = s4t_f2d_alloc(ya, ny);
        const double e_gold = s4t_max_rel_err(yd, ref, ny), e_same = s4t_frel(ya, yr, ny);
        print_message("%-28s %-8s from params_after_f64 (l_kernel %lld): vs ref %.2e, "
                      "vs replayed layer %.2e\n",
                      c->name, MODE_NAME[m], (long long)last->l_kernel_after, e_gold, e_same);
        s4t_worst(&fig.after_gold, e_gold);
        assert_rel_err(e_gold, TOL_GOLDEN, "params_after step vs the reference");
        assert_rel_err(e_same, TOL_SAME, "params_after step vs the replayed layer's");
        free(ref), free(yd), free(ya), free(yr), free(xa), free(xr);
        s4_step_destroy(pa);
        s4_step_destroy(pr);
    }
    free(u);
    s4_layer_destroy(after);
    s4_layer_destroy(replayed);
}

/* ---- streaming: chunks vs whole vs conv, carried state vs step mode ------------------- */

/* Runs u [B x H x L] (transposed layers; [B x L x H] otherwise) through `plan` in chunks of
 * the given sizes (cycled), from zero state; y in the same layout; x the final state. */
static void stream_chunks(const s4_stream *plan, int transposed, int B, int H, int Fo,
                          int64_t L, const float *u, const int64_t *sizes, int nsizes, float *y,
                          double *x, size_t nx)
{
    memset(x, 0, nx * sizeof *x);
    int64_t cmax = 1;
    for (int i = 0; i < nsizes; i++)
        if (sizes[i] > cmax)
            cmax = sizes[i];
    float *uc = s4t_falloc((size_t)B * H * (size_t)cmax, 0.0f);
    float *yc = s4t_falloc((size_t)B * Fo * (size_t)cmax, 0.0f);
    int64_t t0 = 0;
    for (int i = 0; t0 < L; i = (i + 1) % nsizes) {
        const int64_t T = sizes[i] < L - t0 ? sizes[i] : L - t0;
        for (int b = 0; b < B; b++) {
            if (transposed)
                for (int h = 0; h < H; h++)
                    memcpy(uc + ((size_t)b * H + h) * (size_t)T,
                           u + ((size_t)b * H + h) * (size_t)L + (size_t)t0, (size_t)T * 4);
            else
                memcpy(uc + (size_t)b * (size_t)T * H, u + ((size_t)b * L + t0) * (size_t)H,
                       (size_t)T * H * 4);
        }
        s4_status st = s4_stream_execute(plan, x, uc, T, yc, NULL, 0);
        if (st != S4_OK)
            fail_msg("s4_stream_execute(T = %lld): %s: %s", (long long)T, s4_status_str(st),
                     s4_last_error());
        for (int b = 0; b < B; b++) {
            if (transposed)
                for (int o = 0; o < Fo; o++)
                    memcpy(y + ((size_t)b * Fo + o) * (size_t)L + (size_t)t0,
                           yc + ((size_t)b * Fo + o) * (size_t)T, (size_t)T * 4);
            else
                memcpy(y + ((size_t)b * L + t0) * (size_t)Fo, yc + (size_t)b * (size_t)T * Fo,
                       (size_t)T * Fo * 4);
        }
        t0 += T;
    }
    free(uc), free(yc);
}

static void test_stream(void **state)
{
    const step_case *sc = *state;
    const s4t_case *c = sc->c;
    s4_layer_config cfg;
    s4t_layer_config_from_case(sc->config, &cfg);
    float *y_conv = NULL;
    s4_layer *layer = replayed_layer(sc, &cfg, &y_conv);
    const int B = sc->B, H = c->H, Fo = s4_layer_output_features(layer);
    const int64_t L = c->stages[c->n_stages - 1].L;
    const size_t ny = (size_t)B * Fo * (size_t)L, nx = (size_t)B * H * (size_t)c->N;
    const int64_t lk = s4_ssm_l_kernel(s4_layer_ssm(layer));
    float *u = last_u(sc);

    /* One whole chunk. */
    double t0 = now();
    s4_stream *whole = stream_or_fail(layer, B, L, 1.0, c->name);
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), lk); /* already long enough */
    float *yw = s4t_falloc(ny, FSENTINEL);
    double *xw = s4t_dalloc(nx, 0.0);
    const int64_t all[1] = {L};
    stream_chunks(whole, 1, B, H, Fo, L, u, all, 1, yw, xw, nx);
    const double t_whole = now() - t0;
    const double e_conv = s4t_frel(yw, y_conv, ny);
    s4t_worst(&fig.whole_conv, e_conv);
    assert_rel_err(e_conv, TOL_CHUNK, "stream (one chunk) vs conv forward");

    /* Step mode (linear) on the same input ends in the same state. */
    s4_step *sp = s4t_step_or_fail(layer, S4_STEP_LINEAR, B, 1.0, c->name);
    void *ss = s4t_state_alloc(sp);
    float *ys = s4t_falloc(ny, FSENTINEL);
    run_or_fail(sp, ss, u, L, ys, c->name);
    double *xs = state_x(sp, ss, nx);
    const double e_state = s4t_max_rel_err(xw, xs, nx);
    s4t_worst(&fig.state_stream, e_state);
    assert_rel_err(e_state, TOL_STATE, "stream state vs step state");
    assert_rel_err(s4t_frel(yw, ys, ny), TOL_CONV, "stream vs step outputs");

    /* Chunk sizes 1, 7, 64, 1000 and a seeded random mix. */
    const int64_t fixed[4] = {1, 7, 64, 1000};
    double e_chunk = 0.0, e_cstate = 0.0;
    float *yc = s4t_falloc(ny, FSENTINEL);
    double *xc = s4t_dalloc(nx, 0.0);
    t0 = now();
    for (int k = 0; k < 5; k++) {
        int64_t sizes[16];
        int ns = 1;
        if (k < 4) {
            sizes[0] = fixed[k] < L ? fixed[k] : L;
        } else {
            ns = 16;
            s4t_urand_seed(1234567u + (uint64_t)L);
            for (int i = 0; i < ns; i++)
                sizes[i] = 1 + (int64_t)((s4t_urand() + 1.0) * 0.5 * (double)(L < 300 ? L : 300));
            for (int i = 0; i < ns; i++)
                if (sizes[i] > L)
                    sizes[i] = L;
        }
        int64_t cmax = 1;
        for (int i = 0; i < ns; i++)
            cmax = sizes[i] > cmax ? sizes[i] : cmax;
        s4_stream *p = stream_or_fail(layer, B, cmax, 1.0, c->name);
        stream_chunks(p, 1, B, H, Fo, L, u, sizes, ns, yc, xc, nx);
        const double e = s4t_frel(yc, yw, ny), es = s4t_max_rel_err(xc, xw, nx);
        if (e > e_chunk || isnan(e))
            e_chunk = e;
        if (es > e_cstate || isnan(es))
            e_cstate = es;
        if (!(e <= TOL_CHUNK) || !(es <= TOL_STATE))
            fail_msg("%s: chunks of %lld%s: outputs %.3e (bound %.0e), state %.3e (bound %.0e)",
                     c->name, (long long)sizes[0], ns > 1 ? " (mix)" : "", e, TOL_CHUNK, es,
                     TOL_STATE);
        s4_stream_destroy(p);
    }
    const double t_chunks = now() - t0;
    s4t_worst(&fig.chunk, e_chunk);
    s4t_worst(&fig.state_stream, e_cstate);
    print_message("%-28s stream: whole vs conv %.2e, state vs step %.2e; chunks vs whole %.2e, "
                  "state %.2e  (whole %.3f s, 5 chunkings %.3f s)\n",
                  c->name, e_conv, e_state, e_chunk, e_cstate, t_whole, t_chunks);

    /* The (B, L, H) layout gives the transposed arrays, and the same state. */
    s4_layer_config ct = cfg;
    ct.transposed = 0;
    s4_layer *lt = replayed_layer(sc, &ct, NULL);
    s4_stream *pt = stream_or_fail(lt, B, 7 < L ? 7 : L, 1.0, "transposed = 0");
    float *ut = s4t_transpose_batch(u, (size_t)B, (size_t)H, (size_t)L);
    float *yt = s4t_falloc(ny, FSENTINEL);
    const int64_t seven[1] = {7};
    stream_chunks(pt, 0, B, H, Fo, L, ut, seven, 1, yt, xc, nx);
    float *yt2 = s4t_transpose_batch(yt, (size_t)B, (size_t)L, (size_t)Fo);
    assert_rel_err(s4t_frel(yt2, yw, ny), TOL_CHUNK, "stream (B, L, H) vs (B, H, L)");
    assert_rel_err(s4t_max_rel_err(xc, xw, nx), TOL_STATE, "stream (B, L, H) state");
    free(ut), free(yt), free(yt2);
    s4_stream_destroy(pt);
    s4_layer_destroy(lt);

    free(u), free(y_conv), free(yw), free(xw), free(ys), free(xs), free(ss), free(yc), free(xc);
    s4_step_destroy(sp);
    s4_stream_destroy(whole);
    s4_layer_destroy(layer);
}

/* ---- layers built here ------------------------------------------------------------------- */

static s4_layer *make_layer(s4_init init, int H, int N, int rank, s4_activation act,
                            s4_final_act fin, int channels, int swap, int transposed,
                            uint64_t seed)
{
    s4_layer_config cfg;
    s4_layer_config_default(&cfg);
    cfg.ssm.H = H;
    cfg.ssm.N = N;
    cfg.ssm.rank = rank;
    cfg.ssm.init = init;
    cfg.ssm.seed = seed;
    cfg.activation = act;
    cfg.final_act = fin;
    cfg.channels = channels;
    cfg.swap_channels = swap;
    cfg.transposed = transposed;
    s4_layer *layer = NULL;
    s4_status st = s4_layer_create(&cfg, &layer);
    if (st != S4_OK)
        fail_msg("s4_layer_create: %s: %s", s4_status_str(st), s4_last_error());
    return layer;
}

/* Runs mode on u [B x H x T] from zero state; returns y (pre-activation when the layer has
 * identity activation and no output linear). */
static float *run_mode_prec(const s4_layer *layer, s4_step_mode m, int B, double rate,
                            s4_precision prec, const float *u, int64_t T, double **x_out)
{
    const s4_step_options so = {.rate = rate, .threads = 0, .precision = prec};
    s4_step *p = NULL;
    const s4_status st = s4_step_create_with_options(layer, m, B, &so, &p);
    if (st != S4_OK)
        fail_msg("run_mode: s4_step_create: %s: %s", s4_status_str(st), s4_last_error());
    void *xs = s4t_state_alloc(p);
    const size_t ny = (size_t)B * (size_t)s4_layer_output_features(layer) * (size_t)T;
    float *y = s4t_falloc(ny, FSENTINEL);
    run_or_fail(p, xs, u, T, y, "run_mode");
    if (x_out) {
        s4_layer_config cfg;
        assert_int_equal(s4_layer_get_config(layer, &cfg), S4_OK);
        *x_out = state_x(p, xs, (size_t)B * (size_t)cfg.ssm.H * (size_t)cfg.ssm.N);
    }
    free(xs);
    s4_step_destroy(p);
    return y;
}

static float *run_mode(const s4_layer *layer, s4_step_mode m, int B, double rate,
                       const float *u, int64_t T, double **x_out)
{
    return run_mode_prec(layer, m, B, rate, S4_PRECISION_DOUBLE, u, T, x_out);
}

/* ---- the diagonal mode: refused where the eigenbasis fails, exact where it holds ------- */

static void test_diagonal(void **state)
{
    (void)state;
    /* Refused: a fresh LegS (exact HiPPO, real eigenvalues with a famously ill-conditioned
     * eigenbasis) of N = 32 loses every digit even in double; so does LagT at N = 16, and
     * LegS at N = 256. */
    const struct { s4_init init; int N, rank; } bad[] = {
        {S4_INIT_LEGS, 32, 1}, {S4_INIT_LAGT, 16, 1}, {S4_INIT_LEGT, 64, 2},
        {S4_INIT_LEGS, 256, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s4_layer *layer = make_layer(bad[i].init, 2, bad[i].N, bad[i].rank, S4_ACT_GELU,
                                     S4_FINAL_GLU, 1, 0, 1, 7);
        s4_step *const SENT = (s4_step *)(uintptr_t)0x5eed;
        s4_step *p = SENT;
        assert_fails(S4_ERR_NUMERICAL, s4_step_create(layer, S4_STEP_DIAGONAL, 1, 1.0, &p));
        assert_ptr_equal(p, SENT);
        assert_non_null(strstr(s4_last_error(), "refused"));
        print_message("diagonal refused (init %d, N = %d): %s\n", (int)bad[i].init, bad[i].N,
                      s4_last_error());
        /* The other modes are fine on the same layer. */
        s4_step *q = s4t_step_or_fail(layer, S4_STEP_LINEAR, 1, 1.0, "linear next to refused");
        s4_step_destroy(q);
        s4_layer_destroy(layer);
    }

    /* Accepted and accurate: FouT (near-normal, kappa ~ 1e2) at N = 64, and a borderline
     * LegS N = 16 (accepted at ~3e-4): diagonal vs dense on a random input, pre-activation
     * outputs (identity activation, no output linear). */
    const struct { s4_init init; int N; double tol; } good[] = {
        {S4_INIT_FOUT, 64, 1e-6}, {S4_INIT_LEGS, 16, TOL_DIAG}, {S4_INIT_LEGS, 8, 1e-6}};
    const int64_t T = 3000;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        s4_layer *layer = make_layer(good[i].init, 3, good[i].N, 1, S4_ACT_IDENTITY,
                                     S4_FINAL_NONE, 2, 0, 1, 11);
        s4t_urand_seed(99);
        float *u = frand((size_t)2 * 3 * (size_t)T);
        double *xd = NULL, *xg = NULL;
        float *yd = run_mode(layer, S4_STEP_DENSE, 2, 1.0, u, T, &xd);
        float *yg = run_mode(layer, S4_STEP_DIAGONAL, 2, 1.0, u, T, &xg);
        const size_t ny = (size_t)2 * 6 * (size_t)T, nx = (size_t)2 * 3 * (size_t)good[i].N;
        const double e = s4t_frel(yg, yd, ny), es = s4t_max_rel_err(xg, xd, nx);
        print_message("diagonal accepted (init %d, N = %d): vs dense %.2e, state %.2e\n",
                      (int)good[i].init, good[i].N, e, es);
        assert_rel_err(e, good[i].tol, "diagonal vs dense outputs");
        assert_rel_err(es, good[i].tol, "diagonal vs dense state");
        free(u), free(yd), free(yg), free(xd), free(xg);
        s4_layer_destroy(layer);
    }

    /* The borderline: fresh LegS N = 16 layers sit near the bound (eigenbasis error ~3e-4
     * predicted, up to ~1e-3 measured). Whichever way each seed falls, the verdict must be
     * honest: accepted ones within the bound of dense on a random input, refused ones with
     * the figures. (On the reference machine a refusal by the measured impulse response
     * -- predicted below, measured above the bound -- occurs among these seeds.) */
    int accepted = 0, refused = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
        s4_layer *layer =
            make_layer(S4_INIT_LEGS, 2, 16, 1, S4_ACT_IDENTITY, S4_FINAL_NONE, 1, 0, 1, seed);
        s4_step *p = NULL;
        const s4_status st = s4_step_create(layer, S4_STEP_DIAGONAL, 1, 1.0, &p);
        if (st == S4_OK) {
            accepted++;
            s4_step_destroy(p);
            s4t_urand_seed(seed);
            float *u = frand((size_t)2 * 1000);
            float *yd = run_mode(layer, S4_STEP_DENSE, 1, 1.0, u, 1000, NULL);
            float *yg = run_mode(layer, S4_STEP_DIAGONAL, 1, 1.0, u, 1000, NULL);
            assert_rel_err(s4t_frel(yg, yd, (size_t)2 * 1000), TOL_DIAG,
                           "accepted borderline diagonal vs dense");
            free(u), free(yd), free(yg);
        } else {
            refused++;
            assert_int_equal(st, S4_ERR_NUMERICAL);
            assert_null(p);
            assert_non_null(strstr(s4_last_error(), "refused"));
            print_message("LegS N = 16 seed %llu: %s\n", (unsigned long long)seed,
                          s4_last_error());
        }
        s4_layer_destroy(layer);
    }
    print_message("LegS N = 16, 8 seeds: diagonal accepted %d, refused %d\n", accepted, refused);
}

/* ---- swap_channels: libs4's step matches its own conv on a fresh layer ---------------- */

static void test_swap(void **state)
{
    (void)state;
    const int B = 2, H = 3;
    const int64_t L = 40;
    for (int swap = 0; swap < 2; swap++) {
        s4_layer *layer =
            make_layer(S4_INIT_LEGS, H, 16, 1, S4_ACT_GELU, S4_FINAL_GLU, 3, swap, 1, 21);
        s4t_urand_seed(5);
        float *u = frand((size_t)B * H * (size_t)L);
        const size_t ny = (size_t)B * H * (size_t)L;
        s4_forward *f = forward_or_fail(layer, B, L, "swap");
        float *yc = s4t_falloc(ny, FSENTINEL);
        assert_int_equal(s4_forward_execute(f, u, yc, NULL, NULL, 0), S4_OK);
        for (int m = 0; m < 2; m++) {
            float *ys = run_mode(layer, (s4_step_mode)m, B, 1.0, u, L, NULL);
            assert_rel_err(s4t_frel(ys, yc, ny), TOL_CONV, "step vs conv (swap_channels)");
            free(ys);
        }
        free(u), free(yc);
        s4_forward_destroy(f);
        s4_layer_destroy(layer);
    }
}

/* ---- the linear mode's SIMD variants and its fused form ---------------------------------- */

/* The linear kernel is compiled per instruction set and chosen at create (s4__cpu_set_isa
 * forces one; an ISA the CPU lacks falls back to the widest it runs). Every variant must
 * follow the portable one, and the fused linear form the dense recurrence, over rank 1 and
 * 2, one and several channels, N/2 a multiple of the 8 lanes or not (tails), batches that
 * fill groups of four or leave a remainder, both layouts. */
static void test_linear_variants(void **state)
{
    (void)state;
    static const struct {
        s4_init init;
        int H, N, rank, channels, swap, transposed, B;
        int64_t T;
    } cases[] = {
        {S4_INIT_LEGS, 3, 64, 1, 1, 0, 1, 6, 60},  /* the fast path, groups of 4 + 2 */
        {S4_INIT_LEGT, 4, 22, 2, 2, 1, 0, 5, 45},  /* rank 2, channels, tail of 3 */
        {S4_INIT_FOUT, 2, 2, 1, 1, 0, 1, 9, 30},   /* N/2 = 1: all tail */
        {S4_INIT_LAGT, 5, 48, 3, 1, 0, 0, 4, 40},  /* rank 3 (padded), one group */
    };
    const s4_isa prev = s4__cpu_isa();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s4_layer *layer = make_layer(cases[i].init, cases[i].H, cases[i].N, cases[i].rank,
                                     S4_ACT_GELU, S4_FINAL_GLU, cases[i].channels,
                                     cases[i].swap, cases[i].transposed, 40 + (uint64_t)i);
        const int B = cases[i].B;
        const int64_t T = cases[i].T;
        s4t_urand_seed(300 + i);
        float *u = frand((size_t)B * (size_t)cases[i].H * (size_t)T);
        const size_t ny = (size_t)B * (size_t)s4_layer_output_features(layer) * (size_t)T;
        const size_t nx = (size_t)B * (size_t)cases[i].H * (size_t)cases[i].N;
        double *xd = NULL;
        float *yd = run_mode(layer, S4_STEP_DENSE, B, 1.0, u, T, &xd);
        double *x0 = NULL;
        float *y0 = NULL;
        for (int v = 0; v < 3; v++) {
            s4__cpu_set_isa((s4_isa)v);
            double *x = NULL;
            float *y = run_mode(layer, S4_STEP_LINEAR, B, 1.0, u, T, &x);
            const double ey = s4t_frel(y, yd, ny), ex = s4t_max_rel_err(x, xd, nx);
            print_message("linear %-8s N = %3d rank %d C' %d B %d: vs dense outputs %.2e, "
                          "state %.2e\n",
                          s4__cpu_isa_name(s4__cpu_isa()), cases[i].N, cases[i].rank, cases[i].channels, B, ey, ex);
            assert_rel_err(ey, TOL_SAME, "linear vs dense outputs");
            assert_rel_err(ex, TOL_STATE, "linear vs dense state");
            if (v == 0) {
                x0 = x, y0 = y;
                continue;
            }
            assert_rel_err(s4t_frel(y, y0, ny), TOL_SAME, "variant vs portable outputs");
            assert_rel_err(s4t_max_rel_err(x, x0, nx), 1e-12, "variant vs portable state");
            free(x), free(y);
        }
        /* The float kernels (S4_PRECISION_SINGLE), other vector widths and paddings: each
         * ISA against the dense double recurrence and against the portable float one. */
        for (int v = 0; v < 3; v++) {
            s4__cpu_set_isa((s4_isa)v);
            double *x = NULL;
            float *y = run_mode_prec(layer, S4_STEP_LINEAR, B, 1.0, S4_PRECISION_SINGLE, u, T,
                                     &x);
            const double ey = s4t_frel(y, yd, ny), ex = s4t_max_rel_err(x, xd, nx);
            print_message("single %-8s N = %3d rank %d C' %d B %d: vs dense outputs %.2e, "
                          "state %.2e\n",
                          s4__cpu_isa_name(s4__cpu_isa()), cases[i].N, cases[i].rank,
                          cases[i].channels, B, ey, ex);
            assert_rel_err(ey, TOL_SINGLE_STATE, "single-precision linear vs dense outputs");
            assert_rel_err(ex, TOL_SINGLE_STATE, "single-precision linear vs dense state");
            if (v == 0) {
                free(x0), free(y0);
                x0 = x, y0 = y;
                continue;
            }
            assert_rel_err(s4t_frel(y, y0, ny), TOL_SAME, "single variant vs portable outputs");
            assert_rel_err(s4t_max_rel_err(x, x0, nx), TOL_SAME,
                           "single variant vs portable state");
            free(x), free(y);
        }
        free(x0), free(y0), free(xd), free(yd), free(u);
        s4_layer_destroy(layer);
    }
    s4__cpu_set_isa(prev);
}

/* ---- state conversion across modes and into the stream ------------------------------- */

static void test_state_roundtrip(void **state)
{
    (void)state;
    const int B = 2, H = 3, N = 16;
    const int64_t T1 = 50, T2 = 70;
    s4_layer *layer = make_layer(S4_INIT_FOUT, H, N, 1, S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 1, 3);
    s4t_urand_seed(17);
    float *u1 = frand((size_t)B * H * (size_t)T1), *u2 = frand((size_t)B * H * (size_t)T2);
    const size_t nx = (size_t)B * H * N, ny2 = (size_t)B * H * (size_t)T2;

    /* Reference: dense for T1 + T2 steps. */
    s4_step *pd = s4t_step_or_fail(layer, S4_STEP_DENSE, B, 1.0, "dense");
    void *sd = s4t_state_alloc(pd);
    float *yd1 = s4t_falloc((size_t)B * H * (size_t)T1, 0.0f), *yd2 = s4t_falloc(ny2, 0.0f);
    run_or_fail(pd, sd, u1, T1, yd1, "dense part 1");
    double *x_mid = state_x(pd, sd, nx);
    run_or_fail(pd, sd, u2, T2, yd2, "dense part 2");
    double *x_end = state_x(pd, sd, nx);

    /* get from dense, set into each mode (and the stream), continue: same outputs/state. */
    for (int m = 0; m < 3; m++) {
        s4_step *p = s4t_step_or_fail(layer, (s4_step_mode)m, B, 1.0, "roundtrip");
        void *s = s4t_state_alloc(p);
        assert_int_equal(s4_step_state_set(p, s, x_mid), S4_OK);
        double *back = state_x(p, s, nx);
        assert_rel_err(s4t_max_rel_err(back, x_mid, nx), 1e-12, "state set/get round trip");
        float *y = s4t_falloc(ny2, FSENTINEL);
        run_or_fail(p, s, u2, T2, y, "roundtrip continue");
        double *xe = state_x(p, s, nx);
        print_message("dense -> %-8s continue: outputs %.2e, state %.2e\n", MODE_NAME[m],
                      s4t_frel(y, yd2, ny2), s4t_max_rel_err(xe, x_end, nx));
        assert_rel_err(s4t_frel(y, yd2, ny2), TOL_SAME, "continued outputs");
        assert_rel_err(s4t_max_rel_err(xe, x_end, nx), TOL_STATE, "continued state");
        free(back), free(y), free(xe), free(s);
        s4_step_destroy(p);
    }
    s4_stream *st = stream_or_fail(layer, B, 32, 1.0, "roundtrip stream");
    double *xs = s4t_dalloc(nx, 0.0);
    memcpy(xs, x_mid, nx * sizeof *xs);
    float *y = s4t_falloc(ny2, FSENTINEL);
    /* stream_chunks starts from zero; run by hand from x_mid in chunks of 32. */
    float *uc = s4t_falloc((size_t)B * H * 32, 0.0f), *yc = s4t_falloc((size_t)B * H * 32, 0.0f);
    for (int64_t t0 = 0; t0 < T2; t0 += 32) {
        const int64_t T = T2 - t0 < 32 ? T2 - t0 : 32;
        for (int bh = 0; bh < B * H; bh++)
            memcpy(uc + (size_t)bh * (size_t)T, u2 + (size_t)bh * (size_t)T2 + (size_t)t0,
                   (size_t)T * 4);
        assert_int_equal(s4_stream_execute(st, xs, uc, T, yc, NULL, 0), S4_OK);
        for (int bh = 0; bh < B * H; bh++)
            memcpy(y + (size_t)bh * (size_t)T2 + (size_t)t0, yc + (size_t)bh * (size_t)T,
                   (size_t)T * 4);
    }
    print_message("dense -> stream   continue: outputs %.2e, state %.2e\n", s4t_frel(y, yd2, ny2),
                  s4t_max_rel_err(xs, x_end, nx));
    assert_rel_err(s4t_frel(y, yd2, ny2), TOL_CHUNK, "stream continued from a step state");
    assert_rel_err(s4t_max_rel_err(xs, x_end, nx), TOL_STATE, "stream state from a step state");
    free(uc), free(yc), free(y), free(xs);
    s4_stream_destroy(st);
    free(u1), free(u2), free(yd1), free(yd2), free(x_mid), free(x_end), free(sd);
    s4_step_destroy(pd);
    s4_layer_destroy(layer);
}

/* ---- rate: dt scaled; step modes, stream chunks and stream whole agree -------------------- */

static void test_rate(void **state)
{
    (void)state;
    const int B = 2, H = 3, N = 16;
    const int64_t L = 200;
    const double rates[] = {0.5, 2.0, 1.0 / 3.0};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        s4_layer *layer =
            make_layer(S4_INIT_LEGS, H, N, 1, S4_ACT_IDENTITY, S4_FINAL_NONE, 1, 0, 1, 31);
        /* A C-tilde, so the raw C is recovered (at the trained dt). */
        s4_forward *f = forward_or_fail(layer, 1, 64, "rate setup");
        s4_forward_destroy(f);
        s4t_urand_seed(77);
        float *u = frand((size_t)B * H * (size_t)L);
        const size_t ny = (size_t)B * H * (size_t)L, nx = (size_t)B * H * N;
        double *xd = NULL, *xl = NULL;
        float *yd = run_mode(layer, S4_STEP_DENSE, B, rates[i], u, L, &xd);
        float *yl = run_mode(layer, S4_STEP_LINEAR, B, rates[i], u, L, &xl);
        assert_rel_err(s4t_frel(yl, yd, ny), TOL_SAME, "linear vs dense at rate");
        assert_rel_err(s4t_max_rel_err(xl, xd, nx), TOL_STATE, "linear vs dense state at rate");
        /* rate really changes the system */
        float *y1 = run_mode(layer, S4_STEP_DENSE, B, 1.0, u, L, NULL);
        assert_true(s4t_frel(y1, yd, ny) > 1e-3);
        s4_stream *w = stream_or_fail(layer, B, L, rates[i], "rate whole");
        s4_stream *c = stream_or_fail(layer, B, 13, rates[i], "rate chunks");
        float *yw = s4t_falloc(ny, FSENTINEL), *yc = s4t_falloc(ny, FSENTINEL);
        double *xw = s4t_dalloc(nx, 0.0), *xc = s4t_dalloc(nx, 0.0);
        const int64_t all[1] = {L}, thirteen[1] = {13};
        stream_chunks(w, 1, B, H, H, L, u, all, 1, yw, xw, nx);
        stream_chunks(c, 1, B, H, H, L, u, thirteen, 1, yc, xc, nx);
        print_message("rate %.3f: linear vs dense %.2e; stream whole vs step %.2e, chunks vs "
                      "whole %.2e, state %.2e\n",
                      rates[i], s4t_frel(yl, yd, ny), s4t_frel(yw, yd, ny), s4t_frel(yc, yw, ny),
                      s4t_max_rel_err(xc, xd, nx));
        assert_rel_err(s4t_frel(yw, yd, ny), TOL_CONV, "stream vs step at rate");
        assert_rel_err(s4t_frel(yc, yw, ny), TOL_CHUNK, "stream chunks vs whole at rate");
        assert_rel_err(s4t_max_rel_err(xw, xd, nx), TOL_STATE, "stream state at rate");
        assert_rel_err(s4t_max_rel_err(xc, xd, nx), TOL_STATE, "stream chunk state at rate");
        free(u), free(yd), free(yl), free(xd), free(xl), free(y1), free(yw), free(yc);
        free(xw), free(xc);
        s4_stream_destroy(w);
        s4_stream_destroy(c);
        s4_layer_destroy(layer);
    }
}

/* ---- batches beyond one block, layouts, execute == run, caller workspace ----------------- */

static void test_batch_layout_workspace(void **state)
{
    (void)state;
    const int B = 300, H = 2, N = 8; /* B > 256 columns: two batch blocks per step */
    const int64_t T = 9;
    s4_layer *layer = make_layer(S4_INIT_LEGS, H, N, 1, S4_ACT_GELU, S4_FINAL_GLU, 2, 1, 1, 41);
    s4_layer *layer_t =
        make_layer(S4_INIT_LEGS, H, N, 1, S4_ACT_GELU, S4_FINAL_GLU, 2, 1, 0, 41);
    s4t_urand_seed(3);
    float *u = frand((size_t)B * H * (size_t)T);
    const size_t ny = (size_t)B * H * (size_t)T;
    for (int m = 0; m < 3; m++) {
        float *y = run_mode(layer, (s4_step_mode)m, B, 1.0, u, T, NULL);
        /* Each sequence alone. */
        s4_step *p1 = s4t_step_or_fail(layer, (s4_step_mode)m, 1, 1.0, "B = 1");
        void *s1 = s4t_state_alloc(p1);
        float *y1 = s4t_falloc((size_t)H * (size_t)T, FSENTINEL);
        for (int b = 0; b < B; b += 37) {
            assert_int_equal(s4_step_state_reset(p1, s1), S4_OK);
            run_or_fail(p1, s1, u + (size_t)b * H * (size_t)T, T, y1, "B = 1");
            assert_rel_err(s4t_frel(y1, y + (size_t)b * H * (size_t)T, (size_t)H * (size_t)T),
                           TOL_SAME, "batch element vs alone");
        }
        /* (B, L, H) layout: transposed arrays. */
        float *ut = s4t_transpose_batch(u, (size_t)B, (size_t)H, (size_t)T);
        float *yt = run_mode(layer_t, (s4_step_mode)m, B, 1.0, ut, T, NULL);
        float *yt2 = s4t_transpose_batch(yt, (size_t)B, (size_t)T, (size_t)H);
        assert_rel_err(s4t_frel(yt2, y, ny), TOL_SAME, "(B, L, H) step layout");
        /* T executes == one run; with a caller workspace at an odd address. */
        s4_step *p = s4t_step_or_fail(layer, (s4_step_mode)m, B, 1.0, "execute");
        void *s = s4t_state_alloc(p);
        const size_t ws = s4_step_workspace_size(p);
        assert_true(ws > 0);
        unsigned char *work = malloc(ws + 1);
        float *ub = s4t_falloc((size_t)B * H, 0.0f), *yb = s4t_falloc((size_t)B * H, FSENTINEL);
        float *ye = s4t_falloc(ny, FSENTINEL);
        for (int64_t t = 0; t < T; t++) {
            for (int bh = 0; bh < B * H; bh++)
                ub[bh] = u[(size_t)bh * (size_t)T + (size_t)t];
            assert_int_equal(s4_step_execute(p, s, ub, yb, work + 1, ws), S4_OK);
            for (int bh = 0; bh < B * H; bh++)
                ye[(size_t)bh * (size_t)T + (size_t)t] = yb[bh];
        }
        assert_rel_err(s4t_frel(ye, y, ny), TOL_SAME, "T executes vs one run");
        free(work), free(ub), free(yb), free(ye), free(s), free(ut), free(yt), free(yt2);
        free(y), free(y1), free(s1);
        s4_step_destroy(p);
        s4_step_destroy(p1);
    }
    free(u);
    s4_layer_destroy(layer);
    s4_layer_destroy(layer_t);
}

static void test_stream_workspace(void **state)
{
    (void)state;
    const int B = 2, H = 3;
    s4_layer *layer = make_layer(S4_INIT_LEGS, H, 16, 1, S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 1, 8);
    s4_stream *p = stream_or_fail(layer, B, 20, 1.0, "stream workspace");
    const size_t ws = s4_stream_workspace_size(p), nx = (size_t)B * H * 16;
    assert_true(ws > 0);
    s4t_urand_seed(4);
    float *u = frand((size_t)B * H * 20);
    float *y1 = s4t_falloc((size_t)B * H * 20, FSENTINEL), *y2 = s4t_falloc((size_t)B * H * 20, FSENTINEL);
    double *x1 = s4t_dalloc(nx, 0.0), *x2 = s4t_dalloc(nx, 0.0);
    unsigned char *work = malloc(ws + 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(s4_stream_execute(p, x1, u, 20 - k, y1, NULL, 0), S4_OK);
        assert_int_equal(s4_stream_execute(p, x2, u, 20 - k, y2, work + 3, ws), S4_OK);
    }
    assert_memory_equal(y1, y2, (size_t)B * H * 18 * sizeof *y1);
    assert_memory_equal(x1, x2, nx * sizeof *x1);
    free(u), free(y1), free(y2), free(x1), free(x2), free(work);
    s4_stream_destroy(p);
    s4_layer_destroy(layer);
}

/* ---- the stream's side effect on the layer, and l_max ------------------------------------ */

static s4_layer *lmax_layer(int64_t l_max, uint64_t seed)
{
    s4_layer_config cfg;
    s4_layer_config_default(&cfg);
    cfg.ssm.H = 2;
    cfg.ssm.N = 8;
    cfg.ssm.seed = seed;
    cfg.l_max = l_max;
    s4_layer *layer = NULL;
    assert_int_equal(s4_layer_create(&cfg, &layer), S4_OK);
    return layer;
}

static void test_stream_lengths(void **state)
{
    (void)state;
    /* s4_stream_create(max_chunk) leaves the layer's C-tilde exactly as
     * s4_forward_create(L = max_chunk) would, including l_max < max_chunk and rate. */
    const int64_t lmaxes[] = {0, 16, 100}, chunks[] = {10, 50, 200};
    const double rates[] = {1.0, 0.5, 2.0};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t r = 0; r < 3; r++) {
                s4_layer *ls = lmax_layer(lmaxes[a], 5), *lf = lmax_layer(lmaxes[a], 5);
                const s4_forward_options o = {.rate = rates[r]};
                s4_stream *sp = NULL;
                s4_forward *fp = NULL;
                assert_int_equal(s4_stream_create(ls, 1, chunks[b], &o, &sp), S4_OK);
                assert_int_equal(s4_forward_create(lf, 1, chunks[b], &o, &fp), S4_OK);
                assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(ls)),
                                 s4_ssm_l_kernel(s4_layer_ssm(lf)));
                size_t nC = 0;
                double *Cs = s4t_get_param(s4_layer_ssm(ls), S4_PARAM_C, &nC);
                double *Cf = s4t_get_param(s4_layer_ssm(lf), S4_PARAM_C, NULL);
                assert_memory_equal(Cs, Cf, nC * sizeof *Cs);
                free(Cs), free(Cf);
                s4_stream_destroy(sp);
                s4_forward_destroy(fp);
                s4_layer_destroy(ls);
                s4_layer_destroy(lf);
            }

    /* With l_max < L the conv mode truncates its kernel (the reference's rule) while the
     * stream follows the recurrence: stream == step, not conv. */
    const int64_t L = 200;
    s4_layer *layer = lmax_layer(16, 9);
    s4t_urand_seed(11);
    float *u = frand((size_t)2 * (size_t)L);
    const size_t ny = (size_t)2 * (size_t)L, nx = (size_t)2 * 8;
    s4_forward *f = forward_or_fail(layer, 1, L, "l_max 16");
    float *yc = s4t_falloc(ny, FSENTINEL);
    assert_int_equal(s4_forward_execute(f, u, yc, NULL, NULL, 0), S4_OK);
    double *xs = NULL;
    float *ys = run_mode(layer, S4_STEP_LINEAR, 1, 1.0, u, L, &xs);
    s4_stream *sp = stream_or_fail(layer, 1, 64, 1.0, "l_max 16");
    float *yst = s4t_falloc(ny, FSENTINEL);
    double *xst = s4t_dalloc(nx, 0.0);
    const int64_t sizes[2] = {64, 23};
    stream_chunks(sp, 1, 1, 2, 2, L, u, sizes, 2, yst, xst, nx);
    const double e_step = s4t_frel(yst, ys, ny), e_conv = s4t_frel(yst, yc, ny);
    print_message("l_max 16 < L 200: stream vs step %.2e, stream vs (truncated) conv %.2e\n",
                  e_step, e_conv);
    assert_rel_err(e_step, TOL_CONV, "stream vs step with l_max < L");
    assert_rel_err(s4t_max_rel_err(xst, xs, nx), TOL_STATE, "stream state with l_max < L");
    assert_true(e_conv > 10 * TOL_CONV); /* the truncated conv really differs */
    free(u), free(yc), free(xs), free(ys), free(yst), free(xst);
    s4_forward_destroy(f);
    s4_stream_destroy(sp);
    s4_layer_destroy(layer);
}

/* ---- bidirectional layers have no step or stream mode ----------------------------------- */

static void test_bidirectional(void **state)
{
    const step_case *sc = *state;
    s4_layer_config cfg;
    s4t_layer_config_from_case(sc->config, &cfg);
    assert_int_equal(cfg.bidirectional, 1);
    s4_layer *layer = s4t_layer_from_params(&cfg, sc->c->params_init);
    s4_step *const SENT = (s4_step *)(uintptr_t)0x5eed;
    s4_stream *const SENT2 = (s4_stream *)(uintptr_t)0x5eed;
    for (int m = 0; m < 3; m++) {
        s4_step *p = SENT;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, (s4_step_mode)m, 1, 1.0, &p));
        assert_non_null(strstr(s4_last_error(), "bidirectional"));
        assert_ptr_equal(p, SENT);
    }
    s4_stream *q = SENT2;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 16, NULL, &q));
    assert_non_null(strstr(s4_last_error(), "bidirectional"));
    assert_ptr_equal(q, SENT2);
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), 0);
    s4_layer_destroy(layer);
}

/* ---- invalid arguments: status, message, nothing touched ------------------------------ */

static void test_step_invalid(void **state)
{
    (void)state;
    s4_step *const SENT = (s4_step *)(uintptr_t)0x5eed;
    s4_step *p = SENT;
    s4_layer *layer = make_layer(S4_INIT_LEGS, 3, 8, 1, S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 1, 2);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(NULL, S4_STEP_DENSE, 1, 1.0, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, S4_STEP_DENSE, 1, 1.0, NULL));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, (s4_step_mode)3, 1, 1.0, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, (s4_step_mode)-1, 1, 1.0, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, S4_STEP_DENSE, 0, 1.0, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_create(layer, S4_STEP_LINEAR, -3, 1.0, &p));
    const double bad_rates[] = {0.0, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++)
        for (int m = 0; m < 3; m++)
            assert_fails(S4_ERR_INVALID_ARGUMENT,
                         s4_step_create(layer, (s4_step_mode)m, 1, bad_rates[i], &p));
    /* Precision: unknown values refused; SINGLE only in the linear mode. */
    const s4_step_options bad_prec[] = {{.rate = 1.0, .precision = (s4_precision)3},
                                        {.rate = 1.0, .precision = (s4_precision)-1}};
    for (size_t i = 0; i < 2; i++)
        assert_fails(S4_ERR_INVALID_ARGUMENT,
                     s4_step_create_with_options(layer, S4_STEP_LINEAR, 1, &bad_prec[i], &p));
    const s4_step_options single = {.rate = 1.0, .precision = S4_PRECISION_SINGLE};
    assert_fails(S4_ERR_INVALID_ARGUMENT,
                 s4_step_create_with_options(layer, S4_STEP_DENSE, 1, &single, &p));
    assert_non_null(strstr(s4_last_error(), "linear step"));
    assert_fails(S4_ERR_INVALID_ARGUMENT,
                 s4_step_create_with_options(layer, S4_STEP_DIAGONAL, 1, &single, &p));
    assert_ptr_equal(p, SENT);
    assert_int_equal(s4_step_state_size(NULL), 0);
    assert_int_equal(s4_step_workspace_size(NULL), 0);
    s4_step_destroy(NULL);
    s4_plan_info info = {.threads = -7};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_info(NULL, &info));
    assert_int_equal(info.threads, -7);

    /* A single-precision state: beyond float range refused by state_set, nothing written. */
    {
        p = NULL;
        assert_int_equal(s4_step_create_with_options(layer, S4_STEP_LINEAR, 1, &single, &p),
                         S4_OK);
        const size_t n = (size_t)3 * 8;
        double x[3 * 8];
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5;
        float st[3 * 8 + 1];
        for (size_t i = 0; i < n + 1; i++)
            st[i] = FSENTINEL;
        assert_int_equal(s4_step_state_size(p), n * sizeof(float));
        x[5] = 1e39;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, st, x));
        assert_non_null(strstr(s4_last_error(), "float range"));
        assert_true(fall_equal(st, n + 1, FSENTINEL));
        x[5] = -0.25;
        assert_int_equal(s4_step_state_set(p, st, x), S4_OK);
        double back[3 * 8];
        assert_int_equal(s4_step_state_get(p, st, back), S4_OK);
        assert_memory_equal(back, x, sizeof x); /* all exact in float */
        assert_true(st[n] == FSENTINEL);
        s4_step_destroy(p);
        p = SENT;
    }

    const int B = 2, H = 3, N = 8;
    for (int m = 0; m < 3; m++) {
        p = s4t_step_or_fail(layer, (s4_step_mode)m, B, 1.0, "invalid");
        const size_t nsb = s4_step_state_size(p), nd = nsb / sizeof(double);
        assert_int_equal(nsb, (size_t)B * H * N * sizeof(double) * (m == 2 ? 2 : 1));
        double *s = s4t_dalloc(nd + 1, DSENTINEL);
        const size_t nx = (size_t)B * H * N, ws = s4_step_workspace_size(p);
        double *x = s4t_dalloc(nx, DSENTINEL);
        float *u = s4t_falloc((size_t)B * H * 4, 0.25f), *y = s4t_falloc((size_t)B * H * 4, FSENTINEL);
        unsigned char *work = malloc(ws);
        void *mis = (unsigned char *)s + 4; /* not aligned to a double */

        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_reset(NULL, s));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_reset(p, NULL));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_reset(p, mis));
        assert_true(dall_equal(s, nd + 1, DSENTINEL));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_get(NULL, s, x));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_get(p, NULL, x));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_get(p, s, NULL));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_get(p, mis, x));
        assert_true(dall_equal(x, nx, DSENTINEL));
        double *xs = s4t_dalloc(nx, 0.5);
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(NULL, s, xs));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, NULL, xs));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, s, NULL));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, mis, xs));
        xs[nx - 1] = NAN;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, s, xs));
        xs[nx - 1] = INFINITY;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_state_set(p, s, xs));
        assert_true(dall_equal(s, nd + 1, DSENTINEL));

        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(NULL, s, u, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, NULL, u, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, s, NULL, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, s, u, NULL, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, mis, u, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, s, u, y, work, ws - 1));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_execute(p, s, u, y, work, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(NULL, s, u, 4, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, NULL, u, 4, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, NULL, 4, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, 4, NULL, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, mis, u, 4, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, 0, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, -1, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, INT64_MIN, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, INT64_MAX, y, NULL, 0));
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_step_run(p, s, u, 4, y, work, ws - 1));
        assert_true(dall_equal(s, nd + 1, DSENTINEL));
        assert_true(fall_equal(y, (size_t)B * H * 4, FSENTINEL));
        /* and then a valid call works with the exact workspace size (work aligned by
         * malloc, so the slack is unused). */
        assert_int_equal(s4_step_state_reset(p, s), S4_OK);
        assert_int_equal(s4_step_run(p, s, u, 4, y, work, ws), S4_OK);
        assert_false(fall_equal(y, (size_t)B * H * 4, FSENTINEL));
        assert_true(s[nd] == DSENTINEL); /* nothing past the state */
        free(s), free(x), free(xs), free(u), free(y), free(work);
        s4_step_destroy(p);
    }
    s4_layer_destroy(layer);
}

static void test_stream_invalid(void **state)
{
    (void)state;
    s4_stream *const SENT = (s4_stream *)(uintptr_t)0x5eed;
    s4_stream *p = SENT;
    s4_layer *layer = make_layer(S4_INIT_LEGS, 3, 8, 1, S4_ACT_GELU, S4_FINAL_GLU, 1, 0, 1, 2);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(NULL, 1, 8, NULL, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 8, NULL, NULL));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 0, 8, NULL, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, -1, 8, NULL, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 0, NULL, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, -5, NULL, &p));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, INT64_MAX, NULL, &p));
    const double bad_rates[] = {0.0, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        const s4_forward_options o = {.rate = bad_rates[i]};
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 8, &o, &p));
    }
    s4_forward_options o = {.rate = 1.0, .planner = (s4_planner)5};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 8, &o, &p));
    o = (s4_forward_options){.rate = 1.0, .threads = -2};
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 8, &o, &p));
    assert_ptr_equal(p, SENT);
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), 0); /* no length rules ran */
    assert_int_equal(s4_stream_workspace_size(NULL), 0);
    s4_stream_destroy(NULL);

    const int B = 2, H = 3, N = 8;
    const int64_t Lc = 6;
    p = stream_or_fail(layer, B, Lc, 1.0, "stream invalid");
    assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), Lc); /* as s4_forward_create */
    const size_t nx = (size_t)B * H * N, ws = s4_stream_workspace_size(p);
    double *x = s4t_dalloc(nx + 1, 0.125);
    float *u = s4t_falloc((size_t)B * H * (size_t)(Lc + 1), 0.25f);
    float *y = s4t_falloc((size_t)B * H * (size_t)(Lc + 1), FSENTINEL);
    unsigned char *work = malloc(ws);
    double *mis = (double *)(void *)((unsigned char *)x + 4);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(NULL, x, u, 3, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, NULL, u, 3, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, NULL, 3, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, 3, NULL, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, mis, u, 3, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, 0, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, -1, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, Lc + 1, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, INT64_MAX, y, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, 3, y, work, ws - 1));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_execute(p, x, u, 3, y, work, 0));
    assert_true(dall_equal(x, nx + 1, 0.125));
    assert_true(fall_equal(y, (size_t)B * H * (size_t)(Lc + 1), FSENTINEL));
    assert_int_equal(s4_stream_execute(p, x, u, Lc, y, work, ws), S4_OK);
    assert_true(x[nx] == 0.125); /* nothing past the state */
    assert_false(dall_equal(x, nx, 0.125));
    free(x), free(u), free(y), free(work);
    s4_stream_destroy(p);
    s4_layer_destroy(layer);
}

static void test_summary(void **state)
{
    (void)state;
    print_message("SUMMARY step vs reference f64 step: dense %.2e linear %.2e diagonal %.2e "
                  "(diagonal accepted %d, refused %d)\n",
                  fig.gold[0], fig.gold[1], fig.gold[2], fig.diag_accepted, fig.diag_refused);
    print_message("SUMMARY single-precision linear step: vs reference f64 step %.2e, vs libs4 "
                  "conv %.2e\n",
                  fig.single_gold, fig.single_conv);
    print_message("SUMMARY step vs libs4 conv: dense %.2e linear %.2e diagonal %.2e; "
                  "params_after vs ref %.2e\n",
                  fig.conv[0], fig.conv[1], fig.conv[2], fig.after_gold);
    print_message("SUMMARY stream: chunks vs whole %.2e, whole vs conv %.2e, state vs step "
                  "%.2e; final states across step modes %.2e\n",
                  fig.chunk, fig.whole_conv, fig.state_stream, fig.state_modes);
}

/* Threads split the features and the head's rows: outputs and states are bitwise the same
 * for 1, 2 and 3 threads, in every mode and head, both layouts. */
static void test_step_threads_bitwise(void **state)
{
    (void)state;
    enum { H = 12, B = 5, T = 23 };
    /* dense, linear, and linear in S4_PRECISION_SINGLE */
    for (int k = 0; k < 3; k++)
        for (int fin = 0; fin < 3; fin++)
            for (int tr = 0; tr < 2; tr++) {
                s4_layer_config c;
                s4_layer_config_default(&c);
                c.ssm.H = H;
                c.ssm.N = 8;
                c.ssm.seed = 77 + (uint64_t)fin;
                c.final_act = (s4_final_act)fin;
                c.transposed = tr;
                s4_layer *l = NULL;
                assert_int_equal(s4_layer_create(&c, &l), S4_OK);
                const size_t F = (size_t)s4_layer_output_features(l);
                float u[B * H * T], y[3][B * H * 2 * T];
                for (size_t i = 0; i < (size_t)B * H * T; i++)
                    u[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
                double x[3][B * H * 4 * 2];
                const s4_step_mode mode = k == 0 ? S4_STEP_DENSE : S4_STEP_LINEAR;
                for (int t = 1; t <= 3; t++) {
                    const s4_step_options o = {
                        .rate = 1.0,
                        .threads = t,
                        .precision = k == 2 ? S4_PRECISION_SINGLE : S4_PRECISION_DOUBLE};
                    s4_step *p = NULL;
                    assert_int_equal(s4_step_create_with_options(l, mode, B, &o, &p), S4_OK);
                    void *st = calloc(1, s4_step_state_size(p));
                    assert_non_null(st);
                    assert_int_equal(s4_step_run(p, st, u, T, y[t - 1], NULL, 0), S4_OK);
                    assert_int_equal(s4_step_state_get(p, st, x[t - 1]), S4_OK);
                    free(st);
                    s4_step_destroy(p);
                }
                for (int t = 1; t < 3; t++) {
                    assert_memory_equal(y[0], y[t], (size_t)B * F * T * sizeof(float));
                    assert_memory_equal(x[0], x[t], sizeof x[0]);
                }
                s4_layer_destroy(l);
            }
}

int main(int argc, char **argv)
{
    int count = 0;
    s4t_case *cases = s4t_cases_load(&count);
    step_case *sc = step_cases_load(cases, count);
    s4t_suite s = {0};
    char name[160];
    for (int i = 0; i < count; i++)
        if (sc[i].has_steps) {
            snprintf(name, sizeof name, "golden/%s", cases[i].name);
            s4t_suite_add(&s, name, test_golden, &sc[i]);
        }
    static const char *const after_cases[] = {"h2_n32_l33", "doubling_h2_n8_l8_then_20",
                                              "long_h4_n64_l1024", "h2_n8_l12_c2_swap"};
    for (int i = 0; i < count; i++)
        for (size_t k = 0; k < sizeof after_cases / sizeof after_cases[0]; k++)
            if (strcmp(cases[i].name, after_cases[k]) == 0 && sc[i].has_steps &&
                strcmp(cases[i].name, "h2_n8_l12_c2_swap") != 0) {
                snprintf(name, sizeof name, "params_after/%s", cases[i].name);
                s4t_suite_add(&s, name, test_params_after, &sc[i]);
            }
    for (int i = 0; i < count; i++)
        if (sc[i].has_steps) {
            snprintf(name, sizeof name, "stream/%s", cases[i].name);
            s4t_suite_add(&s, name, test_stream, &sc[i]);
        }
    for (int i = 0; i < count; i++)
        if (cases[i].bidirectional) {
            snprintf(name, sizeof name, "bidirectional/%s", cases[i].name);
            s4t_suite_add(&s, name, test_bidirectional, &sc[i]);
        }
    s4t_suite_add(&s, "diagonal", test_diagonal, NULL);
    s4t_suite_add(&s, "swap", test_swap, NULL);
    s4t_suite_add(&s, "linear_variants", test_linear_variants, NULL);
    s4t_suite_add(&s, "state_roundtrip", test_state_roundtrip, NULL);
    s4t_suite_add(&s, "rate", test_rate, NULL);
    s4t_suite_add(&s, "batch_layout_workspace", test_batch_layout_workspace, NULL);
    s4t_suite_add(&s, "stream_workspace", test_stream_workspace, NULL);
    s4t_suite_add(&s, "stream_lengths", test_stream_lengths, NULL);
    s4t_suite_add(&s, "step_invalid", test_step_invalid, NULL);
    s4t_suite_add(&s, "stream_invalid", test_stream_invalid, NULL);
    s4t_suite_add(&s, "step_threads_bitwise", test_step_threads_bitwise, NULL);
    s4t_suite_add(&s, "summary", test_summary, NULL);
    int failures = s4t_suite_run(&s, "step", argc, argv);
    free(sc);
    free(cases);
    return failures;
}
