"""One label palette everywhere: the dataset previews, the CSS swatches of the class tables and
the viewer's legend and overlay must show a class in the same colour."""
import re
from pathlib import Path

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
