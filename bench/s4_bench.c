/* s4-bench: reproducible figures for libs4.
 *   s4-bench kernel [--mode dplr|diag] --H 256 --N 64 --L 16384 [--rank 1] [--channels 1]
 *                   [--disc zoh|bilinear|dss] [--init name] [--repeat 5] [--json]
 *   s4-bench forward --B 8 --H 256 --N 64 --L 16384 [--channels 1] [--repeat 5] [--json]
 *                    [--planner estimate|measure] [--floor]
 * Times s4_kernel_execute (median of --repeat runs after >= 0.2 s of warm-up) on a seeded LegS
 * bank whose C-tilde is set up for L, and reports GFLOP/s by the cost model of
 * docs/design.md section 7 (43 flops per (h, n, l) for one kernel row at rank 1; in general
 * 11 + 8 (C'' + r)(1 + r): one complex reciprocal plus one complex multiply-accumulate per
 * Cauchy sum) and the process's peak RSS.
 * --mode diag times the S4D (diagonal) kernel instead, on a seeded bank of --init (default
 * diag-lin) and --disc (default zoh) with no C-tilde setup, at the same sizes, and reports
 * GFLOP/s by the Vandermonde model 2 H C'' N L flops (per output, N/2 complex modes whose
 * real part alone is needed: N real multiply-adds). The two models count different
 * algorithms, so compare the two modes by time, not by GFLOP/s.
 * forward times s4_forward_execute (median of --repeat runs after one warm-up) of a default
 * S4 layer (GELU, output linear + GLU, l_max None) on B sequences of length L, and reports
 * s4_forward_create's time (C-tilde, kernel, its spectrum) separately. --planner measure
 * makes the plan's FFTs with FFTW_MEASURE; --floor also times the forward's FFTs and its
 * output linear alone (floor.c) and prints forward / floor.
 *   s4-bench step --mode linear|dense|diagonal --B 1 --H 256 --N 64 [--L steps] [--json]
 * times s4_step_execute on the same default layer, one time step for B sequences per call,
 * and reports steps per second (and sequence-steps per second = B x steps/s).
 * forward and step take --ssm diag for an S4D layer (S4D-LegS, zoh; its step is diagonal).
 *   s4-bench peak [--threads t] [--json]
 * measures this machine's float32 FMA throughput on one core and on t threads (default all).
 *   s4-bench kernel --sweep [--json] runs L = 2^10..2^20 for N in {16, 64, 256}
 * (bench/plot_sweep.sh renders it); with --mode diag, the same sweep of the S4D kernel.
 *   s4-bench model [--B 64 --L 1024 --H 128 --N 64 --layers 4 --din 3]
 * times an example.py S4Model with S4D layers (seeded parameters) at example.py's default
 * sizes: the convolution forward of B sequences, and recurrent classification of the B
 * sequences stepped together and of one sequence alone (L steps).
 * --threads t sets the OpenMP threads of kernel, forward and step (default: all cores).
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "floor.h"
#include "peak.h"
#include "cli/args.h"
#include "s4.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct options {
    int B, H, N, rank, channels, repeat, json, threads, sweep, floor, layers, din;
    long long L;
    unsigned long long seed;
    const char *mode, *disc, *init, *ssm, *planner, *precision;
} options;

/* --precision double|single of the step, model and generate benches. */
static s4_precision step_precision(const options *o)
{
    return o->precision && !strcmp(o->precision, "single") ? S4_PRECISION_SINGLE
                                                           : S4_PRECISION_DOUBLE;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n timings (sorts them); times[0] is then the minimum. */
static double median_of(double *times, int n)
{
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: s4-bench kernel [--mode dplr|diag] [--H n] [--N n] [--L n] [--rank r]\n"
            "                       [--channels c] [--disc zoh|bilinear|dss] [--init name]\n"
            "                       [--repeat k] [--seed s] [--threads t] [--json]\n"
            "       s4-bench kernel [--mode dplr|diag] --sweep [--threads t] [--json]\n"
            "       s4-bench forward [--ssm dplr|diag] [--B b] [--H n] [--N n] [--L n]\n"
            "                        [--planner estimate|measure] [--floor]\n"
            "                        [--channels c] [--repeat k] [--seed s] [--threads t]\n"
            "                        [--json]\n"
            "       s4-bench step [--ssm dplr|diag] --mode linear|dense|diagonal [--B b]\n"
            "                     [--H n] [--N n] [--L steps] [--repeat k] [--threads t]\n"
            "                     [--precision double|single] [--json]\n"
            "       s4-bench peak [--threads t] [--json]\n"
            "       s4-bench model [--B 64] [--L 1024] [--H 128] [--N 64] [--layers 4] [--din 3]\n"
            "                      [--planner estimate|measure] [--repeat 3] [--threads t]\n"
            "                      [--json]\n"
            "       s4-bench generate [--B 1] [--L 16000] [--H 64] [--layers 8] [--N 64]\n"
            "                         [--mode dplr|diag] [--repeat 3] [--threads t]\n"
            "                         [--precision double|single] [--json]\n"
            "         (SashimiLM, SC09 size by default: pools [4, 4], expand 2, ff 2)\n"
            "       s4-bench sashimi [--B 8] [--L 16000] [--H 64] [--layers 8] [--repeat 3]\n"
            "         (the same model's teacher-forced forward on token sequences)\n");
    return 2;
}

/* The option texts, parsed by the command-line parser the `s4` program uses (args.h). */
typedef struct option_text {
    const char *B, *H, *N, *L, *rank, *channels, *repeat, *seed, *threads, *layers, *din;
    const char *mode, *disc, *init, *ssm, *planner, *precision, *json, *sweep, *floor;
} option_text;

#define OPT(name, flag) {#name, offsetof(option_text, name), flag}
static const s4args_spec option_specs[] = {
    OPT(B, false),       OPT(H, false),        OPT(N, false),      OPT(L, false),
    OPT(rank, false),    OPT(channels, false), OPT(repeat, false), OPT(seed, false),
    OPT(threads, false), OPT(layers, false),   OPT(din, false),    OPT(mode, false),
    OPT(disc, false),    OPT(init, false),     OPT(ssm, false),    OPT(planner, false),
    OPT(precision, false), OPT(json, true),    OPT(sweep, true),   OPT(floor, true),
};
#undef OPT

/* Every number is checked against the range of the field it goes to (--L and --seed are
 * 64-bit, the others int); on an error the parser has printed the reason. */
static int parse(int argc, char **argv, options *o)
{
    option_text t;
    if (s4args_parse(argc - 2, argv + 2, option_specs,
                     sizeof option_specs / sizeof option_specs[0], NULL, &t,
                     "s4-bench --help") != 0)
        return -1;
    const struct {
        const char *text, *name;
        int *dst;
    } ints[] = {{t.B, "B", &o->B},           {t.H, "H", &o->H},
                {t.N, "N", &o->N},           {t.rank, "rank", &o->rank},
                {t.channels, "channels", &o->channels}, {t.repeat, "repeat", &o->repeat},
                {t.threads, "threads", &o->threads},    {t.layers, "layers", &o->layers},
                {t.din, "din", &o->din}};
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        int64_t v;
        if (ints[k].text && s4args_int(ints[k].text, ints[k].name, 0, INT_MAX, &v) != 0)
            return -1;
        if (ints[k].text)
            *ints[k].dst = (int)v;
    }
    int64_t v;
    if (t.L) {
        if (s4args_int(t.L, "L", 0, INT64_MAX, &v) != 0)
            return -1;
        o->L = v;
    }
    if (t.seed) {
        if (s4args_int(t.seed, "seed", 0, INT64_MAX, &v) != 0)
            return -1;
        o->seed = (unsigned long long)v;
    }
    if (t.precision && strcmp(t.precision, "single") && strcmp(t.precision, "double"))
        return s4args_fail(-1, "option --precision: '%s' is not double or single", t.precision);
    o->mode = t.mode ? t.mode : o->mode;
    o->disc = t.disc ? t.disc : o->disc;
    o->init = t.init ? t.init : o->init;
    o->ssm = t.ssm ? t.ssm : o->ssm;
    o->planner = t.planner ? t.planner : o->planner;
    o->precision = t.precision;
    o->json = t.json != NULL;
    o->sweep = t.sweep != NULL;
    o->floor = t.floor != NULL;
    return o->repeat >= 1 ? 0 : s4args_fail(-1, "option --repeat: must be >= 1");
}

static int fail(const char *what, s4_status st)
{
    fprintf(stderr, "s4-bench: %s: %s: %s\n", what, s4_status_str(st), s4_last_error());
    return 1;
}

/* Init names of the reference (s4_init), for --init. */
static int init_by_name(const char *name, s4_init *init)
{
    static const struct {
        const char *name;
        s4_init init;
    } inits[] = {{"legs", S4_INIT_LEGS},          {"legt", S4_INIT_LEGT},
                 {"lagt", S4_INIT_LAGT},          {"fout", S4_INIT_FOUT},
                 {"hippo", S4_INIT_HIPPO},        {"diag-lin", S4_INIT_DIAG_LIN},
                 {"diag-inv", S4_INIT_DIAG_INV},  {"diag-real", S4_INIT_DIAG_REAL},
                 {"diag", S4_INIT_DIAG},          {"diag-inv2", S4_INIT_DIAG_INV2},
                 {"diag-quad", S4_INIT_DIAG_QUAD}};
    for (size_t i = 0; i < sizeof inits / sizeof *inits; i++)
        if (!strcmp(name, inits[i].name)) {
            *init = inits[i].init;
            return 0;
        }
    return -1;
}

static int bench_kernel(const options *o)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    bool diag = false;
    if (o->mode && (!strcmp(o->mode, "diag") || !strcmp(o->mode, "s4d")))
        diag = true;
    else if (o->mode && strcmp(o->mode, "dplr") && strcmp(o->mode, "s4"))
        return usage();
    const char *disc_name = o->disc ? o->disc : "zoh";
    if (!strcmp(disc_name, "zoh"))
        cfg.disc = S4_DISC_ZOH;
    else if (!strcmp(disc_name, "bilinear"))
        cfg.disc = S4_DISC_BILINEAR;
    else if (!strcmp(disc_name, "dss"))
        cfg.disc = S4_DISC_DSS;
    else
        return usage();
    if (o->disc && !diag) {
        fprintf(stderr, "s4-bench: --disc applies to --mode diag only (DPLR is bilinear)\n");
        return 2;
    }
    const char *init_name = o->init ? o->init : diag ? "diag-lin" : "legs";
    if (init_by_name(init_name, &cfg.init) != 0)
        return usage();
    cfg.mode = diag ? S4_MODE_DIAG : S4_MODE_DPLR;
    cfg.H = o->H;
    cfg.N = o->N;
    cfg.rank = o->rank;
    cfg.channels = o->channels;
    cfg.seed = o->seed;
    s4_ssm *ssm = NULL;
    s4_kernel *plan = NULL;
    s4_status st = s4_ssm_create(&cfg, &ssm);
    if (st != S4_OK)
        return fail("s4_ssm_create", st);
    /* C-tilde for L (DPLR). A diagonal bank keeps its raw C: nothing to set up. */
    double t0 = now();
    if (!diag && (st = s4_ssm_setup_length(ssm, o->L)) != S4_OK)
        return fail("s4_ssm_setup_length", st);
    const double setup_s = diag ? 0.0 : now() - t0;
    t0 = now();
    const s4_kernel_options kopt = {.rate = 1.0, .threads = o->threads};
    if ((st = s4_kernel_create(ssm, o->L, &kopt, &plan)) != S4_OK)
        return fail("s4_kernel_create", st);
    const double plan_s = now() - t0;
    const int rows = s4_kernel_rows(plan);
    const size_t count = (size_t)rows * (size_t)o->H * (size_t)o->L;
    float *K = malloc(count * sizeof *K);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!K || !times) {
        fprintf(stderr, "s4-bench: out of memory for K (%zu floats)\n", count);
        return 1;
    }
    /* Warm-up: at least one run and at least 0.2 s. A kernel of a few milliseconds (the
     * diagonal one has no setup before it) otherwise meets the OpenMP pool and the CPUs
     * still waking up, and one run is not enough to hide that. */
    const double warm_start = now();
    do {
        if ((st = s4_kernel_execute(plan, ssm, K, (size_t)o->L, NULL, 0)) != S4_OK)
            return fail("s4_kernel_execute", st);
    } while (now() - warm_start < 0.2);
    for (int i = 0; i < o->repeat; i++) {
        t0 = now();
        if ((st = s4_kernel_execute(plan, ssm, K, (size_t)o->L, NULL, 0)) != S4_OK)
            return fail("s4_kernel_execute", st);
        times[i] = now() - t0;
    }
    const double median = median_of(times, o->repeat);
    double flops;
    if (diag) {
        /* Vandermonde: per output K[c][h][l], N/2 complex modes of which only the real part
         * of (C dB)_n dA_n^l is needed: N real multiply-adds, 2 N flops. */
        flops = 2.0 * o->H * (double)rows * o->N * (double)o->L;
    } else {
        /* Cauchy (docs/design.md 7): per (h, n < N/2, node <= L/2) one complex reciprocal and one
         * complex multiply-accumulate per Cauchy sum. */
        const double nsum = (double)(rows + o->rank) * (1.0 + o->rank);
        flops = (11.0 + 8.0 * nsum) * o->H * (o->N / 2) * (double)(o->L / 2 + 1);
    }
    const double gflops = flops / median * 1e-9;
    const char *model = diag ? "Vandermonde model 2 H C'' N L" : "Cauchy model docs/design.md 7";
    if (o->json) {
        printf("{\"bench\": \"kernel\", \"mode\": \"%s\", ", diag ? "diag" : "dplr");
        if (diag)
            printf("\"disc\": \"%s\", ", disc_name);
        printf("\"init\": \"%s\", \"H\": %d, \"N\": %d, \"L\": %lld, ", init_name, o->H,
               o->N, o->L);
        if (diag)
            printf("\"rank\": null, ");
        else
            printf("\"rank\": %d, ", o->rank);
        printf("\"rows\": %d, \"repeat\": %d, \"median_s\": %.6g, \"min_s\": %.6g, "
               "\"gflops\": %.4g, \"flop_model\": \"%s\", \"peak_rss_mb\": %.1f, "
               "\"output_mb\": %.1f, \"setup_s\": %.6g, \"plan_s\": %.6g, \"threads\": %d}\n",
               rows, o->repeat, median, times[0], gflops, diag ? "vandermonde" : "cauchy",
               peak_rss_mb(), (double)count * 4.0 / 1048576.0, setup_s, plan_s,
               o->threads ? o->threads : omp_get_max_threads());
    } else {
        if (diag)
            printf("kernel  diag (S4D, %s, %s) H=%d N=%d L=%lld rows=%d", disc_name, init_name,
                   o->H, o->N, o->L, rows);
        else
            printf("kernel  dplr (S4, %s) H=%d N=%d L=%lld rank=%d rows=%d", init_name, o->H,
                   o->N, o->L, o->rank, rows);
        printf("  median %.4f s  (min %.4f)  %.2f GFLOP/s (%s)  peak RSS %.1f MB (output "
               "%.1f MB)  ",
               median, times[0], gflops, model, peak_rss_mb(), (double)count * 4.0 / 1048576.0);
        if (diag)
            printf("setup none (raw C)  plan %.3f s\n", plan_s);
        else
            printf("setup %.3f s  plan %.3f s\n", setup_s, plan_s);
    }
    free(K);
    free(times);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
    return 0;
}

/* The default layer of forward and step at the options' sizes; --ssm dplr (default) |
 * diag: an S4 or an S4D (S4D-LegS, zoh) layer. Returns 1 for S4D, 0 for S4, -1 if unknown. */
static int layer_config(const options *o, s4_layer_config *cfg)
{
    s4_layer_config_default(cfg);
    cfg->ssm.H = o->H;
    cfg->ssm.N = o->N;
    cfg->ssm.rank = o->rank;
    cfg->ssm.seed = o->seed;
    cfg->channels = o->channels;
    if (!o->ssm || !strcmp(o->ssm, "dplr") || !strcmp(o->ssm, "s4"))
        return 0;
    if (strcmp(o->ssm, "diag") && strcmp(o->ssm, "s4d"))
        return -1;
    cfg->ssm.mode = S4_MODE_DIAG;
    cfg->ssm.disc = S4_DISC_ZOH;
    return 1;
}

static int bench_forward(const options *o)
{
    s4_layer_config cfg;
    if (layer_config(o, &cfg) < 0)
        return usage();
    s4_layer *layer = NULL;
    s4_forward *plan = NULL;
    s4_status st = s4_layer_create(&cfg, &layer);
    if (st != S4_OK)
        return fail("s4_layer_create", st);
    double t0 = now();
    if (o->planner && strcmp(o->planner, "estimate") && strcmp(o->planner, "measure"))
        return usage();
    const s4_forward_options fopt = {
        .rate = 1.0,
        .planner = o->planner && !strcmp(o->planner, "measure") ? S4_PLANNER_MEASURE
                                                                : S4_PLANNER_ESTIMATE,
        .threads = o->threads};
    if ((st = s4_forward_create(layer, o->B, o->L, &fopt, &plan)) != S4_OK)
        return fail("s4_forward_create", st);
    const double create_s = now() - t0;
    const int F = s4_layer_output_features(layer);
    const size_t nu = (size_t)o->B * (size_t)o->H * (size_t)o->L;
    const size_t ny = (size_t)o->B * (size_t)F * (size_t)o->L;
    float *u = malloc(nu * sizeof *u), *y = malloc(ny * sizeof *y);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!u || !y || !times) {
        fprintf(stderr, "s4-bench: out of memory for u and y (%zu floats)\n", nu + ny);
        return 1;
    }
    for (size_t i = 0; i < nu; i++) /* deterministic, O(1) input */
        u[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    for (int i = -1; i < o->repeat; i++) { /* i = -1: warm-up */
        t0 = now();
        if ((st = s4_forward_execute(plan, u, y, NULL, NULL, 0)) != S4_OK)
            return fail("s4_forward_execute", st);
        if (i >= 0)
            times[i] = now() - t0;
    }
    const double median = median_of(times, o->repeat);
    const double tokens = (double)o->B * (double)o->L / median;
    const double work_mb = (double)s4_forward_workspace_size(plan) / 1048576.0;
    if (o->json)
        printf("{\"bench\": \"forward\", \"ssm\": \"%s\", \"B\": %d, \"H\": %d, \"N\": %d, "
               "\"L\": %lld, \"channels\": %d, \"repeat\": %d, \"median_s\": %.6g, "
               "\"min_s\": %.6g, \"tokens_per_s\": %.4g, \"peak_rss_mb\": %.1f, "
               "\"workspace_mb\": %.1f, \"create_s\": %.6g}\n",
               cfg.ssm.mode == S4_MODE_DIAG ? "diag" : "dplr", o->B, o->H, o->N, o->L,
               o->channels, o->repeat, median, times[0], tokens, peak_rss_mb(), work_mb,
               create_s);
    else
        printf("forward %s B=%d H=%d N=%d L=%lld channels=%d  median %.4f s  (min %.4f)  "
               "%.3g tokens/s  peak RSS %.1f MB (workspace %.1f MB)  create %.3f s\n",
               cfg.ssm.mode == S4_MODE_DIAG ? "diag" : "dplr", o->B, o->H, o->N, o->L,
               o->channels, median, times[0], tokens, peak_rss_mb(), work_mb, create_s);
    if (o->floor) {
        /* The forward's two library parts alone, at their best (floor.c): the causal
         * convolution's FFTs (length 2L) of every (batch, feature) row, and the output
         * linear as one sgemm over all B L columns. */
        const int th = o->threads > 0 ? o->threads : omp_get_max_threads();
        const double tf = s4__floor_fft((int64_t)o->B * o->H, o->L, 2 * o->L, th, 3);
        const int Flin = cfg.final_act == S4_FINAL_GLU ? 2 * o->H : o->H;
        const double tg = s4__floor_gemm(Flin, o->H * o->channels, (int64_t)o->B * o->L, 3);
        printf("floor: FFTs %.4f s + sgemm [%d x %d] x [%d x %lld] %.4f s = %.4f s; "
               "forward / floor = %.2f\n",
               tf, Flin, o->H * o->channels, o->H * o->channels, (long long)o->B * o->L, tg,
               tf + tg, median / (tf + tg));
    }
    free(u);
    free(y);
    free(times);
    s4_forward_destroy(plan);
    s4_layer_destroy(layer);
    return 0;
}

/* L = 2^10 .. 2^20 for N in {16, 64, 256} at the given H: the scaling study of the
 * kernel (fit log time against log N L; bench/plot_sweep.sh draws it). */
static int bench_kernel_sweep(const options *o)
{
    static const int Ns[] = {16, 64, 256};
    /* One unreported run first: the first measurement of a process otherwise pays for
     * starting the OpenMP pool and for OpenBLAS threads still spinning after setup. */
    options warm = *o;
    warm.N = 64;
    warm.L = 1 << 14;
    warm.repeat = 1;
    FILE *keep = stdout;
    stdout = fopen("/dev/null", "w");
    const int rc0 = stdout ? bench_kernel(&warm) : 0;
    if (stdout)
        fclose(stdout);
    stdout = keep;
    if (rc0)
        return rc0;
    for (size_t i = 0; i < sizeof Ns / sizeof *Ns; i++)
        for (int e = 10; e <= 20; e += 2) {
            options one = *o;
            one.N = Ns[i];
            one.L = 1LL << e;
            one.repeat = e >= 18 ? 3 : o->repeat;
            const int rc = bench_kernel(&one);
            if (rc)
                return rc;
            fflush(stdout);
        }
    return 0;
}

static int bench_step(const options *o)
{
    s4_layer_config cfg;
    const int diag = layer_config(o, &cfg);
    if (diag < 0)
        return usage();
    s4_step_mode mode;
    if (diag && !o->mode)
        mode = S4_STEP_DIAGONAL; /* an S4D layer's one step */
    else if (!o->mode || !strcmp(o->mode, "linear"))
        mode = S4_STEP_LINEAR;
    else if (!strcmp(o->mode, "dense"))
        mode = S4_STEP_DENSE;
    else if (!strcmp(o->mode, "diagonal"))
        mode = S4_STEP_DIAGONAL;
    else
        return usage();
    const char *mode_name = mode == S4_STEP_LINEAR ? "linear" : mode == S4_STEP_DENSE ? "dense"
                                                                                 : "diagonal";
    s4_layer *layer = NULL;
    s4_step *plan = NULL;
    s4_status st = s4_layer_create(&cfg, &layer);
    if (st != S4_OK)
        return fail("s4_layer_create", st);
    double t0 = now();
    const s4_step_options sopt = {
        .rate = 1.0, .threads = o->threads, .precision = step_precision(o)};
    if ((st = s4_step_create_with_options(layer, mode, o->B, &sopt, &plan)) != S4_OK)
        return fail("s4_step_create_with_options", st);
    const double create_s = now() - t0;
    const int F = s4_layer_output_features(layer);
    /* --L is the number of steps per timing (default 2000: enough to time, short enough
     * for the dense mode). */
    const long long steps = o->L == 16384 ? 2000 : o->L;
    void *state = malloc(s4_step_state_size(plan));
    float *u = malloc((size_t)o->B * (size_t)o->H * sizeof *u);
    float *y = malloc((size_t)o->B * (size_t)F * sizeof *y);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!state || !u || !y || !times) {
        fprintf(stderr, "s4-bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)o->B * (size_t)o->H; i++)
        u[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    if ((st = s4_step_state_reset(plan, state)) != S4_OK)
        return fail("s4_step_state_reset", st);
    for (int i = -1; i < o->repeat; i++) { /* i = -1: warm-up */
        t0 = now();
        for (long long t = 0; t < steps; t++)
            if ((st = s4_step_execute(plan, state, u, y, NULL, 0)) != S4_OK)
                return fail("s4_step_execute", st);
        if (i >= 0)
            times[i] = now() - t0;
    }
    const double median = median_of(times, o->repeat);
    const double steps_per_s = (double)steps / median;
    if (o->json)
        printf("{\"bench\": \"step\", \"ssm\": \"%s\", \"mode\": \"%s\", \"B\": %d, "
               "\"H\": %d, \"N\": %d, \"steps\": %lld, \"repeat\": %d, \"median_s\": %.6g, "
               "\"steps_per_s\": %.6g, \"sequence_steps_per_s\": %.6g, \"peak_rss_mb\": %.1f, "
               "\"create_s\": %.6g}\n",
               diag ? "diag" : "dplr", mode_name, o->B, o->H, o->N, steps, o->repeat, median,
               steps_per_s, steps_per_s * o->B, peak_rss_mb(), create_s);
    else
        printf("step %s %-8s B=%d H=%d N=%d  %lld steps in %.4f s  %.0f steps/s  "
               "(%.0f sequence-steps/s)  peak RSS %.1f MB  create %.3f s\n",
               diag ? "diag" : "dplr", mode_name, o->B, o->H, o->N, steps, median, steps_per_s,
               steps_per_s * o->B, peak_rss_mb(), create_s);
    free(state);
    free(u);
    free(y);
    free(times);
    s4_step_destroy(plan);
    s4_layer_destroy(layer);
    return 0;
}

/* An example.py S4Model with minimal S4D layers and seeded parameters in the ranges a
 * trained one has (S4D-Lin: A = -1/2 + i pi n, dt log-uniform in [1e-3, 1e-1]). */
static s4_model *bench_model_make(const options *o)
{
    const int H = o->H, Nh = o->N / 2, nl = o->layers, din = o->din, dout = 10;
    uint64_t r = 0x9e3779b97f4a7c15ull ^ o->seed;
#define RND() ((double)((r = r * 6364136223846793005ull + 1442695040888963407ull) >> 11) / \
               9007199254740992.0 * 2.0 - 1.0)
    const size_t nW = (size_t)2 * H * H + 2 * (size_t)H + (size_t)H * 8 + (size_t)H * Nh * 6;
    double *buf = calloc(nW * (size_t)nl + (size_t)(din + dout + 4) * H + dout, sizeof *buf);
    s4_layer_arrays *la = calloc((size_t)nl, sizeof *la);
    if (!buf || !la)
        return NULL;
    double *p = buf;
    double *eW = p; p += (size_t)H * din;
    double *eb = p; p += H;
    double *nw = p; p += (size_t)H * nl;
    double *nb = p; p += (size_t)H * nl;
    double *dW = p; p += (size_t)dout * H;
    double *db = p; p += dout;
    for (double *q = buf; q < p; q++)
        *q = 0.3 * RND();
    for (int i = 0; i < H * nl; i++)
        nw[i] = 1.0 + 0.1 * RND();
    for (int i = 0; i < nl; i++) {
        double *inv_dt = p; p += H;
        double *ar = p; p += (size_t)H * Nh;
        double *ai = p; p += (size_t)H * Nh;
        double *B = p; p += (size_t)H * Nh * 2;
        double *C = p; p += (size_t)H * Nh * 2;
        double *D = p; p += H;
        double *W = p; p += (size_t)2 * H * H;
        double *b = p; p += 2 * (size_t)H;
        for (int h = 0; h < H; h++) {
            inv_dt[h] = log(1e-3) + (0.5 + 0.5 * RND()) * (log(1e-1) - log(1e-3));
            D[h] = RND();
            for (int n = 0; n < Nh; n++) {
                ar[(size_t)h * Nh + n] = log(0.5);
                ai[(size_t)h * Nh + n] = -3.141592653589793 * n; /* S4Block form */
                B[2 * ((size_t)h * Nh + n)] = 1.0;
                C[2 * ((size_t)h * Nh + n)] = 0.5 * RND();
                C[2 * ((size_t)h * Nh + n) + 1] = 0.5 * RND();
            }
        }
        for (size_t k = 0; k < (size_t)2 * H * H; k++)
            W[k] = RND() / sqrt((double)H);
        for (int k = 0; k < 2 * H; k++)
            b[k] = 0.1 * RND();
        la[i] = (s4_layer_arrays){.ssm = {.inv_dt = inv_dt, .A_real = ar, .A_imag = ai,
                                          .B = B, .C = C, .D = D},
                                  .W = W, .b = b};
    }
#undef RND
    s4_model_config c;
    s4_model_config_default(&c);
    c.d_input = din, c.d_output = dout, c.d_model = H, c.n_layers = nl;
    c.layer.ssm.N = o->N;
    const s4_model_arrays a = {.encoder_W = eW, .encoder_b = eb, .norm_w = nw, .norm_b = nb,
                               .layers = la, .decoder_W = dW, .decoder_b = db};
    s4_model *m = NULL;
    const s4_status st = s4_model_create_from_arrays(&c, &a, &m);
    free(buf);
    free(la);
    if (st != S4_OK)
        fail("s4_model_create_from_arrays", st);
    return m;
}

/* Model forward (B x L) and recurrent classification: B sequences stepped together, and one
 * sequence of L steps alone (what a streaming classifier does). */
static int bench_model(const options *o)
{
    if (o->H < 1 || o->N < 2 || o->N % 2 || o->layers < 1 || o->din < 1 || o->B < 1 || o->L < 1)
        return usage();
    s4_model *m = bench_model_make(o);
    if (!m)
        return 1;
    const size_t din = (size_t)o->din;
    const size_t nx = (size_t)o->B * (size_t)o->L * din;
    float *x = malloc(nx * sizeof *x), *y = malloc((size_t)o->B * 10 * sizeof *y);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!x || !y || !times)
        return 1;
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    if (o->planner && strcmp(o->planner, "estimate") && strcmp(o->planner, "measure"))
        return usage();
    const s4_forward_options fo = {
        .rate = 1.0,
        .planner = o->planner && !strcmp(o->planner, "measure") ? S4_PLANNER_MEASURE
                                                                : S4_PLANNER_ESTIMATE,
        .threads = o->threads};
    s4_model_forward *f = NULL;
    double t0 = now();
    s4_status st = s4_model_forward_create(m, o->B, o->L, &fo, &f);
    if (st != S4_OK)
        return fail("s4_model_forward_create", st);
    const double create_s = now() - t0;
    for (int i = -1; i < o->repeat; i++) {
        t0 = now();
        if ((st = s4_model_forward_execute(f, x, y, NULL, 0)) != S4_OK)
            return fail("s4_model_forward_execute", st);
        if (i >= 0)
            times[i] = now() - t0;
    }
    const double fwd = median_of(times, o->repeat);
    s4_model_forward_destroy(f);
    /* Recurrent: B sequences together, then one sequence alone, L steps each. */
    double rec[2];
    const int bs[2] = {o->B, 1};
    const s4_step_options so = {
        .rate = 1.0, .threads = o->threads, .precision = step_precision(o)};
    for (int k = 0; k < 2; k++) {
        s4_model_step *p = NULL;
        if ((st = s4_model_step_create(m, S4_MODEL_STEP_NATURAL, bs[k], &so, &p)) != S4_OK)
            return fail("s4_model_step_create", st);
        void *state = malloc(s4_model_step_state_size(p));
        float *xt = malloc((size_t)bs[k] * din * sizeof *xt);
        if (!state || !xt)
            return 1;
        for (size_t i = 0; i < (size_t)bs[k] * din; i++)
            xt[i] = x[i];
        for (int i = -1; i < o->repeat; i++) {
            if ((st = s4_model_step_state_reset(p, state)) != S4_OK)
                return fail("s4_model_step_state_reset", st);
            t0 = now();
            for (long long t = 0; t < o->L; t++)
                if ((st = s4_model_step_execute(p, state, xt, t + 1 == o->L ? y : NULL, NULL,
                                                0)) != S4_OK)
                    return fail("s4_model_step_execute", st);
            if (i >= 0)
                times[i] = now() - t0;
        }
        rec[k] = median_of(times, o->repeat);
        free(state), free(xt);
        s4_model_step_destroy(p);
    }
    if (o->json)
        printf("{\"bench\": \"model\", \"layer\": \"s4d\", \"d_input\": %d, \"d_model\": %d, "
               "\"n_layers\": %d, \"N\": %d, \"B\": %d, \"L\": %lld, \"forward_s\": %.6g, "
               "\"recurrent_batch_s\": %.6g, \"recurrent_one_s\": %.6g, \"create_s\": %.6g, "
               "\"peak_rss_mb\": %.1f}\n",
               o->din, o->H, o->layers, o->N, o->B, o->L, fwd, rec[0], rec[1], create_s,
               peak_rss_mb());
    else
        printf("model S4Model/S4D d_input=%d d_model=%d n_layers=%d N=%d  forward B=%d L=%lld "
               "%.4f s (%.3g tokens/s)  recurrent B=%d: %.4f s (%.0f steps/s)  recurrent one "
               "sequence of %lld: %.4f s (%.0f steps/s)  create %.3f s  peak RSS %.1f MB\n",
               o->din, o->H, o->layers, o->N, o->B, o->L, fwd, (double)o->B * o->L / fwd, o->B,
               rec[0], (double)o->L / rec[0], o->L, rec[1], (double)o->L / rec[1], create_s,
               peak_rss_mb());
    free(x), free(y), free(times);
    s4_model_destroy(m);
    return 0;
}


/* SC09-size SashimiLM (the paper's: d_model 64, 8 layers, pools [4, 4], expand 2, ff 2,
 * d_state 64, DPLR), freshly initialised: the speed does not depend on trained values. */
static s4_model *sashimi_make(const options *o)
{
    s4_model_config c;
    s4_model_config_default_arch(S4_ARCH_SASHIMI_LM, &c);
    c.d_model = c.layer.ssm.H = o->H;
    c.n_layers = o->layers;
    c.layer.ssm.N = o->N;
    if (o->mode && !strcmp(o->mode, "diag")) {
        c.layer.ssm.mode = S4_MODE_DIAG;
        c.layer.ssm.init = S4_INIT_DIAG_LIN;
    }
    s4_model *m = NULL;
    const s4_status st = s4_model_create(&c, o->seed, &m);
    if (st != S4_OK) {
        fail("s4_model_create", st);
        return NULL;
    }
    return m;
}

/* Generation: B streams of L samples each (temperature 1, seeded), in blocks of 1024
 * samples per call as an application streaming audio would; the median of `repeat`. */
static int bench_generate(const options *o)
{
    if (o->H < 1 || o->layers < 0 || o->B < 1 || o->L < 1)
        return usage();
    s4_model *m = sashimi_make(o);
    if (!m)
        return 1;
    const long long chunk = 1024;
    int32_t *tok = malloc((size_t)o->B * (size_t)chunk * sizeof *tok);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!tok || !times)
        return 1;
    s4_generate_options go;
    s4_generate_options_default(&go);
    go.threads = o->threads;
    go.seed = o->seed;
    go.precision = step_precision(o);
    s4_generator *g = NULL;
    s4_status st = s4_generator_create(m, o->B, &go, &g);
    if (st != S4_OK)
        return fail("s4_generator_create", st);
    for (int i = -1; i < o->repeat; i++) {
        if ((st = s4_generator_reset(g)) != S4_OK)
            return fail("s4_generator_reset", st);
        const double t0 = now();
        for (long long done = 0; done < o->L; done += chunk) {
            const long long n = o->L - done < chunk ? o->L - done : chunk;
            if ((st = s4_generator_next(g, n, tok)) != S4_OK)
                return fail("s4_generator_next", st);
        }
        if (i >= 0)
            times[i] = now() - t0;
    }
    const double t = median_of(times, o->repeat);
    const double per_stream = (double)o->L / t, total = per_stream * o->B;
    if (o->json)
        printf("{\"bench\": \"generate\", \"d_model\": %d, \"n_layers\": %d, \"N\": %d, "
               "\"B\": %d, \"L\": %lld, \"threads\": %d, \"isa\": \"%s\", \"seconds\": %.6g, "
               "\"samples_per_s_per_stream\": %.6g, \"samples_per_s\": %.6g, "
               "\"realtime_16k\": %.4g, \"precision\": \"%s\"}\n",
               o->H, o->layers, o->N, o->B, o->L, o->threads, s4_isa_name(s4_cpu_isa()), t,
               per_stream, total, total / 16000.0,
               go.precision == S4_PRECISION_SINGLE ? "single" : "double");
    else
        printf("generate SashimiLM d_model=%d n_layers=%d pool=[4,4] expand=2 ff=2 N=%d %s  "
               "B=%d streams x %lld samples: %.3f s  %.0f samples/s per stream, %.0f in total "
               "= %.2fx real time at 16 kHz  (isa %s, %s steps)\n",
               o->H, o->layers, o->N, o->mode && !strcmp(o->mode, "diag") ? "diag" : "dplr",
               o->B, o->L, t, per_stream, total, total / 16000.0, s4_isa_name(s4_cpu_isa()),
               go.precision == S4_PRECISION_SINGLE ? "single" : "double");
    s4_generator_destroy(g);
    free(tok), free(times);
    s4_model_destroy(m);
    return 0;
}

/* Teacher forcing: the convolution mode on B token sequences of length L. */
static int bench_sashimi_forward(const options *o)
{
    s4_model *m = sashimi_make(o);
    if (!m)
        return 1;
    const size_t n = (size_t)o->B * (size_t)o->L;
    int32_t *tok = malloc(n * sizeof *tok);
    float *y = malloc(n * 256 * sizeof *y);
    double *times = malloc((size_t)o->repeat * sizeof *times);
    if (!tok || !y || !times)
        return 1;
    for (size_t i = 0; i < n; i++)
        tok[i] = (int32_t)((i * 2654435761u) % 256);
    const s4_forward_options fo = {.rate = 1.0, .threads = o->threads};
    s4_model_forward *f = NULL;
    s4_status st = s4_model_forward_create(m, o->B, o->L, &fo, &f);
    if (st != S4_OK)
        return fail("s4_model_forward_create", st);
    for (int i = -1; i < o->repeat; i++) {
        const double t0 = now();
        if ((st = s4_model_forward_execute_tokens(f, tok, y, NULL, 0)) != S4_OK)
            return fail("s4_model_forward_execute_tokens", st);
        if (i >= 0)
            times[i] = now() - t0;
    }
    const double t = median_of(times, o->repeat);
    printf("sashimi forward (teacher forcing) d_model=%d n_layers=%d B=%d L=%lld: %.4f s "
           "(%.0f samples/s)  peak RSS %.1f MB\n",
           o->H, o->layers, o->B, o->L, t, (double)n / t, peak_rss_mb());
    s4_model_forward_destroy(f);
    free(tok), free(y), free(times);
    s4_model_destroy(m);
    return 0;
}

static int bench_peak(const options *o)
{
    const int all = o->threads > 0 ? o->threads : omp_get_max_threads();
    const char *isa;
    const double one = s4__peak_gflops(1, 0.5, &isa);
    const double many = s4__peak_gflops(all, 0.5, &isa);
    if (o->json)
        printf("{\"bench\": \"peak\", \"isa\": \"%s\", \"gflops_1\": %.4g, "
               "\"threads\": %d, \"gflops\": %.4g}\n",
               isa, one, all, many);
    else
        printf("peak float32 FMA (%s): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n", isa,
               one, all, many);
    return 0;
}

int main(int argc, char **argv)
{
    options o = {.B = 8, .H = 256, .N = 64, .rank = 1, .channels = 1, .repeat = 5, .L = 16384};
    if (argc >= 2 && !strcmp(argv[1], "model")) /* example.py's default sizes */
        o = (options){.B = 64, .H = 128, .N = 64, .L = 1024, .layers = 4, .din = 3, .repeat = 3};
    if (argc >= 2 && (!strcmp(argv[1], "generate") || !strcmp(argv[1], "sashimi")))
        o = (options){.B = 1, .H = 64, .N = 64, .L = 16000, .layers = 8, .repeat = 3};
    static char command[48] = "s4-bench";
    if (argc >= 2 && argv[1][0] != '-') {
        snprintf(command, sizeof command, "s4-bench %.30s", argv[1]);
        s4args_set_command(command);
    }
    if (argc < 2 || parse(argc, argv, &o) != 0)
        return usage();
    if (!strcmp(argv[1], "generate"))
        return bench_generate(&o);
    if (!strcmp(argv[1], "sashimi"))
        return bench_sashimi_forward(&o);
    if (!strcmp(argv[1], "model"))
        return bench_model(&o);
    if (!strcmp(argv[1], "kernel"))
        return o.sweep ? bench_kernel_sweep(&o) : bench_kernel(&o);
    if (!strcmp(argv[1], "forward"))
        return bench_forward(&o);
    if (!strcmp(argv[1], "step"))
        return bench_step(&o);
    if (!strcmp(argv[1], "peak"))
        return bench_peak(&o);
    return usage();
}
