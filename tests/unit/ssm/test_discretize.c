/* Bilinear discretization: the O(N) Woodbury step form (docs/design.md section 6) against the
 * dense (I - dt/2 A)^-1 (I + dt/2 A), and the repeated-squaring matrix power.
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ssm/discretize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static s4_ssm *make_bank(s4_init init, int H, int N, int rank, uint64_t seed)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.H = H;
    cfg.N = N;
    cfg.rank = rank;
    cfg.init = init;
    cfg.seed = seed;
    cfg.dt_min = 1e-3;
    cfg.dt_max = 1.0; /* wide dt: the Woodbury form must hold far from dt -> 0 */
    s4_ssm *ssm = NULL;
    const s4_status st = s4_ssm_create(&cfg, &ssm);
    if (st != S4_OK)
        fail_msg("s4_ssm_create(init %d, N %d, rank %d): %s", (int)init, N, rank,
                 s4_last_error());
    return ssm;
}

/* One linear step from a random conjugate-symmetric state equals dA x_f + dB u, on the
 * kept half, to 1e-12 relative, for every init, ranks 1..3, N in {2, 8, 64}. */
static void test_linear_step_matches_dense(void **state)
{
    (void)state;
    const s4_init inits[] = {S4_INIT_LEGS, S4_INIT_LEGT, S4_INIT_LAGT, S4_INIT_FOUT};
    const int Ns[] = {2, 8, 64};
    double worst = 0.0;
    for (size_t ii = 0; ii < sizeof inits / sizeof *inits; ii++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (int rank = inits[ii] == S4_INIT_LEGT ? 2 : 1; rank <= 3; rank++) {
                const int N = Ns[ni], Nh = N / 2, H = 3;
                s4_ssm *ssm = make_bank(inits[ii], H, N, rank, 7 + (uint64_t)rank);
                double complex *dA = calloc((size_t)N * N, sizeof *dA);
                double complex *dB = calloc((size_t)N, sizeof *dB);
                double complex *x = calloc((size_t)Nh, sizeof *x);
                double complex *xo = calloc((size_t)Nh, sizeof *xo);
                double complex *arr = calloc((size_t)(4 + 3 * rank) * Nh, sizeof *arr);
                s4_linear_step lin = {.Dg = arr, .E = arr + Nh, .B = arr + 2 * Nh,
                                      .P = arr + 3 * Nh, .Q = arr + (3 + rank) * Nh,
                                      .R = arr + (3 + 2 * rank) * Nh};
                for (int h = 0; h < H; h++) {
                    assert_int_equal(s4_ssm_discretize(ssm, h, 1.0, (double *)dA, (double *)dB),
                                     S4_OK);
                    assert_int_equal(s4__linear_setup(ssm, h, 1.0, &lin), S4_OK);
                    for (int n = 0; n < Nh; n++)
                        x[n] = CMPLX(sin(1.0 + n + h), cos(0.5 * n - h));
                    const double u = 0.75 - h;
                    s4__linear_step(&lin, x, u, xo);
                    double err = 0.0, ref = 0.0;
                    for (int m = 0; m < Nh; m++) {
                        double complex want = dB[m] * u;
                        for (int n = 0; n < N; n++)
                            want += dA[(size_t)m * N + n] * (n < Nh ? x[n] : conj(x[n - Nh]));
                        err = fmax(err, cabs(xo[m] - want));
                        ref = fmax(ref, cabs(want));
                    }
                    worst = fmax(worst, err / ref);
                    if (err > 1e-12 * ref)
                        fail_msg("init %d N %d rank %d h %d: linear vs dense step rel err %.3e",
                                 (int)inits[ii], N, rank, h, err / ref);
                }
                free(dA);
                free(dB);
                free(x);
                free(xo);
                free(arr);
                s4_ssm_destroy(ssm);
            }
    print_message("worst linear-vs-dense step relative error: %.3e\n", worst);
}

/* dA^e by repeated squaring equals e successive products, for e in {0, 1, 2, 3, 7, 100}. */
static void test_matrix_power(void **state)
{
    (void)state;
    const int N = 16;
    s4_ssm *ssm = make_bank(S4_INIT_LEGS, 1, N, 1, 3);
    const size_t NN = (size_t)N * N;
    double complex *dA = malloc(NN * sizeof *dA), *M = malloc(NN * sizeof *M);
    double complex *ref = malloc(NN * sizeof *ref), *tmp = malloc(NN * sizeof *tmp);
    double complex *scratch = malloc(2 * NN * sizeof *scratch);
    assert_int_equal(s4_ssm_discretize(ssm, 0, 1.0, (double *)dA, NULL), S4_OK);
    const int64_t exps[] = {0, 1, 2, 3, 7, 100};
    for (size_t e = 0; e < sizeof exps / sizeof *exps; e++) {
        memset(ref, 0, NN * sizeof *ref);
        for (int i = 0; i < N; i++)
            ref[(size_t)i * N + i] = 1.0;
        for (int64_t k = 0; k < exps[e]; k++) {
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double complex acc = 0.0;
                    for (int q = 0; q < N; q++)
                        acc += ref[(size_t)i * N + q] * dA[(size_t)q * N + j];
                    tmp[(size_t)i * N + j] = acc;
                }
            memcpy(ref, tmp, NN * sizeof *ref);
        }
        assert_int_equal(s4__matrix_power(N, dA, exps[e], M, scratch), S4_OK);
        double err = 0.0, mag = 0.0;
        for (size_t i = 0; i < NN; i++) {
            err = fmax(err, cabs(M[i] - ref[i]));
            mag = fmax(mag, cabs(ref[i]));
        }
        if (err > 1e-12 * mag)
            fail_msg("dA^%lld: rel err %.3e", (long long)exps[e], err / mag);
    }
    /* In place (M aliases the base), as the doubling loop uses it. */
    memcpy(M, dA, NN * sizeof *M);
    assert_int_equal(s4__matrix_power(N, M, 2, M, scratch), S4_OK);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double complex acc = 0.0;
            for (int q = 0; q < N; q++)
                acc += dA[(size_t)i * N + q] * dA[(size_t)q * N + j];
            assert_true(cabs(M[(size_t)i * N + j] - acc) <= 1e-14);
        }
    free(dA);
    free(M);
    free(ref);
    free(tmp);
    free(scratch);
    s4_ssm_destroy(ssm);
}

/* Bad arguments: documented status, a message, and outputs untouched. */
static void test_discretize_invalid(void **state)
{
    (void)state;
    s4_ssm *ssm = make_bank(S4_INIT_LEGS, 2, 4, 1, 1);
    double dA[32], dB[8];
    for (int i = 0; i < 32; i++)
        dA[i] = -7.0;
    for (int i = 0; i < 8; i++)
        dB[i] = -7.0;
    const struct {
        const s4_ssm *ssm;
        int h;
        double rate;
    } bad[] = {{NULL, 0, 1.0}, {ssm, -1, 1.0}, {ssm, 2, 1.0},   {ssm, 0, 0.0},
               {ssm, 0, -1.0}, {ssm, 0, NAN},  {ssm, 0, INFINITY}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(s4_ssm_discretize(bad[i].ssm, bad[i].h, bad[i].rate, dA, dB),
                         S4_ERR_INVALID_ARGUMENT);
        assert_true(strlen(s4_last_error()) > 0);
        assert_non_null(strstr(s4_last_error(), "s4_ssm_discretize"));
    }
    for (int i = 0; i < 32; i++)
        assert_true(dA[i] == -7.0);
    for (int i = 0; i < 8; i++)
        assert_true(dB[i] == -7.0);
    s4_ssm_destroy(ssm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_step_matches_dense),
        cmocka_unit_test(test_matrix_power),
        cmocka_unit_test(test_discretize_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
