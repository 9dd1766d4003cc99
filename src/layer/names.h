/* The name tables of the public enums (s4_init_name, s4_activation_name, ...): one table
 * per enum, the canonical name of each value first (what s4_layer_config_to_json writes),
 * then the reference's aliases; the config parser (src/io/io_config.c) reads names through
 * the same tables, so the names libs4 prints and the names it accepts cannot drift apart.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_LAYER_NAMES_H
#define S4_LAYER_NAMES_H

#include "s4.h"

#include <stdbool.h>

typedef struct s4__name {
    const char *name;
    int value;
} s4__name;

typedef struct s4__names {
    const s4__name *v;
    int n;
} s4__names;

extern const s4__names s4__init_names, s4__mode_names, s4__disc_names, s4__transform_names,
    s4__activation_names;

/* The value of `name` (exact match), false when the table does not have it (or name is
 * NULL). */
bool s4__name_find(const s4__names *t, const char *name, int *value);
/* The canonical name of `value`, NULL when the table does not have it. */
const char *s4__name_of(const s4__names *t, int value);

#endif
