"""The payroll month as files for finance (issue 12 item 5): the workbook's sheets, headers and
cells equal the warehouse, the CSV is Excel's UTF-8 with BOM and CRLF, the CLI writes both and
refuses bad combinations, and a failed write leaves an existing file untouched."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from attendance_pipeline import finance, payroll_export
from attendance_pipeline.cli import main
from attendance_pipeline.holdback import HELD_BACK
from attendance_pipeline.payroll_export import (
    DIFF_SHEET,
    LEAVE_SHEET,
    PENDING_SHEET,
    month_sheet_title,
    payroll_headers,
    write_csv,
    write_xlsx,
)
from attendance_pipeline.schemas import TS
from attendance_pipeline.warehouse import connect, ensure_table
from tests.conftest import REPO_CONFIG

MONTH = "2026-10"
CHINA = "Asia/Shanghai"
COMPUTED = pd.Timestamp("2026-11-01 09:30:15", tz=CHINA).to_pydatetime()
RATES = {"workday": 1.5, "restday": 2.0, "holiday": 3.0}

# Every payroll_monthly column finance gets (a superset of PAYROLL_MONTHLY while it grows).
FLOAT, INT = pa.float64(), pa.int64()
MONTH_COLUMNS = pa.schema(
    [
        *[("month", pa.string()), ("userid", pa.string()), ("name", pa.string())],
        *[("dept_id", INT), ("workdays", INT), ("effective_hours", FLOAT)],
        *[(f"overtime_{c}hours", FLOAT) for c in ("", "workday_", "restday_", "holiday_")],
        *[(f"overtime_{c}_hours", FLOAT) for c in ("paid", "pay")],
        *[(f"lieu_{c}_hours", FLOAT) for c in ("credited", "taken", "balance")],
        *[(c, FLOAT) for c in ("leave_hours", "paid_leave_hours", "unpaid_leave_hours")],
        *[(c, INT) for c in ("late_days", "late_count", "late_minutes", "early_leave_count")],
        *[(c, INT) for c in ("early_leave_minutes", "missing_punch_days", "missing_punch_count")],
        ("absent_days", INT),
        ("absenteeism_days", FLOAT),
        ("pending_days", INT),
        ("locked", pa.bool_()),
        ("kind", pa.string()),
        ("original_date", pa.date32()),
        ("computed_at", TS),
    ]
)
LEAVE = pa.schema(
    [
        *[("month", pa.string()), ("userid", pa.string()), ("name", pa.string())],
        *[("leave_type", pa.string()), ("hours", FLOAT), ("days", FLOAT)],
        *[("paid_share", FLOAT), ("paid_hours", FLOAT), ("locked", pa.bool_())],
    ]
)
DIFF = pa.schema(
    [
        *[("month", pa.string()), ("userid", pa.string()), ("name", pa.string())],
        *[("measure", pa.string()), ("column_name", pa.string())],
        *[("pipeline_value", FLOAT), ("dingtalk_value", FLOAT), ("difference", FLOAT)],
        *[("within_tolerance", pa.bool_()), ("days", pa.list_(pa.date32()))],
        ("explanation", pa.string()),
    ]
)


def month_row(**values):
    defaults = {
        pa.float64(): 0.0,
        pa.int64(): 0,
        pa.bool_(): False,
        pa.string(): "",
    }
    row = {f.name: defaults.get(f.type) for f in MONTH_COLUMNS}
    row.update(month=MONTH, kind="regular", original_date=None, computed_at=COMPUTED)
    row.update(values)
    return row


MONTH_ROWS = [
    month_row(
        userid="u2",
        name="李四",
        dept_id=20,
        workdays=21,
        effective_hours=161.5,
        overtime_hours=6.25,
        overtime_workday_hours=4.25,
        overtime_restday_hours=2.0,
        overtime_paid_hours=6.25,
        overtime_pay_hours=10.375,
        leave_hours=4.0,
        paid_leave_hours=4.0,
        late_days=2,
        late_count=3,
        late_minutes=47,
        absenteeism_days=0.5,
        pending_days=1,
    ),
    month_row(
        userid="u1",
        name="张三",
        dept_id=10,
        workdays=22,
        effective_hours=176.0,
        lieu_credited_hours=8.0,
        lieu_balance_hours=12.5,
        early_leave_count=1,
        early_leave_minutes=15,
        missing_punch_days=1,
        missing_punch_count=1,
    ),
    month_row(
        userid="u3",
        name="王五 (held)",
        dept_id=None,
        workdays=0,
        pending_days=3,
    ),
    month_row(
        userid="u1",
        name="张三",
        dept_id=10,
        effective_hours=-2.5,
        kind="adjustment",
        original_date=date(2026, 9, 30),
    ),
]


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """A real DuckDB warehouse with October's payroll, leave, held-back days and report diff."""
    data = tmp_path / "data"
    monkeypatch.setenv("ATTENDANCE_DATA_DIR", str(data))
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(REPO_CONFIG))
    path = data / "warehouse.duckdb"
    with connect(path) as con:
        finance.ensure_tables(con)
        ensure_table(con, "payroll_monthly", MONTH_COLUMNS)
        ensure_table(con, "payroll_leave", LEAVE)
        ensure_table(con, "dingtalk_report_diff", DIFF)
        insert(con, "payroll_monthly", pa.Table.from_pylist(MONTH_ROWS, schema=MONTH_COLUMNS))
        leave = [
            [MONTH, "u2", "李四", "年假", 4.0, 0.5, 1.0, 4.0, False],
            [MONTH, "u2", "李四", "事假", 8.0, 1.0, 0.0, 0.0, False],
        ]
        insert(
            con,
            "payroll_leave",
            pa.Table.from_pylist([dict(zip(LEAVE.names, r, strict=True)) for r in leave], LEAVE),
        )
        held = [
            ("inputs_complete", "u3", date(2026, 10, 9), None, "all"),
            ("inputs_complete", "u3", date(2026, 10, 2), COMPUTED, "all"),  # released
            ("pm_mapping", "u1", date(2026, 10, 9), None, "delivery"),  # payroll unaffected
            ("inputs_complete", "u3", date(2026, 11, 2), None, "all"),  # another month
        ]
        insert(
            con,
            "held_back",
            pa.Table.from_pylist(
                [
                    {
                        "check": check,
                        "userid": userid,
                        "work_date": day,
                        "name": "王五",
                        "reason": "no punches pulled yet",
                        "fix": "re-run sync after the DingTalk outage",
                        "blocks": blocks,
                        "first_seen": COMPUTED,
                        "last_seen": COMPUTED,
                        "released_at": released,
                        "run_id": "r1",
                    }
                    for check, userid, day, released, blocks in held
                ],
                schema=HELD_BACK,
            ),
        )
        diff = {
            "month": MONTH,
            "userid": "u2",
            "name": "李四",
            "measure": "late_minutes",
            "column_name": "迟到时长",
            "pipeline_value": 47.0,
            "dingtalk_value": 52.0,
            "difference": -5.0,
            "within_tolerance": False,
            "days": [date(2026, 10, 8), date(2026, 10, 15)],
            "explanation": "补卡 approved after the report",
        }
        insert(con, "dingtalk_report_diff", pa.Table.from_pylist([diff], schema=DIFF))
    return path


def insert(con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
    con.register("_rows", rows)
    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")


def month_table(path: Path) -> pa.Table:
    with connect(path, read_only=True) as con:
        return con.sql(
            "SELECT * FROM payroll_monthly WHERE month = ? ORDER BY kind DESC, userid",
            params=[MONTH],
        ).to_arrow_table()


def extras(path: Path):
    with connect(path, read_only=True) as con:
        return payroll_export.read_extras(con, MONTH)


def expected_cell(column: str, value):
    """What the sheet holds for a payroll_monthly value."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if column == "kind":
        return {"regular": "正常", "adjustment": "调整"}[value]
    if isinstance(value, datetime):
        return value.astimezone(pd.Timestamp(0, tz=CHINA).tzinfo).replace(
            tzinfo=None, microsecond=0
        )
    return value


def sheet_rows(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_the_workbook_has_chinese_sheets_frozen_headers_and_the_warehouse_values(
    warehouse, tmp_path
):
    table = month_table(warehouse)
    leave, pending, diff = extras(warehouse)
    out = write_xlsx(
        tmp_path / "payroll.xlsx", table, leave, pending, diff, rates=RATES, locked=False
    )
    wb = openpyxl.load_workbook(out)
    title = month_sheet_title(MONTH, locked=False)
    assert title == "工资月报 2026-10"
    assert wb.sheetnames == [title, LEAVE_SHEET, PENDING_SHEET, DIFF_SHEET]
    assert wb.properties.title == "工资月报 2026-10"
    assert wb.properties.subject
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == ws.dimensions
        assert all(cell.font.bold for cell in ws[1])

    ws = wb[title]
    headers = payroll_headers(RATES)
    columns = [c for c in payroll_export.HEADERS_ZH if c in table.column_names]
    assert [c.value for c in ws[1]] == [headers[c] for c in columns]
    header = dict(zip(columns, (c.value for c in ws[1]), strict=True))
    assert header["userid"] == "员工ID"
    assert header["overtime_workday_hours"] == "工作日加班(小时,1.5倍)"
    assert header["overtime_restday_hours"] == "休息日加班(小时,2倍)"
    assert header["overtime_holiday_hours"] == "法定节假日加班(小时,3倍)"
    assert header["lieu_balance_hours"] == "调休余额(小时)"
    assert header["kind"] == "类型"

    # Every cell equals the warehouse value: numbers as numbers, dates as dates; regular rows
    # first, then the adjustment with its original date.
    expected = table.to_pylist()
    assert [r["kind"] for r in expected] == ["regular"] * 3 + ["adjustment"]
    assert ws.max_row == len(expected) + 1
    for row, values in zip(ws.iter_rows(min_row=2), expected, strict=True):
        for cell, column in zip(row, columns, strict=True):
            want = expected_cell(column, values[column])
            got = cell.value
            if isinstance(want, date) and not isinstance(want, datetime):
                assert cell.is_date and got.date() == want, column
                assert cell.number_format == "yyyy-mm-dd"
            elif isinstance(want, datetime):
                assert cell.is_date and got == want, column
                assert cell.number_format == "yyyy-mm-dd hh:mm"
            elif isinstance(want, float):  # Excel stores 176.0 as 176: a number all the same
                assert isinstance(got, int | float) and got == want, (column, got, want)
            else:
                assert got == want and type(got) is type(want), (column, got, want)
            if column.endswith("_hours"):
                assert isinstance(got, int | float) and cell.number_format == "0.00", column
            if column in ("late_minutes", "late_count", "workdays", "dept_id") and got is not None:
                assert isinstance(got, int) and cell.number_format == "0", column
    adjustment = ws[ws.max_row]
    assert adjustment[columns.index("kind")].value == "调整"
    assert adjustment[columns.index("original_date")].value == datetime(2026, 9, 30)
    assert adjustment[columns.index("effective_hours")].value == -2.5
    held_row = next(r for r in ws.iter_rows(min_row=2) if r[columns.index("userid")].value == "u3")
    assert held_row[columns.index("dept_id")].value is None  # a blank cell, not "None"
    # Column widths fit the content, CJK counting double.
    name_width = ws.column_dimensions["C"].width
    assert name_width >= payroll_export.text_width("王五 (held)") >= len("王五 (held)") + 2

    leave_rows = sheet_rows(wb[LEAVE_SHEET])
    assert leave_rows[0][:6] == ["月份", "员工ID", "姓名", "假期类型", "时长(小时)", "天数"]
    assert {r[3]: r[4] for r in leave_rows[1:]} == {"年假": 4.0, "事假": 8.0}
    assert wb[LEAVE_SHEET]["G2"].number_format == "0%"

    pending_rows = sheet_rows(wb[PENDING_SHEET])
    assert pending_rows[0] == ["员工ID", "姓名", "日期", "检查项", "原因", "处理办法", "首次发现"]
    assert len(pending_rows) == 2  # open, blocking payroll, in October
    assert pending_rows[1][:4] == ["u3", "王五", datetime(2026, 10, 9), "inputs_complete"]

    diff_ws = wb[DIFF_SHEET]
    diff_rows = sheet_rows(diff_ws)
    assert diff_rows[0][diff_rows[0].index("涉及日期")] is not None
    record = dict(zip(diff_rows[0], diff_rows[1], strict=True))
    assert record["涉及日期"] == "2026-10-08, 2026-10-15"
    assert record["在容差内"] == "否"
    assert record["差异"] == -5.0


def test_pandas_rows_give_the_same_sheet_as_arrow_rows(warehouse, tmp_path):
    table = month_table(warehouse)
    from_arrow = write_xlsx(tmp_path / "a.xlsx", table, None, None, None, locked=False)
    # (a nullable integer column must stay integers in pandas, not become floats)
    frame = table.to_pandas(integer_object_nulls=True)
    from_pandas = write_xlsx(tmp_path / "p.xlsx", frame, None, None, None, locked=False)
    a = openpyxl.load_workbook(from_arrow).worksheets[0]
    p = openpyxl.load_workbook(from_pandas).worksheets[0]
    assert sheet_rows(a) == sheet_rows(p)
    assert [c.number_format for r in a for c in r] == [c.number_format for r in p for c in r]
    # A table the warehouse lacks: the sheet still has its headers.
    pending = openpyxl.load_workbook(from_arrow)[PENDING_SHEET]
    assert [c.value for c in pending[1]][:3] == ["员工ID", "姓名", "日期"]


def test_the_csv_is_utf8_with_bom_and_crlf_and_round_trips(warehouse, tmp_path):
    table = month_table(warehouse)
    out = write_csv(tmp_path / "payroll.csv", table, rates=RATES)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == table.num_rows + 1
    assert raw.count(b"\n") == raw.count(b"\r\n")

    frame = pd.read_csv(out, encoding="utf-8-sig", dtype={"员工ID": str})
    headers = payroll_headers(RATES)
    columns = [c for c in payroll_export.HEADERS_ZH if c in table.column_names]
    assert list(frame.columns) == [headers[c] for c in columns]
    assert "工作日加班(小时,1.5倍)" in frame.columns
    for i, values in enumerate(table.to_pylist()):
        for column in columns:
            got = frame.loc[i, headers[column]]
            want = expected_cell(column, values[column])
            if want is None:
                assert pd.isna(got), column
            elif isinstance(want, datetime):
                assert got == f"{want:%Y-%m-%d %H:%M}"
            elif isinstance(want, date):
                assert got == want.isoformat()
            elif isinstance(want, int | float):
                assert float(got) == pytest.approx(want), column
            else:
                assert got == want, column
    # The same rows in the same order as the workbook's month sheet.
    book = write_xlsx(tmp_path / "same.xlsx", table, None, None, None, locked=False)
    sheet = openpyxl.load_workbook(book).worksheets[0]
    assert [r[1] for r in sheet_rows(sheet)[1:]] == list(frame["员工ID"])


def test_the_cli_writes_the_workbook_and_the_csv(warehouse, tmp_path, capsys):
    xlsx = tmp_path / "out" / "十月.xlsx"
    xlsx.parent.mkdir()
    assert main(["payroll", "--month", MONTH, "--format", "xlsx", "--out", str(xlsx)]) == 0
    assert str(xlsx) in capsys.readouterr().out
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == ["工资月报 2026-10", LEAVE_SHEET, PENDING_SHEET, DIFF_SHEET]
    month_rows = sheet_rows(wb.worksheets[0])
    with connect(warehouse, read_only=True) as con:
        shown = finance.read_month(con, MONTH).to_pylist()
    assert len(month_rows) == len(shown) + 1
    assert month_rows[0][1] == "员工ID"
    assert [r[1] for r in month_rows[1:]] == [r["userid"] for r in shown]
    assert len(sheet_rows(wb[DIFF_SHEET])) == 2
    assert len(sheet_rows(wb[LEAVE_SHEET])) == 3
    assert len(sheet_rows(wb[PENDING_SHEET])) == 2

    csv_path = tmp_path / "out" / "payroll.csv"
    assert main(["payroll", "--month", MONTH, "--format", "csv", "--out", str(csv_path)]) == 0
    raw = csv_path.read_bytes()
    assert raw.startswith("\ufeff月份,员工ID,姓名".encode())
    assert b"\r\n" in raw

    # Without --out, csv still goes to stdout as before (English headers, no BOM).
    capsys.readouterr()
    assert main(["payroll", "--month", MONTH, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("month,userid,name")
    assert sorted(p.name for p in xlsx.parent.iterdir()) == ["payroll.csv", "十月.xlsx"]


def test_a_locked_month_says_so_in_the_sheet_title(warehouse, tmp_path):
    with connect(warehouse) as con:
        finance.lock_month(con, MONTH, "王会计")
    out = tmp_path / "locked.xlsx"
    assert main(["payroll", "--month", MONTH, "--format", "xlsx", "--out", str(out)]) == 0
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[0] == "工资月报 2026-10(已锁定)"
    assert "已锁定" in wb.properties.title
    locked = [c.value for c in wb.worksheets[0][1]].index("已锁定")
    assert {r[locked] for r in sheet_rows(wb.worksheets[0])[1:]} == {"是"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "xlsx"], "needs --out"),
        (["--format", "xlsx", "--out", "{tmp}/missing/p.xlsx"], "does not exist"),
        (["--format", "xlsx", "--out", "{tmp}"], "is a folder"),
        (["--format", "table", "--out", "{tmp}/p.txt"], "--out works with"),
        (["--format", "csv", "--out", "{tmp}/p.csv", "--lock"], "do not go together"),
    ],
)
def test_bad_combinations_exit_2_and_write_nothing(warehouse, tmp_path, capsys, arguments, message):
    folder = tmp_path / "exports"
    folder.mkdir()
    argv = [a.replace("{tmp}", str(folder)) for a in arguments]
    before = sorted(os.listdir(folder)), warehouse.read_bytes()
    assert main(["payroll", "--month", MONTH, *argv]) == 2
    assert message in capsys.readouterr().err
    assert (sorted(os.listdir(folder)), warehouse.read_bytes()) == before
    with connect(warehouse, read_only=True) as con:
        assert MONTH not in finance.locked_months(con)


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_failed_write_leaves_the_existing_file_untouched(warehouse, tmp_path, monkeypatch, kind):
    table = month_table(warehouse)
    target = tmp_path / f"payroll.{kind}"
    target.write_bytes(b"last month's file")
    display = payroll_export._display

    def failing(column, value):
        if value == "李四":
            raise RuntimeError("disk full half-way")
        return display(column, value)

    monkeypatch.setattr(payroll_export, "_display", failing)
    with pytest.raises(RuntimeError, match="half-way"):
        if kind == "xlsx":
            write_xlsx(target, table, None, None, None, locked=False)
        else:
            write_csv(target, table)
    assert target.read_bytes() == b"last month's file"
    assert sorted(os.listdir(tmp_path)) == sorted(["data", target.name])  # no temp file left


def test_an_interrupted_save_leaves_no_partial_file(warehouse, tmp_path, monkeypatch):
    table = month_table(warehouse)
    target = tmp_path / "new.xlsx"

    def broken_save(self, filename):
        filename.write(b"PK\x03\x04 half a zip")
        raise OSError("no space left on device")

    monkeypatch.setattr(openpyxl.Workbook, "save", broken_save)
    with pytest.raises(OSError, match="no space"):
        write_xlsx(target, table, None, None, None, locked=False)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "data"] == []


def test_rates_come_from_the_rules_overtime_section():
    rules = SimpleNamespace(
        overtime=SimpleNamespace(
            workday=SimpleNamespace(rate=1.5),
            restday=SimpleNamespace(rate=2),
            holiday=SimpleNamespace(rate=3.0),
        )
    )
    assert payroll_export.rates_from_rules(rules) == RATES
    assert payroll_export.rates_from_rules(SimpleNamespace()) is None
    assert payroll_headers(None)["overtime_workday_hours"] == "工作日加班(小时)"
    assert payroll_headers({"holiday": 3})["overtime_holiday_hours"] == "法定节假日加班(小时,3倍)"
    assert payroll_export.text_width("张三ab") == 6
