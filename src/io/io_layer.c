/* Trained models: the reference S4Block's state_dict in safetensors mapped onto an
 * s4_layer, and the layer saved back with the same names (docs/design.md section 4); the
 * architecture comes from the JSON config (src/io/io_config.c).
 *
 * A diagonal (S4D, mode diag) state_dict is the same without `layer.kernel.P` and
 * `layer.kernel.l_kernel`: SSMKernelDiag has no low-rank term and no C-tilde.
 *
 * The file is hostile until checked: every tensor's presence, dtype and shape is checked
 * against what the config implies, every value for finiteness, and each failure message
 * names the file, the tensor, and what was expected.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"
#include "layer/layer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_CONFIG_KEY "s4_config"

/* Lengths the SSM accepts (s4_ssm_setup_length). */
#define MAX_LENGTH ((int64_t)1 << 40)

/* ---- loading a state_dict ------------------------------------------------------ */

enum {
    T_INV_DT,
    T_A_REAL,
    T_A_IMAG,
    T_B,
    T_P,
    T_C,
    T_L_KERNEL,
    T_D,
    T_W,
    T_BIAS,
    T_COUNT
};

/* One expected tensor: its name, the shape the config implies and how that shape reads.
 * name NULL: not part of a layer with this config (P and l_kernel of an S4D layer). */
typedef struct expected {
    const char *name;
    int ndim;
    int64_t shape[4];
    const char *legend;
    const s4io_tensor *t;
    double *values;
} expected;

void s4io_shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    int k = snprintf(buf, len, "(");
    for (int d = 0; d < ndim && k > 0 && (size_t)k < len; d++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "%s)", ndim == 1 ? "," : "");
}

static void set_shape(expected *e, int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
    e->ndim = ndim;
    e->shape[0] = a;
    e->shape[1] = b;
    e->shape[2] = c;
    e->shape[3] = d;
}

/* Sizes of a layer config as the state_dict sees them. */
typedef struct dims {
    int H, Nh, S, r, Cp, rows, Flin, Fa;
} dims;

static dims dims_of(const s4_layer_config *c)
{
    dims d;
    d.H = c->ssm.H;
    d.Nh = c->ssm.N / 2;
    d.S = c->ssm.n_ssm > 0 ? c->ssm.n_ssm : c->ssm.H;
    d.r = c->ssm.mode == S4_MODE_DIAG ? 0 : c->ssm.rank; /* S4D: no low-rank term */
    d.Cp = c->channels * (c->activation == S4_ACT_GLU ? 2 : 1);
    d.rows = d.Cp * (c->bidirectional ? 2 : 1);
    d.Fa = c->activation == S4_ACT_GLU ? d.Cp * d.H / 2 : d.Cp * d.H;
    d.Flin = c->final_act == S4_FINAL_GLU ? 2 * d.H : c->final_act == S4_FINAL_IDENTITY ? d.H : 0;
    return d;
}

static bool shape_matches(const expected *e, const s4io_tensor *t)
{
    if (t->ndim != e->ndim)
        return false;
    for (int k = 0; k < e->ndim; k++)
        if (t->shape[k] != e->shape[k])
            return false;
    return true;
}

/* Finds each expected tensor, checks shape and dtype. The output linear may be named
 * `output_linear.0.*` (current reference) or `output_linear.*`, and its weight may carry a
 * Conv1d's trailing 1. */
/* Name buffers: a state_dict prefix ("s4_layers.3.") plus the layer's own name. */
enum { NAME_MAX_LEN = 160 };
typedef char name_buf[NAME_MAX_LEN];

/* prefix + name into buf (truncated names cannot match a tensor: the reader's names are
 * shorter than the buffer). */
static const char *pname(name_buf buf, const char *prefix, const char *name)
{
    snprintf(buf, NAME_MAX_LEN, "%s%s", prefix, name);
    return buf;
}

static s4_status find_expected(const char *path, const s4io_safetensors *f, expected *ex,
                               int count, const dims *d, const char *prefix)
{
    name_buf n1, n2, n3, n4;
    for (int i = 0; i < count; i++) {
        expected *e = &ex[i];
        if (!e->name)
            continue;
        e->t = s4io_safetensors_find(f, e->name);
        if (!e->t && (i == T_W || i == T_BIAS)) {
            const char *plain = pname(n1, prefix,
                                      i == T_W ? "output_linear.weight" : "output_linear.bias");
            e->t = s4io_safetensors_find(f, plain);
            if (e->t)
                e->name = e->t->name; /* the file's own string, valid while it is open */
        }
        char want[96], got[96];
        s4io_shape_text(want, sizeof want, e->ndim, e->shape);
        if (!e->t) {
            /* Neither P nor l_kernel: most likely an S4D file read with an S4 config. */
            const bool s4d_file =
                (i == T_P || i == T_L_KERNEL) &&
                !s4io_safetensors_find(f, pname(n1, prefix, "layer.kernel.P")) &&
                !s4io_safetensors_find(f, pname(n2, prefix, "layer.kernel.l_kernel"));
            return s4__fail(S4_ERR_FORMAT, "%s: missing tensor '%s' (expected shape %s = %s)%s",
                            path, e->name, want, e->legend,
                            s4d_file ? "; with no l_kernel either, the file looks like an "
                                       "S4D layer, but the config's key 'mode' is dplr"
                                     : "");
        }
        bool ok = shape_matches(e, e->t);
        if (!ok && i == T_W && e->t->ndim == 3 && e->t->shape[2] == 1 &&
            e->t->shape[0] == d->Flin && e->t->shape[1] == d->Fa)
            ok = true; /* Conv1d(kernel_size=1) weight of a transposed LinearActivation */
        if (!ok) {
            s4io_shape_text(got, sizeof got, e->t->ndim, e->t->shape);
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': expected shape %s = %s from the config, found %s",
                            path, e->name, want, e->legend, got);
        }
        const bool want_int = i == T_L_KERNEL;
        if (!want_int && e->t->dtype == S4IO_I64)
            return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': dtype I64, expected F32 or F64",
                            path, e->name);
    }
    /* Both spellings of the linear at once would leave one of them unused. */
    if (count > T_W) {
        const bool dotted =
            s4io_safetensors_find(f, pname(n1, prefix, "output_linear.0.weight")) != NULL ||
            s4io_safetensors_find(f, pname(n2, prefix, "output_linear.0.bias")) != NULL;
        const bool plain =
            s4io_safetensors_find(f, pname(n3, prefix, "output_linear.weight")) != NULL ||
            s4io_safetensors_find(f, pname(n4, prefix, "output_linear.bias")) != NULL;
        if (dotted && plain)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%soutput_linear.weight': the file has both "
                            "%soutput_linear.* and %soutput_linear.0.*; expected one",
                            path, prefix, prefix, prefix);
    }
    return S4_OK;
}

/* Every tensor of the file must be one of the expected ones. A tensor that a layer of the
 * other kind would have names the config key that rules it out. */
static s4_status check_unexpected(const char *path, const s4io_safetensors *f,
                                  const expected *ex, int count)
{
    const size_t n = s4io_safetensors_count(f);
    for (size_t i = 0; i < n; i++) {
        const s4io_tensor *t = s4io_safetensors_at(f, i);
        bool known = false;
        for (int k = 0; k < count && !known; k++)
            known = ex[k].t == t;
        if (known)
            continue;
        if (count <= T_W && strncmp(t->name, "output_linear.", 14) == 0)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: unexpected tensor '%s': the config's key 'final_act' is null "
                            "(no output linear)",
                            path, t->name);
        if (!ex[T_P].name && strcmp(t->name, "layer.kernel.P") == 0)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: unexpected tensor '%s': the config's key 'mode' is diag (S4D "
                            "has no low-rank term P; is the file an S4 (dplr) layer?)",
                            path, t->name);
        if (!ex[T_L_KERNEL].name && strcmp(t->name, "layer.kernel.l_kernel") == 0)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: unexpected tensor '%s': the config's key 'mode' is diag (S4D "
                            "has no C-tilde and no l_kernel; is the file an S4 (dplr) layer?)",
                            path, t->name);
        return s4__fail(S4_ERR_FORMAT,
                        "%s: unexpected tensor '%s' (not part of an S4Block with this config)",
                        path, t->name);
    }
    return S4_OK;
}

/* Values as doubles, all finite. */
static s4_status read_values(const char *path, expected *e)
{
    e->values = s4__alloc(e->t->numel, sizeof *e->values);
    if (!e->values)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: tensor '%s': out of memory", path, e->name);
    s4_status st = s4io_tensor_to_f64(e->t, e->values, e->t->numel);
    if (st != S4_OK)
        return st;
    for (size_t i = 0; i < e->t->numel; i++)
        if (!isfinite(e->values[i]))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': element %zu is %s (parameters must be finite)",
                            path, e->name, i, isnan(e->values[i]) ? "NaN" : "infinite");
    return S4_OK;
}

/* The expected tensors of a config (count: T_COUNT, or T_W without an output linear;
 * entries left without a name are not part of it). */
static int expected_tensors(const s4_layer_config *c, const dims *d, expected *ex)
{
    memset(ex, 0, sizeof(expected) * T_COUNT);
    ex[T_INV_DT] = (expected){.name = "layer.kernel.inv_dt", .legend = "(d_model, 1)"};
    set_shape(&ex[T_INV_DT], 2, d->H, 1, 0, 0);
    ex[T_A_REAL] = (expected){.name = "layer.kernel.A_real", .legend = "(n_ssm, d_state/2)"};
    set_shape(&ex[T_A_REAL], 2, d->S, d->Nh, 0, 0);
    ex[T_A_IMAG] = (expected){.name = "layer.kernel.A_imag", .legend = "(n_ssm, d_state/2)"};
    set_shape(&ex[T_A_IMAG], 2, d->S, d->Nh, 0, 0);
    ex[T_B] = (expected){.name = "layer.kernel.B", .legend = "(1, n_ssm, d_state/2, 2)"};
    set_shape(&ex[T_B], 4, 1, d->S, d->Nh, 2);
    const bool diag = c->ssm.mode == S4_MODE_DIAG;
    if (!diag) {
        ex[T_P] = (expected){.name = "layer.kernel.P", .legend = "(rank, n_ssm, d_state/2, 2)"};
        set_shape(&ex[T_P], 4, d->r, d->S, d->Nh, 2);
    }
    ex[T_C] = (expected){.name = "layer.kernel.C",
                         .legend = c->activation == S4_ACT_GLU
                                       ? (c->bidirectional
                                              ? "(2 x 2 x channels, d_model, d_state/2, 2) "
                                                "[glu activation, bidirectional]"
                                              : "(2 x channels, d_model, d_state/2, 2) [glu "
                                                "activation]")
                                       : (c->bidirectional
                                              ? "(2 x channels, d_model, d_state/2, 2) "
                                                "[bidirectional]"
                                              : "(channels, d_model, d_state/2, 2)")};
    set_shape(&ex[T_C], 4, d->rows, d->H, d->Nh, 2);
    if (!diag) {
        ex[T_L_KERNEL] = (expected){.name = "layer.kernel.l_kernel", .legend = "a scalar"};
        set_shape(&ex[T_L_KERNEL], 0, 0, 0, 0, 0);
    }
    ex[T_D] = (expected){.name = "layer.D",
                         .legend = c->activation == S4_ACT_GLU
                                       ? "(2 x channels, d_model) [glu activation]"
                                       : "(channels, d_model)"};
    set_shape(&ex[T_D], 2, d->Cp, d->H, 0, 0);
    if (d->Flin == 0)
        return T_W;
    /* F_in = C' d_model, halved by a GLU activation: channels x d_model either way. */
    const char *lw = c->final_act == S4_FINAL_GLU
                         ? "(2 d_model, channels x d_model) [final_act glu]"
                         : "(d_model, channels x d_model) [final_act id]";
    ex[T_W] = (expected){.name = "output_linear.0.weight", .legend = lw};
    set_shape(&ex[T_W], 2, d->Flin, d->Fa, 0, 0);
    ex[T_BIAS] = (expected){.name = "output_linear.0.bias",
                            .legend = c->final_act == S4_FINAL_GLU ? "(2 d_model,) [final_act glu]"
                                                                   : "(d_model,) [final_act id]"};
    set_shape(&ex[T_BIAS], 1, d->Flin, 0, 0, 0);
    return T_COUNT;
}

/* Re-prefixes the last error with the file name (the library's own message is copied out
 * first: it lives in the buffer being rewritten). Values the SSM refuses (a dt that maps to
 * infinity, a Re(Lambda) >= 0) are the file's content: S4_ERR_FORMAT. */
static s4_status prefix_error(s4_status st, const char *path)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", s4_last_error());
    return s4__fail(st == S4_ERR_INVALID_ARGUMENT ? S4_ERR_FORMAT : st,
                    "%s: parameters refused: %s", path, msg);
}

s4_status s4io_layer_from_file(const char *path, const s4io_safetensors *f, const char *prefix,
                               const s4_layer_config *cfg, const s4io_tensor **found,
                               int *nfound, s4_layer **out)
{
    /* Mode and disc belong to the config, not to the file: checked first, so that a bad
     * value is not reported as the file's content by prefix_error (the mode also decides
     * which tensors to look for). */
    const bool diag = cfg->ssm.mode == S4_MODE_DIAG;
    if (!diag && cfg->ssm.mode != S4_MODE_DPLR)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4_layer_load: config key 'mode': %d is not an s4_ssm_mode",
                        (int)cfg->ssm.mode);
    if (diag && cfg->ssm.disc != S4_DISC_ZOH && cfg->ssm.disc != S4_DISC_BILINEAR &&
        cfg->ssm.disc != S4_DISC_DSS)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4_layer_load: config key 'disc': %d is not an s4_disc",
                        (int)cfg->ssm.disc);
    /* Sizes first, in 64 bits, so that the int products of dims_of cannot overflow. A
     * diagonal bank has no low-rank term: its rank is not used. */
    const int64_t H = cfg->ssm.H, channels = cfg->channels;
    if (H < 1 || cfg->ssm.N < 2 || cfg->ssm.N % 2 != 0 || cfg->ssm.n_ssm < 0 ||
        (!diag && cfg->ssm.rank < 1) || channels < 1 || channels > 1024 ||
        4 * channels * H > (int64_t)INT_MAX / 2)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4_layer_load: config sizes d_model = %d, d_state = %d, n_ssm = %d, "
                        "rank = %d, channels = %d are out of range",
                        cfg->ssm.H, cfg->ssm.N, cfg->ssm.n_ssm, cfg->ssm.rank, cfg->channels);
    const dims d = dims_of(cfg);
    expected ex[T_COUNT];
    const int count = expected_tensors(cfg, &d, ex);
    name_buf full[T_COUNT];
    for (int i = 0; i < count; i++)
        if (ex[i].name)
            ex[i].name = pname(full[i], prefix, ex[i].name);
    s4_status st = find_expected(path, f, ex, count, &d, prefix);
    if (st == S4_OK && !found)
        st = check_unexpected(path, f, ex, count);
    if (st == S4_OK && found) {
        *nfound = 0;
        for (int i = 0; i < count; i++)
            if (ex[i].name)
                found[(*nfound)++] = ex[i].t;
    }
    for (int i = 0; i < count && st == S4_OK; i++)
        if (ex[i].name)
            st = read_values(path, &ex[i]);
    /* S4D: C is always raw (docs/design.md 10), l_kernel 0. */
    int64_t l_kernel = 0;
    if (st == S4_OK && !diag) {
        const double lk = ex[T_L_KERNEL].values[0];
        if (!(lk >= 0.0 && lk <= (double)MAX_LENGTH) || floor(lk) != lk)
            st = s4__fail(S4_ERR_FORMAT,
                          "%s: tensor '%s' = %g: expected an integer in [0, 2^40] (0: C is "
                          "raw; else the length C-tilde was made for)",
                          path, ex[T_L_KERNEL].name, lk);
        else
            l_kernel = (int64_t)lk;
    }
    if (st == S4_OK) {
        const s4_layer_arrays arrays = {
            .ssm = {.inv_dt = ex[T_INV_DT].values,
                    .A_real = ex[T_A_REAL].values,
                    .A_imag = ex[T_A_IMAG].values,
                    .B = ex[T_B].values,
                    .P = ex[T_P].values, /* NULL for S4D */
                    .C = ex[T_C].values,
                    .D = ex[T_D].values,
                    .l_kernel = l_kernel},
            .W = count > T_W ? ex[T_W].values : NULL,
            .b = count > T_W ? ex[T_BIAS].values : NULL};
        st = s4_layer_create_from_arrays(cfg, &arrays, out);
        if (st != S4_OK)
            st = prefix_error(st, path);
    }
    for (int i = 0; i < count; i++)
        s4__free(ex[i].values);
    return st;
}

s4_status s4_layer_load_with_config(const char *weights_path, const s4_layer_config *config,
                                    s4_layer **out)
{
    if (!weights_path || !config || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_load_with_config: %s is NULL",
                        !weights_path ? "weights_path" : !config ? "config" : "out");
    s4io_safetensors *f = NULL;
    s4_status st = s4io_safetensors_open(weights_path, &f);
    if (st != S4_OK)
        return st;
    st = s4io_layer_from_file(weights_path, f, "", config, NULL, NULL, out);
    s4io_safetensors_close(f);
    return st;
}

s4_status s4_layer_load(const char *weights_path, const char *config_path, s4_layer **out)
{
    if (!weights_path || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_layer_load: %s is NULL",
                        !weights_path ? "weights_path" : "out");
    s4_layer_config cfg;
    s4_status st = S4_OK;
    /* The config file is read first: a bad config is reported even for a bad weights file,
     * and it is the cheaper of the two. */
    if (config_path && (st = s4_layer_config_read(config_path, S4_CONFIG_FOR_WEIGHTS, &cfg)))
        return st;
    s4io_safetensors *f = NULL;
    if ((st = s4io_safetensors_open(weights_path, &f)) != S4_OK)
        return st;
    if (!config_path) {
        const char *text = s4io_safetensors_metadata(f, META_CONFIG_KEY);
        if (!text) {
            s4io_safetensors_close(f);
            return s4__fail(S4_ERR_FORMAT,
                            "%s: no architecture config: __metadata__ has no key '"
                            META_CONFIG_KEY "' and no config file was given",
                            weights_path);
        }
        const size_t len = strlen(weights_path) + sizeof ": __metadata__ '" META_CONFIG_KEY "'";
        char *src = s4__malloc(len);
        if (!src) {
            s4io_safetensors_close(f);
            return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", weights_path);
        }
        snprintf(src, len, "%s: __metadata__ '" META_CONFIG_KEY "'", weights_path);
        st = s4_layer_config_parse(text, src, S4_CONFIG_FOR_WEIGHTS, &cfg);
        s4__free(src);
    }
    if (st == S4_OK)
        st = s4io_layer_from_file(weights_path, f, "", &cfg, NULL, NULL, out);
    s4io_safetensors_close(f);
    return st;
}

/* ---- saving -------------------------------------------------------------------- */

void s4_save_options_default(s4_save_options *options)
{
    if (!options)
        return;
    options->dtype = S4_DTYPE_F32;
    options->plain_linear_names = 0;
    options->embed_config = 1;
}

s4_status s4_layer_get_output_linear(const s4_layer *layer, double *W, size_t nW, double *b,
                                     size_t nb)
{
    static const char fn[] = "s4_layer_get_output_linear";
    if (!layer)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: layer is NULL", fn);
    const size_t Flin = (size_t)layer->head.Flin, Fa = (size_t)layer->head.Fa;
    if (Flin == 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the layer has no output linear (final_act none)", fn);
    if ((W && nW < Flin * Fa) || (b && nb < Flin))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: %s = %zu is smaller than the %zu values of the linear", fn,
                        W && nW < Flin * Fa ? "nW" : "nb", W && nW < Flin * Fa ? nW : nb,
                        W && nW < Flin * Fa ? Flin * Fa : Flin);
    if (W)
        memcpy(W, layer->W64, Flin * Fa * sizeof *W);
    if (b)
        memcpy(b, layer->b64, Flin * sizeof *b);
    return S4_OK;
}

s4_status s4_layer_save(const s4_layer *layer, const char *path, const s4_save_options *options)
{
    static const char fn[] = "s4_layer_save";
    if (!layer || !path)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !layer ? "layer" : "path");
    s4_save_options opt;
    s4_save_options_default(&opt);
    if (options)
        opt = *options;
    if (opt.dtype != S4_DTYPE_F32 && opt.dtype != S4_DTYPE_F64)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: options->dtype = %d must be S4_DTYPE_F32 or S4_DTYPE_F64", fn,
                        (int)opt.dtype);
    const s4io_dtype dt = opt.dtype == S4_DTYPE_F32 ? S4IO_F32 : S4IO_F64;
    s4_layer_config cfg;
    s4_status st = s4_layer_get_config(layer, &cfg);
    if (st != S4_OK)
        return st;
    const s4_ssm *ssm = s4_layer_ssm(layer);
    const int H = ssm->H, Nh = ssm->Nh, S = ssm->S, r = ssm->rank, Cp = ssm->Cp;
    const int rows = ssm->rows;
    const int Flin = layer->head.Flin, Fa = layer->head.Fa;
    /* The reference's SSMKernelDiag registers neither P nor l_kernel (docs/design.md 4). */
    const bool diag = ssm->cfg.mode == S4_MODE_DIAG;

    static const s4_param which[] = {S4_PARAM_D,      S4_PARAM_A_IMAG, S4_PARAM_A_REAL,
                                     S4_PARAM_B,      S4_PARAM_C,      S4_PARAM_P,
                                     S4_PARAM_INV_DT};
    enum { NPARAM = sizeof which / sizeof which[0] };
    double *vals[NPARAM] = {0};
    s4io_tensor_out t[NPARAM + 3];
    memset(t, 0, sizeof t);
    for (int i = 0; i < NPARAM && st == S4_OK; i++) {
        if (diag && which[i] == S4_PARAM_P)
            continue;
        const size_t n = s4_ssm_param_size(ssm, which[i]);
        vals[i] = s4__alloc(n, sizeof(double));
        if (!vals[i])
            st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: %s: out of memory", fn, path);
        else
            st = s4_ssm_get_param(ssm, which[i], vals[i], n);
    }
    const double lk = (double)ssm->l_kernel;
    size_t n = 0;
    if (st == S4_OK) {
#define TENSOR(nm, v, nd, a, b_, c_, d_)                                                       \
    t[n++] = (s4io_tensor_out){.name = (nm), .dtype = dt, .ndim = (nd), .values = (v),         \
                               .shape = {(a), (b_), (c_), (d_)}}
        TENSOR("layer.D", vals[0], 2, Cp, H, 0, 0);
        TENSOR("layer.kernel.A_imag", vals[1], 2, S, Nh, 0, 0);
        TENSOR("layer.kernel.A_real", vals[2], 2, S, Nh, 0, 0);
        TENSOR("layer.kernel.B", vals[3], 4, 1, S, Nh, 2);
        TENSOR("layer.kernel.C", vals[4], 4, rows, H, Nh, 2);
        if (!diag)
            TENSOR("layer.kernel.P", vals[5], 4, r, S, Nh, 2);
        TENSOR("layer.kernel.inv_dt", vals[6], 2, H, 1, 0, 0);
        if (!diag) {
            TENSOR("layer.kernel.l_kernel", &lk, 0, 0, 0, 0, 0);
            t[n - 1].dtype = S4IO_I64;
        }
        if (Flin > 0) {
            TENSOR(opt.plain_linear_names ? "output_linear.bias" : "output_linear.0.bias",
                   layer->b64, 1, Flin, 0, 0, 0);
            TENSOR(opt.plain_linear_names ? "output_linear.weight" : "output_linear.0.weight",
                   layer->W64, 2, Flin, Fa, 0, 0);
        }
#undef TENSOR
    }
    char *json = NULL;
    if (st == S4_OK && opt.embed_config)
        st = s4io_config_json_for_weights(&cfg, &json);
    if (st == S4_OK) {
        const char *meta[] = {"format", "pt", META_CONFIG_KEY, json};
        st = s4io_safetensors_write(path, t, n, meta, json ? 2 : 1);
    }
    s4__free(json);
    for (int i = 0; i < NPARAM; i++)
        s4__free(vals[i]);
    return st;
}
