/*
 * {{name}}: counts the records of every key and emits the running count.
 *
 * State: `count`, a value state per key holding the count as decimal text (codec "json":
 * a JSON number). The C SDK's guide is guest-sdk/c/README.md in the eddy repository.
 */
#include <stdio.h>
#include <stdlib.h>

#include "eddy.h"

enum { COUNT = 0 };

static const eddy_state_decl STATES[] = {
    {.name = "count", .kind = EDDY_STATE_VALUE, .codec = "json"},
};

static eddy_status process(eddy_ctx *ctx, const eddy_record *rec) {
    eddy_status s;
    eddy_bytes stored;
    if ((s = eddy_value_get(ctx, COUNT, &stored))) return s;
    unsigned long long count = 0;
    if (stored.ptr) {
        char digits[24] = {0};
        if (stored.len >= sizeof digits) return eddy_error(EDDY_FAILED, "state `count`: not a count");
        for (size_t i = 0; i < stored.len; i++) digits[i] = (char)stored.ptr[i];
        count = strtoull(digits, NULL, 10);
    }
    count += 1;
    char text[24];
    int n = snprintf(text, sizeof text, "%llu", count);
    if ((s = eddy_value_set(ctx, COUNT, text, (size_t)n))) return s;
    eddy_emit(ctx, rec->key, eddy_bytes_of(text, (size_t)n));
    return EDDY_OK;
}

static const eddy_operator COUNTER = {
    .name = "{{name}}",
    .version = "0.1.0",
    .states = STATES,
    .n_states = EDDY_COUNT(STATES),
    .process = process,
};

EDDY_EXPORT_OPERATOR(COUNTER)
