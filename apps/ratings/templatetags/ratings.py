import json

from django import template

register = template.Library()


@register.filter
def scale_range(low, high):
    """The whole numbers from low to high, inclusive."""
    try:
        return range(int(low), int(high) + 1)
    except (TypeError, ValueError):
        return range(0)


@register.filter
def pretty_json(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def percent(value, digits=0):
    if value is None:
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def pvalue(value):
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"
