/* libs4 public API, part of s4.h: the S4 layer and its forward, step and stream plans.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_LAYER_H
#define S4_LAYER_H

#include "s4/kernel.h"
#include "s4/conv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* The S4 layer: the reference S4Block with its FFTConv (docs/design.md sections 4, 8, 11) */

typedef enum s4_activation {
    S4_ACT_GELU = 0,      /* exact erf form, the reference default */
    S4_ACT_GELU_TANH = 1, /* tanh approximation */
    S4_ACT_RELU = 2,
    S4_ACT_SILU = 3,
    S4_ACT_TANH = 4,
    S4_ACT_SIGMOID = 5,
    S4_ACT_IDENTITY = 6,
    S4_ACT_GLU = 7        /* a[:F/2] * sigmoid(a[F/2:]) over the flattened feature axis */
} s4_activation;

typedef enum s4_final_act {
    S4_FINAL_GLU = 0,      /* output_linear to 2H features, then GLU (the default) */
    S4_FINAL_IDENTITY = 1, /* output_linear to H features */
    S4_FINAL_NONE = 2      /* no output linear: output = activation output */
} s4_final_act;

typedef struct s4_layer_config {
    s4_ssm_config ssm;        /* H, N, rank, n_ssm, init, dt, transforms, seed; its channels
                                 and bidirectional fields are derived from those below */
    int channels;             /* c, the reference's `channels` */
    int bidirectional;        /* 0 or 1 */
    s4_activation activation; /* after the convolution */
    s4_final_act final_act;
    int swap_channels;        /* flatten (h c) instead of (c h) */
    int transposed;           /* 1: arrays (B, H, L) (default); 0: (B, L, H) */
    int64_t l_max;            /* 0 = None (kernel as long as the input) */
} s4_layer_config;

/* The reference S4Block defaults (GELU, GLU output, channels 1, l_max None) around
 * s4_ssm_config_default. */
S4_API void s4_layer_config_default(s4_layer_config *config);

typedef struct s4_layer s4_layer;

/* A freshly initialised layer: s4_ssm_create for the SSM; the output linear like
 * torch.nn.Linear (uniform in +-1/sqrt(fan_in)) from the same seed. */
S4_NODISCARD S4_API s4_status s4_layer_create(const s4_layer_config *config, s4_layer **out);

/* Stored parameters (how trained weights arrive); W, b may be NULL only when final_act is
 * S4_FINAL_NONE. W [F_out x F_in] row-major, F_in = features after the activation
 * (C' H, halved by GLU), F_out = 2H (GLU) or H (identity); b [F_out]. */
typedef struct s4_layer_arrays {
    s4_ssm_arrays ssm;
    const double *W;
    const double *b;
} s4_layer_arrays;

S4_NODISCARD S4_API s4_status s4_layer_create_from_arrays(const s4_layer_config *config,
                                                          const s4_layer_arrays *arrays,
                                                          s4_layer **out);
S4_API void s4_layer_destroy(s4_layer *layer);
S4_NODISCARD S4_API s4_status s4_layer_get_config(const s4_layer *layer, s4_layer_config *config);

/* The layer's SSM bank (owned by the layer). */
S4_API const s4_ssm *s4_layer_ssm(const s4_layer *layer);

/* Features per time step of the layer's output: H, or the activation's output features
 * when final_act is S4_FINAL_NONE. */
S4_API int s4_layer_output_features(const s4_layer *layer);

/* The reference's name of an activation ("gelu", "gelu_tanh", "relu", "silu", "tanh",
 * "sigmoid", "id", "glu"): what s4_layer_config_to_json writes and the config parser reads
 * (docs/formats.md lists the aliases it also takes); NULL outside the enum. */
S4_API const char *s4_activation_name(s4_activation activation);

/* The convolution kernel s4_forward_create(layer, B, L, rate) convolves with, under the
 * reference's length rules (docs/design.md 11), without changing the layer (the C-tilde the
 * rules would set up is made on a copy). */
typedef struct s4_layer_kernel_info {
    int rows;         /* C'': channels, then the backward rows of a bidirectional layer */
    int64_t length;   /* l = L, or min(L, round(l_max / rate)) with l_max */
    int64_t taps;     /* nonzero taps per row: DPLR round(l_kernel / rate) nodes when that
                         is below l (rate < 1 can give it), else l */
    int64_t l_kernel; /* the C-tilde length the forward would set up (0: S4D, raw C) */
} s4_layer_kernel_info;

S4_NODISCARD S4_API s4_status s4_layer_kernel_size(const s4_layer *layer, int64_t L, double rate,
                                                   s4_layer_kernel_info *info);
/* The kernel itself into K [C'' x H x ldk] (ldk >= l; entries l .. ldk - 1 untouched), a
 * short kernel padded as the reference pads it: zeros after the taps of a forward row,
 * before those of a backward row. */
S4_NODISCARD S4_API s4_status s4_layer_kernel(const s4_layer *layer, int64_t L, double rate,
                                              float *K, size_t ldk);

typedef struct s4_forward_options {
    double rate;          /* relative sample rate (docs/design.md 11); 1.0 = as trained */
    s4_planner planner;
    int threads;          /* threads of one s4_forward_execute, OpenBLAS's included: 0 =
                             default (omp_get_max_threads()), 1 = none; they split the batch,
                             else one sequence's features and time blocks; results are
                             bitwise the same for any count; workspace grows with it */
} s4_forward_options;

/* The defaults of a NULL options argument: rate 1, S4_PLANNER_ESTIMATE, default threads. */
S4_API void s4_forward_options_default(s4_forward_options *options);

/* Opaque plan for a whole-layer forward over B sequences of length L in convolution mode.
 * Creation follows the reference's length rules (docs/design.md 11): the kernel length is
 * l = L (l_max = 0) or min(L, round(l_max / rate)); C-tilde is set up for l_max (first use)
 * and doubled while round(rate l) > l_kernel -- this UPDATES the layer's SSM, as the
 * reference's forward does. The plan then holds the kernel's spectrum and copies of D and
 * the output linear, so it stays valid (and immutable) even if the layer is destroyed. */
typedef struct s4_forward s4_forward;

S4_NODISCARD S4_API s4_status s4_forward_create(s4_layer *layer, int B, int64_t L,
                                                const s4_forward_options *options,
                                                s4_forward **out);
S4_API void s4_forward_destroy(s4_forward *plan);
S4_API size_t s4_forward_workspace_size(const s4_forward *plan);
/* What the plan runs: the ISA of its activation rows and output linear, the precision its
 * kernel was made with at creation (S4: the Cauchy sums' default, MIXED; S4D: DOUBLE), and
 * the OpenMP threads of one execute. */
S4_NODISCARD S4_API s4_status s4_forward_info(const s4_forward *plan, s4_plan_info *info);

/* u [B x H x L] (transposed layer) or [B x L x H]; y [B x F x L] or [B x L x F] with
 * F = s4_layer_output_features. pre: NULL, or [B x C'H x L] (resp. [B x L x C'H]) to also
 * receive the convolution output before the activation (y + D u, flattened (c h), or (h c)
 * with swap_channels). work NULL uses the plan's own scratch (then calls must not overlap). */
/* Every execute call (forward, step, stream) refuses a NaN or Inf anywhere in u (and in a
 * stream's incoming state) with S4_ERR_INVALID_ARGUMENT naming the element, before writing
 * anything: a convolution by FFT would spread one NaN over the whole sequence. */
S4_NODISCARD S4_API s4_status s4_forward_execute(const s4_forward *plan, const float *u, float *y,
                                                 float *pre, void *work, size_t work_size);

/* ------------------------------------------------------------------------------ */
/* Recurrent step mode (docs/design.md section 9)                                       */

typedef enum s4_step_mode {
    S4_STEP_DENSE = 0,    /* dA dense, O(N^2) per step, real arithmetic */
    S4_STEP_LINEAR = 1,   /* the O(N) NPLR Woodbury step (docs/design.md 6) */
    S4_STEP_DIAGONAL = 2  /* eigenbasis of dA; refused at setup when ill-conditioned. The
                             only step of a diagonal (S4D) layer, whose state is already
                             diagonal: there it is exact (no eigenbasis) */
} s4_step_mode;

/* Opaque step plan: discretized system (double), output linear, sizes. Immutable; made
 * from the layer's current parameters (raw C recovered from C-tilde when l_kernel > 0).
 * Bidirectional layers have no step mode (S4_ERR_INVALID_ARGUMENT); an S4D layer steps with
 * S4_STEP_DIAGONAL only (other modes: S4_ERR_INVALID_ARGUMENT), and not with disc dss
 * (S4_ERR_UNSUPPORTED: the reference has no dss step). For DPLR layers S4_STEP_DIAGONAL
 * returns S4_ERR_NUMERICAL when its eigenbasis cannot keep step outputs within 1e-3 of the
 * dense mode. rate scales dt (the stream's sample rate; 1.0 = as trained). */
typedef struct s4_step s4_step;

S4_NODISCARD S4_API s4_status s4_step_create(const s4_layer *layer, s4_step_mode mode, int B,
                                             double rate, s4_step **out);
/* The same with options: rate (as above), threads, the OpenMP threads of one step or
 * run, splitting the H features (0 = omp_get_max_threads(), the default, which
 * s4_step_create uses too; 1 = none), and precision (s4_precision: MIXED, the default, and
 * DOUBLE step in double, SINGLE in float). Results are bitwise the same for any count of
 * threads. options may be NULL (rate 1, default threads, double). */
typedef struct s4_step_options {
    double rate;
    int threads;
    s4_precision precision;
} s4_step_options;

/* The defaults of a NULL options argument of s4_step_create_with_options: rate 1, default
 * threads, precision MIXED (double). */
S4_API void s4_step_options_default(s4_step_options *options);

S4_NODISCARD S4_API s4_status s4_step_create_with_options(const s4_layer *layer, s4_step_mode mode,
                                                          int B, const s4_step_options *options,
                                                          s4_step **out);
S4_API void s4_step_destroy(s4_step *plan);
/* What the plan runs: the ISA of its linear kernel (dense and diagonal modes: portable C
 * and OpenBLAS), DOUBLE or SINGLE, its threads. */
S4_NODISCARD S4_API s4_status s4_step_info(const s4_step *plan, s4_plan_info *info);

/* Bytes of a recurrent state for the plan's B sequences (caller-allocated, 8-byte aligned;
 * the diagonal mode of an S4 layer keeps N complex values per sequence and feature, the
 * others, and an S4D layer's diagonal step, N reals), and bytes of scratch for one
 * concurrent call. In every step and stream call
 * below, work may be NULL to use the plan's own scratch (then calls on one plan must not
 * overlap). Step and stream follow the exact recurrence at dt * rate, untruncated: they
 * equal s4_forward when l_max is 0 or >= the input length and rate is 1. */
S4_API size_t s4_step_state_size(const s4_step *plan);
S4_API size_t s4_step_workspace_size(const s4_step *plan);

/* Sets the state to zero (the reference's default_state). */
S4_NODISCARD S4_API s4_status s4_step_state_reset(const s4_step *plan, void *state);

/* The state in the reference's form, x [B x H x N/2 x 2] doubles (conjugate-pair halves,
 * docs/design.md 5), whatever the mode's internal basis; and back (non-finite values refused). */
S4_NODISCARD S4_API s4_status s4_step_state_get(const s4_step *plan, const void *state, double *x);
S4_NODISCARD S4_API s4_status s4_step_state_set(const s4_step *plan, void *state, const double *x);

/* One time step for the batch: u [B x H], y [B x F] (F = s4_layer_output_features).
 * Allocates nothing. */
S4_NODISCARD S4_API s4_status s4_step_execute(const s4_step *plan, void *state, const float *u,
                                              float *y, void *work, size_t work_size);

/* T >= 1 steps: u and y in the layer's layout ([B x H x T] / [B x F x T], or transposed). */
S4_NODISCARD S4_API s4_status s4_step_run(const s4_step *plan, void *state, const float *u,
                                          int64_t T, float *y, void *work, size_t work_size);

/* ------------------------------------------------------------------------------ */
/* Streaming: chunk by chunk with a carried state (docs/design.md 9)                     */

/* Opaque plan for chunks of up to max_chunk steps: each chunk's output is the convolution
 * with the untruncated kernel plus the contribution of the incoming state (the reference's
 * forward(u, state=x)), and the outgoing state is returned, so concatenated chunks equal the
 * whole-sequence output. Computed by the exact recurrence at dt * rate (S4_STEP_LINEAR for
 * S4, the diagonal step for S4D, options->threads splitting the features): the outgoing
 * state costs O(N T) per chunk and feature in any method, and the recurrence gives the
 * outputs with it (src/layer/stream.c has the measurements). The state is the reference form
 * x [B x H x N/2 x 2] doubles (s4_step_state_get/set convert). Like s4_forward_create,
 * creation may set up or double the layer's C-tilde. Causal layers only; an S4D layer with
 * disc dss has no recurrence (S4_ERR_UNSUPPORTED). Of the options, rate and threads are
 * used; planner is validated like s4_forward_create's but has no effect (no FFT runs). */
typedef struct s4_stream s4_stream;

S4_NODISCARD S4_API s4_status s4_stream_create(s4_layer *layer, int B, int64_t max_chunk,
                                               const s4_forward_options *options, s4_stream **out);
S4_API void s4_stream_destroy(s4_stream *plan);
S4_API size_t s4_stream_workspace_size(const s4_stream *plan);
/* Bytes of the carried state x [B x H x N/2 x 2] doubles (0 for NULL). */
S4_API size_t s4_stream_state_size(const s4_stream *plan);

/* One chunk of T (1 <= T <= max_chunk) steps: u and y in the layer's layout, state updated
 * in place (on failure it is unchanged). */
S4_NODISCARD S4_API s4_status s4_stream_execute(const s4_stream *plan, double *state,
                                                const float *u, int64_t T, float *y, void *work,
                                                size_t work_size);

#ifdef __cplusplus
}
#endif
#endif /* S4_LAYER_H */
