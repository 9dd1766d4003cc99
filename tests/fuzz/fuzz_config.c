/* libFuzzer target: the JSON config parser (s4_layer_config_parse, src/io/io_config.c).
 * Parses the bytes for both uses; when a parse succeeds, the config must survive a round
 * trip through s4_layer_config_to_json: the JSON it writes parses again to the same
 * config (the seed is not part of the JSON and is not compared).
 * SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_common.h"

#include <s4.h>

#include <string.h>

/* n_ssm 0 (JSON null) means n_ssm = H, and the JSON writer says null for n_ssm == H. */
static int resolved_n_ssm(const s4_ssm_config *c) { return c->n_ssm ? c->n_ssm : c->H; }

static int same_config(const s4_layer_config *a, const s4_layer_config *b)
{
    const s4_ssm_config *x = &a->ssm, *y = &b->ssm;
    return x->H == y->H && x->N == y->N && x->rank == y->rank &&
           resolved_n_ssm(x) == resolved_n_ssm(y) &&
           x->channels == y->channels && x->bidirectional == y->bidirectional &&
           x->init == y->init && x->dt_min == y->dt_min && x->dt_max == y->dt_max &&
           x->dt_transform == y->dt_transform && x->real_transform == y->real_transform &&
           x->imag_transform == y->imag_transform && a->channels == b->channels &&
           a->bidirectional == b->bidirectional && a->activation == b->activation &&
           a->final_act == b->final_act && a->swap_channels == b->swap_channels &&
           a->transposed == b->transposed && a->l_max == b->l_max && x->mode == y->mode &&
           x->disc == y->disc;
}

static void check_use(const char *json, s4_config_use use)
{
    s4_layer_config cfg, back;
    if (s4_layer_config_parse(json, "fuzz", use, &cfg) != S4_OK)
        return;
    char *out = NULL;
    if (s4_layer_config_to_json(&cfg, &out) != S4_OK)
        abort(); /* a config the parser accepted must be writable */
    if (s4_layer_config_parse(out, "round trip", use, &back) != S4_OK)
        abort(); /* and what was written must parse again */
    if (!same_config(&cfg, &back))
        abort(); /* to the same config */
    s4_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = s4fuzz_strndup(data, size);
    check_use(json, S4_CONFIG_FOR_WEIGHTS);
    check_use(json, S4_CONFIG_FOR_INIT);
    free(json);
    return 0;
}
