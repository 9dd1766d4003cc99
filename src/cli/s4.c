/* s4: run trained S4 layers (the reference S4Block) from the command line.
 *
 *   s4 info    --weights W.safetensors [--config C.json]
 *   s4 kernel  --weights W [--config C] --length L --output K.npy [--rate R]
 *   s4 forward --weights W [--config C] --input U.npy --output Y.npy
 *              [--mode conv|recurrent|dense|linear|diagonal] [--chunk T] [--rate R]
 *
 * A config with an "architecture" key is a whole model (model.c, docs/models.md).
 *
 * S4 (DPLR) and S4D (diagonal, mode 'diag') layers alike; --rate is the reference's
 * `rate` argument of forward (docs/design.md section 11).
 *
 * Built on the public API only (s4.h). Exit status 0 on success; on any error a non-zero
 * status and exactly one line on stderr naming the file, tensor or key and what was
 * expected. Output files are written under a temporary name and renamed, so a failed run
 * leaves no partial file.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_command = "s4";

static const char usage_text[] =
    "usage:\n"
    "  s4 info    --weights W.safetensors [--config C.json]\n"
    "  s4 kernel  --weights W.safetensors [--config C.json] --length L --output K.npy\n"
    "             [--rate R]\n"
    "  s4 forward --weights W.safetensors [--config C.json] --input U.npy --output Y.npy\n"
    "             [--mode conv|recurrent|dense|linear|diagonal] [--chunk T] [--rate R]\n"
    "  s4 generate --weights W.safetensors [--config C.json] --length N --output T.npy\n"
    "             [--prime P.npy|P.wav] [--temperature T] [--top-k K] [--seed S]\n"
    "             [--batch B] [--wav out.wav] [--threads n] [--precision double|single]\n"
    "  s4 help | s4 version\n"
    "\n"
    "Whole models: when the config (or the file's __metadata__ \"config\") has an\n"
    "\"architecture\" (docs/models.md), info describes the model and forward runs it, in\n"
    "--mode conv (default) or recurrent (every layer in its own step mode: linear for S4,\n"
    "diagonal for S4D; dense, linear, diagonal force one); bidirectional models run in conv\n"
    "mode only. S4Model (example.py): X (B, L, d_input) float32 or float64 to float32 logits\n"
    "(B, d_output). Sashimi: X (B, L, d_model) to float32 (B, L, d_model). SashimiLM: int64\n"
    "or int32 tokens (B, L) to float32 logits (B, L, n_tokens). tools/s4-convert.py makes the\n"
    "two files from a PyTorch checkpoint.\n"
    "\n"
    "  generate (SashimiLM) N tokens per stream after the prime (int tokens (B, P) or (P,),\n"
    "           or a 16-bit PCM mono WAV at the model's rate, mu-law encoded; none: start\n"
    "           from token 128), each drawn from softmax(logits / T) (T = 0: greedy; default\n"
    "           1), among the K most likely if --top-k; seeded (default 0): the same tokens\n"
    "           for any --threads. Writes T.npy int64 (B, N), prime excluded; --wav also the\n"
    "           mu-law-decoded 16-bit PCM at the config's sample_rate, mono, one file per\n"
    "           stream (out.wav for one stream, out.0.wav, out.1.wav, ... for several).\n"
    "           A progress line on stderr for runs of a second of audio or more.\n"
    "           --precision single steps the S4 layers in float, as PyTorch does (faster;\n"
    "           default double).\n"
    "\n"
    "The weights are a reference S4Block state_dict (safetensors). The architecture comes\n"
    "from --config (a JSON object of S4Block arguments, e.g. {\"d_model\": 64, \"d_state\": 64,\n"
    "\"l_max\": 1024}) or from the file's __metadata__ key \"s4_config\". S4 (mode dplr) and\n"
    "S4D (mode diag, discretization zoh, bilinear or dss) layers are both accepted.\n"
    "\n"
    "  info     architecture (mode, discretization) and parameter summary\n"
    "  kernel   the convolution kernel the layer applies to inputs of length L:\n"
    "           float32 (C'', H, l), l = min(L, round(l_max / R)) (l = L when l_max is\n"
    "           null)\n"
    "  forward  the whole layer on U (B, H, L) float32 or float64 ((B, L, H) when the config\n"
    "           says transposed: false); writes float32 (B, H, L), or (B, F, L) when\n"
    "           final_act is null. --mode conv (default): FFT convolution; dense, linear,\n"
    "           diagonal: the recurrence step by step from a zero state. --chunk T: chunks\n"
    "           of T steps with the state carried between them. Bidirectional layers run\n"
    "           in conv mode only; an S4D layer steps with --mode diagonal only (exact\n"
    "           there: its state is already diagonal), and not at all with disc dss.\n"
    "  --rate R relative sample rate (default 1: as trained), R > 0: dt becomes R dt. In\n"
    "           conv mode the kernel has l = min(L, round(l_max / R)) taps; an S4 kernel\n"
    "           keeps the C-tilde of its l_kernel and samples round(l_kernel / R) nodes, as\n"
    "           the reference does. The step modes run the untruncated recurrence at R dt.\n";

/* ---- errors: one line on stderr ----------------------------------------------------- */

/* Prints "s4 <command>: <message>" as one line (newlines in the message become spaces)
 * and returns the exit status. */
static int fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    fprintf(stderr, "%s: %s\n", g_command, msg);
    return status;
}

static int fail_lib_at(s4_status st, const char *rate_text);
static int parse_rate(const char *text, double *out);
static void shape_text(char *buf, size_t len, int ndim, const int64_t *shape);
static int print_tensors(const char *path);

int s4cli_fail(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(status, "%s", msg);
}

int s4cli_fail_lib(s4_status st, const char *rate_text) { return fail_lib_at(st, rate_text); }

int s4cli_parse_rate(const char *text, double *out) { return parse_rate(text, out); }
static int parse_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out);
int s4cli_parse_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    return parse_int(text, name, lo, hi, out);
}

void s4cli_shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    shape_text(buf, len, ndim, shape);
}

int s4cli_print_tensors(const char *path) { return print_tensors(path); }

/* A library failure: its message already names the file, tensor or key. */
static int fail_lib(s4_status st)
{
    const char *msg = s4_last_error();
    return fail(EXIT_FAILURE, "%s (%s)", msg && *msg ? msg : "failed", s4_status_str(st));
}

/* The same, naming the --rate in effect when one was given (a valid but extreme rate can
 * make the library refuse a length or a node count). */
static int fail_lib_at(s4_status st, const char *rate_text)
{
    if (!rate_text)
        return fail_lib(st);
    const char *msg = s4_last_error();
    return fail(EXIT_FAILURE, "%s (%s) [at --rate %s]", msg && *msg ? msg : "failed",
                s4_status_str(st), rate_text);
}

/* ---- options ------------------------------------------------------------------------ */

typedef struct option_spec {
    const char *name;
    size_t offset;
} option_spec;

static const option_spec option_specs[] = {
    {"weights", offsetof(options, weights)}, {"config", offsetof(options, config)},
    {"input", offsetof(options, input)},     {"output", offsetof(options, output)},
    {"mode", offsetof(options, mode)},       {"length", offsetof(options, length)},
    {"chunk", offsetof(options, chunk)},     {"rate", offsetof(options, rate)},
    {"prime", offsetof(options, prime)},     {"temperature", offsetof(options, temperature)},
    {"top-k", offsetof(options, top_k)},     {"seed", offsetof(options, seed)},
    {"batch", offsetof(options, batch)},     {"wav", offsetof(options, wav)},
    {"threads", offsetof(options, threads)}, {"precision", offsetof(options, precision)},
};

/* Parses --name value and --name=value; `allowed` lists the options of the command. */
static int parse_options(int argc, char **argv, const char *const *allowed, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return fail(EXIT_USAGE, "unexpected argument '%s' (options are --name value; see s4 "
                                    "help)",
                        arg);
        const char *name = arg + 2, *value = NULL;
        size_t name_len = strlen(name);
        const char *eq = strchr(name, '=');
        if (eq) {
            name_len = (size_t)(eq - name);
            value = eq + 1;
        }
        const option_spec *spec = NULL;
        for (size_t k = 0; k < sizeof option_specs / sizeof option_specs[0]; k++)
            if (strlen(option_specs[k].name) == name_len &&
                strncmp(option_specs[k].name, name, name_len) == 0)
                spec = &option_specs[k];
        bool ok = false;
        for (const char *const *a = allowed; spec && *a && !ok; a++)
            ok = strcmp(*a, spec->name) == 0;
        if (!ok)
            return fail(EXIT_USAGE, "unknown option '--%.*s' (see s4 help)", (int)name_len, name);
        if (!value) {
            if (i + 1 >= argc)
                return fail(EXIT_USAGE, "option --%s needs a value", spec->name);
            value = argv[++i];
        }
        const char **slot = (const char **)(void *)((char *)o + spec->offset);
        if (*slot)
            return fail(EXIT_USAGE, "option --%s given twice", spec->name);
        if (!*value)
            return fail(EXIT_USAGE, "option --%s: empty value", spec->name);
        *slot = value;
    }
    return 0;
}

static int require(const char *value, const char *name)
{
    return value ? 0 : fail(EXIT_USAGE, "option --%s is required (see s4 help)", name);
}

/* A decimal integer in [lo, hi]. */
static int parse_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    const long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return fail(EXIT_USAGE, "option --%s: '%s' is not an integer in [%lld, %lld]", name,
                    text, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

/* --rate: a positive finite decimal (default 1 when absent). */
static int parse_rate(const char *text, double *out)
{
    *out = 1.0;
    if (!text)
        return 0;
    errno = 0;
    char *end = NULL;
    const double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || !(v > 0.0) || (errno == ERANGE && v == 0.0))
        return fail(EXIT_USAGE, "option --rate: '%s' is not a positive finite number (the "
                                "relative sample rate; 1 = as trained)",
                    text);
    *out = v;
    return 0;
}

static void shape_text(char *buf, size_t len, int ndim, const int64_t *shape)
{
    int k = snprintf(buf, len, "(");
    for (int d = 0; d < ndim && k > 0 && (size_t)k < len; d++)
        k += snprintf(buf + k, len - (size_t)k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "%s)", ndim == 1 ? "," : "");
}

/* ---- loading ------------------------------------------------------------------------ */

static int load_layer(const options *o, s4_layer **layer, s4_layer_config *cfg)
{
    s4_status st = s4_layer_load(o->weights, o->config, layer);
    if (st != S4_OK)
        return fail_lib(st);
    st = s4_layer_get_config(*layer, cfg);
    if (st != S4_OK) {
        s4_layer_destroy(*layer);
        *layer = NULL;
        return fail_lib(st);
    }
    return 0;
}

/* ---- s4 info ------------------------------------------------------------------------- */

/* A name for printing: the library's, "?" outside the enum. */
static const char *or_q(const char *name) { return name ? name : "?"; }

/* min and max of x[0 .. n) with stride (for real / imaginary parts). */
static void range(const double *x, size_t n, size_t stride, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i += stride) {
        *lo = fmin(*lo, x[i]);
        *hi = fmax(*hi, x[i]);
    }
}

static int print_tensors(const char *path)
{
    s4_tensors *file = NULL;
    s4_status st = s4_tensors_open(path, &file);
    if (st != S4_OK)
        return fail_lib(st);
    const size_t n = s4_tensors_count(file);
    printf("parameters (%zu tensors in %s)\n", n, path);
    printf("  %-26s %-5s %-16s %9s  %13s  %13s\n", "name", "dtype", "shape", "count", "min",
           "max");
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        s4_tensor_info info;
        if ((st = s4_tensors_info(file, i, &info)) != S4_OK) {
            rc = fail_lib(st);
            break;
        }
        double *v = malloc((info.numel ? info.numel : 1) * sizeof *v);
        if (!v) {
            rc = fail(EXIT_FAILURE, "%s: out of memory", path);
            break;
        }
        if ((st = s4_tensors_read(file, info.name, v, info.numel)) != S4_OK) {
            free(v);
            rc = fail_lib(st);
            break;
        }
        double lo = 0, hi = 0;
        range(v, info.numel, 1, &lo, &hi);
        char shape[96];
        shape_text(shape, sizeof shape, info.ndim, info.shape);
        printf("  %-26s %-5s %-16s %9zu  %13.6g  %13.6g\n", info.name, or_q(s4_dtype_name(info.dtype)),
               shape, info.numel, info.numel ? lo : 0.0, info.numel ? hi : 0.0);
        if (info.dtype != S4_DTYPE_I64)
            total += info.numel;
        free(v);
    }
    if (rc == 0)
        printf("  total: %zu parameters\n", total);
    s4_tensors_close(file);
    return rc;
}

static int cmd_info(const options *o)
{
    const int model = s4cli_is_model(o);
    if (model != 0)
        return model < 0 ? EXIT_FAILURE : s4cli_model_info(o);
    s4_layer *layer = NULL;
    s4_layer_config c;
    int rc = load_layer(o, &layer, &c);
    if (rc)
        return rc;
    const s4_ssm *ssm = s4_layer_ssm(layer);
    const int H = c.ssm.H, N = c.ssm.N, S = c.ssm.n_ssm ? c.ssm.n_ssm : H;
    const int Cp = c.ssm.channels, rows = Cp * (1 + c.bidirectional);
    const int64_t lk = s4_ssm_l_kernel(ssm);
    const bool diag = c.ssm.mode == S4_MODE_DIAG;
    char *json = NULL;
    s4_status st = s4_layer_config_to_json(&c, &json);
    if (st != S4_OK) {
        s4_layer_destroy(layer);
        return fail_lib(st);
    }
    size_t ndt = s4_ssm_param_size(ssm, S4_PARAM_DT);
    size_t nla = s4_ssm_param_size(ssm, S4_PARAM_LAMBDA);
    double *dt = malloc(ndt * sizeof *dt), *lambda = malloc(nla * sizeof *lambda);
    if (!dt || !lambda || s4_ssm_get_param(ssm, S4_PARAM_DT, dt, ndt) != S4_OK ||
        s4_ssm_get_param(ssm, S4_PARAM_LAMBDA, lambda, nla) != S4_OK) {
        rc = fail(EXIT_FAILURE, "%s: cannot read dt and Lambda back: %s", o->weights,
                  s4_last_error());
    } else {
        double dlo, dhi, rlo, rhi, ilo, ihi;
        range(dt, ndt, 1, &dlo, &dhi);
        range(lambda, nla, 2, &rlo, &rhi);
        range(lambda + 1, nla - 1, 2, &ilo, &ihi);
        printf("weights          %s\n", o->weights);
        printf("config           %s\n", o->config ? o->config : "__metadata__ 's4_config' of the "
                                                                 "weights");
        if (diag) {
            printf("architecture     S4Block with an S4D (diagonal) kernel, %s discretization\n",
                   or_q(s4_disc_name(c.ssm.disc)));
            printf("  mode           diag (S4D: A = diag(Lambda), Vandermonde kernel)\n");
            printf("  disc           %s%s\n", or_q(s4_disc_name(c.ssm.disc)),
                   c.ssm.disc == S4_DISC_DSS ? " (the reference's DSS kernel; no step mode)" : "");
        } else {
            printf("architecture     S4Block with an S4 (DPLR) kernel, bilinear discretization\n");
            printf("  mode           dplr (S4: A = diag(Lambda) - P P^*, Cauchy kernel)\n");
        }
        printf("  d_model  H     %d\n", H);
        printf("  d_state  N     %d (%d conjugate pairs stored)\n", N, N / 2);
        if (diag)
            printf("  rank     r     none (no low-rank term)\n");
        else
            printf("  rank     r     %d\n", c.ssm.rank);
        printf("  n_ssm    S     %d%s\n", S, S == H ? " (one SSM per feature)" : "");
        printf("  channels       %d (C' = %d per direction, C'' = %d kernel rows)\n", c.channels,
               Cp, rows);
        printf("  bidirectional  %s\n", c.bidirectional ? "yes" : "no");
        printf("  activation     %s\n", or_q(s4_activation_name(c.activation)));
        if (c.final_act == S4_FINAL_NONE)
            printf("  final_act      none (no output linear; %d output features)\n",
                   s4_layer_output_features(layer));
        else
            printf("  final_act      %s (output linear %d -> %d)\n",
                   c.final_act == S4_FINAL_GLU ? "glu" : "id",
                   c.activation == S4_ACT_GLU ? Cp * H / 2 : Cp * H,
                   c.final_act == S4_FINAL_GLU ? 2 * H : H);
        printf("  swap_channels  %s\n", c.swap_channels ? "yes" : "no");
        printf("  transposed     %s\n", c.transposed ? "yes: arrays (B, H, L)" : "no: arrays "
                                                                                "(B, L, H)");
        if (c.l_max > 0)
            printf("  l_max          %lld\n", (long long)c.l_max);
        else
            printf("  l_max          none (kernel as long as the input)\n");
        printf("  transforms     dt %s, A_real %s, A_imag %s\n",
               or_q(s4_transform_name(c.ssm.dt_transform)), or_q(s4_transform_name(c.ssm.real_transform)),
               or_q(s4_transform_name(c.ssm.imag_transform)));
        printf("state\n");
        if (diag)
            printf("  l_kernel       none: S4D keeps the raw C (no C-tilde)\n");
        else if (lk > 0)
            printf("  l_kernel       %lld: C holds C-tilde for length %lld\n", (long long)lk,
                   (long long)lk);
        else
            printf("  l_kernel       0: C is the raw C\n");
        printf("  dt             [%.6g, %.6g]\n", dlo, dhi);
        printf("  Lambda         Re [%.6g, %.6g], Im [%.6g, %.6g]\n", rlo, rhi, ilo, ihi);
        printf("config (JSON)    %s\n", json);
        rc = print_tensors(o->weights);
    }
    free(dt);
    free(lambda);
    s4_free(json);
    s4_layer_destroy(layer);
    return rc;
}

/* ---- s4 kernel ----------------------------------------------------------------------- */

/* The kernel the layer's forward applies to inputs of length L at rate R (1 unless
 * --rate), as the library states it (s4_layer_kernel_size, s4_layer_kernel: the
 * reference's length rules, docs/design.md section 11). */
static int cmd_kernel(const options *o)
{
    int rc = require(o->weights, "weights");
    if (!rc)
        rc = require(o->length, "length");
    if (!rc)
        rc = require(o->output, "output");
    int64_t L = 0;
    double rate = 1.0;
    if (!rc)
        rc = parse_int(o->length, "length", 1, INT32_MAX, &L);
    if (!rc)
        rc = parse_rate(o->rate, &rate);
    if (rc)
        return rc;
    s4_layer *layer = NULL;
    s4_layer_config c;
    if ((rc = load_layer(o, &layer, &c)) != 0)
        return rc;
    s4_layer_kernel_info ki = {0};
    float *K = NULL;
    s4_status st = s4_layer_kernel_size(layer, L, rate, &ki);
    const int rows = ki.rows;
    const int64_t l = ki.length, taps = ki.taps;
    size_t n = 0, bytes = 0;
    const bool too_big = st == S4_OK && (__builtin_mul_overflow((size_t)rows, (size_t)c.ssm.H, &n) ||
                                         __builtin_mul_overflow(n, (size_t)l, &n) ||
                                         __builtin_mul_overflow(n, sizeof *K, &bytes));
    if (st == S4_OK && (too_big || !(K = malloc(n ? bytes : 1))))
        rc = fail(EXIT_FAILURE, "%s: out of memory for a kernel of %d x %d x %lld floats",
                  o->output, rows, c.ssm.H, (long long)l);
    if (st == S4_OK && rc == 0)
        st = s4_layer_kernel(layer, L, rate, K, (size_t)l);
    if (st == S4_OK && rc == 0) {
        const int64_t shape[3] = {rows, c.ssm.H, l};
        st = s4_npy_write_f32(o->output, K, 3, shape);
        if (st == S4_OK) {
            char sh[64], extra[160] = "";
            shape_text(sh, sizeof sh, 3, shape);
            if (c.ssm.mode == S4_MODE_DIAG)
                snprintf(extra, sizeof extra, "S4D %s, raw C", or_q(s4_disc_name(c.ssm.disc)));
            else /* the C-tilde length the forward would set up */
                snprintf(extra, sizeof extra, "l_kernel %lld", (long long)ki.l_kernel);
            if (o->rate) {
                const size_t k = strlen(extra);
                snprintf(extra + k, sizeof extra - k, ", rate %g", rate);
            }
            if (taps < l) {
                const size_t k = strlen(extra);
                snprintf(extra + k, sizeof extra - k, ", %lld nonzero taps", (long long)taps);
            }
            printf("s4 kernel: wrote %s: float32 %s (%s)\n", o->output, sh, extra);
        }
    }
    if (st != S4_OK && rc == 0)
        rc = fail_lib_at(st, o->rate);
    free(K);
    s4_layer_destroy(layer);
    return rc;
}

/* ---- s4 forward ---------------------------------------------------------------------- */

typedef enum run_mode { RUN_CONV, RUN_DENSE, RUN_LINEAR, RUN_DIAGONAL } run_mode;

/* Copies the time window [t0, t0 + T) of x (B sequences, F features, length L, in the
 * layer's layout) to / from a dense chunk buffer of the same layout. */
static void window(bool transposed, bool to_chunk, float *x, float *chunk, size_t B, size_t F,
                   size_t L, size_t t0, size_t T)
{
    for (size_t b = 0; b < B; b++) {
        if (transposed) {
            for (size_t f = 0; f < F; f++) {
                float *a = x + (b * F + f) * L + t0, *c = chunk + (b * F + f) * T;
                if (to_chunk)
                    memcpy(c, a, T * sizeof *c);
                else
                    memcpy(a, c, T * sizeof *c);
            }
        } else {
            float *a = x + (b * L + t0) * F, *c = chunk + b * T * F;
            if (to_chunk)
                memcpy(c, a, T * F * sizeof *c);
            else
                memcpy(a, c, T * F * sizeof *c);
        }
    }
}

static s4_status run_conv(s4_layer *layer, int B, int64_t L, double rate, const float *u,
                          float *y)
{
    s4_forward *plan = NULL;
    const s4_forward_options fopt = {.rate = rate, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
    s4_status st = s4_forward_create(layer, B, L, &fopt, &plan);
    if (st == S4_OK)
        st = s4_forward_execute(plan, u, y, NULL, NULL, 0);
    s4_forward_destroy(plan);
    return st;
}

/* Chunks of T: streamed convolution (mode conv) or the recurrence (step modes), with the
 * state carried from chunk to chunk; T = L is one chunk. Both at dt * rate. */
static s4_status run_chunked(s4_layer *layer, const s4_layer_config *c, run_mode mode, int B,
                             int64_t L, int64_t T, double rate, float *u, float *y, bool *oom)
{
    const size_t H = (size_t)c->ssm.H, F = (size_t)s4_layer_output_features(layer);
    const size_t Bz = (size_t)B;
    s4_stream *stream = NULL;
    s4_step *step = NULL;
    void *state = NULL;
    float *uc = NULL, *yc = NULL;
    s4_status st;
    *oom = false;
    if (mode == RUN_CONV) {
        const s4_forward_options fopt = {
            .rate = rate, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
        st = s4_stream_create(layer, B, T, &fopt, &stream);
        if (st == S4_OK)
            state = calloc(1, s4_stream_state_size(stream));
    } else {
        const s4_step_mode m = mode == RUN_DENSE    ? S4_STEP_DENSE
                               : mode == RUN_LINEAR ? S4_STEP_LINEAR
                                                    : S4_STEP_DIAGONAL;
        st = s4_step_create(layer, m, B, rate, &step);
        if (st == S4_OK) {
            state = calloc(1, s4_step_state_size(step) + sizeof(double));
            if (state && (st = s4_step_state_reset(step, state)) != S4_OK) {
                free(state);
                state = NULL;
            }
        }
    }
    if (st == S4_OK) {
        uc = malloc(Bz * H * (size_t)T * sizeof *uc);
        yc = malloc(Bz * F * (size_t)T * sizeof *yc);
        if (!state || !uc || !yc) {
            *oom = true;
            st = S4_ERR_OUT_OF_MEMORY;
        }
    }
    for (int64_t t0 = 0; t0 < L && st == S4_OK; t0 += T) {
        const int64_t Tc = L - t0 < T ? L - t0 : T;
        window(c->transposed, true, u, uc, Bz, H, (size_t)L, (size_t)t0, (size_t)Tc);
        st = mode == RUN_CONV ? s4_stream_execute(stream, state, uc, Tc, yc, NULL, 0)
                              : s4_step_run(step, state, uc, Tc, yc, NULL, 0);
        if (st == S4_OK)
            window(c->transposed, false, y, yc, Bz, F, (size_t)L, (size_t)t0, (size_t)Tc);
    }
    free(uc);
    free(yc);
    free(state);
    s4_stream_destroy(stream);
    s4_step_destroy(step);
    return st;
}

static int cmd_forward(const options *o)
{
    int rc = require(o->weights, "weights");
    if (!rc)
        rc = require(o->input, "input");
    if (!rc)
        rc = require(o->output, "output");
    if (rc)
        return rc;
    const int model = s4cli_is_model(o);
    if (model != 0)
        return model < 0 ? EXIT_FAILURE : s4cli_model_forward(o);
    run_mode mode = RUN_CONV;
    if (o->mode) {
        if (strcmp(o->mode, "conv") == 0)
            mode = RUN_CONV;
        else if (strcmp(o->mode, "dense") == 0)
            mode = RUN_DENSE;
        else if (strcmp(o->mode, "linear") == 0)
            mode = RUN_LINEAR;
        else if (strcmp(o->mode, "diagonal") == 0)
            mode = RUN_DIAGONAL;
        else
            return fail(EXIT_USAGE,
                        "option --mode: '%s' is not one of conv, dense, linear, diagonal",
                        o->mode);
    }
    int64_t chunk = 0;
    if (o->chunk && (rc = parse_int(o->chunk, "chunk", 1, INT32_MAX / 2, &chunk)) != 0)
        return rc;
    double rate = 1.0;
    if ((rc = parse_rate(o->rate, &rate)) != 0)
        return rc;

    s4_layer *layer = NULL;
    s4_layer_config c;
    if ((rc = load_layer(o, &layer, &c)) != 0)
        return rc;
    if (c.bidirectional && (mode != RUN_CONV || chunk > 0)) {
        s4_layer_destroy(layer);
        return fail(EXIT_USAGE,
                    "%s: %s: the layer is bidirectional (config key 'bidirectional' is true): "
                    "its backward kernel reads future inputs, so it runs in --mode conv without "
                    "--chunk only",
                    o->weights, mode != RUN_CONV ? "--mode" : "--chunk");
    }

    float *u = NULL, *y = NULL;
    int ndim = 0;
    int64_t shape[S4_MAX_DIMS] = {0};
    s4_status st = s4_npy_read_f32(o->input, &u, &ndim, shape);
    if (st != S4_OK) {
        s4_layer_destroy(layer);
        return fail_lib(st);
    }
    const int H = c.ssm.H;
    const int hdim = c.transposed ? 1 : 2, ldim = c.transposed ? 2 : 1;
    char found[128];
    shape_text(found, sizeof found, ndim, shape);
    if (ndim != 3 || shape[hdim] != H || shape[0] < 1 || shape[ldim] < 1 || shape[0] > INT_MAX ||
        shape[ldim] > INT32_MAX) {
        rc = fail(EXIT_FAILURE,
                  "%s: shape %s: expected %s with d_model = %d (batch and length >= 1)", o->input,
                  found, c.transposed ? "(B, H, L)" : "(B, L, H) [transposed false]", H);
    }
    const int B = rc ? 0 : (int)shape[0];
    const int64_t L = rc ? 0 : shape[ldim];
    if (rc == 0 && mode == RUN_CONV) { /* the step modes run the untruncated recurrence */
        s4_layer_kernel_info ki;
        const s4_status kst = s4_layer_kernel_size(layer, L, rate, &ki);
        if (kst != S4_OK)
            rc = fail_lib_at(kst, o->rate);
    }
    const size_t nu = (size_t)B * (size_t)H * (size_t)L;
    for (size_t i = 0; i < nu && rc == 0; i++)
        if (!isfinite(u[i]))
            rc = fail(EXIT_FAILURE, "%s: element %zu is %s: inputs must be finite float32 values",
                      o->input, i, isnan(u[i]) ? "NaN" : "infinite or beyond the float32 range");
    const int F = s4_layer_output_features(layer);
    size_t ny = 0, ybytes = 0;
    const bool too_big = __builtin_mul_overflow((size_t)B, (size_t)F, &ny) ||
                         __builtin_mul_overflow(ny, (size_t)L, &ny) ||
                         __builtin_mul_overflow(ny, sizeof *y, &ybytes);
    if (rc == 0 && (too_big || !(y = malloc(ybytes ? ybytes : 1))))
        rc = fail(EXIT_FAILURE, "%s: out of memory for %zu floats", o->output, ny);
    if (rc == 0) {
        bool oom = false;
        if (mode == RUN_CONV && chunk == 0)
            st = run_conv(layer, B, L, rate, u, y);
        else
            st = run_chunked(layer, &c, mode, B, L, chunk > 0 ? (chunk < L ? chunk : L) : L, rate,
                             u, y, &oom);
        if (st == S4_OK) {
            const int64_t yshape[3] = {B, c.transposed ? F : L, c.transposed ? L : F};
            st = s4_npy_write_f32(o->output, y, 3, yshape);
            if (st == S4_OK) {
                char sh[96];
                shape_text(sh, sizeof sh, 3, yshape);
                printf("s4 forward: wrote %s: float32 %s (mode %s%s%s%s%s)\n", o->output, sh,
                       o->mode ? o->mode : "conv", chunk ? ", chunks of " : "",
                       chunk ? o->chunk : "", o->rate ? ", rate " : "",
                       o->rate ? o->rate : "");
            }
        }
        if (st != S4_OK && oom)
            rc = fail(EXIT_FAILURE, "%s: out of memory for B = %d, L = %lld", o->input, B,
                      (long long)L);
        else if (st == S4_ERR_INVALID_ARGUMENT && c.ssm.mode == S4_MODE_DIAG &&
                 (mode == RUN_DENSE || mode == RUN_LINEAR))
            rc = fail(EXIT_FAILURE, "%s (%s); --mode %s: %s is an S4D layer, which steps with "
                                    "--mode diagonal only",
                      s4_last_error(), s4_status_str(st), o->mode, o->weights);
        else if (st != S4_OK)
            rc = fail_lib_at(st, o->rate);
    }
    free(y);
    s4_free(u);
    s4_layer_destroy(layer);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2)
        return fail(EXIT_USAGE, "no command given (info, kernel, forward, generate; see s4 help)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("s4 (libs4) %s\n", s4_version());
        return 0;
    }
    static const char *const info_opts[] = {"weights", "config", NULL};
    static const char *const kernel_opts[] = {"weights", "config", "length",
                                              "output",  "rate",   NULL};
    static const char *const forward_opts[] = {"weights", "config", "input", "output",
                                               "mode",    "chunk",  "rate",  NULL};
    options o;
    int rc;
    if (strcmp(cmd, "info") == 0) {
        g_command = "s4 info";
        if ((rc = parse_options(argc - 2, argv + 2, info_opts, &o)) != 0 ||
            (rc = require(o.weights, "weights")) != 0)
            return rc;
        return cmd_info(&o);
    }
    if (strcmp(cmd, "kernel") == 0) {
        g_command = "s4 kernel";
        if ((rc = parse_options(argc - 2, argv + 2, kernel_opts, &o)) != 0)
            return rc;
        return cmd_kernel(&o);
    }
    if (strcmp(cmd, "forward") == 0) {
        g_command = "s4 forward";
        if ((rc = parse_options(argc - 2, argv + 2, forward_opts, &o)) != 0)
            return rc;
        return cmd_forward(&o);
    }
    if (strcmp(cmd, "generate") == 0) {
        static const char *const generate_opts[] = {
            "weights", "config", "length", "output", "prime", "temperature",
            "top-k",   "seed",   "batch",  "wav",    "threads", "precision", NULL};
        g_command = "s4 generate";
        if ((rc = parse_options(argc - 2, argv + 2, generate_opts, &o)) != 0 ||
            (rc = require(o.weights, "weights")) != 0 || (rc = require(o.length, "length")) != 0 ||
            (rc = require(o.output, "output")) != 0)
            return rc;
        return s4cli_generate(&o);
    }
    return fail(EXIT_USAGE, "unknown command '%s' (info, kernel, forward, generate; see s4 help)",
                cmd);
}
