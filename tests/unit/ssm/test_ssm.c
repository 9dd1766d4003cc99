/* The SSM parameter bank: stored and derived parameters, discretization, C-tilde and
 * length doubling against the golden data of every S4 case; seeded init; argument
 * checking of every s4_ssm_* call.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Under AddressSanitizer a request for terabytes must return NULL (so the library can
 * report S4_ERR_OUT_OF_MEMORY) instead of aborting the test; environment options win. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* Golden f64 values were computed from the float32 parameters cast to double. */
#define TOL_PARAM 1e-12  /* dt, Lambda */
#define TOL_DISC 1e-10   /* dA, dB */
#define TOL_CTILDE 1e-9  /* C-tilde */
#define TOL_RAW_C 1e-8   /* C recovered from C-tilde */

#define SENTINEL (-777.25)

/* [outer x S x block] -> [outer x H x block], feature h taking copy h mod S. */
static double *tile(const double *x, int outer, int S, int H, size_t block)
{
    double *y = malloc((size_t)outer * (size_t)H * block * sizeof *y);
    assert_non_null(y);
    for (int o = 0; o < outer; o++)
        for (int h = 0; h < H; h++)
            memcpy(y + ((size_t)o * (size_t)H + (size_t)h) * block,
                   x + ((size_t)o * (size_t)S + (size_t)(h % S)) * block, block * sizeof *y);
    return y;
}

static void fill(double *x, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

static int all_equal(const double *x, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}

static int case_S(const s4t_case *c) { return c->n_ssm ? c->n_ssm : c->H; }

/* ---- golden: parameters ----------------------------------------------------------- */

static void test_golden_params(void **state)
{
    const s4t_case *c = *state;
    char kpath[S4T_PATH_MAX], ppath[S4T_PATH_MAX];
    s4t_path(kpath, "%s", c->kernel);
    s4t_path(ppath, "%s", c->params_init);
    s4_ssm *ssm = s4t_ssm_from_params(c, c->params_init);
    const int H = c->H, Nh = c->N / 2, S = case_S(c), r = c->rank;

    assert_int_equal(s4_ssm_l_kernel(ssm), 0);
    s4_ssm_config cfg;
    assert_int_equal(s4_ssm_get_config(ssm, &cfg), S4_OK);
    assert_int_equal(cfg.H, H);
    assert_int_equal(cfg.N, c->N);
    assert_int_equal(cfg.rank, r);
    assert_int_equal(cfg.n_ssm, S);
    assert_int_equal(cfg.channels, s4t_case_cprime(c));
    assert_int_equal(cfg.bidirectional, c->bidirectional);

    /* Stored forms come back exactly as given. */
    static const struct { s4_param p; const char *name; } stored[] = {
        {S4_PARAM_INV_DT, "layer.kernel.inv_dt"}, {S4_PARAM_A_REAL, "layer.kernel.A_real"},
        {S4_PARAM_A_IMAG, "layer.kernel.A_imag"}, {S4_PARAM_B, "layer.kernel.B"},
        {S4_PARAM_P, "layer.kernel.P"},           {S4_PARAM_C, "layer.kernel.C"},
        {S4_PARAM_D, "layer.D"},
    };
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++) {
        size_t n = 0, m = 0;
        double *got = s4t_get_param(ssm, stored[i].p, &n);
        double *want = s4t_load_tensor(ppath, stored[i].name, &m);
        assert_int_equal(n, m);
        assert_allclose(got, want, n, 0.0, 0.0, stored[i].name);
        free(got);
        free(want);
    }

    /* Derived dt and Lambda (tiled) against the reference's float64 values. */
    size_t n = 0, m = 0;
    double *dt = s4t_get_param(ssm, S4_PARAM_DT, &n);
    double *dt_ref = s4t_load_tensor(kpath, "dt", &m);
    assert_int_equal(n, (size_t)H);
    assert_int_equal(m, (size_t)H);
    double e_dt = s4t_max_rel_err(dt, dt_ref, n);

    double *lam = s4t_get_param(ssm, S4_PARAM_LAMBDA, &n);
    assert_int_equal(n, (size_t)S * (size_t)Nh * 2);
    double *lam_h = tile(lam, 1, S, H, (size_t)Nh * 2);
    double *lam_ref = s4t_load_tensor(kpath, "Lambda", &m);
    assert_int_equal(m, (size_t)H * (size_t)Nh * 2);
    double e_lam = s4t_max_rel_err(lam_h, lam_ref, m);

    /* B, P tiled and the raw C are the stored values, exactly. */
    double *B = s4t_get_param(ssm, S4_PARAM_B, &n);
    double *B_h = tile(B, 1, S, H, (size_t)Nh * 2);
    double *B_ref = s4t_load_tensor(kpath, "B", &m);
    assert_int_equal(m, (size_t)H * (size_t)Nh * 2);
    assert_allclose(B_h, B_ref, m, 0.0, 0.0, "B (tiled)");
    double *P = s4t_get_param(ssm, S4_PARAM_P, &n);
    double *P_h = tile(P, r, S, H, (size_t)Nh * 2);
    double *P_ref = s4t_load_tensor(kpath, "P", &m);
    assert_int_equal(m, (size_t)r * (size_t)H * (size_t)Nh * 2);
    assert_allclose(P_h, P_ref, m, 0.0, 0.0, "P (tiled)");
    double *C = s4t_get_param(ssm, S4_PARAM_C, &n);
    double *C_ref = s4t_load_tensor(kpath, "C", &m);
    assert_int_equal(n, m);
    assert_allclose(C, C_ref, m, 0.0, 0.0, "raw C");

    print_message("%-28s dt %.2e  Lambda %.2e\n", c->name, e_dt, e_lam);
    assert_rel_err(e_dt, TOL_PARAM, "dt");
    assert_rel_err(e_lam, TOL_PARAM, "Lambda");

    free(dt), free(dt_ref), free(lam), free(lam_h), free(lam_ref);
    free(B), free(B_h), free(B_ref), free(P), free(P_h), free(P_ref), free(C), free(C_ref);
    s4_ssm_destroy(ssm);
}

/* ---- golden: discretization ------------------------------------------------------- */

static void test_golden_discretize(void **state)
{
    const s4t_case *c = *state;
    char kpath[S4T_PATH_MAX];
    s4t_path(kpath, "%s", c->kernel);
    size_t nA = 0, nB = 0;
    double *dA_ref = s4t_find_tensor(kpath, "dA", &nA, NULL, NULL);
    double *dB_ref = s4t_find_tensor(kpath, "dB", &nB, NULL, NULL);
    if (!dA_ref || !dB_ref) {
        free(dA_ref), free(dB_ref);
        print_message("%-28s no dense dA/dB in the data (large case)\n", c->name);
        skip();
    }
    const size_t N = (size_t)c->N;
    assert_int_equal(nA, (size_t)c->H * N * N * 2);
    assert_int_equal(nB, (size_t)c->H * N * 2);

    s4_ssm *ssm = s4t_ssm_from_params(c, c->params_init);
    double *dA = malloc(N * N * 2 * sizeof *dA), *dB = malloc(N * 2 * sizeof *dB);
    assert_non_null(dA);
    assert_non_null(dB);
    double worst_A = 0.0, worst_B = 0.0;
    for (int h = 0; h < c->H; h++) {
        fill(dA, N * N * 2, SENTINEL);
        fill(dB, N * 2, SENTINEL);
        s4_status st = s4_ssm_discretize(ssm, h, 1.0, dA, dB);
        if (st != S4_OK)
            fail_msg("%s: s4_ssm_discretize(h = %d): %s: %s", c->name, h, s4_status_str(st),
                     s4_last_error());
        worst_A = fmax(worst_A, s4t_max_rel_err(dA, dA_ref + (size_t)h * N * N * 2, N * N * 2));
        worst_B = fmax(worst_B, s4t_max_rel_err(dB, dB_ref + (size_t)h * N * 2, N * 2));
        if (isnan(worst_A) || isnan(worst_B))
            break;
        /* Each output alone. */
        double *dB2 = malloc(N * 2 * sizeof *dB2);
        assert_non_null(dB2);
        assert_int_equal(s4_ssm_discretize(ssm, h, 1.0, NULL, dB2), S4_OK);
        assert_allclose(dB2, dB, N * 2, 0.0, 0.0, "dB computed alone");
        free(dB2);
    }
    print_message("%-28s dA %.2e  dB %.2e\n", c->name, worst_A, worst_B);
    assert_rel_err(worst_A, TOL_DISC, "dA");
    assert_rel_err(worst_B, TOL_DISC, "dB");
    free(dA), free(dB), free(dA_ref), free(dB_ref);
    s4_ssm_destroy(ssm);
}

/* ---- golden: C-tilde, doubling, raw C --------------------------------------------- */

static void test_golden_ctilde(void **state)
{
    const s4t_case *c = *state;
    char kpath[S4T_PATH_MAX], apath[S4T_PATH_MAX];
    s4t_path(kpath, "%s", c->kernel);
    s4_ssm *ssm = s4t_ssm_from_params(c, c->params_init);
    size_t n = 0, m = 0;
    double worst_stage = 0.0;

    /* Replay the reference's forward calls; after each, l_kernel and C-tilde must match
     * that call's state_dict. */
    for (int s = 0; s < c->n_stages; s++) {
        const s4t_stage *sg = &c->stages[s];
        int64_t l = s4t_reference_setup(ssm, c, sg->L);
        assert_true(l <= s4_ssm_l_kernel(ssm));
        if (s4_ssm_l_kernel(ssm) != sg->l_kernel_after)
            fail_msg("%s stage %d (L = %lld): l_kernel %lld, reference %lld", c->name, s,
                     (long long)sg->L, (long long)s4_ssm_l_kernel(ssm),
                     (long long)sg->l_kernel_after);
        s4t_path(apath, "%s", sg->params_after_f64);
        double *lk = s4t_load_tensor(apath, "layer.kernel.l_kernel", NULL);
        assert_int_equal((int64_t)lk[0], sg->l_kernel_after);
        free(lk);
        double *C = s4t_get_param(ssm, S4_PARAM_C, &n);
        double *C_ref = s4t_load_tensor(apath, "layer.kernel.C", &m);
        assert_int_equal(n, m);
        double e = s4t_max_rel_err(C, C_ref, n);
        print_message("%-28s stage %d L %lld Lk %lld: C-tilde %.2e\n", c->name, s,
                      (long long)sg->L, (long long)sg->l_kernel_after, e);
        worst_stage = isnan(e) ? e : fmax(worst_stage, e);
        free(C), free(C_ref);
    }

    /* kernel.safetensors holds the C-tilde after the last call. */
    double *C = s4t_get_param(ssm, S4_PARAM_C, &n);
    double *Ct_ref = s4t_load_tensor(kpath, "Ctilde_f64", &m);
    assert_int_equal(n, m);
    double e_last = s4t_max_rel_err(C, Ct_ref, n);

    /* Raw C recovered from the doubled / direct C-tilde. */
    double *raw = malloc(n * sizeof *raw);
    assert_non_null(raw);
    s4_status st = s4_ssm_raw_C(ssm, raw, n);
    if (st != S4_OK)
        fail_msg("%s: s4_ssm_raw_C: %s: %s", c->name, s4_status_str(st), s4_last_error());
    double *C_raw_ref = s4t_load_tensor(kpath, "C", &m);
    double e_raw = s4t_max_rel_err(raw, C_raw_ref, n);

    /* Going to the final length in one step equals the reference's sequence. */
    s4_ssm *direct = s4t_ssm_from_params(c, c->params_init);
    int64_t Lk = c->stages[c->n_stages - 1].l_kernel_after;
    assert_int_equal(s4_ssm_setup_length(direct, Lk), S4_OK);
    assert_int_equal(s4_ssm_l_kernel(direct), Lk);
    double *Cd = s4t_get_param(direct, S4_PARAM_C, NULL);
    double e_direct = s4t_max_rel_err(Cd, Ct_ref, n);

    print_message("%-28s Ctilde_f64 %.2e  direct Lk %lld %.2e  raw C %.2e\n", c->name, e_last,
                  (long long)Lk, e_direct, e_raw);
    assert_rel_err(worst_stage, TOL_CTILDE, "C-tilde after a stage");
    assert_rel_err(e_last, TOL_CTILDE, "C-tilde vs Ctilde_f64");
    assert_rel_err(e_direct, TOL_CTILDE, "C-tilde set up directly at the final length");
    assert_rel_err(e_raw, TOL_RAW_C, "raw C recovered");

    /* Asking for a length the bank already covers changes nothing. */
    assert_int_equal(s4_ssm_setup_length(ssm, 1), S4_OK);
    assert_int_equal(s4_ssm_setup_length(ssm, Lk), S4_OK);
    assert_int_equal(s4_ssm_l_kernel(ssm), Lk);
    double *C2 = s4t_get_param(ssm, S4_PARAM_C, NULL);
    assert_allclose(C2, C, n, 0.0, 0.0, "C-tilde after a no-op setup_length");

    free(C), free(C2), free(Ct_ref), free(raw), free(C_raw_ref), free(Cd);
    s4_ssm_destroy(direct);
    s4_ssm_destroy(ssm);
}

/* A bank built from the reference's state_dict after a forward (C holds C-tilde). */
static void test_golden_from_ctilde(void **state)
{
    const s4t_case *c = *state;
    char kpath[S4T_PATH_MAX];
    s4t_path(kpath, "%s", c->kernel);
    size_t m = 0;
    double *C_ref = s4t_load_tensor(kpath, "C", &m);
    double *raw = malloc(m * sizeof *raw);
    assert_non_null(raw);
    for (int s = 0; s < c->n_stages; s++) {
        const s4t_stage *sg = &c->stages[s];
        s4_ssm *ssm = s4t_ssm_from_params(c, sg->params_after_f64);
        assert_int_equal(s4_ssm_l_kernel(ssm), sg->l_kernel_after);
        assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_C), m);
        fill(raw, m, SENTINEL);
        s4_status st = s4_ssm_raw_C(ssm, raw, m);
        if (st != S4_OK)
            fail_msg("%s stage %d: s4_ssm_raw_C: %s: %s", c->name, s, s4_status_str(st),
                     s4_last_error());
        double e = s4t_max_rel_err(raw, C_ref, m);
        print_message("%-28s stage %d Lk %lld: raw C from the reference's C-tilde %.2e\n",
                      c->name, s, (long long)sg->l_kernel_after, e);
        assert_rel_err(e, TOL_RAW_C, "raw C from params_after_f64");

        /* A clone keeps C-tilde and l_kernel. */
        s4_ssm *clone = NULL;
        assert_int_equal(s4_ssm_clone(ssm, &clone), S4_OK);
        assert_int_equal(s4_ssm_l_kernel(clone), sg->l_kernel_after);
        double *C1 = s4t_get_param(ssm, S4_PARAM_C, NULL);
        double *C2 = s4t_get_param(clone, S4_PARAM_C, NULL);
        assert_allclose(C2, C1, m, 0.0, 0.0, "C of a clone");
        free(C1), free(C2);
        s4_ssm_destroy(clone);
        s4_ssm_destroy(ssm);
    }
    free(raw), free(C_ref);
}

/* ---- seeded init ------------------------------------------------------------------ */

static s4_ssm *make(s4_init init, int H, int N, int rank, int n_ssm, uint64_t seed)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.H = H;
    cfg.N = N;
    cfg.rank = rank;
    cfg.n_ssm = n_ssm;
    cfg.init = init;
    cfg.seed = seed;
    cfg.channels = 2;
    s4_ssm *ssm = NULL;
    s4_status st = s4_ssm_create(&cfg, &ssm);
    if (st != S4_OK)
        fail_msg("s4_ssm_create(init %d, H %d, N %d, rank %d, n_ssm %d): %s: %s", (int)init, H,
                 N, rank, n_ssm, s4_status_str(st), s4_last_error());
    return ssm;
}

static const s4_param every_param[] = {S4_PARAM_INV_DT, S4_PARAM_A_REAL, S4_PARAM_A_IMAG,
                                       S4_PARAM_B,      S4_PARAM_P,      S4_PARAM_C,
                                       S4_PARAM_D,      S4_PARAM_DT,     S4_PARAM_LAMBDA};

static void test_init_seed(void **state)
{
    (void)state;
    s4_ssm *a = make(S4_INIT_LEGS, 4, 16, 1, 0, 42);
    s4_ssm *b = make(S4_INIT_LEGS, 4, 16, 1, 0, 42);
    s4_ssm *d = make(S4_INIT_LEGS, 4, 16, 1, 0, 43);
    for (size_t i = 0; i < sizeof every_param / sizeof every_param[0]; i++) {
        size_t na, nb;
        double *x = s4t_get_param(a, every_param[i], &na);
        double *y = s4t_get_param(b, every_param[i], &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(x, y, na * sizeof *x);
        free(x), free(y);
    }
    /* A different seed changes the random parts (inv_dt, C, D). */
    static const s4_param random_param[] = {S4_PARAM_INV_DT, S4_PARAM_C, S4_PARAM_D};
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        double *x = s4t_get_param(a, random_param[i], &n);
        double *y = s4t_get_param(d, random_param[i], NULL);
        size_t same = 0;
        for (size_t k = 0; k < n; k++)
            same += x[k] == y[k];
        if (same == n)
            fail_msg("parameter %d is identical for seeds 42 and 43", (int)random_param[i]);
        free(x), free(y);
    }
    s4_ssm_destroy(a);
    s4_ssm_destroy(b);
    s4_ssm_destroy(d);
}

static void test_init_dt_range(void **state)
{
    (void)state;
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.H = 512;
    cfg.N = 4;
    cfg.dt_min = 2e-3;
    cfg.dt_max = 5e-2;
    cfg.seed = 7;
    s4_ssm *ssm = NULL;
    assert_int_equal(s4_ssm_create(&cfg, &ssm), S4_OK);
    size_t n;
    double *dt = s4t_get_param(ssm, S4_PARAM_DT, &n);
    assert_int_equal(n, 512);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!(dt[i] >= cfg.dt_min * (1 - 1e-12) && dt[i] <= cfg.dt_max * (1 + 1e-12)))
            fail_msg("dt[%zu] = %.17g outside [%g, %g]", i, dt[i], cfg.dt_min, cfg.dt_max);
        lo = fmin(lo, dt[i]);
        hi = fmax(hi, dt[i]);
    }
    /* Log-uniform over the whole range: 512 draws come close to both ends. */
    assert_true(log(lo / cfg.dt_min) < 0.05 * log(cfg.dt_max / cfg.dt_min));
    assert_true(log(cfg.dt_max / hi) < 0.05 * log(cfg.dt_max / cfg.dt_min));
    free(dt);
    s4_ssm_destroy(ssm);
}

/* Lambda, P, B of every init equal s4_nplr's, tiled over S copies, with the reference's
 * clamp -Re(Lambda), -Im(Lambda) >= 1e-4. */
static void check_init_vs_nplr(s4_init init, s4_measure measure, int first, int count,
                               const s4_ssm *ssm, int N, int rank, int S)
{
    const size_t Nh = (size_t)N / 2, R = (size_t)rank;
    double *lam = malloc(Nh * 2 * sizeof *lam);
    double *P = malloc(R * Nh * 2 * sizeof *P);
    double *B = malloc(Nh * 2 * sizeof *B);
    assert_non_null(lam);
    assert_non_null(P);
    assert_non_null(B);
    s4_status st = s4_nplr(measure, N, rank, lam, P, B, NULL);
    if (st != S4_OK)
        fail_msg("s4_nplr(%d, %d, %d): %s: %s", (int)measure, N, rank, s4_status_str(st),
                 s4_last_error());
    for (size_t n = 0; n < Nh; n++) {
        lam[2 * n] = -fmax(-lam[2 * n], 1e-4);
        lam[2 * n + 1] = -fmax(-lam[2 * n + 1], 1e-4);
    }
    double *L = s4t_get_param(ssm, S4_PARAM_LAMBDA, NULL);
    double *Bs = s4t_get_param(ssm, S4_PARAM_B, NULL);
    double *Ps = s4t_get_param(ssm, S4_PARAM_P, NULL);
    char what[96];
    for (int s = first; s < first + count; s++) {
        const double *Ls = L + (size_t)s * Nh * 2;
        snprintf(what, sizeof what, "init %d copy %d: Lambda vs clamped s4_nplr", (int)init, s);
        assert_allclose(Ls, lam, Nh * 2, 1e-12, 1e-15, what);
        for (size_t n = 0; n < Nh; n++)
            if (!(-Ls[2 * n] >= 1e-4 * (1 - 1e-12) && -Ls[2 * n + 1] >= 1e-4 * (1 - 1e-12)))
                fail_msg("init %d copy %d: Lambda[%zu] = %g%+gi not clamped", (int)init, s, n,
                         Ls[2 * n], Ls[2 * n + 1]);
        snprintf(what, sizeof what, "init %d copy %d: B vs s4_nplr", (int)init, s);
        assert_allclose(Bs + (size_t)s * Nh * 2, B, Nh * 2, 1e-12, 1e-14, what);
        for (size_t k = 0; k < R; k++) {
            snprintf(what, sizeof what, "init %d copy %d: P[%zu] vs s4_nplr", (int)init, s, k);
            assert_allclose(Ps + (k * (size_t)S + (size_t)s) * Nh * 2, P + k * Nh * 2, Nh * 2,
                            1e-12, 1e-14, what);
        }
    }
    free(lam), free(P), free(B), free(L), free(Bs), free(Ps);
}

static void test_init_vs_nplr(void **state)
{
    (void)state;
    static const struct { s4_init init; s4_measure m; int rank; } inits[] = {
        {S4_INIT_LEGS, S4_MEASURE_LEGS, 1}, {S4_INIT_LEGS, S4_MEASURE_LEGS, 3},
        {S4_INIT_LEGT, S4_MEASURE_LEGT, 2}, {S4_INIT_LEGT, S4_MEASURE_LEGT, 3},
        {S4_INIT_LAGT, S4_MEASURE_LAGT, 1}, {S4_INIT_FOUT, S4_MEASURE_FOUT, 1},
        {S4_INIT_FOUT, S4_MEASURE_FOUT, 2},
    };
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++)
        for (int N = 2; N <= 64; N *= 4) { /* 2, 8, 32 */
            s4_ssm *ssm = make(inits[i].init, 6, N, inits[i].rank, 3, 1);
            check_init_vs_nplr(inits[i].init, inits[i].m, 0, 3, ssm, N, inits[i].rank, 3);
            s4_ssm_destroy(ssm);
        }
    /* hippo: first S/2 copies LegS, the next S/2 Fourier. */
    s4_ssm *ssm = make(S4_INIT_HIPPO, 4, 16, 1, 0, 1);
    check_init_vs_nplr(S4_INIT_HIPPO, S4_MEASURE_LEGS, 0, 2, ssm, 16, 1, 4);
    check_init_vs_nplr(S4_INIT_HIPPO, S4_MEASURE_FOUT, 2, 2, ssm, 16, 1, 4);
    s4_ssm_destroy(ssm);
}

/* get_config resolves n_ssm; clone is deep. */
static void test_config_and_clone(void **state)
{
    (void)state;
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    assert_int_equal(cfg.H, 1);
    assert_int_equal(cfg.N, 64);
    assert_int_equal(cfg.rank, 1);
    assert_int_equal(cfg.n_ssm, 0);
    assert_int_equal(cfg.channels, 1);
    assert_int_equal(cfg.bidirectional, 0);
    assert_int_equal(cfg.init, S4_INIT_LEGS);
    assert_true(cfg.dt_min == 1e-3 && cfg.dt_max == 1e-1);
    assert_int_equal(cfg.dt_transform, S4_TRANSFORM_EXP);
    assert_int_equal(cfg.real_transform, S4_TRANSFORM_EXP);
    assert_int_equal(cfg.imag_transform, S4_TRANSFORM_NONE);

    cfg.H = 6;
    cfg.N = 8;
    cfg.channels = 3;
    cfg.bidirectional = 1;
    s4_ssm *ssm = NULL, *cl = NULL;
    assert_int_equal(s4_ssm_create(&cfg, &ssm), S4_OK);
    s4_ssm_config got;
    assert_int_equal(s4_ssm_get_config(ssm, &got), S4_OK);
    assert_int_equal(got.n_ssm, 6);
    assert_int_equal(got.channels, 3);
    assert_int_equal(got.bidirectional, 1);
    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_C), 6 * 6 * 4 * 2); /* C'' H N/2 2 */
    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_D), 3 * 6);
    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_P), 1 * 6 * 4 * 2);
    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_LAMBDA), 6 * 4 * 2);
    assert_int_equal(s4_ssm_param_size(ssm, S4_PARAM_DT), 6);
    assert_int_equal(s4_ssm_param_size(ssm, (s4_param)99), 0);

    assert_int_equal(s4_ssm_clone(ssm, &cl), S4_OK);
    assert_int_equal(s4_ssm_setup_length(cl, 16), S4_OK);
    assert_int_equal(s4_ssm_l_kernel(cl), 16);
    assert_int_equal(s4_ssm_l_kernel(ssm), 0); /* the original keeps its raw C */
    size_t n;
    double *raw0 = s4t_get_param(ssm, S4_PARAM_C, &n);
    double *raw1 = malloc(n * sizeof *raw1);
    assert_int_equal(s4_ssm_raw_C(cl, raw1, n), S4_OK);
    assert_allclose(raw1, raw0, n, 0.0, 1e-9 * s4t_max_abs(raw0, n), "raw C of the clone");
    /* raw_C of a raw bank is a copy. */
    assert_int_equal(s4_ssm_raw_C(ssm, raw1, n), S4_OK);
    assert_memory_equal(raw1, raw0, n * sizeof *raw0);
    free(raw0), free(raw1);
    s4_ssm_destroy(cl);
    s4_ssm_destroy(ssm);
    s4_ssm_destroy(NULL); /* no-op */
}

/* ---- invalid arguments ------------------------------------------------------------ */

static s4_ssm *const OUT_SENTINEL = (s4_ssm *)(uintptr_t)0x5eed;

/* s4_ssm_create(cfg) must fail with `want` (or `alt`, if not S4_OK) and leave *out alone. */
static void create_fails2(const s4_ssm_config *cfg, s4_status want, s4_status alt,
                          const char *what)
{
    s4_ssm *out = OUT_SENTINEL;
    s4t_prime_error_();
    s4_status st = s4_ssm_create(cfg, &out);
    if (st == S4_OK && out != OUT_SENTINEL)
        s4_ssm_destroy(out);
    char call[128];
    snprintf(call, sizeof call, "s4_ssm_create(%s)", what);
    s4t_assert_failed_(st, (alt != S4_OK && st == alt) ? alt : want, call, __FILE__, __LINE__);
    if (out != OUT_SENTINEL)
        fail_msg("s4_ssm_create(%s) failed but changed *out", what);
}

static void create_fails(const s4_ssm_config *cfg, s4_status want, const char *what)
{
    create_fails2(cfg, want, S4_OK, what);
}

static void test_create_invalid(void **state)
{
    (void)state;
    s4_ssm_config base, cfg;
    s4_ssm_config_default(&base);
    base.H = 4;
    base.N = 8;
    s4_ssm *ok = NULL;
    assert_int_equal(s4_ssm_create(&base, &ok), S4_OK);
    s4_ssm_destroy(ok);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_create(NULL, &ok));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_create(&base, NULL));

#define BAD(field, value)                                              \
    do {                                                               \
        cfg = base;                                                    \
        cfg.field = (value);                                           \
        create_fails(&cfg, S4_ERR_INVALID_ARGUMENT, #field " = " #value); \
    } while (0)
    BAD(H, 0);
    BAD(H, -1);
    BAD(N, 0);
    BAD(N, -2);
    BAD(N, 7);
    BAD(rank, 0);
    BAD(rank, -1);
    BAD(n_ssm, -1);
    BAD(n_ssm, 3);  /* does not divide H = 4 */
    BAD(n_ssm, 8);  /* larger than H */
    BAD(channels, 0);
    BAD(channels, -3);
    BAD(bidirectional, 2);
    BAD(bidirectional, -1);
    BAD(init, (s4_init)99);
    BAD(dt_transform, (s4_transform)99);
    BAD(real_transform, (s4_transform)-1);
    BAD(imag_transform, (s4_transform)99);
    BAD(dt_min, 0.0);
    BAD(dt_min, -1e-3);
    BAD(dt_min, 0.5); /* > dt_max */
    BAD(dt_max, 1e-4); /* < dt_min */
    BAD(dt_min, NAN);
    BAD(dt_max, NAN);
    BAD(dt_max, INFINITY);
#undef BAD
    /* Rank below the init's natural rank: LegT needs 2. */
    cfg = base;
    cfg.init = S4_INIT_LEGT;
    cfg.rank = 1;
    create_fails(&cfg, S4_ERR_INVALID_ARGUMENT, "legt, rank 1");
    /* hippo needs an even S. */
    cfg = base;
    cfg.init = S4_INIT_HIPPO;
    cfg.H = 3;
    create_fails(&cfg, S4_ERR_INVALID_ARGUMENT, "hippo, S = 3");
}

/* Caps the address space near the current size so that a wrong huge allocation fails
 * fast instead of swamping the machine; restored by address_space_restore. */
static struct rlimit saved_as;
static void address_space_cap(void)
{
    assert_int_equal(getrlimit(RLIMIT_AS, &saved_as), 0);
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit cap = saved_as;
    rlim_t want = (rlim_t)pages * 4096u + ((rlim_t)1 << 31); /* + 2 GiB */
    if (cap.rlim_cur == RLIM_INFINITY || cap.rlim_cur > want)
        cap.rlim_cur = want;
    assert_int_equal(setrlimit(RLIMIT_AS, &cap), 0);
}
static void address_space_restore(void) { assert_int_equal(setrlimit(RLIMIT_AS, &saved_as), 0); }

/* The largest sizes (H = INT_MAX with the largest N and rows the library takes) cannot be
 * allocated: S4_ERR_OUT_OF_MEMORY. Sizes past the library's limits (N = INT_MAX - 1), whose
 * products overflow size_t, may be refused as out of range instead. */
static void test_create_overflow(void **state)
{
    (void)state;
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    address_space_cap();
    cfg.H = INT_MAX;
    cfg.N = INT_MAX - 1;
    cfg.n_ssm = 1;
    create_fails2(&cfg, S4_ERR_OUT_OF_MEMORY, S4_ERR_INVALID_ARGUMENT,
                  "H = INT_MAX, N = INT_MAX - 1");
    cfg.n_ssm = 0;
    create_fails2(&cfg, S4_ERR_OUT_OF_MEMORY, S4_ERR_INVALID_ARGUMENT,
                  "H = INT_MAX, N = INT_MAX - 1, S = H");
    cfg.N = 1 << 16;
    cfg.n_ssm = 1;
    cfg.channels = 1 << 11;
    cfg.bidirectional = 1;
    create_fails(&cfg, S4_ERR_OUT_OF_MEMORY, "H = INT_MAX, N = 65536, C'' = 4096");
    cfg.N = 1 << 12;
    cfg.channels = 1;
    cfg.bidirectional = 0;
    create_fails(&cfg, S4_ERR_OUT_OF_MEMORY, "H = INT_MAX, N = 4096");
    address_space_restore();
}

/* A valid set of stored arrays: H = 2, N = 4, rank 1, S = 2, C' = 1 (bidirectional). */
enum { AH = 2, ANh = 2, AS = 2, AR = 1, ACP = 1, ACPP = 2 };
typedef struct arrays_buf {
    double inv_dt[AH], A_real[AS * ANh], A_imag[AS * ANh], B[AS * ANh * 2];
    double P[AR * AS * ANh * 2], C[ACPP * AH * ANh * 2], D[ACP * AH];
} arrays_buf;

static void arrays_init(arrays_buf *b, s4_ssm_arrays *a, s4_ssm_config *cfg)
{
    s4_ssm_config_default(cfg);
    cfg->H = AH;
    cfg->N = 2 * ANh;
    cfg->rank = AR;
    cfg->n_ssm = AS;
    cfg->channels = ACP;
    cfg->bidirectional = 1;
    for (int i = 0; i < AH; i++)
        b->inv_dt[i] = log(0.01 * (i + 1));
    for (int i = 0; i < AS * ANh; i++) {
        b->A_real[i] = log(0.5);
        b->A_imag[i] = 3.14159 * (i % ANh) + 0.5;
    }
    for (int i = 0; i < AS * ANh * 2; i++)
        b->B[i] = 0.3 + 0.1 * i;
    for (int i = 0; i < AR * AS * ANh * 2; i++)
        b->P[i] = 0.5 - 0.05 * i;
    for (int i = 0; i < ACPP * AH * ANh * 2; i++)
        b->C[i] = sin(1.0 + i);
    for (int i = 0; i < ACP * AH; i++)
        b->D[i] = cos(1.0 + i);
    *a = (s4_ssm_arrays){b->inv_dt, b->A_real, b->A_imag, b->B, b->P, b->C, b->D, 0};
}

static void from_arrays_fails2(const s4_ssm_config *cfg, const s4_ssm_arrays *a,
                               s4_status want, s4_status alt, const char *what)
{
    s4_ssm *out = OUT_SENTINEL;
    s4t_prime_error_();
    s4_status st = s4_ssm_create_from_arrays(cfg, a, &out);
    if (st == S4_OK && out != OUT_SENTINEL)
        s4_ssm_destroy(out);
    char call[160];
    snprintf(call, sizeof call, "s4_ssm_create_from_arrays(%s)", what);
    s4t_assert_failed_(st, (alt != S4_OK && st == alt) ? alt : want, call, __FILE__, __LINE__);
    if (out != OUT_SENTINEL)
        fail_msg("s4_ssm_create_from_arrays(%s) failed but changed *out", what);
}

static void from_arrays_fails(const s4_ssm_config *cfg, const s4_ssm_arrays *a,
                              s4_status want, const char *what)
{
    from_arrays_fails2(cfg, a, want, S4_OK, what);
}

static void test_from_arrays_invalid(void **state)
{
    (void)state;
    arrays_buf buf;
    s4_ssm_arrays a, bad;
    s4_ssm_config cfg, c2;
    arrays_init(&buf, &a, &cfg);
    s4_ssm *ok = NULL;
    assert_int_equal(s4_ssm_create_from_arrays(&cfg, &a, &ok), S4_OK);
    s4_ssm_destroy(ok);
    /* D may be NULL (D = 0). */
    bad = a;
    bad.D = NULL;
    assert_int_equal(s4_ssm_create_from_arrays(&cfg, &bad, &ok), S4_OK);
    double *D = s4t_get_param(ok, S4_PARAM_D, NULL);
    assert_true(D[0] == 0.0 && D[1] == 0.0);
    free(D);
    s4_ssm_destroy(ok);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_create_from_arrays(NULL, &a, &ok));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_create_from_arrays(&cfg, NULL, &ok));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_create_from_arrays(&cfg, &a, NULL));

    /* Each required array NULL. */
    const double **fields[] = {&bad.inv_dt, &bad.A_real, &bad.A_imag, &bad.B, &bad.P, &bad.C};
    static const char *names[] = {"inv_dt", "A_real", "A_imag", "B", "P", "C", "D"};
    for (size_t f = 0; f < 6; f++) {
        bad = a;
        *fields[f] = NULL;
        char what[64];
        snprintf(what, sizeof what, "%s = NULL", names[f]);
        from_arrays_fails(&cfg, &bad, S4_ERR_INVALID_ARGUMENT, what);
    }

    /* NaN and +-Inf in every element of every array. */
    double *arrays[] = {buf.inv_dt, buf.A_real, buf.A_imag, buf.B, buf.P, buf.C, buf.D};
    size_t sizes[] = {AH, AS * ANh, AS * ANh, AS * ANh * 2, AR * AS * ANh * 2,
                      ACPP * AH * ANh * 2, ACP * AH};
    const double poison[] = {NAN, INFINITY, -INFINITY};
    for (size_t f = 0; f < 7; f++)
        for (size_t i = 0; i < sizes[f]; i++)
            for (size_t p = 0; p < 3; p++) {
                double keep = arrays[f][i];
                arrays[f][i] = poison[p];
                char what[64];
                snprintf(what, sizeof what, "%s[%zu] = %g", names[f], i, poison[p]);
                from_arrays_fails(&cfg, &a, S4_ERR_INVALID_ARGUMENT, what);
                arrays[f][i] = keep;
            }

    /* D beyond the float32 range the convolution applies it in. */
    {
        const double keep = buf.D[1];
        buf.D[1] = -1e39;
        from_arrays_fails(&cfg, &a, S4_ERR_INVALID_ARGUMENT, "D[1] = -1e39");
        buf.D[1] = keep;
    }

    /* Sizes. */
#define BADCFG(field, value)                                                           \
    do {                                                                               \
        c2 = cfg;                                                                      \
        c2.field = (value);                                                            \
        from_arrays_fails(&c2, &a, S4_ERR_INVALID_ARGUMENT, #field " = " #value);     \
    } while (0)
    BADCFG(H, 0);
    BADCFG(N, 0);
    BADCFG(N, 3);
    BADCFG(rank, 0);
    BADCFG(n_ssm, -1);
    BADCFG(n_ssm, 3);
    BADCFG(channels, 0);
    BADCFG(bidirectional, 2);
    BADCFG(dt_transform, (s4_transform)99);
    BADCFG(real_transform, (s4_transform)99);
    BADCFG(imag_transform, (s4_transform)99);
#undef BADCFG
    bad = a;
    bad.l_kernel = -1;
    from_arrays_fails(&cfg, &bad, S4_ERR_INVALID_ARGUMENT, "l_kernel = -1");

    /* dt must map to a positive value, Re(Lambda) to a negative one. */
    c2 = cfg;
    c2.dt_transform = S4_TRANSFORM_NONE; /* dt = inv_dt = log(0.01) < 0 */
    from_arrays_fails(&c2, &a, S4_ERR_INVALID_ARGUMENT, "dt = inv_dt < 0 (transform none)");
    c2 = cfg;
    c2.real_transform = S4_TRANSFORM_NONE; /* Re Lambda = -log(0.5) > 0 */
    from_arrays_fails(&c2, &a, S4_ERR_INVALID_ARGUMENT, "Re Lambda > 0 (transform none)");

    /* Sizes too large to allocate: refused before any array is read (the arrays here
     * are tiny, so reading them by the configured sizes would crash). */
    address_space_cap();
    c2 = cfg;
    c2.H = INT_MAX;
    c2.N = 1 << 16;
    c2.n_ssm = 1;
    from_arrays_fails(&c2, &a, S4_ERR_OUT_OF_MEMORY, "H = INT_MAX, N = 65536");
    c2.N = INT_MAX - 1;
    from_arrays_fails2(&c2, &a, S4_ERR_OUT_OF_MEMORY, S4_ERR_INVALID_ARGUMENT,
                       "H = INT_MAX, N = INT_MAX - 1");
    c2 = cfg;
    c2.N = INT_MAX - 1;
    c2.rank = INT_MAX;
    from_arrays_fails2(&c2, &a, S4_ERR_OUT_OF_MEMORY, S4_ERR_INVALID_ARGUMENT,
                       "N = INT_MAX - 1, rank = INT_MAX");
    address_space_restore();
}

/* A small C-tilde bank and a raw one for the remaining argument checks. */
static void small_banks(s4_ssm **raw, s4_ssm **tilde)
{
    arrays_buf buf;
    s4_ssm_arrays a;
    s4_ssm_config cfg;
    arrays_init(&buf, &a, &cfg);
    assert_int_equal(s4_ssm_create_from_arrays(&cfg, &a, raw), S4_OK);
    assert_int_equal(s4_ssm_clone(*raw, tilde), S4_OK);
    assert_int_equal(s4_ssm_setup_length(*tilde, 8), S4_OK);
}

static void test_accessors_invalid(void **state)
{
    (void)state;
    s4_ssm *raw = NULL, *tilde = NULL;
    small_banks(&raw, &tilde);
    size_t nC = s4_ssm_param_size(raw, S4_PARAM_C);
    assert_int_equal(nC, ACPP * AH * ANh * 2);
    double out[ACPP * AH * ANh * 2 + 1];

    /* clone */
    s4_ssm *cl = OUT_SENTINEL;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_clone(NULL, &cl));
    assert_ptr_equal(cl, OUT_SENTINEL);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_clone(raw, NULL));

    /* get_config */
    s4_ssm_config cfg, cfg0;
    memset(&cfg, 0xA5, sizeof cfg);
    cfg0 = cfg;
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_config(NULL, &cfg));
    assert_memory_equal(&cfg, &cfg0, sizeof cfg);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_config(raw, NULL));

    /* get_param */
    fill(out, nC + 1, SENTINEL);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(NULL, S4_PARAM_C, out, nC));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(raw, S4_PARAM_C, NULL, nC));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(raw, S4_PARAM_C, out, nC - 1));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(raw, S4_PARAM_C, out, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(raw, (s4_param)99, out, nC));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_get_param(raw, (s4_param)-1, out, nC));
    assert_true(all_equal(out, nC + 1, SENTINEL));
    /* n larger than needed is fine and writes only param_size values. */
    assert_int_equal(s4_ssm_get_param(raw, S4_PARAM_DT, out, nC), S4_OK);
    assert_true(all_equal(out + AH, nC + 1 - AH, SENTINEL));

    /* raw_C */
    fill(out, nC + 1, SENTINEL);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_raw_C(NULL, out, nC));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_raw_C(tilde, NULL, nC));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_raw_C(tilde, out, nC - 1));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_raw_C(raw, out, nC - 1));
    assert_true(all_equal(out, nC + 1, SENTINEL));

    s4_ssm_destroy(raw);
    s4_ssm_destroy(tilde);
}

static void test_discretize_invalid(void **state)
{
    (void)state;
    s4_ssm *raw = NULL, *tilde = NULL;
    small_banks(&raw, &tilde);
    enum { N = 2 * ANh };
    double dA[N * N * 2], dB[N * 2];
    fill(dA, N * N * 2, SENTINEL);
    fill(dB, N * 2, SENTINEL);
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(NULL, 0, 1.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(raw, -1, 1.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(raw, AH, 1.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(raw, INT_MAX, 1.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(tilde, 0, 0.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(tilde, 0, -1.0, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(tilde, 0, NAN, dA, dB));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_discretize(tilde, 0, INFINITY, dA, dB));
    assert_true(all_equal(dA, N * N * 2, SENTINEL));
    assert_true(all_equal(dB, N * 2, SENTINEL));
    /* Valid: the last feature, and a rate. */
    assert_int_equal(s4_ssm_discretize(tilde, AH - 1, 0.5, dA, dB), S4_OK);
    s4_ssm_destroy(raw);
    s4_ssm_destroy(tilde);
}

static void test_setup_length_invalid(void **state)
{
    (void)state;
    s4_ssm *raw = NULL, *tilde = NULL;
    small_banks(&raw, &tilde);
    size_t n;
    double *C_raw = s4t_get_param(raw, S4_PARAM_C, &n);
    double *C_tilde = s4t_get_param(tilde, S4_PARAM_C, NULL);

    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_setup_length(NULL, 8));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_setup_length(raw, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_setup_length(raw, -4));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_setup_length(tilde, 0));
    assert_fails(S4_ERR_INVALID_ARGUMENT, s4_ssm_setup_length(tilde, INT64_MIN));
    assert_int_equal(s4_ssm_l_kernel(raw), 0);
    assert_int_equal(s4_ssm_l_kernel(tilde), 8);

    /* Doubling 8 until it reaches INT64_MAX would overflow int64: must fail, not wrap. */
    s4t_prime_error_();
    s4_status st = s4_ssm_setup_length(tilde, INT64_MAX);
    if (st == S4_OK)
        fail_msg("s4_ssm_setup_length(Lk 8 -> INT64_MAX) succeeded, l_kernel = %lld",
                 (long long)s4_ssm_l_kernel(tilde));
    print_message("setup_length(INT64_MAX) on Lk = 8: %s: %s\n", s4_status_str(st),
                  s4_last_error());
    assert_true(strlen(s4_last_error()) > 0);
    assert_int_equal(s4_ssm_l_kernel(tilde), 8);

    double *C1 = s4t_get_param(raw, S4_PARAM_C, NULL);
    double *C2 = s4t_get_param(tilde, S4_PARAM_C, NULL);
    assert_memory_equal(C1, C_raw, n * sizeof *C1);
    assert_memory_equal(C2, C_tilde, n * sizeof *C2);
    free(C_raw), free(C_tilde), free(C1), free(C2);
    s4_ssm_destroy(raw);
    s4_ssm_destroy(tilde);
}

int main(int argc, char **argv)
{
    int count = 0;
    s4t_case *cases = s4t_cases_load(&count);
    s4t_suite s = {0};
    s4t_suite_add_cases(&s, "golden_params", test_golden_params, cases, count);
    s4t_suite_add_cases(&s, "golden_discretize", test_golden_discretize, cases, count);
    s4t_suite_add_cases(&s, "golden_ctilde", test_golden_ctilde, cases, count);
    s4t_suite_add_cases(&s, "golden_from_ctilde", test_golden_from_ctilde, cases, count);
    s4t_suite_add(&s, "init_seed", test_init_seed, NULL);
    s4t_suite_add(&s, "init_dt_range", test_init_dt_range, NULL);
    s4t_suite_add(&s, "init_vs_nplr", test_init_vs_nplr, NULL);
    s4t_suite_add(&s, "config_and_clone", test_config_and_clone, NULL);
    s4t_suite_add(&s, "create_invalid", test_create_invalid, NULL);
    s4t_suite_add(&s, "create_overflow", test_create_overflow, NULL);
    s4t_suite_add(&s, "from_arrays_invalid", test_from_arrays_invalid, NULL);
    s4t_suite_add(&s, "accessors_invalid", test_accessors_invalid, NULL);
    s4t_suite_add(&s, "discretize_invalid", test_discretize_invalid, NULL);
    s4t_suite_add(&s, "setup_length_invalid", test_setup_length_invalid, NULL);
    int failures = s4t_suite_run(&s, "ssm", argc, argv);
    free(cases);
    return failures;
}
