/* Small shared helpers: Python's rounding of lengths, the scan for non-finite inputs, and
 * the lock of FFTW's global planner.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t s4__round_half_even(double x)
{
    /* nearbyint honours the default rounding mode, round-half-to-even, like Python. Values
     * beyond +-2^62 (an extreme rate) saturate rather than overflow the conversion, so
     * every caller's range check sees a huge length and reports it. */
    if (!(fabs(x) < 0x1p62))
        return x < 0 ? -((int64_t)1 << 62) : ((int64_t)1 << 62);
    return (int64_t)nearbyint(x);
}

static pthread_mutex_t fftw_mutex = PTHREAD_MUTEX_INITIALIZER;
void s4__fftw_lock(void) { pthread_mutex_lock(&fftw_mutex); }
void s4__fftw_unlock(void) { pthread_mutex_unlock(&fftw_mutex); }

size_t s4__first_nonfinite_f(const float *x, size_t n)
{
    /* Branch-free blocks of 64 so the common all-finite case vectorises. */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        int bad = 0;
        for (size_t j = 0; j < 64; j++)
            bad |= !isfinite(x[i + j]);
        if (bad)
            break;
    }
    for (; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

size_t s4__first_nonfinite_d(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}
