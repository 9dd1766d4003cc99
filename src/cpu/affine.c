/* The affine kernel (affine.h): packing, and one body (affine_impl.h) per ISA.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cpu/affine.h"

#include <stdint.h>
#include <string.h>

#if S4_CPU_X86
#include <immintrin.h>
#endif

size_t s4__affine_packed_floats(int M, int K)
{
    if (M < 0 || K < 0)
        return 0;
    const size_t panels = ((size_t)M + S4_AFFINE_MR - 1) / S4_AFFINE_MR;
    size_t n;
    if (__builtin_mul_overflow(panels * S4_AFFINE_MR, (size_t)K + 1, &n))
        return 0;
    return n;
}

void s4__affine_pack(int M, int K, const float *W, const float *b, float *Wp)
{
    const size_t panels = ((size_t)M + S4_AFFINE_MR - 1) / S4_AFFINE_MR;
    for (size_t p = 0; p < panels; p++) {
        float *d = Wp + p * ((size_t)K + 1) * S4_AFFINE_MR;
        for (size_t i = 0; i < S4_AFFINE_MR; i++) {
            const size_t o = p * S4_AFFINE_MR + i;
            d[i] = o < (size_t)M ? b[o] : 0.0f;
            for (size_t k = 0; k < (size_t)K; k++)
                d[(k + 1) * S4_AFFINE_MR + i] = o < (size_t)M ? W[o * (size_t)K + k] : 0.0f;
        }
    }
}

/* Portable: 4-float vectors (SSE2 on x86-64; generic vectors elsewhere), multiply then add.
 * 16 registers: the one-column tile holds 2 panels (8 accumulators), the wide one a panel
 * by 3 columns (12). */
typedef float s4_aff_v4 __attribute__((vector_size(16), aligned(4)));
#define VT s4_aff_v4
#define VLOAD(p) (*(const s4_aff_v4 *)(const void *)(p))
#define VSTORE(p, v) (*(s4_aff_v4 *)(void *)(p) = (v))
#define VSET1(x) ((s4_aff_v4){(x), (x), (x), (x)})
#define VMADD(w, a, s) ((s) + (w) * (a))
#define S4_AFF_NAME affine_ref
#define S4_AFF_TARGET
#define S4_AFF_VW 4
#define S4_AFF_P1 2
#define S4_AFF_PJ 1
#define S4_AFF_J 3
#include "cpu/affine_impl.h"

#if S4_CPU_X86
/* AVX2: 8-float vectors, two per panel; 16 registers: 4 panels by one column (8
 * accumulators) or 2 panels by 3 columns (12, plus 3 broadcasts and a W vector). */
#define VT __m256
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VMADD(w, a, s) _mm256_fmadd_ps((w), (a), (s))
#define S4_AFF_NAME affine_avx2
#define S4_AFF_TARGET S4_TARGET_AVX2
#define S4_AFF_VW 8
#define S4_AFF_P1 4
#define S4_AFF_PJ 2
#define S4_AFF_J 3
#include "cpu/affine_impl.h"

/* AVX-512: a panel is one vector; 32 registers: 8 panels by one column, or 4 panels by 4
 * columns (16 accumulators, 4 broadcasts, a W vector). */
#define VT __m512
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VMADD(w, a, s) _mm512_fmadd_ps((w), (a), (s))
#define S4_AFF_NAME affine_avx512
#define S4_AFF_TARGET S4_TARGET_AVX512
#define S4_AFF_VW 16
#define S4_AFF_P1 8
#define S4_AFF_PJ 4
#define S4_AFF_J 4
#include "cpu/affine_impl.h"
#endif

s4_affine_fn s4__affine_kernel(s4_isa isa)
{
#if S4_CPU_X86
    if (isa == S4_ISA_AVX512)
        return affine_avx512;
    if (isa == S4_ISA_AVX2)
        return affine_avx2;
#endif
    (void)isa;
    return affine_ref;
}
