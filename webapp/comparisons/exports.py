"""The comparison's tables as plain rows: for the CSV downloads and the REST API (the page
renders the same items with units and rounding)."""
from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from django.utils.text import slugify

from .selectors import Item

#: (column, value of an item) of the side-by-side table, in order.
OVERVIEW_COLUMNS: list[tuple[str, object]] = [
    ("name", lambda i: i.name),
    ("kind", lambda i: i.kind),
    ("id", lambda i: i.pk),
    ("method", lambda i: i.method),
    ("preset", lambda i: i.preset),
    ("seed", lambda i: i.seed),
    ("dataset", lambda i: i.dataset_name),
    ("status", lambda i: i.status),
    ("parameters", lambda i: i.figures.get("parameters")),
    ("flops_per_sample", lambda i: i.figures.get("flops")),
    ("activation_memory_bytes_per_sample", lambda i: i.figures.get("memory_bytes")),
    ("figures_patch_size", lambda i: "x".join(str(s) for s in i.figures.get("patch_size") or [])),
    ("estimated_memory_bytes", lambda i: i.estimate_bytes or None),
    ("memory_budget_bytes", lambda i: i.budget_bytes),
    ("peak_measured_memory_bytes", lambda i: i.peak_memory_bytes),
    ("measured_memory_kind", lambda i: i.memory_kind),
    ("search_seconds", lambda i: _round(i.search_seconds, 1)),
    ("training_seconds", lambda i: _round(i.training_seconds, 1)),
    ("mean_dice", lambda i: i.metrics.mean),
    ("dice_split", lambda i: i.metrics.source),
    ("test_cases", lambda i: i.metrics.n_cases),
]


def _round(value, digits):
    return round(value, digits) if isinstance(value, (int, float)) else value


def overview_row(item: Item) -> dict:
    return {name: value(item) for name, value in OVERVIEW_COLUMNS}


def overview_table(items: list[Item]) -> tuple[list[str], list[list]]:
    return [name for name, _ in OVERVIEW_COLUMNS], [[value(i) for _, value in OVERVIEW_COLUMNS] for i in items]


def classes_table(items: list[Item], classes: list[str]) -> tuple[list[str], list[list]]:
    """One row per item: its Dice per class (test split where evaluated, else validation)."""
    headers = ["name", "kind", "id", "dice_split"] + [f"dice_{c}" for c in classes] + ["mean_dice"]
    rows = [[i.name, i.kind, i.pk, i.metrics.source] + [i.metrics.per_class.get(c) for c in classes] + [i.metrics.mean]
            for i in items]
    return headers, rows


def leaderboard_table(items: list[Item]) -> tuple[list[str], list[list]]:
    headers = ["rank"] + [name for name, _ in OVERVIEW_COLUMNS] + ["registered"]
    rows = [[n] + [value(i) for _, value in OVERVIEW_COLUMNS] + [i.model.created.isoformat()]
            for n, i in enumerate(items, start=1)]
    return headers, rows


def csv_text(headers: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def csv_response(headers: list[str], rows: list[list], filename: str) -> HttpResponse:
    response = HttpResponse(csv_text(headers, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(filename) or "table"}.csv"'
    return response


def chart_data(items: list[Item]) -> list[dict]:
    """The overlaid charts: one series per item in each (the page and the API)."""
    return [
        {"id": "dice", "title": "Validation mean Dice", "range": [0, 1], "log": False,
         "series": {i.label: [list(p) for p in i.curves.dice] for i in items if i.curves.dice}},
        {"id": "loss", "title": "Training loss (segmentation, per step)", "range": None, "log": True,
         "series": {i.label: [list(p) for p in i.curves.loss] for i in items if i.curves.loss}},
    ]
