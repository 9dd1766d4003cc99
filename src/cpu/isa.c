/* The ISA choice (cpu.h): cpuid once, the S4_ISA override once.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cpu/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[S4_CPU_COUNT] = {"portable", "avx2", "avx512"};

const char *s4__cpu_isa_name(s4_isa isa)
{
    return (unsigned)isa < S4_CPU_COUNT ? names[isa] : "unknown";
}

bool s4__cpu_runs(s4_isa isa)
{
    switch (isa) {
    case S4_ISA_PORTABLE:
        return true;
#if S4_CPU_X86
    case S4_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case S4_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#endif
    default:
        return false;
    }
}

static s4_isa clamp(s4_isa want)
{
    while (want > S4_ISA_PORTABLE && !s4__cpu_runs(want))
        want--;
    return want;
}

/* -1 until the first call; then the choice. Two threads making their first plans at once
 * both compute the same value, so a relaxed atomic is enough. */
static atomic_int chosen = -1;

s4_isa s4__cpu_isa(void)
{
    int c = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (c >= 0)
        return (s4_isa)c;
    s4_isa isa = (s4_isa)(S4_CPU_COUNT - 1);
    const char *want = getenv("S4_ISA");
    for (int i = 0; want && i < S4_CPU_COUNT; i++)
        if (!strcmp(want, names[i]))
            isa = (s4_isa)i;
    isa = clamp(isa);
    atomic_store_explicit(&chosen, (int)isa, memory_order_relaxed);
    return isa;
}

s4_isa s4_cpu_isa(void) { return s4__cpu_isa(); }

const char *s4_isa_name(s4_isa isa) { return s4__cpu_isa_name(isa); }

s4_isa s4__cpu_set_isa(s4_isa isa)
{
    const s4_isa prev = s4__cpu_isa();
    if ((unsigned)isa < S4_CPU_COUNT)
        atomic_store_explicit(&chosen, (int)clamp(isa), memory_order_relaxed);
    return prev;
}
