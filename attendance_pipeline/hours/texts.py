"""The engine's texts: the shift texts and the explanation of each day (docs/rules.md's wording),
built column-wise with Arrow's string kernels so that no Python string is made per row.

`reference.py` writes the same texts one day at a time; the engine's tests hold them equal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from attendance_pipeline.hours.calendar import WEEKDAYS

HOUR_MS = 3_600_000


def shift_text(shifts: pd.DataFrame) -> pd.api.extensions.ExtensionArray:
    """`OnDuty Late 09:17, OffDuty Normal 18:02`, as the reference writes it."""
    clocks = pa.array([f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)])
    sides = []
    for side, label in (("on", "OnDuty"), ("off", "OffDuty")):
        minutes = (shifts[f"{side}_user_ms"].to_numpy(np.int64) + 8 * HOUR_MS) // 60_000 % 1440
        result = pa.array(shifts[f"{side}_time_result"].astype(str), type=pa.large_string())
        approved = shifts[f"{side}_backed"].to_numpy(bool) | shifts[f"{side}_covered"].to_numpy(
            bool
        )
        changed = _pick(pc.not_equal(result, "Normal"), "→Normal", "")
        shown = _pick(approved, _join(result, changed, " (approval)"), result)
        sides.append(
            _pick(
                shifts[f"{side}_present"].to_numpy(bool),
                _join(f"{label} ", shown, " ", clocks.take(minutes)),
                f"{label} missing",
            )
        )
    return _str_array(_join(sides[0], ", ", sides[1]))


def _join(*parts: object) -> pa.Array:
    """The parts (arrays or strings) concatenated row by row."""
    return pc.binary_join_element_wise(*map(_large, parts), _large(""))


def _pick(condition: np.ndarray | pa.Array, yes: object, no: object) -> pa.Array:
    """`yes` where the condition holds, else `no` (arrays or strings)."""
    return pc.if_else(condition, _large(yes), _large(no))


def _large(value: object) -> pa.Array | pa.Scalar:
    if isinstance(value, str):
        return pa.scalar(value, type=pa.large_string())
    assert isinstance(value, pa.Array | pa.ChunkedArray)
    return value if value.type == pa.large_string() else value.cast(pa.large_string())


def _str_array(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype="str")


def _arrow_fmt(values: object) -> pa.Array:
    """`_fmt` of every value as an Arrow string array, each distinct value formatted once."""
    rounded = np.round(np.asarray(values, dtype=float), 2)
    distinct, inverse = np.unique(rounded, return_inverse=True)
    texts = pa.array([f"{value:.2f}".rstrip("0").rstrip(".") for value in distinct.tolist()])
    return texts.take(inverse)


def fmt_all(values: object) -> list[str]:
    """`_arrow_fmt` as Python strings."""
    return _arrow_fmt(values).to_pylist()


def join_per_group(texts: list[str], group: np.ndarray, groups: int, sep: str = " / ") -> list[str]:
    """Each group's texts joined by `sep` in row order (`group`: each row's group number)."""
    joined: list[str | None] = [None] * groups
    for number, text in zip(group.tolist(), texts, strict=True):
        before = joined[number]
        joined[number] = text if before is None else f"{before}{sep}{text}"
    return [text or "" for text in joined]


def explain(days: pd.DataFrame) -> pd.api.extensions.ExtensionArray:
    """The reference's wording: context parts joined by "; ", then " → " and the outcome.

    Built column-wise with Arrow's string kernels (no Python string per row)."""

    def strings(column: str) -> pa.Array:
        return pa.array(days[column].astype(str), type=pa.large_string())

    def optional(column: str) -> tuple[np.ndarray, pa.Array]:
        present = days[column].notna().to_numpy(bool)
        return present, pa.array(days[column].fillna("").astype(str), type=pa.large_string())

    status, rule = strings("status"), strings("rule_id")
    exempt = days["exempt"].to_numpy(bool)
    day_type, source = strings("day_type"), strings("calendar_source")
    has_text, shift_text = optional("text")
    has_leave, leave_text = optional("leave_text")
    leave = days["leave_hours"].to_numpy(float)
    overtime = days["overtime_hours"].to_numpy(float)

    exempt_context = _join(
        "in no attendance group (does not punch)",
        _pick(
            pc.equal(source, WEEKDAYS),
            "; no calendar covers the date: Monday–Friday are workdays",
            "",
        ),
        _pick(pc.not_equal(day_type, "workday"), _join("; not a workday (", day_type, ")"), ""),
    )
    punched = _pick(has_text, shift_text, "rest day (no scheduled check points)")
    context = _join(
        _pick(exempt, exempt_context, punched),
        _pick(has_leave, _join("; ", leave_text), ""),
        _pick(overtime > 0, _join("; overtime ", _arrow_fmt(overtime), " h"), ""),
    )
    overridden = (days["status"] == "override").to_numpy(bool)
    if overridden.any():
        rows = np.flatnonzero(overridden)
        texts = [
            f"override {ov} h by {_text(author) or '?'}: {_text(reason)}"
            for ov, author, reason in zip(
                fmt_all(days["override_hours"].to_numpy(float)[rows]),
                days["author"].to_numpy(object)[rows].tolist(),
                days["reason"].to_numpy(object)[rows].tolist(),
                strict=True,
            )
        ]
        position = np.zeros(len(days), dtype=np.int64)
        position[rows] = np.arange(len(rows))
        context = _pick(overridden, pa.array(texts).take(position), context)
    deduct = (leave > 0) & ~days["status"].isin(["override", "rest", "leave"]).to_numpy(bool)
    outcome = _pick(
        deduct,
        _join(status, " ", _arrow_fmt(days["before_leave"]), " h − ", _arrow_fmt(leave),
              " h leave → "),
        _join(status, " → "),
    )  # fmt: skip
    hours = _arrow_fmt(days["effective_hours"])
    return _str_array(_join(context, " → ", outcome, hours, " h (rule ", rule, ")"))


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
