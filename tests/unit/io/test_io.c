/* Tests of the file formats (src/io/io_safetensors.c, src/io/io_npy.c): golden files from
 * testdata/ (the S4D state_dicts of tests/data/s4d included), npy round trips, and a
 * hostile-input suite of malformed files that must be refused with the right status and a
 * message naming the file and the offending key.
 * SPDX-License-Identifier: Apache-2.0 */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkdtemp, opendir, getpid */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/io.h"
#include "testutil.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef S4_TEST_DATA_DIR
#error "S4_TEST_DATA_DIR must name the directory of the golden test data"
#endif

static char tmp_dir[256];

/* ------------------------------------------------------------------------------ */
/* Helpers                                                                         */

static void data_path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", S4_TEST_DATA_DIR, rel);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Whole file into a malloc'ed buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    const long end = ftell(f);
    assert_true(end >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)end + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)end, f), (size_t)end);
    fclose(f);
    *len = (size_t)end;
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether any entry of the temp dir contains ".tmp." (a leftover of npy_write). */
static bool temp_leftovers(void)
{
    DIR *d = opendir(tmp_dir);
    assert_non_null(d);
    bool found = false;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".tmp."))
            found = true;
    closedir(d);
    return found;
}

/* A failure with `want`, a message naming the file and containing `needle`. */
static void check_fail(const char *label, s4_status got, s4_status want, const char *path,
                       const char *needle)
{
    const char *msg = s4_last_error();
    if (got != want)
        fail_msg("%s: got %s, want %s (message: %s)", label, s4_status_str(got),
                 s4_status_str(want), msg);
    if (msg[0] == '\0')
        fail_msg("%s: empty error message", label);
    if (path && !strstr(msg, path))
        fail_msg("%s: message does not name the file %s: %s", label, path, msg);
    if (needle && !strstr(msg, needle))
        fail_msg("%s: message does not mention \"%s\": %s", label, needle, msg);
}

static void check_allclose(const double *a, const double *b, size_t n, double rtol, double atol)
{
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double excess = fabs(a[i] - b[i]) - (atol + rtol * fabs(b[i]));
        if (excess > worst_excess || isnan(excess)) {
            worst_excess = isnan(excess) ? INFINITY : excess;
            worst = i;
        }
    }
    if (n > 0 && worst_excess > 0)
        fail_msg("allclose: worst index %zu: %.17g vs %.17g (rtol %g, atol %g)", worst,
                 a[worst], b[worst], rtol, atol);
}

/* A safetensors image: 8-byte little-endian length, the header, data_len bytes. */
static unsigned char *st_image(const char *header, size_t data_len, size_t *len)
{
    const size_t n = strlen(header);
    *len = 8 + n + data_len;
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + n + i] = (unsigned char)(i * 37 + 1);
    return buf;
}

/* An .npy image of the given version with the dict padded to a multiple of 64 bytes. */
static unsigned char *npy_image(int major, const char *dict, size_t data_len, size_t *len)
{
    const size_t pre = major == 1 ? 10 : 12;
    const size_t n = strlen(dict);
    const size_t total_header = (pre + n + 1 + 63) / 64 * 64;
    const size_t header_len = total_header - pre;
    *len = total_header + data_len;
    unsigned char *buf = calloc(1, *len);
    assert_non_null(buf);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(header_len >> (8 * i));
    memcpy(buf + pre, dict, n);
    memset(buf + pre + n, ' ', header_len - n - 1);
    buf[total_header - 1] = '\n';
    return buf;
}

/* Opens bytes written to a temp file; *file is left untouched on failure. */
static s4_status st_open_bytes(const char *name, const void *bytes, size_t len, char *path,
                               size_t cap, s4io_safetensors **file)
{
    tmp_path(path, cap, name);
    write_bytes(path, bytes, len);
    return s4io_safetensors_open(path, file);
}

/* ------------------------------------------------------------------------------ */
/* Golden safetensors                                                              */

static void test_st_legs_n8(void **state)
{
    (void)state;
    char path[512];
    data_path(path, sizeof path, "hippo/legs_N8.safetensors");
    s4io_safetensors *file = NULL;
    assert_int_equal(s4io_safetensors_open(path, &file), S4_OK);
    assert_int_equal(s4io_safetensors_count(file), 8);
    assert_string_equal(s4io_safetensors_at(file, 0)->name, "A"); /* header order */
    assert_null(s4io_safetensors_at(file, 8));
    for (size_t i = 0; i < s4io_safetensors_count(file); i++) {
        const s4io_tensor *t = s4io_safetensors_at(file, i);
        assert_ptr_equal(s4io_safetensors_find(file, t->name), t);
    }

    const s4io_tensor *A = s4io_safetensors_find(file, "A");
    assert_non_null(A);
    assert_int_equal(A->dtype, S4IO_F64);
    assert_int_equal(A->ndim, 2);
    assert_int_equal(A->shape[0], 8);
    assert_int_equal(A->shape[1], 8);
    assert_int_equal(A->numel, 64);
    double a[64];
    assert_int_equal(s4io_tensor_to_f64(A, a, 64), S4_OK);
    assert_true(a[0] == -1.0);
    assert_true(fabs(a[1 * 8 + 0] - -sqrt(3.0)) <= 1e-15);
    assert_true(a[0 * 8 + 1] == 0.0); /* LegS A is lower triangular */

    const s4io_tensor *B = s4io_safetensors_find(file, "B");
    assert_non_null(B);
    assert_int_equal(B->ndim, 1);
    double b[8], want[8];
    assert_int_equal(s4io_tensor_to_f64(B, b, 8), S4_OK);
    for (int k = 0; k < 8; k++)
        want[k] = sqrt(2.0 * k + 1);
    check_allclose(b, want, 8, 1e-15, 0);

    const s4io_tensor *V = s4io_safetensors_find(file, "V");
    assert_non_null(V);
    assert_int_equal(V->ndim, 3);
    assert_int_equal(V->shape[0], 8);
    assert_int_equal(V->shape[1], 4);
    assert_int_equal(V->shape[2], 2);

    assert_null(s4io_safetensors_find(file, "nope"));
    assert_null(s4io_safetensors_find(file, "__metadata__"));
    assert_string_equal(s4io_safetensors_metadata(file, "source"), "models/s4/s4.py");
    assert_null(s4io_safetensors_metadata(file, "nope"));
    s4io_safetensors_close(file);
}

static void test_st_params_init(void **state)
{
    (void)state;
    char path[512];
    data_path(path, sizeof path, "cases/h2_n8_l7/params_init.safetensors");
    s4io_safetensors *file = NULL;
    assert_int_equal(s4io_safetensors_open(path, &file), S4_OK);
    assert_int_equal(s4io_safetensors_count(file), 10);

    const s4io_tensor *lk = s4io_safetensors_find(file, "layer.kernel.l_kernel");
    assert_non_null(lk);
    assert_int_equal(lk->dtype, S4IO_I64);
    assert_int_equal(lk->ndim, 0);
    assert_int_equal(lk->numel, 1);
    double v = -1;
    assert_int_equal(s4io_tensor_to_f64(lk, &v, 1), S4_OK);
    assert_true(v == 0.0);

    const s4io_tensor *D = s4io_safetensors_find(file, "layer.D");
    assert_non_null(D);
    assert_int_equal(D->dtype, S4IO_F32);
    assert_int_equal(D->ndim, 2);
    assert_int_equal(D->shape[0], 1);
    assert_int_equal(D->shape[1], 2);
    double d[2];
    assert_int_equal(s4io_tensor_to_f64(D, d, 2), S4_OK);
    const double d_want[2] = {0.39229682087898254, -0.223564013838768};
    check_allclose(d, d_want, 2, 0, 0); /* float32 values are exact in double */

    /* n too small: refused, output untouched. */
    d[0] = 42;
    check_fail("to_f64 n < numel", s4io_tensor_to_f64(D, d, 1), S4_ERR_INVALID_ARGUMENT,
               NULL, "layer.D");
    assert_true(d[0] == 42);

    const s4io_tensor *B = s4io_safetensors_find(file, "layer.kernel.B");
    assert_non_null(B);
    assert_int_equal(B->ndim, 4);
    assert_int_equal(B->numel, 16);
    assert_non_null(s4io_safetensors_metadata(file, "note"));
    s4io_safetensors_close(file);
}

/* kernel.safetensors pads its header with spaces. */
static void test_st_padded_header(void **state)
{
    (void)state;
    char path[512];
    data_path(path, sizeof path, "cases/h2_n8_l7/kernel.safetensors");
    s4io_safetensors *file = NULL;
    assert_int_equal(s4io_safetensors_open(path, &file), S4_OK);
    const s4io_tensor *dA = s4io_safetensors_find(file, "dA");
    assert_non_null(dA);
    assert_int_equal(dA->dtype, S4IO_F64);
    assert_int_equal(dA->ndim, 4);
    assert_int_equal(dA->numel, 2 * 8 * 8 * 2);
    const s4io_tensor *ct = s4io_safetensors_find(file, "Ctilde_f32");
    assert_non_null(ct);
    assert_int_equal(ct->dtype, S4IO_F32);
    s4io_safetensors_close(file);
}

/* Every golden file opens and converts; n counts them. */
static void walk_golden(const char *dir, size_t *n_st, size_t *n_npy)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        const size_t len = strlen(e->d_name);
        if (S_ISDIR(st.st_mode)) {
            walk_golden(path, n_st, n_npy);
        } else if (len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0) {
            s4io_safetensors *file = NULL;
            if (s4io_safetensors_open(path, &file) != S4_OK)
                fail_msg("%s", s4_last_error());
            for (size_t i = 0; i < s4io_safetensors_count(file); i++) {
                const s4io_tensor *t = s4io_safetensors_at(file, i);
                double *x = malloc((t->numel ? t->numel : 1) * sizeof *x);
                assert_non_null(x);
                assert_int_equal(s4io_tensor_to_f64(t, x, t->numel), S4_OK);
                for (size_t k = 0; k < t->numel; k++)
                    assert_true(isfinite(x[k]));
                free(x);
            }
            s4io_safetensors_close(file);
            ++*n_st;
        } else if (len > 4 && strcmp(e->d_name + len - 4, ".npy") == 0) {
            double *x = NULL;
            int ndim = -1;
            int64_t shape[S4IO_MAX_DIMS];
            /* Token arrays (Sashimi's prime, tokens, greedy tokens) are integers. */
            if (s4io_npy_read(path, &x, &ndim, shape) != S4_OK &&
                s4io_npy_read_kind(path, true, &x, &ndim, shape) != S4_OK)
                fail_msg("%s", s4_last_error());
            assert_true(ndim >= 0 && ndim <= S4IO_MAX_DIMS);
            s4_free(x);
            ++*n_npy;
        }
    }
    closedir(d);
}

static void test_all_golden_files(void **state)
{
    (void)state;
    size_t n_st = 0, n_npy = 0;
    walk_golden(S4_TEST_DATA_DIR, &n_st, &n_npy);
    assert_true(n_st > 10);
    assert_true(n_npy > 10);
}

/* ------------------------------------------------------------------------------ */
/* Golden npy                                                                      */

static void test_npy_golden(void **state)
{
    (void)state;
    char path[512];
    data_path(path, sizeof path, "cases/h2_n8_l7/K_f64.npy");
    double *k64 = NULL, *k32 = NULL;
    int ndim = -1;
    int64_t shape[S4IO_MAX_DIMS];
    assert_int_equal(s4io_npy_read(path, &k64, &ndim, shape), S4_OK);
    assert_int_equal(ndim, 3);
    assert_int_equal(shape[0], 1);
    assert_int_equal(shape[1], 2);
    assert_int_equal(shape[2], 7);
    assert_true(k64[0] == 0.036638096666115234);
    assert_true(k64[13] == -0.007074592748211228);

    data_path(path, sizeof path, "cases/h2_n8_l7/K_f32.npy");
    assert_int_equal(s4io_npy_read(path, &k32, &ndim, shape), S4_OK);
    assert_int_equal(ndim, 3);
    assert_true(k32[0] == (double)0.03663814812898636f);
    check_allclose(k32, k64, 14, 1e-5, 1e-7);
    s4_free(k64);
    s4_free(k32);
}

/* The writer reproduces numpy's own bytes for the same array. */
static void check_rewrite_identical(const char *rel, s4io_dtype dtype)
{
    char src[512], dst[512];
    data_path(src, sizeof src, rel);
    tmp_path(dst, sizeof dst, "rewrite.npy");
    double *x = NULL;
    int ndim = -1;
    int64_t shape[S4IO_MAX_DIMS];
    assert_int_equal(s4io_npy_read(src, &x, &ndim, shape), S4_OK);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    if (dtype == S4IO_F32) {
        float *xf = malloc(numel * sizeof *xf);
        assert_non_null(xf);
        for (size_t i = 0; i < numel; i++)
            xf[i] = (float)x[i];
        assert_int_equal(s4io_npy_write(dst, dtype, xf, ndim, shape), S4_OK);
        free(xf);
    } else {
        assert_int_equal(s4io_npy_write(dst, dtype, x, ndim, shape), S4_OK);
    }
    size_t la, lb;
    unsigned char *a = slurp(src, &la), *b = slurp(dst, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    s4_free(x);
    remove(dst);
}

static void test_npy_write_matches_numpy(void **state)
{
    (void)state;
    check_rewrite_identical("cases/h2_n8_l7/K_f64.npy", S4IO_F64);
    check_rewrite_identical("cases/h2_n8_l7/K_f32.npy", S4IO_F32);
    check_rewrite_identical("cases/h2_n8_l7/u.npy", S4IO_F32);
    assert_false(temp_leftovers());
}

/* ------------------------------------------------------------------------------ */
/* npy round trips                                                                 */

static void roundtrip(s4io_dtype dtype, int ndim, const int64_t *shape)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    double *want = malloc((numel ? numel : 1) * sizeof *want);
    float *wantf = malloc((numel ? numel : 1) * sizeof *wantf);
    assert_non_null(want);
    assert_non_null(wantf);
    for (size_t i = 0; i < numel; i++) {
        /* Exact in float32 for the f32 case; includes signed zero and infinities. */
        double v = ((double)i - 3.0) * 0.375;
        if (i == 1)
            v = -0.0;
        if (i == 2)
            v = dtype == S4IO_F32 ? -INFINITY : 1e300;
        if (i == 4)
            v = dtype == S4IO_F32 ? 0x1p-149 : 0x1p-1074; /* smallest subnormal */
        wantf[i] = (float)v;
        want[i] = dtype == S4IO_F32 ? (double)wantf[i] : v;
    }
    char path[512];
    tmp_path(path, sizeof path, "roundtrip.npy");
    const void *src = dtype == S4IO_F32 ? (const void *)wantf : (const void *)want;
    assert_int_equal(s4io_npy_write(path, dtype, src, ndim, shape), S4_OK);

    /* Data starts at a multiple of 64 bytes, after a '\n'. */
    size_t len;
    unsigned char *bytes = slurp(path, &len);
    const size_t header_end = 10 + (size_t)(bytes[8] | bytes[9] << 8);
    assert_int_equal(header_end % 64, 0);
    assert_int_equal(bytes[header_end - 1], '\n');
    assert_int_equal(len, header_end + numel * (dtype == S4IO_F32 ? 4 : 8));
    free(bytes);

    double *got = NULL;
    int got_ndim = -1;
    int64_t got_shape[S4IO_MAX_DIMS];
    assert_int_equal(s4io_npy_read(path, &got, &got_ndim, got_shape), S4_OK);
    assert_int_equal(got_ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(got_shape[i], shape[i]);
    for (size_t i = 0; i < numel; i++) {
        assert_memory_equal(&got[i], &want[i], sizeof(double)); /* bitwise, -0.0 included */
    }
    s4_free(got);
    free(want);
    free(wantf);
    remove(path);
}

static void test_npy_roundtrip(void **state)
{
    (void)state;
    static const int64_t shapes[][S4IO_MAX_DIMS] = {
        {0}, {5}, {3, 4}, {2, 3, 4}, {1, 2, 1, 2, 1, 2, 1, 2}, {0, 3}, {1}, {7, 0, 2}};
    static const int ranks[] = {0, 1, 2, 3, 8, 2, 1, 3};
    for (size_t s = 0; s < sizeof ranks / sizeof ranks[0]; s++) {
        roundtrip(S4IO_F32, ranks[s], shapes[s]);
        roundtrip(S4IO_F64, ranks[s], shapes[s]);
    }
    /* A scalar needs no shape pointer. */
    char path[512];
    tmp_path(path, sizeof path, "scalar.npy");
    const double pi = 3.141592653589793;
    assert_int_equal(s4io_npy_write(path, S4IO_F64, &pi, 0, NULL), S4_OK);
    double *got = NULL;
    int ndim = -1;
    int64_t shape[S4IO_MAX_DIMS];
    assert_int_equal(s4io_npy_read(path, &got, &ndim, shape), S4_OK);
    assert_int_equal(ndim, 0);
    assert_true(got[0] == pi);
    s4_free(got);
    remove(path);
    assert_false(temp_leftovers());
}

static void test_npy_write_replaces(void **state)
{
    (void)state;
    char path[512], stale[600];
    tmp_path(path, sizeof path, "replace.npy");
    const double one[3] = {1, 2, 3}, two[2] = {4, 5};
    const int64_t s3 = 3, s2 = 2;
    assert_int_equal(s4io_npy_write(path, S4IO_F64, one, 1, &s3), S4_OK);
    /* A file at a temporary-looking name (a crashed process's leftover, or another
     * writer's file in progress) neither blocks the write nor is touched by it. */
    snprintf(stale, sizeof stale, "%s.tmp.%lld", path, (long long)getpid());
    write_bytes(stale, "junk", 4);
    assert_int_equal(s4io_npy_write(path, S4IO_F64, two, 1, &s2), S4_OK);
    size_t stale_len = 0;
    unsigned char *stale_bytes = slurp(stale, &stale_len);
    assert_int_equal(stale_len, 4);
    assert_memory_equal(stale_bytes, "junk", 4);
    free(stale_bytes);
    remove(stale);
    double *got = NULL;
    int ndim;
    int64_t shape[S4IO_MAX_DIMS];
    assert_int_equal(s4io_npy_read(path, &got, &ndim, shape), S4_OK);
    assert_int_equal(shape[0], 2);
    assert_true(got[0] == 4 && got[1] == 5);
    s4_free(got);
    remove(path);
}

static void test_npy_write_errors(void **state)
{
    (void)state;
    char path[512];
    const double x[4] = {1, 2, 3, 4};
    const int64_t shape[S4IO_MAX_DIMS + 1] = {2, 2, 1, 1, 1, 1, 1, 1, 1};
    const int64_t negative[2] = {2, -2};
    const int64_t huge[3] = {INT64_MAX, INT64_MAX, 4};

    tmp_path(path, sizeof path, "no_such_dir/out.npy");
    check_fail("write into missing dir", s4io_npy_write(path, S4IO_F64, x, 2, shape), S4_ERR_IO,
               path, "tmp");
    tmp_path(path, sizeof path, "bad.npy");
    check_fail("write NULL path", s4io_npy_write(NULL, S4IO_F64, x, 2, shape),
               S4_ERR_INVALID_ARGUMENT, NULL, "path");
    check_fail("write dtype 7", s4io_npy_write(path, (s4io_dtype)7, x, 2, shape),
               S4_ERR_INVALID_ARGUMENT, path, "dtype");
    check_fail("write rank 9", s4io_npy_write(path, S4IO_F64, x, 9, shape),
               S4_ERR_INVALID_ARGUMENT, path, "ndim");
    check_fail("write rank -1", s4io_npy_write(path, S4IO_F64, x, -1, shape),
               S4_ERR_INVALID_ARGUMENT, path, "ndim");
    check_fail("write negative dim", s4io_npy_write(path, S4IO_F64, x, 2, negative),
               S4_ERR_INVALID_ARGUMENT, path, "shape[1]");
    check_fail("write overflowing shape", s4io_npy_write(path, S4IO_F64, x, 3, huge),
               S4_ERR_INVALID_ARGUMENT, path, "overflow");
    check_fail("write NULL shape", s4io_npy_write(path, S4IO_F64, x, 2, NULL),
               S4_ERR_INVALID_ARGUMENT, path, "shape");
    check_fail("write NULL data", s4io_npy_write(path, S4IO_F64, NULL, 2, shape),
               S4_ERR_INVALID_ARGUMENT, path, "data");
    assert_false(file_exists(path));
    assert_false(temp_leftovers());
}

/* ------------------------------------------------------------------------------ */
/* Hostile safetensors                                                             */

/* A small valid file: two tensors and metadata. */
static const char st_valid_header[] =
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]},"
    "\"__metadata__\":{\"k\":\"v\"}}";

static void test_st_valid_small(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = st_image(st_valid_header, 16, &len);
    char path[512];
    s4io_safetensors *file = NULL;
    assert_int_equal(st_open_bytes("valid.safetensors", img, len, path, sizeof path, &file),
                     S4_OK);
    assert_int_equal(s4io_safetensors_count(file), 2);
    assert_string_equal(s4io_safetensors_metadata(file, "k"), "v");
    const s4io_tensor *b = s4io_safetensors_find(file, "b");
    assert_non_null(b);
    assert_ptr_equal(b->data, s4io_safetensors_find(file, "a")->data + 8);
    s4io_safetensors_close(file);
    free(img);
}

/* Every strict prefix of a valid file is refused as malformed. */
static void test_st_truncated_everywhere(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = st_image(st_valid_header, 16, &len);
    char path[512];
    for (size_t k = 0; k < len; k++) {
        s4io_safetensors *file = (s4io_safetensors *)&file; /* sentinel: must stay */
        const s4_status st =
            st_open_bytes("trunc.safetensors", img, k, path, sizeof path, &file);
        char label[64];
        snprintf(label, sizeof label, "prefix of %zu bytes", k);
        const char *needle = k < 8 ? "too short"
                             : k < 8 + strlen(st_valid_header) ? "header length"
                                                                : "data_offsets";
        check_fail(label, st, S4_ERR_FORMAT, path, needle);
        assert_ptr_equal(file, (s4io_safetensors *)&file);
    }
    free(img);
}

typedef struct st_case {
    const char *label;
    const char *header;
    size_t data_len;
    s4_status want;
    const char *needle;
} st_case;

#define T8 "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static const st_case st_cases[] = {
    {"empty header", "", 8, S4_ERR_FORMAT, "JSON"},
    {"not JSON", "{not json", 8, S4_ERR_FORMAT, "JSON"},
    {"unterminated", "{\"a\":{" T8 "}", 8, S4_ERR_FORMAT, "JSON"},
    {"array header", "[1,2]", 8, S4_ERR_FORMAT, "object"},
    {"string header", "\"a\"", 8, S4_ERR_FORMAT, "object"},
    {"trailing garbage", "{\"a\":{" T8 "}} x", 8, S4_ERR_FORMAT, "trailing"},
    {"NUL in padding", "{\"a\":{" T8 "}} \0", 8, S4_ERR_FORMAT, "trailing"},
    {"entry not object", "{\"a\":5}", 8, S4_ERR_FORMAT, "'a'"},
    {"entry array", "{\"a\":[1]}", 8, S4_ERR_FORMAT, "'a'"},
    {"dtype missing", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, S4_ERR_FORMAT,
     "'dtype'"},
    {"dtype number", "{\"a\":{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'dtype'"},
    {"dtype twice",
     "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'dtype' appears twice"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "dtype 'Q7'"},
    {"F16 dtype", "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "dtype 'F16'"},
    {"lowercase dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     8, S4_ERR_FORMAT, "dtype 'f32'"},
    {"shape missing", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, S4_ERR_FORMAT,
     "'shape'"},
    {"shape string", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'shape'"},
    {"shape object", "{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'shape'"},
    {"shape negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "shape[0]"},
    {"shape fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,8]}}",
     8, S4_ERR_FORMAT, "shape[1]"},
    {"shape string dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
     8, S4_ERR_FORMAT, "shape[0]"},
    {"shape null dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "shape[0]"},
    {"shape 1e300", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "shape[0]"},
    {"shape 1e999", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e999],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "shape[0]"},
    {"shape 2^53", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740993],"
                   "\"data_offsets\":[0,0]}}",
     8, S4_ERR_FORMAT, "shape[1]"},
    {"shape rank 9",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'shape' has 9 dimensions"},
    {"shape count overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
     "\"data_offsets\":[0,8]}}",
     8, S4_ERR_FORMAT, "'shape' element count overflows"},
    {"shape byte overflow",
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,536870912],\"data_offsets\":[0,8]}}", 8,
     S4_ERR_FORMAT, "'shape' byte count overflows"},
    {"offsets missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, S4_ERR_FORMAT,
     "'data_offsets'"},
    {"offsets string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"0,8\"}}", 8,
     S4_ERR_FORMAT, "'data_offsets'"},
    {"offsets one", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
     S4_ERR_FORMAT, "'data_offsets' must have 2"},
    {"offsets three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
     S4_ERR_FORMAT, "'data_offsets' must have 2"},
    {"offsets string elem",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, S4_ERR_FORMAT,
     "data_offsets[0]"},
    {"offsets negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
     S4_ERR_FORMAT, "data_offsets[0]"},
    {"offsets fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,7.5]}}",
     8, S4_ERR_FORMAT, "data_offsets[1]"},
    {"offsets huge",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,"
     "18446744073709551616]}}",
     8, S4_ERR_FORMAT, "data_offsets[0]"},
    {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
     S4_ERR_FORMAT, "reversed"},
    {"offsets outside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8,
     S4_ERR_FORMAT, "data region"},
    {"empty at end+1", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}", 8,
     S4_ERR_FORMAT, "data region"},
    {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
     S4_ERR_FORMAT, "needs 12"},
    {"size mismatch dtype", "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     16, S4_ERR_FORMAT, "needs 16"},
    {"overlap",
     "{\"a\":{" T8 "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     S4_ERR_FORMAT, "overlap"},
    {"overlap contained",
     "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
     16, S4_ERR_FORMAT, "overlap"},
    {"overlap identical",
     "{\"a\":{" T8 "},\"b\":{" T8 "}}", 8, S4_ERR_FORMAT, "overlap"},
    {"overlap past a long one",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
     "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     16, S4_ERR_FORMAT, "overlap"},
    {"duplicate name", "{\"a\":{" T8 "},\"a\":{" T8 "}}", 8, S4_ERR_FORMAT,
     "'a'"}, /* overlap or duplicate: either names 'a' */
    {"duplicate name disjoint",
     "{\"a\":{" T8 "},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
     S4_ERR_FORMAT, "'a' appears twice"},
    {"metadata not object", "{\"a\":{" T8 "},\"__metadata__\":5}", 8, S4_ERR_FORMAT,
     "'__metadata__'"},
    {"metadata value number", "{\"a\":{" T8 "},\"__metadata__\":{\"k\":1}}", 8, S4_ERR_FORMAT,
     "key 'k'"},
    {"metadata twice",
     "{\"a\":{" T8 "},\"__metadata__\":{},\"__metadata__\":{}}", 8, S4_ERR_FORMAT,
     "'__metadata__' appears twice"},
    {"metadata key twice",
     "{\"a\":{" T8 "},\"__metadata__\":{\"k\":\"x\",\"k\":\"y\"}}", 8, S4_ERR_FORMAT,
     "key 'k' appears twice"},
};

static void test_st_hostile_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof st_cases / sizeof st_cases[0]; i++) {
        const st_case *c = &st_cases[i];
        size_t len;
        unsigned char *img = st_image(c->header, c->data_len, &len);
        /* The "NUL in padding" case carries a byte strlen cannot see. */
        if (strcmp(c->label, "NUL in padding") == 0) {
            const size_t n = strlen(c->header) + 1;
            free(img);
            img = malloc(8 + n + c->data_len);
            assert_non_null(img);
            for (int b = 0; b < 8; b++)
                img[b] = (unsigned char)((uint64_t)n >> (8 * b));
            memcpy(img + 8, c->header, n);
            memset(img + 8 + n, 0, c->data_len);
            len = 8 + n + c->data_len;
        }
        char path[512];
        s4io_safetensors *file = (s4io_safetensors *)&file;
        const s4_status st = st_open_bytes("hostile.safetensors", img, len, path, sizeof path,
                                           &file);
        check_fail(c->label, st, c->want, path, c->needle);
        assert_ptr_equal(file, (s4io_safetensors *)&file);
        free(img);
    }
}

/* Headers that look odd but are valid. */
static void test_st_accepted_oddities(void **state)
{
    (void)state;
    static const struct {
        const char *label, *header;
        size_t data_len, count;
    } ok[] = {
        {"no tensors", "{}", 0, 0},
        {"padded", "{\"a\":{" T8 "}}   \n\t ", 8, 1},
        {"metadata null", "{\"a\":{" T8 "},\"__metadata__\":null}", 8, 1},
        {"metadata only", "{\"__metadata__\":{\"x\":\"y\"}}", 0, 0},
        {"empty tensors", "{\"e\":{\"dtype\":\"F64\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                          "\"a\":{" T8 "},\"z\":{\"dtype\":\"I64\",\"shape\":[0],"
                          "\"data_offsets\":[8,8]}}",
         8, 3},
        {"extra keys", "{\"a\":{" T8 ",\"extra\":[1]}}", 8, 1},
        {"integral float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
         8, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        unsigned char *img = st_image(ok[i].header, ok[i].data_len, &len);
        char path[512];
        s4io_safetensors *file = NULL;
        const s4_status st = st_open_bytes("odd.safetensors", img, len, path, sizeof path, &file);
        if (st != S4_OK)
            fail_msg("%s: %s", ok[i].label, s4_last_error());
        assert_int_equal(s4io_safetensors_count(file), ok[i].count);
        for (size_t k = 0; k < ok[i].count; k++) {
            const s4io_tensor *t = s4io_safetensors_at(file, k);
            double x[2];
            assert_true(t->numel <= 2);
            assert_int_equal(s4io_tensor_to_f64(t, t->numel ? x : NULL, t->numel), S4_OK);
        }
        s4io_safetensors_close(file);
        free(img);
    }
    /* Bytes that belong to no tensor: the format allows neither a gap nor a tail (its
     * reference implementation refuses both). Accepted until issue 12 called it a defect. */
    static const struct {
        const char *label, *header, *needle;
        size_t data_len;
    } bad[] = {
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "unused", 8},
        {"tail", "{\"a\":{" T8 "}}", "belong to no tensor", 12},
        {"gap between", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         "[4, 8)", 12},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        unsigned char *img = st_image(bad[i].header, bad[i].data_len, &len);
        char path[512];
        s4io_safetensors *file = (s4io_safetensors *)&file;
        check_fail(bad[i].label,
                   st_open_bytes("hole.safetensors", img, len, path, sizeof path, &file),
                   S4_ERR_FORMAT, path, bad[i].needle);
        assert_ptr_equal(file, (s4io_safetensors *)&file);
        free(img);
    }
}

static void test_st_bad_lengths_and_io(void **state)
{
    (void)state;
    size_t len;
    unsigned char *img = st_image(st_valid_header, 16, &len);
    char path[512];
    s4io_safetensors *file = (s4io_safetensors *)&file;
    const size_t n = strlen(st_valid_header);

    /* Header length one beyond the file, then every byte 0xff (2^64 - 1). */
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)((uint64_t)(len - 7) >> (8 * i));
    check_fail("header length beyond file",
               st_open_bytes("len.safetensors", img, len, path, sizeof path, &file),
               S4_ERR_FORMAT, path, "header length");
    memset(img, 0xff, 8);
    check_fail("header length 2^64-1",
               st_open_bytes("len.safetensors", img, len, path, sizeof path, &file),
               S4_ERR_FORMAT, path, "18446744073709551615");
    memset(img, 0, 8);
    img[7] = 0x80; /* 2^63 */
    check_fail("header length 2^63",
               st_open_bytes("len.safetensors", img, len, path, sizeof path, &file),
               S4_ERR_FORMAT, path, "header length");
    /* Header length too short: the JSON is cut. */
    for (int i = 0; i < 8; i++)
        img[i] = (unsigned char)((uint64_t)(n - 1) >> (8 * i));
    check_fail("header length short",
               st_open_bytes("len.safetensors", img, len, path, sizeof path, &file),
               S4_ERR_FORMAT, path, "JSON");
    assert_ptr_equal(file, (s4io_safetensors *)&file);
    free(img);

    tmp_path(path, sizeof path, "does_not_exist.safetensors");
    check_fail("missing file", s4io_safetensors_open(path, &file), S4_ERR_IO, path, "open");
    check_fail("directory", s4io_safetensors_open(tmp_dir, &file), S4_ERR_IO, tmp_dir, NULL);
    check_fail("NULL path", s4io_safetensors_open(NULL, &file), S4_ERR_INVALID_ARGUMENT, NULL,
               "path");
    check_fail("NULL out", s4io_safetensors_open(path, NULL), S4_ERR_INVALID_ARGUMENT, NULL,
               "out");
    assert_ptr_equal(file, (s4io_safetensors *)&file);

    /* NULL-tolerant accessors. */
    s4io_safetensors_close(NULL);
    assert_int_equal(s4io_safetensors_count(NULL), 0);
    assert_null(s4io_safetensors_at(NULL, 0));
    assert_null(s4io_safetensors_find(NULL, "a"));
    assert_null(s4io_safetensors_metadata(NULL, "a"));
    check_fail("to_f64 NULL", s4io_tensor_to_f64(NULL, NULL, 0), S4_ERR_INVALID_ARGUMENT, NULL,
               "t");
}

/* Every byte of a valid file replaced by a few troublesome values: the result is either a
 * valid file or S4_ERR_FORMAT with a message, never a crash or a sanitizer report. */
static void test_st_mutations(void **state)
{
    (void)state;
    static const unsigned char values[] = {0x00, 0xff, '"', '[', ']', '{', '}', ',', ':', '9',
                                           '-', 'e', '.', ' ', '\\'};
    size_t len;
    unsigned char *img = st_image(st_valid_header, 16, &len);
    unsigned char *mut = malloc(len);
    assert_non_null(mut);
    char path[512];
    size_t n_ok = 0, n_fail = 0;
    for (size_t pos = 0; pos < 8 + strlen(st_valid_header); pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(mut, img, len);
            mut[pos] = values[v];
            s4io_safetensors *file = NULL;
            const s4_status st =
                st_open_bytes("mut.safetensors", mut, len, path, sizeof path, &file);
            if (st == S4_OK) {
                for (size_t k = 0; k < s4io_safetensors_count(file); k++) {
                    const s4io_tensor *t = s4io_safetensors_at(file, k);
                    double x[4];
                    assert_true(t->numel <= 4);
                    assert_int_equal(s4io_tensor_to_f64(t, x, 4), S4_OK);
                }
                s4io_safetensors_close(file);
                n_ok++;
            } else {
                check_fail("mutation", st, S4_ERR_FORMAT, path, NULL);
                n_fail++;
            }
        }
    }
    assert_true(n_ok > 0 && n_fail > 0);
    free(mut);
    free(img);
}

/* ------------------------------------------------------------------------------ */
/* Hostile npy                                                                     */

#define NPY_OK_DICT "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"

typedef struct npy_case {
    const char *label;
    int major;
    const char *dict;
    size_t data_len;
    s4_status want;
    const char *needle;
} npy_case;

static const npy_case npy_cases[] = {
    {"version 0", 0, NPY_OK_DICT, 24, S4_ERR_FORMAT, "version 0.0"},
    {"version 4", 4, NPY_OK_DICT, 24, S4_ERR_FORMAT, "version 4.0"},
    {"fortran order", 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'fortran_order'"},
    {"fortran garbage", 1, "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'fortran_order'"},
    {"big-endian f4", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12,
     S4_ERR_FORMAT, "'descr': big-endian '>f4'"},
    {"big-endian f8", 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "big-endian '>f8'"},
    {"int64 as floats", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "an integer array, expected floats"},
    {"int16", 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", 6,
     S4_ERR_FORMAT, "'descr': unsupported dtype '<i2'"},
    {"uint8", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 3, S4_ERR_FORMAT,
     "'|u1'"},
    {"native f8", 1, "{'descr': '=f8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'=f8'"},
    {"descr number", 1, "{'descr': 8, 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'descr' value"},
    {"descr structured", 1,
     "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }", 24, S4_ERR_FORMAT,
     "'descr' value"},
    {"descr escaped", 1, "{'descr': '<f\\8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'descr' value"},
    {"shape negative", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }", 24,
     S4_ERR_FORMAT, "'shape': dimension 0 is negative"},
    {"shape letter", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, x), }", 24,
     S4_ERR_FORMAT, "'shape': expected dimension 1"},
    {"shape float", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,), }", 24,
     S4_ERR_FORMAT, "'shape'"},
    {"shape not tuple", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3), }", 24,
     S4_ERR_FORMAT, "'shape': '(3)' is not a tuple"},
    {"shape list", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': [3], }", 24,
     S4_ERR_FORMAT, "'shape'"},
    {"shape double comma", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,,), }", 24,
     S4_ERR_FORMAT, "'shape'"},
    {"shape unclosed", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, ", 24,
     S4_ERR_FORMAT, "'shape'"},
    {"shape rank 9", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 3), }", 24,
     S4_ERR_FORMAT, "'shape': more than the 8"},
    {"shape count overflow", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), "
     "}",
     24, S4_ERR_FORMAT, "'shape': element count overflows"},
    {"shape byte overflow", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 536870912), }", 24,
     S4_ERR_FORMAT, "'shape': byte count overflows"},
    {"shape int64 overflow", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 24,
     S4_ERR_FORMAT, "does not fit in int64"},
    {"missing shape", 1, "{'descr': '<f8', 'fortran_order': False, }", 24, S4_ERR_FORMAT,
     "missing key 'shape'"},
    {"missing descr", 1, "{'fortran_order': False, 'shape': (3,), }", 24, S4_ERR_FORMAT,
     "missing key 'descr'"},
    {"unknown key", 1,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'foo': 1, }", 24,
     S4_ERR_FORMAT, "unknown key 'foo'"},
    {"duplicate key", 1,
     "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "'descr' appears twice"},
    {"unterminated dict", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)", 24,
     S4_ERR_FORMAT, "header"},
    {"unterminated string", 1, "{'descr': '<f8", 24, S4_ERR_FORMAT, "'descr' value"},
    {"no dict", 1, "'descr'", 24, S4_ERR_FORMAT, "'{'"},
    {"garbage after dict", 1, NPY_OK_DICT " x", 24, S4_ERR_FORMAT, "padding"},
    {"missing colon", 1, "{'descr' '<f8', 'fortran_order': False, 'shape': (3,), }", 24,
     S4_ERR_FORMAT, "':'"},
    {"truncated data", 1, NPY_OK_DICT, 23, S4_ERR_FORMAT, "truncated"},
    {"trailing data", 1, NPY_OK_DICT, 25, S4_ERR_FORMAT, "trailing"},
    {"truncated v2", 2, NPY_OK_DICT, 16, S4_ERR_FORMAT, "truncated"},
};

static void test_npy_hostile(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "hostile.npy");
    for (size_t i = 0; i < sizeof npy_cases / sizeof npy_cases[0]; i++) {
        const npy_case *c = &npy_cases[i];
        size_t len;
        unsigned char *img = npy_image(c->major, c->dict, c->data_len, &len);
        write_bytes(path, img, len);
        double *data = (double *)&data; /* sentinels: must stay */
        int ndim = -7;
        int64_t shape[S4IO_MAX_DIMS] = {-7};
        check_fail(c->label, s4io_npy_read(path, &data, &ndim, shape), c->want, path,
                   c->needle);
        assert_ptr_equal(data, (double *)&data);
        assert_int_equal(ndim, -7);
        assert_int_equal(shape[0], -7);
        free(img);
    }
}

static void test_npy_accepted_variants(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        int major;
        const char *dict;
        int ndim;
        int64_t dim0;
    } ok[] = {
        {"version 2", 2, NPY_OK_DICT, 1, 3},
        {"version 3", 3, NPY_OK_DICT, 1, 3},
        {"key order, no spaces", 1, "{'shape':(3,),'fortran_order':False,'descr':'<f8'}", 1, 3},
        {"double quotes", 1, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,)}",
         1, 3},
        {"python 2 longs", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 3L), }",
         2, 1},
        {"trailing comma in shape", 1,
         "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3,), }", 2, 1},
    };
    char path[512];
    tmp_path(path, sizeof path, "variant.npy");
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        unsigned char *img = npy_image(ok[i].major, ok[i].dict, 24, &len);
        const double v[3] = {1.5, -2.25, 1e-300};
        for (int k = 0; k < 3; k++) {
            uint64_t bits;
            memcpy(&bits, &v[k], 8);
            for (int b = 0; b < 8; b++)
                img[len - 24 + 8 * (size_t)k + (size_t)b] = (unsigned char)(bits >> (8 * b));
        }
        write_bytes(path, img, len);
        double *data = NULL;
        int ndim = -1;
        int64_t shape[S4IO_MAX_DIMS];
        if (s4io_npy_read(path, &data, &ndim, shape) != S4_OK)
            fail_msg("%s: %s", ok[i].label, s4_last_error());
        assert_int_equal(ndim, ok[i].ndim);
        assert_int_equal(shape[0], ok[i].dim0);
        check_allclose(data, v, 3, 0, 0);
        s4_free(data);
        free(img);
    }
}

static void test_npy_truncated_everywhere(void **state)
{
    (void)state;
    char src[512], path[512];
    data_path(src, sizeof src, "cases/h2_n8_l7/K_f32.npy");
    tmp_path(path, sizeof path, "trunc.npy");
    size_t len;
    unsigned char *img = slurp(src, &len);
    for (size_t k = 0; k < len; k++) {
        write_bytes(path, img, k);
        double *data = (double *)&data;
        int ndim = -7;
        int64_t shape[S4IO_MAX_DIMS];
        char label[64];
        snprintf(label, sizeof label, "npy prefix of %zu bytes", k);
        const char *needle = k < 10 ? NULL : k < 128 ? "header length" : "truncated";
        check_fail(label, s4io_npy_read(path, &data, &ndim, shape), S4_ERR_FORMAT, path,
                   needle);
        assert_ptr_equal(data, (double *)&data);
    }
    free(img);

    check_fail("npy NULL outputs", s4io_npy_read(src, NULL, NULL, NULL),
               S4_ERR_INVALID_ARGUMENT, NULL, "data");
    tmp_path(path, sizeof path, "does_not_exist.npy");
    double *data = NULL;
    int ndim;
    int64_t shape[S4IO_MAX_DIMS];
    check_fail("npy missing file", s4io_npy_read(path, &data, &ndim, shape), S4_ERR_IO, path,
               "open");
    tmp_path(path, sizeof path, "bad_magic.npy");
    write_bytes(path, "\x93NUMPX\x01\x00\x76\x00", 10);
    check_fail("npy bad magic", s4io_npy_read(path, &data, &ndim, shape), S4_ERR_FORMAT, path,
               "magic");
    static const char zip[] = "PK\x03\x04 this is a zip file, not npy";
    write_bytes(path, zip, sizeof zip - 1);
    check_fail("npy zip", s4io_npy_read(path, &data, &ndim, shape), S4_ERR_FORMAT, path,
               "magic");
    assert_null(data);
}

/* Every byte of a valid header replaced by troublesome values: valid or FORMAT, no crash. */
static void test_npy_mutations(void **state)
{
    (void)state;
    static const unsigned char values[] = {0x00, 0xff, '\'', '"', '(', ')', '{', '}', ',',
                                           ':', '9', '-', ' ', 'L', '\\'};
    char src[512], path[512];
    data_path(src, sizeof src, "cases/h2_n8_l7/K_f64.npy");
    tmp_path(path, sizeof path, "mut.npy");
    size_t len;
    unsigned char *img = slurp(src, &len);
    unsigned char *mut = malloc(len);
    assert_non_null(mut);
    size_t n_ok = 0, n_fail = 0;
    for (size_t pos = 0; pos < 128; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(mut, img, len);
            mut[pos] = values[v];
            write_bytes(path, mut, len);
            double *data = NULL;
            int ndim;
            int64_t shape[S4IO_MAX_DIMS];
            const s4_status st = s4io_npy_read(path, &data, &ndim, shape);
            if (st == S4_OK) {
                s4_free(data);
                n_ok++;
            } else {
                check_fail("npy mutation", st, S4_ERR_FORMAT, path, NULL);
                n_fail++;
            }
        }
    }
    assert_true(n_ok > 0 && n_fail > 0);
    free(mut);
    free(img);
}

/* ------------------------------------------------------------------------------ */
/* Writers racing on one path (src/io/io_atomic.c)                                    */

enum { RACE_WRITERS = 4, RACE_SAVES = 12, RACE_NUMEL = 1 << 17 };

typedef struct race {
    const char *path;
    bool npy;                    /* s4io_npy_write, else s4io_safetensors_write */
    int id;                      /* writer number, or -1 for the reader */
    const double *values;        /* the writers' values: values[i] = i (+ 0.5 id below) */
    _Atomic int *writers_left;
    int n_fail;                  /* saves that did not return S4_OK */
    int n_bad;                   /* reads that saw anything but a whole file */
    int n_whole;                 /* reads that saw a whole file */
    char first_error[512];
} race;

static void race_note(race *r, const char *what)
{
    if (!r->first_error[0])
        snprintf(r->first_error, sizeof r->first_error, "%s: %s", what, s4_last_error());
}

static void *race_writer(void *arg)
{
    race *r = arg;
    double *v = malloc(RACE_NUMEL * sizeof *v);
    if (!v) {
        r->n_fail = RACE_SAVES;
        atomic_fetch_sub(r->writers_left, 1);
        return NULL;
    }
    for (size_t i = 0; i < RACE_NUMEL; i++)
        v[i] = r->values[i] + 0.5 * r->id; /* every element names its writer */
    const int64_t shape[1] = {RACE_NUMEL};
    for (int k = 0; k < RACE_SAVES; k++) {
        s4_status st;
        if (r->npy) {
            st = s4io_npy_write(r->path, S4IO_F64, v, 1, shape);
        } else {
            s4io_tensor_out t = {.name = "x", .dtype = S4IO_F64, .ndim = 1, .values = v};
            t.shape[0] = RACE_NUMEL;
            const char *meta[] = {"writer", "race"};
            st = s4io_safetensors_write(r->path, &t, 1, meta, 1);
        }
        if (st != S4_OK) {
            r->n_fail++;
            race_note(r, "save");
        }
    }
    free(v);
    atomic_fetch_sub(r->writers_left, 1);
    return NULL;
}

/* A whole file: RACE_NUMEL values i + 0.5 w, one writer w throughout. */
static bool race_whole(const race *r, const double *x, size_t n)
{
    if (n != RACE_NUMEL)
        return false;
    const double w = x[0] - r->values[0];
    if (!(w == 0.0 || w == 0.5 || w == 1.0 || w == 1.5))
        return false;
    for (size_t i = 0; i < n; i++)
        if (x[i] != r->values[i] + w)
            return false;
    return true;
}

/* One read of the file: its status, *whole set when it is a complete file of one writer. */
static s4_status race_read(const race *r, double *x, bool *whole)
{
    s4_status st;
    *whole = false;
    if (r->npy) {
        double *data = NULL;
        int ndim = 0;
        int64_t shape[S4IO_MAX_DIMS];
        st = s4io_npy_read(r->path, &data, &ndim, shape);
        *whole = st == S4_OK && ndim == 1 && race_whole(r, data, (size_t)shape[0]);
        s4_free(data);
    } else {
        s4io_safetensors *f = NULL;
        st = s4io_safetensors_open(r->path, &f);
        if (st == S4_OK) {
            const s4io_tensor *t = s4io_safetensors_find(f, "x");
            const char *m = s4io_safetensors_metadata(f, "writer");
            *whole = s4io_safetensors_count(f) == 1 && t && t->numel == RACE_NUMEL && m &&
                     strcmp(m, "race") == 0 && s4io_tensor_to_f64(t, x, RACE_NUMEL) == S4_OK &&
                     race_whole(r, x, t->numel);
            s4io_safetensors_close(f);
        }
    }
    return st;
}

static void *race_reader(void *arg)
{
    race *r = arg;
    double *x = malloc(RACE_NUMEL * sizeof *x);
    if (!x) {
        r->n_bad++;
        return NULL;
    }
    while (atomic_load(r->writers_left) > 0) {
        bool whole = false;
        const s4_status st = race_read(r, x, &whole);
        if (st == S4_ERR_IO && r->n_whole == 0)
            continue; /* not written yet: the only acceptable failure */
        if (whole) {
            r->n_whole++;
        } else {
            r->n_bad++;
            race_note(r, "read");
        }
    }
    free(x);
    return NULL;
}

/* Several threads of one process save to the same path while another reads it: every save
 * succeeds and every read sees no file yet or a whole one, never a partial one (the
 * temporary names used to be "<path>.tmp.<pid>", the same for every thread). */
static void race_run(bool npy)
{
    char path[512];
    tmp_path(path, sizeof path, npy ? "race.npy" : "race.safetensors");
    remove(path);
    double *values = malloc(RACE_NUMEL * sizeof *values);
    assert_non_null(values);
    for (size_t i = 0; i < RACE_NUMEL; i++)
        values[i] = (double)i;
    _Atomic int writers_left = RACE_WRITERS;
    race r[RACE_WRITERS + 1];
    pthread_t th[RACE_WRITERS + 1];
    for (int k = 0; k <= RACE_WRITERS; k++) {
        r[k] = (race){.path = path, .npy = npy, .id = k < RACE_WRITERS ? k : -1,
                      .values = values, .writers_left = &writers_left};
        assert_int_equal(pthread_create(&th[k], NULL, k < RACE_WRITERS ? race_writer
                                                                        : race_reader,
                                        &r[k]),
                         0);
    }
    for (int k = 0; k <= RACE_WRITERS; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k <= RACE_WRITERS; k++)
        if (r[k].n_fail || r[k].n_bad)
            fail_msg("%s, thread %d: %d failed saves, %d partial reads; first: %s",
                     npy ? "npy" : "safetensors", k, r[k].n_fail, r[k].n_bad,
                     r[k].first_error);
    /* The last file is whole, and no temporary is left behind. */
    double *x = malloc(RACE_NUMEL * sizeof *x);
    assert_non_null(x);
    bool whole = false;
    assert_int_equal(race_read(&r[RACE_WRITERS], x, &whole), S4_OK);
    assert_true(whole);
    free(x);
    free(values);
    assert_false(temp_leftovers());
    remove(path);
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    race_run(false);
    race_run(true);
}

/* F32 tensors hold values within float range only: a larger double would become an
 * infinity that no loader accepts. The tensor is named and nothing is written. */
static void test_st_write_f32_range(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "range.safetensors");
    const double big[3] = {1.0, -1e39, 2.0};
    const double edge[3] = {FLT_MAX, -(double)FLT_MAX, 0.0};
    const double beyond[1] = {nextafter((double)FLT_MAX, INFINITY)};
    s4io_tensor_out t[2] = {
        {.name = "ok", .dtype = S4IO_F32, .ndim = 1, .shape = {3}, .values = edge},
        {.name = "layer.D", .dtype = S4IO_F32, .ndim = 1, .shape = {3}, .values = big}};
    check_fail("F32 beyond float range", s4io_safetensors_write(path, t, 2, NULL, 0),
               S4_ERR_INVALID_ARGUMENT, path, "'layer.D'");
    assert_non_null(strstr(s4_last_error(), "element 1"));
    assert_false(file_exists(path));
    t[1].values = beyond;
    t[1].shape[0] = 1;
    check_fail("F32 just beyond FLT_MAX", s4io_safetensors_write(path, t, 2, NULL, 0),
               S4_ERR_INVALID_ARGUMENT, path, "'layer.D'");
    assert_false(file_exists(path));
    /* The same values as F64 are fine; FLT_MAX itself is fine as F32. */
    t[1].dtype = S4IO_F64;
    t[1].values = big;
    t[1].shape[0] = 3;
    assert_int_equal(s4io_safetensors_write(path, t, 2, NULL, 0), S4_OK);
    s4io_safetensors *f = NULL;
    assert_int_equal(s4io_safetensors_open(path, &f), S4_OK);
    double got[3];
    assert_int_equal(s4io_tensor_to_f64(s4io_safetensors_find(f, "ok"), got, 3), S4_OK);
    assert_true(got[0] == FLT_MAX && got[1] == -FLT_MAX && got[2] == 0.0);
    assert_int_equal(s4io_tensor_to_f64(s4io_safetensors_find(f, "layer.D"), got, 3), S4_OK);
    assert_true(got[1] == -1e39);
    s4io_safetensors_close(f);
    remove(path);
    assert_false(temp_leftovers());
}

/* The S4D golden state_dicts (tests/data/s4d): SSMKernelDiag registers no P and no l_kernel,
 * and the writer reproduces each file's tensor bytes (F32 and F64 alike) from its values. */
static void check_s4d_file(const char *path, s4io_dtype want_dtype)
{
    static const char *const kernel[] = {"layer.kernel.A_real", "layer.kernel.A_imag",
                                         "layer.kernel.B",      "layer.kernel.C",
                                         "layer.kernel.inv_dt", "layer.D"};
    s4io_safetensors *file = NULL;
    if (s4io_safetensors_open(path, &file) != S4_OK)
        fail_msg("%s", s4_last_error());
    assert_null(s4io_safetensors_find(file, "layer.kernel.P"));
    assert_null(s4io_safetensors_find(file, "layer.kernel.l_kernel"));
    for (size_t i = 0; i < sizeof kernel / sizeof kernel[0]; i++) {
        const s4io_tensor *t = s4io_safetensors_find(file, kernel[i]);
        if (!t)
            fail_msg("%s: no tensor %s", path, kernel[i]);
        assert_int_equal(t->dtype, want_dtype);
    }
    /* Complex parameters: real-then-imaginary pairs (view_as_real). */
    assert_int_equal(s4io_safetensors_find(file, "layer.kernel.B")->shape[3], 2);
    assert_int_equal(s4io_safetensors_find(file, "layer.kernel.C")->shape[3], 2);

    const size_t n = s4io_safetensors_count(file);
    assert_true(n == 6 || n == 8); /* with or without the output linear */
    s4io_tensor_out out[8];
    double *values[8] = {0};
    for (size_t i = 0; i < n; i++) {
        const s4io_tensor *t = s4io_safetensors_at(file, i);
        values[i] = malloc(t->numel * sizeof *values[i]);
        assert_non_null(values[i]);
        assert_int_equal(s4io_tensor_to_f64(t, values[i], t->numel), S4_OK);
        out[i] = (s4io_tensor_out){.name = t->name, .dtype = t->dtype, .ndim = t->ndim,
                                   .values = values[i]};
        memcpy(out[i].shape, t->shape, sizeof t->shape);
    }
    char copy[512];
    tmp_path(copy, sizeof copy, "s4d_copy.safetensors");
    assert_int_equal(s4io_safetensors_write(copy, out, n, NULL, 0), S4_OK);
    s4io_safetensors *again = NULL;
    assert_int_equal(s4io_safetensors_open(copy, &again), S4_OK);
    assert_int_equal(s4io_safetensors_count(again), n);
    for (size_t i = 0; i < n; i++) {
        const s4io_tensor *a = s4io_safetensors_at(file, i);
        const s4io_tensor *b = s4io_safetensors_find(again, a->name);
        assert_non_null(b);
        assert_int_equal(a->dtype, b->dtype);
        assert_int_equal(a->ndim, b->ndim);
        assert_memory_equal(a->shape, b->shape, sizeof a->shape);
        const size_t bytes = a->numel * (a->dtype == S4IO_F32 ? 4 : 8);
        if (memcmp(a->data, b->data, bytes) != 0)
            fail_msg("%s: tensor %s: rewritten bytes differ", path, a->name);
        free(values[i]);
    }
    s4io_safetensors_close(again);
    s4io_safetensors_close(file);
    remove(copy);
}

static void test_st_s4d_golden(void **state)
{
    (void)state;
    char dir[512];
    data_path(dir, sizeof dir, "s4d/cases");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n_cases = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "s4d_", 4) != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/params_init.safetensors", dir, e->d_name);
        check_s4d_file(path, S4IO_F32);
        snprintf(path, sizeof path, "%s/%s/params_after_f64.safetensors", dir, e->d_name);
        if (file_exists(path))
            check_s4d_file(path, S4IO_F64);
        n_cases++;
    }
    closedir(d);
    assert_true(n_cases >= 20);
    assert_false(temp_leftovers());
}

/* ------------------------------------------------------------------------------ */

/* A private directory under $TMPDIR (or /tmp), never inside the source tree. */
static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    const int n = snprintf(tmp_dir, sizeof tmp_dir, "%s/s4_test_io_XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof tmp_dir)
        return -1;
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return s4t_rmdir_flat(tmp_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_legs_n8),
        cmocka_unit_test(test_st_params_init),
        cmocka_unit_test(test_st_padded_header),
        cmocka_unit_test(test_all_golden_files),
        cmocka_unit_test(test_npy_golden),
        cmocka_unit_test(test_npy_write_matches_numpy),
        cmocka_unit_test(test_npy_roundtrip),
        cmocka_unit_test(test_npy_write_replaces),
        cmocka_unit_test(test_npy_write_errors),
        cmocka_unit_test(test_st_valid_small),
        cmocka_unit_test(test_st_truncated_everywhere),
        cmocka_unit_test(test_st_hostile_headers),
        cmocka_unit_test(test_st_accepted_oddities),
        cmocka_unit_test(test_st_bad_lengths_and_io),
        cmocka_unit_test(test_st_mutations),
        cmocka_unit_test(test_npy_hostile),
        cmocka_unit_test(test_npy_accepted_variants),
        cmocka_unit_test(test_npy_truncated_everywhere),
        cmocka_unit_test(test_npy_mutations),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_st_write_f32_range),
        cmocka_unit_test(test_st_s4d_golden),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
