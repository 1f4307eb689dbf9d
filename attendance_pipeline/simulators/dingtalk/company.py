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

import hashlib
import struct
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT_DEPT_ID = 1
COMPANY_NAME = "示例科技有限公司"

ON_MINUTE = 9 * 60  # OnDuty base check time, minutes after local midnight
OFF_MINUTE = 18 * 60  # OffDuty base check time
MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000

APPROVAL_LEAD_DAYS = 3  # approvals become visible this many days before they begin
_ID_EPOCH = date(2000, 1, 1)
_ID_DAYS = 40_000  # day slots per user in the id space (until 2109)

LEAVE_SUBTYPES = ("年假", "病假", "事假", "调休")


@dataclass(frozen=True, slots=True)
class AttendanceGroup:
    """A fixed-shift attendance group (考勤组); minutes are after local midnight."""

    group_id: int
    name: str
    on_minute: int
    off_minute: int
    class_id: int

    @property
    def shift(self) -> int:
        """Minutes this group's shift starts after the 09:00 one."""
        return self.on_minute - ON_MINUTE


STANDARD_GROUP = AttendanceGroup(9001, "总部标准班", ON_MINUTE, OFF_MINUTE, 61001)
LATE_GROUP = AttendanceGroup(9002, "研发弹性班", ON_MINUTE + 60, OFF_MINUTE + 60, 61002)
GROUPS = (STANDARD_GROUP, LATE_GROUP)
_LATE_SHIFT_DEPTS = frozenset({21, 211, 212})  # 平台研发部 and its teams work 10:00-19:00
_FIELD_DEPTS = frozenset({4, 41, 42})  # sales: field staff may be in no attendance group
# The shipped pilot scope (config/pipeline.yaml: 测试部, 财务部) keeps a fixed head-count and
# everyone in it punches: no leavers and no group-less people are drawn from these departments.
_STABLE_DEPTS = frozenset({22, 6})
LEAVER_OFFSETS = (10, 25)  # days before the anchor of the first leavers' last work days
_SOURCES = ("ATM", "DING_ATM", "USER", "BEACON", "DING_ATM", "ATM")

# (name, parent) by dept_id; at least two levels under the root.
_DEPARTMENTS: tuple[tuple[int, str, int], ...] = (
    (2, "研发中心", ROOT_DEPT_ID),
    (21, "平台研发部", 2),
    (211, "后端组", 21),
    (212, "前端组", 21),
    (22, "测试部", 2),
    (3, "产品部", ROOT_DEPT_ID),
    (31, "产品设计组", 3),
    (4, "销售部", ROOT_DEPT_ID),
    (41, "华东销售组", 4),
    (42, "华南销售组", 4),
    (5, "行政人事部", ROOT_DEPT_ID),
    (6, "财务部", ROOT_DEPT_ID),
)
# Staff go mostly to the leaves; weights by dept_id.
_STAFF_WEIGHTS: tuple[tuple[int, int], ...] = (
    (211, 8),
    (212, 6),
    (22, 5),
    (21, 1),
    (2, 1),
    (31, 4),
    (3, 1),
    (41, 4),
    (42, 4),
    (5, 2),
    (6, 2),
)

_SURNAMES = (
    ("张", "zhang"),
    ("王", "wang"),
    ("李", "li"),
    ("赵", "zhao"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("周", "zhou"),
    ("吴", "wu"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("胡", "hu"),
    ("朱", "zhu"),
    ("高", "gao"),
    ("林", "lin"),
    ("何", "he"),
    ("郭", "guo"),
    ("马", "ma"),
    ("罗", "luo"),
)
_GIVEN = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("磊", "lei"),
    ("强", "qiang"),
    ("洋", "yang"),
    ("艳", "yan"),
    ("勇", "yong"),
    ("军", "jun"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀", "xiu"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂", "gui"),
    ("英", "ying"),
    ("华", "hua"),
    ("鹏", "peng"),
    ("宇", "yu"),
    ("晨", "chen"),
    ("欣", "xin"),
    ("浩", "hao"),
)
_TITLES = (
    "工程师",
    "高级工程师",
    "测试工程师",
    "产品经理",
    "设计师",
    "销售代表",
    "行政专员",
    "会计",
)


_WORDS = struct.Struct(">16I")


class _Draw:
    """Sixteen independent uniform numbers in [0, 1) from one stable hash of the key parts."""

    __slots__ = ("_words",)

    def __init__(self, *parts: object) -> None:
        key = "\x1f".join(map(str, parts)).encode()
        self._words: tuple[int, ...] = _WORDS.unpack(hashlib.blake2b(key, digest_size=64).digest())

    def u(self, i: int) -> float:
        return self._words[i] / 4_294_967_296

    def randint(self, i: int, lo: int, hi: int) -> int:
        """An integer in [lo, hi] inclusive."""
        return lo + int(self.u(i) * (hi - lo + 1))

    def hexid(self, i: int, n: int) -> str:
        return "".join(f"{self._words[(i + k) % 16]:08x}" for k in range((n + 7) // 8))[:n]


def local_midnight_ms(d: date) -> int:
    """Epoch ms of local midnight in Asia/Shanghai."""
    return int(datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).timestamp() * 1000)


def _fmt_minute(d: date, minute: int) -> str:
    """``"YYYY-MM-DD HH:mm"`` for a minute offset from d's midnight (may roll to the next day)."""
    day = d + timedelta(days=minute // 1440)
    m = minute % 1440
    return f"{day.isoformat()} {m // 60:02d}:{m % 60:02d}"


@dataclass(frozen=True, slots=True)
class _Approval:
    approve_id: str
    proc_inst_id: str
    userid: str
    biz_type: int
    sub_type: str
    tag_name: str
    calculate_model: int
    unit: str
    begin: str
    end: str
    start_ms: int  # inclusive interval used for overlap queries
    end_ms: int
    first_day: date
    last_day: date
    visible_from: date

    def to_api(self) -> dict[str, Any]:
        return {
            "approveId": self.approve_id,
            "userId": self.userid,
            "bizType": self.biz_type,
            "subType": self.sub_type,
            "tagName": self.tag_name,
            "calculateModel": self.calculate_model,
            "durationUnit": self.unit,
            "beginTime": self.begin,
            "endTime": self.end,
        }


@dataclass(frozen=True, slots=True)
class _Point:
    """One scheduled check point as generated, before the clock is applied."""

    time_result: str
    location: str
    source: str
    minute: int | None  # punch minute after local midnight of the work date; None = no punch
    approval: _Approval | None = None  # leave/trip covering the point
    fix: _Approval | None = None  # a 补卡 approval that rewrites this point once visible


@dataclass(frozen=True, slots=True)
class _DayPlan:
    points: tuple[_Point, _Point] | None  # None on rest days and before hiring
    approvals: tuple[_Approval, ...]  # approvals that begin on this day (daily events only)


@dataclass(frozen=True, slots=True)
class _WeekEvent:
    kind: str  # "leave" | "trip" | "halfday"
    days: tuple[date, ...]
    approval: _Approval


_NO_DAY = _DayPlan(None, ())


def _later_approval(appr: _Approval | None, minutes: int) -> _Approval | None:
    """An hour-unit approval moved ``minutes`` later (day and half-day units stay as they are)."""
    if appr is None or appr.unit != "hour":
        return appr
    delta = minutes * MS_PER_MINUTE
    start, end = appr.start_ms + delta, appr.end_ms + delta
    begin_at = datetime.fromtimestamp(start / 1000, SHANGHAI)
    end_at = datetime.fromtimestamp(end / 1000, SHANGHAI)
    return replace(
        appr,
        begin=f"{begin_at:%Y-%m-%d %H:%M}",
        end=f"{end_at:%Y-%m-%d %H:%M}",
        start_ms=start,
        end_ms=end,
        first_day=begin_at.date(),
        last_day=end_at.date(),
    )


def _shifted(plan: _DayPlan, minutes: int) -> _DayPlan:
    """The same day ``minutes`` later: punches, hour approvals and 补卡 times move together, so
    lates, early leaves and covered points keep their meaning relative to the group's shift."""
    if plan.points is None:
        moved = tuple(_later_approval(a, minutes) for a in plan.approvals)
        return _DayPlan(None, tuple(a for a in moved if a is not None))
    cache: dict[str, _Approval | None] = {}

    def move(appr: _Approval | None) -> _Approval | None:
        if appr is None:
            return None
        if appr.approve_id not in cache:
            cache[appr.approve_id] = _later_approval(appr, minutes)
        return cache[appr.approve_id]

    on, off = (
        replace(
            p,
            minute=None if p.minute is None else p.minute + minutes,
            approval=move(p.approval),
            fix=move(p.fix),
        )
        for p in plan.points
    )
    approvals = tuple(a for a in (move(a) for a in plan.approvals) if a is not None)
    return _DayPlan((on, off), approvals)


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
        self.corp_id = "ding" + _Draw(seed, "corp").hexid(0, 12)
        self._workday_cache: dict[date, bool] = {}
        self._midnight_cache: dict[date, int] = {}
        self._week_days_cache: dict[tuple[int, int], tuple[date, ...]] = {}
        self._week_cache: dict[tuple[int, int, int], tuple[_WeekEvent | None]] = {}
        self._users: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}
        self._hired: list[date] = []
        self._build_users()
        self._group: list[AttendanceGroup | None] = []
        self._build_groups()
        self._last_day: list[date | None] = [None] * employees
        self._build_leavers()

    # ---------------------------------------------------------------- org chart and roster

    def departments(self) -> list[dict[str, Any]]:
        """``[{dept_id, name, parent_id}]`` for every department except the root (id 1)."""
        return [{"dept_id": i, "name": n, "parent_id": p} for i, n, p in _DEPARTMENTS]

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
        out = []
        for g in GROUPS:
            members = self.group_members(g.group_id, today)
            on, off = (
                _fmt_minute(_ID_EPOCH, g.on_minute)[11:],
                _fmt_minute(_ID_EPOCH, g.off_minute)[11:],
            )
            out.append(
                {
                    "group_id": g.group_id,
                    "group_name": g.name,
                    "type": "FIXED",
                    "member_count": len(members),
                    "is_default": g is STANDARD_GROUP,
                    "default_class_id": g.class_id,
                    "owner_user_id": self._users[0]["userid"],
                    "manager_list": [self._users[0]["userid"]],
                    "classes_list": [
                        f"周一、二、三、四、五 班次{g.name}:{on}-{off}",
                        "周六、日 休息",
                    ],
                    "selected_class": [
                        {
                            "class_id": g.class_id,
                            "class_name": g.name,
                            "sections": [
                                {
                                    "times": [
                                        {
                                            "check_type": "OnDuty",
                                            "check_time": f"{on}:00",
                                            "across": 0,
                                        },
                                        {
                                            "check_type": "OffDuty",
                                            "check_time": f"{off}:00",
                                            "across": 0,
                                        },
                                    ]
                                }
                            ],
                        }
                    ],
                }
            )
        return out

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
        user = self._users[idx]
        last = self._last_day[idx]
        assert last is not None
        names = {d: n for d, n, _ in _DEPARTMENTS}
        parents = {d: p for d, _, p in _DEPARTMENTS}

        def path(dept: int) -> str:
            parts = []
            while dept in names:
                parts.append(names[dept])
                dept = parents[dept]
            return "-".join(reversed(parts))

        depts = list(user["dept_id_list"])
        dr = _Draw(self.seed, "leaver-info", idx)
        return {
            "userId": user["userid"],
            "name": user["name"],
            "lastWorkDay": local_midnight_ms(last),
            "mainDeptId": depts[0],
            "mainDeptName": names.get(depts[0], COMPANY_NAME),
            "deptList": [{"dept_id": d, "dept_path": path(d)} for d in depts],
            "handoverUserId": self._leader_of(depts[0]),
            "reasonMemo": ("家庭原因", "个人发展", "合同到期")[dr.randint(0, 0, 2)],
            "voluntaryReason": ["个人原因"],
            "status": 2,  # 已离职 (legacy listdimission: 1 待离职, 2 已离职)
            "preStatus": 3,  # 正式 (legacy listdimission: 1 待入职, 2 试用期, 3 正式)
        }

    def _leader_of(self, dept: int) -> str:
        for u in self._users:
            if u["leader"] and not u["boss"] and u["dept_id_list"] == [dept]:
                return str(u["userid"])
        return str(self._users[0]["userid"])

    def _build_groups(self) -> None:
        """Everyone's group from the ``"group"`` draw stream (never from the user stream)."""
        n = self.employees
        field_staff = sorted(
            (_Draw(self.seed, "group", idx).u(0), idx)
            for idx, u in enumerate(self._users)
            if not u["leader"]
            and u["dept_id_list"][0] in _FIELD_DEPTS
            and _STABLE_DEPTS.isdisjoint(u["dept_id_list"])
        )
        wanted = min(2, max(1, n // 30)) if n >= 10 else 0
        no_group = {0, *(idx for _, idx in field_staff[:wanted])}
        for idx, u in enumerate(self._users):
            if idx in no_group:
                self._group.append(None)
            elif u["dept_id_list"][0] in _LATE_SHIFT_DEPTS:
                self._group.append(LATE_GROUP)
            else:
                self._group.append(STANDARD_GROUP)

    def _build_leavers(self) -> None:
        """A few staff leave (``"leaver"`` draw stream): never leaders, recent hires, people in
        no group or anyone of the pilot departments; offsets LEAVER_OFFSETS, then drawn."""
        n = self.employees
        wanted = max(1, n // 30) if n >= 10 else 0
        candidates = sorted(
            (_Draw(self.seed, "leaver", idx).u(0), idx)
            for idx, u in enumerate(self._users)
            if not u["leader"]
            and self._group[idx] is not None
            and _STABLE_DEPTS.isdisjoint(u["dept_id_list"])
            and self._hired[idx] < self.anchor - timedelta(days=200)
        )
        for k, (_, idx) in enumerate(candidates[:wanted]):
            if k < len(LEAVER_OFFSETS):
                back = LEAVER_OFFSETS[k]
            else:
                back = _Draw(self.seed, "leaver", idx).randint(1, 5, 170)
            self._last_day[idx] = self.anchor - timedelta(days=back)

    def has_user(self, userid: str) -> bool:
        return userid in self._index

    def hired_date(self, userid: str) -> date:
        return self._hired[self._index[userid]]

    def _build_users(self) -> None:
        seed, n = self.seed, self.employees
        dept_ids = [d[0] for d in _DEPARTMENTS]
        weight_total = sum(w for _, w in _STAFF_WEIGHTS)
        recent = max(2, n // 20) if n >= 10 else 0
        recent_slots = {n - 1 - 3 * k: k for k in range(recent)}  # spread over the index range
        used_emails: set[str] = set()
        for idx in range(n):
            dr = _Draw(seed, "user", idx)
            if idx == 0:
                userid = f"manager{4000 + dr.randint(0, 0, 999)}"
                depts = [ROOT_DEPT_ID]
                role = "boss"
            elif idx <= len(dept_ids):
                userid = f"manager{5000 + idx * 100 + dr.randint(0, 0, 99)}"
                depts = [dept_ids[idx - 1]]
                role = "leader"
            else:
                number = 10_000 + idx * 97 + seed % 97
                userid = f"0{number}" if dr.u(0) < 0.4 else str(number)
                pick = dr.u(1) * weight_total
                primary = _STAFF_WEIGHTS[-1][0]
                for dept, w in _STAFF_WEIGHTS:
                    if pick < w:
                        primary = dept
                        break
                    pick -= w
                depts = [primary]
                if dr.u(2) < 0.11:
                    second = dept_ids[dr.randint(3, 0, len(dept_ids) - 1)]
                    if second == primary:
                        second = dept_ids[(dept_ids.index(second) + 1) % len(dept_ids)]
                    depts.append(second)
                role = "staff"
            surname, s_py = _SURNAMES[dr.randint(4, 0, len(_SURNAMES) - 1)]
            given = [_GIVEN[dr.randint(5, 0, len(_GIVEN) - 1)]]
            if dr.u(6) < 0.6:
                given.append(_GIVEN[dr.randint(7, 0, len(_GIVEN) - 1)])
            name = surname + "".join(g for g, _ in given)
            local = s_py + "".join(p for _, p in given)
            email_local, k = local, 1
            while email_local in used_emails:
                k += 1
                email_local = f"{local}{k}"
            used_emails.add(email_local)
            email = f"{email_local}@corp.example"
            if idx in recent_slots:
                k_recent = recent_slots[idx]
                back = 12 if k_recent == 0 else 35 if k_recent == 1 else dr.randint(8, 5, 60)
                hired = self.anchor - timedelta(days=back)
            else:
                hired = date(2012, 1, 1) + timedelta(days=dr.randint(8, 0, 365 * 11))
            user: dict[str, Any] = {
                "userid": userid,
                "unionid": "un" + dr.hexid(9, 14),
                "name": name,
            }
            if role != "staff" or dr.u(10) < 0.85:
                user["title"] = {"boss": "总经理", "leader": "部门经理"}.get(
                    role, _TITLES[dr.randint(11, 0, len(_TITLES) - 1)]
                )
            if dr.u(12) < 0.9:
                user["job_number"] = f"J{idx + 1:05d}"
            user["dept_id_list"] = depts
            user["hired_date"] = local_midnight_ms(hired)
            user["active"] = True
            mail = dr.u(13)
            if mail < 0.85:
                user["email"] = email
                if mail < 0.25:
                    user["org_email"] = email
            elif mail < 0.9:
                user["org_email"] = email
            if dr.u(14) < 0.8:
                mobile = _Draw(seed, "mobile", idx)
                user["mobile"] = f"1{mobile.randint(0, 3, 9)}{mobile.randint(1, 0, 10**9 - 1):09d}"
            user["admin"] = role == "boss" or idx == len(dept_ids) + 1
            user["boss"] = role == "boss"
            user["leader"] = role != "staff"
            self._index[userid] = idx
            self._users.append(user)
            self._hired.append(hired)

    # ---------------------------------------------------------------- calendar

    def is_workday(self, d: date) -> bool:
        """Statutory workday per chinese_calendar (调休 Saturdays included).

        Monday-Friday for dates the package does not cover (NotImplementedError).
        """
        cached = self._workday_cache.get(d)
        if cached is None:
            try:
                cached = bool(chinese_calendar.is_workday(d))
            except NotImplementedError:
                cached = d.weekday() < 5
            self._workday_cache[d] = cached
        return cached

    def _midnight(self, d: date) -> int:
        ms = self._midnight_cache.get(d)
        if ms is None:
            ms = self._midnight_cache[d] = local_midnight_ms(d)
        return ms

    def _week_workdays(self, iso_year: int, iso_week: int) -> tuple[date, ...]:
        key = (iso_year, iso_week)
        days = self._week_days_cache.get(key)
        if days is None:
            monday = date.fromisocalendar(iso_year, iso_week, 1)
            week = (monday + timedelta(days=i) for i in range(7))
            days = self._week_days_cache[key] = tuple(d for d in week if self.is_workday(d))
        return days

    # ---------------------------------------------------------------- approvals (building blocks)

    def _approval(
        self,
        userid: str,
        kind: str,
        d: date,
        *,
        biz_type: int,
        tag: str,
        sub_type: str = "",
        unit: str,
        begin: tuple[date, int | str],
        end: tuple[date, int | str],
        calculate_model: int = 1,
        visible_from: date | None = None,
    ) -> _Approval:
        """One approval; begin/end are (day, minute) for hour units, (day, "AM"|"PM") for
        halfDay and (day, "") for day units."""
        dr = _Draw(self.seed, "approval", userid, kind, d.isoformat())
        approve_id = dr.hexid(0, 13)
        h = dr.hexid(4, 32)
        proc = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        (bd, bx), (ed, ex) = begin, end
        if unit == "hour":
            assert isinstance(bx, int) and isinstance(ex, int)
            begin_s, end_s = _fmt_minute(bd, bx), _fmt_minute(ed, ex)
            start_ms = self._midnight(bd) + bx * MS_PER_MINUTE
            end_ms = self._midnight(ed) + ex * MS_PER_MINUTE
            first, last = bd + timedelta(days=bx // 1440), ed + timedelta(days=ex // 1440)
        elif unit == "halfDay":
            begin_s, end_s = f"{bd.isoformat()} {bx}", f"{ed.isoformat()} {ex}"
            start_ms = self._midnight(bd) + (0 if bx == "AM" else MS_PER_DAY // 2)
            end_ms = self._midnight(ed) + (MS_PER_DAY // 2 if ex == "AM" else MS_PER_DAY) - 1
            first, last = bd, ed
        else:
            begin_s, end_s = bd.isoformat(), ed.isoformat()
            start_ms = self._midnight(bd)
            end_ms = self._midnight(ed + timedelta(days=1)) - 1
            first, last = bd, ed
        return _Approval(
            approve_id=approve_id,
            proc_inst_id=proc,
            userid=userid,
            biz_type=biz_type,
            sub_type=sub_type,
            tag_name=tag,
            calculate_model=calculate_model,
            unit=unit,
            begin=begin_s,
            end=end_s,
            start_ms=start_ms,
            end_ms=end_ms,
            first_day=first,
            last_day=last,
            visible_from=visible_from or first - timedelta(days=APPROVAL_LEAD_DAYS),
        )

    # ---------------------------------------------------------------- the plan of one week / day

    def _week_event(self, idx: int, iso_year: int, iso_week: int) -> _WeekEvent | None:
        key = (idx, iso_year, iso_week)
        hit = self._week_cache.get(key)  # .get: safe while another thread clears the cache
        if hit is not None:
            return hit[0]
        if len(self._week_cache) > 500_000:  # bounded: long histories of big companies
            self._week_cache.clear()
        event = self._make_week_event(idx, iso_year, iso_week)
        self._week_cache[key] = (event,)
        return event

    def _make_week_event(self, idx: int, iso_year: int, iso_week: int) -> _WeekEvent | None:
        dr = _Draw(self.seed, "week", idx, iso_year, iso_week)
        if dr.u(0) >= 0.035:
            return None
        workdays = self._week_workdays(iso_year, iso_week)
        r = dr.u(1)
        kind = "leave" if r < 0.55 else "trip" if r < 0.8 else "halfday"
        length = 2 if kind == "halfday" or dr.u(2) < 0.5 else 3
        if len(workdays) < length:
            return None
        start = dr.randint(3, 0, len(workdays) - length)
        days = workdays[start : start + length]
        if days[0] < self._hired[idx]:
            return None
        last_day = self._last_day[idx]
        if last_day is not None and days[-1] > last_day:
            return None
        userid = self._users[idx]["userid"]
        first, last = days[0], days[-1]
        if kind == "leave":
            sub = LEAVE_SUBTYPES[dr.randint(4, 0, len(LEAVE_SUBTYPES) - 1)]
            appr = self._approval(
                userid, "wleave", first, biz_type=3, tag="请假", sub_type=sub, unit="day",
                begin=(first, ""), end=(last, ""),
            )  # fmt: skip
        elif kind == "trip":
            appr = self._approval(
                userid, "wtrip", first, biz_type=2, tag="出差", unit="day",
                begin=(first, ""), end=(last, ""),
            )  # fmt: skip
        else:
            sub = LEAVE_SUBTYPES[dr.randint(4, 0, len(LEAVE_SUBTYPES) - 1)]
            appr = self._approval(
                userid, "whalf", first, biz_type=3, tag="请假", sub_type=sub, unit="halfDay",
                begin=(first, "PM"), end=(last, "AM"),
            )  # fmt: skip
        return _WeekEvent(kind, days, appr)

    def _punch(self, dr: _Draw, i: int, minute: int, result: str = "Normal") -> _Point:
        """A real punch; draws i and i+1 are used for source and location."""
        source = _SOURCES[dr.randint(i, 0, len(_SOURCES) - 1)]
        location = "Outside" if dr.u(i + 1) < 0.03 else "Normal"
        return _Point(result, location, source, minute)

    @staticmethod
    def _covered(appr: _Approval) -> _Point:
        return _Point("Normal", "Normal", "APPROVE", None, approval=appr)

    @staticmethod
    def _missing(fix: _Approval | None = None) -> _Point:
        return _Point("NotSigned", "NotSigned", "SYSTEM", None, fix=fix)

    def _day(self, idx: int, d: date) -> _DayPlan:
        """The person's plan for one day, in their group's shift; no check points without one."""
        last_day = self._last_day[idx]
        if d < self._hired[idx] or (last_day is not None and d > last_day):
            return _NO_DAY
        plan = self._day_in_standard_shift(idx, d)
        group = self._group[idx]
        if group is None:  # does not punch: no results, no 补卡; leave, trips and overtime stay
            kept = tuple(a for a in plan.approvals if a.biz_type != 4)
            return _DayPlan(None, kept) if kept else _NO_DAY
        if group.shift == 0:
            return plan
        return _shifted(plan, group.shift)

    def _day_in_standard_shift(self, idx: int, d: date) -> _DayPlan:
        userid = self._users[idx]["userid"]
        dr = _Draw(self.seed, "day", idx, d.isoformat())
        if not self.is_workday(d):
            if dr.u(0) < 0.02:
                ot = self._approval(
                    userid, "rest-ot", d, biz_type=1, tag="加班", unit="hour",
                    begin=(d, 600), end=(d, 990), calculate_model=0,
                )  # fmt: skip
                return _DayPlan(None, (ot,))
            return _NO_DAY

        iso = d.isocalendar()
        event = self._week_event(idx, iso[0], iso[1])
        if event is not None and d in event.days:
            appr = event.approval
            if event.kind != "halfday":
                return _DayPlan((self._covered(appr), self._covered(appr)), ())
            if d == event.days[0]:  # afternoon off: OffDuty covered
                on = self._punch(dr, 2, dr.randint(1, 505, 540))
                return _DayPlan((on, self._covered(appr)), ())
            off = self._punch(dr, 2, dr.randint(1, 1080, 1125))
            return _DayPlan((self._covered(appr), off), ())

        on_min = dr.randint(1, 505, 540)
        off_min = dr.randint(2, 1080, 1125)
        on = self._punch(dr, 3, on_min)
        off = self._punch(dr, 5, off_min)
        approvals: list[_Approval] = []
        r = dr.u(0)
        sub = LEAVE_SUBTYPES[dr.randint(7, 0, len(LEAVE_SUBTYPES) - 1)]

        def hour(kind: str, tag: str, biz: int, b: int, e: int, model: int = 1) -> _Approval:
            return self._approval(
                userid, kind, d, biz_type=biz, tag=tag, sub_type=sub if biz == 3 else "",
                unit="hour", begin=(d, b), end=(d, e), calculate_model=model,
            )  # fmt: skip

        # Cumulative thresholds; the rest (~82%) is a normal day.
        if (r := r - 0.035) < 0:  # late
            on = self._punch(dr, 3, dr.randint(8, 545, 569), "Late")
        elif (r := r - 0.012) < 0:  # seriously late
            on = self._punch(dr, 3, dr.randint(8, 570, 640), "SeriousLate")
        elif (r := r - 0.02) < 0:  # early leave
            off = self._punch(dr, 5, dr.randint(9, 990, 1075), "Early")
        elif (r := r - 0.009) < 0:  # late and early
            if dr.u(10) < 0.6:
                on = self._punch(dr, 3, dr.randint(8, 545, 569), "Late")
            else:
                on = self._punch(dr, 3, dr.randint(8, 570, 620), "SeriousLate")
            off = self._punch(dr, 5, dr.randint(9, 990, 1075), "Early")
        elif (r := r - 0.028) < 0:  # one punch missing, sometimes fixed by 补卡 later
            missing_on = dr.u(8) < 0.5
            fix = None
            if dr.u(9) < 0.55:
                punch = dr.randint(10, 520, 540) if missing_on else dr.randint(10, 1080, 1110)
                fix = self._approval(
                    userid, "buka", d, biz_type=4, tag="补卡", unit="hour",
                    begin=(d, punch), end=(d, punch), calculate_model=0,
                    visible_from=d + timedelta(days=dr.randint(11, 1, 5)),
                )  # fmt: skip
                approvals.append(fix)
            if missing_on:
                on = self._missing(fix)
            else:
                off = self._missing(fix)
        elif (r := r - 0.007) < 0:  # both missing
            on, off = self._missing(), self._missing()
        elif (r := r - 0.007) < 0:  # absence: 旷工 with no punch, or 旷工迟到 (very late)
            if dr.u(8) < 0.5:
                on = _Point("Absenteeism", "NotSigned", "SYSTEM", None)
                off = self._missing()
            else:
                on = self._punch(dr, 3, dr.randint(9, 660, 780), "Absenteeism")
        elif (r := r - 0.012) < 0:  # single full-day leave
            appr = self._approval(
                userid, "leave", d, biz_type=3, tag="请假", sub_type=sub, unit="day",
                begin=(d, ""), end=(d, ""),
            )  # fmt: skip
            approvals.append(appr)
            on, off = self._covered(appr), self._covered(appr)
        elif (r := r - 0.015) < 0:  # half-day leave
            half = "AM" if dr.u(8) < 0.5 else "PM"
            appr = self._approval(
                userid, "half", d, biz_type=3, tag="请假", sub_type=sub, unit="halfDay",
                begin=(d, half), end=(d, half),
            )  # fmt: skip
            approvals.append(appr)
            if half == "AM":
                on = self._covered(appr)
            else:
                off = self._covered(appr)
        elif (r := r - 0.02) < 0:  # hourly leave
            b, e = ((840, 960), (660, 840), (960, 1080), (540, 660))[dr.randint(8, 0, 3)]
            appr = hour("hleave", "请假", 3, b, e)
            approvals.append(appr)
            if b <= ON_MINUTE <= e:
                on = self._covered(appr)
            if b <= OFF_MINUTE <= e:
                off = self._covered(appr)
        elif (r := r - 0.007) < 0:  # single-day business trip
            appr = self._approval(
                userid, "trip", d, biz_type=2, tag="出差", unit="day",
                begin=(d, ""), end=(d, ""),
            )  # fmt: skip
            approvals.append(appr)
            on, off = self._covered(appr), self._covered(appr)
        elif (r := r - 0.011) < 0:  # partial trip (外出) by the hour
            b, e = ((840, 1080), (540, 720), (600, 900))[dr.randint(8, 0, 2)]
            appr = hour("outing", "外出", 2, b, e)
            approvals.append(appr)
            if b <= ON_MINUTE <= e:
                on = self._covered(appr)
            if b <= OFF_MINUTE <= e:
                off = self._covered(appr)
        elif (r := r - 0.008) < 0:  # worked past midnight: OffDuty punch on the next calendar day
            late_min = 1440 + dr.randint(8, 5, 90)
            off = self._punch(dr, 5, late_min)
            if dr.u(9) < 0.5:
                approvals.append(hour("ot-night", "加班", 1, 1140, late_min - 5, model=0))
        elif dr.u(12) < 0.045:  # evening overtime on an otherwise normal day
            end = (1230, 1290, 1320)[dr.randint(13, 0, 2)]
            approvals.append(hour("ot", "加班", 1, 1140, end, model=0))
            off = self._punch(dr, 5, end + dr.randint(14, 0, 10))
        return _DayPlan((on, off), tuple(approvals))

    # ---------------------------------------------------------------- rendering at a clock

    def _render(self, idx: int, d: date, plan: _DayPlan, today: date) -> list[dict[str, Any]]:
        assert plan.points is not None
        userid = self._users[idx]["userid"]
        day_slot = (d - _ID_EPOCH).days
        if not 0 <= day_slot < _ID_DAYS:
            raise ValueError(f"date {d} outside the simulator's range")
        midnight = self._midnight(d)
        group = self._group[idx]
        assert group is not None
        out: list[dict[str, Any]] = []
        for ct, (check_type, point, base_min) in enumerate(
            (
                ("OnDuty", plan.points[0], group.on_minute),
                ("OffDuty", plan.points[1], group.off_minute),
            )
        ):
            key = (idx * _ID_DAYS + day_slot) * 2 + ct
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
                planId=50_000_000_000 + key,
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
        plan = self._day(idx, d)
        if plan.points is None:
            return []
        return self._render(idx, d, plan, today)

    def _approvals(self, userid: str, d_from: date, d_to: date, today: date) -> list[_Approval]:
        """Visible approvals whose interval overlaps [d_from 00:00, d_to 24:00)."""
        idx = self._index.get(userid)
        if idx is None or d_to < d_from:
            return []
        lo, hi = self._midnight(d_from), self._midnight(d_to + timedelta(days=1)) - 1
        found: list[_Approval] = []
        # Daily events begin on their day; a night overtime may end the next day.
        d = d_from - timedelta(days=1)
        while d <= d_to:
            found.extend(self._day(idx, d).approvals)
            d += timedelta(days=1)
        # Weekly events stay inside their ISO week.
        seen: set[tuple[int, int]] = set()
        d = d_from
        while True:
            iso = d.isocalendar()
            if (iso[0], iso[1]) not in seen:
                seen.add((iso[0], iso[1]))
                event = self._week_event(idx, iso[0], iso[1])
                if event is not None:
                    found.append(event.approval)
            if d >= d_to:
                break
            d = min(d + timedelta(days=7), d_to)
        return [a for a in found if today >= a.visible_from and a.start_ms <= hi and a.end_ms >= lo]

    def approvals_for(
        self, userid: str, d_from: date, d_to: date, today: date
    ) -> list[dict[str, Any]]:
        """API-shaped approvals of one user overlapping [d_from 00:00, d_to 23:59:59] visible at
        ``today``, ordered by begin time."""
        found = sorted(self._approvals(userid, d_from, d_to, today), key=lambda a: a.start_ms)
        return [a.to_api() for a in found]

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
