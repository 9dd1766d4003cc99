/* Shared parts of the `s4` program's commands (cli.h): library failures, --rate, shapes,
 * loading a layer, printing a file's tensors. Public API only.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A library failure: its message already names the file, tensor or key; with the --rate
 * in effect when one was given (a valid but extreme rate can make the library refuse a
 * length or a node count). */
int s4cli_fail_lib(s4_status st, const char *rate_text)
{
    const char *msg = s4_last_error();
    if (!rate_text)
        return s4args_fail(EXIT_FAILURE, "%s (%s)", msg && *msg ? msg : "failed",
                           s4_status_str(st));
    return s4args_fail(EXIT_FAILURE, "%s (%s) [at --rate %s]", msg && *msg ? msg : "failed",
                       s4_status_str(st), rate_text);
}

/* --rate: a positive finite decimal (default 1 when absent). */
int s4cli_parse_rate(const char *text, double *out)
{
    *out = 1.0;
    return text ? s4args_number(text, "rate", 0.0, false,
                                "the relative sample rate; 1 = as trained", out)
                : 0;
}

void s4cli_shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    int k = snprintf(buf, len, "(");
    for (int d = 0; d < ndim && k > 0 && (size_t)k < len; d++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "%s)", ndim == 1 ? "," : "");
}

int s4cli_load_layer(const options *o, s4_layer **layer, s4_layer_config *cfg)
{
    s4_status st = s4_layer_load(o->weights, o->config, layer);
    if (st != S4_OK)
        return s4cli_fail_lib(st, NULL);
    st = s4_layer_get_config(*layer, cfg);
    if (st != S4_OK) {
        s4_layer_destroy(*layer);
        *layer = NULL;
        return s4cli_fail_lib(st, NULL);
    }
    return 0;
}

/* A name for printing: the library's, "?" outside the enum. */
const char *s4cli_name(const char *name) { return name ? name : "?"; }

/* min and max of x[0 .. n) with stride (for real / imaginary parts). */
void s4cli_range(const double *x, size_t n, size_t stride, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i += stride) {
        *lo = fmin(*lo, x[i]);
        *hi = fmax(*hi, x[i]);
    }
}

int s4cli_print_tensors(const char *path)
{
    s4_tensors *file = NULL;
    s4_status st = s4_tensors_open(path, &file);
    if (st != S4_OK)
        return s4cli_fail_lib(st, NULL);
    const size_t n = s4_tensors_count(file);
    printf("parameters (%zu tensors in %s)\n", n, path);
    printf("  %-26s %-5s %-16s %9s  %13s  %13s\n", "name", "dtype", "shape", "count", "min",
           "max");
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        s4_tensor_info info;
        if ((st = s4_tensors_info(file, i, &info)) != S4_OK) {
            rc = s4cli_fail_lib(st, NULL);
            break;
        }
        double *v = malloc((info.numel ? info.numel : 1) * sizeof *v);
        if (!v) {
            rc = s4args_fail(EXIT_FAILURE, "%s: out of memory", path);
            break;
        }
        if ((st = s4_tensors_read(file, info.name, v, info.numel)) != S4_OK) {
            free(v);
            rc = s4cli_fail_lib(st, NULL);
            break;
        }
        double lo = 0, hi = 0;
        s4cli_range(v, info.numel, 1, &lo, &hi);
        char shape[96];
        s4cli_shape_text(shape, sizeof shape, info.ndim, info.shape);
        printf("  %-26s %-5s %-16s %9zu  %13.6g  %13.6g\n", info.name, s4cli_name(s4_dtype_name(info.dtype)),
               shape, info.numel, info.numel ? lo : 0.0, info.numel ? hi : 0.0);
        if (info.dtype != S4_DTYPE_I64)
            total += info.numel;
        free(v);
    }
    if (rc == 0)
        printf("  total: %zu parameters\n", total);
    s4_tensors_close(file);
    return rc;
}

