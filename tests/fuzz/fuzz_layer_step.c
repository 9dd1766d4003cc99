/* libFuzzer target: trained weights from the bytes, then one recurrent step.
 * The architecture is fixed (the config of tests/data/cases/h2_n8_l7: d_model 2,
 * d_state 8, GELU, GLU output), so the fuzzer explores the weights file (header and
 * values) against it. When s4_layer_load_with_config accepts the file, s4_step_create and
 * one s4_step_execute with B = 2 run in one of the three step modes (chosen from the
 * input's last byte); a numerical refusal is fine, a crash or sanitizer report is not.
 * SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_common.h"

#include <s4.h>

#include <string.h>

static const char config_json[] =
    "{\"d_model\": 2, \"d_state\": 8, \"l_max\": 7, \"transposed\": true, \"mode\": \"dplr\","
    " \"init\": \"legs\", \"rank\": 1, \"n_ssm\": null, \"channels\": 1,"
    " \"bidirectional\": false, \"activation\": \"gelu\", \"final_act\": \"glu\","
    " \"swap_channels\": false, \"dt_min\": 0.001, \"dt_max\": 0.1, \"dt_tie\": true,"
    " \"dt_transform\": \"exp\", \"real_transform\": \"exp\", \"imag_transform\": \"none\","
    " \"disc\": \"bilinear\", \"dt_fast\": false, \"bandlimit\": null, \"is_real\": false}";

enum { FUZZ_B = 2 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static s4fuzz_file file;
    static s4_layer_config cfg;
    static int have_cfg;
    if (!have_cfg) {
        if (s4_layer_config_parse(config_json, "fuzz config", S4_CONFIG_FOR_WEIGHTS, &cfg) !=
            S4_OK)
            abort();
        have_cfg = 1;
    }
    const char *path = s4fuzz_file_set(&file, data, size);

    s4_layer *layer = NULL;
    if (s4_layer_load_with_config(path, &cfg, &layer) != S4_OK)
        return 0;
    const s4_step_mode mode = size ? (s4_step_mode)(data[size - 1] % 3) : S4_STEP_LINEAR;
    s4_step *step = NULL;
    if (s4_step_create(layer, mode, FUZZ_B, 1.0, &step) == S4_OK) {
        const int H = cfg.ssm.H, F = s4_layer_output_features(layer);
        void *state = calloc(1, s4_step_state_size(step));
        float *u = malloc(sizeof *u * FUZZ_B * (size_t)H);
        float *y = malloc(sizeof *y * FUZZ_B * (size_t)F);
        if (!state || !u || !y || F < 1)
            abort();
        for (int i = 0; i < FUZZ_B * H; i++)
            u[i] = 0.25f * (float)(i + 1);
        if (s4_step_state_reset(step, state) != S4_OK)
            abort();
        /* Two steps: the second starts from the state the first left. Finite weights can
         * still overflow to Inf in float; a status is fine, a crash is not. */
        for (int t = 0; t < 2; t++)
            if (s4_step_execute(step, state, u, y, NULL, 0) != S4_OK)
                break;
        free(state);
        free(u);
        free(y);
        s4_step_destroy(step);
    }
    s4_layer_destroy(layer);
    return 0;
}
