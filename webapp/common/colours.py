"""Label colours: one colour per class, the same everywhere (dataset previews, legends, the
NiiVue overlay, the CSS swatches `.label-N` in voxelsearch.css). Class 0 (background) is
transparent.

The default palette is Okabe and Ito's (2008) colour-blind-safe set, which stays distinguishable
under protanopia, deuteranopia and tritanopia, in their order: orange, sky blue, bluish green,
yellow, blue, vermillion, reddish purple. Their eighth colour, black, is left out: the viewer's
background is black and the grey-scale volume runs through it. Past seven classes the palette
continues with Paul Tol's "muted" scheme (also designed for colour-blind readers), then repeats.

A model may carry its own colours per class (``TrainedModel.label_colours``: ``{"1": "#rrggbb"}``);
``legend(label_names, overrides)`` applies them over the default.
"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError

OKABE_ITO: list[tuple[int, int, int]] = [
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167),
]
#: Paul Tol's "muted" scheme, for classes 8 and up.
TOL_MUTED: list[tuple[int, int, int]] = [
    (204, 102, 119), (51, 34, 136), (221, 204, 119), (17, 119, 51), (136, 204, 238), (136, 34, 85),
    (68, 170, 153), (153, 153, 51), (170, 68, 153),
]
PALETTE: list[tuple[int, int, int]] = OKABE_ITO + TOL_MUTED

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def colour_of(value: int) -> tuple[int, int, int]:
    """The default colour of class ``value`` (background: black, drawn transparent)."""
    return PALETTE[(int(value) - 1) % len(PALETTE)] if int(value) > 0 else (0, 0, 0)


def hex_of(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def rgb_of(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def clean_overrides(colours, label_names: dict) -> dict[str, str]:
    """Check per-class colours a researcher sent: ``{"<class value>": "#rrggbb"}`` for classes of
    ``label_names`` other than background. Returns them lower-cased; ValidationError naming
    the first bad entry otherwise."""
    if not isinstance(colours, dict):
        raise ValidationError({"label_colours": 'Send the colours as {"<class value>": "#rrggbb"}.'})
    known = {str(int(k)) for k in (label_names or {}) if str(k).lstrip("-").isdigit() and int(k) != 0}
    cleaned = {}
    for key, value in colours.items():
        key = str(key).strip()
        if key not in known:
            raise ValidationError({"label_colours": f"The model has no class {key[:20]!r} to colour (its classes: {', '.join(sorted(known, key=int)) or 'none'})."})
        if not isinstance(value, str) or not _HEX.match(value.strip()):
            raise ValidationError({"label_colours": f"The colour of class {key} must be written #rrggbb, e.g. #e69f00."})
        cleaned[key] = value.strip().lower()
    return cleaned


def legend(label_names: dict, overrides: dict | None = None) -> list[dict]:
    """[{"value", "name", "rgb": [r, g, b], "hex", "custom"}] for every class but background;
    ``overrides`` (``{"1": "#rrggbb"}``) replace the default colour of their classes."""
    overrides = overrides or {}
    rows = []
    for value, name in sorted((int(k), v) for k, v in (label_names or {}).items()):
        if value == 0:
            continue
        custom = overrides.get(str(value))
        rgb = rgb_of(custom) if isinstance(custom, str) and _HEX.match(custom) else colour_of(value)
        rows.append({"value": value, "name": name, "rgb": list(rgb), "hex": hex_of(rgb),
                     "default_hex": hex_of(colour_of(value)), "custom": rgb != colour_of(value)})
    return rows
