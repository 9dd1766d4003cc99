/* The `s4` program (src/cli/s4.c), run as a user would: every golden case through
 * `s4 kernel` and `s4 forward` (conv, dense, linear, chunked) against the float64 reference,
 * `s4 info`, and hostile inputs -- bad options, weights, configs and arrays -- each of which
 * must give a non-zero status, exactly one line on stderr naming the file, tensor or key,
 * and no output file.
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
    mc_write_text(c2, "{\"d_model\": 2, \"d_state\": 8, \"mode\": \"diag\"}");
    FORWARD(W, c2);
    expect_fail(r, Y, "S4D", c2, "'mode'", "diag");
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

static int remove_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
            remove(p);
        }
    closedir(d);
    return rmdir(tmp_dir);
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
    s4t_suite_add(&s, "info", test_info, NULL);
    s4t_suite_add(&s, "not_transposed", test_not_transposed, NULL);
    s4t_suite_add(&s, "usage_errors", test_usage_errors, NULL);
    s4t_suite_add(&s, "bad_weights_and_config", test_bad_weights_and_config, NULL);
    s4t_suite_add(&s, "bad_inputs", test_bad_inputs, NULL);
    const int failed = s4t_suite_run(&s, "cli", argc, argv);
    free(cases);
    remove_tmp_dir();
    return failed ? 1 : 0;
}
