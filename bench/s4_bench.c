/* s4-bench: reproducible figures for libs4.
 *   s4-bench kernel --H 256 --N 64 --L 16384 [--rank 1] [--channels 1] [--repeat 5] [--json]
 * Times s4_kernel_execute (median of --repeat runs after one warm-up) on a seeded LegS
 * bank whose C-tilde is set up for L, and reports GFLOP/s by the cost model of
 * DESIGN.md section 7 (43 flops per (h, n, l) for one kernel row at rank 1; in general
 * 11 + 8 (C'' + r)(1 + r): one complex reciprocal plus one complex multiply-accumulate per
 * Cauchy sum) and the process's peak RSS.
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L
#include "s4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct options {
    int H, N, rank, channels, repeat, json;
    long long L;
    unsigned long long seed;
} options;

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

static int usage(void)
{
    fprintf(stderr,
            "usage: s4-bench kernel [--H n] [--N n] [--L n] [--rank r] [--channels c]\n"
            "                       [--repeat k] [--seed s] [--json]\n");
    return 2;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!v)
            return -1;
        char *end;
        const long long x = strtoll(v, &end, 10);
        if (*end || x < 0)
            return -1;
        if (!strcmp(a, "--H")) o->H = (int)x;
        else if (!strcmp(a, "--N")) o->N = (int)x;
        else if (!strcmp(a, "--L")) o->L = x;
        else if (!strcmp(a, "--rank")) o->rank = (int)x;
        else if (!strcmp(a, "--channels")) o->channels = (int)x;
        else if (!strcmp(a, "--repeat")) o->repeat = (int)x;
        else if (!strcmp(a, "--seed")) o->seed = (unsigned long long)x;
        else return -1;
        i++;
    }
    return o->repeat >= 1 ? 0 : -1;
}

static int fail(const char *what, s4_status st)
{
    fprintf(stderr, "s4-bench: %s: %s: %s\n", what, s4_status_str(st), s4_last_error());
    return 1;
}

static int bench_kernel(const options *o)
{
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
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
    double t0 = now();
    if ((st = s4_ssm_setup_length(ssm, o->L)) != S4_OK)
        return fail("s4_ssm_setup_length", st);
    const double setup_s = now() - t0;
    t0 = now();
    if ((st = s4_kernel_create(ssm, o->L, NULL, &plan)) != S4_OK)
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
    for (int i = -1; i < o->repeat; i++) { /* i = -1: warm-up */
        t0 = now();
        if ((st = s4_kernel_execute(plan, ssm, K, (size_t)o->L, NULL, 0)) != S4_OK)
            return fail("s4_kernel_execute", st);
        if (i >= 0)
            times[i] = now() - t0;
    }
    qsort(times, (size_t)o->repeat, sizeof *times, cmp_double);
    const double median = o->repeat % 2 ? times[o->repeat / 2]
                                        : 0.5 * (times[o->repeat / 2 - 1] + times[o->repeat / 2]);
    const double nsum = (double)(rows + o->rank) * (1.0 + o->rank);
    const double flops = (11.0 + 8.0 * nsum) * o->H * (o->N / 2) * (double)(o->L / 2 + 1);
    const double gflops = flops / median * 1e-9;
    if (o->json)
        printf("{\"bench\": \"kernel\", \"H\": %d, \"N\": %d, \"L\": %lld, \"rank\": %d, "
               "\"rows\": %d, \"repeat\": %d, \"median_s\": %.6g, \"min_s\": %.6g, "
               "\"gflops\": %.4g, \"peak_rss_mb\": %.1f, \"output_mb\": %.1f, "
               "\"setup_s\": %.6g, \"plan_s\": %.6g}\n",
               o->H, o->N, o->L, o->rank, rows, o->repeat, median, times[0], gflops,
               peak_rss_mb(), (double)count * 4.0 / 1048576.0, setup_s, plan_s);
    else
        printf("kernel  H=%d N=%d L=%lld rank=%d rows=%d  median %.4f s  (min %.4f)  "
               "%.2f GFLOP/s  peak RSS %.1f MB (output %.1f MB)  setup %.3f s  plan %.3f s\n",
               o->H, o->N, o->L, o->rank, rows, median, times[0], gflops, peak_rss_mb(),
               (double)count * 4.0 / 1048576.0, setup_s, plan_s);
    free(K);
    free(times);
    s4_kernel_destroy(plan);
    s4_ssm_destroy(ssm);
    return 0;
}

int main(int argc, char **argv)
{
    options o = {.H = 256, .N = 64, .rank = 1, .channels = 1, .repeat = 5, .L = 16384};
    if (argc < 2 || parse(argc, argv, &o) != 0)
        return usage();
    if (!strcmp(argv[1], "kernel"))
        return bench_kernel(&o);
    return usage();
}
