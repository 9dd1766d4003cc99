/* libs4 public API, part of s4.h: convolution kernel plans.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_KERNEL_H
#define S4_KERNEL_H

#include "s4/ssm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* Convolution kernel generation (docs/design.md section 7)                              */

/* Opaque kernel plan: sizes, frequency nodes, FFTW plan, workspace size. Immutable once
 * made; s4_kernel_execute may run on several threads at once with separate workspaces. */
typedef struct s4_kernel s4_kernel;

/* Arithmetic of a plan (docs/cpu.md, "Precision").
 * Kernel plans, the S4 Cauchy sums (src/kernel/cauchy.h): MIXED evaluates in float every
 * (state, node) pair farther than 1/16 of the pole's modulus from it and the few nearer
 * pairs in double (float error bounded by eps32 x 16 of the pole's far field; faster);
 * DOUBLE evaluates every pair in double; SINGLE is refused. An S4D kernel has no Cauchy
 * sums and ignores it.
 * Step plans: MIXED (the default) and DOUBLE keep the state and run the recurrence in
 * double; SINGLE in float, as the reference's own step does (half the memory traffic; the
 * linear mode and an S4D layer's diagonal step only). */
typedef enum s4_precision {
    S4_PRECISION_MIXED = 0, /* the default */
    S4_PRECISION_DOUBLE = 1,
    S4_PRECISION_SINGLE = 2
} s4_precision;

typedef struct s4_kernel_options {
    double rate;  /* relative sample rate (docs/design.md section 11); 1.0 = as trained */
    int threads;  /* OpenMP threads of one execute, splitting the H features: 0 = default
                     (omp_get_max_threads(): OMP_NUM_THREADS or all cores), 1 = none */
    s4_precision precision; /* S4 Cauchy sums: MIXED (default) or DOUBLE */
} s4_kernel_options;

/* What a plan runs: the instruction set of its kernels (docs/cpu.md), the precision of its
 * Cauchy sums (S4 kernel plans; S4_PRECISION_DOUBLE elsewhere, where nothing is mixed),
 * and the OpenMP threads of one execute. */
typedef struct s4_plan_info {
    s4_isa isa;
    s4_precision precision;
    int threads;
} s4_plan_info;

/* The defaults every options argument takes when it is NULL: rate 1, default threads. A
 * zero-filled struct is not that (rate 0 is refused): start from this. */
S4_API void s4_kernel_options_default(s4_kernel_options *options);

/* Plans kernels of length L for banks shaped like `ssm` whose C-tilde length is the bank's
 * current l_kernel Lk (so call s4_ssm_setup_length(ssm, round(rate * L)) first). Nodes:
 * Ld = round(Lk / rate); L <= Ld is required. options may be NULL (rate 1, default threads).
 * The plan keeps no reference to `ssm`; it serves any bank of the same sizes, mode, disc
 * and Lk. A diagonal bank (any L >= 1) gets the Vandermonde kernel (docs/design.md 10) at
 * dt * rate: K[l] = 2 Re sum_n C_n dB_n dA_n^l, powers exact at block starts. */
S4_NODISCARD S4_API s4_status s4_kernel_create(const s4_ssm *ssm, int64_t L,
                                               const s4_kernel_options *options, s4_kernel **out);

/* Frees the plan; NULL is a no-op. */
S4_API void s4_kernel_destroy(s4_kernel *plan);

/* Bytes of scratch one concurrent s4_kernel_execute needs (for all of its threads). */
S4_API size_t s4_kernel_workspace_size(const s4_kernel *plan);

/* Kernel length L and kernel rows C'' of the plan. */
S4_API int64_t s4_kernel_length(const s4_kernel *plan);
S4_NODISCARD S4_API s4_status s4_kernel_info(const s4_kernel *plan, s4_plan_info *info);
S4_API int s4_kernel_rows(const s4_kernel *plan);

/* K[c][h][l] = C_f^T dA^l dB for l < L (float32), K [C'' x H x ldk], ldk >= L.
 * `ssm` must match the plan's sizes and Lk. work: NULL to use the plan's own scratch (then
 * calls on one plan must not overlap), or work_size >= s4_kernel_workspace_size bytes of
 * the caller's (any alignment). Allocates nothing. */
S4_NODISCARD S4_API s4_status s4_kernel_execute(const s4_kernel *plan, const s4_ssm *ssm, float *K,
                                                size_t ldk, void *work, size_t work_size);

/* Slow reference path, for validation only: K[c][l] = C_f^T dA^l dB of feature h by the
 * power method in double (O(N^2 L)), using the raw C. K [C'' x ldk] with ldk >= L.
 * A diagonal bank: every power an exact complex exponential exp(l log dA) in double
 * (O(N L)); dss: the reference's formula, likewise term by term. */
S4_NODISCARD S4_API s4_status s4_kernel_reference(const s4_ssm *ssm, int h, int64_t L, double rate,
                                                  double *K, size_t ldk);

#ifdef __cplusplus
}
#endif
#endif /* S4_KERNEL_H */
