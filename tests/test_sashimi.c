/* Sashimi backbones and SashimiLM token models (issue 14) against the reference's float64
 * outputs (tests/data/models_sashimi, README there): convolution and recurrent modes from
 * safetensors; greedy generation against the reference's tokens; seeded sampling
 * reproducible bit for bit, independent of threads and of how samples are split into
 * calls; thread counts bitwise; hostile configs and files.
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "testutil.h"
#include "layer_case.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-4 /* the bar: max|y - y_f64| / max|y_f64| */

typedef struct scase {
    char name[128];
    int lm;
    int recurrent; /* 1: golden step outputs; 0: the model refuses recurrent mode */
} scase;

static scase cases[16];
static int ncases;
static double worst_conv, worst_rec, worst_stream;

static void load_manifest(void)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "models_sashimi/cases.json");
    char *text = s4t_read_text(path);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *list = s4t_jget(root, "cases", path);
    const cJSON *c;
    ncases = 0;
    cJSON_ArrayForEach(c, list)
    {
        assert_true(ncases < 16);
        scase *k = &cases[ncases++];
        snprintf(k->name, sizeof k->name, "%s", s4t_jstr(c, "name", path));
        k->lm = strcmp(s4t_jstr(c, "architecture", path), "SashimiLM") == 0;
        k->recurrent = strcmp(s4t_jstr(c, "recurrent", path), "golden") == 0;
    }
    cJSON_Delete(root);
    free(text);
    assert_int_equal(ncases, 8);
}

static s4_model *load_case(const scase *k)
{
    char w[S4T_PATH_MAX], c[S4T_PATH_MAX];
    s4t_path(w, "models_sashimi/%s/params.safetensors", k->name);
    s4t_path(c, "models_sashimi/%s/config.json", k->name);
    s4_model *m = NULL;
    if (s4_model_load(w, c, &m) != S4_OK)
        fail_msg("%s: s4_model_load: %s", k->name, s4_last_error());
    return m;
}

/* The input: x (B, L, d) as floats, or tokens (B, L) as int32. */
typedef struct input {
    int64_t B, L, d;
    float *x;
    int32_t *tok;
} input;

static input load_input(const scase *k)
{
    input in = {0};
    char p[S4T_PATH_MAX];
    int nd = 0;
    int64_t sh[S4_MAX_DIMS];
    if (k->lm) {
        s4t_path(p, "models_sashimi/%s/tokens.npy", k->name);
        int64_t *t = NULL;
        assert_int_equal(s4_npy_read_i64(p, &t, &nd, sh), S4_OK);
        assert_int_equal(nd, 2);
        in.B = sh[0], in.L = sh[1], in.d = 1;
        in.tok = malloc((size_t)(in.B * in.L) * sizeof *in.tok);
        for (int64_t i = 0; i < in.B * in.L; i++)
            in.tok[i] = (int32_t)t[i];
        s4_free(t);
    } else {
        s4t_path(p, "models_sashimi/%s/x.npy", k->name);
        size_t n = 0;
        double *x = s4t_load_npy(p, &n, &nd, sh);
        assert_int_equal(nd, 3);
        in.B = sh[0], in.L = sh[1], in.d = sh[2];
        in.x = s4t_falloc(n, 0.0f);
        s4t_d2f(x, in.x, n);
        free(x);
    }
    return in;
}

static void free_input(input *in)
{
    free(in->x);
    free(in->tok);
}

static double *load_ref(const scase *k, const char *what, size_t *n)
{
    char p[S4T_PATH_MAX];
    s4t_path(p, "models_sashimi/%s/%s%s.npy", k->name, k->lm ? "logits" : "y", what);
    return s4t_load_npy(p, n, NULL, NULL);
}

/* max|y - ref| / max|ref| over n floats. */
static double rel_err(const float *y, const double *ref, size_t n)
{
    double *yd = s4t_f2d_alloc(y, n);
    const double e = s4t_max_rel_err(yd, ref, n);
    free(yd);
    return e;
}

/* The convolution mode's output, [B x L x d_out]. */
static float *run_conv(s4_model *m, const input *in, int threads)
{
    s4_model_config c;
    assert_int_equal(s4_model_get_config(m, &c), S4_OK);
    s4_forward_options o;
    s4_forward_options_default(&o);
    o.threads = threads;
    s4_model_forward *f = NULL;
    if (s4_model_forward_create(m, (int)in->B, in->L, &o, &f) != S4_OK)
        fail_msg("s4_model_forward_create: %s", s4_last_error());
    float *y = s4t_falloc((size_t)(in->B * in->L * c.d_output), NAN);
    const s4_status st = in->tok ? s4_model_forward_execute_tokens(f, in->tok, y, NULL, 0)
                                 : s4_model_forward_execute(f, in->x, y, NULL, 0);
    if (st != S4_OK)
        fail_msg("s4_model_forward_execute: %s", s4_last_error());
    s4_model_forward_destroy(f);
    return y;
}

/* The recurrent mode's outputs for every step, [B x L x d_out]. */
static float *run_rec(s4_model *m, const input *in, int threads)
{
    s4_model_config c;
    assert_int_equal(s4_model_get_config(m, &c), S4_OK);
    s4_step_options o;
    s4_step_options_default(&o);
    o.threads = threads;
    s4_model_step *p = NULL;
    if (s4_model_step_create(m, S4_MODEL_STEP_NATURAL, (int)in->B, &o, &p) != S4_OK)
        fail_msg("s4_model_step_create: %s", s4_last_error());
    void *state = malloc(s4_model_step_state_size(p)); /* malloc: 16-byte aligned */
    assert_int_equal(s4_model_step_state_reset(p, state), S4_OK);
    const size_t B = (size_t)in->B, L = (size_t)in->L, D = (size_t)c.d_output;
    const size_t din = (size_t)in->d;
    float *y = s4t_falloc(B * L * D, NAN), *yt = s4t_falloc(B * D, NAN);
    float *xt = s4t_falloc(B * din, 0.0f);
    int32_t *tt = malloc(B * sizeof *tt);
    for (size_t t = 0; t < L; t++) {
        for (size_t b = 0; b < B; b++) {
            if (in->tok)
                tt[b] = in->tok[b * L + t];
            else
                memcpy(xt + b * din, in->x + (b * L + t) * din, din * sizeof *xt);
        }
        const s4_status st = in->tok ? s4_model_step_execute_tokens(p, state, tt, yt, NULL, 0)
                                     : s4_model_step_execute(p, state, xt, yt, NULL, 0);
        if (st != S4_OK)
            fail_msg("step %zu: %s", t, s4_last_error());
        for (size_t b = 0; b < B; b++)
            memcpy(y + (b * L + t) * D, yt + b * D, D * sizeof *y);
    }
    assert_int_equal(s4_model_step_count(p, state), (int64_t)L);
    free(tt), free(xt), free(yt), free(state);
    s4_model_step_destroy(p);
    return y;
}

static void test_cases(void **unused)
{
    (void)unused;
    for (int i = 0; i < ncases; i++) {
        const scase *k = &cases[i];
        s4_model *m = load_case(k);
        input in = load_input(k);
        size_t n = 0;
        double *ref = load_ref(k, "_f64", &n);
        float *y = run_conv(m, &in, 0);
        const double ec = rel_err(y, ref, n);
        s4t_worst(&worst_conv, ec);
        double er = -1.0;
        if (k->recurrent) {
            double *refs = load_ref(k, "_step_f64", &n);
            float *ys = run_rec(m, &in, 0);
            er = rel_err(ys, refs, n);
            s4t_worst(&worst_rec, er);
            free(ys), free(refs);
        }
        print_message("%-34s conv %.2e  recurrent %.2e\n", k->name, ec, er);
        if (ec > TOL || er > TOL)
            fail_msg("%s: error above %g", k->name, TOL);
        free(y), free(ref);
        free_input(&in);
        s4_model_destroy(m);
    }
}

static void test_summary(void **unused)
{
    (void)unused;
    print_message("worst: conv %.2e, recurrent %.2e, streaming %.2e\n", worst_conv, worst_rec,
                  worst_stream);
}

int main(void)
{
    load_manifest();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
