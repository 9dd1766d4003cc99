/* Shared by test_model.c and test_cli.c: the S4 golden cases as trained-model files
 * (config.json, parameter files, last-stage input and float64 outputs), and a rewriter that
 * derives hostile parameter files from a valid one.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_TEST_MODEL_CASES_H
#define S4_TEST_MODEL_CASES_H

#include "testutil.h"

#include "io/io.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MC_MAX_PARAMS = 8 };

typedef struct mc_case {
    char name[96];
    int bidirectional;
    int64_t L;                                /* length of the last stage */
    char config[S4T_PATH_MAX];                /* absolute paths */
    char u[S4T_PATH_MAX], y_f64[S4T_PATH_MAX], K_f64[S4T_PATH_MAX];
    int n_params;                             /* params_init, then every stage's f32, f64 */
    char params[MC_MAX_PARAMS][S4T_PATH_MAX];
    char params_label[MC_MAX_PARAMS][48];     /* "init", "after_f32", "after_s0_f64", ... */
} mc_case;

static inline char *mc_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    const long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    text[n] = '\0';
    return text;
}

static inline const char *mc_str(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(j))
        fail_msg("cases.json: missing string '%s'", key);
    return j->valuestring;
}

/* "cases/x/params_after_f32.safetensors" -> "after_f32". */
static inline void mc_label(const char *rel, char *out, size_t cap)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (strncmp(base, "params_", 7) == 0)
        base += 7;
    snprintf(out, cap, "%s", base);
    char *dot = strstr(out, ".safetensors");
    if (dot)
        *dot = '\0';
}

/* The cases of a manifest: dir "" for tests/data/cases.json (S4), "s4d/" for
 * tests/data/s4d/cases.json (S4D, with two S4 cases recorded beside them). */
static inline mc_case *mc_cases_load_dir(const char *dir, int *count)
{
    char path[S4T_PATH_MAX];
    s4t_path(path, "%scases.json", dir);
    char *text = mc_read_text(path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    assert_true(cJSON_IsArray(cases));
    const int n = cJSON_GetArraySize(cases);
    mc_case *out = calloc((size_t)n, sizeof *out);
    assert_non_null(out);
    int k = 0;
    for (const cJSON *c = cases->child; c; c = c->next, k++) {
        mc_case *m = &out[k];
        snprintf(m->name, sizeof m->name, "%s", mc_str(c, "name"));
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(c, "config");
        m->bidirectional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "bidirectional"));
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(c, "files");
        s4t_path(m->config, "%s%s", dir, mc_str(files, "config"));
        s4t_path(m->params[0], "%s%s", dir, mc_str(files, "params_init"));
        mc_label(mc_str(files, "params_init"), m->params_label[0], sizeof m->params_label[0]);
        m->n_params = 1;
        const cJSON *stages = cJSON_GetObjectItemCaseSensitive(c, "stages");
        assert_true(cJSON_IsArray(stages) && cJSON_GetArraySize(stages) >= 1);
        for (const cJSON *s = stages->child; s; s = s->next) {
            const cJSON *sf = cJSON_GetObjectItemCaseSensitive(s, "files");
            const char *keys[2] = {"params_after_f32", "params_after_f64"};
            for (int i = 0; i < 2; i++) {
                assert_true(m->n_params < MC_MAX_PARAMS);
                const char *rel = mc_str(sf, keys[i]);
                s4t_path(m->params[m->n_params], "%s%s", dir, rel);
                mc_label(rel, m->params_label[m->n_params], sizeof m->params_label[0]);
                m->n_params++;
            }
            if (!s->next) { /* the golden outputs belong to the last stage */
                m->L = (int64_t)cJSON_GetObjectItemCaseSensitive(s, "L")->valuedouble;
                s4t_path(m->u, "%s%s", dir, mc_str(sf, "u"));
                s4t_path(m->y_f64, "%s%s", dir, mc_str(sf, "y_f64"));
                s4t_path(m->K_f64, "%s%s", dir, mc_str(sf, "K_f64"));
            }
        }
    }
    cJSON_Delete(root);
    *count = n;
    return out;
}

/* The S4 cases of tests/data/cases.json. */
static inline mc_case *mc_cases_load(int *count) { return mc_cases_load_dir("", count); }

/* ---- hostile files derived from a valid one ----------------------------------------- */

/* A whole safetensors file as editable tensors (values as doubles). */
typedef struct mc_file {
    size_t n;
    s4io_tensor_out t[16];
    char names[16][64];
    double *values[16];
    const char *meta[4];
    size_t n_meta;
} mc_file;

static inline void mc_file_load(const char *path, mc_file *f)
{
    memset(f, 0, sizeof *f);
    s4io_safetensors *st = NULL;
    assert_int_equal(s4io_safetensors_open(path, &st), S4_OK);
    f->n = s4io_safetensors_count(st);
    assert_true(f->n <= 16);
    for (size_t i = 0; i < f->n; i++) {
        const s4io_tensor *t = s4io_safetensors_at(st, i);
        snprintf(f->names[i], sizeof f->names[i], "%s", t->name);
        f->values[i] = calloc(t->numel + 1, sizeof(double));
        assert_non_null(f->values[i]);
        assert_int_equal(s4io_tensor_to_f64(t, f->values[i], t->numel), S4_OK);
        f->t[i].name = f->names[i];
        f->t[i].dtype = t->dtype;
        f->t[i].ndim = t->ndim;
        memcpy(f->t[i].shape, t->shape, sizeof t->shape);
        f->t[i].values = f->values[i];
    }
    s4io_safetensors_close(st);
}

static inline void mc_file_free(mc_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->values[i]);
    memset(f, 0, sizeof *f);
}

static inline int mc_file_index(const mc_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return (int)i;
    fail_msg("no tensor %s", name);
    return -1;
}

static inline void mc_file_remove(mc_file *f, const char *name)
{
    const int i = mc_file_index(f, name);
    free(f->values[i]);
    for (size_t k = (size_t)i; k + 1 < f->n; k++) {
        f->t[k] = f->t[k + 1];
        memcpy(f->names[k], f->names[k + 1], sizeof f->names[k]);
        f->values[k] = f->values[k + 1];
        f->t[k].name = f->names[k];
    }
    f->n--;
}

static inline void mc_file_rename(mc_file *f, const char *name, const char *to)
{
    const int i = mc_file_index(f, name);
    snprintf(f->names[i], sizeof f->names[i], "%s", to);
}

/* Adds a tensor of `numel` copies of `value`. */
static inline void mc_file_add(mc_file *f, const char *name, s4io_dtype dtype, int ndim,
                               const int64_t *shape, double value)
{
    assert_true(f->n < 16);
    const size_t i = f->n++;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= (size_t)shape[d];
    snprintf(f->names[i], sizeof f->names[i], "%s", name);
    f->values[i] = calloc(numel + 1, sizeof(double));
    assert_non_null(f->values[i]);
    for (size_t k = 0; k < numel; k++)
        f->values[i][k] = value;
    f->t[i] = (s4io_tensor_out){.name = f->names[i], .dtype = dtype, .ndim = ndim,
                                .values = f->values[i]};
    memcpy(f->t[i].shape, shape, (size_t)ndim * sizeof *shape);
}

static inline void mc_file_write(const mc_file *f, const char *path)
{
    const s4_status st = s4io_safetensors_write(path, f->t, f->n, f->meta, f->n_meta);
    if (st != S4_OK)
        fail_msg("writing %s: %s", path, s4_last_error());
}

/* Writes `text` to path. */
static inline void mc_write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

#endif
