/* The Cauchy-sum hot loop of kernel generation (docs/design.md section 7.3; see cauchy.h for the
 * real-arithmetic form on imaginary nodes), compiled for each instruction set from one body
 * (cauchy_impl.h) and dispatched once from cpuid, so the build needs no -march flag.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kernel/cauchy.h"

#include <stdlib.h>
#include <string.h>

#if S4_CPU_X86
#include <immintrin.h>
#endif

/* Each variant in double (S4_CAUCHY_T double) and in float (the far pairs of the mixed
 * kernel, see cauchy.h). */
#define S4_CAUCHY_RECIP(x) (1 / (x))

/* The portable variant: baseline x86-64 (SSE2) or whatever the target's default is. */
#define S4_CAUCHY_TARGET
#define S4_CAUCHY_VB 16
#define S4_CAUCHY_CV 1
#define S4_CAUCHY_T double
#define S4_CAUCHY_NAME s4__cauchy_block_ref
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#define S4_CAUCHY_T float
#define S4_CAUCHY_NAME s4__cauchy_block_ref_f
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#undef S4_CAUCHY_TARGET
#undef S4_CAUCHY_VB
#undef S4_CAUCHY_CV

#if S4_CPU_X86
#define S4_CAUCHY_TARGET __attribute__((target("avx2,fma")))
#define S4_CAUCHY_VB 32
#define S4_CAUCHY_CV 1
#define S4_CAUCHY_T double
#define S4_CAUCHY_NAME s4__cauchy_block_avx2
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#define S4_CAUCHY_T float
#define S4_CAUCHY_NAME s4__cauchy_block_avx2_f
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#undef S4_CAUCHY_TARGET
#undef S4_CAUCHY_VB
#undef S4_CAUCHY_CV
#undef S4_CAUCHY_RECIP

/* AVX-512 divides 8 doubles in 16 cycles, which made phase 1 half the block's time. Its
 * 14-bit reciprocal estimate refined by Newton steps r <- r + r (1 - x r) reaches full
 * precision (2^-14 -> 2^-28 -> 2^-56, plus an ulp or two of rounding: two steps in double,
 * one in float) in a few pipelined instructions. Denominators here are positive, finite
 * and far from the exponent limits (|y| <= 4 Ld / pi), where the estimate is defined. */
#define S4_CAUCHY_TARGET __attribute__((target("avx512f,avx2,fma")))
#define S4_CAUCHY_VB 64
#define S4_CAUCHY_CV 2
#define S4_CAUCHY_RECIP(x)                                                                    \
    __extension__({                                                                           \
        const __m512d x_ = (__m512d)(x), one_ = _mm512_set1_pd(1.0);                          \
        __m512d r_ = _mm512_rcp14_pd(x_);                                                     \
        r_ = _mm512_fmadd_pd(r_, _mm512_fnmadd_pd(x_, r_, one_), r_);                         \
        r_ = _mm512_fmadd_pd(r_, _mm512_fnmadd_pd(x_, r_, one_), r_);                         \
        (vd) r_;                                                                              \
    })
#define S4_CAUCHY_T double
#define S4_CAUCHY_NAME s4__cauchy_block_avx512
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#undef S4_CAUCHY_RECIP
#define S4_CAUCHY_RECIP(x)                                                                    \
    __extension__({                                                                           \
        const __m512 x_ = (__m512)(x), one_ = _mm512_set1_ps(1.0f);                           \
        __m512 r_ = _mm512_rcp14_ps(x_);                                                      \
        r_ = _mm512_fmadd_ps(r_, _mm512_fnmadd_ps(x_, r_, one_), r_);                         \
        (vd) r_;                                                                              \
    })
#define S4_CAUCHY_T float
#define S4_CAUCHY_NAME s4__cauchy_block_avx512_f
#include "kernel/cauchy_impl.h"
#undef S4_CAUCHY_NAME
#undef S4_CAUCHY_T
#undef S4_CAUCHY_TARGET
#undef S4_CAUCHY_VB
#undef S4_CAUCHY_CV
#undef S4_CAUCHY_RECIP
#endif

/* Indexed by s4_isa. */
static const struct {
    s4_cauchy_block_fn fn;
    s4_cauchy_block_f_fn fn_f;
} variants[] = {
    {s4__cauchy_block_ref, s4__cauchy_block_ref_f},
#if S4_CPU_X86
    {s4__cauchy_block_avx2, s4__cauchy_block_avx2_f},
    {s4__cauchy_block_avx512, s4__cauchy_block_avx512_f},
#endif
};

int s4__cauchy_variant_count(void) { return (int)(sizeof variants / sizeof variants[0]); }

const char *s4__cauchy_variant(int i, s4_cauchy_block_fn *fn, s4_cauchy_block_f_fn *fn_f)
{
    if (i < 0 || i >= s4__cauchy_variant_count() || !s4__cpu_runs((s4_isa)i))
        return NULL;
    if (fn)
        *fn = variants[i].fn;
    if (fn_f)
        *fn_f = variants[i].fn_f;
    return s4__cpu_isa_name((s4_isa)i);
}

/* The blocks of the dispatcher's ISA (cpu.h), chosen when a plan is made: plain function
 * pointers, so executes never touch cpuid. */
s4_cauchy_block_fn s4__cauchy_select(const char **name, s4_cauchy_block_f_fn *fn_f)
{
    const int i = (int)s4__cpu_isa() < s4__cauchy_variant_count() ? (int)s4__cpu_isa() : 0;
    if (name)
        *name = s4__cpu_isa_name((s4_isa)i);
    if (fn_f)
        *fn_f = variants[i].fn_f;
    return variants[i].fn;
}
