/* Status codes, the thread's last error message, version, checked allocation.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One message per thread, so concurrent failing calls never mix their messages. */
static _Thread_local char last_error[512];

const char *s4_version(void) { return S4_VERSION_STRING; }

const char *s4_status_str(s4_status status)
{
    switch (status) {
    case S4_OK: return "S4_OK";
    case S4_ERR_INVALID_ARGUMENT: return "S4_ERR_INVALID_ARGUMENT";
    case S4_ERR_OUT_OF_MEMORY: return "S4_ERR_OUT_OF_MEMORY";
    case S4_ERR_NUMERICAL: return "S4_ERR_NUMERICAL";
    case S4_ERR_UNSUPPORTED: return "S4_ERR_UNSUPPORTED";
    case S4_ERR_IO: return "S4_ERR_IO";
    case S4_ERR_FORMAT: return "S4_ERR_FORMAT";
    }
    return "S4_ERR_UNKNOWN";
}

const char *s4_last_error(void) { return last_error; }

s4_status s4__fail(s4_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- memory ------------------------------------------------------------------------- */

enum { HEADER = 64 }; /* keeps the caller's block 64-byte aligned; holds its size */

static void *default_alloc(size_t size, size_t alignment, void *ctx)
{
    (void)ctx;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void default_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static s4_allocator allocator = {default_alloc, default_free, NULL};
static _Atomic size_t in_use;
static _Atomic size_t limit = SIZE_MAX;

s4_status s4_set_allocator(const s4_allocator *a)
{
    if (a && (!a->alloc || !a->free))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_set_allocator: allocator->%s is NULL",
                        !a->alloc ? "alloc" : "free");
    const size_t used = atomic_load(&in_use);
    if (used != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4_set_allocator: %zu bytes of libs4 memory are still allocated; "
                        "install the allocator before creating any object",
                        used);
    allocator = a ? *a : (s4_allocator){default_alloc, default_free, NULL};
    return S4_OK;
}

void s4_set_memory_limit(size_t bytes) { atomic_store(&limit, bytes); }

size_t s4_memory_in_use(void) { return atomic_load(&in_use); }

void *s4__malloc(size_t bytes)
{
    size_t total;
    if (!s4__add_size(bytes ? bytes : 1, HEADER, &total))
        return NULL;
    /* Reserve first, so concurrent requests cannot pass the cap together. */
    const size_t before = atomic_fetch_add(&in_use, total);
    if (before > SIZE_MAX - total || before + total > atomic_load(&limit)) {
        atomic_fetch_sub(&in_use, total);
        return NULL;
    }
    unsigned char *base = allocator.alloc(total, HEADER, allocator.ctx);
    if (!base) {
        atomic_fetch_sub(&in_use, total);
        return NULL;
    }
    memcpy(base, &total, sizeof total);
    return base + HEADER;
}

void s4__free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HEADER;
    size_t total;
    memcpy(&total, base, sizeof total);
    allocator.free(base, allocator.ctx);
    atomic_fetch_sub(&in_use, total);
}

void s4_free(void *p) { s4__free(p); }

void *s4__alloc(size_t n, size_t size)
{
    size_t bytes;
    if (!s4__mul_size(n, size, &bytes))
        return NULL;
    return s4__malloc(bytes);
}

void *s4__calloc(size_t n, size_t size)
{
    size_t bytes;
    if (!s4__mul_size(n, size, &bytes))
        return NULL;
    void *p = s4__malloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

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

unsigned char *s4__workspace(const char *fn, void *work, size_t work_size, size_t need,
                             void *own)
{
    if (work && work_size < need) {
        s4__fail(S4_ERR_INVALID_ARGUMENT,
                 "%s: work_size = %zu is smaller than the %zu bytes required", fn, work_size,
                 need);
        return NULL;
    }
    unsigned char *base = work ? work : own;
    return base + (64 - (uintptr_t)base % 64) % 64;
}
