/* Options and the reference's length rules shared by the layer's plans (forward.c,
 * stream.c; docs/design.md 11).
 * SPDX-License-Identifier: Apache-2.0 */
#include "layer/layer.h"
#include "cpu/activation.h"
#include "core/rng.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void s4_forward_options_default(s4_forward_options *options)
{
    if (options)
        *options = (s4_forward_options){.rate = 1.0, .planner = S4_PLANNER_ESTIMATE, .threads = 0};
}

void s4_step_options_default(s4_step_options *options)
{
    if (options)
        *options = (s4_step_options){.rate = 1.0, .threads = 0};
}


s4_status s4__forward_options(const char *fn, const s4_forward_options *options, double *rate,
                              s4_planner *planner, int *threads)
{
    *rate = options ? options->rate : 1.0;
    if (!(*rate > 0.0) || !isfinite(*rate))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: rate = %g must be positive and finite",
                        fn, *rate);
    *planner = options ? options->planner : S4_PLANNER_ESTIMATE;
    if (*planner != S4_PLANNER_ESTIMATE && *planner != S4_PLANNER_MEASURE)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: planner = %d is unknown", fn,
                        (int)*planner);
    *threads = options ? options->threads : 0;
    if (*threads < 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: threads = %d must be >= 0", fn,
                        *threads);
    return S4_OK;
}

s4_status s4__kernel_length(const char *fn, const s4_layer *layer, int64_t L, double rate,
                            int64_t *l)
{
    *l = L;
    if (layer->cfg.l_max > 0) {
        const int64_t lr = s4__round_half_even((double)layer->cfg.l_max / rate);
        if (lr < 1)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "%s: l_max / rate = %lld / %g rounds to a kernel of length 0", fn,
                            (long long)layer->cfg.l_max, rate);
        if (lr < *l)
            *l = lr;
    }
    return S4_OK;
}

s4_status s4__setup_lengths(s4_ssm *ssm, int64_t l_max, int64_t l, double rate)
{
    s4_status st;
    if (ssm->l_kernel == 0 && l_max > 0 && (st = s4_ssm_setup_length(ssm, l_max)) != S4_OK)
        return st;
    int64_t continuous = s4__round_half_even(rate * (double)l);
    /* A raw C needs some length; below 1 the reference would keep the raw C, which is not
     * a C-tilde at all. One sample is the smallest meaningful C-tilde. */
    if (continuous < 1)
        continuous = 1;
    if (ssm->l_kernel == 0 || continuous > ssm->l_kernel)
        return s4_ssm_setup_length(ssm, continuous);
    return S4_OK;
}
