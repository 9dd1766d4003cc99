/* s4 info / s4 forward on whole models (example.py's S4Model, docs/models.md): the config
 * says whether the weights are a model or a single layer. Public API only.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

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
        s4cli_fail(EXIT_FAILURE, "%s: cannot open", path);
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
        s4cli_fail(EXIT_FAILURE, "%s: cannot read (at most 1 MiB of JSON)", path);
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

int s4cli_model_info(const options *o)
{
    s4_model *m = NULL;
    s4_model_config c;
    const int loaded = load_model(o, &m, &c);
    if (loaded)
        return loaded;
    printf("weights          %s\n", o->weights);
    printf("config           %s\n", o->config ? o->config : "__metadata__ 'config' of the weights");
    printf("architecture     S4Model (example.py): encoder, %d residual %s layers, "
           "%s LayerNorm, mean pooling, decoder\n",
           c.n_layers, class_name(c.layer_class), c.prenorm ? "prenorm" : "postnorm");
    printf("  d_input        %d\n", c.d_input);
    printf("  d_output       %d\n", c.d_output);
    printf("  d_model  H     %d\n", c.d_model);
    printf("  n_layers       %d\n", c.n_layers);
    printf("  d_state  N     %d\n", c.layer.ssm.N);
    if (c.layer_class == S4_MODEL_S4BLOCK)
        printf("  layer          mode %s, %s, channels %d%s\n",
               c.layer.ssm.mode == S4_MODE_DIAG ? "diag (S4D kernel)" : "dplr (S4 kernel)",
               c.layer.bidirectional ? "bidirectional" : "causal", c.layer.channels,
               c.layer.bidirectional ? " (no recurrent mode)" : "");
    else
        printf("  layer          diagonal, zoh, B = 1, GELU, Conv1d + GLU\n");
    printf("  recurrent      %s\n",
           c.layer_class == S4_MODEL_S4BLOCK && c.layer.bidirectional
               ? "none (bidirectional layers read future inputs)"
               : c.layer_class == S4_MODEL_S4D || c.layer.ssm.mode == S4_MODE_DIAG
                     ? "diagonal step per layer"
                     : "linear (O(N)) step per layer");
    const int rc = s4cli_print_tensors(o->weights);
    s4_model_destroy(m);
    return rc;
}

int s4cli_model_forward(const options *o)
{
    if (o->chunk)
        return s4cli_fail(EXIT_USAGE, "option --chunk: not for models (use --mode recurrent "
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
            return s4cli_fail(EXIT_USAGE, "option --mode: '%s' is not one of conv, recurrent, "
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
    float *x = NULL, *y = NULL, *xt = NULL;
    s4_status st;
    int ndim = 0;
    int64_t shape[S4_MAX_DIMS] = {0};
    if ((st = s4_npy_read_f32(o->input, &x, &ndim, shape)) != S4_OK) {
        s4_model_destroy(m);
        return s4cli_fail_lib(st, NULL);
    }
    char found[128];
    s4cli_shape_text(found, sizeof found, ndim, shape);
    if (ndim != 3 || shape[2] != c.d_input || shape[0] < 1 || shape[1] < 1 ||
        shape[0] > (1 << 20) || shape[1] > ((int64_t)1 << 31))
        rc = s4cli_fail(EXIT_FAILURE,
                        "%s: shape %s: expected (B, L, d_input) with d_input = %d (batch and "
                        "length >= 1)",
                        o->input, found, c.d_input);
    const int B = rc ? 0 : (int)shape[0];
    const int64_t L = rc ? 0 : shape[1];
    const size_t nx = (size_t)B * (size_t)L * (size_t)c.d_input;
    for (size_t i = 0; i < nx && rc == 0; i++)
        if (!isfinite(x[i]))
            rc = s4cli_fail(EXIT_FAILURE, "%s: element %zu is %s: inputs must be finite float32 "
                                          "values",
                            o->input, i, isnan(x[i]) ? "NaN" : "infinite or beyond float32");
    if (rc == 0 && !(y = malloc((size_t)B * (size_t)c.d_output * sizeof *y)))
        rc = s4cli_fail(EXIT_FAILURE, "out of memory");
    if (rc == 0 && conv) {
        const s4_forward_options fo = {.rate = rate, .planner = S4_PLANNER_ESTIMATE};
        s4_model_forward *p = NULL;
        st = s4_model_forward_create(m, B, L, &fo, &p);
        if (st == S4_OK)
            st = s4_model_forward_execute(p, x, y, NULL, 0);
        s4_model_forward_destroy(p);
    } else if (rc == 0) {
        const s4_step_options so = {.rate = rate};
        s4_model_step *p = NULL;
        void *state = NULL;
        st = s4_model_step_create(m, mode, B, &so, &p);
        if (st == S4_OK) {
            state = malloc(s4_model_step_state_size(p));
            xt = malloc((size_t)B * (size_t)c.d_input * sizeof *xt);
            if (!state || !xt)
                rc = s4cli_fail(EXIT_FAILURE, "out of memory");
            else
                st = s4_model_step_state_reset(p, state);
        }
        const size_t din = (size_t)c.d_input;
        for (int64_t t = 0; t < L && st == S4_OK && rc == 0; t++) {
            for (int b = 0; b < B; b++)
                memcpy(xt + (size_t)b * din, x + ((size_t)b * (size_t)L + (size_t)t) * din,
                       din * sizeof *xt);
            st = s4_model_step_execute(p, state, xt, t + 1 == L ? y : NULL, NULL, 0);
        }
        free(state);
        s4_model_step_destroy(p);
    }
    if (rc == 0 && st != S4_OK)
        rc = s4cli_fail_lib(st, o->rate);
    if (rc == 0) {
        const int64_t ys[2] = {B, c.d_output};
        st = s4_npy_write_f32(o->output, y, 2, ys);
        if (st != S4_OK)
            rc = s4cli_fail_lib(st, NULL);
        else
            printf("s4 forward: wrote %s: float32 (%d, %d) logits (S4Model, mode %s%s%s)\n",
                   o->output, B, c.d_output, o->mode ? o->mode : "conv",
                   o->rate ? ", rate " : "", o->rate ? o->rate : "");
    }
    free(xt);
    free(y);
    s4_free(x);
    s4_model_destroy(m);
    return rc;
}
