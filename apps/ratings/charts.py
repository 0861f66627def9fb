"""plotly figures of ratings and judgements, built on the server as JSON for the vendored plotly.js."""

from __future__ import annotations

from typing import Any

LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "height": 300, "template": "plotly_white"}


def rating_distribution(summary: dict[str, Any]) -> str | None:
    import plotly.graph_objects as go

    variants = [v for v in summary["variants"] if v["distribution"]]
    if not variants:
        return None
    scores = sorted({int(k) for v in variants for k in v["distribution"]})
    figure = go.Figure(
        [go.Bar(name=v["name"], x=scores, y=[v["distribution"].get(str(s), 0) for s in scores]) for v in variants],
        layout={**LAYOUT, "title": "Ratings per variant", "barmode": "group", "xaxis": {"title": "score", "dtick": 1}},
    )
    return figure.to_json()


def win_matrix(summary: dict[str, Any]) -> str | None:
    import plotly.graph_objects as go

    if not summary["pairs"]:
        return None
    names = [v["name"] for v in summary["variants"]]
    matrix: list[list[float | None]] = [[None] * len(names) for _ in names]
    text: list[list[str]] = [[""] * len(names) for _ in names]
    for pair in summary["pairs"]:
        i, j = names.index(pair["variant"]), names.index(pair["against"])
        matrix[i][j], matrix[j][i] = pair["win_rate"], 1 - pair["win_rate"]
        text[i][j] = f"{pair['win_rate']:.0%} (n={pair['n']})"
        text[j][i] = f"{1 - pair['win_rate']:.0%} (n={pair['n']})"
    figure = go.Figure(
        go.Heatmap(
            z=matrix, x=names, y=names, text=text, texttemplate="%{text}", zmin=0, zmax=1, colorscale="RdBu",
            hovertemplate="%{y} against %{x}: %{text}<extra></extra>",
        ),
        layout={**LAYOUT, "title": "Win rate of row against column", "xaxis": {"title": "against"}},
    )  # fmt: skip
    return figure.to_json()


def forest(summary: dict[str, Any]) -> str | None:
    """Intervals: each pair's win rate, and each variant's mean rating scaled to 0..1."""
    import plotly.graph_objects as go

    labels, estimates, lows, highs = [], [], [], []
    for pair in summary["pairs"]:
        labels.append(f"{pair['variant']} vs {pair['against']} win rate (n={pair['n']})")
        estimates.append(pair["win_rate"])
        lows.append(pair["win_rate"] - pair["ci_low"])
        highs.append(pair["ci_high"] - pair["win_rate"])
    if not labels:
        return None
    figure = go.Figure(
        go.Scatter(
            x=estimates, y=labels, mode="markers", marker={"size": 10},
            error_x={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows},
        ),
        layout={
            **LAYOUT, "title": "Win rates with 95% intervals",
            "xaxis": {"range": [0, 1], "tickformat": ".0%"},
            "shapes": [
                {"type": "line", "x0": 0.5, "x1": 0.5, "y0": 0, "y1": 1, "yref": "paper", "line": {"dash": "dot"}}
            ],
        },
    )  # fmt: skip
    return figure.to_json()


def rating_forest(summary: dict[str, Any]) -> str | None:
    import plotly.graph_objects as go

    rows = [v for v in summary["variants"] if v["mean_rating"] is not None]
    if not rows:
        return None
    figure = go.Figure(
        go.Scatter(
            x=[v["mean_rating"] for v in rows], y=[f"{v['name']} (n={v['n']})" for v in rows], mode="markers",
            marker={"size": 10},
            error_x={"type": "data", "symmetric": False, "array": [v["ci_high"] - v["mean_rating"] for v in rows],
                     "arrayminus": [v["mean_rating"] - v["ci_low"] for v in rows]},
        ),
        layout={**LAYOUT, "title": "Mean rating with 95% bootstrap intervals"},
    )  # fmt: skip
    return figure.to_json()


def score_against_cost(summary: dict[str, Any], costs: dict[str, float]) -> str | None:
    import plotly.graph_objects as go

    rows = [v for v in summary["variants"] if v["mean_rating"] is not None and v["name"] in costs]
    if not rows:
        return None
    figure = go.Figure(
        [
            go.Scatter(
                x=[costs[v["name"]]], y=[v["mean_rating"]], mode="markers+text", text=[v["name"]],
                textposition="top center", marker={"size": 14}, name=v["name"],
            )
            for v in rows
        ],
        layout={**LAYOUT, "title": "Mean rating against cost per output", "showlegend": False,
                "xaxis": {"title": "mean cost per output (USD)"}, "yaxis": {"title": "mean rating"}},
    )  # fmt: skip
    return figure.to_json()


def all_charts(summary: dict[str, Any], costs: dict[str, float]) -> dict[str, str]:
    figures = {
        "distribution": rating_distribution(summary),
        "win_matrix": win_matrix(summary),
        "forest": forest(summary),
        "rating_forest": rating_forest(summary),
        "cost": score_against_cost(summary, costs),
    }
    return {key: value for key, value in figures.items() if value}
