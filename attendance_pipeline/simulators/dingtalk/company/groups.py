"""Attendance groups (考勤组): the fixed shifts, who is in which, and their ``getsimplegroups``
shape. Most people are in the 09:00-18:00 group, the 平台研发部 subtree works 10:00-19:00, and a
few people are in no group (the boss and one or two field sales staff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attendance_pipeline.simulators.dingtalk.company.draws import (
    ID_EPOCH,
    OFF_MINUTE,
    ON_MINUTE,
    Draw,
    fmt_minute,
)


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
STABLE_DEPTS = frozenset({22, 6})


def assign_groups(seed: int, users: list[dict[str, Any]]) -> list[AttendanceGroup | None]:
    """Everyone's group from the ``"group"`` draw stream (never from the user stream)."""
    n = len(users)
    field_staff = sorted(
        (Draw(seed, "group", idx).u(0), idx)
        for idx, u in enumerate(users)
        if not u["leader"]
        and u["dept_id_list"][0] in _FIELD_DEPTS
        and STABLE_DEPTS.isdisjoint(u["dept_id_list"])
    )
    wanted = min(2, max(1, n // 30)) if n >= 10 else 0
    no_group = {0, *(idx for _, idx in field_staff[:wanted])}
    groups: list[AttendanceGroup | None] = []
    for idx, u in enumerate(users):
        if idx in no_group:
            groups.append(None)
        elif u["dept_id_list"][0] in _LATE_SHIFT_DEPTS:
            groups.append(LATE_GROUP)
        else:
            groups.append(STANDARD_GROUP)
    return groups


def group_api(g: AttendanceGroup, member_count: int, owner: str) -> dict[str, Any]:
    """One group as legacy ``getsimplegroups`` has it (snake_case, see docs/dingtalk.md)."""
    on, off = (
        fmt_minute(ID_EPOCH, g.on_minute)[11:],
        fmt_minute(ID_EPOCH, g.off_minute)[11:],
    )
    return {
        "group_id": g.group_id,
        "group_name": g.name,
        "type": "FIXED",
        "member_count": member_count,
        "is_default": g is STANDARD_GROUP,
        "default_class_id": g.class_id,
        "owner_user_id": owner,
        "manager_list": [owner],
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
