/* The S4D convolution kernel of one feature (docs/design.md section 10): per-mode coefficients
 * from the discretization, then the block Vandermonde product (vandermonde.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "kernel/kernel_diag.h"

#include "ssm/diag.h"


/* Regions: lz, w [Nh] and c [rows x Nh] double complex, shift [Nh] double, then the
 * Vandermonde scratch. */
static size_t head_bytes(const s4_vand *v)
{
    const size_t Nh = (size_t)v->Nh;
    return 2 * s4__round_up(Nh * sizeof(double complex), S4_ALIGN) +
           s4__round_up((size_t)v->rows * Nh * sizeof(double complex), S4_ALIGN) +
           s4__round_up(Nh * sizeof(double), S4_ALIGN);
}

size_t s4__kdiag_work_bytes(const s4_vand *v)
{
    const size_t vb = s4__vand_work_bytes(v);
    size_t n;
    return vb && s4__add_size(vb, head_bytes(v), &n) ? n : 0;
}

int s4__kdiag_feature(const s4_vand *v, const s4_ssm *ssm, int h, double rate, float *K,
                      size_t ldk, void *work)
{
    const size_t Nh = (size_t)v->Nh, H = (size_t)ssm->H;
    unsigned char *base = work;
    double complex *lz = (double complex *)(void *)base;
    double complex *w = (double complex *)(void *)(base + s4__round_up(Nh * sizeof *lz, S4_ALIGN));
    double complex *c = w + s4__round_up(Nh * sizeof *w, S4_ALIGN) / sizeof *w;
    double *shift = (double *)(void *)((unsigned char *)c +
                                       s4__round_up((size_t)v->rows * Nh * sizeof *c, S4_ALIGN));
    void *vwork = base + head_bytes(v);

    const bool dss = ssm->cfg.disc == S4_DISC_DSS;
    /* Coefficient of mode n: 2 dB_n (zoh, bilinear: the conjugate pair's 2 Re), or the dss
     * weight (whose kernel takes Re only, as the reference writes it). */
    s4_status st = dss ? s4__diag_dss(ssm, h, rate, v->L, w, lz, shift)
                       : s4__diag_modes(ssm, h, rate, NULL, lz, w);
    if (st != S4_OK)
        return 1;
    const double scale = dss ? 1.0 : 2.0;
    for (int r = 0; r < v->rows; r++) {
        const double complex *Cr = ssm->C + ((size_t)r * H + (size_t)h) * Nh;
        for (size_t n = 0; n < Nh; n++)
            c[(size_t)r * Nh + n] = scale * s4__cmul(Cr[n], w[n]);
    }
    return s4__vand_eval(v, lz, dss ? shift : NULL, c, K + (size_t)h * ldk, H * ldk, vwork)
               ? 0
               : 2;
}
