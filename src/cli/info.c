/* s4 info on a layer: its configuration, its bank's derived values and every tensor of
 * the file (whole models: model.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int s4cli_info(const options *o)
{
    const int model = s4cli_is_model(o);
    if (model != 0)
        return model < 0 ? EXIT_FAILURE : s4cli_model_info(o);
    s4_layer *layer = NULL;
    s4_layer_config c;
    int rc = s4cli_load_layer(o, &layer, &c);
    if (rc)
        return rc;
    const s4_ssm *ssm = s4_layer_ssm(layer);
    const int H = c.ssm.H, N = c.ssm.N, S = c.ssm.n_ssm ? c.ssm.n_ssm : H;
    const int Cp = c.ssm.channels, rows = Cp * (1 + c.bidirectional);
    const int64_t lk = s4_ssm_l_kernel(ssm);
    const bool diag = c.ssm.mode == S4_MODE_DIAG;
    char *json = NULL;
    s4_status st = s4_layer_config_to_json(&c, &json);
    if (st != S4_OK) {
        s4_layer_destroy(layer);
        return s4cli_fail_lib(st, NULL);
    }
    size_t ndt = s4_ssm_param_size(ssm, S4_PARAM_DT);
    size_t nla = s4_ssm_param_size(ssm, S4_PARAM_LAMBDA);
    double *dt = malloc(ndt * sizeof *dt), *lambda = malloc(nla * sizeof *lambda);
    if (!dt || !lambda || s4_ssm_get_param(ssm, S4_PARAM_DT, dt, ndt) != S4_OK ||
        s4_ssm_get_param(ssm, S4_PARAM_LAMBDA, lambda, nla) != S4_OK) {
        rc = s4args_fail(EXIT_FAILURE, "%s: cannot read dt and Lambda back: %s", o->weights,
                  s4_last_error());
    } else {
        double dlo, dhi, rlo, rhi, ilo, ihi;
        s4cli_range(dt, ndt, 1, &dlo, &dhi);
        s4cli_range(lambda, nla, 2, &rlo, &rhi);
        s4cli_range(lambda + 1, nla - 1, 2, &ilo, &ihi);
        printf("weights          %s\n", o->weights);
        printf("config           %s\n", o->config ? o->config : "__metadata__ 's4_config' of the "
                                                                 "weights");
        if (diag) {
            printf("architecture     S4Block with an S4D (diagonal) kernel, %s discretization\n",
                   s4cli_name(s4_disc_name(c.ssm.disc)));
            printf("  mode           diag (S4D: A = diag(Lambda), Vandermonde kernel)\n");
            printf("  disc           %s%s\n", s4cli_name(s4_disc_name(c.ssm.disc)),
                   c.ssm.disc == S4_DISC_DSS ? " (the reference's DSS kernel; no step mode)" : "");
        } else {
            printf("architecture     S4Block with an S4 (DPLR) kernel, bilinear discretization\n");
            printf("  mode           dplr (S4: A = diag(Lambda) - P P^*, Cauchy kernel)\n");
        }
        printf("  d_model  H     %d\n", H);
        printf("  d_state  N     %d (%d conjugate pairs stored)\n", N, N / 2);
        if (diag)
            printf("  rank     r     none (no low-rank term)\n");
        else
            printf("  rank     r     %d\n", c.ssm.rank);
        printf("  n_ssm    S     %d%s\n", S, S == H ? " (one SSM per feature)" : "");
        printf("  channels       %d (C' = %d per direction, C'' = %d kernel rows)\n", c.channels,
               Cp, rows);
        printf("  bidirectional  %s\n", c.bidirectional ? "yes" : "no");
        printf("  activation     %s\n", s4cli_name(s4_activation_name(c.activation)));
        if (c.final_act == S4_FINAL_NONE)
            printf("  final_act      none (no output linear; %d output features)\n",
                   s4_layer_output_features(layer));
        else
            printf("  final_act      %s (output linear %d -> %d)\n",
                   c.final_act == S4_FINAL_GLU ? "glu" : "id",
                   c.activation == S4_ACT_GLU ? Cp * H / 2 : Cp * H,
                   c.final_act == S4_FINAL_GLU ? 2 * H : H);
        printf("  swap_channels  %s\n", c.swap_channels ? "yes" : "no");
        printf("  transposed     %s\n", c.transposed ? "yes: arrays (B, H, L)" : "no: arrays "
                                                                                "(B, L, H)");
        if (c.l_max > 0)
            printf("  l_max          %lld\n", (long long)c.l_max);
        else
            printf("  l_max          none (kernel as long as the input)\n");
        printf("  transforms     dt %s, A_real %s, A_imag %s\n",
               s4cli_name(s4_transform_name(c.ssm.dt_transform)), s4cli_name(s4_transform_name(c.ssm.real_transform)),
               s4cli_name(s4_transform_name(c.ssm.imag_transform)));
        printf("state\n");
        if (diag)
            printf("  l_kernel       none: S4D keeps the raw C (no C-tilde)\n");
        else if (lk > 0)
            printf("  l_kernel       %lld: C holds C-tilde for length %lld\n", (long long)lk,
                   (long long)lk);
        else
            printf("  l_kernel       0: C is the raw C\n");
        printf("  dt             [%.6g, %.6g]\n", dlo, dhi);
        printf("  Lambda         Re [%.6g, %.6g], Im [%.6g, %.6g]\n", rlo, rhi, ilo, ihi);
        printf("config (JSON)    %s\n", json);
        rc = s4cli_print_tensors(o->weights);
    }
    free(dt);
    free(lambda);
    s4_free(json);
    s4_layer_destroy(layer);
    return rc;
}

