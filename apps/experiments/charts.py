"""plotly figures of an experiment, as JSON for the vendored plotly.js (no CDN)."""

from __future__ import annotations

from apps.experiments.models import Cell, CellStatus, Experiment


def experiment_charts(*, summary, experiment: Experiment) -> dict[str, str]:
    import plotly.graph_objects as go

    layout = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320, "template": "plotly_white"}
    figures: dict[str, str] = {}
    names = [s.name for s in summary]
    evaluator_names = [e.name for e in summary[0].evaluators] if summary else []
    if evaluator_names:
        score_figure = go.Figure(
            [
                go.Bar(name=evaluator, x=names, y=[s.evaluators[i].mean for s in summary])
                for i, evaluator in enumerate(evaluator_names)
            ],
            layout={**layout, "title": "Mean score per variant", "barmode": "group", "yaxis": {"range": [0, 1]}},
        )
        figures["scores"] = score_figure.to_json()
    latencies: dict[str, list[int]] = {name: [] for name in names}
    for variant, latency in Cell.objects.filter(
        experiment=experiment, status=CellStatus.DONE, latency_ms__isnull=False
    ).values_list("variant__name", "latency_ms"):
        latencies[variant].append(latency)
    figures["latency"] = go.Figure(
        [go.Box(name=name, y=values, boxpoints=False) for name, values in latencies.items()],
        layout={**layout, "title": "Latency (ms)"},
    ).to_json()
    if evaluator_names:
        figures["cost_score"] = go.Figure(
            [
                go.Scatter(
                    x=[float(s.cost)],
                    y=[s.evaluators[0].mean],
                    mode="markers+text",
                    text=[s.name],
                    textposition="top center",
                    marker={"size": 14},
                    name=s.name,
                )
                for s in summary
            ],
            layout={
                **layout,
                "title": f"Cost vs {evaluator_names[0]}",
                "xaxis": {"title": "total cost (USD)"},
                "yaxis": {"title": "mean score", "range": [0, 1.05]},
                "showlegend": False,
            },
        ).to_json()
    return figures
