/* Body of the linear-mode step kernel (see step.c, "linear mode: the fused step"), included
 * once per instruction set and precision by step.c with
 *   S4_STEP_NAME, S4_STEP_TARGET  the function and its target attribute
 *   S4_STEP_T                     the element type of state, coefficients and arithmetic:
 *                                 double, or float for S4_PRECISION_SINGLE plans
 *   S4_STEP_VL                    elements per vector: one register of the ISA (2, 4, 8, 16)
 *   S4_STEP_PAD                   the plan's row padding (a multiple of S4_STEP_VL)
 *   S4_STEP_GB                    batch elements stepped together, sharing coefficient loads
 * (the first four are undefined again at the end, so an instance is its #defines and the
 * #include).
 * One source, every variant. The arithmetic is written on vectors of S4_STEP_VL elements
 * (GNU vector extension) with a fixed summation order for the given VL. VL and GB are
 * chosen so that a group's accumulators, its coefficient vectors and the temporaries fit the
 * register file: AVX-512 (32 registers) steps 4 elements on 8-double vectors; AVX2 (16)
 * and SSE2 (16) step 2 on vectors of 4 and 2. (The first AVX2 build used 8-double vectors
 * too, two ymm each: GCC spilled them through the stack, 3,893 stack references, and ran
 * at less than half the speed clang got from the same source.)
 * SPDX-License-Identifier: Apache-2.0 */

#define S4_STEP_CAT2(a, b) a##b
#define S4_STEP_CAT(a, b) S4_STEP_CAT2(a, b)
#define S4_STEP_GROUP S4_STEP_CAT(S4_STEP_NAME, _group)
#define S4_STEP_PART S4_STEP_CAT(S4_STEP_NAME, _load_part)
#define S4_STEP_SPART S4_STEP_CAT(S4_STEP_NAME, _store_part)
#define S4_STEP_HSUM S4_STEP_CAT(S4_STEP_NAME, _hsum)
#define lin_vec S4_STEP_CAT(S4_STEP_NAME, _vec)
/* g loops of a group: unrolled, so each batch element's vectors stay in registers. */
#define S4_STEP_UNROLL _Pragma("GCC unroll 4")

/* S4_STEP_VL elements; may_alias and aligned to one element: loaded from and stored to the
 * plan's arrays at any element offset. */
typedef S4_STEP_T lin_vec __attribute__((vector_size(S4_STEP_VL * sizeof(S4_STEP_T)), may_alias,
                                         aligned(sizeof(S4_STEP_T))));
#define LIN_ZERO ((lin_vec){0})
#define LIN_LOAD(p) (*(const lin_vec *)(const void *)(p))
#define LIN_STORE(p, v) (*(lin_vec *)(void *)(p) = (v))
_Static_assert(S4_STEP_PAD % S4_STEP_VL == 0, "rows are padded to S4_STEP_PAD");

/* Lanes n0 .. n0 + VL - 1 of a state row of Nh: a plain load, or for the tail of N/2 the
 * remaining elements with zeros after them. */
static S4_STEP_TARGET inline __attribute__((always_inline)) void
S4_STEP_PART(lin_vec *v, const S4_STEP_T *row, int n0, int Nh, const int tail)
{
    if (!tail || Nh - n0 >= S4_STEP_VL) {
        *v = LIN_LOAD(row + n0);
        return;
    }
    *v = LIN_ZERO;
    for (int j = 0; j < Nh - n0; j++)
        (*v)[j] = row[n0 + j];
}

static S4_STEP_TARGET inline __attribute__((always_inline)) void
S4_STEP_SPART(S4_STEP_T *row, lin_vec v, int n0, int Nh, const int tail)
{
    if (!tail || Nh - n0 >= S4_STEP_VL) {
        LIN_STORE(row + n0, v);
        return;
    }
    for (int j = 0; j < Nh - n0; j++)
        row[n0 + j] = v[j];
}

/* A fixed order for each VL, halving: lane i + lane i + VL/2, then again, e.g.
 * ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)) for 8 lanes, (0 + 2) + (1 + 3) for 4, 0 + 1 for
 * 2. */
static S4_STEP_TARGET inline __attribute__((always_inline)) S4_STEP_T S4_STEP_HSUM(lin_vec v)
{
#if S4_STEP_VL == 16
    const S4_STEP_T a0 = v[0] + v[8], a1 = v[1] + v[9], a2 = v[2] + v[10], a3 = v[3] + v[11];
    const S4_STEP_T a4 = v[4] + v[12], a5 = v[5] + v[13], a6 = v[6] + v[14], a7 = v[7] + v[15];
    return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7));
#elif S4_STEP_VL == 8
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
#elif S4_STEP_VL == 4
    return (v[0] + v[2]) + (v[1] + v[3]);
#elif S4_STEP_VL == 2
    return v[0] + v[1];
#else
#error "S4_STEP_VL must be 2, 4 or 8"
#endif
}

/* One time step of batch elements b0 .. b0 + gb - 1 of one feature. gb, r and Cp are
 * compile-time constants in the fast paths (the helper is always inlined), so the lane
 * accumulators live in registers. */
static S4_STEP_TARGET inline __attribute__((always_inline)) void
S4_STEP_GROUP(const lin_feat *restrict k, const lin_job *restrict jb, int b0, int64_t t,
              const int gb, const int r, const int Cp, const int tail)
{
    const int Nh = k->Nh, Np = k->Np;
    const S4_STEP_T *G = k->c;
    const S4_STEP_T *DP = G + (size_t)2 * r * Np;
    const S4_STEP_T *A1r = DP + (size_t)2 * r * Np, *A1i = A1r + Np;
    const S4_STEP_T *DBr = A1i + Np, *DBi = DBr + Np;
    const S4_STEP_T *C2 = DBi + Np;
    const S4_STEP_T *km = k->m, *kD = k->D;

    S4_STEP_T *const x = (S4_STEP_T *)jb->x + (size_t)b0 * jb->xs;
    const size_t xs = jb->xs;
#define xr(g) (x + (size_t)(g) * xs)
#define xi(g) (x + (size_t)(g) * xs + Nh)
    S4_STEP_T u[S4_STEP_GB];
    S4_STEP_UNROLL
    for (int g = 0; g < gb; g++)
        u[g] = (S4_STEP_T)jb->u[(size_t)(b0 + g) * jb->ub + (size_t)t * jb->ut];

    /* Phase 1: s_q = 2 Re(G_q^T x) + m_q u, from the old state. */
    S4_STEP_T s[S4_STEP_GB][S4_LINEAR_MAX_RANK];
    for (int q = 0; q < r; q++) {
        const S4_STEP_T *Gr = G + (size_t)2 * q * Np, *Gi = Gr + Np;
        lin_vec acc[S4_STEP_GB], aci[S4_STEP_GB]; /* Re and Im products: two dependency chains */
        S4_STEP_UNROLL
        for (int g = 0; g < gb; g++)
            acc[g] = aci[g] = LIN_ZERO;
        for (int n0 = 0; n0 < Nh; n0 += S4_STEP_VL) {
            const lin_vec gr = LIN_LOAD(Gr + n0), gi = LIN_LOAD(Gi + n0);
            S4_STEP_UNROLL
            for (int g = 0; g < gb; g++) {
                lin_vec x_r, x_i;
                S4_STEP_PART(&x_r, xr(g), n0, Nh, tail);
                S4_STEP_PART(&x_i, xi(g), n0, Nh, tail);
                acc[g] += gr * x_r;
                aci[g] += gi * x_i;
            }
        }
        S4_STEP_UNROLL
        for (int g = 0; g < gb; g++)
            s[g][q] = (S4_STEP_T)2 * S4_STEP_HSUM(acc[g] - aci[g]) + km[q] * u[g];
    }

    /* Phase 2: x' = A1 x - sum_q DP_q s_q + DB u in place, and for one channel its output
     * accumulated from x' while it is in registers. */
    lin_vec ya[S4_STEP_GB], yi[S4_STEP_GB];
    S4_STEP_UNROLL
    for (int g = 0; g < gb; g++)
        ya[g] = yi[g] = LIN_ZERO;
    for (int n0 = 0; n0 < Nh; n0 += S4_STEP_VL) {
        const lin_vec ar = LIN_LOAD(A1r + n0), ai = LIN_LOAD(A1i + n0);
        const lin_vec br = LIN_LOAD(DBr + n0), bi = LIN_LOAD(DBi + n0);
        S4_STEP_UNROLL
        for (int g = 0; g < gb; g++) {
            lin_vec x_r, x_i;
            S4_STEP_PART(&x_r, xr(g), n0, Nh, tail);
            S4_STEP_PART(&x_i, xi(g), n0, Nh, tail);
            lin_vec vr = br * u[g], vi = bi * u[g];
            vr += ar * x_r;
            vr -= ai * x_i;
            vi += ar * x_i;
            vi += ai * x_r;
            for (int q = 0; q < r; q++) {
                vr -= LIN_LOAD(DP + (size_t)2 * q * Np + n0) * s[g][q];
                vi -= LIN_LOAD(DP + (size_t)(2 * q + 1) * Np + n0) * s[g][q];
            }
            S4_STEP_SPART(xr(g), vr, n0, Nh, tail);
            S4_STEP_SPART(xi(g), vi, n0, Nh, tail);
            if (Cp == 1) {
                ya[g] += LIN_LOAD(C2 + n0) * vr;
                yi[g] += LIN_LOAD(C2 + Np + n0) * vi;
            }
        }
    }

    /* Outputs y_c = 2 Re(C_c^T x') + D_c u (C2 holds 2 C); several channels in a pass of
     * their own over the new state. */
    for (int c = 0; c < Cp; c++) {
        if (Cp != 1) {
            const S4_STEP_T *Cr = C2 + (size_t)2 * c * Np, *Ci = Cr + Np;
            S4_STEP_UNROLL
            for (int g = 0; g < gb; g++)
                ya[g] = yi[g] = LIN_ZERO;
            for (int n0 = 0; n0 < Nh; n0 += S4_STEP_VL) {
                const lin_vec cr = LIN_LOAD(Cr + n0), ci = LIN_LOAD(Ci + n0);
                S4_STEP_UNROLL
                for (int g = 0; g < gb; g++) {
                    lin_vec x_r, x_i;
                    S4_STEP_PART(&x_r, xr(g), n0, Nh, tail);
                    S4_STEP_PART(&x_i, xi(g), n0, Nh, tail);
                    ya[g] += cr * x_r;
                    yi[g] += ci * x_i;
                }
            }
        }
        const S4_STEP_T Dc = kD[(size_t)c * k->Ds];
        S4_STEP_UNROLL
        for (int g = 0; g < gb; g++) {
            const S4_STEP_T y = S4_STEP_HSUM(ya[g] - yi[g]) + Dc * u[g];
            jb->y[(size_t)c * jb->yc + (size_t)(b0 + g) * jb->yb + (size_t)t] = (float)y;
        }
    }
#undef xr
#undef xi
}

/* T steps of nb batch elements of one feature: at each step, groups of S4_STEP_GB batch
 * elements share every coefficient load; single-channel layers of rank 1 (S4) and rank 0
 * (S4D) get paths with the sizes fixed at compile time: with a runtime rank the
 * accumulators went through the stack (an S4D model's step ran 10x slower, perf). */
static S4_STEP_TARGET void S4_STEP_NAME(const lin_feat *k, const lin_job *jb)
{
    const int r = k->r, Cp = k->Cp, nb = jb->nb, ng = nb / S4_STEP_GB * S4_STEP_GB;
    const int tail = k->Nh % S4_STEP_VL != 0;
    for (int64_t t = 0; t < jb->T; t++) {
        if (r == 1 && Cp == 1 && !tail) {
            for (int b = 0; b < ng; b += S4_STEP_GB)
                S4_STEP_GROUP(k, jb, b, t, S4_STEP_GB, 1, 1, 0);
            for (int b = ng; b < nb; b++)
                S4_STEP_GROUP(k, jb, b, t, 1, 1, 1, 0);
        } else if (r == 0 && Cp == 1 && !tail) {
            /* Rank 0: an S4D layer's diagonal step (no reduction before the update). */
            for (int b = 0; b < ng; b += S4_STEP_GB)
                S4_STEP_GROUP(k, jb, b, t, S4_STEP_GB, 0, 1, 0);
            for (int b = ng; b < nb; b++)
                S4_STEP_GROUP(k, jb, b, t, 1, 0, 1, 0);
        } else {
            for (int b = 0; b < ng; b += S4_STEP_GB)
                S4_STEP_GROUP(k, jb, b, t, S4_STEP_GB, r, Cp, 1);
            for (int b = ng; b < nb; b++)
                S4_STEP_GROUP(k, jb, b, t, 1, r, Cp, 1);
        }
    }
}

#undef S4_STEP_GROUP
#undef S4_STEP_PART
#undef S4_STEP_SPART
#undef S4_STEP_HSUM
#undef S4_STEP_UNROLL
#undef lin_vec
#undef LIN_ZERO
#undef LIN_LOAD
#undef LIN_STORE
#undef S4_STEP_CAT
#undef S4_STEP_CAT2
/* Each instance names its own function, type, width and padding. */
#undef S4_STEP_NAME
#undef S4_STEP_T
#undef S4_STEP_VL
#undef S4_STEP_PAD
