/* Block Vandermonde evaluation (see vandermonde.h): exact block-start exponentials, an
 * in-block power table, and a float matrix product per block row group.
 * SPDX-License-Identifier: Apache-2.0 */
#include "kernel/vandermonde.h"

#include "cpu/cpu.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define S4_VAND_NAME vand_tile_ref
#define S4_VAND_TARGET
#define S4_VAND_VB 16
#include "kernel/vandermonde_impl.h"
#undef S4_VAND_NAME
#undef S4_VAND_TARGET
#undef S4_VAND_VB

#if S4_CPU_X86
#define S4_VAND_NAME vand_tile_avx2
#define S4_VAND_TARGET __attribute__((target("avx2,fma")))
#define S4_VAND_VB 32
#include "kernel/vandermonde_impl.h"
#undef S4_VAND_NAME
#undef S4_VAND_TARGET
#undef S4_VAND_VB

#define S4_VAND_NAME vand_tile_avx512
#define S4_VAND_TARGET __attribute__((target("avx512f,avx2,fma")))
#define S4_VAND_VB 64
#include "kernel/vandermonde_impl.h"
#undef S4_VAND_NAME
#undef S4_VAND_TARGET
#undef S4_VAND_VB
#endif

s4_vand_tile_fn s4__vand_tile(s4_isa isa)
{
#if S4_CPU_X86
    if (isa == S4_ISA_AVX512)
        return vand_tile_avx512;
    if (isa == S4_ISA_AVX2)
        return vand_tile_avx2;
#endif
    (void)isa;
    return vand_tile_ref;
}


/* Flush-to-zero thresholds. Arithmetic on subnormal floats takes microcode assists on x86
 * (tens to hundreds of cycles each; not measured here), so no product of a table entry
 * (|Z| <= 1, kept when >= 2^-60) and a block factor (kept when >= 2^-40 of the largest
 * coefficient and >= 2^-60) may be subnormal: both are >= 2^-120 > FLT_MIN = 2^-126. A
 * dropped term is 2^-40 below the largest coefficient, far below float resolution. */
#define FLUSH_Z 0x1p-60
#define FLUSH_W_REL 0x1p-40
#define FLUSH_W_ABS 0x1p-60

void s4__vand_init(s4_vand *v, int Nh, int rows, int64_t L)
{
    v->Nh = Nh;
    v->rows = rows;
    v->L = L;
    /* T ~ sqrt(L) balances the block-start work (L/T per mode and row) against the table
     * (T per mode); 32 <= T <= 1024 keeps the table (N x T floats) in L2. */
    int64_t T = (int64_t)ceil(sqrt((double)L));
    T = (T + S4_VAND_JB - 1) / S4_VAND_JB * S4_VAND_JB;
    T = T < S4_VAND_JB ? S4_VAND_JB : T > 1024 ? 1024 : T;
    v->T = (int)T;
    v->nb = (L + T - 1) / T;
    v->tile = s4__vand_tile(s4__cpu_isa());
}

/* Regions: Z [KD x T] floats, W [RB groups padded: rows x nb rounded up to RB, x KD]
 * floats, a tile's spill [RB x T] floats, e [max(nb, T)] double complex powers. */
typedef struct vwork {
    float *Z, *W, *spill;
    double complex *e;
} vwork;

static size_t carve(const s4_vand *v, unsigned char *base, vwork *w)
{
    const size_t KD = 2 * (size_t)v->Nh, T = (size_t)v->T, nb = (size_t)v->nb;
    size_t wrows = 0;
    s4_carver c = {base, 0, true};
    c.ok = s4__mul_size((size_t)v->rows, nb, &wrows) && s4__add_size(wrows, S4_VAND_RB, &wrows);
#define REGION(field, type, count)                                                            \
    do {                                                                                      \
        type *r_ = s4__carve(&c, (count), sizeof(type));                                      \
        if (w)                                                                                \
            w->field = r_;                                                                    \
    } while (0)
    REGION(Z, float, KD * T);
    REGION(W, float, c.ok ? wrows * KD : 0);
    REGION(spill, float, (size_t)S4_VAND_RB * T);
    REGION(e, double complex, nb > T ? nb : T);
#undef REGION
    return c.ok ? c.off : 0;
}

size_t s4__vand_work_bytes(const s4_vand *v) { return carve(v, NULL, NULL); }

/* exp(z) without Annex G's special-case handling: arguments here are finite. */
static inline double complex cexp_fast(double complex z)
{
    const double m = exp(creal(z));
    return CMPLX(m * cos(cimag(z)), m * sin(cimag(z)));
}

static inline float flush(double x, double tiny)
{
    return fabs(x) < tiny ? 0.0f : (float)x;
}

/* x[i] = exp(lz (a + i step)) for i < n: exact every S4_VAND_ANCHOR entries, products of
 * the exact ratio exp(lz step) in between. */
static void powers(double complex lz, double a, double step, size_t n, double complex *x)
{
    const double complex ratio = cexp_fast(lz * step);
    for (size_t i = 0; i < n; i++)
        x[i] = i % S4_VAND_ANCHOR == 0 ? cexp_fast(lz * (a + (double)i * step))
                                       : s4__cmul(x[i - 1], ratio);
}

bool s4__vand_eval(const s4_vand *v, const double complex *lz, const double *shift,
                   const double complex *c, float *K, size_t ldk, void *work)
{
    const int Nh = v->Nh, KD = 2 * Nh, T = v->T, rows = v->rows;
    const int64_t nb = v->nb, L = v->L;
    vwork w = {0};
    carve(v, work, &w);

    double cmax = 0.0;
    for (size_t i = 0; i < (size_t)rows * (size_t)Nh; i++)
        cmax = fmax(cmax, cabs(c[i]));
    const double tiny = fmax(cmax * FLUSH_W_REL, FLUSH_W_ABS);

    /* Z[n][j] = Re, Z[Nh + n][j] = Im of exp(lz_n (j - g_n (T-1))), |.| <= 1 for both
     * kinds of mode (up to the rounding of a neutral one). */
    for (int n = 0; n < Nh; n++) {
        const double g = creal(lz[n]) > 0.0 ? (double)(T - 1) : 0.0;
        powers(lz[n], -g, 1.0, (size_t)T, w.e);
        for (int j = 0; j < T; j++) {
            w.Z[(size_t)n * T + j] = flush(creal(w.e[j]), FLUSH_Z);
            w.Z[(size_t)(Nh + n) * T + j] = flush(cimag(w.e[j]), FLUSH_Z);
        }
    }
    /* W[r][b] = [Re q, -Im q] with q = c_rn exp(lz_n (bT + g_n (T-1) - s_n)). */
    for (int n = 0; n < Nh; n++) {
        const double g = creal(lz[n]) > 0.0 ? (double)(T - 1) : 0.0;
        const double s = shift ? shift[n] : 0.0;
        powers(lz[n], g - s, (double)T, (size_t)nb, w.e);
        for (int r = 0; r < rows; r++) {
            const double complex cr = c[(size_t)r * Nh + n];
            float *Wr = w.W + (size_t)r * (size_t)nb * KD;
            for (int64_t b = 0; b < nb; b++) {
                const double complex q = s4__cmul(cr, w.e[b]);
                /* Sums of N such terms must stay finite in float. */
                if (!(fabs(creal(q)) + fabs(cimag(q)) <= FLT_MAX / (4.0 * KD)))
                    return false;
                Wr[(size_t)b * KD + n] = flush(creal(q), tiny);
                Wr[(size_t)b * KD + Nh + n] = flush(-cimag(q), tiny);
            }
        }
    }
    memset(w.W + (size_t)rows * (size_t)nb * KD, 0, (size_t)S4_VAND_RB * KD * sizeof(float));

    /* Tiles of RB consecutive blocks of one row: straight into K when all RB rows are whole
     * blocks of that row, else through the spill buffer. */
    for (int r = 0; r < rows; r++) {
        const float *Wr = w.W + (size_t)r * (size_t)nb * KD;
        float *Kr = K + (size_t)r * ldk;
        for (int64_t b0 = 0; b0 < nb; b0 += S4_VAND_RB) {
            const int64_t l0 = b0 * T;
            const int64_t end = l0 + (int64_t)S4_VAND_RB * T;
            if (end <= L) {
                v->tile(KD, T, Wr + (size_t)b0 * KD, w.Z, Kr + l0, (size_t)T);
            } else {
                /* Rows past this row's last block read the zero rows that follow W (or the
                 * next row's, whose results are dropped). */
                v->tile(KD, T, Wr + (size_t)b0 * KD, w.Z, w.spill, (size_t)T);
                memcpy(Kr + l0, w.spill, (size_t)(L - l0) * sizeof *Kr);
            }
        }
    }
    return true;
}

