/*
 * eddy.h — the Eddy guest SDK for C.
 *
 * An operator written in C describes itself in one `eddy_operator` value (name, version,
 * declared states and callbacks) and exports it with `EDDY_EXPORT_OPERATOR`. The SDK
 * (eddy.c) implements the component exports of `eddy:operator/operator@0.4.0`
 * (wit/operator.wit) on top of the wit-bindgen C bindings in bindings/, and hides the batch
 * format of docs/batch-format.md: the operator sees one record (or fired timer) at a time.
 *
 *     #include "eddy.h"
 *
 *     enum { COUNT = 0 };   // a state's handle is its index in `states`
 *     static const eddy_state_decl STATES[] = {
 *         { .name = "count", .kind = EDDY_STATE_VALUE, .codec = "json" },
 *     };
 *     static eddy_status process(eddy_ctx *ctx, const eddy_record *rec) { ... }
 *     static const eddy_operator OP = {
 *         .name = "my-op", .version = "0.1.0",
 *         .states = STATES, .n_states = EDDY_COUNT(STATES),
 *         .process = process,
 *     };
 *     EDDY_EXPORT_OPERATOR(OP)
 *
 * Errors: every callback and every state call returns an `eddy_status`. EDDY_OK (0) is
 * success; anything else is an error whose message was set with `eddy_error` (the state
 * calls set theirs), so the usual pattern is `if ((s = eddy_value_get(...))) return s;`.
 * An error returned by `process` or `on_timer` fails the whole batch, named after the record
 * (`record 2: ...`) or timer; the host then retries the records one at a time and sends the
 * one that fails alone to the dead-letter output.
 *
 * Memory ownership (see README.md, "Memory"):
 *   - `eddy_bytes` is borrowed: it points into memory the SDK owns. Record keys, values and
 *     headers live until the callback returns. A value from `eddy_value_get` lives until the
 *     next write (`eddy_value_set` / `eddy_value_clear`) of the same state for the same key,
 *     or until the callback returns; copy it to keep it.
 *   - `eddy_buf` and `eddy_buf_list` are owned by the caller: the map/list/operator-state
 *     reads allocate them (with malloc); release them with `eddy_buf_free`,
 *     `eddy_buf_list_free`, `eddy_entry_page_free` or `eddy_key_page_free`.
 *   - Everything passed *to* the SDK (keys, values, headers to emit, values to store) is
 *     copied before the call returns.
 *   - A failed allocation aborts (a Wasm trap): the host discards the batch, builds a fresh
 *     instance and retries the records one at a time.
 */
#ifndef EDDY_H
#define EDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- bytes ------------------------------------------------------------------------------ */

/* A borrowed byte string (not NUL-terminated). `ptr` is NULL only for "absent" where a call
 * says so (e.g. `eddy_value_get`); a present empty value has a non-NULL `ptr` and `len` 0. */
typedef struct eddy_bytes {
    const uint8_t *ptr;
    size_t len;
} eddy_bytes;

/* The bytes of a NUL-terminated C string (without the NUL). */
static inline eddy_bytes eddy_str(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    eddy_bytes b = {(const uint8_t *)s, n};
    return b;
}

/* `len` bytes at `ptr`. */
static inline eddy_bytes eddy_bytes_of(const void *ptr, size_t len) {
    eddy_bytes b = {(const uint8_t *)ptr, len};
    return b;
}

/* True when `b` holds exactly the text `s`. */
bool eddy_bytes_eq_str(eddy_bytes b, const char *s);

/* An owned byte string, allocated with malloc; release it with `eddy_buf_free`. An empty
 * buffer may have a non-NULL `ptr` that must not be passed to free() itself. */
typedef struct eddy_buf {
    uint8_t *ptr;
    size_t len;
} eddy_buf;

/* An owned list of owned byte strings; release it with `eddy_buf_list_free`. */
typedef struct eddy_buf_list {
    eddy_buf *ptr;
    size_t len;
} eddy_buf_list;

void eddy_buf_free(eddy_buf *buf);
void eddy_buf_list_free(eddy_buf_list *list);

/* The number of elements of a C array, e.g. `.n_states = EDDY_COUNT(STATES)`. */
#define EDDY_COUNT(array) ((uint32_t)(sizeof(array) / sizeof((array)[0])))

/* ---- errors ----------------------------------------------------------------------------- */

/* The outcome of a callback or an SDK call; the error kinds are the WIT `operator-error`. */
typedef enum eddy_status {
    EDDY_OK = 0,
    /* The configuration given to `init` cannot be used. */
    EDDY_INVALID_CONFIG = 1,
    /* Processing failed; the host sends the record to the dead-letter output. */
    EDDY_FAILED = 2,
    /* The call is not supported (e.g. a `migrate` the operator cannot do). */
    EDDY_UNSUPPORTED = 3,
} eddy_status;

/* Sets the message of the error being returned (printf-style) and returns `kind`:
 * `return eddy_error(EDDY_FAILED, "value %.*s is not a number", (int)v.len, v.ptr);`.
 * The message is copied; a later `eddy_error` replaces it. */
eddy_status eddy_error(eddy_status kind, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- declarations ----------------------------------------------------------------------- */

typedef enum eddy_state_kind {
    EDDY_STATE_VALUE = 0, /* one value per key: prefetched in every batch */
    EDDY_STATE_MAP = 1,   /* a map per key, through the `state` imports */
    EDDY_STATE_LIST = 2,  /* a list per key, through the `state` imports */
} eddy_state_kind;

typedef enum eddy_ttl_update {
    /* Creating or writing a value restarts its time to live. */
    EDDY_TTL_ON_CREATE_AND_WRITE = 0,
    /* Reading it does too (the SDK writes a read value state back, as the format asks). */
    EDDY_TTL_ON_READ_AND_WRITE = 1,
} eddy_ttl_update;

/* One keyed state. Its handle is its index in `eddy_operator.states`. */
typedef struct eddy_state_decl {
    /* Stable, unique, non-empty name: the state's identity across module versions. */
    const char *name;
    eddy_state_kind kind;
    /* Version of the bytes' schema; 0 means the default, 1. */
    uint32_t schema_version;
    /* Time to live of each value (map entry, list item) in ms of processing time; 0: none. */
    uint64_t ttl_ms;
    eddy_ttl_update ttl_update;
    /* How the bytes are encoded: "json" (then `eddy savepoint dump` shows them as JSON),
     * or any other name; NULL: unknown. */
    const char *codec;
} eddy_state_decl;

typedef enum eddy_redistribution {
    EDDY_EVEN_SPLIT = 0, /* all workers' items split into contiguous parts, one per worker */
    EDDY_UNION = 1,      /* every worker gets all workers' items */
} eddy_redistribution;

/* One non-keyed operator state (a list of items per worker). Its handle is its index in
 * `eddy_operator.operator_states`. */
typedef struct eddy_operator_state_decl {
    const char *name;          /* unique among keyed and operator states */
    uint32_t schema_version;   /* 0 means the default, 1 */
    eddy_redistribution redistribution;
    const char *codec;         /* NULL: unknown */
} eddy_operator_state_decl;

/* ---- records, timers, context ----------------------------------------------------------- */

#define EDDY_NO_WATERMARK INT64_MIN

/* One input record; everything in it is borrowed until the callback returns. */
typedef struct eddy_record {
    eddy_bytes key;
    eddy_bytes value;
    int64_t timestamp; /* event time, ms since the Unix epoch */
    int64_t watermark; /* the job's watermark as the record arrives; EDDY_NO_WATERMARK before any */
    uint32_t n_headers;
    eddy_bytes encoded_headers; /* read them with eddy_header_next / eddy_header_get */
} eddy_record;

/* A header: name and value are UTF-8 text. */
typedef struct eddy_header {
    eddy_bytes name;
    eddy_bytes value;
} eddy_header;

/* Iterates over a record's headers in order: start with `*cursor = 0`; returns false after
 * the last one. */
bool eddy_header_next(const eddy_record *rec, size_t *cursor, eddy_header *header);
/* The value of the record's first header named `name`; false when it has none. */
bool eddy_header_get(const eddy_record *rec, const char *name, eddy_bytes *value);

typedef enum eddy_time_domain {
    EDDY_EVENT_TIME = 0,      /* fires when the watermark reaches the timestamp */
    EDDY_PROCESSING_TIME = 1, /* fires when the host's wall clock reaches it */
} eddy_time_domain;

/* A fired timer (the `on_timer` callback); its key is the context's key. */
typedef struct eddy_timer {
    int64_t timestamp;
    eddy_time_domain domain;
} eddy_timer;

/* What a callback can reach while it handles one record or timer: its key, times, the
 * key's state, emits, timers and logging. Valid only during the callback. */
typedef struct eddy_ctx eddy_ctx;

eddy_bytes eddy_key(const eddy_ctx *ctx);
/* The key's index in the batch's key table (the `key` argument of the raw state imports). */
uint32_t eddy_key_index(const eddy_ctx *ctx);
/* The record's timestamp; in `on_timer`, the timer's. */
int64_t eddy_timestamp(const eddy_ctx *ctx);
/* The job's event-time watermark; EDDY_NO_WATERMARK before there is one. */
int64_t eddy_watermark(const eddy_ctx *ctx);
/* The host's wall clock at the call (ms since the epoch); not deterministic on replay. */
int64_t eddy_processing_time(const eddy_ctx *ctx);

/* ---- the operator ----------------------------------------------------------------------- */

typedef struct eddy_operator {
    const char *name;    /* e.g. "word-count" */
    const char *version; /* the operator's own semver, e.g. "0.1.0" */
    const eddy_state_decl *states;
    uint32_t n_states;
    const eddy_operator_state_decl *operator_states;
    uint32_t n_operator_states;

    /* Optional. Called once per instance before any batch, with the job's `[operator] config`
     * table as JSON text (`{}` when there is none), NUL-terminated; `len` excludes the NUL.
     * Operator state is reachable here (eddy_operator_list_*). An error other than
     * EDDY_UNSUPPORTED is reported as `invalid-config`. */
    eddy_status (*init)(const char *config, size_t len);

    /* Required. Handles one record. */
    eddy_status (*process)(eddy_ctx *ctx, const eddy_record *rec);

    /* Optional (default: do nothing). Handles one fired timer of the context's key. */
    eddy_status (*on_timer)(eddy_ctx *ctx, const eddy_timer *timer);

    /* Optional (default: `unsupported`). Rewrites one stored value (`value`) of `state`
     * (as the host describes it; `state->schema_version` is the new version) from schema
     * `from_version`. Put the new bytes in `*out`, allocated with malloc; the SDK hands
     * them to the host, which frees them. */
    eddy_status (*migrate)(const eddy_state_decl *state, uint32_t from_version,
                           eddy_bytes value, eddy_buf *out);
} eddy_operator;

/* Exports `op` (an `eddy_operator` with static storage) as the component's operator. Use it
 * once, at file scope. */
#define EDDY_EXPORT_OPERATOR(op) \
    const eddy_operator *eddy_exported_operator(void) { return &(op); }

/* Defined by EDDY_EXPORT_OPERATOR. */
const eddy_operator *eddy_exported_operator(void);

/* ---- emitting ---------------------------------------------------------------------------- */

/* Emits an output record with no headers. Key and value are copied. */
void eddy_emit(eddy_ctx *ctx, eddy_bytes key, eddy_bytes value);
/* Emits an output record with `n` headers (names and values must be UTF-8). An emit that
 * cannot be encoded (a part over 4 GiB, a header that is not UTF-8) fails the record when
 * the callback returns. */
void eddy_emit_with_headers(eddy_ctx *ctx, eddy_bytes key, eddy_bytes value,
                            const eddy_header *headers, size_t n);

/* ---- value state (prefetched; reads and writes never leave the component) ---------------- */

/* The current key's value of value state `handle`: the batch's own last write, else the
 * value before the batch. Absent: `value->ptr == NULL`. Borrowed: valid until the next
 * write of this state for this key, or until the callback returns. */
eddy_status eddy_value_get(eddy_ctx *ctx, uint32_t handle, eddy_bytes *value);
/* Sets the current key's value (the bytes are copied). Only the batch's last write per key
 * and state reaches the host, and only when the whole batch succeeds. */
eddy_status eddy_value_set(eddy_ctx *ctx, uint32_t handle, const void *ptr, size_t len);
/* Clears the current key's value. */
eddy_status eddy_value_clear(eddy_ctx *ctx, uint32_t handle);

/* ---- map and list state (thin wrappers of the `state` imports, scoped to the key) ------- */

typedef struct eddy_map_entry {
    eddy_buf key;
    eddy_buf value;
} eddy_map_entry;

/* A page of map entries; `next` (when `has_next`) is the cursor for the next page. */
typedef struct eddy_entry_page {
    eddy_map_entry *entries;
    size_t len;
    bool has_next;
    eddy_buf next;
} eddy_entry_page;

/* A page of map keys, paged like `eddy_entry_page`. */
typedef struct eddy_key_page {
    eddy_buf_list keys;
    bool has_next;
    eddy_buf next;
} eddy_key_page;

void eddy_entry_page_free(eddy_entry_page *page);
void eddy_key_page_free(eddy_key_page *page);

/* `*value` is owned by the caller when `*present` (release it with eddy_buf_free). */
eddy_status eddy_map_get(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key,
                         eddy_buf *value, bool *present);
eddy_status eddy_map_put(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key, eddy_bytes value);
eddy_status eddy_map_remove(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key);
eddy_status eddy_map_contains(eddy_ctx *ctx, uint32_t handle, eddy_bytes map_key, bool *contains);
eddy_status eddy_map_is_empty(eddy_ctx *ctx, uint32_t handle, bool *empty);
eddy_status eddy_map_clear(eddy_ctx *ctx, uint32_t handle);
/* Entries in map-key byte order after `cursor` (NULL: from the start), at most `max` (the
 * host caps it). The page is owned by the caller: eddy_entry_page_free. */
eddy_status eddy_map_entries(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *cursor,
                             uint32_t max, eddy_entry_page *page);
/* Keys in byte order, paged like eddy_map_entries. Free with eddy_key_page_free. */
eddy_status eddy_map_keys(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *cursor,
                          uint32_t max, eddy_key_page *page);

/* The current key's list (owned by the caller: eddy_buf_list_free). */
eddy_status eddy_list_get(eddy_ctx *ctx, uint32_t handle, eddy_buf_list *items);
eddy_status eddy_list_add(eddy_ctx *ctx, uint32_t handle, eddy_bytes item);
eddy_status eddy_list_add_all(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *items, size_t n);
/* Replaces the list (n = 0 clears it). */
eddy_status eddy_list_update(eddy_ctx *ctx, uint32_t handle, const eddy_bytes *items, size_t n);
eddy_status eddy_list_clear(eddy_ctx *ctx, uint32_t handle);

/* ---- operator state (not keyed; reachable in init, process and on_timer) ----------------- */

/* This worker's items (owned by the caller: eddy_buf_list_free). */
eddy_status eddy_operator_list_get(uint32_t handle, eddy_buf_list *items);
eddy_status eddy_operator_list_add(uint32_t handle, eddy_bytes item);
/* Replaces this worker's list (n = 0 clears it). */
eddy_status eddy_operator_list_update(uint32_t handle, const eddy_bytes *items, size_t n);

/* ---- timers (travel in the batch result, like value-state writes) ------------------------ */

/* Registers a timer for the current key: `on_timer` runs once the watermark (event time) or
 * the wall clock (processing time) reaches `timestamp`. Registering one twice fires once. */
void eddy_register_timer(eddy_ctx *ctx, eddy_time_domain domain, int64_t timestamp);
/* Deletes the current key's timer at (domain, timestamp), if there is one. */
void eddy_delete_timer(eddy_ctx *ctx, eddy_time_domain domain, int64_t timestamp);

/* ---- logging ----------------------------------------------------------------------------- */

typedef enum eddy_log_level {
    EDDY_LOG_TRACE = 0,
    EDDY_LOG_DEBUG = 1,
    EDDY_LOG_INFO = 2,
    EDDY_LOG_WARN = 3,
    EDDY_LOG_ERROR = 4,
} eddy_log_level;

/* Logs a line (printf-style) into the host's structured logging, tagged with the current
 * key; pass ctx = NULL outside process/on_timer (e.g. in init). */
void eddy_log(eddy_ctx *ctx, eddy_log_level level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */
