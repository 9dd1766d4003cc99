#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* Convolution kernel generation: golden kernels of every S4 case, the fast (Cauchy) path
 * against the power-method reference over a sweep of sizes and inits, caller workspaces
 * and leading dimensions, argument checking.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include "kernel/cauchy.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

/* The bound on max|K - K_ref| / max|K_ref| for the float32 kernel. Never loosen. */
#define TOL_KERNEL 2e-5
/* The double power-method reference against the float64 golden kernel. */
#define TOL_REFERENCE 1e-9

static const float FSENTINEL = -12345.5f;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static int fall_equal(const float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}

/* The Cauchy precision of every plan made through plan_or_fail: MIXED (the default), or
 * DOUBLE when the program runs with the argument --precision=double (ctest runs the suite
 * both ways: test_kernel and test_kernel_double). */
static s4_precision g_precision = S4_PRECISION_MIXED;

static s4_kernel *plan_or_fail(const s4_ssm *ssm, int64_t L, const s4_kernel_options *opt,
                               const char *what)
{
    s4_kernel_options o;
    s4_kernel_options_default(&o);
    if (opt)
        o = *opt;
    o.precision = g_precision;
    s4_kernel *plan = NULL;
    s4_status st = s4_kernel_create(ssm, L, &o, &plan);
    if (st != S4_OK || !plan)
        fail_msg("%s: s4_kernel_create(L = %lld): %s: %s", what, (long long)L,
                 s4_status_str(st), s4_last_error());
    return plan;
}

/* K [rows x H x L] of the fast path, in double. */
static double *fast_kernel(const s4_ssm *ssm, int64_t L, int rows, int H, const char *what)
{
    s4_kernel *plan = plan_or_fail(ssm, L, NULL, what);
    assert_int_equal(s4_kernel_length(plan), L);
    assert_int_equal(s4_kernel_rows(plan), rows);
    s4_plan_info info;
    assert_int_equal(s4_kernel_info(plan, &info), S4_OK);
    assert_int_equal(info.isa, s4_cpu_isa());
    assert_int_equal(info.precision, g_precision);
    const size_t n = (size_t)rows * (size_t)H * (size_t)L;
    float *K = s4t_falloc(n, FSENTINEL);
    s4_status st = s4_kernel_execute(plan, ssm, K, (size_t)L, NULL, 0);
    if (st != S4_OK)
        fail_msg("%s: s4_kernel_execute: %s: %s", what, s4_status_str(st), s4_last_error());
    double *Kd = s4t_f2d_alloc(K, n);
    free(K);
    s4_kernel_destroy(plan);
    return Kd;
}

/* K [rows x H x L] of the double power method (s4_kernel_reference per feature). */
static double *power_kernel(const s4_ssm *ssm, int64_t L, int rows, int H, const char *what)
{
    const size_t l = (size_t)L;
    double *K = malloc((size_t)rows * (size_t)H * l * sizeof *K);
    double *Kh = malloc((size_t)rows * l * sizeof *Kh);
    assert_non_null(K);
    assert_non_null(Kh);
    for (int h = 0; h < H; h++) {
        s4_status st = s4_kernel_reference(ssm, h, L, 1.0, Kh, l);
        if (st != S4_OK)
            fail_msg("%s: s4_kernel_reference(h = %d, L = %lld): %s: %s", what, h,
                     (long long)L, s4_status_str(st), s4_last_error());
        for (int c = 0; c < rows; c++)
            memcpy(K + ((size_t)c * (size_t)H + (size_t)h) * l, Kh + (size_t)c * l,
                   l * sizeof *K);
    }
    free(Kh);
    return K;
}

/* ---- golden kernels --------------------------------------------------------------- */

static void test_golden_kernel(void **state)
{
    const s4t_case *c = *state;
    s4_ssm *ssm = s4t_ssm_from_params(c, c->params_init);
    const int rows = c->kernel_channels, H = c->H;
    for (int s = 0; s < c->n_stages; s++) {
        const s4t_stage *sg = &c->stages[s];
        const int64_t l = s4t_reference_setup(ssm, c, sg->L);
        assert_int_equal(s4_ssm_l_kernel(ssm), sg->l_kernel_after);

        char path[S4T_PATH_MAX];
        s4t_path(path, "%s", sg->K_f64);
        size_t n = 0;
        int ndim = 0;
        int64_t shape[S4T_MAX_DIMS];
        double *K_ref = s4t_load_npy(path, &n, &ndim, shape);
        assert_int_equal(ndim, 3);
        assert_int_equal(shape[0], rows);
        assert_int_equal(shape[1], H);
        assert_int_equal(shape[2], l);

        double t0 = now();
        double *K = fast_kernel(ssm, l, rows, H, c->name);
        double t1 = now();
        double e = s4t_max_rel_err(K, K_ref, n);
        double *Kp = power_kernel(ssm, l, rows, H, c->name);
        double e_ref = s4t_max_rel_err(Kp, K_ref, n);
        print_message("%-28s stage %d L %5lld Lk %5lld: kernel %.2e  (power method %.2e; "
                      "plan+execute %.3f s)\n",
                      c->name, s, (long long)l, (long long)sg->l_kernel_after, e, e_ref, t1 - t0);
        assert_rel_err(e, TOL_KERNEL, "float32 kernel vs K_f64");
        assert_rel_err(e_ref, TOL_REFERENCE, "s4_kernel_reference vs K_f64");
        free(K), free(Kp), free(K_ref);
    }
    s4_ssm_destroy(ssm);
}

/* ---- fast path == power method ---------------------------------------------------- */

static const struct { s4_init init; const char *name; int min_rank; } sweep_inits[] = {
    {S4_INIT_LEGS, "legs", 1},
    {S4_INIT_LEGT, "legt", 2},
    {S4_INIT_LAGT, "lagt", 1},
    {S4_INIT_FOUT, "fout", 1},
};
static const int64_t sweep_L[] = {1, 2, 3, 7, 64, 1000, 4096};

/* One N of the sweep: every init, rank 1..3, every L. H, C' and direction vary with the
 * combination so that each shape is exercised without multiplying the cost. */
static void test_fast_vs_power(void **state)
{
    const int N = (int)(intptr_t)*state;
    double worst = 0.0, t0 = now();
    char worst_what[160] = "";
    int combo = 0;
    for (size_t i = 0; i < sizeof sweep_inits / sizeof sweep_inits[0]; i++)
        for (int rank = sweep_inits[i].min_rank; rank <= 3; rank++)
            for (size_t j = 0; j < sizeof sweep_L / sizeof sweep_L[0]; j++, combo++) {
                const int64_t L = sweep_L[j];
                s4_ssm_config cfg;
                s4_ssm_config_default(&cfg);
                cfg.H = N >= 256 ? 1 : 1 + combo % 2;
                cfg.N = N;
                cfg.rank = rank;
                cfg.init = sweep_inits[i].init;
                cfg.channels = 1 + (combo / 2) % 2;
                cfg.bidirectional = (combo / 4) % 2;
                cfg.seed = 1000u + (uint64_t)combo;
                char what[160];
                snprintf(what, sizeof what, "%s N %d rank %d L %lld H %d C' %d bidir %d",
                         sweep_inits[i].name, N, rank, (long long)L, cfg.H, cfg.channels,
                         cfg.bidirectional);
                s4_ssm *raw = NULL, *ssm = NULL;
                s4_status st = s4_ssm_create(&cfg, &raw);
                if (st != S4_OK)
                    fail_msg("%s: s4_ssm_create: %s: %s", what, s4_status_str(st),
                             s4_last_error());
                assert_int_equal(s4_ssm_clone(raw, &ssm), S4_OK);
                st = s4_ssm_setup_length(ssm, L);
                if (st != S4_OK)
                    fail_msg("%s: s4_ssm_setup_length: %s: %s", what, s4_status_str(st),
                             s4_last_error());
                const int rows = cfg.channels * (1 + cfg.bidirectional);
                double *K = fast_kernel(ssm, L, rows, cfg.H, what);
                /* The power method on the untouched raw C: no C-tilde round trip. */
                double *Kp = power_kernel(raw, L, rows, cfg.H, what);
                double e = s4t_max_rel_err(K, Kp, (size_t)rows * (size_t)cfg.H * (size_t)L);
                if (!(e <= TOL_KERNEL))
                    print_message("  FAIL %-50s %.2e\n", what, e);
                if (isnan(e) || e > worst) {
                    worst = e;
                    snprintf(worst_what, sizeof worst_what, "%s", what);
                }
                free(K), free(Kp);
                s4_ssm_destroy(raw);
                s4_ssm_destroy(ssm);
            }
    print_message("N %3d: %d combinations, worst %.2e (%s), %.1f s\n", N, combo, worst,
                  worst_what, now() - t0);
    assert_rel_err(worst, TOL_KERNEL, worst_what);
}

/* ---- workspace, leading dimension, plan reuse ------------------------------------- */

static s4_ssm *sweep_bank(int H, int N, int rank, s4_init init, int channels, int bidir,
                          uint64_t seed, int64_t Lk)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.H = H;
    cfg.N = N;
    cfg.rank = rank;
    cfg.init = init;
    cfg.channels = channels;
    cfg.bidirectional = bidir;
    cfg.seed = seed;
    s4_ssm *ssm = NULL;
    assert_int_equal(s4_ssm_create(&cfg, &ssm), S4_OK);
    if (Lk > 0)
        assert_int_equal(s4_ssm_setup_length(ssm, Lk), S4_OK);
    return ssm;
}

static void test_workspace(void **state)
{
    (void)state;
    enum { H = 3, N = 32, ROWS = 4 };
    const int64_t L = 100;
    s4_ssm *ssm = sweep_bank(H, N, 2, S4_INIT_LEGT, 2, 1, 5, L);
    s4_kernel *plan = plan_or_fail(ssm, L, NULL, "workspace");
    const size_t n = (size_t)ROWS * H * (size_t)L, ws = s4_kernel_workspace_size(plan);
    float *K0 = s4t_falloc(n, FSENTINEL), *K1 = s4t_falloc(n, FSENTINEL);
    assert_int_equal(s4_kernel_execute(plan, ssm, K0, (size_t)L, NULL, 0), S4_OK);

    unsigned char *buf = malloc(ws + 64);
    assert_non_null(buf);
    for (size_t off = 0; off < 8; off++) {
        memset(buf, 0xCD, ws + 64);
        for (size_t i = 0; i < n; i++)
            K1[i] = FSENTINEL;
        s4_status st = s4_kernel_execute(plan, ssm, K1, (size_t)L, buf + off, ws);
        if (st != S4_OK)
            fail_msg("workspace at offset %zu, %zu bytes: %s: %s", off, ws, s4_status_str(st),
                     s4_last_error());
        if (memcmp(K0, K1, n * sizeof *K0) != 0)
            fail_msg("K with a caller workspace at offset %zu differs from the plan's own", off);
        /* Bytes past the declared size are not touched. */
        for (size_t i = off + ws; i < ws + 64; i++)
            if (buf[i] != 0xCD)
                fail_msg("byte %zu past a %zu-byte workspace at offset %zu was written",
                         i - off - ws, ws, off);
    }
    /* A larger work_size than needed is fine, and a dirty workspace changes nothing. */
    assert_int_equal(s4_kernel_execute(plan, ssm, K1, (size_t)L, buf + 3, ws + 61), S4_OK);
    assert_memory_equal(K0, K1, n * sizeof *K0);

    /* ldk > L: rows land at c*H*ldk + h*ldk, the padding keeps its values. */
    const size_t ldk = (size_t)L + 13;
    float *Kp = s4t_falloc((size_t)ROWS * H * ldk, FSENTINEL);
    assert_int_equal(s4_kernel_execute(plan, ssm, Kp, ldk, NULL, 0), S4_OK);
    for (size_t row = 0; row < (size_t)ROWS * H; row++) {
        if (memcmp(Kp + row * ldk, K0 + row * (size_t)L, (size_t)L * sizeof *Kp) != 0)
            fail_msg("row %zu with ldk = %zu differs from ldk = L", row, ldk);
        if (!fall_equal(Kp + row * ldk + L, ldk - (size_t)L, FSENTINEL))
            fail_msg("row %zu: padding between L and ldk was written", row);
    }

    /* One plan serves any bank of the same sizes and l_kernel. */
    s4_ssm *other = sweep_bank(H, N, 2, S4_INIT_LEGT, 2, 1, 6, L);
    double *Ko = fast_kernel(other, L, ROWS, H, "other bank, own plan");
    assert_int_equal(s4_kernel_execute(plan, other, K1, (size_t)L, NULL, 0), S4_OK);
    double *K1d = s4t_f2d_alloc(K1, n);
    assert_allclose(K1d, Ko, n, 0.0, 0.0, "other bank through the first plan");

    free(K0), free(K1), free(Kp), free(buf), free(Ko), free(K1d);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(other);
    s4_ssm_destroy(ssm);
}

/* Threads split the features; each feature's arithmetic is the same on any thread, so
 * K is bitwise identical for 1, 2 and 3 threads, also with a caller workspace, and several
 * application threads can execute one single-threaded plan at once. */
static void *execute_thread(void *arg);
typedef struct exec_job {
    const s4_kernel *plan;
    const s4_ssm *ssm;
    float *K;
    size_t ldk;
    void *work;
    size_t work_size;
    s4_status st;
} exec_job;

static void *execute_thread(void *arg)
{
    exec_job *j = arg;
    j->st = s4_kernel_execute(j->plan, j->ssm, j->K, j->ldk, j->work, j->work_size);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { H = 7, N = 16, ROWS = 2 };
    const int64_t L = 300;
    s4_ssm *ssm = sweep_bank(H, N, 1, S4_INIT_LEGS, 2, 0, 11, L);
    const size_t n = (size_t)ROWS * H * (size_t)L;
    s4_kernel_options one = {.rate = 1.0, .threads = 1};
    s4_kernel *serial = plan_or_fail(ssm, L, &one, "1 thread");
    float *K0 = s4t_falloc(n, FSENTINEL), *K1 = s4t_falloc(n, FSENTINEL);
    assert_int_equal(s4_kernel_execute(serial, ssm, K0, (size_t)L, NULL, 0), S4_OK);
    for (int t = 2; t <= 3; t++) {
        s4_kernel_options opt = {.rate = 1.0, .threads = t};
        s4_kernel *plan = plan_or_fail(ssm, L, &opt, "threads");
        assert_true(s4_kernel_workspace_size(plan) > s4_kernel_workspace_size(serial));
        assert_int_equal(s4_kernel_execute(plan, ssm, K1, (size_t)L, NULL, 0), S4_OK);
        if (memcmp(K0, K1, n * sizeof *K0) != 0)
            fail_msg("K with %d threads differs from 1 thread", t);
        const size_t ws = s4_kernel_workspace_size(plan);
        unsigned char *buf = malloc(ws);
        assert_int_equal(s4_kernel_execute(plan, ssm, K1, (size_t)L, buf, ws), S4_OK);
        assert_memory_equal(K0, K1, n * sizeof *K0);
        /* A workspace sized for fewer threads is refused. */
        assert_fails(S4_ERR_INVALID_ARGUMENT,
                     s4_kernel_execute(plan, ssm, K1, (size_t)L, buf,
                                       s4_kernel_workspace_size(serial)));
        free(buf);
        s4_kernel_destroy(plan);
    }
    /* Application threads sharing one plan, each with its own workspace and output. */
    enum { JOBS = 4 };
    exec_job jobs[JOBS];
    pthread_t tid[JOBS];
    const size_t ws = s4_kernel_workspace_size(serial);
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (exec_job){serial, ssm, s4t_falloc(n, FSENTINEL), (size_t)L, malloc(ws), ws,
                             S4_ERR_UNSUPPORTED};
        assert_int_equal(pthread_create(&tid[i], NULL, execute_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(jobs[i].st, S4_OK);
        if (memcmp(K0, jobs[i].K, n * sizeof *K0) != 0)
            fail_msg("concurrent execute %d differs from the serial run", i);
        free(jobs[i].K);
        free(jobs[i].work);
    }
    free(K0), free(K1);
    s4_kernel_destroy(serial);
    s4_ssm_destroy(ssm);
}

/* Every SIMD variant of the Cauchy block this CPU runs agrees with the portable one (only
 * FMA contraction and summation order may differ), on sums with terms of both signs and
 * nodes near and far from the poles. */
static void test_cauchy_variants(void **state)
{
    (void)state;
    enum { NH = 37, NSUM = 6, B = S4_CAUCHY_BLOCK };
    double geo[2 * NH], coef[NSUM * NH * 4], y2[B], gw[NH * 2 * B];
    double ref[NSUM * 4 * B], got[NSUM * 4 * B];
    uint64_t x = 12345;
    for (int n = 0; n < NH; n++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const double ai = 0.1 + (double)(x >> 40) / (double)(1ull << 24) * 5.0;
        geo[2 * n] = 1e-6 + ai * ai; /* |a|^2 */
        geo[2 * n + 1] = 4e-8;       /* c^2: Re(a) = -1e-4 */
    }
    for (int i = 0; i < NSUM * NH * 4; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        coef[i] = (double)(int64_t)(x >> 11) / (double)(1ull << 52);
    }
    for (int j = 0; j < B; j++)
        y2[j] = (0.05 * j) * (0.05 * j) * 10.0;
    s4_cauchy_block_fn fn;
    assert_non_null(s4__cauchy_variant(0, &fn, NULL));
    fn(NH, NSUM, geo, coef, y2, NULL, gw, ref);
    int ran = 0;
    for (int v = 1; v < s4__cauchy_variant_count(); v++) {
        const char *name = s4__cauchy_variant(v, &fn, NULL);
        if (!name)
            continue;
        fn(NH, NSUM, geo, coef, y2, NULL, gw, got);
        double err = 0.0, mag = 0.0;
        for (int i = 0; i < NSUM * 4 * B; i++) {
            err = fmax(err, fabs(got[i] - ref[i]));
            mag = fmax(mag, fabs(ref[i]));
        }
        print_message("cauchy variant %-8s vs portable: max rel %.2e\n", name, err / mag);
        if (!(err <= 1e-13 * mag))
            fail_msg("variant %s differs from portable: %.3e relative", name, err / mag);
        ran++;
    }
    print_message("%d SIMD variant(s) tested on this CPU\n", ran);

    /* The float blocks of the mixed path (cauchy.h): with the pairs within a relative
     * distance 1/16 of their pole skipped -- as kernel.c skips them -- each float variant
     * agrees with the double block skipping the same pairs to within the eps32 / rho the
     * split is designed for; and the skipped pairs are exactly what skip leaves out. */
    int skip[2 * NH];
    double y[B];
    for (int j = 0; j < B; j++)
        y[j] = sqrt(y2[j]);
    int nskip = 0;
    for (int n = 0; n < NH; n++) {
        const double an = sqrt(geo[2 * n]), re = 0.5 * sqrt(geo[2 * n + 1]);
        const double yc = sqrt(an * an - re * re), d2 = an * an / 256.0 - re * re;
        int lo = B, hi = 0; /* the contiguous nodes with (y - yc)^2 < d2 */
        for (int j = 0; j < B; j++)
            if (d2 > 0.0 && (y[j] - yc) * (y[j] - yc) < d2) {
                lo = j < lo ? j : lo;
                hi = j + 1;
            }
        skip[2 * n] = lo < hi ? lo : 0;
        skip[2 * n + 1] = lo < hi ? hi : 0;
        nskip += skip[2 * n + 1] - skip[2 * n];
    }
    double skipped[NSUM * 4 * B];
    assert_non_null(s4__cauchy_variant(0, &fn, NULL));
    fn(NH, NSUM, geo, coef, y2, skip, gw, skipped);
    /* ref - skipped = the skipped pairs' terms, recomputed here one by one. */
    double worst_skip = 0.0, mag = 0.0;
    for (int s = 0; s < NSUM; s++)
        for (int q = 0; q < 4; q++)
            for (int j = 0; j < B; j++) {
                double want = 0.0;
                for (int n = 0; n < NH; n++)
                    if (j >= skip[2 * n] && j < skip[2 * n + 1]) {
                        const double pp = geo[2 * n] - y2[j];
                        const double g = 1.0 / (pp * pp + geo[2 * n + 1] * y2[j]);
                        want += coef[((size_t)s * NH + (size_t)n) * 4 + (size_t)q] *
                                (q % 2 ? pp * g : g);
                    }
                const size_t i = ((size_t)s * 4 + (size_t)q) * B + (size_t)j;
                worst_skip = fmax(worst_skip, fabs(ref[i] - skipped[i] - want));
                mag = fmax(mag, fabs(ref[i]));
            }
    print_message("skip leaves out %d pairs: they account for the difference to %.1e\n", nskip,
                  worst_skip / mag);
    assert_true(nskip > 0);
    assert_true(worst_skip <= 1e-12 * mag);

    float geof[2 * NH], coeff[NSUM * NH * 4], y2f[B], gwf[NH * 2 * B], accf[NSUM * 4 * B];
    for (int i = 0; i < 2 * NH; i++)
        geof[i] = (float)geo[i];
    for (int i = 0; i < NSUM * NH * 4; i++)
        coeff[i] = (float)coef[i];
    for (int j = 0; j < B; j++)
        y2f[j] = (float)y2[j];
    for (int v = 0; v < s4__cauchy_variant_count(); v++) {
        s4_cauchy_block_f_fn fnf;
        const char *name = s4__cauchy_variant(v, NULL, &fnf);
        if (!name)
            continue;
        fnf(NH, NSUM, geof, coeff, y2f, skip, gwf, accf);
        double err = 0.0, m = 0.0;
        for (int i = 0; i < NSUM * 4 * B; i++) {
            err = fmax(err, fabs((double)accf[i] - skipped[i]));
            m = fmax(m, fabs(skipped[i]));
        }
        print_message("float block %-8s vs double, near pairs skipped: max rel %.2e\n", name,
                      err / m);
        if (!(err <= 2e-5 * m))
            fail_msg("float block %s: %.3e relative off the double block", name, err / m);
    }
}

/* Lengths shorter than Lk (the l_max > L case) give the first L values of the longer
 * kernel; a rate halves or doubles the node count as docs/design.md section 11 says. */
static void test_lengths_and_rate(void **state)
{
    (void)state;
    enum { H = 2, N = 16, ROWS = 1 };
    s4_ssm *ssm = sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 0, 9, 64);
    double *K64 = fast_kernel(ssm, 64, ROWS, H, "L = Lk = 64");
    for (int64_t L = 1; L < 64; L += 9) {
        double *K = fast_kernel(ssm, L, ROWS, H, "L < Lk");
        for (int h = 0; h < H; h++) {
            double e = s4t_max_rel_err(K + (size_t)h * (size_t)L, K64 + (size_t)h * 64,
                                       (size_t)L);
            if (!(e <= TOL_KERNEL))
                fail_msg("L = %lld < Lk = 64, h = %d: %.2e from the first L of the Lk kernel",
                         (long long)L, h, e);
        }
        free(K);
    }
    /* Nodes Ld = round(Lk / rate); L <= Ld is allowed, L = Ld + 1 is not. */
    static const struct { double rate; int64_t Ld; } r[] = {
        {2.0, 32}, {0.5, 128}, {3.0, 21}, {1.5, 43}, {0.7, 91},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        s4_kernel_options opt = {.rate = r[i].rate, .threads = 0};
        s4_kernel *plan = plan_or_fail(ssm, r[i].Ld, &opt, "L = Ld at a rate");
        assert_int_equal(s4_kernel_length(plan), r[i].Ld);
        float *K = s4t_falloc((size_t)ROWS * H * (size_t)r[i].Ld, FSENTINEL);
        assert_int_equal(s4_kernel_execute(plan, ssm, K, (size_t)r[i].Ld, NULL, 0), S4_OK);
        for (size_t k = 0; k < (size_t)ROWS * H * (size_t)r[i].Ld; k++)
            if (!isfinite(K[k]))
                fail_msg("rate %g: K[%zu] not finite", r[i].rate, k);
        free(K);
        s4_kernel_destroy(plan);
        s4_kernel *bad = (s4_kernel *)(uintptr_t)0x5eed;
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, r[i].Ld + 1, &opt, &bad));
        assert_ptr_equal(bad, (s4_kernel *)(uintptr_t)0x5eed);
    }
    free(K64);
    s4_ssm_destroy(ssm);
}

/* ---- invalid arguments ------------------------------------------------------------ */

static void test_create_invalid(void **state)
{
    (void)state;
    s4_ssm *raw = sweep_bank(2, 8, 1, S4_INIT_LEGS, 1, 0, 3, 0);
    s4_ssm *ssm = sweep_bank(2, 8, 1, S4_INIT_LEGS, 1, 0, 3, 16);
    s4_kernel *const SENT = (s4_kernel *)(uintptr_t)0x5eed;
    s4_kernel *plan = SENT;

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(NULL, 16, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, 16, NULL, NULL));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(raw, 16, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, 0, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, -1, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, INT64_MIN, NULL, &plan));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, 17, NULL, &plan)); /* > Ld */
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, INT64_MAX, NULL, &plan));
    /* Extreme but finite rates give node counts far outside [1, 2^30] (the rounding
     * saturates instead of overflowing int64): refused, not wrapped around. */
    const double bad_rates[] = {0.0, -1.0, NAN, INFINITY, -INFINITY, 1e-300, 1e300, 1e-12};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        s4_kernel_options opt = {.rate = bad_rates[i], .threads = 0};
        assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_create(ssm, 8, &opt, &plan));
    }
    assert_ptr_equal(plan, SENT);
    s4_kernel_destroy(NULL); /* no-op */
    s4_ssm_destroy(raw);
    s4_ssm_destroy(ssm);
}

static void test_execute_invalid(void **state)
{
    (void)state;
    enum { H = 2, N = 8 };
    const int64_t L = 16;
    s4_ssm *ssm = sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 0, 3, L);
    s4_kernel *plan = plan_or_fail(ssm, L, NULL, "execute_invalid");
    const size_t ws = s4_kernel_workspace_size(plan);
    /* Room for the largest mismatched bank (rows 2, H 3) at ldk = 2L, should one write. */
    const size_t n = 2 * 3 * (size_t)L * 2;
    float *K = s4t_falloc(n, FSENTINEL);
    unsigned char *work = malloc(ws + 8);
    assert_non_null(work);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_execute(NULL, ssm, K, (size_t)L, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_execute(plan, NULL, K, (size_t)L, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_execute(plan, ssm, NULL, (size_t)L, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT,
                 s4_kernel_execute(plan, ssm, K, (size_t)L - 1, NULL, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_execute(plan, ssm, K, 0, NULL, 0));
    if (ws > 0) {
        assert_fails(S4_ERR_INVALID_ARGUMENT,
                     s4_kernel_execute(plan, ssm, K, (size_t)L, work, ws - 1));
        assert_fails(S4_ERR_INVALID_ARGUMENT,
                     s4_kernel_execute(plan, ssm, K, (size_t)L, work, 0));
    }

    /* Banks that do not match the plan. */
    struct { const char *what; s4_ssm *ssm; } mism[] = {
        {"H 3", sweep_bank(3, N, 1, S4_INIT_LEGS, 1, 0, 3, L)},
        {"H 1", sweep_bank(1, N, 1, S4_INIT_LEGS, 1, 0, 3, L)},
        {"N 16", sweep_bank(H, 16, 1, S4_INIT_LEGS, 1, 0, 3, L)},
        {"N 4", sweep_bank(H, 4, 1, S4_INIT_LEGS, 1, 0, 3, L)},
        {"rank 2", sweep_bank(H, N, 2, S4_INIT_LEGS, 1, 0, 3, L)},
        {"channels 2", sweep_bank(H, N, 1, S4_INIT_LEGS, 2, 0, 3, L)},
        {"bidirectional", sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 1, 3, L)},
        {"l_kernel 32", sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 0, 3, 2 * L)},
        {"l_kernel 8", sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 0, 3, L / 2)},
        {"raw C (l_kernel 0)", sweep_bank(H, N, 1, S4_INIT_LEGS, 1, 0, 3, 0)},
    };
    for (size_t i = 0; i < sizeof mism / sizeof mism[0]; i++) {
        s4t_prime_error_();
        s4_status st = s4_kernel_execute(plan, mism[i].ssm, K, 2 * (size_t)L, NULL, 0);
        char call[128];
        snprintf(call, sizeof call, "s4_kernel_execute(bank with %s)", mism[i].what);
        s4t_assert_failed_(st, S4_ERR_INVALID_ARGUMENT, call, __FILE__, __LINE__);
        s4_ssm_destroy(mism[i].ssm);
    }
    if (!fall_equal(K, n, FSENTINEL))
        fail_msg("a failed s4_kernel_execute wrote into K");
    assert_true(fall_equal(K, n, FSENTINEL));

    /* s4_kernel_reference */
    double Kr[2 * 16 + 1];
    for (size_t i = 0; i < sizeof Kr / sizeof Kr[0]; i++)
        Kr[i] = -777.25;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(NULL, 0, L, 1.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, L, 1.0, NULL, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, -1, L, 1.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, H, L, 1.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, 0, 1.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, -3, 1.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, L, 1.0, Kr, 15));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, L, 0.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, L, -2.0, Kr, 16));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_kernel_reference(ssm, 0, L, NAN, Kr, 16));
    for (size_t i = 0; i < sizeof Kr / sizeof Kr[0]; i++)
        if (Kr[i] != -777.25)
            fail_msg("a failed s4_kernel_reference wrote K[%zu]", i);

    free(K), free(work);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
}

int main(int argc, char **argv)
{
    /* --precision=double is ours; the rest (a test filter) goes to the runner. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--precision=double"))
            g_precision = S4_PRECISION_DOUBLE;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    int count = 0;
    s4t_case *cases = s4t_cases_load(&count);
    s4t_suite s = {0};
    s4t_suite_add_cases(&s, "golden_kernel", test_golden_kernel, cases, count);
    static const int sweep_N[] = {2, 4, 64, 256};
    for (size_t i = 0; i < sizeof sweep_N / sizeof sweep_N[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "fast_vs_power/N%d", sweep_N[i]);
        s4t_suite_add(&s, name, test_fast_vs_power, (void *)(intptr_t)sweep_N[i]);
    }
    s4t_suite_add(&s, "workspace", test_workspace, NULL);
    s4t_suite_add(&s, "threads", test_threads, NULL);
    s4t_suite_add(&s, "cauchy_variants", test_cauchy_variants, NULL);
    s4t_suite_add(&s, "lengths_and_rate", test_lengths_and_rate, NULL);
    s4t_suite_add(&s, "create_invalid", test_create_invalid, NULL);
    s4t_suite_add(&s, "execute_invalid", test_execute_invalid, NULL);
    int failures = s4t_suite_run(&s, "kernel", argc, argv);
    free(cases);
    return failures;
}
