"""Team-hours reports: effective hours by department and status as a self-contained HTML page
with an inline SVG stacked bar chart (no plotting dependency; opens in any browser)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from attendance_pipeline.hours.rules import DEFAULT_STATUS_HOURS

COLOURS = {
    "normal": "#4e79a7", "late": "#f28e2b", "serious_late": "#e15759", "late_and_early": "#ff9da7",
    "early_leave": "#edc948", "missing_punch": "#b07aa1", "absent": "#9c755f",
    "leave": "#bab0ac", "business_trip": "#59a14f", "override": "#76b7b2", "rest": "#dddddd",
    "exempt": "#86bcb6",
}  # fmt: skip


def hours_by_department(hours: pd.DataFrame) -> pd.DataFrame:
    """Effective hours per department (rows) and status (columns)."""
    if hours.empty:
        return pd.DataFrame()
    table = hours.pivot_table(
        index="dept_id", columns="status", values="effective_hours", aggfunc="sum", fill_value=0.0
    )
    order = [s for s in (*DEFAULT_STATUS_HOURS, "override") if s in table.columns]
    return table[order].sort_index()


def render_html(hours: pd.DataFrame, title: str, departments: Mapping[int, str]) -> str:
    """The report page: a stacked bar per department, then the numbers as a table."""
    table = hours_by_department(hours)
    width, bar, gap, left = 900, 26, 10, 160
    total = float(table.sum(axis=1).max()) if len(table) else 0.0
    scale = (width - left - 80) / total if total > 0 else 0.0
    rows = []
    for i, (dept, values) in enumerate(table.iterrows()):
        y = 40 + i * (bar + gap)
        name = html.escape(departments.get(int(dept), str(dept)) if pd.notna(dept) else "—")
        rows.append(f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{name}</text>')
        x = float(left)
        for status, value in values.items():
            if value <= 0:
                continue
            w = value * scale
            rows.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" '
                f'fill="{COLOURS.get(str(status), "#999")}">'
                f"<title>{status}: {value:g} h</title></rect>"
            )
            x += w
        rows.append(f'<text x="{x + 6:.1f}" y="{y + bar * 0.7}">{values.sum():g} h</text>')
    legend = "".join(
        f'<span style="display:inline-block;margin-right:12px"><span style="display:inline-block;'
        f'width:12px;height:12px;background:{COLOURS.get(str(s), "#999")}"></span> {s}</span>'
        for s in table.columns
    )
    height = 60 + len(table) * (bar + gap)
    numbers = table.rename(index=lambda d: departments.get(int(d), str(d))).to_html(
        float_format=lambda v: f"{v:g}"
    )
    people = hours["userid"].nunique() if len(hours) else 0
    return (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{people} employees, "
        f"{hours['effective_hours'].sum() if len(hours) else 0:g} effective hours.</p>"
        f"<div>{legend}</div><svg width='{width}' height='{height}' "
        f"xmlns='http://www.w3.org/2000/svg' font-size='13'>{''.join(rows)}</svg>"
        f"<h2>Hours by department and status</h2>{numbers}</body></html>"
    )


def write_report(
    path: Path, hours: pd.DataFrame, title: str, departments: Mapping[int, str]
) -> Path:
    return write_page(path, render_html(hours, title, departments))


def write_page(path: Path, page: str) -> Path:
    """Write an HTML page atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
