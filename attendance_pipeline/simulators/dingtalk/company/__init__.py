"""A deterministic company for the DingTalk simulator: org chart, roster, attendance, approvals.

Everything derives from ``(seed, userid, date)`` through a stable hash (blake2b, never Python's
``hash()``), and is computed lazily per user-day, so any window of any size gives consistent
answers and 10,000 employees x a month generate in seconds. Multi-day events (leave or trips of
2-3 consecutive workdays, a half-day leave from one afternoon to the next morning) are decided per
(user, ISO week) and stay inside that week, so every day can find its event without history.

Attendance groups: most people are in the 09:00-18:00 group, the 平台研发部 subtree works
10:00-19:00 (the same 12:00-13:00 break), and a few people are in no group (the boss and one or
two field sales staff): they have no attendance results at all, only approvals. Both shifts run
on statutory workdays (``chinese_calendar``, including 调休 Saturdays; Monday-Friday where the
package has no data). A few staff leave: their last work day is a fixed number of days before the
anchor; after it they have no results or approvals, and once the clock passes it they drop out
of the roster (the HR API lists them). Group membership and leavers come from their own draw
streams, so who exists, their departments and e-mails do not depend on them. Times are epoch
milliseconds computed with ``zoneinfo("Asia/Shanghai")``, never the host zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.company.approvals import (
    LEAVE_SUBTYPES,
    Approval,
    ApprovalMaker,
)
from attendance_pipeline.simulators.dingtalk.company.days import DayPlan, DayPlanner
from attendance_pipeline.simulators.dingtalk.company.draws import (
    ID_DAYS,
    ID_EPOCH,
    MS_PER_MINUTE,
    OFF_MINUTE,
    ON_MINUTE,
    ROOT_DEPT_ID,
    SHANGHAI,
    Draw,
    fmt_minute,
    local_midnight_ms,
)
from attendance_pipeline.simulators.dingtalk.company.groups import (
    GROUPS,
    LATE_GROUP,
    STANDARD_GROUP,
    AttendanceGroup,
    assign_groups,
    group_api,
)
from attendance_pipeline.simulators.dingtalk.company.org import (
    COMPANY_NAME,
    LEAVER_OFFSETS,
    build_users,
    departments,
    dimission_info,
    draw_leavers,
)
from attendance_pipeline.simulators.dingtalk.company.workdays import WorkCalendar

PLAN_ID_BASE = 50_000_000_000


def point_key(idx: int, day_slot: int, check: int) -> int:
    """The id space of one check point (person, day slot, OnDuty 0 / OffDuty 1): results,
    punches and plans derive their ids from it, so a plan's `plan_id` is its result's `planId`."""
    return (idx * ID_DAYS + day_slot) * 2 + check


class Company:
    """A deterministic company: ``Company(seed, employees)``.

    ``anchor`` is the date "recent" hires are counted back from (the simulator passes its starting
    clock; default: today in Asia/Shanghai). Users are built eagerly (cheap); attendance and
    approvals are computed on demand per (user, day).
    """

    def __init__(self, seed: int = 7, employees: int = 60, anchor: date | None = None) -> None:
        if employees < 1:
            raise ValueError("employees must be at least 1")
        if employees > 100_000:
            raise ValueError("employees must be at most 100000")
        self.seed = seed
        self.employees = employees
        self.anchor = anchor or datetime.now(SHANGHAI).date()
        self.corp_id = "ding" + Draw(seed, "corp").hexid(0, 12)
        self._users, self._hired = build_users(seed, employees, self.anchor)
        self._index = {u["userid"]: idx for idx, u in enumerate(self._users)}
        self._group = assign_groups(seed, self._users)
        self._last_day = draw_leavers(seed, self._users, self._group, self._hired, self.anchor)
        self._calendar = WorkCalendar()
        self._planner = DayPlanner(
            seed,
            [u["userid"] for u in self._users],
            self._hired,
            self._last_day,
            self._group,
            self._calendar,
            ApprovalMaker(seed, self._calendar),
        )
        # Approvals added and revoked through the simulator's control API (``add_approval``,
        # ``revoke_approval``): the approvals query follows them; attendance results do not.
        self._added: dict[str, Approval] = {}
        self._revoked: set[str] = set()

    # ---------------------------------------------------------------- org chart and roster

    def departments(self) -> list[dict[str, Any]]:
        """``[{dept_id, name, parent_id}]`` for every department except the root (id 1)."""
        return departments()

    def users(self, today: date | None = None) -> list[dict[str, Any]]:
        """API-shaped user dicts, each once, with the merged ``dept_id_list``.

        With ``today``: only the people still employed then (leavers drop out after their last
        work day); without it everyone who ever worked here.
        """
        return [
            {**u, "dept_id_list": list(u["dept_id_list"])}
            for i, u in enumerate(self._users)
            if today is None or not self._has_left(i, today)
        ]

    def userids(self) -> list[str]:
        return [u["userid"] for u in self._users]

    def has_left(self, userid: str, today: date) -> bool:
        """Whether the person's last work day is before ``today``."""
        return self._has_left(self._index[userid], today)

    def _has_left(self, idx: int, today: date) -> bool:
        last = self._last_day[idx]
        return last is not None and last < today

    def last_work_day(self, userid: str) -> date | None:
        return self._last_day[self._index[userid]]

    def group_map(self) -> dict[str, int]:
        """userid → attendance group id for everyone in a group (as the pipeline's roster has it;
        people who do not punch are absent)."""
        return {
            u["userid"]: group.group_id
            for u in self._users
            if (group := self.group_of(u["userid"])) is not None
        }

    def group_of(self, userid: str) -> AttendanceGroup | None:
        """The person's attendance group; None for people who do not punch."""
        return self._group[self._index[userid]]

    def group_members(self, group_id: int, today: date) -> list[str]:
        """Userids of a group's members at ``today`` (leavers are removed once they left)."""
        return [
            u["userid"]
            for i, u in enumerate(self._users)
            if (g := self._group[i]) is not None
            and g.group_id == group_id
            and not self._has_left(i, today)
        ]

    def groups(self, today: date) -> list[dict[str, Any]]:
        """Legacy ``getsimplegroups``-shaped groups (snake_case, see docs/dingtalk.md)."""
        owner = self._users[0]["userid"]
        return [group_api(g, len(self.group_members(g.group_id, today)), owner) for g in GROUPS]

    def leavers(self, today: date | None = None) -> list[dict[str, Any]]:
        """Dimission infos (``QueryHrmEmployeeDismissionInfoResponseBodyResult`` shape) of the
        people who have left by ``today`` (all drawn leavers without it), latest first."""
        found = [
            i
            for i, last in enumerate(self._last_day)
            if last is not None and (today is None or last < today)
        ]
        found.sort(key=lambda i: (self._last_day[i], self._users[i]["userid"]), reverse=True)
        return [self._dimission(i) for i in found]

    def dimission(self, userid: str, today: date) -> dict[str, Any] | None:
        idx = self._index.get(userid)
        if idx is None or not self._has_left(idx, today):
            return None
        return self._dimission(idx)

    def _dimission(self, idx: int) -> dict[str, Any]:
        last = self._last_day[idx]
        assert last is not None
        return dimission_info(self.seed, self._users, idx, last)

    def has_user(self, userid: str) -> bool:
        return userid in self._index

    def hired_date(self, userid: str) -> date:
        return self._hired[self._index[userid]]

    def is_workday(self, d: date) -> bool:
        """Statutory workday per chinese_calendar (调休 Saturdays included).

        Monday-Friday for dates the package does not cover (NotImplementedError).
        """
        return self._calendar.is_workday(d)

    def _render(self, idx: int, d: date, plan: DayPlan, today: date) -> list[dict[str, Any]]:
        assert plan.points is not None
        userid = self._users[idx]["userid"]
        day_slot = (d - ID_EPOCH).days
        if not 0 <= day_slot < ID_DAYS:
            raise ValueError(f"date {d} outside the simulator's range")
        midnight = self._calendar.midnight(d)
        group = self._group[idx]
        assert group is not None
        out: list[dict[str, Any]] = []
        for ct, (check_type, point, base_min) in enumerate(
            (
                ("OnDuty", plan.points[0], group.on_minute),
                ("OffDuty", plan.points[1], group.off_minute),
            )
        ):
            key = point_key(idx, day_slot, ct)
            base = midnight + base_min * MS_PER_MINUTE
            time_result, location, source = point.time_result, point.location, point.source
            appr = point.approval
            if point.minute is not None:
                punch: int | None = midnight + point.minute * MS_PER_MINUTE
            else:
                punch = None
            if point.fix is not None and today >= point.fix.visible_from:
                appr = point.fix
                time_result, location, source = "Normal", "Normal", "APPROVE"
                punch = point.fix.start_ms
            rec: dict[str, Any] = {"id": 70_000_000_000 + key}
            if punch is not None:
                rec["recordId"] = 80_000_000_000 + key
            rec.update(
                userId=userid,
                workDate=midnight,
                checkType=check_type,
                timeResult=time_result,
                locationResult=location,
                baseCheckTime=base,
                userCheckTime=punch if punch is not None else base,
                sourceType=source,
                groupId=group.group_id,
                planId=PLAN_ID_BASE + key,
                corpId=self.corp_id,
            )
            if appr is not None:
                rec["procInstId"] = appr.proc_inst_id
                rec["approveId"] = appr.approve_id
            out.append(rec)
        return out

    def attendance(self, userid: str, d: date, today: date) -> list[dict[str, Any]]:
        """API-shaped records (OnDuty first) for one user-day as visible at ``today``.

        Empty on rest days, before the user's hired date, for unknown userids, and when
        ``d >= today`` (a day's results appear after it ends).
        """
        idx = self._index.get(userid)
        if idx is None or d >= today:
            return []
        plan = self._planner.day(idx, d)
        if plan.points is None:
            return []
        return self._render(idx, d, plan, today)

    def _approvals(self, userid: str, d_from: date, d_to: date, today: date) -> list[Approval]:
        """Visible approvals whose interval overlaps [d_from 00:00, d_to 24:00)."""
        idx = self._index.get(userid)
        if idx is None or d_to < d_from:
            return []
        lo, hi = (
            self._calendar.midnight(d_from),
            self._calendar.midnight(d_to + timedelta(days=1)) - 1,
        )
        found: list[Approval] = []
        # Daily events begin on their day; a night overtime may end the next day.
        d = d_from - timedelta(days=1)
        while d <= d_to:
            found.extend(self._planner.day(idx, d).approvals)
            d += timedelta(days=1)
        # Weekly events stay inside their ISO week.
        seen: set[tuple[int, int]] = set()
        d = d_from
        while True:
            iso = d.isocalendar()
            if (iso[0], iso[1]) not in seen:
                seen.add((iso[0], iso[1]))
                event = self._planner.week_event(idx, iso[0], iso[1])
                if event is not None:
                    found.append(event.approval)
            if d >= d_to:
                break
            d = min(d + timedelta(days=7), d_to)
        found.extend(a for a in list(self._added.values()) if a.userid == userid)
        return [
            a
            for a in found
            if today >= a.visible_from
            and a.start_ms <= hi
            and a.end_ms >= lo
            and a.approve_id not in self._revoked
        ]

    def add_approval(
        self,
        userid: str,
        day: date,
        *,
        biz_type: int = 3,
        sub_type: str = "年假",
        half: str = "",
        visible_from: date,
    ) -> Approval:
        """Approve a whole-day (``half`` "") or half-day ("AM"/"PM") leave (biz_type 3) or trip
        (biz_type 2) on ``day``, visible from ``visible_from``; answers the approval."""
        if userid not in self._index:
            raise ValueError(f"no such userid: {userid}")
        if half not in ("", "AM", "PM"):
            raise ValueError("half must be '', 'AM' or 'PM'")
        if biz_type not in (2, 3):
            raise ValueError("biz_type must be 2 (trip) or 3 (leave)")
        serial = len(self._added)
        kind = f"added-{serial}"
        maker = ApprovalMaker(self.seed, self._calendar)
        tag = "请假" if biz_type == 3 else "出差"
        appr = maker.make(
            userid,
            kind,
            day,
            biz_type=biz_type,
            tag=tag,
            sub_type=sub_type if biz_type == 3 else "",
            unit="halfDay" if half else "day",
            begin=(day, half),
            end=(day, half),
            visible_from=visible_from,
        )
        self._added[appr.approve_id] = appr
        return appr

    def revoke_approval(self, approve_id: str) -> None:
        """The approval is revoked (撤销): the approvals query no longer returns it."""
        self._revoked.add(approve_id)

    def schedules(self, d: date) -> list[dict[str, Any]]:
        """Legacy ``listschedule``-shaped planned check points of day ``d`` (OnDuty, OffDuty per
        person in a group who is employed that day and has a shift: statutory workdays in the
        simulated fixed groups), ordered by userid. Rest days have no entries."""
        if not self._calendar.is_workday(d):
            return []
        out: list[dict[str, Any]] = []
        day_slot = (d - ID_EPOCH).days
        for idx, u in enumerate(self._users):
            group = self._group[idx]
            last = self._last_day[idx]
            if group is None or d < self._hired[idx] or (last is not None and d > last):
                continue
            for ct, (check_type, minute) in enumerate(
                (("OnDuty", group.on_minute), ("OffDuty", group.off_minute))
            ):
                key = point_key(idx, day_slot, ct)
                out.append(
                    {
                        "plan_id": PLAN_ID_BASE + key,
                        "check_type": check_type,
                        "userid": u["userid"],
                        "class_id": group.class_id,
                        "class_setting_id": group.class_id + 1_000,
                        "plan_check_time": f"{fmt_minute(d, minute)}:00",
                        "group_id": group.group_id,
                    }
                )
        out.sort(key=lambda r: (r["userid"], r["check_type"] != "OnDuty"))
        return out

    def approvals_for(
        self, userid: str, d_from: date, d_to: date, today: date
    ) -> list[dict[str, Any]]:
        """API-shaped approvals of one user overlapping [d_from 00:00, d_to 23:59:59] visible at
        ``today``, ordered by begin time."""
        found = sorted(self._approvals(userid, d_from, d_to, today), key=lambda a: a.start_ms)
        return [a.to_api() for a in found]

    def approval_events(self, userid: str, d_from: date, d_to: date, today: date) -> list[Approval]:
        """The approvals behind ``approvals_for`` (begin and end in ms, first and last day)."""
        found = self._approvals(userid, d_from, d_to, today)
        return sorted(found, key=lambda a: (a.start_ms, a.approve_id))

    def approvals_between_ms(
        self, userid: str, from_ms: int, to_ms: int, today: date, *, served_from: date
    ) -> list[dict[str, Any]]:
        """Approvals overlapping the inclusive ms interval, visible at ``today``, not ending before
        ``served_from`` (the 180-day horizon); ordered by begin time."""
        d_from = datetime.fromtimestamp(from_ms / 1000, SHANGHAI).date()
        d_to = datetime.fromtimestamp(to_ms / 1000, SHANGHAI).date()
        found = [
            a
            for a in self._approvals(userid, d_from, d_to, today)
            if a.start_ms <= to_ms and a.end_ms >= from_ms and a.last_day >= served_from
        ]
        found.sort(key=lambda a: (a.start_ms, a.approve_id))
        return [a.to_api() for a in found]


__all__ = [
    "COMPANY_NAME",
    "GROUPS",
    "LATE_GROUP",
    "LEAVER_OFFSETS",
    "LEAVE_SUBTYPES",
    "MS_PER_MINUTE",
    "OFF_MINUTE",
    "ON_MINUTE",
    "ROOT_DEPT_ID",
    "SHANGHAI",
    "STANDARD_GROUP",
    "Approval",
    "AttendanceGroup",
    "Company",
    "local_midnight_ms",
]
