/* Streaming: a layer chunk by chunk with a carried state (docs/design.md 9; the reference's
 * FFTConv.forward(x, state) with its kernel's forward(state=...) and forward_state). A
 * chunk u_0..u_{T-1} with incoming state x0 (the state after the previous chunk's last step)
 * gives
 *   y_t = (K * u)_t + D u_t + 2 Re(C^T dA^(t+1) x0),   t < T,
 *   x_T = dA^T x0 + sum_j dA^(T-1-j) dB u_j             (the outgoing state),
 * with the untruncated kernel K[l] = C^T dA^l dB at dt * rate.
 *
 * Why the recurrence and not a convolution: the outgoing state needs every input once per
 * state component -- O(N T) per chunk and feature whichever way it is computed (the
 * reference runs a dense power scan for S4 and a transposed Vandermonde product for S4D) --
 * and the recurrence that computes it yields the chunk's outputs on the way. An FFT
 * convolution plus separate state terms only adds work: measured at T = 4096, B = 8,
 * H = 256, N = 64 (2 threads) a chunk took 1862 ms (S4: convolution and the O(N) Woodbury
 * recurrence twice, for the incoming state's output and the outgoing state) and 276 ms
 * (S4D: convolution and both state terms as Vandermonde products), against 134 ms and
 * 137 ms for the step plan that this file now drives (S4_STEP_LINEAR for S4, the exact
 * diagonal step for S4D, threads over features). So concatenated chunks equal step mode bit
 * for bit and the whole-sequence convolution (s4_forward) to float rounding when l_max is
 * 0 or >= the sequence length (with a shorter l_max the reference truncates the conv-mode
 * kernel, and conv mode differs legitimately).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/layer.h"
#include "ssm/ssm.h"

#include <stdio.h>
#include <string.h>


struct s4_stream {
    int B, H, Nh;
    int64_t Lc;        /* max_chunk */
    s4_step *step;     /* the recurrence at dt * rate, threaded over features */
    size_t state_bytes; /* the step's own state form, kept in the workspace */
    size_t step_work;
    size_t work_size;
    void *own_work;
};

void s4_stream_destroy(s4_stream *p)
{
    if (!p)
        return;
    s4_step_destroy(p->step);
    s4__free(p->own_work);
    s4__free(p);
}

size_t s4_stream_workspace_size(const s4_stream *plan) { return plan ? plan->work_size : 0; }

s4_status s4_stream_create(s4_layer *layer, int B, int64_t max_chunk,
                           const s4_forward_options *options, s4_stream **out)
{
    static const char fn[] = "s4_stream_create";
    if (!layer || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, !layer ? "layer" : "out");
    double rate;
    s4_planner planner;
    int threads;
    s4_status st = s4__forward_options(fn, options, &rate, &planner, &threads);
    if (st != S4_OK)
        return st;
    if (B < 1)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: B = %d must be >= 1", fn, B);
    /* The head's BLAS calls index columns with int. */
    if (max_chunk < 1 || max_chunk > INT32_MAX / 2)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: max_chunk = %lld must be in [1, 2^30 - 1]",
                        fn, (long long)max_chunk);
    if (layer->cfg.bidirectional)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: the layer is bidirectional: its backward kernel looks at future "
                        "inputs, so it cannot be streamed",
                        fn);
    const s4_ssm *lssm = layer->ssm;
    const int H = lssm->H, Nh = lssm->Nh;
    size_t n_u, n_y, n_x;
    if (!s4__mul_size((size_t)B * (size_t)H, (size_t)max_chunk * sizeof(float), &n_u) ||
        !s4__mul_size((size_t)B * (size_t)layer->head.Fo, (size_t)max_chunk * sizeof(float),
                      &n_y) ||
        !s4__mul_size((size_t)B * (size_t)H, (size_t)Nh * 2 * sizeof(double), &n_x))
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "%s: B = %d, max_chunk = %lld: the batch's arrays overflow size_t", fn,
                        B, (long long)max_chunk);

    /* The reference's length rules, as s4_forward_create applies them for inputs of
     * max_chunk steps, on a clone committed to the layer on success: a layer's C-tilde then
     * evolves the same whichever mode runs (the recurrence itself uses the raw C). */
    int64_t l;
    if ((st = s4__kernel_length(fn, layer, max_chunk, rate, &l)) != S4_OK)
        return st;
    s4_ssm *ssm = NULL;
    s4_stream *p = NULL;
    if ((st = s4_ssm_clone(lssm, &ssm)) != S4_OK)
        return st;
    if ((st = s4__setup_lengths(ssm, layer->cfg.l_max, l, rate)) != S4_OK)
        goto fail;

    p = s4__calloc(1, sizeof *p);
    if (!p) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto fail;
    }
    p->B = B;
    p->H = H;
    p->Nh = Nh;
    p->Lc = max_chunk;
    /* The step plan of the committed C-tilde: a layer view holding the clone. */
    s4_layer view = *layer;
    view.ssm = ssm;
    const s4_step_options so = {.rate = rate, .threads = threads};
    const s4_step_mode mode =
        lssm->cfg.mode == S4_MODE_DIAG ? S4_STEP_DIAGONAL : S4_STEP_LINEAR;
    if ((st = s4_step_create_with_options(&view, mode, B, &so, &p->step)) != S4_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", s4_last_error());
        st = s4__fail(st, "%s: %s", fn, msg);
        goto fail;
    }
    p->state_bytes = s4__round_up(s4_step_state_size(p->step), S4_ALIGN);
    p->step_work = s4_step_workspace_size(p->step);
    if (!s4__add_size(p->state_bytes, p->step_work, &p->work_size) ||
        !s4__add_size(p->work_size, S4_ALIGN, &p->work_size) ||
        !(p->own_work = s4__malloc(p->work_size))) {
        st = s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for the workspace", fn);
        goto fail;
    }

    if (ssm->l_kernel != lssm->l_kernel) {
        memcpy(layer->ssm->C, ssm->C,
               (size_t)ssm->rows * (size_t)ssm->H * (size_t)ssm->Nh * sizeof *ssm->C);
        layer->ssm->l_kernel = ssm->l_kernel;
    }
    s4_ssm_destroy(ssm);
    *out = p;
    return S4_OK;

fail:
    s4_stream_destroy(p);
    s4_ssm_destroy(ssm);
    return st;
}

size_t s4_stream_state_size(const s4_stream *plan)
{
    return plan ? (size_t)plan->B * (size_t)plan->H * (size_t)plan->Nh * 2 * sizeof(double) : 0;
}

s4_status s4_stream_execute(const s4_stream *p, double *state, const float *u, int64_t T,
                            float *y, void *work, size_t work_size)
{
    static const char fn[] = "s4_stream_execute";
    if (!p || !state || !u || !y)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !p ? "plan" : !state ? "state" : !u ? "u" : "y");
    if ((uintptr_t)state % sizeof(double) != 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state = %p is not aligned to %zu bytes",
                        fn, (void *)state, sizeof(double));
    if (T < 1 || T > p->Lc)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "%s: T = %lld must be in [1, max_chunk = %lld]", fn, (long long)T,
                        (long long)p->Lc);
    const size_t n_in = (size_t)p->B * (size_t)p->H * (size_t)T;
    const size_t bad = s4__first_nonfinite_f(u, n_in);
    if (bad < n_in)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: u[%zu] = %g is not finite", fn, bad,
                        (double)u[bad]);
    const size_t n_state = (size_t)p->B * (size_t)p->H * (size_t)p->Nh * 2;
    const size_t bad_state = s4__first_nonfinite_d(state, n_state);
    if (bad_state < n_state)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: state[%zu] = %g is not finite", fn,
                        bad_state, state[bad_state]);
    unsigned char *base = s4__workspace(fn, work, work_size, p->work_size, p->own_work);
    if (!base)
        return S4_ERR_INVALID_ARGUMENT;

    /* The reference form x [B x H x N/2 x 2] in and out; the step's form in between, in
     * the workspace, so the caller's state changes only when the chunk succeeded. */
    void *xs = base;
    s4_status st = s4_step_state_set(p->step, xs, state);
    if (st == S4_OK)
        st = s4_step_run(p->step, xs, u, T, y, base + p->state_bytes, p->step_work);
    if (st == S4_OK)
        st = s4_step_state_get(p->step, xs, state);
    return st;
}
