/* Trained models through the library (src/io/io_layer.c, src/io/io_public.c,
 * src/io/io_safetensors_write.c): every golden case loaded from its config.json and each of
 * its parameter files (raw C, and C-tilde after a forward in float32 and float64), run in
 * conv, dense, linear and chunked modes against the float64 reference; the kernel against
 * K_f64; save / load round trips with identical tensor bytes; the JSON config's keys, types
 * and values; and hostile parameter files rejected with messages that name the file, the
 * tensor or key, and what was expected. The S4D manifest (tests/data/s4d) adds diagonal
 * layers: configs with mode and disc, loads checked value by value, round trips without P
 * or l_kernel, and the S4 tensors an S4D file must not have.
 * SPDX-License-Identifier: Apache-2.0 */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif

#include "model_cases.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds of the issue: max abs error / max abs reference. */
#define TOL_Y 1e-4
#define TOL_K 2e-5

static char tmp_dir[256];

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static bool contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* The last error must be `want` and mention every given substring. */
static void expect_error_(s4_status got, s4_status want, const char *const *needles,
                          const char *what, const char *file, int line)
{
    const char *msg = s4_last_error();
    if (got != want) {
        print_error("%s: status %s, want %s; message: %s\n", what, s4_status_str(got),
                    s4_status_str(want), msg);
        _fail(file, line);
    }
    for (const char *const *n = needles; *n; n++)
        if (!contains(msg, *n)) {
            print_error("%s: message lacks \"%s\": %s\n", what, *n, msg);
            _fail(file, line);
        }
    if (strchr(msg, '\n')) {
        print_error("%s: message has a newline: %s\n", what, msg);
        _fail(file, line);
    }
}
#define expect_error(got, want, what, ...)                                                    \
    expect_error_((got), (want), (const char *const[]){__VA_ARGS__, NULL}, (what), __FILE__,   \
                  __LINE__)

/* ---- running a loaded layer ------------------------------------------------------------- */

/* The kernel the layer applies to inputs of length L (the reference's length rules on a
 * copy of the bank, as `s4 kernel` does); *l its length, *rows its rows. */
static float *layer_kernel(const s4_layer *layer, int64_t L, int64_t *l, int *rows)
{
    s4_layer_config c;
    assert_int_equal(s4_layer_get_config(layer, &c), S4_OK);
    *l = c.l_max > 0 && c.l_max < L ? c.l_max : L;
    s4_ssm *ssm = NULL;
    assert_int_equal(s4_ssm_clone(s4_layer_ssm(layer), &ssm), S4_OK);
    if (s4_ssm_l_kernel(ssm) == 0 && c.l_max > 0)
        assert_int_equal(s4_ssm_setup_length(ssm, c.l_max), S4_OK);
    assert_int_equal(s4_ssm_setup_length(ssm, *l), S4_OK);
    s4_kernel *plan = NULL;
    assert_int_equal(s4_kernel_create(ssm, *l, NULL, &plan), S4_OK);
    *rows = s4_kernel_rows(plan);
    float *K = malloc((size_t)*rows * (size_t)c.ssm.H * (size_t)*l * sizeof *K);
    assert_non_null(K);
    assert_int_equal(s4_kernel_execute(plan, ssm, K, (size_t)*l, NULL, 0), S4_OK);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
    return K;
}

static void run_conv(s4_layer *layer, int B, int64_t L, const float *u, float *y)
{
    s4_forward *plan = NULL;
    s4_status st = s4_forward_create(layer, B, L, NULL, &plan);
    if (st != S4_OK)
        fail_msg("s4_forward_create: %s", s4_last_error());
    assert_int_equal(s4_forward_execute(plan, u, y, NULL, NULL, 0), S4_OK);
    s4_forward_destroy(plan);
}

static void run_step(const s4_layer *layer, s4_step_mode mode, int B, int64_t L,
                     const float *u, float *y)
{
    s4_step *plan = NULL;
    s4_status st = s4_step_create(layer, mode, B, 1.0, &plan);
    if (st != S4_OK)
        fail_msg("s4_step_create(mode %d): %s", (int)mode, s4_last_error());
    void *state = calloc(1, s4_step_state_size(plan));
    assert_non_null(state);
    assert_int_equal(s4_step_state_reset(plan, state), S4_OK);
    assert_int_equal(s4_step_run(plan, state, u, L, y, NULL, 0), S4_OK);
    free(state);
    s4_step_destroy(plan);
}

/* Conv mode streamed in chunks of T with the state carried ((B, H, L) layout). */
static void run_chunked(s4_layer *layer, int B, int H, int F, int N, int64_t L, int64_t T,
                        const float *u, float *y)
{
    s4_stream *plan = NULL;
    s4_status st = s4_stream_create(layer, B, T, NULL, &plan);
    if (st != S4_OK)
        fail_msg("s4_stream_create: %s", s4_last_error());
    double *state = calloc((size_t)B * (size_t)H * (size_t)N, sizeof *state);
    float *uc = malloc((size_t)B * (size_t)H * (size_t)T * sizeof *uc);
    float *yc = malloc((size_t)B * (size_t)F * (size_t)T * sizeof *yc);
    assert_true(state && uc && yc);
    for (int64_t t0 = 0; t0 < L; t0 += T) {
        const int64_t Tc = L - t0 < T ? L - t0 : T;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                memcpy(uc + ((size_t)b * H + h) * Tc, u + ((size_t)b * H + h) * L + t0,
                       (size_t)Tc * sizeof *uc);
        assert_int_equal(s4_stream_execute(plan, state, uc, Tc, yc, NULL, 0), S4_OK);
        for (int b = 0; b < B; b++)
            for (int f = 0; f < F; f++)
                memcpy(y + ((size_t)b * F + f) * L + t0, yc + ((size_t)b * F + f) * Tc,
                       (size_t)Tc * sizeof *yc);
    }
    free(state);
    free(uc);
    free(yc);
    s4_stream_destroy(plan);
}

static double rel_err_f(const float *got, const double *want, size_t n)
{
    double *g = s4t_f2d_alloc(got, n);
    const double e = s4t_max_rel_err(g, want, n);
    free(g);
    return e;
}

static s4_layer *load_ok(const char *weights, const char *config)
{
    s4_layer *layer = NULL;
    const s4_status st = s4_layer_load(weights, config, &layer);
    if (st != S4_OK)
        fail_msg("s4_layer_load(%s, %s): %s: %s", weights, config ? config : "NULL",
                 s4_status_str(st), s4_last_error());
    return layer;
}

/* ---- golden cases ------------------------------------------------------------------------ */

/* Every parameter file of a case, every mode, against the last stage's float64 outputs.
 * All files hold the same SSM: raw C, or C-tilde for a length the layer doubles from. */
static void test_golden(void **state)
{
    const mc_case *c = *state;
    size_t nu = 0, ny = 0, nK = 0;
    int nd = 0;
    int64_t ush[S4T_MAX_DIMS] = {0}, ysh[S4T_MAX_DIMS] = {0};
    double *u64 = s4t_load_npy(c->u, &nu, &nd, ush);
    assert_int_equal(nd, 3);
    double *yref = s4t_load_npy(c->y_f64, &ny, NULL, ysh);
    double *Kref = s4t_load_npy(c->K_f64, &nK, NULL, NULL);
    const int B = (int)ush[0], H = (int)ush[1];
    const int64_t L = ush[2];
    assert_int_equal(L, c->L);
    float *u = malloc(nu * sizeof *u), *y = malloc(ny * sizeof *y);
    assert_true(u && y);
    s4t_d2f(u64, u, nu);

    for (int p = 0; p < c->n_params; p++) {
        s4_layer *layer = load_ok(c->params[p], c->config);
        s4_layer_config cfg;
        assert_int_equal(s4_layer_get_config(layer, &cfg), S4_OK);
        const int F = s4_layer_output_features(layer);
        assert_int_equal((size_t)B * (size_t)F * (size_t)L, ny);

        int64_t l = 0;
        int rows = 0;
        float *K = layer_kernel(layer, L, &l, &rows);
        assert_int_equal((size_t)rows * (size_t)H * (size_t)l, nK);
        const double eK = rel_err_f(K, Kref, nK);
        free(K);

        run_conv(layer, B, L, u, y);
        const double ec = rel_err_f(y, yref, ny);
        double ed = NAN, el = NAN, ek = NAN;
        if (!c->bidirectional) {
            run_step(layer, S4_STEP_DENSE, B, L, u, y);
            ed = rel_err_f(y, yref, ny);
            run_step(layer, S4_STEP_LINEAR, B, L, u, y);
            el = rel_err_f(y, yref, ny);
            const int64_t T = L >= 3 ? (L + 2) / 3 : 1;
            run_chunked(layer, B, H, F, cfg.ssm.N / 2 * 2, L, T, u, y);
            ek = rel_err_f(y, yref, ny);
        }
        printf("[ figures  ] %-26s %-14s K %.2e  conv %.2e  dense %.2e  linear %.2e  "
               "chunked %.2e\n",
               c->name, c->params_label[p], eK, ec, ed, el, ek);
        char what[200];
        snprintf(what, sizeof what, "%s %s kernel", c->name, c->params_label[p]);
        assert_rel_err(eK, TOL_K, what);
        snprintf(what, sizeof what, "%s %s conv", c->name, c->params_label[p]);
        assert_rel_err(ec, TOL_Y, what);
        if (!c->bidirectional) {
            snprintf(what, sizeof what, "%s %s dense", c->name, c->params_label[p]);
            assert_rel_err(ed, TOL_Y, what);
            snprintf(what, sizeof what, "%s %s linear", c->name, c->params_label[p]);
            assert_rel_err(el, TOL_Y, what);
            snprintf(what, sizeof what, "%s %s chunked", c->name, c->params_label[p]);
            assert_rel_err(ek, TOL_Y, what);
        }
        /* Single-stage cases: the forward from the raw C leaves the reference's state_dict:
         * the same l_kernel and C-tilde as params_after_f64. */
        if (p == 0 && c->n_params == 3) {
            size_t n = 0;
            double *lk = s4t_load_tensor(c->params[2], "layer.kernel.l_kernel", NULL);
            double *Cref = s4t_load_tensor(c->params[2], "layer.kernel.C", &n);
            double *C = s4t_get_param(s4_layer_ssm(layer), S4_PARAM_C, NULL);
            assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), (int64_t)lk[0]);
            snprintf(what, sizeof what, "%s C-tilde after the forward vs params_after_f64",
                     c->name);
            assert_rel_err(s4t_max_rel_err(C, Cref, n), 1e-9, what);
            free(lk);
            free(Cref);
            free(C);
        }
        s4_layer_destroy(layer);
    }
    free(u64);
    free(u);
    free(y);
    free(yref);
    free(Kref);
}

/* The doubling case as the reference ran it: one layer, L = 8 then L = 20 (l_max None):
 * l_kernel 8 -> 32, outputs of both stages, and the saved state_dict equals params_after_s1. */
static void test_doubling_sequence(void **state)
{
    (void)state;
    const char *dir = "cases/doubling_h2_n8_l8_then_20";
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], after1[S4T_PATH_MAX];
    s4t_path(cfg, "%s/config.json", dir);
    s4t_path(init, "%s/params_init.safetensors", dir);
    s4t_path(after1, "%s/params_after_s1_f64.safetensors", dir);
    s4_layer *layer = load_ok(init, cfg);
    for (int s = 0; s < 2; s++) {
        char up[S4T_PATH_MAX], yp[S4T_PATH_MAX];
        s4t_path(up, "%s/u_s%d.npy", dir, s);
        s4t_path(yp, "%s/y_s%d_f64.npy", dir, s);
        size_t nu = 0, ny = 0;
        int64_t sh[S4T_MAX_DIMS] = {0};
        double *u64 = s4t_load_npy(up, &nu, NULL, sh);
        double *yref = s4t_load_npy(yp, &ny, NULL, NULL);
        float *u = malloc(nu * sizeof *u), *y = malloc(ny * sizeof *y);
        s4t_d2f(u64, u, nu);
        run_conv(layer, (int)sh[0], sh[2], u, y);
        assert_rel_err(rel_err_f(y, yref, ny), TOL_Y, "doubling stage output");
        assert_int_equal(s4_ssm_l_kernel(s4_layer_ssm(layer)), s == 0 ? 8 : 32);
        free(u64);
        free(yref);
        free(u);
        free(y);
    }
    char saved[S4T_PATH_MAX];
    tmp_path(saved, sizeof saved, "doubling_saved.safetensors");
    s4_save_options opt;
    s4_save_options_default(&opt);
    opt.dtype = S4_DTYPE_F64;
    assert_int_equal(s4_layer_save(layer, saved, &opt), S4_OK);
    size_t n = 0;
    double *C = s4t_load_tensor(saved, "layer.kernel.C", &n);
    double *Cref = s4t_load_tensor(after1, "layer.kernel.C", NULL);
    double *lk = s4t_load_tensor(saved, "layer.kernel.l_kernel", NULL);
    assert_int_equal((int64_t)lk[0], 32);
    assert_rel_err(s4t_max_rel_err(C, Cref, n), 1e-9, "doubled C-tilde vs params_after_s1_f64");
    free(C);
    free(Cref);
    free(lk);
    s4_layer_destroy(layer);
}

/* ---- save / load ------------------------------------------------------------------------- */

/* Raw bytes of every tensor of a and b are identical, and so are the name sets. */
static void assert_same_tensor_bytes(const char *a, const char *b)
{
    s4io_safetensors *fa = NULL, *fb = NULL;
    assert_int_equal(s4io_safetensors_open(a, &fa), S4_OK);
    assert_int_equal(s4io_safetensors_open(b, &fb), S4_OK);
    assert_int_equal(s4io_safetensors_count(fa), s4io_safetensors_count(fb));
    for (size_t i = 0; i < s4io_safetensors_count(fa); i++) {
        const s4io_tensor *ta = s4io_safetensors_at(fa, i);
        const s4io_tensor *tb = s4io_safetensors_find(fb, ta->name);
        if (!tb)
            fail_msg("%s: tensor %s missing from %s", a, ta->name, b);
        assert_int_equal(ta->dtype, tb->dtype);
        assert_int_equal(ta->ndim, tb->ndim);
        for (int d = 0; d < ta->ndim; d++)
            assert_int_equal(ta->shape[d], tb->shape[d]);
        const size_t bytes = ta->numel * (ta->dtype == S4IO_F32 ? 4 : 8);
        if (memcmp(ta->data, tb->data, bytes) != 0)
            fail_msg("%s: tensor %s: bytes differ from %s", a, ta->name, b);
    }
    s4io_safetensors_close(fa);
    s4io_safetensors_close(fb);
}

static void assert_same_config(const s4_layer_config *a, const s4_layer_config *b)
{
    assert_int_equal(a->ssm.H, b->ssm.H);
    assert_int_equal(a->ssm.N, b->ssm.N);
    assert_int_equal(a->ssm.rank, b->ssm.rank);
    assert_int_equal(a->ssm.n_ssm ? a->ssm.n_ssm : a->ssm.H, b->ssm.n_ssm ? b->ssm.n_ssm : b->ssm.H);
    assert_int_equal(a->ssm.dt_transform, b->ssm.dt_transform);
    assert_int_equal(a->ssm.real_transform, b->ssm.real_transform);
    assert_int_equal(a->ssm.imag_transform, b->ssm.imag_transform);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->bidirectional, b->bidirectional);
    assert_int_equal(a->activation, b->activation);
    assert_int_equal(a->final_act, b->final_act);
    assert_int_equal(a->swap_channels, b->swap_channels);
    assert_int_equal(a->transposed, b->transposed);
    assert_int_equal(a->l_max, b->l_max);
    assert_int_equal(a->ssm.init, b->ssm.init);
    assert_int_equal(a->ssm.mode, b->ssm.mode);
    assert_int_equal(a->ssm.disc, b->ssm.disc);
}

/* Load then save gives identical tensor bytes (F32 files as F32, F64 as F64); the saved file
 * loads alone (config in its metadata) and saves again to the same bytes. */
static void test_roundtrip(void **state)
{
    const mc_case *c = *state;
    for (int p = 0; p < c->n_params; p++) {
        const bool f64 = contains(c->params_label[p], "f64");
        s4_layer *layer = load_ok(c->params[p], c->config);
        char out1[S4T_PATH_MAX], out2[S4T_PATH_MAX];
        tmp_path(out1, sizeof out1, "rt1.safetensors");
        tmp_path(out2, sizeof out2, "rt2.safetensors");
        s4_save_options opt;
        s4_save_options_default(&opt);
        opt.dtype = f64 ? S4_DTYPE_F64 : S4_DTYPE_F32;
        assert_int_equal(s4_layer_save(layer, out1, &opt), S4_OK);
        assert_same_tensor_bytes(c->params[p], out1);

        s4_layer *again = load_ok(out1, NULL);
        s4_layer_config a, b;
        assert_int_equal(s4_layer_get_config(layer, &a), S4_OK);
        assert_int_equal(s4_layer_get_config(again, &b), S4_OK);
        assert_same_config(&a, &b);
        assert_int_equal(s4_layer_save(again, out2, &opt), S4_OK);
        size_t n1 = 0, n2 = 0;
        char *t1 = mc_read_text(out1), *t2 = mc_read_text(out2);
        struct stat s1, s2;
        assert_int_equal(stat(out1, &s1), 0);
        assert_int_equal(stat(out2, &s2), 0);
        n1 = (size_t)s1.st_size;
        n2 = (size_t)s2.st_size;
        assert_int_equal(n1, n2);
        assert_memory_equal(t1, t2, n1);
        free(t1);
        free(t2);

        /* The output linear reads back as stored. */
        if (a.final_act != S4_FINAL_NONE) {
            size_t nW = 0, nb = 0;
            double *W = s4t_load_tensor(c->params[p], "output_linear.0.weight", &nW);
            double *bias = s4t_load_tensor(c->params[p], "output_linear.0.bias", &nb);
            double *W2 = malloc(nW * sizeof *W2), *b2 = malloc(nb * sizeof *b2);
            assert_int_equal(s4_layer_get_output_linear(layer, W2, nW, b2, nb), S4_OK);
            assert_memory_equal(W, W2, nW * sizeof *W);
            assert_memory_equal(bias, b2, nb * sizeof *bias);
            assert_int_equal(s4_layer_get_output_linear(layer, W2, nW - 1, NULL, 0),
                             S4_ERR_INVALID_ARGUMENT);
            free(W);
            free(bias);
            free(W2);
            free(b2);
        } else {
            assert_int_equal(s4_layer_get_output_linear(layer, NULL, 0, NULL, 0),
                             S4_ERR_INVALID_ARGUMENT);
        }
        s4_layer_destroy(again);
        s4_layer_destroy(layer);
    }
}

/* Older files name the linear output_linear.weight (plain Linear) and Conv1d weights carry a
 * trailing 1: both load, give the same outputs, and save back under the chosen names. */
static void test_linear_names(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], plain[S4T_PATH_MAX], conv[S4T_PATH_MAX];
    char resaved[S4T_PATH_MAX], both[S4T_PATH_MAX];
    s4t_path(cfg, "cases/h2_n8_l7/config.json");
    s4t_path(init, "cases/h2_n8_l7/params_init.safetensors");
    tmp_path(plain, sizeof plain, "plain.safetensors");
    tmp_path(conv, sizeof conv, "conv1d.safetensors");
    tmp_path(resaved, sizeof resaved, "resaved.safetensors");
    tmp_path(both, sizeof both, "both.safetensors");
    mc_file f;
    mc_file_load(init, &f);
    mc_file_rename(&f, "output_linear.0.weight", "output_linear.weight");
    mc_file_rename(&f, "output_linear.0.bias", "output_linear.bias");
    mc_file_write(&f, plain);
    const int w = mc_file_index(&f, "output_linear.weight");
    f.t[w].ndim = 3;
    f.t[w].shape[2] = 1;
    mc_file_write(&f, conv);
    mc_file_free(&f);

    s4_layer *a = load_ok(init, cfg), *b = load_ok(plain, cfg), *c = load_ok(conv, cfg);
    double W[8], W2[8], W3[8];
    assert_int_equal(s4_layer_get_output_linear(a, W, 8, NULL, 0), S4_OK);
    assert_int_equal(s4_layer_get_output_linear(b, W2, 8, NULL, 0), S4_OK);
    assert_int_equal(s4_layer_get_output_linear(c, W3, 8, NULL, 0), S4_OK);
    assert_memory_equal(W, W2, sizeof W);
    assert_memory_equal(W, W3, sizeof W);
    s4_save_options opt;
    s4_save_options_default(&opt);
    opt.plain_linear_names = 1;
    assert_int_equal(s4_layer_save(b, resaved, &opt), S4_OK);
    assert_same_tensor_bytes(plain, resaved);
    s4_layer_destroy(a);
    s4_layer_destroy(b);
    s4_layer_destroy(c);

    /* Both spellings at once: refused. */
    mc_file_load(init, &f);
    const int64_t shape[1] = {4};
    mc_file_add(&f, "output_linear.bias", S4IO_F32, 1, shape, 0.5);
    mc_file_write(&f, both);
    mc_file_free(&f);
    s4_layer *l = NULL;
    expect_error(s4_layer_load(both, cfg, &l), S4_ERR_FORMAT, "both spellings", both,
                 "output_linear");
    assert_null(l);
}

/* A fresh layer (config parsed for init) saved as F64 loads back with identical values. */
static void test_fresh_layer_roundtrip(void **state)
{
    (void)state;
    s4_layer_config cfg;
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 3, \"d_state\": 8, \"init\": \"legt\","
                                           " \"rank\": 2, \"channels\": 2, \"activation\": "
                                           "\"glu\", \"final_act\": \"id\", \"l_max\": 12}",
                                           "fresh", S4_CONFIG_FOR_INIT, &cfg),
                     S4_OK);
    assert_int_equal(cfg.ssm.init, S4_INIT_LEGT);
    s4_layer *layer = NULL;
    assert_int_equal(s4_layer_create(&cfg, &layer), S4_OK);
    char out[S4T_PATH_MAX];
    tmp_path(out, sizeof out, "fresh.safetensors");
    s4_save_options opt;
    s4_save_options_default(&opt);
    opt.dtype = S4_DTYPE_F64;
    assert_int_equal(s4_layer_save(layer, out, &opt), S4_OK);
    s4_layer *back = load_ok(out, NULL);
    const s4_param which[] = {S4_PARAM_INV_DT, S4_PARAM_A_REAL, S4_PARAM_A_IMAG, S4_PARAM_B,
                              S4_PARAM_P,      S4_PARAM_C,      S4_PARAM_D};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        size_t n = 0;
        double *x = s4t_get_param(s4_layer_ssm(layer), which[i], &n);
        double *y = s4t_get_param(s4_layer_ssm(back), which[i], NULL);
        assert_memory_equal(x, y, n * sizeof *x);
        free(x);
        free(y);
    }
    s4_layer_config c2;
    assert_int_equal(s4_layer_get_config(back, &c2), S4_OK);
    assert_same_config(&cfg, &c2);
    /* A save option out of range is refused without writing. */
    opt.dtype = S4_DTYPE_I64;
    expect_error(s4_layer_save(layer, out, &opt), S4_ERR_INVALID_ARGUMENT, "save I64", "dtype");
    s4_layer_destroy(layer);
    s4_layer_destroy(back);
}

/* s4_layer_config_to_json writes only what the parser reads back: a config outside the
 * parser's ranges is refused with the key named, instead of becoming JSON (NaN as null, a
 * negative n_ssm as null, an odd d_state ...) that s4_layer_load would then reject. */
static void test_config_to_json_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int what;
    } bad[] = {{"dt_min", 0},         {"dt_max", 1},          {"dt_min", 2},
               {"dt_max", 3},         {"n_ssm", 4},           {"n_ssm", 5},
               {"d_state", 6},        {"d_state", 7},         {"channels", 8},
               {"channels", 9},       {"rank", 10},           {"l_max", 11},
               {"d_model", 12},       {"bidirectional", 13},  {"transposed", 14},
               {"swap_channels", 15}, {"d_model", 16}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s4_layer_config c;
        s4_layer_config_default(&c);
        c.ssm.H = 4;
        c.ssm.N = 8;
        switch (bad[i].what) {
        case 0: c.ssm.dt_min = NAN; break;
        case 1: c.ssm.dt_max = INFINITY; break;
        case 2: c.ssm.dt_min = -0.001; break;
        case 3: c.ssm.dt_max = 0.0; break;
        case 4: c.ssm.n_ssm = -1; break;
        case 5: c.ssm.n_ssm = 3; break;            /* does not divide d_model = 4 */
        case 6: c.ssm.N = 7; break;
        case 7: c.ssm.N = (1 << 16) + 2; break;
        case 8: c.channels = 1025; break;
        case 9: c.channels = 0; break;
        case 10: c.ssm.rank = 65; break;
        case 11: c.l_max = ((int64_t)1 << 40) + 1; break;
        case 12: c.ssm.H = 0; break;
        case 13: c.bidirectional = 2; break;
        case 14: c.transposed = -1; break;
        case 15: c.swap_channels = 7; break;
        case 16: c.ssm.H = INT_MAX / 2 + 1; break;
        }
        char *json = (char *)&json, what[64];
        snprintf(what, sizeof what, "to_json case %d", bad[i].what);
        char key[40];
        snprintf(key, sizeof key, "'%s'", bad[i].key);
        expect_error(s4_layer_config_to_json(&c, &json), S4_ERR_INVALID_ARGUMENT, what, key);
        assert_ptr_equal(json, (char *)&json); /* untouched */
    }
    /* The extremes the parser accepts are written, and read back the same. */
    s4_layer_config c, back;
    s4_layer_config_default(&c);
    c.ssm.H = 6;
    c.ssm.N = 1 << 16;
    c.ssm.n_ssm = 3;
    c.ssm.rank = 64;
    c.channels = 1024;
    c.l_max = (int64_t)1 << 40;
    c.ssm.dt_min = 0.5; /* above dt_max: a weights config does not use the range */
    c.ssm.dt_max = 1e-300;
    char *json = NULL;
    assert_int_equal(s4_layer_config_to_json(&c, &json), S4_OK);
    assert_int_equal(s4_layer_config_parse(json, "to_json", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_same_config(&c, &back);
    assert_true(back.ssm.dt_min == 0.5 && back.ssm.dt_max == 1e-300);
}

/* A layer loaded with a config whose dt range is not meaningful (s4_layer_load_with_config
 * does not use it) is saved with the reference's default range, never with values the
 * loader refuses: whatever the save returns, a file it wrote loads back alone. */
static void test_save_always_loads(void **state)
{
    (void)state;
    char cfg_path[S4T_PATH_MAX], init[S4T_PATH_MAX], out[S4T_PATH_MAX];
    s4t_path(cfg_path, "cases/h2_n8_l7/config.json");
    s4t_path(init, "cases/h2_n8_l7/params_init.safetensors");
    tmp_path(out, sizeof out, "dt_garbage.safetensors");
    s4_layer_config cfg;
    assert_int_equal(s4_layer_config_read(cfg_path, S4_CONFIG_FOR_WEIGHTS, &cfg), S4_OK);
    const double dts[][2] = {{NAN, 0.1}, {0.001, -INFINITY}, {0.0, 0.0}, {-1.0, NAN}};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        cfg.ssm.dt_min = dts[i][0];
        cfg.ssm.dt_max = dts[i][1];
        s4_layer *layer = NULL;
        assert_int_equal(s4_layer_load_with_config(init, &cfg, &layer), S4_OK);
        remove(out);
        const s4_status st = s4_layer_save(layer, out, NULL);
        if (st == S4_OK) {
            s4_layer *back = load_ok(out, NULL);
            s4_layer_config c2;
            assert_int_equal(s4_layer_get_config(back, &c2), S4_OK);
            assert_same_config(&cfg, &c2);
            assert_true(c2.ssm.dt_min == 0.001 && c2.ssm.dt_max == 0.1);
            s4_layer_destroy(back);
        } else {
            /* Refused up front, naming the key; nothing written. */
            expect_error(st, S4_ERR_INVALID_ARGUMENT, "save with dt garbage",
                         dts[i][0] > 0.0 ? "'dt_max'" : "'dt_min'");
            struct stat sb;
            assert_true(stat(out, &sb) != 0);
        }
        s4_layer_destroy(layer);
    }

    /* The saving form of the config (src/io/io_config.c) writes the reference's defaults for a
     * range that is not meaningful, and keeps a meaningful one. */
    char *json = NULL;
    s4_layer_config back;
    cfg.ssm.dt_min = NAN;
    cfg.ssm.dt_max = 0.5;
    assert_int_equal(s4io_config_json_for_weights(&cfg, &json), S4_OK);
    assert_int_equal(s4_layer_config_parse(json, "saved", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_true(back.ssm.dt_min == 0.001 && back.ssm.dt_max == 0.1);
    cfg.ssm.dt_min = 0.002;
    cfg.ssm.dt_max = 0.05;
    assert_int_equal(s4io_config_json_for_weights(&cfg, &json), S4_OK);
    assert_int_equal(s4_layer_config_parse(json, "saved", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_true(back.ssm.dt_min == 0.002 && back.ssm.dt_max == 0.05);
    /* Everything else is still checked. */
    cfg.channels = 0;
    expect_error(s4io_config_json_for_weights(&cfg, &json), S4_ERR_INVALID_ARGUMENT,
                 "saving form, channels 0", "'channels'");
}

/* transposed: false -- arrays (B, L, H): the same layer on the transposed golden input gives
 * the transposed golden output in every mode. */
static void transpose_blh(const float *x, float *y, int B, int R, int64_t C)
{
    /* x [B x R x C] -> y [B x C x R] */
    for (int b = 0; b < B; b++)
        for (int r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++)
                y[((size_t)b * C + c) * R + r] = x[((size_t)b * R + r) * C + c];
}

static void test_not_transposed(void **state)
{
    (void)state;
    char cfg_path[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX], Y[S4T_PATH_MAX];
    char cfg_t[S4T_PATH_MAX];
    s4t_path(cfg_path, "cases/h3_n16_l16/config.json");
    s4t_path(W, "cases/h3_n16_l16/params_init.safetensors");
    s4t_path(U, "cases/h3_n16_l16/u.npy");
    s4t_path(Y, "cases/h3_n16_l16/y_f64.npy");
    tmp_path(cfg_t, sizeof cfg_t, "transposed_false.json");
    s4_layer_config cfg;
    assert_int_equal(s4_layer_config_read(cfg_path, S4_CONFIG_FOR_WEIGHTS, &cfg), S4_OK);
    cfg.transposed = 0;
    char *json = NULL;
    assert_int_equal(s4_layer_config_to_json(&cfg, &json), S4_OK);
    mc_write_text(cfg_t, json);
    s4_free(json);

    size_t nu = 0, ny = 0;
    int64_t sh[S4T_MAX_DIMS] = {0};
    double *u64 = s4t_load_npy(U, &nu, NULL, sh);
    double *yref = s4t_load_npy(Y, &ny, NULL, NULL);
    const int B = (int)sh[0], H = (int)sh[1];
    const int64_t L = sh[2];
    float *u = malloc(nu * sizeof *u), *ut = malloc(nu * sizeof *ut);
    float *yt = malloc(ny * sizeof *yt), *y = malloc(ny * sizeof *y);
    s4t_d2f(u64, u, nu);
    transpose_blh(u, ut, B, H, L);
    s4_layer *layer = load_ok(W, cfg_t);
    const int F = s4_layer_output_features(layer);
    for (int mode = 0; mode < 3; mode++) {
        if (mode == 0) {
            run_conv(layer, B, L, ut, yt);
        } else if (mode == 1) {
            run_step(layer, S4_STEP_LINEAR, B, L, ut, yt);
        } else {
            s4_stream *plan = NULL;
            assert_int_equal(s4_stream_create(layer, B, L, NULL, &plan), S4_OK);
            double *st = calloc((size_t)B * H * 16, sizeof *st);
            assert_int_equal(s4_stream_execute(plan, st, ut, L, yt, NULL, 0), S4_OK);
            free(st);
            s4_stream_destroy(plan);
        }
        transpose_blh(yt, y, B, (int)L, F);
        assert_rel_err(rel_err_f(y, yref, ny), TOL_Y, mode == 0   ? "(B, L, H) conv"
                                                      : mode == 1 ? "(B, L, H) linear"
                                                                  : "(B, L, H) stream");
    }
    s4_layer_destroy(layer);
    free(u64);
    free(yref);
    free(u);
    free(ut);
    free(yt);
    free(y);
}

/* ---- the JSON config ------------------------------------------------------------------------ */

static void test_config_cases(void **state)
{
    const mc_case *c = *state;
    s4_layer_config cfg, back;
    assert_int_equal(s4_layer_config_read(c->config, S4_CONFIG_FOR_WEIGHTS, &cfg), S4_OK);
    const bool dplr_lin = contains(c->name, "dplrlin");
    if (dplr_lin) {
        expect_error(s4_layer_config_read(c->config, S4_CONFIG_FOR_INIT, &back),
                     S4_ERR_UNSUPPORTED, "dplr-lin for init", "init", "dplr-lin", c->config);
    } else {
        assert_int_equal(s4_layer_config_read(c->config, S4_CONFIG_FOR_INIT, &back), S4_OK);
    }
    char *json = NULL;
    assert_int_equal(s4_layer_config_to_json(&cfg, &json), S4_OK);
    assert_int_equal(s4_layer_config_parse(json, "to_json", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_same_config(&cfg, &back);
}

static void test_config_defaults_and_aliases(void **state)
{
    (void)state;
    s4_layer_config c;
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 4}", NULL, S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    assert_int_equal(c.ssm.H, 4);
    assert_int_equal(c.ssm.N, 64);
    assert_int_equal(c.ssm.rank, 1);
    assert_int_equal(c.ssm.n_ssm, 0);
    assert_int_equal(c.ssm.init, S4_INIT_LEGS);
    assert_int_equal(c.ssm.dt_transform, S4_TRANSFORM_EXP);
    assert_int_equal(c.ssm.real_transform, S4_TRANSFORM_EXP);
    assert_int_equal(c.ssm.imag_transform, S4_TRANSFORM_NONE);
    assert_true(c.ssm.dt_min == 0.001 && c.ssm.dt_max == 0.1);
    assert_int_equal(c.channels, 1);
    assert_int_equal(c.bidirectional, 0);
    assert_int_equal(c.activation, S4_ACT_GELU);
    assert_int_equal(c.final_act, S4_FINAL_GLU);
    assert_int_equal(c.swap_channels, 0);
    assert_int_equal(c.transposed, 1);
    assert_int_equal(c.l_max, 0);
    assert_int_equal(c.ssm.mode, S4_MODE_DPLR);
    assert_int_equal(c.ssm.disc, S4_DISC_ZOH);

    static const struct {
        const char *json;
        s4_activation act;
        s4_final_act fin;
    } aliases[] = {
        {"{\"d_model\": 2, \"activation\": null, \"final_act\": null}", S4_ACT_IDENTITY,
         S4_FINAL_NONE},
        {"{\"d_model\": 2, \"activation\": \"id\", \"final_act\": \"id\"}", S4_ACT_IDENTITY,
         S4_FINAL_IDENTITY},
        {"{\"d_model\": 2, \"activation\": \"identity\", \"final_act\": \"identity\"}",
         S4_ACT_IDENTITY, S4_FINAL_IDENTITY},
        {"{\"d_model\": 2, \"activation\": \"linear\", \"final_act\": \"linear\"}",
         S4_ACT_IDENTITY, S4_FINAL_IDENTITY},
        {"{\"d_model\": 2, \"activation\": \"swish\"}", S4_ACT_SILU, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"silu\"}", S4_ACT_SILU, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"relu\"}", S4_ACT_RELU, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"tanh\"}", S4_ACT_TANH, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"sigmoid\"}", S4_ACT_SIGMOID, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"glu\"}", S4_ACT_GLU, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"activation\": \"gelu_tanh\"}", S4_ACT_GELU_TANH, S4_FINAL_GLU},
        {"{\"d_model\": 2, \"final_act\": null, \"postact\": \"glu\"}", S4_ACT_GELU,
         S4_FINAL_GLU},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        s4_layer_config a;
        if (s4_layer_config_parse(aliases[i].json, "alias", S4_CONFIG_FOR_INIT, &a) != S4_OK)
            fail_msg("%s: %s", aliases[i].json, s4_last_error());
        assert_int_equal(a.activation, aliases[i].act);
        assert_int_equal(a.final_act, aliases[i].fin);
    }
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 2, \"init\": \"fourier\"}", NULL,
                                           S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    assert_int_equal(c.ssm.init, S4_INIT_FOUT);
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 2, \"init\": null, \"measure\": "
                                           "\"lagt\", \"mode\": \"s4\"}",
                                           NULL, S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    assert_int_equal(c.ssm.init, S4_INIT_LAGT);
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 2, \"mode\": null, \"kernel\": "
                                           "\"nplr\"}",
                                           NULL, S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    /* Training-only keys are accepted and ignored; so are defaults of unsupported ones. */
    assert_int_equal(s4_layer_config_parse(
                         "{\"d_model\": 2, \"dropout\": 0.1, \"tie_dropout\": true, "
                         "\"drop_kernel\": 0.0, \"lr\": {\"dt\": 0.001}, \"wd\": 0.0, "
                         "\"verbose\": false, \"deterministic\": false, \"backend\": \"naive\", "
                         "\"initializer\": null, \"gate\": null, \"gate_act\": \"gelu\", "
                         "\"bottleneck\": null, \"mult_act\": null, \"weight_norm\": false, "
                         "\"disc\": \"zoh\", \"bandlimit\": null, \"dt_fast\": false, "
                         "\"is_real\": false, \"dt_tie\": true}",
                         NULL, S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    /* Any init string is fine for trained weights. */
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 2, \"init\": \"diag-lin\"}", NULL,
                                           S4_CONFIG_FOR_WEIGHTS, &c),
                     S4_OK);
}

/* The names libs4 prints (s4_init_name, ...) are the names its parser reads: every value
 * of every named enum, through a config and back. */
static void parse_names(const char *json, s4_layer_config *c)
{
    const s4_status st = s4_layer_config_parse(json, "names", S4_CONFIG_FOR_INIT, c);
    if (st != S4_OK)
        fail_msg("%s: %s: %s", json, s4_status_str(st), s4_last_error());
}

static void test_enum_names_parse_back(void **state)
{
    (void)state;
    char json[160];
    s4_layer_config c;
    int n = 0;
    for (int v = 0; s4_init_name((s4_init)v); v++, n++) {
        const bool diag = v >= S4_INIT_DIAG_LIN;
        snprintf(json, sizeof json,
                 "{\"d_model\": 2, \"mode\": \"%s\", \"init\": \"%s\", \"rank\": 2}",
                 diag ? "diag" : "dplr", s4_init_name((s4_init)v));
        parse_names(json, &c);
        assert_int_equal(c.ssm.init, v);
    }
    for (int v = 0; s4_ssm_mode_name((s4_ssm_mode)v); v++, n++) {
        snprintf(json, sizeof json, "{\"d_model\": 2, \"mode\": \"%s\", \"init\": \"%s\"}",
                 s4_ssm_mode_name((s4_ssm_mode)v), v == S4_MODE_DIAG ? "diag-lin" : "legs");
        parse_names(json, &c);
        assert_int_equal(c.ssm.mode, v);
    }
    for (int v = 0; s4_disc_name((s4_disc)v); v++, n++) {
        snprintf(json, sizeof json,
                 "{\"d_model\": 2, \"mode\": \"diag\", \"init\": \"diag-lin\", \"disc\": \"%s\"}",
                 s4_disc_name((s4_disc)v));
        parse_names(json, &c);
        assert_int_equal(c.ssm.disc, v);
    }
    for (int v = 0; s4_transform_name((s4_transform)v); v++, n++) {
        snprintf(json, sizeof json, "{\"d_model\": 2, \"dt_transform\": \"%s\"}",
                 s4_transform_name((s4_transform)v));
        parse_names(json, &c);
        assert_int_equal(c.ssm.dt_transform, v);
    }
    for (int v = 0; s4_activation_name((s4_activation)v); v++, n++) {
        snprintf(json, sizeof json, "{\"d_model\": 2, \"activation\": \"%s\"}",
                 s4_activation_name((s4_activation)v));
        parse_names(json, &c);
        assert_int_equal(c.activation, v);
    }
    print_message("%d enum names parse back to their values\n", n);
    assert_int_equal(n, (S4_INIT_DIAG_QUAD + 1) + 2 + 3 + 5 + (S4_ACT_GLU + 1));
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        s4_status status;
        const char *key; /* must appear in the message */
    } bad[] = {
        {"[1, 2]", S4_ERR_FORMAT, "JSON object"},
        {"{\"d_model\": 4,}", S4_ERR_FORMAT, "not valid JSON"},
        {"{\"d_model\": 4} x", S4_ERR_FORMAT, "not valid JSON"},
        {"{}", S4_ERR_FORMAT, "'d_model'"},
        {"{\"d_model\": 4, \"foo\": 1}", S4_ERR_FORMAT, "unknown key 'foo'"},
        {"{\"d_model\": \"4\"}", S4_ERR_FORMAT, "'d_model'"},
        {"{\"d_model\": 4.5}", S4_ERR_FORMAT, "'d_model'"},
        {"{\"d_model\": 0}", S4_ERR_FORMAT, "'d_model'"},
        {"{\"d_model\": true}", S4_ERR_FORMAT, "'d_model'"},
        {"{\"d_model\": 4, \"d_model\": 4}", S4_ERR_FORMAT, "appears twice"},
        {"{\"d_model\": 4, \"d_state\": 7}", S4_ERR_UNSUPPORTED, "'d_state'"},
        {"{\"d_model\": 4, \"d_state\": null}", S4_ERR_FORMAT, "'d_state'"},
        {"{\"d_model\": 4, \"l_max\": 0}", S4_ERR_FORMAT, "'l_max'"},
        {"{\"d_model\": 4, \"l_max\": \"1024\"}", S4_ERR_FORMAT, "'l_max'"},
        {"{\"d_model\": 4, \"transposed\": \"yes\"}", S4_ERR_FORMAT, "'transposed'"},
        {"{\"d_model\": 4, \"bidirectional\": 1}", S4_ERR_FORMAT, "'bidirectional'"},
        {"{\"d_model\": 4, \"swap_channels\": null}", S4_ERR_FORMAT, "'swap_channels'"},
        {"{\"d_model\": 4, \"channels\": 0}", S4_ERR_FORMAT, "'channels'"},
        {"{\"d_model\": 4, \"rank\": 0}", S4_ERR_FORMAT, "'rank'"},
        {"{\"d_model\": 4, \"n_ssm\": 3}", S4_ERR_FORMAT, "'n_ssm'"},
        {"{\"d_model\": 4, \"n_ssm\": \"all\"}", S4_ERR_FORMAT, "'n_ssm'"},
        {"{\"d_model\": 4, \"activation\": \"foo\"}", S4_ERR_FORMAT, "'activation'"},
        {"{\"d_model\": 4, \"activation\": 1}", S4_ERR_FORMAT, "'activation'"},
        {"{\"d_model\": 4, \"activation\": \"elu\"}", S4_ERR_UNSUPPORTED, "'activation'"},
        {"{\"d_model\": 4, \"final_act\": \"tanh\"}", S4_ERR_UNSUPPORTED, "'final_act'"},
        {"{\"d_model\": 4, \"final_act\": \"bogus\"}", S4_ERR_FORMAT, "'final_act'"},
        {"{\"d_model\": 4, \"final_act\": false}", S4_ERR_FORMAT, "'final_act'"},
        {"{\"d_model\": 4, \"postact\": \"glu\"}", S4_ERR_FORMAT, "'postact'"},
        {"{\"d_model\": 4, \"mode\": \"dense\"}", S4_ERR_UNSUPPORTED, "'mode'"},
        {"{\"d_model\": 4, \"mode\": \"real\"}", S4_ERR_UNSUPPORTED, "'mode'"},
        {"{\"d_model\": 4, \"mode\": \"S4D\"}", S4_ERR_FORMAT, "'mode'"},
        {"{\"d_model\": 4, \"mode\": \"fancy\"}", S4_ERR_FORMAT, "'mode'"},
        {"{\"d_model\": 4, \"mode\": 1}", S4_ERR_FORMAT, "'mode'"},
        {"{\"d_model\": 4, \"mode\": null}", S4_ERR_FORMAT, "'mode'"},
        {"{\"d_model\": 4, \"mode\": null, \"kernel\": \"dense\"}", S4_ERR_UNSUPPORTED,
         "'kernel'"},
        {"{\"d_model\": 4, \"mode\": null, \"kernel\": \"diagonal\"}", S4_ERR_FORMAT,
         "'kernel'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"kernel\": \"s4d\"}", S4_ERR_FORMAT,
         "'kernel'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"disc\": \"euler\"}", S4_ERR_FORMAT,
         "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"disc\": \"ZOH\"}", S4_ERR_FORMAT, "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"disc\": \"\"}", S4_ERR_FORMAT, "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"s4d\", \"disc\": null}", S4_ERR_FORMAT, "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"s4d\", \"disc\": 0}", S4_ERR_FORMAT, "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"s4d\", \"disc\": [\"zoh\"]}", S4_ERR_FORMAT,
         "'disc'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"is_real\": true}", S4_ERR_UNSUPPORTED,
         "'is_real'"},
        {"{\"d_model\": 4, \"mode\": \"diag\", \"rank\": 0}", S4_ERR_FORMAT, "'rank'"},
        {"{\"d_model\": 4, \"kernel\": \"dplr\"}", S4_ERR_FORMAT, "'kernel'"},
        {"{\"d_model\": 4, \"measure\": \"legs\"}", S4_ERR_FORMAT, "'measure'"},
        {"{\"d_model\": 4, \"dt_tie\": false}", S4_ERR_UNSUPPORTED, "'dt_tie'"},
        {"{\"d_model\": 4, \"dt_fast\": true}", S4_ERR_UNSUPPORTED, "'dt_fast'"},
        {"{\"d_model\": 4, \"bandlimit\": 0.5}", S4_ERR_UNSUPPORTED, "'bandlimit'"},
        {"{\"d_model\": 4, \"is_real\": true}", S4_ERR_UNSUPPORTED, "'is_real'"},
        {"{\"d_model\": 4, \"dt_transform\": \"cube\"}", S4_ERR_FORMAT, "'dt_transform'"},
        {"{\"d_model\": 4, \"real_transform\": 2}", S4_ERR_FORMAT, "'real_transform'"},
        {"{\"d_model\": 4, \"imag_transform\": \"tanh\"}", S4_ERR_FORMAT, "'imag_transform'"},
        {"{\"d_model\": 4, \"dt_min\": -1}", S4_ERR_FORMAT, "'dt_min'"},
        {"{\"d_model\": 4, \"dt_max\": \"big\"}", S4_ERR_FORMAT, "'dt_max'"},
        {"{\"d_model\": 4, \"disc\": \"euler\"}", S4_ERR_FORMAT, "'disc'"},
        {"{\"d_model\": 4, \"gate\": 2}", S4_ERR_UNSUPPORTED, "'gate'"},
        {"{\"d_model\": 4, \"bottleneck\": 2}", S4_ERR_UNSUPPORTED, "'bottleneck'"},
        {"{\"d_model\": 4, \"mult_act\": \"gelu\"}", S4_ERR_UNSUPPORTED, "'mult_act'"},
        {"{\"d_model\": 4, \"weight_norm\": true}", S4_ERR_UNSUPPORTED, "'weight_norm'"},
        {"{\"d_model\": 4, \"dropout\": 1.5}", S4_ERR_FORMAT, "'dropout'"},
        {"{\"d_model\": 4, \"backend\": \"gpu\"}", S4_ERR_FORMAT, "'backend'"},
        {"{\"d_model\": 4, \"lr\": \"fast\"}", S4_ERR_FORMAT, "'lr'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s4_layer_config c, before;
        memset(&c, 0x5a, sizeof c);
        before = c;
        char what[160];
        snprintf(what, sizeof what, "config %s", bad[i].json);
        expect_error(s4_layer_config_parse(bad[i].json, "cfg.json", S4_CONFIG_FOR_WEIGHTS, &c),
                     bad[i].status, what, "cfg.json", bad[i].key);
        assert_memory_equal(&c, &before, sizeof c);
    }
    /* Only creating a fresh layer cares about the init. */
    s4_layer_config c;
    expect_error(s4_layer_config_parse("{\"d_model\": 4, \"init\": \"dplr-lin\"}", "x",
                                       S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_UNSUPPORTED, "init for init", "'init'", "dplr-lin");
    expect_error(s4_layer_config_parse("{\"d_model\": 4, \"init\": \"legt\"}", "x",
                                       S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_FORMAT, "legt rank 1", "'rank'");
    expect_error(s4_layer_config_parse("{\"d_model\": 3, \"init\": \"hippo\"}", "x",
                                       S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_FORMAT, "hippo odd", "'n_ssm'");
    expect_error(s4_layer_config_parse("{\"d_model\": 3, \"dt_min\": 0.5, \"dt_max\": 0.1}", "x",
                                       S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_FORMAT, "dt range", "'dt_max'");
    expect_error(s4_layer_config_parse(NULL, "x", S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_INVALID_ARGUMENT, "NULL json", "json");

    /* From a file: the message names the file; a missing file is an I/O error. */
    char path[S4T_PATH_MAX], missing[S4T_PATH_MAX];
    tmp_path(path, sizeof path, "bad_config.json");
    tmp_path(missing, sizeof missing, "no_such_config.json");
    mc_write_text(path, "{\"d_model\": 2, \"d_state\": 8, \"activation\": \"mish\"}");
    expect_error(s4_layer_config_read(path, S4_CONFIG_FOR_WEIGHTS, &c), S4_ERR_FORMAT,
                 "config file", path, "'activation'", "mish");
    expect_error(s4_layer_config_read(missing, S4_CONFIG_FOR_WEIGHTS, &c), S4_ERR_IO,
                 "missing config", missing);
    char weights[S4T_PATH_MAX];
    s4t_path(weights, "cases/h2_n8_l7/params_init.safetensors");
    s4_layer *layer = NULL;
    expect_error(s4_layer_load(weights, path, &layer), S4_ERR_FORMAT, "load with bad config",
                 path, "'activation'");
    assert_null(layer);
}

/* ---- hostile parameter files ----------------------------------------------------------- */

static const char *const base_names[] = {
    "layer.D",           "layer.kernel.A_imag", "layer.kernel.A_real",   "layer.kernel.B",
    "layer.kernel.C",    "layer.kernel.P",      "layer.kernel.inv_dt",   "layer.kernel.l_kernel",
    "output_linear.0.bias", "output_linear.0.weight"};
enum { N_BASE = sizeof base_names / sizeof base_names[0] };

static void base_paths(char *cfg, char *init)
{
    s4t_path_(cfg, S4T_PATH_MAX, "cases/h2_n8_l7/config.json");
    s4t_path_(init, S4T_PATH_MAX, "cases/h2_n8_l7/params_init.safetensors");
}

static void expect_load_fails(const char *weights, const char *config, s4_status want,
                              const char *what, const char *n1, const char *n2)
{
    s4_layer *layer = NULL;
    const char *needles[] = {weights, n1, n2, NULL};
    if (!n2)
        needles[2] = NULL;
    expect_error_(s4_layer_load(weights, config, &layer), want, needles, what, __FILE__,
                  __LINE__);
    assert_null(layer);
}

static void test_hostile_tensors(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], bad[S4T_PATH_MAX];
    base_paths(cfg, init);
    tmp_path(bad, sizeof bad, "bad.safetensors");
    mc_file f;

    /* Every tensor missing in turn. */
    for (int i = 0; i < N_BASE; i++) {
        mc_file_load(init, &f);
        mc_file_remove(&f, base_names[i]);
        mc_file_write(&f, bad);
        mc_file_free(&f);
        char what[96];
        snprintf(what, sizeof what, "missing %s", base_names[i]);
        expect_load_fails(bad, cfg, S4_ERR_FORMAT, what, "missing tensor", base_names[i]);
    }
    /* Every tensor with a wrong shape of the same size: the message gives both shapes. */
    for (int i = 0; i < N_BASE; i++) {
        mc_file_load(init, &f);
        s4io_tensor_out *t = &f.t[mc_file_index(&f, base_names[i])];
        if (t->ndim == 0) {
            t->ndim = 1;
            t->shape[0] = 1;
        } else if (t->ndim == 1) {
            t->ndim = 2;
            t->shape[1] = t->shape[0] / 2;
            t->shape[0] = 2;
        } else {
            const int64_t s0 = t->shape[0];
            t->shape[0] = t->shape[1];
            t->shape[1] = s0;
            if (t->shape[0] == t->shape[1]) { /* a square pair: change the rank instead */
                t->ndim++;
                t->shape[t->ndim - 1] = 1;
            }
        }
        mc_file_write(&f, bad);
        mc_file_free(&f);
        char what[96];
        snprintf(what, sizeof what, "wrong shape %s", base_names[i]);
        expect_load_fails(bad, cfg, S4_ERR_FORMAT, what, base_names[i], "expected shape");
    }
    /* NaN and Inf in every float tensor. */
    for (int i = 0; i < N_BASE; i++) {
        if (strcmp(base_names[i], "layer.kernel.l_kernel") == 0)
            continue;
        for (int k = 0; k < 2; k++) {
            mc_file_load(init, &f);
            f.values[mc_file_index(&f, base_names[i])][0] = k ? INFINITY : NAN;
            mc_file_write(&f, bad);
            mc_file_free(&f);
            char what[96];
            snprintf(what, sizeof what, "%s in %s", k ? "Inf" : "NaN", base_names[i]);
            expect_load_fails(bad, cfg, S4_ERR_FORMAT, what, base_names[i],
                              k ? "infinite" : "NaN");
        }
    }
    /* An extra tensor; an integer dtype for a parameter; bad l_kernel values. */
    mc_file_load(init, &f);
    const int64_t sh21[2] = {2, 1};
    mc_file_add(&f, "layer.kernel.log_dt", S4IO_F32, 2, sh21, -3.0);
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "extra tensor", "unexpected tensor",
                      "layer.kernel.log_dt");

    mc_file_load(init, &f);
    const int d = mc_file_index(&f, "layer.D");
    f.t[d].dtype = S4IO_I64;
    f.values[d][0] = 1.0;
    f.values[d][1] = -2.0;
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "I64 D", "layer.D", "F32 or F64");

    static const double bad_lk[] = {-1.0, 2.5, 1e300};
    for (int i = 0; i < 3; i++) {
        mc_file_load(init, &f);
        const int k = mc_file_index(&f, "layer.kernel.l_kernel");
        f.t[k].dtype = i == 0 ? S4IO_I64 : S4IO_F64;
        f.values[k][0] = bad_lk[i];
        mc_file_write(&f, bad);
        mc_file_free(&f);
        expect_load_fails(bad, cfg, S4_ERR_FORMAT, "bad l_kernel", "layer.kernel.l_kernel",
                          "integer");
    }
    /* A dt that the transform maps to infinity: refused by the SSM, reported for the file. */
    mc_file_load(init, &f);
    f.values[mc_file_index(&f, "layer.kernel.inv_dt")][1] = 1000.0;
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "dt overflow", "inv_dt", "parameters refused");
}

static void test_hostile_config_vs_file(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], c2[S4T_PATH_MAX], bad[S4T_PATH_MAX];
    base_paths(cfg, init);
    tmp_path(c2, sizeof c2, "c2.json");
    tmp_path(bad, sizeof bad, "meta.safetensors");

    /* The config disagrees with the file: the first tensor that differs is named with both
     * shapes. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 16, \"l_max\": 7}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "d_state 16", "layer.kernel.A_real",
                      "expected shape (2, 8)");
    mc_write_text(c2, "{\"d_model\": 3, \"d_state\": 8}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "d_model 3", "layer.kernel.inv_dt",
                      "found (2, 1)");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"channels\": 2}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "channels 2", "layer.kernel.C",
                      "expected shape (2, 2, 4, 2)");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"bidirectional\": true}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "bidirectional", "layer.kernel.C", "bidirectional");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"rank\": 2}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "rank 2", "layer.kernel.P", "rank");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"n_ssm\": 1}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "n_ssm 1", "layer.kernel.A_real", "n_ssm");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"final_act\": \"id\"}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "final id", "output_linear.0.weight",
                      "expected shape (2, 2)");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"final_act\": null}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "final none", "output_linear.0.",
                      "'final_act'");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"activation\": \"glu\"}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "glu act", "layer.kernel.C", "glu");
    /* An S4 (DPLR) file read as S4D: its P is named, with the key that rules it out. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"mode\": \"diag\"}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "diag config, dplr file", "layer.kernel.P",
                      "'mode'");

    /* No config anywhere; the config in the metadata, good and bad. */
    expect_load_fails(init, NULL, S4_ERR_FORMAT, "no config", "no architecture config",
                      "s4_config");
    mc_file f;
    mc_file_load(init, &f);
    f.meta[0] = "s4_config";
    f.meta[1] = "{\"d_model\": 2, \"d_state\": 8, \"l_max\": 7}";
    f.n_meta = 1;
    mc_file_write(&f, bad);
    s4_layer *layer = load_ok(bad, NULL);
    s4_layer_destroy(layer);
    f.meta[1] = "{\"d_model\": 2, \"d_state\": 8, \"l_max\": 7";
    mc_file_write(&f, bad);
    expect_load_fails(bad, NULL, S4_ERR_FORMAT, "meta not JSON", "__metadata__ 's4_config'",
                      "not valid JSON");
    f.meta[1] = "{\"d_model\": 2, \"d_state\": 8, \"swap_channels\": \"no\"}";
    mc_file_write(&f, bad);
    expect_load_fails(bad, NULL, S4_ERR_FORMAT, "meta bad type", "__metadata__ 's4_config'",
                      "'swap_channels'");
    /* A config file given explicitly wins over the metadata. */
    layer = load_ok(bad, cfg);
    s4_layer_destroy(layer);
    mc_file_free(&f);

    /* Files that do not exist. */
    char none[S4T_PATH_MAX];
    tmp_path(none, sizeof none, "none.safetensors");
    expect_load_fails(none, cfg, S4_ERR_IO, "missing weights", "cannot open", NULL);
}

/* The file cut at every byte: refused (the header, the JSON and every tensor's data are
 * cut in turn), never a crash or a leak. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], cut[S4T_PATH_MAX];
    base_paths(cfg, init);
    tmp_path(cut, sizeof cut, "cut.safetensors");
    struct stat st;
    assert_int_equal(stat(init, &st), 0);
    char *bytes = mc_read_text(init);
    for (size_t n = 0; n < (size_t)st.st_size; n++) {
        FILE *fp = fopen(cut, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(bytes, 1, n, fp), n);
        assert_int_equal(fclose(fp), 0);
        s4_layer *layer = NULL;
        const s4_status s = s4_layer_load(cut, cfg, &layer);
        if (s != S4_ERR_FORMAT || !contains(s4_last_error(), cut))
            fail_msg("cut at %zu: %s: %s", n, s4_status_str(s), s4_last_error());
        assert_null(layer);
    }
    free(bytes);
    /* Header garbage at the layer level too. */
    FILE *fp = fopen(cut, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("\x10\0\0\0\0\0\0\0{not json at all", 1, 24, fp), 24);
    assert_int_equal(fclose(fp), 0);
    expect_load_fails(cut, cfg, S4_ERR_FORMAT, "header not JSON", "not valid JSON", NULL);
}

/* ---- arrays and tensors ---------------------------------------------------------------------- */

static void test_npy(void **state)
{
    (void)state;
    char p32[S4T_PATH_MAX], p64[S4T_PATH_MAX], bad[S4T_PATH_MAX];
    tmp_path(p32, sizeof p32, "a32.npy");
    tmp_path(p64, sizeof p64, "a64.npy");
    tmp_path(bad, sizeof bad, "bad.npy");
    float x[24];
    double xd[24];
    for (int i = 0; i < 24; i++) {
        x[i] = (float)(i * 0.37 - 3.0);
        xd[i] = i * 0.37 - 3.0;
    }
    const int64_t shape[3] = {2, 3, 4};
    assert_int_equal(s4_npy_write_f32(p32, x, 3, shape), S4_OK);
    assert_int_equal(s4_npy_write_f64(p64, xd, 3, shape), S4_OK);
    float *r32 = NULL;
    double *r64 = NULL;
    int nd = 0;
    int64_t sh[S4_MAX_DIMS];
    assert_int_equal(s4_npy_read_f32(p32, &r32, &nd, sh), S4_OK);
    assert_int_equal(nd, 3);
    assert_true(sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    assert_memory_equal(r32, x, sizeof x);
    s4_free(r32);
    assert_int_equal(s4_npy_read_f64(p64, &r64, &nd, sh), S4_OK);
    assert_memory_equal(r64, xd, sizeof xd);
    s4_free(r64);
    /* float64 file read as float32 rounds; float32 file read as float64 is exact. */
    assert_int_equal(s4_npy_read_f32(p64, &r32, &nd, sh), S4_OK);
    assert_memory_equal(r32, x, sizeof x);
    s4_free(r32);
    assert_int_equal(s4_npy_read_f64(p32, &r64, &nd, sh), S4_OK);
    for (int i = 0; i < 24; i++)
        assert_true(r64[i] == (double)x[i]);
    s4_free(r64);
    /* Rank 0 and rank 8. */
    const int64_t sh8[8] = {1, 2, 1, 1, 3, 1, 1, 4};
    assert_int_equal(s4_npy_write_f32(p32, x, 8, sh8), S4_OK);
    assert_int_equal(s4_npy_read_f32(p32, &r32, &nd, sh), S4_OK);
    assert_int_equal(nd, 8);
    assert_memory_equal(r32, x, sizeof x);
    s4_free(r32);
    assert_int_equal(s4_npy_write_f64(p64, xd, 0, NULL), S4_OK);
    assert_int_equal(s4_npy_read_f64(p64, &r64, &nd, sh), S4_OK);
    assert_int_equal(nd, 0);
    assert_true(r64[0] == xd[0]);
    s4_free(r64);

    /* Hostile arrays: bad magic, Fortran order, big-endian, another dtype. */
    static const struct {
        const char *magic, *dict, *needle;
    } cases[] = {
        {"\x93NUMPX", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "magic"},
        {"\x93NUMPY", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
         "fortran_order"},
        {"\x93NUMPY", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "big-endian"},
        {"\x93NUMPY", "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
         "an integer array"},
        {"\x93NUMPY", "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", "descr"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char buf[136];
        memset(buf, ' ', 128);
        memcpy(buf, cases[i].magic, 6);
        buf[6] = 1;
        buf[7] = 0;
        buf[8] = 118; /* header length: 128 - 10 */
        buf[9] = 0;
        memcpy(buf + 10, cases[i].dict, strlen(cases[i].dict));
        buf[127] = '\n';
        memset(buf + 128, 0, 8); /* two float32 zeros */
        FILE *fp = fopen(bad, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, sizeof buf, fp), sizeof buf);
        assert_int_equal(fclose(fp), 0);
        float *r = NULL;
        expect_error(s4_npy_read_f32(bad, &r, &nd, sh), S4_ERR_FORMAT, cases[i].needle, bad,
                     cases[i].needle);
        assert_null(r);
    }
}

static void test_tensors_api(void **state)
{
    (void)state;
    char init[S4T_PATH_MAX], cfg[S4T_PATH_MAX];
    base_paths(cfg, init);
    s4_tensors *f = NULL;
    assert_int_equal(s4_tensors_open(init, &f), S4_OK);
    assert_int_equal(s4_tensors_count(f), N_BASE);
    s4_tensor_info info;
    assert_int_equal(s4_tensors_find(f, "layer.kernel.l_kernel", &info), S4_OK);
    assert_int_equal(info.dtype, S4_DTYPE_I64);
    assert_int_equal(info.ndim, 0);
    assert_int_equal(info.numel, 1);
    double lk = -1;
    assert_int_equal(s4_tensors_read(f, "layer.kernel.l_kernel", &lk, 1), S4_OK);
    assert_true(lk == 0.0);
    assert_int_equal(s4_tensors_find(f, "layer.kernel.C", &info), S4_OK);
    assert_int_equal(info.dtype, S4_DTYPE_F32);
    assert_int_equal(info.ndim, 4);
    assert_int_equal(info.shape[3], 2);
    for (size_t i = 0; i < s4_tensors_count(f); i++)
        assert_int_equal(s4_tensors_info(f, i, &info), S4_OK);
    expect_error(s4_tensors_info(f, N_BASE, &info), S4_ERR_INVALID_ARGUMENT, "index", "i =");
    expect_error(s4_tensors_find(f, "nope", &info), S4_ERR_INVALID_ARGUMENT, "find", "nope");
    assert_non_null(s4_tensors_metadata(f, "note"));
    assert_null(s4_tensors_metadata(f, "s4_config"));
    s4_tensors_close(f);
    s4_tensors_close(NULL);
}

/* ---- S4D (mode diag) ------------------------------------------------------------------------ */

/* The cases of tests/data/s4d/cases.json (S4D, with two S4 ones recorded beside them). */
static mc_case *s4d_cases_load(int *count) { return mc_cases_load_dir("s4d/", count); }

/* The string value of `key` in a JSON file, copied to out. */
static void json_file_string(const char *path, const char *key, char *out, size_t cap)
{
    char *text = mc_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    snprintf(out, cap, "%s", mc_str(root, key));
    cJSON_Delete(root);
}

/* The config.json of every case of the S4D manifest reads with the mode and disc it names,
 * for weights and for init, and writes back (mode and disc included) to the same config. */
static void test_s4d_config(void **state)
{
    const mc_case *c = *state;
    char mode[32], disc[32];
    json_file_string(c->config, "mode", mode, sizeof mode);
    json_file_string(c->config, "disc", disc, sizeof disc);
    s4_layer_config w, i, back;
    assert_int_equal(s4_layer_config_read(c->config, S4_CONFIG_FOR_WEIGHTS, &w), S4_OK);
    assert_int_equal(s4_layer_config_read(c->config, S4_CONFIG_FOR_INIT, &i), S4_OK);
    assert_same_config(&w, &i);
    assert_int_equal(w.ssm.mode, strcmp(mode, "diag") == 0 ? S4_MODE_DIAG : S4_MODE_DPLR);
    assert_int_equal(w.ssm.disc, strcmp(disc, "zoh") == 0        ? S4_DISC_ZOH
                                 : strcmp(disc, "bilinear") == 0 ? S4_DISC_BILINEAR
                                                                 : S4_DISC_DSS);
    char *json = NULL;
    assert_int_equal(s4_layer_config_to_json(&w, &json), S4_OK);
    char want[64];
    snprintf(want, sizeof want, "\"mode\":\"%s\"", mode);
    if (!contains(json, want))
        fail_msg("%s: to_json lacks %s: %s", c->name, want, json);
    snprintf(want, sizeof want, "\"disc\":\"%s\"", disc);
    if (!contains(json, want))
        fail_msg("%s: to_json lacks %s: %s", c->name, want, json);
    assert_int_equal(s4_layer_config_parse(json, "to_json", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_same_config(&w, &back);
}

/* Every parameter file of a case loads (from config.json, and with the config given
 * directly) and the layer holds exactly the file's values: stored parameters through
 * s4_ssm_get_param, the output linear through s4_layer_get_output_linear. An S4D file has
 * no P and no l_kernel, and the layer none either. */
static void test_s4d_load(void **state)
{
    const mc_case *c = *state;
    s4_layer_config cfg;
    assert_int_equal(s4_layer_config_read(c->config, S4_CONFIG_FOR_WEIGHTS, &cfg), S4_OK);
    const bool diag = cfg.ssm.mode == S4_MODE_DIAG;
    static const struct {
        s4_param which;
        const char *name;
    } params[] = {{S4_PARAM_INV_DT, "layer.kernel.inv_dt"},
                  {S4_PARAM_A_REAL, "layer.kernel.A_real"},
                  {S4_PARAM_A_IMAG, "layer.kernel.A_imag"},
                  {S4_PARAM_B, "layer.kernel.B"},
                  {S4_PARAM_C, "layer.kernel.C"},
                  {S4_PARAM_D, "layer.D"},
                  {S4_PARAM_P, "layer.kernel.P"}};
    for (int p = 0; p < c->n_params; p++) {
        s4_layer *from_file = load_ok(c->params[p], c->config), *direct = NULL;
        s4_status st = s4_layer_load_with_config(c->params[p], &cfg, &direct);
        if (st != S4_OK)
            fail_msg("s4_layer_load_with_config(%s): %s", c->params[p], s4_last_error());
        const s4_layer *layers[2] = {from_file, direct};
        for (int k = 0; k < 2; k++) {
            const s4_ssm *ssm = s4_layer_ssm(layers[k]);
            s4_layer_config got;
            assert_int_equal(s4_layer_get_config(layers[k], &got), S4_OK);
            assert_same_config(&cfg, &got);
            for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
                if (diag && params[i].which == S4_PARAM_P) {
                    assert_null(s4t_find_tensor(c->params[p], params[i].name, NULL, NULL, NULL));
                    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_P), 0);
                    continue;
                }
                size_t n = 0, ng = 0;
                double *want = s4t_load_tensor(c->params[p], params[i].name, &n);
                double *x = s4t_get_param(ssm, params[i].which, &ng);
                assert_int_equal(ng, n);
                if (memcmp(x, want, n * sizeof *x) != 0)
                    fail_msg("%s %s: %s differs from the file", c->name, c->params_label[p],
                             params[i].name);
                free(want);
                free(x);
            }
            double *lk = s4t_find_tensor(c->params[p], "layer.kernel.l_kernel", NULL, NULL, NULL);
            if (diag)
                assert_null(lk);
            assert_int_equal(s4_ssm_l_kernel(ssm), lk ? (int64_t)lk[0] : 0);
            free(lk);
            if (cfg.final_act != S4_FINAL_NONE) {
                size_t nW = 0, nb = 0;
                double *W = s4t_load_tensor(c->params[p], "output_linear.0.weight", &nW);
                double *b = s4t_load_tensor(c->params[p], "output_linear.0.bias", &nb);
                double *W2 = malloc(nW * sizeof *W2), *b2 = malloc(nb * sizeof *b2);
                assert_true(W2 && b2);
                assert_int_equal(s4_layer_get_output_linear(layers[k], W2, nW, b2, nb), S4_OK);
                assert_memory_equal(W, W2, nW * sizeof *W);
                assert_memory_equal(b, b2, nb * sizeof *b);
                free(W);
                free(b);
                free(W2);
                free(b2);
            }
        }
        s4_layer_destroy(from_file);
        s4_layer_destroy(direct);
    }
}

/* The saved S4D file: no P, no l_kernel, and the config in the metadata with mode diag and
 * the disc. */
static void test_s4d_saved_file(void **state)
{
    (void)state;
    static const char *const discs[] = {"zoh", "bilinear", "dss"};
    char cfg_path[S4T_PATH_MAX], init[S4T_PATH_MAX], out[S4T_PATH_MAX];
    s4t_path(cfg_path, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(init, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    tmp_path(out, sizeof out, "s4d_saved.safetensors");
    s4_layer_config cfg;
    assert_int_equal(s4_layer_config_read(cfg_path, S4_CONFIG_FOR_WEIGHTS, &cfg), S4_OK);
    for (int d = 0; d < 3; d++) {
        cfg.ssm.disc = (s4_disc)d;
        s4_layer *layer = NULL;
        assert_int_equal(s4_layer_load_with_config(init, &cfg, &layer), S4_OK);
        assert_int_equal(s4_layer_save(layer, out, NULL), S4_OK);
        s4_tensors *f = NULL;
        assert_int_equal(s4_tensors_open(out, &f), S4_OK);
        assert_int_equal(s4_tensors_count(f), 8);
        s4_tensor_info info;
        assert_int_equal(s4_tensors_find(f, "layer.kernel.P", &info), S4_ERR_INVALID_ARGUMENT);
        assert_int_equal(s4_tensors_find(f, "layer.kernel.l_kernel", &info),
                         S4_ERR_INVALID_ARGUMENT);
        const char *meta = s4_tensors_metadata(f, "s4_config");
        assert_non_null(meta);
        char want[64];
        snprintf(want, sizeof want, "\"disc\":\"%s\"", discs[d]);
        if (!contains(meta, "\"mode\":\"diag\"") || !contains(meta, want))
            fail_msg("saved config lacks mode diag or %s: %s", want, meta);
        s4_tensors_close(f);
        s4_layer *back = load_ok(out, NULL);
        s4_layer_config c2;
        assert_int_equal(s4_layer_get_config(back, &c2), S4_OK);
        assert_same_config(&cfg, &c2);
        s4_layer_destroy(back);
        s4_layer_destroy(layer);
    }
    /* The rank of a diagonal config is not used: any value loads, and the saved config
     * holds the reference's default instead of a value the parser would refuse. */
    cfg.ssm.rank = 0;
    cfg.ssm.disc = S4_DISC_BILINEAR;
    s4_layer *layer = NULL;
    assert_int_equal(s4_layer_load_with_config(init, &cfg, &layer), S4_OK);
    char *json = (char *)&json;
    expect_error(s4_layer_config_to_json(&cfg, &json), S4_ERR_INVALID_ARGUMENT, "rank 0 to_json",
                 "'rank'");
    assert_int_equal(s4_layer_save(layer, out, NULL), S4_OK);
    s4_layer *back = load_ok(out, NULL);
    s4_layer_config c2;
    assert_int_equal(s4_layer_get_config(back, &c2), S4_OK);
    assert_int_equal(c2.ssm.rank, 1);
    assert_int_equal(c2.ssm.mode, S4_MODE_DIAG);
    assert_int_equal(c2.ssm.disc, S4_DISC_BILINEAR);
    s4_layer_destroy(back);
    s4_layer_destroy(layer);
}

/* Hostile S4D files: a P or an l_kernel (an S4 layer's tensors) refused by name with the key
 * that rules them out; every tensor missing in turn; NaN; a config of the other mode; a
 * config struct with a mode or disc that is no enum value. */
static void test_s4d_hostile(void **state)
{
    (void)state;
    static const char *const names[] = {
        "layer.D",        "layer.kernel.A_imag", "layer.kernel.A_real",  "layer.kernel.B",
        "layer.kernel.C", "layer.kernel.inv_dt", "output_linear.0.bias", "output_linear.0.weight"};
    char cfg[S4T_PATH_MAX], init[S4T_PATH_MAX], bad[S4T_PATH_MAX], c2[S4T_PATH_MAX];
    s4t_path(cfg, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(init, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    tmp_path(bad, sizeof bad, "s4d_bad.safetensors");
    tmp_path(c2, sizeof c2, "s4d_c2.json");
    mc_file f;

    mc_file_load(init, &f);
    assert_int_equal(f.n, 8);
    const int64_t shP[4] = {1, 2, 4, 2};
    mc_file_add(&f, "layer.kernel.P", S4IO_F32, 4, shP, 0.0);
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "S4D with P", "unexpected tensor 'layer.kernel.P'",
                      "'mode'");

    mc_file_load(init, &f);
    const int64_t none[1] = {0};
    mc_file_add(&f, "layer.kernel.l_kernel", S4IO_I64, 0, none, 0.0);
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "S4D with l_kernel",
                      "unexpected tensor 'layer.kernel.l_kernel'", "'mode'");

    /* With P given as well, and the config given directly: still refused. */
    mc_file_load(init, &f);
    mc_file_add(&f, "layer.kernel.P", S4IO_F32, 4, shP, 0.5);
    mc_file_add(&f, "layer.kernel.l_kernel", S4IO_I64, 0, none, 0.0);
    mc_file_write(&f, bad);
    mc_file_free(&f);
    s4_layer_config c;
    assert_int_equal(s4_layer_config_read(cfg, S4_CONFIG_FOR_WEIGHTS, &c), S4_OK);
    s4_layer *layer = NULL;
    expect_error(s4_layer_load_with_config(bad, &c, &layer), S4_ERR_FORMAT, "S4D with both", bad,
                 "layer.kernel.");
    assert_null(layer);
    /* ... and that file is a valid S4 (DPLR) layer. */
    c.ssm.mode = S4_MODE_DPLR;
    assert_int_equal(s4_layer_load_with_config(bad, &c, &layer), S4_OK);
    s4_layer_destroy(layer);
    layer = NULL;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        mc_file_load(init, &f);
        mc_file_remove(&f, names[i]);
        mc_file_write(&f, bad);
        mc_file_free(&f);
        char what[96];
        snprintf(what, sizeof what, "S4D missing %s", names[i]);
        expect_load_fails(bad, cfg, S4_ERR_FORMAT, what, "missing tensor", names[i]);
    }
    mc_file_load(init, &f);
    f.values[mc_file_index(&f, "layer.kernel.A_real")][3] = NAN;
    mc_file_write(&f, bad);
    mc_file_free(&f);
    expect_load_fails(bad, cfg, S4_ERR_FORMAT, "S4D NaN", "layer.kernel.A_real", "NaN");

    /* The S4D file read as S4: P is missing. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"l_max\": 16}");
    expect_load_fails(init, c2, S4_ERR_FORMAT, "S4D file as dplr",
                      "missing tensor 'layer.kernel.P'", "'mode' is dplr");

    /* Enum values out of range in a config struct: the config's fault, not the file's. */
    assert_int_equal(s4_layer_config_read(cfg, S4_CONFIG_FOR_WEIGHTS, &c), S4_OK);
    c.ssm.mode = (s4_ssm_mode)7;
    expect_error(s4_layer_load_with_config(init, &c, &layer), S4_ERR_INVALID_ARGUMENT,
                 "mode 7", "'mode'");
    assert_null(layer);
    c.ssm.mode = S4_MODE_DIAG;
    c.ssm.disc = (s4_disc)9;
    expect_error(s4_layer_load_with_config(init, &c, &layer), S4_ERR_INVALID_ARGUMENT,
                 "disc 9", "'disc'");
    assert_null(layer);
}

/* Every diagonal init string and alias, in both modes, for weights and for init; each is
 * written back under its canonical name and reads back the same. The rank constraint of a
 * HiPPO init does not apply to a diagonal bank (P is dropped). */
static void test_s4d_config_inits(void **state)
{
    (void)state;
    static const struct {
        const char *name, *canonical;
        s4_init init;
    } inits[] = {
        {"legs", "legs", S4_INIT_LEGS},
        {"legt", "legt", S4_INIT_LEGT},
        {"lagt", "lagt", S4_INIT_LAGT},
        {"fout", "fout", S4_INIT_FOUT},
        {"fourier", "fout", S4_INIT_FOUT},
        {"hippo", "hippo", S4_INIT_HIPPO},
        {"diag-lin", "diag-lin", S4_INIT_DIAG_LIN},
        {"diag-linear", "diag-lin", S4_INIT_DIAG_LIN},
        {"diag-inv", "diag-inv", S4_INIT_DIAG_INV},
        {"diag-inverse", "diag-inv", S4_INIT_DIAG_INV},
        {"diag-real", "diag-real", S4_INIT_DIAG_REAL},
        {"diag", "diag", S4_INIT_DIAG},
        {"diag-inv2", "diag-inv2", S4_INIT_DIAG_INV2},
        {"diag-inverse2", "diag-inv2", S4_INIT_DIAG_INV2},
        {"diag-quad", "diag-quad", S4_INIT_DIAG_QUAD},
        {"diag-quadratic", "diag-quad", S4_INIT_DIAG_QUAD},
    };
    static const char *const modes[] = {"dplr", "diag"};
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++)
        for (int m = 0; m < 2; m++)
            for (int use = 0; use < 2; use++) {
                /* legt needs rank 2 in DPLR mode only. */
                const int rank = m == 0 && inits[i].init == S4_INIT_LEGT ? 2 : 1;
                char json[200], what[240];
                snprintf(json, sizeof json,
                         "{\"d_model\": 4, \"d_state\": 8, \"mode\": \"%s\", \"init\": \"%s\", "
                         "\"rank\": %d}",
                         modes[m], inits[i].name, rank);
                snprintf(what, sizeof what, "%s (%s)", json, use ? "init" : "weights");
                s4_layer_config c, back;
                if (s4_layer_config_parse(json, "inits", (s4_config_use)use, &c) != S4_OK)
                    fail_msg("%s: %s", what, s4_last_error());
                assert_int_equal(c.ssm.init, inits[i].init);
                assert_int_equal(c.ssm.mode, m ? S4_MODE_DIAG : S4_MODE_DPLR);
                char *out = NULL;
                assert_int_equal(s4_layer_config_to_json(&c, &out), S4_OK);
                char want[64];
                snprintf(want, sizeof want, "\"init\":\"%s\"", inits[i].canonical);
                if (!contains(out, want))
                    fail_msg("%s: to_json lacks %s: %s", what, want, out);
                assert_int_equal(s4_layer_config_parse(out, "to_json", (s4_config_use)use, &back),
                                 S4_OK);
                s4_free(out);
                assert_same_config(&c, &back);
            }
    /* legt at rank 1: a diagonal bank drops P, an S4 bank needs rank 2. */
    s4_layer_config c;
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 4, \"mode\": \"diag\", \"init\": "
                                           "\"legt\"}",
                                           "x", S4_CONFIG_FOR_INIT, &c),
                     S4_OK);
    expect_error(s4_layer_config_parse("{\"d_model\": 4, \"mode\": \"dplr\", \"init\": \"legt\"}",
                                       "x", S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_FORMAT, "legt rank 1 dplr", "'rank'");
    /* 'diag' splits the copies in two halves, like 'hippo' (weights do not care). */
    expect_error(s4_layer_config_parse("{\"d_model\": 3, \"mode\": \"diag\", \"init\": \"diag\"}",
                                       "x", S4_CONFIG_FOR_INIT, &c),
                 S4_ERR_FORMAT, "diag odd", "'n_ssm'", "'diag'");
    assert_int_equal(s4_layer_config_parse("{\"d_model\": 3, \"mode\": \"diag\", \"init\": "
                                           "\"diag\"}",
                                           "x", S4_CONFIG_FOR_WEIGHTS, &c),
                     S4_OK);
    /* The reference's other diagonal inits are not built by libs4; trained weights accept
     * them (and report legs). */
    static const char *const other[] = {"diag-legs", "diag-rand", "diag-hippo", "dplr-lin"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"d_model\": 2, \"mode\": \"diag\", \"init\": \"%s\"}",
                 other[i]);
        expect_error(s4_layer_config_parse(json, "x", S4_CONFIG_FOR_INIT, &c), S4_ERR_UNSUPPORTED,
                     json, "'init'", other[i]);
        assert_int_equal(s4_layer_config_parse(json, "x", S4_CONFIG_FOR_WEIGHTS, &c), S4_OK);
        assert_int_equal(c.ssm.init, S4_INIT_LEGS);
    }
}

/* mode and disc: every spelling of the mode, every disc (and none: zoh), in both modes for
 * weights and for init; written back as "dplr" / "diag" with the disc, and read back the
 * same. A DPLR config keeps its disc (unused) so that it reads back as written. */
static void test_s4d_config_mode_disc(void **state)
{
    (void)state;
    static const struct {
        const char *keys; /* the mode's JSON keys */
        s4_ssm_mode mode;
        const char *written;
    } modes[] = {
        {"\"mode\": \"diag\"", S4_MODE_DIAG, "diag"},
        {"\"mode\": \"s4d\"", S4_MODE_DIAG, "diag"},
        {"\"mode\": null, \"kernel\": \"diag\"", S4_MODE_DIAG, "diag"},
        {"\"mode\": null, \"kernel\": \"s4d\"", S4_MODE_DIAG, "diag"},
        {"\"mode\": \"dplr\"", S4_MODE_DPLR, "dplr"},
        {"\"mode\": \"nplr\"", S4_MODE_DPLR, "dplr"},
        {"\"mode\": \"s4\"", S4_MODE_DPLR, "dplr"},
        {"\"mode\": null, \"kernel\": \"s4\"", S4_MODE_DPLR, "dplr"},
    };
    static const struct {
        const char *key; /* the disc's JSON key, or "" */
        s4_disc disc;
        const char *written;
    } discs[] = {
        {"", S4_DISC_ZOH, "zoh"},
        {", \"disc\": \"zoh\"", S4_DISC_ZOH, "zoh"},
        {", \"disc\": \"bilinear\"", S4_DISC_BILINEAR, "bilinear"},
        {", \"disc\": \"dss\"", S4_DISC_DSS, "dss"},
    };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        for (size_t d = 0; d < sizeof discs / sizeof discs[0]; d++)
            for (int use = 0; use < 2; use++) {
                char json[256], what[300];
                snprintf(json, sizeof json, "{\"d_model\": 2, \"d_state\": 4, %s%s}",
                         modes[m].keys, discs[d].key);
                snprintf(what, sizeof what, "%s (%s)", json, use ? "init" : "weights");
                s4_layer_config c, back;
                if (s4_layer_config_parse(json, "modes", (s4_config_use)use, &c) != S4_OK)
                    fail_msg("%s: %s", what, s4_last_error());
                assert_int_equal(c.ssm.mode, modes[m].mode);
                assert_int_equal(c.ssm.disc, discs[d].disc);
                char *out = NULL;
                assert_int_equal(s4_layer_config_to_json(&c, &out), S4_OK);
                char want[64];
                snprintf(want, sizeof want, "\"mode\":\"%s\"", modes[m].written);
                if (!contains(out, want))
                    fail_msg("%s: to_json lacks %s: %s", what, want, out);
                snprintf(want, sizeof want, "\"disc\":\"%s\"", discs[d].written);
                if (!contains(out, want))
                    fail_msg("%s: to_json lacks %s: %s", what, want, out);
                assert_int_equal(s4_layer_config_parse(out, "to_json", (s4_config_use)use, &back),
                                 S4_OK);
                s4_free(out);
                assert_same_config(&c, &back);
            }

    /* to_json refuses what is no enum value, naming the key; the saving form writes the
     * default for a value the weights do not depend on (a DPLR disc, an init) and still
     * refuses a diagonal disc. */
    s4_layer_config c;
    s4_layer_config_default(&c);
    c.ssm.H = 2;
    c.ssm.N = 4;
    char *json = (char *)&json;
    c.ssm.mode = (s4_ssm_mode)2;
    expect_error(s4_layer_config_to_json(&c, &json), S4_ERR_INVALID_ARGUMENT, "mode 2", "'mode'");
    expect_error(s4io_config_json_for_weights(&c, &json), S4_ERR_INVALID_ARGUMENT, "mode 2 saved",
                 "'mode'");
    c.ssm.mode = S4_MODE_DIAG;
    c.ssm.disc = (s4_disc)-1;
    expect_error(s4_layer_config_to_json(&c, &json), S4_ERR_INVALID_ARGUMENT, "disc -1", "'disc'");
    expect_error(s4io_config_json_for_weights(&c, &json), S4_ERR_INVALID_ARGUMENT,
                 "diag disc -1 saved", "'disc'");
    assert_ptr_equal(json, (char *)&json); /* untouched */
    c.ssm.mode = S4_MODE_DPLR;
    expect_error(s4_layer_config_to_json(&c, &json), S4_ERR_INVALID_ARGUMENT, "dplr disc -1",
                 "'disc'");
    c.ssm.init = (s4_init)77;
    assert_int_equal(s4io_config_json_for_weights(&c, &json), S4_OK);
    s4_layer_config back;
    assert_int_equal(s4_layer_config_parse(json, "saved", S4_CONFIG_FOR_WEIGHTS, &back), S4_OK);
    s4_free(json);
    assert_int_equal(back.ssm.mode, S4_MODE_DPLR);
    assert_int_equal(back.ssm.disc, S4_DISC_ZOH);
    assert_int_equal(back.ssm.init, S4_INIT_LEGS);
}

/* A fresh S4D layer (every disc, a combination init) saved as F64 loads back alone with
 * identical parameters, without P or l_kernel in the file. */
static void test_s4d_fresh_roundtrip(void **state)
{
    (void)state;
    static const char *const discs[] = {"zoh", "bilinear", "dss"};
    for (int d = 0; d < 3; d++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"d_model\": 4, \"d_state\": 8, \"mode\": \"s4d\", \"init\": \"diag\", "
                 "\"disc\": \"%s\", \"channels\": 2, \"bidirectional\": true, \"l_max\": 10}",
                 discs[d]);
        s4_layer_config cfg;
        assert_int_equal(s4_layer_config_parse(json, "fresh s4d", S4_CONFIG_FOR_INIT, &cfg),
                         S4_OK);
        s4_layer *layer = NULL;
        const s4_status st = s4_layer_create(&cfg, &layer);
        if (st != S4_OK)
            fail_msg("s4_layer_create(%s): %s", json, s4_last_error());
        char out[S4T_PATH_MAX];
        tmp_path(out, sizeof out, "fresh_s4d.safetensors");
        s4_save_options opt;
        s4_save_options_default(&opt);
        opt.dtype = S4_DTYPE_F64;
        assert_int_equal(s4_layer_save(layer, out, &opt), S4_OK);
        assert_null(s4t_find_tensor(out, "layer.kernel.P", NULL, NULL, NULL));
        assert_null(s4t_find_tensor(out, "layer.kernel.l_kernel", NULL, NULL, NULL));
        s4_layer *back = load_ok(out, NULL);
        const s4_param which[] = {S4_PARAM_INV_DT, S4_PARAM_A_REAL, S4_PARAM_A_IMAG,
                                  S4_PARAM_B,      S4_PARAM_C,      S4_PARAM_D};
        for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
            size_t n = 0;
            double *x = s4t_get_param(s4_layer_ssm(layer), which[i], &n);
            double *y = s4t_get_param(s4_layer_ssm(back), which[i], NULL);
            assert_memory_equal(x, y, n * sizeof *x);
            free(x);
            free(y);
        }
        s4_layer_config c2;
        assert_int_equal(s4_layer_get_config(back, &c2), S4_OK);
        assert_same_config(&cfg, &c2);
        s4_layer_destroy(layer);
        s4_layer_destroy(back);
    }
}

/* ---- main ---------------------------------------------------------------------------------- */


int main(int argc, char **argv)
{
    snprintf(tmp_dir, sizeof tmp_dir, "test_model.XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int count = 0;
    mc_case *cases = mc_cases_load(&count);
    s4t_suite s = {0};
    for (int i = 0; i < count; i++) {
        char name[160];
        snprintf(name, sizeof name, "golden/%s", cases[i].name);
        s4t_suite_add(&s, name, test_golden, &cases[i]);
    }
    for (int i = 0; i < count; i++) {
        char name[160];
        snprintf(name, sizeof name, "roundtrip/%s", cases[i].name);
        s4t_suite_add(&s, name, test_roundtrip, &cases[i]);
        snprintf(name, sizeof name, "config/%s", cases[i].name);
        s4t_suite_add(&s, name, test_config_cases, &cases[i]);
    }
    s4t_suite_add(&s, "doubling_sequence", test_doubling_sequence, NULL);
    s4t_suite_add(&s, "linear_names", test_linear_names, NULL);
    s4t_suite_add(&s, "fresh_layer_roundtrip", test_fresh_layer_roundtrip, NULL);
    s4t_suite_add(&s, "not_transposed", test_not_transposed, NULL);
    s4t_suite_add(&s, "config_to_json_ranges", test_config_to_json_ranges, NULL);
    s4t_suite_add(&s, "save_always_loads", test_save_always_loads, NULL);
    s4t_suite_add(&s, "config_defaults_and_aliases", test_config_defaults_and_aliases, NULL);
    s4t_suite_add(&s, "enum_names_parse_back", test_enum_names_parse_back, NULL);
    s4t_suite_add(&s, "config_errors", test_config_errors, NULL);
    s4t_suite_add(&s, "hostile_tensors", test_hostile_tensors, NULL);
    s4t_suite_add(&s, "hostile_config_vs_file", test_hostile_config_vs_file, NULL);
    s4t_suite_add(&s, "truncated_everywhere", test_truncated_everywhere, NULL);
    s4t_suite_add(&s, "npy", test_npy, NULL);
    s4t_suite_add(&s, "tensors_api", test_tensors_api, NULL);
    /* S4D: tests/data/s4d/cases.json. */
    int n_s4d = 0;
    mc_case *s4d = s4d_cases_load(&n_s4d);
    for (int i = 0; i < n_s4d; i++) {
        char name[160];
        snprintf(name, sizeof name, "s4d_config/%s", s4d[i].name);
        s4t_suite_add(&s, name, test_s4d_config, &s4d[i]);
        snprintf(name, sizeof name, "s4d_load/%s", s4d[i].name);
        s4t_suite_add(&s, name, test_s4d_load, &s4d[i]);
        snprintf(name, sizeof name, "s4d_roundtrip/%s", s4d[i].name);
        s4t_suite_add(&s, name, test_roundtrip, &s4d[i]);
    }
    s4t_suite_add(&s, "s4d_config_inits", test_s4d_config_inits, NULL);
    s4t_suite_add(&s, "s4d_config_mode_disc", test_s4d_config_mode_disc, NULL);
    s4t_suite_add(&s, "s4d_saved_file", test_s4d_saved_file, NULL);
    s4t_suite_add(&s, "s4d_hostile", test_s4d_hostile, NULL);
    s4t_suite_add(&s, "s4d_fresh_roundtrip", test_s4d_fresh_roundtrip, NULL);
    const int failed = s4t_suite_run(&s, "model", argc, argv);
    free(cases);
    free(s4d);
    s4t_rmdir_flat(tmp_dir);
    return failed ? 1 : 0;
}
