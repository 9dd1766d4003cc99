/* The Cauchy-sum hot loop of kernel generation (DESIGN.md section 7.3; see cauchy.h for the
 * real-arithmetic form on imaginary nodes), compiled for each instruction set from one body
 * (cauchy_impl.h) and dispatched once from cpuid, so the build needs no -march flag.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cauchy.h"

#include <stdlib.h>
#include <string.h>

/* The portable variant: baseline x86-64 (SSE2) or whatever the target's default is. */
#define S4_CAUCHY_NAME s4__cauchy_block_ref
#define S4_CAUCHY_TARGET
#include "cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_TARGET

#if S4_CAUCHY_X86
#define S4_CAUCHY_NAME s4__cauchy_block_avx2
#define S4_CAUCHY_TARGET __attribute__((target("avx2,fma")))
#include "cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_TARGET

#define S4_CAUCHY_NAME s4__cauchy_block_avx512
#define S4_CAUCHY_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_TARGET
#endif

static const struct {
    const char *name;
    s4_cauchy_block_fn fn;
    int (*supported)(void);
} variants[] = {
    {"portable", s4__cauchy_block_ref, NULL},
#if S4_CAUCHY_X86
    {"avx2", s4__cauchy_block_avx2, NULL},
    {"avx512", s4__cauchy_block_avx512, NULL},
#endif
};

static int cpu_has(int i)
{
#if S4_CAUCHY_X86
    __builtin_cpu_init();
    if (!strcmp(variants[i].name, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(variants[i].name, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#endif
    return i == 0;
}

int s4__cauchy_variant_count(void) { return (int)(sizeof variants / sizeof variants[0]); }

const char *s4__cauchy_variant(int i, s4_cauchy_block_fn *fn)
{
    if (i < 0 || i >= s4__cauchy_variant_count() || !cpu_has(i))
        return NULL;
    if (fn)
        *fn = variants[i].fn;
    return variants[i].name;
}

/* The best variant the CPU runs, unless S4_CAUCHY_VARIANT names another (for testing and
 * benchmarking a given path). Chosen when a plan is made; the result is a plain function
 * pointer, so executes never touch cpuid. */
s4_cauchy_block_fn s4__cauchy_select(const char **name)
{
    const char *want = getenv("S4_CAUCHY_VARIANT");
    int best = 0;
    for (int i = 0; i < s4__cauchy_variant_count(); i++) {
        if (!cpu_has(i))
            continue;
        if (want && !strcmp(want, variants[i].name)) {
            best = i;
            break;
        }
        if (!want)
            best = i;
    }
    if (name)
        *name = variants[best].name;
    return variants[best].fn;
}
