/* Dense HiPPO matrices A, B and their low-rank corrections P (docs/design.md section 2).
 *
 * Each formula is evaluated in the operation order of the reference (state-spaces/s4,
 * `transition` and `rank_correction`), so the results agree with the golden data to the
 * last bit or two; only the FouT correction differs, because the reference builds it in
 * float32 (tests/data/README.md) and libs4 keeps it in double.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <math.h>


int s4_measure_rank(s4_measure measure)
{
    switch (measure) {
    case S4_MEASURE_LEGS: return 1;
    case S4_MEASURE_LEGT: return 2;
    case S4_MEASURE_LAGT: return 1;
    case S4_MEASURE_FOUT: return 1;
    }
    return -1;
}

int s4__init_rank(s4_init init)
{
    switch (init) {
    case S4_INIT_LEGS: return s4_measure_rank(S4_MEASURE_LEGS);
    case S4_INIT_LEGT: return s4_measure_rank(S4_MEASURE_LEGT);
    case S4_INIT_LAGT: return s4_measure_rank(S4_MEASURE_LAGT);
    case S4_INIT_FOUT: return s4_measure_rank(S4_MEASURE_FOUT);
    case S4_INIT_HIPPO: /* legs and fourier copies: both rank 1 */
        return s4_measure_rank(S4_MEASURE_LEGS);
    case S4_INIT_DIAG_LIN:
    case S4_INIT_DIAG_INV:
    case S4_INIT_DIAG_REAL:
    case S4_INIT_DIAG:
    case S4_INIT_DIAG_INV2:
    case S4_INIT_DIAG_QUAD: /* diagonal: P = 0 (any rank in DPLR mode, none in S4D) */
        return 0;
    }
    return -1;
}

/* FouT's b = [1, 0, sqrt2, 0, sqrt2, 0, ...]: B, the rank-1 correction, and the vector
 * whose outer product is subtracted from the rotation generator. */
static double fout_b(int n)
{
    if (n == 0)
        return 1.0;
    return (n % 2 == 0) ? sqrt(2.0) : 0.0;
}

/* A [N x N] row-major (docs/design.md section 2). */
static void fill_A(s4_measure measure, int N, double *A)
{
    for (int n = 0; n < N; n++) {
        double *row = A + (size_t)n * (size_t)N;
        for (int k = 0; k < N; k++) {
            double a = 0.0;
            switch (measure) {
            case S4_MEASURE_LEGS:
                /* T M T^-1, T = diag(sqrt(2n+1)), M[n][k] = -(2k+1) below the diagonal and
                 * -(n+1) on it: -sqrt((2n+1)(2k+1)) and -(n+1), rounded as the reference
                 * rounds them (bit-identical to its float64 A). */
                if (n >= k) {
                    const double m = n > k ? -(2.0 * k + 1.0) : -(double)(n + 1);
                    a = (sqrt(2.0 * n + 1.0) * m) * (1.0 / sqrt(2.0 * k + 1.0));
                }
                break;
            case S4_MEASURE_LEGT: {
                /* -1/2 R[n] s R[k], s = 1 on and below the diagonal, (-1)^(n-k) above. */
                const double s = (n >= k || (k - n) % 2 == 0) ? 1.0 : -1.0;
                a = -0.5 * ((sqrt(2.0 * n + 1.0) * s) * sqrt(2.0 * k + 1.0));
                break;
            }
            case S4_MEASURE_LAGT:
                /* I/2 - tril(ones), beta = 1. */
                a = (n == k ? 0.5 : 0.0) - (n >= k ? 1.0 : 0.0);
                break;
            case S4_MEASURE_FOUT: {
                /* Rotation generator pi k on each 2 x 2 block (k, the block's frequency),
                 * minus b b^T (the other endpoint u(t - 1)). */
                double rot = 0.0;
                if (n % 2 == 0 && k == n + 1)
                    rot = -(S4_PI * (double)(n / 2));
                else if (n % 2 == 1 && k == n - 1)
                    rot = S4_PI * (double)(k / 2);
                a = rot - fout_b(n) * fout_b(k);
                break;
            }
            }
            row[k] = a;
        }
    }
}

static double B_entry(s4_measure measure, int n)
{
    switch (measure) {
    case S4_MEASURE_LEGS: return sqrt(2.0 * n + 1.0);
    case S4_MEASURE_LEGT: return 0.5 * sqrt(2.0 * n + 1.0);
    case S4_MEASURE_LAGT: return 1.0;
    case S4_MEASURE_FOUT: return fout_b(n);
    }
    return 0.0;
}

/* Row j of the natural correction (j < natural rank), entry n. */
static double P_entry(s4_measure measure, int j, int n)
{
    switch (measure) {
    case S4_MEASURE_LEGS: return sqrt(0.5 + n);
    case S4_MEASURE_LEGT:
        /* P0 lives on odd n, P1 on even n, both sqrt(2n+1) halved like A (times 2^-1/2). */
        if (n % 2 != (j == 0 ? 1 : 0))
            return 0.0;
        return sqrt(1.0 + 2.0 * n) * S4_SQRT1_2;
    case S4_MEASURE_LAGT: return S4_SQRT1_2;
    case S4_MEASURE_FOUT: return fout_b(n);
    }
    return 0.0;
}

s4_status s4_hippo(s4_measure measure, int N, int rank, double *A, double *B, double *P)
{
    static const char fn[] = "s4_hippo";
    const int natural = s4_measure_rank(measure);
    if (natural < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: measure = %d is not an s4_measure", fn,
                        (int)measure);
    if (N < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: N = %d must be >= 1", fn, N);
    if (measure == S4_MEASURE_FOUT && N % 2 != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: N = %d must be even for FouT", fn, N);
    /* Ranks above the natural one pad P with zero rows (the reference allows any). */
    if (rank < natural || rank > S4_MAX_RANK)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: rank = %d must be in [%d, %d] (the measure's natural rank up to "
                        "S4_MAX_RANK)",
                        fn, rank, natural, S4_MAX_RANK);
    /* The caller's arrays must be addressable: refuse sizes that overflow size_t. */
    size_t bytes;
    if (A && !(s4__mul_size((size_t)N, (size_t)N, &bytes) &&
               s4__mul_size(bytes, sizeof(double), &bytes)))
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: N = %d: A [N x N] overflows size_t", fn, N);
    if (P && !(s4__mul_size((size_t)rank, (size_t)N, &bytes) &&
               s4__mul_size(bytes, sizeof(double), &bytes)))
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: rank = %d, N = %d: P overflows size_t", fn,
                        rank, N);

    if (A)
        fill_A(measure, N, A);
    if (B)
        for (int n = 0; n < N; n++)
            B[n] = B_entry(measure, n);
    if (P) {
        for (int j = 0; j < rank; j++) {
            double *row = P + (size_t)j * (size_t)N;
            for (int n = 0; n < N; n++)
                row[n] = j < natural ? P_entry(measure, j, n) : 0.0; /* zero padding */
        }
    }
    return S4_OK;
}
