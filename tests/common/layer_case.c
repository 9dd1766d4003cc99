/* Golden-data helpers for layer-level tests; see layer_case.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include "layer_case.h"

#include "io/io.h" /* s4io_safetensors_*: rewriting a case's file into hostile variants */

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* x [B x R x C] -> [B x C x R] */
float *s4t_transpose_batch(const float *x, size_t B, size_t R, size_t C)
{
    float *t = malloc(B * R * C * sizeof *t);
    assert_non_null(t);
    for (size_t b = 0; b < B; b++)
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < C; c++)
                t[(b * C + c) * R + r] = x[(b * R + r) * C + c];
    return t;
}

char *s4t_read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    text[size] = '\0';
    return text;
}

const cJSON *s4t_jget(const cJSON *obj, const char *key, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        fail_msg("%s: no \"%s\"", where, key);
    return v;
}

/* Integer (or bool) member; null gives `if_null`. */
int64_t s4t_jint(const cJSON *obj, const char *key, int64_t if_null, const char *where)
{
    const cJSON *v = s4t_jget(obj, key, where);
    if (cJSON_IsNull(v))
        return if_null;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    if (!cJSON_IsNumber(v))
        fail_msg("%s: \"%s\" is not a number", where, key);
    return (int64_t)v->valuedouble;
}

/* String member or NULL for null. */
const char *s4t_jstr(const cJSON *obj, const char *key, const char *where)
{
    const cJSON *v = s4t_jget(obj, key, where);
    if (cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v))
        fail_msg("%s: \"%s\" is not a string", where, key);
    return v->valuestring;
}

/* The reference's Activation names (models/s4/s4.py); None is the identity. */
static s4_activation activation_of(const char *name, const char *where)
{
    static const struct { const char *name; s4_activation a; } map[] = {
        {"gelu", S4_ACT_GELU},         {"id", S4_ACT_IDENTITY}, {"identity", S4_ACT_IDENTITY},
        {"linear", S4_ACT_IDENTITY},   {"relu", S4_ACT_RELU},   {"silu", S4_ACT_SILU},
        {"swish", S4_ACT_SILU},        {"tanh", S4_ACT_TANH},   {"sigmoid", S4_ACT_SIGMOID},
        {"glu", S4_ACT_GLU},
    };
    if (!name)
        return S4_ACT_IDENTITY;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0)
            return map[i].a;
    fail_msg("%s: activation \"%s\" has no s4_activation", where, name);
    return S4_ACT_IDENTITY;
}

/* final_act: None means no output linear; 'id' a linear without activation. */
static s4_final_act final_of(const char *name, const char *where)
{
    if (!name)
        return S4_FINAL_NONE;
    if (strcmp(name, "glu") == 0)
        return S4_FINAL_GLU;
    if (strcmp(name, "id") == 0 || strcmp(name, "identity") == 0 || strcmp(name, "linear") == 0)
        return S4_FINAL_IDENTITY;
    fail_msg("%s: final_act \"%s\" has no s4_final_act", where, name);
    return S4_FINAL_NONE;
}

/* The reference's init names (dplr.py and its aliases) -> s4_init; 0 for a name libs4
 * cannot build (loading weights ignores the init, so the caller decides). */
int s4t_init_of(const char *name, s4_init *init)
{
    static const struct { const char *name; s4_init i; } map[] = {
        {"legs", S4_INIT_LEGS},          {"legt", S4_INIT_LEGT},
        {"lagt", S4_INIT_LAGT},          {"fout", S4_INIT_FOUT},
        {"fourier", S4_INIT_FOUT},       {"hippo", S4_INIT_HIPPO},
        {"diag-lin", S4_INIT_DIAG_LIN},  {"diag-linear", S4_INIT_DIAG_LIN},
        {"diag-inv", S4_INIT_DIAG_INV},  {"diag-inverse", S4_INIT_DIAG_INV},
        {"diag-real", S4_INIT_DIAG_REAL}, {"diag", S4_INIT_DIAG},
        {"diag-inv2", S4_INIT_DIAG_INV2}, {"diag-inverse2", S4_INIT_DIAG_INV2},
        {"diag-quad", S4_INIT_DIAG_QUAD}, {"diag-quadratic", S4_INIT_DIAG_QUAD},
    };
    for (size_t i = 0; name && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0) {
            *init = map[i].i;
            return 1;
        }
    return 0;
}

/* The reference's mode (SSM kernel) names; 0 for anything else. */
int s4t_mode_of(const char *name, s4_ssm_mode *mode)
{
    if (!name)
        return 0;
    if (strcmp(name, "dplr") == 0 || strcmp(name, "nplr") == 0 || strcmp(name, "s4") == 0) {
        *mode = S4_MODE_DPLR;
        return 1;
    }
    if (strcmp(name, "diag") == 0 || strcmp(name, "s4d") == 0) {
        *mode = S4_MODE_DIAG;
        return 1;
    }
    return 0;
}

/* SSMKernelDiag's disc names; 0 for anything else. */
int s4t_disc_of(const char *name, s4_disc *disc)
{
    static const struct { const char *name; s4_disc d; } map[] = {
        {"zoh", S4_DISC_ZOH}, {"bilinear", S4_DISC_BILINEAR}, {"dss", S4_DISC_DSS},
    };
    for (size_t i = 0; name && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0) {
            *disc = map[i].d;
            return 1;
        }
    return 0;
}

/* s4_layer_config from a case's config.json (S4Block constructor arguments, reference
 * names). Options libs4 does not model must have their defaults; a key this helper does not
 * know fails the test (a new kind of case must be handled, not ignored). */
void s4t_layer_config_from_case(const char *rel_path, s4_layer_config *cfg)
{
    static const char *const known[] = {
        "activation", "bandlimit", "bidirectional", "channels", "d_model", "d_state",
        "disc", "dt_fast", "dt_max", "dt_min", "dt_tie", "dt_transform", "final_act",
        "imag_transform", "init", "is_real", "l_max", "mode", "n_ssm", "rank",
        "real_transform", "swap_channels", "transposed",
    };
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", rel_path);
    char *text = s4t_read_text(path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        fail_msg("%s: not valid JSON", path);
    const cJSON *item;
    cJSON_ArrayForEach(item, j) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(item->string, known[k]) != 0)
            k++;
        if (k == sizeof known / sizeof known[0])
            fail_msg("%s: key \"%s\" is not handled by s4t_layer_config_from_case", path,
                     item->string);
    }
    s4_layer_config_default(cfg);
    cfg->ssm.H = (int)s4t_jint(j, "d_model", 0, path);
    cfg->ssm.N = (int)s4t_jint(j, "d_state", 64, path);
    cfg->ssm.rank = (int)s4t_jint(j, "rank", 1, path);
    cfg->ssm.n_ssm = (int)s4t_jint(j, "n_ssm", 0, path);
    cfg->ssm.dt_min = s4t_jget(j, "dt_min", path)->valuedouble;
    cfg->ssm.dt_max = s4t_jget(j, "dt_max", path)->valuedouble;
    cfg->ssm.dt_transform = s4t_transform(s4t_jstr(j, "dt_transform", path));
    cfg->ssm.real_transform = s4t_transform(s4t_jstr(j, "real_transform", path));
    cfg->ssm.imag_transform = s4t_transform(s4t_jstr(j, "imag_transform", path));
    cfg->channels = (int)s4t_jint(j, "channels", 1, path);
    cfg->bidirectional = (int)s4t_jint(j, "bidirectional", 0, path);
    cfg->activation = activation_of(s4t_jstr(j, "activation", path), path);
    cfg->final_act = final_of(s4t_jstr(j, "final_act", path), path);
    cfg->swap_channels = (int)s4t_jint(j, "swap_channels", 0, path);
    cfg->transposed = (int)s4t_jint(j, "transposed", 1, path);
    cfg->l_max = s4t_jint(j, "l_max", 0, path);
    /* The init only matters to s4_layer_create (weights carry Lambda and B); an init libs4
     * has no enum for (the reference's "dplr-lin" ...) keeps the default. */
    s4_init init;
    if (s4t_init_of(s4t_jstr(j, "init", path), &init))
        cfg->ssm.init = init;
    /* What the arrays cannot express must be the reference default: the kernel family and,
     * for S4 (always bilinear in libs4), the discretization. */
    const char *mode = s4t_jstr(j, "mode", path), *disc = s4t_jstr(j, "disc", path);
    if (!s4t_mode_of(mode, &cfg->ssm.mode))
        fail_msg("%s: mode \"%s\" is neither S4 (dplr) nor S4D (diag)", path,
                 mode ? mode : "null");
    if (cfg->ssm.mode == S4_MODE_DIAG) {
        if (!s4t_disc_of(disc, &cfg->ssm.disc))
            fail_msg("%s: disc \"%s\" is not zoh, bilinear or dss", path, disc ? disc : "null");
    } else if (!disc || strcmp(disc, "bilinear") != 0) {
        fail_msg("%s: disc \"%s\" is not bilinear", path, disc ? disc : "null");
    }
    if (s4t_jint(j, "dt_tie", 1, path) != 1 || s4t_jint(j, "dt_fast", 0, path) != 0 ||
        s4t_jint(j, "is_real", 0, path) != 0 || !cJSON_IsNull(s4t_jget(j, "bandlimit", path)))
        fail_msg("%s: dt_tie/dt_fast/is_real/bandlimit differ from the defaults", path);
    cJSON_Delete(j);
}

/* Tensor `name` with exactly `want` elements. */
static double *tensor_sized(const char *path, const char *name, size_t want)
{
    size_t n = 0;
    double *x = s4t_load_tensor(path, name, &n);
    if (n != want)
        fail_msg("%s: %s has %zu elements, expected %zu", path, name, n, want);
    return x;
}

/* A layer from a state_dict file (docs/design.md section 4 names). */
s4_layer *s4t_layer_from_params(const s4_layer_config *cfg, const char *rel_path)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", rel_path);
    const size_t H = (size_t)cfg->ssm.H, Nh = (size_t)cfg->ssm.N / 2, r = (size_t)cfg->ssm.rank;
    const size_t S = (size_t)(cfg->ssm.n_ssm ? cfg->ssm.n_ssm : cfg->ssm.H);
    const size_t Cp = (size_t)cfg->channels * (cfg->activation == S4_ACT_GLU ? 2 : 1);
    const size_t Cpp = Cp * (size_t)(1 + cfg->bidirectional);
    const size_t Fa = cfg->activation == S4_ACT_GLU ? Cp * H / 2 : Cp * H;
    const size_t Flin = cfg->final_act == S4_FINAL_GLU ? 2 * H
                        : cfg->final_act == S4_FINAL_IDENTITY ? H : 0;
    /* S4D (docs/design.md 10): no P and no l_kernel in the file, C always raw. */
    const int diag = cfg->ssm.mode == S4_MODE_DIAG;
    double *lk = NULL, *P = NULL;
    if (diag) {
        if (s4t_find_tensor(path, "layer.kernel.P", NULL, NULL, NULL) ||
            s4t_find_tensor(path, "layer.kernel.l_kernel", NULL, NULL, NULL))
            fail_msg("%s: an S4D state_dict has no layer.kernel.P or layer.kernel.l_kernel",
                     path);
    } else {
        lk = tensor_sized(path, "layer.kernel.l_kernel", 1);
        P = tensor_sized(path, "layer.kernel.P", r * S * Nh * 2);
    }
    s4_layer_arrays a = {
        .ssm = {.inv_dt = tensor_sized(path, "layer.kernel.inv_dt", H),
                .A_real = tensor_sized(path, "layer.kernel.A_real", S * Nh),
                .A_imag = tensor_sized(path, "layer.kernel.A_imag", S * Nh),
                .B = tensor_sized(path, "layer.kernel.B", S * Nh * 2),
                .P = P,
                .C = tensor_sized(path, "layer.kernel.C", Cpp * H * Nh * 2),
                .D = tensor_sized(path, "layer.D", Cp * H),
                .l_kernel = lk ? (int64_t)lk[0] : 0},
    };
    double *W = NULL, *b = NULL;
    if (Flin > 0) {
        W = tensor_sized(path, "output_linear.0.weight", Flin * Fa);
        b = tensor_sized(path, "output_linear.0.bias", Flin);
    } else {
        assert_null(s4t_find_tensor(path, "output_linear.0.weight", NULL, NULL, NULL));
    }
    a.W = W;
    a.b = b;
    s4_layer *layer = NULL;
    s4_status st = s4_layer_create_from_arrays(cfg, &a, &layer);
    if (st != S4_OK || !layer)
        fail_msg("%s: s4_layer_create_from_arrays: %s: %s", rel_path, s4_status_str(st),
                 s4_last_error());
    free(lk), free(W), free(b);
    free((void *)a.ssm.inv_dt), free((void *)a.ssm.A_real), free((void *)a.ssm.A_imag);
    free((void *)a.ssm.B), free((void *)a.ssm.P), free((void *)a.ssm.C), free((void *)a.ssm.D);
    return layer;
}

/* Loads an .npy of shape dims[0 .. ndim) and checks it. */
double *s4t_npy_shaped(const char *rel, int ndim, const int64_t *dims)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", rel);
    int nd = 0;
    int64_t shape[S4T_MAX_DIMS];
    size_t n = 0;
    double *x = s4t_load_npy(path, &n, &nd, shape);
    int ok = nd == ndim;
    for (int d = 0; ok && d < nd; d++)
        ok = shape[d] == dims[d];
    if (!ok) {
        char got[160] = "", want[160] = "";
        for (int d = 0; d < nd && d < S4T_MAX_DIMS; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)shape[d]);
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                     (long long)dims[d]);
        fail_msg("%s: shape (%s), expected (%s)", rel, got, want);
    }
    return x;
}

/* Loads an .npy of shape [d0 x d1 x d2] and checks it. */
double *s4t_npy3(const char *rel, int64_t d0, int64_t d1, int64_t d2)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "%s", rel);
    int ndim = 0;
    int64_t shape[S4T_MAX_DIMS];
    size_t n = 0;
    double *x = s4t_load_npy(path, &n, &ndim, shape);
    assert_int_equal(ndim, 3);
    if (shape[0] != d0 || shape[1] != d1 || shape[2] != d2)
        fail_msg("%s: shape (%lld, %lld, %lld), expected (%lld, %lld, %lld)", rel,
                 (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)d0,
                 (long long)d1, (long long)d2);
    return x;
}

/* ---- whole models: hostile variants of a case's files -------------------------------- */

/* A copy of case `dir/name`'s state_dict with tensor `drop` left out, `rename` (old, new)
 * renamed, and `reshape` given a wrong leading dimension; `add` adds a tensor. */
void s4t_write_variant(const char *dir, const char *name, const char *drop, const char *rename_from,
                          const char *rename_to, const char *reshape, const char *add,
                          const char *out)
{
    char p[S4T_PATH_MAX];
    s4t_path(p, "%s/%s/params.safetensors", dir, name);
    s4io_safetensors *f = NULL;
    assert_int_equal(s4io_safetensors_open(p, &f), S4_OK);
    const size_t n = s4io_safetensors_count(f);
    s4io_tensor_out *t = calloc(n + 1, sizeof *t);
    double **vals = calloc(n + 1, sizeof *vals);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const s4io_tensor *s = s4io_safetensors_at(f, i);
        if (drop && !strcmp(s->name, drop))
            continue;
        vals[k] = malloc((s->numel ? s->numel : 1) * sizeof(double));
        assert_int_equal(s4io_tensor_to_f64(s, vals[k], s->numel), S4_OK);
        t[k] = (s4io_tensor_out){.name = s->name, .dtype = s->dtype, .ndim = s->ndim,
                                 .values = vals[k]};
        memcpy(t[k].shape, s->shape, sizeof t[k].shape);
        if (rename_from && !strcmp(s->name, rename_from))
            t[k].name = rename_to;
        if (reshape && !strcmp(s->name, reshape)) {
            /* one fewer row: the values are a prefix of the original's */
            t[k].shape[0] -= 1;
        }
        k++;
    }
    static const double one = 1.0;
    if (add)
        t[k++] = (s4io_tensor_out){.name = add, .dtype = S4IO_F32, .ndim = 1, .shape = {1},
                                   .values = &one};
    assert_int_equal(s4io_safetensors_write(out, t, k, NULL, 0), S4_OK);
    for (size_t i = 0; i < n + 1; i++)
        free(vals[i]);
    free(vals), free(t);
    s4io_safetensors_close(f);
}

void s4t_expect_model_refused(const char *weights, const char *config, const char *needle)
{
    s4_model *m = (s4_model *)(uintptr_t)0x5eed;
    const s4_status st = s4_model_load(weights, config, &m);
    if (st == S4_OK)
        fail_msg("loaded, but wanted a refusal naming '%s'", needle);
    assert_ptr_equal(m, (s4_model *)(uintptr_t)0x5eed); /* untouched */
    if (!strstr(s4_last_error(), needle))
        fail_msg("message '%s' does not name '%s'", s4_last_error(), needle);
    print_message("refused (%s): %s\n", s4_status_str(st), s4_last_error());
}

void s4t_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}
