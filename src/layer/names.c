/* Name tables of the public enums (layer/names.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/names.h"

#include <string.h>

#define TABLE(id, ...)                                                                        \
    static const s4__name id##_v[] = {__VA_ARGS__};                                           \
    const s4__names id = {id##_v, (int)(sizeof id##_v / sizeof id##_v[0])}

/* init: the reference's strings, then the aliases its dplr.py accepts ("diag-" + dplr()'s
 * own init names). */
TABLE(s4__init_names, {"legs", S4_INIT_LEGS}, {"legt", S4_INIT_LEGT}, {"lagt", S4_INIT_LAGT},
      {"fout", S4_INIT_FOUT}, {"fourier", S4_INIT_FOUT}, {"hippo", S4_INIT_HIPPO},
      {"diag-lin", S4_INIT_DIAG_LIN}, {"diag-linear", S4_INIT_DIAG_LIN},
      {"diag-inv", S4_INIT_DIAG_INV}, {"diag-inverse", S4_INIT_DIAG_INV},
      {"diag-real", S4_INIT_DIAG_REAL}, {"diag", S4_INIT_DIAG},
      {"diag-inv2", S4_INIT_DIAG_INV2}, {"diag-inverse2", S4_INIT_DIAG_INV2},
      {"diag-quad", S4_INIT_DIAG_QUAD}, {"diag-quadratic", S4_INIT_DIAG_QUAD});

/* mode: the reference's kernel_registry, SSMKernelDPLR and SSMKernelDiag under two or
 * three names each. */
TABLE(s4__mode_names, {"dplr", S4_MODE_DPLR}, {"nplr", S4_MODE_DPLR}, {"s4", S4_MODE_DPLR},
      {"diag", S4_MODE_DIAG}, {"s4d", S4_MODE_DIAG});

TABLE(s4__disc_names, {"zoh", S4_DISC_ZOH}, {"bilinear", S4_DISC_BILINEAR},
      {"dss", S4_DISC_DSS});

TABLE(s4__transform_names, {"none", S4_TRANSFORM_NONE}, {"exp", S4_TRANSFORM_EXP},
      {"relu", S4_TRANSFORM_RELU}, {"sigmoid", S4_TRANSFORM_SIGMOID},
      {"softplus", S4_TRANSFORM_SOFTPLUS});

/* activation: the reference's Activation() names ("gelu_tanh" is libs4's, so that every
 * value has one). A JSON null is the identity too; the parser handles it. */
TABLE(s4__activation_names, {"gelu", S4_ACT_GELU}, {"gelu_tanh", S4_ACT_GELU_TANH},
      {"relu", S4_ACT_RELU}, {"silu", S4_ACT_SILU}, {"swish", S4_ACT_SILU},
      {"tanh", S4_ACT_TANH}, {"sigmoid", S4_ACT_SIGMOID}, {"id", S4_ACT_IDENTITY},
      {"identity", S4_ACT_IDENTITY}, {"linear", S4_ACT_IDENTITY}, {"glu", S4_ACT_GLU});

bool s4__name_find(const s4__names *t, const char *name, int *value)
{
    for (int i = 0; name && i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) {
            *value = t->v[i].value;
            return true;
        }
    return false;
}

const char *s4__name_of(const s4__names *t, int value)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].value == value)
            return t->v[i].name;
    return NULL;
}

const char *s4_init_name(s4_init init) { return s4__name_of(&s4__init_names, (int)init); }
const char *s4_ssm_mode_name(s4_ssm_mode mode) { return s4__name_of(&s4__mode_names, (int)mode); }
const char *s4_disc_name(s4_disc disc) { return s4__name_of(&s4__disc_names, (int)disc); }
const char *s4_transform_name(s4_transform transform)
{
    return s4__name_of(&s4__transform_names, (int)transform);
}
const char *s4_activation_name(s4_activation activation)
{
    return s4__name_of(&s4__activation_names, (int)activation);
}
