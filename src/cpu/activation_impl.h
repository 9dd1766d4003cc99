/* Body of one ISA's GELU and GLU rows (activation.h), included by activation.c with
 *   S4_ACT_SFX     the functions' suffix
 *   S4_ACT_TARGET  their target attribute
 *   S4_ACT_VW      doubles per vector
 *   S4_ACT_MAX(a, b), S4_ACT_SELGE0(z, a, b)   max(a, b) (a NaN a kept) and z >= 0 ? a : b,
 *                  lane by lane: one instruction each where the ISA has it (a generic
 *                  and/or select costs three, and GELU is a fifth of a forward)
 * and undefines them all at its end.
 * SPDX-License-Identifier: Apache-2.0 */

#define S4_ACT_CAT_(a, b) a##b
#define S4_ACT_CAT(a, b) S4_ACT_CAT_(a, b)
#define VD S4_ACT_CAT(s4_act_vd_, S4_ACT_SFX)
#define VI S4_ACT_CAT(s4_act_vi_, S4_ACT_SFX)
#define VF S4_ACT_CAT(s4_act_vf_, S4_ACT_SFX)
#define EXP_D S4_ACT_CAT(exp_d_, S4_ACT_SFX)
#define GELU_V S4_ACT_CAT(gelu_v_, S4_ACT_SFX)
#define GLU_V S4_ACT_CAT(glu_v_, S4_ACT_SFX)

typedef double VD __attribute__((vector_size(S4_ACT_VW * 8)));
typedef long long VI __attribute__((vector_size(S4_ACT_VW * 8)));
typedef float VF __attribute__((vector_size(S4_ACT_VW * 4)));

/* |a|: the sign bit cleared. */
static S4_ACT_TARGET inline __attribute__((always_inline)) VD S4_ACT_CAT(vabs_, S4_ACT_SFX)(VD a)
{
    return (VD)((VI)a & ((VI){0} + 0x7fffffffffffffffLL));
}

/* exp(a) for a <= 700 in double to ~1e-15 relative; below -700 it returns exp(-700)
 * (~1e-304, zero once rounded to float); NaN propagates. Cody-Waite reduction
 * a = k ln2 + r, |r| <= ln2 / 2, Taylor polynomial of degree 11, 2^k built in the
 * exponent bits (k in [-1010, 1010], always a normal double). */
static S4_ACT_TARGET inline __attribute__((always_inline)) VD EXP_D(VD a)
{
    a = S4_ACT_MAX(a, (VD){0} - 700.0);
    const double shift = 0x1.8p52; /* adding it rounds to an integer in the low bits */
    const VD kd = a * 0x1.71547652b82fep0 + shift;
    const VD k = kd - shift;
    const VD r = (a - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33;
    VD p = r * (1.0 / 39916800.0) + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const VI bits = ((VI)kd << 52) + ((long long)1023 << 52); /* low bits of kd: 2^51 + k */
    return p * (VD)bits;
}

static S4_ACT_TARGET inline __attribute__((always_inline)) VF GELU_V(VF xf)
{
    const VD x = __builtin_convertvector(xf, VD), z = -x * S4_SQRT1_2;
    const VD az = S4_ACT_CAT(vabs_, S4_ACT_SFX)(z);
    const VD t = 1.0 / (1.0 + 0.5 * az);
    VD q = t * 0.17087277 - 0.82215223;
    q = q * t + 1.48851587;
    q = q * t - 1.13520398;
    q = q * t + 0.27886807;
    q = q * t - 0.18628806;
    q = q * t + 0.09678418;
    q = q * t + 0.37409196;
    q = q * t + 1.00002368;
    q = q * t - 1.26551223;
    const VD e = t * EXP_D(q - az * az);
    const VD erfc = S4_ACT_SELGE0(z, e, 2.0 - e);
    return __builtin_convertvector(0.5 * x * erfc, VF);
}

static S4_ACT_TARGET inline __attribute__((always_inline)) VF GLU_V(VF af, VF gf)
{
    const VD g = __builtin_convertvector(gf, VD);
    const VD ag = S4_ACT_CAT(vabs_, S4_ACT_SFX)(g);
    const VD e = EXP_D(-ag), s = 1.0 / (1.0 + e);
    return __builtin_convertvector(__builtin_convertvector(af, VD) * S4_ACT_SELGE0(g, s, e * s),
                                   VF);
}

static S4_ACT_TARGET void S4_ACT_CAT(gelu_row_, S4_ACT_SFX)(const float *restrict a,
                                                            float *restrict d, size_t n)
{
    size_t j = 0;
    VF x, y;
    /* Two vectors per pass: each is one long dependency chain (two polynomials and a
     * division), so two independent ones give the out-of-order core more to overlap. */
    for (; j + 2 * S4_ACT_VW <= n; j += 2 * S4_ACT_VW) {
        VF x1, y1;
        memcpy(&x, a + j, sizeof x);
        memcpy(&x1, a + j + S4_ACT_VW, sizeof x1);
        y = GELU_V(x);
        y1 = GELU_V(x1);
        memcpy(d + j, &y, sizeof y);
        memcpy(d + j + S4_ACT_VW, &y1, sizeof y1);
    }
    for (; j + S4_ACT_VW <= n; j += S4_ACT_VW) {
        memcpy(&x, a + j, sizeof x);
        y = GELU_V(x);
        memcpy(d + j, &y, sizeof y);
    }
    if (j < n) {
        memset(&x, 0, sizeof x);
        memcpy(&x, a + j, (n - j) * sizeof *a);
        y = GELU_V(x);
        memcpy(d + j, &y, (n - j) * sizeof *d);
    }
}

static S4_ACT_TARGET void S4_ACT_CAT(glu_row_, S4_ACT_SFX)(const float *restrict a,
                                                           const float *restrict g,
                                                           float *restrict d, size_t n)
{
    size_t j = 0;
    VF x, h, y;
    for (; j + 2 * S4_ACT_VW <= n; j += 2 * S4_ACT_VW) {
        VF x1, h1, y1;
        memcpy(&x, a + j, sizeof x);
        memcpy(&h, g + j, sizeof h);
        memcpy(&x1, a + j + S4_ACT_VW, sizeof x1);
        memcpy(&h1, g + j + S4_ACT_VW, sizeof h1);
        y = GLU_V(x, h);
        y1 = GLU_V(x1, h1);
        memcpy(d + j, &y, sizeof y);
        memcpy(d + j + S4_ACT_VW, &y1, sizeof y1);
    }
    for (; j + S4_ACT_VW <= n; j += S4_ACT_VW) {
        memcpy(&x, a + j, sizeof x);
        memcpy(&h, g + j, sizeof h);
        y = GLU_V(x, h);
        memcpy(d + j, &y, sizeof y);
    }
    if (j < n) {
        memset(&x, 0, sizeof x);
        memset(&h, 0, sizeof h);
        memcpy(&x, a + j, (n - j) * sizeof *a);
        memcpy(&h, g + j, (n - j) * sizeof *g);
        y = GLU_V(x, h);
        memcpy(d + j, &y, (n - j) * sizeof *d);
    }
}

#undef VD
#undef VI
#undef VF
#undef EXP_D
#undef GELU_V
#undef GLU_V
#undef S4_ACT_SFX
#undef S4_ACT_TARGET
#undef S4_ACT_VW
#undef S4_ACT_MAX
#undef S4_ACT_SELGE0
