/* s4 forward on a layer: convolution mode, chunked streaming or a step mode, .npy in and
 * out (whole models: model.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- s4 forward ---------------------------------------------------------------------- */

typedef enum run_mode { RUN_CONV, RUN_DENSE, RUN_LINEAR, RUN_DIAGONAL } run_mode;

/* Copies the time window [t0, t0 + T) of x (B sequences, F features, length L, in the
 * layer's layout) to / from a dense chunk buffer of the same layout. */
static void window(bool transposed, bool to_chunk, float *x, float *chunk, size_t B, size_t F,
                   size_t L, size_t t0, size_t T)
{
    for (size_t b = 0; b < B; b++) {
        if (transposed) {
            for (size_t f = 0; f < F; f++) {
                float *a = x + (b * F + f) * L + t0, *c = chunk + (b * F + f) * T;
                if (to_chunk)
                    memcpy(c, a, T * sizeof *c);
                else
                    memcpy(a, c, T * sizeof *c);
            }
        } else {
            float *a = x + (b * L + t0) * F, *c = chunk + b * T * F;
            if (to_chunk)
                memcpy(c, a, T * F * sizeof *c);
            else
                memcpy(a, c, T * F * sizeof *c);
        }
    }
}

static s4_status run_conv(s4_layer *layer, int B, int64_t L, double rate, const float *u,
                          float *y)
{
    s4_forward *plan = NULL;
    const s4_forward_options fopt = {.rate = rate, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
    s4_status st = s4_forward_create(layer, B, L, &fopt, &plan);
    if (st == S4_OK)
        st = s4_forward_execute(plan, u, y, NULL, NULL, 0);
    s4_forward_destroy(plan);
    return st;
}

/* Chunks of T: streamed convolution (mode conv) or the recurrence (step modes), with the
 * state carried from chunk to chunk; T = L is one chunk. Both at dt * rate. */
static s4_status run_chunked(s4_layer *layer, const s4_layer_config *c, run_mode mode, int B,
                             int64_t L, int64_t T, double rate, float *u, float *y, bool *oom)
{
    const size_t H = (size_t)c->ssm.H, F = (size_t)s4_layer_output_features(layer);
    const size_t Bz = (size_t)B;
    s4_stream *stream = NULL;
    s4_step *step = NULL;
    void *state = NULL;
    float *uc = NULL, *yc = NULL;
    s4_status st;
    *oom = false;
    if (mode == RUN_CONV) {
        const s4_forward_options fopt = {
            .rate = rate, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
        st = s4_stream_create(layer, B, T, &fopt, &stream);
        if (st == S4_OK)
            state = calloc(1, s4_stream_state_size(stream));
    } else {
        const s4_step_mode m = mode == RUN_DENSE    ? S4_STEP_DENSE
                               : mode == RUN_LINEAR ? S4_STEP_LINEAR
                                                    : S4_STEP_DIAGONAL;
        st = s4_step_create(layer, m, B, rate, &step);
        if (st == S4_OK) {
            state = calloc(1, s4_step_state_size(step) + sizeof(double));
            if (state && (st = s4_step_state_reset(step, state)) != S4_OK) {
                free(state);
                state = NULL;
            }
        }
    }
    if (st == S4_OK) {
        uc = malloc(Bz * H * (size_t)T * sizeof *uc);
        yc = malloc(Bz * F * (size_t)T * sizeof *yc);
        if (!state || !uc || !yc) {
            *oom = true;
            st = S4_ERR_OUT_OF_MEMORY;
        }
    }
    for (int64_t t0 = 0; t0 < L && st == S4_OK; t0 += T) {
        const int64_t Tc = L - t0 < T ? L - t0 : T;
        window(c->transposed, true, u, uc, Bz, H, (size_t)L, (size_t)t0, (size_t)Tc);
        st = mode == RUN_CONV ? s4_stream_execute(stream, state, uc, Tc, yc, NULL, 0)
                              : s4_step_run(step, state, uc, Tc, yc, NULL, 0);
        if (st == S4_OK)
            window(c->transposed, false, y, yc, Bz, F, (size_t)L, (size_t)t0, (size_t)Tc);
    }
    free(uc);
    free(yc);
    free(state);
    s4_stream_destroy(stream);
    s4_step_destroy(step);
    return st;
}

int s4cli_forward(const options *o)
{
    int rc = s4args_require(o->weights, "weights", "s4 help");
    if (!rc)
        rc = s4args_require(o->input, "input", "s4 help");
    if (!rc)
        rc = s4args_require(o->output, "output", "s4 help");
    if (rc)
        return rc;
    const int model = s4cli_is_model(o);
    if (model != 0)
        return model < 0 ? EXIT_FAILURE : s4cli_model_forward(o);
    run_mode mode = RUN_CONV;
    if (o->mode) {
        if (strcmp(o->mode, "conv") == 0)
            mode = RUN_CONV;
        else if (strcmp(o->mode, "dense") == 0)
            mode = RUN_DENSE;
        else if (strcmp(o->mode, "linear") == 0)
            mode = RUN_LINEAR;
        else if (strcmp(o->mode, "diagonal") == 0)
            mode = RUN_DIAGONAL;
        else
            return s4args_fail(EXIT_USAGE,
                        "option --mode: '%s' is not one of conv, dense, linear, diagonal",
                        o->mode);
    }
    int64_t chunk = 0;
    if (o->chunk && (rc = s4args_int(o->chunk, "chunk", 1, INT32_MAX / 2, &chunk)) != 0)
        return rc;
    double rate = 1.0;
    if ((rc = s4cli_parse_rate(o->rate, &rate)) != 0)
        return rc;

    s4_layer *layer = NULL;
    s4_layer_config c;
    if ((rc = s4cli_load_layer(o, &layer, &c)) != 0)
        return rc;
    if (c.bidirectional && (mode != RUN_CONV || chunk > 0)) {
        s4_layer_destroy(layer);
        return s4args_fail(EXIT_USAGE,
                    "%s: %s: the layer is bidirectional (config key 'bidirectional' is true): "
                    "its backward kernel reads future inputs, so it runs in --mode conv without "
                    "--chunk only",
                    o->weights, mode != RUN_CONV ? "--mode" : "--chunk");
    }

    float *u = NULL, *y = NULL;
    int ndim = 0;
    int64_t shape[S4_MAX_DIMS] = {0};
    s4_status st = s4_npy_read_f32(o->input, &u, &ndim, shape);
    if (st != S4_OK) {
        s4_layer_destroy(layer);
        return s4cli_fail_lib(st, NULL);
    }
    const int H = c.ssm.H;
    const int hdim = c.transposed ? 1 : 2, ldim = c.transposed ? 2 : 1;
    char found[128];
    s4cli_shape_text(found, sizeof found, ndim, shape);
    if (ndim != 3 || shape[hdim] != H || shape[0] < 1 || shape[ldim] < 1 || shape[0] > INT_MAX ||
        shape[ldim] > INT32_MAX) {
        rc = s4args_fail(EXIT_FAILURE,
                  "%s: shape %s: expected %s with d_model = %d (batch and length >= 1)", o->input,
                  found, c.transposed ? "(B, H, L)" : "(B, L, H) [transposed false]", H);
    }
    const int B = rc ? 0 : (int)shape[0];
    const int64_t L = rc ? 0 : shape[ldim];
    if (rc == 0 && mode == RUN_CONV) { /* the step modes run the untruncated recurrence */
        s4_layer_kernel_info ki;
        const s4_status kst = s4_layer_kernel_size(layer, L, rate, &ki);
        if (kst != S4_OK)
            rc = s4cli_fail_lib(kst, o->rate);
    }
    const size_t nu = (size_t)B * (size_t)H * (size_t)L;
    for (size_t i = 0; i < nu && rc == 0; i++)
        if (!isfinite(u[i]))
            rc = s4args_fail(EXIT_FAILURE, "%s: element %zu is %s: inputs must be finite float32 values",
                      o->input, i, isnan(u[i]) ? "NaN" : "infinite or beyond the float32 range");
    const int F = s4_layer_output_features(layer);
    size_t ny = 0, ybytes = 0;
    const bool too_big = __builtin_mul_overflow((size_t)B, (size_t)F, &ny) ||
                         __builtin_mul_overflow(ny, (size_t)L, &ny) ||
                         __builtin_mul_overflow(ny, sizeof *y, &ybytes);
    if (rc == 0 && (too_big || !(y = malloc(ybytes ? ybytes : 1))))
        rc = s4args_fail(EXIT_FAILURE, "%s: out of memory for %zu floats", o->output, ny);
    if (rc == 0) {
        bool oom = false;
        if (mode == RUN_CONV && chunk == 0)
            st = run_conv(layer, B, L, rate, u, y);
        else
            st = run_chunked(layer, &c, mode, B, L, chunk > 0 ? (chunk < L ? chunk : L) : L, rate,
                             u, y, &oom);
        if (st == S4_OK) {
            const int64_t yshape[3] = {B, c.transposed ? F : L, c.transposed ? L : F};
            st = s4_npy_write_f32(o->output, y, 3, yshape);
            if (st == S4_OK) {
                char sh[96];
                s4cli_shape_text(sh, sizeof sh, 3, yshape);
                printf("s4 forward: wrote %s: float32 %s (mode %s%s%s%s%s)\n", o->output, sh,
                       o->mode ? o->mode : "conv", chunk ? ", chunks of " : "",
                       chunk ? o->chunk : "", o->rate ? ", rate " : "",
                       o->rate ? o->rate : "");
            }
        }
        if (st != S4_OK && oom)
            rc = s4args_fail(EXIT_FAILURE, "%s: out of memory for B = %d, L = %lld", o->input, B,
                      (long long)L);
        else if (st == S4_ERR_INVALID_ARGUMENT && c.ssm.mode == S4_MODE_DIAG &&
                 (mode == RUN_DENSE || mode == RUN_LINEAR))
            rc = s4args_fail(EXIT_FAILURE, "%s (%s); --mode %s: %s is an S4D layer, which steps with "
                                    "--mode diagonal only",
                      s4_last_error(), s4_status_str(st), o->mode, o->weights);
        else if (st != S4_OK)
            rc = s4cli_fail_lib(st, o->rate);
    }
    free(y);
    s4_free(u);
    s4_layer_destroy(layer);
    return rc;
}

