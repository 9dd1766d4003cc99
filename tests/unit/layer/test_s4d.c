#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* S4D (diagonal, the reference's mode='diag') and the rate / state-forwarding cases of
 * tests/data/s4d: every case of s4d/cases.json replayed stage by stage on one layer
 * (kernel, layer output and pre-activation at the stage's rate against the float64
 * reference), step mode against the reference's float64 steps, forward with a carried state
 * (forward_state), streaming in chunks against the whole-sequence forward, rate against dt
 * scaled by hand, the Vandermonde kernel against the exact-exponential reference over
 * lengths up to 2^16, and the diagonal inits against the golden initial parameters.
 * A case whose manifest entry, config or step data has a kind this file does not know fails
 * (its tests report what is unhandled) instead of passing silently.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include "layer_case.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds on max|x - x_ref| / max|x_ref|. Never loosen to make a failure pass. */
#define TOL_KERNEL 2e-5  /* float32 kernel vs K_f64 (every disc, see TOL_KERNEL_DSS) */
/* dss: the reference casts its dss kernel to float32 even in float64 (.float()), so K_f64
 * of a dss case is a float64 kernel rounded to float32: at most 2^-24 of max|K| (6e-8) off
 * the exact one. The reference's own float32 run (f32_vs_f64.K.max_rel in cases.json) is
 * 1.5e-6 .. 1.53e-5 off K_f64 on the five dss cases (worst s4d_real_dss_h2_n8_l16), so the
 * float32 bound TOL_KERNEL = 2e-5 is a float32 tolerance that the reference itself meets;
 * the golden's rounding (6e-8) is 300 times below it. No separate, looser bound is needed. */
#define TOL_KERNEL_DSS TOL_KERNEL
#define TOL_GOLDEN 1e-4      /* y, pre, step outputs, forward_state y vs the float64 data */
#define TOL_REFERENCE 1e-9   /* s4_kernel_reference (double) vs K_f64, zoh / bilinear / DPLR */
#define TOL_REFERENCE_DSS 1.2e-7 /* ... vs a dss K_f64, itself rounded to float32 */
#define TOL_DISC 1e-10       /* s4_ssm_discretize vs the reference's float64 dA, dB */
#define TOL_CTILDE 1e-9      /* C-tilde after a stage vs params_after_f64 (DPLR) */
#define TOL_STATE 1e-9       /* carried double states: stream vs step, chunks vs whole, fs */
#define TOL_CHUNK 1e-5       /* stream chunks vs s4_forward (float outputs) */
#define TOL_RATE 1e-12       /* step at rate r vs the step of dt scaled by hand */
/* s4_kernel_execute (float32) vs s4_kernel_reference (double), diagonal banks: the brief's
 * 2e-5, tightened to what the measurement allows (worst 5.1e-7 over 280 combinations up to
 * L = 2^16 on the reference machine; 2e-6 keeps a 4x margin for other libm / FMA). */
#define TOL_VANDERMONDE 2e-6

static const float FSENTINEL = -12345.5f;
static const double DSENTINEL = -777.25;
static const char *const MODE_NAME[3] = {"dense", "linear", "diagonal"};
static const char *const DISC_NAME[3] = {"zoh", "bilinear", "dss"};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- worst figure of each family, printed by the last test ----------------------------- */

static struct {
    double K, K_dss, K_ref, y, pre, disc, ctilde;
    double step_s4d, step_s4d_conv, step_dplr[3];
    double fs_y, fs_state, fs_chunk, fs_chunk_state;
    double stream, stream_state, stream_step_state;
    double rate_y, rate_state, rate_disc;
    int rate_bitwise, rate_runs;
    double vander[3], vander_posreal;
    double init;
    int dplr_diag_refused, stream_dss_unsupported;
} fig;


/* ---- small helpers ---------------------------------------------------------------------- */





/* Python's round (half to even): the reference's round(l_max / rate). */
static int64_t round_even(double x)
{
    const double f = floor(x), d = x - f;
    if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0))
        return (int64_t)f + 1;
    return (int64_t)f;
}

/* ---- the s4d/cases.json manifest --------------------------------------------------------- */

enum { MAX_STAGES = 4, MAX_FS_CHUNKS = 16 };

typedef struct d_stage {
    int64_t L, kernel_length, l_kernel_after; /* l_kernel_after: 0 for null (S4D) */
    double rate;
    double ref_K_f32_rel;                      /* f32_vs_f64.K.max_rel of the reference */
    char u[S4T_PATH_MAX], K[S4T_PATH_MAX], ssm[S4T_PATH_MAX], y[S4T_PATH_MAX];
    char params_after[S4T_PATH_MAX];
} d_stage;

typedef struct d_case {
    char name[96];
    char config[S4T_PATH_MAX], params_init[S4T_PATH_MAX], kernel[S4T_PATH_MAX];
    char init[32];
    int B, H, N, Cpp, bidirectional;
    int64_t l_max;         /* 0: None */
    s4_ssm_mode mode;
    s4_disc disc;          /* S4D only */
    int n_stages;
    d_stage st[MAX_STAGES];
    int step_stage;        /* the stage whose `steps` hold data; -1: none */
    char step[3][S4T_PATH_MAX]; /* f64 step outputs by s4_step_mode ("" = none) */
    int steps_unsupported, params_edited;
    int has_fs;
    int64_t fs_L;
    char fs_u[S4T_PATH_MAX], fs_x0[S4T_PATH_MAX], fs_y[S4T_PATH_MAX], fs_x1[S4T_PATH_MAX];
    int64_t fs_chunks[MAX_FS_CHUNKS];
    int n_fs_chunks;
    char unhandled[512]; /* non-empty: a kind this file does not handle (its tests fail) */
} d_case;

static void unhandled(d_case *dc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void unhandled(d_case *dc, const char *fmt, ...)
{
    size_t k = strlen(dc->unhandled);
    if (k + 3 >= sizeof dc->unhandled)
        return;
    if (k > 0) {
        strcat(dc->unhandled, "; ");
        k += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dc->unhandled + k, sizeof dc->unhandled - k, fmt, ap);
    va_end(ap);
}

/* Every member of obj must be one of the NULL-terminated `known` keys. */
static void check_keys(d_case *dc, const cJSON *obj, const char *what, const char *const *known)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        const char *const *k = known;
        while (*k && strcmp(*k, it->string) != 0)
            k++;
        if (!*k)
            unhandled(dc, "%s key \"%s\"", what, it->string);
    }
}

/* String member copied into out (must exist and be a string unless `optional`). */
static int copy_str(d_case *dc, const cJSON *obj, const char *key, char *out, size_t size,
                    int optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || !cJSON_IsString(v) || strlen(v->valuestring) >= size) {
        if (!optional)
            unhandled(dc, "\"%s\" missing or not a short string", key);
        out[0] = '\0';
        return 0;
    }
    strcpy(out, v->valuestring);
    return 1;
}

/* A file of the manifest, as a path relative to the test data (the manifest's paths are
 * relative to s4d/). */
static int copy_file(d_case *dc, const cJSON *obj, const char *key, char *out)
{
    char rel[S4T_PATH_MAX - 8];
    if (!copy_str(dc, obj, key, rel, sizeof rel, 0)) {
        out[0] = '\0';
        return 0;
    }
    snprintf(out, S4T_PATH_MAX, "s4d/%s", rel);
    return 1;
}

static double num(d_case *dc, const cJSON *obj, const char *key, double if_null)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && cJSON_IsNull(v))
        return if_null;
    if (v && cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    if (!v || !cJSON_IsNumber(v)) {
        unhandled(dc, "\"%s\" missing or not a number", key);
        return if_null;
    }
    return v->valuedouble;
}

/* The f64 file of steps[mode] ("" if the mode is absent). */
static void step_file(d_case *dc, const cJSON *steps, const char *mode, char *out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(steps, mode);
    const cJSON *f64 = m ? cJSON_GetObjectItemCaseSensitive(m, "f64") : NULL;
    out[0] = '\0';
    if (m && !f64)
        unhandled(dc, "steps.%s has no f64 entry", mode);
    if (f64)
        copy_file(dc, f64, "file", out);
}

static d_case *cases_load(int *count)
{
    static const char *const case_keys[] = {
        "name", "config", "lengths", "rates", "notes", "kernel_channels", "files", "shapes",
        "stages", "steps", "export_seconds", "steps_unsupported", "params_edited",
        "forward_state", NULL};
    static const char *const config_keys[] = {
        "H", "N", "L", "B", "l_max", "channels", "bidirectional", "activation", "final_act",
        "init", "rank", "n_ssm", "dt_min", "dt_max", "dt_transform", "swap_channels", "seed",
        "measure", "postact", "mode", "kernel", "real_transform", "imag_transform", "dt_tie",
        "disc", NULL};
    static const char *const stage_keys[] = {
        "L", "rate", "files", "l_kernel_after_f32", "l_kernel_after_f64", "kernel_length",
        "fft_length", "shapes", "f32_vs_f64", "steps", NULL};
    static const char *const fs_keys[] = {"L", "files", "checks", "chunks", "state_layout",
                                          "step_mode_used_for_checks", NULL};
    static const char *const diag_steps[] = {"diag", NULL};
    static const char *const dplr_steps[] = {"dense", "linear", "diagonal", NULL};

    char path[S4T_PATH_MAX];
    s4t_path(path, "s4d/cases.json");
    char *text = s4t_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        fail_msg("%s: not valid JSON", path);
    const cJSON *list = s4t_jget(root, "cases", path);
    const int n = cJSON_GetArraySize(list);
    d_case *cases = calloc((size_t)(n ? n : 1), sizeof *cases);
    assert_non_null(cases);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        d_case *dc = &cases[i++];
        dc->step_stage = -1;
        if (!copy_str(dc, item, "name", dc->name, sizeof dc->name, 0))
            snprintf(dc->name, sizeof dc->name, "case%d", i - 1);
        check_keys(dc, item, "case", case_keys);
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(item, "config");
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(item, "files");
        const cJSON *stages = cJSON_GetObjectItemCaseSensitive(item, "stages");
        if (!cfg || !files || !stages || !cJSON_IsArray(stages)) {
            unhandled(dc, "no config, files or stages");
            continue;
        }
        check_keys(dc, cfg, "config", config_keys);
        dc->B = (int)num(dc, cfg, "B", 0);
        dc->H = (int)num(dc, cfg, "H", 0);
        dc->N = (int)num(dc, cfg, "N", 0);
        dc->bidirectional = (int)num(dc, cfg, "bidirectional", 0);
        dc->l_max = (int64_t)num(dc, cfg, "l_max", 0);
        dc->Cpp = (int)num(dc, item, "kernel_channels", 0);
        copy_str(dc, cfg, "init", dc->init, sizeof dc->init, 0);
        char mode[32], disc[32];
        copy_str(dc, cfg, "mode", mode, sizeof mode, 0);
        copy_str(dc, cfg, "disc", disc, sizeof disc, 0);
        if (!s4t_mode_of(mode, &dc->mode))
            unhandled(dc, "mode \"%s\"", mode);
        if (dc->mode == S4_MODE_DIAG && !s4t_disc_of(disc, &dc->disc))
            unhandled(dc, "disc \"%s\"", disc);
        if (dc->mode == S4_MODE_DPLR && strcmp(disc, "bilinear") != 0)
            unhandled(dc, "S4 (dplr) with disc \"%s\"", disc);
        copy_file(dc, files, "config", dc->config);
        copy_file(dc, files, "params_init", dc->params_init);
        copy_file(dc, files, "kernel", dc->kernel);

        const cJSON *sj;
        cJSON_ArrayForEach(sj, stages) {
            if (dc->n_stages == MAX_STAGES) {
                unhandled(dc, "more than %d stages", MAX_STAGES);
                break;
            }
            const int s = dc->n_stages++;
            d_stage *st = &dc->st[s];
            check_keys(dc, sj, "stage", stage_keys);
            st->L = (int64_t)num(dc, sj, "L", 0);
            st->rate = num(dc, sj, "rate", 1.0);
            st->kernel_length = (int64_t)num(dc, sj, "kernel_length", 0);
            st->l_kernel_after = (int64_t)num(dc, sj, "l_kernel_after_f64", 0);
            const cJSON *f32 = cJSON_GetObjectItemCaseSensitive(sj, "f32_vs_f64");
            const cJSON *fk = f32 ? cJSON_GetObjectItemCaseSensitive(f32, "K") : NULL;
            st->ref_K_f32_rel = fk ? num(dc, fk, "max_rel", NAN) : NAN;
            const cJSON *sf = cJSON_GetObjectItemCaseSensitive(sj, "files");
            if (!sf) {
                unhandled(dc, "stage %d has no files", s);
                continue;
            }
            copy_file(dc, sf, "u", st->u);
            copy_file(dc, sf, "K_f64", st->K);
            copy_file(dc, sf, "ssm_f64", st->ssm);
            copy_file(dc, sf, "y_f64", st->y);
            copy_file(dc, sf, "params_after_f64", st->params_after);
            const cJSON *steps = cJSON_GetObjectItemCaseSensitive(sj, "steps");
            if (steps && cJSON_GetArraySize(steps) > 0) {
                if (dc->step_stage >= 0)
                    unhandled(dc, "steps recorded in two stages");
                dc->step_stage = s;
                check_keys(dc, steps, "steps", dc->mode == S4_MODE_DIAG ? diag_steps
                                                                         : dplr_steps);
                if (dc->mode == S4_MODE_DIAG) {
                    step_file(dc, steps, "diag", dc->step[S4_STEP_DIAGONAL]);
                } else {
                    for (int m = 0; m < 3; m++)
                        step_file(dc, steps, MODE_NAME[m], dc->step[m]);
                }
            }
        }
        dc->steps_unsupported = cJSON_GetObjectItemCaseSensitive(item, "steps_unsupported") != 0;
        dc->params_edited =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "params_edited")) ? 1 : 0;
        /* Steps must be there unless the reference has none (dss, bidirectional). */
        const int no_step = (dc->mode == S4_MODE_DIAG && dc->disc == S4_DISC_DSS) ||
                            dc->bidirectional;
        if (dc->step_stage < 0 && !no_step)
            unhandled(dc, "no step data for a layer that has a step mode");
        if (dc->step_stage >= 0 && no_step)
            unhandled(dc, "step data for a layer without a step mode");
        if (no_step && !dc->steps_unsupported)
            unhandled(dc, "no steps and no steps_unsupported note");

        const cJSON *fs = cJSON_GetObjectItemCaseSensitive(item, "forward_state");
        if (fs) {
            dc->has_fs = 1;
            check_keys(dc, fs, "forward_state", fs_keys);
            dc->fs_L = (int64_t)num(dc, fs, "L", 0);
            const cJSON *ff = cJSON_GetObjectItemCaseSensitive(fs, "files");
            if (!ff) {
                unhandled(dc, "forward_state without files");
            } else {
                copy_file(dc, ff, "u", dc->fs_u);
                copy_file(dc, ff, "state_in", dc->fs_x0);
                copy_file(dc, ff, "y_f64", dc->fs_y);
                copy_file(dc, ff, "next_state_f64", dc->fs_x1);
            }
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(fs, "chunks"), *cv;
            cJSON_ArrayForEach(cv, ch) {
                if (dc->n_fs_chunks < MAX_FS_CHUNKS && cJSON_IsNumber(cv))
                    dc->fs_chunks[dc->n_fs_chunks++] = (int64_t)cv->valuedouble;
            }
            if (dc->bidirectional || (dc->mode == S4_MODE_DIAG && dc->disc == S4_DISC_DSS))
                unhandled(dc, "forward_state for a layer without a recurrence");
        }
        if (dc->n_stages == 0)
            unhandled(dc, "no stages");
    }
    cJSON_Delete(root);
    *count = n;
    return cases;
}

/* Fails the test if the case has a kind this file does not handle. */
static void require_handled(const d_case *dc)
{
    if (dc->unhandled[0])
        fail_msg("%s: not handled by test_s4d: %s", dc->name, dc->unhandled);
}

/* ---- library wrappers that fail the test ---------------------------------------------- */

static s4_layer_config case_config(const d_case *dc)
{
    s4_layer_config cfg;
    s4t_layer_config_from_case(dc->config, &cfg);
    assert_int_equal(cfg.ssm.H, dc->H);
    assert_int_equal(cfg.ssm.N, dc->N);
    assert_int_equal((int)cfg.ssm.mode, (int)dc->mode);
    if (dc->mode == S4_MODE_DIAG)
        assert_int_equal((int)cfg.ssm.disc, (int)dc->disc);
    assert_int_equal(cfg.bidirectional, dc->bidirectional);
    assert_int_equal(cfg.l_max, dc->l_max);
    if (cfg.transposed != 1)
        fail_msg("%s: transposed = 0 cases are not handled", dc->name);
    const int Cp = cfg.channels * (cfg.activation == S4_ACT_GLU ? 2 : 1);
    assert_int_equal(Cp * (1 + cfg.bidirectional), dc->Cpp);
    return cfg;
}

static s4_forward *forward_or_fail(s4_layer *layer, int B, int64_t L, double rate,
                                   const char *what)
{
    s4_forward *plan = NULL;
    const s4_forward_options o = {.rate = rate};
    s4_status st = s4_forward_create(layer, B, L, &o, &plan);
    if (st != S4_OK || !plan)
        fail_msg("%s: s4_forward_create(B = %d, L = %lld, rate = %g): %s: %s", what, B,
                 (long long)L, rate, s4_status_str(st), s4_last_error());
    return plan;
}


/* Runs T steps from zero state: y [B x F x T]; *x (optional) the final state in reference
 * form [B x H x N/2 x 2]. */
static float *step_run(const s4_step *p, const float *u, int64_t T, size_t ny, double **x,
                       size_t nx, const char *what)
{
    void *xs = s4t_state_alloc(p);
    float *y = s4t_falloc(ny, FSENTINEL);
    s4_status st = s4_step_run(p, xs, u, T, y, NULL, 0);
    if (st != S4_OK)
        fail_msg("%s: s4_step_run(T = %lld): %s: %s", what, (long long)T, s4_status_str(st),
                 s4_last_error());
    if (x) {
        *x = s4t_dalloc(nx, DSENTINEL);
        assert_int_equal(s4_step_state_get(p, xs, *x), S4_OK);
    }
    free(xs);
    return y;
}

static s4_stream *stream_create(s4_layer *layer, int B, int64_t max_chunk, double rate,
                                s4_status *status)
{
    s4_stream *p = NULL;
    const s4_forward_options o = {.rate = rate};
    *status = s4_stream_create(layer, B, max_chunk, &o, &p);
    return p;
}

static s4_stream *stream_or_fail(s4_layer *layer, int B, int64_t max_chunk, double rate,
                                 const char *what)
{
    s4_status st;
    s4_stream *p = stream_create(layer, B, max_chunk, rate, &st);
    if (st != S4_OK || !p)
        fail_msg("%s: s4_stream_create(B = %d, max_chunk = %lld, rate = %g): %s: %s", what, B,
                 (long long)max_chunk, rate, s4_status_str(st), s4_last_error());
    return p;
}

/* Runs u [B x H x L] through `plan` in chunks of the given sizes (cycled), starting from the
 * state x (updated in place): y [B x F x L]. */
static void stream_chunks(const s4_stream *plan, int B, int H, int F, int64_t L, const float *u,
                          const int64_t *sizes, int nsizes, float *y, double *x)
{
    int64_t cmax = 1;
    for (int i = 0; i < nsizes; i++)
        cmax = sizes[i] > cmax ? sizes[i] : cmax;
    float *uc = s4t_falloc((size_t)B * H * (size_t)cmax, 0.0f);
    float *yc = s4t_falloc((size_t)B * F * (size_t)cmax, 0.0f);
    int64_t t0 = 0;
    for (int i = 0; t0 < L; i = (i + 1) % nsizes) {
        const int64_t T = sizes[i] < L - t0 ? sizes[i] : L - t0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                memcpy(uc + ((size_t)b * H + h) * (size_t)T,
                       u + ((size_t)b * H + h) * (size_t)L + (size_t)t0, (size_t)T * sizeof *u);
        s4_status st = s4_stream_execute(plan, x, uc, T, yc, NULL, 0);
        if (st != S4_OK)
            fail_msg("s4_stream_execute(T = %lld at t = %lld): %s: %s", (long long)T,
                     (long long)t0, s4_status_str(st), s4_last_error());
        for (int b = 0; b < B; b++)
            for (int o = 0; o < F; o++)
                memcpy(y + ((size_t)b * F + o) * (size_t)L + (size_t)t0,
                       yc + ((size_t)b * F + o) * (size_t)T, (size_t)T * sizeof *y);
        t0 += T;
    }
    free(uc), free(yc);
}

/* An .npy [B x H x L] of the data as floats (the float64 run used the same float values). */
static float *load_u(const char *rel, int B, int H, int64_t L)
{
    const size_t n = (size_t)B * H * (size_t)L;
    double *u = s4t_npy3(rel, B, H, L);
    float *uf = s4t_falloc(n, 0.0f);
    s4t_d2f(u, uf, n);
    /* The inputs are float32 data: the conversion must be exact. */
    for (size_t i = 0; i < n; i++)
        if ((double)uf[i] != u[i])
            fail_msg("%s: element %zu = %.17g is not a float", rel, i, u[i]);
    free(u);
    return uf;
}

/* Forward of stage s of a case on `layer` (which it may update, as the reference's forward
 * does): y [B x F x L] and, if pre is non-NULL, the pre-activation [B x C'H x L]. */
static float *stage_forward(s4_layer *layer, const d_case *dc, int s, float **pre)
{
    const d_stage *st = &dc->st[s];
    const int F = s4_layer_output_features(layer);
    s4_layer_config cfg;
    assert_int_equal(s4_layer_get_config(layer, &cfg), S4_OK);
    const int Fp = cfg.channels * (cfg.activation == S4_ACT_GLU ? 2 : 1) * dc->H;
    float *u = load_u(st->u, dc->B, dc->H, st->L);
    float *y = s4t_falloc((size_t)dc->B * F * (size_t)st->L, FSENTINEL);
    float *p = pre ? s4t_falloc((size_t)dc->B * Fp * (size_t)st->L, FSENTINEL) : NULL;
    s4_forward *plan = forward_or_fail(layer, dc->B, st->L, st->rate, dc->name);
    s4_status stt = s4_forward_execute(plan, u, y, p, NULL, 0);
    if (stt != S4_OK)
        fail_msg("%s stage %d: s4_forward_execute: %s: %s", dc->name, s, s4_status_str(stt),
                 s4_last_error());
    s4_forward_destroy(plan);
    free(u);
    if (pre)
        *pre = p;
    return y;
}

/* K [rows x H x l] of s4_kernel_create / execute at `rate`, in double. */
static double *fast_kernel(const s4_ssm *ssm, int64_t l, double rate, int rows, int H,
                           const char *what)
{
    s4_kernel *plan = NULL;
    const s4_kernel_options o = {.rate = rate, .threads = 0};
    s4_status st = s4_kernel_create(ssm, l, &o, &plan);
    if (st != S4_OK || !plan)
        fail_msg("%s: s4_kernel_create(L = %lld, rate = %g): %s: %s", what, (long long)l, rate,
                 s4_status_str(st), s4_last_error());
    assert_int_equal(s4_kernel_length(plan), l);
    assert_int_equal(s4_kernel_rows(plan), rows);
    const size_t n = (size_t)rows * (size_t)H * (size_t)l;
    float *K = s4t_falloc(n, FSENTINEL);
    st = s4_kernel_execute(plan, ssm, K, (size_t)l, NULL, 0);
    if (st != S4_OK)
        fail_msg("%s: s4_kernel_execute: %s: %s", what, s4_status_str(st), s4_last_error());
    double *Kd = s4t_f2d_alloc(K, n);
    free(K);
    s4_kernel_destroy(plan);
    return Kd;
}

/* K [rows x H x l] of s4_kernel_reference (double) at `rate`. */
static double *power_kernel(const s4_ssm *ssm, int64_t l, double rate, int rows, int H,
                            const char *what)
{
    const size_t L = (size_t)l;
    double *K = s4t_dalloc((size_t)rows * (size_t)H * L, DSENTINEL);
    double *Kh = s4t_dalloc((size_t)rows * L, DSENTINEL);
    for (int h = 0; h < H; h++) {
        s4_status st = s4_kernel_reference(ssm, h, l, rate, Kh, L);
        if (st != S4_OK)
            fail_msg("%s: s4_kernel_reference(h = %d, L = %lld, rate = %g): %s: %s", what, h,
                     (long long)l, rate, s4_status_str(st), s4_last_error());
        for (int c = 0; c < rows; c++)
            memcpy(K + ((size_t)c * (size_t)H + (size_t)h) * L, Kh + (size_t)c * L,
                   L * sizeof *K);
    }
    free(Kh);
    return K;
}

/* ---- golden: kernel, y and pre of every stage ---------------------------------------------- */

/* dA, dB of s4_ssm_discretize (rate 1) against the reference's float64 _setup_step values
 * in kernel.safetensors: S4D (H, N/2) diagonals, placed on the conjugate-extended diagonal
 * (docs/design.md 5: x_f = [x; conj x]); S4 the dense (H, N, N) system. */
static double check_discretize(const d_case *dc, const s4_ssm *ssm)
{
    char kpath[S4T_PATH_MAX];
    s4t_path(kpath, "%s", dc->kernel);
    size_t nA = 0, nB = 0;
    double *dA_ref = s4t_find_tensor(kpath, "dA", &nA, NULL, NULL);
    double *dB_ref = s4t_find_tensor(kpath, "dB", &nB, NULL, NULL);
    if (dc->mode == S4_MODE_DIAG && dc->disc == S4_DISC_DSS) {
        /* dss has no (dA, dB), in the reference nor here. */
        assert_null(dA_ref);
        double one[4];
        assert_fails(S4_ERR_UNSUPPORTED, s4_ssm_discretize(ssm, 0, 1.0, NULL, one));
        return 0.0;
    }
    if (!dA_ref || !dB_ref)
        fail_msg("%s: kernel.safetensors has no dA / dB", dc->name);
    const size_t N = (size_t)dc->N, Nh = N / 2, H = (size_t)dc->H;
    const int diag = dc->mode == S4_MODE_DIAG;
    assert_int_equal(nA, diag ? H * Nh * 2 : H * N * N * 2);
    assert_int_equal(nB, diag ? H * Nh * 2 : H * N * 2);
    double *dA = s4t_dalloc(N * N * 2, DSENTINEL), *dB = s4t_dalloc(N * 2, DSENTINEL);
    double *wA = s4t_dalloc(N * N * 2, 0.0), *wB = s4t_dalloc(N * 2, 0.0);
    double e = 0.0;
    for (size_t h = 0; h < H; h++) {
        s4_status st = s4_ssm_discretize(ssm, (int)h, 1.0, dA, dB);
        if (st != S4_OK)
            fail_msg("%s: s4_ssm_discretize(h = %zu): %s: %s", dc->name, h, s4_status_str(st),
                     s4_last_error());
        if (diag) {
            memset(wA, 0, N * N * 2 * sizeof *wA);
            for (size_t n = 0; n < Nh; n++) {
                const double *a = dA_ref + (h * Nh + n) * 2, *b = dB_ref + (h * Nh + n) * 2;
                wA[(n * N + n) * 2] = a[0];
                wA[(n * N + n) * 2 + 1] = a[1];
                wA[((n + Nh) * N + n + Nh) * 2] = a[0];
                wA[((n + Nh) * N + n + Nh) * 2 + 1] = -a[1];
                wB[n * 2] = b[0];
                wB[n * 2 + 1] = b[1];
                wB[(n + Nh) * 2] = b[0];
                wB[(n + Nh) * 2 + 1] = -b[1];
            }
        } else {
            memcpy(wA, dA_ref + h * N * N * 2, N * N * 2 * sizeof *wA);
            memcpy(wB, dB_ref + h * N * 2, N * 2 * sizeof *wB);
        }
        s4t_worst(&e, s4t_max_rel_err(dA, wA, N * N * 2));
        s4t_worst(&e, s4t_max_rel_err(dB, wB, N * 2));
    }
    free(dA), free(dB), free(wA), free(wB), free(dA_ref), free(dB_ref);
    return e;
}

static void test_golden(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config cfg = case_config(dc);
    s4_layer *layer = s4t_layer_from_params(&cfg, dc->params_init);
    const s4_ssm *ssm = s4_layer_ssm(layer);
    const int B = dc->B, H = dc->H, F = s4_layer_output_features(layer);
    const int Fp = cfg.channels * (cfg.activation == S4_ACT_GLU ? 2 : 1) * H;
    const int diag = dc->mode == S4_MODE_DIAG, dss = diag && dc->disc == S4_DISC_DSS;
    assert_int_equal(s4_ssm_l_kernel(ssm), 0);
    if (diag)
        assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_P), 0);

    const double e_disc = check_discretize(dc, ssm);
    s4t_worst(&fig.disc, e_disc);
    assert_rel_err(e_disc, TOL_DISC, "s4_ssm_discretize vs the reference's dA, dB");

    for (int s = 0; s < dc->n_stages; s++) {
        const d_stage *st = &dc->st[s];
        const int64_t L = st->L;
        /* The reference's kernel length (docs/design.md 11). */
        const int64_t l_want =
            dc->l_max > 0 ? (round_even((double)dc->l_max / st->rate) < L
                                 ? round_even((double)dc->l_max / st->rate)
                                 : L)
                          : L;
        assert_int_equal(st->kernel_length, l_want);

        const double t0 = now();
        float *pre = NULL;
        float *y = stage_forward(layer, dc, s, &pre);
        const double t1 = now();
        assert_int_equal(s4_ssm_l_kernel(ssm), st->l_kernel_after);
        const size_t ny = (size_t)B * F * (size_t)L, np = (size_t)B * Fp * (size_t)L;
        double *y_ref = s4t_npy3(st->y, B, F, L), *p_ref = s4t_npy3(st->ssm, B, Fp, L);
        double *yd = s4t_f2d_alloc(y, ny), *pd = s4t_f2d_alloc(pre, np);
        const double ey = s4t_max_rel_err(yd, y_ref, ny), ep = s4t_max_rel_err(pd, p_ref, np);

        /* The kernel the forward used: the layer's bank as the forward left it, at the
         * stage's rate. */
        const int64_t l = st->kernel_length;
        double *K_ref = s4t_npy3(st->K, dc->Cpp, H, l);
        const size_t nK = (size_t)dc->Cpp * H * (size_t)l;
        double *K = fast_kernel(ssm, l, st->rate, dc->Cpp, H, dc->name);
        const double eK = s4t_max_rel_err(K, K_ref, nK);
        /* The double reference path: for S4D it is the same kernel at dt * rate; for S4 only
         * at rate 1 (at another rate the reference keeps C-tilde of Lk, docs/design.md 11). */
        double eKp = NAN;
        if (diag || st->rate == 1.0) {
            double *Kp = power_kernel(ssm, l, st->rate, dc->Cpp, H, dc->name);
            eKp = s4t_max_rel_err(Kp, K_ref, nK);
            free(Kp);
        }
        /* The stored parameters after the call: S4D's never change; S4's C-tilde. */
        char apath[S4T_PATH_MAX];
        s4t_path(apath, "%s", st->params_after);
        size_t nC = 0, mC = 0;
        double *C = s4t_get_param(ssm, S4_PARAM_C, &nC);
        double *C_ref = s4t_load_tensor(apath, "layer.kernel.C", &mC);
        assert_int_equal(nC, mC);
        const double eC = s4t_max_rel_err(C, C_ref, nC);

        print_message("%-36s stage %d rate %.2f L %4lld l %4lld Lk %3lld: K %.2e  y %.2e  "
                      "pre %.2e  K(double) %.2e  C %.2e  (%.3f s)\n",
                      dc->name, s, st->rate, (long long)L, (long long)l,
                      (long long)st->l_kernel_after, eK, ey, ep, eKp, eC, t1 - t0);
        if (dss)
            print_message("%-36s   dss: the reference's own float32 kernel is %.2e off "
                          "K_f64\n",
                          dc->name, st->ref_K_f32_rel);
        s4t_worst(dss ? &fig.K_dss : &fig.K, eK);
        s4t_worst(&fig.y, ey);
        s4t_worst(&fig.pre, ep);
        if ((diag || st->rate == 1.0) && !dss)
            s4t_worst(&fig.K_ref, eKp);
        s4t_worst(&fig.ctilde, eC);
        assert_rel_err(eK, dss ? TOL_KERNEL_DSS : TOL_KERNEL, "kernel vs K_f64");
        assert_rel_err(ey, TOL_GOLDEN, "y vs y_f64");
        assert_rel_err(ep, TOL_GOLDEN, "pre vs ssm_f64");
        if (diag || st->rate == 1.0)
            assert_rel_err(eKp, dss ? TOL_REFERENCE_DSS : TOL_REFERENCE,
                           "s4_kernel_reference vs K_f64");
        assert_rel_err(eC, diag ? 0.0 : TOL_CTILDE, "C after the stage vs params_after_f64");
        if (!diag) {
            double *lk = s4t_load_tensor(apath, "layer.kernel.l_kernel", NULL);
            assert_int_equal((int64_t)lk[0], st->l_kernel_after);
            free(lk);
        }
        free(y), free(pre), free(y_ref), free(p_ref), free(yd), free(pd);
        free(K), free(K_ref), free(C), free(C_ref);
    }
    s4_layer_destroy(layer);
}

/* ---- step mode -------------------------------------------------------------------------------- */

/* The layer of a case with its forward stages replayed (so an S4 layer's C-tilde is what
 * the reference had when it stepped or forwarded with a state). */
static s4_layer *replayed_layer(const d_case *dc, const s4_layer_config *cfg)
{
    s4_layer *layer = s4t_layer_from_params(cfg, dc->params_init);
    for (int s = 0; s < dc->n_stages; s++) {
        float *y = stage_forward(layer, dc, s, NULL);
        free(y);
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), dc->st[s].l_kernel_after);
    }
    return layer;
}

static void test_step(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config cfg = case_config(dc);
    s4_layer *layer = replayed_layer(dc, &cfg);
    const int diag = dc->mode == S4_MODE_DIAG;
    s4_step *const SENT = (s4_step *)(uintptr_t)0x5eed;
    s4_step *p = SENT;
    if (dc->bidirectional) {
        for (int m = 0; m < 3; m++)
            assert_fails(S4_ERR_INVALID_ARGUMENT,
                         s4_step_create(layer, (s4_step_mode)m, 1, 1.0, &p));
        assert_ptr_equal(p, SENT);
        print_message("%-36s bidirectional: no step mode (refused)\n", dc->name);
        s4_layer_destroy(layer);
        return;
    }
    if (diag && dc->disc == S4_DISC_DSS) {
        assert_fails(S4_ERR_UNSUPPORTED, s4_step_create(layer, S4_STEP_DIAGONAL, 1, 1.0, &p));
        assert_ptr_equal(p, SENT);
        print_message("%-36s dss: no step mode (refused: %s)\n", dc->name, s4_last_error());
        s4_layer_destroy(layer);
        return;
    }
    assert_true(dc->step_stage >= 0);
    if (diag) /* an S4D layer steps with S4_STEP_DIAGONAL only */
        for (int m = 0; m < 2; m++) {
            assert_fails(S4_ERR_INVALID_ARGUMENT,
                         s4_step_create(layer, (s4_step_mode)m, 1, 1.0, &p));
            assert_ptr_equal(p, SENT);
        }
    const d_stage *st = &dc->st[dc->step_stage];
    const int B = dc->B, H = dc->H, F = s4_layer_output_features(layer);
    const int64_t L = st->L;
    const size_t ny = (size_t)B * F * (size_t)L;
    float *u = load_u(st->u, B, H, L);
    /* Conv output of the same stage (on a layer replayed up to it), to show the step == conv
     * invariant where the conv kernel is not truncated. */
    float *y_conv = NULL;
    if (st->kernel_length == L && st->rate == 1.0) {
        s4_layer *again = replayed_layer(dc, &cfg);
        s4_forward *f = forward_or_fail(again, B, L, st->rate, "conv for step");
        y_conv = s4t_falloc(ny, FSENTINEL);
        assert_int_equal(s4_forward_execute(f, u, y_conv, NULL, NULL, 0), S4_OK);
        s4_forward_destroy(f);
        s4_layer_destroy(again);
    }
    for (int m = diag ? S4_STEP_DIAGONAL : 0; m < 3; m++) {
        const double t0 = now();
        s4_status stt = s4_step_create(layer, (s4_step_mode)m, B, st->rate, &p);
        if (!diag && m == S4_STEP_DIAGONAL && stt == S4_ERR_NUMERICAL) {
            print_message("%-36s %-8s refused: %s\n", dc->name, MODE_NAME[m], s4_last_error());
            fig.dplr_diag_refused++;
            continue;
        }
        if (stt != S4_OK || !p)
            fail_msg("%s: s4_step_create(%s, rate %g): %s: %s", dc->name, MODE_NAME[m],
                     st->rate, s4_status_str(stt), s4_last_error());
        float *y = step_run(p, u, L, ny, NULL, 0, dc->name);
        const double t1 = now();
        double *yd = s4t_f2d_alloc(y, ny);
        double *ref = s4t_npy3(dc->step[m], B, F, L);
        const double e = s4t_max_rel_err(yd, ref, ny);
        const double ec = y_conv ? s4t_frel(y, y_conv, ny) : NAN;
        print_message("%-36s %-8s B %d L %4lld: vs reference f64 step %.2e  vs conv %.2e%s "
                      "(%.3f s)\n",
                      dc->name, MODE_NAME[m], B, (long long)L, e, ec,
                      y_conv ? "" : " (truncated conv kernel: not comparable)", t1 - t0);
        /* S4's diagonal mode may be refused (above); once accepted it is held to the same
         * bound as the others (s4.h promises 1e-3 of dense; these LegS N = 16 cases are
         * well conditioned in double). */
        const double tol = TOL_GOLDEN;
        if (diag) {
            s4t_worst(&fig.step_s4d, e);
            if (y_conv)
                s4t_worst(&fig.step_s4d_conv, ec);
        } else {
            s4t_worst(&fig.step_dplr[m], e);
        }
        assert_rel_err(e, tol, "step vs the reference's float64 step");
        if (y_conv)
            assert_rel_err(ec, tol, "step vs libs4's conv forward");
        free(y), free(yd), free(ref);
        s4_step_destroy(p);
        p = SENT;
    }
    free(u), free(y_conv);
    s4_layer_destroy(layer);
}

/* ---- forward with a carried state (the reference's forward(u, state=x0)) ------------------- */

static void test_forward_state(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config cfg = case_config(dc);
    s4_layer *layer = replayed_layer(dc, &cfg);
    const int B = dc->B, H = dc->H, F = s4_layer_output_features(layer);
    const int64_t L = dc->fs_L;
    const int64_t xdims[4] = {B, H, dc->N / 2, 2};
    const size_t nx = (size_t)B * H * (size_t)dc->N, ny = (size_t)B * F * (size_t)L;
    double *x0 = s4t_npy_shaped(dc->fs_x0, 4, xdims);
    double *x1_ref = s4t_npy_shaped(dc->fs_x1, 4, xdims);
    double *y_ref = s4t_npy3(dc->fs_y, B, F, L);
    float *u = load_u(dc->fs_u, B, H, L);

    s4_stream *plan = stream_or_fail(layer, B, L, 1.0, dc->name);
    double *x = s4t_dalloc(nx, 0.0);
    memcpy(x, x0, nx * sizeof *x);
    float *y = s4t_falloc(ny, FSENTINEL);
    const int64_t whole[1] = {L};
    stream_chunks(plan, B, H, F, L, u, whole, 1, y, x);
    double *yd = s4t_f2d_alloc(y, ny);
    const double ey = s4t_max_rel_err(yd, y_ref, ny), ex = s4t_max_rel_err(x, x1_ref, nx);

    /* The reference's chunking of the same call (its `chunks`), from the same x0. */
    double ecy = NAN, ecx = NAN;
    if (dc->n_fs_chunks > 0) {
        double *xc = s4t_dalloc(nx, 0.0);
        memcpy(xc, x0, nx * sizeof *xc);
        float *yc = s4t_falloc(ny, FSENTINEL);
        stream_chunks(plan, B, H, F, L, u, dc->fs_chunks, dc->n_fs_chunks, yc, xc);
        ecy = s4t_frel(yc, y, ny);
        ecx = s4t_max_rel_err(xc, x, nx);
        free(xc), free(yc);
    }
    print_message("%-36s forward_state L %lld: y %.2e  next state %.2e;  reference chunking: "
                  "y %.2e  state %.2e\n",
                  dc->name, (long long)L, ey, ex, ecy, ecx);
    s4t_worst(&fig.fs_y, ey);
    s4t_worst(&fig.fs_state, ex);
    s4t_worst(&fig.fs_chunk, ecy);
    s4t_worst(&fig.fs_chunk_state, ecx);
    assert_rel_err(ey, TOL_GOLDEN, "forward_state y vs fs_y_f64");
    assert_rel_err(ex, TOL_STATE, "forward_state next state vs fs_next_state_f64");
    if (dc->n_fs_chunks > 0) {
        assert_rel_err(ecy, TOL_CHUNK, "forward_state in the reference's chunks vs whole");
        assert_rel_err(ecx, TOL_STATE, "forward_state state in chunks vs whole");
    }
    free(x0), free(x1_ref), free(y_ref), free(u), free(x), free(y), free(yd);
    s4_stream_destroy(plan);
    s4_layer_destroy(layer);
}

/* ---- streaming == whole sequence ------------------------------------------------------------ */

/* Every stage whose convolution kernel is not truncated (kernel length == L; S4D at any
 * rate, since S4D at rate r is exactly the system at dt r; S4 at rate 1 only, docs/design.md 11):
 * chunks of 1, 2, 3, 5, 7, L and a seeded mix from zero state equal s4_forward's y, and end
 * in the same state as one whole chunk and as step mode. */
static void test_stream(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config cfg = case_config(dc);
    s4_layer *layer = s4t_layer_from_params(&cfg, dc->params_init);
    const int diag = dc->mode == S4_MODE_DIAG, dss = diag && dc->disc == S4_DISC_DSS;
    if (dc->bidirectional) {
        s4_stream *const SENT = (s4_stream *)(uintptr_t)0x5eed;
        s4_stream *q = SENT;
        const s4_forward_options o = {.rate = 1.0};
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_stream_create(layer, 1, 8, &o, &q));
        assert_ptr_equal(q, SENT);
        print_message("%-36s bidirectional: no stream (refused)\n", dc->name);
        s4_layer_destroy(layer);
        return;
    }
    const int B = dc->B, H = dc->H, F = s4_layer_output_features(layer);
    const size_t nx = (size_t)B * H * (size_t)dc->N;
    int checked = 0;
    for (int s = 0; s < dc->n_stages; s++) {
        const d_stage *st = &dc->st[s];
        const int64_t L = st->L;
        const size_t ny = (size_t)B * F * (size_t)L;
        float *y_fwd = stage_forward(layer, dc, s, NULL);
        if (st->kernel_length < L || (!diag && st->rate != 1.0)) {
            print_message("%-36s stage %d rate %.2f: not comparable (%s)\n", dc->name, s,
                          st->rate,
                          st->kernel_length < L ? "conv kernel truncated to l_max / rate"
                                                : "S4 conv at rate != 1 keeps C-tilde of Lk");
            free(y_fwd);
            continue;
        }
        float *u = load_u(st->u, B, H, L);
        s4_status stt;
        s4_stream *whole = stream_create(layer, B, L, st->rate, &stt);
        if (dss && stt == S4_ERR_UNSUPPORTED) {
            print_message("%-36s stage %d: dss stream refused (%s)\n", dc->name, s,
                          s4_last_error());
            fig.stream_dss_unsupported++;
            free(y_fwd), free(u);
            continue;
        }
        if (stt != S4_OK || !whole)
            fail_msg("%s stage %d: s4_stream_create(max_chunk = %lld, rate %g): %s: %s",
                     dc->name, s, (long long)L, st->rate, s4_status_str(stt), s4_last_error());
        float *yw = s4t_falloc(ny, FSENTINEL);
        double *xw = s4t_dalloc(nx, 0.0);
        const int64_t all[1] = {L};
        stream_chunks(whole, B, H, F, L, u, all, 1, yw, xw);
        double e_y = s4t_frel(yw, y_fwd, ny), e_x = 0.0;
        /* Chunkings. */
        int64_t sizes[6][16];
        int ns[6];
        const int64_t fixed[5] = {1, 2, 3, 5, 7};
        for (int k = 0; k < 5; k++)
            sizes[k][0] = fixed[k], ns[k] = 1;
        s4t_urand_seed(4242u + (uint64_t)L + (uint64_t)s);
        ns[5] = 16;
        for (int i = 0; i < 16; i++)
            sizes[5][i] = 1 + (int64_t)((s4t_urand() + 1.0) * 0.5 * (double)L);
        for (int k = 0; k < 6; k++) {
            int64_t cmax = 1;
            for (int i = 0; i < ns[k]; i++) {
                if (sizes[k][i] > L)
                    sizes[k][i] = L;
                cmax = sizes[k][i] > cmax ? sizes[k][i] : cmax;
            }
            s4_stream *p = stream_or_fail(layer, B, cmax, st->rate, dc->name);
            float *yc = s4t_falloc(ny, FSENTINEL);
            double *xc = s4t_dalloc(nx, 0.0);
            stream_chunks(p, B, H, F, L, u, sizes[k], ns[k], yc, xc);
            const double ey = s4t_frel(yc, y_fwd, ny), ex = s4t_max_rel_err(xc, xw, nx);
            if (!(ey <= TOL_CHUNK) || !(ex <= TOL_STATE))
                fail_msg("%s stage %d: chunks of %lld%s: y vs s4_forward %.3e (bound %.0e), "
                         "state vs one chunk %.3e (bound %.0e)",
                         dc->name, s, (long long)sizes[k][0], ns[k] > 1 ? " (mix)" : "", ey,
                         TOL_CHUNK, ex, TOL_STATE);
            s4t_worst(&e_y, ey);
            s4t_worst(&e_x, ex);
            free(yc), free(xc);
            s4_stream_destroy(p);
        }
        /* The carried state is step mode's. */
        double e_step = NAN;
        if (!dss) {
            s4_step *sp = s4t_step_or_fail(layer, diag ? S4_STEP_DIAGONAL : S4_STEP_LINEAR, B,
                                       st->rate, dc->name);
            double *xs = NULL;
            float *ys = step_run(sp, u, L, ny, &xs, nx, dc->name);
            e_step = s4t_max_rel_err(xw, xs, nx);
            free(ys), free(xs);
            s4_step_destroy(sp);
        }
        print_message("%-36s stage %d rate %.2f L %4lld: stream vs forward %.2e, states "
                      "chunks vs whole %.2e, whole vs step %.2e\n",
                      dc->name, s, st->rate, (long long)L, e_y, e_x, e_step);
        s4t_worst(&fig.stream, e_y);
        s4t_worst(&fig.stream_state, e_x);
        if (!dss)
            s4t_worst(&fig.stream_step_state, e_step);
        assert_rel_err(e_y, TOL_CHUNK, "stream vs s4_forward");
        if (!dss)
            assert_rel_err(e_step, TOL_STATE, "stream state vs step state");
        checked++;
        free(yw), free(xw), free(u), free(y_fwd);
        s4_stream_destroy(whole);
    }
    if (checked == 0)
        print_message("%-36s no stage comparable\n", dc->name);
    s4_layer_destroy(layer);
}

/* ---- rate == dt scaled by hand ----------------------------------------------------------------- */

/* inv_dt' with dt_transform(inv_dt') = r dt (for exp: inv_dt + log r, as the brief says). */
static double inv_dt_scaled(s4_transform t, double inv_dt, double dt, double r)
{
    switch (t) {
    case S4_TRANSFORM_EXP: return inv_dt + log(r);
    case S4_TRANSFORM_NONE: return r * dt;
    case S4_TRANSFORM_RELU: return r * dt - 1e-4;
    case S4_TRANSFORM_SOFTPLUS: return log(expm1(r * dt));
    case S4_TRANSFORM_SIGMOID: return log(r * dt / (1.0 - r * dt));
    }
    fail_msg("unknown dt_transform %d", (int)t);
    return NAN;
}

/* A diagonal layer's step at rate r equals the step, at rate 1, of the same layer with dt
 * scaled by hand; so do its discretizations. */
static void test_rate_step(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config cfg = case_config(dc);
    s4_layer *layer = s4t_layer_from_params(&cfg, dc->params_init);
    const s4_ssm *ssm = s4_layer_ssm(layer);
    const int B = dc->B, H = dc->H, N = dc->N, F = s4_layer_output_features(layer);
    const d_stage *st = &dc->st[dc->step_stage];
    const int64_t L = st->L;
    const size_t ny = (size_t)B * F * (size_t)L, nx = (size_t)B * H * (size_t)N;
    float *u = load_u(st->u, B, H, L);

    double *inv_dt = s4t_get_param(ssm, S4_PARAM_INV_DT, NULL);
    double *dt = s4t_get_param(ssm, S4_PARAM_DT, NULL);
    double *A_real = s4t_get_param(ssm, S4_PARAM_A_REAL, NULL);
    double *A_imag = s4t_get_param(ssm, S4_PARAM_A_IMAG, NULL);
    double *Bp = s4t_get_param(ssm, S4_PARAM_B, NULL);
    double *C = s4t_get_param(ssm, S4_PARAM_C, NULL);
    double *D = s4t_get_param(ssm, S4_PARAM_D, NULL);
    const int Cp = cfg.channels * (cfg.activation == S4_ACT_GLU ? 2 : 1);
    const size_t Fa = (size_t)(cfg.activation == S4_ACT_GLU ? Cp * H / 2 : Cp * H);
    const size_t Flin = cfg.final_act == S4_FINAL_GLU ? 2 * (size_t)H
                        : cfg.final_act == S4_FINAL_IDENTITY ? (size_t)H : 0;
    double *W = NULL, *b = NULL;
    if (Flin > 0) {
        W = s4t_dalloc(Flin * Fa, 0.0);
        b = s4t_dalloc(Flin, 0.0);
        assert_int_equal(s4_layer_get_output_linear(layer, W, Flin * Fa, b, Flin), S4_OK);
    }
    double *inv2 = s4t_dalloc((size_t)H, 0.0);
    double *dA1 = s4t_dalloc((size_t)N * N * 2, 0.0), *dB1 = s4t_dalloc((size_t)N * 2, 0.0);
    double *dA2 = s4t_dalloc((size_t)N * N * 2, 0.0), *dB2 = s4t_dalloc((size_t)N * 2, 0.0);
    const double rates[] = {0.5, 2.0, 3.7, 1.0 / 3.0};
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        const double r = rates[k];
        for (int h = 0; h < H; h++)
            inv2[h] = inv_dt_scaled(cfg.ssm.dt_transform, inv_dt[h], dt[h], r);
        const s4_layer_arrays a = {
            .ssm = {inv2, A_real, A_imag, Bp, NULL, C, D, 0}, .W = W, .b = b};
        s4_layer *scaled = NULL;
        s4_status stt = s4_layer_create_from_arrays(&cfg, &a, &scaled);
        if (stt != S4_OK)
            fail_msg("%s: s4_layer_create_from_arrays (dt x %g): %s: %s", dc->name, r,
                     s4_status_str(stt), s4_last_error());
        /* dt itself: how close the hand scaling is. */
        double *dt2 = s4t_get_param(s4_layer_ssm(scaled), S4_PARAM_DT, NULL);
        double e_dt = 0.0;
        for (int h = 0; h < H; h++)
            s4t_worst(&e_dt, fabs(dt2[h] - r * dt[h]) / (r * dt[h]));
        /* Discretizations. */
        double e_disc = 0.0;
        for (int h = 0; h < H; h++) {
            assert_int_equal(s4_ssm_discretize(ssm, h, r, dA1, dB1), S4_OK);
            assert_int_equal(s4_ssm_discretize(s4_layer_ssm(scaled), h, 1.0, dA2, dB2), S4_OK);
            s4t_worst(&e_disc, s4t_max_rel_err(dA1, dA2, (size_t)N * N * 2));
            s4t_worst(&e_disc, s4t_max_rel_err(dB1, dB2, (size_t)N * 2));
        }
        /* Steps. */
        s4_step *p1 = s4t_step_or_fail(layer, S4_STEP_DIAGONAL, B, r, "at rate r");
        s4_step *p2 = s4t_step_or_fail(scaled, S4_STEP_DIAGONAL, B, 1.0, "dt scaled, rate 1");
        double *x1 = NULL, *x2 = NULL;
        float *y1 = step_run(p1, u, L, ny, &x1, nx, "at rate r");
        float *y2 = step_run(p2, u, L, ny, &x2, nx, "dt scaled");
        const int bitwise = memcmp(y1, y2, ny * sizeof *y1) == 0;
        const double ey = s4t_frel(y1, y2, ny), ex = s4t_max_rel_err(x1, x2, nx);
        /* ... and rate really changes the system. */
        float *y0 = step_run(p1, u, L, ny, NULL, 0, "again");
        s4_step *p0 = s4t_step_or_fail(layer, S4_STEP_DIAGONAL, B, 1.0, "at rate 1");
        float *yr1 = step_run(p0, u, L, ny, NULL, 0, "at rate 1");
        const double e_changed = s4t_frel(yr1, y1, ny);
        print_message("%-36s rate %.3f: step y %s (%.2e), state %.2e, dA/dB %.2e (dt %.1e "
                      "off r dt); vs rate 1 %.2e\n",
                      dc->name, r, bitwise ? "bitwise equal" : "differs", ey, ex, e_disc,
                      e_dt, e_changed);
        fig.rate_runs++;
        fig.rate_bitwise += bitwise;
        s4t_worst(&fig.rate_y, ey);
        s4t_worst(&fig.rate_state, ex);
        s4t_worst(&fig.rate_disc, e_disc);
        assert_rel_err(ey, TOL_RATE, "step at rate r vs dt scaled by hand: outputs");
        assert_rel_err(ex, TOL_RATE, "step at rate r vs dt scaled by hand: state");
        assert_rel_err(e_disc, TOL_RATE, "discretize at rate r vs dt scaled by hand");
        assert_memory_equal(y0, y1, ny * sizeof *y0); /* a plan runs the same twice */
        assert_true(e_changed > 1e-6);
        free(dt2), free(x1), free(x2), free(y1), free(y2), free(y0), free(yr1);
        s4_step_destroy(p0);
        s4_step_destroy(p1);
        s4_step_destroy(p2);
        s4_layer_destroy(scaled);
    }
    free(u), free(inv_dt), free(dt), free(A_real), free(A_imag), free(Bp), free(C), free(D);
    free(W), free(b), free(inv2), free(dA1), free(dB1), free(dA2), free(dB2);
    s4_layer_destroy(layer);
}

/* ---- the diagonal inits reproduce the golden initial Lambda and B ------------------------- */

/* The reference's positive transforms (docs/design.md 4), for the golden stored values. */
static double transform_d(s4_transform t, double x)
{
    switch (t) {
    case S4_TRANSFORM_NONE: return x;
    case S4_TRANSFORM_EXP: return exp(x);
    case S4_TRANSFORM_RELU: return (x > 0.0 ? x : 0.0) + 1e-4;
    case S4_TRANSFORM_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case S4_TRANSFORM_SOFTPLUS: return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    fail_msg("unknown transform %d", (int)t);
    return NAN;
}

/* The reference's inverse transforms (inv_transform in its init: relu stores the value
 * itself, so relu(x) + 1e-4 shifts it by 1e-4). */
static double inv_transform_d(s4_transform t, double y)
{
    switch (t) {
    case S4_TRANSFORM_NONE:
    case S4_TRANSFORM_RELU: return y;
    case S4_TRANSFORM_EXP: return log(y);
    case S4_TRANSFORM_SIGMOID: return log(y / (1.0 - y));
    case S4_TRANSFORM_SOFTPLUS: return log(expm1(y));
    }
    fail_msg("unknown transform %d", (int)t);
    return NAN;
}

/* s4_ssm_create(mode DIAG, the case's init and transforms) against the deterministic parts
 * of params_init: Lambda = -f(A_real) - i g(A_imag) (so A_real and A_imag through the
 * transforms) and B. The golden values are float32, and some are float32 arithmetic:
 *  - every value: float32 storage, 2^-24 relative; diag-lin and diag-inv build Im Lambda
 *    in float32 (pi * arange, N/pi (N/(2n+1) - 1)): a few float32 ulps of max|Im| (the
 *    cancellation in N/(2n+1) - 1 is bounded by the ulp of N/(2n+1) times N/pi, itself
 *    <= max|Im| + N/pi). Bound: TOL_INIT = 2^-22 = 4 ulps, relative to the array's max.
 *  - LegS Re Lambda: the reference takes the mean of diag(A + P P^T) with its HiPPO A and P
 *    in float32: each entry -(n+1) + fl(sqrt(n + 1/2))^2 carries ~3u(n+1), the float32 sum
 *    of N terms ~u N^2 / 4; the mean is -1/2 within ~1.75 u N, i.e. 3.5 u N relative.
 *    libs4 computes it in double (exactly -1/2). Bound: 4 N 2^-24 relative, for legs Re.
 *  - LegS B = clip(V^* b): eigenvector phases are LAPACK's (s4.h, s4_nplr); the reference
 *    and libs4 differ by a real sign on some modes, which commutes with the clip. B is
 *    compared after aligning that sign per mode (the number of flips is printed); a
 *    non-real phase difference would fail. The reference's layer init also builds B with
 *    float32 noise: its params_init B differs from its own double nplr (hippo/legs_N*.
 *    safetensors, B_nplr) by up to 6.6e-7 of max at N = 64, where libs4 matches that double
 *    B_nplr (and w, Re = -1/2 exactly) to TOL_HIPPO. So, where the hippo file for N exists:
 *    libs4 vs B_nplr and w within TOL_HIPPO, and libs4 vs params_init B within TOL_INIT plus
 *    the reference's own noise |params_init B - B_nplr| measured here. */
#define TOL_HIPPO 1e-10
#define TOL_INIT 0x1p-22
static void test_init(void **state)
{
    const d_case *dc = *state;
    require_handled(dc);
    s4_layer_config lc = case_config(dc);
    s4_ssm_config cfg = lc.ssm;
    if (!s4t_init_of(dc->init, &cfg.init))
        fail_msg("%s: init \"%s\" has no s4_init", dc->name, dc->init);
    cfg.channels = lc.channels * (lc.activation == S4_ACT_GLU ? 2 : 1);
    cfg.bidirectional = lc.bidirectional;
    cfg.seed = 7;
    assert_int_equal((int)cfg.mode, (int)S4_MODE_DIAG);
    s4_ssm *ssm = NULL;
    s4_status st = s4_ssm_create(&cfg, &ssm);
    if (st != S4_OK)
        fail_msg("%s: s4_ssm_create(mode DIAG, init %s, disc %s): %s: %s", dc->name, dc->init,
                 DISC_NAME[cfg.disc], s4_status_str(st), s4_last_error());
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", dc->params_init);
    const int legs = cfg.init == S4_INIT_LEGS;
    size_t nL = 0, nB = 0, m = 0;
    double *Lam = s4t_get_param(ssm, S4_PARAM_LAMBDA, &nL);
    double *B = s4t_get_param(ssm, S4_PARAM_B, &nB);
    double *A_re = s4t_load_tensor(path, "layer.kernel.A_real", &m);
    assert_int_equal(2 * m, nL);
    double *A_im = s4t_load_tensor(path, "layer.kernel.A_imag", &m);
    assert_int_equal(2 * m, nL);
    double *B_ref = s4t_load_tensor(path, "layer.kernel.B", &m);
    assert_int_equal(m, nB);
    const size_t SN = nL / 2;
    double *re = s4t_dalloc(SN, 0.0), *im = s4t_dalloc(SN, 0.0), *re_ref = s4t_dalloc(SN, 0.0),
           *im_ref = s4t_dalloc(SN, 0.0);
    for (size_t i = 0; i < SN; i++) {
        re[i] = Lam[2 * i];
        im[i] = Lam[2 * i + 1];
        re_ref[i] = -transform_d(cfg.real_transform, A_re[i]);
        im_ref[i] = -transform_d(cfg.imag_transform, A_im[i]);
    }
    int flips = 0;
    if (legs)
        for (size_t i = 0; i < SN; i++) {
            const double dp = hypot(B[2 * i] - B_ref[2 * i], B[2 * i + 1] - B_ref[2 * i + 1]);
            const double dm = hypot(B[2 * i] + B_ref[2 * i], B[2 * i + 1] + B_ref[2 * i + 1]);
            if (dm < dp) {
                B_ref[2 * i] = -B_ref[2 * i];
                B_ref[2 * i + 1] = -B_ref[2 * i + 1];
                flips++;
            }
        }
    const double e_re = s4t_max_rel_err(re, re_ref, SN), e_im = s4t_max_rel_err(im, im_ref, SN);
    const double e_B = s4t_max_rel_err(B, B_ref, nB);
    /* LegS: the reference's double nplr, when the data has it for this N. */
    double tol_B = TOL_INIT, ref_noise = 0.0, e_hw = NAN, e_hB = NAN;
    char hpath[S4T_PATH_MAX];
    s4t_path(hpath, "hippo/legs_N%d.safetensors", cfg.N);
    FILE *hf = legs ? fopen(hpath, "rb") : NULL;
    if (hf) {
        fclose(hf);
        const size_t Nh = (size_t)cfg.N / 2, S = SN / Nh;
        size_t nw = 0, nb = 0;
        double *w = s4t_load_tensor(hpath, "w", &nw);
        double *Bn = s4t_load_tensor(hpath, "B_nplr", &nb);
        assert_int_equal(nw, 2 * Nh);
        assert_int_equal(nb, 2 * Nh);
        double *wt = s4t_dalloc(nL, 0.0), *Bt = s4t_dalloc(nB, 0.0);
        for (size_t c = 0; c < S; c++) {
            memcpy(wt + c * 2 * Nh, w, 2 * Nh * sizeof *wt);
            memcpy(Bt + c * 2 * Nh, Bn, 2 * Nh * sizeof *Bt);
        }
        /* Through the stored form, as the reference stores it (relu adds 1e-4). */
        for (size_t i = 0; i < SN; i++) {
            wt[2 * i] = -transform_d(cfg.real_transform,
                                     inv_transform_d(cfg.real_transform, -wt[2 * i]));
            wt[2 * i + 1] = -transform_d(cfg.imag_transform,
                                         inv_transform_d(cfg.imag_transform, -wt[2 * i + 1]));
        }
        /* libs4's B already sign-aligned with the (aligned) params_init B; align B_nplr with
         * libs4's the same way. */
        for (size_t i = 0; i < SN; i++) {
            const double dp = hypot(B[2 * i] - Bt[2 * i], B[2 * i + 1] - Bt[2 * i + 1]);
            const double dm = hypot(B[2 * i] + Bt[2 * i], B[2 * i + 1] + Bt[2 * i + 1]);
            if (dm < dp)
                Bt[2 * i] = -Bt[2 * i], Bt[2 * i + 1] = -Bt[2 * i + 1];
        }
        e_hw = s4t_max_rel_err(Lam, wt, nL);
        e_hB = s4t_max_rel_err(B, Bt, nB);
        ref_noise = s4t_max_rel_err(B_ref, Bt, nB);
        tol_B = TOL_INIT + ref_noise;
        free(w), free(Bn), free(wt), free(Bt);
    }
    const double tol_re = legs ? 4.0 * cfg.N * 0x1p-24 : TOL_INIT;
    print_message("%-36s init %-9s transforms %d/%d: Re Lambda %.2e (bound %.1e)  Im Lambda "
                  "%.2e  B %.2e%s\n",
                  dc->name, dc->init, (int)cfg.real_transform, (int)cfg.imag_transform, e_re,
                  tol_re, e_im, e_B,
                  legs ? (flips ? " (after aligning eigenvector signs)" : " (signs agree)")
                       : "");
    if (legs)
        print_message("%-36s   LegS: %d of %zu modes with the opposite eigenvector sign; vs the "
                      "reference's double nplr (hippo/): Lambda %.2e  B %.2e; its params_init "
                      "B noise %.2e (B bound %.2e)\n",
                      dc->name, flips, SN, e_hw, e_hB, ref_noise, tol_B);
    s4t_worst(&fig.init, e_re / tol_re * TOL_INIT);
    s4t_worst(&fig.init, e_im);
    s4t_worst(&fig.init, e_B / tol_B * TOL_INIT);
    assert_rel_err(e_re, tol_re, "Re Lambda of the init vs params_init");
    assert_rel_err(e_im, TOL_INIT, "Im Lambda of the init vs params_init");
    assert_rel_err(e_B, tol_B, "B of the init vs params_init");
    if (!isnan(e_hw)) {
        assert_rel_err(e_hw, TOL_HIPPO, "LegS Lambda vs the reference's double nplr w");
        assert_rel_err(e_hB, TOL_HIPPO, "LegS B vs the reference's double nplr B");
    }
    free(Lam), free(B), free(A_re), free(A_im), free(B_ref), free(re), free(im), free(re_ref),
        free(im_ref);
    s4_ssm_destroy(ssm);
}

/* ---- Vandermonde kernel == exact-exponential reference -------------------------------------- */

static const struct { s4_init init; const char *name; } vinits[] = {
    {S4_INIT_DIAG_LIN, "diag-lin"},
    {S4_INIT_DIAG_INV, "diag-inv"},
    {S4_INIT_LEGS, "legs"},
    {S4_INIT_DIAG_REAL, "diag-real"},
};
static const int64_t vL_short[] = {1, 2, 3, 7, 64, 1000, 4096};
static const int vN_short[] = {2, 8, 64};
static const int64_t vL_long[] = {16384, 65536};
static const double vrates[] = {1.0, 0.5, 2.0};

/* One (init, N, L, disc) combination; returns the relative error. */
static double vander_one(s4_init init, const char *iname, int N, int64_t L, s4_disc disc,
                         int combo, double *t_fast, double *t_ref, char *what, size_t wsize)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.mode = S4_MODE_DIAG;
    cfg.disc = disc;
    cfg.init = init;
    cfg.N = N;
    cfg.H = L >= 16384 ? 1 : 2;
    cfg.n_ssm = (combo % 3 == 2 && cfg.H % 2 == 0) ? 1 : 0;
    cfg.channels = 1 + combo % 2;
    cfg.bidirectional = (combo / 2) % 2;
    cfg.seed = 500u + (uint64_t)combo;
    const double rate = vrates[(combo / 4) % 3];
    snprintf(what, wsize, "%s %s N %d L %lld H %d C'' %d rate %.1f", iname, DISC_NAME[disc], N,
             (long long)L, cfg.H, cfg.channels * (1 + cfg.bidirectional), rate);
    s4_ssm *ssm = NULL;
    s4_status st = s4_ssm_create(&cfg, &ssm);
    if (st != S4_OK)
        fail_msg("%s: s4_ssm_create: %s: %s", what, s4_status_str(st), s4_last_error());
    const int rows = cfg.channels * (1 + cfg.bidirectional);
    double t0 = now();
    double *K = fast_kernel(ssm, L, rate, rows, cfg.H, what);
    double t1 = now();
    double *Kp = power_kernel(ssm, L, rate, rows, cfg.H, what);
    double t2 = now();
    *t_fast += t1 - t0;
    *t_ref += t2 - t1;
    const double e = s4t_max_rel_err(K, Kp, (size_t)rows * (size_t)cfg.H * (size_t)L);
    free(K), free(Kp);
    s4_ssm_destroy(ssm);
    return e;
}

static void test_vandermonde(void **state)
{
    const s4_disc disc = (s4_disc)(intptr_t)*state;
    double w = 0.0, t_fast = 0.0, t_ref = 0.0, t0 = now();
    char worst_what[200] = "", what[200];
    int combo = 0, fails = 0;
    for (size_t i = 0; i < sizeof vinits / sizeof vinits[0]; i++) {
        for (size_t j = 0; j < sizeof vN_short / sizeof vN_short[0]; j++)
            for (size_t k = 0; k < sizeof vL_short / sizeof vL_short[0]; k++, combo++) {
                const double e = vander_one(vinits[i].init, vinits[i].name, vN_short[j],
                                            vL_short[k], disc, combo, &t_fast, &t_ref, what,
                                            sizeof what);
                if (!(e <= TOL_VANDERMONDE)) {
                    print_message("  FAIL %-60s %.2e\n", what, e);
                    fails++;
                }
                if (isnan(e) || e > w || combo == 0) {
                    w = e;
                    snprintf(worst_what, sizeof worst_what, "%s", what);
                }
            }
        for (size_t k = 0; k < sizeof vL_long / sizeof vL_long[0]; k++, combo++) {
            const int N = k == 0 ? 64 : 16;
            const double e = vander_one(vinits[i].init, vinits[i].name, N, vL_long[k], disc,
                                        combo, &t_fast, &t_ref, what, sizeof what);
            print_message("  %-60s %.2e\n", what, e);
            if (!(e <= TOL_VANDERMONDE)) {
                print_message("  FAIL %-60s %.2e\n", what, e);
                fails++;
            }
            if (isnan(e) || e > w) {
                w = e;
                snprintf(worst_what, sizeof worst_what, "%s", what);
            }
        }
    }
    print_message("%s: %d combinations (L up to 65536), worst %.2e (%s); fast %.2f s, "
                  "reference %.2f s, total %.2f s\n",
                  DISC_NAME[disc], combo, w, worst_what, t_fast, t_ref, now() - t0);
    s4t_worst(&fig.vander[disc], w);
    if (fails)
        print_message("%s: %d combinations above %.0e\n", DISC_NAME[disc], fails,
                      TOL_VANDERMONDE);
    assert_rel_err(w, TOL_VANDERMONDE, worst_what);
}

/* dss accepts growing modes (Re Lambda > 0, the reference's P - P_max shift): banks with
 * every other mode's real part made positive, from arrays. */
static void test_vandermonde_dss_posreal(void **state)
{
    (void)state;
    static const int64_t Ls[] = {1, 2, 7, 64, 1000, 4096, 65536};
    double w = 0.0;
    char worst_what[160] = "";
    for (size_t k = 0; k < sizeof Ls / sizeof Ls[0]; k++) {
        const int64_t L = Ls[k];
        s4_ssm_config cfg;
        s4_ssm_config_default(&cfg);
        cfg.mode = S4_MODE_DIAG;
        cfg.disc = S4_DISC_DSS;
        cfg.init = S4_INIT_DIAG_LIN;
        cfg.H = 2;
        cfg.N = L >= 65536 ? 16 : 32;
        cfg.real_transform = S4_TRANSFORM_NONE;
        cfg.seed = 900u + (uint64_t)k;
        s4_ssm *made = NULL;
        assert_int_equal(s4_ssm_create(&cfg, &made), S4_OK);
        double *inv_dt = s4t_get_param(made, S4_PARAM_INV_DT, NULL);
        double *A_real = s4t_get_param(made, S4_PARAM_A_REAL, NULL);
        double *A_imag = s4t_get_param(made, S4_PARAM_A_IMAG, NULL);
        double *Bp = s4t_get_param(made, S4_PARAM_B, NULL);
        double *C = s4t_get_param(made, S4_PARAM_C, NULL);
        double *D = s4t_get_param(made, S4_PARAM_D, NULL);
        for (int i = 0; i < cfg.H * cfg.N / 2; i += 2)
            A_real[i] = -0.3; /* Re Lambda = +0.3 */
        const s4_ssm_arrays a = {inv_dt, A_real, A_imag, Bp, NULL, C, D, 0};
        s4_ssm *ssm = NULL;
        s4_status st = s4_ssm_create_from_arrays(&cfg, &a, &ssm);
        if (st != S4_OK)
            fail_msg("dss Re > 0: s4_ssm_create_from_arrays: %s: %s", s4_status_str(st),
                     s4_last_error());
        char what[160];
        snprintf(what, sizeof what, "dss Re(Lambda) = +0.3 on half the modes, N %d L %lld",
                 cfg.N, (long long)L);
        double *K = fast_kernel(ssm, L, 1.0, 1, cfg.H, what);
        double *Kp = power_kernel(ssm, L, 1.0, 1, cfg.H, what);
        const double e = s4t_max_rel_err(K, Kp, (size_t)cfg.H * (size_t)L);
        if (isnan(e) || e > w) {
            w = e;
            snprintf(worst_what, sizeof worst_what, "%s", what);
        }
        free(K), free(Kp), free(inv_dt), free(A_real), free(A_imag), free(Bp), free(C), free(D);
        s4_ssm_destroy(ssm);
        s4_ssm_destroy(made);
    }
    print_message("dss with growing modes: worst %.2e (%s)\n", w, worst_what);
    s4t_worst(&fig.vander_posreal, w);
    assert_rel_err(w, TOL_VANDERMONDE, worst_what);
}

/* ---- figures ------------------------------------------------------------------------------- */

static void test_summary(void **state)
{
    (void)state;
    print_message("SUMMARY kernel vs K_f64: zoh/bilinear/S4 %.2e, dss %.2e (bound %.0e); "
                  "s4_kernel_reference vs K_f64 (non-dss) %.2e\n",
                  fig.K, fig.K_dss, TOL_KERNEL, fig.K_ref);
    print_message("SUMMARY layer vs f64: y %.2e, pre %.2e (bound %.0e); dA/dB %.2e; C after "
                  "stages %.2e\n",
                  fig.y, fig.pre, TOL_GOLDEN, fig.disc, fig.ctilde);
    print_message("SUMMARY step vs reference f64 step: S4D %.2e (vs conv %.2e); S4 dense %.2e "
                  "linear %.2e diagonal %.2e (diagonal refused %d)\n",
                  fig.step_s4d, fig.step_s4d_conv, fig.step_dplr[0], fig.step_dplr[1],
                  fig.step_dplr[2], fig.dplr_diag_refused);
    print_message("SUMMARY forward_state: y %.2e, next state %.2e; reference chunks: y %.2e, "
                  "state %.2e\n",
                  fig.fs_y, fig.fs_state, fig.fs_chunk, fig.fs_chunk_state);
    print_message("SUMMARY stream vs forward %.2e (bound %.0e); states chunks vs whole %.2e, "
                  "whole vs step %.2e; dss streams refused %d\n",
                  fig.stream, TOL_CHUNK, fig.stream_state, fig.stream_step_state,
                  fig.stream_dss_unsupported);
    print_message("SUMMARY rate vs dt scaled: step y %.2e (bitwise in %d of %d), state %.2e, "
                  "dA/dB %.2e\n",
                  fig.rate_y, fig.rate_bitwise, fig.rate_runs, fig.rate_state, fig.rate_disc);
    print_message("SUMMARY Vandermonde vs reference: zoh %.2e, bilinear %.2e, dss %.2e, dss "
                  "growing modes %.2e (bound %.0e)\n",
                  fig.vander[0], fig.vander[1], fig.vander[2], fig.vander_posreal,
                  TOL_VANDERMONDE);
    print_message("SUMMARY init vs params_init (A_real, A_imag, B): %.2e\n", fig.init);
}

int main(int argc, char **argv)
{
    int count = 0;
    d_case *dc = cases_load(&count);
    s4t_suite s = {0};
    char name[200];
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "golden/%s", dc[i].name);
        s4t_suite_add(&s, name, test_golden, &dc[i]);
    }
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "step/%s", dc[i].name);
        s4t_suite_add(&s, name, test_step, &dc[i]);
    }
    for (int i = 0; i < count; i++)
        if (dc[i].has_fs) {
            snprintf(name, sizeof name, "forward_state/%s", dc[i].name);
            s4t_suite_add(&s, name, test_forward_state, &dc[i]);
        }
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "stream/%s", dc[i].name);
        s4t_suite_add(&s, name, test_stream, &dc[i]);
    }
    for (int i = 0; i < count; i++)
        if (dc[i].mode == S4_MODE_DIAG && dc[i].step_stage >= 0 && !dc[i].unhandled[0]) {
            snprintf(name, sizeof name, "rate_step/%s", dc[i].name);
            s4t_suite_add(&s, name, test_rate_step, &dc[i]);
        }
    for (int i = 0; i < count; i++)
        if (dc[i].mode == S4_MODE_DIAG && !dc[i].params_edited) {
            snprintf(name, sizeof name, "init/%s", dc[i].name);
            s4t_suite_add(&s, name, test_init, &dc[i]);
        }
    for (int d = 0; d < 3; d++) {
        snprintf(name, sizeof name, "vandermonde/%s", DISC_NAME[d]);
        s4t_suite_add(&s, name, test_vandermonde, (void *)(intptr_t)d);
    }
    s4t_suite_add(&s, "vandermonde/dss_growing_modes", test_vandermonde_dss_posreal, NULL);
    s4t_suite_add(&s, "summary", test_summary, NULL);
    int failures = s4t_suite_run(&s, "s4d", argc, argv);
    free(dc);
    return failures;
}
