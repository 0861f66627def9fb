"""plotly figures of the dashboard, built on the server as JSON and drawn by static/js/charts.js (no inline script)."""

from __future__ import annotations

from typing import Any

LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 280,
    "template": "plotly_white",
    "legend": {"orientation": "h", "y": -0.2},
}


def _moves_layout(moves: list[dict[str, Any]]) -> dict[str, Any]:
    shapes, notes = [], []
    for move in moves:
        at = move["at"].isoformat()
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": at,
                "x1": at,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#d63384", "width": 1, "dash": "dot"},
            }
        )
        text = f"{move['label']} → v{move['to']}" if move["to"] else f"{move['label']} deleted"
        notes.append(
            {
                "x": at,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": text,
                "showarrow": False,
                "font": {"size": 10, "color": "#d63384"},
                "yanchor": "bottom",
            }
        )
    return {"shapes": shapes, "annotations": notes}


def _figure(title: str, traces: list, moves: list, **layout) -> str:
    import plotly.graph_objects as go

    extra = _moves_layout(moves)
    return go.Figure(traces, layout={**LAYOUT, "title": title, **extra, **layout}).to_json()


def dashboard(data: dict[str, Any], moves: list[dict[str, Any]]) -> dict[str, str]:
    """One figure per metric, every version on the same axes, label moves as dotted lines."""
    import plotly.graph_objects as go

    versions = data["versions"]
    if not versions:
        return {}

    def xs(v):
        return [p["at"].isoformat() for p in v["points"]]

    def line(v, key, name=None, **kw):
        return go.Scatter(x=xs(v), y=[p[key] for p in v["points"]], name=name or v["name"], mode="lines+markers", **kw)

    figures = {
        "volume": _figure(
            "Generations",
            [go.Bar(x=xs(v), y=[p["volume"] for p in v["points"]], name=v["name"]) for v in versions],
            moves,
            barmode="stack",
        ),
        "errors": _figure(
            "Error rate",
            [line(v, "error_rate") for v in versions],
            moves,
            yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        ),
        "latency": _figure(
            "Latency p50 / p95 / p99 (ms)",
            [
                line(v, key, f"{v['name']} {key}", line={"dash": dash})
                for v in versions
                for key, dash in (("p50", "solid"), ("p95", "dash"), ("p99", "dot"))
            ],
            moves,
            yaxis={"rangemode": "tozero"},
        ),
        "tokens": _figure(
            "Tokens",
            [
                go.Bar(x=xs(v), y=[p["input_tokens"] + p["output_tokens"] for p in v["points"]], name=v["name"])
                for v in versions
            ],
            moves,
            barmode="stack",
        ),
        "cost": _figure(
            "Cost ($)",
            [go.Bar(x=xs(v), y=[p["cost"] for p in v["points"]], name=v["name"]) for v in versions],
            moves,
            barmode="stack",
        ),
    }
    for score in data["scores"]:
        traces = []
        for v in score["versions"]:
            points = [p for p in v["points"] if p["mean"] is not None]
            traces.append(
                go.Scatter(
                    x=[p["at"].isoformat() for p in points],
                    y=[p["mean"] for p in points],
                    name=v["name"],
                    mode="lines+markers",
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [(p["high"] - p["mean"]) if p["high"] is not None else 0 for p in points],
                        "arrayminus": [(p["mean"] - p["low"]) if p["low"] is not None else 0 for p in points],
                    },
                )
            )
        figures[f"score-{score['name']}"] = _figure(f"{score['name']}: mean with 95% interval", traces, moves)
    return figures


def drift_figure(test: dict[str, Any]) -> str | None:
    """Reference against window for one drift test: category shares, or quantiles of a numeric variable."""
    import plotly.graph_objects as go

    shown = test.get("shown")
    if not shown:
        return None
    if shown["kind"] == "categories":
        traces = [
            go.Bar(x=shown["categories"], y=shown["reference"], name="reference"),
            go.Bar(x=shown["categories"], y=shown["window"], name="window"),
        ]
        return go.Figure(
            traces, layout={**LAYOUT, "title": test["metric"], "barmode": "group", "yaxis": {"tickformat": ".0%"}}
        ).to_json()
    traces = [
        go.Scatter(x=shown["quantiles"], y=shown["reference"], name="reference", mode="lines+markers"),
        go.Scatter(x=shown["quantiles"], y=shown["window"], name="window", mode="lines+markers"),
    ]
    return go.Figure(
        traces, layout={**LAYOUT, "title": f"{test['metric']}: quantiles", "xaxis": {"title": "quantile"}}
    ).to_json()
