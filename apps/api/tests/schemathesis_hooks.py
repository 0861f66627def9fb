"""Schemathesis hooks (SCHEMATHESIS_HOOKS=apps.api.tests.schemathesis_hooks): how to send JSON Lines bodies.

The dataset rows endpoint reads application/x-ndjson, a media type schemathesis
cannot generate or serialize by itself: generate good rows and send them as they
are (test_schema's in-process fuzzing sends junk bytes too).
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import strategies as st

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)
_ROW = st.fixed_dictionaries({"input": st.dictionaries(_TEXT, _TEXT, min_size=1, max_size=3)})
schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.lists(_ROW, min_size=1, max_size=5).map(lambda rows: "\n".join(json.dumps(row) for row in rows).encode()),
)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()
