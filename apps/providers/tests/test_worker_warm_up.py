"""A worker process's warm-up: litellm imported, then the long-lived heap put out of the collector's sight."""

from __future__ import annotations

import gc
import sys

from apps.providers.tasks import _warm_up_and_freeze


def test_warm_up_imports_litellm_and_freezes_the_heap():
    gc.unfreeze()
    try:
        _warm_up_and_freeze()
        assert "litellm" in sys.modules
        frozen = gc.get_freeze_count()
        # Everything alive at the freeze: Django, the apps and litellm (hundreds of thousands of objects).
        assert frozen > 100_000, frozen
        tracked_before = len(gc.get_objects(generation=2))
        assert tracked_before < frozen  # the oldest generation no longer holds the imports

        # What is made afterwards is still collected: a reference cycle dies at the next collection.
        class Node:
            pass

        first, second = Node(), Node()
        first.other, second.other = second, first
        made = id(first)
        del first, second
        gc.collect()
        assert all(id(obj) != made for obj in gc.get_objects() if isinstance(obj, Node))
    finally:
        gc.unfreeze()
