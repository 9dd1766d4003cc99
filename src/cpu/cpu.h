/* The one CPU dispatcher of libs4: which instruction set the SIMD kernels run on.
 *
 * Every SIMD kernel is compiled for each instruction set below from one body (attributes
 * target("..."), so the build needs no -march flag) beside its portable reference. The ISA
 * is chosen once per process, at the first plan made: the widest the CPU runs, or a
 * narrower one named by the environment variable S4_ISA ("portable", "avx2", "avx512"; see
 * docs/cpu.md). A name the CPU cannot run is clamped to the widest it can; an unknown name
 * is ignored. Plans keep the kernels chosen at creation, so an execute never reads cpuid.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CPU_H
#define S4_CPU_H

#include "s4.h"

#include <stdbool.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define S4_CPU_X86 1
#else
#define S4_CPU_X86 0
#endif

/* The ISAs are the public s4_isa (s4.h), ordered: a wider ISA runs everything a narrower
 * one does. Portable is the reference kernels; AVX2 + FMA is Haswell, Zen 1 and later;
 * AVX-512F Skylake-X, Zen 4 and later. */
#define S4_CPU_COUNT 3

/* The function attributes of each x86 instruction set, for the kernels' bodies. */
#define S4_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define S4_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

/* True when this CPU runs `isa`. */
bool s4__cpu_runs(s4_isa isa);

/* The ISA of plans made now: the widest the CPU runs, lowered by S4_ISA (read once). */
s4_isa s4__cpu_isa(void);

/* "portable", "avx2", "avx512"; "unknown" outside the enum. */
const char *s4__cpu_isa_name(s4_isa isa);

/* Test hook: plans made after this call use `isa` (clamped to what the CPU runs); returns
 * the previous choice. Not for concurrent use with plan creation. */
s4_isa s4__cpu_set_isa(s4_isa isa);

#endif
