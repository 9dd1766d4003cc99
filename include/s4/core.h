/* libs4 public API, part of s4.h: version, errors, instruction sets, memory.
 * Include "s4.h" (the umbrella); conventions are in its opening comment.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef S4_CORE_H
#define S4_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define S4_VERSION_MAJOR 0
#define S4_VERSION_MINOR 2
#define S4_VERSION_PATCH 0
#define S4_VERSION_STRING "0.2.0"
/* Single number for compile-time comparisons: 0xMMmmpp. */
#define S4_VERSION ((S4_VERSION_MAJOR << 16) | (S4_VERSION_MINOR << 8) | S4_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define S4_NODISCARD __attribute__((warn_unused_result))
#else
#define S4_NODISCARD
#endif

/* Marks the public functions: the library is built with hidden visibility, so that in a
 * shared build (or a static archive linked into a consumer's shared library) only these
 * are exported and the s4__ internals stay internal. */
#if defined(_WIN32) && defined(S4_SHARED_BUILD)
#define S4_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define S4_API __attribute__((visibility("default")))
#else
#define S4_API
#endif

/* The library's version string, equal to S4_VERSION_STRING of the build. */
S4_API const char *s4_version(void);

/* ------------------------------------------------------------------------------ */
/* Errors                                                                          */

typedef enum s4_status {
    S4_OK = 0,
    S4_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a size out of range, a NaN, a mismatch */
    S4_ERR_OUT_OF_MEMORY = 2,    /* allocation failed, or the request's size overflows */
    S4_ERR_NUMERICAL = 3,        /* a factorization failed or a result is not finite */
    S4_ERR_UNSUPPORTED = 4,      /* valid request that this build does not implement */
    S4_ERR_IO = 5,               /* a file could not be opened, read or written */
    S4_ERR_FORMAT = 6            /* a file's content is malformed */
} s4_status;

/* Static name of a status ("S4_OK", ...); never NULL. */
S4_API const char *s4_status_str(s4_status status);

/* Message of the last failed call on the calling thread ("" if none yet). The string is
 * thread-local and valid until the next failing call on the same thread. */
S4_API const char *s4_last_error(void);

/* ------------------------------------------------------------------------------ */
/* Instruction sets                                                                */
/*
 * Every SIMD kernel is built for each instruction set below beside a portable reference,
 * and one is chosen per process when the first plan is made: the widest this CPU runs, or
 * a narrower one named by the environment variable S4_ISA ("portable", "avx2", "avx512";
 * a name this CPU cannot run falls back to the widest it can, an unknown one is ignored).
 * A plan keeps the kernels of its creation. On a given ISA every result is bitwise the same
 * for any thread count; results of different ISAs agree to rounding.
 */
typedef enum s4_isa {
    S4_ISA_PORTABLE = 0, /* the compiler's baseline (SSE2 on x86-64) */
    S4_ISA_AVX2 = 1,     /* AVX2 and FMA */
    S4_ISA_AVX512 = 2    /* AVX-512F, AVX2 and FMA */
} s4_isa;

/* The instruction set plans made now run on. */
S4_API s4_isa s4_cpu_isa(void);

/* Static name of an instruction set ("portable", "avx2", "avx512"; "unknown" otherwise). */
S4_API const char *s4_isa_name(s4_isa isa);

/* ------------------------------------------------------------------------------ */
/* Memory                                                                          */
/*
 * Every block libs4 allocates for its objects, plans, workspaces and returned arrays goes
 * through one allocator, counted against an optional cap. (FFTW's own plan memory and
 * cJSON's transient parse trees do not: they are freed before the calls return, or belong
 * to FFTW.) A call that would exceed the cap, or whose size overflows size_t, fails with
 * S4_ERR_OUT_OF_MEMORY; whatever it had allocated is freed, and the caller's objects are
 * unchanged, as on every failure.
 */

/* alloc returns `size` bytes aligned to `alignment` (a power of two, 64) or NULL; free
 * releases a block alloc returned. ctx is passed to both. */
typedef struct s4_allocator {
    void *(*alloc)(size_t size, size_t alignment, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} s4_allocator;

/* Installs `allocator` (NULL: the C library's aligned_alloc and free) for every later
 * allocation. Process-wide; refused with S4_ERR_INVALID_ARGUMENT while any libs4 memory is
 * outstanding (s4_memory_in_use() != 0), so that no block is freed by an allocator that did
 * not allocate it: install it at startup. */
S4_NODISCARD S4_API s4_status s4_set_allocator(const s4_allocator *allocator);

/* Caps the bytes libs4 may hold at once (process-wide, headers included); SIZE_MAX (the
 * default) means no cap. Lowering the cap below what is in use only refuses new requests. */
S4_API void s4_set_memory_limit(size_t bytes);

/* Bytes currently allocated by libs4 (every object, plan and returned array not yet freed,
 * with a 64-byte header each). */
S4_API size_t s4_memory_in_use(void);

/* Frees an array libs4 allocated and returned (configs as JSON, .npy and WAV data, ...);
 * NULL is a no-op. */
S4_API void s4_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* S4_CORE_H */
