/* libs4 public API, part of s4.h: HiPPO matrices, NPLR form, the SSM parameter bank.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_SSM_H
#define S4_SSM_H

#include "s4/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* HiPPO matrices and their normal-plus-low-rank form (docs/design.md sections 2-3)      */

typedef enum s4_measure {
    S4_MEASURE_LEGS = 0, /* scaled Legendre, natural rank 1 */
    S4_MEASURE_LEGT = 1, /* translated Legendre (halved), natural rank 2 */
    S4_MEASURE_LAGT = 2, /* translated Laguerre, beta = 1, natural rank 1 */
    S4_MEASURE_FOUT = 3  /* translated Fourier, N even, natural rank 1 */
} s4_measure;

/* Natural rank of a measure's low-rank correction, or -1 for an unknown measure. */
S4_API int s4_measure_rank(s4_measure measure);

/* Dense continuous-time HiPPO system in double precision.
 *   A [N x N] row-major, B [N], P [rank x N] with A + P^T P = c I + skew-symmetric.
 * Any output may be NULL. N >= 1 (FouT: N even); s4_measure_rank(measure) <= rank <= 64;
 * ranks above the natural one pad P with zero rows. */
S4_NODISCARD S4_API s4_status s4_hippo(s4_measure measure, int N, int rank, double *A, double *B,
                                       double *P);

/* NPLR form A = V (diag(Lambda) - P P^*) V^* restricted to the kept half, exactly as the
 * reference initialises S4 (docs/design.md section 3): eigenvalues sorted by imaginary part,
 * the N/2 with Im <= 0 kept, B = V^* B with Im(B) clipped to [-2, 2], P = V^* P.
 *   Lambda [N/2 x 2], P [rank x N/2 x 2], B [N/2 x 2], V [N x N/2 x 2]; any may be NULL.
 * N even and >= 2, rank as for s4_hippo. Eigenvector phases are LAPACK's; phase-invariant
 * quantities (Lambda and, index by index, P P^*, B P^*, B B^*) are what is reproducible.
 * S4_ERR_NUMERICAL if the eigensolver fails; outputs are untouched on any failure. */
S4_NODISCARD S4_API s4_status s4_nplr(s4_measure measure, int N, int rank, double *Lambda,
                                      double *P, double *B, double *V);

/* ------------------------------------------------------------------------------ */
/* The SSM parameter bank (docs/design.md sections 1, 4, 5)                             */

/* How (A, B) of the S trainable copies are initialised (the reference's `init`). */
typedef enum s4_init {
    S4_INIT_LEGS = 0,  /* "legs": NPLR of HiPPO-LegS (the default) */
    S4_INIT_LEGT = 1,  /* "legt": needs rank >= 2 */
    S4_INIT_LAGT = 2,  /* "lagt" */
    S4_INIT_FOUT = 3,  /* "fout" / "fourier" */
    S4_INIT_HIPPO = 4, /* "hippo": first S/2 copies legs, next S/2 fourier (S even) */
    /* The reference's diagonal inits (dplr.py, docs/design.md 10): Re Lambda = -1/2, B = 1 and,
     * in DPLR mode, P = 0. Natural rank 0. */
    S4_INIT_DIAG_LIN = 5,   /* "diag-lin":  Im Lambda = -pi n */
    S4_INIT_DIAG_INV = 6,   /* "diag-inv":  Im Lambda = -N/pi (N/(2n+1) - 1) */
    S4_INIT_DIAG_REAL = 7,  /* "diag-real": Lambda = -(n+1), Im 0 (stored as 1e-4) */
    S4_INIT_DIAG = 8,       /* "diag": first S/2 copies diag-inv, next S/2 diag-lin */
    S4_INIT_DIAG_INV2 = 9,  /* "diag-inv2": Im Lambda = -N/pi (N/(n+1) - 1) */
    S4_INIT_DIAG_QUAD = 10  /* "diag-quad": Im Lambda = -(2n+1)^2/pi */
} s4_init;

/* The SSM's structure (the reference's `mode`). */
typedef enum s4_ssm_mode {
    S4_MODE_DPLR = 0, /* S4: A = diag(Lambda) - P P^*, bilinear, Cauchy kernel ("dplr", "s4") */
    S4_MODE_DIAG = 1  /* S4D: A = diag(Lambda), no P, Vandermonde kernel ("diag", "s4d") */
} s4_ssm_mode;

/* Discretization of a diagonal SSM (the reference's SSMKernelDiag `disc`; docs/design.md 10).
 * DPLR banks are always bilinear and ignore it. */
typedef enum s4_disc {
    S4_DISC_ZOH = 0,      /* dA = exp(dt Lambda), dB = (dA - 1) / Lambda B (the default) */
    S4_DISC_BILINEAR = 1, /* dA = (1 + dt Lambda/2) / (1 - dt Lambda/2), dB = dt B / (1 - ..) */
    S4_DISC_DSS = 2       /* the reference's DSS kernel formula; no step mode */
} s4_disc;

/* Positive-parameter transforms of the reference (`dt_transform`, `real_transform`,
 * `imag_transform`): the stored value x maps to f(x). */
typedef enum s4_transform {
    S4_TRANSFORM_NONE = 0,     /* x */
    S4_TRANSFORM_EXP = 1,      /* exp(x) */
    S4_TRANSFORM_RELU = 2,     /* max(x, 0) + 1e-4 */
    S4_TRANSFORM_SIGMOID = 3,  /* 1 / (1 + exp(-x)) */
    S4_TRANSFORM_SOFTPLUS = 4  /* log(1 + exp(x)) */
} s4_transform;

/* The reference's name of each value, as s4_layer_config_to_json writes it and the config
 * parser reads it (docs/formats.md lists the aliases it also takes): init "legs", "legt",
 * "lagt", "fout", "hippo", "diag-lin", ...; mode "dplr", "diag"; disc "zoh", "bilinear",
 * "dss"; transform "none", "exp", "relu", "sigmoid", "softplus". NULL outside the enum. */
S4_API const char *s4_init_name(s4_init init);
S4_API const char *s4_ssm_mode_name(s4_ssm_mode mode);
S4_API const char *s4_disc_name(s4_disc disc);
S4_API const char *s4_transform_name(s4_transform transform);

/* Sizes and init options of an SSM bank. Fill with s4_ssm_config_default first. */
typedef struct s4_ssm_config {
    int H;             /* features (d_model), >= 1 */
    int N;             /* state size (d_state), even, >= 2 */
    int rank;          /* rank r of the low-rank term, in [1, 64] (>= the init's natural
                          rank); a diagonal bank has no low-rank term and ignores it */
    int n_ssm;         /* S trainable copies of (Lambda, P, B, dt-free); must divide H; 0 = H */
    int channels;      /* C': output channels per direction (the layer's `channels`, times 2
                          when its convolution activation is GLU); D is [C' x H] */
    int bidirectional; /* 0 or 1; kernel rows C'' = C' * (1 + bidirectional) */
    s4_init init;
    double dt_min, dt_max;         /* dt ~ log-uniform in [dt_min, dt_max] at init */
    s4_transform dt_transform;     /* default EXP */
    s4_transform real_transform;   /* default EXP */
    s4_transform imag_transform;   /* default NONE */
    uint64_t seed;                 /* seed of the library's own generator (xoshiro256**) */
    s4_ssm_mode mode;              /* default S4_MODE_DPLR */
    s4_disc disc;                  /* diagonal banks only; default S4_DISC_ZOH */
} s4_ssm_config;

/* The reference S4Block defaults: H = 1, N = 64, rank 1, n_ssm = H, channels 1,
 * unidirectional, legs, dt in [1e-3, 1e-1], transforms exp/exp/none, seed 0, mode DPLR,
 * disc zoh. */
S4_API void s4_ssm_config_default(s4_ssm_config *config);

/* Opaque parameter bank: H SSMs, their stored parameters and derived values in double. */
typedef struct s4_ssm s4_ssm;

/* A fresh bank initialised like the reference: Lambda, P, B from the init (tiled over the
 * S copies), inv_dt from the seeded generator, C complex standard normal (raw, l_kernel 0),
 * D standard normal. A diagonal bank takes Lambda and B of any init (HiPPO inits: the NPLR
 * Lambda and B of DPLR mode, P dropped -- S4D-LegS for legs). The same seed gives the same
 * parameters on every platform (the integer stream is exact; floating values are within
 * libm's last-ulp differences). */
S4_NODISCARD S4_API s4_status s4_ssm_create(const s4_ssm_config *config, s4_ssm **out);

/* Caller arrays in the reference's stored form (docs/design.md section 4), all [.. x 2] complex
 * arrays real-then-imaginary, C order. Values are copied; the arrays may be freed after. */
typedef struct s4_ssm_arrays {
    const double *inv_dt; /* [H]           dt = dt_transform(inv_dt) */
    const double *A_real; /* [S x N/2]     Re Lambda = -real_transform(A_real) */
    const double *A_imag; /* [S x N/2]     Im Lambda = -imag_transform(A_imag) */
    const double *B;      /* [S x N/2 x 2] */
    const double *P;      /* [r x S x N/2 x 2]  (Q = conj(P)); NULL for a diagonal bank */
    const double *C;      /* [C'' x H x N/2 x 2] raw C if l_kernel == 0, else C-tilde */
    const double *D;      /* [C' x H] may be NULL: D = 0 */
    int64_t l_kernel;     /* 0, or the length Lk that C-tilde was computed for (DPLR only:
                             a diagonal bank's C is always raw, l_kernel must be 0) */
} s4_ssm_arrays;

/* A bank from stored parameters (how trained weights arrive). config supplies the sizes,
 * mode, disc and transforms; its init, dt range and seed are ignored. Non-finite values, a
 * dt that maps to a non-positive value, and (DPLR) a non-negative Re(Lambda) are refused.
 * A diagonal bank accepts Re(Lambda) >= 0, as the reference's DSS does (its kernel
 * normalises growing modes); with zoh or bilinear such a mode grows: a kernel whose values
 * would leave the float range fails with S4_ERR_NUMERICAL, and a step follows the growing
 * recurrence as the reference's does. */
S4_NODISCARD S4_API s4_status s4_ssm_create_from_arrays(const s4_ssm_config *config,
                                                        const s4_ssm_arrays *arrays, s4_ssm **out);

/* Frees the bank; NULL is a no-op. */
S4_API void s4_ssm_destroy(s4_ssm *ssm);

/* Deep copy. */
S4_NODISCARD S4_API s4_status s4_ssm_clone(const s4_ssm *ssm, s4_ssm **out);

/* The sizes and options the bank was made with (n_ssm resolved to S). */
S4_NODISCARD S4_API s4_status s4_ssm_get_config(const s4_ssm *ssm, s4_ssm_config *config);

/* Current kernel length: 0 while C is raw, else the Lk that C-tilde belongs to. */
S4_API int64_t s4_ssm_l_kernel(const s4_ssm *ssm);

/* Parameters that can be read back, in double. Stored forms are exactly what was given
 * (or generated); derived forms apply transforms and tiling. */
typedef enum s4_param {
    S4_PARAM_INV_DT = 0, /* [H]                stored */
    S4_PARAM_A_REAL = 1, /* [S x N/2]          stored */
    S4_PARAM_A_IMAG = 2, /* [S x N/2]          stored */
    S4_PARAM_B = 3,      /* [S x N/2 x 2]      stored */
    S4_PARAM_P = 4,      /* [r x S x N/2 x 2]  stored (size 0 in a diagonal bank) */
    S4_PARAM_C = 5,      /* [C'' x H x N/2 x 2] stored: raw C or C-tilde (see l_kernel) */
    S4_PARAM_D = 6,      /* [C' x H]           stored */
    S4_PARAM_DT = 7,     /* [H]                derived: dt_transform(inv_dt) */
    S4_PARAM_LAMBDA = 8  /* [S x N/2 x 2]      derived: -f(A_real) - i g(A_imag) */
} s4_param;

/* Number of doubles that s4_ssm_get_param writes for `which` (0 for an unknown one). */
S4_API size_t s4_ssm_param_size(const s4_ssm *ssm, s4_param which);

/* Copies parameter `which` into out[0 .. n); n must be >= s4_ssm_param_size. */
S4_NODISCARD S4_API s4_status s4_ssm_get_param(const s4_ssm *ssm, s4_param which, double *out,
                                               size_t n);

/* Prepares C-tilde for kernels of length L, with the reference's `l_kernel` rules
 * (docs/design.md section 7.1): if C is raw, C <- C-tilde for Lk = L; otherwise, while
 * L > Lk, C-tilde <- (I + dA^Lk)^T C-tilde and Lk <- 2 Lk. No-op if L <= Lk, and always
 * for a diagonal bank (its C stays raw). dA^Lk by repeated squaring in double. On failure
 * the bank is unchanged. */
S4_NODISCARD S4_API s4_status s4_ssm_setup_length(s4_ssm *ssm, int64_t L);

/* The raw C [C'' x H x N/2 x 2]: a copy if C is raw, else the solution of
 * (I - dA^Lk)^T C_f = C-tilde_f (first half kept). S4_ERR_NUMERICAL if that system is
 * singular to working precision. */
S4_NODISCARD s4_status s4_ssm_raw_C(const s4_ssm *ssm, double *C, size_t n);

/* Dense bilinear discretization of feature h over the full conjugate-extended state
 * (docs/design.md sections 5-6): dA = (I - dt/2 A)^-1 (I + dt/2 A), dB = (I - dt/2 A)^-1 dt B,
 * with A = diag(Lambda_f) - P_f P_f^H.  dA [N x N x 2] row-major, dB [N x 2];
 * either may be NULL. rate multiplies dt (1.0 for the trained sample rate).
 * A diagonal bank gives its diagonal dA and dB by its disc (zoh or bilinear, docs/design.md 10)
 * in the same conjugate-extended form; dss has no (dA, dB): S4_ERR_UNSUPPORTED. */
S4_NODISCARD S4_API s4_status s4_ssm_discretize(const s4_ssm *ssm, int h, double rate, double *dA,
                                                double *dB);

#ifdef __cplusplus
}
#endif
#endif /* S4_SSM_H */
