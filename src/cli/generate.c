/* s4 generate: sample audio tokens from a SashimiLM (docs/models.md, "Generation"), with
 * an optional prime (tokens or a WAV file), to T.npy and optionally WAV files. Public API
 * only: s4_generator does the work; this file reads, reports and writes.
 * SPDX-License-Identifier: Apache-2.0 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static bool ends_with(const char *s, const char *tail)
{
    const size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* The prime: tokens (B, P) or (P,) from .npy, or a WAV file mu-law encoded. *B is the
 * batch (0: not yet known; a 1-D prime serves every stream). Non-zero after reporting. */
static int read_prime(const char *path, const s4_model_config *c, int *B, int32_t **prime,
                      int64_t *P)
{
    int rc = 0;
    int rows = 1;
    int32_t *tok = NULL;
    int64_t n = 0;
    if (ends_with(path, ".wav")) {
        double *a = NULL;
        size_t frames = 0;
        int rate = 0;
        s4_status st = s4_wav_read(path, &a, &frames, &rate);
        if (st != S4_OK)
            return s4cli_fail_lib(st, NULL);
        if (rate != c->sample_rate)
            rc = s4args_fail(EXIT_FAILURE, "%s: %d Hz, but the model's sample_rate is %d Hz", path,
                            rate, c->sample_rate);
        else if (frames < 1)
            rc = s4args_fail(EXIT_FAILURE, "%s: no samples", path);
        else if (!(tok = malloc(frames * sizeof *tok)))
            rc = s4args_fail(EXIT_FAILURE, "out of memory");
        else if ((st = s4_mulaw_encode(a, frames, tok)) != S4_OK)
            rc = s4cli_fail_lib(st, NULL);
        n = (int64_t)frames;
        s4_free(a);
    } else {
        int64_t *t = NULL, sh[S4_MAX_DIMS] = {0};
        int nd = 0;
        const s4_status st = s4_npy_read_i64(path, &t, &nd, sh);
        if (st != S4_OK)
            return s4cli_fail_lib(st, NULL);
        char found[128];
        s4cli_shape_text(found, sizeof found, nd, sh);
        if ((nd != 1 && nd != 2) || sh[nd - 1] < 1 || (nd == 2 && (sh[0] < 1 || sh[0] > 65536)))
            rc = s4args_fail(EXIT_FAILURE, "%s: shape %s: expected tokens (B, P) or (P,), P >= 1",
                            path, found);
        rows = rc ? 0 : nd == 2 ? (int)sh[0] : 1;
        n = rc ? 0 : sh[nd - 1];
        const size_t total = (size_t)rows * (size_t)n;
        if (rc == 0 && !(tok = malloc(total * sizeof *tok)))
            rc = s4args_fail(EXIT_FAILURE, "out of memory");
        for (size_t i = 0; rc == 0 && i < total; i++) {
            if (t[i] < 0 || t[i] >= c->n_tokens)
                rc = s4args_fail(EXIT_FAILURE, "%s: element %zu = %lld is not a token in [0, %d)",
                                path, i, (long long)t[i], c->n_tokens);
            else
                tok[i] = (int32_t)t[i];
        }
        s4_free(t);
        if (rc == 0 && nd == 2) {
            if (*B && *B != rows)
                rc = s4args_fail(EXIT_FAILURE, "%s: %d streams, but --batch is %d", path, rows, *B);
            *B = rows;
        }
    }
    if (rc) {
        free(tok);
        return rc;
    }
    if (!*B)
        *B = 1;
    if (rows == 1 && *B > 1) { /* one prime for every stream */
        int32_t *all = malloc((size_t)*B * (size_t)n * sizeof *all);
        if (!all) {
            free(tok);
            return s4args_fail(EXIT_FAILURE, "out of memory");
        }
        for (int b = 0; b < *B; b++)
            memcpy(all + (size_t)b * (size_t)n, tok, (size_t)n * sizeof *tok);
        free(tok);
        tok = all;
    }
    *prime = tok;
    *P = n;
    return 0;
}

/* The WAV path of stream b: `path` itself for one stream, else stem.b.wav. */
static void wav_name(char *buf, size_t size, const char *path, int b, int B)
{
    if (B == 1) {
        snprintf(buf, size, "%s", path);
        return;
    }
    const size_t n = strlen(path);
    const int stem = ends_with(path, ".wav") ? (int)(n - 4) : (int)n;
    snprintf(buf, size, "%.*s.%d.wav", stem, path, b);
}

int s4cli_generate(const options *o)
{
    int64_t N = 0, K = 0, seed = 0, B64 = 0, threads = 0;
    double T = 1.0;
    int rc = s4args_int(o->length, "length", 1, (int64_t)1 << 31, &N);
    if (!rc && o->top_k)
        rc = s4args_int(o->top_k, "top-k", 0, 1 << 20, &K);
    if (!rc && o->seed)
        rc = s4args_int(o->seed, "seed", 0, INT64_MAX, &seed);
    if (!rc && o->batch)
        rc = s4args_int(o->batch, "batch", 1, 65536, &B64);
    if (!rc && o->threads)
        rc = s4args_int(o->threads, "threads", 0, 1024, &threads);
    s4_precision prec = S4_PRECISION_DOUBLE;
    if (!rc && o->precision) {
        if (!strcmp(o->precision, "single"))
            prec = S4_PRECISION_SINGLE;
        else if (strcmp(o->precision, "double"))
            rc = s4args_fail(EXIT_USAGE, "option --precision: '%s' is not double or single",
                            o->precision);
    }
    if (!rc && o->temperature) {
        char *end = NULL;
        errno = 0;
        T = strtod(o->temperature, &end);
        if (end == o->temperature || *end || !isfinite(T) || T < 0.0)
            rc = s4args_fail(EXIT_USAGE, "option --temperature: '%s' is not a finite number >= 0",
                            o->temperature);
    }
    if (rc)
        return rc;
    s4_model *m = NULL;
    s4_status st = s4_model_load(o->weights, o->config, &m);
    if (st != S4_OK)
        return s4cli_fail_lib(st, NULL);
    s4_model_config c;
    if ((st = s4_model_get_config(m, &c)) != S4_OK || c.architecture != S4_ARCH_SASHIMI_LM) {
        s4_model_destroy(m);
        return st != S4_OK ? s4cli_fail_lib(st, NULL)
                           : s4args_fail(EXIT_FAILURE,
                                        "%s: not a token model (SashimiLM): nothing to generate",
                                        o->config ? o->config : o->weights);
    }
    if (c.n_tokens != 256 && (o->wav || (o->prime && ends_with(o->prime, ".wav")))) {
        s4_model_destroy(m);
        return s4args_fail(EXIT_FAILURE,
                          "%s: n_tokens = %d: WAV input and output need 8-bit mu-law tokens "
                          "(256)",
                          o->config ? o->config : o->weights, c.n_tokens);
    }
    int B = (int)B64;
    int32_t *prime = NULL, *out = NULL, *part = NULL;
    int64_t P = 0;
    double *audio = NULL;
    if (o->prime && (rc = read_prime(o->prime, &c, &B, &prime, &P)) != 0) {
        s4_model_destroy(m);
        return rc;
    }
    if (!B)
        B = 1;
    s4_generate_options go;
    s4_generate_options_default(&go);
    go.temperature = T;
    go.top_k = (int)K;
    go.seed = (uint64_t)seed;
    go.threads = (int)threads;
    go.precision = prec;
    s4_generator *g = NULL;
    st = s4_generator_create(m, B, &go, &g);
    if (st == S4_OK && prime)
        st = s4_generator_prime(g, prime, P);
    const int64_t chunk = 1024;
    if (st == S4_OK && (!(out = malloc((size_t)B * (size_t)N * sizeof *out)) ||
                        !(part = malloc((size_t)B * (size_t)chunk * sizeof *part))))
        rc = s4args_fail(EXIT_FAILURE, "out of memory for %lld tokens", (long long)(B * N));
    /* In blocks of `chunk` samples, as an application streaming audio out would. */
    const bool progress = N >= c.sample_rate;
    const double t0 = now();
    double last = t0;
    for (int64_t done = 0; st == S4_OK && rc == 0 && done < N;) {
        const int64_t n = N - done < chunk ? N - done : chunk;
        st = s4_generator_next(g, n, part);
        for (int b = 0; st == S4_OK && b < B; b++)
            memcpy(out + (size_t)b * (size_t)N + (size_t)done, part + (size_t)b * (size_t)n,
                   (size_t)n * sizeof *out);
        done += n;
        const double t = now();
        if (progress && (t - last >= 1.0 || done == N)) {
            const double sps = (double)done * B / (t - t0);
            fprintf(stderr, "\rs4 generate: %lld / %lld samples x %d streams, %.0f samples/s, "
                            "%.2fx real time",
                    (long long)done, (long long)N, B, sps, sps / c.sample_rate);
            if (done == N)
                fputc('\n', stderr);
            last = t;
        }
    }
    const double secs = now() - t0;
    if (rc == 0 && st != S4_OK)
        rc = s4cli_fail_lib(st, NULL);
    if (rc == 0) {
        int64_t *o64 = malloc((size_t)B * (size_t)N * sizeof *o64);
        if (!o64)
            rc = s4args_fail(EXIT_FAILURE, "out of memory");
        for (size_t i = 0; o64 && i < (size_t)B * (size_t)N; i++)
            o64[i] = out[i];
        const int64_t shape[2] = {B, N};
        if (rc == 0 && (st = s4_npy_write_i64(o->output, o64, 2, shape)) != S4_OK)
            rc = s4cli_fail_lib(st, NULL);
        free(o64);
    }
    /* WAV files after the tokens: each written whole or not at all (s4_wav_write). */
    if (rc == 0 && o->wav) {
        if (!(audio = malloc((size_t)N * sizeof *audio)))
            rc = s4args_fail(EXIT_FAILURE, "out of memory");
        for (int b = 0; rc == 0 && b < B; b++) {
            char path[4096];
            wav_name(path, sizeof path, o->wav, b, B);
            if ((st = s4_mulaw_decode(out + (size_t)b * (size_t)N, (size_t)N, audio)) != S4_OK ||
                (st = s4_wav_write(path, audio, (size_t)N, 1, c.sample_rate)) != S4_OK) {
                rc = s4cli_fail_lib(st, NULL);
                /* A failed run leaves no output: the tokens and the streams written so far. */
                remove(o->output);
                for (int k = 0; k < b; k++) {
                    wav_name(path, sizeof path, o->wav, k, B);
                    remove(path);
                }
            }
        }
    }
    if (rc == 0)
        printf("s4 generate: wrote %s: int64 (%d, %lld) tokens%s%s (%.2f s, %.0f samples/s, "
               "%.2fx real time at %d Hz)\n",
               o->output, B, (long long)N, o->wav ? " and " : "", o->wav ? o->wav : "", secs,
               (double)N * B / secs, (double)N * B / secs / c.sample_rate, c.sample_rate);
    free(audio), free(part), free(out), free(prime);
    s4_generator_destroy(g);
    s4_model_destroy(m);
    return rc;
}
