"""plotly figures of the canary page, built as JSON on the server and drawn by static/js/charts.js."""

from __future__ import annotations

from typing import Any

LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 280,
    "template": "plotly_white",
    "legend": {"orientation": "h", "y": -0.25},
}


def boundary(checks: list, metric: str, title: str) -> str | None:
    """The observed difference (worse is up) with its always-valid interval, and the rollback boundary."""
    import plotly.graph_objects as go

    points = []
    for check in checks:
        for g in check.guardrails:
            if g.get("metric") == metric and g.get("boundary") is not None:
                points.append((check.canary_calls, g))
    if not points:
        return None
    x = [n for n, _ in points]
    traces: list[Any] = [
        go.Scatter(
            x=x,
            y=[g["interval"][1] for _, g in points],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        ),
        go.Scatter(
            x=x,
            y=[g["interval"][0] for _, g in points],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(13,110,253,0.15)",
            name="always-valid interval",
        ),
        go.Scatter(x=x, y=[g["difference"] for _, g in points], mode="lines+markers", name="canary − stable (worse ↑)"),
        go.Scatter(
            x=x,
            y=[g["boundary"] for _, g in points],
            mode="lines",
            name="roll back above",
            line={"color": "#dc3545", "dash": "dash"},
        ),
        go.Scatter(
            x=x,
            y=[g["tolerance"] for _, g in points],
            mode="lines",
            name="tolerance",
            line={"color": "#6c757d", "dash": "dot"},
        ),
    ]
    layout = {**LAYOUT, "title": title, "xaxis": {"title": "canary calls"}}
    return go.Figure(traces, layout=layout).to_json()
