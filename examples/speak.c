/* s4-speak: a SashimiLM generating audio block by block, as a C application streaming
 * sound out would (an audio callback, a socket): load, prime, then ask the generator for
 * blocks of samples and hand each block on; here they are decoded from mu-law and written
 * to a WAV file at the end. Public API only (s4.h).
 *
 *   s4-speak params.safetensors config.json seconds out.wav [seed]
 * SPDX-License-Identifier: Apache-2.0 */
#include <s4.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, s4_status st)
{
    fprintf(stderr, "s4-speak: %s: %s (%s)\n", what, s4_last_error(), s4_status_str(st));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: s4-speak params.safetensors config.json seconds out.wav [seed]\n");
        return 2;
    }
    s4_model *m = NULL;
    s4_status st = s4_model_load(argv[1], argv[2], &m);
    if (st != S4_OK)
        return fail("load", st);
    s4_model_config c;
    if ((st = s4_model_get_config(m, &c)) != S4_OK)
        return fail("config", st);
    const double seconds = atof(argv[3]);
    const long n = (long)(seconds * c.sample_rate);
    if (c.architecture != S4_ARCH_SASHIMI_LM || n < 1 || n > 100000000L) {
        fprintf(stderr, "s4-speak: need a SashimiLM and 0 < seconds (got %s)\n", argv[3]);
        return 2;
    }
    s4_generate_options o;
    s4_generate_options_default(&o);
    o.temperature = 1.0;
    o.seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 0;
    s4_generator *g = NULL;
    if ((st = s4_generator_create(m, 1, &o, &g)) != S4_OK)
        return fail("generator", st);
    /* Unconditional: the generator starts from mu-law silence. A prime would go here:
     * s4_generator_prime(g, tokens, P). */
    enum { BLOCK = 256 }; /* 16 ms at 16 kHz: one audio callback's worth */
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    double *audio = malloc((size_t)n * sizeof *audio);
    if (!tok || !audio)
        return 1;
    for (long done = 0; done < n; done += BLOCK) {
        const long k = n - done < BLOCK ? n - done : BLOCK;
        if ((st = s4_generator_next(g, k, tok + done)) != S4_OK)
            return fail("generate", st);
        /* Here a real application would decode and play tok[done .. done + k). */
    }
    if ((st = s4_mulaw_decode(tok, (size_t)n, audio)) != S4_OK ||
        (st = s4_wav_write(argv[4], audio, (size_t)n, 1, c.sample_rate)) != S4_OK)
        return fail("write", st);
    printf("s4-speak: %ld samples (%.2f s at %d Hz) to %s\n", n, (double)n / c.sample_rate,
           c.sample_rate, argv[4]);
    free(tok), free(audio);
    s4_generator_destroy(g);
    s4_model_destroy(m);
    return 0;
}
