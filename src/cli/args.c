/* The shared command-line parser (args.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_command = "s4";

void s4args_set_command(const char *command) { g_command = command; }

int s4args_fail(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    fprintf(stderr, "%s: %s\n", g_command, msg);
    return status;
}

int s4args_parse(int argc, char **argv, const s4args_spec *specs, size_t nspecs,
                 const char *const *allowed, void *out, const char *help)
{
    for (size_t k = 0; k < nspecs; k++)
        *(const char **)(void *)((char *)out + specs[k].offset) = NULL;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return s4args_fail(EXIT_USAGE,
                               "unexpected argument '%s' (options are --name value; see %s)",
                               arg, help);
        const char *name = arg + 2, *value = NULL;
        size_t name_len = strlen(name);
        const char *eq = strchr(name, '=');
        if (eq) {
            name_len = (size_t)(eq - name);
            value = eq + 1;
        }
        const s4args_spec *spec = NULL;
        for (size_t k = 0; k < nspecs; k++)
            if (strlen(specs[k].name) == name_len && strncmp(specs[k].name, name, name_len) == 0)
                spec = &specs[k];
        bool ok = spec && !allowed;
        for (const char *const *a = allowed; spec && a && *a && !ok; a++)
            ok = strcmp(*a, spec->name) == 0;
        if (!ok)
            return s4args_fail(EXIT_USAGE, "unknown option '--%.*s' (see %s)", (int)name_len,
                               name, help);
        if (spec->flag) {
            if (value)
                return s4args_fail(EXIT_USAGE, "option --%s takes no value", spec->name);
            value = "1";
        } else if (!value) {
            if (i + 1 >= argc)
                return s4args_fail(EXIT_USAGE, "option --%s needs a value", spec->name);
            value = argv[++i];
        }
        const char **slot = (const char **)(void *)((char *)out + spec->offset);
        if (*slot)
            return s4args_fail(EXIT_USAGE, "option --%s given twice", spec->name);
        if (!*value)
            return s4args_fail(EXIT_USAGE, "option --%s: empty value", spec->name);
        *slot = value;
    }
    return 0;
}

int s4args_require(const char *value, const char *name, const char *help)
{
    return value ? 0 : s4args_fail(EXIT_USAGE, "option --%s is required (see %s)", name, help);
}

int s4args_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    const long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return s4args_fail(EXIT_USAGE, "option --%s: '%s' is not an integer in [%lld, %lld]",
                           name, text, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int s4args_number(const char *text, const char *name, double lo, bool closed, const char *what,
                  double *out)
{
    errno = 0;
    char *end = NULL;
    const double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || (closed ? !(v >= lo) : !(v > lo)) ||
        (errno == ERANGE && v == 0.0))
        return s4args_fail(EXIT_USAGE, "option --%s: '%s' is not a finite number %s %g (%s)",
                           name, text, closed ? ">=" : ">", lo, what);
    *out = v;
    return 0;
}
