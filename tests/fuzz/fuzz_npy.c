/* libFuzzer target: the .npy reader (s4_npy_read_f32 / _f64, src/io/io_npy.c).
 * Reads the bytes as an .npy file in both precisions; when that succeeds, the two must
 * agree on the shape, the element count must match the shape, and float32 must be the
 * rounding of float64.
 * SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_common.h"

#include <s4.h>

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static s4fuzz_file file;
    const char *path = s4fuzz_file_set(&file, data, size);

    double *d = NULL;
    int nd = -1;
    int64_t shape_d[S4_MAX_DIMS];
    const s4_status sd = s4_npy_read_f64(path, &d, &nd, shape_d);

    float *f = NULL;
    int nf = -1;
    int64_t shape_f[S4_MAX_DIMS];
    const s4_status sf = s4_npy_read_f32(path, &f, &nf, shape_f);

    if (sd != sf)
        abort(); /* one file, one verdict */
    if (sd == S4_OK) {
        if (nd != nf || nd < 0 || nd > S4_MAX_DIMS)
            abort();
        size_t numel = 1;
        for (int i = 0; i < nd; i++) {
            if (shape_d[i] != shape_f[i] || shape_d[i] < 0)
                abort();
            numel *= (size_t)shape_d[i];
        }
        /* Touch every element: ASan catches a buffer shorter than the shape says. */
        for (size_t i = 0; i < numel; i++) {
            const float want = (float)d[i];
            if (!(f[i] == want || (isnan(f[i]) && isnan(want))))
                abort();
        }
    }
    s4_free(d);
    s4_free(f);
    return 0;
}
