/* Non-finite inputs to every execute call are refused up front with a message naming the
 * element, and leave outputs and state untouched (an FFT would otherwise spread one NaN to
 * every output of the sequence, silently).
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "s4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, H = 4, N = 8, L = 32 };

static s4_layer *make_layer(void)
{
    s4_layer_config cfg;
    s4_layer_config_default(&cfg);
    cfg.ssm.H = H;
    cfg.ssm.N = N;
    cfg.ssm.seed = 9;
    s4_layer *layer = NULL;
    assert_int_equal(s4_layer_create(&cfg, &layer), S4_OK);
    return layer;
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)sin(0.37 * (double)i);
}

static int all_equal(const float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        if (!(x[i] == v))
            return 0;
    return 1;
}

static void test_forward_refuses_nonfinite(void **state)
{
    (void)state;
    s4_layer *layer = make_layer();
    s4_forward *fwd;
    assert_int_equal(s4_forward_create(layer, B, L, NULL, &fwd), S4_OK);
    const size_t n = (size_t)B * H * L;
    float *u = malloc(n * sizeof *u), *y = malloc(n * sizeof *y);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 3; k++)
        for (size_t at = 0; at < n; at += 37) {
            fill(u, n);
            u[at] = bad[k];
            for (size_t i = 0; i < n; i++)
                y[i] = -5.0f;
            assert_int_equal(s4_forward_execute(fwd, u, y, NULL, NULL, 0),
                             S4_ERR_INVALID_ARGUMENT);
            assert_non_null(strstr(s4_last_error(), "not finite"));
            assert_true(all_equal(y, n, -5.0f));
        }
    fill(u, n);
    assert_int_equal(s4_forward_execute(fwd, u, y, NULL, NULL, 0), S4_OK);
    free(u);
    free(y);
    s4_forward_destroy(fwd);
    s4_layer_destroy(layer);
}

static void test_step_refuses_nonfinite(void **state)
{
    (void)state;
    s4_layer *layer = make_layer();
    s4_step *step;
    assert_int_equal(s4_step_create(layer, S4_STEP_LINEAR, B, 1.0, &step), S4_OK);
    void *st = calloc(1, s4_step_state_size(step));
    void *st0 = calloc(1, s4_step_state_size(step));
    float u[B * H * L], y[B * H * L];
    fill(u, B * H);
    assert_int_equal(s4_step_execute(step, st, u, y, NULL, 0), S4_OK); /* nonzero state */
    memcpy(st0, st, s4_step_state_size(step));
    u[3] = NAN;
    for (size_t i = 0; i < B * H; i++)
        y[i] = -5.0f;
    assert_int_equal(s4_step_execute(step, st, u, y, NULL, 0), S4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(s4_last_error(), "s4_step_execute"));
    assert_true(all_equal(y, B * H, -5.0f));
    assert_memory_equal(st, st0, s4_step_state_size(step));
    fill(u, (size_t)B * H * L);
    u[B * H * L - 1] = INFINITY;
    assert_int_equal(s4_step_run(step, st, u, L, y, NULL, 0), S4_ERR_INVALID_ARGUMENT);
    assert_memory_equal(st, st0, s4_step_state_size(step));
    free(st);
    free(st0);
    s4_step_destroy(step);
    s4_layer_destroy(layer);
}

static void test_stream_refuses_nonfinite(void **state)
{
    (void)state;
    s4_layer *layer = make_layer();
    s4_stream *stream;
    assert_int_equal(s4_stream_create(layer, B, L, NULL, &stream), S4_OK);
    const size_t ns = (size_t)B * H * (N / 2) * 2;
    double *x = calloc(ns, sizeof *x), *x0 = calloc(ns, sizeof *x0);
    float u[B * H * L], y[B * H * L];
    fill(u, (size_t)B * H * L);
    assert_int_equal(s4_stream_execute(stream, x, u, L, y, NULL, 0), S4_OK);
    memcpy(x0, x, ns * sizeof *x);
    u[5] = NAN;
    for (size_t i = 0; i < (size_t)B * H * L; i++)
        y[i] = -5.0f;
    assert_int_equal(s4_stream_execute(stream, x, u, L, y, NULL, 0), S4_ERR_INVALID_ARGUMENT);
    assert_true(all_equal(y, (size_t)B * H * L, -5.0f));
    assert_memory_equal(x, x0, ns * sizeof *x);
    u[5] = 0.5f;
    x[7] = NAN; /* a poisoned carried state is refused as well */
    assert_int_equal(s4_stream_execute(stream, x, u, L, y, NULL, 0), S4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(s4_last_error(), "state"));
    assert_true(all_equal(y, (size_t)B * H * L, -5.0f));
    free(x);
    free(x0);
    s4_stream_destroy(stream);
    s4_layer_destroy(layer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_refuses_nonfinite),
        cmocka_unit_test(test_step_refuses_nonfinite),
        cmocka_unit_test(test_stream_refuses_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
