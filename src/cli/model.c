/* s4 info / s4 forward on whole models (example.py's S4Model, docs/models.md): the config
 * says whether the weights are a model or a single layer. Public API only.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole text of a small file, malloc'ed; NULL after reporting the error. */
static char *read_small(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        s4args_fail(EXIT_FAILURE, "%s: cannot open", path);
        return NULL;
    }
    char *text = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= (1L << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) != NULL &&
        fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = '\0';
    } else {
        free(text);
        text = NULL;
        s4args_fail(EXIT_FAILURE, "%s: cannot read (at most 1 MiB of JSON)", path);
    }
    fclose(f);
    return text;
}

int s4cli_is_model(const options *o)
{
    if (o->config) {
        char *text = read_small(o->config);
        if (!text)
            return -1;
        const int m = s4_config_is_model(text);
        free(text);
        return m;
    }
    s4_tensors *f = NULL;
    const s4_status st = s4_tensors_open(o->weights, &f);
    if (st != S4_OK) {
        s4cli_fail_lib(st, NULL);
        return -1;
    }
    const char *meta = s4_tensors_metadata(f, "config");
    const int m = meta && s4_config_is_model(meta);
    s4_tensors_close(f);
    return m;
}

/* The model of --weights and --config, and its config; non-zero after reporting. */
static int load_model(const options *o, s4_model **m, s4_model_config *c)
{
    s4_status st = s4_model_load(o->weights, o->config, m);
    if (st == S4_OK && (st = s4_model_get_config(*m, c)) != S4_OK) {
        s4_model_destroy(*m);
        *m = NULL;
    }
    return st == S4_OK ? 0 : s4cli_fail_lib(st, NULL);
}

static const char *class_name(s4_model_layer c)
{
    return c == S4_MODEL_S4D ? "S4D (models/s4/s4d.py)" : "S4Block";
}

static void print_layer(const s4_model_config *c)
{
    printf("  d_state  N     %d\n", c->layer.ssm.N);
    if (c->layer_class == S4_MODEL_S4BLOCK)
        printf("  layer          mode %s, %s, channels %d%s\n",
               c->layer.ssm.mode == S4_MODE_DIAG ? "diag (S4D kernel)" : "dplr (S4 kernel)",
               c->layer.bidirectional ? "bidirectional" : "causal", c->layer.channels,
               c->layer.bidirectional ? " (no recurrent mode)" : "");
    else
        printf("  layer          diagonal, zoh, B = 1, GELU, Conv1d + GLU\n");
    printf("  recurrent      %s\n",
           c->layer_class == S4_MODEL_S4BLOCK && c->layer.bidirectional
               ? "none (bidirectional layers read future inputs)"
               : c->layer_class == S4_MODEL_S4D || c->layer.ssm.mode == S4_MODE_DIAG
                     ? "diagonal step per layer"
                     : "linear (O(N)) step per layer");
}

int s4cli_model_info(const options *o)
{
    s4_model *m = NULL;
    s4_model_config c;
    const int loaded = load_model(o, &m, &c);
    if (loaded)
        return loaded;
    printf("weights          %s\n", o->weights);
    printf("config           %s\n", o->config ? o->config : "__metadata__ 'config' of the weights");
    if (c.architecture == S4_ARCH_S4MODEL) {
        printf("architecture     S4Model (example.py): encoder, %d residual %s layers, "
               "%s LayerNorm, mean pooling, decoder\n",
               c.n_layers, class_name(c.layer_class), c.prenorm ? "prenorm" : "postnorm");
        printf("  d_input        %d\n", c.d_input);
        printf("  d_output       %d\n", c.d_output);
    } else {
        const int lm = c.architecture == S4_ARCH_SASHIMI_LM;
        printf("architecture     %s (models/sashimi/sashimi.py)%s\n", lm ? "SashimiLM" : "Sashimi",
               lm ? ": embedding, Sashimi backbone, decoder" : "");
        printf("  pool           [");
        for (int i = 0; i < c.n_pool; i++)
            printf("%s%d", i ? ", " : "", c.pool[i]);
        printf("], expand %d, ff %d%s\n", c.expand, c.ff, c.unet ? ", U-Net" : "");
        if (lm)
            printf("  tokens         %d (mu-law), %d Hz\n", c.n_tokens, c.sample_rate);
    }
    printf("  d_model  H     %d\n", c.d_model);
    printf("  n_layers       %d\n", c.n_layers);
    print_layer(&c);
    const int rc = s4cli_print_tensors(o->weights);
    s4_model_destroy(m);
    return rc;
}

/* The input of `s4 forward`: floats (B, L, d_input) or, for a token model, ints (B, L).
 * Non-zero after reporting. */
static int read_input(const options *o, const s4_model_config *c, float **x, int32_t **tok,
                      int *B, int64_t *L)
{
    const int lm = c->architecture == S4_ARCH_SASHIMI_LM;
    int ndim = 0;
    int64_t shape[S4_MAX_DIMS] = {0};
    s4_status st;
    int64_t *t64 = NULL;
    if (lm)
        st = s4_npy_read_i64(o->input, &t64, &ndim, shape);
    else
        st = s4_npy_read_f32(o->input, x, &ndim, shape);
    if (st != S4_OK)
        return s4cli_fail_lib(st, NULL);
    char found[128];
    s4cli_shape_text(found, sizeof found, ndim, shape);
    int rc = 0;
    if (ndim != (lm ? 2 : 3) || (!lm && shape[2] != c->d_input) || shape[0] < 1 ||
        shape[1] < 1 || shape[0] > (1 << 20) || shape[1] > ((int64_t)1 << 31))
        rc = lm ? s4args_fail(EXIT_FAILURE, "%s: shape %s: expected tokens (B, L) (batch and "
                                           "length >= 1)",
                             o->input, found)
                : s4args_fail(EXIT_FAILURE,
                             "%s: shape %s: expected (B, L, %s) with %s = %d (batch and length "
                             ">= 1)",
                             o->input, found, c->architecture ? "d_model" : "d_input",
                             c->architecture ? "d_model" : "d_input", c->d_input);
    *B = rc ? 0 : (int)shape[0];
    *L = rc ? 0 : shape[1];
    const size_t n = (size_t)*B * (size_t)*L;
    if (lm && rc == 0) {
        if (!(*tok = malloc(n * sizeof **tok)))
            rc = s4args_fail(EXIT_FAILURE, "out of memory");
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (t64[i] < 0 || t64[i] >= c->n_tokens)
                rc = s4args_fail(EXIT_FAILURE, "%s: element %zu = %lld is not a token in [0, %d)",
                                o->input, i, (long long)t64[i], c->n_tokens);
            else
                (*tok)[i] = (int32_t)t64[i];
        }
    }
    s4_free(t64);
    for (size_t i = 0; !lm && rc == 0 && i < n * (size_t)c->d_input; i++)
        if (!isfinite((*x)[i]))
            rc = s4args_fail(EXIT_FAILURE, "%s: element %zu is %s: inputs must be finite float32 "
                                          "values",
                            o->input, i, isnan((*x)[i]) ? "NaN" : "infinite or beyond float32");
    return rc;
}

int s4cli_model_forward(const options *o)
{
    if (o->chunk)
        return s4args_fail(EXIT_USAGE, "option --chunk: not for models (use --mode recurrent "
                                      "to run them one time step at a time)");
    s4_model_step_mode mode = S4_MODEL_STEP_NATURAL;
    bool conv = true;
    if (o->mode && strcmp(o->mode, "conv") != 0) {
        conv = false;
        if (strcmp(o->mode, "recurrent") == 0)
            mode = S4_MODEL_STEP_NATURAL;
        else if (strcmp(o->mode, "dense") == 0)
            mode = S4_MODEL_STEP_DENSE;
        else if (strcmp(o->mode, "linear") == 0)
            mode = S4_MODEL_STEP_LINEAR;
        else if (strcmp(o->mode, "diagonal") == 0)
            mode = S4_MODEL_STEP_DIAGONAL;
        else
            return s4args_fail(EXIT_USAGE, "option --mode: '%s' is not one of conv, recurrent, "
                                          "dense, linear, diagonal",
                              o->mode);
    }
    double rate = 1.0;
    int rc = s4cli_parse_rate(o->rate, &rate);
    if (rc)
        return rc;
    s4_model *m = NULL;
    s4_model_config c;
    if ((rc = load_model(o, &m, &c)) != 0)
        return rc;
    float *x = NULL, *y = NULL, *xt = NULL, *yt = NULL;
    int32_t *tok = NULL, *tt = NULL;
    int B = 0;
    int64_t L = 0;
    s4_status st = S4_OK;
    rc = read_input(o, &c, &x, &tok, &B, &L);
    /* Per sequence (S4Model) or per time step (Sashimi, SashimiLM). */
    const bool seq = c.architecture != S4_ARCH_S4MODEL;
    const size_t D = (size_t)c.d_output, din = (size_t)c.d_input;
    const size_t ny = (size_t)B * (seq ? (size_t)L : 1) * D;
    if (rc == 0 && !(y = malloc(ny * sizeof *y)))
        rc = s4args_fail(EXIT_FAILURE, "out of memory");
    if (rc == 0 && conv) {
        const s4_forward_options fo = {.rate = rate, .planner = S4_PLANNER_ESTIMATE};
        s4_model_forward *p = NULL;
        st = s4_model_forward_create(m, B, L, &fo, &p);
        if (st == S4_OK)
            st = tok ? s4_model_forward_execute_tokens(p, tok, y, NULL, 0)
                     : s4_model_forward_execute(p, x, y, NULL, 0);
        s4_model_forward_destroy(p);
    } else if (rc == 0) {
        const s4_step_options so = {.rate = rate};
        s4_model_step *p = NULL;
        void *state = NULL;
        st = s4_model_step_create(m, mode, B, &so, &p);
        if (st == S4_OK) {
            state = malloc(s4_model_step_state_size(p));
            xt = malloc((size_t)B * din * sizeof *xt);
            tt = malloc((size_t)B * sizeof *tt);
            yt = malloc((size_t)B * D * sizeof *yt);
            if (!state || !xt || !tt || !yt)
                rc = s4args_fail(EXIT_FAILURE, "out of memory");
            else
                st = s4_model_step_state_reset(p, state);
        }
        for (int64_t t = 0; t < L && st == S4_OK && rc == 0; t++) {
            for (int b = 0; b < B; b++) {
                const size_t bt = (size_t)b * (size_t)L + (size_t)t;
                if (tok)
                    tt[b] = tok[bt];
                else
                    memcpy(xt + (size_t)b * din, x + bt * din, din * sizeof *xt);
            }
            float *out = seq ? yt : t + 1 == L ? y : NULL;
            st = tok ? s4_model_step_execute_tokens(p, state, tt, out, NULL, 0)
                     : s4_model_step_execute(p, state, xt, out, NULL, 0);
            for (int b = 0; seq && st == S4_OK && b < B; b++)
                memcpy(y + ((size_t)b * (size_t)L + (size_t)t) * D, yt + (size_t)b * D,
                       D * sizeof *y);
        }
        free(state);
        s4_model_step_destroy(p);
    }
    if (rc == 0 && st != S4_OK)
        rc = s4cli_fail_lib(st, o->rate);
    if (rc == 0) {
        const int64_t ys[3] = {B, seq ? L : (int64_t)D, (int64_t)D};
        st = s4_npy_write_f32(o->output, y, seq ? 3 : 2, ys);
        static const char *const names[] = {"S4Model", "Sashimi", "SashimiLM"};
        if (st != S4_OK)
            rc = s4cli_fail_lib(st, NULL);
        else if (seq)
            printf("s4 forward: wrote %s: float32 (%d, %lld, %zu) %s (%s, mode %s%s%s)\n",
                   o->output, B, (long long)L, D, tok ? "logits" : "outputs",
                   names[c.architecture], o->mode ? o->mode : "conv", o->rate ? ", rate " : "",
                   o->rate ? o->rate : "");
        else
            printf("s4 forward: wrote %s: float32 (%d, %zu) logits (S4Model, mode %s%s%s)\n",
                   o->output, B, D, o->mode ? o->mode : "conv", o->rate ? ", rate " : "",
                   o->rate ? o->rate : "");
    }
    free(xt), free(yt), free(tt), free(tok), free(y);
    s4_free(x);
    s4_model_destroy(m);
    return rc;
}
