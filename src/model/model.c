/* example.py's S4Model (docs/models.md): configuration, parameters, and the pointwise parts
 * both modes share (encoder, LayerNorm, decoder). The S4 layers are s4_layer objects; the
 * minimal S4D of models/s4/s4d.py is an s4_layer in diagonal mode (zoh, B = 1).
 * SPDX-License-Identifier: Apache-2.0 */
#include "model/model.h"
#include "model/sashimi.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void s4_model_config_default(s4_model_config *config)
{
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    config->d_input = 1;
    config->d_output = 10;
    config->d_model = 256;
    config->n_layers = 4;
    config->prenorm = 0;
    config->layer_class = S4_MODEL_S4D;
    s4_layer_config_default(&config->layer);
    config->layer.ssm.H = 256;
    config->layer.ssm.N = 64;
    config->layer.ssm.mode = S4_MODE_DIAG;
}

/* The layer config the model runs: for S4D the minimal layer's fixed architecture around
 * the config's d_state and dt range; for S4Block the block's own. Always (B, L, H). */
s4_layer_config s4__model_layer_config(const s4_model_config *c)
{
    s4_layer_config l = c->layer;
    if (c->layer_class == S4_MODEL_S4D) {
        s4_layer_config_default(&l);
        l.ssm.N = c->layer.ssm.N;
        l.ssm.dt_min = c->layer.ssm.dt_min;
        l.ssm.dt_max = c->layer.ssm.dt_max;
        l.ssm.mode = S4_MODE_DIAG;
        l.ssm.disc = S4_DISC_ZOH;
        l.ssm.init = S4_INIT_DIAG_LIN;
        l.ssm.n_ssm = c->d_model;
        l.ssm.dt_transform = S4_TRANSFORM_EXP;
        l.ssm.real_transform = S4_TRANSFORM_EXP;
        l.ssm.imag_transform = S4_TRANSFORM_NONE;
        l.channels = 1;
        l.bidirectional = 0;
        l.activation = S4_ACT_GELU;
        l.final_act = S4_FINAL_GLU;
        l.l_max = 0;
    }
    l.ssm.H = c->d_model;
    /* (B, H, L), as the reference runs them: the convolution needs no transposes, and the
     * model's pointwise parts work across rows (forward.c). A step's [B x H] is both
     * layouts. */
    l.transposed = 1;
    return l;
}

s4_status s4__model_check_config(const char *fn, const s4_model_config *c)
{
    if (!c)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: config is NULL", fn);
    if (c->architecture == S4_ARCH_SASHIMI || c->architecture == S4_ARCH_SASHIMI_LM)
        return s4__sashimi_check_config(fn, c);
    if (c->architecture != S4_ARCH_S4MODEL)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: architecture = %d is unknown", fn,
                        (int)c->architecture);
    if (c->d_input < 1 || c->d_output < 1 || c->d_model < 1 || c->n_layers < 0 ||
        c->d_input > (1 << 20) || c->d_output > (1 << 20) || c->d_model > (1 << 16) ||
        c->n_layers > 4096)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: d_input = %d, d_output = %d, d_model = %d, n_layers = %d: sizes "
                        "must be >= 1 (n_layers >= 0) and at most 2^20, 2^20, 2^16, 4096",
                        fn, c->d_input, c->d_output, c->d_model, c->n_layers);
    if (c->prenorm != 0 && c->prenorm != 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: prenorm = %d must be 0 or 1", fn,
                        c->prenorm);
    if (c->layer_class != S4_MODEL_S4D && c->layer_class != S4_MODEL_S4BLOCK)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: layer_class = %d is unknown", fn,
                        (int)c->layer_class);
    if (c->layer_class == S4_MODEL_S4BLOCK && c->layer.ssm.H != c->d_model)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: layer.ssm.H = %d must equal d_model = %d", fn, c->layer.ssm.H,
                        c->d_model);
    if (c->layer_class == S4_MODEL_S4BLOCK) {
        /* The residual adds the layer's output to its input: H features out. */
        const s4_layer_config *l = &c->layer;
        const int Cp = l->channels * (l->activation == S4_ACT_GLU ? 2 : 1);
        const int F = l->final_act == S4_FINAL_NONE
                          ? (l->activation == S4_ACT_GLU ? Cp * c->d_model / 2 : Cp * c->d_model)
                          : c->d_model;
        if (F != c->d_model)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: layer.final_act = none with %d output features: the residual "
                            "needs d_model = %d",
                            fn, F, c->d_model);
    }
    return S4_OK;
}

static s4_status finite_array(const char *fn, const char *name, const double *a, size_t n)
{
    if (!a)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: arrays->%s is NULL", fn, name);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: arrays->%s[%zu] = %g is not finite",
                            fn, name, i, a[i]);
    return S4_OK;
}

static float *copy_f(const double *a, size_t n)
{
    float *f = s4__alloc(n, sizeof *f);
    if (f)
        for (size_t i = 0; i < n; i++)
            f[i] = (float)a[i];
    return f;
}

void s4_model_destroy(s4_model *m)
{
    if (!m)
        return;
    if (m->layers)
        for (int i = 0; i < m->cfg.n_layers; i++)
            s4_layer_destroy(m->layers[i]);
    s4__free(m->layers);
    s4__free(m->enc_W);
    s4__free(m->enc_b);
    s4__free(m->ln_w);
    s4__free(m->ln_b);
    s4__free(m->dec_W);
    s4__free(m->dec_b);
    s4__sashimi_free(m->sash);
    s4__free(m);
}

/* The pointwise arrays, checked (finite, present). */
static s4_status check_arrays(const char *fn, const s4_model_config *config,
                              const s4_model_arrays *arrays)
{
    const size_t H = (size_t)config->d_model, din = (size_t)config->d_input;
    const size_t dout = (size_t)config->d_output, nl = (size_t)config->n_layers;
    s4_status st;
    if ((st = finite_array(fn, "encoder_W", arrays->encoder_W, H * din)) != S4_OK ||
        (st = finite_array(fn, "encoder_b", arrays->encoder_b, H)) != S4_OK ||
        (st = finite_array(fn, "decoder_W", arrays->decoder_W, dout * H)) != S4_OK ||
        (st = finite_array(fn, "decoder_b", arrays->decoder_b, dout)) != S4_OK)
        return st;
    if (nl > 0 && ((st = finite_array(fn, "norm_w", arrays->norm_w, nl * H)) != S4_OK ||
                   (st = finite_array(fn, "norm_b", arrays->norm_b, nl * H)) != S4_OK))
        return st;
    return S4_OK;
}

s4_status s4__model_assemble(const char *fn, const s4_model_config *config,
                             const s4_model_arrays *arrays, s4_layer **layers, s4_model **out)
{
    const size_t H = (size_t)config->d_model, din = (size_t)config->d_input;
    const size_t dout = (size_t)config->d_output, nl = (size_t)config->n_layers;
    s4_model *m = s4__calloc(1, sizeof *m);
    if (!m) {
        for (size_t i = 0; i < nl; i++)
            s4_layer_destroy(layers[i]);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    m->cfg = *config;
    m->layers = s4__calloc(nl ? nl : 1, sizeof *m->layers);
    if (m->layers)
        for (size_t i = 0; i < nl; i++)
            m->layers[i] = layers[i];
    else
        for (size_t i = 0; i < nl; i++)
            s4_layer_destroy(layers[i]);
    m->enc_W = copy_f(arrays->encoder_W, H * din);
    m->enc_b = copy_f(arrays->encoder_b, H);
    m->dec_W = copy_f(arrays->decoder_W, dout * H);
    m->dec_b = copy_f(arrays->decoder_b, dout);
    m->ln_w = nl ? copy_f(arrays->norm_w, nl * H) : s4__calloc(1, sizeof(float));
    m->ln_b = nl ? copy_f(arrays->norm_b, nl * H) : s4__calloc(1, sizeof(float));
    if (!m->layers || !m->enc_W || !m->enc_b || !m->dec_W || !m->dec_b || !m->ln_w ||
        !m->ln_b) {
        s4_model_destroy(m);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the parameters", fn);
    }
    *out = m;
    return S4_OK;
}

s4_status s4_model_create_from_arrays(const s4_model_config *config,
                                      const s4_model_arrays *arrays, s4_model **out)
{
    static const char fn[] = "s4_model_create_from_arrays";
    s4_status st = s4__model_check_config(fn, config);
    if (st != S4_OK)
        return st;
    if (!arrays || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !arrays ? "arrays" : "out");
    if (config->architecture != S4_ARCH_S4MODEL)
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "%s: a Sashimi model is made by s4_model_load or s4_model_create", fn);
    if ((st = check_arrays(fn, config, arrays)) != S4_OK)
        return st;
    const size_t nl = (size_t)config->n_layers;
    if (nl > 0 && !arrays->layers)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: arrays->layers is NULL", fn);
    s4_layer **layers = s4__calloc(nl ? nl : 1, sizeof *layers);
    if (!layers)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    const s4_layer_config lc = s4__model_layer_config(config);
    for (size_t i = 0; i < nl && st == S4_OK; i++) {
        st = s4_layer_create_from_arrays(&lc, &arrays->layers[i], &layers[i]);
        if (st != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            st = s4__fail(st, "%s: layer %zu: %s", fn, i, msg);
        }
    }
    if (st == S4_OK)
        st = s4__model_assemble(fn, config, arrays, layers, out);
    else
        for (size_t i = 0; i < nl; i++)
            s4_layer_destroy(layers[i]);
    s4__free(layers);
    return st;
}

/* A fresh S4Model: every array from one seeded generator, the layers from seeds drawn
 * from it (s4_model_create). */
static s4_status create_s4model(const char *fn, const s4_model_config *c, uint64_t seed,
                                s4_model **out)
{
    const size_t H = (size_t)c->d_model, din = (size_t)c->d_input;
    const size_t dout = (size_t)c->d_output, nl = (size_t)c->n_layers;
    s4_rng rng;
    s4__rng_seed(&rng, seed);
    double *eW = s4__alloc(H * din + H, sizeof *eW), *dW = s4__alloc(dout * H + dout, sizeof *dW);
    double *ln = s4__alloc(nl ? 2 * nl * H : 1, sizeof *ln);
    s4_layer **layers = s4__calloc(nl ? nl : 1, sizeof *layers);
    s4_status st = S4_OK;
    if (!eW || !dW || !ln || !layers)
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (size_t i = 0; st == S4_OK && i < H * din + H; i++)
        eW[i] = (2.0 * s4__rng_uniform(&rng) - 1.0) / sqrt((double)din);
    for (size_t i = 0; st == S4_OK && i < dout * H + dout; i++)
        dW[i] = (2.0 * s4__rng_uniform(&rng) - 1.0) / sqrt((double)H);
    for (size_t i = 0; st == S4_OK && i < nl * H; i++)
        ln[i] = 1.0, ln[nl * H + i] = 0.0;
    s4_layer_config lc = s4__model_layer_config(c);
    for (size_t i = 0; st == S4_OK && i < nl; i++) {
        lc.ssm.seed = s4__rng_next(&rng);
        if ((st = s4_layer_create(&lc, &layers[i])) != S4_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", s4_last_error());
            st = s4__fail(st, "%s: layer %zu: %s", fn, i, msg);
        }
    }
    if (st == S4_OK) {
        const s4_model_arrays a = {.encoder_W = eW,
                                   .encoder_b = eW + H * din,
                                   .norm_w = ln,
                                   .norm_b = ln + nl * H,
                                   .decoder_W = dW,
                                   .decoder_b = dW + dout * H};
        st = s4__model_assemble(fn, c, &a, layers, out); /* owns the layers */
    } else if (layers) {
        for (size_t i = 0; i < nl; i++)
            s4_layer_destroy(layers[i]);
    }
    s4__free(eW), s4__free(dW), s4__free(ln), s4__free(layers);
    return st;
}

s4_status s4_model_create(const s4_model_config *config, uint64_t seed, s4_model **out)
{
    static const char fn[] = "s4_model_create";
    s4_status st = s4__model_check_config(fn, config);
    if (st != S4_OK)
        return st;
    if (!out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    if (config->architecture == S4_ARCH_S4MODEL)
        return create_s4model(fn, config, seed, out);
    s4_model *m = s4__calloc(1, sizeof *m);
    if (!m)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    m->cfg = *config;
    if ((st = s4__sashimi_create(fn, config, seed, &m->sash)) != S4_OK) {
        s4__free(m);
        return st;
    }
    *out = m;
    return S4_OK;
}

s4_status s4_model_get_config(const s4_model *model, s4_model_config *config)
{
    if (!model || !config)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_model_get_config: %s is NULL",
                        !model ? "model" : "config");
    *config = model->cfg;
    return S4_OK;
}

const s4_layer *s4_model_layer_at(const s4_model *model, int i)
{
    if (!model || model->sash || i < 0 || i >= model->cfg.n_layers)
        return NULL;
    return model->layers[i];
}

/* ---- pointwise parts ------------------------------------------------------------- */
/* Each output element is one fixed-order sum (double accumulation), so splitting rows
 * between threads never changes a bit. */

void s4__model_encode(const s4_model *m, const float *x, float *h, size_t rows)
{
    const size_t H = (size_t)m->cfg.d_model, din = (size_t)m->cfg.d_input;
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < H; o++) {
            double acc = m->enc_b[o];
            for (size_t k = 0; k < din; k++)
                acc += (double)m->enc_W[o * din + k] * x[r * din + k];
            h[r * H + o] = (float)acc;
        }
}

/* torch.nn.LayerNorm over the H features of each row: biased variance, eps 1e-5. The mean
 * and variance in double (two passes), so the float result is correctly rounded but for
 * the final product. */
void s4__model_norm(const s4_model *m, int i, float *h, size_t rows)
{
    const size_t H = (size_t)m->cfg.d_model;
    const float *w = m->ln_w + (size_t)i * H, *b = m->ln_b + (size_t)i * H;
    for (size_t r = 0; r < rows; r++) {
        float *v = h + r * H;
        double mean = 0.0, var = 0.0;
        for (size_t o = 0; o < H; o++)
            mean += v[o];
        mean /= (double)H;
        for (size_t o = 0; o < H; o++)
            var += ((double)v[o] - mean) * ((double)v[o] - mean);
        const double inv = 1.0 / sqrt(var / (double)H + S4_LN_EPS);
        for (size_t o = 0; o < H; o++)
            v[o] = (float)(((double)v[o] - mean) * inv * w[o] + b[o]);
    }
}

/* The same LayerNorm on the columns of one sequence h [H x L] (feature-major), columns
 * [t0, t1): per column the same operations in the same order as s4__model_norm on a row,
 * so both modes normalise alike. */
void s4__model_norm_cols(const s4_model *m, int i, float *h, size_t L, size_t t0, size_t t1)
{
    const size_t H = (size_t)m->cfg.d_model;
    s4__layernorm_cols(m->ln_w + (size_t)i * H, m->ln_b + (size_t)i * H, H, h, L, t0, t1);
}

/* A block of columns at a time keeps the sums in cache and the loops over t vectorise. Each
 * column's sums over the H features run in 8 partial sums (feature o into o mod 8), added
 * in a fixed tree: independent chains for a single column (a recurrent step: one serial
 * chain of H additions was 8% of one-stream generation), and the same order, so the same
 * bits, for a column in any block of any width. */
static double sum8(const double (*ps)[64], size_t t)
{
    return ((ps[0][t] + ps[4][t]) + (ps[2][t] + ps[6][t])) +
           ((ps[1][t] + ps[5][t]) + (ps[3][t] + ps[7][t]));
}

/* One column (a recurrent step of one stream): the same partial sums and tree as below, so
 * the same bits, with the 8 chains side by side in one vector. */
static void layernorm_one(const float *w, const float *b, size_t H, float *h, size_t L)
{
    double a[8] = {0}, v[8] = {0};
    size_t o = 0;
    for (; o + 8 <= H; o += 8)
        for (size_t k = 0; k < 8; k++)
            a[k] += h[(o + k) * L];
    for (; o < H; o++)
        a[o % 8] += h[o * L];
    const double mean = (((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))) /
                        (double)H;
    for (o = 0; o + 8 <= H; o += 8)
        for (size_t k = 0; k < 8; k++) {
            const double d = (double)h[(o + k) * L] - mean;
            v[k] += d * d;
        }
    for (; o < H; o++) {
        const double d = (double)h[o * L] - mean;
        v[o % 8] += d * d;
    }
    const double inv =
        1.0 / sqrt((((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))) /
                       (double)H +
                   S4_LN_EPS);
    for (o = 0; o < H; o++)
        h[o * L] = (float)(((double)h[o * L] - mean) * inv * w[o] + b[o]);
}

void s4__layernorm_cols(const float *w, const float *b, size_t H, float *h, size_t L,
                        size_t t0, size_t t1)
{
    enum { TB = 64, K = 8 };
    if (t1 - t0 == 1) {
        layernorm_one(w, b, H, h + t0, L);
        return;
    }
    double ps[K][TB], mean[TB], inv[TB];
    for (size_t tb = t0; tb < t1; tb += TB) {
        const size_t n = t1 - tb < TB ? t1 - tb : TB;
        for (size_t k = 0; k < K; k++)
            for (size_t t = 0; t < n; t++)
                ps[k][t] = 0.0;
        for (size_t o = 0; o < H; o++) {
            double *acc = ps[o % K];
            for (size_t t = 0; t < n; t++)
                acc[t] += h[o * L + tb + t];
        }
        for (size_t t = 0; t < n; t++)
            mean[t] = sum8((const double (*)[TB])ps, t) / (double)H;
        for (size_t k = 0; k < K; k++)
            for (size_t t = 0; t < n; t++)
                ps[k][t] = 0.0;
        for (size_t o = 0; o < H; o++) {
            double *acc = ps[o % K];
            for (size_t t = 0; t < n; t++) {
                const double d = (double)h[o * L + tb + t] - mean[t];
                acc[t] += d * d;
            }
        }
        for (size_t t = 0; t < n; t++)
            inv[t] = 1.0 / sqrt(sum8((const double (*)[TB])ps, t) / (double)H + S4_LN_EPS);
        for (size_t o = 0; o < H; o++)
            for (size_t t = 0; t < n; t++)
                h[o * L + tb + t] =
                    (float)(((double)h[o * L + tb + t] - mean[t]) * inv[t] * w[o] + b[o]);
    }
}

void s4__model_decode(const s4_model *m, const double *sum, double scale, float *logits,
                      size_t rows)
{
    const size_t H = (size_t)m->cfg.d_model, dout = (size_t)m->cfg.d_output;
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < dout; o++) {
            double acc = 0.0;
            for (size_t k = 0; k < H; k++)
                acc += (double)m->dec_W[o * H + k] * (sum[r * H + k] * scale);
            logits[r * dout + o] = (float)(acc + m->dec_b[o]);
        }
}
