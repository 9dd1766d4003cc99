/* Bilinear discretization internals (docs/design.md section 6).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_DISCRETIZE_H
#define S4_DISCRETIZE_H

#include "ssm/ssm.h"

enum { S4_LINEAR_MAX_RANK = 64 };

/* The O(N) NPLR step of one feature on the stored half state (caller-allocated arrays):
 * x' = Dg (w - P (R_f w_f)), w = E x - P (Q_f^T x_f) + 2 B u. */
typedef struct s4_linear_step {
    int Nh, rank;
    double complex *Dg; /* [Nh]  (2/dt - Lambda)^-1 */
    double complex *E;  /* [Nh]  2/dt + Lambda */
    double complex *B;  /* [Nh] */
    double complex *P;  /* [rank x Nh] */
    double complex *Q;  /* [rank x Nh] conj(P) */
    double complex *R;  /* [rank x Nh] (I + Q_f^T D_f P_f)^-1 Q^T D */
} s4_linear_step;

/* Fills the step form of feature h (arrays of `out` must be allocated), rate scales dt. */
s4_status s4__linear_setup(const s4_ssm *ssm, int h, double rate, s4_linear_step *out);

/* One step x_out = dA x + dB u on the half state; x and x_out must not alias. */
void s4__linear_step(const s4_linear_step *p, const double complex *x, double u,
                     double complex *x_out);

#endif
