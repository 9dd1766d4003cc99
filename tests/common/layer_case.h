/* Golden-data helpers for layer-level tests (test_layer, test_step): a case's config.json
 * to an s4_layer_config, its state_dict to an s4_layer, shape-checked .npy loading.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_TEST_LAYER_CASE_H
#define S4_TEST_LAYER_CASE_H

#include "s4.h"

#include <cjson/cJSON.h>

#include <stddef.h>
#include <stdint.h>

/* A whole text file, malloc'ed (fails the test if unreadable). */
char *s4t_read_text(const char *path);
/* JSON member `key` of obj (must exist); integer/bool member (null -> if_null); string
 * member (NULL for null). `where` names the file in failure messages. */
const cJSON *s4t_jget(const cJSON *obj, const char *key, const char *where);
int64_t s4t_jint(const cJSON *obj, const char *key, int64_t if_null, const char *where);
const char *s4t_jstr(const cJSON *obj, const char *key, const char *where);

/* x [B x R x C] -> [B x C x R], malloc'ed. */
float *s4t_transpose_batch(const float *x, size_t B, size_t R, size_t C);

/* Reference names -> enums: init ("legs", "diag-lin", ... and aliases), mode ("dplr",
 * "nplr", "s4", "diag", "s4d"), disc ("zoh", "bilinear", "dss"). Return 0 (and leave *out
 * alone) for a name without an enum value, 1 otherwise. */
int s4t_init_of(const char *name, s4_init *out);
int s4t_mode_of(const char *name, s4_ssm_mode *out);
int s4t_disc_of(const char *name, s4_disc *out);

/* s4_layer_config from a case's config.json (path relative to the test data), failing the
 * test for options libs4 does not model unless they have the reference defaults, and for a
 * key it does not know. Sets mode (dplr / diag), disc (diag: zoh, bilinear, dss; dplr must
 * say bilinear), the init when libs4 has it, the transforms and the layer options. */
void s4t_layer_config_from_case(const char *rel_path, s4_layer_config *cfg);

/* A layer from a state_dict safetensors file (docs/design.md section 4 names). For a diagonal
 * (S4D) config the file must have no P and no l_kernel (P = NULL, l_kernel 0). */
s4_layer *s4t_layer_from_params(const s4_layer_config *cfg, const char *rel_path);

/* A 3-d .npy (path relative to the test data) that must have shape (d0, d1, d2). */
double *s4t_npy3(const char *rel, int64_t d0, int64_t d1, int64_t d2);
/* Any .npy (path relative to the test data) that must have shape dims[0 .. ndim). */
double *s4t_npy_shaped(const char *rel, int ndim, const int64_t *dims);

/* A copy of case dir/name's state_dict (dir "models" or "models_sashimi") with tensor
 * `drop` left out, rename_from renamed rename_to, `reshape` one row short, and a tensor
 * `add` added (each NULL: not done), written to `out`. */
void s4t_write_variant(const char *dir, const char *name, const char *drop,
                       const char *rename_from, const char *rename_to, const char *reshape,
                       const char *add, const char *out);
/* s4_model_load(weights, config) must fail, leave its out pointer alone and name `needle`. */
void s4t_expect_model_refused(const char *weights, const char *config, const char *needle);
void s4t_write_text(const char *path, const char *text);

#endif
