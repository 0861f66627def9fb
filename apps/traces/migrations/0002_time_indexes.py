"""Indexes that differ by database.

PostgreSQL: BRIN on the start time of spans and traces. Rows arrive roughly in
time order, so a BRIN index of a few pages answers time ranges (retention's
deletes, since/until filters) where a B-tree would grow with every row and slow
every insert; full text search over a trace's input and output through a GIN
index on to_tsvector('simple', ...) (no extension needed). SQLite: a B-tree.
"""

from django.db import migrations

POSTGRES = [
    "CREATE INDEX IF NOT EXISTS span_start_brin ON traces_span USING brin (start_time) WITH (pages_per_range = 32)",
    "CREATE INDEX IF NOT EXISTS trace_start_brin ON traces_trace USING brin (start_time) WITH (pages_per_range = 32)",
    "CREATE INDEX IF NOT EXISTS trace_text_fts ON traces_trace USING gin "
    "(to_tsvector('simple'::regconfig, input_text || ' ' || output_text))",
]
POSTGRES_UNDO = ["DROP INDEX IF EXISTS span_start_brin", "DROP INDEX IF EXISTS trace_start_brin",
                 "DROP INDEX IF EXISTS trace_text_fts"]  # fmt: skip
SQLITE = ["CREATE INDEX IF NOT EXISTS span_start_time ON traces_span (start_time)"]
SQLITE_UNDO = ["DROP INDEX IF EXISTS span_start_time"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("traces", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRES_UNDO, "sqlite": SQLITE_UNDO}),
        )
    ]
