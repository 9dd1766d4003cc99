/* Discretization of a diagonal (S4D) bank, mode by mode (docs/design.md section 10; the
 * reference's SSMKernelDiag `_setup_step` and `forward`).
 * SPDX-License-Identifier: Apache-2.0 */
#include "ssm/diag.h"

#include <math.h>

/* expm1(z) / z for complex z, accurate near 0 where (exp(z) - 1) / z is 0/0: zoh's
 * dB = (exp(dt Lambda) - 1) / Lambda B = dt phi(dt Lambda) B stays exact for |dt Lambda|
 * down to the smallest doubles, and a Lambda of exactly 0 gives dB = dt B. */
static double complex phi1(double complex z)
{
    const double x = creal(z), y = cimag(z);
    if (fabs(x) + fabs(y) < 1e-5) /* Taylor: 1 + z/2 + z^2/6 + z^3/24, error < 1e-21 */
        return 1.0 + z * (0.5 + z * (1.0 / 6.0 + z / 24.0));
    /* Re expm1(x + iy) = expm1(x) cos y - 2 sin^2(y/2), Im = e^x sin y: no cancellation. */
    const double s = sin(0.5 * y);
    const double complex e = CMPLX(expm1(x) * cos(y) - 2.0 * s * s, exp(x) * sin(y));
    return e / z;
}

s4_status s4__diag_modes(const s4_ssm *s, int h, double rate, double complex *dA,
                         double complex *logdA, double complex *dB)
{
    const int Nh = s->Nh, k = s4__copy_of(s, h);
    const double dt = s->dt[h] * rate;
    const double complex *Lam = s->Lambda + (size_t)k * Nh;
    const double complex *B = s->B + (size_t)k * Nh;
    for (int n = 0; n < Nh; n++) {
        const double complex dtA = dt * Lam[n];
        double complex a, la, b;
        if (s->cfg.disc == S4_DISC_BILINEAR) {
            /* dA = (1 + dtA/2) / (1 - dtA/2), dB = dt B / (1 - dtA/2). */
            const double complex den = 1.0 - 0.5 * dtA;
            if (creal(den) == 0.0 && cimag(den) == 0.0)
                return s4__fail(S4_ERR_NUMERICAL,
                                "feature %d, mode %d: dt Lambda = %g%+gi makes the bilinear "
                                "transform singular (1 - dt Lambda / 2 = 0)",
                                h, n, creal(dtA), cimag(dtA));
            a = (1.0 + 0.5 * dtA) / den;
            la = clog(a);
            b = dt * B[n] / den;
        } else {
            /* zoh (and dss, whose powers are the same exponentials). */
            a = cexp(dtA);
            la = dtA;
            b = dt * phi1(dtA) * B[n];
        }
        if (!isfinite(creal(a)) || !isfinite(cimag(a)) || !isfinite(creal(la)) ||
            !isfinite(cimag(la)) || !isfinite(creal(b)) || !isfinite(cimag(b)))
            return s4__fail(S4_ERR_NUMERICAL,
                            "feature %d, mode %d: dt Lambda = %g%+gi gives a non-finite "
                            "discretization",
                            h, n, creal(dtA), cimag(dtA));
        if (dA)
            dA[n] = a;
        if (logdA)
            logdA[n] = la;
        if (dB)
            dB[n] = b;
    }
    return S4_OK;
}

s4_status s4__diag_dss(const s4_ssm *s, int h, double rate, int64_t L, double complex *w,
                       double complex *logz, double *shift)
{
    const int Nh = s->Nh, k = s4__copy_of(s, h);
    const double dt = s->dt[h] * rate;
    const double complex *Lam = s->Lambda + (size_t)k * Nh;
    const double complex *B = s->B + (size_t)k * Nh;
    for (int n = 0; n < Nh; n++) {
        const double complex A = Lam[n], dtA = dt * A;
        /* A growing mode (Re A > 0) is evaluated from the far end: exp(dtA (l - (L-1))),
         * with num and den of the decaying mode -dtA. */
        const bool grow = creal(A) > 0.0;
        const double complex dneg = grow ? -dtA : dtA;
        const double complex num = cexp(dneg) - 1.0;
        const double complex den = cexp(dneg * (double)L) - 1.0;
        /* The reference's regularised reciprocal r = conj(x) / (x conj(x) + 1e-7), x = den A,
         * kept as it writes it (docs/design.md 10). */
        const double complex x = den * A;
        const double complex r = conj(x) / (creal(x) * creal(x) + cimag(x) * cimag(x) + 1e-7);
        w[n] = B[n] * num * r;
        logz[n] = dtA;
        shift[n] = grow ? (double)(L - 1) : 0.0;
        if (!isfinite(creal(w[n])) || !isfinite(cimag(w[n])))
            return s4__fail(S4_ERR_NUMERICAL,
                            "feature %d, mode %d: dt Lambda = %g%+gi gives a non-finite dss "
                            "coefficient",
                            h, n, creal(dtA), cimag(dtA));
    }
    return S4_OK;
}
