/* NumPy .npy arrays: a careful reader for the little-endian float formats libs4 exchanges
 * with the reference, and an atomic writer of version 1.0 files.
 *
 * Format (numpy/lib/format.py): the magic "\x93NUMPY", a major and minor version byte,
 * a little-endian header length (2 bytes in 1.0, 4 in 2.0 and 3.0), a header that is a
 * Python dict literal {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } padded
 * with spaces and ending in '\n', then the raw data.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE single and double expected");

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* Real headers are under 200 bytes; version 2.0 exists for huge structured dtypes, which
 * are refused anyway. The bound keeps a corrupt length from becoming a huge allocation. */
enum { NPY_MAX_HEADER = 1 << 16 };

/* Elements converted per buffered read or write. */
enum { NPY_CHUNK = 512 };

/* ------------------------------------------------------------------------------ */
/* Little-endian element codecs                                                    */

/* Bytes are assembled into an integer of the element's width whose bits are then
 * reinterpreted, so the host's byte order and the buffer's alignment do not matter. */
static double load_f32le(const unsigned char *p)
{
    const uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static double load_f64le(const unsigned char *p)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = (bits << 8) | p[i];
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void store_le(unsigned char *p, uint64_t bits, size_t width)
{
    for (size_t i = 0; i < width; i++, bits >>= 8)
        p[i] = (unsigned char)(bits & 0xff);
}

/* ------------------------------------------------------------------------------ */
/* Header dict parser                                                              */

/* A cursor over the header text; `end` bounds every read, so a NUL or a missing closing
 * brace is just an unexpected character, never an overrun. */
typedef struct npy_cursor {
    const char *path;
    const char *begin, *p, *end;
} npy_cursor;

typedef struct npy_header {
    size_t elem_size; /* 4 or 8 */
    bool is_int;      /* '<i4' / '<i8' (token arrays) rather than '<f4' / '<f8' */
    int ndim;
    int64_t shape[S4IO_MAX_DIMS];
    size_t numel;
} npy_header;

static void skip_space(npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static size_t offset(const npy_cursor *c) { return (size_t)(c->p - c->begin); }

/* What the cursor sees, for "expected X, found Y" messages. */
static const char *found(const npy_cursor *c, char buf[8])
{
    if (c->p >= c->end)
        return "the end of the header";
    const unsigned char ch = (unsigned char)*c->p;
    if (ch >= 0x20 && ch < 0x7f)
        snprintf(buf, 8, "'%c'", ch);
    else
        snprintf(buf, 8, "0x%02x", ch);
    return buf;
}

static s4_status expect_char(npy_cursor *c, char want, const char *context)
{
    skip_space(c);
    if (c->p < c->end && *c->p == want) {
        c->p++;
        return S4_OK;
    }
    char buf[8];
    return s4__fail(S4_ERR_FORMAT, "%s: header: expected '%c' %s at byte %zu, found %s", c->path,
                    want, context, offset(c), found(c, buf));
}

/* True (and consumes it) if the next non-space character is `ch`. */
static bool accept_char(npy_cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes (numpy never writes any in these fields), copied
 * into out[cap] (truncated if longer: such a value is refused by the caller anyway). */
static s4_status parse_string(npy_cursor *c, char *out, size_t cap, const char *what)
{
    skip_space(c);
    char buf[8];
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return s4__fail(S4_ERR_FORMAT, "%s: header: expected a quoted %s at byte %zu, found %s",
                        c->path, what, offset(c), found(c, buf));
    const char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p == '\n' || *c->p == '\0')
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header: unsupported character %s in a quoted %s at byte %zu",
                            c->path, found(c, buf), what, offset(c));
        if (n + 1 < cap)
            out[n++] = *c->p;
        c->p++;
    }
    if (c->p >= c->end)
        return s4__fail(S4_ERR_FORMAT, "%s: header: unterminated %s", c->path, what);
    c->p++;
    out[n] = '\0';
    return S4_OK;
}

static s4_status parse_descr(npy_cursor *c, npy_header *h)
{
    char descr[24];
    s4_status status = parse_string(c, descr, sizeof descr, "'descr' value");
    if (status)
        return status;
    if (strcmp(descr, "<f4") == 0)
        h->elem_size = 4;
    else if (strcmp(descr, "<f8") == 0)
        h->elem_size = 8;
    else if (strcmp(descr, "<i4") == 0)
        h->elem_size = 4, h->is_int = true;
    else if (strcmp(descr, "<i8") == 0)
        h->elem_size = 8, h->is_int = true;
    else if (strcmp(descr, ">f4") == 0 || strcmp(descr, ">f8") == 0)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header key 'descr': big-endian '%s' is not supported (expected "
                        "'<f4' or '<f8')",
                        c->path, descr);
    else
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header key 'descr': unsupported dtype '%s' (expected '<f4', "
                        "'<f8', '<i4' or '<i8')",
                        c->path, descr);
    return S4_OK;
}

static s4_status parse_fortran_order(npy_cursor *c)
{
    skip_space(c);
    const size_t left = (size_t)(c->end - c->p);
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        return S4_OK;
    }
    if (left >= 4 && memcmp(c->p, "True", 4) == 0)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header key 'fortran_order': True (column-major data) is not "
                        "supported; expected False",
                        c->path);
    char buf[8];
    return s4__fail(S4_ERR_FORMAT,
                    "%s: header key 'fortran_order': expected False at byte %zu, found %s",
                    c->path, offset(c), found(c, buf));
}

/* One dimension: decimal digits, with the 'L' suffix of Python 2 longs allowed. */
static s4_status parse_dim(npy_cursor *c, int i, int64_t *dim)
{
    skip_space(c);
    char buf[8];
    if (c->p < c->end && *c->p == '-')
        return s4__fail(S4_ERR_FORMAT, "%s: header key 'shape': dimension %d is negative",
                        c->path, i);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header key 'shape': expected dimension %d (an integer) at byte "
                        "%zu, found %s",
                        c->path, i, offset(c), found(c, buf));
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        const int digit = *c->p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header key 'shape': dimension %d does not fit in int64",
                            c->path, i);
        v = v * 10 + digit;
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *dim = v;
    return S4_OK;
}

/* A Python tuple of non-negative ints: (), (n,), (a, b), (a, b, ) ... */
static s4_status parse_shape(npy_cursor *c, npy_header *h)
{
    s4_status status = expect_char(c, '(', "to open the 'shape' tuple");
    if (status)
        return status;
    int ndim = 0;
    size_t numel = 1;
    bool comma = false; /* whether the last dimension was followed by a comma */
    while (!accept_char(c, ')')) {
        if (ndim > 0 && !comma) {
            char buf[8];
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header key 'shape': expected ',' or ')' at byte %zu, found %s",
                            c->path, offset(c), found(c, buf));
        }
        if (ndim == S4IO_MAX_DIMS)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header key 'shape': more than the %d dimensions supported",
                            c->path, (int)S4IO_MAX_DIMS);
        int64_t dim = 0;
        status = parse_dim(c, ndim, &dim);
        if (status)
            return status;
        if ((uint64_t)dim > SIZE_MAX || !s4__mul_size(numel, (size_t)dim, &numel))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header key 'shape': element count overflows size_t at "
                            "dimension %d = %lld",
                            c->path, ndim, (long long)dim);
        h->shape[ndim++] = dim;
        comma = accept_char(c, ',');
    }
    /* (5) is the integer 5 in Python, not a tuple. */
    if (ndim == 1 && !comma)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header key 'shape': '(%lld)' is not a tuple; expected '(%lld,)'",
                        c->path, (long long)h->shape[0], (long long)h->shape[0]);
    size_t bytes;
    if (!s4__mul_size(numel, h->elem_size ? h->elem_size : 8, &bytes))
        return s4__fail(S4_ERR_FORMAT, "%s: header key 'shape': byte count overflows size_t",
                        c->path);
    h->ndim = ndim;
    h->numel = numel;
    return S4_OK;
}

/* The dict: exactly the keys descr, fortran_order and shape, each once, in any order,
 * with an optional trailing comma; after it only padding. */
static s4_status parse_dict(npy_cursor *c, npy_header *h)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    bool seen[3] = {false, false, false};
    s4_status status = expect_char(c, '{', "to open the header dict");
    if (status)
        return status;
    while (!accept_char(c, '}')) {
        char key[24];
        status = parse_string(c, key, sizeof key, "dict key");
        if (status)
            return status;
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]) != 0)
            k++;
        if (k == 3)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header: unknown key '%s' (expected descr, fortran_order, shape)",
                            c->path, key);
        if (seen[k])
            return s4__fail(S4_ERR_FORMAT, "%s: header key '%s' appears twice", c->path, key);
        seen[k] = true;
        status = expect_char(c, ':', "after a dict key");
        if (!status)
            status = k == 0 ? parse_descr(c, h) : k == 1 ? parse_fortran_order(c)
                                                         : parse_shape(c, h);
        if (status)
            return status;
        if (!accept_char(c, ',')) {
            status = expect_char(c, '}', "or ',' after a dict value");
            if (status)
                return status;
            break;
        }
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return s4__fail(S4_ERR_FORMAT, "%s: header: missing key '%s'", c->path, keys[k]);
    skip_space(c);
    if (c->p != c->end) {
        char buf[8];
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header: expected only padding after the dict at byte %zu, found %s",
                        c->path, offset(c), found(c, buf));
    }
    return S4_OK;
}

/* ------------------------------------------------------------------------------ */
/* Reading                                                                         */

/* Bytes from the current position to the end of the file (position preserved). */
static s4_status bytes_left(const char *path, FILE *f, uint64_t *out)
{
    const long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END) != 0)
        return s4__fail(S4_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    const long end = ftell(f);
    if (end < here || fseek(f, here, SEEK_SET) != 0)
        return s4__fail(S4_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    *out = (uint64_t)(end - here);
    return S4_OK;
}

/* Magic, version, header length and header dict; leaves f at the first data byte. */
static s4_status read_header(const char *path, FILE *f, npy_header *h)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10) {
        if (ferror(f)) /* a directory, say, rather than a short file */
            return s4__fail(S4_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        return s4__fail(S4_ERR_FORMAT, "%s: file too short for an .npy preamble", path);
    }
    if (memcmp(pre, npy_magic, sizeof npy_magic) != 0)
        return s4__fail(S4_ERR_FORMAT, "%s: bad magic: not an .npy file (expected \\x93NUMPY)",
                        path);
    const int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: .npy version %d.%d is not supported (expected 1.0, 2.0 or 3.0)",
                        path, major, minor);
    uint64_t header_len = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    if (major >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return s4__fail(S4_ERR_FORMAT, "%s: file too short for an .npy preamble", path);
        header_len |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    }
    uint64_t left = 0;
    s4_status status = bytes_left(path, f, &left);
    if (status)
        return status;
    if (header_len > left)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header length %llu exceeds the %llu bytes left in the file", path,
                        (unsigned long long)header_len, (unsigned long long)left);
    if (header_len > NPY_MAX_HEADER)
        return s4__fail(S4_ERR_FORMAT, "%s: header length %llu exceeds the %d-byte limit", path,
                        (unsigned long long)header_len, (int)NPY_MAX_HEADER);
    char *text = s4__alloc((size_t)header_len, 1);
    if (!text)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate the %llu-byte header", path,
                        (unsigned long long)header_len);
    if (fread(text, 1, (size_t)header_len, f) != header_len) {
        s4__free(text);
        return s4__fail(S4_ERR_IO, "%s: cannot read the %llu-byte header", path,
                        (unsigned long long)header_len);
    }
    npy_cursor c = {path, text, text, text + header_len};
    memset(h, 0, sizeof *h);
    status = parse_dict(&c, h);
    s4__free(text);
    return status;
}

/* Reads numel elements and converts them to double, a chunk at a time. */
static s4_status read_data(const char *path, FILE *f, const npy_header *h, double *out)
{
    unsigned char chunk[NPY_CHUNK * 8] = {0}; /* all written by store_le; zeroed for cppcheck,
                                                which cannot see through it */
    for (size_t done = 0; done < h->numel;) {
        const size_t n = h->numel - done < NPY_CHUNK ? h->numel - done : NPY_CHUNK;
        if (fread(chunk, h->elem_size, n, f) != n)
            return s4__fail(S4_ERR_IO, "%s: read failed after %zu of %zu elements", path, done,
                            h->numel);
        for (size_t i = 0; i < n; i++) {
            if (!h->is_int) {
                out[done + i] = h->elem_size == 4 ? load_f32le(chunk + 4 * i)
                                                  : load_f64le(chunk + 8 * i);
                continue;
            }
            uint64_t bits = 0;
            for (size_t k = h->elem_size; k-- > 0;)
                bits = (bits << 8) | chunk[h->elem_size * i + k];
            if (h->elem_size == 4)
                bits = (uint64_t)(int64_t)(int32_t)(uint32_t)bits; /* sign-extend */
            int64_t v;
            memcpy(&v, &bits, sizeof v);
            if (v > (INT64_C(1) << 53) || v < -(INT64_C(1) << 53))
                return s4__fail(S4_ERR_FORMAT,
                                "%s: element %zu = %lld is beyond +-2^53 (not a token)", path,
                                done + i, (long long)v);
            out[done + i] = (double)v;
        }
        done += n;
    }
    return S4_OK;
}

static s4_status read_stream(const char *path, FILE *f, bool ints, double **data, int *ndim,
                             int64_t shape[S4IO_MAX_DIMS])
{
    npy_header h = {0};
    s4_status status = read_header(path, f, &h);
    if (status)
        return status;
    if (h.is_int != ints)
        return s4__fail(S4_ERR_FORMAT, "%s: an %s array, expected %s", path,
                        h.is_int ? "integer" : "floating-point",
                        ints ? "integers ('<i4' or '<i8')" : "floats ('<f4' or '<f8')");
    /* The data must be exactly numel elements: a short file is truncated, a longer one
     * disagrees with its own shape. Checked before allocating, so a hostile shape cannot
     * ask for more memory than the file holds. */
    uint64_t left = 0;
    status = bytes_left(path, f, &left);
    if (status)
        return status;
    const size_t need = h.numel * h.elem_size; /* no overflow: parse_shape checked */
    if (left != need)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: data is %llu bytes but shape x dtype needs %zu (%s)", path,
                        (unsigned long long)left, need,
                        left < need ? "truncated file" : "trailing bytes");
    double *values = s4__alloc(h.numel, sizeof *values);
    if (!values)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu doubles", path, h.numel);
    status = read_data(path, f, &h, values);
    if (status) {
        s4__free(values);
        return status;
    }
    *data = values;
    *ndim = h.ndim;
    for (int i = 0; i < S4IO_MAX_DIMS; i++)
        shape[i] = i < h.ndim ? h.shape[i] : 0;
    return S4_OK;
}

s4_status s4io_npy_read(const char *path, double **data, int *ndim,
                        int64_t shape[S4IO_MAX_DIMS])
{
    return s4io_npy_read_kind(path, false, data, ndim, shape);
}

s4_status s4io_npy_read_kind(const char *path, bool ints, double **data, int *ndim,
                             int64_t shape[S4IO_MAX_DIMS])
{
    if (!path || !data || !ndim || !shape)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_npy_read: %s is NULL",
                        !path ? "path" : !data ? "data" : !ndim ? "ndim" : "shape");
    FILE *f = fopen(path, "rb");
    if (!f)
        return s4__fail(S4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const s4_status status = read_stream(path, f, ints, data, ndim, shape);
    fclose(f); /* read-only: a close error cannot lose data */
    return status;
}

/* ------------------------------------------------------------------------------ */
/* Writing                                                                         */

/* The version 1.0 preamble and header, padded with spaces and a final '\n' so that the
 * data starts at a multiple of 64 bytes, as numpy writes it. Returns the total length. */
static size_t format_header(char *buf, size_t cap, s4io_dtype dtype, int ndim,
                            const int64_t *shape)
{
    char dict[400];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype == S4IO_F32 ? "<f4" : dtype == S4IO_I64 ? "<i8" : "<f8");
    for (int i = 0; i < ndim; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", i ? ", " : "",
                        (long long)shape[i]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    /* At most 8 dims of 19 digits: about 250 bytes, so neither buffer can overflow. */
    const size_t preamble = 10, used = preamble + (size_t)len + 1; /* + the '\n' */
    const size_t total = (used + 63) / 64 * 64;
    const size_t header_len = total - preamble;
    if (total > cap)
        return 0;
    memcpy(buf, npy_magic, sizeof npy_magic);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)(header_len & 0xff);
    buf[9] = (char)(header_len >> 8);
    memcpy(buf + preamble, dict, (size_t)len);
    memset(buf + preamble + (size_t)len, ' ', total - 1 - preamble - (size_t)len);
    buf[total - 1] = '\n';
    return total;
}

/* Encodes the elements little-endian, a chunk at a time. */
static bool write_data(FILE *f, s4io_dtype dtype, const void *data, size_t numel)
{
    unsigned char chunk[NPY_CHUNK * 8] = {0}; /* all written by store_le; zeroed for cppcheck,
                                                which cannot see through it */
    const size_t width = dtype == S4IO_F32 ? 4 : 8;
    for (size_t done = 0; done < numel;) {
        const size_t n = numel - done < NPY_CHUNK ? numel - done : NPY_CHUNK;
        for (size_t i = 0; i < n; i++) {
            if (dtype == S4IO_F32) {
                uint32_t bits;
                memcpy(&bits, (const float *)data + done + i, sizeof bits);
                store_le(chunk + 4 * i, bits, 4);
            } else if (dtype == S4IO_I64) {
                uint64_t bits;
                memcpy(&bits, (const int64_t *)data + done + i, sizeof bits);
                store_le(chunk + 8 * i, bits, 8);
            } else {
                uint64_t bits;
                memcpy(&bits, (const double *)data + done + i, sizeof bits);
                store_le(chunk + 8 * i, bits, 8);
            }
        }
        if (fwrite(chunk, width, n, f) != n)
            return false;
        done += n;
    }
    return true;
}

static s4_status check_write_args(const char *path, s4io_dtype dtype, const void *data,
                                  int ndim, const int64_t *shape, size_t *numel)
{
    if (!path)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_npy_write: path is NULL");
    if (dtype != S4IO_F32 && dtype != S4IO_F64 && dtype != S4IO_I64)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4io_npy_write: %s: dtype %d is not S4IO_F32, S4IO_F64 or S4IO_I64", path,
                        (int)dtype);
    if (ndim < 0 || ndim > S4IO_MAX_DIMS)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4io_npy_write: %s: ndim = %d is outside [0, %d]", path, ndim,
                        (int)S4IO_MAX_DIMS);
    if (ndim > 0 && !shape)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_npy_write: %s: shape is NULL", path);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_npy_write: %s: shape[%d] = %lld is negative", path, i,
                            (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !s4__mul_size(n, (size_t)shape[i], &n))
            return s4__fail(S4_ERR_INVALID_ARGUMENT,
                            "s4io_npy_write: %s: element count overflows size_t at shape[%d]",
                            path, i);
    }
    size_t bytes;
    if (!s4__mul_size(n, dtype == S4IO_F32 ? 4 : 8, &bytes))
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4io_npy_write: %s: byte count overflows size_t", path);
    if (n > 0 && !data)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_npy_write: %s: data is NULL", path);
    *numel = n;
    return S4_OK;
}

s4_status s4io_npy_write(const char *path, s4io_dtype dtype, const void *data, int ndim,
                         const int64_t *shape)
{
    size_t numel = 0;
    s4_status status = check_write_args(path, dtype, data, ndim, shape, &numel);
    if (status)
        return status;
    char header[512];
    const size_t header_len = format_header(header, sizeof header, dtype, ndim, shape);
    if (header_len == 0)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_npy_write: %s: header too long", path);

    /* A temporary file of our own, then rename(): readers see the old file or the whole
     * new one (src/io/io_atomic.c). */
    s4io_atomic out;
    status = s4io_atomic_open("s4io_npy_write", path, &out);
    if (status != S4_OK)
        return status;
    errno = 0;
    const bool written = fwrite(header, 1, header_len, out.f) == header_len &&
                         write_data(out.f, dtype, data, numel);
    return s4io_atomic_finish(&out, written);
}
