/* libs4 public API, part of s4.h: whole models (S4Model, Sashimi, SashimiLM), generation, mu-law.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_MODEL_H
#define S4_MODEL_H

#include "s4/layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* Whole models: example.py's S4Model (docs/models.md)                             */
/*
 * A linear encoder, n_layers residual S4 layers with LayerNorm (prenorm or postnorm), mean
 * pooling over time and a linear decoder. The layer is the minimal S4D of the reference's
 * models/s4/s4d.py (run on libs4's diagonal machinery: zoh, Vandermonde kernel, diagonal
 * step) or a full S4Block. Inputs x [B x L x d_input], logits [B x d_output].
 */

typedef enum s4_model_layer {
    S4_MODEL_S4D = 0,    /* models/s4/s4d.py's S4D: GELU, Conv1d output linear, GLU */
    S4_MODEL_S4BLOCK = 1 /* the S4Block of s4_layer */
} s4_model_layer;

/* The whole-model architectures libs4 runs (docs/models.md). */
typedef enum s4_architecture {
    S4_ARCH_S4MODEL = 0,   /* example.py's classifier: x [B x L x d_input] -> [B x d_output] */
    S4_ARCH_SASHIMI = 1,   /* the Sashimi backbone: x [B x L x d_model] -> y [B x L x d_model] */
    S4_ARCH_SASHIMI_LM = 2 /* Embedding -> Sashimi -> Linear: tokens [B x L] -> logits
                              [B x L x n_tokens]; position t predicts token t + 1 */
} s4_architecture;

/* Most pooling levels a Sashimi config may have. */
#define S4_MAX_POOLS 8

typedef struct s4_model_config {
    int d_input, d_output, d_model, n_layers;
    int prenorm;                /* 1: LayerNorm before each layer; 0: after the residual */
    s4_model_layer layer_class;
    /* The layers' config, ssm.H = d_model. S4D: only ssm.N (d_state) and ssm.dt_min, dt_max
     * are the config's; the rest is what the minimal S4D is (diag, zoh, one channel, GELU,
     * final GLU, l_max None). S4Block: the block's arguments as s4_layer_config_parse reads
     * them. The model runs its layers on (B, L, H) arrays whatever `transposed` says. */
    s4_layer_config layer;
    /* Which model this is. S4_ARCH_SASHIMI and S4_ARCH_SASHIMI_LM use layer_class S4Block,
     * `layer` as the S4Block arguments of every S4 layer (ssm.H = d_model; each level runs
     * them at its own width; d_state 64 as Sashimi fixes it unless set otherwise), d_input =
     * d_output = d_model (Sashimi) or d_input = 1 token, d_output = n_tokens (SashimiLM);
     * prenorm is 1 (Sashimi's residual blocks are prenorm). The fields below are Sashimi's
     * constructor arguments (models/sashimi/sashimi.py), unused by S4Model. */
    s4_architecture architecture;
    int n_pool;                /* pooling levels, 0 .. S4_MAX_POOLS */
    int pool[S4_MAX_POOLS];    /* each level's factor, >= 1 */
    int expand;                /* width factor per level, >= 1 */
    int ff;                    /* FF block width factor; 0: no FF blocks */
    int unet;                  /* 1: blocks before each DownPool too, U-Net skips */
    int bidirectional;         /* 1: bidirectional S4 layers (no recurrent mode) */
    int n_tokens;              /* SashimiLM: vocabulary (256 for 8-bit mu-law) */
    int sample_rate;           /* SashimiLM: audio samples per second its tokens encode */
} s4_model_config;

/* example.py's defaults: d_input 1, d_output 10, d_model 256, n_layers 4, postnorm, S4D
 * layers with d_state 64, dt in [1e-3, 1e-1]. */
S4_API void s4_model_config_default(s4_model_config *config);

/* The defaults of an architecture: S4Model as s4_model_config_default; Sashimi as
 * models/sashimi/sashimi.py's constructor (d_model 64, n_layers 8, pool [4, 4], expand 2,
 * ff 2, no U-Net, unidirectional, S4Block layers with d_state 64 and the S4Block defaults);
 * SashimiLM that backbone with n_tokens 256 and sample_rate 16000. */
S4_API void s4_model_config_default_arch(s4_architecture arch, s4_model_config *config);

typedef struct s4_model s4_model;

/* Stored parameters. Every layer's arrays are in the S4Block form of s4_layer_arrays (for
 * the minimal S4D: inv_dt = log_dt, A_real = log_A_real, A_imag = -A_imag, B = 1 + 0i,
 * C [1 x H x N/2 x 2], D [1 x H], W = the Conv1d weight [2H x H]); s4_model_load does that
 * mapping from the reference's names. */
typedef struct s4_model_arrays {
    const double *encoder_W; /* [d_model x d_input] */
    const double *encoder_b; /* [d_model] */
    const double *norm_w;    /* [n_layers x d_model] LayerNorm weight */
    const double *norm_b;    /* [n_layers x d_model] LayerNorm bias */
    const s4_layer_arrays *layers; /* [n_layers] */
    const double *decoder_W; /* [d_output x d_model] */
    const double *decoder_b; /* [d_output] */
} s4_model_arrays;

S4_NODISCARD S4_API s4_status s4_model_create_from_arrays(const s4_model_config *config,
                                                          const s4_model_arrays *arrays,
                                                          s4_model **out);
/* A fresh model with the reference's initialisation, for demos and benchmarks: S4
 * layers as s4_layer_create makes them (config->layer.ssm.init, seeded), linears as
 * PyTorch's default (uniform in +-1/sqrt(fan_in)), embeddings standard normal, LayerNorm
 * weight 1 and bias 0. Every array comes from libs4's seeded generator, so the same seed
 * gives the same model on every platform. */
S4_NODISCARD S4_API s4_status s4_model_create(const s4_model_config *config, uint64_t seed,
                                              s4_model **out);
S4_API void s4_model_destroy(s4_model *model);
S4_NODISCARD S4_API s4_status s4_model_get_config(const s4_model *model, s4_model_config *config);
/* The layer i < n_layers of an S4Model (owned by the model), or NULL (also for Sashimi). */
S4_API const s4_layer *s4_model_layer_at(const s4_model *model, int i);

/* Convolution mode: a plan for B sequences of length L. Creation makes every layer's
 * forward plan (kernel spectra cached; an S4Block's C-tilde follows the reference's length
 * rules and is updated in the model, as s4_forward_create does); execute never allocates.
 * options as for s4_forward_create (rate, planner, threads); NULL: defaults. Results are
 * bitwise the same for any thread count. */
typedef struct s4_model_forward s4_model_forward;

S4_NODISCARD S4_API s4_status s4_model_forward_create(s4_model *model, int B, int64_t L,
                                                      const s4_forward_options *options,
                                                      s4_model_forward **out);
S4_API void s4_model_forward_destroy(s4_model_forward *plan);
S4_API size_t s4_model_forward_workspace_size(const s4_model_forward *plan);

/* S4Model: x [B x L x d_input] -> logits [B x d_output]. Sashimi: x [B x L x d_model] ->
 * y [B x L x d_model] (the `logits` argument). SashimiLM: use the _tokens call below.
 * Sashimi's L must be a multiple of the product of the pools (checked at creation). An
 * output that would not be finite (an intermediate value beyond float's range) is
 * S4_ERR_NUMERICAL. work NULL: the plan's own scratch (then calls must not overlap); else
 * work_size >= s4_model_forward_workspace_size. The model must outlive the plan. */
S4_NODISCARD S4_API s4_status s4_model_forward_execute(const s4_model_forward *plan, const float *x,
                                                       float *logits, void *work, size_t work_size);

/* Recurrent mode: every layer in a step mode, one time step of B sequences per call, the
 * state in a caller buffer. S4Model: the state also accumulates the running mean, so that
 * after T steps the logits are those of the convolution mode on the first T inputs
 * (streaming classification). Sashimi / SashimiLM: one sample per call, each output equal
 * to the convolution mode's at that position; the state holds the pooling buffers and
 * queues too (docs/models.md). A state belongs to the plan that sized it (its layout can
 * depend on the plan's B and threads). */
typedef enum s4_model_step_mode {
    S4_MODEL_STEP_NATURAL = 0,  /* each layer's own: linear for S4 (DPLR), diagonal for S4D */
    S4_MODEL_STEP_DENSE = 1,
    S4_MODEL_STEP_LINEAR = 2,
    S4_MODEL_STEP_DIAGONAL = 3
} s4_model_step_mode;

typedef struct s4_model_step s4_model_step;

/* options: rate and threads as for s4_step_create_with_options (NULL: rate 1, default
 * threads). A bidirectional layer has no recurrent mode: S4_ERR_INVALID_ARGUMENT. A mode
 * a layer does not have fails as s4_step_create does, naming the layer. */
S4_NODISCARD S4_API s4_status s4_model_step_create(const s4_model *model, s4_model_step_mode mode,
                                                   int B, const s4_step_options *options,
                                                   s4_model_step **out);
S4_API void s4_model_step_destroy(s4_model_step *plan);
/* Bytes of the state (8-byte aligned, caller-allocated) and of one call's scratch. */
S4_API size_t s4_model_step_state_size(const s4_model_step *plan);
S4_API size_t s4_model_step_workspace_size(const s4_model_step *plan);
/* Zero state, no steps taken. */
S4_NODISCARD S4_API s4_status s4_model_step_state_reset(const s4_model_step *plan, void *state);
/* Steps taken since the last reset. */
S4_API int64_t s4_model_step_count(const s4_model_step *plan, const void *state);

/* One time step: x [B x d_input]. S4Model: logits [B x d_output] (NULL: not computed) are
 * those of every input since the reset. Sashimi: y [B x d_model] at this position (the
 * `logits` argument). Arguments and x are checked before anything changes; should a layer
 * refuse its input mid-step, or an output not be finite (an intermediate value overflowed
 * float: S4_ERR_NUMERICAL), parts of the model have advanced: reset the state then. */
S4_NODISCARD S4_API s4_status s4_model_step_execute(const s4_model_step *plan, void *state,
                                                    const float *x, float *logits, void *work,
                                                    size_t work_size);

/* SashimiLM in either mode: tokens (each in [0, n_tokens)) instead of float inputs;
 * the convolution mode's tokens are [B x L] and its logits [B x L x n_tokens], the
 * recurrent mode's one token per sequence [B] and logits [B x n_tokens] (NULL: not
 * computed). Token models accept only these calls, float models only the calls above. */
S4_NODISCARD S4_API s4_status s4_model_forward_execute_tokens(const s4_model_forward *plan,
                                                              const int32_t *tokens,
                                                              float *logits, void *work,
                                                              size_t work_size);
S4_NODISCARD S4_API s4_status s4_model_step_execute_tokens(const s4_model_step *plan,
                                                           void *state, const int32_t *tokens,
                                                           float *logits, void *work,
                                                           size_t work_size);

/* ------------------------------------------------------------------------------ */
/* Generation with a token model (SashimiLM), docs/models.md                        */
/*
 * A generator runs B independent streams in the recurrent mode. Each step samples the next
 * token of every stream from softmax(logits / temperature) (temperature 0: the argmax, the
 * first on ties), restricted to the top_k most likely tokens when top_k > 0, with a
 * generator of libs4 seeded per stream (stream b uses seed and b), then feeds it back.
 * The tokens depend only on the model, the prime, the options and the seed: not on the
 * thread count, nor on how the samples are split into calls. The generator owns its state
 * and scratch; calls on one generator must not overlap (separate generators may run at
 * once).
 */
typedef struct s4_generate_options {
    double temperature; /* >= 0; default 1 */
    int top_k;          /* 0 (default): all tokens */
    uint64_t seed;      /* default 0 */
    int threads;        /* as s4_step_options.threads; 0 = default */
    s4_precision precision; /* as s4_step_options.precision; SINGLE: float steps */
} s4_generate_options;

S4_API void s4_generate_options_default(s4_generate_options *options);

typedef struct s4_generator s4_generator;

/* A generator for B streams of a token model; options NULL: defaults. */
S4_NODISCARD S4_API s4_status s4_generator_create(const s4_model *model, int B,
                                                  const s4_generate_options *options,
                                                  s4_generator **out);
S4_API void s4_generator_destroy(s4_generator *gen);

/* Starts the streams over from tokens prime [B x P] (P >= 1; every stream its own): the
 * model steps through them, and the first generated token follows the last prime token.
 * Without a prime, generation starts from token n_tokens / 2 (mu-law silence, as the
 * reference framework's unconditional generation does). The samplers restart from the
 * seed. Bad arguments (a token out of range) leave the generator as it was; a failure
 * while stepping leaves it as after s4_generator_reset. */
S4_NODISCARD S4_API s4_status s4_generator_prime(s4_generator *gen, const int32_t *prime,
                                                 int64_t P);
/* Back to the start: no prime, samplers at the seed. */
S4_NODISCARD S4_API s4_status s4_generator_reset(s4_generator *gen);

/* The next n tokens of every stream into tokens [B x n] (row b: stream b). Bad arguments
 * change nothing; a failure while generating (a layer refusing a value, logits that are
 * not finite) resets the generator and says so, and tokens may then hold the samples
 * drawn before it. */
S4_NODISCARD S4_API s4_status s4_generator_next(s4_generator *gen, int64_t n, int32_t *tokens);

/* Tokens generated since the prime (or reset). */
S4_API int64_t s4_generator_count(const s4_generator *gen);

/* ------------------------------------------------------------------------------ */
/* 8-bit mu-law, mu = 255, as the reference framework quantizes audio (docs/models.md) */

/* Samples a [n] (any finite range) to tokens in [0, 255]: the clip is min-max scaled to
 * [-1, 1], then e = sign(a) ln(1 + mu |a|) / ln(1 + mu), token = floor((e + 1) / 2 *
 * 255.99 + 0.005). */
S4_NODISCARD S4_API s4_status s4_mulaw_encode(const double *a, size_t n, int32_t *tokens);
/* Tokens [n] in [0, 255] to samples in [-1, 1]: x = token / 128 - 1,
 * a = sign(x) ((1 + mu)^|x| - 1) / mu. */
S4_NODISCARD S4_API s4_status s4_mulaw_decode(const int32_t *tokens, size_t n, double *a);

#ifdef __cplusplus
}
#endif
#endif /* S4_MODEL_H */
