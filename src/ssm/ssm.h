/* The SSM parameter bank's layout, shared by ssm.c, discretize.c and the kernel.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_SSM_INTERNAL_H
#define S4_SSM_INTERNAL_H

#include "core/internal.h"

struct s4_ssm {
    s4_ssm_config cfg; /* n_ssm resolved to S */
    int H, N, Nh, rank, S;
    int Cp;            /* C': rows of D */
    int rows;          /* C'' = C' * (1 + bidirectional): rows of C and of the kernel */
    int64_t l_kernel;  /* 0: C is raw; else C holds C-tilde for this length */

    /* Stored form (docs/design.md section 4), exactly as given or generated. */
    double *inv_dt;          /* [H] */
    double *A_real, *A_imag; /* [S x Nh] */
    double complex *B;       /* [S x Nh] */
    double complex *P;       /* [rank x S x Nh] */
    double complex *C;       /* [rows x H x Nh] */
    double *D;               /* [Cp x H] */

    /* Derived: transforms applied. */
    double *dt;              /* [H] */
    double complex *Lambda;  /* [S x Nh] */
};

/* Copy index of feature h (the reference tiles S copies over H features). */
static inline int s4__copy_of(const s4_ssm *ssm, int h) { return h % ssm->S; }

/* Dense bilinear system of feature h in the conjugate-extended basis (docs/design.md 5-6),
 * rate multiplies dt. dA [N x N] row-major, dB [N]; either may be NULL. */
s4_status s4__discretize(const s4_ssm *ssm, int h, double rate, double complex *dA,
                         double complex *dB);

/* M = dA^e by repeated squaring (double), dA and M [N x N]; scratch 2 N^2. */
s4_status s4__matrix_power(int N, const double complex *dA, int64_t e, double complex *M,
                           double complex *scratch);

/* Raw C rows of feature h, [rows x Nh]: a copy when C is raw, else solves
 * (I - dA^Lk)^T C_f = C-tilde_f (docs/design.md section 7.1). */
s4_status s4__raw_C_feature(const s4_ssm *ssm, int h, double complex *C);

/* Applies a positive-parameter transform (reference `param_transform`). */
double s4__transform(s4_transform t, double x);

#endif
