"""One label palette everywhere: the dataset previews, the CSS swatches of the class tables and
the viewer's legend and overlay must show a class in the same colour."""
import re
from pathlib import Path

import pytest

from webapp.common.colours import colour_of, legend
from webapp.datasets.previews import label_colour

CSS = Path(__file__).resolve().parents[2] / "frontend" / "static" / "css" / "voxelsearch.css"


def test_swatches_previews_and_viewer_share_one_palette():
    swatches = {int(n): tuple(int(v) for v in rgb.split(","))
                for n, rgb in re.findall(r"\.label-(\d+) \{ background: rgb\(([\d, ]+)\); \}", CSS.read_text())}
    assert set(swatches) >= {1, 2, 3}, swatches
    for value, rgb in swatches.items():
        assert rgb == colour_of(value) == label_colour(value), value
    rows = legend({"0": "background", "1": "organ", "2": "lesion"})
    assert [r["value"] for r in rows] == [1, 2] and rows[0]["rgb"] == list(swatches[1])


def test_the_default_palette_is_okabe_ito_and_never_red_beside_green():
    """Issue 13.5: the first classes were red and green, the worst pair for colour-blind readers."""
    from webapp.common.colours import OKABE_ITO, PALETTE

    assert OKABE_ITO == [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
                         (213, 94, 0), (204, 121, 167)]
    assert PALETTE[:7] == OKABE_ITO and colour_of(1) == (230, 159, 0) and colour_of(2) == (86, 180, 233)
    assert len(set(PALETTE)) == len(PALETTE) and (0, 0, 0) not in PALETTE  # black is the viewer's background


def test_overrides_replace_the_default_of_their_class_only():
    from django.core.exceptions import ValidationError

    from webapp.common.colours import clean_overrides

    names = {"0": "background", "1": "organ", "2": "lesion"}
    rows = legend(names, {"2": "#123456"})
    assert [r["hex"] for r in rows] == ["#e69f00", "#123456"] and [r["custom"] for r in rows] == [False, True]
    assert clean_overrides({"1": " #ABCDEF "}, names) == {"1": "#abcdef"}
    for bad in ({"0": "#000000"}, {"3": "#000000"}, {"1": "blue"}, {"1": "#12345"}, ["#000000"]):
        with pytest.raises(ValidationError):
            clean_overrides(bad, names)
