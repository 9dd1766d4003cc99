/* The S4D convolution kernel of one feature (docs/design.md section 10), for kernel.c's plans.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_KERNEL_DIAG_H
#define S4_KERNEL_DIAG_H

#include "ssm/ssm.h"
#include "kernel/vandermonde.h"

/* Bytes of one feature's scratch (64-byte aligned regions), 0 on overflow. */
size_t s4__kdiag_work_bytes(const s4_vand *v);

/* K[r][l] of feature h, rows r < C'' at row stride H ldk, l < v->L, at dt * rate:
 * zoh/bilinear 2 Re sum_n C_rn dB_n dA_n^l, dss the reference's formula. work 64-byte
 * aligned. 0 on success; 1 if the discretization is not finite, 2 if a kernel value would
 * overflow float (the thread's error message is not set: workers run on OpenMP threads). */
int s4__kdiag_feature(const s4_vand *v, const s4_ssm *ssm, int h, double rate, float *K,
                      size_t ldk, void *work);

#endif
