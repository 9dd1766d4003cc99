/* File formats used by libs4: safetensors (weights) and .npy (arrays).
 * Internal for now; the public loader (issue "Run trained PyTorch S4 models") builds on it.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_IO_H
#define S4_IO_H

#include "internal.h"

enum { S4IO_MAX_DIMS = 8 };

typedef enum s4io_dtype {
    S4IO_F32 = 0,
    S4IO_F64 = 1,
    S4IO_I64 = 2
} s4io_dtype;

/* One tensor of an opened safetensors file; `data` points into the file's buffer. */
typedef struct s4io_tensor {
    const char *name;                 /* owned by the file object */
    s4io_dtype dtype;
    int ndim;                         /* 0 for a scalar */
    int64_t shape[S4IO_MAX_DIMS];
    size_t numel;                     /* product of shape (1 for a scalar) */
    const unsigned char *data;        /* little-endian, numel * dtype size bytes */
} s4io_tensor;

typedef struct s4io_safetensors s4io_safetensors;

/* Reads and validates a whole safetensors file: header length within the file, header a
 * JSON object (parsed with cJSON), every entry with a known dtype, a shape whose product
 * does not overflow, data_offsets inside the data region, consistent with shape x dtype,
 * not overlapping. S4_ERR_IO when the file cannot be read, S4_ERR_FORMAT with a message
 * naming the file and the tensor/key for anything malformed. */
s4_status s4io_safetensors_open(const char *path, s4io_safetensors **out);
void s4io_safetensors_close(s4io_safetensors *file);

/* Number of tensors, and tensor i in header order. */
size_t s4io_safetensors_count(const s4io_safetensors *file);
const s4io_tensor *s4io_safetensors_at(const s4io_safetensors *file, size_t i);

/* Tensor by name, NULL if absent. */
const s4io_tensor *s4io_safetensors_find(const s4io_safetensors *file, const char *name);

/* The `__metadata__` string value for `key`, NULL if absent. */
const char *s4io_safetensors_metadata(const s4io_safetensors *file, const char *key);

/* Converts a tensor to double (F32, F64 and I64 accepted); n must be >= numel. */
s4_status s4io_tensor_to_f64(const s4io_tensor *t, double *out, size_t n);

/* An .npy array (version 1.0, 2.0 or 3.0; '<f4' or '<f8'; C order; any rank up to
 * S4IO_MAX_DIMS), converted to double. *data is malloc'ed; free() it. */
s4_status s4io_npy_read(const char *path, double **data, int *ndim,
                        int64_t shape[S4IO_MAX_DIMS]);

/* Writes a float32 (dtype S4IO_F32) or float64 (S4IO_F64) C-order .npy file from `data`
 * (float or double elements as dtype says). Writes to a temporary name and renames, so no
 * partial file is left on failure. */
s4_status s4io_npy_write(const char *path, s4io_dtype dtype, const void *data, int ndim,
                         const int64_t *shape);

/* One tensor to write: values as doubles, stored as `dtype` (F32 rounds to nearest; I64
 * requires integral values within +-2^53). */
typedef struct s4io_tensor_out {
    const char *name;
    s4io_dtype dtype;
    int ndim;
    int64_t shape[S4IO_MAX_DIMS];
    const double *values;             /* numel values; may be NULL when numel is 0 */
} s4io_tensor_out;

/* Writes a safetensors file (src/io_safetensors_write.c): tensors laid out in name order,
 * the header a JSON object padded with spaces to a multiple of 8 bytes, __metadata__ from
 * the n_meta key/value string pairs meta[2 i], meta[2 i + 1] (none if n_meta is 0). Writes
 * to a temporary name and renames, so no partial file is left on failure. */
s4_status s4io_safetensors_write(const char *path, const s4io_tensor_out *tensors, size_t n,
                                 const char *const *meta, size_t n_meta);

#endif /* S4_IO_H */
