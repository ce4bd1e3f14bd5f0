/*
 * eddy.c — the Eddy guest SDK for C: the component exports of `eddy:operator/operator@0.4.0`
 * on top of the wit-bindgen 0.63.0 C bindings (bindings/operator_world.{c,h}), and the batch
 * codec of docs/batch-format.md (version 2). The reference is the Rust SDK
 * (guest-sdk/rust/src/runtime.rs and batch.rs); this file follows its semantics:
 *
 *   - One `process` call decodes the batch head (key table, prefetched value states), then
 *     calls the operator once per record, encoding each record's emits straight into the
 *     result. Any record's error fails the whole batch, its message prefixed `record <i>: `.
 *   - Value state is read from the prefetched slots with the batch's own writes on top, and
 *     only the last write per (key index, handle) goes into the result. A value state the
 *     host did not prefetch is read once per batch through the `value-get` import.
 *   - A read of a present value of a state whose TTL restarts on reads becomes a write of the
 *     same bytes (unless the batch writes that value itself), as the format asks.
 *   - Timer changes are collected and appended after the writes.
 *
 * Everything in a batch comes from the host, so every count and length is checked against
 * the bytes left before it is used: a malformed batch is an error, never a crash or an
 * unbounded allocation.
 *
 * Memory: the generated export glue passes arguments that the callee owns (we free them with
 * the generated *_free functions) and frees what we return in the generated `cabi_post_*`
 * functions, with free(). So every returned string and list below is malloc'd (or empty)
 * and never freed here. Allocation failure aborts, which traps the instance.
 */
#include "eddy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operator_world.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the batch codec reads little-endian integers with memcpy: little-endian targets only"
#endif

/* The only batch format version this SDK reads and writes. */
#define BATCH_VERSION 2
/* The smallest encoded record: key index, timestamp, watermark, value length, header count. */
#define MIN_RECORD_SIZE (4 + 8 + 8 + 4 + 4)
/* An encoded fired timer: key index, timestamp, domain, watermark. */
#define TIMER_SIZE (4 + 8 + 1 + 8)
/* Per-slot write buffers larger than this are freed at the end of a batch (smaller ones are
 * kept for the next batch, so a steady stream of small values allocates nothing). */
#define KEEP_SLOT_BUFFER 1024

typedef exports_eddy_operator_operator_operator_error_t wit_error;

/* ---- small helpers ------------------------------------------------------------------------ */

static void *xrealloc(void *ptr, size_t size) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) abort();
    return p;
}

/* Makes room for `need` elements of `elem` bytes in the array `ptr` of capacity `*cap`;
 * returns the (possibly moved) array. */
static void *grow(void *ptr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return ptr;
    size_t cap2 = *cap ? *cap : 8;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2) abort();
        cap2 *= 2;
    }
    if (cap2 > SIZE_MAX / elem) abort();
    *cap = cap2;
    return xrealloc(ptr, cap2 * elem);
}

/* A growable byte buffer. */
typedef struct growbuf {
    uint8_t *ptr;
    size_t len, cap;
} growbuf;

static void gb_put(growbuf *b, const void *src, size_t n) {
    if (n > SIZE_MAX - b->len) abort();
    b->ptr = grow(b->ptr, &b->cap, b->len + n, 1);
    if (n) memcpy(b->ptr + b->len, src, n);
    b->len += n;
}
static void gb_u8(growbuf *b, uint8_t v) { gb_put(b, &v, 1); }
static void gb_u32(growbuf *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_i64(growbuf *b, int64_t v) { gb_put(b, &v, 8); }
/* A `bytes` field; false when `n` does not fit the u32 length. */
static bool gb_bytes(growbuf *b, const void *src, size_t n) {
    if ((uint64_t)n > UINT32_MAX) return false;
    gb_u32(b, (uint32_t)n);
    gb_put(b, src, n);
    return true;
}
static void gb_patch_u32(growbuf *b, size_t at, uint32_t v) { memcpy(b->ptr + at, &v, 4); }

/* Whether `n` bytes at `p` are well-formed UTF-8. */
static bool utf8_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t extra;
        uint32_t min;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { extra = 1; min = 0x80; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; min = 0x800; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; min = 0x10000; cp = c & 0x07; }
        else return false;
        if (extra > n - i - 1) return false;
        for (size_t k = 1; k <= extra; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += extra + 1;
    }
    return true;
}

bool eddy_bytes_eq_str(eddy_bytes b, const char *s) {
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* A static byte for present empty values, so their pointer is never NULL. */
static const uint8_t EMPTY[1];

/* ---- error messages ----------------------------------------------------------------------- */

/* The message of the error being returned (malloc'd, NUL-terminated). The kind travels as
 * the returned eddy_status. */
static char *g_msg;

static char *vformat(const char *format, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n < 0) n = 0;
    char *s = xrealloc(NULL, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, format, args);
    return s;
}

eddy_status eddy_error(eddy_status kind, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *s = vformat(format, args);
    va_end(args);
    free(g_msg);
    g_msg = s;
    return kind;
}

static void clear_msg(void) {
    free(g_msg);
    g_msg = NULL;
}

/* Puts `<context>: ` in front of the current message. */
static void prefix_msg(const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *context = vformat(format, args);
    va_end(args);
    const char *msg = g_msg ? g_msg : "(the operator returned an error without a message; use eddy_error)";
    size_t a = strlen(context), b = strlen(msg);
    char *s = xrealloc(NULL, a + 2 + b + 1);
    memcpy(s, context, a);
    memcpy(s + a, ": ", 2);
    memcpy(s + a + 2, msg, b + 1);
    free(context);
    free(g_msg);
    g_msg = s;
}

/* Moves the current message into the WIT error (freed by the post-return). `status` is
 * the kind; a status outside the enum counts as `failed`. */
static void take_error(eddy_status status, wit_error *err) {
    switch (status) {
    case EDDY_INVALID_CONFIG: err->tag = EDDY_OPERATOR_TYPES_OPERATOR_ERROR_INVALID_CONFIG; break;
    case EDDY_UNSUPPORTED: err->tag = EDDY_OPERATOR_TYPES_OPERATOR_ERROR_UNSUPPORTED; break;
    default: err->tag = EDDY_OPERATOR_TYPES_OPERATOR_ERROR_FAILED; break;
    }
    if (!g_msg) eddy_error(status, "error without a message");
    /* All three arms hold a string at the same place. */
    err->val.failed.ptr = (uint8_t *)g_msg;
    err->val.failed.len = strlen(g_msg);
    if (err->val.failed.len == 0) {
        /* The post-return frees only non-empty strings. */
        free(g_msg);
        err->val.failed.ptr = NULL;
    }
    g_msg = NULL;
}

/* ---- the operator and its declared states --------------------------------------------------- */

#define NOT_VALUE UINT32_MAX

static const eddy_operator *g_op;  /* set by a successful init */
static bool g_ready;
/* Value states get a column each, in handle order: col_of_handle[handle] is the column or
 * NOT_VALUE; col_handle[col] the handle back; col_refresh[col] whether a read restarts the
 * value's TTL. */
static uint32_t *g_col_of_handle;
static uint32_t *g_col_handle;
static bool *g_col_refresh;
static uint32_t g_n_cols;

static const char *state_name(uint32_t handle) {
    const eddy_operator *op = g_op ? g_op : eddy_exported_operator();
    if (op->states && handle < op->n_states && op->states[handle].name) return op->states[handle].name;
    return NULL;
}

/* The `eddy_status` for a host state error of keyed state `handle` (or operator state, when
 * `operator_state`), with a message naming the state and the call; frees `e`. */
static eddy_status state_error(bool operator_state, uint32_t handle, const char *what,
                               eddy_operator_state_state_error_t *e) {
    char detail[160];
    const char *text = detail;
    char *owned = NULL;
    switch (e->tag) {
    case EDDY_OPERATOR_TYPES_STATE_ERROR_BAD_HANDLE:
        snprintf(detail, sizeof detail,
                 "state handle %u names no declared state of the kind this call needs",
                 (unsigned)e->val.bad_handle);
        break;
    case EDDY_OPERATOR_TYPES_STATE_ERROR_BAD_KEY:
        snprintf(detail, sizeof detail,
                 "key index %u names no key of the current batch (keyed state is only "
                 "reachable inside `process` and `on_timer`)",
                 (unsigned)e->val.bad_key);
        break;
    case EDDY_OPERATOR_TYPES_STATE_ERROR_TOO_LARGE:
        snprintf(detail, sizeof detail, "%llu bytes exceed the host's state limits",
                 (unsigned long long)e->val.too_large);
        break;
    default: {
        size_t n = e->val.backend.len;
        owned = xrealloc(NULL, n + 32);
        memcpy(owned, "state backend failed: ", 22);
        memcpy(owned + 22, e->val.backend.ptr, n);
        owned[22 + n] = 0;
        text = owned;
        break;
    }
    }
    eddy_operator_state_state_error_free(e);
    const char *kind_name = operator_state ? "operator state" : "state";
    const char *name = NULL;
    if (!operator_state) {
        name = state_name(handle);
    } else {
        const eddy_operator *op = g_op ? g_op : eddy_exported_operator();
        if (op->operator_states && handle < op->n_operator_states)
            name = op->operator_states[handle].name;
    }
    if (name)
        eddy_error(EDDY_FAILED, "%s `%s`: %s: %s", kind_name, name, what, text);
    else
        eddy_error(EDDY_FAILED, "%s handle %u: %s: %s", kind_name, (unsigned)handle, what, text);
    free(owned);
    return EDDY_FAILED;
}

/* Checks the declarations (as the Rust SDK's registry does) and builds the column tables.
 * EDDY_OK or EDDY_INVALID_CONFIG with a message. */
static eddy_status load_declarations(const eddy_operator *op) {
    if (!op->process)
        return eddy_error(EDDY_INVALID_CONFIG, "operator `%s` has no `process` callback",
                          op->name ? op->name : "");
    if (op->n_states && !op->states)
        return eddy_error(EDDY_INVALID_CONFIG, "n_states is %u but states is NULL", op->n_states);
    if (op->n_operator_states && !op->operator_states)
        return eddy_error(EDDY_INVALID_CONFIG, "n_operator_states is %u but operator_states is NULL",
                          op->n_operator_states);
    uint32_t total = op->n_states + op->n_operator_states;
    for (uint32_t i = 0; i < total; i++) {
        bool keyed = i < op->n_states;
        uint32_t index = keyed ? i : i - op->n_states;
        const char *name = keyed ? op->states[index].name : op->operator_states[index].name;
        const char *what = keyed ? "state" : "operator state";
        if (!name || !name[0])
            return eddy_error(EDDY_INVALID_CONFIG,
                              "%s #%u has an empty name; give every state a stable, unique name",
                              what, (unsigned)index);
        if (keyed && op->states[index].kind > EDDY_STATE_LIST)
            return eddy_error(EDDY_INVALID_CONFIG, "state `%s` has an unknown kind %d", name,
                              (int)op->states[index].kind);
        for (uint32_t j = 0; j < i; j++) {
            bool earlier_keyed = j < op->n_states;
            const char *other = earlier_keyed ? op->states[j].name
                                              : op->operator_states[j - op->n_states].name;
            if (strcmp(other, name) == 0)
                return eddy_error(EDDY_INVALID_CONFIG,
                                  "state `%s` is declared twice (the first time as %s); state "
                                  "names must be unique across keyed and operator states",
                                  name, earlier_keyed ? "a keyed state" : "an operator state");
        }
    }
    g_col_of_handle = xrealloc(g_col_of_handle, (op->n_states + 1) * sizeof *g_col_of_handle);
    g_col_handle = xrealloc(g_col_handle, (op->n_states + 1) * sizeof *g_col_handle);
    g_col_refresh = xrealloc(g_col_refresh, (op->n_states + 1) * sizeof *g_col_refresh);
    g_n_cols = 0;
    for (uint32_t h = 0; h < op->n_states; h++) {
        const eddy_state_decl *s = &op->states[h];
        if (s->kind != EDDY_STATE_VALUE) {
            g_col_of_handle[h] = NOT_VALUE;
            continue;
        }
        g_col_of_handle[h] = g_n_cols;
        g_col_handle[g_n_cols] = h;
        g_col_refresh[g_n_cols] = s->ttl_ms > 0 && s->ttl_update == EDDY_TTL_ON_READ_AND_WRITE;
        g_n_cols++;
    }
    return EDDY_OK;
}

/* ---- describe ------------------------------------------------------------------------------- */

static void dup_opt(operator_world_option_string_t *out, const char *s) {
    out->is_some = s != NULL;
    if (s) operator_world_string_dup(&out->val, s);
}

void exports_eddy_operator_operator_describe(exports_eddy_operator_operator_operator_info_t *ret) {
    const eddy_operator *op = eddy_exported_operator();
    operator_world_string_dup(&ret->name, op->name ? op->name : "");
    operator_world_string_dup(&ret->version, op->version ? op->version : "");
    uint32_t n = op->states ? op->n_states : 0;
    ret->states.len = n;
    ret->states.ptr = n ? xrealloc(NULL, n * sizeof *ret->states.ptr) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        const eddy_state_decl *s = &op->states[i];
        eddy_operator_types_state_descriptor_t *d = &ret->states.ptr[i];
        memset(d, 0, sizeof *d);
        operator_world_string_dup(&d->name, s->name ? s->name : "");
        d->kind = (eddy_operator_types_state_kind_t)s->kind;
        d->schema_version = s->schema_version ? s->schema_version : 1;
        d->ttl.is_some = s->ttl_ms > 0;
        d->ttl.val.ttl_ms = s->ttl_ms;
        d->ttl.val.update = (eddy_operator_types_ttl_update_t)s->ttl_update;
        dup_opt(&d->codec, s->codec);
    }
    uint32_t m = op->operator_states ? op->n_operator_states : 0;
    ret->operator_states.len = m;
    ret->operator_states.ptr = m ? xrealloc(NULL, m * sizeof *ret->operator_states.ptr) : NULL;
    for (uint32_t i = 0; i < m; i++) {
        const eddy_operator_state_decl *s = &op->operator_states[i];
        eddy_operator_types_operator_state_descriptor_t *d = &ret->operator_states.ptr[i];
        memset(d, 0, sizeof *d);
        operator_world_string_dup(&d->name, s->name ? s->name : "");
        d->schema_version = s->schema_version ? s->schema_version : 1;
        d->redistribution = (eddy_operator_types_redistribution_t)s->redistribution;
        dup_opt(&d->codec, s->codec);
    }
}

/* ---- init --------------------------------------------------------------------------------- */

bool exports_eddy_operator_operator_init(operator_world_string_t *config, wit_error *err) {
    const eddy_operator *op = eddy_exported_operator();
    g_ready = false;
    g_op = op;
    clear_msg();
    eddy_status status = load_declarations(op);
    if (status == EDDY_OK && op->init) {
        /* The WIT string is not NUL-terminated: hand the callback a terminated copy. */
        char *text = xrealloc(NULL, config->len + 1);
        if (config->len) memcpy(text, config->ptr, config->len);
        text[config->len] = 0;
        status = op->init(text, config->len);
        free(text);
        if (status != EDDY_OK && status != EDDY_UNSUPPORTED) status = EDDY_INVALID_CONFIG;
    }
    operator_world_string_free(config); /* arguments belong to the callee */
    if (status != EDDY_OK) {
        if (!g_msg) eddy_error(status, "operator `%s`: init failed without a message", op->name ? op->name : "");
        take_error(status, err);
        return false;
    }
    g_ready = true;
    return true;
}

/* ---- the batch -------------------------------------------------------------------------------- */

/* A bounds-checked little-endian reader over the input batch. */
typedef struct reader {
    const uint8_t *buf;
    size_t len, pos;
} reader;

static bool rd_fail(size_t at, const char *format, ...) __attribute__((format(printf, 2, 3)));
static bool rd_fail(size_t at, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *what = vformat(format, args);
    va_end(args);
    eddy_error(EDDY_FAILED, "malformed batch at byte %zu: %s", at, what);
    free(what);
    return false;
}

static size_t rd_left(const reader *r) { return r->len - r->pos; }

static bool rd_take(reader *r, size_t n, const char *what, const uint8_t **out) {
    if (n > rd_left(r))
        return rd_fail(r->pos, "%s needs %zu bytes but only %zu are left", what, n, rd_left(r));
    *out = r->buf + r->pos;
    r->pos += n;
    return true;
}
static bool rd_u8(reader *r, const char *what, uint8_t *v) {
    const uint8_t *p;
    if (!rd_take(r, 1, what, &p)) return false;
    *v = *p;
    return true;
}
static bool rd_u32(reader *r, const char *what, uint32_t *v) {
    const uint8_t *p;
    if (!rd_take(r, 4, what, &p)) return false;
    memcpy(v, p, 4);
    return true;
}
static bool rd_i64(reader *r, const char *what, int64_t *v) {
    const uint8_t *p;
    if (!rd_take(r, 8, what, &p)) return false;
    memcpy(v, p, 8);
    return true;
}
/* A u32 count of items of at least `min_size` bytes each, refused when the bytes left
 * cannot hold that many (so a count never drives an allocation on its own). */
static bool rd_count(reader *r, size_t min_size, const char *what, uint32_t *v) {
    size_t at = r->pos;
    if (!rd_u32(r, what, v)) return false;
    if ((uint64_t)*v * min_size > rd_left(r))
        return rd_fail(at, "%s is %u, more than the %zu bytes left can hold", what, (unsigned)*v,
                       rd_left(r));
    return true;
}
static bool rd_bytes(reader *r, const char *what, eddy_bytes *out) {
    uint32_t n;
    const uint8_t *p;
    if (!rd_u32(r, what, &n) || !rd_take(r, n, what, &p)) return false;
    out->ptr = p;
    out->len = n;
    return true;
}
static bool rd_str(reader *r, const char *what, eddy_bytes *out) {
    size_t at = r->pos;
    if (!rd_bytes(r, what, out)) return false;
    if (!utf8_valid(out->ptr, out->len)) return rd_fail(at, "%s is not UTF-8", what);
    return true;
}

/* What the batch has done to one value state of one key. */
enum { W_UNTOUCHED, W_REFRESH, W_CLEARED, W_SET };
/* What the value was before the batch. */
enum { B_ABSENT, B_PRESENT, B_UNLOADED };

/* One value state (a column) of one key. */
typedef struct slot {
    const uint8_t *before; /* prefetched (into the input) or fetched (owned when before_owned) */
    uint32_t before_len;
    uint8_t before_state;
    uint8_t before_owned;
    uint8_t write;
    uint8_t *buf; /* the bytes of W_SET; the buffer outlives the batch when small */
    uint32_t len, cap;
} slot;

/* The per-batch tables; the arrays keep their capacity from batch to batch. */
static eddy_bytes *g_keys;
static size_t g_keys_cap;
static uint32_t g_n_keys;
static slot *g_slots; /* key-major: g_slots[key * g_n_cols + col] */
static size_t g_slots_cap, g_slots_used;
static uint32_t *g_pos_col; /* column of each prefetched handle, in input order */
static size_t g_pos_col_cap;
static int64_t g_processing_time;
static growbuf g_timer_ops;
static uint32_t g_n_timer_ops;
static size_t g_out_capacity; /* the last result's size, to allocate the next one at once */

/* Reads the batch head: version, processing time, key table, prefetched value states.
 * Leaves `r` at the item count. */
static bool read_head(reader *r) {
    uint8_t version;
    if (!rd_u8(r, "version", &version)) return false;
    if (version != BATCH_VERSION)
        return rd_fail(0, "version %u is not the supported version %u", version, BATCH_VERSION);
    if (!rd_i64(r, "processing time", &g_processing_time)) return false;
    uint32_t n_keys;
    if (!rd_count(r, 4, "key count", &n_keys)) return false;
    g_keys = grow(g_keys, &g_keys_cap, n_keys, sizeof *g_keys);
    for (uint32_t k = 0; k < n_keys; k++)
        if (!rd_bytes(r, "key", &g_keys[k])) return false;
    g_n_keys = n_keys;

    uint32_t n_handles;
    if (!rd_count(r, 4, "value state count", &n_handles)) return false;
    g_pos_col = grow(g_pos_col, &g_pos_col_cap, n_handles, sizeof *g_pos_col);
    uint32_t n_states = g_op->n_states;
    for (uint32_t p = 0; p < n_handles; p++) {
        size_t at = r->pos;
        uint32_t handle;
        if (!rd_u32(r, "value state handle", &handle)) return false;
        if (handle >= n_states)
            return rd_fail(at, "prefetched handle %u names no state (the operator declares %u)",
                           (unsigned)handle, (unsigned)n_states);
        uint32_t col = g_col_of_handle[handle];
        if (col == NOT_VALUE)
            return rd_fail(at, "prefetched handle %u is not a value state", (unsigned)handle);
        for (uint32_t q = 0; q < p; q++)
            if (g_pos_col[q] == col)
                return rd_fail(at, "value state handle %u is prefetched twice", (unsigned)handle);
        g_pos_col[p] = col;
    }
    uint64_t n_prefetched = (uint64_t)n_keys * n_handles;
    if (n_prefetched > rd_left(r))
        return rd_fail(r->pos,
                       "%u keys x %u value states need more slots than the %zu bytes left",
                       (unsigned)n_keys, (unsigned)n_handles, rd_left(r));

    /* Every declared value state of every key gets a slot: prefetched ones are filled from
     * the input, the others are read through `value-get` when first used. n_keys is bounded
     * by the input size (4 bytes per key at least). */
    size_t n_slots = (size_t)n_keys * g_n_cols;
    size_t old_cap = g_slots_cap;
    g_slots = grow(g_slots, &g_slots_cap, n_slots, sizeof *g_slots);
    if (g_slots_cap > old_cap)
        memset(g_slots + old_cap, 0, (g_slots_cap - old_cap) * sizeof *g_slots);
    g_slots_used = n_slots;
    for (size_t i = 0; i < n_slots; i++) {
        slot *s = &g_slots[i];
        s->before = NULL;
        s->before_len = 0;
        s->before_state = B_UNLOADED;
        s->before_owned = 0;
        s->write = W_UNTOUCHED;
        s->len = 0;
    }
    for (uint32_t k = 0; k < n_keys; k++) {
        for (uint32_t p = 0; p < n_handles; p++) {
            size_t at = r->pos;
            uint8_t present;
            if (!rd_u8(r, "slot present flag", &present)) return false;
            slot *s = &g_slots[(size_t)k * g_n_cols + g_pos_col[p]];
            if (present == 0) {
                s->before_state = B_ABSENT;
            } else if (present == 1) {
                eddy_bytes value;
                if (!rd_bytes(r, "prefetched value", &value)) return false;
                s->before = value.ptr;
                s->before_len = (uint32_t)value.len;
                s->before_state = B_PRESENT;
            } else {
                return rd_fail(at, "slot present flag is %u, not 0 or 1", present);
            }
        }
    }
    return true;
}

/* Forgets the batch: frees fetched values and large write buffers, keeps the rest. */
static void end_batch(void) {
    for (size_t i = 0; i < g_slots_used; i++) {
        slot *s = &g_slots[i];
        if (s->before_owned && s->before_len) free((void *)s->before);
        s->before = NULL;
        s->before_owned = 0;
        if (s->cap > KEEP_SLOT_BUFFER) {
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
    }
    g_slots_used = 0;
    g_n_keys = 0;
    g_timer_ops.len = 0;
    g_n_timer_ops = 0;
}

/* Appends n_writes and the writes (the last write per key and value state, key-major, then
 * in handle order), then the timer ops. */
static bool write_effects(growbuf *out) {
    uint32_t n_writes = 0;
    for (size_t i = 0; i < g_slots_used; i++) {
        const slot *s = &g_slots[i];
        if (s->write == W_CLEARED || s->write == W_SET ||
            (s->write == W_REFRESH && s->before_state == B_PRESENT))
            n_writes++;
    }
    gb_u32(out, n_writes);
    for (size_t i = 0; i < g_slots_used; i++) {
        const slot *s = &g_slots[i];
        const uint8_t *value;
        uint32_t len;
        switch (s->write) {
        case W_CLEARED: value = NULL; len = 0; break;
        case W_SET: value = s->buf; len = s->len; break;
        case W_REFRESH:
            if (s->before_state != B_PRESENT) continue;
            value = s->before; len = s->before_len;
            break;
        default: continue;
        }
        gb_u32(out, (uint32_t)(i / g_n_cols));
        gb_u32(out, g_col_handle[i % g_n_cols]);
        if (s->write == W_CLEARED) {
            gb_u8(out, 0);
        } else {
            gb_u8(out, 1);
            gb_bytes(out, value, len);
        }
    }
    gb_u32(out, g_n_timer_ops);
    gb_put(out, g_timer_ops.ptr, g_timer_ops.len);
    return true;
}

/* ---- the context ------------------------------------------------------------------------------ */

struct eddy_ctx {
    uint32_t key_index;
    uint32_t item; /* index of the record or timer in its batch */
    int64_t timestamp;
    int64_t watermark;
    growbuf *out;
    uint32_t n_emits;
    char *deferred; /* the first emit error, reported when the callback returns */
};

eddy_bytes eddy_key(const eddy_ctx *ctx) { return g_keys[ctx->key_index]; }
uint32_t eddy_key_index(const eddy_ctx *ctx) { return ctx->key_index; }
int64_t eddy_timestamp(const eddy_ctx *ctx) { return ctx->timestamp; }
int64_t eddy_watermark(const eddy_ctx *ctx) { return ctx->watermark; }
int64_t eddy_processing_time(const eddy_ctx *ctx) { (void)ctx; return g_processing_time; }

static void defer(eddy_ctx *ctx, const char *what) {
    if (ctx->deferred) return;
    size_t n = strlen(what);
    ctx->deferred = xrealloc(NULL, n + 1);
    memcpy(ctx->deferred, what, n + 1);
}

void eddy_emit_with_headers(eddy_ctx *ctx, eddy_bytes key, eddy_bytes value,
                            const eddy_header *headers, size_t n) {
    if (ctx->deferred) return;
    if ((uint64_t)key.len > UINT32_MAX || (uint64_t)value.len > UINT32_MAX || (uint64_t)n > UINT32_MAX) {
        defer(ctx, "cannot emit record: a key, value or header count over 4 GiB");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)headers[i].name.len > UINT32_MAX || (uint64_t)headers[i].value.len > UINT32_MAX) {
            defer(ctx, "cannot emit record: a header over 4 GiB");
            return;
        }
        if (!utf8_valid(headers[i].name.ptr, headers[i].name.len) ||
            !utf8_valid(headers[i].value.ptr, headers[i].value.len)) {
            defer(ctx, "cannot emit record: a header name or value is not UTF-8");
            return;
        }
    }
    growbuf *out = ctx->out;
    gb_bytes(out, key.ptr, key.len);
    gb_bytes(out, value.ptr, value.len);
    gb_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        gb_bytes(out, headers[i].name.ptr, headers[i].name.len);
        gb_bytes(out, headers[i].value.ptr, headers[i].value.len);
    }
    ctx->n_emits++;
}

void eddy_emit(eddy_ctx *ctx, eddy_bytes key, eddy_bytes value) {
    eddy_emit_with_headers(ctx, key, value, NULL, 0);
}

static void timer_op(eddy_ctx *ctx, bool reg, eddy_time_domain domain, int64_t timestamp) {
    gb_u32(&g_timer_ops, ctx->item);
    gb_u8(&g_timer_ops, reg ? 1 : 0);
    gb_u8(&g_timer_ops, domain == EDDY_PROCESSING_TIME ? 1 : 0);
    gb_i64(&g_timer_ops, timestamp);
    g_n_timer_ops++;
}
void eddy_register_timer(eddy_ctx *ctx, eddy_time_domain domain, int64_t timestamp) {
    timer_op(ctx, true, domain, timestamp);
}
void eddy_delete_timer(eddy_ctx *ctx, eddy_time_domain domain, int64_t timestamp) {
    timer_op(ctx, false, domain, timestamp);
}

bool eddy_header_next(const eddy_record *rec, size_t *cursor, eddy_header *header) {
    /* The headers were checked when the record was read: n pairs of UTF-8 strings. */
    const uint8_t *p = rec->encoded_headers.ptr;
    size_t end = rec->encoded_headers.len;
    if (*cursor + 8 > end) return false;
    uint32_t n;
    memcpy(&n, p + *cursor, 4);
    header->name = eddy_bytes_of(p + *cursor + 4, n);
    *cursor += 4 + n;
    memcpy(&n, p + *cursor, 4);
    header->value = eddy_bytes_of(p + *cursor + 4, n);
    *cursor += 4 + n;
    return true;
}

bool eddy_header_get(const eddy_record *rec, const char *name, eddy_bytes *value) {
    size_t cursor = 0;
    eddy_header h;
    while (eddy_header_next(rec, &cursor, &h)) {
        if (eddy_bytes_eq_str(h.name, name)) {
            *value = h.value;
            return true;
        }
    }
    return false;
}

/* ---- value state ------------------------------------------------------------------------------ */

/* The slot of value state `handle` for the context's key, or an error naming the call. */
static eddy_status value_slot(eddy_ctx *ctx, uint32_t handle, const char *what, slot **out) {
    if (handle >= g_op->n_states || g_col_of_handle[handle] == NOT_VALUE) {
        const char *name = state_name(handle);
        if (name)
            return eddy_error(EDDY_FAILED,
                              "state `%s`: %s: state handle %u names no declared state of the "
                              "kind this call needs", name, what, (unsigned)handle);
        return eddy_error(EDDY_FAILED,
                          "state handle %u: %s: state handle %u names no declared state of the "
                          "kind this call needs", (unsigned)handle, what, (unsigned)handle);
    }
    *out = &g_slots[(size_t)ctx->key_index * g_n_cols + g_col_of_handle[handle]];
    return EDDY_OK;
}

eddy_status eddy_value_get(eddy_ctx *ctx, uint32_t handle, eddy_bytes *value) {
    slot *s;
    eddy_status status = value_slot(ctx, handle, "get", &s);
    value->ptr = NULL;
    value->len = 0;
    if (status) return status;
    if (s->before_state == B_UNLOADED) {
        /* Not prefetched (the host prefetches all value states today): read it once. */
        operator_world_option_list_u8_t got;
        eddy_operator_state_state_error_t e;
        if (!eddy_operator_state_value_get(handle, ctx->key_index, &got, &e))
            return state_error(false, handle, "get", &e);
        if (got.is_some && got.val.len > UINT32_MAX) abort();
        s->before_state = got.is_some ? B_PRESENT : B_ABSENT;
        s->before = got.is_some ? (got.val.len ? got.val.ptr : EMPTY) : NULL;
        s->before_len = got.is_some ? (uint32_t)got.val.len : 0;
        s->before_owned = got.is_some && got.val.len > 0;
    }
    if (s->write == W_UNTOUCHED && s->before_state == B_PRESENT &&
        g_col_refresh[g_col_of_handle[handle]])
        s->write = W_REFRESH;
    switch (s->write) {
    case W_SET:
        value->ptr = s->len ? s->buf : EMPTY;
        value->len = s->len;
        break;
    case W_CLEARED:
        break;
    default:
        if (s->before_state == B_PRESENT) {
            value->ptr = s->before_len ? s->before : EMPTY;
            value->len = s->before_len;
        }
        break;
    }
    return EDDY_OK;
}

eddy_status eddy_value_set(eddy_ctx *ctx, uint32_t handle, const void *ptr, size_t len) {
    slot *s;
    eddy_status status = value_slot(ctx, handle, "set", &s);
    if (status) return status;
    if ((uint64_t)len > UINT32_MAX)
        return eddy_error(EDDY_FAILED, "state `%s`: set: %zu bytes do not fit a u32 length",
                          state_name(handle), len);
    if (len > s->cap) {
        /* `ptr` cannot point into this buffer: it is longer than the buffer. */
        size_t cap = len < 16 ? 16 : len;
        free(s->buf);
        s->buf = xrealloc(NULL, cap);
        s->cap = (uint32_t)cap;
    }
    if (len) memmove(s->buf, ptr, len); /* may overlap when it is this slot's own value */
    s->len = (uint32_t)len;
    s->write = W_SET;
    return EDDY_OK;
}

eddy_status eddy_value_clear(eddy_ctx *ctx, uint32_t handle) {
    slot *s;
    eddy_status status = value_slot(ctx, handle, "clear", &s);
    if (status) return status;
    s->write = W_CLEARED;
    return EDDY_OK;
}

/* ---- map, list and operator state: thin wrappers of the imports -------------------------------- */

/* The SDK's owned types have the layout of the generated ones, so results are handed over
 * without copying. */
_Static_assert(sizeof(eddy_buf) == sizeof(operator_world_list_u8_t), "eddy_buf layout");
_Static_assert(offsetof(eddy_buf, len) == offsetof(operator_world_list_u8_t, len), "eddy_buf layout");
_Static_assert(sizeof(eddy_bytes) == sizeof(operator_world_list_u8_t), "eddy_bytes layout");
_Static_assert(offsetof(eddy_bytes, len) == offsetof(operator_world_list_u8_t, len), "eddy_bytes layout");
_Static_assert(sizeof(eddy_map_entry) == sizeof(operator_world_tuple2_list_u8_list_u8_t), "entry layout");
_Static_assert(offsetof(eddy_map_entry, value) == offsetof(operator_world_tuple2_list_u8_list_u8_t, f1), "entry layout");

static operator_world_list_u8_t as_list(eddy_bytes b) {
    operator_world_list_u8_t l = {(uint8_t *)b.ptr, b.len};
    return l;
}
static operator_world_list_list_u8_t as_lists(const eddy_bytes *items, size_t n) {
    operator_world_list_list_u8_t l = {(operator_world_list_u8_t *)items, n};
    return l;
}
static eddy_buf take_list(operator_world_list_u8_t l) {
    eddy_buf b = {l.ptr, l.len};
    return b;
}

void eddy_buf_free(eddy_buf *buf) {
    if (buf->len) free(buf->ptr);
    buf->ptr = NULL;
    buf->len = 0;
}
void eddy_buf_list_free(eddy_buf_list *list) {
    for (size_t i = 0; i < list->len; i++) eddy_buf_free(&list->ptr[i]);
    if (list->len) free(list->ptr);
    list->ptr = NULL;
    list->len = 0;
}
void eddy_entry_page_free(eddy_entry_page *page) {
    for (size_t i = 0; i < page->len; i++) {
        eddy_buf_free(&page->entries[i].key);
        eddy_buf_free(&page->entries[i].value);
    }
    if (page->len) free(page->entries);
    page->entries = NULL;
    page->len = 0;
    if (page->has_next) eddy_buf_free(&page->next);
    page->has_next = false;
}
void eddy_key_page_free(eddy_key_page *page) {
    eddy_buf_list_free(&page->keys);
    if (page->has_next) eddy_buf_free(&page->next);
    page->has_next = false;
}

#define STATE_CALL(what, call)                                                                \
    do {                                                                                      \
        eddy_operator_state_state_error_t e_;                                                 \
        if (!(call)) return state_error(false, handle, what, &e_);                          \
        return EDDY_OK;                                                                       \
    } while (0)
#define OPERATOR_STATE_CALL(what, call)                                                       \
    do {                                                                                      \
        eddy_operator_state_state_error_t e_;                                                 \
        if (!(call)) return state_error(true, handle, what, &e_);                 \
        return EDDY_OK;                                                                       \
    } while (0)

eddy_status eddy_map_get(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key, eddy_buf *value,
                         bool *present) {
    operator_world_list_u8_t k = as_list(map_key);
    operator_world_option_list_u8_t got;
    eddy_operator_state_state_error_t e;
    value->ptr = NULL;
    value->len = 0;
    *present = false;
    if (!eddy_operator_state_map_get(handle, ctx->key_index, &k, &got, &e))
        return state_error(false, handle, "get", &e);
    *present = got.is_some;
    if (got.is_some) *value = take_list(got.val);
    return EDDY_OK;
}
eddy_status eddy_map_put(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key, eddy_bytes value) {
    operator_world_list_u8_t k = as_list(map_key), v = as_list(value);
    STATE_CALL("put", eddy_operator_state_map_put(handle, ctx->key_index, &k, &v, &e_));
}
eddy_status eddy_map_remove(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key) {
    operator_world_list_u8_t k = as_list(map_key);
    STATE_CALL("remove", eddy_operator_state_map_remove(handle, ctx->key_index, &k, &e_));
}
eddy_status eddy_map_contains(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key, bool *contains) {
    operator_world_list_u8_t k = as_list(map_key);
    *contains = false;
    STATE_CALL("contains", eddy_operator_state_map_contains(handle, ctx->key_index, &k, contains, &e_));
}
eddy_status eddy_map_is_empty(eddy_ctx *ctx, uint32_t handle, bool *empty) {
    *empty = true;
    STATE_CALL("is_empty", eddy_operator_state_map_is_empty(handle, ctx->key_index, empty, &e_));
}
eddy_status eddy_map_clear(eddy_ctx *ctx, uint32_t handle) {
    STATE_CALL("clear", eddy_operator_state_map_clear(handle, ctx->key_index, &e_));
}
eddy_status eddy_map_entries(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *cursor,
                             uint32_t max, eddy_entry_page *page) {
    operator_world_list_u8_t c;
    if (cursor) c = as_list(*cursor);
    eddy_operator_state_entry_page_t got;
    eddy_operator_state_state_error_t e;
    memset(page, 0, sizeof *page);
    if (!eddy_operator_state_map_entries(handle, ctx->key_index, cursor ? &c : NULL, max, &got, &e))
        return state_error(false, handle, "entries", &e);
    page->entries = (eddy_map_entry *)got.entries.ptr;
    page->len = got.entries.len;
    page->has_next = got.next.is_some;
    if (got.next.is_some) page->next = take_list(got.next.val);
    return EDDY_OK;
}
eddy_status eddy_map_keys(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *cursor,
                          uint32_t max, eddy_key_page *page) {
    operator_world_list_u8_t c;
    if (cursor) c = as_list(*cursor);
    eddy_operator_state_key_page_t got;
    eddy_operator_state_state_error_t e;
    memset(page, 0, sizeof *page);
    if (!eddy_operator_state_map_keys(handle, ctx->key_index, cursor ? &c : NULL, max, &got, &e))
        return state_error(false, handle, "keys", &e);
    page->keys.ptr = (eddy_buf *)got.keys.ptr;
    page->keys.len = got.keys.len;
    page->has_next = got.next.is_some;
    if (got.next.is_some) page->next = take_list(got.next.val);
    return EDDY_OK;
}

eddy_status eddy_list_get(eddy_ctx *ctx, uint32_t handle, eddy_buf_list *items) {
    operator_world_list_list_u8_t got;
    eddy_operator_state_state_error_t e;
    items->ptr = NULL;
    items->len = 0;
    if (!eddy_operator_state_list_get(handle, ctx->key_index, &got, &e))
        return state_error(false, handle, "get", &e);
    items->ptr = (eddy_buf *)got.ptr;
    items->len = got.len;
    return EDDY_OK;
}
eddy_status eddy_list_add(eddy_ctx *ctx, uint32_t handle, eddy_bytes item) {
    operator_world_list_u8_t v = as_list(item);
    STATE_CALL("add", eddy_operator_state_list_add(handle, ctx->key_index, &v, &e_));
}
eddy_status eddy_list_add_all(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *items, size_t n) {
    operator_world_list_list_u8_t v = as_lists(items, n);
    STATE_CALL("add_all", eddy_operator_state_list_add_all(handle, ctx->key_index, &v, &e_));
}
eddy_status eddy_list_update(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *items, size_t n) {
    operator_world_list_list_u8_t v = as_lists(items, n);
    STATE_CALL("update", eddy_operator_state_list_update(handle, ctx->key_index, &v, &e_));
}
eddy_status eddy_list_clear(eddy_ctx *ctx, uint32_t handle) {
    STATE_CALL("clear", eddy_operator_state_list_clear(handle, ctx->key_index, &e_));
}

eddy_status eddy_operator_list_get(uint32_t handle, eddy_buf_list *items) {
    operator_world_list_list_u8_t got;
    eddy_operator_state_state_error_t e;
    items->ptr = NULL;
    items->len = 0;
    if (!eddy_operator_state_operator_list_get(handle, &got, &e))
        return state_error(true, handle, "get", &e);
    items->ptr = (eddy_buf *)got.ptr;
    items->len = got.len;
    return EDDY_OK;
}
eddy_status eddy_operator_list_add(uint32_t handle, eddy_bytes item) {
    operator_world_list_u8_t v = as_list(item);
    OPERATOR_STATE_CALL("add", eddy_operator_state_operator_list_add(handle, &v, &e_));
}
eddy_status eddy_operator_list_update(uint32_t handle, const eddy_bytes *items, size_t n) {
    operator_world_list_list_u8_t v = as_lists(items, n);
    OPERATOR_STATE_CALL("update", eddy_operator_state_operator_list_update(handle, &v, &e_));
}

/* ---- logging --------------------------------------------------------------------------------- */

void eddy_log(eddy_ctx *ctx, eddy_log_level level, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *text = vformat(format, args);
    va_end(args);
    operator_world_string_t message = {(uint8_t *)text, strlen(text)};
    uint32_t key = ctx ? ctx->key_index : 0;
    eddy_operator_log_log((eddy_operator_log_level_t)level, ctx ? &key : NULL, &message);
    free(text);
}

/* ---- process and on-timer ------------------------------------------------------------------------ */

/* Runs one batch of records (timers = false) or fired timers (timers = true). */
static bool run(operator_world_list_u8_t *batch, operator_world_list_u8_t *ret, wit_error *err,
                bool timers) {
    clear_msg();
    eddy_status status = EDDY_OK;
    growbuf out = {0};
    const char *export_name = timers ? "on-timer" : "process";
    if (!g_ready) {
        status = eddy_error(EDDY_FAILED, "`%s` was called before a successful `init`", export_name);
        goto done;
    }
    reader r = {batch->ptr, batch->len, 0};
    uint32_t n_items;
    if (!read_head(&r) ||
        !rd_count(&r, timers ? TIMER_SIZE : MIN_RECORD_SIZE, timers ? "timer count" : "record count",
                  &n_items)) {
        status = EDDY_FAILED;
        goto done;
    }
    out.ptr = grow(out.ptr, &out.cap, g_out_capacity > 64 ? g_out_capacity : 64, 1);
    gb_u8(&out, BATCH_VERSION);
    gb_u32(&out, n_items);
    for (uint32_t i = 0; i < n_items; i++) {
        eddy_ctx ctx = {0};
        ctx.item = i;
        ctx.out = &out;
        eddy_record rec;
        eddy_timer timer;
        size_t at = r.pos;
        if (!rd_u32(&r, timers ? "timer key index" : "record key index", &ctx.key_index)) {
            status = EDDY_FAILED;
            goto done;
        }
        if (ctx.key_index >= g_n_keys) {
            rd_fail(at, "%s key index %u is outside the key table of %u keys",
                    timers ? "timer" : "record", (unsigned)ctx.key_index, (unsigned)g_n_keys);
            status = EDDY_FAILED;
            goto done;
        }
        if (timers) {
            uint8_t domain;
            size_t domain_at;
            if (!rd_i64(&r, "timer timestamp", &timer.timestamp) ||
                (domain_at = r.pos, !rd_u8(&r, "timer domain", &domain))) {
                status = EDDY_FAILED;
                goto done;
            }
            if (domain > 1) {
                rd_fail(domain_at,
                        "timer domain %u is neither 0 (event time) nor 1 (processing time)", domain);
                status = EDDY_FAILED;
                goto done;
            }
            timer.domain = domain ? EDDY_PROCESSING_TIME : EDDY_EVENT_TIME;
            if (!rd_i64(&r, "timer watermark", &ctx.watermark)) {
                status = EDDY_FAILED;
                goto done;
            }
            ctx.timestamp = timer.timestamp;
        } else {
            uint32_t n_headers;
            if (!rd_i64(&r, "record timestamp", &rec.timestamp) ||
                !rd_i64(&r, "record watermark", &rec.watermark) ||
                !rd_bytes(&r, "record value", &rec.value) ||
                !rd_count(&r, 8, "record header count", &n_headers)) {
                status = EDDY_FAILED;
                goto done;
            }
            size_t start = r.pos;
            for (uint32_t h = 0; h < n_headers; h++) {
                eddy_bytes ignored;
                if (!rd_str(&r, "header name", &ignored) || !rd_str(&r, "header value", &ignored)) {
                    status = EDDY_FAILED;
                    goto done;
                }
            }
            rec.key = g_keys[ctx.key_index];
            rec.n_headers = n_headers;
            rec.encoded_headers = eddy_bytes_of(r.buf + start, r.pos - start);
            ctx.timestamp = rec.timestamp;
            ctx.watermark = rec.watermark;
        }

        size_t count_at = out.len;
        gb_u32(&out, 0);
        if (g_msg) clear_msg(); /* a message set by an earlier record that then succeeded */
        if (timers)
            status = g_op->on_timer ? g_op->on_timer(&ctx, &timer) : EDDY_OK;
        else
            status = g_op->process(&ctx, &rec);
        if (status == EDDY_OK && ctx.deferred) {
            eddy_error(EDDY_FAILED, "%s", ctx.deferred);
            status = EDDY_FAILED;
        }
        free(ctx.deferred);
        if (status != EDDY_OK) {
            if (timers)
                prefix_msg("timer %u (%s %lld)", (unsigned)i,
                           timer.domain == EDDY_EVENT_TIME ? "EventTime" : "ProcessingTime",
                           (long long)timer.timestamp);
            else
                prefix_msg("record %u", (unsigned)i);
            goto done;
        }
        gb_patch_u32(&out, count_at, ctx.n_emits);
    }
    if (rd_left(&r) != 0) {
        status = eddy_error(EDDY_FAILED, "malformed batch: %zu bytes after the last %s",
                            rd_left(&r), timers ? "timer" : "record");
        goto done;
    }
    write_effects(&out);

done:
    end_batch();
    operator_world_list_u8_free(batch); /* the batch belongs to the callee; nothing points into it now */
    if (status != EDDY_OK) {
        free(out.ptr);
        take_error(status, err);
        return false;
    }
    g_out_capacity = out.len;
    /* Handed to the host; the generated post-return frees it. */
    ret->ptr = out.ptr;
    ret->len = out.len;
    return true;
}

bool exports_eddy_operator_operator_process(operator_world_list_u8_t *batch,
                                            operator_world_list_u8_t *ret, wit_error *err) {
    return run(batch, ret, err, false);
}

bool exports_eddy_operator_operator_on_timer(operator_world_list_u8_t *batch,
                                             operator_world_list_u8_t *ret, wit_error *err) {
    return run(batch, ret, err, true);
}

/* ---- migrate --------------------------------------------------------------------------------- */

static char *cstr(const operator_world_string_t *s) {
    char *c = xrealloc(NULL, s->len + 1);
    if (s->len) memcpy(c, s->ptr, s->len);
    c[s->len] = 0;
    return c;
}

bool exports_eddy_operator_operator_migrate(exports_eddy_operator_operator_state_descriptor_t *state,
                                            uint32_t from_version, operator_world_list_u8_t *value,
                                            operator_world_list_u8_t *ret, wit_error *err) {
    const eddy_operator *op = eddy_exported_operator();
    clear_msg();
    char *name = cstr(&state->name);
    char *codec = state->codec.is_some ? cstr(&state->codec.val) : NULL;
    eddy_state_decl decl = {
        .name = name,
        .kind = (eddy_state_kind)state->kind,
        .schema_version = state->schema_version,
        .ttl_ms = state->ttl.is_some ? state->ttl.val.ttl_ms : 0,
        .ttl_update = state->ttl.is_some ? (eddy_ttl_update)state->ttl.val.update
                                         : EDDY_TTL_ON_CREATE_AND_WRITE,
        .codec = codec,
    };
    eddy_status status;
    eddy_buf out = {NULL, 0};
    if (op->migrate) {
        status = op->migrate(&decl, from_version, eddy_bytes_of(value->len ? value->ptr : EMPTY, value->len), &out);
    } else {
        status = eddy_error(EDDY_UNSUPPORTED,
                            "operator `%s` %s cannot migrate state `%s` from schema version %u to %u",
                            op->name ? op->name : "", op->version ? op->version : "", name,
                            (unsigned)from_version, (unsigned)state->schema_version);
    }
    free(name);
    free(codec);
    exports_eddy_operator_operator_state_descriptor_free(state);
    operator_world_list_u8_free(value);
    if (status != EDDY_OK) {
        free(out.ptr); /* the operator's, from malloc */
        if (!g_msg) eddy_error(status, "migrate failed without a message");
        take_error(status, err);
        return false;
    }
    /* Handed to the host; the generated post-return frees it (when not empty). */
    if (!out.len) {
        free(out.ptr);
        out.ptr = NULL;
    }
    ret->ptr = out.ptr;
    ret->len = out.len;
    return true;
}
