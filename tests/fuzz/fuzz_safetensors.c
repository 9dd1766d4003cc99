/* libFuzzer target: the safetensors reader (s4_tensors_*, src/io/io_safetensors.c).
 * Opens the bytes as a file; when that succeeds, walks every tensor through the public
 * calls (info, find by name, read as double) and parses an embedded "s4_config" the way
 * s4_layer_load would. Any crash, sanitizer report or leak is a finding; error statuses
 * are the expected outcome for almost every input.
 * SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_common.h"

#include <s4.h>

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static s4fuzz_file file;
    const char *path = s4fuzz_file_set(&file, data, size);

    s4_tensors *t = NULL;
    if (s4_tensors_open(path, &t) != S4_OK)
        return 0;
    const size_t n = s4_tensors_count(t);
    for (size_t i = 0; i < n; i++) {
        s4_tensor_info info, again;
        if (s4_tensors_info(t, i, &info) != S4_OK)
            abort(); /* i < count must succeed */
        if (s4_tensors_find(t, info.name, &again) != S4_OK || again.numel != info.numel ||
            again.ndim != info.ndim)
            abort(); /* names are unique and every listed name must be found */
        /* The data lies inside the file (the reader checked the offsets), so numel is
         * bounded by the input size and this allocation stays small. */
        double *values = malloc((info.numel + 1) * sizeof *values);
        if (!values)
            abort();
        if (s4_tensors_read(t, info.name, values, info.numel) != S4_OK)
            abort();
        free(values);
    }
    /* A name that is usually absent (the fuzzer may well make it a tensor). */
    s4_tensor_info probe;
    if (s4_tensors_find(t, "layer.kernel.C", &probe) == S4_OK &&
        strcmp(probe.name, "layer.kernel.C") != 0)
        abort();
    const char *config = s4_tensors_metadata(t, "s4_config");
    if (config) {
        s4_layer_config cfg;
        if (s4_layer_config_parse(config, "__metadata__", S4_CONFIG_FOR_WEIGHTS, &cfg) != S4_OK)
            cfg.ssm.H = 0; /* a refusal is a fine outcome; only crashes are findings */
    }
    s4_tensors_close(t);
    return 0;
}
