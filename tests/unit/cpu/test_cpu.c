/* The CPU dispatcher's kernels (src/cpu): every instruction set this CPU runs against the
 * portable reference and against double-precision formulas, and the determinism property
 * each kernel promises -- an output depends only on its own inputs, never on how a call
 * splits rows or columns (docs/cpu.md). Cauchy blocks and the linear step have their own
 * per-ISA tests in test_kernel and test_step.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include "cpu/activation.h"
#include "cpu/affine.h"
#include "cpu/cpu.h"
#include "kernel/vandermonde.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *frand(size_t n, double scale)
{
    float *x = s4t_falloc(n, 0.0f);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * s4t_urand());
    return x;
}

/* ---- dispatcher ------------------------------------------------------------------- */

static void test_isa_choice(void **state)
{
    (void)state;
    const s4_isa now = s4_cpu_isa();
    assert_true(s4__cpu_runs(now));
    assert_true(s4__cpu_runs(S4_ISA_PORTABLE));
    print_message("plans run on %s (S4_ISA=%s)\n", s4_isa_name(now),
                  getenv("S4_ISA") ? getenv("S4_ISA") : "unset");
    /* S4_ISA, when it names an ISA this CPU runs, is what plans use. */
    const char *want = getenv("S4_ISA");
    for (int i = 0; want && i < S4_CPU_COUNT; i++)
        if (!strcmp(want, s4_isa_name((s4_isa)i)) && s4__cpu_runs((s4_isa)i))
            assert_int_equal(now, i);
    /* The override clamps to what the CPU runs and returns the previous choice. */
    for (int i = 0; i < S4_CPU_COUNT; i++) {
        const s4_isa prev = s4__cpu_set_isa((s4_isa)i);
        assert_true(s4__cpu_runs(s4__cpu_isa()));
        assert_true(s4__cpu_isa() <= (s4_isa)i);
        s4__cpu_set_isa(prev);
    }
    assert_int_equal(s4__cpu_isa(), now);
}

/* ---- affine ----------------------------------------------------------------------- */

/* out = W a + b for shapes with partial panels and every column remainder; against a
 * double sum, across ISAs, and across splits of rows and columns (bitwise). */
static void test_affine(void **state)
{
    (void)state;
    static const int shapes[][3] = {/* M, K, n */
                                    {1, 1, 1},   {16, 7, 1},   {17, 33, 2},  {512, 256, 1},
                                    {512, 256, 16}, {40, 9, 7}, {129, 64, 13}, {24, 300, 5}};
    double worst = 0.0, worst_isa = 0.0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], K = shapes[s][1], n = shapes[s][2];
        s4t_urand_seed(900 + s);
        float *W = frand((size_t)M * K, 1.0 / sqrt(K)), *b = frand((size_t)M, 0.5);
        float *a = frand((size_t)K * n, 2.0);
        const size_t np = s4__affine_packed_floats(M, K);
        assert_true(np > 0);
        float *Wp = s4t_falloc(np, 0.0f);
        s4__affine_pack(M, K, W, b, Wp);
        double *want = s4t_dalloc((size_t)M * n, 0.0);
        double mag = 0.0;
        for (int o = 0; o < M; o++)
            for (int j = 0; j < n; j++) {
                double acc = b[o];
                for (int k = 0; k < K; k++)
                    acc += (double)W[(size_t)o * K + k] * a[(size_t)k * n + j];
                want[(size_t)o * n + j] = acc;
                mag = fmax(mag, fabs(acc));
            }
        float *ref = NULL;
        for (int isa = 0; isa < S4_CPU_COUNT; isa++) {
            if (!s4__cpu_runs((s4_isa)isa))
                continue;
            const s4_affine_fn f = s4__affine_kernel((s4_isa)isa);
            float *out = s4t_falloc((size_t)M * n, -1.0f);
            f(K, Wp, 0, M, a, (size_t)n, n, out, (size_t)n);
            double err = 0.0;
            for (size_t i = 0; i < (size_t)M * n; i++)
                err = fmax(err, fabs(out[i] - want[i]));
            /* K float roundings of terms at most |W||a|: a bound of K eps |W| |a| per
             * output, far below which the sums land. */
            if (!(err <= 4.0 * K * 6e-8 * mag + 1e-30))
                fail_msg("affine %s M %d K %d n %d: %.3e off the double sum (max %.3e)",
                         s4_isa_name((s4_isa)isa), M, K, n, err, mag);
            worst = fmax(worst, err / mag);
            /* Any split of rows and columns gives the same bits. */
            float *part = s4t_falloc((size_t)M * n, -2.0f);
            const int rs[] = {0, M / 3, M / 3 + 1 < M ? M / 3 + 1 : M, M};
            for (int q = 0; q < 3; q++)
                for (int j = 0; j < n; j++) /* one column at a time */
                    f(K, Wp, rs[q], rs[q + 1], a + j, (size_t)n, 1,
                      part + (size_t)rs[q] * n + j, (size_t)n);
            assert_memory_equal(part, out, (size_t)M * n * sizeof *out);
            if (!ref) {
                ref = out;
            } else {
                double e = 0.0;
                for (size_t i = 0; i < (size_t)M * n; i++)
                    e = fmax(e, fabs((double)out[i] - ref[i]));
                worst_isa = fmax(worst_isa, e / mag);
                if (!(e <= 4.0 * K * 6e-8 * mag + 1e-30))
                    fail_msg("affine %s vs portable: %.3e", s4_isa_name((s4_isa)isa), e / mag);
                free(out);
            }
            free(part);
        }
        /* The FMA paths compute the same sequence of fused operations. */
        if (s4__cpu_runs(S4_ISA_AVX512)) {
            float *o2 = s4t_falloc((size_t)M * n, 0.0f), *o5 = s4t_falloc((size_t)M * n, 0.0f);
            s4__affine_kernel(S4_ISA_AVX2)(K, Wp, 0, M, a, (size_t)n, n, o2, (size_t)n);
            s4__affine_kernel(S4_ISA_AVX512)(K, Wp, 0, M, a, (size_t)n, n, o5, (size_t)n);
            assert_memory_equal(o2, o5, (size_t)M * n * sizeof *o2);
            free(o2), free(o5);
        }
        free(ref), free(want), free(Wp), free(a), free(b), free(W);
    }
    print_message("affine: worst vs double %.2e, worst ISA vs portable %.2e (relative to max)\n",
                  worst, worst_isa);
}

/* ---- GELU and GLU rows ------------------------------------------------------------ */

static double gelu_d(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double glu_d(double a, double g) { return a / (1.0 + exp(-g)); }

/* ulps of float between got and want (want rounded to float first). */
static double ulps(float got, double want)
{
    const float w = (float)want;
    if (got == w)
        return 0.0;
    const double u = fabs((double)nextafterf(w, INFINITY) - (double)w);
    return fabs((double)got - want) / (u > 0.0 ? u : 1e-45);
}

static void test_activation_rows(void **state)
{
    (void)state;
    enum { N = 4099 };
    s4t_urand_seed(77);
    float *x = s4t_falloc(N, 0.0f), *g = s4t_falloc(N, 0.0f);
    for (int i = 0; i < N; i++) {
        /* A wide range of magnitudes, both signs, and the tails where erfc underflows. */
        const double u = s4t_urand();
        x[i] = (float)(i < 64 ? -20.0 + 0.6 * i : u * (i % 3 == 0 ? 12.0 : 3.0));
        g[i] = (float)(s4t_urand() * (i % 5 == 0 ? 40.0 : 6.0));
    }
    float *ref_gelu = NULL, *ref_glu = NULL;
    for (int isa = 0; isa < S4_CPU_COUNT; isa++) {
        if (!s4__cpu_runs((s4_isa)isa))
            continue;
        float *yg = s4t_falloc(N, 0.0f), *yl = s4t_falloc(N, 0.0f), *t = s4t_falloc(N, 0.0f);
        s4__gelu_row((s4_isa)isa)(x, yg, N);
        s4__glu_row((s4_isa)isa)(x, g, yl, N);
        double wg = 0.0, wl = 0.0;
        for (int i = 0; i < N; i++) {
            const double eg = gelu_d(x[i]), el = glu_d(x[i], g[i]);
            /* Below 1e-30 relative accuracy is moot: compare absolutely there. */
            if (fabs(eg) > 1e-30)
                wg = fmax(wg, ulps(yg[i], eg));
            else if (!(fabs(yg[i] - eg) <= 1e-30))
                fail_msg("gelu(%g) = %g, want %g", x[i], yg[i], eg);
            if (fabs(el) > 1e-30)
                wl = fmax(wl, ulps(yl[i], el));
        }
        print_message("%-8s gelu worst %.2f ulp, glu worst %.2f ulp over %d arguments\n",
                      s4_isa_name((s4_isa)isa), wg, wl, N);
        assert_true(wg <= 4.0);
        assert_true(wl <= 4.0);
        /* Position independence: every prefix length and offset gives the same bits. */
        for (int off = 0; off < 9; off++)
            for (int len = 1; len < 20; len++) {
                s4__gelu_row((s4_isa)isa)(x + off, t, (size_t)len);
                assert_memory_equal(t, yg + off, (size_t)len * sizeof *t);
                s4__glu_row((s4_isa)isa)(x + off, g + off, t, (size_t)len);
                assert_memory_equal(t, yl + off, (size_t)len * sizeof *t);
            }
        if (!ref_gelu) {
            ref_gelu = yg, ref_glu = yl;
        } else {
            double dg = 0.0, dl = 0.0;
            for (int i = 0; i < N; i++) {
                dg = fmax(dg, ulps(yg[i], ref_gelu[i]));
                dl = fmax(dl, ulps(yl[i], ref_glu[i]));
            }
            print_message("%-8s vs portable: gelu %.1f ulp, glu %.1f ulp\n",
                          s4_isa_name((s4_isa)isa), dg, dl);
            assert_true(dg <= 2.0 && dl <= 2.0);
            free(yg), free(yl);
        }
        free(t);
    }
    free(ref_gelu), free(ref_glu), free(x), free(g);
}

/* ---- Vandermonde tile ------------------------------------------------------------- */

static void test_vand_tiles(void **state)
{
    (void)state;
    enum { KD = 37, T = 96, RB = S4_VAND_RB };
    s4t_urand_seed(5);
    float *W = frand((size_t)RB * KD, 1.0), *Z = frand((size_t)KD * T, 1.0);
    double want[RB * T], mag = 0.0;
    for (int r = 0; r < RB; r++)
        for (int j = 0; j < T; j++) {
            double acc = 0.0;
            for (int k = 0; k < KD; k++)
                acc += (double)W[r * KD + k] * Z[(size_t)k * T + j];
            want[r * T + j] = acc;
            mag = fmax(mag, fabs(acc));
        }
    for (int isa = 0; isa < S4_CPU_COUNT; isa++) {
        if (!s4__cpu_runs((s4_isa)isa))
            continue;
        float out[RB * T];
        s4__vand_tile((s4_isa)isa)(KD, T, W, Z, out, T);
        double err = 0.0;
        for (int i = 0; i < RB * T; i++)
            err = fmax(err, fabs(out[i] - want[i]));
        print_message("vandermonde tile %-8s vs double: %.2e relative\n",
                      s4_isa_name((s4_isa)isa), err / mag);
        assert_true(err <= KD * 6e-8 * mag);
    }
    free(W), free(Z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_choice),
        cmocka_unit_test(test_affine),
        cmocka_unit_test(test_activation_rows),
        cmocka_unit_test(test_vand_tiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
