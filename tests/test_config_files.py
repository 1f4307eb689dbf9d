"""Files people edit in Excel: every CSV under config/ is read as UTF-8 (with or without a BOM)
or GBK/GB18030, with CRLF or LF; anything else is refused with the file and line."""

import logging
from datetime import date

import pytest

from attendance_pipeline.cli import main
from attendance_pipeline.config_files import ConfigError, decode_config_text
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import load_overrides
from attendance_pipeline.pm.mapping import load_explicit_mapping

CALENDAR = "date,kind,name\r\n2027-01-01,holiday,元旦\r\n2027-02-06,workday,春节调休\r\n"


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8"),
        ("gbk", "GBK/GB18030"),
        ("gb18030", "GBK/GB18030"),
    ],
)
def test_a_calendar_saved_by_excel_reads_the_same(tmp_path, caplog, encoding, label):
    path = tmp_path / "calendar.csv"
    path.write_bytes(CALENDAR.encode(encoding))
    with caplog.at_level(logging.INFO, logger="attendance_pipeline.config_files"):
        calendar = WorkCalendar.load(path)
    assert calendar.day_type(date(2027, 1, 1)) == ("holiday", "calendar.csv")
    assert calendar.day_type(date(2027, 2, 6)) == ("workday", "calendar.csv")
    assert f"as {label}" in caplog.text
    assert decode_config_text(path) == (CALENDAR.replace("\r\n", "\n"), label)


def test_gbk_overrides_and_mapping_keep_their_chinese_text(tmp_path):
    overrides = tmp_path / "overrides.csv"
    overrides.write_bytes(
        "userid,date,hours,reason,author\r\n012345,2026-10-08,8,补录,王经理\r\n".encode("gbk")
    )
    frame = load_overrides(overrides)
    assert list(frame["reason"]) == ["补录"] and list(frame["author"]) == ["王经理"]
    mapping = tmp_path / "user_mapping.csv"
    mapping.write_bytes("userid,pm_user\r\n012345,张三\r\n".encode("gb18030"))
    assert load_explicit_mapping(mapping) == {"012345": "张三"}


def test_utf16_and_undecodable_files_are_refused_with_file_and_line(tmp_path):
    utf16 = tmp_path / "allocations.csv"
    utf16.write_bytes("userid,dept_id,issue,share\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"allocations.csv line 1: the file is UTF-16"):
        decode_config_text(utf16)
    broken = tmp_path / "overrides.csv"
    broken.write_bytes(b"userid,date,hours,reason,author\n012345,2026-10-08,8,\xff\xfe\xfd,x\n")
    with pytest.raises(ConfigError, match=r"overrides.csv line 2: .*neither UTF-8 nor GBK"):
        load_overrides(broken)


def test_the_cli_refuses_an_undecodable_csv_before_any_work(pipeline, monkeypatch, capsys):
    sim, settings, _, _ = pipeline
    (settings.config_dir / "calendar.csv").write_bytes(b"date,kind,name\n2027-01-01,holiday,\xff\n")
    monkeypatch.setenv("DAGSTER_HOME", str(settings.data_dir.parent / "home"))
    sim.reset_calls()
    assert main(["sync", "--start", "2026-10-08", "--end", "2026-10-09"]) == 2
    err = capsys.readouterr().err
    assert "calendar.csv line 2" in err and "Traceback" not in err
    assert not settings.data_dir.exists()
    assert sim.calls()["metered_this_month"] == 0
