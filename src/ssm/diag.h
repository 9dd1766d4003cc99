/* Diagonal (S4D) banks: per-mode discretization (docs/design.md section 10).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_DIAG_H
#define S4_DIAG_H

#include "ssm/ssm.h"

/* Modes n < N/2 of feature h at dt * rate by the bank's disc: dA_n, log dA_n (the
 * exponent of the Vandermonde powers dA_n^l = exp(l log dA_n)) and dB_n; any output may be
 * NULL. zoh: dA = exp(dt Lambda), dB = (dA - 1) / Lambda B; bilinear: dA = (1 + dt
 * Lambda/2) / (1 - dt Lambda/2), dB = dt B / (1 - dt Lambda/2). dss uses zoh's exponent
 * (and has no step, so its dA, dB serve nothing else). S4_ERR_NUMERICAL, message set, when
 * a value is not finite. */
s4_status s4__diag_modes(const s4_ssm *ssm, int h, double rate, double complex *dA,
                         double complex *logdA, double complex *dB);

/* The reference's dss kernel of length L (SSMKernelDiag.forward, disc='dss'), per mode:
 *   K[l] = Re sum_n C_n w_n exp(logz_n (l - shift_n)),
 * w_n = B_n num_n r_n with the reference's regularised reciprocal, shift_n = L - 1 for a
 * growing mode (Re Lambda > 0, evaluated from the far end) and 0 otherwise. */
s4_status s4__diag_dss(const s4_ssm *ssm, int h, double rate, int64_t L, double complex *w,
                       double complex *logz, double *shift);

#endif
