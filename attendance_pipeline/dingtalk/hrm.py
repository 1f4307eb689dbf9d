"""Leavers from 智能人事 (HR), new host: `leavers` pages `hrm/employees/dismissions` and reads
`hrm/employees/dimissionInfos` in chunks of 50. Not metered (assumption, like the contacts APIs)."""

from __future__ import annotations

import json
from datetime import date
from typing import TypedDict

from attendance_pipeline.china_time import ms_to_date
from attendance_pipeline.dingtalk.errors import DingTalkBadReply
from attendance_pipeline.dingtalk.transport import (
    DIMISSION_INFOS,
    DISMISSIONS,
    DingTalkTransport,
    chunks,
    field,
)


class Leaver(TypedDict):
    """One person who left, from the dimission info."""

    userid: str
    last_work_date: date
    name: str | None
    dept_ids: list[int]
    main_dept_id: int | None


class HrmApi(DingTalkTransport):
    """Who left, and their last work day."""

    def leavers(self, since: date | None = None) -> list[Leaver]:
        """People who left, with their last work day (`since`: only those whose last work day is
        on or after it), latest first as DingTalk lists them.

        Raises DingTalkHrmPermissionError, naming the permission to grant, when the app may not
        read 智能人事 data.
        """
        userids: list[str] = []
        token = 0
        while True:
            reply = self._new_host_get(
                DISMISSIONS,
                "/v1.0/hrm/employees/dismissions",
                {"maxResults": self.options.hrm_page_size, "nextToken": token},
            )
            page = reply.get("userIdList") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(DISMISSIONS, "`userIdList` is not a list")
            userids.extend(str(u) for u in page)
            if not reply.get("hasMore") or not page:
                break
            if reply.get("nextToken") is None:
                raise DingTalkBadReply(DISMISSIONS, "`hasMore` without a `nextToken`")
            token = int(reply["nextToken"])
        batches = chunks(list(dict.fromkeys(userids)), self.options.hrm_page_size)
        replies = self._map(
            lambda chunk: self._new_host_get(
                DIMISSION_INFOS,
                "/v1.0/hrm/employees/dimissionInfos",
                {"userIdList": json.dumps(chunk)},
            ),
            batches,
        )
        out: list[Leaver] = []
        for reply in replies:
            for info in field(reply, "result", DIMISSION_INFOS, list):
                if "userId" not in info or info.get("lastWorkDay") is None:
                    raise DingTalkBadReply(
                        DIMISSION_INFOS, "a dimission info lacks `userId` or `lastWorkDay`"
                    )
                last = ms_to_date(int(info["lastWorkDay"]))
                if since is not None and last < since:
                    continue
                depts = [int(d["dept_id"]) for d in info.get("deptList") or [] if "dept_id" in d]
                main = info.get("mainDeptId")
                if not depts and main is not None:
                    depts = [int(main)]
                out.append(
                    Leaver(
                        userid=str(info["userId"]),
                        last_work_date=last,
                        name=info.get("name"),
                        dept_ids=depts,
                        main_dept_id=int(main) if main is not None else None,
                    )
                )
        return out
