/* safetensors writer: the counterpart of io_safetensors.c, used by s4_layer_save.
 *
 * Layout written: an 8-byte little-endian header length n, n bytes of JSON (cJSON, compact)
 * padded with spaces so that the data starts at a multiple of 8 bytes (as the reference
 * writer does), then the tensors back to back in name order, little-endian. The file is
 * written under a temporary name and renamed (src/io/io_atomic.c), so a reader sees the old
 * file or the new one, never a partial one.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE single and double expected");

/* Elements encoded per buffered write. */
enum { ST_CHUNK = 512 };

static const char *dtype_name(s4io_dtype d)
{
    return d == S4IO_F32 ? "F32" : d == S4IO_F64 ? "F64" : "I64";
}

static size_t dtype_size(s4io_dtype d) { return d == S4IO_F32 ? 4 : 8; }

static void store_le(unsigned char *p, uint64_t bits, size_t width)
{
    for (size_t i = 0; i < width; i++, bits >>= 8)
        p[i] = (unsigned char)(bits & 0xff);
}

/* Element count of a tensor, checked; false on overflow or a negative dimension. */
static bool tensor_numel(const s4io_tensor_out *t, size_t *out)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (uint64_t)t->shape[d] > SIZE_MAX ||
            !s4__mul_size(n, (size_t)t->shape[d], &n))
            return false;
    }
    *out = n;
    return true;
}

static s4_status check_tensors(const char *path, const s4io_tensor_out *t, size_t n,
                               size_t *order)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0])
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor %zu has no name", path, i);
        if (strcmp(t[i].name, "__metadata__") == 0)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: '__metadata__' is not a tensor name",
                            path);
        if (t[i].dtype != S4IO_F32 && t[i].dtype != S4IO_F64 && t[i].dtype != S4IO_I64)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor '%s': dtype %d is unknown",
                            path, t[i].name, (int)t[i].dtype);
        if (t[i].ndim < 0 || t[i].ndim > S4IO_MAX_DIMS)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor '%s': ndim = %d is outside "
                            "[0, %d]",
                            path, t[i].name, t[i].ndim, (int)S4IO_MAX_DIMS);
        size_t numel = 0, bytes = 0;
        if (!tensor_numel(&t[i], &numel) || !s4__mul_size(numel, dtype_size(t[i].dtype), &bytes))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor '%s': negative dimension or "
                            "size overflow",
                            path, t[i].name);
        if (numel > 0 && !t[i].values)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor '%s': values is NULL", path,
                            t[i].name);
        /* A finite value beyond float range would be stored as an infinity, which no
         * loader of parameters accepts (s4_layer_load checks finiteness): refused, so that
         * a save never writes a file its loader rejects. Infinities and NaN given as such
         * are stored as they are. */
        if (t[i].dtype == S4IO_F32)
            for (size_t k = 0; k < numel; k++) {
                const double v = t[i].values[k];
                if (isfinite(v) && fabs(v) > FLT_MAX)
                    return s4__fail(S4_ERR_INVALID_ARGUMENT,
                                    "s4io_safetensors_write: %s: tensor '%s': element %zu = "
                                    "%g is beyond float range (+-%g) for dtype F32; save as "
                                    "F64",
                                    path, t[i].name, k, v, (double)FLT_MAX);
            }
        if (t[i].dtype == S4IO_I64)
            for (size_t k = 0; k < numel; k++) {
                const double v = t[i].values[k];
                if (!(fabs(v) <= 9007199254740992.0) || floor(v) != v)
                    return s4__fail(S4_ERR_INVALID_ARGUMENT,
                                    "s4io_safetensors_write: %s: tensor '%s': element %zu = "
                                    "%g is not an integer within 2^53 (dtype I64)",
                                    path, t[i].name, k, v);
            }
        order[i] = i;
    }
    /* Names sorted (insertion sort: a state_dict has a handful of tensors); duplicates
     * would make an unreadable file. */
    for (size_t i = 1; i < n; i++) {
        const size_t key = order[i];
        size_t j = i;
        while (j > 0 && strcmp(t[order[j - 1]].name, t[key].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = key;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(t[order[i - 1]].name, t[order[i]].name) == 0)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: tensor '%s' given twice", path,
                            t[order[i]].name);
    return S4_OK;
}

/* The header JSON text (malloc'ed by cJSON), or NULL when out of memory. */
static char *header_json(const s4io_tensor_out *t, const size_t *order, size_t n,
                         const char *const *meta, size_t n_meta)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        ok = md != NULL;
        for (size_t i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(md, meta[2 * i], meta[2 * i + 1]) != NULL;
    }
    uint64_t offset = 0;
    for (size_t k = 0; ok && k < n; k++) {
        const s4io_tensor_out *x = &t[order[k]];
        size_t numel = 0;
        (void)tensor_numel(x, &numel); /* checked already */
        const uint64_t bytes = (uint64_t)numel * dtype_size(x->dtype);
        cJSON *e = cJSON_AddObjectToObject(root, x->name);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = NULL;
        ok = e && cJSON_AddStringToObject(e, "dtype", dtype_name(x->dtype)) && shape;
        for (int d = 0; ok && d < x->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)x->shape[d]));
        if (ok)
            ok = (offs = cJSON_AddArrayToObject(e, "data_offsets")) != NULL;
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + bytes)));
        offset += bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* Encodes and writes one tensor's values. */
static bool write_values(FILE *f, const s4io_tensor_out *t)
{
    size_t numel = 0;
    (void)tensor_numel(t, &numel);
    unsigned char chunk[ST_CHUNK * 8];
    const size_t width = dtype_size(t->dtype);
    for (size_t done = 0; done < numel;) {
        const size_t m = numel - done < ST_CHUNK ? numel - done : ST_CHUNK;
        for (size_t i = 0; i < m; i++) {
            const double v = t->values[done + i];
            if (t->dtype == S4IO_F32) {
                const float x = (float)v;
                uint32_t bits;
                memcpy(&bits, &x, sizeof bits);
                store_le(chunk + 4 * i, bits, 4);
            } else if (t->dtype == S4IO_F64) {
                uint64_t bits;
                memcpy(&bits, &v, sizeof bits);
                store_le(chunk + 8 * i, bits, 8);
            } else {
                const int64_t x = (int64_t)v;
                uint64_t bits;
                memcpy(&bits, &x, sizeof bits);
                store_le(chunk + 8 * i, bits, 8);
            }
        }
        if (fwrite(chunk, width, m, f) != m)
            return false;
        done += m;
    }
    return true;
}

/* Header and data into the temporary file; false with errno set on a failed write. */
static bool write_file(FILE *f, const char *json, size_t json_len, size_t header_len,
                       const s4io_tensor_out *t, const size_t *order, size_t n)
{
    unsigned char len_le[8];
    store_le(len_le, (uint64_t)header_len, 8);
    bool ok = fwrite(len_le, 1, 8, f) == 8 && fwrite(json, 1, json_len, f) == json_len;
    for (size_t i = json_len; ok && i < header_len; i++)
        ok = fputc(' ', f) != EOF;
    for (size_t k = 0; ok && k < n; k++)
        ok = write_values(f, &t[order[k]]);
    return ok;
}

s4_status s4io_safetensors_write(const char *path, const s4io_tensor_out *tensors, size_t n,
                                 const char *const *meta, size_t n_meta)
{
    if (!path)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_safetensors_write: path is NULL");
    if ((n > 0 && !tensors) || (n_meta > 0 && !meta))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_safetensors_write: %s: %s is NULL",
                        path, n > 0 && !tensors ? "tensors" : "meta");
    for (size_t i = 0; i < 2 * n_meta; i++)
        if (!meta[i])
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_safetensors_write: %s: metadata string %zu is NULL", path, i);
    size_t *order = s4__alloc(n, sizeof *order);
    if (!order)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "s4io_safetensors_write: %s: out of memory", path);
    s4_status status = check_tensors(path, tensors, n, order);
    if (status) {
        s4__free(order);
        return status;
    }
    char *json = header_json(tensors, order, n, meta, n_meta);
    if (!json) {
        s4__free(order);
        return s4__fail(S4_ERR_OUT_OF_MEMORY,
                        "s4io_safetensors_write: %s: cannot build the header", path);
    }
    const size_t json_len = strlen(json);
    const size_t header_len = (json_len + 7) / 8 * 8;

    s4io_atomic out;
    status = s4io_atomic_open("s4io_safetensors_write", path, &out);
    if (status == S4_OK) {
        errno = 0;
        const bool written = write_file(out.f, json, json_len, header_len, tensors, order, n);
        status = s4io_atomic_finish(&out, written);
    }
    cJSON_free(json);
    s4__free(order);
    return status;
}
