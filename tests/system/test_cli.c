/* The `s4` program (src/cli/s4.c), run as a user would: every golden case through
 * `s4 kernel` and `s4 forward` (conv, dense, linear, chunked) against the float64 reference,
 * every S4D case (tests/data/s4d: mode 'diag', and the rate cases) through `s4 kernel` and
 * `s4 forward` at each stage's --rate and through the diagonal step, `s4 info`, --rate
 * against its definition (docs/design.md 11), and hostile inputs -- bad options, weights, configs
 * and arrays -- each of which must give a non-zero status, exactly one line on stderr naming
 * the file, tensor or key, and no output file.
 * SPDX-License-Identifier: Apache-2.0 */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkdtemp, fork, waitpid */
#endif

#include "model_cases.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef S4_CLI_PATH
#error "S4_CLI_PATH must name the built s4 program (tests/CMakeLists.txt sets it)"
#endif

#define TOL_Y 1e-4
#define TOL_K 2e-5

static char tmp_dir[256];

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- running the program --------------------------------------------------------------- */

typedef struct result {
    int status; /* exit status; 128 + signal if killed */
    char out[16384];
    char err[4096];
} result;

static void slurp_into(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    const size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    remove(path);
}

/* Runs S4_CLI_PATH with the NULL-terminated arguments. */
static void run(result *r, const char *arg, ...)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = S4_CLI_PATH;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        assert_true(argc < 31);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    char out[300], err[300];
    tmp_path(out, sizeof out, "stdout.txt");
    tmp_path(err, sizeof err, "stderr.txt");
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        close(fo);
        close(fe);
        execv(S4_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    slurp_into(out, r->out, sizeof r->out);
    slurp_into(err, r->err, sizeof r->err);
}

static void expect_ok_(const result *r, const char *what, const char *file, int line)
{
    if (r->status != 0 || r->err[0]) {
        print_error("%s: status %d, stderr: %s\n", what, r->status, r->err);
        _fail(file, line);
    }
}
#define expect_ok(r, what) expect_ok_((r), (what), __FILE__, __LINE__)

/* Whether any entry of the temp dir is a writer's leftover (".tmp."). */
static bool temp_leftovers(void)
{
    DIR *d = opendir(tmp_dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            found = true;
    closedir(d);
    return found;
}

/* A failure: non-zero status, one line on stderr that mentions every needle, no output. */
static void expect_fail_(const result *r, const char *output, const char *const *needles,
                         const char *what, const char *file, int line)
{
    const size_t len = strlen(r->err);
    const char *nl = strchr(r->err, '\n');
    if (r->status == 0 || r->status >= 128) {
        print_error("%s: status %d (want a plain non-zero exit), stderr: %s\n", what, r->status,
                    r->err);
        _fail(file, line);
    }
    if (len == 0 || !nl || nl != r->err + len - 1 || strncmp(r->err, "s4", 2) != 0) {
        print_error("%s: stderr is not one line starting with 's4': [%s]\n", what, r->err);
        _fail(file, line);
    }
    for (const char *const *n = needles; *n; n++)
        if (!strstr(r->err, *n)) {
            print_error("%s: stderr lacks \"%s\": %s", what, *n, r->err);
            _fail(file, line);
        }
    if (output && file_exists(output)) {
        print_error("%s: output %s exists after the failure\n", what, output);
        _fail(file, line);
    }
    if (temp_leftovers()) {
        print_error("%s: a temporary file was left behind\n", what);
        _fail(file, line);
    }
}
#define expect_fail(r, output, what, ...)                                                     \
    expect_fail_((r), (output), (const char *const[]){__VA_ARGS__, NULL}, (what), __FILE__,    \
                 __LINE__)

/* max |got - want| / max |want| of an .npy output against a float64 reference. */
static double npy_err(const char *got_path, const char *want_path)
{
    size_t ng = 0, nw = 0;
    int dg = 0, dw = 0;
    int64_t sg[S4T_MAX_DIMS] = {0}, sw[S4T_MAX_DIMS] = {0};
    double *g = s4t_load_npy(got_path, &ng, &dg, sg);
    double *w = s4t_load_npy(want_path, &nw, &dw, sw);
    assert_int_equal(dg, dw);
    for (int d = 0; d < dg; d++)
        assert_int_equal(sg[d], sw[d]);
    const double e = s4t_max_rel_err(g, w, nw);
    free(g);
    free(w);
    remove(got_path);
    return e;
}

/* ---- golden cases ------------------------------------------------------------------------ */

static void test_golden(void **state)
{
    const mc_case *c = *state;
    char K[300], Y[300], len[32], chunk[32];
    tmp_path(K, sizeof K, "K.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    snprintf(len, sizeof len, "%lld", (long long)c->L);
    snprintf(chunk, sizeof chunk, "%lld", (long long)(c->L / 4 + 1));
    result *r = malloc(sizeof *r);
    assert_non_null(r);
    for (int p = 0; p < c->n_params; p++) {
        const char *W = c->params[p];
        char what[200];
        snprintf(what, sizeof what, "%s %s", c->name, c->params_label[p]);
        run(r, "kernel", "--weights", W, "--config", c->config, "--length", len, "--output", K,
            NULL);
        expect_ok(r, what);
        const double eK = npy_err(K, c->K_f64);
        static const char *const modes[] = {"conv", "dense", "linear", "chunked"};
        double e[4] = {NAN, NAN, NAN, NAN};
        for (int m = 0; m < 4; m++) {
            if (m > 0 && c->bidirectional)
                break;
            if (m == 3)
                run(r, "forward", "--weights", W, "--config", c->config, "--input", c->u,
                    "--output", Y, "--chunk", chunk, NULL);
            else
                run(r, "forward", "--weights", W, "--config", c->config, "--input", c->u,
                    "--output", Y, "--mode", modes[m], NULL);
            expect_ok(r, what);
            e[m] = npy_err(Y, c->y_f64);
        }
        printf("[ figures  ] %-26s %-14s s4 kernel %.2e  forward conv %.2e  dense %.2e  "
               "linear %.2e  --chunk %s %.2e\n",
               c->name, c->params_label[p], eK, e[0], e[1], e[2], chunk, e[3]);
        assert_rel_err(eK, TOL_K, what);
        for (int m = 0; m < 4 && !(m > 0 && c->bidirectional); m++)
            assert_rel_err(e[m], TOL_Y, modes[m]);
        if (c->bidirectional) {
            run(r, "forward", "--weights", W, "--config", c->config, "--input", c->u,
                "--output", Y, "--mode", "linear", NULL);
            expect_fail(r, Y, "bidirectional step", "bidirectional", "--mode");
            run(r, "forward", "--weights", W, "--config", c->config, "--input", c->u,
                "--output", Y, "--chunk", "4", NULL);
            expect_fail(r, Y, "bidirectional chunk", "bidirectional", "--chunk");
        }
    }
    free(r);
}

/* transposed: false in the config: the program reads (B, L, H) and writes (B, L, F). */
static void test_not_transposed(void **state)
{
    (void)state;
    char W[S4T_PATH_MAX], U[S4T_PATH_MAX], Yref[S4T_PATH_MAX];
    char cfg[300], Ut[300], Y[300];
    s4t_path(W, "cases/h3_n16_l16/params_after_f64.safetensors");
    s4t_path(U, "cases/h3_n16_l16/u.npy");
    s4t_path(Yref, "cases/h3_n16_l16/y_f64.npy");
    tmp_path(cfg, sizeof cfg, "blh.json");
    tmp_path(Ut, sizeof Ut, "u_blh.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    mc_write_text(cfg, "{\"d_model\": 3, \"d_state\": 16, \"l_max\": 16, \"transposed\": false}");
    size_t nu = 0, ny = 0;
    int64_t sh[S4T_MAX_DIMS] = {0};
    double *u = s4t_load_npy(U, &nu, NULL, sh);
    double *yref = s4t_load_npy(Yref, &ny, NULL, NULL);
    const int64_t B = sh[0], H = sh[1], L = sh[2];
    double *ut = malloc(nu * sizeof *ut);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < L; t++)
                ut[(b * L + t) * H + h] = u[(b * H + h) * L + t];
    const int64_t tsh[3] = {B, L, H};
    assert_int_equal(s4_npy_write_f64(Ut, ut, 3, tsh), S4_OK);
    result *r = malloc(sizeof *r);
    const char *chunks[3] = {NULL, "3", "5"};
    for (int k = 0; k < 3; k++) {
        if (chunks[k])
            run(r, "forward", "--weights", W, "--config", cfg, "--input", Ut, "--output", Y,
                "--mode", k == 1 ? "conv" : "dense", "--chunk", chunks[k], NULL);
        else
            run(r, "forward", "--weights", W, "--config", cfg, "--input", Ut, "--output", Y, NULL);
        expect_ok(r, "transposed false");
        size_t n = 0;
        int64_t ysh[S4T_MAX_DIMS] = {0};
        double *yt = s4t_load_npy(Y, &n, NULL, ysh);
        assert_int_equal(n, ny);
        assert_true(ysh[0] == B && ysh[1] == L && ysh[2] == H);
        double *y = malloc(ny * sizeof *y);
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t t = 0; t < L; t++)
                    y[(b * H + h) * L + t] = yt[(b * L + t) * H + h];
        assert_rel_err(s4t_max_rel_err(y, yref, ny), TOL_Y, "(B, L, H) through s4 forward");
        free(y);
        free(yt);
        remove(Y);
    }
    /* A (B, H, L) array is now the wrong layout. */
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, NULL);
    expect_fail(r, Y, "(B, H, L) for a (B, L, H) layer", U, "(B, L, H)");
    free(r);
    free(u);
    free(ut);
    free(yref);
}

/* ---- S4D cases and --rate (tests/data/s4d) --------------------------------------------- */

enum { S4D_MAX_STAGES = 4 };

typedef struct s4d_stage {
    double rate;
    int64_t L;
    char u[S4T_PATH_MAX], K_f64[S4T_PATH_MAX], y_f64[S4T_PATH_MAX];
} s4d_stage;

typedef struct s4d_case {
    char name[96];
    bool diag, dss, bidirectional;
    int64_t l_max; /* 0: None */
    char config[S4T_PATH_MAX], params[S4T_PATH_MAX];
    int n_stages;
    s4d_stage stages[S4D_MAX_STAGES];
    /* The reference's step output (zero state, last stage, rate 1) and the program's --mode
     * for it ("diagonal" for S4D, "linear" for DPLR); "" when the layer has no step. */
    char step_f64[S4T_PATH_MAX], step_mode[16];
} s4d_case;

static double json_num(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(j))
        fail_msg("s4d/cases.json: missing number '%s'", key);
    return j->valuedouble;
}

static s4d_case *s4d_cases_load(int *count)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "s4d/cases.json");
    char *text = mc_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    assert_true(cJSON_IsArray(cases));
    const int n = cJSON_GetArraySize(cases);
    s4d_case *out = calloc((size_t)n, sizeof *out);
    assert_non_null(out);
    int k = 0;
    for (const cJSON *c = cases->child; c; c = c->next, k++) {
        s4d_case *m = &out[k];
        snprintf(m->name, sizeof m->name, "%s", mc_str(c, "name"));
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(c, "config");
        m->diag = strcmp(mc_str(cfg, "mode"), "diag") == 0;
        m->dss = m->diag && strcmp(mc_str(cfg, "disc"), "dss") == 0;
        m->bidirectional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "bidirectional"));
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(cfg, "l_max");
        m->l_max = cJSON_IsNumber(lm) ? (int64_t)lm->valuedouble : 0;
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(c, "files");
        s4t_path(m->config, "s4d/%s", mc_str(files, "config"));
        s4t_path(m->params, "s4d/%s", mc_str(files, "params_init"));
        const cJSON *stages = cJSON_GetObjectItemCaseSensitive(c, "stages");
        assert_true(cJSON_IsArray(stages));
        for (const cJSON *st = stages->child; st; st = st->next) {
            assert_true(m->n_stages < S4D_MAX_STAGES);
            s4d_stage *g = &m->stages[m->n_stages++];
            g->rate = json_num(st, "rate");
            g->L = (int64_t)json_num(st, "L");
            const cJSON *sf = cJSON_GetObjectItemCaseSensitive(st, "files");
            s4t_path(g->u, "s4d/%s", mc_str(sf, "u"));
            s4t_path(g->K_f64, "s4d/%s", mc_str(sf, "K_f64"));
            s4t_path(g->y_f64, "s4d/%s", mc_str(sf, "y_f64"));
        }
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(c, "steps");
        const char *key = m->diag ? "diag" : "linear";
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(steps, key);
        if (step) {
            const cJSON *f64 = cJSON_GetObjectItemCaseSensitive(step, "f64");
            s4t_path(m->step_f64, "s4d/%s", mc_str(f64, "file"));
            snprintf(m->step_mode, sizeof m->step_mode, "%s", m->diag ? "diagonal" : "linear");
        }
    }
    cJSON_Delete(root);
    *count = n;
    return out;
}

/* max |a - b| / max |b| of two of the program's outputs (both removed). */
static double npy_diff(const char *a_path, const char *b_path)
{
    const double e = npy_err(a_path, b_path); /* removes a_path */
    remove(b_path);
    return e;
}

/* The reference casts the dss kernel to float32 even in its float64 module, so the dss
 * "f64" arrays are float32-accurate only (s4d/cases.json layout_notes). */
#define TOL_DSS 1e-4

/* Every stage from params_init at the stage's --rate (S4D parameters never change between
 * stages; the DPLR rate case starts from a raw C and sets C-tilde up for l_max on first
 * use, as its first stage did): `s4 kernel` against K_f64, `s4 forward` (conv) against
 * y_f64; then the step (--mode diagonal for S4D, linear for DPLR) against the reference's
 * step output, whole and chunked, or its refusal (dss, bidirectional). */
static void test_s4d_golden(void **state)
{
    const s4d_case *c = *state;
    char K[300], Y[300], len[32], rate[32];
    tmp_path(K, sizeof K, "K.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    result *r = malloc(sizeof *r);
    assert_non_null(r);
    const double tol_k = c->dss ? TOL_DSS : TOL_K, tol_y = c->dss ? TOL_DSS : TOL_Y;
    for (int i = 0; i < c->n_stages; i++) {
        const s4d_stage *g = &c->stages[i];
        char what[200];
        snprintf(what, sizeof what, "%s stage %d (rate %g)", c->name, i, g->rate);
        snprintf(len, sizeof len, "%lld", (long long)g->L);
        snprintf(rate, sizeof rate, "%.17g", g->rate);
        run(r, "kernel", "--weights", c->params, "--config", c->config, "--length", len,
            "--rate", rate, "--output", K, NULL);
        expect_ok(r, what);
        const double eK = npy_err(K, g->K_f64);
        run(r, "forward", "--weights", c->params, "--config", c->config, "--input", g->u,
            "--output", Y, "--rate", rate, NULL);
        expect_ok(r, what);
        const double eY = npy_err(Y, g->y_f64);
        printf("[ figures  ] %-36s rate %-4g s4 kernel %.2e  forward conv %.2e\n", c->name,
               g->rate, eK, eY);
        assert_rel_err(eK, tol_k, what);
        assert_rel_err(eY, tol_y, what);
    }
    const s4d_stage *last = &c->stages[c->n_stages - 1];
    assert_true(last->rate == 1.0);
    if (c->step_mode[0]) {
        char chunk[32];
        snprintf(chunk, sizeof chunk, "%lld", (long long)(last->L / 3 + 1));
        run(r, "forward", "--weights", c->params, "--config", c->config, "--input", last->u,
            "--output", Y, "--mode", c->step_mode, NULL);
        expect_ok(r, c->name);
        const double eS = npy_err(Y, c->step_f64);
        run(r, "forward", "--weights", c->params, "--config", c->config, "--input", last->u,
            "--output", Y, "--mode", c->step_mode, "--chunk", chunk, NULL);
        expect_ok(r, c->name);
        const double eC = npy_err(Y, c->step_f64);
        printf("[ figures  ] %-36s --mode %s %.2e  --chunk %s %.2e\n", c->name, c->step_mode,
               eS, chunk, eC);
        assert_rel_err(eS, TOL_Y, "step");
        assert_rel_err(eC, TOL_Y, "chunked step");
    } else {
        run(r, "forward", "--weights", c->params, "--config", c->config, "--input", last->u,
            "--output", Y, "--mode", "diagonal", NULL);
        if (c->bidirectional)
            expect_fail(r, Y, "bidirectional step", "bidirectional", "--mode");
        else
            expect_fail(r, Y, "dss step", "S4_ERR_UNSUPPORTED");
    }
    free(r);
}

/* s4 info on an S4D checkpoint (no P, no l_kernel): mode diag and its disc. */
static void test_s4d_info(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX];
    result *r = malloc(sizeof *r);
    s4t_path(cfg, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(W, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    run(r, "info", "--weights", W, "--config", cfg, NULL);
    expect_ok(r, "info S4D");
    static const char *const needles[] = {
        "S4D (diagonal) kernel, zoh discretization", "mode           diag",
        "disc           zoh",                         "d_model  H     2",
        "d_state  N     8",                           "rank     r     none",
        "l_kernel       none",                        "layer.kernel.A_imag",
        "\"mode\":\"diag\"",                          "\"disc\":\"zoh\""};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (!strstr(r->out, needles[i]))
            fail_msg("s4 info (S4D) lacks \"%s\":\n%s", needles[i], r->out);
    assert_null(strstr(r->out, "layer.kernel.P"));
    assert_null(strstr(r->out, "layer.kernel.l_kernel"));

    s4t_path(cfg, "s4d/cases/s4d_inv_dss_h2_n8_l9/config.json");
    s4t_path(W, "s4d/cases/s4d_inv_dss_h2_n8_l9/params_init.safetensors");
    run(r, "info", "--weights", W, "--config", cfg, NULL);
    expect_ok(r, "info S4D dss");
    assert_non_null(strstr(r->out, "mode           diag"));
    assert_non_null(strstr(r->out, "disc           dss"));

    s4t_path(cfg, "s4d/cases/dplr_rate_h2_n16_l32/config.json");
    s4t_path(W, "s4d/cases/dplr_rate_h2_n16_l32/params_init.safetensors");
    run(r, "info", "--weights", W, "--config", cfg, NULL);
    expect_ok(r, "info DPLR");
    assert_non_null(strstr(r->out, "mode           dplr"));
    assert_null(strstr(r->out, "disc           "));
    free(r);
}

/* An S4D layer steps with --mode diagonal only: dense and linear are refused with the
 * library's message and a hint, in one line. */
static void test_s4d_step_modes(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX], Y[300];
    s4t_path(cfg, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(W, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    s4t_path(U, "s4d/cases/s4d_legs_zoh_h2_n8_l16/u.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    result *r = malloc(sizeof *r);
    static const char *const modes[] = {"dense", "linear"};
    for (int m = 0; m < 2; m++) {
        run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y,
            "--mode", modes[m], NULL);
        expect_fail(r, Y, modes[m], "S4_ERR_INVALID_ARGUMENT", "S4D", "--mode diagonal");
        run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y,
            "--mode", modes[m], "--chunk", "4", NULL);
        expect_fail(r, Y, modes[m], "S4_ERR_INVALID_ARGUMENT", "S4D", "--mode diagonal");
    }
    /* Streamed convolution (--chunk in conv mode) equals the whole sequence. */
    char Y2[300];
    tmp_path(Y2, sizeof Y2, "Y2.npy");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, NULL);
    expect_ok(r, "S4D conv");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y2,
        "--chunk", "5", NULL);
    expect_ok(r, "S4D stream");
    assert_rel_err(npy_diff(Y2, Y), 1e-5, "S4D --chunk 5 vs whole");
    free(r);
}

/* --rate values that are not a positive finite number, or that leave a kernel of length 0,
 * are refused with one line naming --rate. */
static void test_rate_usage(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX], Y[300];
    s4t_path(cfg, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(W, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    s4t_path(U, "s4d/cases/s4d_legs_zoh_h2_n8_l16/u.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    result *r = malloc(sizeof *r);
    static const char *const bad[] = {"0", "-1", "-0", "nan", "inf", "-inf", "1e400",
                                      "abc", "2x", "0x", " ", "1e-400"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "kernel --rate '%s'", bad[i]);
        run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
            "--rate", bad[i], NULL);
        expect_fail(r, Y, what, "--rate");
        snprintf(what, sizeof what, "forward --rate '%s'", bad[i]);
        run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y,
            "--rate", bad[i], NULL);
        expect_fail(r, Y, what, "--rate");
        run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y,
            "--mode", "diagonal", "--rate", bad[i], NULL);
        expect_fail(r, Y, what, "--rate");
    }
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
        "--rate", NULL);
    expect_fail(r, Y, "--rate without value", "--rate");
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
        "--rate=", NULL);
    expect_fail(r, Y, "--rate=", "--rate");
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
        "--rate", "2", "--rate", "2", NULL);
    expect_fail(r, Y, "--rate twice", "--rate", "twice");
    run(r, "info", "--weights", W, "--config", cfg, "--rate", "2", NULL);
    expect_fail(r, NULL, "info --rate", "--rate");
    /* l_max = 16: a rate of 32 or more leaves round(16 / rate) = 0 taps. */
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
        "--rate", "32", NULL);
    expect_fail(r, Y, "rate 32", "--rate", "length 0");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--rate",
        "1e30", NULL);
    expect_fail(r, Y, "rate 1e30", "--rate", "length 0");
    /* ... while the step modes, untruncated, run at any rate. */
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--mode",
        "diagonal", "--rate", "32", NULL);
    expect_ok(r, "step at rate 32");
    remove(Y);
    /* Just below 2 l_max: round(16 / 31.9) = 1 tap. */
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--output", Y,
        "--rate", "31.9", NULL);
    expect_ok(r, "rate 31.9");
    size_t n = 0;
    int64_t sh[S4T_MAX_DIMS] = {0};
    double *k = s4t_load_npy(Y, &n, NULL, sh);
    assert_true(sh[0] == 1 && sh[1] == 2 && sh[2] == 1);
    free(k);
    remove(Y);
    free(r);
}

/* docs/design.md 11: an S4D kernel at rate R is the kernel at dt R and nothing else, so at rate 2
 * it equals the kernel of the same layer with dt doubled (inv_dt + log 2 under the exp
 * dt_transform), over round(l_max / 2) taps. With l_max null (no truncation) the same holds
 * for the whole layer in conv mode, the diagonal step and the stream, which then also agree
 * with each other. (A DPLR kernel at a rate is not a fresh one at R dt -- C-tilde stays the
 * one for l_kernel --; s4d/dplr_rate_h2_n16_l32 checks it against the reference.) */
static void test_rate_is_dt(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX];
    char cfg_none[300], W2[300], K1[300], K2[300], Y1[300], Y2[300];
    s4t_path(cfg, "s4d/cases/s4d_legs_zoh_h2_n8_l16/config.json");
    s4t_path(W, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    s4t_path(U, "s4d/cases/s4d_legs_zoh_h2_n8_l16/u.npy");
    tmp_path(cfg_none, sizeof cfg_none, "lmax_none.json");
    tmp_path(W2, sizeof W2, "dt2.safetensors");
    tmp_path(K1, sizeof K1, "K1.npy");
    tmp_path(K2, sizeof K2, "K2.npy");
    tmp_path(Y1, sizeof Y1, "Y1.npy");
    tmp_path(Y2, sizeof Y2, "Y2.npy");
    /* The case's config (its other keys are the reference defaults) without l_max. */
    mc_write_text(cfg_none, "{\"d_model\": 2, \"d_state\": 8, \"l_max\": null, \"mode\": "
                            "\"diag\", \"init\": \"legs\", \"disc\": \"zoh\"}");
    mc_file f;
    mc_file_load(W, &f);
    const int i = mc_file_index(&f, "layer.kernel.inv_dt");
    for (int h = 0; h < 2; h++)
        f.values[i][h] += log(2.0);
    mc_file_write(&f, W2);
    mc_file_free(&f);
    result *r = malloc(sizeof *r);

    /* Kernel, l_max 16: 8 taps at rate 2. */
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "16", "--rate", "2",
        "--output", K1, NULL);
    expect_ok(r, "kernel at rate 2");
    if (!strstr(r->out, "(1, 2, 8)") || !strstr(r->out, "rate 2"))
        fail_msg("kernel at rate 2: expected (1, 2, 8) and the rate in: %s", r->out);
    run(r, "kernel", "--weights", W2, "--config", cfg, "--length", "8", "--output", K2, NULL);
    expect_ok(r, "kernel at 2 dt");
    const double eK = npy_diff(K1, K2);
    /* Without the rate they differ: the rate did take effect. */
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "8", "--output", K1, NULL);
    expect_ok(r, "kernel at rate 1");
    run(r, "kernel", "--weights", W2, "--config", cfg, "--length", "8", "--output", K2, NULL);
    expect_ok(r, "kernel at 2 dt");
    const double e1 = npy_diff(K1, K2);

    /* l_max null: conv, diagonal step and stream at rate 2 against conv at 2 dt. */
    static const char *const modes[3] = {"conv", "diagonal", "conv"};
    static const char *const chunks[3] = {NULL, NULL, "5"};
    double e[3];
    for (int k = 0; k < 3; k++) {
        run(r, "forward", "--weights", W2, "--config", cfg_none, "--input", U, "--output", Y2,
            NULL);
        expect_ok(r, "conv at 2 dt");
        if (chunks[k])
            run(r, "forward", "--weights", W, "--config", cfg_none, "--input", U, "--output",
                Y1, "--mode", modes[k], "--chunk", chunks[k], "--rate", "2", NULL);
        else
            run(r, "forward", "--weights", W, "--config", cfg_none, "--input", U, "--output",
                Y1, "--mode", modes[k], "--rate", "2", NULL);
        expect_ok(r, modes[k]);
        if (!strstr(r->out, "rate 2"))
            fail_msg("forward --rate 2 does not report the rate: %s", r->out);
        e[k] = npy_diff(Y1, Y2);
    }
    printf("[ figures  ] S4D at rate 2 vs at 2 dt: kernel %.2e (rate 1: %.2e), forward conv "
           "%.2e, --mode diagonal %.2e, --chunk 5 %.2e\n",
           eK, e1, e[0], e[1], e[2]);
    assert_rel_err(eK, 1e-5, "kernel at rate 2 vs kernel at 2 dt");
    assert_true(e1 > 1e-2);
    assert_rel_err(e[0], 1e-5, "conv at rate 2 vs conv at 2 dt");
    assert_rel_err(e[1], TOL_Y, "diagonal step at rate 2 vs conv at 2 dt");
    assert_rel_err(e[2], TOL_Y, "stream at rate 2 vs conv at 2 dt");
    remove(W2);
    remove(cfg_none);
    free(r);
}

/* An S4 (DPLR) kernel at rate R < 1 can have fewer nodes than taps: l_max null, L = 4,
 * R = 0.6 sets C-tilde up for round(0.6 * 4) = 2 and samples round(2 / 0.6) = 3 nodes, so
 * the reference's kernel has 3 taps; the program writes the 4 the layer applies, the last
 * one zero, and the first 3 are those of --length 3 (same C-tilde, same nodes). */
static void test_rate_dplr_nodes(void **state)
{
    (void)state;
    char W[S4T_PATH_MAX], cfg[300], K3[300], K4[300];
    s4t_path(W, "s4d/cases/dplr_rate_h2_n16_l32/params_init.safetensors");
    tmp_path(cfg, sizeof cfg, "dplr_none.json");
    tmp_path(K3, sizeof K3, "K3.npy");
    tmp_path(K4, sizeof K4, "K4.npy");
    mc_write_text(cfg, "{\"d_model\": 2, \"d_state\": 16}");
    result *r = malloc(sizeof *r);
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "4", "--rate", "0.6",
        "--output", K4, NULL);
    expect_ok(r, "DPLR kernel, 4 taps at rate 0.6");
    if (!strstr(r->out, "l_kernel 2") || !strstr(r->out, "3 nonzero taps"))
        fail_msg("expected l_kernel 2 and 3 nonzero taps in: %s", r->out);
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "3", "--rate", "0.6",
        "--output", K3, NULL);
    expect_ok(r, "DPLR kernel, 3 taps at rate 0.6");
    size_t n3 = 0, n4 = 0;
    int64_t s3[S4T_MAX_DIMS] = {0}, s4[S4T_MAX_DIMS] = {0};
    double *k3 = s4t_load_npy(K3, &n3, NULL, s3);
    double *k4 = s4t_load_npy(K4, &n4, NULL, s4);
    assert_true(s3[0] == 1 && s3[1] == 2 && s3[2] == 3);
    assert_true(s4[0] == 1 && s4[1] == 2 && s4[2] == 4);
    for (int h = 0; h < 2; h++) {
        for (int t = 0; t < 3; t++)
            assert_true(k4[h * 4 + t] == k3[h * 3 + t]);
        assert_true(k4[h * 4 + 3] == 0.0);
        assert_true(k4[h * 4] != 0.0);
    }
    free(k3);
    free(k4);
    remove(K3);
    remove(K4);
    remove(cfg);
    free(r);
}

/* ---- info, help ---------------------------------------------------------------------------- */

static void test_info(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], meta[300];
    s4t_path(cfg, "cases/nssm1_h4_n16_l16/config.json");
    s4t_path(W, "cases/nssm1_h4_n16_l16/params_after_f64.safetensors");
    result *r = malloc(sizeof *r);
    run(r, "info", "--weights", W, "--config", cfg, NULL);
    expect_ok(r, "info");
    static const char *const needles[] = {
        "d_model  H     4",       "d_state  N     16",  "n_ssm    S     1", "final_act      glu",
        "l_kernel       16",      "layer.kernel.C",      "F64",              "total:",
        "\"d_model\":4",          "l_max          16"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (!strstr(r->out, needles[i]))
            fail_msg("s4 info lacks \"%s\":\n%s", needles[i], r->out);

    /* The config from the file's metadata. */
    tmp_path(meta, sizeof meta, "meta.safetensors");
    mc_file f;
    mc_file_load(W, &f);
    f.meta[0] = "s4_config";
    f.meta[1] = "{\"d_model\": 4, \"d_state\": 16, \"n_ssm\": 1, \"l_max\": 16}";
    f.n_meta = 1;
    mc_file_write(&f, meta);
    mc_file_free(&f);
    run(r, "info", "--weights", meta, NULL);
    expect_ok(r, "info from metadata");
    assert_non_null(strstr(r->out, "__metadata__"));

    run(r, "help", NULL);
    expect_ok(r, "help");
    assert_non_null(strstr(r->out, "s4 forward"));
    assert_non_null(strstr(r->out, "--rate R"));
    assert_non_null(strstr(r->out, "S4D"));
    run(r, "--version", NULL);
    expect_ok(r, "version");
    assert_non_null(strstr(r->out, s4_version()));
    free(r);
}

/* ---- hostile inputs ------------------------------------------------------------------------ */

/* A 10-byte-preamble .npy with a 118-byte header dict and two float32 zeros. */
static void write_raw_npy(const char *path, const char *magic, const char *dict)
{
    unsigned char buf[136];
    memset(buf, ' ', 128);
    memcpy(buf, magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = 118;
    buf[9] = 0;
    memcpy(buf + 10, dict, strlen(dict));
    buf[127] = '\n';
    memset(buf + 128, 0, 8);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, sizeof buf, fp), sizeof buf);
    assert_int_equal(fclose(fp), 0);
}

static void test_usage_errors(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX], Y[300];
    s4t_path(cfg, "cases/h2_n8_l7/config.json");
    s4t_path(W, "cases/h2_n8_l7/params_init.safetensors");
    s4t_path(U, "cases/h2_n8_l7/u.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    result *r = malloc(sizeof *r);
    run(r, NULL);
    expect_fail(r, NULL, "no command", "no command");
    run(r, "fly", NULL);
    expect_fail(r, NULL, "unknown command", "unknown command 'fly'");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--foo",
        "1", NULL);
    expect_fail(r, Y, "unknown option", "--foo");
    run(r, "forward", "--config", cfg, "--input", U, "--output", Y, NULL);
    expect_fail(r, Y, "no weights", "--weights");
    run(r, "forward", "--weights", W, "--config", cfg, "--output", Y, NULL);
    expect_fail(r, Y, "no input", "--input");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, NULL);
    expect_fail(r, NULL, "no output", "--output");
    run(r, "forward", "--weights", W, "--weights", W, "--input", U, "--output", Y, NULL);
    expect_fail(r, Y, "twice", "twice");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--mode",
        "fast", NULL);
    expect_fail(r, Y, "bad mode", "--mode", "fast");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--chunk",
        "0", NULL);
    expect_fail(r, Y, "chunk 0", "--chunk");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--chunk",
        NULL);
    expect_fail(r, Y, "chunk without value", "--chunk");
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "0", "--output", Y, NULL);
    expect_fail(r, Y, "length 0", "--length");
    run(r, "kernel", "--weights", W, "--config", cfg, "--length", "12abc", "--output", Y, NULL);
    expect_fail(r, Y, "length abc", "--length", "12abc");
    run(r, "kernel", "--weights", W, "--config", cfg, "--output", Y, NULL);
    expect_fail(r, Y, "no length", "--length");
    run(r, "info", "--weights", W, "--input", U, NULL);
    expect_fail(r, NULL, "info with input", "--input");
    /* An output in a directory that does not exist: an I/O error, nothing written. */
    char nodir[300];
    tmp_path(nodir, sizeof nodir, "no/such/dir/Y.npy");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", nodir, NULL);
    expect_fail(r, nodir, "output dir", nodir);
    free(r);
}

static void test_bad_weights_and_config(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX], U[S4T_PATH_MAX];
    char Y[300], bad[300], c2[300], none[300];
    s4t_path(cfg, "cases/h2_n8_l7/config.json");
    s4t_path(W, "cases/h2_n8_l7/params_init.safetensors");
    s4t_path(U, "cases/h2_n8_l7/u.npy");
    tmp_path(Y, sizeof Y, "Y.npy");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    tmp_path(c2, sizeof c2, "c2.json");
    tmp_path(none, sizeof none, "none.safetensors");
    result *r = malloc(sizeof *r);
#define FORWARD(weights, config)                                                              \
    run(r, "forward", "--weights", (weights), "--config", (config), "--input", U, "--output", \
        Y, NULL)

    FORWARD(none, cfg);
    expect_fail(r, Y, "missing weights", none, "cannot open");

    /* Header not JSON; header length beyond the file; truncated data. */
    FILE *fp = fopen(bad, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("\x10\0\0\0\0\0\0\0{not json at all", 1, 24, fp), 24);
    assert_int_equal(fclose(fp), 0);
    FORWARD(bad, cfg);
    expect_fail(r, Y, "header not JSON", bad, "JSON");
    fp = fopen(bad, "wb");
    assert_int_equal(fwrite("\xff\xff\xff\xff\xff\xff\xff\xff{}", 1, 10, fp), 10);
    assert_int_equal(fclose(fp), 0);
    FORWARD(bad, cfg);
    expect_fail(r, Y, "header length 2^64 - 1", bad, "header length");
    struct stat st;
    assert_int_equal(stat(W, &st), 0);
    char *bytes = mc_read_text(W);
    fp = fopen(bad, "wb");
    assert_int_equal(fwrite(bytes, 1, (size_t)st.st_size - 3, fp), (size_t)st.st_size - 3);
    assert_int_equal(fclose(fp), 0);
    free(bytes);
    FORWARD(bad, cfg);
    expect_fail(r, Y, "truncated", bad, "data_offsets");

    /* Missing tensor, NaN parameter, extra tensor. */
    mc_file f;
    mc_file_load(W, &f);
    mc_file_remove(&f, "layer.kernel.P");
    mc_file_write(&f, bad);
    mc_file_free(&f);
    FORWARD(bad, cfg);
    expect_fail(r, Y, "missing P", bad, "missing tensor 'layer.kernel.P'", "(1, 2, 4, 2)");
    mc_file_load(W, &f);
    f.values[mc_file_index(&f, "layer.kernel.B")][3] = NAN;
    mc_file_write(&f, bad);
    mc_file_free(&f);
    FORWARD(bad, cfg);
    expect_fail(r, Y, "NaN B", bad, "'layer.kernel.B'", "NaN");
    mc_file_load(W, &f);
    f.values[mc_file_index(&f, "output_linear.0.weight")][0] = -INFINITY;
    mc_file_write(&f, bad);
    mc_file_free(&f);
    run(r, "kernel", "--weights", bad, "--config", cfg, "--length", "7", "--output", Y, NULL);
    expect_fail(r, Y, "Inf W", bad, "'output_linear.0.weight'", "infinite");
    mc_file_load(W, &f);
    const int64_t sh[1] = {3};
    mc_file_add(&f, "encoder.weight", S4IO_F32, 1, sh, 1.0);
    mc_file_write(&f, bad);
    mc_file_free(&f);
    run(r, "info", "--weights", bad, "--config", cfg, NULL);
    expect_fail(r, NULL, "extra tensor", bad, "unexpected tensor 'encoder.weight'");

    /* Shapes that disagree with the config. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 16, \"l_max\": 7}");
    FORWARD(W, c2);
    expect_fail(r, Y, "d_state 16", W, "'layer.kernel.A_real'", "expected shape (2, 8)",
                "found (2, 4)");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"channels\": 3}");
    FORWARD(W, c2);
    expect_fail(r, Y, "channels 3", W, "'layer.kernel.C'", "expected shape (3, 2, 4, 2)",
                "found (1, 2, 4, 2)");

    /* Bad configs: unknown key, wrong type, unknown value, unsupported value, no config. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"foo\": 1}");
    FORWARD(W, c2);
    expect_fail(r, Y, "unknown key", c2, "unknown key 'foo'");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"bidirectional\": \"no\"}");
    FORWARD(W, c2);
    expect_fail(r, Y, "wrong type", c2, "'bidirectional'", "true or false");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"activation\": \"mish\"}");
    FORWARD(W, c2);
    expect_fail(r, Y, "unknown value", c2, "'activation'", "mish");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"mode\": \"real\"}");
    FORWARD(W, c2);
    expect_fail(r, Y, "mode real", c2, "'mode'", "real");
    /* An S4D config over S4 weights: the S4 file has P (and l_kernel), which S4D has not. */
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"mode\": \"diag\"}");
    FORWARD(W, c2);
    expect_fail(r, Y, "S4D config, S4 weights", W, "unexpected tensor 'layer.kernel.");
    /* And an S4 config over S4D weights: P is missing. */
    char W4d[S4T_PATH_MAX], U4d[S4T_PATH_MAX];
    s4t_path(W4d, "s4d/cases/s4d_legs_zoh_h2_n8_l16/params_init.safetensors");
    s4t_path(U4d, "s4d/cases/s4d_legs_zoh_h2_n8_l16/u.npy");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"l_max\": 16}");
    run(r, "forward", "--weights", W4d, "--config", c2, "--input", U4d, "--output", Y, NULL);
    expect_fail(r, Y, "S4 config, S4D weights", W4d, "missing tensor 'layer.kernel.");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"dt_tie\": false}");
    FORWARD(W, c2);
    expect_fail(r, Y, "dt_tie", c2, "'dt_tie'");
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8,");
    FORWARD(W, c2);
    expect_fail(r, Y, "config not JSON", c2, "JSON");
    run(r, "forward", "--weights", W, "--input", U, "--output", Y, NULL);
    expect_fail(r, Y, "no config", W, "s4_config");
#undef FORWARD
    free(r);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char cfg[S4T_PATH_MAX], W[S4T_PATH_MAX];
    char Y[300], bad[300];
    s4t_path(cfg, "cases/h2_n8_l7/config.json");
    s4t_path(W, "cases/h2_n8_l7/params_init.safetensors");
    tmp_path(Y, sizeof Y, "Y.npy");
    tmp_path(bad, sizeof bad, "bad.npy");
    result *r = malloc(sizeof *r);
#define FORWARD(input)                                                                        \
    run(r, "forward", "--weights", W, "--config", cfg, "--input", (input), "--output", Y, NULL)

    write_raw_npy(bad, "\x93NUMPX", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }");
    FORWARD(bad);
    expect_fail(r, Y, "bad magic", bad, "magic");
    write_raw_npy(bad, "\x93NUMPY", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }");
    FORWARD(bad);
    expect_fail(r, Y, "fortran", bad, "fortran_order");
    write_raw_npy(bad, "\x93NUMPY", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }");
    FORWARD(bad);
    expect_fail(r, Y, "big-endian", bad, "big-endian");
    write_raw_npy(bad, "\x93NUMPY", "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }");
    FORWARD(bad);
    expect_fail(r, Y, "short data", bad, "truncated");

    float u[2 * 2 * 7];
    for (int i = 0; i < 28; i++)
        u[i] = (float)(0.1 * i - 1.0);
    const int64_t rank2[2] = {2, 14}, wrongH[3] = {2, 7, 2}, good[3] = {2, 2, 7};
    assert_int_equal(s4_npy_write_f32(bad, u, 2, rank2), S4_OK);
    FORWARD(bad);
    expect_fail(r, Y, "rank 2", bad, "(2, 14)", "expected (B, H, L)");
    assert_int_equal(s4_npy_write_f32(bad, u, 3, wrongH), S4_OK);
    FORWARD(bad);
    expect_fail(r, Y, "wrong H", bad, "(2, 7, 2)", "d_model = 2");
    u[5] = NAN;
    assert_int_equal(s4_npy_write_f32(bad, u, 3, good), S4_OK);
    FORWARD(bad);
    expect_fail(r, Y, "NaN input", bad, "element 5", "NaN");
    u[5] = 0.0f;

    /* A float64 input is accepted; a failed run never touches an existing output. */
    double ud[28];
    for (int i = 0; i < 28; i++)
        ud[i] = u[i];
    assert_int_equal(s4_npy_write_f64(bad, ud, 3, good), S4_OK);
    FORWARD(bad);
    expect_ok(r, "float64 input");
    assert_true(file_exists(Y));
    struct stat before, after;
    assert_int_equal(stat(Y, &before), 0);
    char *old = mc_read_text(Y);
    write_raw_npy(bad, "\x93NUMPX", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }");
    FORWARD(bad);
    expect_fail(r, NULL, "bad input, existing output", bad, "magic");
    assert_int_equal(stat(Y, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    char *now = mc_read_text(Y);
    assert_memory_equal(old, now, (size_t)before.st_size);
    free(old);
    free(now);
    remove(Y);

    /* The diagonal step mode: libs4 runs it when its eigenbasis is well enough conditioned
     * (then within 1e-3 of the reference) and refuses it otherwise, with one line. */
    char U[S4T_PATH_MAX], yref[S4T_PATH_MAX];
    s4t_path(U, "cases/h2_n8_l7/u.npy");
    s4t_path(yref, "cases/h2_n8_l7/y_f64.npy");
    run(r, "forward", "--weights", W, "--config", cfg, "--input", U, "--output", Y, "--mode",
        "diagonal", NULL);
    if (r->status == 0) {
        expect_ok(r, "diagonal");
        assert_rel_err(npy_err(Y, yref), 1e-3, "diagonal step mode");
    } else {
        expect_fail(r, Y, "diagonal refused", "s4_step_create");
    }
#undef FORWARD
    free(r);
}

/* ---- main ---------------------------------------------------------------------------------- */



/* ---- s4 generate ------------------------------------------------------------------------ */

/* The 16-bit samples of a mono WAV file (s4_wav_read gives v / 32768). */
static int32_t *wav_pcm(const char *path, size_t *n)
{
    double *a = NULL;
    int rate = 0;
    assert_int_equal(s4_wav_read(path, &a, n, &rate), S4_OK);
    assert_int_equal(rate, 16000);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (int32_t)lrint(a[i] * 32768.0);
    s4_free(a);
    return v;
}

/* Greedy generation after the case's prime: the reference's tokens; --wav: the decoded
 * tokens as 16-bit PCM within 4 LSB, one mono file per stream. Failures leave nothing. */
static void test_generate(void **state)
{
    (void)state;
    char w[S4T_PATH_MAX], c[S4T_PATH_MAX], prime[S4T_PATH_MAX], gold[S4T_PATH_MAX];
    s4t_path(w, "models_sashimi/lm_d8_p44_n1/params.safetensors");
    s4t_path(c, "models_sashimi/lm_d8_p44_n1/config.json");
    s4t_path(prime, "models_sashimi/lm_d8_p44_n1/prime.npy");
    s4t_path(gold, "models_sashimi/lm_d8_p44_n1/gen_greedy.npy");
    char out[300], wav[300], wav0[300], wav1[300];
    tmp_path(out, sizeof out, "gen.npy");
    tmp_path(wav, sizeof wav, "gen.wav");
    tmp_path(wav0, sizeof wav0, "gen.0.wav");
    tmp_path(wav1, sizeof wav1, "gen.1.wav");
    result r;
    run(&r, "generate", "--weights", w, "--config", c, "--prime", prime, "--length", "64",
        "--temperature", "0", "--output", out, "--wav", wav, NULL);
    expect_ok(&r, "s4 generate greedy");
    int64_t *got = NULL, *want = NULL, sg[S4_MAX_DIMS], sw[S4_MAX_DIMS];
    int ng = 0, nw = 0;
    assert_int_equal(s4_npy_read_i64(out, &got, &ng, sg), S4_OK);
    assert_int_equal(s4_npy_read_i64(gold, &want, &nw, sw), S4_OK);
    assert_int_equal(ng, 2);
    assert_int_equal(sg[0], sw[0]);
    assert_int_equal(sg[1], sw[1]);
    assert_memory_equal(got, want, (size_t)(sg[0] * sg[1]) * sizeof *got);
    for (int b = 0; b < 2; b++) {
        size_t n = 0;
        int32_t *pcm = wav_pcm(b ? wav1 : wav0, &n);
        assert_int_equal(n, 64);
        int32_t t[64];
        double a[64];
        for (int i = 0; i < 64; i++)
            t[i] = (int32_t)got[b * 64 + i];
        assert_int_equal(s4_mulaw_decode(t, 64, a), S4_OK);
        for (int i = 0; i < 64; i++)
            if (labs((long)pcm[i] - lrint(a[i] * 32767.0)) > 4)
                fail_msg("stream %d sample %d: PCM %d, decoded token %g", b, i, pcm[i],
                         a[i] * 32767.0);
        free(pcm);
        remove(b ? wav1 : wav0);
    }
    s4_free(got);
    remove(out);
    /* Float steps (--precision single): the reference's greedy tokens too. */
    run(&r, "generate", "--weights", w, "--config", c, "--prime", prime, "--length", "64",
        "--temperature", "0", "--precision", "single", "--output", out, NULL);
    expect_ok(&r, "s4 generate greedy, single precision");
    assert_int_equal(s4_npy_read_i64(out, &got, &ng, sg), S4_OK);
    assert_memory_equal(got, want, (size_t)(sw[0] * sw[1]) * sizeof *got);
    s4_free(got), s4_free(want);
    remove(out);
    /* A WAV prime, one stream, sampled and seeded: runs, and twice gives the same tokens. */
    char pw[300], o2[300];
    tmp_path(pw, sizeof pw, "prime.wav");
    tmp_path(o2, sizeof o2, "gen2.npy");
    double tone[800];
    for (int i = 0; i < 800; i++)
        tone[i] = 0.5 * sin(0.05 * i);
    assert_int_equal(s4_wav_write(pw, tone, 800, 1, 16000), S4_OK);
    run(&r, "generate", "--weights", w, "--config", c, "--prime", pw, "--length", "40",
        "--seed", "3", "--top-k", "20", "--output", out, NULL);
    expect_ok(&r, "s4 generate wav prime");
    run(&r, "generate", "--weights", w, "--config", c, "--prime", pw, "--length", "40",
        "--seed", "3", "--top-k", "20", "--threads", "2", "--output", o2, NULL);
    expect_ok(&r, "s4 generate wav prime, 2 threads");
    int64_t *t1 = NULL, *t2 = NULL, s1[S4_MAX_DIMS], s2[S4_MAX_DIMS];
    int n1 = 0, n2 = 0;
    assert_int_equal(s4_npy_read_i64(out, &t1, &n1, s1), S4_OK);
    assert_int_equal(s4_npy_read_i64(o2, &t2, &n2, s2), S4_OK);
    assert_int_equal(n1, 2), assert_int_equal(s1[0], 1), assert_int_equal(s1[1], 40);
    assert_memory_equal(t1, t2, 40 * sizeof *t1);
    s4_free(t1), s4_free(t2);
    remove(out), remove(o2);
    /* Failures: nothing written. */
    run(&r, "generate", "--weights", w, "--config", c, "--length", "0", "--output", out, NULL);
    expect_fail(&r, out, "length 0", "--length");
    run(&r, "generate", "--weights", w, "--config", c, "--length", "8", "--temperature", "-1",
        "--output", out, NULL);
    expect_fail(&r, out, "negative temperature", "--temperature");
    run(&r, "generate", "--weights", w, "--config", c, "--length", "8", "--precision", "half",
        "--output", out, NULL);
    expect_fail(&r, out, "unknown precision", "--precision");
    char missing_dir_wav[300];
    tmp_path(missing_dir_wav, sizeof missing_dir_wav, "none/x.wav");
    run(&r, "generate", "--weights", w, "--config", c, "--length", "8", "--output", out,
        "--wav", missing_dir_wav, NULL);
    expect_fail(&r, out, "unwritable wav", "none");
    char sashimi_w[S4T_PATH_MAX], sashimi_c[S4T_PATH_MAX];
    s4t_path(sashimi_w, "models_sashimi/s_d8_p44_n1_ff2/params.safetensors");
    s4t_path(sashimi_c, "models_sashimi/s_d8_p44_n1_ff2/config.json");
    run(&r, "generate", "--weights", sashimi_w, "--config", sashimi_c, "--length", "8",
        "--output", out, NULL);
    expect_fail(&r, out, "not a token model", "SashimiLM");
    remove(pw);
}

int main(int argc, char **argv)
{
    snprintf(tmp_dir, sizeof tmp_dir, "test_cli.XXXXXX");
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
    int n_s4d = 0;
    s4d_case *s4d = s4d_cases_load(&n_s4d);
    for (int i = 0; i < n_s4d; i++) {
        char name[160];
        snprintf(name, sizeof name, "s4d/%s", s4d[i].name);
        s4t_suite_add(&s, name, test_s4d_golden, &s4d[i]);
    }
    s4t_suite_add(&s, "s4d_info", test_s4d_info, NULL);
    s4t_suite_add(&s, "s4d_step_modes", test_s4d_step_modes, NULL);
    s4t_suite_add(&s, "rate_usage", test_rate_usage, NULL);
    s4t_suite_add(&s, "rate_is_dt", test_rate_is_dt, NULL);
    s4t_suite_add(&s, "rate_dplr_nodes", test_rate_dplr_nodes, NULL);
    s4t_suite_add(&s, "info", test_info, NULL);
    s4t_suite_add(&s, "not_transposed", test_not_transposed, NULL);
    s4t_suite_add(&s, "usage_errors", test_usage_errors, NULL);
    s4t_suite_add(&s, "bad_weights_and_config", test_bad_weights_and_config, NULL);
    s4t_suite_add(&s, "bad_inputs", test_bad_inputs, NULL);
    s4t_suite_add(&s, "generate", test_generate, NULL);
    const int failed = s4t_suite_run(&s, "cli", argc, argv);
    free(cases);
    free(s4d);
    s4t_rmdir_flat(tmp_dir);
    return failed ? 1 : 0;
}
