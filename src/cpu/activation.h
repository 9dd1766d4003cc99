/* GELU and GLU over rows of floats, the hot part of every mode's head (docs/layer.md).
 *
 * Written on explicit vectors of the ISA's width (GCC vector extensions, no libm), so that
 * no compiler can decline to vectorise them: GCC keeps the scalar form's selects scalar on
 * AVX2 under the default FP semantics, since only AVX-512 masks let it if-convert them.
 * Both compute in double and round once to float (about 1.5 float ulps; docs/layer.md):
 *   gelu(x)   = 0.5 x erfc(-x / sqrt2), erfc by the Chebyshev fit of Numerical Recipes 6.2
 *               (fractional error below 1.2e-7 for every argument, the negative tail
 *               included)
 *   glu(a, g) = a sigmoid(g), with exp of a non-positive argument only.
 * A row's tail runs through the same vector code as its body, so an output depends only on
 * its input, never on its place in the row or the row's length.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CPU_ACTIVATION_H
#define S4_CPU_ACTIVATION_H

#include "cpu/cpu.h"

#include <stddef.h>

typedef void (*s4_gelu_row_fn)(const float *restrict a, float *restrict d, size_t n);
typedef void (*s4_glu_row_fn)(const float *restrict a, const float *restrict g,
                              float *restrict d, size_t n);

/* The rows of `isa` (which the CPU must run). */
s4_gelu_row_fn s4__gelu_row(s4_isa isa);
s4_glu_row_fn s4__glu_row(s4_isa isa);

#endif
