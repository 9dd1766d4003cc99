/* s4-classify: run a trained example.py S4Model classifier (docs/models.md).
 *
 * Loads the model (params.safetensors from tools/s4-convert.py, with its config.json or the
 * config embedded in the file), reads a batch X (B, L, d_input) from a .npy file (or, with
 * no file, makes a deterministic one), and
 *   1. classifies the batch in convolution mode (whole sequences at once),
 *   2. classifies it in recurrent mode (one time step at a time, every layer in its step
 *      mode) -- the same logits,
 *   3. streams the first sequence step by step and prints the running prediction as the
 *      input arrives (streaming classification: after T steps the logits are those of the
 *      first T inputs).
 * Usage: s4-classify WEIGHTS.safetensors [CONFIG.json|-] [X.npy]
 * SPDX-License-Identifier: Apache-2.0 */
#include "s4.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(s4_status st, const char *what)
{
    if (st == S4_OK)
        return 0;
    fprintf(stderr, "s4-classify: %s: %s: %s\n", what, s4_status_str(st), s4_last_error());
    return 1;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: s4-classify WEIGHTS.safetensors [CONFIG.json|-] [X.npy]\n");
        return 2;
    }
    const char *config = argc > 2 && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
    s4_model *model = NULL;
    if (check(s4_model_load(argv[1], config, &model), argv[1]))
        return 1;
    s4_model_config c;
    if (check(s4_model_get_config(model, &c), "config"))
        return 1;

    float *x = NULL;
    int B = 2;
    int64_t L = 64;
    if (argc > 3) {
        int ndim = 0;
        int64_t shape[S4_MAX_DIMS];
        if (check(s4_npy_read_f32(argv[3], &x, &ndim, shape), argv[3]))
            return 1;
        if (ndim != 3 || shape[2] != c.d_input || shape[0] < 1 || shape[1] < 1) {
            fprintf(stderr, "s4-classify: %s: expected (B, L, %d)\n", argv[3], c.d_input);
            return 1;
        }
        B = (int)shape[0];
        L = shape[1];
    } else {
        x = malloc((size_t)B * (size_t)L * (size_t)c.d_input * sizeof *x);
        if (!x)
            return 1;
        for (size_t i = 0; i < (size_t)B * (size_t)L * (size_t)c.d_input; i++)
            x[i] = (float)sin(0.05 * (double)i);
    }
    const size_t din = (size_t)c.d_input, dout = (size_t)c.d_output;
    float *conv = malloc((size_t)B * dout * sizeof *conv);
    float *rec = malloc((size_t)B * dout * sizeof *rec);
    float *xt = malloc((size_t)B * din * sizeof *xt);
    if (!conv || !rec || !xt)
        return 1;
    printf("model: S4Model, %d %s layers, d_model %d, d_input %d, d_output %d; batch %d x %lld "
           "steps\n",
           c.n_layers, c.layer_class == S4_MODEL_S4D ? "S4D" : "S4Block", c.d_model, c.d_input,
           c.d_output, B, (long long)L);

    /* 1. Convolution mode. */
    s4_model_forward *fwd = NULL;
    if (check(s4_model_forward_create(model, B, L, NULL, &fwd), "forward plan") ||
        check(s4_model_forward_execute(fwd, x, conv, NULL, 0), "forward"))
        return 1;
    s4_model_forward_destroy(fwd);
    for (int b = 0; b < B; b++) {
        const float *lb = conv + (size_t)b * dout;
        const int k = argmax(lb, (int)dout);
        printf("conv       sequence %d: class %d (logit %.5f)\n", b, k, lb[k]);
    }

    /* 2. Recurrent mode over the whole batch. Bidirectional models have none. */
    s4_model_step *step = NULL;
    const s4_status st = s4_model_step_create(model, S4_MODEL_STEP_NATURAL, B, NULL, &step);
    if (st == S4_ERR_INVALID_ARGUMENT) {
        printf("recurrent: not available (%s)\n", s4_last_error());
    } else {
        if (check(st, "step plan"))
            return 1;
        void *state = malloc(s4_model_step_state_size(step));
        if (!state || check(s4_model_step_state_reset(step, state), "reset"))
            return 1;
        for (int64_t t = 0; t < L; t++) {
            for (int b = 0; b < B; b++)
                memcpy(xt + (size_t)b * din, x + ((size_t)b * (size_t)L + (size_t)t) * din,
                       din * sizeof *xt);
            if (check(s4_model_step_execute(step, state, xt, t + 1 == L ? rec : NULL, NULL, 0),
                      "step"))
                return 1;
        }
        double diff = 0.0, mag = 0.0;
        for (size_t i = 0; i < (size_t)B * dout; i++) {
            diff = fmax(diff, fabs((double)rec[i] - conv[i]));
            mag = fmax(mag, fabs((double)conv[i]));
        }
        for (int b = 0; b < B; b++)
            printf("recurrent  sequence %d: class %d\n", b,
                   argmax(rec + (size_t)b * dout, (int)dout));
        printf("recurrent vs conv: max |difference| / max |logit| = %.2e\n", diff / mag);
        free(state);
        s4_model_step_destroy(step);

        /* 3. Stream sequence 0 one step at a time: the running prediction. */
        if (check(s4_model_step_create(model, S4_MODEL_STEP_NATURAL, 1, NULL, &step), "stream"))
            return 1;
        state = malloc(s4_model_step_state_size(step));
        if (!state || check(s4_model_step_state_reset(step, state), "reset"))
            return 1;
        printf("streaming sequence 0:");
        for (int64_t t = 0; t < L; t++) {
            if (check(s4_model_step_execute(step, state, x + (size_t)t * din, rec, NULL, 0),
                      "stream step"))
                return 1;
            if (t < 4 || (t + 1) % (L / 4 > 0 ? L / 4 : 1) == 0 || t + 1 == L)
                printf(" t=%lld:%d", (long long)(t + 1), argmax(rec, (int)dout));
        }
        printf("\n");
        free(state);
        s4_model_step_destroy(step);
    }
    free(conv), free(rec), free(xt);
    s4_free(argc > 3 ? x : NULL);
    if (argc <= 3)
        free(x);
    s4_model_destroy(model);
    return 0;
}
