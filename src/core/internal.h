/* Shared internals of libs4: error reporting, checked sizes, complex helpers.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_INTERNAL_H
#define S4_INTERNAL_H

#include "s4.h"

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* C11's CMPLX: glibc's <complex.h> defines it only for GCC >= 4.7, so clang (which says
 * __GNUC__ 4.2) would see an undeclared function. Both compilers have the builtin. */
#if !defined(CMPLX) && (defined(__GNUC__) || defined(__clang__))
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define S4_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define S4_PRINTF(a, b)
#endif

/* Constants spelled out: strict C11 has no M_PI. */
#define S4_PI 3.14159265358979323846264338327950288
#define S4_SQRT1_2 0.70710678118654752440084436210484904

/* Largest low-rank rank accepted anywhere (reference models use 1 to 3). */
#define S4_MAX_RANK 64

/* Records `fmt` as the thread's last error message and returns `status`, so that a
 * failure path reads `return s4__fail(S4_ERR_INVALID_ARGUMENT, "N = %d: ...", N);`.
 * Messages start with the name of the function or argument they are about. */
s4_status s4__fail(s4_status status, const char *fmt, ...) S4_PRINTF(2, 3);

/* Checked size arithmetic: false on overflow (then *out is unspecified). */
static inline bool s4__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool s4__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* x rounded up to a multiple of a (a > 0; x + a - 1 must not overflow). */
static inline size_t s4__round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Alignment of every workspace region and of the plans' own workspaces (a cache line, and
 * what the widest vector loads want). */
#define S4_ALIGN 64

/* Carving a plan's workspace into regions: each s4__carve takes count x size bytes at the
 * next S4_ALIGN boundary of `base` and returns where they start; base NULL is a sizing pass
 * (returns NULL, only counts). Any overflow clears ok; the total is then meaningless.
 * Every plan sizes its workspace with one pass and carves it with the same calls. */
typedef struct s4_carver {
    unsigned char *base; /* S4_ALIGN-aligned, or NULL to size */
    size_t off;          /* bytes taken so far */
    bool ok;
} s4_carver;

static inline void *s4__carve(s4_carver *c, size_t count, size_t size)
{
    size_t n = 0;
    c->ok = c->ok && s4__mul_size(count, size, &n) && n <= SIZE_MAX - S4_ALIGN &&
            s4__add_size(c->off, s4__round_up(n, S4_ALIGN), &n);
    if (!c->ok)
        return NULL;
    void *p = c->base ? c->base + c->off : NULL;
    c->off = n;
    return p;
}

/* Every allocation of the library (see "Memory" in s4.h): `bytes` aligned to 64 through the
 * installed allocator, counted against the cap; NULL on failure (the caller reports
 * S4_ERR_OUT_OF_MEMORY). s4__free takes NULL. Blocks carry a 64-byte header with their
 * size, so only s4__free (or the public s4_free) may release them. */
void *s4__malloc(size_t bytes);
void s4__free(void *p);
/* n elements of `size` bytes with overflow check (calloc: zeroed). */
void *s4__alloc(size_t n, size_t size);
void *s4__calloc(size_t n, size_t size);

/* Reference semantics of Python's round() (half to even) for a positive double. */
int64_t s4__round_half_even(double x);

/* While our own threads call sgemm (the heads), and around plan setup's LAPACK and BLAS
 * calls on matrices far too small for threads (OpenBLAS's zgetrf_parallel on the 64 x 64
 * systems of C-tilde spent most of a busy machine's time in sched_yield, perf), OpenBLAS
 * (pthreads build) must not start its pool: hold sets its process-wide thread count to 1
 * (the first holder saves the old count), release restores it when the last holder
 * leaves. */
void s4__blas_hold(void);
void s4__blas_release(void);

/* FFTW's planner is not thread-safe: every plan creation and destruction in libs4 holds
 * this process-wide lock (execution needs none). */
void s4__fftw_lock(void);
void s4__fftw_unlock(void);

/* Index of the first NaN or Inf in x[0 .. n), or n when all are finite. Execute calls
 * refuse non-finite inputs up front: an FFT would spread one NaN to every output, and the
 * brief forbids returning NaN silently. */
size_t s4__first_nonfinite_f(const float *x, size_t n);
size_t s4__first_nonfinite_d(const double *x, size_t n);

/* The scratch of an execute call, aligned up to 64 bytes: the caller's `work` (then
 * work_size must be at least `need`, which includes 64 bytes of alignment slack) or, when
 * work is NULL, the plan's own `own`. NULL with the thread's error set when work_size is
 * too small. */
unsigned char *s4__workspace(const char *fn, void *work, size_t work_size, size_t need,
                             void *own);

/* a * b and Re(a * b) without C99 Annex G's NaN/Inf recovery call (__muldc3): the hot
 * loops multiply finite numbers and the library call would dominate their cost. */
static inline double complex s4__cmul(double complex a, double complex b)
{
    const double ar = creal(a), ai = cimag(a), br = creal(b), bi = cimag(b);
    return CMPLX(ar * br - ai * bi, ar * bi + ai * br);
}
static inline double s4__cmul_re(double complex a, double complex b)
{
    return creal(a) * creal(b) - cimag(a) * cimag(b);
}

/* Natural rank of an init (1 for legs, lagt, fout, hippo; 2 for legt; 0 for the diagonal
 * inits, whose P is zero; -1 for an unknown init). */
int s4__init_rank(s4_init init);

#endif /* S4_INTERNAL_H */
