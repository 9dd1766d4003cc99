/* Shared helpers of the libs4 tests: closeness checks, golden-data paths and loaders,
 * the cases.json manifest, an SSM bank built from a case's stored parameters, and a
 * small runner that turns "one test function x every case" into cmocka tests.
 *
 * Every loader fails the current cmocka test (naming the file) instead of returning an
 * error, so test bodies stay straight-line. Arrays returned are malloc'ed: free() them.
 *
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_TESTUTIL_H
#define S4_TESTUTIL_H

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "s4.h"

#ifndef S4_TEST_DATA_DIR
#error "define S4_TEST_DATA_DIR as the absolute path of tests/data (CMake does)"
#endif

enum { S4T_PATH_MAX = 1024, S4T_MAX_STAGES = 4, S4T_MAX_DIMS = 8 };

/* ---- closeness ------------------------------------------------------------------ */

/* Fails unless |got[i] - want[i]| <= atol + rtol * |want[i]| for every i (NaN fails).
 * The message names `what`, the worst index (largest excess over the bound), got, want,
 * and the relative-to-max error of the whole array. */
void s4t_assert_allclose_(const double *got, const double *want, size_t n, double rtol,
                          double atol, const char *what, const char *file, int line);
#define assert_allclose(got, want, n, rtol, atol, what) \
    s4t_assert_allclose_((got), (want), (n), (rtol), (atol), (what), __FILE__, __LINE__)

/* max_i |got[i] - want[i]| / max_i |want[i]|: the figure the issues quote. NaN anywhere
 * gives NaN (so `err <= tol` is false); an all-zero `want` divides by 1 instead. */
double s4t_max_rel_err(const double *got, const double *want, size_t n);
double s4t_max_abs(const double *x, size_t n);

/* Fails the test with `what`, the figure and the bound unless err <= tol. */
void s4t_assert_rel_(double err, double tol, const char *what, const char *file, int line);
#define assert_rel_err(err, tol, what) s4t_assert_rel_((err), (tol), (what), __FILE__, __LINE__)

/* ---- float <-> double ----------------------------------------------------------- */

void s4t_f2d(const float *x, double *out, size_t n);
double *s4t_f2d_alloc(const float *x, size_t n);
/* n floats (doubles) set to v, malloc'ed (fails the test when out of memory; n = 0 gives a
 * valid one-element block). */
float *s4t_falloc(size_t n, float v);
double *s4t_dalloc(size_t n, double v);
/* *w = max(*w, e), NaN sticking: the running worst error of a test family. */
void s4t_worst(double *w, double e);
/* s4_step_create, failing the test with `what` and the library's message; and a state
 * for the plan (malloc'ed, filled with garbage, then s4_step_state_reset). */
s4_step *s4t_step_or_fail(const s4_layer *layer, s4_step_mode mode, int B, double rate,
                          const char *what);
void *s4t_state_alloc(const s4_step *p);
/* max|a - b| / max|b| of two float arrays. */
double s4t_frel(const float *a, const float *b, size_t n);
/* Deterministic uniform numbers in [-1, 1) (splitmix64; one stream per process, restarted
 * by s4t_urand_seed). */
double s4t_urand(void);
void s4t_urand_seed(uint64_t seed);
/* Removes the files of a flat scratch directory, then the directory; 0 on success. */
int s4t_rmdir_flat(const char *dir);
void s4t_d2f(const double *x, float *out, size_t n);

/* ---- golden data ---------------------------------------------------------------- */

/* buf <- S4_TEST_DATA_DIR "/" fmt...; buf must be an array (its size is taken). */
void s4t_path_(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
#define s4t_path(buf, ...) s4t_path_((buf), sizeof(buf), __VA_ARGS__)

/* Tensor `name` of a safetensors file as doubles (F32, F64, I64); *numel and shape/ndim
 * are optional outputs. s4t_load_tensor fails the test if the file or tensor is missing;
 * s4t_find_tensor returns NULL for a missing tensor (the file must exist). */
double *s4t_load_tensor(const char *path, const char *name, size_t *numel);
double *s4t_find_tensor(const char *path, const char *name, size_t *numel, int *ndim,
                        int64_t shape[S4T_MAX_DIMS]);

/* An .npy file as doubles; ndim and shape are optional outputs. */
double *s4t_load_npy(const char *path, size_t *numel, int *ndim, int64_t shape[S4T_MAX_DIMS]);

/* ---- the cases.json manifest ---------------------------------------------------- */

typedef struct s4t_stage {
    int64_t L;                      /* input length of this forward call */
    int64_t l_kernel_after;         /* l_kernel after the call (float64 run) */
    char K_f64[S4T_PATH_MAX];       /* relative to S4_TEST_DATA_DIR */
    char params_after_f64[S4T_PATH_MAX];
} s4t_stage;

typedef struct s4t_case {
    char name[96];
    /* config fields, reference names where they differ in spelling */
    int H, N, rank;
    int n_ssm;                      /* 0 when null (= H) */
    int channels;                   /* the layer's `channels` (before GLU doubling) */
    int bidirectional;
    int64_t l_max;                  /* 0 when null */
    double dt_min, dt_max;
    char activation[32], init[32], mode[32];
    char dt_transform[32], real_transform[32], imag_transform[32];
    int kernel_channels;            /* C'' */
    char params_init[S4T_PATH_MAX]; /* relative paths */
    char kernel[S4T_PATH_MAX];
    int n_stages;
    s4t_stage stages[S4T_MAX_STAGES];
} s4t_case;

/* Reads S4_TEST_DATA_DIR/cases.json (the S4 cases; s4d/ has its own manifest). */
s4t_case *s4t_cases_load(int *count);

/* C' of a case: channels, times 2 when the activation starts with "glu". */
int s4t_case_cprime(const s4t_case *c);

/* "exp", "softplus", ... -> s4_transform (fails the test on an unknown name). */
s4_transform s4t_transform(const char *name);

/* An s4_ssm_config with the case's sizes and transforms (init is only indicative). */
void s4t_case_config(const s4t_case *c, s4_ssm_config *cfg);

/* A bank from a case's state_dict file (params_init or params_after_*), via
 * s4_ssm_create_from_arrays; fails the test if anything is missing or refused. */
s4_ssm *s4t_ssm_from_params(const s4t_case *c, const char *rel_path);

/* ---- library helpers ------------------------------------------------------------ */

/* A parameter of `ssm` (s4_ssm_get_param), malloc'ed; *n its element count (optional). */
double *s4t_get_param(const s4_ssm *ssm, s4_param which, size_t *n);

/* The reference's length rules for one forward of length L at rate 1 (SSMKernelDPLR and
 * FFTConv, docs/design.md section 11): if C is raw and l_max is set, C-tilde for l_max first;
 * the kernel length is l = L (l_max null) or min(L, l_max); then s4_ssm_setup_length(l)
 * doubles while l > l_kernel. Returns l, the length of the kernel the reference returned. */
int64_t s4t_reference_setup(s4_ssm *ssm, const s4t_case *c, int64_t L);

/* Failure checks: assert_fails(S4_ERR_INVALID_ARGUMENT, s4_xxx(...)) runs the call and
 * fails the test unless it returned that status and left a non-empty last-error message
 * that differs from the one a priming failure left just before the call. */
void s4t_prime_error_(void);
void s4t_assert_failed_(s4_status got, s4_status want, const char *call, const char *file,
                        int line);
#define assert_fails(want, call)                                             \
    do {                                                                     \
        s4t_prime_error_();                                                  \
        s4t_assert_failed_((call), (want), #call, __FILE__, __LINE__);       \
    } while (0)

/* ---- running one test function per case ---------------------------------------- */

typedef struct s4t_suite {
    struct CMUnitTest *tests;
    size_t n, cap;
} s4t_suite;

/* Adds a test; `name` is copied. *state of the test is `state`. */
void s4t_suite_add(s4t_suite *s, const char *name, CMUnitTestFunction fn, void *state);
/* Adds `prefix/<case name>` for every case, with *state = &cases[i]. */
void s4t_suite_add_cases(s4t_suite *s, const char *prefix, CMUnitTestFunction fn,
                         s4t_case *cases, int count);
/* Runs the suite, frees it, returns the number of failures. argv[1], if given, selects
 * tests by a cmocka name pattern ("golden*l16", "*"); argv[2] skips those matching it. */
int s4t_suite_run(s4t_suite *s, const char *group, int argc, char **argv);

#endif
