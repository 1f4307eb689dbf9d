"""Payroll months as files for finance: an Excel workbook and a BOM'd CSV (README: Payroll export).

Finance in China opens these in Excel on Chinese Windows, so headers are Chinese, the CSV is
UTF-8 with a BOM and CRLF line ends, and the workbook's cells hold real numbers and dates (not
text) so Excel sums and filters them. Pure functions over pyarrow tables or pandas frames (no
Dagster); a column missing from the rows is simply not exported, and a column without a Chinese
header keeps its own name. Every file is written to a temporary file in the target folder and
moved into place, so a failure leaves no half-written file and an existing file untouched.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, TypeAlias
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from attendance_pipeline.vocabulary import Blocks
from attendance_pipeline.warehouse import table_exists

CHINA = ZoneInfo("Asia/Shanghai")

# Chinese headers of payroll_monthly, payroll_leave, held_back and dingtalk_report_diff columns,
# in the order the month sheet shows them.
HEADERS_ZH: dict[str, str] = {
    "month": "月份",
    "userid": "员工ID",
    "name": "姓名",
    "dept_id": "部门ID",
    "workdays": "出勤天数",
    "effective_hours": "有效工时",
    "overtime_hours": "加班(小时)",
    "overtime_workday_hours": "工作日加班(小时)",
    "overtime_restday_hours": "休息日加班(小时)",
    "overtime_holiday_hours": "法定节假日加班(小时)",
    "overtime_paid_hours": "计加班费时长(小时)",
    "overtime_pay_hours": "加班费折算(小时)",
    "lieu_credited_hours": "转调休(小时)",
    "lieu_taken_hours": "已休调休(小时)",
    "lieu_balance_hours": "调休余额(小时)",
    "leave_hours": "请假(小时)",
    "paid_leave_hours": "带薪假(小时)",
    "unpaid_leave_hours": "无薪假(小时)",
    "late_days": "迟到天数",
    "late_count": "迟到次数",
    "late_minutes": "迟到时长(分钟)",
    "early_leave_count": "早退次数",
    "early_leave_minutes": "早退时长(分钟)",
    "missing_punch_days": "缺卡天数",
    "missing_punch_count": "缺卡次数",
    "absent_days": "缺勤天数",
    "absenteeism_days": "旷工天数",
    "pending_days": "待定天数",
    "locked": "已锁定",
    "kind": "类型",
    "original_date": "原日期",
    "computed_at": "计算时间",
    # payroll_leave
    "leave_type": "假期类型",
    "hours": "时长(小时)",
    "days": "天数",
    "paid_share": "带薪比例",
    "paid_hours": "带薪时长(小时)",
    # held_back (pending days)
    "work_date": "日期",
    "check": "检查项",
    "reason": "原因",
    "fix": "处理办法",
    "first_seen": "首次发现",
    "last_seen": "最近发现",
    "released_at": "放行时间",
    "blocks": "影响范围",
    # dingtalk_report_diff
    "measure": "指标",
    "column_name": "钉钉报表列",
    "unit": "单位",
    "pipeline_value": "本系统值",
    "dingtalk_value": "钉钉值",
    "difference": "差异",
    "tolerance": "容差",
    "within_tolerance": "在容差内",
    "explanation": "说明",
}

# Overtime classes (劳动法 art. 44) whose header shows the rate, e.g. 工作日加班(小时,1.5倍).
OVERTIME_CLASSES: dict[str, str] = {
    "workday": "overtime_workday_hours",
    "restday": "overtime_restday_hours",
    "holiday": "overtime_holiday_hours",
}
KIND_ZH = {"regular": "正常", "adjustment": "调整"}
YES_NO = ("是", "否")

MONTH_SHEET = "工资月报"
LEAVE_SHEET = "请假明细"
PENDING_SHEET = "待定(扣留)"
DIFF_SHEET = "钉钉差异"
LOCKED_SUFFIX = "(已锁定)"
PENDING_COLUMNS = ("userid", "name", "work_date", "check", "reason", "fix", "first_seen")
LEAVE_COLUMNS = (
    *("month", "userid", "name", "leave_type", "hours", "days", "paid_share", "paid_hours"),
    "locked",
)
DIFF_COLUMNS = (
    *("month", "userid", "name", "measure", "column_name", "unit", "pipeline_value"),
    *("dingtalk_value", "difference", "tolerance", "within_tolerance", "days", "explanation"),
)
# A header that means something else on one sheet.
SHEET_HEADERS: dict[str, dict[str, str]] = {DIFF_SHEET: {"days": "涉及日期"}}

HOURS_FORMAT = "0.00"
COUNT_FORMAT = "0"
DAYS_FORMAT = "0.0"
SHARE_FORMAT = "0%"
DATE_FORMAT = "yyyy-mm-dd"
TIMESTAMP_FORMAT = "yyyy-mm-dd hh:mm"
_MAX_WIDTH = 60

Rows: TypeAlias = pa.Table | pd.DataFrame | None


def payroll_headers(rates: Mapping[str, float] | None = None) -> dict[str, str]:
    """HEADERS_ZH with each overtime class's rate in its header: `rates` maps workday, restday,
    holiday (or the column name) to the multiple of the hourly wage, e.g. {"workday": 1.5}."""
    headers = dict(HEADERS_ZH)
    for cls, column in OVERTIME_CLASSES.items():
        rate = None if rates is None else rates.get(cls, rates.get(column))
        if rate is not None:
            headers[column] = headers[column].replace("(小时)", f"(小时,{float(rate):g}倍)")
    return headers


def rates_from_rules(rules: object) -> dict[str, float] | None:
    """The overtime rates of the loaded Rules (`rules.overtime.workday.rate`, ...), or None when
    the rules have no overtime section."""
    overtime = getattr(rules, "overtime", None)
    if overtime is None:
        return None
    rates: dict[str, float] = {}
    for cls in OVERTIME_CLASSES:
        rate = _get(_get(overtime, cls), "rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            rates[cls] = float(rate)
    return rates or None


def _get(section: object, name: str) -> Any:
    return section.get(name) if isinstance(section, Mapping) else getattr(section, name, None)


# -- rows -------------------------------------------------------------------------------------


def _plain(column: str, value: Any) -> Any:
    """A cell value as a plain Python value: None, bool, int, float, str, date, naive China
    datetime (to the second), or a list."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    elif hasattr(value, "tolist") and not isinstance(value, str):  # numpy scalars and arrays
        value = value.tolist()
    if not isinstance(value, list | tuple | dict) and pd.isna(value):  # None, NaN, NaT, NA
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(CHINA).replace(tzinfo=None)
        if column.endswith("date") and value.time() == datetime.min.time():
            return value.date()
        return value.replace(microsecond=0)
    if isinstance(value, list | tuple):
        return [_plain("date", v) for v in value]
    return value


def records(rows: Rows) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, rows as dicts of plain values) of a pyarrow table or pandas frame."""
    if rows is None:
        return [], []
    if isinstance(rows, pa.Table):
        columns, raw = list(rows.column_names), rows.to_pylist()
    else:
        columns = [str(c) for c in rows.columns]
        raw = [dict(zip(columns, r, strict=True)) for r in rows.itertuples(index=False)]
    return columns, [{c: _plain(c, r[c]) for c in columns} for r in raw]


def _ordered_columns(columns: Sequence[str], order: Iterable[str]) -> list[str]:
    """The known columns in `order`, then the others as they come."""
    known = [c for c in order if c in columns]
    return known + [c for c in columns if c not in known]


def month_sheet_rows(month_rows: Rows) -> tuple[list[str], list[dict[str, Any]]]:
    """The month sheet's columns and rows: regular rows first (in the order given), then the
    adjustment rows by original date, each on its own row."""
    columns, rows = records(month_rows)
    regular = [r for r in rows if r.get("kind") != "adjustment"]
    adjustments = [r for r in rows if r.get("kind") == "adjustment"]
    adjustments.sort(key=lambda r: r.get("original_date") or date.min)
    return _ordered_columns(columns, HEADERS_ZH), regular + adjustments


def _display(column: str, value: Any) -> Any:
    """What a cell holds: numbers and dates stay themselves; booleans, kinds and lists become
    the text finance reads."""
    if isinstance(value, bool):
        return YES_NO[0] if value else YES_NO[1]
    if column == "kind" and isinstance(value, str):
        return KIND_ZH.get(value, value)
    if isinstance(value, list):
        return ", ".join(v.isoformat() if isinstance(v, date) else str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def number_format(column: str, value: Any) -> str | None:
    """The Excel number format of a cell, or None for text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, datetime):
        return TIMESTAMP_FORMAT
    if isinstance(value, date):
        return DATE_FORMAT
    if column == "paid_share":
        return SHARE_FORMAT
    if isinstance(value, int):
        return COUNT_FORMAT
    if isinstance(value, float) and column.endswith("days"):
        return DAYS_FORMAT
    return HOURS_FORMAT if isinstance(value, float) else None


def _shown(value: Any, fmt: str | None) -> str:
    """The text Excel shows for a cell (to fit the column width)."""
    if value is None:
        return ""
    if fmt == TIMESTAMP_FORMAT:
        return f"{value:%Y-%m-%d %H:%M}"
    if fmt == DATE_FORMAT:
        return f"{value:%Y-%m-%d}"
    if fmt == SHARE_FORMAT:
        return f"{value:.0%}"
    if fmt == COUNT_FORMAT:
        return f"{value:.0f}"
    if fmt == DAYS_FORMAT:
        return f"{value:.1f}"
    if fmt == HOURS_FORMAT:
        return f"{value:.2f}"
    return str(value)


def text_width(text: str) -> int:
    """Columns a text takes in Excel: CJK (wide and full-width) characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- writing ----------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the same folder, then os.replace it onto `path`."""
    mode = _mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode(path: Path) -> int:
    """The permissions the written file gets: the existing file's, else the umask's."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sheet(
    wb: Workbook, title: str, rows: Rows, headers: Mapping[str, str], order: Sequence[str]
) -> Worksheet:
    """A sheet of `rows`; with no rows table at all, `order`'s columns head an empty sheet."""
    columns, data = records(rows)
    if rows is None:
        columns = list(order)
    return _fill(wb, title, _ordered_columns(columns, order), data, headers)


def _fill(
    wb: Workbook,
    title: str,
    columns: Sequence[str],
    data: Sequence[Mapping[str, Any]],
    headers: Mapping[str, str],
) -> Worksheet:
    ws = wb.create_sheet(title)
    names = {**headers, **SHEET_HEADERS.get(title, {})}
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    widths: list[int] = []
    for col, column in enumerate(columns, start=1):
        header = names.get(column, column)
        cell = ws.cell(row=1, column=col, value=header)
        cell.font, cell.fill = bold, fill
        widths.append(text_width(header))
    for row, values in enumerate(data, start=2):
        for col, column in enumerate(columns, start=1):
            value = _display(column, values.get(column))
            cell = ws.cell(row=row, column=col, value=value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # a text, not a formula
            fmt = number_format(column, value)
            if fmt is not None:
                cell.number_format = fmt
            widths[col - 1] = max(widths[col - 1], text_width(_shown(value, fmt)))
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(width + 2, _MAX_WIDTH)
    ws.freeze_panes = "A2"
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(data) + 1}"
    return ws


def _month_of(month_rows: Rows, month: str | None) -> str:
    if month is not None:
        return month
    _, rows = records(month_rows)
    found = next((str(r["month"]) for r in rows if r.get("month")), None)
    if found is None:
        raise ValueError("no month given and none in the rows")
    return found


def month_sheet_title(month: str, locked: bool) -> str:
    return f"{MONTH_SHEET} {month}{LOCKED_SUFFIX if locked else ''}"


def write_xlsx(
    path: str | os.PathLike[str],
    month_rows: Rows,
    leave_rows: Rows,
    pending_rows: Rows,
    diff_rows: Rows,
    *,
    rates: Mapping[str, float] | None = None,
    locked: bool,
    month: str | None = None,
) -> Path:
    """The month as an Excel workbook: sheets 工资月报 YYYY-MM (payroll_monthly; 「(已锁定)」 when
    locked), 请假明细 (payroll_leave), 待定(扣留) (held-back days) and 钉钉差异 (the DingTalk
    report diff). `month` defaults to the rows' month. Written atomically; returns the path."""
    month = _month_of(month_rows, month)
    headers = payroll_headers(rates)
    wb = Workbook()
    default = wb.active
    if default is not None:
        wb.remove(default)
    columns, data = month_sheet_rows(month_rows)
    _fill(wb, month_sheet_title(month, locked), columns, data, headers)
    _sheet(wb, LEAVE_SHEET, leave_rows, headers, LEAVE_COLUMNS)
    _sheet(wb, PENDING_SHEET, pending_rows, headers, PENDING_COLUMNS)
    _sheet(wb, DIFF_SHEET, diff_rows, headers, DIFF_COLUMNS)
    state = LOCKED_SUFFIX if locked else ""
    wb.properties.title = f"{MONTH_SHEET} {month}{state}"
    wb.properties.subject = f"{month} 考勤工时与工资月报{state}"
    wb.properties.creator = "attendance-pipeline"
    target = Path(path)
    _atomic_write(target, wb.save)
    return target


def _csv_text(column: str, value: Any) -> str:
    value = _display(column, value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "@", "\t", "\r"):
        return "'" + value  # Excel would run it as a formula
    return str(value)


def write_csv(
    path: str | os.PathLike[str], month_rows: Rows, *, rates: Mapping[str, float] | None = None
) -> Path:
    """The month sheet as CSV for Excel: UTF-8 with BOM, CRLF, Chinese headers, the same rows in
    the same order as the workbook's month sheet. Written atomically; returns the path."""
    headers = payroll_headers(rates)
    columns, data = month_sheet_rows(month_rows)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([headers.get(c, c) for c in columns])
    for row in data:
        writer.writerow([_csv_text(c, row.get(c)) for c in columns])
    payload = text.getvalue().encode("utf-8-sig")
    target = Path(path)
    _atomic_write(target, lambda handle: _write_all(handle, payload))
    return target


def _write_all(handle: IO[bytes], payload: bytes) -> None:
    handle.write(payload)


# -- reading the warehouse (for the CLI) -------------------------------------------------------


def read_extras(con: duckdb.DuckDBPyConnection, month: str) -> tuple[pa.Table | None, ...]:
    """(leave rows, pending rows, diff rows) of a month; None for a table the warehouse lacks."""
    leave = diff = pending = None
    if table_exists(con, "payroll_leave"):
        leave = con.sql(
            "SELECT * FROM payroll_leave WHERE month = ? ORDER BY ALL", params=[month]
        ).to_arrow_table()
    if table_exists(con, "held_back"):
        pending = con.sql(
            """
            SELECT userid, name, work_date, "check", reason, fix, first_seen FROM held_back
            WHERE released_at IS NULL AND blocks = ? AND strftime(work_date, '%Y-%m') = ?
            ORDER BY work_date, userid, "check"
            """,
            params=[Blocks.ALL.value, month],
        ).to_arrow_table()
    if table_exists(con, "dingtalk_report_diff"):
        diff = con.sql(
            "SELECT * FROM dingtalk_report_diff WHERE month = ? ORDER BY ALL", params=[month]
        ).to_arrow_table()
    return leave, pending, diff


def check_out(output: str, out: str | None, lock: bool) -> str | None:
    """Why `--format output --out out` cannot be written (None when it can)."""
    if output == "xlsx" and not out:
        return "--format xlsx needs --out FILE.xlsx"
    if out is None:
        return None
    if output not in ("xlsx", "csv"):
        return f"--out works with --format xlsx or csv, not {output}"
    if lock:
        return "--lock and --out do not go together: lock the month, then export it"
    target = Path(out)
    if target.is_dir():
        return f"--out {out} is a folder; name the file to write"
    if not target.parent.is_dir():
        return f"--out {out}: the folder {target.parent} does not exist"
    return None
