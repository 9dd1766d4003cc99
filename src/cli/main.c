/* s4: run trained S4 layers and whole models from the command line. This file: the usage
 * text and the dispatch to one file per command (info.c, kernel.c, forward.c, model.c,
 * generate.c), over the shared parser of args.h.
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
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- options ------------------------------------------------------------------------ */

static const s4args_spec option_specs[] = {
    {"weights", offsetof(options, weights), false}, {"config", offsetof(options, config), false},
    {"input", offsetof(options, input), false},     {"output", offsetof(options, output), false},
    {"mode", offsetof(options, mode), false},       {"length", offsetof(options, length), false},
    {"chunk", offsetof(options, chunk), false},     {"rate", offsetof(options, rate), false},
    {"prime", offsetof(options, prime), false},     {"temperature", offsetof(options, temperature), false},
    {"top-k", offsetof(options, top_k), false},     {"seed", offsetof(options, seed), false},
    {"batch", offsetof(options, batch), false},     {"wav", offsetof(options, wav), false},
    {"threads", offsetof(options, threads), false}, {"precision", offsetof(options, precision), false},
};

static int parse_options(int argc, char **argv, const char *const *allowed, options *o)
{
    memset(o, 0, sizeof *o);
    return s4args_parse(argc, argv, option_specs, sizeof option_specs / sizeof option_specs[0],
                        allowed, o, "s4 help");
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2)
        return s4args_fail(EXIT_USAGE, "no command given (info, kernel, forward, generate; see s4 help)");
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
        s4args_set_command("s4 info");
        if ((rc = parse_options(argc - 2, argv + 2, info_opts, &o)) != 0 ||
            (rc = s4args_require(o.weights, "weights", "s4 help")) != 0)
            return rc;
        return s4cli_info(&o);
    }
    if (strcmp(cmd, "kernel") == 0) {
        s4args_set_command("s4 kernel");
        if ((rc = parse_options(argc - 2, argv + 2, kernel_opts, &o)) != 0)
            return rc;
        return s4cli_kernel(&o);
    }
    if (strcmp(cmd, "forward") == 0) {
        s4args_set_command("s4 forward");
        if ((rc = parse_options(argc - 2, argv + 2, forward_opts, &o)) != 0)
            return rc;
        return s4cli_forward(&o);
    }
    if (strcmp(cmd, "generate") == 0) {
        static const char *const generate_opts[] = {
            "weights", "config", "length", "output", "prime", "temperature",
            "top-k",   "seed",   "batch",  "wav",    "threads", "precision", NULL};
        s4args_set_command("s4 generate");
        if ((rc = parse_options(argc - 2, argv + 2, generate_opts, &o)) != 0 ||
            (rc = s4args_require(o.weights, "weights", "s4 help")) != 0 || (rc = s4args_require(o.length, "length", "s4 help")) != 0 ||
            (rc = s4args_require(o.output, "output", "s4 help")) != 0)
            return rc;
        return s4cli_generate(&o);
    }
    return s4args_fail(EXIT_USAGE, "unknown command '%s' (info, kernel, forward, generate; see s4 help)",
                cmd);
}
