/* Sashimi and SashimiLM from files (docs/models.md, "Sashimi"): the config JSON of
 * models/sashimi/sashimi.py's constructor (and SashimiLM's wrapper around it), and the
 * state_dict in safetensors, every part found by its reference name (model/sashimi.c
 * walks the parts; this file only reads them). Hostile files as everywhere: every tensor
 * checked for presence, shape and finiteness, none left unexplained.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"
#include "model/sashimi.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static bool is(const char *s, const char *name) { return s && strcmp(s, name) == 0; }

/* The "s4" object: S4Block arguments, through the layer's own parser with the four that
 * Sashimi sets itself (d_model, d_state = 64, transposed, bidirectional) added. */
static s4_status parse_s4(const char *src, const cJSON *o, s4_model_config *c)
{
    static const char *const fixed[] = {"d_model", "d_state", "transposed", "bidirectional",
                                        "dropout"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (cJSON_GetObjectItemCaseSensitive(o, fixed[i]))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: key 's4.%s': Sashimi sets it itself (d_state 64, transposed, "
                            "its own d_model, bidirectional and dropout)",
                            src, fixed[i]);
    cJSON *copy = cJSON_Duplicate(o, 1);
    if (!copy || !cJSON_AddNumberToObject(copy, "d_model", c->d_model) ||
        !cJSON_AddNumberToObject(copy, "d_state", 64) ||
        !cJSON_AddBoolToObject(copy, "transposed", 1) ||
        !cJSON_AddBoolToObject(copy, "bidirectional", c->bidirectional)) {
        cJSON_Delete(copy);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    }
    char *text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (!text)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", src);
    char where[300];
    snprintf(where, sizeof where, "%s: s4", src);
    const s4_status st = s4_layer_config_parse(text, where, S4_CONFIG_FOR_WEIGHTS, &c->layer);
    cJSON_free(text);
    return st;
}

/* The Sashimi object (the whole config, or SashimiLM's "backbone"). */
static s4_status parse_backbone(const char *src, const cJSON *root, s4_model_config *c)
{
    s4_status st = s4io_duplicate_keys(src, root);
    const cJSON *s4 = NULL;
    bool have_d = false, have_n = false;
    for (const cJSON *k = root->child; k && st == S4_OK; k = k->next) {
        const char *key = k->string;
        if (is(key, "architecture")) {
            if (!cJSON_IsString(k) || !is(k->valuestring, "Sashimi"))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'architecture': expected \"Sashimi\" here",
                              src);
        } else if (is(key, "d_model")) {
            st = s4io_int_key(src, key, k, 1, 1 << 16, &c->d_model);
            have_d = true;
        } else if (is(key, "n_layers")) {
            st = s4io_int_key(src, key, k, 0, 4096, &c->n_layers);
            have_n = true;
        } else if (is(key, "pool")) {
            const int n = cJSON_IsArray(k) ? cJSON_GetArraySize(k) : -1;
            if (n < 0 || n > S4_MAX_POOLS)
                st = s4__fail(S4_ERR_FORMAT, "%s: key 'pool': expected a list of at most %d "
                                             "integers",
                              src, S4_MAX_POOLS);
            c->n_pool = n < 0 ? 0 : n;
            for (int i = 0; i < n && st == S4_OK; i++)
                st = s4io_int_key(src, "pool[]", cJSON_GetArrayItem(k, i), 1, 1 << 16,
                                  &c->pool[i]);
        } else if (is(key, "expand")) {
            st = s4io_int_key(src, key, k, 1, 1024, &c->expand);
        } else if (is(key, "ff")) {
            st = s4io_int_key(src, key, k, 0, 64, &c->ff);
        } else if (is(key, "bidirectional")) {
            st = s4io_bool_key(src, key, k, &c->bidirectional);
        } else if (is(key, "unet")) {
            st = s4io_bool_key(src, key, k, &c->unet);
        } else if (is(key, "dropout")) {
            st = s4io_dropout_key(src, key, k);
        } else if (is(key, "s4")) {
            if (!cJSON_IsObject(k))
                st = s4__fail(S4_ERR_FORMAT, "%s: key 's4': expected an object", src);
            s4 = k;
        } else {
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: key '%.60s' is unknown for a Sashimi (architecture, d_model, "
                          "n_layers, pool, expand, ff, bidirectional, unet, dropout, s4)",
                          src, key);
        }
    }
    if (st == S4_OK && (!have_d || !have_n))
        st = s4__fail(S4_ERR_FORMAT, "%s: key '%s' is missing", src,
                      !have_d ? "d_model" : "n_layers");
    if (st != S4_OK)
        return st;
    c->layer.ssm.H = c->d_model;
    c->layer.ssm.N = 64;
    if (s4 && (st = parse_s4(src, s4, c)) != S4_OK)
        return st;
    if (!s4) {
        s4_layer_config_default(&c->layer);
        c->layer.ssm.H = c->d_model;
        c->layer.bidirectional = c->layer.ssm.bidirectional = c->bidirectional;
    }
    c->layer.transposed = 1;
    return S4_OK;
}

s4_status s4io_sashimi_parse(const char *src, const cJSON *root, s4_model_config *out)
{
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
    const bool lm = is(arch->valuestring, "SashimiLM");
    s4_model_config c;
    s4_model_config_default_arch(lm ? S4_ARCH_SASHIMI_LM : S4_ARCH_SASHIMI, &c);
    s4_status st = S4_OK;
    if (!lm) {
        st = parse_backbone(src, root, &c);
    } else {
        st = s4io_duplicate_keys(src, root);
        const cJSON *backbone = NULL;
        for (const cJSON *k = root->child; k && st == S4_OK; k = k->next) {
            const char *key = k->string;
            if (is(key, "architecture")) {
                continue;
            } else if (is(key, "n_tokens")) {
                st = s4io_int_key(src, key, k, 2, 1 << 20, &c.n_tokens);
            } else if (is(key, "sample_rate")) {
                st = s4io_int_key(src, key, k, 1, 10000000, &c.sample_rate);
            } else if (is(key, "quantization")) {
                if (!cJSON_IsString(k) || !is(k->valuestring, "mu-law"))
                    st = s4__fail(S4_ERR_FORMAT,
                                  "%s: key 'quantization': expected \"mu-law\" (8-bit mu-law "
                                  "tokens, the only quantization libs4 decodes)",
                                  src);
            } else if (is(key, "backbone")) {
                if (!cJSON_IsObject(k))
                    st = s4__fail(S4_ERR_FORMAT, "%s: key 'backbone': expected an object", src);
                backbone = k;
            } else {
                st = s4__fail(S4_ERR_FORMAT,
                              "%s: key '%.60s' is unknown for a SashimiLM (architecture, "
                              "n_tokens, backbone, sample_rate, quantization)",
                              src, key);
            }
        }
        if (st == S4_OK && !backbone)
            st = s4__fail(S4_ERR_FORMAT, "%s: key 'backbone' is missing", src);
        if (st == S4_OK) {
            char where[300];
            snprintf(where, sizeof where, "%s: backbone", src);
            st = parse_backbone(where, backbone, &c);
        }
    }
    if (st != S4_OK)
        return st;
    c.d_input = lm ? 1 : c.d_model;
    c.d_output = lm ? c.n_tokens : c.d_model;
    if ((st = s4__sashimi_check_config(src, &c)) != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        return s4__fail(S4_ERR_FORMAT, "%s", msg);
    }
    *out = c;
    return S4_OK;
}

/* ---- weights --------------------------------------------------------------------------- */

typedef struct load_ctx {
    s4io_loader ld;
    const s4_model_config *c;
} load_ctx;

static s4_status load_part(void *vctx, s4__spart kind, const char *name, int M, int K,
                           void *dst)
{
    load_ctx *x = vctx;
    char n[220];
    double *a = NULL, *b = NULL;
    s4_status st = S4_OK;
    const int64_t sMK[2] = {M, K}, sM[1] = {M};
    switch (kind) {
    case S4__SP_LINEAR: {
        snprintf(n, sizeof n, "%s.weight", name);
        if ((st = s4io_get(&x->ld, n, 2, sMK, "(out, in) or (out, in, 1)", 3, &a)) == S4_OK) {
            snprintf(n, sizeof n, "%s.bias", name);
            st = s4io_get(&x->ld, n, 1, sM, "(out,)", 0, &b);
        }
        float *W = st == S4_OK ? s4__alloc((size_t)M * (size_t)K + (size_t)M, sizeof *W) : NULL;
        if (st == S4_OK && !W)
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", x->ld.path);
        if (st == S4_OK) {
            for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
                W[i] = (float)a[i];
            for (size_t i = 0; i < (size_t)M; i++)
                W[(size_t)M * (size_t)K + i] = (float)b[i];
            st = s4__linear_set(dst, M, K, W, W + (size_t)M * (size_t)K);
        }
        s4__free(W);
        break;
    }
    case S4__SP_NORM: {
        float **wb = dst;
        snprintf(n, sizeof n, "%s.weight", name);
        if ((st = s4io_get(&x->ld, n, 1, sM, "(width,)", 0, &a)) == S4_OK) {
            snprintf(n, sizeof n, "%s.bias", name);
            st = s4io_get(&x->ld, n, 1, sM, "(width,)", 0, &b);
        }
        for (int i = 0; st == S4_OK && i < M; i++)
            wb[0][i] = (float)a[i], wb[1][i] = (float)b[i];
        break;
    }
    case S4__SP_EMBED: {
        float *e = *(float **)dst;
        if ((st = s4io_get(&x->ld, name, 2, sMK, "(n_tokens, d_model)", 0, &a)) == S4_OK)
            for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
                e[i] = (float)a[i];
        break;
    }
    case S4__SP_LAYER: {
        const s4_layer_config lc = s4__sashimi_layer_config(x->c, M);
        const s4io_tensor *found[16];
        int nfound = 0;
        st = s4io_layer_from_file(x->ld.path, x->ld.f, name, &lc, found, &nfound, dst);
        for (int k = 0; k < nfound && st == S4_OK; k++)
            st = s4io_claim(&x->ld, found[k]);
        break;
    }
    }
    s4__free(a);
    s4__free(b);
    return st;
}

s4_status s4io_sashimi_load(const char *path, const s4io_safetensors *f,
                            const s4_model_config *c, s4_model **out)
{
    load_ctx x = {.ld = {.path = path, .f = f, .cap = s4io_safetensors_count(f)}, .c = c};
    x.ld.used = s4__calloc(x.ld.cap ? x.ld.cap : 1, sizeof *x.ld.used);
    s4_model *m = s4__calloc(1, sizeof *m);
    s4_status st = x.ld.used && m ? S4_OK : s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory",
                                                     path);
    if (st == S4_OK) {
        m->cfg = *c;
        st = s4__sashimi_alloc("s4_model_load", c, &m->sash);
    }
    if (st == S4_OK)
        st = s4__sashimi_visit(c, m->sash, load_part, &x);
    for (size_t t = 0; t < x.ld.cap && st == S4_OK; t++) {
        const s4io_tensor *u = s4io_safetensors_at(f, t);
        bool known = false;
        for (size_t k = 0; k < x.ld.nused && !known; k++)
            known = x.ld.used[k] == u;
        if (!known)
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: unexpected tensor '%s' (not part of a %s with this config: "
                          "n_layers %d, %d pools, ff %d, unet %s)",
                          path, u->name, c->architecture == S4_ARCH_SASHIMI_LM ? "SashimiLM"
                                                                               : "Sashimi",
                          c->n_layers, c->n_pool, c->ff, c->unet ? "true" : "false");
    }
    s4__free(x.ld.used);
    if (st != S4_OK) {
        s4_model_destroy(m);
        return st;
    }
    *out = m;
    return S4_OK;
}
