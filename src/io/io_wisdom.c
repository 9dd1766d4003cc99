/* FFTW wisdom files (s4/io.h): FFTW's single-precision planner state, saved after planning
 * with S4_PLANNER_MEASURE and loaded by later processes. FFTW's planner state is global:
 * every access holds the planner lock libs4's plans take (core/internal.h). The file is
 * written like every libs4 writer: to a temporary name, renamed on success, so a failed
 * export leaves no partial file and never damages the old one (io_atomic.c). Reading
 * opens the file itself and gives FFTW the FILE, so a file that cannot be read (S4_ERR_IO)
 * is told from content FFTW refuses (S4_ERR_FORMAT).
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <errno.h>
#include <fftw3.h>
#include <stdio.h>
#include <string.h>

s4_status s4_wisdom_export(const char *path)
{
    static const char fn[] = "s4_wisdom_export";
    if (!path)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: path is NULL", fn);
    s4io_atomic a;
    s4_status st = s4io_atomic_open(fn, path, &a);
    if (st != S4_OK)
        return st;
    s4__fftw_lock();
    fftwf_export_wisdom_to_file(a.f);
    s4__fftw_unlock();
    return s4io_atomic_finish(&a, ferror(a.f) == 0);
}

s4_status s4_wisdom_import(const char *path)
{
    static const char fn[] = "s4_wisdom_import";
    if (!path)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: path is NULL", fn);
    FILE *f = fopen(path, "r");
    if (!f)
        return s4__fail(S4_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    s4__fftw_lock();
    const int ok = fftwf_import_wisdom_from_file(f);
    s4__fftw_unlock();
    const bool bad = ferror(f) != 0;
    const int err = errno;
    fclose(f);
    if (bad)
        return s4__fail(S4_ERR_IO, "%s: reading '%s' failed: %s", fn, path, strerror(err));
    if (!ok)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: '%s' is not single-precision FFTW wisdom that this FFTW accepts",
                        fn, path);
    return S4_OK;
}
