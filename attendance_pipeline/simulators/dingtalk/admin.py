"""The DingTalk simulator's ``/_sim/`` admin endpoints and its ground truth: what each API
serves at the current clock, for tests and benchmarks to compare against."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from attendance_pipeline.simulators.dingtalk.company import Company, local_midnight_ms
from attendance_pipeline.simulators.dingtalk.protocol import Reply, json_reply
from attendance_pipeline.simulators.scaffold import AdminRoutes

if TYPE_CHECKING:
    from attendance_pipeline.simulators.dingtalk.server import DingTalkSimulator


class Truth:
    """What the APIs would return now (``today()``), straight from the company."""

    def __init__(self, company: Company, today: Callable[[], date], history_days: int) -> None:
        self.company = company
        self._today = today
        self._history_days = history_days

    def attendance(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        today = self._today()
        start = max(date_from, today - timedelta(days=self._history_days))
        ids = self.company.userids() if userids is None else userids
        out: list[dict[str, Any]] = []
        for uid in dict.fromkeys(ids):
            d = start
            while d <= date_to:
                out.extend(self.company.attendance(uid, d, today))
                d += timedelta(days=1)
        out.sort(key=lambda r: r["id"])
        return out

    def approvals(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        today = self._today()
        lo = local_midnight_ms(date_from)
        hi = local_midnight_ms(date_to + timedelta(days=1)) - 1
        horizon = today - timedelta(days=self._history_days)
        ids = self.company.userids() if userids is None else userids
        out: list[dict[str, Any]] = []
        for uid in dict.fromkeys(ids):
            out.extend(self.company.approvals_between_ms(uid, lo, hi, today, served_from=horizon))
        out.sort(key=lambda a: a["approveId"])
        return out

    def users(self) -> list[dict[str, Any]]:
        return self.company.users(self._today())

    def groups(self) -> dict[str, Any]:
        today = self._today()
        groups = self.company.groups(today)
        members = {
            str(g["group_id"]): self.company.group_members(g["group_id"], today) for g in groups
        }
        grouped = {uid for ids in members.values() for uid in ids}
        no_group = [u["userid"] for u in self.company.users(today) if u["userid"] not in grouped]
        return {"groups": groups, "members": members, "no_group": no_group}

    def leavers(self) -> list[dict[str, Any]]:
        return self.company.leavers(self._today())


def admin_routes(sim: DingTalkSimulator) -> AdminRoutes[Reply]:
    """calls, reset-calls, clock, faults, expire-tokens (shared), deny, allow, unban,
    report-drift, stream (GET; POST stream/drop, stream/publish, stream/advance), approve and
    revoke (a future leave or trip, pushed as a Stream event), truth/*."""
    admin = AdminRoutes(json_reply)
    admin.add_controls(
        calls=sim.calls,
        reset_calls=sim.reset_calls,
        faults=sim.faults,
        set_faults=sim.set_faults,
        clock=lambda: {"today": sim.today.isoformat()},
        set_clock=lambda p: sim.set_today(date.fromisoformat(str(p["today"]))),
        expire_tokens=sim.expire_tokens,
    )
    admin.add("POST", "deny", lambda _q, p: _permission(sim.deny_api, p))
    admin.add("POST", "allow", lambda _q, p: _permission(sim.allow_api, p))
    admin.add_action("unban", sim.unban)
    admin.add("GET", "report-drift", lambda _q, _p: sim.report_drift())
    admin.add("POST", "report-drift", lambda _q, p: _report_drift(sim, p))
    admin.add("GET", "stream", lambda _q, _p: sim.stream.snapshot())
    admin.add("POST", "stream/drop", lambda _q, _p: {"dropped": sim.stream.drop()})
    admin.add("POST", "stream/publish", lambda _q, p: _publish(sim, p))
    admin.add(
        "POST",
        "stream/advance",
        lambda _q, p: {"eventIds": sim.advance(date.fromisoformat(str(p["today"])))},
    )
    admin.add("POST", "approve", lambda _q, p: _approve(sim, p))
    admin.add("POST", "revoke", lambda _q, p: _revoke(sim, p))
    admin.add("GET", "truth/schedules", lambda q, _p: sim.truth_schedules(_day(q)))
    admin.add("GET", "truth/users", lambda _q, _p: sim.truth_users())
    admin.add("GET", "truth/departments", lambda _q, _p: sim.truth_departments())
    admin.add("GET", "truth/groups", lambda _q, _p: sim.truth_groups())
    admin.add("GET", "truth/leavers", lambda _q, _p: sim.truth_leavers())
    admin.add("GET", "truth/attendance", lambda q, _p: sim.truth_attendance(*_window(q)))
    admin.add("GET", "truth/approvals", lambda q, _p: sim.truth_approvals(*_window(q)))
    admin.add("GET", "truth/report", lambda q, _p: sim.truth_report(*_window(q)))
    return admin


def _publish(sim: DingTalkSimulator, payload: dict[str, Any]) -> dict[str, str]:
    """``{"eventType": ..., "data": {...}, "eventId": optional}``."""
    kind, data = payload.get("eventType"), payload.get("data", {})
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise ValueError('give {"eventType": "bpms_instance_change", "data": {...}}')
    event_id = payload.get("eventId")
    return {"eventId": sim.stream.publish(kind, data, event_id=event_id and str(event_id))}


def _approve(sim: DingTalkSimulator, payload: dict[str, Any]) -> dict[str, Any]:
    """``{"userid", "date": "YYYY-MM-DD", "subType": "年假", "half": ""|"AM"|"PM",
    "bizType": 3|2}`` → the approval as the approvals query has it."""
    userid, day = payload.get("userid"), payload.get("date")
    if not isinstance(userid, str) or not isinstance(day, str):
        raise ValueError('give {"userid": "...", "date": "YYYY-MM-DD"}')
    return sim.approve(
        userid,
        date.fromisoformat(day),
        str(payload.get("subType", "年假")),
        str(payload.get("half", "")),
        int(payload.get("bizType", 3)),
    )


def _revoke(sim: DingTalkSimulator, payload: dict[str, Any]) -> dict[str, bool]:
    """``{"approveId", "userId", "bizType", ...}``: an approval ``approve`` answered."""
    if not isinstance(payload.get("approveId"), str):
        raise ValueError('give the approval /_sim/approve answered ({"approveId": ...})')
    sim.revoke(payload)
    return {"ok": True}


def _day(query: dict[str, str]) -> date:
    if "date" not in query:
        raise ValueError("give ?date=YYYY-MM-DD")
    return date.fromisoformat(query["date"])


def _permission(change: Callable[[str], None], payload: dict[str, Any]) -> dict[str, bool]:
    api = payload.get("api")
    if not isinstance(api, str):
        raise ValueError('give {"api": "attendance/list"}')
    change(api)
    return {"ok": True}


def _report_drift(sim: DingTalkSimulator, payload: dict[str, Any]) -> dict[str, Any]:
    """``{"drift": [{userid, date, column, delta}, ...], "days": N (optional)}``."""
    drift = payload.get("drift", [])
    days = payload.get("days")
    if not isinstance(drift, list) or not all(isinstance(d, dict) for d in drift):
        raise ValueError('give {"drift": [{"userid", "date", "column", "delta"}, ...]}')
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ValueError('"days" must be a whole number')
    return sim.set_report_drift(drift, days)


def _window(query: dict[str, str]) -> tuple[date, date, list[str] | None]:
    """``from``, ``to`` and the optional comma-separated ``userids`` of a truth query."""
    if "from" not in query or "to" not in query:
        raise ValueError("give from=YYYY-MM-DD&to=YYYY-MM-DD")
    d_from, d_to = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
    ids = [u for u in query["userids"].split(",") if u] if query.get("userids") else None
    return d_from, d_to, ids
