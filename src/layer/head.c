/* The head every mode of the layer shares: activation, output linear, final GLU
 * (docs/design.md 4, 8), in column blocks on the dispatcher's kernels.
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/layer.h"
#include "cpu/activation.h"
#include "core/rng.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Columns the head processes at a time: the activation block [Fa x HEAD_BLOCK] and the
 * output linear's block [Flin x HEAD_BLOCK] stay in L2 for H up to a few hundred, and
 * 256 columns keep sgemm at full speed. */
enum { HEAD_BLOCK = 256, FLOAT_ALIGN = 16 /* floats per 64 bytes */ };

/* ---- the head ---------------------------------------------------------------------- */

s4_status s4__head_copy(const s4_head *src, s4_head *dst)
{
    s4_head h = *src;
    h.W = NULL;
    h.b = NULL;
    h.Wp = NULL;
    h.isa = s4__cpu_isa();
    h.affine = s4__affine_kernel(h.isa);
    if (src->Flin > 0) {
        const size_t nW = (size_t)src->Flin * (size_t)src->Fa;
        h.W = s4__alloc(nW, sizeof *h.W);
        h.b = s4__alloc((size_t)src->Flin, sizeof *h.b);
        if (!h.W || !h.b) {
            s4__free(h.W);
            s4__free(h.b);
            return s4__fail(S4_ERR_OUT_OF_MEMORY,
                            "s4__head_copy: out of memory for the output linear [%d x %d]",
                            src->Flin, src->Fa);
        }
        memcpy(h.W, src->W, nW * sizeof *h.W);
        memcpy(h.b, src->b, (size_t)src->Flin * sizeof *h.b);
    }
    *dst = h;
    return S4_OK;
}

s4_status s4__head_pack(s4_head *head)
{
    if (head->Flin == 0)
        return S4_OK;
    const size_t n = s4__affine_packed_floats(head->Flin, head->Fa);
    float *Wp = n ? s4__alloc(n, sizeof *Wp) : NULL;
    if (!Wp)
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "s4__head_pack: out of memory for the packed output linear [%d x %d]",
                        head->Flin, head->Fa);
    s4__affine_pack(head->Flin, head->Fa, head->W, head->b, Wp);
    s4__free(head->Wp);
    head->Wp = Wp;
    return S4_OK;
}

void s4__head_free(s4_head *head)
{
    if (!head)
        return;
    s4__free(head->W);
    s4__free(head->b);
    s4__free(head->Wp);
    head->W = NULL;
    head->b = NULL;
    head->Wp = NULL;
}

/* Scratch layout for a block of nb columns: act [Fa x nb] (padded to 64 bytes), then
 * lin [Flin x nb]. Without an output linear the activation writes straight into `out`. */
static size_t act_floats(const s4_head *head, size_t nb)
{
    const size_t n = (size_t)head->Fa * nb;
    return (n + FLOAT_ALIGN - 1) / FLOAT_ALIGN * FLOAT_ALIGN;
}

size_t s4__head_scratch(const s4_head *head, int64_t ncols)
{
    if (!head || ncols <= 0 || head->Flin == 0)
        return 0;
    const size_t nb = ncols < HEAD_BLOCK ? (size_t)ncols : HEAD_BLOCK;
    return act_floats(head, nb) + (size_t)head->Flin * nb;
}

/* Logistic function without overflow: exp of a non-positive argument only. */
static inline float sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

typedef struct head_rows {
    s4_gelu_row_fn gelu;
    s4_glu_row_fn glu;
} head_rows;

/* The row functions of the head's ISA (cpu/activation.h). */
static head_rows rows_for(s4_isa isa)
{
    return (head_rows){s4__gelu_row(isa), s4__glu_row(isa)};
}

/* The reference's activations (models/s4/s4.py Activation) other than GELU and GLU, which
 * run as rows (cpu/activation.h). The tanh form of GELU uses 1 + tanh(z) = 2 sigmoid(2 z),
 * so that its negative tail keeps its relative accuracy. */
static inline float activate(s4_activation a, float x)
{
    switch (a) {
    case S4_ACT_GELU_TANH: {
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        return x * sigmoid(2.0f * k * (x + 0.044715f * x * x * x));
    }
    case S4_ACT_RELU: return x < 0.0f ? 0.0f : x; /* NaN passes through, as in torch */
    case S4_ACT_SILU: return x * sigmoid(x);
    case S4_ACT_TANH: return tanhf(x);
    case S4_ACT_SIGMOID: return sigmoid(x);
    case S4_ACT_GELU:     /* rows: activation_block */
    case S4_ACT_IDENTITY:
    case S4_ACT_GLU: return x; /* GLU pairs features: handled by the caller */
    }
    return x;
}

/* dst[f * ldd + j] = activation of features f < Fa, columns j0 <= j < j0 + nb of pre. */
static void activation_block(const s4_head *head, const head_rows *vr, const float *pre,
                             int64_t ncols, int64_t j0, size_t nb, float *dst, size_t ldd,
                             size_t f0, size_t f1)
{
    const size_t ld = (size_t)ncols;
    if (ld == nb && ldd == nb && f1 > f0) {
        /* Rows f0 .. f1 - 1 are one run in both arrays: one row call for all of them (the
         * step's head has a column or a few per row; a call per row would cost more than
         * its arithmetic). An output does not depend on its place in a row. */
        nb *= f1 - f0;
        f1 = f0 + 1;
    }
    if (head->activation == S4_ACT_GLU) {
        /* GLU over the flattened feature axis: a[f] * sigmoid(a[f + Fp/2]). */
        const size_t half = (size_t)head->Fa;
        for (size_t f = f0; f < f1; f++) {
            const float *a = pre + f * ld + (size_t)j0, *g = pre + (f + half) * ld + (size_t)j0;
            vr->glu(a, g, dst + f * ldd, nb);
        }
        return;
    }
    const s4_activation act = head->activation;
    for (size_t f = f0; f < f1; f++) {
        const float *a = pre + f * ld + (size_t)j0;
        float *d = dst + f * ldd;
        switch (act) { /* one loop per activation, so each inlines into its own loop */
        case S4_ACT_IDENTITY:
            memcpy(d, a, nb * sizeof *d);
            break;
#define CASE(A)                                                                               \
    case A:                                                                                   \
        for (size_t j = 0; j < nb; j++)                                                       \
            d[j] = activate(A, a[j]);                                                         \
        break;
        case S4_ACT_GELU:
            vr->gelu(a, d, nb);
            break;
            CASE(S4_ACT_GELU_TANH)
            CASE(S4_ACT_RELU)
            CASE(S4_ACT_SILU)
            CASE(S4_ACT_TANH)
            CASE(S4_ACT_SIGMOID)
#undef CASE
        case S4_ACT_GLU:
            break;
        }
    }
}

int64_t s4__head_block_cols(void) { return HEAD_BLOCK; }

void s4__head_apply_range(const s4_head *head, const float *pre, int64_t ncols, int64_t j0,
                          int64_t j1, float *out, float *scratch)
{
    if (j0 < 0)
        j0 = 0;
    if (j1 > ncols)
        j1 = ncols;
    if (j1 <= j0)
        return;
    const head_rows vr = rows_for(head->isa);
    const size_t ld = (size_t)ncols;
    if (head->Flin == 0) {
        activation_block(head, &vr, pre, ncols, j0, (size_t)(j1 - j0), out + j0, ld, 0,
                         (size_t)head->Fa);
        return;
    }
    const size_t Fo = (size_t)head->Fo, Flin = (size_t)head->Flin;
    /* Blocks sit at multiples of HEAD_BLOCK from column 0 whatever the range, so a split of
     * the columns at those multiples computes exactly what one call over all does. */
    for (int64_t jb = j0; jb < j1;) {
        const int64_t je0 = (jb / HEAD_BLOCK + 1) * HEAD_BLOCK, je = je0 < j1 ? je0 : j1;
        const size_t nb = (size_t)(je - jb);
        float *act = scratch, *lin = scratch + act_floats(head, nb);
        activation_block(head, &vr, pre, ncols, jb, nb, act, nb, 0, (size_t)head->Fa);
        /* lin = W act + b: the bias first, then sgemm accumulates (beta = 1). */
        for (size_t o = 0; o < Flin; o++)
            for (size_t j = 0; j < nb; j++)
                lin[o * nb + j] = head->b[o];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Flin, (int)nb, head->Fa,
                    1.0f, head->W, head->Fa, act, (int)nb, 1.0f, lin, (int)nb);
        if (head->final_act == S4_FINAL_GLU) {
            /* y[o] = lin[o] * sigmoid(lin[o + H]). */
            for (size_t o = 0; o < Fo; o++)
                vr.glu(lin + o * nb, lin + (o + Fo) * nb, out + o * ld + (size_t)jb, nb);
        } else {
            for (size_t o = 0; o < Fo; o++)
                memcpy(out + o * ld + (size_t)jb, lin + o * nb, nb * sizeof *out);
        }
        jb = je;
    }
}

void s4__head_apply_split(const s4_head *head, const float *pre, int64_t ncols, float *out,
                          float *scratch, int part, int nparts)
{
    const head_rows vr = rows_for(head->isa);
    const size_t nb = (size_t)ncols, P = (size_t)part, NP = (size_t)nparts;
    const size_t Fa = (size_t)head->Fa, Fo = (size_t)head->Fo, Flin = (size_t)head->Flin;
    if (Flin == 0) {
        activation_block(head, &vr, pre, ncols, 0, nb, out, nb, Fa * P / NP, Fa * (P + 1) / NP);
        return;
    }
    float *act = scratch, *lin = scratch + act_floats(head, nb);
    activation_block(head, &vr, pre, ncols, 0, nb, act, nb, Fa * P / NP, Fa * (P + 1) / NP);
#pragma omp barrier
    /* Output rows o0 .. o1 - 1 need lin rows o (and o + Fo for GLU). */
    const size_t o0 = Fo * P / NP, o1 = Fo * (P + 1) / NP;
    for (size_t r = 0; r < Flin / Fo && o1 > o0; r++) {
        const size_t r0 = r * Fo + o0;
        head->affine(head->Fa, head->Wp, (int)r0, (int)(r0 + o1 - o0), act, nb, (int)nb,
                     lin + r0 * nb, nb);
    }
    /* Rows o0 .. o1 - 1 of lin and out are one run each (leading dimension nb). */
    if (head->final_act == S4_FINAL_GLU)
        vr.glu(lin + o0 * nb, lin + (o0 + Fo) * nb, out + o0 * nb, (o1 - o0) * nb);
    else
        memcpy(out + o0 * nb, lin + o0 * nb, (o1 - o0) * nb * sizeof *out);
}

void s4__head_apply(const s4_head *head, const float *pre, int64_t ncols, float *out,
                    float *scratch)
{
    s4__head_apply_range(head, pre, ncols, 0, ncols, out, scratch);
}
