/* The command-line parser shared by the `s4` program and `s4-bench` (public API only):
 * --name value and --name=value options from a table, flags without a value, integers
 * and numbers checked against their ranges, and one-line error messages prefixed by the
 * running command ("s4 forward: ...", "s4-bench generate: ...").
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CLI_ARGS_H
#define S4_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { EXIT_USAGE = 2 };

/* One option: its name without "--", where its text goes (a const char * member of the
 * caller's struct, at `offset`), and whether it is a flag (no value; stored as "1"). */
typedef struct s4args_spec {
    const char *name;
    size_t offset;
    bool flag;
} s4args_spec;

/* The command named in messages ("s4 forward"); a static string. */
void s4args_set_command(const char *command);

/* "<command>: <message>" as one line on stderr (newlines become spaces); returns status. */
int s4args_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Fills the option struct `out` (zeroed first) from argv[0 .. argc): each option in
 * `specs` and, when `allowed` is not NULL, in that NULL-terminated list of names; an
 * unknown, repeated or empty option, a missing value or a stray argument is
 * EXIT_USAGE with a message (`help` names where the options are listed). */
int s4args_parse(int argc, char **argv, const s4args_spec *specs, size_t nspecs,
                 const char *const *allowed, void *out, const char *help);

/* 0 when value is set, else "option --name is required". */
int s4args_require(const char *value, const char *name, const char *help);

/* A decimal integer in [lo, hi] for option --name. */
int s4args_int(const char *text, const char *name, int64_t lo, int64_t hi, int64_t *out);

/* A finite number > lo (or >= lo when closed) for option --name; `what` says what it is. */
int s4args_number(const char *text, const char *name, double lo, bool closed, const char *what,
                  double *out);

#endif
