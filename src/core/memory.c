/* Checked, counted allocation through the caller's allocator (s4_set_allocator), the
 * memory limit, and the workspace of an execute call.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
