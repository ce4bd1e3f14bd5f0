"""`{{name}}`: counts the records of every key and emits the running count."""

import eddy_sdk as eddy


class Counter(eddy.Operator):
    """Counts records per key."""

    name = "{{name}}"
    version = "0.1.0"

    def open(self, states):
        self.count = states.value("count")

    def process(self, ctx, record):
        count = self.count.get(0) + 1
        self.count.set(count)
        ctx.emit(record.key, str(count))


Operator = eddy.export(Counter)
