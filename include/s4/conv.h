/* libs4 public API, part of s4.h: FFT convolution plans.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CONV_H
#define S4_CONV_H

#include "s4/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* FFT convolution (docs/design.md section 8)                                           */

typedef enum s4_planner {
    S4_PLANNER_ESTIMATE = 0, /* FFTW_ESTIMATE: instant planning (default) */
    S4_PLANNER_MEASURE = 1   /* FFTW_MEASURE: slower planning, faster transforms */
} s4_planner;

/* Sizes of a batched, multi-channel convolution of inputs u [B x H x L] with kernels of
 * length l (kernel rows C'' = channels * (1 + bidirectional), first `channels` forward,
 * next `channels` backward). */
typedef struct s4_conv_desc {
    int B, H;
    int channels;       /* C' */
    int bidirectional;  /* 0 or 1 */
    int64_t L;          /* input and output length */
    int64_t l;          /* kernel length, >= 1 */
    s4_planner planner;
} s4_conv_desc;

/* Opaque convolution plan: FFT length n (the smallest 2^a 3^b 5^c 7^d >= L + l - 1, or
 * >= L + l when bidirectional, for any l: taps at lags >= L never reach the output and are
 * left out), FFTW r2c/c2r plans, workspace size. Immutable. */
typedef struct s4_conv s4_conv;

S4_NODISCARD S4_API s4_status s4_conv_create(const s4_conv_desc *desc, s4_conv **out);
S4_API void s4_conv_destroy(s4_conv *plan);

/* FFT length n of the plan (one kernel spectrum row holds n/2 + 1 complex values). */
S4_API int64_t s4_conv_fft_length(const s4_conv *plan);

/* Complex float entries (pairs of floats) of a whole spectrum: C' x H x (n/2 + 1). */
S4_API size_t s4_conv_spectrum_size(const s4_conv *plan);
S4_API size_t s4_conv_workspace_size(const s4_conv *plan);

/* work may be NULL in both calls below to use the plan's own scratch (then calls on one plan
 * must not overlap), else at least s4_conv_workspace_size bytes (any alignment).
 *
 * Transforms kernels K [C'' x H x ldk] (first l entries of each row used) into the
 * spectrum the plan multiplies by: spec [C' x H x (n/2+1) x 2] floats. A bidirectional
 * pair (forward row c, backward row C' + c) becomes one spectrum row: y[t] =
 * sum_{j<=t} k0[t-j] u[j] + sum_{j>t} k1[j-t-1] u[j]. Allocates nothing. */
S4_NODISCARD S4_API s4_status s4_conv_spectrum(const s4_conv *plan, const float *K, size_t ldk,
                                               float *spec, void *work, size_t work_size);

/* y[b][c][h][t] = (k_c,h * u_b,h)[t] + D[c][h] u[b][h][t] for t < L.
 * u [B x H x ldu] (ldu >= L), y [B x C' x H x ldy] (ldy >= L), D [C' x H] or NULL (no skip
 * term). Allocates nothing; concurrent calls on one plan need separate workspaces. */
S4_NODISCARD S4_API s4_status s4_conv_execute(const s4_conv *plan, const float *spec,
                                              const float *u, size_t ldu, const float *D, float *y,
                                              size_t ldy, void *work, size_t work_size);

#ifdef __cplusplus
}
#endif
#endif /* S4_CONV_H */
