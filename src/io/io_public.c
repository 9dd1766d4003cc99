/* The public face of the file readers and writers (s4.h, "Trained models"): safetensors
 * read access and .npy arrays, thin wrappers around src/io/io.h.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)S4_MAX_DIMS == (int)S4IO_MAX_DIMS, "one rank limit for every format");

struct s4_tensors {
    s4io_safetensors *file;
};

static s4_dtype public_dtype(s4io_dtype d)
{
    return d == S4IO_F32 ? S4_DTYPE_F32 : d == S4IO_F64 ? S4_DTYPE_F64 : S4_DTYPE_I64;
}

const char *s4_dtype_name(s4_dtype d)
{
    switch (d) {
    case S4_DTYPE_F32: return "F32";
    case S4_DTYPE_F64: return "F64";
    case S4_DTYPE_I64: return "I64";
    }
    return NULL;
}

s4_status s4_tensors_open(const char *path, s4_tensors **out)
{
    if (!path || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_open: %s is NULL",
                        !path ? "path" : "out");
    s4_tensors *t = s4__calloc(1, sizeof *t);
    if (!t)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "s4_tensors_open: %s: out of memory", path);
    s4_status st = s4io_safetensors_open(path, &t->file);
    if (st != S4_OK) {
        s4__free(t);
        return st;
    }
    *out = t;
    return S4_OK;
}

void s4_tensors_close(s4_tensors *file)
{
    if (!file)
        return;
    s4io_safetensors_close(file->file);
    s4__free(file);
}

size_t s4_tensors_count(const s4_tensors *file)
{
    return file ? s4io_safetensors_count(file->file) : 0;
}

static void fill_info(const s4io_tensor *t, s4_tensor_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->dtype = public_dtype(t->dtype);
    info->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++)
        info->shape[d] = t->shape[d];
    info->numel = t->numel;
}

s4_status s4_tensors_info(const s4_tensors *file, size_t i, s4_tensor_info *info)
{
    if (!file || !info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_info: %s is NULL",
                        !file ? "file" : "info");
    const s4io_tensor *t = s4io_safetensors_at(file->file, i);
    if (!t)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_info: i = %zu is not below the %zu "
                        "tensors", i, s4io_safetensors_count(file->file));
    fill_info(t, info);
    return S4_OK;
}

s4_status s4_tensors_find(const s4_tensors *file, const char *name, s4_tensor_info *info)
{
    if (!file || !name || !info)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_find: %s is NULL",
                        !file ? "file" : !name ? "name" : "info");
    const s4io_tensor *t = s4io_safetensors_find(file->file, name);
    if (!t)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_find: no tensor named '%s'", name);
    fill_info(t, info);
    return S4_OK;
}

s4_status s4_tensors_read(const s4_tensors *file, const char *name, double *out, size_t n)
{
    if (!file || !name)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_read: %s is NULL",
                        !file ? "file" : "name");
    const s4io_tensor *t = s4io_safetensors_find(file->file, name);
    if (!t)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_tensors_read: no tensor named '%s'", name);
    return s4io_tensor_to_f64(t, out, n);
}

const char *s4_tensors_metadata(const s4_tensors *file, const char *key)
{
    return file ? s4io_safetensors_metadata(file->file, key) : NULL;
}

/* ---- .npy ------------------------------------------------------------------------- */

static s4_status npy_read_kind(const char *fn, const char *path, bool ints, double **data,
                               int *ndim, int64_t shape[S4_MAX_DIMS], size_t *numel)
{
    if (!path || !data || !ndim || !shape)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !path ? "path" : !data ? "data" : !ndim ? "ndim" : "shape");
    int64_t sh[S4IO_MAX_DIMS] = {0};
    int nd = 0;
    s4_status st = s4io_npy_read_kind(path, ints, data, &nd, sh);
    if (st != S4_OK)
        return st;
    size_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= (size_t)sh[d]; /* no overflow: the reader checked the byte count */
    *ndim = nd;
    for (int d = 0; d < S4_MAX_DIMS; d++)
        shape[d] = d < nd ? sh[d] : 0;
    *numel = n;
    return S4_OK;
}

static s4_status npy_read(const char *fn, const char *path, double **data, int *ndim,
                          int64_t shape[S4_MAX_DIMS], size_t *numel)
{
    return npy_read_kind(fn, path, false, data, ndim, shape, numel);
}

s4_status s4_npy_read_i64(const char *path, int64_t **data, int *ndim,
                          int64_t shape[S4_MAX_DIMS])
{
    if (!path || !data || !ndim || !shape)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_npy_read_i64: %s is NULL",
                        !path ? "path" : !data ? "data" : !ndim ? "ndim" : "shape");
    double *values = NULL;
    size_t n = 0;
    int nd = 0;
    int64_t sh[S4_MAX_DIMS];
    s4_status st = npy_read_kind("s4_npy_read_i64", path, true, &values, &nd, sh, &n);
    if (st != S4_OK)
        return st;
    int64_t *out = s4__alloc(n ? n : 1, sizeof *out);
    if (!out) {
        s4__free(values);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu integers", path, n);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (int64_t)values[i]; /* exact: the reader kept them within +-2^53 */
    s4__free(values);
    *data = out;
    *ndim = nd;
    memcpy(shape, sh, sizeof sh);
    return S4_OK;
}

s4_status s4_npy_write_i64(const char *path, const int64_t *data, int ndim, const int64_t *shape)
{
    return s4io_npy_write(path, S4IO_I64, data, ndim, shape);
}

s4_status s4_npy_read_f64(const char *path, double **data, int *ndim,
                          int64_t shape[S4_MAX_DIMS])
{
    size_t n = 0;
    return npy_read("s4_npy_read_f64", path, data, ndim, shape, &n);
}

s4_status s4_npy_read_f32(const char *path, float **data, int *ndim,
                          int64_t shape[S4_MAX_DIMS])
{
    /* The caller's pointers first: npy_read below sees only this function's locals. */
    if (!path || !data || !ndim || !shape)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4_npy_read_f32: %s is NULL",
                        !path ? "path" : !data ? "data" : !ndim ? "ndim" : "shape");
    double *values = NULL;
    size_t n = 0;
    int nd = 0;
    int64_t sh[S4_MAX_DIMS];
    s4_status st = npy_read("s4_npy_read_f32", path, &values, &nd, sh, &n);
    if (st != S4_OK)
        return st;
    float *out = s4__alloc(n, sizeof *out);
    if (!out) {
        s4__free(values);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu floats", path, n);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (float)values[i];
    s4__free(values);
    *data = out;
    *ndim = nd;
    memcpy(shape, sh, sizeof sh);
    return S4_OK;
}

s4_status s4_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    return s4io_npy_write(path, S4IO_F32, data, ndim, shape);
}

s4_status s4_npy_write_f64(const char *path, const double *data, int ndim, const int64_t *shape)
{
    return s4io_npy_write(path, S4IO_F64, data, ndim, shape);
}
