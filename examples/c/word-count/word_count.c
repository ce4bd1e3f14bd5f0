/*
 * c-word-count: counts the records of every key (a word) and emits the running count; the
 * C port of examples/word-count (Rust), built on the C guest SDK (guest-sdk/c).
 *
 * Input: key = the word (the value is ignored). Output: key = the word, value = how many
 * times it has been seen so far, as decimal text. State: `count`, a value state per word
 * holding the count as decimal text (codec "json": a JSON number, so
 * `eddy savepoint dump` shows it as one).
 *
 * Config: `{"emit-every": n}` emits a word's count only on every n-th occurrence (an
 * aggregating job); the default, 1, emits on every record.
 */
#include <stdint.h>
#include <string.h>

#include "eddy.h"

/* State handles: indexes into STATES. */
enum { COUNT = 0 };

static const eddy_state_decl STATES[] = {
    {.name = "count", .kind = EDDY_STATE_VALUE, .codec = "json"},
};

static uint64_t emit_every = 1;

/* ---- decimal text -------------------------------------------------------------------------- */

/* Parses `len` ASCII digits (no sign, no leading zero unless "0") as a u64; false when they
 * are not that or overflow. */
static bool parse_u64(const uint8_t *p, size_t len, uint64_t *out) {
    if (len == 0 || (len > 1 && p[0] == '0')) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Writes `v` as decimal into `buf` (at least 20 bytes); returns the length. */
static size_t format_u64(uint64_t v, char *buf) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

/* ---- config: a JSON object with at most the field "emit-every" ----------------------------- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A JSON string without escapes (no field name of this config has any); sets [*s, *n). */
static bool string(cursor *c, const char **s, size_t *n) {
    if (!eat(c, '"')) return false;
    const char *start = c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\' || (unsigned char)*c->p < 0x20) return false;
        c->p++;
    }
    if (c->p == c->end) return false;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return true;
}

static eddy_status init(const char *config, size_t len) {
    cursor c = {config, config + len};
    bool seen = false;
    uint64_t every = 1;
    if (!eat(&c, '{')) goto syntax;
    if (!eat(&c, '}')) {
        do {
            const char *name;
            size_t n;
            if (!string(&c, &name, &n) || !eat(&c, ':')) goto syntax;
            if (n != 10 || memcmp(name, "emit-every", 10) != 0)
                return eddy_error(EDDY_INVALID_CONFIG,
                                  "word-count config: unknown field `%.*s`, expected `emit-every`",
                                  (int)n, name);
            if (seen)
                return eddy_error(EDDY_INVALID_CONFIG, "word-count config: duplicate field `emit-every`");
            seen = true;
            skip_ws(&c);
            const char *digits = c.p;
            while (c.p < c.end && *c.p >= '0' && *c.p <= '9') c.p++;
            if (!parse_u64((const uint8_t *)digits, (size_t)(c.p - digits), &every) ||
                (c.p < c.end && (*c.p == '.' || *c.p == 'e' || *c.p == 'E')))
                return eddy_error(EDDY_INVALID_CONFIG,
                                  "word-count config: emit-every must be a whole number from 1 to %llu",
                                  (unsigned long long)UINT64_MAX);
        } while (eat(&c, ','));
        if (!eat(&c, '}')) goto syntax;
    }
    skip_ws(&c);
    if (c.p != c.end) goto syntax;
    if (every == 0)
        return eddy_error(EDDY_INVALID_CONFIG, "word-count config: emit-every must be at least 1");
    emit_every = every;
    return EDDY_OK;
syntax:
    return eddy_error(EDDY_INVALID_CONFIG,
                      "word-count config: expected {} or {\"emit-every\": n}, got %s", config);
}

/* ---- the operator ------------------------------------------------------------------------- */

static eddy_status process(eddy_ctx *ctx, const eddy_record *rec) {
    eddy_status s;
    eddy_bytes stored;
    if ((s = eddy_value_get(ctx, COUNT, &stored))) return s;
    uint64_t count = 0;
    if (stored.ptr && !parse_u64(stored.ptr, stored.len, &count))
        return eddy_error(EDDY_FAILED, "state `count`: cannot decode value `%.*s`: not a u64",
                          (int)stored.len, (const char *)stored.ptr);
    count += 1;
    char text[20];
    size_t n = format_u64(count, text);
    if ((s = eddy_value_set(ctx, COUNT, text, n))) return s;
    if (count % emit_every == 0) eddy_emit(ctx, rec->key, eddy_bytes_of(text, n));
    return EDDY_OK;
}

static const eddy_operator WORD_COUNT = {
    .name = "c-word-count",
    .version = "0.1.0",
    .states = STATES,
    .n_states = EDDY_COUNT(STATES),
    .init = init,
    .process = process,
};

EDDY_EXPORT_OPERATOR(WORD_COUNT)
