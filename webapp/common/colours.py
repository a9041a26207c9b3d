"""Label colours: one distinct colour per class, the same everywhere (dataset previews, legends,
the NiiVue overlay, the CSS swatches `.label-N` in voxelsearch.css).

Saturated hues far from grey, so an overlay can never be mistaken for the grey-scale volume
(after Sasha Trubetskoy's list of 20 distinct colours). Class 0 (background) is transparent.
"""
PALETTE: list[tuple[int, int, int]] = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (128, 0, 0), (170, 255, 195), (128, 128, 0),
    (255, 215, 180), (0, 0, 128), (255, 225, 25),
]


def colour_of(value: int) -> tuple[int, int, int]:
    return PALETTE[(int(value) - 1) % len(PALETTE)] if int(value) > 0 else (0, 0, 0)


def legend(label_names: dict) -> list[dict]:
    """[{"value", "name", "rgb": [r, g, b], "hex"}] for every class but background."""
    rows = []
    for value, name in sorted((int(k), v) for k, v in (label_names or {}).items()):
        if value == 0:
            continue
        rgb = colour_of(value)
        rows.append({"value": value, "name": name, "rgb": list(rgb), "hex": "#{:02x}{:02x}{:02x}".format(*rgb)})
    return rows
