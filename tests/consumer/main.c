/* Smoke test of an installed libs4, built by .ci/run through find_package(s4) and through
 * `pkg-config --static s4`: it must compile against s4.h alone and link with the flags
 * those give. Exits 0 on success.
 * SPDX-License-Identifier: Apache-2.0 */
#include <s4.h>

#include <stdio.h>
#include <string.h>

static int near(double x, double y) { return x - y < 1e-12 && y - x < 1e-12; }

int main(void)
{
    enum { N = 4 };
    double A[N * N], B[N], P[N];

    if (strcmp(s4_version(), S4_VERSION_STRING) != 0) {
        fprintf(stderr, "s4_version() = %s, header says %s\n", s4_version(), S4_VERSION_STRING);
        return 1;
    }

    s4_status status = s4_hippo(S4_MEASURE_LEGS, N, 1, A, B, P);
    if (status != S4_OK) {
        fprintf(stderr, "s4_hippo: %s: %s\n", s4_status_str(status), s4_last_error());
        return 1;
    }
    /* LegS (docs/design.md section 2): A[0][0] = -1, B[0] = 1, P[0] = sqrt(1/2). */
    if (!near(A[0], -1.0) || !near(B[0], 1.0) || !near(P[0] * P[0], 0.5)) {
        fprintf(stderr, "s4_hippo: unexpected A[0][0] = %g, B[0] = %g, P[0] = %g\n", A[0], B[0],
                P[0]);
        return 1;
    }

    /* The io archive (libs4_io.a, with cJSON) on top of the compute one: a config parsed from
     * JSON makes a layer. */
    s4_layer_config cfg;
    s4_layer *layer = NULL;
    status = s4_layer_config_parse("{\"d_model\": 4, \"d_state\": 8}", "consumer",
                                   S4_CONFIG_FOR_INIT, &cfg);
    if (status == S4_OK)
        status = s4_layer_create(&cfg, &layer);
    if (status != S4_OK || s4_layer_output_features(layer) != 4) {
        fprintf(stderr, "config -> layer: %s: %s\n", s4_status_str(status), s4_last_error());
        s4_layer_destroy(layer);
        return 1;
    }
    s4_layer_destroy(layer);
    printf("libs4 %s: s4_hippo(LEGS, N = %d) ok; a JSON config made a layer\n", s4_version(),
           N);
    return 0;
}
