/* The architecture of a trained S4Block: its JSON config with the reference's own
 * constructor argument names (s4.h, "Trained models"), parsed strictly -- every key, type
 * and value checked, each failure naming the source and the key -- and written back.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"
#include "layer/names.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Lengths the SSM accepts (s4_ssm_setup_length). */
#define MAX_LENGTH ((int64_t)1 << 40)

/* Ranges of the keys, shared by the parser (JSON in, config_key) and check_values (a
 * struct, for both the parser and s4_layer_config_to_json), so that every config written
 * reads back. d_model: feature counts such as 2 d_model are ints. */
#define D_MODEL_MAX (INT_MAX / 2)
#define D_STATE_MAX (1 << 16)
#define CHANNELS_MAX 1024

/* "a string 'abc'", "3", "null", ... for "expected X, found Y" messages. */
static const char *describe(const cJSON *j, char *buf, size_t len)
{
    if (!j)
        return "nothing";
    if (cJSON_IsNumber(j)) {
        snprintf(buf, len, "%.17g", j->valuedouble);
        return buf;
    }
    if (cJSON_IsString(j)) {
        snprintf(buf, len, "the string '%.40s%s'", j->valuestring,
                 strlen(j->valuestring) > 40 ? "..." : "");
        return buf;
    }
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    if (cJSON_IsTrue(j))
        return "true";
    if (cJSON_IsFalse(j))
        return "false";
    if (cJSON_IsNull(j))
        return "null";
    return "an invalid value";
}

static s4_status bad_type(const char *src, const char *key, const char *expected,
                          const cJSON *j)
{
    char buf[96];
    return s4__fail(S4_ERR_FORMAT, "%s: key '%s': expected %s, found %s", src, key, expected,
                    describe(j, buf, sizeof buf));
}

/* An integer in [lo, hi] (JSON numbers are doubles; exact below 2^53), or null when
 * allowed (*is_null set). */
static s4_status get_int(const char *src, const char *key, const cJSON *j, int64_t lo,
                         int64_t hi, bool allow_null, int64_t *out, bool *is_null)
{
    if (is_null)
        *is_null = false;
    if (allow_null && cJSON_IsNull(j)) {
        *is_null = true;
        return S4_OK;
    }
    char expected[96];
    snprintf(expected, sizeof expected, "an integer in [%lld, %lld]%s", (long long)lo,
             (long long)hi, allow_null ? " or null" : "");
    if (!cJSON_IsNumber(j))
        return bad_type(src, key, expected, j);
    const double x = j->valuedouble;
    if (!isfinite(x) || floor(x) != x || x < (double)lo || x > (double)hi)
        return bad_type(src, key, expected, j);
    *out = (int64_t)x;
    return S4_OK;
}

static s4_status get_bool(const char *src, const char *key, const cJSON *j, bool *out)
{
    if (!cJSON_IsBool(j))
        return bad_type(src, key, "true or false", j);
    *out = cJSON_IsTrue(j);
    return S4_OK;
}

static s4_status get_number(const char *src, const char *key, const cJSON *j, bool allow_null,
                            double *out, bool *is_null)
{
    if (is_null)
        *is_null = false;
    if (allow_null && cJSON_IsNull(j)) {
        *is_null = true;
        return S4_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return bad_type(src, key, allow_null ? "a finite number or null" : "a finite number", j);
    *out = j->valuedouble;
    return S4_OK;
}

/* A string, or NULL for null when allowed. */
static s4_status get_string(const char *src, const char *key, const cJSON *j, bool allow_null,
                            const char **out)
{
    if (allow_null && cJSON_IsNull(j)) {
        *out = NULL;
        return S4_OK;
    }
    if (!cJSON_IsString(j))
        return bad_type(src, key, allow_null ? "a string or null" : "a string", j);
    *out = j->valuestring;
    return S4_OK;
}

static bool is(const char *s, const char *name) { return s && strcmp(s, name) == 0; }

static bool is_identity_name(const char *s)
{
    return !s || is(s, "id") || is(s, "identity") || is(s, "linear");
}

/* The reference's Activation() names (layer/names.h), null the identity. */
static s4_status map_activation(const char *src, const char *key, const char *s,
                                s4_activation *out)
{
    int v;
    if (!s)
        *out = S4_ACT_IDENTITY;
    else if (s4__name_find(&s4__activation_names, s, &v))
        *out = (s4_activation)v;
    else if (is(s, "elu") || is(s, "softplus"))
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "%s: key '%s': activation '%s' is not implemented by libs4", src, key, s);
    else
        return s4__fail(S4_ERR_FORMAT,
                        "%s: key '%s': unknown activation '%.40s' (expected id, identity, "
                        "linear, null, gelu, relu, swish, silu, tanh, sigmoid or glu)",
                        src, key, s);
    return S4_OK;
}

static s4_status map_final_act(const char *src, const char *key, const char *s,
                               s4_final_act *out)
{
    if (!s)
        *out = S4_FINAL_NONE;
    else if (is(s, "glu"))
        *out = S4_FINAL_GLU;
    else if (is_identity_name(s))
        *out = S4_FINAL_IDENTITY;
    else if (is(s, "gelu") || is(s, "relu") || is(s, "swish") || is(s, "silu") ||
             is(s, "tanh") || is(s, "sigmoid") || is(s, "elu") || is(s, "softplus"))
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "%s: key '%s': final activation '%s' after the output linear is not "
                        "implemented by libs4 (glu, id or null)",
                        src, key, s);
    else
        return s4__fail(S4_ERR_FORMAT,
                        "%s: key '%s': unknown final activation '%.40s' (expected glu, id, "
                        "identity, linear or null)",
                        src, key, s);
    return S4_OK;
}

static s4_status map_transform(const char *src, const char *key, const char *s,
                               s4_transform *out)
{
    int v;
    if (s4__name_find(&s4__transform_names, s, &v)) {
        *out = (s4_transform)v;
        return S4_OK;
    }
    return s4__fail(S4_ERR_FORMAT,
                    "%s: key '%s': unknown transform '%.40s' (expected none, exp, relu, "
                    "sigmoid or softplus)",
                    src, key, s);
}

/* SSMKernelDiag's `disc` (docs/design.md 10). The reference only looks at it in its forward,
 * where any other string raises: refused here, when the config is read. */
static s4_status map_disc(const char *src, const char *key, const char *s, s4_disc *out)
{
    int v;
    if (!s4__name_find(&s4__disc_names, s, &v))
        return s4__fail(S4_ERR_FORMAT,
                        "%s: key '%s': unknown value '%.40s' (expected zoh, bilinear or dss)",
                        src, key, s);
    *out = (s4_disc)v;
    return S4_OK;
}

/* Values of keys whose meaning needs other keys, resolved after the pass over the object. */
typedef struct raw_config {
    bool have_d_model;
    const char *mode, *kernel, *init, *measure, *activation, *final_act, *postact;
    bool mode_given, init_given, final_act_given;
} raw_config;

/* Keys that only matter for training (or for the init of a fresh layer's output linear):
 * checked for their type, then ignored. */
static s4_status ignored_key(const char *src, const char *key, const cJSON *j, bool *handled)
{
    *handled = true;
    bool b = false;
    double x = 0.0;
    const char *s = NULL;
    if (is(key, "dropout") || is(key, "drop_kernel")) {
        s4_status st = get_number(src, key, j, false, &x, NULL);
        if (st == S4_OK && !(x >= 0.0 && x < 1.0))
            return bad_type(src, key, "a probability in [0, 1)", j);
        return st;
    }
    if (is(key, "tie_dropout") || is(key, "verbose") || is(key, "deterministic"))
        return get_bool(src, key, j, &b);
    if (is(key, "lr") || is(key, "wd")) {
        if (cJSON_IsNull(j) || cJSON_IsObject(j) || (cJSON_IsNumber(j) && isfinite(j->valuedouble)))
            return S4_OK;
        return bad_type(src, key, "a number, an object or null", j);
    }
    if (is(key, "backend")) {
        s4_status st = get_string(src, key, j, false, &s);
        if (st == S4_OK && !is(s, "cuda") && !is(s, "keops") && !is(s, "naive"))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: key 'backend': unknown value '%.40s' (expected cuda, keops or "
                            "naive)",
                            src, s);
        return st;
    }
    if (is(key, "initializer") || is(key, "gate_act"))
        return get_string(src, key, j, true, &s);
    *handled = false;
    return S4_OK;
}

/* Keys of the reference that change the computation, accepted only at their defaults. */
static s4_status default_only_key(const char *src, const char *key, const cJSON *j,
                                  bool *handled)
{
    *handled = true;
    if (is(key, "bottleneck") || is(key, "gate")) {
        int64_t v = 0;
        bool null = false;
        s4_status st = get_int(src, key, j, 1, INT_MAX, true, &v, &null);
        if (st == S4_OK && !null)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key '%s': %lld is not implemented by libs4 (only null)", src,
                            key, (long long)v);
        return st;
    }
    if (is(key, "mult_act")) {
        const char *s = NULL;
        s4_status st = get_string(src, key, j, true, &s);
        if (st == S4_OK && !is_identity_name(s))
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'mult_act': '%.40s' is not implemented by libs4 (only null "
                            "or id)",
                            src, s);
        return st;
    }
    if (is(key, "weight_norm")) {
        bool b = false;
        s4_status st = get_bool(src, key, j, &b);
        if (st == S4_OK && b)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'weight_norm': true is not implemented by libs4", src);
        return st;
    }
    *handled = false;
    return S4_OK;
}

/* One key of the object into c / raw. */
static s4_status config_key(const char *src, const char *key, const cJSON *j,
                            s4_layer_config *c, raw_config *raw)
{
    s4_status st = S4_OK;
    int64_t v = 0;
    bool b = false, null = false;
    double x = 0.0;
    const char *s = NULL;

    if (is(key, "d_model")) {
        if ((st = get_int(src, key, j, 1, D_MODEL_MAX, false, &v, NULL)) == S4_OK) {
            c->ssm.H = (int)v;
            raw->have_d_model = true;
        }
    } else if (is(key, "d_state")) {
        if ((st = get_int(src, key, j, 2, D_STATE_MAX, false, &v, NULL)) == S4_OK) {
            if (v % 2 != 0)
                return s4__fail(S4_ERR_UNSUPPORTED,
                                "%s: key 'd_state': %lld is odd; libs4 needs an even state "
                                "size (conjugate pairs)",
                                src, (long long)v);
            c->ssm.N = (int)v;
        }
    } else if (is(key, "l_max")) {
        if ((st = get_int(src, key, j, 1, MAX_LENGTH, true, &v, &null)) == S4_OK)
            c->l_max = null ? 0 : v;
    } else if (is(key, "transposed")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK)
            c->transposed = b;
    } else if (is(key, "mode")) {
        st = get_string(src, key, j, true, &raw->mode);
        raw->mode_given = true;
    } else if (is(key, "kernel")) {
        st = get_string(src, key, j, true, &raw->kernel);
    } else if (is(key, "init")) {
        st = get_string(src, key, j, true, &raw->init);
        raw->init_given = true;
    } else if (is(key, "measure")) {
        st = get_string(src, key, j, true, &raw->measure);
    } else if (is(key, "rank")) {
        if ((st = get_int(src, key, j, 1, S4_MAX_RANK, false, &v, NULL)) == S4_OK)
            c->ssm.rank = (int)v;
    } else if (is(key, "n_ssm")) {
        if ((st = get_int(src, key, j, 1, INT_MAX, true, &v, &null)) == S4_OK)
            c->ssm.n_ssm = null ? 0 : (int)v;
    } else if (is(key, "channels")) {
        if ((st = get_int(src, key, j, 1, CHANNELS_MAX, false, &v, NULL)) == S4_OK)
            c->channels = (int)v;
    } else if (is(key, "bidirectional")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK)
            c->bidirectional = b;
    } else if (is(key, "swap_channels")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK)
            c->swap_channels = b;
    } else if (is(key, "activation")) {
        if ((st = get_string(src, key, j, true, &s)) == S4_OK)
            st = map_activation(src, key, s, &c->activation);
    } else if (is(key, "final_act")) {
        st = get_string(src, key, j, true, &raw->final_act);
        raw->final_act_given = true;
    } else if (is(key, "postact")) {
        st = get_string(src, key, j, true, &raw->postact);
    } else if (is(key, "dt_min") || is(key, "dt_max")) {
        if ((st = get_number(src, key, j, false, &x, NULL)) == S4_OK) {
            if (!(x > 0.0))
                return bad_type(src, key, "a positive number", j);
            *(is(key, "dt_min") ? &c->ssm.dt_min : &c->ssm.dt_max) = x;
        }
    } else if (is(key, "dt_tie")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK && !b)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'dt_tie': false (a dt per state) is not implemented by "
                            "libs4",
                            src);
    } else if (is(key, "dt_transform") || is(key, "real_transform") ||
               is(key, "imag_transform")) {
        s4_transform *t = is(key, "dt_transform")     ? &c->ssm.dt_transform
                          : is(key, "real_transform") ? &c->ssm.real_transform
                                                      : &c->ssm.imag_transform;
        if ((st = get_string(src, key, j, false, &s)) == S4_OK)
            st = map_transform(src, key, s, t);
    } else if (is(key, "disc")) {
        /* An S4D option (SSMKernelDiag); SSMKernelDPLR inherits the argument and discretizes
         * bilinearly whatever it says. Kept for either mode, so the config reads back as
         * written. */
        if ((st = get_string(src, key, j, false, &s)) == S4_OK)
            st = map_disc(src, key, s, &c->ssm.disc);
    } else if (is(key, "dt_fast")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK && b)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'dt_fast': true (inv_dt under sinh) is not implemented by "
                            "libs4",
                            src);
    } else if (is(key, "bandlimit")) {
        if ((st = get_number(src, key, j, true, &x, &null)) == S4_OK && !null)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'bandlimit': %g is not implemented by libs4 (only null)",
                            src, x);
    } else if (is(key, "is_real")) {
        if ((st = get_bool(src, key, j, &b)) == S4_OK && b)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key 'is_real': true (a real SSM) is not implemented by libs4",
                            src);
    } else {
        bool handled = false;
        if ((st = ignored_key(src, key, j, &handled)) != S4_OK || handled)
            return st;
        if ((st = default_only_key(src, key, j, &handled)) != S4_OK || handled)
            return st;
        return s4__fail(S4_ERR_FORMAT,
                        "%s: unknown key '%.60s' (not an S4Block argument that libs4 knows)",
                        src, key);
    }
    return st;
}

/* Rank of the low-rank term an init needs in DPLR mode. The diagonal inits have P = 0, so
 * any rank serves them: answered here, so that the parser's rule does not depend on what
 * s4__init_rank (src/ssm/hippo.c, the HiPPO measures) says for an init without a measure. */

/* Every rule a config must meet to be read (and therefore to be written): each key's range
 * as the parser reads it, then the rules across keys. The one rule set of both directions:
 * the parser calls it on what it read (status S4_ERR_FORMAT; its per-key checks have
 * already refused values outside these ranges, with the JSON value in the message), and
 * s4_layer_config_to_json on what it is given (S4_ERR_INVALID_ARGUMENT). */
static s4_status check_values(const char *src, const s4_layer_config *c, s4_config_use use,
                              s4_status code)
{
    const s4_ssm_config *m = &c->ssm;
    if (m->H < 1 || m->H > D_MODEL_MAX)
        return s4__fail(code, "%s: key 'd_model': %d is outside [1, %d]", src, m->H,
                        D_MODEL_MAX);
    if (m->N < 2 || m->N > D_STATE_MAX || m->N % 2 != 0)
        return s4__fail(code, "%s: key 'd_state': %d is not an even number in [2, %d]", src,
                        m->N, D_STATE_MAX);
    if (c->l_max < 0 || c->l_max > MAX_LENGTH)
        return s4__fail(code, "%s: key 'l_max': %lld is outside [1, 2^40] (or 0 for null)", src,
                        (long long)c->l_max);
    if (m->rank < 1 || m->rank > S4_MAX_RANK)
        return s4__fail(code, "%s: key 'rank': %d is outside [1, %d]", src, m->rank,
                        S4_MAX_RANK);
    if (m->n_ssm < 0)
        return s4__fail(code, "%s: key 'n_ssm': %d is negative (0 for null: d_model copies)",
                        src, m->n_ssm);
    if (m->n_ssm > 0 && m->H % m->n_ssm != 0)
        return s4__fail(code, "%s: key 'n_ssm': %d does not divide d_model = %d", src, m->n_ssm,
                        m->H);
    if (c->channels < 1 || c->channels > CHANNELS_MAX)
        return s4__fail(code, "%s: key 'channels': %d is outside [1, %d]", src, c->channels,
                        CHANNELS_MAX);
    const struct {
        const char *key;
        int v;
    } flags[] = {{"transposed", c->transposed},
                 {"bidirectional", c->bidirectional},
                 {"swap_channels", c->swap_channels}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].v != 0 && flags[i].v != 1)
            return s4__fail(code, "%s: key '%s': %d is not 0 (false) or 1 (true)", src,
                            flags[i].key, flags[i].v);
    /* Positive and finite, as the parser reads them (a NaN used to be written as null). */
    if (!(m->dt_min > 0.0) || !isfinite(m->dt_min))
        return s4__fail(code, "%s: key 'dt_min': %g is not a finite positive number", src,
                        m->dt_min);
    if (!(m->dt_max > 0.0) || !isfinite(m->dt_max))
        return s4__fail(code, "%s: key 'dt_max': %g is not a finite positive number", src,
                        m->dt_max);
    if (!s4_activation_name(c->activation))
        return s4__fail(code, "%s: key 'activation': %d is not an s4_activation", src,
                        (int)c->activation);
    if (c->final_act != S4_FINAL_GLU && c->final_act != S4_FINAL_IDENTITY &&
        c->final_act != S4_FINAL_NONE)
        return s4__fail(code, "%s: key 'final_act': %d is not an s4_final_act", src,
                        (int)c->final_act);
    if (!s4_init_name(m->init))
        return s4__fail(code, "%s: key 'init': %d is not an s4_init", src, (int)m->init);
    if (!s4_ssm_mode_name(m->mode))
        return s4__fail(code, "%s: key 'mode': %d is not an s4_ssm_mode", src, (int)m->mode);
    /* Checked in either mode: a DPLR config ignores disc but still writes it. */
    if (!s4_disc_name(m->disc))
        return s4__fail(code, "%s: key 'disc': %d is not an s4_disc", src, (int)m->disc);
    const struct {
        const char *key;
        s4_transform t;
    } transforms[] = {{"dt_transform", m->dt_transform},
                      {"real_transform", m->real_transform},
                      {"imag_transform", m->imag_transform}};
    for (size_t i = 0; i < sizeof transforms / sizeof transforms[0]; i++)
        if (!s4_transform_name(transforms[i].t))
            return s4__fail(code, "%s: key '%s': %d is not an s4_transform", src,
                            transforms[i].key, (int)transforms[i].t);
    if (use == S4_CONFIG_FOR_INIT) {
        /* A diagonal bank drops P, so no init constrains its rank (legt included: its NPLR
         * form is computed at the rank it needs, then P is dropped). */
        const int natural = s4__init_rank(m->init);
        if (m->mode == S4_MODE_DPLR && m->rank < natural)
            return s4__fail(code, "%s: key 'rank': %d is below the rank %d that init '%s' needs",
                            src, m->rank, natural, s4_init_name(m->init));
        const int S = m->n_ssm ? m->n_ssm : m->H;
        if ((m->init == S4_INIT_HIPPO || m->init == S4_INIT_DIAG) && S % 2 != 0)
            return s4__fail(code,
                            "%s: key 'n_ssm': init '%s' splits the %d copies in two halves: "
                            "must be even",
                            src, s4_init_name(m->init), S);
        if (m->dt_max < m->dt_min)
            return s4__fail(code, "%s: key 'dt_max': %g is below dt_min = %g", src, m->dt_max,
                            m->dt_min);
    }
    return S4_OK;
}

/* Checks that need several keys: which kernel, which init, which final activation. */
static s4_status resolve(const char *src, s4_config_use use, s4_layer_config *c,
                         const raw_config *raw)
{
    if (!raw->have_d_model)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: key 'd_model' is missing (required: the reference has no default)",
                        src);
    /* FFTConv: `mode` (default 'dplr') or `kernel`, not both. */
    const char *mode = raw->mode_given ? raw->mode : "dplr";
    const char *mode_key = "mode";
    if (raw->kernel) {
        if (mode)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: key 'kernel': given together with mode '%.40s' (pass one; set "
                            "mode to null to use kernel)",
                            src, mode);
        mode = raw->kernel;
        mode_key = "kernel";
    }
    if (!mode)
        return s4__fail(S4_ERR_FORMAT, "%s: key 'mode': null, and no 'kernel' given", src);
    /* The reference's kernel_registry: SSMKernelDPLR and SSMKernelDiag under two or three
     * names each. */
    int v;
    if (s4__name_find(&s4__mode_names, mode, &v))
        c->ssm.mode = (s4_ssm_mode)v;
    else if (is(mode, "dense") || is(mode, "real"))
        /* SSMKernelDense / SSMKernelReal of the full state-spaces repository. */
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "%s: key '%s': '%s' is not implemented by libs4 (dplr or diag)", src,
                        mode_key, mode);
    else
        return s4__fail(S4_ERR_FORMAT,
                        "%s: key '%s': unknown value '%.40s' (expected dplr, nplr, s4, diag or "
                        "s4d)",
                        src, mode_key, mode);

    /* SSMKernel: the deprecated `measure` replaces `init`, which must then be null. */
    const char *init = raw->init_given ? raw->init : "legs";
    const char *init_key = "init";
    if (raw->measure) {
        if (init)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: key 'measure': given together with init '%.40s' (set init to "
                            "null)",
                            src, init);
        init = raw->measure;
        init_key = "measure";
    }
    const bool known = s4__name_find(&s4__init_names, init, &v);
    if (known)
        c->ssm.init = (s4_init)v;
    else {
        if (use == S4_CONFIG_FOR_INIT)
            return s4__fail(S4_ERR_UNSUPPORTED,
                            "%s: key '%s': %s%.40s%s is not an init libs4 implements (legs, "
                            "legt, lagt, fout, fourier, hippo, diag-lin, diag-linear, "
                            "diag-inv, diag-inverse, diag-real, diag, diag-inv2, "
                            "diag-inverse2, diag-quad, diag-quadratic)",
                            src, init_key, init ? "'" : "", init ? init : "null",
                            init ? "'" : "");
        c->ssm.init = S4_INIT_LEGS; /* trained weights: the init no longer matters */
    }

    /* S4Block: the deprecated `postact` replaces `final_act`, which must then be null. */
    const char *final_act = raw->final_act_given ? raw->final_act : "glu";
    const char *final_key = "final_act";
    if (raw->postact) {
        if (final_act)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: key 'postact': given together with final_act '%.40s' (set "
                            "final_act to null)",
                            src, final_act);
        final_act = raw->postact;
        final_key = "postact";
    }
    s4_status st = map_final_act(src, final_key, final_act, &c->final_act);
    if (st != S4_OK)
        return st;

    return check_values(src, c, use, S4_ERR_FORMAT);
}

/* A JSON object, parsed strictly (no trailing garbage). */
static s4_status parse_object(const char *src, const char *text, cJSON **out)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return s4__fail(S4_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", src, at);
    }
    if (!cJSON_IsObject(root)) {
        char buf[96];
        s4_status st = s4__fail(S4_ERR_FORMAT, "%s: expected a JSON object of S4Block "
                                               "arguments, found %s",
                                src, describe(root, buf, sizeof buf));
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return S4_OK;
}

s4_status s4_layer_config_parse(const char *json, const char *source, s4_config_use use,
                                s4_layer_config *config)
{
    const char *src = source ? source : "config";
    if (!json || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_config_parse: %s is NULL",
                        !json ? "json" : "config");
    if (use != S4_CONFIG_FOR_WEIGHTS && use != S4_CONFIG_FOR_INIT)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_config_parse: use = %d is unknown",
                        (int)use);
    cJSON *root = NULL;
    s4_status st = parse_object(src, json, &root);
    if (st != S4_OK)
        return st;
    s4_layer_config c;
    s4_layer_config_default(&c);
    raw_config raw = {0};
    for (const cJSON *k = root->child; k && st == S4_OK; k = k->next) {
        for (const cJSON *e = root->child; e != k; e = e->next)
            if (strcmp(e->string, k->string) == 0) {
                st = s4__fail(S4_ERR_FORMAT, "%s: key '%.60s' appears twice", src, k->string);
                break;
            }
        if (st == S4_OK)
            st = config_key(src, k->string, k, &c, &raw);
    }
    if (st == S4_OK)
        st = resolve(src, use, &c, &raw);
    cJSON_Delete(root); /* raw's strings point into the tree: used up by now */
    if (st == S4_OK)
        *config = c;
    return st;
}

s4_status s4io_read_text(const char *path, long max_bytes, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return s4__fail(S4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    s4_status st = S4_OK;
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        st = s4__fail(S4_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else if (size > max_bytes)
        st = s4__fail(S4_ERR_FORMAT, "%s: %ld bytes is too large for a config", path, size);
    else if (!(text = s4__malloc((size_t)size + 1)))
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    else if (fread(text, 1, (size_t)size, f) != (size_t)size)
        st = s4__fail(S4_ERR_IO, "%s: cannot read: %s", path,
                      ferror(f) ? strerror(errno) : "short read");
    fclose(f);
    if (st != S4_OK) {
        s4__free(text);
        return st;
    }
    text[size] = '\0';
    if (strlen(text) != (size_t)size) {
        s4__free(text);
        return s4__fail(S4_ERR_FORMAT, "%s: contains a NUL byte: not a JSON config", path);
    }
    *out = text;
    return S4_OK;
}

s4_status s4_layer_config_read(const char *path, s4_config_use use, s4_layer_config *config)
{
    if (!path || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_config_read: %s is NULL",
                        !path ? "path" : "config");
    char *text = NULL;
    s4_status st = s4io_read_text(path, S4IO_MAX_CONFIG_BYTES, &text);
    if (st != S4_OK)
        return st;
    st = s4_layer_config_parse(text, path, use, config);
    s4__free(text);
    return st;
}

/* Adds a finite double with the fewest significant digits (15, 16 or 17) that read back as
 * the same double. cJSON's own printer keeps 15 digits whenever they read back within an
 * epsilon, so dt_min = 8.888888888888889e+67 came back an ulp off and a saved config did
 * not reproduce the layer's config exactly (found by tests/fuzz/fuzz_config.c). */
static bool add_exact_number(cJSON *o, const char *key, double v)
{
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* printf and strtod follow LC_NUMERIC; JSON's decimal point is always '.'. */
    const char point = localeconv()->decimal_point[0];
    for (char *p = buf; *p; p++)
        if (*p == point)
            *p = '.';
    return cJSON_AddRawToObject(o, key, buf) != NULL;
}

s4_status s4_layer_config_to_json(const s4_layer_config *c, char **json)
{
    static const char fn[] = "s4_layer_config_to_json";
    if (!c || !json)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !c ? "config" : "json");
    /* The parser's rules: a config that would not read back is refused here, naming the
     * key, instead of being written (a NaN dt_min as null, a negative n_ssm as null ...). */
    s4_status st = check_values(fn, c, S4_CONFIG_FOR_WEIGHTS, S4_ERR_INVALID_ARGUMENT);
    if (st != S4_OK)
        return st;
    const char *act = s4_activation_name(c->activation), *init = s4_init_name(c->ssm.init);
    const char *tdt = s4_transform_name(c->ssm.dt_transform);
    const char *tre = s4_transform_name(c->ssm.real_transform);
    const char *tim = s4_transform_name(c->ssm.imag_transform);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
#define NUM(k, v) (ok = ok && cJSON_AddNumberToObject(o, (k), (double)(v)) != NULL)
#define STR(k, v) (ok = ok && cJSON_AddStringToObject(o, (k), (v)) != NULL)
#define BOOL(k, v) (ok = ok && cJSON_AddBoolToObject(o, (k), (v) ? 1 : 0) != NULL)
#define NUL(k) (ok = ok && cJSON_AddNullToObject(o, (k)) != NULL)
    NUM("d_model", c->ssm.H);
    NUM("d_state", c->ssm.N);
    if (c->l_max > 0)
        NUM("l_max", c->l_max);
    else
        NUL("l_max");
    BOOL("transposed", c->transposed);
    STR("mode", s4_ssm_mode_name(c->ssm.mode));
    STR("init", init);
    NUM("rank", c->ssm.rank);
    if (c->ssm.n_ssm > 0 && c->ssm.n_ssm != c->ssm.H)
        NUM("n_ssm", c->ssm.n_ssm);
    else
        NUL("n_ssm");
    NUM("channels", c->channels);
    BOOL("bidirectional", c->bidirectional);
    STR("activation", act);
    if (c->final_act == S4_FINAL_NONE)
        NUL("final_act");
    else
        STR("final_act", c->final_act == S4_FINAL_GLU ? "glu" : "id");
    BOOL("swap_channels", c->swap_channels);
    ok = ok && add_exact_number(o, "dt_min", c->ssm.dt_min);
    ok = ok && add_exact_number(o, "dt_max", c->ssm.dt_max);
    BOOL("dt_tie", 1);
    STR("dt_transform", tdt);
    STR("real_transform", tre);
    STR("imag_transform", tim);
    STR("disc", s4_disc_name(c->ssm.disc));
    BOOL("dt_fast", 0);
    NUL("bandlimit");
    BOOL("is_real", 0);
#undef NUM
#undef STR
#undef BOOL
#undef NUL
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    /* Handed out for s4_free: copy out of cJSON's allocator into the library's. */
    const size_t len = strlen(text) + 1;
    char *copy = s4__malloc(len);
    if (copy)
        memcpy(copy, text, len);
    cJSON_free(text);
    if (!copy)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *json = copy;
    return S4_OK;
}

s4_status s4io_config_json_for_weights(const s4_layer_config *config, char **json)
{
    if (!config)
        return s4_layer_config_to_json(config, json);
    /* The dt range only draws a fresh layer's dt (s4_layer_create_from_arrays and
     * s4_layer_load_with_config ignore it), so a layer made from stored parameters may hold
     * any values there. Written as they are they would be refused; the reference's defaults
     * are what S4Block would assume, and change nothing for the weights. */
    s4_layer_config c = *config;
    s4_ssm_config d;
    s4_ssm_config_default(&d);
    const bool meaningful = c.ssm.dt_min > 0.0 && isfinite(c.ssm.dt_min) &&
                            c.ssm.dt_max > 0.0 && isfinite(c.ssm.dt_max);
    if (!meaningful) {
        c.ssm.dt_min = d.dt_min;
        c.ssm.dt_max = d.dt_max;
    }
    /* Likewise the init (s4_layer_create_from_arrays ignores it), a diagonal bank's rank (it
     * has no low-rank term) and a DPLR bank's disc (always bilinear): the SSM does not
     * check them, so a layer may hold any value there; what S4Block would assume is
     * written instead. */
    if (!s4_init_name(c.ssm.init))
        c.ssm.init = d.init;
    if (c.ssm.mode == S4_MODE_DIAG && (c.ssm.rank < 1 || c.ssm.rank > S4_MAX_RANK))
        c.ssm.rank = d.rank;
    if (c.ssm.mode == S4_MODE_DPLR && !s4_disc_name(c.ssm.disc))
        c.ssm.disc = d.disc;
    return s4_layer_config_to_json(&c, json);
}
