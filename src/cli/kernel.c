/* s4 kernel: the convolution kernel a layer's forward applies, written as .npy.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- s4 kernel ----------------------------------------------------------------------- */

/* The kernel the layer's forward applies to inputs of length L at rate R (1 unless
 * --rate), as the library states it (s4_layer_kernel_size, s4_layer_kernel: the
 * reference's length rules, docs/design.md section 11). */
int s4cli_kernel(const options *o)
{
    int rc = s4args_require(o->weights, "weights", "s4 help");
    if (!rc)
        rc = s4args_require(o->length, "length", "s4 help");
    if (!rc)
        rc = s4args_require(o->output, "output", "s4 help");
    int64_t L = 0;
    double rate = 1.0;
    if (!rc)
        rc = s4args_int(o->length, "length", 1, INT32_MAX, &L);
    if (!rc)
        rc = s4cli_parse_rate(o->rate, &rate);
    if (rc)
        return rc;
    s4_layer *layer = NULL;
    s4_layer_config c;
    if ((rc = s4cli_load_layer(o, &layer, &c)) != 0)
        return rc;
    s4_layer_kernel_info ki = {0};
    float *K = NULL;
    s4_status st = s4_layer_kernel_size(layer, L, rate, &ki);
    const int rows = ki.rows;
    const int64_t l = ki.length, taps = ki.taps;
    size_t n = 0, bytes = 0;
    const bool too_big = st == S4_OK && (__builtin_mul_overflow((size_t)rows, (size_t)c.ssm.H, &n) ||
                                         __builtin_mul_overflow(n, (size_t)l, &n) ||
                                         __builtin_mul_overflow(n, sizeof *K, &bytes));
    if (st == S4_OK && (too_big || !(K = malloc(n ? bytes : 1))))
        rc = s4args_fail(EXIT_FAILURE, "%s: out of memory for a kernel of %d x %d x %lld floats",
                  o->output, rows, c.ssm.H, (long long)l);
    if (st == S4_OK && rc == 0)
        st = s4_layer_kernel(layer, L, rate, K, (size_t)l);
    if (st == S4_OK && rc == 0) {
        const int64_t shape[3] = {rows, c.ssm.H, l};
        st = s4_npy_write_f32(o->output, K, 3, shape);
        if (st == S4_OK) {
            char sh[64], extra[160] = "";
            s4cli_shape_text(sh, sizeof sh, 3, shape);
            if (c.ssm.mode == S4_MODE_DIAG)
                snprintf(extra, sizeof extra, "S4D %s, raw C", s4cli_name(s4_disc_name(c.ssm.disc)));
            else /* the C-tilde length the forward would set up */
                snprintf(extra, sizeof extra, "l_kernel %lld", (long long)ki.l_kernel);
            if (o->rate) {
                const size_t k = strlen(extra);
                snprintf(extra + k, sizeof extra - k, ", rate %g", rate);
            }
            if (taps < l) {
                const size_t k = strlen(extra);
                snprintf(extra + k, sizeof extra - k, ", %lld nonzero taps", (long long)taps);
            }
            printf("s4 kernel: wrote %s: float32 %s (%s)\n", o->output, sh, extra);
        }
    }
    if (st != S4_OK && rc == 0)
        rc = s4cli_fail_lib(st, o->rate);
    free(K);
    s4_layer_destroy(layer);
    return rc;
}

