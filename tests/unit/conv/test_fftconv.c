#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkstemp, mkdtemp */
/* FFT convolution (docs/design.md section 8): s4_conv_* against a direct O(L^2) convolution in
 * double over every L in 1..300 and two long lengths, causal and bidirectional, kernels
 * shorter than, as long as and longer than the input; the MEASURE planner; wisdom files;
 * caller workspaces and leading dimensions; concurrent execution; argument checking.
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The bound on max|y - y_direct| / max|y_direct|. Never loosen. */
#define TOL_DIRECT 1e-5
/* MEASURE against ESTIMATE plans (different FFT algorithms, same math). */
#define TOL_PLANNER 1e-6

static const float FSENTINEL = -12345.5f;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: a seeded, platform-independent stream. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_uniform(uint64_t *s)
{
    return (float)((double)(rng_next(s) >> 11) * 0x1.0p-52 - 1.0);
}


static float *frandom(size_t n, uint64_t *s)
{
    float *x = s4t_falloc(n, 0.0f);
    for (size_t i = 0; i < n; i++)
        x[i] = rng_uniform(s);
    return x;
}

/* Skip weights of magnitude in [0.5, 1), random sign: never zero. */
static float *drandom(size_t n, uint64_t *s)
{
    float *x = s4t_falloc(n, 0.0f);
    for (size_t i = 0; i < n; i++) {
        const float v = rng_uniform(s);
        x[i] = (v < 0.0f ? -0.5f : 0.5f) + 0.5f * v;
    }
    return x;
}

static int fall_equal(const float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}

static int is_smooth7(int64_t n)
{
    static const int64_t primes[] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        while (n % primes[i] == 0)
            n /= primes[i];
    return n == 1;
}

/* The direct convolution of docs/design.md 8 in double, exactly as written there:
 *   y[b][c][h][t] = sum_{j <= t} k0[t - j] u[j] + sum_{j > t} k1[j - t - 1] u[j]
 *                   + D[c][h] u[t],
 * k0 = K[c][h], k1 = K[C' + c][h] (bidirectional only), taps past l are zero.
 * K [C'' x H x ldk], u [B x H x ldu], D [C' x H] or NULL, y [B x C' x H x L] packed. */
static void direct_conv(const s4_conv_desc *d, const float *K, size_t ldk, const float *u,
                        size_t ldu, const float *D, double *y)
{
    const int64_t L = d->L, l = d->l;
    const size_t H = (size_t)d->H, Cp = (size_t)d->channels;
    for (size_t b = 0; b < (size_t)d->B; b++)
        for (size_t c = 0; c < Cp; c++)
            for (size_t h = 0; h < H; h++) {
                const float *ur = u + (b * H + h) * ldu;
                const float *k0 = K + (c * H + h) * ldk;
                const float *k1 = K + ((Cp + c) * H + h) * ldk;
                double *yr = y + ((b * Cp + c) * H + h) * (size_t)L;
                for (int64_t t = 0; t < L; t++) {
                    double acc = 0.0;
                    for (int64_t j = t - l + 1 > 0 ? t - l + 1 : 0; j <= t; j++)
                        acc += (double)k0[t - j] * (double)ur[j];
                    if (d->bidirectional) {
                        const int64_t jmax = t + l < L - 1 ? t + l : L - 1;
                        for (int64_t j = t + 1; j <= jmax; j++)
                            acc += (double)k1[j - t - 1] * (double)ur[j];
                    }
                    if (D)
                        acc += (double)D[c * H + h] * (double)ur[t];
                    yr[t] = acc;
                }
            }
}

static s4_conv *plan_or_fail(const s4_conv_desc *d)
{
    s4_conv *plan = NULL;
    const s4_status st = s4_conv_create(d, &plan);
    if (st != S4_OK || !plan)
        fail_msg("s4_conv_create(B %d H %d C' %d bidir %d L %lld l %lld planner %d): %s: %s",
                 d->B, d->H, d->channels, d->bidirectional, (long long)d->L, (long long)d->l,
                 (int)d->planner, s4_status_str(st), s4_last_error());
    return plan;
}

static void ok_or_fail(s4_status st, const char *what)
{
    if (st != S4_OK)
        fail_msg("%s: %s: %s", what, s4_status_str(st), s4_last_error());
}

static size_t ysize(const s4_conv_desc *d, size_t ldy)
{
    return (size_t)d->B * (size_t)d->channels * (size_t)d->H * ldy;
}

/* Spectrum and convolution with one plan, packed leading dimensions; y malloc'ed. */
static float *fft_conv(const s4_conv *plan, const s4_conv_desc *d, const float *K,
                       size_t ldk, const float *u, size_t ldu, const float *D)
{
    const size_t ws = s4_conv_workspace_size(plan);
    void *work = malloc(ws);
    float *spec = s4t_falloc(2 * s4_conv_spectrum_size(plan), 0.0f);
    float *y = s4t_falloc(ysize(d, (size_t)d->L), FSENTINEL);
    assert_non_null(work);
    ok_or_fail(s4_conv_spectrum(plan, K, ldk, spec, work, ws), "s4_conv_spectrum");
    ok_or_fail(s4_conv_execute(plan, spec, u, ldu, D, y, (size_t)d->L, work, ws),
               "s4_conv_execute");
    free(spec);
    free(work);
    return y;
}

/* max|got - want| / max|want| over a [.. x L] output. */
static double rel_err_f(const float *got, const double *want, size_t n)
{
    double *g = s4t_f2d_alloc(got, n);
    const double e = s4t_max_rel_err(g, want, n);
    free(g);
    return e;
}

/* One comparison against the direct convolution; returns the error. */
static double check_case(int bidir, int64_t L, int64_t l, uint64_t seed)
{
    const s4_conv_desc d = {.B = 2, .H = 2, .channels = 2, .bidirectional = bidir, .L = L,
                            .l = l, .planner = S4_PLANNER_ESTIMATE};
    uint64_t s = seed;
    const size_t rows = (size_t)d.channels * (size_t)(1 + bidir);
    float *K = frandom(rows * (size_t)d.H * (size_t)l, &s);
    float *u = frandom((size_t)d.B * (size_t)d.H * (size_t)L, &s);
    float *D = drandom((size_t)d.channels * (size_t)d.H, &s);
    s4_conv *plan = plan_or_fail(&d);

    /* FFT length: 7-smooth, the smallest >= L + l - 1 (+1 bidirectional). */
    const int64_t need = L + l - 1 + bidir, n = s4_conv_fft_length(plan);
    if (n < need || !is_smooth7(n))
        fail_msg("L %lld l %lld bidir %d: FFT length %lld is not a 7-smooth >= %lld",
                 (long long)L, (long long)l, bidir, (long long)n, (long long)need);
    for (int64_t m = need; m < n; m++)
        if (is_smooth7(m))
            fail_msg("L %lld l %lld bidir %d: FFT length %lld, but %lld is 7-smooth too",
                     (long long)L, (long long)l, bidir, (long long)n, (long long)m);
    assert_int_equal(s4_conv_spectrum_size(plan),
                     (size_t)d.channels * (size_t)d.H * (size_t)(n / 2 + 1));

    float *y = fft_conv(plan, &d, K, (size_t)l, u, (size_t)L, D);
    const size_t ny = ysize(&d, (size_t)L);
    double *yd = malloc(ny * sizeof *yd);
    assert_non_null(yd);
    direct_conv(&d, K, (size_t)l, u, (size_t)L, D, yd);
    const double err = rel_err_f(y, yd, ny);
    if (!(err <= TOL_DIRECT))
        fail_msg("%s L %lld l %lld (n %lld): max rel error %.3e > %.1e",
                 bidir ? "bidirectional" : "causal", (long long)L, (long long)l, (long long)n,
                 err, TOL_DIRECT);
    free(yd), free(y), free(K), free(u), free(D);
    s4_conv_destroy(plan);
    return err;
}

/* Every L in 1..300 and L in {1000, 4096}; kernel lengths L, max(1, L/3), 2L. */
static void test_vs_direct(void **state)
{
    const int bidir = (int)(intptr_t)*state;
    static const char *const names[3] = {"l = L", "l = max(1, L/3)", "l = 2L"};
    double worst[3] = {0, 0, 0};
    int64_t worst_L[3] = {0, 0, 0};
    const double t0 = now();
    int count = 0;
    for (int64_t i = 1; i <= 302; i++) {
        const int64_t L = i <= 300 ? i : i == 301 ? 1000 : 4096;
        const int64_t ls[3] = {L, L / 3 > 1 ? L / 3 : 1, 2 * L};
        for (int v = 0; v < 3; v++) {
            const uint64_t seed = 0x5EED0000u + (uint64_t)L * 16 + (uint64_t)v * 4 +
                                  (uint64_t)bidir;
            const double e = check_case(bidir, L, ls[v], seed);
            count++;
            if (e > worst[v]) {
                worst[v] = e;
                worst_L[v] = L;
            }
        }
    }
    for (int v = 0; v < 3; v++)
        print_message("%-13s %-16s worst max rel error %.2e (at L = %lld)\n",
                      bidir ? "bidirectional" : "causal", names[v], worst[v],
                      (long long)worst_L[v]);
    print_message("%d cases in %.2f s\n", count, now() - t0);
}

/* No skip term: D = NULL is the pure convolution. */
static void test_no_skip(void **state)
{
    (void)state;
    for (int bidir = 0; bidir <= 1; bidir++) {
        const s4_conv_desc d = {.B = 2, .H = 3, .channels = 2, .bidirectional = bidir,
                                .L = 123, .l = 77, .planner = S4_PLANNER_ESTIMATE};
        uint64_t s = 99 + (uint64_t)bidir;
        const size_t rows = (size_t)d.channels * (size_t)(1 + bidir);
        float *K = frandom(rows * (size_t)d.H * (size_t)d.l, &s);
        float *u = frandom((size_t)d.B * (size_t)d.H * (size_t)d.L, &s);
        s4_conv *plan = plan_or_fail(&d);
        float *y = fft_conv(plan, &d, K, (size_t)d.l, u, (size_t)d.L, NULL);
        const size_t ny = ysize(&d, (size_t)d.L);
        double *yd = malloc(ny * sizeof *yd);
        assert_non_null(yd);
        direct_conv(&d, K, (size_t)d.l, u, (size_t)d.L, NULL, yd);
        assert_rel_err(rel_err_f(y, yd, ny), TOL_DIRECT, "D = NULL vs direct");
        free(yd), free(y), free(K), free(u);
        s4_conv_destroy(plan);
    }
}

/* FFTW_MEASURE plans give the ESTIMATE results to 1e-6; wisdom exported after measuring
 * imports again, and a file FFTW does not accept is S4_ERR_FORMAT. */
static void test_measure_and_wisdom(void **state)
{
    (void)state;
    static const int64_t Ls[] = {1, 17, 300, 1000};
    double worst = 0.0;
    const double t0 = now();
    for (int bidir = 0; bidir <= 1; bidir++)
        for (size_t i = 0; i < sizeof Ls / sizeof Ls[0]; i++) {
            s4_conv_desc d = {.B = 2, .H = 2, .channels = 2, .bidirectional = bidir,
                              .L = Ls[i], .l = Ls[i], .planner = S4_PLANNER_ESTIMATE};
            uint64_t s = 777 + (uint64_t)i;
            const size_t rows = (size_t)d.channels * (size_t)(1 + bidir);
            float *K = frandom(rows * (size_t)d.H * (size_t)d.l, &s);
            float *u = frandom((size_t)d.B * (size_t)d.H * (size_t)d.L, &s);
            float *D = drandom((size_t)d.channels * (size_t)d.H, &s);
            s4_conv *pe = plan_or_fail(&d);
            d.planner = S4_PLANNER_MEASURE;
            s4_conv *pm = plan_or_fail(&d);
            assert_int_equal(s4_conv_fft_length(pe), s4_conv_fft_length(pm));
            float *ye = fft_conv(pe, &d, K, (size_t)d.l, u, (size_t)d.L, D);
            float *ym = fft_conv(pm, &d, K, (size_t)d.l, u, (size_t)d.L, D);
            const size_t ny = ysize(&d, (size_t)d.L);
            double *yed = s4t_f2d_alloc(ye, ny);
            const double e = rel_err_f(ym, yed, ny);
            assert_rel_err(e, TOL_PLANNER, "MEASURE vs ESTIMATE");
            worst = fmax(worst, e);
            double *yd = malloc(ny * sizeof *yd);
            assert_non_null(yd);
            direct_conv(&d, K, (size_t)d.l, u, (size_t)d.L, D, yd);
            assert_rel_err(rel_err_f(ym, yd, ny), TOL_DIRECT, "MEASURE vs direct");
            free(yd), free(yed), free(ye), free(ym), free(K), free(u), free(D);
            s4_conv_destroy(pe);
            s4_conv_destroy(pm);
        }
    print_message("MEASURE vs ESTIMATE: worst max rel difference %.2e (%.2f s)\n", worst,
                  now() - t0);

    /* Round trip through a temporary file in the working (build) directory. */
    char path[] = "s4_fftconv_wisdom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ok_or_fail(s4_wisdom_export(path), "s4_wisdom_export");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char head[64] = {0};
    const size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    if (got == 0 || !strstr(head, "fftwf_wisdom"))
        fail_msg("exported wisdom does not look like fftwf wisdom: \"%s\"", head);
    ok_or_fail(s4_wisdom_import(path), "s4_wisdom_import (round trip)");
    {
        /* A MEASURE plan after the import still plans and runs. */
        const s4_conv_desc d = {.B = 1, .H = 1, .channels = 1, .bidirectional = 0, .L = 300,
                                .l = 300, .planner = S4_PLANNER_MEASURE};
        s4_conv *p = plan_or_fail(&d);
        s4_conv_destroy(p);
    }

    /* Content FFTW refuses: S4_ERR_FORMAT, naming the file. */
    static const char *const garbage[] = {
        "this is not wisdom\n",
        "(fftw-3.3.10 fftw_wisdom #x0 #x0 #x0 #x0\n)\n", /* double precision header */
        "(fftwf-3.3 fftwf_wisdom\n  (broken",
        "",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(garbage[i], f);
        fclose(f);
        assert_fails(S4_ERR_FORMAT, s4_wisdom_import(path));
        if (!strstr(s4_last_error(), path))
            fail_msg("import message does not name the file: \"%s\"", s4_last_error());
    }
    unlink(path);

    /* Files that cannot be opened: S4_ERR_IO. */
    assert_fails(S4_ERR_IO, s4_wisdom_import("no_such_dir_s4/wisdom"));
    assert_fails(S4_ERR_IO, s4_wisdom_export("no_such_dir_s4/wisdom"));
    assert_fails(S4_ERR_IO, s4_wisdom_export("."));
    assert_fails(S4_ERR_IO, s4_wisdom_import("."));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_wisdom_export(NULL));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_wisdom_import(NULL));

    /* The planner still works after the refused imports. */
    const s4_conv_desc d = {.B = 1, .H = 1, .channels = 1, .bidirectional = 1, .L = 64,
                            .l = 64, .planner = S4_PLANNER_MEASURE};
    s4_conv *p = plan_or_fail(&d);
    s4_conv_destroy(p);
}

/* Caller workspaces misaligned by 1..7 bytes and filled with NaN bytes, leading dimensions
 * above L with sentinel padding: bitwise the same as a packed, aligned reference run. */
static void test_workspace_and_strides(void **state)
{
    (void)state;
    for (int bidir = 0; bidir <= 1; bidir++) {
        const s4_conv_desc d = {.B = 2, .H = 3, .channels = 2, .bidirectional = bidir,
                                .L = 77, .l = 50, .planner = S4_PLANNER_ESTIMATE};
        const size_t L = (size_t)d.L, l = (size_t)d.l, H = (size_t)d.H;
        const size_t rows = (size_t)d.channels * (size_t)(1 + bidir);
        uint64_t s = 4242 + (uint64_t)bidir;
        float *K = frandom(rows * H * l, &s);
        float *u = frandom((size_t)d.B * H * L, &s);
        float *D = drandom((size_t)d.channels * H, &s);
        s4_conv *plan = plan_or_fail(&d);
        const size_t ws = s4_conv_workspace_size(plan), nspec = 2 * s4_conv_spectrum_size(plan);
        const size_t ny = ysize(&d, L);

        /* Reference run: aligned workspace, packed arrays. */
        void *wref = aligned_alloc(64, (ws + 63) / 64 * 64);
        assert_non_null(wref);
        float *spec_ref = s4t_falloc(nspec, 0.0f);
        float *y_ref = s4t_falloc(ny, FSENTINEL);
        ok_or_fail(s4_conv_spectrum(plan, K, l, spec_ref, wref, ws), "spectrum (reference)");
        ok_or_fail(s4_conv_execute(plan, spec_ref, u, L, D, y_ref, L, wref, ws),
                   "execute (reference)");

        /* work = NULL runs on the plan's own scratch, bitwise the same. */
        float *spec_own = s4t_falloc(nspec, 0.0f), *y_own = s4t_falloc(ny, FSENTINEL);
        ok_or_fail(s4_conv_spectrum(plan, K, l, spec_own, NULL, 0), "spectrum (own scratch)");
        ok_or_fail(s4_conv_execute(plan, spec_own, u, L, D, y_own, L, NULL, 0),
                   "execute (own scratch)");
        assert_memory_equal(spec_own, spec_ref, nspec * sizeof *spec_own);
        assert_memory_equal(y_own, y_ref, ny * sizeof *y_own);
        free(spec_own);
        free(y_own);

        /* Strided copies of K and u, with sentinels in the padding. */
        const size_t ldk = l + 9, ldu = L + 5, ldy = L + 3;
        float *Ks = s4t_falloc(rows * H * ldk, FSENTINEL);
        for (size_t r = 0; r < rows * H; r++)
            memcpy(Ks + r * ldk, K + r * l, l * sizeof *K);
        float *us = s4t_falloc((size_t)d.B * H * ldu, FSENTINEL);
        for (size_t r = 0; r < (size_t)d.B * H; r++)
            memcpy(us + r * ldu, u + r * L, L * sizeof *u);

        unsigned char *raw = malloc(ws + 8);
        assert_non_null(raw);
        float *spec = s4t_falloc(nspec, 0.0f);
        float *y = s4t_falloc(ysize(&d, ldy), FSENTINEL);
        for (size_t off = 1; off <= 7; off++) {
            memset(raw, 0xFF, ws + 8); /* NaN bytes: nothing may be read before written */
            void *work = raw + off;
            ok_or_fail(s4_conv_spectrum(plan, Ks, ldk, spec, work, ws), "spectrum (offset)");
            if (memcmp(spec, spec_ref, nspec * sizeof *spec) != 0)
                fail_msg("bidir %d: spectrum with workspace offset %zu and ldk %zu differs "
                         "from the reference",
                         bidir, off, ldk);
            memset(raw, 0xFF, ws + 8);
            ok_or_fail(s4_conv_execute(plan, spec, us, ldu, D, y, ldy, work, ws),
                       "execute (offset)");
            for (size_t r = 0; r < ny / L; r++) {
                if (memcmp(y + r * ldy, y_ref + r * L, L * sizeof *y) != 0)
                    fail_msg("bidir %d: output row %zu with workspace offset %zu, ldu %zu, "
                             "ldy %zu differs from the reference",
                             bidir, r, off, ldu, ldy);
                if (!fall_equal(y + r * ldy + L, ldy - L, FSENTINEL))
                    fail_msg("bidir %d: padding of output row %zu was written", bidir, r);
            }
        }
        /* The inputs' padding is never written either. */
        for (size_t r = 0; r < (size_t)d.B * H; r++)
            assert_true(fall_equal(us + r * ldu + L, ldu - L, FSENTINEL));
        for (size_t r = 0; r < rows * H; r++)
            assert_true(fall_equal(Ks + r * ldk + l, ldk - l, FSENTINEL));

        free(raw), free(spec), free(y), free(Ks), free(us);
        free(wref), free(spec_ref), free(y_ref), free(K), free(u), free(D);
        s4_conv_destroy(plan);
    }
}

typedef struct job {
    const s4_conv *plan;
    const float *spec, *u, *D;
    size_t L, ny, ws;
    int reps;
    float *y;
    s4_status st;
} job;

static void *execute_thread(void *arg)
{
    job *j = arg;
    void *work = malloc(j->ws);
    j->st = work ? S4_OK : S4_ERR_OUT_OF_MEMORY;
    for (int r = 0; r < j->reps && j->st == S4_OK; r++) {
        for (size_t i = 0; i < j->ny; i++)
            j->y[i] = FSENTINEL;
        j->st = s4_conv_execute(j->plan, j->spec, j->u, j->L, j->D, j->y, j->L, work, j->ws);
    }
    free(work);
    return NULL;
}

/* Several threads executing one plan, each with its own workspace: bitwise serial. */
static void test_threads(void **state)
{
    (void)state;
    enum { NT = 4 };
    for (int bidir = 0; bidir <= 1; bidir++) {
        const s4_conv_desc d = {.B = 3, .H = 4, .channels = 2, .bidirectional = bidir,
                                .L = 1000, .l = 1000, .planner = S4_PLANNER_ESTIMATE};
        const size_t L = (size_t)d.L, H = (size_t)d.H;
        const size_t rows = (size_t)d.channels * (size_t)(1 + bidir);
        uint64_t s = 31337 + (uint64_t)bidir;
        float *K = frandom(rows * H * L, &s);
        float *u = frandom((size_t)d.B * H * L, &s);
        float *D = drandom((size_t)d.channels * H, &s);
        s4_conv *plan = plan_or_fail(&d);
        const size_t ws = s4_conv_workspace_size(plan), ny = ysize(&d, L);
        void *work = malloc(ws);
        float *spec = s4t_falloc(2 * s4_conv_spectrum_size(plan), 0.0f);
        float *y_ser = s4t_falloc(ny, FSENTINEL);
        assert_non_null(work);
        ok_or_fail(s4_conv_spectrum(plan, K, L, spec, work, ws), "spectrum");
        ok_or_fail(s4_conv_execute(plan, spec, u, L, D, y_ser, L, work, ws), "serial execute");

        job jobs[NT];
        pthread_t tid[NT];
        for (int i = 0; i < NT; i++) {
            jobs[i] = (job){.plan = plan, .spec = spec, .u = u, .D = D, .L = L, .ny = ny,
                            .ws = ws, .reps = 5, .y = s4t_falloc(ny, FSENTINEL), .st = S4_OK};
            assert_int_equal(pthread_create(&tid[i], NULL, execute_thread, &jobs[i]), 0);
        }
        for (int i = 0; i < NT; i++)
            assert_int_equal(pthread_join(tid[i], NULL), 0);
        for (int i = 0; i < NT; i++) {
            if (jobs[i].st != S4_OK)
                fail_msg("thread %d: %s", i, s4_status_str(jobs[i].st));
            if (memcmp(jobs[i].y, y_ser, ny * sizeof *y_ser) != 0)
                fail_msg("bidir %d: thread %d's output differs from the serial run", bidir, i);
            free(jobs[i].y);
        }
        free(work), free(spec), free(y_ser), free(K), free(u), free(D);
        s4_conv_destroy(plan);
    }
}

/* assert_fails, and the message names `name`. */
#define assert_fails_naming(want, name, call)                                                 \
    do {                                                                                      \
        assert_fails((want), (call));                                                         \
        if (!strstr(s4_last_error(), (name)))                                                 \
            fail_msg("%s: message \"%s\" does not name %s", #call, s4_last_error(), (name));  \
    } while (0)

static void test_create_invalid(void **state)
{
    (void)state;
    const s4_conv_desc good = {.B = 2, .H = 2, .channels = 2, .bidirectional = 0, .L = 16,
                               .l = 16, .planner = S4_PLANNER_ESTIMATE};
    s4_conv *const untouched = (s4_conv *)(uintptr_t)0x5A5A5A5A;
    s4_conv *plan = untouched;
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "desc", s4_conv_create(NULL, &plan));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "out", s4_conv_create(&good, NULL));

    struct {
        s4_conv_desc d;
        s4_status want;
        const char *name;
    } bad[32];
    size_t nb = 0;
#define BAD(field, value, status, nm)                                                         \
    do {                                                                                      \
        bad[nb].d = good;                                                                     \
        bad[nb].d.field = (value);                                                            \
        bad[nb].want = (status);                                                              \
        bad[nb].name = (nm);                                                                  \
        nb++;                                                                                 \
    } while (0)
    BAD(B, 0, S4_ERR_INVALID_ARGUMENT, "desc->B");
    BAD(B, -3, S4_ERR_INVALID_ARGUMENT, "desc->B");
    BAD(B, INT_MIN, S4_ERR_INVALID_ARGUMENT, "desc->B");
    BAD(H, 0, S4_ERR_INVALID_ARGUMENT, "desc->H");
    BAD(H, -1, S4_ERR_INVALID_ARGUMENT, "desc->H");
    BAD(channels, 0, S4_ERR_INVALID_ARGUMENT, "desc->channels");
    BAD(channels, -2, S4_ERR_INVALID_ARGUMENT, "desc->channels");
    BAD(bidirectional, 2, S4_ERR_INVALID_ARGUMENT, "desc->bidirectional");
    BAD(bidirectional, -1, S4_ERR_INVALID_ARGUMENT, "desc->bidirectional");
    BAD(L, 0, S4_ERR_INVALID_ARGUMENT, "desc->L");
    BAD(L, -5, S4_ERR_INVALID_ARGUMENT, "desc->L");
    BAD(L, INT64_MIN, S4_ERR_INVALID_ARGUMENT, "desc->L");
    BAD(l, 0, S4_ERR_INVALID_ARGUMENT, "desc->l");
    BAD(l, -1, S4_ERR_INVALID_ARGUMENT, "desc->l");
    BAD(planner, (s4_planner)2, S4_ERR_INVALID_ARGUMENT, "desc->planner");
    BAD(planner, (s4_planner)-1, S4_ERR_INVALID_ARGUMENT, "desc->planner");
    /* Past FFTW's int lengths, and int64 overflow of L + l. */
    BAD(L, INT64_MAX, S4_ERR_INVALID_ARGUMENT, "desc->L");
    BAD(l, INT64_MAX, S4_ERR_INVALID_ARGUMENT, "desc->l");
    BAD(L, (int64_t)INT_MAX, S4_ERR_INVALID_ARGUMENT, "desc->L"); /* 2^31 - 1 is prime */
    BAD(l, (int64_t)INT_MAX - 15, S4_ERR_INVALID_ARGUMENT, "desc->l");
#undef BAD
    for (size_t i = 0; i < nb; i++) {
        plan = untouched;
        assert_fails_naming(bad[i].want, bad[i].name, s4_conv_create(&bad[i].d, &plan));
        if (plan != untouched)
            fail_msg("bad desc %zu: *out was written", i);
    }
    /* Sizes whose arrays overflow size_t: S4_ERR_OUT_OF_MEMORY. */
    s4_conv_desc big = good;
    big.B = INT_MAX, big.H = INT_MAX, big.channels = INT_MAX, big.L = 1 << 20;
    plan = untouched;
    assert_fails_naming(S4_ERR_OUT_OF_MEMORY, "desc", s4_conv_create(&big, &plan));
    big = good;
    big.H = INT_MAX, big.channels = INT_MAX, big.L = (int64_t)1 << 29, big.l = 1;
    assert_fails_naming(S4_ERR_OUT_OF_MEMORY, "desc", s4_conv_create(&big, &plan));
    assert_true(plan == untouched);

    /* NULL plans in the queries and destroy. */
    assert_int_equal(s4_conv_fft_length(NULL), 0);
    assert_int_equal(s4_conv_spectrum_size(NULL), 0);
    assert_int_equal(s4_conv_workspace_size(NULL), 0);
    s4_conv_destroy(NULL);

    /* Edge sizes that are valid. */
    const s4_conv_desc one = {.B = 1, .H = 1, .channels = 1, .bidirectional = 1, .L = 1, .l = 1,
                              .planner = S4_PLANNER_MEASURE};
    plan = plan_or_fail(&one);
    assert_int_equal(s4_conv_fft_length(plan), 2);
    s4_conv_destroy(plan);
}

static void test_spectrum_execute_invalid(void **state)
{
    (void)state;
    const s4_conv_desc d = {.B = 2, .H = 2, .channels = 2, .bidirectional = 1, .L = 16,
                            .l = 12, .planner = S4_PLANNER_ESTIMATE};
    s4_conv *plan = plan_or_fail(&d);
    const size_t L = (size_t)d.L, l = (size_t)d.l;
    const size_t ws = s4_conv_workspace_size(plan), nspec = 2 * s4_conv_spectrum_size(plan);
    const size_t ny = ysize(&d, L);
    uint64_t s = 1;
    float *K = frandom(4 * 2 * l, &s);
    float *u = frandom(2 * 2 * L, &s);
    float *D = drandom(2 * 2, &s);
    void *work = malloc(ws);
    assert_non_null(work);
    float *spec = s4t_falloc(nspec, FSENTINEL);

    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "plan",
                        s4_conv_spectrum(NULL, K, l, spec, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "K",
                        s4_conv_spectrum(plan, NULL, l, spec, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "spec",
                        s4_conv_spectrum(plan, K, l, NULL, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldk",
                        s4_conv_spectrum(plan, K, l - 1, spec, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldk",
                        s4_conv_spectrum(plan, K, 0, spec, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldk",
                        s4_conv_spectrum(plan, K, SIZE_MAX / 4, spec, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "work_size",
                        s4_conv_spectrum(plan, K, l, spec, work, ws - 1));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "work_size",
                        s4_conv_spectrum(plan, K, l, spec, work, 0));
    if (!fall_equal(spec, nspec, FSENTINEL))
        fail_msg("a failed s4_conv_spectrum wrote spec");

    ok_or_fail(s4_conv_spectrum(plan, K, l, spec, work, ws), "spectrum");
    float *y = s4t_falloc(ny, FSENTINEL);
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "plan",
                        s4_conv_execute(NULL, spec, u, L, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "spec",
                        s4_conv_execute(plan, NULL, u, L, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "u",
                        s4_conv_execute(plan, spec, NULL, L, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "y",
                        s4_conv_execute(plan, spec, u, L, D, NULL, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldu",
                        s4_conv_execute(plan, spec, u, L - 1, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldu",
                        s4_conv_execute(plan, spec, u, 0, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldy",
                        s4_conv_execute(plan, spec, u, L, D, y, L - 1, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldy",
                        s4_conv_execute(plan, spec, u, L, D, y, 0, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldu",
                        s4_conv_execute(plan, spec, u, SIZE_MAX / 2, D, y, L, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "ldy",
                        s4_conv_execute(plan, spec, u, L, D, y, SIZE_MAX / 4, work, ws));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "work_size",
                        s4_conv_execute(plan, spec, u, L, D, y, L, work, ws - 1));
    assert_fails_naming(S4_ERR_INVALID_ARGUMENT, "work_size",
                        s4_conv_execute(plan, spec, u, L, D, y, L, work, 0));
    if (!fall_equal(y, ny, FSENTINEL))
        fail_msg("a failed s4_conv_execute wrote y");
    ok_or_fail(s4_conv_execute(plan, spec, u, L, D, y, L, work, ws), "execute");

    free(y), free(spec), free(work), free(K), free(u), free(D);
    s4_conv_destroy(plan);
}

int main(int argc, char **argv)
{
    s4t_suite s = {0};
    s4t_suite_add(&s, "vs_direct/causal", test_vs_direct, (void *)(intptr_t)0);
    s4t_suite_add(&s, "vs_direct/bidirectional", test_vs_direct, (void *)(intptr_t)1);
    s4t_suite_add(&s, "no_skip", test_no_skip, NULL);
    s4t_suite_add(&s, "measure_and_wisdom", test_measure_and_wisdom, NULL);
    s4t_suite_add(&s, "workspace_and_strides", test_workspace_and_strides, NULL);
    s4t_suite_add(&s, "threads", test_threads, NULL);
    s4t_suite_add(&s, "create_invalid", test_create_invalid, NULL);
    s4t_suite_add(&s, "spectrum_execute_invalid", test_spectrum_execute_invalid, NULL);
    return s4t_suite_run(&s, "fftconv", argc, argv);
}
