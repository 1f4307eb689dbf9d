"""The company's approvals (leave, trips, overtime, 补卡) as generated: one ``Approval`` per
request, its API shape, and hour approvals moved with a later shift."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.company.draws import (
    APPROVAL_LEAD_DAYS,
    MS_PER_DAY,
    MS_PER_MINUTE,
    SHANGHAI,
    Draw,
    fmt_minute,
)
from attendance_pipeline.simulators.dingtalk.company.workdays import WorkCalendar

LEAVE_SUBTYPES = ("年假", "病假", "事假", "调休")
# Rare leave types, each about 2% of single- and half-day leaves and 1/30 of multi-day ones; from
# draw indices older events never used, so every other event kept its type.
RARE_LEAVE_SUBTYPES = ("婚假", "陪产假", "丧假")
# What an overtime approval says becomes of it (empty: the approval does not say).
OVERTIME_SUBTYPES = ("调休", "加班费")


def leave_subtype(common: str, u: float) -> str:
    """``common`` or, for ``u`` < 0.06 (a fresh uniform draw), one of the rare leave types."""
    return RARE_LEAVE_SUBTYPES[int(u / 0.02)] if u < 0.06 else common


def overtime_subtype(u: float) -> str:
    """调休 for ``u`` < 0.35, 加班费 below 0.7, else "" (the approval does not say)."""
    return OVERTIME_SUBTYPES[0] if u < 0.35 else OVERTIME_SUBTYPES[1] if u < 0.7 else ""


@dataclass(frozen=True, slots=True)
class Approval:
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


class ApprovalMaker:
    """Builds approvals whose ids derive from (seed, userid, kind, day)."""

    def __init__(self, seed: int, calendar: WorkCalendar) -> None:
        self.seed = seed
        self._calendar = calendar

    def make(
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
    ) -> Approval:
        """One approval; begin/end are (day, minute) for hour units, (day, "AM"|"PM") for
        halfDay and (day, "") for day units."""
        dr = Draw(self.seed, "approval", userid, kind, d.isoformat())
        approve_id = dr.hexid(0, 13)
        h = dr.hexid(4, 32)
        proc = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        (bd, bx), (ed, ex) = begin, end
        if unit == "hour":
            assert isinstance(bx, int) and isinstance(ex, int)
            begin_s, end_s = fmt_minute(bd, bx), fmt_minute(ed, ex)
            start_ms = self._calendar.midnight(bd) + bx * MS_PER_MINUTE
            end_ms = self._calendar.midnight(ed) + ex * MS_PER_MINUTE
            first, last = bd + timedelta(days=bx // 1440), ed + timedelta(days=ex // 1440)
        elif unit == "halfDay":
            begin_s, end_s = f"{bd.isoformat()} {bx}", f"{ed.isoformat()} {ex}"
            start_ms = self._calendar.midnight(bd) + (0 if bx == "AM" else MS_PER_DAY // 2)
            end_ms = (
                self._calendar.midnight(ed) + (MS_PER_DAY // 2 if ex == "AM" else MS_PER_DAY) - 1
            )
            first, last = bd, ed
        else:
            begin_s, end_s = bd.isoformat(), ed.isoformat()
            start_ms = self._calendar.midnight(bd)
            end_ms = self._calendar.midnight(ed + timedelta(days=1)) - 1
            first, last = bd, ed
        return Approval(
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


def later_approval(appr: Approval | None, minutes: int) -> Approval | None:
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
