/* The `s4` program's commands, one file each (main.c dispatches), and what they share
 * (common.c; the parser in args.h). Public API only.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CLI_H
#define S4_CLI_H

#include "cli/args.h"
#include "s4.h"

#include <stddef.h>
#include <stdint.h>

typedef struct options {
    const char *weights, *config, *input, *output, *mode, *length, *chunk, *rate;
    /* s4 generate */
    const char *prime, *temperature, *top_k, *seed, *batch, *wav, *threads, *precision;
} options;

/* A library failure (its message names the file, tensor or key), with --rate if given. */
int s4cli_fail_lib(s4_status st, const char *rate_text);
/* --rate: a positive finite number (1 when text is NULL). */
int s4cli_parse_rate(const char *text, double *out);
/* "(2, 3, 4)" */
void s4cli_shape_text(char *buf, size_t len, int ndim, const int64_t *shape);
/* Every tensor of a safetensors file with its range. */
int s4cli_print_tensors(const char *path);
/* A layer from --weights / --config and its config. */
int s4cli_load_layer(const options *o, s4_layer **layer, s4_layer_config *cfg);
/* min and max of x[0 .. n) with stride (for real / imaginary parts). */
void s4cli_range(const double *x, size_t n, size_t stride, double *lo, double *hi);
/* A library name for printing, "?" for NULL. */
const char *s4cli_name(const char *name);

/* The layer commands: s4 info, s4 kernel, s4 forward (info.c, kernel.c, forward.c). */
int s4cli_info(const options *o);
int s4cli_kernel(const options *o);
int s4cli_forward(const options *o);

/* 1 when --config (or, without one, the weights' __metadata__ "config") describes a whole
 * model, 0 for a single layer; -1 after reporting an error. */
int s4cli_is_model(const options *o);

/* s4 info / s4 forward on a whole model (model.c). */
int s4cli_model_info(const options *o);
int s4cli_model_forward(const options *o);

/* s4 generate: samples from a token model (generate.c). */
int s4cli_generate(const options *o);

#endif
