/* s4-run-model: run a trained S4 layer in both of its modes.
 *
 * Loads a reference S4Block state_dict (safetensors) with its architecture (a JSON config
 * file, or the file's __metadata__ "s4_config"), makes a deterministic input of B = 2
 * sequences of length L, and runs
 *   - convolution mode (s4_forward_*: the whole sequence at once, FFT convolution), and
 *   - for causal layers, the recurrent linear step mode (s4_step_*: one time step at a time
 *     from a zero state, as an online model would run),
 * then prints a few outputs and how far the two modes differ (they compute the same thing).
 * Usage: s4-run-model WEIGHTS.safetensors [CONFIG.json] [L]
 * SPDX-License-Identifier: Apache-2.0 */
#include "s4.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check(s4_status st, const char *what)
{
    if (st == S4_OK)
        return 0;
    fprintf(stderr, "s4-run-model: %s: %s: %s\n", what, s4_status_str(st), s4_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: s4-run-model WEIGHTS.safetensors [CONFIG.json] [L]\n");
        return 2;
    }
    const char *weights = argv[1], *config = argc > 2 ? argv[2] : NULL;
    const int64_t L = argc > 3 ? atoll(argv[3]) : 64;
    if (L < 1) {
        fprintf(stderr, "s4-run-model: L = %s must be >= 1\n", argv[3]);
        return 2;
    }

    s4_layer *layer = NULL;
    if (check(s4_layer_load(weights, config, &layer), "s4_layer_load"))
        return 1;
    s4_layer_config cfg;
    if (check(s4_layer_get_config(layer, &cfg), "s4_layer_get_config"))
        return 1;
    const int B = 2, H = cfg.ssm.H, F = s4_layer_output_features(layer);
    printf("layer: H = %d, N = %d, channels = %d, %s, l_kernel = %lld; input (B, H, L) = "
           "(%d, %d, %lld)\n",
           H, cfg.ssm.N, cfg.channels, cfg.bidirectional ? "bidirectional" : "causal",
           (long long)s4_ssm_l_kernel(s4_layer_ssm(layer)), B, H, (long long)L);

    /* Input and outputs in the layer's layout: (B, H, L), or (B, L, H) when not transposed;
     * the same index formula serves both since only the strides differ. */
    const size_t nu = (size_t)B * (size_t)H * (size_t)L, ny = (size_t)B * (size_t)F * (size_t)L;
    float *u = malloc(nu * sizeof *u), *y_conv = malloc(ny * sizeof *y_conv);
    float *y_step = malloc(ny * sizeof *y_step);
    if (!u || !y_conv || !y_step) {
        fprintf(stderr, "s4-run-model: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nu; i++)
        u[i] = (float)sin(0.05 * (double)i) + 0.25f * (float)cos(0.31 * (double)(i % 97));

    /* Convolution mode: plan once (kernel, FFTs), execute as often as needed. */
    s4_forward *fwd = NULL;
    if (check(s4_forward_create(layer, B, L, NULL, &fwd), "s4_forward_create") ||
        check(s4_forward_execute(fwd, u, y_conv, NULL, NULL, 0), "s4_forward_execute"))
        return 1;
    s4_forward_destroy(fwd);
    printf("conv mode:   y[0][0][0..3] =");
    for (int t = 0; t < 4 && t < L; t++)
        printf(" %+.6f", cfg.transposed ? y_conv[t] : y_conv[(size_t)t * (size_t)F]);
    printf("\n");

    if (cfg.bidirectional) {
        printf("step mode:   none (a bidirectional layer looks at future inputs)\n");
    } else {
        /* Step mode: a zero state, then one step per time sample. s4_step_run does T steps
         * in one call; an online model would call s4_step_execute once per sample. */
        s4_step *step = NULL;
        if (check(s4_step_create(layer, S4_STEP_LINEAR, B, 1.0, &step), "s4_step_create"))
            return 1;
        void *state = malloc(s4_step_state_size(step));
        if (!state || check(s4_step_state_reset(step, state), "s4_step_state_reset") ||
            check(s4_step_run(step, state, u, L, y_step, NULL, 0), "s4_step_run"))
            return 1;
        double diff = 0.0, ref = 0.0;
        for (size_t i = 0; i < ny; i++) {
            diff = fmax(diff, fabs((double)y_step[i] - (double)y_conv[i]));
            ref = fmax(ref, fabs((double)y_conv[i]));
        }
        printf("step mode:   y[0][0][0..3] =");
        for (int t = 0; t < 4 && t < L; t++)
            printf(" %+.6f", cfg.transposed ? y_step[t] : y_step[(size_t)t * (size_t)F]);
        printf("\nmax |step - conv| / max |conv| = %.2e%s\n", diff / (ref > 0 ? ref : 1),
               cfg.l_max > 0 && cfg.l_max < L
                   ? " (l_max < L: conv mode truncates its kernel, step mode does not)"
                   : "");
        free(state);
        s4_step_destroy(step);
    }
    free(u);
    free(y_conv);
    free(y_step);
    s4_layer_destroy(layer);
    return 0;
}
