/* safetensors reader: the whole file in one buffer, a cJSON-parsed header validated
 * entry by entry, tensors that point into the buffer.
 *
 * Layout: an 8-byte little-endian header length n, n bytes of JSON (possibly padded with
 * spaces), then the data region that every `data_offsets` pair is relative to.
 * The file is hostile until proven otherwise: every size is checked before it is used,
 * so a malformed file yields S4_ERR_FORMAT and a message, never a wild read.
 * SPDX-License-Identifier: Apache-2.0 */
#include "io/io.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE single and double expected");

/* The file is held in memory whole, so a bound keeps a corrupt or hostile file from
 * turning into a huge allocation. */
#define ST_MAX_FILE_BYTES ((uint64_t)16 << 30)
/* The reference (Rust) implementation refuses headers above 100 MB; no real file needs
 * more, and cJSON's tree costs several times the text. */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 << 20)
/* cJSON hands numbers over as doubles, which are exact only up to 2^53. Larger integers
 * are refused rather than silently rounded; no offset into a file under the size cap,
 * and no dimension of a tensor that fits in it, comes near. */
#define ST_MAX_JSON_INT 9007199254740991.0 /* 2^53 - 1 */

#define ST_METADATA_KEY "__metadata__"

typedef struct st_meta {
    const char *key;
    const char *value;
} st_meta;

struct s4io_safetensors {
    unsigned char *buf;           /* the whole file */
    char *strings;                /* names, metadata keys and values, NUL-separated */
    s4io_tensor *tensors;         /* [count], header order */
    const s4io_tensor **by_name;  /* [count], sorted by name, for find */
    size_t count;
    st_meta *meta;                /* [n_meta], sorted by key */
    size_t n_meta;
};

/* Byte span of one tensor in the data region, for the overlap check. */
typedef struct st_span {
    uint64_t begin, end;
    const char *name;
} st_span;

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t load_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static size_t dtype_size(s4io_dtype dtype) { return dtype == S4IO_F32 ? 4 : 8; }

/* ------------------------------------------------------------------------------ */
/* Reading the file                                                                */

/* Reads the open file `f` whole into a fresh buffer. The header length is checked against
 * the file size before anything is allocated. */
static s4_status read_stream(const char *path, FILE *f, unsigned char **out, size_t *out_size,
                             size_t *out_header)
{
    /* Reading first tells an unreadable file (a directory, say) apart from a short one. */
    unsigned char prefix[8];
    const size_t got_prefix = fread(prefix, 1, sizeof prefix, f);
    if (ferror(f))
        return s4__fail(S4_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0)
        return s4__fail(S4_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    const long end = ftell(f);
    if (end < 0)
        return s4__fail(S4_ERR_IO, "%s: cannot determine the file size: %s", path,
                        strerror(errno));
    const uint64_t file_size = (uint64_t)end;
    if (file_size > ST_MAX_FILE_BYTES || file_size > SIZE_MAX)
        return s4__fail(S4_ERR_UNSUPPORTED,
                        "%s: file is %llu bytes, more than the %llu this reader holds in memory",
                        path, (unsigned long long)file_size,
                        (unsigned long long)ST_MAX_FILE_BYTES);
    if (got_prefix < sizeof prefix || file_size < 8)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: file is %llu bytes, too short for the 8-byte header length", path,
                        (unsigned long long)file_size);

    const uint64_t header_len = load_le64(prefix);
    /* Compared with what follows the length field, so even 2^64 - 1 cannot wrap. */
    if (header_len > file_size - 8)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: header length %llu exceeds the %llu bytes after the length field "
                        "(truncated, or not a safetensors file)",
                        path, (unsigned long long)header_len,
                        (unsigned long long)(file_size - 8));
    if (header_len > ST_MAX_HEADER_BYTES)
        return s4__fail(S4_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit",
                        path, (unsigned long long)header_len,
                        (unsigned long long)ST_MAX_HEADER_BYTES);

    const size_t size = (size_t)file_size;
    unsigned char *buf = s4__malloc(size);
    if (!buf)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes for the file",
                        path, size);
    if (fseek(f, 0, SEEK_SET) != 0) {
        s4__free(buf);
        return s4__fail(S4_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    const size_t got = fread(buf, 1, size, f);
    if (got != size) {
        s4__free(buf);
        return s4__fail(S4_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    *out = buf;
    *out_size = size;
    *out_header = (size_t)header_len;
    return S4_OK;
}

static s4_status read_file(const char *path, unsigned char **out, size_t *out_size,
                           size_t *out_header)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return s4__fail(S4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const s4_status status = read_stream(path, f, out, out_size, out_header);
    fclose(f); /* read-only: a close error cannot lose data */
    return status;
}

/* ------------------------------------------------------------------------------ */
/* JSON helpers                                                                    */

/* "a string", "-1", "1.5", ... for messages that say what was found. */
static const char *json_describe(const cJSON *j, char *buf, size_t len)
{
    if (!j)
        return "nothing";
    if (cJSON_IsNumber(j)) {
        snprintf(buf, len, "%.17g", j->valuedouble);
        return buf;
    }
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    return "an invalid value";
}

/* A JSON number that is a non-negative integer cJSON represents exactly. */
static bool json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    const double x = j->valuedouble;
    if (!isfinite(x) || x < 0 || x > ST_MAX_JSON_INT || floor(x) != x)
        return false;
    *out = (uint64_t)x;
    return true;
}

static bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Member `key` of object `obj`; a key given twice is an error, not "first one wins",
 * because two readers could then disagree about the same file. */
static s4_status json_member(const char *path, const char *name, const cJSON *obj,
                             const char *key, const cJSON **out)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, key) == 0) {
            if (found)
                return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': key '%s' appears twice", path,
                                name, key);
            found = c;
        }
    }
    if (!found)
        return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': missing key '%s'", path, name, key);
    *out = found;
    return S4_OK;
}

/* Parses the header text (not NUL-terminated) into a JSON object. */
static s4_status parse_header(const char *path, const unsigned char *text, size_t len,
                              cJSON **out)
{
    /* cJSON gets its own NUL-terminated copy, so that no parser path can read past the
     * header into the data, whatever the text contains. */
    char *copy = s4__malloc(len + 1);
    if (!copy)
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes for the header",
                        path, len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (!root) {
        const size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        s4__free(copy);
        return s4__fail(S4_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %zu)",
                        path, at, len);
    }
    /* Writers pad the header with spaces; anything else after the object is garbage that
     * a lenient parse would silently drop. */
    for (const char *p = end; p < copy + len; p++) {
        if (!is_json_space(*p)) {
            const size_t at = (size_t)(p - copy);
            s4__free(copy);
            cJSON_Delete(root);
            return s4__fail(S4_ERR_FORMAT,
                            "%s: header has trailing data at byte %zu of %zu after the JSON "
                            "object (expected only space padding)",
                            path, at, len);
        }
    }
    s4__free(copy);
    if (!cJSON_IsObject(root)) {
        char what[32];
        const s4_status status = s4__fail(S4_ERR_FORMAT,
                                          "%s: header must be a JSON object, found %s", path,
                                          json_describe(root, what, sizeof what));
        cJSON_Delete(root);
        return status;
    }
    *out = root;
    return S4_OK;
}

/* ------------------------------------------------------------------------------ */
/* Validating entries                                                              */

static s4_status parse_dtype(const char *path, const char *name, const cJSON *entry,
                             s4io_dtype *dtype)
{
    const cJSON *j = NULL;
    s4_status status = json_member(path, name, entry, "dtype", &j);
    if (status)
        return status;
    if (!cJSON_IsString(j)) {
        char what[32];
        return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': 'dtype' must be a string, found %s",
                        path, name, json_describe(j, what, sizeof what));
    }
    const char *s = j->valuestring;
    if (strcmp(s, "F32") == 0)
        *dtype = S4IO_F32;
    else if (strcmp(s, "F64") == 0)
        *dtype = S4IO_F64;
    else if (strcmp(s, "I64") == 0)
        *dtype = S4IO_I64;
    else
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': unsupported dtype '%.32s' (expected F32, F64 or I64)",
                        path, name, s);
    return S4_OK;
}

static s4_status parse_shape(const char *path, const char *name, const cJSON *entry,
                             s4io_tensor *t)
{
    const cJSON *j = NULL;
    s4_status status = json_member(path, name, entry, "shape", &j);
    if (status)
        return status;
    char what[32];
    if (!cJSON_IsArray(j))
        return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': 'shape' must be an array, found %s",
                        path, name, json_describe(j, what, sizeof what));
    int ndim = 0;
    size_t numel = 1;
    for (const cJSON *d = j->child; d; d = d->next, ndim++) {
        if (ndim == S4IO_MAX_DIMS)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': 'shape' has %d dimensions, more than the %d "
                            "supported",
                            path, name, cJSON_GetArraySize(j), (int)S4IO_MAX_DIMS);
        uint64_t dim;
        if (!json_uint(d, &dim))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': shape[%d] must be a non-negative integer below "
                            "2^53, found %s",
                            path, name, ndim, json_describe(d, what, sizeof what));
        if (dim > SIZE_MAX || !s4__mul_size(numel, (size_t)dim, &numel))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': 'shape' element count overflows size_t at "
                            "shape[%d] = %llu",
                            path, name, ndim, (unsigned long long)dim);
        t->shape[ndim] = (int64_t)dim;
    }
    size_t bytes;
    if (!s4__mul_size(numel, dtype_size(t->dtype), &bytes))
        return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s': 'shape' byte count overflows size_t",
                        path, name);
    t->ndim = ndim;
    t->numel = numel;
    return S4_OK;
}

/* data_offsets [begin, end) relative to the data region, consistent with shape x dtype. */
static s4_status parse_offsets(const char *path, const char *name, const cJSON *entry,
                               size_t data_size, const s4io_tensor *t, st_span *span)
{
    const cJSON *j = NULL;
    s4_status status = json_member(path, name, entry, "data_offsets", &j);
    if (status)
        return status;
    char what[32];
    if (!cJSON_IsArray(j))
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': 'data_offsets' must be an array [begin, end], "
                        "found %s",
                        path, name, json_describe(j, what, sizeof what));
    const int n = cJSON_GetArraySize(j);
    if (n != 2)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': 'data_offsets' must have 2 elements, found %d", path,
                        name, n);
    uint64_t off[2] = {0, 0}; /* both set below: the array has exactly 2 elements */
    int i = 0;
    for (const cJSON *o = j->child; o; o = o->next, i++) {
        if (!json_uint(o, &off[i]))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets[%d] must be a non-negative integer "
                            "below 2^53, found %s",
                            path, name, i, json_describe(o, what, sizeof what));
    }
    if (off[0] > off[1])
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] are reversed (begin > end)",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1]);
    if (off[1] > data_size)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] end beyond the %zu-byte "
                        "data region",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1],
                        data_size);
    const size_t need = t->numel * dtype_size(t->dtype); /* no overflow: parse_shape checked */
    if (off[1] - off[0] != need)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but shape "
                        "x dtype needs %zu",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1],
                        (unsigned long long)(off[1] - off[0]), need);
    span->begin = off[0];
    span->end = off[1];
    span->name = name;
    return S4_OK;
}

static s4_status parse_tensor(const char *path, const char *name, const cJSON *entry,
                              const unsigned char *data, size_t data_size, s4io_tensor *t,
                              st_span *span)
{
    if (!cJSON_IsObject(entry)) {
        char what[32];
        return s4__fail(S4_ERR_FORMAT,
                        "%s: tensor '%s': expected an object with dtype, shape and "
                        "data_offsets, found %s",
                        path, name, json_describe(entry, what, sizeof what));
    }
    s4_status status = parse_dtype(path, name, entry, &t->dtype);
    if (!status)
        status = parse_shape(path, name, entry, t);
    if (!status)
        status = parse_offsets(path, name, entry, data_size, t, span);
    if (status)
        return status;
    t->name = name;
    t->data = data + span->begin;
    return S4_OK;
}

/* ------------------------------------------------------------------------------ */
/* Building the file object                                                        */

/* Counts tensors, metadata entries and the bytes of all strings to keep, and checks the
 * __metadata__ entry's shape (an object of strings), so allocation happens once. */
static s4_status survey(const char *path, const cJSON *root, size_t *n_tensors,
                        const cJSON **metadata, size_t *n_meta, size_t *string_bytes)
{
    size_t tensors = 0, meta = 0, bytes = 0;
    const cJSON *md = NULL;
    char what[32];
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, ST_METADATA_KEY) == 0) {
            if (md)
                return s4__fail(S4_ERR_FORMAT, "%s: key '" ST_METADATA_KEY "' appears twice",
                                path);
            md = c;
            continue;
        }
        tensors++;
        if (!s4__add_size(bytes, strlen(c->string) + 1, &bytes))
            return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: header strings overflow size_t", path);
    }
    /* null is how an absent Option<HashMap> may be serialised; treat it as no metadata. */
    if (md && !cJSON_IsNull(md)) {
        if (!cJSON_IsObject(md))
            return s4__fail(S4_ERR_FORMAT,
                            "%s: '" ST_METADATA_KEY "' must be an object of strings, found %s",
                            path, json_describe(md, what, sizeof what));
        for (const cJSON *c = md->child; c; c = c->next) {
            if (!cJSON_IsString(c))
                return s4__fail(S4_ERR_FORMAT,
                                "%s: " ST_METADATA_KEY " key '%s': value must be a string, "
                                "found %s",
                                path, c->string, json_describe(c, what, sizeof what));
            meta++;
            if (!s4__add_size(bytes, strlen(c->string) + 1, &bytes) ||
                !s4__add_size(bytes, strlen(c->valuestring) + 1, &bytes))
                return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: header strings overflow size_t",
                                path);
        }
    } else {
        md = NULL;
    }
    *n_tensors = tensors;
    *metadata = md;
    *n_meta = meta;
    *string_bytes = bytes;
    return S4_OK;
}

/* Appends a NUL-terminated copy of s at *cursor (space was reserved by survey). */
static const char *keep_string(char **cursor, const char *s)
{
    const size_t len = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, len);
    *cursor += len;
    return dst;
}

static int compare_tensor_names(const void *a, const void *b)
{
    const s4io_tensor *const *ta = a;
    const s4io_tensor *const *tb = b;
    return strcmp((*ta)->name, (*tb)->name);
}

static int compare_meta_keys(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static int compare_spans(const void *a, const void *b)
{
    const st_span *sa = a, *sb = b;
    if (sa->begin != sb->begin)
        return sa->begin < sb->begin ? -1 : 1;
    return (sa->end > sb->end) - (sa->end < sb->end);
}

/* Sorted by begin, the non-empty tensors must cover the data region exactly: the first
 * starts at byte 0, each starts where the furthest before it ends (an earlier start is an
 * overlap, a later one a gap), and the last ends at the end of the file. The format forbids
 * holes and unused bytes (its reference implementation refuses them), and a reader that
 * accepted them would let bytes no tensor owns ride along in a "valid" file. Empty tensors
 * own no bytes. */
static s4_status check_layout(const char *path, st_span *spans, size_t n, size_t data_size)
{
    qsort(spans, n, sizeof *spans, compare_spans);
    const st_span *reach = NULL; /* the non-empty span seen so far that ends furthest */
    for (size_t i = 0; i < n; i++) {
        const st_span *s = &spans[i];
        if (s->begin == s->end)
            continue;
        if (reach && s->begin < reach->end)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                            "[%llu, %llu]",
                            path, s->name, (unsigned long long)s->begin,
                            (unsigned long long)s->end, reach->name,
                            (unsigned long long)reach->begin, (unsigned long long)reach->end);
        const uint64_t expect = reach ? reach->end : 0;
        if (s->begin > expect)
            return s4__fail(S4_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] leave bytes [%llu, %llu) "
                            "of the data region unused (the format allows no gaps)",
                            path, s->name, (unsigned long long)s->begin,
                            (unsigned long long)s->end, (unsigned long long)expect,
                            (unsigned long long)s->begin);
        if (!reach || s->end > reach->end)
            reach = s;
    }
    const uint64_t used = reach ? reach->end : 0;
    if (used != data_size)
        return s4__fail(S4_ERR_FORMAT,
                        "%s: %llu bytes after the last tensor's data (bytes [%llu, %zu) of the "
                        "data region) belong to no tensor; the format allows none",
                        path, (unsigned long long)(data_size - used), (unsigned long long)used,
                        data_size);
    return S4_OK;
}

static s4_status check_duplicates(const char *path, s4io_safetensors *file)
{
    qsort(file->by_name, file->count, sizeof *file->by_name, compare_tensor_names);
    for (size_t i = 1; i < file->count; i++)
        if (strcmp(file->by_name[i - 1]->name, file->by_name[i]->name) == 0)
            return s4__fail(S4_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                            file->by_name[i]->name);
    qsort(file->meta, file->n_meta, sizeof *file->meta, compare_meta_keys);
    for (size_t i = 1; i < file->n_meta; i++)
        if (strcmp(file->meta[i - 1].key, file->meta[i].key) == 0)
            return s4__fail(S4_ERR_FORMAT, "%s: " ST_METADATA_KEY " key '%s' appears twice",
                            path, file->meta[i].key);
    return S4_OK;
}

/* Fills `file` (whose buf is set) from the parsed header. On failure the caller closes
 * the partly filled file, which frees whatever was allocated. */
static s4_status build(const char *path, const cJSON *root, size_t header_len, size_t size,
                       s4io_safetensors *file)
{
    size_t n_tensors = 0, n_meta = 0, string_bytes = 0;
    const cJSON *md = NULL;
    s4_status status = survey(path, root, &n_tensors, &md, &n_meta, &string_bytes);
    if (status)
        return status;

    file->tensors = s4__calloc(n_tensors, sizeof *file->tensors);
    file->by_name = s4__alloc(n_tensors, sizeof *file->by_name);
    file->meta = s4__alloc(n_meta, sizeof *file->meta);
    file->strings = s4__alloc(string_bytes, 1);
    st_span *spans = s4__alloc(n_tensors, sizeof *spans);
    if (!file->tensors || !file->by_name || !file->meta || !file->strings || !spans) {
        s4__free(spans);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate the index of %zu tensors",
                        path, n_tensors);
    }

    const unsigned char *data = file->buf + 8 + header_len;
    const size_t data_size = size - 8 - header_len;
    char *cursor = file->strings;
    size_t i = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, ST_METADATA_KEY) == 0)
            continue;
        const char *name = keep_string(&cursor, c->string);
        status = parse_tensor(path, name, c, data, data_size, &file->tensors[i], &spans[i]);
        if (status) {
            s4__free(spans);
            return status;
        }
        file->by_name[i] = &file->tensors[i];
        file->count = ++i;
    }
    status = check_layout(path, spans, n_tensors, data_size);
    s4__free(spans);
    if (status)
        return status;

    if (md) {
        for (const cJSON *c = md->child; c; c = c->next) {
            st_meta *m = &file->meta[file->n_meta++];
            m->key = keep_string(&cursor, c->string);
            m->value = keep_string(&cursor, c->valuestring);
        }
    }
    return check_duplicates(path, file);
}

/* ------------------------------------------------------------------------------ */
/* Public calls                                                                    */

s4_status s4io_safetensors_open(const char *path, s4io_safetensors **out)
{
    if (!path || !out)
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_safetensors_open: %s is NULL",
                        !path ? "path" : "out");
    unsigned char *buf = NULL;
    size_t size = 0, header_len = 0;
    s4_status status = read_file(path, &buf, &size, &header_len);
    if (status)
        return status;
    cJSON *root = NULL;
    status = parse_header(path, buf + 8, header_len, &root);
    if (status) {
        s4__free(buf);
        return status;
    }
    s4io_safetensors *file = s4__calloc(1, sizeof *file);
    if (!file) {
        cJSON_Delete(root);
        s4__free(buf);
        return s4__fail(S4_ERR_OUT_OF_MEMORY, "%s: cannot allocate the file object", path);
    }
    file->buf = buf;
    status = build(path, root, header_len, size, file);
    cJSON_Delete(root);
    if (status) {
        s4io_safetensors_close(file);
        return status;
    }
    *out = file;
    return S4_OK;
}

void s4io_safetensors_close(s4io_safetensors *file)
{
    if (!file)
        return;
    s4__free(file->buf);
    s4__free(file->strings);
    s4__free(file->tensors);
    s4__free(file->by_name);
    s4__free(file->meta);
    s4__free(file);
}

size_t s4io_safetensors_count(const s4io_safetensors *file) { return file ? file->count : 0; }

const s4io_tensor *s4io_safetensors_at(const s4io_safetensors *file, size_t i)
{
    return file && i < file->count ? &file->tensors[i] : NULL;
}

static int compare_name_to_tensor(const void *key, const void *elem)
{
    const s4io_tensor *const *t = elem;
    return strcmp(key, (*t)->name);
}

const s4io_tensor *s4io_safetensors_find(const s4io_safetensors *file, const char *name)
{
    if (!file || !name || file->count == 0)
        return NULL;
    const s4io_tensor *const *hit =
        bsearch(name, file->by_name, file->count, sizeof *file->by_name, compare_name_to_tensor);
    return hit ? *hit : NULL;
}

static int compare_key_to_meta(const void *key, const void *elem)
{
    return strcmp(key, ((const st_meta *)elem)->key);
}

const char *s4io_safetensors_metadata(const s4io_safetensors *file, const char *key)
{
    if (!file || !key || file->n_meta == 0)
        return NULL;
    const st_meta *hit =
        bsearch(key, file->meta, file->n_meta, sizeof *file->meta, compare_key_to_meta);
    return hit ? hit->value : NULL;
}

/* The data is little-endian whatever the host: bytes are assembled into an integer of the
 * same width, whose bits are then reinterpreted (memcpy, so alignment does not matter).
 * This assumes floats share the byte order of integers, true of every current platform. */
s4_status s4io_tensor_to_f64(const s4io_tensor *t, double *out, size_t n)
{
    if (!t || (!out && t->numel > 0))
        return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_tensor_to_f64: %s is NULL",
                        !t ? "t" : "out");
    if (n < t->numel)
        return s4__fail(S4_ERR_INVALID_ARGUMENT,
                        "s4io_tensor_to_f64: n = %zu is less than the %zu elements of '%s'", n,
                        t->numel, t->name ? t->name : "(unnamed)");
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case S4IO_F32:
        for (size_t i = 0; i < t->numel; i++) {
            const uint32_t bits = load_le32(p + 4 * i);
            float x;
            memcpy(&x, &bits, sizeof x);
            out[i] = x;
        }
        return S4_OK;
    case S4IO_F64:
        for (size_t i = 0; i < t->numel; i++) {
            const uint64_t bits = load_le64(p + 8 * i);
            memcpy(&out[i], &bits, sizeof bits);
        }
        return S4_OK;
    case S4IO_I64:
        /* Two's complement by memcpy; exact up to 2^53 in magnitude, rounded beyond. */
        for (size_t i = 0; i < t->numel; i++) {
            const uint64_t bits = load_le64(p + 8 * i);
            int64_t v;
            memcpy(&v, &bits, sizeof v);
            out[i] = (double)v;
        }
        return S4_OK;
    }
    return s4__fail(S4_ERR_INVALID_ARGUMENT, "s4io_tensor_to_f64: tensor '%s' has dtype %d",
                    t->name ? t->name : "(unnamed)", (int)t->dtype);
}
