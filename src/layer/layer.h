/* The S4 layer's internals shared by layer.c, forward.c, step.c and stream.c.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_LAYER_INTERNAL_H
#define S4_LAYER_INTERNAL_H

#include "cpu/affine.h"
#include "cpu/cpu.h"
#include "ssm/ssm.h"

/* Everything after the convolution (+ D u): activation, output linear, final GLU.
 * Plans hold their own copy (s4__head_copy), so they outlive the layer. */
typedef struct s4_head {
    s4_activation activation;
    s4_final_act final_act;
    int Fp;   /* features before the activation: C' H */
    int Fa;   /* after the activation: Fp, or Fp / 2 for GLU */
    int Flin; /* rows of the output linear: 2H (GLU), H (identity), 0 (none) */
    int Fo;   /* output features: H, or Fa when final_act is NONE */
    float *W; /* [Flin x Fa] row-major, NULL when Flin == 0 */
    float *b; /* [Flin] */
    s4_isa isa;     /* of the activation rows and the affine kernel (s4__head_copy) */
    float *Wp;          /* W and b packed for the affine kernel (s4__head_pack), or NULL */
    s4_affine_fn affine;
} s4_head;

struct s4_layer {
    s4_layer_config cfg; /* as given, ssm.n_ssm resolved */
    s4_ssm *ssm;         /* ssm.channels = C', ssm.bidirectional = cfg.bidirectional */
    s4_head head;
    double *W64, *b64;   /* stored form of the output linear, exactly as given */
};

/* Deep copy of a head into *dst (allocates W, b; not Wp), its kernels those of the
 * dispatcher's ISA now; frees with s4__head_free. */
s4_status s4__head_copy(const s4_head *src, s4_head *dst);
/* Packs the output linear for s4__head_apply_split (allocates Wp; nothing without one). */
s4_status s4__head_pack(s4_head *head);
void s4__head_free(s4_head *head);

/* Floats of scratch s4__head_apply needs for ncols columns. */
size_t s4__head_scratch(const s4_head *head, int64_t ncols);

/* Applies the head to ncols feature vectors: pre [Fp x ncols] (feature-major, column j of
 * feature f at pre[f * ncols + j]) -> out [Fo x ncols] (same layout). pre is not modified.
 * scratch: s4__head_scratch floats. Allocates nothing; GEMM through cblas_sgemm. */
void s4__head_apply(const s4_head *head, const float *pre, int64_t ncols, float *out,
                    float *scratch);

/* Column-range form of s4__head_apply, for threads: applies the head to columns [j0, j1)
 * of pre [Fp x ncols] into the same columns of out [Fo x ncols], in blocks at multiples of
 * s4__head_block_cols(), so ranges split at those multiples give exactly the whole call's
 * result. scratch: s4__head_scratch(head, ncols) floats. */
int64_t s4__head_block_cols(void);
void s4__head_apply_range(const s4_head *head, const float *pre, int64_t ncols, int64_t j0,
                          int64_t j1, float *out, float *scratch);

/* The head of ncols <= s4__head_block_cols() columns computed by `nparts` threads of an
 * OpenMP parallel region (this is thread `part`; every thread must call it, it holds a
 * barrier): activation rows, then output rows split between them. The output linear runs
 * on the packed affine kernel (s4__head_pack first), whose rounding depends on no split, so
 * the result is the same for any nparts. scratch: one shared s4__head_scratch(head, ncols)
 * floats. */
void s4__head_apply_split(const s4_head *head, const float *pre, int64_t ncols, float *out,
                          float *scratch, int part, int nparts);

/* A step of a plan inside the caller's OpenMP parallel region of nt threads (this is
 * thread tid), for models that run a whole network step per region: every thread of the
 * region must call it (it waits at bar, the team's core/barrier.h barrier); thread tid steps features H tid / nt .. H (tid
 * + 1) / nt - 1 and writes rows Fo tid / nt .. Fo (tid + 1) / nt - 1 of every y[b], with the
 * same bits as s4_step_execute. u must be finite and fully written before the call; y's
 * other rows are another thread's until a barrier. work: the plan's workspace (64-byte
 * aligned). Needs nt <= s4__step_team_threads(p), which is 0 when the plan cannot (its
 * batch takes several head calls). */
int s4__step_team_threads(const s4_step *p);
struct s4__barrier;
void s4__step_team(const s4_step *p, void *state, const float *u, float *y, void *work,
                   struct s4__barrier *bar, int tid, int nt);


/* Options shared by s4_forward_create and s4_stream_create, validated once: *rate,
 * *planner, *threads receive the values (defaults when options is NULL). */
s4_status s4__forward_options(const char *fn, const s4_forward_options *options, double *rate,
                              s4_planner *planner, int *threads);

/* The reference's kernel length for inputs of length L at `rate` (FFTConv.forward,
 * docs/design.md 11): L, or min(L, round(l_max / rate)); fails when that rounds below 1. */
s4_status s4__kernel_length(const char *fn, const s4_layer *layer, int64_t L, double rate,
                            int64_t *l);

/* The reference's C-tilde rules (SSMKernelDPLR.forward) on `ssm`, a clone of the layer's
 * bank: C-tilde for l_max on first use, then doubled while round(rate l) > l_kernel. */
s4_status s4__setup_lengths(s4_ssm *ssm, int64_t l_max, int64_t l, double rate);

#endif
