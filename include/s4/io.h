/* libs4 public API, part of s4.h: files: safetensors weights, JSON configs, layer and model loading and saving, .npy arrays, FFTW wisdom, WAV audio. Built as its own library (s4_io, the only part that needs cJSON).
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_IO_PUBLIC_H
#define S4_IO_PUBLIC_H

#include "s4/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* Trained models: weights, config, arrays                                          */
/*
 * A trained reference S4Block is its state_dict, saved as safetensors (names and shapes:
 * docs/design.md section 4), and the constructor arguments the state_dict does not record,
 * a JSON object with the reference's own argument names, given as a file or stored in the
 * safetensors __metadata__ under "s4_config". docs/formats.md gives the keys, their
 * defaults, the accepted aliases and what is refused (S4_ERR_FORMAT for an unknown key, a
 * wrong JSON type or an unknown value; S4_ERR_UNSUPPORTED for a value the reference accepts
 * that libs4 does not implement; the message names the source and the key).
 */

/* Element types of the files (safetensors "F32", "F64", "I64"; .npy '<f4', '<f8'). */
typedef enum s4_dtype {
    S4_DTYPE_F32 = 0,
    S4_DTYPE_F64 = 1,
    S4_DTYPE_I64 = 2
} s4_dtype;

/* "F32", "F64", "I64" (safetensors' names); NULL outside the enum. */
S4_API const char *s4_dtype_name(s4_dtype dtype);

/* What a parsed config is for. Loading trained weights ignores the init (any init string
 * is accepted; the layer config then reports S4_INIT_LEGS for one libs4 cannot build),
 * while creating a fresh layer (s4_layer_create) needs an init libs4 implements. */
typedef enum s4_config_use {
    S4_CONFIG_FOR_WEIGHTS = 0,
    S4_CONFIG_FOR_INIT = 1
} s4_config_use;

/* Parses a JSON config (NUL-terminated text) into *config, filled with
 * s4_layer_config_default first. `source` names the text in messages (a file name, say;
 * NULL: "config"). *config is untouched on failure. */
S4_NODISCARD S4_API s4_status s4_layer_config_parse(const char *json, const char *source,
                                                    s4_config_use use, s4_layer_config *config);

/* The same, from a file. S4_ERR_IO if it cannot be read. */
S4_NODISCARD S4_API s4_status s4_layer_config_read(const char *path, s4_config_use use,
                                                   s4_layer_config *config);

/* The config as JSON with the reference's names (every key explicit), so that
 * S4Block(**json.load(f)) rebuilds the architecture; *json is allocated: s4_free it.
 * The seed is not part of it. A config the parser would refuse (a NaN dt range, an odd N,
 * ...) is refused with S4_ERR_INVALID_ARGUMENT naming the key. */
S4_NODISCARD S4_API s4_status s4_layer_config_to_json(const s4_layer_config *config, char **json);


/* Loads a trained layer: the state_dict in `weights_path` (safetensors: F32 or F64
 * parameters, `layer.kernel.l_kernel` I64), the architecture from `config_path`, or from
 * the file's __metadata__ "s4_config" when config_path is NULL. Names and shapes are those
 * of docs/design.md section 4 (`output_linear.0.weight` or `output_linear.weight`, either also
 * as a Conv1d's [F_out x F_in x 1]). C is C-tilde when l_kernel > 0; later forwards
 * follow the reference's length rules (s4_forward_create). A diagonal (S4D) file has no
 * `layer.kernel.P` and no `layer.kernel.l_kernel`. Every tensor must be present
 * with the shape the config implies and no other tensor may be, and every value must be
 * finite (and give dt > 0 and, for DPLR, Re(Lambda) < 0); otherwise S4_ERR_FORMAT with a
 * message naming
 * the file and the tensor (and the expected and found shapes), or the config key; S4_ERR_IO
 * for a file that cannot be read. */
S4_NODISCARD S4_API s4_status s4_layer_load(const char *weights_path, const char *config_path,
                                            s4_layer **out);

/* The same with an architecture given directly (config->ssm.init, dt range and seed are
 * not used). */
S4_NODISCARD S4_API s4_status s4_layer_load_with_config(const char *weights_path,
                                                        const s4_layer_config *config,
                                                        s4_layer **out);

typedef struct s4_save_options {
    s4_dtype dtype;          /* S4_DTYPE_F32 (default, as PyTorch trains) or S4_DTYPE_F64
                                for every parameter; l_kernel is always I64 */
    int plain_linear_names;  /* 1: `output_linear.weight`; 0 (default): the current
                                reference's `output_linear.0.weight` */
    int embed_config;        /* 1 (default): store the config (s4_layer_config_to_json)
                                as __metadata__ "s4_config", so the file loads alone */
} s4_save_options;

S4_API void s4_save_options_default(s4_save_options *options);

/* Writes the layer's stored parameters in the reference's names, shapes and dtype (so a
 * file loaded from F32 and saved as F32 has identical tensor bytes), C as currently held
 * (C-tilde after a forward, with its l_kernel). Written to a temporary name and renamed,
 * so no partial file is left on failure. options may be NULL (defaults). */
S4_NODISCARD S4_API s4_status s4_layer_save(const s4_layer *layer, const char *path,
                                            const s4_save_options *options);

/* The stored output linear: W [F_out x F_in] row-major and b [F_out] (sizes as in
 * s4_layer_arrays); nW, nb must be at least those. S4_ERR_INVALID_ARGUMENT when final_act
 * is S4_FINAL_NONE (no linear). Either array may be NULL. */
S4_NODISCARD S4_API s4_status s4_layer_get_output_linear(const s4_layer *layer, double *W,
                                                         size_t nW, double *b, size_t nb);

/* Read access to any safetensors file (validated as s4_layer_load does: bounds, offsets,
 * overlaps, dtypes F32 / F64 / I64). Opening reads the whole file; calls on an open file
 * are thread-safe. */
typedef struct s4_tensors s4_tensors;

#define S4_MAX_DIMS 8

typedef struct s4_tensor_info {
    const char *name;              /* valid while the file is open */
    s4_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[S4_MAX_DIMS];
    size_t numel;
} s4_tensor_info;

S4_NODISCARD S4_API s4_status s4_tensors_open(const char *path, s4_tensors **out);
S4_API void s4_tensors_close(s4_tensors *file);
S4_API size_t s4_tensors_count(const s4_tensors *file);

/* Tensor i (header order) or by name (S4_ERR_INVALID_ARGUMENT if absent). */
S4_NODISCARD S4_API s4_status s4_tensors_info(const s4_tensors *file, size_t i,
                                              s4_tensor_info *info);
S4_NODISCARD S4_API s4_status s4_tensors_find(const s4_tensors *file, const char *name,
                                              s4_tensor_info *info);

/* Tensor `name` converted to double; n >= its numel. */
S4_NODISCARD S4_API s4_status s4_tensors_read(const s4_tensors *file, const char *name, double *out,
                                              size_t n);

/* The __metadata__ string for `key`, NULL if absent; valid while the file is open. */
S4_API const char *s4_tensors_metadata(const s4_tensors *file, const char *key);

/* .npy arrays: float32 ('<f4') or float64 ('<f8'), C order, rank 0 .. S4_MAX_DIMS,
 * versions 1.0-3.0. Reading converts to the asked type (float64 -> float32 rounds);
 * *data is allocated (s4_free it).
 * Writing goes to a temporary name that is renamed, so no partial file is left behind.
 * Bad magic, Fortran order, big-endian, another dtype, a truncated file: S4_ERR_FORMAT
 * with the file name and what was expected. */
S4_NODISCARD S4_API s4_status s4_npy_read_f32(const char *path, float **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
S4_NODISCARD S4_API s4_status s4_npy_read_f64(const char *path, double **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
/* Integer arrays ('<i8' or '<i4', values within +-2^53), for token sequences; a float
 * file is refused, as the float readers refuse an integer one. */
S4_NODISCARD S4_API s4_status s4_npy_read_i64(const char *path, int64_t **data, int *ndim,
                                              int64_t shape[S4_MAX_DIMS]);
S4_NODISCARD S4_API s4_status s4_npy_write_i64(const char *path, const int64_t *data, int ndim,
                                               const int64_t *shape);
S4_NODISCARD S4_API s4_status s4_npy_write_f32(const char *path, const float *data, int ndim,
                                               const int64_t *shape);
S4_NODISCARD S4_API s4_status s4_npy_write_f64(const char *path, const double *data, int ndim,
                                               const int64_t *shape);

/* ------------------------------------------------------------------------------ */
/* Model files (docs/models.md)                                                    */

/* The model config from JSON ({"architecture": "S4Model", "d_input", "d_output",
 * "d_model", "n_layers", "dropout", "prenorm", "layer": {"class": "S4D" | "S4Block", ...}};
 * or "Sashimi" with d_model, n_layers, pool, expand, ff, bidirectional, unet, dropout, "s4";
 * or "SashimiLM" with n_tokens, sample_rate, quantization, "backbone"; docs/models.md),
 * parsed strictly like s4_layer_config_parse: unknown keys, wrong types
 * and inconsistent sizes are S4_ERR_FORMAT naming the key; dropout and lr are accepted and
 * ignored. *config is untouched on failure. */
S4_NODISCARD S4_API s4_status s4_model_config_parse(const char *json, const char *source,
                                                    s4_model_config *config);
S4_NODISCARD S4_API s4_status s4_model_config_read(const char *path, s4_model_config *config);

/* True (1) when the JSON text is a model config ("architecture" present), else 0. */
S4_API int s4_config_is_model(const char *json);

/* A model from its reference state_dict in safetensors (example.py's S4Model, Sashimi or
 * SashimiLM; names in docs/models.md) and its config (config_path NULL: the file's
 * __metadata__ "config"). Every tensor must be present with the shape the config implies,
 * no other tensor may be, and every value finite (and, where the model keeps it in float,
 * within float's range);
 * otherwise S4_ERR_FORMAT naming the file and the tensor (expected and found shapes). */
S4_NODISCARD S4_API s4_status s4_model_load(const char *weights_path, const char *config_path,
                                            s4_model **out);

/* ------------------------------------------------------------------------------ */
/* FFTW wisdom                                                                     */

/* FFTW wisdom (single precision), so a deployment can plan with S4_PLANNER_MEASURE once and
 * reuse the result: export to / import from a file. Import returns S4_ERR_FORMAT for a file
 * FFTW does not accept. */
S4_NODISCARD S4_API s4_status s4_wisdom_export(const char *path);
S4_NODISCARD S4_API s4_status s4_wisdom_import(const char *path);

/* ------------------------------------------------------------------------------ */
/* Audio files                                                                     */

/* WAV files: 16-bit PCM. Reading takes mono or the first channel; writing goes to a
 * temporary name that is renamed (no partial file on failure). Samples as doubles in
 * [-1, 1] (write: round(a * 32767), clamped). *data is allocated: s4_free it. */
S4_NODISCARD S4_API s4_status s4_wav_read(const char *path, double **data, size_t *n,
                                          int *sample_rate);
/* channels interleaved: data [n x channels]. */
S4_NODISCARD S4_API s4_status s4_wav_write(const char *path, const double *data, size_t n,
                                           int channels, int sample_rate);

#ifdef __cplusplus
}
#endif
#endif /* S4_IO_PUBLIC_H */
