/* The model layer's internals (docs/models.md), shared by model.c, forward.c and step.c.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_MODEL_INTERNAL_H
#define S4_MODEL_INTERNAL_H

#include "core/internal.h"

struct s4_model {
    s4_model_config cfg;
    float *enc_W, *enc_b; /* [H x d_in], [H] */
    float *ln_w, *ln_b;   /* [n_layers x H] */
    float *dec_W, *dec_b; /* [d_out x H], [d_out] */
    s4_layer **layers;    /* [n_layers], each on (B, H, L) arrays (transposed = 1) */
    struct s4__sashimi *sash; /* Sashimi and SashimiLM: every part (sashimi.h); the S4Model
                                 fields above are then unused */
};

/* The layer config a model runs its layers with (S4D: the minimal layer's architecture). */
s4_layer_config s4__model_layer_config(const s4_model_config *c);

/* Checks a model config; S4_OK or S4_ERR_INVALID_ARGUMENT naming the field (fn first). */
s4_status s4__model_check_config(const char *fn, const s4_model_config *c);

/* A model from checked pointwise arrays (arrays->layers unused) and n_layers layers made
 * by the caller; takes ownership of the layers in every case (they are destroyed on
 * failure). */
s4_status s4__model_assemble(const char *fn, const s4_model_config *config,
                             const s4_model_arrays *arrays, s4_layer **layers,
                             s4_model **out);

/* LayerNorm eps of torch.nn.LayerNorm, as example.py uses it. */
#define S4_LN_EPS 1e-5

/* Row r < rows of x [rows x d_in] through the encoder into h [rows x H]. */
void s4__model_encode(const s4_model *m, const float *x, float *h, size_t rows);

/* In place over rows [rows x H]: LayerNorm of layer i. */
void s4__model_norm(const s4_model *m, int i, float *h, size_t rows);

/* In place over columns [t0, t1) of one sequence h [H x L]: LayerNorm of layer i. */
void s4__model_norm_cols(const s4_model *m, int i, float *h, size_t L, size_t t0, size_t t1);

/* torch.nn.LayerNorm (eps 1e-5, biased variance) of columns [t0, t1) of x [H x ld], in
 * place: per column the mean and variance in double (two passes), one rounding at the end.
 * The one LayerNorm of libs4's models. */
void s4__layernorm_cols(const float *w, const float *b, size_t H, float *x, size_t ld,
                        size_t t0, size_t t1);

/* logits [rows x d_out] = (sum [rows x H] * scale) W_d^T + b_d. */
void s4__model_decode(const s4_model *m, const double *sum, double scale, float *logits,
                      size_t rows);

#endif
