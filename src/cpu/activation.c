/* GELU and GLU rows (activation.h), one body (activation_impl.h) per ISA.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cpu/activation.h"

#include "core/internal.h" /* S4_SQRT1_2 */

#include <string.h>

#if S4_CPU_X86
#include <immintrin.h>
#endif

/* Generic lane selects (vector extensions): m ? a : b for a comparison's mask m. */
#define S4_ACT_GSEL(m, a, b)                                                                  \
    ((__typeof__(a))(((m) & (__typeof__(m))(a)) | (~(m) & (__typeof__(m))(b))))

/* Portable: two doubles per vector (SSE2 on x86-64). */
#define S4_ACT_SFX ref
#define S4_ACT_TARGET
#define S4_ACT_VW 2
#define S4_ACT_MAX(a, b) S4_ACT_GSEL((a) < (b), (b), (a))
#define S4_ACT_SELGE0(z, a, b) S4_ACT_GSEL((z) >= 0.0, (a), (b))
#include "cpu/activation_impl.h"

#if S4_CPU_X86
/* maxpd returns its second operand when either is NaN: max(a, c) keeps a NaN a. */
#define S4_ACT_SFX avx2
#define S4_ACT_TARGET S4_TARGET_AVX2
#define S4_ACT_VW 4
#define S4_ACT_MAX(a, b) ((__typeof__(a))_mm256_max_pd((__m256d)(b), (__m256d)(a)))
#define S4_ACT_SELGE0(z, a, b)                                                                \
    ((__typeof__(a))_mm256_blendv_pd(                                                         \
        (__m256d)(a), (__m256d)(b),                                                           \
        _mm256_cmp_pd((__m256d)(z), _mm256_setzero_pd(), _CMP_LT_OQ)))
#include "cpu/activation_impl.h"

#define S4_ACT_SFX avx512
#define S4_ACT_TARGET S4_TARGET_AVX512
#define S4_ACT_VW 8
#define S4_ACT_MAX(a, b) ((__typeof__(a))_mm512_max_pd((__m512d)(b), (__m512d)(a)))
#define S4_ACT_SELGE0(z, a, b)                                                                \
    ((__typeof__(a))_mm512_mask_blend_pd(                                                     \
        _mm512_cmp_pd_mask((__m512d)(z), _mm512_setzero_pd(), _CMP_GE_OQ), (__m512d)(b),     \
        (__m512d)(a)))
#include "cpu/activation_impl.h"
#endif

s4_gelu_row_fn s4__gelu_row(s4_isa isa)
{
#if S4_CPU_X86
    if (isa == S4_ISA_AVX512)
        return gelu_row_avx512;
    if (isa == S4_ISA_AVX2)
        return gelu_row_avx2;
#endif
    (void)isa;
    return gelu_row_ref;
}

s4_glu_row_fn s4__glu_row(s4_isa isa)
{
#if S4_CPU_X86
    if (isa == S4_ISA_AVX512)
        return glu_row_avx512;
    if (isa == S4_ISA_AVX2)
        return glu_row_avx2;
#endif
    (void)isa;
    return glu_row_ref;
}
