/* Shared by the libFuzzer targets of tests/fuzz: the entry point's prototype and an
 * in-memory file, so the path-based readers (s4_tensors_open, s4_npy_read_*, s4_layer_load)
 * can read the fuzzer's bytes without touching the disk.
 *
 * The bytes go into a memfd (an anonymous in-memory file, Linux) that is reopened through
 * /proc/self/fd/<fd>: fopen() then sees an ordinary regular file (fseek, ftell and fread
 * behave as for a file on disk), and nothing is left behind when the process ends.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_FUZZ_COMMON_H
#define S4_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct s4fuzz_file {
    int fd;
    char path[64];
} s4fuzz_file;

/* Makes the in-memory file on first use and replaces its content with data[0 .. size).
 * Returns its path, or aborts (a harness failure, not a finding). */
static inline const char *s4fuzz_file_set(s4fuzz_file *f, const uint8_t *data, size_t size)
{
    if (f->fd <= 0) {
        f->fd = memfd_create("s4fuzz", 0);
        if (f->fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        const ssize_t n = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)n;
    }
    return f->path;
}

/* A NUL-terminated copy of the bytes (embedded NULs simply end the text early). */
static inline char *s4fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif /* S4_FUZZ_COMMON_H */
