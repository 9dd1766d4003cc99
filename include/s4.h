/*
 * libs4: S4 structured state-space sequence layers in C.
 *
 * The public API, in parts by layer (include/s4/: core, ssm, kernel, conv, layer, model,
 * io; each includes what it builds on). Conventions (see README.md for an overview):
 *   - Every call that can fail returns an s4_status; on failure the thread's last
 *     error message (s4_last_error) names the offending argument, and the caller's
 *     objects and output arrays are left exactly as they were.
 *   - Complex numbers are two adjacent reals, real part first (the layout of C99
 *     `double complex`, of fftw_complex and of PyTorch's view_as_real).
 *   - Arrays are caller-owned, row-major (C order); shapes are documented as
 *     [dim0 x dim1 x ...] in the prototypes, complex arrays with a trailing x 2.
 *   - Expensive work (LAPACK, discretization, FFTW planning, allocation) happens in
 *     *_create calls; *_execute calls never allocate and are the only calls that may
 *     run concurrently on one plan, each thread with its own workspace.
 *
 * Notation follows the S4 paper and docs/design.md (in the repository): H features (d_model),
 * N state size (N/2 stored conjugate-pair halves), r low-rank rank, S trainable copies,
 * L sequence length, Lk the kernel's internal length (`l_kernel`).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef S4_H
#define S4_H

#include "s4/core.h"
#include "s4/ssm.h"
#include "s4/kernel.h"
#include "s4/conv.h"
#include "s4/layer.h"
#include "s4/model.h"
#include "s4/io.h"

#endif /* S4_H */
