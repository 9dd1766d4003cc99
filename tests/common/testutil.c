/* Shared helpers of the libs4 tests (see testutil.h).
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L /* opendir, rmdir */
#include "testutil.h"

#include "io/io.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fails the running test with a formatted message at file:line. */
static void fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    _fail(file, line);
}

/* ---- closeness ------------------------------------------------------------------ */

double s4t_max_abs(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return NAN;
        m = fmax(m, fabs(x[i]));
    }
    return m;
}

double s4t_max_rel_err(const double *got, const double *want, size_t n)
{
    double num = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (isnan(d))
            return NAN;
        num = fmax(num, d);
    }
    double den = s4t_max_abs(want, n);
    return num / (den > 0.0 ? den : 1.0);
}

void s4t_assert_allclose_(const double *got, const double *want, size_t n, double rtol,
                          double atol, const char *what, const char *file, int line)
{
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double excess = fabs(got[i] - want[i]) - (atol + rtol * fabs(want[i]));
        if (isnan(excess)) {
            worst = i;
            worst_excess = INFINITY;
            break;
        }
        if (excess > worst_excess) {
            worst = i;
            worst_excess = excess;
        }
    }
    if (n > 0 && worst_excess > 0.0)
        fail_at(file, line,
                "%s: not allclose (rtol %.3g, atol %.3g): worst index %zu of %zu: got %.17g, "
                "want %.17g (|diff| %.3g); max rel-to-max error %.3g",
                what, rtol, atol, worst, n, got[worst], want[worst],
                fabs(got[worst] - want[worst]), s4t_max_rel_err(got, want, n));
}

void s4t_assert_rel_(double err, double tol, const char *what, const char *file, int line)
{
    if (!(err <= tol))
        fail_at(file, line, "%s: relative error %.3e exceeds %.1e", what, err, tol);
}

/* ---- float <-> double ----------------------------------------------------------- */

void s4t_f2d(const float *x, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (double)x[i];
}

double *s4t_f2d_alloc(const float *x, size_t n)
{
    double *out = malloc((n ? n : 1) * sizeof *out);
    assert_non_null(out);
    s4t_f2d(x, out, n);
    return out;
}

void s4t_d2f(const double *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)x[i];
}

/* ---- golden data ---------------------------------------------------------------- */

void s4t_path_(char *buf, size_t size, const char *fmt, ...)
{
    int k = snprintf(buf, size, "%s/", S4_TEST_DATA_DIR);
    assert_true(k > 0 && (size_t)k < size);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + k, size - (size_t)k, fmt, ap);
    va_end(ap);
    assert_true(m >= 0 && (size_t)m < size - (size_t)k);
}

double *s4t_find_tensor(const char *path, const char *name, size_t *numel, int *ndim,
                        int64_t shape[S4T_MAX_DIMS])
{
    s4io_safetensors *f = NULL;
    s4_status st = s4io_safetensors_open(path, &f);
    if (st != S4_OK)
        fail_at(__FILE__, __LINE__, "cannot open %s: %s: %s", path, s4_status_str(st),
                s4_last_error());
    const s4io_tensor *t = s4io_safetensors_find(f, name);
    double *out = NULL;
    if (t) {
        out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        assert_non_null(out);
        st = s4io_tensor_to_f64(t, out, t->numel);
        if (st != S4_OK) {
            s4io_safetensors_close(f);
            fail_at(__FILE__, __LINE__, "%s: tensor %s: %s: %s", path, name,
                    s4_status_str(st), s4_last_error());
        }
        if (numel)
            *numel = t->numel;
        if (ndim)
            *ndim = t->ndim;
        if (shape)
            for (int d = 0; d < t->ndim && d < S4T_MAX_DIMS; d++)
                shape[d] = t->shape[d];
    }
    s4io_safetensors_close(f);
    return out;
}

double *s4t_load_tensor(const char *path, const char *name, size_t *numel)
{
    double *out = s4t_find_tensor(path, name, numel, NULL, NULL);
    if (!out)
        fail_at(__FILE__, __LINE__, "%s: no tensor named %s", path, name);
    return out;
}

double *s4t_load_npy(const char *path, size_t *numel, int *ndim, int64_t shape[S4T_MAX_DIMS])
{
    double *data = NULL;
    int nd = 0;
    int64_t sh[S4IO_MAX_DIMS] = {0};
    s4_status st = s4io_npy_read(path, &data, &nd, sh);
    if (st != S4_OK)
        fail_at(__FILE__, __LINE__, "cannot read %s: %s: %s", path, s4_status_str(st),
                s4_last_error());
    size_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= (size_t)sh[d];
    if (numel)
        *numel = n;
    if (ndim)
        *ndim = nd;
    if (shape)
        for (int d = 0; d < nd && d < S4T_MAX_DIMS; d++)
            shape[d] = sh[d];
    /* Tests free() what the helpers return; the library's blocks go back through s4_free. */
    double *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        fail_at(__FILE__, __LINE__, "%s: out of memory", path);
    memcpy(copy, data, n * sizeof *copy);
    s4_free(data);
    return copy;
}

/* ---- the cases.json manifest ---------------------------------------------------- */

static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_at(__FILE__, __LINE__, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    size_t got = fread(text, 1, (size_t)size, fp);
    fclose(fp);
    assert_int_equal(got, (size_t)size);
    text[size] = '\0';
    return text;
}

static const cJSON *member(const cJSON *obj, const char *key, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        fail_at(__FILE__, __LINE__, "cases.json: %s has no \"%s\"", where, key);
    return v;
}

/* Integer member; null maps to `if_null`. */
static int64_t get_int(const cJSON *obj, const char *key, int64_t if_null, const char *where)
{
    const cJSON *v = member(obj, key, where);
    if (cJSON_IsNull(v))
        return if_null;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    if (!cJSON_IsNumber(v))
        fail_at(__FILE__, __LINE__, "cases.json: %s.%s is not a number", where, key);
    return (int64_t)v->valuedouble;
}

static void get_str(const cJSON *obj, const char *key, char *out, size_t size,
                    const char *where)
{
    const cJSON *v = member(obj, key, where);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        fail_at(__FILE__, __LINE__, "cases.json: %s.%s is not a short string", where, key);
    strcpy(out, v->valuestring);
}

s4t_case *s4t_cases_load(int *count)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "cases.json");
    char *text = read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        fail_at(__FILE__, __LINE__, "%s: not valid JSON", path);
    const cJSON *list = member(root, "cases", "root");
    int n = cJSON_GetArraySize(list);
    s4t_case *cases = calloc((size_t)(n ? n : 1), sizeof *cases);
    assert_non_null(cases);

    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        s4t_case *c = &cases[i++];
        get_str(item, "name", c->name, sizeof c->name, "case");
        const cJSON *cfg = member(item, "config", c->name);
        c->H = (int)get_int(cfg, "H", 0, c->name);
        c->N = (int)get_int(cfg, "N", 0, c->name);
        c->rank = (int)get_int(cfg, "rank", 1, c->name);
        c->n_ssm = (int)get_int(cfg, "n_ssm", 0, c->name);
        c->channels = (int)get_int(cfg, "channels", 1, c->name);
        c->bidirectional = (int)get_int(cfg, "bidirectional", 0, c->name);
        c->l_max = get_int(cfg, "l_max", 0, c->name);
        c->dt_min = member(cfg, "dt_min", c->name)->valuedouble;
        c->dt_max = member(cfg, "dt_max", c->name)->valuedouble;
        get_str(cfg, "activation", c->activation, sizeof c->activation, c->name);
        get_str(cfg, "init", c->init, sizeof c->init, c->name);
        get_str(cfg, "mode", c->mode, sizeof c->mode, c->name);
        get_str(cfg, "dt_transform", c->dt_transform, sizeof c->dt_transform, c->name);
        get_str(cfg, "real_transform", c->real_transform, sizeof c->real_transform, c->name);
        get_str(cfg, "imag_transform", c->imag_transform, sizeof c->imag_transform, c->name);
        c->kernel_channels = (int)get_int(item, "kernel_channels", 0, c->name);
        const cJSON *files = member(item, "files", c->name);
        get_str(files, "params_init", c->params_init, sizeof c->params_init, c->name);
        get_str(files, "kernel", c->kernel, sizeof c->kernel, c->name);

        const cJSON *stages = member(item, "stages", c->name);
        const cJSON *sj;
        cJSON_ArrayForEach(sj, stages) {
            if (c->n_stages == S4T_MAX_STAGES)
                fail_at(__FILE__, __LINE__, "%s: more than %d stages", c->name,
                        S4T_MAX_STAGES);
            s4t_stage *s = &c->stages[c->n_stages++];
            s->L = get_int(sj, "L", 0, c->name);
            s->l_kernel_after = get_int(sj, "l_kernel_after_f64", 0, c->name);
            const cJSON *sf = member(sj, "files", c->name);
            get_str(sf, "K_f64", s->K_f64, sizeof s->K_f64, c->name);
            get_str(sf, "params_after_f64", s->params_after_f64, sizeof s->params_after_f64,
                    c->name);
        }
        if (s4t_case_cprime(c) * (1 + c->bidirectional) != c->kernel_channels)
            fail_at(__FILE__, __LINE__, "%s: kernel_channels %d != C' x (1 + bidirectional)",
                    c->name, c->kernel_channels);
    }
    cJSON_Delete(root);
    *count = n;
    return cases;
}

int s4t_case_cprime(const s4t_case *c)
{
    return c->channels * (strncmp(c->activation, "glu", 3) == 0 ? 2 : 1);
}

s4_transform s4t_transform(const char *name)
{
    static const struct { const char *name; s4_transform t; } map[] = {
        {"none", S4_TRANSFORM_NONE}, {"id", S4_TRANSFORM_NONE},
        {"exp", S4_TRANSFORM_EXP},   {"relu", S4_TRANSFORM_RELU},
        {"sigmoid", S4_TRANSFORM_SIGMOID}, {"softplus", S4_TRANSFORM_SOFTPLUS},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0)
            return map[i].t;
    fail_at(__FILE__, __LINE__, "unknown transform \"%s\"", name);
    return S4_TRANSFORM_NONE;
}

void s4t_case_config(const s4t_case *c, s4_ssm_config *cfg)
{
    s4_ssm_config_default(cfg);
    cfg->H = c->H;
    cfg->N = c->N;
    cfg->rank = c->rank;
    cfg->n_ssm = c->n_ssm;
    cfg->channels = s4t_case_cprime(c);
    cfg->bidirectional = c->bidirectional;
    cfg->dt_min = c->dt_min;
    cfg->dt_max = c->dt_max;
    cfg->dt_transform = s4t_transform(c->dt_transform);
    cfg->real_transform = s4t_transform(c->real_transform);
    cfg->imag_transform = s4t_transform(c->imag_transform);
    /* init is ignored by create_from_arrays; "dplr-lin" has no enum value. */
    cfg->init = strcmp(c->init, "legt") == 0 ? S4_INIT_LEGT
              : strcmp(c->init, "lagt") == 0 ? S4_INIT_LAGT
              : strcmp(c->init, "fout") == 0 || strcmp(c->init, "fourier") == 0 ? S4_INIT_FOUT
              : strcmp(c->init, "hippo") == 0 ? S4_INIT_HIPPO
                                              : S4_INIT_LEGS;
}

/* Loads tensor `name` and checks its element count. */
static double *load_sized(const char *path, const char *name, size_t want)
{
    size_t n = 0;
    double *x = s4t_load_tensor(path, name, &n);
    if (n != want)
        fail_at(__FILE__, __LINE__, "%s: %s has %zu elements, expected %zu", path, name, n,
                want);
    return x;
}

s4_ssm *s4t_ssm_from_params(const s4t_case *c, const char *rel_path)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", rel_path);
    s4_ssm_config cfg;
    s4t_case_config(c, &cfg);
    size_t H = (size_t)c->H, Nh = (size_t)c->N / 2, r = (size_t)c->rank;
    size_t S = (size_t)(c->n_ssm ? c->n_ssm : c->H);
    size_t Cp = (size_t)cfg.channels, Cpp = (size_t)c->kernel_channels;

    double *inv_dt = load_sized(path, "layer.kernel.inv_dt", H);
    double *A_real = load_sized(path, "layer.kernel.A_real", S * Nh);
    double *A_imag = load_sized(path, "layer.kernel.A_imag", S * Nh);
    double *B = load_sized(path, "layer.kernel.B", S * Nh * 2);
    double *P = load_sized(path, "layer.kernel.P", r * S * Nh * 2);
    double *C = load_sized(path, "layer.kernel.C", Cpp * H * Nh * 2);
    double *D = load_sized(path, "layer.D", Cp * H);
    double *lk = load_sized(path, "layer.kernel.l_kernel", 1);

    s4_ssm_arrays arr = {inv_dt, A_real, A_imag, B, P, C, D, (int64_t)lk[0]};
    s4_ssm *ssm = NULL;
    s4_status st = s4_ssm_create_from_arrays(&cfg, &arr, &ssm);
    free(inv_dt);
    free(A_real);
    free(A_imag);
    free(B);
    free(P);
    free(C);
    free(D);
    free(lk);
    if (st != S4_OK || !ssm)
        fail_at(__FILE__, __LINE__, "%s: s4_ssm_create_from_arrays(%s): %s: %s", c->name,
                rel_path, s4_status_str(st), s4_last_error());
    return ssm;
}

/* ---- running one test function per case ---------------------------------------- */

void s4t_suite_add(s4t_suite *s, const char *name, CMUnitTestFunction fn, void *state)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->tests = realloc(s->tests, s->cap * sizeof *s->tests);
        if (!s->tests)
            abort();
    }
    char *copy = malloc(strlen(name) + 1);
    if (!copy)
        abort();
    strcpy(copy, name);
    s->tests[s->n++] = (struct CMUnitTest){copy, fn, NULL, NULL, state};
}

void s4t_suite_add_cases(s4t_suite *s, const char *prefix, CMUnitTestFunction fn,
                         s4t_case *cases, int count)
{
    for (int i = 0; i < count; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%s", prefix, cases[i].name);
        s4t_suite_add(s, name, fn, &cases[i]);
    }
}

int s4t_suite_run(s4t_suite *s, const char *group, int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (argc > 2)
        cmocka_set_skip_filter(argv[2]);
    int failures = _cmocka_run_group_tests(group, s->tests, s->n, NULL, NULL);
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->tests[i].name);
    free(s->tests);
    s->tests = NULL;
    s->n = s->cap = 0;
    return failures;
}

/* ---- library helpers ------------------------------------------------------------ */

double *s4t_get_param(const s4_ssm *ssm, s4_param which, size_t *n)
{
    size_t m = s4_ssm_param_size(ssm, which);
    if (m == 0)
        fail_at(__FILE__, __LINE__, "s4_ssm_param_size(%d) = 0", (int)which);
    double *x = malloc(m * sizeof *x);
    assert_non_null(x);
    s4_status st = s4_ssm_get_param(ssm, which, x, m);
    if (st != S4_OK)
        fail_at(__FILE__, __LINE__, "s4_ssm_get_param(%d): %s: %s", (int)which,
                s4_status_str(st), s4_last_error());
    if (n)
        *n = m;
    return x;
}

int64_t s4t_reference_setup(s4_ssm *ssm, const s4t_case *c, int64_t L)
{
    s4_status st;
    if (c->l_max > 0 && s4_ssm_l_kernel(ssm) == 0) {
        st = s4_ssm_setup_length(ssm, c->l_max);
        if (st != S4_OK)
            fail_at(__FILE__, __LINE__, "%s: s4_ssm_setup_length(l_max = %lld): %s: %s",
                    c->name, (long long)c->l_max, s4_status_str(st), s4_last_error());
    }
    int64_t l = (c->l_max > 0 && c->l_max < L) ? c->l_max : L;
    st = s4_ssm_setup_length(ssm, l);
    if (st != S4_OK)
        fail_at(__FILE__, __LINE__, "%s: s4_ssm_setup_length(%lld): %s: %s", c->name,
                (long long)l, s4_status_str(st), s4_last_error());
    return l;
}

static char primed[512];

void s4t_prime_error_(void)
{
    /* Any failing call with a message of its own; an unknown measure is one. */
    s4_status st = s4_hippo((s4_measure)-7, 4, 1, NULL, NULL, NULL);
    (void)st;
    snprintf(primed, sizeof primed, "%s", s4_last_error());
}

void s4t_assert_failed_(s4_status got, s4_status want, const char *call, const char *file,
                        int line)
{
    const char *msg = s4_last_error();
    if (got != want)
        fail_at(file, line, "%s returned %s, expected %s (last error: \"%s\")", call,
                s4_status_str(got), s4_status_str(want), msg ? msg : "(null)");
    if (!msg || msg[0] == '\0' || strcmp(msg, primed) == 0)
        fail_at(file, line, "%s failed with %s but left no message of its own (\"%s\")",
                call, s4_status_str(got), msg ? msg : "(null)");
}

float *s4t_falloc(size_t n, float v)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        fail_at(__FILE__, __LINE__, "out of memory for %zu floats", n);
    for (size_t i = 0; i < n; i++)
        x[i] = v;
    return x;
}

double *s4t_dalloc(size_t n, double v)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        fail_at(__FILE__, __LINE__, "out of memory for %zu doubles", n);
    for (size_t i = 0; i < n; i++)
        x[i] = v;
    return x;
}

void s4t_worst(double *w, double e)
{
    if (e > *w || isnan(e))
        *w = e;
}

s4_step *s4t_step_or_fail(const s4_layer *layer, s4_step_mode mode, int B, double rate,
                          const char *what)
{
    static const char *const names[3] = {"dense", "linear", "diagonal"};
    s4_step *p = NULL;
    const s4_status st = s4_step_create(layer, mode, B, rate, &p);
    if (st != S4_OK || !p)
        fail_at(__FILE__, __LINE__, "%s: s4_step_create(%s, B = %d, rate = %g): %s: %s", what,
                (unsigned)mode < 3 ? names[mode] : "?", B, rate, s4_status_str(st),
                s4_last_error());
    return p;
}

void *s4t_state_alloc(const s4_step *p)
{
    const size_t n = s4_step_state_size(p);
    void *s = n ? malloc(n) : NULL;
    if (!s)
        fail_at(__FILE__, __LINE__, "state of %zu bytes: out of memory", n);
    memset(s, 0x5a, n);
    if (s4_step_state_reset(p, s) != S4_OK)
        fail_at(__FILE__, __LINE__, "s4_step_state_reset: %s", s4_last_error());
    return s;
}

double s4t_frel(const float *a, const float *b, size_t n)
{
    double *ad = s4t_f2d_alloc(a, n), *bd = s4t_f2d_alloc(b, n);
    const double e = s4t_max_rel_err(ad, bd, n);
    free(ad);
    free(bd);
    return e;
}

static uint64_t urand_state = 0x9e3779b97f4a7c15ull;

void s4t_urand_seed(uint64_t seed) { urand_state = seed; }

double s4t_urand(void)
{
    uint64_t z = (urand_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

int s4t_rmdir_flat(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char path[1024];
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
    closedir(d);
    return rmdir(dir);
}
