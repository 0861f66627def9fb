"""A JSON value as a tree of nodes the run page shows collapsible (objects and arrays open, leaves inline)."""

from __future__ import annotations

from typing import Any

MAX_NODES = 2000


def structured_tree(value: Any, key: str = "", *, budget: list[int] | None = None) -> dict[str, Any]:
    """{key, kind (object/array/string/number/boolean/null), text (a leaf's JSON), children, size}."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    node: dict[str, Any] = {"key": key, "children": []}
    if isinstance(value, dict):
        node.update(kind="object", size=len(value))
        items = list(value.items())
    elif isinstance(value, list):
        node.update(kind="array", size=len(value))
        items = [(f"[{index}]", item) for index, item in enumerate(value)]
    else:
        if value is None:
            node.update(kind="null", text="null")
        elif isinstance(value, bool):
            node.update(kind="boolean", text="true" if value else "false")
        elif isinstance(value, int | float):
            node.update(kind="number", text=str(value))
        else:
            node.update(kind="string", text=f'"{value}"')
        return node
    for child_key, child in items:
        if budget[0] <= 0:
            node["truncated"] = True
            break
        node["children"].append(structured_tree(child, str(child_key), budget=budget))
    return node
