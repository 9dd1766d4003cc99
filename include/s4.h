/*
 * libs4: S4 structured state-space sequence layers in C.
 *
 * One public header. Conventions (see README.md for an overview):
 *   - Every call that can fail returns an s4_status; on failure the thread's last
 *     error message (s4_last_error) names the offending argument, and the caller's
 *     objects and output arrays are left exactly as they were.
 *   - Complex numbers are two adjacent reals, real part first (the layout of C99
 *     `double complex`, of fftw_complex and of PyTorch's view_as_real).
 *   - Arrays are caller-owned, row-major (C order); shapes are documented as
 *     [dim0 x dim1 x ...] in the prototypes, complex arrays with a trailing x 2.
 *   - Expensive work (LAPACK, discretization, FFTW planning, allocation) happens in
 *     *_create calls; *_execute calls never allocate and are the only calls that may
 *     run concurrently on one plan, each thread with its own workspace.
 *
 * Notation follows the S4 paper and docs/design.md (in the repository): H features (d_model),
 * N state size (N/2 stored conjugate-pair halves), r low-rank rank, S trainable copies,
 * L sequence length, Lk the kernel's internal length (`l_kernel`).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef S4_H
#define S4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define S4_VERSION_MAJOR 0
#define S4_VERSION_MINOR 2
#define S4_VERSION_PATCH 0
#define S4_VERSION_STRING "0.2.0"
/* Single number for compile-time comparisons: 0xMMmmpp. */
#define S4_VERSION ((S4_VERSION_MAJOR << 16) | (S4_VERSION_MINOR << 8) | S4_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define S4_NODISCARD __attribute__((warn_unused_result))
#else
#define S4_NODISCARD
#endif

/* Marks the public functions: the library is built with hidden visibility, so that in a
 * shared build (or a static archive linked into a consumer's shared library) only these
 * are exported and the s4__ internals stay internal. */
#if defined(_WIN32) && defined(S4_SHARED_BUILD)
#define S4_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define S4_API __attribute__((visibility("default")))
#else
#define S4_API
#endif

/* The library's version string, equal to S4_VERSION_STRING of the build. */
S4_API const char *s4_version(void);

/* ------------------------------------------------------------------------------ */
/* Errors                                                                          */

typedef enum s4_status {
    S4_OK = 0,
    S4_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a size out of range, a NaN, a mismatch */
    S4_ERR_OUT_OF_MEMORY = 2,    /* allocation failed, or the request's size overflows */
    S4_ERR_NUMERICAL = 3,        /* a factorization failed or a result is not finite */
    S4_ERR_UNSUPPORTED = 4,      /* valid request that this build does not implement */
    S4_ERR_IO = 5,               /* a file could not be opened, read or written */
    S4_ERR_FORMAT = 6            /* a file's content is malformed */
} s4_status;

/* Static name of a status ("S4_OK", ...); never NULL. */
S4_API const char *s4_status_str(s4_status status);

/* Message of the last failed call on the calling thread ("" if none yet). The string is
 * thread-local and valid until the next failing call on the same thread. */
S4_API const char *s4_last_error(void);

/* ------------------------------------------------------------------------------ */
/* Instruction sets                                                                */
/*
 * Every SIMD kernel is built for each instruction set below beside a portable reference,
 * and one is chosen per process when the first plan is made: the widest this CPU runs, or
 * a narrower one named by the environment variable S4_ISA ("portable", "avx2", "avx512";
 * a name this CPU cannot run falls back to the widest it can, an unknown one is ignored).
 * A plan keeps the kernels of its creation. On a given ISA every result is bitwise the same
 * for any thread count; results of different ISAs agree to rounding.
 */
typedef enum s4_isa {
    S4_ISA_PORTABLE = 0, /* the compiler's baseline (SSE2 on x86-64) */
    S4_ISA_AVX2 = 1,     /* AVX2 and FMA */
    S4_ISA_AVX512 = 2    /* AVX-512F, AVX2 and FMA */
} s4_isa;

/* The instruction set plans made now run on. */
S4_API s4_isa s4_cpu_isa(void);

/* Static name of an instruction set ("portable", "avx2", "avx512"; "unknown" otherwise). */
S4_API const char *s4_isa_name(s4_isa isa);

/* ------------------------------------------------------------------------------ */
/* Memory                                                                          */
/*
 * Every block libs4 allocates for its objects, plans, workspaces and returned arrays goes
 * through one allocator, counted against an optional cap. (FFTW's own plan memory and
 * cJSON's transient parse trees do not: they are freed before the calls return, or belong
 * to FFTW.) A call that would exceed the cap, or whose size overflows size_t, fails with
 * S4_ERR_OUT_OF_MEMORY; whatever it had allocated is freed, and the caller's objects are
 * unchanged, as on every failure.
 */

/* alloc returns `size` bytes aligned to `alignment` (a power of two, 64) or NULL; free
 * releases a block alloc returned. ctx is passed to both. */
typedef struct s4_allocator {
    void *(*alloc)(size_t size, size_t alignment, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} s4_allocator;

/* Installs `allocator` (NULL: the C library's aligned_alloc and free) for every later
 * allocation. Process-wide; refused with S4_ERR_INVALID_ARGUMENT while any libs4 memory is
 * outstanding (s4_memory_in_use() != 0), so that no block is freed by an allocator that did
 * not allocate it: install it at startup. */
S4_NODISCARD S4_API s4_status s4_set_allocator(const s4_allocator *allocator);

/* Caps the bytes libs4 may hold at once (process-wide, headers included); SIZE_MAX (the
 * default) means no cap. Lowering the cap below what is in use only refuses new requests. */
S4_API void s4_set_memory_limit(size_t bytes);

/* Bytes currently allocated by libs4 (every object, plan and returned array not yet freed,
 * with a 64-byte header each). */
S4_API size_t s4_memory_in_use(void);

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

/* FFTW wisdom (single precision), so a deployment can plan with S4_PLANNER_MEASURE once and
 * reuse the result: export to / import from a file. Import returns S4_ERR_FORMAT for a file
 * FFTW does not accept. */
S4_NODISCARD S4_API s4_status s4_wisdom_export(const char *path);
S4_NODISCARD S4_API s4_status s4_wisdom_import(const char *path);

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

/* One chunk of T (1 <= T <= max_chunk) steps: u and y in the layer's layout, state updated
 * in place (on failure it is unchanged). */
S4_NODISCARD S4_API s4_status s4_stream_execute(const s4_stream *plan, double *state,
                                                const float *u, int64_t T, float *y, void *work,
                                                size_t work_size);

/* ------------------------------------------------------------------------------ */
/* Trained models: weights, config, arrays                                          */
/*
 * A trained reference S4Block is two things: its state_dict, saved as safetensors
 * (docs/design.md section 4 gives the names and shapes), and the constructor arguments that the
 * state_dict does not record (activation, final_act, bidirectional, transforms, l_max ...).
 * The latter is a JSON object with the reference's own argument names, given as a file or
 * stored in the safetensors `__metadata__` under the key "s4_config" (a JSON string):
 *
 *   d_model (required), d_state = 64, l_max = null, transposed = true, mode = "dplr",
 *   init = "legs", rank = 1, n_ssm = null, channels = 1, bidirectional = false,
 *   activation = "gelu", final_act = "glu", swap_channels = false, dt_min = 0.001,
 *   dt_max = 0.1, dt_tie = true, dt_transform = "exp", real_transform = "exp",
 *   imag_transform = "none", disc = "zoh" (unused by mode dplr), dt_fast = false,
 *   bandlimit = null, is_real = false.
 *
 * Absent keys take those (the reference's) defaults. Also accepted: the reference's other
 * spellings `kernel` (for mode, with mode null), `measure` (for init, with init null) and
 * `postact` (for final_act, with final_act null); keys that do not change inference
 * (dropout, tie_dropout, drop_kernel, lr, wd, verbose, deterministic, backend, initializer,
 * gate_act); and bottleneck, gate, mult_act, weight_norm at their defaults. Aliases as in the
 * reference: activation "id" / "identity" / "linear" / null, "swish" / "silu", "gelu",
 * "glu", "relu", "tanh", "sigmoid" (and "gelu_tanh", a libs4 extension);
 * final_act "glu", "id" / "identity" / "linear", null (no output linear); mode "dplr" /
 * "nplr" / "s4", "diag" / "s4d"; init "legs", "legt", "lagt", "fout" / "fourier",
 * "hippo", "diag-lin" / "diag-linear", "diag-inv" / "diag-inverse", "diag-real",
 * "diag", "diag-inv2" / "diag-inverse2", "diag-quad" / "diag-quadratic";
 * disc "zoh", "bilinear", "dss" (mode diag only).
 * An unknown key, a value of the wrong JSON type or an unknown value is S4_ERR_FORMAT; a
 * value the reference accepts but libs4 does not implement yet (mode "dense" / "real",
 * dt_tie false, dt_fast true, bandlimit non-null, is_real true, activation "elu" ...) is
 * S4_ERR_UNSUPPORTED. Either way the message names the source and the key.
 */

/* Element types of the files (safetensors "F32", "F64", "I64"; .npy '<f4', '<f8'). */
typedef enum s4_dtype {
    S4_DTYPE_F32 = 0,
    S4_DTYPE_F64 = 1,
    S4_DTYPE_I64 = 2
} s4_dtype;

/* What a parsed config is for. Loading trained weights ignores the init (any init string
 * is accepted; the layer config then reports S4_INIT_LEGS for one libs4 cannot build),
 * while creating a fresh layer (s4_layer_create) needs an init libs4 implements. */
typedef enum s4_config_use {
    S4_CONFIG_FOR_WEIGHTS = 0,
    S4_CONFIG_FOR_INIT = 1
} s4_config_use;

/* Parses a JSON config (NUL-terminated text) into *config, filled with
 * s4_layer_config_default first. `source` names the text in messages (a file name, say;
 * NULL: "config"). *config is untouched on failure. */
S4_NODISCARD S4_API s4_status s4_layer_config_parse(const char *json, const char *source,
                                                    s4_config_use use, s4_layer_config *config);

/* The same, from a file. S4_ERR_IO if it cannot be read. */
S4_NODISCARD S4_API s4_status s4_layer_config_read(const char *path, s4_config_use use,
                                                   s4_layer_config *config);

/* The config as JSON with the reference's names (every key explicit), so that
 * S4Block(**json.load(f)) rebuilds the architecture; *json is allocated: s4_free it.
 * The seed is not part of it. A config the parser would refuse (a NaN dt range, an odd N,
 * ...) is refused with S4_ERR_INVALID_ARGUMENT naming the key. */
S4_NODISCARD S4_API s4_status s4_layer_config_to_json(const s4_layer_config *config, char **json);

/* Frees memory returned by the calls of this section; NULL is a no-op. */
S4_API void s4_free(void *p);

/* Loads a trained layer: the state_dict in `weights_path` (safetensors: F32 or F64
 * parameters, `layer.kernel.l_kernel` I64), the architecture from `config_path`, or from
 * the file's __metadata__ "s4_config" when config_path is NULL. Names and shapes are those
 * of docs/design.md section 4 (`output_linear.0.weight` or `output_linear.weight`, either also
 * as a Conv1d's [F_out x F_in x 1]). C is C-tilde when l_kernel > 0; later forwards
 * follow the reference's length rules (s4_forward_create). A diagonal (S4D) file has no
 * `layer.kernel.P` and no `layer.kernel.l_kernel`. Every tensor must be present
 * with the shape the config implies and no other tensor may be, and every value must be
 * finite (and give dt > 0 and, for DPLR, Re(Lambda) < 0); otherwise S4_ERR_FORMAT with a
 * message naming
 * the file and the tensor (and the expected and found shapes), or the config key; S4_ERR_IO
 * for a file that cannot be read. */
S4_NODISCARD S4_API s4_status s4_layer_load(const char *weights_path, const char *config_path,
                                            s4_layer **out);

/* The same with an architecture given directly (config->ssm.init, dt range and seed are
 * not used). */
S4_NODISCARD S4_API s4_status s4_layer_load_with_config(const char *weights_path,
                                                        const s4_layer_config *config,
                                                        s4_layer **out);

typedef struct s4_save_options {
    s4_dtype dtype;          /* S4_DTYPE_F32 (default, as PyTorch trains) or S4_DTYPE_F64
                                for every parameter; l_kernel is always I64 */
    int plain_linear_names;  /* 1: `output_linear.weight`; 0 (default): the current
                                reference's `output_linear.0.weight` */
    int embed_config;        /* 1 (default): store the config (s4_layer_config_to_json)
                                as __metadata__ "s4_config", so the file loads alone */
} s4_save_options;

S4_API void s4_save_options_default(s4_save_options *options);

/* Writes the layer's stored parameters in the reference's names, shapes and dtype (so a
 * file loaded from F32 and saved as F32 has identical tensor bytes), C as currently held
 * (C-tilde after a forward, with its l_kernel). Written to a temporary name and renamed,
 * so no partial file is left on failure. options may be NULL (defaults). */
S4_NODISCARD S4_API s4_status s4_layer_save(const s4_layer *layer, const char *path,
                                            const s4_save_options *options);

/* The stored output linear: W [F_out x F_in] row-major and b [F_out] (sizes as in
 * s4_layer_arrays); nW, nb must be at least those. S4_ERR_INVALID_ARGUMENT when final_act
 * is S4_FINAL_NONE (no linear). Either array may be NULL. */
S4_NODISCARD S4_API s4_status s4_layer_get_output_linear(const s4_layer *layer, double *W,
                                                         size_t nW, double *b, size_t nb);

/* Read access to any safetensors file (validated as s4_layer_load does: bounds, offsets,
 * overlaps, dtypes F32 / F64 / I64). Opening reads the whole file; calls on an open file
 * are thread-safe. */
typedef struct s4_tensors s4_tensors;

#define S4_MAX_DIMS 8

typedef struct s4_tensor_info {
    const char *name;              /* valid while the file is open */
    s4_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[S4_MAX_DIMS];
    size_t numel;
} s4_tensor_info;

S4_NODISCARD S4_API s4_status s4_tensors_open(const char *path, s4_tensors **out);
S4_API void s4_tensors_close(s4_tensors *file);
S4_API size_t s4_tensors_count(const s4_tensors *file);

/* Tensor i (header order) or by name (S4_ERR_INVALID_ARGUMENT if absent). */
S4_NODISCARD S4_API s4_status s4_tensors_info(const s4_tensors *file, size_t i,
                                              s4_tensor_info *info);
S4_NODISCARD S4_API s4_status s4_tensors_find(const s4_tensors *file, const char *name,
                                              s4_tensor_info *info);

/* Tensor `name` converted to double; n >= its numel. */
S4_NODISCARD S4_API s4_status s4_tensors_read(const s4_tensors *file, const char *name, double *out,
                                              size_t n);

/* The __metadata__ string for `key`, NULL if absent; valid while the file is open. */
S4_API const char *s4_tensors_metadata(const s4_tensors *file, const char *key);

/* .npy arrays: float32 ('<f4') or float64 ('<f8'), C order, rank 0 .. S4_MAX_DIMS,
 * versions 1.0-3.0. Reading converts to the asked type (float64 -> float32 rounds);
 * *data is allocated (s4_free it).
 * Writing goes to a temporary name that is renamed, so no partial file is left behind.
 * Bad magic, Fortran order, big-endian, another dtype, a truncated file: S4_ERR_FORMAT
 * with the file name and what was expected. */
S4_NODISCARD S4_API s4_status s4_npy_read_f32(const char *path, float **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
S4_NODISCARD S4_API s4_status s4_npy_read_f64(const char *path, double **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
/* Integer arrays ('<i8' or '<i4', values within +-2^53), for token sequences; a float
 * file is refused, as the float readers refuse an integer one. */
S4_NODISCARD S4_API s4_status s4_npy_read_i64(const char *path, int64_t **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
S4_NODISCARD S4_API s4_status s4_npy_write_i64(const char *path, const int64_t *data, int ndim,
                                               const int64_t *shape);
S4_NODISCARD S4_API s4_status s4_npy_write_f32(const char *path, const float *data, int ndim,
                                               const int64_t *shape);
S4_NODISCARD S4_API s4_status s4_npy_write_f64(const char *path, const double *data, int ndim,
                                               const int64_t *shape);

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

/* The model config from JSON ({"architecture": "S4Model", "d_input", "d_output",
 * "d_model", "n_layers", "dropout", "prenorm", "layer": {"class": "S4D" | "S4Block", ...}};
 * or "Sashimi" with d_model, n_layers, pool, expand, ff, bidirectional, unet, dropout, "s4";
 * or "SashimiLM" with n_tokens, sample_rate, quantization, "backbone"; docs/models.md),
 * parsed strictly like s4_layer_config_parse: unknown keys, wrong types
 * and inconsistent sizes are S4_ERR_FORMAT naming the key; dropout and lr are accepted and
 * ignored. *config is untouched on failure. */
S4_NODISCARD S4_API s4_status s4_model_config_parse(const char *json, const char *source,
                                                    s4_model_config *config);
S4_NODISCARD S4_API s4_status s4_model_config_read(const char *path, s4_model_config *config);

/* True (1) when the JSON text is a model config ("architecture" present), else 0. */
S4_API int s4_config_is_model(const char *json);

/* A model from its reference state_dict in safetensors (example.py's S4Model, Sashimi or
 * SashimiLM; names in docs/models.md) and its config (config_path NULL: the file's
 * __metadata__ "config"). Every tensor must be present with the shape the config implies,
 * no other tensor may be, and every value finite (and, where the model keeps it in float,
 * within float's range);
 * otherwise S4_ERR_FORMAT naming the file and the tensor (expected and found shapes). */
S4_NODISCARD S4_API s4_status s4_model_load(const char *weights_path, const char *config_path,
                                            s4_model **out);

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

/* WAV files: 16-bit PCM. Reading takes mono or the first channel; writing goes to a
 * temporary name that is renamed (no partial file on failure). Samples as doubles in
 * [-1, 1] (write: round(a * 32767), clamped). *data is allocated: s4_free it. */
S4_NODISCARD S4_API s4_status s4_wav_read(const char *path, double **data, size_t *n,
                                          int *sample_rate);
/* channels interleaved: data [n x channels]. */
S4_NODISCARD S4_API s4_status s4_wav_write(const char *path, const double *data, size_t n,
                                           int channels, int sample_rate);

#ifdef __cplusplus
}
#endif
#endif /* S4_H */
