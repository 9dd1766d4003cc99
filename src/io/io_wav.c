/* WAV files (RIFF/WAVE, 16-bit PCM), for audio models' primes and outputs
 * (docs/models.md, "Generation"). Reading treats the file as hostile: every chunk size is
 * checked against the file, and only 16-bit PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with
 * the PCM subformat) is accepted. Writing is atomic like every writer of libs4.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint32_t u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t u16le(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

s4_status s4_wav_read(const char *path, double **data, size_t *n, int *sample_rate)
{
    static const char fn[] = "s4_wav_read";
    if (!path || !data || !n || !sample_rate)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !path ? "path" : !data ? "data" : !n ? "n" : "sample_rate");
    /* The whole file (bounded: 1 GiB is hours of audio). */
    FILE *f = fopen(path, "rb");
    if (!f)
        return s4__fail(S4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long end = -1;
    char *raw = NULL;
    s4_status st = S4_OK;
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        st = s4__fail(S4_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else if (end > (1L << 30))
        st = s4__fail(S4_ERR_FORMAT, "%s: %ld bytes is too large for a prime", path, end);
    else if (!(raw = s4__malloc((size_t)end + 1)))
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    else if (fread(raw, 1, (size_t)end, f) != (size_t)end)
        st = s4__fail(S4_ERR_IO, "%s: cannot read: short read", path);
    fclose(f);
    if (st != S4_OK) {
        s4__free(raw);
        return st;
    }
    const size_t size = (size_t)end;
    const unsigned char *b = (const unsigned char *)raw;
    if (size < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0) {
        s4__free(raw);
        return s4__fail(S4_ERR_FORMAT, "%s: not a RIFF/WAVE file", path);
    }
    int channels = 0, bits = 0, rate = 0;
    const unsigned char *pcm = NULL;
    size_t pcm_bytes = 0;
    for (size_t off = 12; off + 8 <= size;) {
        const uint32_t len = u32le(b + off + 4);
        if (len > size - off - 8) {
            s4__free(raw);
            return s4__fail(S4_ERR_FORMAT, "%s: chunk '%.4s' of %u bytes runs past the end", path,
                            (const char *)(b + off), len);
        }
        const unsigned char *c = b + off + 8;
        if (memcmp(b + off, "fmt ", 4) == 0) {
            if (len < 16) {
                s4__free(raw);
                return s4__fail(S4_ERR_FORMAT, "%s: 'fmt ' chunk of %u bytes is too short", path,
                                len);
            }
            unsigned fmt = u16le(c);
            if (fmt == 0xFFFE && len >= 26)
                fmt = u16le(c + 24); /* the extensible format's subformat GUID starts so */
            channels = u16le(c + 2);
            rate = (int)u32le(c + 4);
            bits = u16le(c + 14);
            if (fmt != 1 || bits != 16 || channels < 1 || rate < 1) {
                s4__free(raw);
                return s4__fail(S4_ERR_FORMAT,
                                "%s: format %u, %d bits, %d channels, %d Hz: expected 16-bit "
                                "PCM",
                                path, fmt, bits, channels, rate);
            }
        } else if (memcmp(b + off, "data", 4) == 0 && !pcm) {
            pcm = c;
            pcm_bytes = len;
        }
        off += 8 + (size_t)len + (len & 1); /* chunks are padded to even sizes */
    }
    if (!channels || !pcm) {
        s4__free(raw);
        return s4__fail(S4_ERR_FORMAT, "%s: no %s chunk", path, !channels ? "'fmt '" : "'data'");
    }
    const size_t frames = pcm_bytes / (2 * (size_t)channels);
    double *out = s4__alloc(frames ? frames : 1, sizeof *out);
    if (!out) {
        s4__free(raw);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    for (size_t i = 0; i < frames; i++) /* the first channel */
        out[i] = (double)(int16_t)u16le(pcm + 2 * (size_t)channels * i) / 32768.0;
    s4__free(raw);
    *data = out;
    *n = frames;
    *sample_rate = rate;
    return S4_OK;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

s4_status s4_wav_write(const char *path, const double *data, size_t n, int channels,
                       int sample_rate)
{
    static const char fn[] = "s4_wav_write";
    if (!path || (!data && n > 0))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !path ? "path" : "data");
    if (channels < 1 || channels > 64 || sample_rate < 1 || sample_rate > 10000000)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: channels = %d must be in [1, 64], sample_rate = %d in [1, 10^7]", fn,
                        channels, sample_rate);
    const size_t samples = n * (size_t)channels;
    if (n > (UINT32_MAX - 64) / 2 / (size_t)channels)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %zu frames do not fit a WAV file", fn, n);
    const size_t bad = s4__first_nonfinite_d(data, samples);
    if (bad < samples)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: data[%zu] = %g is not finite", fn, bad,
                        data[bad]);
    unsigned char h[44];
    const uint32_t bytes = (uint32_t)(2 * samples);
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put32(h + 20, 1 | (uint32_t)channels << 16);                /* PCM, channels */
    put32(h + 24, (uint32_t)sample_rate);
    put32(h + 28, (uint32_t)sample_rate * 2u * (uint32_t)channels); /* bytes per second */
    put32(h + 32, (uint32_t)(2 * channels) | 16u << 16);          /* block align, bits */
    memcpy(h + 36, "data", 4);
    put32(h + 40, bytes);
    s4io_atomic out;
    s4_status st = s4io_atomic_open(fn, path, &out);
    if (st != S4_OK)
        return st;
    errno = 0;
    bool ok = fwrite(h, 1, sizeof h, out.f) == sizeof h;
    unsigned char chunk[2 * 512];
    for (size_t done = 0; ok && done < samples;) {
        const size_t k = samples - done < 512 ? samples - done : 512;
        for (size_t i = 0; i < k; i++) {
            const double v = fmin(fmax(round(data[done + i] * 32767.0), -32768.0), 32767.0);
            const uint16_t u = (uint16_t)(int16_t)v;
            chunk[2 * i] = (unsigned char)(u & 0xff);
            chunk[2 * i + 1] = (unsigned char)(u >> 8);
        }
        ok = fwrite(chunk, 2, k, out.f) == k;
        done += k;
    }
    return s4io_atomic_finish(&out, ok);
}
