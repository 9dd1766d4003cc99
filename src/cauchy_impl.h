/* Body of the Cauchy-sum block (see cauchy.h), included once per instruction set by
 * cauchy.c with S4_CAUCHY_NAME and S4_CAUCHY_TARGET defined: one source, every variant.
 * SPDX-License-Identifier: Apache-2.0 */

static S4_CAUCHY_TARGET
void S4_CAUCHY_NAME(int Nh, int nsum, const double *restrict geo, const double *restrict coef,
                    const double *restrict y2, double *restrict gw, double *restrict acc)
{
    enum { B = S4_CAUCHY_BLOCK };
    /* Phase 1: the shared reciprocal g and p g of every (n, node). */
    for (int n = 0; n < Nh; n++) {
        const double a2 = geo[2 * n], c2 = geo[2 * n + 1];
        double *restrict g = gw + (size_t)n * 2 * B, *restrict w = g + B;
        for (int j = 0; j < B; j++) {
            const double p = a2 - y2[j];
            const double gj = 1.0 / (p * p + c2 * y2[j]);
            g[j] = gj;
            w[j] = p * gj;
        }
    }
    /* Phase 2: one sum at a time, its four accumulators held in registers across n. */
    for (int s = 0; s < nsum; s++) {
        double s0[B] = {0}, s1[B] = {0}, s2[B] = {0}, s3[B] = {0};
        const double *restrict k = coef + (size_t)s * Nh * 4;
        for (int n = 0; n < Nh; n++) {
            const double k0 = k[4 * n], k1 = k[4 * n + 1], k2 = k[4 * n + 2], k3 = k[4 * n + 3];
            const double *restrict g = gw + (size_t)n * 2 * B, *restrict w = g + B;
            for (int j = 0; j < B; j++) {
                s0[j] += k0 * g[j];
                s1[j] += k1 * w[j];
                s2[j] += k2 * g[j];
                s3[j] += k3 * w[j];
            }
        }
        double *restrict out = acc + (size_t)s * 4 * B;
        for (int j = 0; j < B; j++) {
            out[j] = s0[j];
            out[B + j] = s1[j];
            out[2 * B + j] = s2[j];
            out[3 * B + j] = s3[j];
        }
    }
}
