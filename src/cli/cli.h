/* Shared parts of the `s4` program's commands (s4.c: options, errors, shapes; model.c:
 * whole models). Public API only.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CLI_H
#define S4_CLI_H

#include "s4.h"

#include <stddef.h>
#include <stdint.h>

enum { EXIT_USAGE = 2 };

typedef struct options {
    const char *weights, *config, *input, *output, *mode, *length, *chunk, *rate;
    /* s4 generate */
    const char *prime, *temperature, *top_k, *seed, *batch, *wav, *threads, *precision;
} options;

/* "s4 <command>: <message>" as one line on stderr; returns status. */
int s4cli_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A library failure (its message names the file, tensor or key), with --rate if given. */
int s4cli_fail_lib(s4_status st, const char *rate_text);
/* A decimal integer in [lo, hi] for option --name. */
int s4cli_parse_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out);
/* --rate: a positive finite number (1 when text is NULL). */
int s4cli_parse_rate(const char *text, double *out);
void s4cli_shape_text(char *buf, size_t len, int ndim, const int64_t *shape);
/* Every tensor of a safetensors file with its range. */
int s4cli_print_tensors(const char *path);

/* 1 when --config (or, without one, the weights' __metadata__ "config") describes a whole
 * model, 0 for a single layer; -1 after reporting an error. */
int s4cli_is_model(const options *o);

/* s4 info / s4 forward on a whole model (model.c). */
int s4cli_model_info(const options *o);
int s4cli_model_forward(const options *o);

/* s4 generate: samples from a token model (generate.c). */
int s4cli_generate(const options *o);

#endif
