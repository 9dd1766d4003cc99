/* s4-demo: the S4 and S4D convolution kernels of a default layer, built from scratch and
 * checked.
 *
 * Builds a seeded LegS SSM bank (H = 256 features, N = 64 states, rank 1), prepares C-tilde
 * for L = 16384, generates the float32 kernel K (1 x 256 x 16384) with the Cauchy/Woodbury
 * algorithm, and checks a few features against the slow double-precision power method; then
 * the same for the diagonal S4D-LegS bank (Vandermonde kernel, exact exponentials).
 * Usage: s4-demo [H] [N] [L]
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "s4.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check(s4_status st, const char *what)
{
    if (st == S4_OK)
        return 0;
    fprintf(stderr, "s4-demo: %s failed: %s: %s\n", what, s4_status_str(st), s4_last_error());
    return 1;
}

/* Builds the bank, generates its kernel, checks four features against the slow double
 * path; returns the worst relative error, or -1 on a library failure. */
static double run_kernel(const s4_ssm_config *cfg, int64_t L, const char *what)
{
    s4_ssm *ssm = NULL;
    s4_kernel *plan = NULL;
    double t0 = now();
    if (check(s4_ssm_create(cfg, &ssm), "s4_ssm_create") ||
        check(s4_ssm_setup_length(ssm, L), "s4_ssm_setup_length") ||
        check(s4_kernel_create(ssm, L, NULL, &plan), "s4_kernel_create"))
        return -1.0;
    const double t_setup = now() - t0;

    const size_t rows = (size_t)s4_kernel_rows(plan);
    float *K = malloc(rows * (size_t)cfg->H * (size_t)L * sizeof *K);
    double *Kref = malloc(rows * (size_t)L * sizeof *Kref);
    if (!K || !Kref) {
        fprintf(stderr, "s4-demo: out of memory\n");
        return -1.0;
    }
    t0 = now();
    if (check(s4_kernel_execute(plan, ssm, K, (size_t)L, NULL, 0), "s4_kernel_execute"))
        return -1.0;
    const double t_kernel = now() - t0;
    printf("%s\n  setup: %.3f s, kernel generation: %.3f s\n", what, t_setup, t_kernel);

    /* The slow paths cost O(N^2 L) (S4) or O(N L) exponentials (S4D) per feature: check
     * four features spread over H. */
    double worst = 0.0;
    for (int i = 0; i < 4; i++) {
        const int h = i * (cfg->H - 1) / 3;
        if (check(s4_kernel_reference(ssm, h, L, 1.0, Kref, (size_t)L), "s4_kernel_reference"))
            return -1.0;
        double err = 0.0, ref = 0.0;
        for (size_t c = 0; c < rows; c++)
            for (int64_t l = 0; l < L; l++) {
                const double want = Kref[c * (size_t)L + (size_t)l];
                const double got = K[(c * (size_t)cfg->H + (size_t)h) * (size_t)L + (size_t)l];
                err = fmax(err, fabs(got - want));
                ref = fmax(ref, fabs(want));
            }
        printf("  feature %3d: max|K - K_ref| / max|K_ref| = %.2e\n", h, err / ref);
        worst = fmax(worst, err / ref);
    }
    free(K);
    free(Kref);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
    return worst;
}

int main(int argc, char **argv)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.H = argc > 1 ? atoi(argv[1]) : 256;
    cfg.N = argc > 2 ? atoi(argv[2]) : 64;
    const int64_t L = argc > 3 ? atoll(argv[3]) : 16384;
    printf("libs4 %s: convolution kernels for H = %d, N = %d, L = %lld (seed 0)\n",
           s4_version(), cfg.H, cfg.N, (long long)L);

    /* S4: LegS NPLR, C-tilde by repeated squaring, Cauchy sums + Woodbury + inverse FFT,
     * checked against the power method. */
    const double w4 =
        run_kernel(&cfg, L, "S4 (DPLR, LegS, rank 1): Cauchy + Woodbury + inverse FFT");
    /* S4D-LegS: the same Lambda and B without P, zoh, the block Vandermonde product,
     * checked against exact exponentials term by term. */
    cfg.mode = S4_MODE_DIAG;
    cfg.disc = S4_DISC_ZOH;
    const double wd = run_kernel(&cfg, L, "S4D (diagonal, S4D-LegS, zoh): block Vandermonde");
    if (w4 < 0.0 || wd < 0.0)
        return 1;
    const double worst = fmax(w4, wd);
    const int ok = worst <= 2e-5;
    printf("%s: worst relative error %.2e (bound 2e-5)\n", ok ? "PASS" : "FAIL", worst);
    return ok ? 0 : 1;
}
