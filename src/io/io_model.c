/* Whole models from files (docs/models.md): example.py's S4Model config in JSON and its
 * state_dict in safetensors, mapped onto s4_model. The minimal S4D layer's parameters
 * become an S4Block-form diagonal layer here (inv_dt = log_dt, A_imag negated, B = 1);
 * S4Block layers go through the layer loader with the prefix "s4_layers.<i>.".
 * Like the layer loader, it treats the file as hostile: every tensor's presence, shape and
 * finiteness is checked, and every message names the file and the tensor or key.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"
#include "model/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_CONFIG_KEY "config"

/* ---- config ------------------------------------------------------------------------ */

static bool is(const char *s, const char *name) { return s && strcmp(s, name) == 0; }

s4_status s4io_int_key(const char *src, const char *key, const cJSON *j, int lo, int hi,
                         int *out)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || floor(j->valuedouble) != j->valuedouble)
        return s4__fail(S4_ERR_FORMAT, "%s: key '%s': expected an integer", src, key);
    if (j->valuedouble < lo || j->valuedouble > hi)
        return s4__fail(S4_ERR_FORMAT, "%s: key '%s': %g is outside [%d, %d]", src, key,
                        j->valuedouble, lo, hi);
    *out = (int)j->valuedouble;
    return S4_OK;
}

s4_status s4io_bool_key(const char *src, const char *key, const cJSON *j, int *out)
{
    if (!cJSON_IsBool(j))
        return s4__fail(S4_ERR_FORMAT, "%s: key '%s': expected true or false", src, key);
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return S4_OK;
}

s4_status s4io_dropout_key(const char *src, const char *key, const cJSON *j)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0.0 && j->valuedouble < 1.0))
        return s4__fail(S4_ERR_FORMAT, "%s: key '%s': expected a probability in [0, 1)", src,
                        key);
    return S4_OK;
}

s4_status s4io_duplicate_keys(const char *src, const cJSON *o)
{
    for (const cJSON *k = o->child; k; k = k->next)
        for (const cJSON *e = o->child; e != k; e = e->next)
            if (strcmp(e->string, k->string) == 0)
                return s4__fail(S4_ERR_FORMAT, "%s: key '%.60s' appears twice", src, k->string);
    return S4_OK;
}

/* The minimal S4D layer's object: d_model, d_state, dt_min, dt_max, transposed, lr,
 * dropout. */
static s4_status parse_s4d(const char *src, const cJSON *o, s4_model_config *c, int d_model)
{
    s4_status st = S4_OK;
    bool have_state = false;
    c->layer.ssm.N = 64; /* S4D's default d_state */
    c->layer.ssm.dt_min = 1e-3;
    c->layer.ssm.dt_max = 1e-1;
    for (const cJSON *k = o->child; k && st == S4_OK; k = k->next) {
        const char *key = k->string;
        if (is(key, "class"))
            continue;
        if (is(key, "d_model")) {
            int h = 0;
            st = s4io_int_key(src, "layer.d_model", k, 1, INT_MAX, &h);
            if (st == S4_OK && h != d_model)
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.d_model' = %d differs from the "
                                             "model's d_model = %d",
                              src, h, d_model);
        } else if (is(key, "d_state")) {
            st = s4io_int_key(src, "layer.d_state", k, 2, 1 << 16, &c->layer.ssm.N);
            if (st == S4_OK && c->layer.ssm.N % 2 != 0)
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.d_state' = %d must be even", src,
                              c->layer.ssm.N);
            have_state = true;
        } else if (is(key, "dt_min") || is(key, "dt_max")) {
            if (!cJSON_IsNumber(k) || !(k->valuedouble > 0.0) || !isfinite(k->valuedouble))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.%s': expected a positive number",
                              src, key);
            else
                *(is(key, "dt_min") ? &c->layer.ssm.dt_min : &c->layer.ssm.dt_max) =
                    k->valuedouble;
        } else if (is(key, "transposed")) {
            int t = 1;
            st = s4io_bool_key(src, "layer.transposed", k, &t);
            c->layer.transposed = t;
        } else if (is(key, "dropout")) {
            st = s4io_dropout_key(src, "layer.dropout", k);
        } else if (is(key, "lr")) {
            if (!cJSON_IsNull(k) && !cJSON_IsObject(k) &&
                !(cJSON_IsNumber(k) && isfinite(k->valuedouble)))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.lr': expected a number, an "
                                             "object or null", src);
        } else {
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: key 'layer.%.60s' is unknown for an S4D layer (d_model, "
                          "d_state, dt_min, dt_max, transposed, dropout, lr)",
                          src, key);
        }
    }
    (void)have_state;
    if (st == S4_OK && c->layer.ssm.dt_max < c->layer.ssm.dt_min)
        st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.dt_max': %g is below dt_min = %g", src,
                      c->layer.ssm.dt_max, c->layer.ssm.dt_min);
    return st;
}

/* An S4Block layer's object: every key but "class" is an S4Block argument, parsed by the
 * layer's own parser (which accepts and ignores lr and dropout). */
static s4_status parse_s4block(const char *src, const cJSON *o, s4_model_config *c)
{
    cJSON *copy = cJSON_Duplicate(o, 1);
    if (!copy)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "class");
    char *text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (!text)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    char where[300];
    snprintf(where, sizeof where, "%s: layer", src);
    s4_status st = s4_layer_config_parse(text, where, S4_CONFIG_FOR_WEIGHTS, &c->layer);
    cJSON_free(text);
    if (st == S4_OK && c->layer.ssm.H != c->d_model)
        st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.d_model' = %d differs from the model's "
                                     "d_model = %d",
                      src, c->layer.ssm.H, c->d_model);
    return st;
}

static s4_status parse_root(const char *src, const cJSON *root, s4_model_config *out)
{
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
    if (cJSON_IsString(arch) &&
        (is(arch->valuestring, "Sashimi") || is(arch->valuestring, "SashimiLM")))
        return s4io_sashimi_parse(src, root, out);
    s4_model_config c;
    s4_model_config_default(&c);
    s4_status st = s4io_duplicate_keys(src, root);
    const cJSON *layer = NULL;
    bool have[5] = {false};
    static const char *const required[5] = {"d_input", "d_output", "d_model", "n_layers",
                                            "layer"};
    for (const cJSON *k = root->child; k && st == S4_OK; k = k->next) {
        const char *key = k->string;
        if (is(key, "architecture")) {
            if (!cJSON_IsString(k))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'architecture': expected a string", src);
            else if (!is(k->valuestring, "S4Model"))
                st = s4__fail(S4_ERR_FORMAT,
                              "%s: key 'architecture': '%.40s' is not a model libs4 runs "
                              "(S4Model, Sashimi, SashimiLM)",
                              src, k->valuestring);
        } else if (is(key, "d_input")) {
            st = s4io_int_key(src, key, k, 1, 1 << 20, &c.d_input);
            have[0] = true;
        } else if (is(key, "d_output")) {
            st = s4io_int_key(src, key, k, 1, 1 << 20, &c.d_output);
            have[1] = true;
        } else if (is(key, "d_model")) {
            st = s4io_int_key(src, key, k, 1, 1 << 16, &c.d_model);
            have[2] = true;
        } else if (is(key, "n_layers")) {
            st = s4io_int_key(src, key, k, 0, 4096, &c.n_layers);
            have[3] = true;
        } else if (is(key, "prenorm")) {
            st = s4io_bool_key(src, key, k, &c.prenorm);
        } else if (is(key, "dropout")) {
            st = s4io_dropout_key(src, key, k);
        } else if (is(key, "layer")) {
            if (!cJSON_IsObject(k))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer': expected an object", src);
            layer = k;
            have[4] = true;
        } else {
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: key '%.60s' is unknown for an S4Model (architecture, d_input, "
                          "d_output, d_model, n_layers, dropout, prenorm, layer)",
                          src, key);
        }
    }
    for (int i = 0; i < 5 && st == S4_OK; i++)
        if (!have[i])
            st = s4__fail(S4_ERR_FORMAT, "%s: key '%s' is missing", src, required[i]);
    if (st != S4_OK)
        return st;
    st = s4io_duplicate_keys(src, layer);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(layer, "class");
    if (st == S4_OK && !cJSON_IsString(cls))
        st = s4__fail(S4_ERR_FORMAT, "%s: key 'layer.class': %s (expected \"S4D\" or "
                                     "\"S4Block\")",
                      src, cls ? "not a string" : "missing");
    if (st == S4_OK) {
        if (is(cls->valuestring, "S4D")) {
            c.layer_class = S4_MODEL_S4D;
            st = parse_s4d(src, layer, &c, c.d_model);
        } else if (is(cls->valuestring, "S4Block")) {
            c.layer_class = S4_MODEL_S4BLOCK;
            st = parse_s4block(src, layer, &c);
        } else {
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: key 'layer.class': unknown layer class '%.40s' (expected S4D or "
                          "S4Block)",
                          src, cls->valuestring);
        }
    }
    if (st == S4_OK) {
        c.layer.ssm.H = c.d_model;
        st = s4__model_check_config(src, &c);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            st = s4__fail(S4_ERR_FORMAT, "%s", msg);
        }
    }
    if (st == S4_OK)
        *out = c;
    return st;
}

static s4_status parse_text(const char *json, const char *src, cJSON **root)
{
    const char *end = NULL;
    *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!*root)
        return s4__fail(S4_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", src,
                        end && end >= json ? (size_t)(end - json) : (size_t)0);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return s4__fail(S4_ERR_FORMAT, "%s: expected a JSON object", src);
    }
    return S4_OK;
}

s4_status s4_model_config_parse(const char *json, const char *source, s4_model_config *config)
{
    const char *src = source ? source : "config";
    if (!json || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_model_config_parse: %s is NULL",
                        !json ? "json" : "config");
    cJSON *root = NULL;
    s4_status st = parse_text(json, src, &root);
    if (st != S4_OK)
        return st;
    st = parse_root(src, root, config);
    cJSON_Delete(root);
    return st;
}

int s4_config_is_model(const char *json)
{
    if (!json)
        return 0;
    cJSON *root = cJSON_Parse(json);
    const int yes = cJSON_IsObject(root) &&
                    cJSON_GetObjectItemCaseSensitive(root, "architecture") != NULL;
    cJSON_Delete(root);
    return yes;
}

s4_status s4_model_config_read(const char *path, s4_model_config *config)
{
    if (!path || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_model_config_read: %s is NULL",
                        !path ? "path" : "config");
    char *text = NULL;
    s4_status st = s4io_read_text(path, S4IO_MAX_CONFIG_BYTES, &text);
    if (st != S4_OK)
        return st;
    st = s4_model_config_parse(text, path, config);
    s4__free(text);
    return st;
}

/* ---- weights ----------------------------------------------------------------------- */


s4_status s4io_claim(s4io_loader *ld, const s4io_tensor *t)
{
    if (ld->nused == ld->cap)
        return s4__fail(S4_ERR_FORMAT, "%s: more tensors than the config implies", ld->path);
    ld->used[ld->nused++] = t;
    return S4_OK;
}

s4_status s4io_get(s4io_loader *ld, const char *name, int ndim, const int64_t *shape,
                     const char *legend, int alt_ndim, double **values)
{
    const s4io_tensor *t = s4io_safetensors_find(ld->f, name);
    char want[96], got[96];
    s4io_shape_text(want, sizeof want, ndim, shape);
    if (!t)
        return s4__fail(S4_ERR_FORMAT, "%s: missing tensor '%s' (expected shape %s = %s)",
                        ld->path, name, want, legend);
    bool ok = t->ndim == ndim || (alt_ndim > 0 && t->ndim == alt_ndim);
    for (int d = 0; ok && d < t->ndim; d++)
        ok = t->shape[d] == (d < ndim ? shape[d] : 1);
    if (!ok) {
        s4io_shape_text(got, sizeof got, t->ndim, t->shape);
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': expected shape %s = %s from the config, found %s",
                        ld->path, name, want, legend, got);
    }
    if (t->dtype == S4IO_I64)
        return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': dtype I64, expected F32 or F64",
                        ld->path, name);
    double *v = s4__alloc(t->numel, sizeof *v);
    if (!v)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: tensor '%s': out of memory", ld->path, name);
    s4_status st = s4io_tensor_to_f64(t, v, t->numel);
    /* Finite, and within float's range: the models keep these in float, and an F64 value
     * beyond it would become an infinity there. */
    for (size_t i = 0; i < t->numel && st == S4_OK; i++)
        if (!isfinite(v[i]) || fabs(v[i]) > FLT_MAX)
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: tensor '%s': element %zu is %s (parameters must be finite "
                          "float32 values)",
                          ld->path, name, i,
                          isnan(v[i]) ? "NaN" : isinf(v[i]) ? "infinite" : "beyond float32");
    if (st == S4_OK)
        st = s4io_claim(ld, t);
    if (st != S4_OK) {
        s4__free(v);
        return st;
    }
    *values = v;
    return S4_OK;
}

/* The minimal S4D layer i as an S4Block-form diagonal layer (docs/models.md). */
static s4_status load_s4d_layer(s4io_loader *ld, const s4_model_config *c, int i,
                                const s4_layer_config *lc, s4_layer **out)
{
    const int64_t H = c->d_model, Nh = c->layer.ssm.N / 2;
    char n[6][96];
    static const char *const base[6] = {"D", "kernel.C", "kernel.log_dt", "kernel.log_A_real",
                                        "kernel.A_imag", "output_linear.0.weight"};
    for (int k = 0; k < 6; k++)
        snprintf(n[k], sizeof n[k], "s4_layers.%d.%s", i, base[k]);
    char nb[96];
    snprintf(nb, sizeof nb, "s4_layers.%d.output_linear.0.bias", i);
    double *D = NULL, *C = NULL, *log_dt = NULL, *lar = NULL, *aim = NULL, *W = NULL,
           *b = NULL, *Bv = NULL;
    s4_status st;
    const int64_t sD[1] = {H}, sC[3] = {H, Nh, 2}, sH[1] = {H}, sA[2] = {H, Nh},
                  sW[2] = {2 * H, H}, sb[1] = {2 * H};
    if ((st = s4io_get(ld, n[0], 1, sD, "(d_model,)", 0, &D)) == S4_OK &&
        (st = s4io_get(ld, n[1], 3, sC, "(d_model, d_state/2, 2)", 0, &C)) == S4_OK &&
        (st = s4io_get(ld, n[2], 1, sH, "(d_model,)", 0, &log_dt)) == S4_OK &&
        (st = s4io_get(ld, n[3], 2, sA, "(d_model, d_state/2)", 0, &lar)) == S4_OK &&
        (st = s4io_get(ld, n[4], 2, sA, "(d_model, d_state/2)", 0, &aim)) == S4_OK &&
        (st = s4io_get(ld, n[5], 2, sW, "(2 d_model, d_model, 1) [Conv1d]", 3, &W)) == S4_OK &&
        (st = s4io_get(ld, nb, 1, sb, "(2 d_model,)", 0, &b)) == S4_OK) {
        /* Minimal S4D: A = -exp(log_A_real) + i A_imag; the S4Block form stores
         * Im Lambda = -A_imag, so the sign flips here. B = 1. */
        for (int64_t k = 0; k < H * Nh; k++)
            aim[k] = -aim[k];
        Bv = s4__alloc((size_t)(H * Nh * 2), sizeof *Bv);
        if (!Bv)
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        for (int64_t k = 0; Bv && k < H * Nh; k++) {
            Bv[2 * k] = 1.0;
            Bv[2 * k + 1] = 0.0;
        }
    }
    if (st == S4_OK) {
        const s4_layer_arrays a = {.ssm = {.inv_dt = log_dt,
                                           .A_real = lar,
                                           .A_imag = aim,
                                           .B = Bv,
                                           .P = NULL,
                                           .C = C,
                                           .D = D,
                                           .l_kernel = 0},
                                   .W = W,
                                   .b = b};
        st = s4_layer_create_from_arrays(lc, &a, out);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            /* Values the layer refuses are the file's content; out of memory stays so. */
            st = s4__fail(st == S4_ERR_INVALID_ARGUMENT ? S4_ERR_FORMAT : st,
                          "%s: layer %d (s4_layers.%d.*): parameters refused: %s", ld->path, i,
                          i, msg);
        }
    }
    s4__free(D), s4__free(C), s4__free(log_dt), s4__free(lar), s4__free(aim), s4__free(W);
    s4__free(b), s4__free(Bv);
    return st;
}

/* A tensor no part of the config claimed: say which key rules it out where that is clear. */
static s4_status unexpected(const s4io_loader *ld, const s4_model_config *c, const char *name)
{
    int k = -1;
    if (sscanf(name, "s4_layers.%d.", &k) == 1 || sscanf(name, "norms.%d.", &k) == 1) {
        if (k >= c->n_layers)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: unexpected tensor '%s': the config's key 'n_layers' is %d, "
                            "but the file has layer %d",
                            ld->path, name, c->n_layers, k);
        return s4__fail(S4_ERR_FORMAT,
                        "%s: unexpected tensor '%s' (not part of %s layer with this config)",
                        ld->path, name, c->layer_class == S4_MODEL_S4D ? "an S4D" : "an S4Block");
    }
    return s4__fail(S4_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of an S4Model)",
                    ld->path, name);
}

static s4_status load_model(const char *path, const s4io_safetensors *f,
                            const s4_model_config *c, s4_model **out)
{
    const size_t H = (size_t)c->d_model, nl = (size_t)c->n_layers;
    s4io_loader ld = {.path = path, .f = f, .cap = s4io_safetensors_count(f)};
    ld.used = s4__calloc(ld.cap ? ld.cap : 1, sizeof *ld.used);
    s4_layer **layers = s4__calloc(nl ? nl : 1, sizeof *layers);
    double *ln_w = s4__calloc(nl ? nl * H : 1, sizeof *ln_w);
    double *ln_b = s4__calloc(nl ? nl * H : 1, sizeof *ln_b);
    double *eW = NULL, *eb = NULL, *dW = NULL, *db = NULL;
    s4_status st = S4_OK;
    if (!ld.used || !layers || !ln_w || !ln_b)
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    const int64_t sE[2] = {c->d_model, c->d_input}, sH[1] = {c->d_model},
                  sD[2] = {c->d_output, c->d_model}, sO[1] = {c->d_output};
    if (st == S4_OK)
        st = s4io_get(&ld, "encoder.weight", 2, sE, "(d_model, d_input)", 0, &eW);
    if (st == S4_OK)
        st = s4io_get(&ld, "encoder.bias", 1, sH, "(d_model,)", 0, &eb);
    if (st == S4_OK)
        st = s4io_get(&ld, "decoder.weight", 2, sD, "(d_output, d_model)", 0, &dW);
    if (st == S4_OK)
        st = s4io_get(&ld, "decoder.bias", 1, sO, "(d_output,)", 0, &db);
    const s4_layer_config lc = s4__model_layer_config(c);
    for (size_t i = 0; i < nl && st == S4_OK; i++) {
        char nw[64], nbias[64];
        snprintf(nw, sizeof nw, "norms.%zu.weight", i);
        snprintf(nbias, sizeof nbias, "norms.%zu.bias", i);
        double *w = NULL, *b = NULL;
        if ((st = s4io_get(&ld, nw, 1, sH, "(d_model,)", 0, &w)) == S4_OK &&
            (st = s4io_get(&ld, nbias, 1, sH, "(d_model,)", 0, &b)) == S4_OK) {
            memcpy(ln_w + i * H, w, H * sizeof *w);
            memcpy(ln_b + i * H, b, H * sizeof *b);
        }
        s4__free(w), s4__free(b);
        if (st != S4_OK)
            break;
        if (c->layer_class == S4_MODEL_S4D) {
            st = load_s4d_layer(&ld, c, (int)i, &lc, &layers[i]);
        } else {
            char prefix[48];
            snprintf(prefix, sizeof prefix, "s4_layers.%zu.", i);
            const s4io_tensor *found[16];
            int nfound = 0;
            st = s4io_layer_from_file(path, f, prefix, &lc, found, &nfound, &layers[i]);
            for (int k = 0; k < nfound && st == S4_OK; k++)
                st = s4io_claim(&ld, found[k]);
        }
    }
    /* Every tensor of the file must have been claimed. */
    for (size_t t = 0; t < ld.cap && st == S4_OK; t++) {
        const s4io_tensor *x = s4io_safetensors_at(f, t);
        bool known = false;
        for (size_t u = 0; u < ld.nused && !known; u++)
            known = ld.used[u] == x;
        if (!known)
            st = unexpected(&ld, c, x->name);
    }
    if (st == S4_OK) {
        const s4_model_arrays a = {.encoder_W = eW,
                                   .encoder_b = eb,
                                   .norm_w = ln_w,
                                   .norm_b = ln_b,
                                   .layers = NULL,
                                   .decoder_W = dW,
                                   .decoder_b = db};
        st = s4__model_assemble("s4_model_load", c, &a, layers, out); /* owns the layers */
    } else if (layers) {
        for (size_t i = 0; i < nl; i++)
            s4_layer_destroy(layers[i]);
    }
    s4__free(layers), s4__free(ln_w), s4__free(ln_b), s4__free(ld.used);
    s4__free(eW), s4__free(eb), s4__free(dW), s4__free(db);
    return st;
}

s4_status s4_model_load(const char *weights_path, const char *config_path, s4_model **out)
{
    if (!weights_path || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_model_load: %s is NULL",
                        !weights_path ? "weights_path" : "out");
    s4_model_config cfg;
    s4_status st = S4_OK;
    if (config_path)
        st = s4_model_config_read(config_path, &cfg);
    if (st != S4_OK)
        return st;
    s4io_safetensors *f = NULL;
    if ((st = s4io_safetensors_open(weights_path, &f)) != S4_OK)
        return st;
    if (!config_path) {
        const char *meta = s4io_safetensors_metadata(f, META_CONFIG_KEY);
        if (!meta) {
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: no --config given and no __metadata__ key '%s' in the file",
                          weights_path, META_CONFIG_KEY);
        } else {
            char src[400];
            snprintf(src, sizeof src, "%s: __metadata__ '%s'", weights_path, META_CONFIG_KEY);
            st = s4_model_config_parse(meta, src, &cfg);
        }
    }
    if (st == S4_OK)
        st = cfg.architecture == S4_ARCH_S4MODEL ? load_model(weights_path, f, &cfg, out)
                                                 : s4io_sashimi_load(weights_path, f, &cfg, out);
    s4io_safetensors_close(f);
    return st;
}
