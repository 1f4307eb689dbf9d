"""DingTalk's own smart report (智能考勤报表), legacy host, all three calls metered.

- `topapi/attendance/getattcolumns` lists the report's columns (`id`, `name`, `alias`, `type`,
  `sub_type`, `status`, ...). Column ids differ between companies: `find_columns` picks them by
  name or alias, never by a hard-coded id.
- `topapi/attendance/getcolumnval`: one user, ≤ 20 column ids (a comma-separated string), ≤ 31
  days (`from_date`/`to_date` as `yyyy-MM-dd HH:mm:ss`, both included) →
  `result.column_vals[].{column_vo.id, column_vals[].{date, value}}`.
- `topapi/attendance/getleavetimebynames`: one user, ≤ 20 leave type names, ≤ 31 days →
  `result.columns[].{columnvo.name, columnvals[].{date, value}}` (hours).

Names follow the TOP SDK's classes (OapiAttendanceGetattcolumnsRequest/Response,
OapiAttendanceGetcolumnvalRequest/Response, OapiAttendanceGetleavetimebynamesRequest/Response);
the reply shapes are not in `shared/contracts/dingtalk.md` and are marked as unverified in
docs/dingtalk.md. Values arrive as strings; anything that is not a number is a bad reply.
A month costs two metered calls per person (one of each value call), so `report_rows` shares the
people out over the client's worker pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypedDict

from attendance_pipeline.china_time import windows
from attendance_pipeline.dingtalk.errors import DingTalkBadReply, DingTalkBadRequest
from attendance_pipeline.dingtalk.transport import DingTalkTransport, chunks, field

REPORT_COLUMNS = "attendance/getattcolumns"
REPORT_VALUES = "attendance/getcolumnval"
REPORT_LEAVE = "attendance/getleavetimebynames"
MAX_COLUMNS_PER_CALL = 20
MAX_LEAVE_NAMES_PER_CALL = 20
MAX_DAYS_PER_CALL = 31


class ColumnValue(TypedDict):
    userid: str
    work_date: date
    column_id: int
    value: float


class LeaveValue(TypedDict):
    userid: str
    work_date: date
    leave_type: str
    hours: float


def find_columns(
    columns: Sequence[Mapping[str, Any]], wanted: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """For each key of `wanted`, the first column whose `name` or `alias` is one of its names
    (tried in order). A key with no such column is left out: companies switch columns off."""
    by_label: dict[str, dict[str, Any]] = {}
    for column in columns:
        for label in (column.get("name"), column.get("alias")):
            if isinstance(label, str) and label:
                by_label.setdefault(label, dict(column))
    found: dict[str, dict[str, Any]] = {}
    for key, names in wanted.items():
        for name in names:
            if name in by_label:
                found[key] = by_label[name]
                break
    return found


class ReportApi(DingTalkTransport):
    """The smart report's columns and their values per person and day."""

    def report_columns(self) -> list[dict[str, Any]]:
        """Every column of the company's report: dicts with at least an int `id` and a `name`."""
        reply = self._legacy(REPORT_COLUMNS, "/topapi/attendance/getattcolumns", {})
        result = field(reply, "result", REPORT_COLUMNS, dict)
        columns = field(result, "columns", REPORT_COLUMNS, list)
        out = []
        for index, column in enumerate(columns):
            if not isinstance(column, dict) or "id" not in column or "name" not in column:
                raise DingTalkBadReply(REPORT_COLUMNS, f"column {index} lacks `id` or `name`")
            out.append({**column, "id": _whole(column["id"], REPORT_COLUMNS, f"column {index}")})
        return out

    def column_values(
        self, userid: str, column_ids: Sequence[int], start: date, end: date
    ) -> list[ColumnValue]:
        """One person's values of `column_ids` for each day of start..end."""
        out: list[ColumnValue] = []
        ids = sorted(set(int(i) for i in column_ids))
        pages = self._report_pages(
            REPORT_VALUES, "/topapi/attendance/getcolumnval", "column_id_list",
            [str(i) for i in ids], MAX_COLUMNS_PER_CALL, userid, start, end,
        )  # fmt: skip
        for result, first, last in pages:
            for item in field(result, "column_vals", REPORT_VALUES, list):
                vo = item.get("column_vo") if isinstance(item, dict) else None
                if not isinstance(vo, dict) or "id" not in vo:
                    raise DingTalkBadReply(REPORT_VALUES, "a column lacks `column_vo.id`")
                cid = _whole(vo["id"], REPORT_VALUES, "column_vo.id")
                for day, value in _day_values(REPORT_VALUES, item, "column_vals", first, last):
                    out.append(ColumnValue(userid=userid, work_date=day, column_id=cid,
                                           value=value))  # fmt: skip
        return out

    def leave_values(
        self, userid: str, leave_names: Sequence[str], start: date, end: date
    ) -> list[LeaveValue]:
        """One person's leave hours per type (`leave_names`) for each day of start..end; days
        and types without leave are left out."""
        out: list[LeaveValue] = []
        names = sorted(set(leave_names))
        pages = self._report_pages(
            REPORT_LEAVE, "/topapi/attendance/getleavetimebynames", "leave_names",
            names, MAX_LEAVE_NAMES_PER_CALL, userid, start, end,
        )  # fmt: skip
        for result, first, last in pages:
            for item in field(result, "columns", REPORT_LEAVE, list):
                vo = item.get("columnvo") if isinstance(item, dict) else None
                if not isinstance(vo, dict) or not isinstance(vo.get("name"), str):
                    raise DingTalkBadReply(REPORT_LEAVE, "a column lacks `columnvo.name`")
                for day, hours in _day_values(REPORT_LEAVE, item, "columnvals", first, last):
                    if hours:
                        out.append(LeaveValue(userid=userid, work_date=day,
                                              leave_type=vo["name"], hours=hours))  # fmt: skip
        return out

    def _report_pages(
        self,
        api: str,
        path: str,
        list_param: str,
        values: Sequence[str],
        per_call: int,
        userid: str,
        start: date,
        end: date,
    ) -> Iterator[tuple[dict[str, Any], date, date]]:
        """Each reply's `result` for one person, `values` split `per_call` at a time, and the
        days split into the windows the API allows."""
        for chunk in chunks(list(values), per_call):
            for first, last in _windows(api, start, end):
                body = {"userid": userid, list_param: ",".join(chunk),
                        "from_date": _stamp(first), "to_date": _stamp(last)}  # fmt: skip
                reply = self._legacy(api, path, body)
                yield field(reply, "result", api, dict), first, last

    def report_rows(
        self,
        userids: Sequence[str],
        column_ids: Sequence[int],
        leave_names: Sequence[str],
        start: date,
        end: date,
    ) -> tuple[list[ColumnValue], list[LeaveValue]]:
        """Column values and leave hours of every person, people shared out over the worker
        pool (progress reported as `attendance/report`)."""

        def one(userid: str) -> tuple[list[ColumnValue], list[LeaveValue]]:
            values = self.column_values(userid, column_ids, start, end) if column_ids else []
            leave = self.leave_values(userid, leave_names, start, end) if leave_names else []
            return values, leave

        people = sorted(set(userids))
        results = self._map(one, people, "attendance/report")
        return [v for vs, _ in results for v in vs], [v for _, ls in results for v in ls]


def _windows(api: str, start: date, end: date) -> list[tuple[date, date]]:
    if end < start:
        raise DingTalkBadRequest(api, f"the range ends ({end}) before it starts ({start})")
    return list(windows(start, end, MAX_DAYS_PER_CALL))


def _stamp(d: date) -> str:
    return f"{d.isoformat()} 00:00:00"


def _day_values(
    api: str, item: dict[str, Any], key: str, first: date, last: date
) -> list[tuple[date, float]]:
    vals = item.get(key)
    if not isinstance(vals, list):
        raise DingTalkBadReply(api, f"`{key}` is missing or not a list")
    out = []
    for val in vals:
        if not isinstance(val, dict) or "date" not in val or "value" not in val:
            raise DingTalkBadReply(api, f"an item of `{key}` lacks `date` or `value`")
        day = _day(api, val["date"])
        if not first <= day <= last:
            raise DingTalkBadReply(api, f"{day} is outside the asked {first}..{last}")
        out.append((day, _number(api, val["value"], day)))
    return out


def _day(api: str, text: Any) -> date:
    if not isinstance(text, str):
        raise DingTalkBadReply(api, f"date {text!r} is not a 'yyyy-MM-dd HH:mm:ss' string")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise DingTalkBadReply(api, f"date {text!r} is not a 'yyyy-MM-dd HH:mm:ss' string")


def _number(api: str, value: Any, day: date) -> float:
    if isinstance(value, bool):
        raise DingTalkBadReply(api, f"value {value!r} on {day} is not a number")
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DingTalkBadReply(api, f"value {value!r} on {day} is not a number") from None


def _whole(value: Any, api: str, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DingTalkBadReply(api, f"{what} {value!r} is not an id") from None
    if isinstance(value, bool) or str(number) != str(value).strip():
        raise DingTalkBadReply(api, f"{what} {value!r} is not an id")
    return number


__all__ = ["ColumnValue", "LeaveValue", "ReportApi", "find_columns"]
