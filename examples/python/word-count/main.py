"""`word-count`: counts the records of every key (a word) and emits the running count.

Input: key = the word (the value is ignored). Output: key = the word, value = how many
times it has been seen so far, as decimal text. State: `count`, an integer per word (JSON).
Config: `{"emit-every": n}` emits a word's count only on every n-th occurrence (an
aggregating job); the default, 1, emits on every record.
"""

import eddy_sdk as eddy


class WordCount(eddy.Operator):
    """Counts records per key."""

    name = "word-count"
    version = "0.1.0"

    def open(self, states):
        self.count = states.value("count")
        self.emit_every = 1

    def init(self, config):
        unknown = sorted(set(config) - {"emit-every"})
        if unknown:
            raise eddy.InvalidConfig(
                f"word-count config: unknown field `{unknown[0]}`, expected `emit-every`")
        emit_every = config.get("emit-every", 1)
        if type(emit_every) is not int or emit_every < 0:
            raise eddy.InvalidConfig(
                f"word-count config: emit-every must be a whole number, got {emit_every!r}")
        if emit_every == 0:
            raise eddy.InvalidConfig("word-count config: emit-every must be at least 1")
        self.emit_every = emit_every

    def process(self, ctx, record):
        count = self.count.get(0) + 1
        self.count.set(count)
        if count % self.emit_every == 0:
            ctx.emit(record.key, str(count))


Operator = eddy.export(WordCount)
