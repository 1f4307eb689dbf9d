"""The company's people and org chart: departments, the roster (names, e-mails, job numbers,
hire dates, each from the ``"user"`` draw stream) and the few staff who leave (the ``"leaver"``
stream) with their dimission infos. Group membership and leavers come from their own streams, so
who exists, their departments and e-mails do not depend on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.company.draws import (
    ROOT_DEPT_ID,
    Draw,
    local_midnight_ms,
)
from attendance_pipeline.simulators.dingtalk.company.groups import (
    STABLE_DEPTS,
    AttendanceGroup,
)

COMPANY_NAME = "示例科技有限公司"
LEAVER_OFFSETS = (10, 25)  # days before the anchor of the first leavers' last work days

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


def departments() -> list[dict[str, Any]]:
    """``[{dept_id, name, parent_id}]`` for every department except the root (id 1)."""
    return [{"dept_id": i, "name": n, "parent_id": p} for i, n, p in _DEPARTMENTS]


def build_users(seed: int, n: int, anchor: date) -> tuple[list[dict[str, Any]], list[date]]:
    """API-shaped users (index 0 the boss, then one leader per department, then staff) and
    their hire dates; "recent" hires are counted back from ``anchor``."""
    users: list[dict[str, Any]] = []
    hired_dates: list[date] = []
    dept_ids = [d[0] for d in _DEPARTMENTS]
    weight_total = sum(w for _, w in _STAFF_WEIGHTS)
    recent = max(2, n // 20) if n >= 10 else 0
    recent_slots = {n - 1 - 3 * k: k for k in range(recent)}  # spread over the index range
    used_emails: set[str] = set()
    for idx in range(n):
        dr = Draw(seed, "user", idx)
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
            hired = anchor - timedelta(days=back)
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
            mobile = Draw(seed, "mobile", idx)
            user["mobile"] = f"1{mobile.randint(0, 3, 9)}{mobile.randint(1, 0, 10**9 - 1):09d}"
        user["admin"] = role == "boss" or idx == len(dept_ids) + 1
        user["boss"] = role == "boss"
        user["leader"] = role != "staff"
        users.append(user)
        hired_dates.append(hired)
    return users, hired_dates


def draw_leavers(
    seed: int,
    users: list[dict[str, Any]],
    groups: Sequence[AttendanceGroup | None],
    hired: list[date],
    anchor: date,
) -> list[date | None]:
    """Everyone's last work day (None: still employed). A few staff leave: never leaders, recent
    hires, people in no group or anyone of the pilot departments; offsets LEAVER_OFFSETS, then
    drawn."""
    last_day: list[date | None] = [None] * len(users)
    n = len(users)
    wanted = max(1, n // 30) if n >= 10 else 0
    candidates = sorted(
        (Draw(seed, "leaver", idx).u(0), idx)
        for idx, u in enumerate(users)
        if not u["leader"]
        and groups[idx] is not None
        and STABLE_DEPTS.isdisjoint(u["dept_id_list"])
        and hired[idx] < anchor - timedelta(days=200)
    )
    for k, (_, idx) in enumerate(candidates[:wanted]):
        if k < len(LEAVER_OFFSETS):
            back = LEAVER_OFFSETS[k]
        else:
            back = Draw(seed, "leaver", idx).randint(1, 5, 170)
        last_day[idx] = anchor - timedelta(days=back)
    return last_day


def dimission_info(seed: int, users: list[dict[str, Any]], idx: int, last: date) -> dict[str, Any]:
    """The ``QueryHrmEmployeeDismissionInfoResponseBodyResult`` of one leaver."""
    user = users[idx]
    names = {d: n for d, n, _ in _DEPARTMENTS}
    parents = {d: p for d, _, p in _DEPARTMENTS}

    def path(dept: int) -> str:
        parts = []
        while dept in names:
            parts.append(names[dept])
            dept = parents[dept]
        return "-".join(reversed(parts))

    depts = list(user["dept_id_list"])
    dr = Draw(seed, "leaver-info", idx)
    return {
        "userId": user["userid"],
        "name": user["name"],
        "lastWorkDay": local_midnight_ms(last),
        "mainDeptId": depts[0],
        "mainDeptName": names.get(depts[0], COMPANY_NAME),
        "deptList": [{"dept_id": d, "dept_path": path(d)} for d in depts],
        "handoverUserId": leader_of(users, depts[0]),
        "reasonMemo": ("家庭原因", "个人发展", "合同到期")[dr.randint(0, 0, 2)],
        "voluntaryReason": ["个人原因"],
        "status": 2,  # 已离职 (legacy listdimission: 1 待离职, 2 已离职)
        "preStatus": 3,  # 正式 (legacy listdimission: 1 待入职, 2 试用期, 3 正式)
    }


def leader_of(users: list[dict[str, Any]], dept: int) -> str:
    for u in users:
        if u["leader"] and not u["boss"] and u["dept_id_list"] == [dept]:
            return str(u["userid"])
    return str(users[0]["userid"])
