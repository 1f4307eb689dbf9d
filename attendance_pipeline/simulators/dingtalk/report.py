"""DingTalk's smart report (智能考勤报表) on the legacy host. All three calls are metered:

- ``POST /topapi/attendance/getattcolumns`` (no body) lists the columns. Their ids derive from
  the company seed.
- ``POST /topapi/attendance/getcolumnval`` ``{userid, column_id_list: "id1,id2" (≤ 20),
  from_date, to_date}`` (≤ 31 days, both dates included) returns one value per column and day.
- ``POST /topapi/attendance/getleavetimebynames`` ``{userid, leave_names: "年假,病假" (≤ 20),
  from_date, to_date}`` (≤ 31 days) returns the hours of each leave type per day.

Values are strings, computed by ``company/report.py``. DingTalk's documented quirk is kept:
应出勤天数 is 0 for dates more than 15 days before the clock. Report drift makes the report
differ from the results on chosen person-days. Drift is injected (``ReportDrift``: constructor,
``/_sim/report-drift``, ``--report-drift``) or seeded (``report_drift_days``: N person-days
with +1 on a count column). Drift is added before the 15-day quirk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.company import Company
from attendance_pipeline.simulators.dingtalk.company.draws import Draw
from attendance_pipeline.simulators.dingtalk.company.report import (
    BY_NAME,
    LEAVE_TYPES,
    DayReport,
    column_ids,
    columns_api,
    day_report,
)
from attendance_pipeline.simulators.dingtalk.protocol import (
    BadParam,
    CompanyApi,
    Reply,
    Request,
    Route,
    ok_result,
    parse_work_date,
)

MAX_REPORT_COLUMNS = 20
MAX_LEAVE_NAMES = 20
MAX_REPORT_DAYS = 31
SHOULD_ATTEND_WINDOW_DAYS = 15  # 应出勤天数 is 0 for dates further back than this
SEEDED_DRIFT_COLUMNS = ("late_times", "leave_early_times", "off_work_lack_card_times")
SEEDED_DRIFT_DAYS_BACK = 30  # seeded drift falls on the 30 days before the starting clock
LEAVE_COLUMN_FLAGS: dict[str, Any] = {"status": 0, "sub_type": 0, "type": 0}


@dataclass(frozen=True)
class ReportDrift:
    """``delta`` added to one report column, or one leave type's hours, on one person-day.

    ``column`` is a column's name or alias, or a leave type (年假, 病假, …). It is stored as the
    column's name.
    """

    userid: str
    day: date
    column: str
    delta: float

    @classmethod
    def parse(cls, item: ReportDrift | Mapping[str, Any], company: Company) -> ReportDrift:
        if isinstance(item, ReportDrift):
            userid, day, column, delta = item.userid, item.day, item.column, item.delta
        else:
            missing = [k for k in ("userid", "date", "column", "delta") if k not in item]
            if missing:
                raise ValueError(f"a report drift lacks {', '.join(missing)}: {dict(item)}")
            userid, column = str(item["userid"]), str(item["column"])
            day = date.fromisoformat(str(item["date"]))
            delta = float(item["delta"])
        if not company.has_user(userid):
            raise ValueError(f"report drift: no user {userid!r}")
        if column in BY_NAME:
            column = BY_NAME[column].name
        elif column not in LEAVE_TYPES:
            names = ", ".join([c for c in BY_NAME if not c.isascii()] + list(LEAVE_TYPES))
            raise ValueError(f"report drift: no column or leave type {column!r}; one of {names}")
        return cls(userid, day, column, float(delta))

    @classmethod
    def from_cli(cls, text: str) -> dict[str, str]:
        """``USERID:YYYY-MM-DD:COLUMN:DELTA`` as the mapping ``parse`` takes."""
        parts = text.split(":")
        if len(parts) != 4:
            raise ValueError(f"--report-drift {text!r}: give USERID:YYYY-MM-DD:COLUMN:DELTA")
        return dict(zip(("userid", "date", "column", "delta"), parts, strict=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "userid": self.userid,
            "date": self.day.isoformat(),
            "column": self.column,
            "delta": self.delta,
        }


def seeded_drift(company: Company, days: int, anchor: date) -> list[ReportDrift]:
    """``days`` distinct person-days of people in an attendance group, scheduled workdays among
    the 30 days before ``anchor``, each with +1 on a count column; all from the seed."""
    if days < 0:
        raise ValueError("report_drift_days must be >= 0")
    people = sorted(company.group_map())
    found: dict[tuple[str, date], ReportDrift] = {}
    attempt = 0
    while len(found) < days and people and attempt < days * 50:
        dr = Draw(company.seed, "report-drift", attempt)
        attempt += 1
        userid = people[dr.randint(0, 0, len(people) - 1)]
        day = anchor - timedelta(days=dr.randint(1, 1, SEEDED_DRIFT_DAYS_BACK))
        if (userid, day) in found or not company.attendance(userid, day, anchor):
            continue
        alias = SEEDED_DRIFT_COLUMNS[dr.randint(2, 0, len(SEEDED_DRIFT_COLUMNS) - 1)]
        found[(userid, day)] = ReportDrift(userid, day, BY_NAME[alias].name, 1.0)
    return sorted(found.values(), key=lambda r: (r.day, r.userid))


class ReportDrifts:
    """The seeded and the injected drift, thread-safe; injected drift is replaced as a whole."""

    def __init__(self, company: Company, seeded: list[ReportDrift]) -> None:
        self._company = company
        self._lock = threading.Lock()
        self._seeded = seeded
        self._injected: list[ReportDrift] = []

    def set(
        self,
        items: Iterable[ReportDrift | Mapping[str, Any]],
        seeded_days: int | None = None,
        anchor: date | None = None,
    ) -> None:
        parsed = [ReportDrift.parse(item, self._company) for item in items]
        seeded = None
        if seeded_days is not None:
            seeded = seeded_drift(self._company, seeded_days, anchor or self._company.anchor)
        with self._lock:
            self._injected = parsed
            if seeded is not None:
                self._seeded = seeded

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                "seeded": [d.to_json() for d in self._seeded],
                "injected": [d.to_json() for d in self._injected],
            }

    def on(self, userid: str, day: date) -> list[ReportDrift]:
        with self._lock:
            return [
                d for d in (*self._seeded, *self._injected) if d.userid == userid and d.day == day
            ]


class ReportApi(CompanyApi):
    def __init__(
        self,
        company: Company,
        today: Callable[[], date],
        history_days: int,
        drifts: ReportDrifts,
    ) -> None:
        super().__init__(company, today, history_days)
        self.drifts = drifts
        self._ids = column_ids(company.seed)
        self._alias_by_id = {cid: alias for alias, cid in self._ids.items()}

    def routes(self) -> list[Route]:
        return [
            Route("/topapi/attendance/getattcolumns", "POST", "metered", self._columns),
            Route("/topapi/attendance/getcolumnval", "POST", "metered", self._column_values),
            Route("/topapi/attendance/getleavetimebynames", "POST", "metered", self._leave_times),
        ]

    def day(self, userid: str, d: date, today: date) -> DayReport:
        """What the report says of one person-day at ``today``: drift added, then the quirk."""
        report = day_report(self.company, userid, d, today)
        for drift in self.drifts.on(userid, d):
            column = BY_NAME.get(drift.column)
            if column is not None:
                report.values[column.alias] += drift.delta
            else:
                report.leave[drift.column] = report.leave.get(drift.column, 0.0) + drift.delta
        if d < today - timedelta(days=SHOULD_ATTEND_WINDOW_DAYS):
            report.values["should_attendance_days"] = 0.0
        return report

    def served_days(self, d_from: date, d_to: date, today: date) -> list[date]:
        """Days of the range within the served history (older ones are silently left out)."""
        d = max(d_from, today - timedelta(days=self._history_days))
        days = []
        while d <= d_to:
            days.append(d)
            d += timedelta(days=1)
        return days

    def _columns(self, req: Request) -> Reply:
        req.json_object()  # no parameters, but the body must be a JSON object (or empty)
        return ok_result(req, {"columns": columns_api(self.company.seed)})

    def _column_values(self, req: Request) -> Reply:
        body = req.json_object()
        userid = self._userid(body)
        raw = _name_list(body, "column_id_list", MAX_REPORT_COLUMNS, "column ids")
        ids: list[int] = []
        for text in raw:
            try:
                ids.append(int(text))
            except ValueError:
                raise BadParam(f"column_id_list: {text!r} is not a column id") from None
        unknown = [str(i) for i in ids if i not in self._alias_by_id]
        if unknown:
            raise BadParam(f"column_id_list: no such column {', '.join(unknown)}")
        today = self._today()
        days = self.served_days(*_date_range(body), today)
        reports = {d: self.day(userid, d, today) for d in days}
        result = [
            {
                "column_vo": {"id": cid},
                "column_vals": [
                    {"date": _stamp(d), "value": _text(reports[d].values[self._alias_by_id[cid]])}
                    for d in days
                ],
            }
            for cid in ids
        ]
        return ok_result(req, {"column_vals": result})

    def _leave_times(self, req: Request) -> Reply:
        body = req.json_object()
        userid = self._userid(body)
        names = _name_list(body, "leave_names", MAX_LEAVE_NAMES, "leave type names")
        today = self._today()
        days = self.served_days(*_date_range(body), today)
        reports = {d: self.day(userid, d, today) for d in days}
        columns = [
            {
                "columnvo": _leave_vo(name),
                "columnvals": [
                    {"date": _stamp(d), "value": _text(reports[d].leave.get(name, 0.0))}
                    for d in days
                ],
            }
            for name in names
        ]
        return ok_result(req, {"columns": columns})

    def _userid(self, body: dict[str, Any]) -> str:
        userid = body.get("userid")
        if not isinstance(userid, str) or not userid:
            raise BadParam("userid must be a userid string")
        if not self.company.has_user(userid):
            raise BadParam(f"userid {userid} is not a user of this company")
        return userid


def _name_list(body: dict[str, Any], key: str, limit: int, what: str) -> list[str]:
    raw = body.get(key)
    if not isinstance(raw, str):
        raise BadParam(f"{key} must be a comma-separated string of {what}")
    items = list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    if not items:
        raise BadParam(f"{key} is empty")
    if len(items) > limit:
        raise BadParam(f"{key} has {len(items)} {what}; at most {limit}")
    return items


def _date_range(body: dict[str, Any]) -> tuple[date, date]:
    d_from = parse_work_date(body.get("from_date"), "from_date")
    d_to = parse_work_date(body.get("to_date"), "to_date")
    if d_to < d_from:
        raise BadParam("to_date is before from_date")
    if (d_to - d_from).days + 1 > MAX_REPORT_DAYS:
        raise BadParam(
            f"from_date..to_date spans {(d_to - d_from).days + 1} days; at most {MAX_REPORT_DAYS}"
        )
    return d_from, d_to


def _stamp(d: date) -> str:
    return f"{d.isoformat()} 00:00:00"


def _text(value: float) -> str:
    return str(round(float(value), 2))


def _leave_vo(name: str) -> dict[str, Any]:
    vo: dict[str, Any] = dict(LEAVE_COLUMN_FLAGS)
    vo.update(name=name, alias="leave_")
    return vo
