/* Sashimi and SashimiLM (docs/models.md, "Sashimi"): the parts, shared by sashimi.c (make,
 * check, pointwise pieces), sashimi_forward.c (convolution mode), sashimi_step.c
 * (recurrent mode) and generate.c.
 *
 * Every pointwise piece works on feature-major panels: a [K x n] array whose columns are
 * the vectors (time steps of one sequence in the convolution mode, the B streams of one
 * step in the recurrent mode), so the packed affine kernel (cpu/affine.h) maps W over all
 * of them in one pass and each output is one fixed-order sum whatever the split.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_MODEL_SASHIMI_H
#define S4_MODEL_SASHIMI_H

#include "core/internal.h"
#include "cpu/activation.h"
#include "cpu/affine.h"
#include "model/model.h"

/* A linear map out = W a + b, packed for the affine kernel. */
typedef struct s4__linear {
    int M, K;  /* out, in */
    float *Wp; /* s4__affine_pack form */
} s4__linear;

/* A residual block x + f(LayerNorm(x)): an S4 block (f = the S4Block) or an FF block
 * (f = Linear(H, ff H), GELU, Linear(ff H, H)). */
typedef struct s4__sblock {
    int H;
    int id;             /* index among all blocks of the model (plans and states by id) */
    char name[64];      /* its reference prefix ("u_layers.1.3"), for messages */
    float *ln_w, *ln_b; /* [H] */
    s4_layer *layer;    /* S4 block; NULL for an FF block */
    s4__linear ff1, ff2;
} s4__sblock;

/* One pooling level i: width H, factor p; the deeper level has width H * expand. */
typedef struct s4__level {
    int H, p;
    s4__sblock *down; /* U-Net: n_blocks blocks before the DownPool; else NULL */
    s4__linear dpool; /* (H p) -> H expand: channel h p + s of coarse step l = x[h, l p + s] */
    s4__linear upool; /* H expand -> (H p): channel h p + s becomes sample l p + s */
    s4__sblock *up;   /* n_blocks blocks after the UpPool */
} s4__level;

typedef struct s4__sashimi {
    int n_levels, n_blocks; /* n_blocks = n_layers (1 + (ff > 0)) per stage */
    int n_sblocks;          /* every block of the model, ids 0 .. n_sblocks - 1 */
    int F_max, H_max;       /* widest FF hidden layer and widest level */
    s4__level levels[S4_MAX_POOLS];
    s4__sblock *center; /* n_blocks blocks at the deepest width */
    int H_center;
    float *norm_w, *norm_b; /* final LayerNorm [d_model] */
    float *embed;           /* SashimiLM: [n_tokens x d_model] */
    s4__linear decoder;     /* SashimiLM: d_model -> n_tokens */
} s4__sashimi;

/* Checks the Sashimi fields of a config (fn first in messages). */
s4_status s4__sashimi_check_config(const char *fn, const s4_model_config *c);

/* The S4Block config of the S4 layers of a level of width H. */
s4_layer_config s4__sashimi_layer_config(const s4_model_config *c, int H);

/* Every part of the model with its reference name (the prefix "backbone." for SashimiLM)
 * in state_dict order, for the loader and the fresh init to fill alike. */
typedef enum s4__spart {
    S4__SP_LINEAR, /* name.weight [M x K] (a Conv1d's [M x K x 1] in the backbone), name.bias */
    S4__SP_NORM,   /* name.weight, name.bias [M]: dst is float *[2] */
    S4__SP_EMBED,  /* name [M x K]: dst is float ** */
    S4__SP_LAYER   /* an S4Block of width M under the prefix name: dst is s4_layer ** */
} s4__spart;

typedef s4_status (*s4__spart_fn)(void *ctx, s4__spart kind, const char *name, int M, int K,
                                  void *dst);

/* Calls fn on every part of s (made by s4__sashimi_alloc for c), stopping at the first
 * status other than S4_OK. */
s4_status s4__sashimi_visit(const s4_model_config *c, s4__sashimi *s, s4__spart_fn fn,
                            void *ctx);

/* Frees every part (layers included); NULL is a no-op. */
void s4__sashimi_free(s4__sashimi *s);

/* Allocates the parts for config c (layers NULL, arrays uninitialised). */
s4_status s4__sashimi_alloc(const char *fn, const s4_model_config *c, s4__sashimi **out);

/* A fresh model (s4_model_create): parts from one seeded generator in visiting order. */
s4_status s4__sashimi_create(const char *fn, const s4_model_config *c, uint64_t seed,
                             s4__sashimi **out);

/* A linear's W [M x K] (row-major) and b [M] packed into l (allocated). */
s4_status s4__linear_set(s4__linear *l, int M, int K, const float *W, const float *b);

/* The stage blocks in order: the U-Net down blocks of level i, the centre, the up blocks
 * of level i; n_blocks each. S4 blocks at even positions, FF at odd ones when ff > 0. */
static inline int s4__sblock_is_s4(const s4_model_config *c, int j)
{
    return c->ff > 0 ? j % 2 == 0 : 1;
}

/* ---- the two modes' plans, behind s4_model_forward and s4_model_step ------------- */

struct s4__sfwd;
s4_status s4__sfwd_create(const char *fn, s4_model *m, int B, int64_t L,
                          const s4_forward_options *o, struct s4__sfwd **out);
void s4__sfwd_destroy(struct s4__sfwd *p);
size_t s4__sfwd_workspace_size(const struct s4__sfwd *p);
/* x [B x L x d_model] (Sashimi) or tokens [B x L] (SashimiLM, checked by the caller);
 * out [B x L x d_model] or logits [B x L x n_tokens]. base: the 64-byte aligned workspace. */
s4_status s4__sfwd_execute(const char *fn, const struct s4__sfwd *p, const float *x,
                           const int32_t *tokens, float *out, unsigned char *base);

/* Index of the first token outside [0, V) in t[0 .. n), or n. */
size_t s4__first_bad_token(const int32_t *t, size_t n, int V);

struct s4__sstep;
/* natural: each layer's own step mode (mode ignored). */
s4_status s4__sstep_create(const char *fn, const s4_model *m, s4_step_mode mode, bool natural,
                           int B, const s4_step_options *o, struct s4__sstep **out);
void s4__sstep_destroy(struct s4__sstep *p);
size_t s4__sstep_state_size(const struct s4__sstep *p);
size_t s4__sstep_workspace_size(const struct s4__sstep *p);
s4_status s4__sstep_reset(const struct s4__sstep *p, void *state);
int64_t s4__sstep_count(const struct s4__sstep *p, const void *state);
/* x [B x d_model] or tokens [B]; out [B x d_model] or logits [B x n_tokens] (NULL: the
 * state advances, nothing is written). */
s4_status s4__sstep_execute(const char *fn, const struct s4__sstep *p, void *state,
                            const float *x, const int32_t *tokens, float *out,
                            unsigned char *base);

/* ---- pointwise pieces on feature-major panels (column t of x [H x ld]) ------------- */

/* LayerNorm of columns [t0, t1) of x [H x ld] in place (s4__layernorm_cols). */
void s4__sblock_norm(const s4__sblock *b, float *x, size_t ld, size_t t0, size_t t1);

/* An FF block on n columns: x[:, j] += W2 gelu(W1 z[:, j] + b1) + b2, z [H x ldz] the
 * normalised input. scratch: (2 F + H) n floats. */
void s4__ff_apply(const s4__sblock *b, s4_affine_fn affine, s4_gelu_row_fn gelu,
                  const float *z, size_t ldz, float *x, size_t ldx, int n, float *scratch);

/* The block of a level's stage: down (U-Net) or up blocks of level i, or the centre's
 * (i == n_levels). */
static inline s4__sblock *s4__stage(s4__sashimi *s, int i, int up)
{
    return i == s->n_levels ? s->center : up ? s->levels[i].up : s->levels[i].down;
}

#endif
