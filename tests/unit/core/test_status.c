/* Version, status names and the thread's last error message.
 * SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <string.h>

static void test_version(void **state)
{
    (void)state;
    assert_non_null(s4_version());
    assert_string_equal(s4_version(), S4_VERSION_STRING);
    assert_int_equal(S4_VERSION, (S4_VERSION_MAJOR << 16) | (S4_VERSION_MINOR << 8) |
                                     S4_VERSION_PATCH);
}

static void test_status_str(void **state)
{
    (void)state;
    static const struct { s4_status s; const char *name; } all[] = {
        {S4_OK, "S4_OK"},
        {S4_ERR_INVALID_ARGUMENT, "S4_ERR_INVALID_ARGUMENT"},
        {S4_ERR_OUT_OF_MEMORY, "S4_ERR_OUT_OF_MEMORY"},
        {S4_ERR_NUMERICAL, "S4_ERR_NUMERICAL"},
        {S4_ERR_UNSUPPORTED, "S4_ERR_UNSUPPORTED"},
        {S4_ERR_IO, "S4_ERR_IO"},
        {S4_ERR_FORMAT, "S4_ERR_FORMAT"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_non_null(s4_status_str(all[i].s));
        assert_string_equal(s4_status_str(all[i].s), all[i].name);
    }
    /* Never NULL, even for values outside the enum. */
    assert_non_null(s4_status_str((s4_status)99));
    assert_non_null(s4_status_str((s4_status)-1));
    assert_true(strlen(s4_status_str((s4_status)99)) > 0);
}

static void test_last_error(void **state)
{
    (void)state;
    assert_non_null(s4_last_error());

    /* A failing call leaves a message that names the problem. */
    s4_ssm *ssm = NULL;
    assert_int_equal(s4_ssm_create(NULL, &ssm), S4_ERR_INVALID_ARGUMENT);
    assert_null(ssm);
    assert_non_null(s4_last_error());
    assert_true(strlen(s4_last_error()) > 0);

    /* A different failure replaces the message. */
    s4_ssm_config cfg;
    s4_ssm_config_default(&cfg);
    cfg.N = 7; /* odd */
    assert_int_equal(s4_ssm_create(&cfg, &ssm), S4_ERR_INVALID_ARGUMENT);
    assert_true(strlen(s4_last_error()) > 0);

    /* A public HiPPO call fails the same way. */
    assert_int_equal(s4_hippo(S4_MEASURE_LEGS, 0, 1, NULL, NULL, NULL),
                     S4_ERR_INVALID_ARGUMENT);
    assert_true(strlen(s4_last_error()) > 0);
}

int main(int argc, char **argv)
{
    s4t_suite s = {0};
    s4t_suite_add(&s, "version", test_version, NULL);
    s4t_suite_add(&s, "status_str", test_status_str, NULL);
    s4t_suite_add(&s, "last_error", test_last_error, NULL);
    return s4t_suite_run(&s, "status", argc, argv);
}
