/* Resource limits (issue 6, point 4): the memory cap refuses a request with
 * S4_ERR_OUT_OF_MEMORY and leaves nothing allocated; an injected allocator that fails the
 * k-th allocation, for every k, makes every create function fail cleanly -- no leak (the
 * library's byte count returns to where it was), no crash, the caller's objects unchanged.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a counting allocator that fails on request ---------------------------------------- */

typedef struct counting {
    long calls;   /* allocations so far */
    long fail_at; /* the call index that fails (-1: none) */
    long live;    /* blocks not yet freed */
} counting;

static void *c_alloc(size_t size, size_t alignment, void *ctx)
{
    counting *c = ctx;
    if (c->calls++ == c->fail_at)
        return NULL;
    void *p = aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    if (p)
        c->live++;
    return p;
}

static void c_free(void *p, void *ctx)
{
    counting *c = ctx;
    c->live--;
    free(p);
}

/* One create-and-destroy under test: returns the status of the create (destroying what it
 * made on success). */
typedef s4_status (*maker)(void *arg);

/* Runs `make` with the k-th allocation failing for k = 0, 1, ... until it succeeds; every
 * failure must be S4_ERR_OUT_OF_MEMORY (or, where documented, another error status with a
 * message) and leave no block behind. Returns the number of allocations of a success. */
static long sweep_failures(const char *what, maker make, void *arg)
{
    counting c = {0, -1, 0};
    const s4_allocator a = {c_alloc, c_free, &c};
    assert_int_equal(s4_memory_in_use(), 0);
    assert_int_equal(s4_set_allocator(&a), S4_OK);
    long k = 0;
    for (;; k++) {
        c.calls = 0;
        c.fail_at = k;
        const s4_status st = make(arg);
        if (c.live != 0 || s4_memory_in_use() != 0)
            fail_msg("%s: allocation %ld failed: %ld blocks (%zu bytes) leaked", what, k,
                     c.live, s4_memory_in_use());
        if (st == S4_OK && c.calls <= k)
            break; /* every allocation of the call happened before the failing index */
        if (st == S4_OK)
            fail_msg("%s: allocation %ld of %ld failed, yet the call returned S4_OK", what, k,
                     c.calls);
        if (st != S4_ERR_OUT_OF_MEMORY)
            fail_msg("%s: allocation %ld failed with %s (%s), not S4_ERR_OUT_OF_MEMORY", what,
                     k, s4_status_str(st), s4_last_error());
        if (s4_last_error()[0] == '\0')
            fail_msg("%s: allocation %ld failed without a message", what, k);
    }
    assert_int_equal(s4_set_allocator(NULL), S4_OK);
    print_message("%-22s %3ld allocations, each one failed in turn: no leak\n", what, k);
    return k;
}

/* ---- the create functions --------------------------------------------------------------- */

static s4_layer_config small_layer(void)
{
    s4_layer_config c;
    s4_layer_config_default(&c);
    c.ssm.H = 3;
    c.ssm.N = 8;
    c.ssm.seed = 5;
    return c;
}

static s4_status make_ssm(void *arg)
{
    s4_ssm_config c;
    s4_ssm_config_default(&c);
    c.H = 2;
    c.N = 8;
    c.mode = arg ? S4_MODE_DIAG : S4_MODE_DPLR;
    s4_ssm *s = NULL;
    s4_status st = s4_ssm_create(&c, &s);
    if (st == S4_OK)
        st = s4_ssm_setup_length(s, 64);
    s4_ssm_destroy(s);
    return st;
}

static s4_status make_layer(void *arg)
{
    s4_layer_config c = small_layer();
    if (arg)
        c.ssm.mode = S4_MODE_DIAG;
    s4_layer *l = NULL;
    const s4_status st = s4_layer_create(&c, &l);
    s4_layer_destroy(l);
    return st;
}

/* Plans made on a layer built with the default allocator would be freed by another: so
 * every plan test builds its layer inside the sweep too. */
static s4_status make_forward(void *arg)
{
    s4_layer_config c = small_layer();
    if (arg)
        c.ssm.mode = S4_MODE_DIAG;
    s4_layer *l = NULL;
    s4_forward *f = NULL;
    const s4_forward_options o = {.rate = 1.0, .threads = 1};
    s4_status st = s4_layer_create(&c, &l);
    if (st == S4_OK)
        st = s4_forward_create(l, 2, 40, &o, &f);
    s4_forward_destroy(f);
    s4_layer_destroy(l);
    return st;
}

static s4_status make_step(void *arg)
{
    const int mode = *(const int *)arg % 3; /* mode 4: linear in single precision */
    s4_layer_config c = small_layer();
    s4_layer *l = NULL;
    s4_step *p = NULL;
    /* One thread: valgrind runs this test (see make_stream). */
    const s4_step_options o = {.rate = 1.0,
                               .threads = 1,
                               .precision = *(const int *)arg == 4 ? S4_PRECISION_SINGLE
                                                                   : S4_PRECISION_DOUBLE};
    s4_status st = s4_layer_create(&c, &l);
    if (st == S4_OK)
        st = s4_step_create_with_options(l, (s4_step_mode)mode, 2, &o, &p);
    s4_step_destroy(p);
    s4_layer_destroy(l);
    return st;
}

static s4_status make_stream(void *arg)
{
    (void)arg;
    s4_layer_config c = small_layer();
    s4_layer *l = NULL;
    s4_stream *p = NULL;
    /* One thread: this test runs under valgrind, where libgomp's pool, alive at exit,
     * shows as "possibly lost" thread stacks that are not libs4's. */
    const s4_forward_options o = {.rate = 1.0, .threads = 1};
    s4_status st = s4_layer_create(&c, &l);
    if (st == S4_OK)
        st = s4_stream_create(l, 2, 16, &o, &p);
    s4_stream_destroy(p);
    s4_layer_destroy(l);
    return st;
}

static s4_status make_conv(void *arg)
{
    (void)arg;
    const s4_conv_desc d = {.B = 2, .H = 3, .channels = 1, .L = 50, .l = 50};
    s4_conv *p = NULL;
    const s4_status st = s4_conv_create(&d, &p);
    s4_conv_destroy(p);
    return st;
}

static s4_status make_load(void *arg)
{
    (void)arg;
    char w[1024], c[1024];
    s4t_path(w, "cases/h2_n8_l7/params_init.safetensors");
    s4t_path(c, "cases/h2_n8_l7/config.json");
    s4_layer *l = NULL;
    const s4_status st = s4_layer_load(w, c, &l);
    s4_layer_destroy(l);
    return st;
}

/* Whole models: load (S4D and S4Block layers), then each mode's plan. arg: the case. */
static s4_status make_model(void *arg)
{
    const char *name = arg;
    char w[1024];
    s4t_path(w, "models/%s/params.safetensors", name);
    s4_model *m = NULL;
    s4_status st = s4_model_load(w, NULL, &m);
    if (st != S4_OK)
        return st;
    s4_model_forward *f = NULL;
    s4_model_step *p = NULL;
    const s4_forward_options fo = {.rate = 1.0, .threads = 1};
    const s4_step_options so = {.rate = 1.0, .threads = 1};
    st = s4_model_forward_create(m, 2, 16, &fo, &f);
    if (st == S4_OK)
        st = s4_model_step_create(m, S4_MODEL_STEP_NATURAL, 2, &so, &p);
    s4_model_step_destroy(p);
    s4_model_forward_destroy(f);
    s4_model_destroy(m);
    return st;
}

/* Sashimi / SashimiLM: load, then the step plan, a generator (token models) and, for a
 * diagonal model, the forward plan. (A DPLR model's first forward plan forms C-tilde, a
 * matrix power per feature: too slow to repeat for every allocation, and the layer
 * forward plan's own allocations are swept above.) arg: the case. */
static s4_status make_sashimi(void *arg)
{
    const char *name = arg;
    char w[1024], c[1024];
    s4t_path(w, "models_sashimi/%s/params.safetensors", name);
    s4t_path(c, "models_sashimi/%s/config.json", name);
    s4_model *m = NULL;
    s4_status st = s4_model_load(w, c, &m);
    if (st != S4_OK)
        return st;
    s4_model_forward *f = NULL;
    s4_model_step *p = NULL;
    s4_generator *g = NULL;
    const s4_forward_options fo = {.rate = 1.0, .threads = 1};
    const s4_step_options so = {.rate = 1.0, .threads = 1};
    s4_generate_options go;
    s4_generate_options_default(&go);
    go.threads = 1;
    st = s4_model_step_create(m, S4_MODEL_STEP_NATURAL, 2, &so, &p);
    if (st == S4_OK && strncmp(name, "lm_", 3) == 0)
        st = s4_generator_create(m, 2, &go, &g);
    if (st == S4_OK && strstr(name, "diag"))
        st = s4_model_forward_create(m, 2, 48, &fo, &f); /* 48: a multiple of the pools */
    s4_generator_destroy(g);
    s4_model_step_destroy(p);
    s4_model_forward_destroy(f);
    s4_model_destroy(m);
    return st;
}

static void test_create_failures_leak_nothing(void **state)
{
    (void)state;
    sweep_failures("s4_ssm_create dplr", make_ssm, NULL);
    sweep_failures("s4_ssm_create diag", make_ssm, (void *)1);
    sweep_failures("s4_layer_create", make_layer, NULL);
    sweep_failures("s4_forward_create dplr", make_forward, NULL);
    sweep_failures("s4_forward_create diag", make_forward, (void *)1);
    for (int m = S4_STEP_DENSE; m <= S4_STEP_DIAGONAL + 2; m++) {
        if (m == S4_STEP_DIAGONAL + 1)
            continue;
        char what[40];
        snprintf(what, sizeof what, "s4_step_create mode %d%s", m % 3, m == 4 ? " single" : "");
        sweep_failures(what, make_step, &m);
    }
    sweep_failures("s4_stream_create", make_stream, NULL);
    sweep_failures("s4_conv_create", make_conv, NULL);
    sweep_failures("s4_layer_load", make_load, NULL);
    sweep_failures("s4_model S4D", make_model, "s4d_h8_n16_l100");
    sweep_failures("s4_model S4Block", make_model, "s4block_legs_in3_h8_n16_l64");
    sweep_failures("Sashimi U-Net", make_sashimi, "s_d6_p23_unet_n1");
    sweep_failures("SashimiLM", make_sashimi, "lm_d8_p44_n1");
    sweep_failures("Sashimi diag + conv", make_sashimi, "s_d8_p2_n2_diag");
}

/* ---- the cap ------------------------------------------------------------------------------ */

static void test_memory_limit(void **state)
{
    (void)state;
    s4_layer_config c = small_layer();
    s4_layer *l = NULL;
    assert_int_equal(s4_layer_create(&c, &l), S4_OK);
    const size_t base = s4_memory_in_use();
    assert_true(base > 0);
    double C0[2 * 3 * 4];
    assert_int_equal(s4_ssm_get_param(s4_layer_ssm(l), S4_PARAM_C, C0, 24), S4_OK);

    /* A forward at L = 2^16 needs megabytes; allow 64 KB more than the layer holds. */
    s4_set_memory_limit(base + (64 << 10));
    s4_forward *f = NULL;
    const s4_forward_options o1 = {.rate = 1.0, .threads = 1};
    const s4_status st = s4_forward_create(l, 4, 1 << 16, &o1, &f);
    assert_int_equal(st, S4_ERR_OUT_OF_MEMORY);
    assert_null(f);
    assert_true(strlen(s4_last_error()) > 0);
    print_message("over the cap: %s\n", s4_last_error());
    assert_int_equal(s4_memory_in_use(), base); /* everything it had allocated is freed */
    double C1[24];
    assert_int_equal(s4_ssm_get_param(s4_layer_ssm(l), S4_PARAM_C, C1, 24), S4_OK);
    assert_memory_equal(C0, C1, sizeof C0); /* the layer (C-tilde) is unchanged */

    /* The same request fits once the cap is lifted. */
    s4_set_memory_limit(SIZE_MAX);
    assert_int_equal(s4_forward_create(l, 4, 1 << 16, &o1, &f), S4_OK);
    assert_true(s4_memory_in_use() > base + (64 << 10));
    s4_forward_destroy(f);
    s4_layer_destroy(l);
    assert_int_equal(s4_memory_in_use(), 0);

    /* A size that overflows size_t is refused the same way. */
    s4_conv *p = NULL;
    const s4_conv_desc d = {.B = 1 << 30, .H = 1 << 30, .channels = 1, .L = 1 << 30, .l = 2};
    assert_int_not_equal(s4_conv_create(&d, &p), S4_OK);
    assert_null(p);
    assert_int_equal(s4_memory_in_use(), 0);
}

static void test_set_allocator_rules(void **state)
{
    (void)state;
    counting cnt = {0, -1, 0};
    const s4_allocator bad = {NULL, c_free, &cnt};
    assert_int_equal(s4_set_allocator(&bad), S4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(s4_last_error(), "alloc"));
    /* Refused while libs4 memory is live: its blocks must go back to their allocator. */
    s4_ssm_config c;
    s4_ssm_config_default(&c);
    c.N = 8;
    s4_ssm *s = NULL;
    assert_int_equal(s4_ssm_create(&c, &s), S4_OK);
    const s4_allocator good = {c_alloc, c_free, &cnt};
    assert_int_equal(s4_set_allocator(&good), S4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(s4_last_error(), "still allocated"));
    s4_ssm_destroy(s);
    assert_int_equal(s4_set_allocator(&good), S4_OK);
    assert_int_equal(s4_ssm_create(&c, &s), S4_OK);
    assert_true(cnt.live > 0);
    s4_ssm_destroy(s);
    assert_int_equal(cnt.live, 0);
    assert_int_equal(s4_set_allocator(NULL), S4_OK);
}

int main(int argc, char **argv)
{
    s4t_suite s = {0};
    s4t_suite_add(&s, "create_failures_leak_nothing", test_create_failures_leak_nothing, NULL);
    s4t_suite_add(&s, "memory_limit", test_memory_limit, NULL);
    s4t_suite_add(&s, "set_allocator_rules", test_set_allocator_rules, NULL);
    return s4t_suite_run(&s, "memory", argc, argv);
}
