/* OpenBLAS's own threads held off while libs4's threads call it, and around the small
 * LAPACK and BLAS calls of plan setup (core/internal.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <stdbool.h>
#include <stddef.h>

/* OpenBLAS's thread count while an execute runs (forward.c, step.c). The head's sgemm runs
 * on our threads (each on its own column blocks), so OpenBLAS must not start threads of
 * its own under them: libopenblas-pthread (Debian's default) ignores OpenMP -- it would give every
 * concurrent call its whole thread pool and serialise the calls on its level-3 lock --
 * and its only control is the process-wide openblas_set_num_threads (0.3.21 has no
 * per-thread setting). So executes hold it at 1 with a process-wide count: the first
 * execute to start saves the count and sets 1, the last to finish restores it. The
 * OpenMP build needs nothing (it runs one thread inside a parallel region), nor a BLAS
 * without these calls: they are weak references, resolved only if OpenBLAS is linked. */
extern int openblas_get_parallel(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

static int blas_holders, blas_saved_threads;

static bool blas_pthreads(void)
{
    return openblas_get_parallel && openblas_get_num_threads && openblas_set_num_threads &&
           openblas_get_parallel() == 1;
}

void s4__blas_hold(void)
{
    if (!blas_pthreads())
        return;
#pragma omp critical(s4_openblas_threads)
    {
        if (blas_holders++ == 0) {
            blas_saved_threads = openblas_get_num_threads();
            if (blas_saved_threads > 1)
                openblas_set_num_threads(1);
        }
    }
}

void s4__blas_release(void)
{
    if (!blas_pthreads())
        return;
#pragma omp critical(s4_openblas_threads)
    {
        if (--blas_holders == 0 && blas_saved_threads > 1)
            openblas_set_num_threads(blas_saved_threads);
    }
}
