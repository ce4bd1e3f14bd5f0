/*
 * Native tests of the C SDK (eddy.c): the batch codec and the value-state, timer, error and
 * ownership rules, checked against docs/batch-format.md and the Rust SDK's runtime tests.
 * Built natively (gcc or clang) with the generated bindings, whose host imports are stubbed
 * below; run under AddressSanitizer/LeakSanitizer, so a leak or a double free in the
 * ownership rules fails the run. See run.sh.
 */
#define _GNU_SOURCE /* memmem */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"
#include "operator_world.h"

static int failures;
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            failures++;                                                                \
        }                                                                              \
    } while (0)
#define CHECK_STR(got, want)                                                           \
    do {                                                                               \
        const char *g_ = (got), *w_ = (want);                                          \
        if (!g_ || strcmp(g_, w_) != 0) {                                              \
            fprintf(stderr, "%s:%d: got \"%s\"\n  want \"%s\"\n", __FILE__, __LINE__,  \
                    g_ ? g_ : "(null)", w_);                                           \
            failures++;                                                                \
        }                                                                              \
    } while (0)

/* ---- stubs of the host imports (the canonical ABI return areas of operator_world.c) ------- */

static int value_get_calls;
static const char *value_get_result = "41"; /* NULL: absent */

void __wasm_import_eddy_operator_state_value_get(int32_t handle, int32_t key, uint8_t *ret) {
    (void)handle;
    (void)key;
    value_get_calls++;
    ret[0] = 0; /* ok */
    ret[8] = value_get_result != NULL;
    if (value_get_result) {
        size_t n = strlen(value_get_result);
        uint8_t *p = malloc(n);
        memcpy(p, value_get_result, n);
        *(uint8_t **)(ret + 8 + sizeof(void *)) = p;
        *(size_t *)(ret + 8 + 2 * sizeof(void *)) = n;
    }
}

/* list-add fails with a backend error (an owned string the SDK must free). */
void __wasm_import_eddy_operator_state_list_add(int32_t handle, int32_t key, uint8_t *value,
                                                size_t len, uint8_t *ret) {
    (void)handle, (void)key, (void)value, (void)len;
    ret[0] = 1;
    ret[8] = 3;
    char *m = malloc(9);
    memcpy(m, "disk full", 9);
    *(char **)(ret + 16) = m;
    *(size_t *)(ret + 16 + sizeof(void *)) = 9;
}

static char last_log[256];
static int last_log_key = -2;
void __wasm_import_eddy_operator_log_log(int32_t level, int32_t has_key, int32_t key,
                                         uint8_t *message, size_t len) {
    (void)level;
    last_log_key = has_key ? key : -1;
    snprintf(last_log, sizeof last_log, "%.*s", (int)len, (const char *)message);
}

#define UNUSED_IMPORT(name) \
    void __wasm_import_eddy_operator_state_##name(void) { abort(); }
UNUSED_IMPORT(value_set)
UNUSED_IMPORT(value_clear)
UNUSED_IMPORT(map_get)
UNUSED_IMPORT(map_put)
UNUSED_IMPORT(map_remove)
UNUSED_IMPORT(map_contains)
UNUSED_IMPORT(map_is_empty)
UNUSED_IMPORT(map_clear)
UNUSED_IMPORT(map_entries)
UNUSED_IMPORT(map_keys)
UNUSED_IMPORT(list_get)
UNUSED_IMPORT(list_add_all)
UNUSED_IMPORT(list_update)
UNUSED_IMPORT(list_clear)
UNUSED_IMPORT(operator_list_get)
UNUSED_IMPORT(operator_list_add)
UNUSED_IMPORT(operator_list_update)

/* Natively there is no operator_world_component_type.o to force-link. */
void __component_type_object_force_link_operator_world(void) {}

/* ---- the operator under test: switchable ---------------------------------------------------- */

static const eddy_operator *current;
const eddy_operator *eddy_exported_operator(void) { return current; }

/* Echo (as in the Rust runtime tests): emits (key, value + n) with header n = count; counts in
 * value state `n` (decimal text). "fail" fails; "log" logs; "list" adds to the list state. */
enum { UNUSED = 0, N = 1 };
static const eddy_state_decl ECHO_STATES[] = {
    {.name = "unused", .kind = EDDY_STATE_LIST},
    {.name = "n", .kind = EDDY_STATE_VALUE},
};

static eddy_status echo_process(eddy_ctx *ctx, const eddy_record *rec) {
    eddy_status s;
    if (eddy_bytes_eq_str(rec->value, "fail")) return eddy_error(EDDY_FAILED, "no");
    if (eddy_bytes_eq_str(rec->value, "list")) return eddy_list_add(ctx, UNUSED, eddy_str("x"));
    if (eddy_bytes_eq_str(rec->value, "log")) eddy_log(ctx, EDDY_LOG_INFO, "hello %d", 5);
    if (eddy_bytes_eq_str(rec->value, "badheader")) {
        eddy_header h = {eddy_str("h"), eddy_bytes_of("\xff", 1)};
        eddy_emit_with_headers(ctx, rec->key, rec->value, &h, 1);
        return EDDY_OK;
    }
    eddy_bytes v;
    if ((s = eddy_value_get(ctx, N, &v))) return s;
    unsigned n = 0;
    if (v.ptr) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%.*s", (int)v.len, (const char *)v.ptr);
        n = (unsigned)atoi(tmp);
    }
    n++;
    char text[16];
    int len = snprintf(text, sizeof text, "%u", n);
    if ((s = eddy_value_set(ctx, N, text, (size_t)len))) return s;
    char value[64];
    int vlen = snprintf(value, sizeof value, "%.*s%u", (int)rec->value.len,
                        (const char *)rec->value.ptr, n);
    eddy_header h = {eddy_str("n"), eddy_bytes_of(text, (size_t)len)};
    eddy_emit_with_headers(ctx, rec->key, eddy_bytes_of(value, (size_t)vlen), &h, 1);
    return EDDY_OK;
}

static const eddy_operator ECHO = {
    .name = "echo",
    .version = "0.0.1",
    .states = ECHO_STATES,
    .n_states = EDDY_COUNT(ECHO_STATES),
    .process = echo_process,
};

/* ---- batches, built as the host does ---------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 16;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void i64(buf *b, int64_t v) { put(b, &v, 8); }
static void bytes(buf *b, const char *s) {
    u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}
/* A slot: NULL = absent. */
static void slot(buf *b, const char *v) {
    u8(b, v != NULL);
    if (v) bytes(b, v);
}
static void record(buf *b, uint32_t key, int64_t ts, const char *value, uint32_t n_headers,
                   const char *const *headers) {
    u32(b, key);
    i64(b, ts);
    i64(b, 0); /* watermark */
    bytes(b, value);
    u32(b, n_headers);
    for (uint32_t i = 0; i < 2 * n_headers; i++) bytes(b, headers[i]);
}

/* The result of one export call. */
typedef struct {
    bool ok;
    buf out;
    int tag;
    char msg[512];
} result;

static result call(bool timers, const uint8_t *in, size_t len) {
    result r = {0};
    operator_world_list_u8_t batch = {len ? malloc(len) : NULL, len};
    if (len) memcpy(batch.ptr, in, len);
    operator_world_list_u8_t ret;
    exports_eddy_operator_operator_operator_error_t err;
    r.ok = timers ? exports_eddy_operator_operator_on_timer(&batch, &ret, &err)
                  : exports_eddy_operator_operator_process(&batch, &ret, &err);
    /* What the generated post-return does. */
    if (r.ok) {
        put(&r.out, ret.ptr, ret.len);
        operator_world_list_u8_free(&ret);
    } else {
        r.tag = err.tag;
        snprintf(r.msg, sizeof r.msg, "%.*s", (int)err.val.failed.len, (const char *)err.val.failed.ptr);
        exports_eddy_operator_operator_operator_error_free(&err);
    }
    return r;
}

static bool init(const eddy_operator *op, const char *config, char *msg) {
    current = op;
    operator_world_string_t c;
    operator_world_string_dup(&c, config);
    exports_eddy_operator_operator_operator_error_t err;
    bool ok = exports_eddy_operator_operator_init(&c, &err);
    if (!ok) {
        if (msg) snprintf(msg, 512, "%d:%.*s", err.tag, (int)err.val.failed.len, (const char *)err.val.failed.ptr);
        exports_eddy_operator_operator_operator_error_free(&err);
    }
    return ok;
}

/* The Rust runtime test's input: keys k0 (n = "7") and k1 (none); records k1 "a", k0 "b"
 * (header h: v), k1 "c". */
static buf echo_input(void) {
    buf b = {0};
    u8(&b, 2);
    i64(&b, 0);
    u32(&b, 2);
    bytes(&b, "k0");
    bytes(&b, "k1");
    u32(&b, 1);
    u32(&b, N);
    slot(&b, "7");
    slot(&b, NULL);
    u32(&b, 3);
    record(&b, 1, 5, "a", 0, NULL);
    const char *h[] = {"h", "v"};
    record(&b, 0, 6, "b", 1, h);
    record(&b, 1, 7, "c", 0, NULL);
    return b;
}

static void test_output_bytes_follow_the_documented_layout(void) {
    CHECK(init(&ECHO, "{}", NULL));
    buf in = echo_input();
    result r = call(false, in.p, in.len);
    CHECK(r.ok);
    buf want = {0};
    u8(&want, 2);
    u32(&want, 3);
    const char *emits[3][3] = {{"k1", "a1", "1"}, {"k0", "b8", "8"}, {"k1", "c2", "2"}};
    for (int i = 0; i < 3; i++) {
        u32(&want, 1);
        bytes(&want, emits[i][0]);
        bytes(&want, emits[i][1]);
        u32(&want, 1);
        bytes(&want, "n");
        bytes(&want, emits[i][2]);
    }
    u32(&want, 2); /* the last write per key: k0 = 8, k1 = 2 */
    u32(&want, 0), u32(&want, N), u8(&want, 1), bytes(&want, "8");
    u32(&want, 1), u32(&want, N), u8(&want, 1), bytes(&want, "2");
    u32(&want, 0); /* no timer ops */
    CHECK(r.out.len == want.len && memcmp(r.out.p, want.p, want.len) == 0);

    /* Batches are independent. */
    result again = call(false, in.p, in.len);
    CHECK(again.ok && again.out.len == r.out.len && memcmp(again.out.p, r.out.p, r.out.len) == 0);
    free(want.p), free(r.out.p), free(again.out.p), free(in.p);
}

static void test_errors_name_the_record(void) {
    CHECK(init(&ECHO, "{}", NULL));
    buf b = {0};
    u8(&b, 2), i64(&b, 0), u32(&b, 1), bytes(&b, "k"), u32(&b, 1), u32(&b, N), slot(&b, NULL);
    u32(&b, 4);
    record(&b, 0, 0, "x", 0, NULL);
    record(&b, 0, 0, "x", 0, NULL);
    buf fail = b, list = {0}, header = {0};
    put(&list, b.p, b.len);
    put(&header, b.p, b.len);
    record(&fail, 0, 0, "x", 0, NULL);
    record(&fail, 0, 0, "fail", 0, NULL);
    result r = call(false, fail.p, fail.len);
    CHECK(!r.ok && r.tag == EDDY_OPERATOR_TYPES_OPERATOR_ERROR_FAILED);
    CHECK_STR(r.msg, "record 3: no");

    record(&list, 0, 0, "x", 0, NULL);
    record(&list, 0, 0, "list", 0, NULL);
    r = call(false, list.p, list.len);
    CHECK_STR(r.msg, "record 3: state `unused`: add: state backend failed: disk full");

    record(&header, 0, 0, "badheader", 0, NULL);
    record(&header, 0, 0, "x", 0, NULL);
    r = call(false, header.p, header.len);
    CHECK_STR(r.msg, "record 2: cannot emit record: a header name or value is not UTF-8");
    free(fail.p), free(list.p), free(header.p);
}

static void test_malformed_batches_are_errors(void) {
    CHECK(init(&ECHO, "{}", NULL));
    buf in = echo_input();
    for (size_t len = 0; len < in.len; len++) {
        result r = call(false, in.p, len);
        CHECK(!r.ok && strncmp(r.msg, "malformed batch", 15) == 0);
    }
    buf trailing = {0};
    put(&trailing, in.p, in.len);
    u8(&trailing, 0);
    result r = call(false, trailing.p, trailing.len);
    CHECK_STR(r.msg, "malformed batch: 1 bytes after the last record");
    /* The list state (handle 0) cannot be prefetched. */
    in.p[1 + 8 + 4 + 6 + 6 + 4] = 0;
    r = call(false, in.p, in.len);
    CHECK_STR(r.msg, "malformed batch at byte 29: prefetched handle 0 is not a value state");
    /* A count larger than the bytes left is refused before anything is allocated. */
    buf huge = {0};
    u8(&huge, 2), i64(&huge, 0), u32(&huge, 0xFFFFFFFF);
    r = call(false, huge.p, huge.len);
    CHECK_STR(r.msg, "malformed batch at byte 9: key count is 4294967295, more than the 0 bytes left can hold");
    free(in.p), free(trailing.p), free(huge.p);
}

static void test_process_before_init_is_an_error(void) {
    char msg[512];
    eddy_state_decl dup[] = {{.name = "a"}, {.name = "a"}};
    eddy_operator bad = ECHO;
    bad.states = dup;
    bad.n_states = 2;
    CHECK(!init(&bad, "{}", msg));
    CHECK_STR(msg, "0:state `a` is declared twice (the first time as a keyed state); state names "
                   "must be unique across keyed and operator states");
    buf in = echo_input();
    result r = call(false, in.p, in.len);
    CHECK_STR(r.msg, "`process` was called before a successful `init`");
    free(in.p);
}

/* Value states with TTLs: `t` restarts on reads, `w` only on writes. */
enum { T = 0, W = 1 };
static const eddy_state_decl TTL_STATES[] = {
    {.name = "t", .kind = EDDY_STATE_VALUE, .ttl_ms = 1000, .ttl_update = EDDY_TTL_ON_READ_AND_WRITE},
    {.name = "w", .kind = EDDY_STATE_VALUE, .ttl_ms = 1000},
};
static eddy_status ttl_process(eddy_ctx *ctx, const eddy_record *rec) {
    eddy_bytes v;
    eddy_status s;
    if (eddy_bytes_eq_str(rec->value, "read")) {
        if ((s = eddy_value_get(ctx, T, &v)) || (s = eddy_value_get(ctx, W, &v))) return s;
    } else if (eddy_bytes_eq_str(rec->value, "write")) {
        if ((s = eddy_value_set(ctx, T, "x", 1))) return s;
    } else if (eddy_bytes_eq_str(rec->value, "clear")) {
        if ((s = eddy_value_clear(ctx, T))) return s;
        if ((s = eddy_value_get(ctx, T, &v))) return s;
        if (v.ptr) return eddy_error(EDDY_FAILED, "cleared value still present");
    } else if (eddy_bytes_eq_str(rec->value, "self")) {
        /* Setting a value from its own bytes (they alias the slot's buffer). */
        if ((s = eddy_value_set(ctx, W, "abc", 3)) || (s = eddy_value_get(ctx, W, &v))) return s;
        if ((s = eddy_value_set(ctx, W, v.ptr + 1, 2))) return s;
    }
    return EDDY_OK;
}
static const eddy_operator TTL = {
    .name = "ttl", .version = "1", .states = TTL_STATES, .n_states = 2, .process = ttl_process,
};

/* A batch of keys k0 (t = "a", w = "b") and k1 (t absent, w = "c") with one record per
 * value, in order: "v0,k0;v1,k1;..." -> given as arrays. Returns the writes section. */
static buf ttl_run(int n, const uint32_t *keys, const char *const *values) {
    buf b = {0};
    u8(&b, 2), i64(&b, 0), u32(&b, 2), bytes(&b, "k0"), bytes(&b, "k1");
    u32(&b, 2), u32(&b, T), u32(&b, W);
    slot(&b, "a"), slot(&b, "b"), slot(&b, NULL), slot(&b, "c");
    u32(&b, (uint32_t)n);
    for (int i = 0; i < n; i++) record(&b, keys[i], 0, values[i], 0, NULL);
    result r = call(false, b.p, b.len);
    CHECK(r.ok);
    free(b.p);
    buf writes = {0};
    /* Skip version, count and n empty emit lists. */
    if (r.ok) put(&writes, r.out.p + 5 + 4 * (size_t)n, r.out.len - 5 - 4 * (size_t)n);
    free(r.out.p);
    return writes;
}

static void test_value_state_writes_and_ttl_refresh(void) {
    CHECK(init(&TTL, "{}", NULL));
    /* Reads: only the present value of the refresh-on-read state is written back. */
    uint32_t k01[] = {0, 1};
    const char *reads[] = {"read", "read"};
    buf w = ttl_run(2, k01, reads);
    buf want = {0};
    u32(&want, 1), u32(&want, 0), u32(&want, T), u8(&want, 1), bytes(&want, "a"), u32(&want, 0);
    CHECK(w.len == want.len && memcmp(w.p, want.p, want.len) == 0);
    free(w.p), free(want.p);

    /* A read then a write: the write wins; a clear then a read: the clear. */
    uint32_t k00[] = {0, 0, 1, 1};
    const char *rw[] = {"read", "write", "clear", "read"};
    w = ttl_run(4, k00, rw);
    want = (buf){0};
    u32(&want, 2);
    u32(&want, 0), u32(&want, T), u8(&want, 1), bytes(&want, "x");
    u32(&want, 1), u32(&want, T), u8(&want, 0);
    u32(&want, 0);
    CHECK(w.len == want.len && memcmp(w.p, want.p, want.len) == 0);
    free(w.p), free(want.p);

    uint32_t k0[] = {0};
    const char *self[] = {"self"};
    w = ttl_run(1, k0, self);
    want = (buf){0};
    u32(&want, 1), u32(&want, 0), u32(&want, W), u8(&want, 1), bytes(&want, "bc"), u32(&want, 0);
    CHECK(w.len == want.len && memcmp(w.p, want.p, want.len) == 0);
    free(w.p), free(want.p);
}

static void test_unprefetched_value_state_is_read_once(void) {
    CHECK(init(&ECHO, "{}", NULL));
    buf b = {0};
    u8(&b, 2), i64(&b, 0), u32(&b, 1), bytes(&b, "k"), u32(&b, 0); /* nothing prefetched */
    u32(&b, 2);
    record(&b, 0, 0, "v", 0, NULL);
    record(&b, 0, 0, "v", 0, NULL);
    value_get_calls = 0;
    result r = call(false, b.p, b.len);
    CHECK(r.ok);
    CHECK(value_get_calls == 1);
    /* 41 from the host, then 42 and 43; the write carries 43. */
    const char tail[] = "\x01\x00\x00\x00" "\x00\x00\x00\x00" "\x01\x00\x00\x00" "\x01"
                        "\x02\x00\x00\x00" "43" "\x00\x00\x00\x00";
    CHECK(r.out.len > sizeof tail - 1 &&
          memcmp(r.out.p + r.out.len - (sizeof tail - 1), tail, sizeof tail - 1) == 0);
    CHECK(memmem(r.out.p, r.out.len, "v42", 3) && memmem(r.out.p, r.out.len, "v43", 3));
    free(b.p), free(r.out.p);
}

/* Timers: "t" registers an event-time timer at ts + 10 and deletes a processing-time one;
 * on_timer emits (key, "fired <ts>") and reads the header-less context. */
static eddy_status timer_process(eddy_ctx *ctx, const eddy_record *rec) {
    eddy_bytes hv;
    if (eddy_header_get(rec, "echo", &hv)) eddy_emit(ctx, rec->key, hv);
    eddy_register_timer(ctx, EDDY_EVENT_TIME, rec->timestamp + 10);
    eddy_delete_timer(ctx, EDDY_PROCESSING_TIME, 99);
    return EDDY_OK;
}
static eddy_status timer_fired(eddy_ctx *ctx, const eddy_timer *t) {
    if (t->timestamp == 666) return eddy_error(EDDY_FAILED, "boom");
    char text[32];
    int n = snprintf(text, sizeof text, "fired %lld %d %lld", (long long)t->timestamp,
                     (int)t->domain, (long long)eddy_watermark(ctx));
    eddy_emit(ctx, eddy_key(ctx), eddy_bytes_of(text, (size_t)n));
    return EDDY_OK;
}
static const eddy_operator TIMERS = {
    .name = "timers", .version = "1", .process = timer_process, .on_timer = timer_fired,
};

static void test_timers_and_headers(void) {
    CHECK(init(&TIMERS, "{}", NULL));
    buf b = {0};
    u8(&b, 2), i64(&b, 0), u32(&b, 1), bytes(&b, "k"), u32(&b, 0);
    u32(&b, 2);
    const char *h[] = {"a", "1", "echo", "hi"};
    record(&b, 0, 100, "x", 2, h);
    record(&b, 0, 200, "y", 0, NULL);
    result r = call(false, b.p, b.len);
    CHECK(r.ok);
    buf want = {0};
    u8(&want, 2), u32(&want, 2);
    u32(&want, 1), bytes(&want, "k"), bytes(&want, "hi"), u32(&want, 0);
    u32(&want, 0);
    u32(&want, 0); /* no writes */
    u32(&want, 4);
    u32(&want, 0), u8(&want, 1), u8(&want, 0), i64(&want, 110);
    u32(&want, 0), u8(&want, 0), u8(&want, 1), i64(&want, 99);
    u32(&want, 1), u8(&want, 1), u8(&want, 0), i64(&want, 210);
    u32(&want, 1), u8(&want, 0), u8(&want, 1), i64(&want, 99);
    CHECK(r.out.len == want.len && memcmp(r.out.p, want.p, want.len) == 0);
    free(b.p), free(r.out.p), free(want.p);

    b = (buf){0};
    u8(&b, 2), i64(&b, 0), u32(&b, 1), bytes(&b, "k"), u32(&b, 0);
    u32(&b, 1);
    u32(&b, 0), i64(&b, 110), u8(&b, 0), i64(&b, 150);
    r = call(true, b.p, b.len);
    CHECK(r.ok && memmem(r.out.p, r.out.len, "fired 110 0 150", 15));
    free(r.out.p);
    b.len -= 17;
    i64(&b, 666), u8(&b, 1), i64(&b, 150);
    r = call(true, b.p, b.len);
    CHECK_STR(r.msg, "timer 0 (ProcessingTime 666): boom");
    free(b.p);
}

static void test_describe_migrate_log(void) {
    static const eddy_state_decl states[] = {
        {.name = "v", .kind = EDDY_STATE_VALUE, .schema_version = 3, .ttl_ms = 5, .codec = "json"},
        {.name = "m", .kind = EDDY_STATE_MAP},
    };
    static const eddy_operator_state_decl ops[] = {{.name = "o", .redistribution = EDDY_UNION}};
    eddy_operator op = ECHO;
    op.states = states, op.n_states = 2, op.operator_states = ops, op.n_operator_states = 1;
    current = &op;
    exports_eddy_operator_operator_operator_info_t info;
    exports_eddy_operator_operator_describe(&info);
    CHECK(info.name.len == 4 && memcmp(info.name.ptr, "echo", 4) == 0);
    CHECK(info.states.len == 2 && info.states.ptr[0].schema_version == 3 &&
          info.states.ptr[0].ttl.is_some && info.states.ptr[0].ttl.val.ttl_ms == 5 &&
          info.states.ptr[0].codec.is_some && info.states.ptr[1].schema_version == 1 &&
          !info.states.ptr[1].ttl.is_some && !info.states.ptr[1].codec.is_some &&
          info.states.ptr[1].kind == EDDY_OPERATOR_TYPES_STATE_KIND_MAP);
    CHECK(info.operator_states.len == 1 &&
          info.operator_states.ptr[0].redistribution == EDDY_OPERATOR_TYPES_REDISTRIBUTION_UNION);
    exports_eddy_operator_operator_operator_info_free(&info);

    current = &ECHO;
    exports_eddy_operator_operator_state_descriptor_t d = {0};
    operator_world_string_dup(&d.name, "n");
    d.schema_version = 2;
    operator_world_list_u8_t value = {malloc(1), 1}, ret;
    value.ptr[0] = 7;
    exports_eddy_operator_operator_operator_error_t err;
    CHECK(!exports_eddy_operator_operator_migrate(&d, 1, &value, &ret, &err));
    CHECK(err.tag == EDDY_OPERATOR_TYPES_OPERATOR_ERROR_UNSUPPORTED);
    char msg[200];
    snprintf(msg, sizeof msg, "%.*s", (int)err.val.unsupported.len, (const char *)err.val.unsupported.ptr);
    CHECK_STR(msg, "operator `echo` 0.0.1 cannot migrate state `n` from schema version 1 to 2");
    exports_eddy_operator_operator_operator_error_free(&err);

    CHECK(init(&ECHO, "{}", NULL));
    buf b = {0};
    u8(&b, 2), i64(&b, 0), u32(&b, 2), bytes(&b, "k0"), bytes(&b, "k1"), u32(&b, 0);
    u32(&b, 1);
    record(&b, 1, 0, "log", 0, NULL);
    result r = call(false, b.p, b.len);
    CHECK(r.ok);
    CHECK_STR(last_log, "hello 5");
    CHECK(last_log_key == 1);
    free(b.p), free(r.out.p);
}

static eddy_status init_fails(const char *config, size_t len) {
    (void)len;
    return eddy_error(EDDY_FAILED, "bad config %s", config);
}

static void test_init_errors_are_invalid_config(void) {
    eddy_operator op = ECHO;
    op.init = init_fails;
    char msg[512];
    CHECK(!init(&op, "{\"a\":1}", msg));
    CHECK_STR(msg, "0:bad config {\"a\":1}");
}

int main(void) {
    test_output_bytes_follow_the_documented_layout();
    test_errors_name_the_record();
    test_malformed_batches_are_errors();
    test_process_before_init_is_an_error();
    test_value_state_writes_and_ttl_refresh();
    test_unprefetched_value_state_is_read_once();
    test_timers_and_headers();
    test_describe_migrate_log();
    test_init_errors_are_invalid_config();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("c sdk tests: ok\n");
    return 0;
}
