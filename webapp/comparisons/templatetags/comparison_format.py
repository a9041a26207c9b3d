"""Numbers as a researcher reads them: 1.23 M parameters, 4.5 GFLOPs, 12 min 5 s."""
from django import template

register = template.Library()

_PREFIXES = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]


@register.filter
def si(value) -> str:
    """3 significant digits with a metric prefix ("1.23 M"); "—" for no value."""
    if not isinstance(value, (int, float)):
        return "—"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g}"


@register.filter
def duration(seconds) -> str:
    """"45 s", "12 min 5 s", "3 h 4 min"; "—" for no value."""
    if not isinstance(seconds, (int, float)):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def dice(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


@register.filter
def get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None
