/* Atomic replacement of a file, shared by the .npy and safetensors writers: the content goes
 * to a temporary file of our own in the destination's directory, which is renamed over the
 * destination once complete, so a reader sees the old file or the whole new one.
 *
 * The temporary name is "<path>.tmp.<pid>.<n>", n from a process-wide atomic counter, so
 * that no two calls -- in this process's threads or in other processes -- ever share one.
 * It is created exclusively ("x", C11: O_CREAT | O_EXCL), so an existing file (a planted
 * symlink, a crashed writer's leftover, another writer's file in progress) is never
 * followed, truncated or removed: the next number is tried instead. Only a file this call
 * created is ever removed.
 * SPDX-License-Identifier: Apache-2.0 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* getpid */
#endif

#include "io/io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

/* Names tried before giving up: each EEXIST means a file at a name we have never used
 * (counter values are not reused within a process), so a handful is already unlikely. */
enum { ATOMIC_MAX_TRIES = 100 };

static atomic_ullong temp_counter;

s4_status s4io_atomic_open(const char *who, const char *path, s4io_atomic *out)
{
    memset(out, 0, sizeof *out);
    out->who = who;
    out->path = path;
    /* ".tmp." + a pid and a counter of up to 20 digits each, a '.' and the NUL. */
    const size_t cap = strlen(path) + sizeof ".tmp.." + 40;
    out->tmp = s4__malloc(cap);
    if (!out->tmp)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: %s: cannot allocate a temporary name", who,
                        path);
    const long long pid = (long long)getpid();
    int err = EEXIST;
    for (int attempt = 0; attempt < ATOMIC_MAX_TRIES && err == EEXIST; attempt++) {
        const unsigned long long n = atomic_fetch_add(&temp_counter, 1);
        snprintf(out->tmp, cap, "%s.tmp.%lld.%llu", path, pid, n);
        errno = 0;
        out->f = fopen(out->tmp, "wbx");
        err = out->f ? 0 : errno ? errno : EIO;
    }
    if (out->f)
        return S4_OK;
    /* Nothing was created: the name is reported, nothing removed. */
    s4_status st = s4__fail(S4_ERR_IO, "%s: %s: cannot create the temporary file '%s': %s",
                            who, path, out->tmp, strerror(err));
    s4__free(out->tmp);
    out->tmp = NULL;
    return st;
}

s4_status s4io_atomic_finish(s4io_atomic *a, bool written)
{
    /* The writer's own failure first (its errno), then what the flush and close report:
     * fclose reports the last buffered write's failure (a full disk, for instance). */
    int err = written ? 0 : (errno ? errno : EIO);
    if (!err && (fflush(a->f) != 0 || ferror(a->f)))
        err = errno ? errno : EIO;
    if (fclose(a->f) != 0 && !err)
        err = errno ? errno : EIO;
    a->f = NULL;
    s4_status st = S4_OK;
    if (err) {
        st = s4__fail(S4_ERR_IO, "%s: %s: cannot write '%s': %s", a->who, a->path, a->tmp,
                      strerror(err));
        remove(a->tmp); /* ours: created exclusively by s4io_atomic_open */
    } else if (rename(a->tmp, a->path) != 0) {
        err = errno;
        st = s4__fail(S4_ERR_IO, "%s: %s: cannot rename '%s' over it: %s", a->who, a->path,
                      a->tmp, strerror(err));
        remove(a->tmp);
    }
    s4__free(a->tmp);
    a->tmp = NULL;
    return st;
}

