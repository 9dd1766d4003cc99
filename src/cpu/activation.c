/* GELU and GLU rows (activation.h), one body (activation_impl.h) per ISA.
 * SPDX-License-Identifier: Apache-2.0 */
#include "activation.h"

#include "internal.h" /* S4_SQRT1_2 */

#include <string.h>

/* Portable: two doubles per vector (SSE2 on x86-64). */
#define S4_ACT_SFX ref
#define S4_ACT_TARGET
#define S4_ACT_VW 2
#include "activation_impl.h"
#undef S4_ACT_SFX
#undef S4_ACT_TARGET
#undef S4_ACT_VW

#if S4_CPU_X86
#define S4_ACT_SFX avx2
#define S4_ACT_TARGET S4_TARGET_AVX2
#define S4_ACT_VW 4
#include "activation_impl.h"
#undef S4_ACT_SFX
#undef S4_ACT_TARGET
#undef S4_ACT_VW

#define S4_ACT_SFX avx512
#define S4_ACT_TARGET S4_TARGET_AVX512
#define S4_ACT_VW 8
#include "activation_impl.h"
#undef S4_ACT_SFX
#undef S4_ACT_TARGET
#undef S4_ACT_VW
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
