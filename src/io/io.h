/* File formats used by libs4: safetensors (weights) and .npy (arrays).
 * Internal for now; the public loader (issue "Run trained PyTorch S4 models") builds on it.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_IO_H
#define S4_IO_H

#include "core/internal.h"

#include <stdio.h>

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

/* An .npy array (version 1.0, 2.0 or 3.0; '<f4' or '<f8', or with ints '<i4' or '<i8'
 * within +-2^53; C order; any rank up to S4IO_MAX_DIMS), converted to double; the other
 * kind is refused. *data is s4__alloc'ed: s4__free it (the library's counted allocator,
 * docs in s4.h "Memory"), never free(). */
s4_status s4io_npy_read_kind(const char *path, bool ints, double **data, int *ndim,
                             int64_t shape[S4IO_MAX_DIMS]);
/* The float kind (ints = false). */
s4_status s4io_npy_read(const char *path, double **data, int *ndim,
                        int64_t shape[S4IO_MAX_DIMS]);

/* Writes a float32 (dtype S4IO_F32), float64 (S4IO_F64) or int64 (S4IO_I64) C-order .npy
 * file from `data` (float, double or int64_t elements as dtype says). Writes to a temporary name and renames, so no
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

/* Writes a safetensors file (src/io/io_safetensors_write.c): tensors laid out in name order,
 * the header a JSON object padded with spaces to a multiple of 8 bytes, __metadata__ from
 * the n_meta key/value string pairs meta[2 i], meta[2 i + 1] (none if n_meta is 0). Writes
 * to a temporary name and renames, so no partial file is left on failure. */
s4_status s4io_safetensors_write(const char *path, const s4io_tensor_out *tensors, size_t n,
                                 const char *const *meta, size_t n_meta);

/* Atomic replacement of a file (src/io/io_atomic.c), for the writers above: open a temporary
 * file of our own next to `path`, write to `f`, then finish (rename over `path`, or remove
 * the temporary file when a write failed).
 * A reader of `path` sees the old file or the whole new one, never a partial one, even
 * with several threads or processes writing the same path at once (the last rename wins).
 * No file that the call did not create is ever removed. */
typedef struct s4io_atomic {
    FILE *f;          /* the temporary file, open for writing ("wb") */
    char *tmp;        /* its name: "<path>.tmp.<pid>.<n>", n unique within the process */
    const char *path; /* the destination (the caller's string) */
    const char *who;  /* names the caller in messages */
} s4io_atomic;

/* Creates the temporary file exclusively, trying the next name when one exists.
 * S4_ERR_IO (naming `who`, `path` and the temporary name) if it cannot be created. */
s4_status s4io_atomic_open(const char *who, const char *path, s4io_atomic *out);

/* `written`: whether the caller's writes all succeeded (if not, errno still holds the
 * reason). Flushes, closes (both checked) and renames over the destination; on any failure
 * removes the temporary file and returns S4_ERR_IO with the reason. Either way `a` is done. */
s4_status s4io_atomic_finish(s4io_atomic *a, bool written);


/* The config as s4_layer_save embeds it (src/io/io_config.c): s4_layer_config_to_json, except
 * that values the stored parameters do not depend on, which a layer built from them may
 * therefore hold unchecked, are written as the reference's defaults instead of being
 * refused: a dt range that is not meaningful (dt_min or dt_max not finite and positive;
 * only a fresh layer's init uses it) as 0.001, 0.1; an unknown init as "legs"; a diagonal
 * (S4D) config's rank outside [1, 64] as 1 (it has no low-rank term); a DPLR config's
 * unknown disc as "zoh" (DPLR is always bilinear). Every other value is checked as
 * s4_layer_config_to_json does (S4_ERR_INVALID_ARGUMENT naming the key), so the JSON
 * always reads back. */
s4_status s4io_config_json_for_weights(const s4_layer_config *config, char **json);

/* "(2, 3)", "(5,)" or "()": a tensor shape as messages print it (Python's tuple form). */
void s4io_shape_text(char *buf, size_t len, int ndim, const int64_t *shape);

/* Configs (layer and model JSON) are small; a larger file is not a config. */
#define S4IO_MAX_CONFIG_BYTES ((long)16 << 20)

/* A whole text file of at most max_bytes, NUL-terminated, into *out (s4__free it);
 * S4_ERR_IO when it cannot be read, S4_ERR_FORMAT when too large or holding a NUL. */
s4_status s4io_read_text(const char *path, long max_bytes, char **out);

/* An S4Block from the tensors `prefix` + the reference's names (docs/design.md section 4)
 * of an open file, checked as s4_layer_load checks them. found NULL: no other tensor may be
 * in the file (s4_layer_load); else the tensors used go to found[0 .. *nfound) (at most
 * 10), and the caller checks the rest of the file (s4_model_load). */
/* The tensors of a whole-model state_dict as the model loaders claim them: every tensor
 * a part of the config asks for is found, shape-checked, read as finite doubles and
 * claimed, so that what is left unclaimed is a tensor the config does not explain. */
typedef struct s4io_loader {
    const char *path;
    const s4io_safetensors *f;
    const s4io_tensor **used; /* tensors claimed so far [cap] */
    size_t nused, cap;
} s4io_loader;

s4_status s4io_claim(s4io_loader *ld, const s4io_tensor *t);

/* `name` with shape (ndim, shape) -- or, when alt_ndim > 0, (alt_ndim, shape) too (a
 * Conv1d weight's trailing 1) -- into *values (s4__alloc'ed, finite), claimed. legend
 * names the shape for messages ("(d_model,)"). */
s4_status s4io_get(s4io_loader *ld, const char *name, int ndim, const int64_t *shape,
                   const char *legend, int alt_ndim, double **values);

/* Strict JSON values of the model configs (io_model.c): an integer in [lo, hi], a
 * boolean, a dropout probability in [0, 1) (accepted and ignored), no key twice. */
struct cJSON;
s4_status s4io_int_key(const char *src, const char *key, const struct cJSON *j, int lo, int hi,
                       int *out);
s4_status s4io_bool_key(const char *src, const char *key, const struct cJSON *j, int *out);
s4_status s4io_dropout_key(const char *src, const char *key, const struct cJSON *j);
s4_status s4io_duplicate_keys(const char *src, const struct cJSON *o);

/* Sashimi / SashimiLM (io_sashimi.c): the config from its JSON object (root, strictly),
 * and the model from an open file's tensors. */
s4_status s4io_sashimi_parse(const char *src, const struct cJSON *root, s4_model_config *out);
s4_status s4io_sashimi_load(const char *path, const s4io_safetensors *f,
                            const s4_model_config *c, s4_model **out);

s4_status s4io_layer_from_file(const char *path, const s4io_safetensors *f, const char *prefix,
                               const s4_layer_config *cfg, const s4io_tensor **found,
                               int *nfound, s4_layer **out);

#endif /* S4_IO_H */
