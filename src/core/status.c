/* Status codes, the thread's last error message, version. Memory: memory.c; numeric
 * helpers: numeric.c.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One message per thread, so concurrent failing calls never mix their messages. */
static _Thread_local char last_error[512];

const char *s4_version(void) { return S4_VERSION_STRING; }

const char *s4_status_str(s4_status status)
{
    switch (status) {
    case S4_OK: return "S4_OK";
    case S4_ERR_INVALID_ARGUMENT: return "S4_ERR_INVALID_ARGUMENT";
    case S4_ERR_OUT_OF_MEMORY: return "S4_ERR_OUT_OF_MEMORY";
    case S4_ERR_NUMERICAL: return "S4_ERR_NUMERICAL";
    case S4_ERR_UNSUPPORTED: return "S4_ERR_UNSUPPORTED";
    case S4_ERR_IO: return "S4_ERR_IO";
    case S4_ERR_FORMAT: return "S4_ERR_FORMAT";
    }
    return "S4_ERR_UNKNOWN";
}

const char *s4_last_error(void) { return last_error; }

s4_status s4__fail(s4_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}
