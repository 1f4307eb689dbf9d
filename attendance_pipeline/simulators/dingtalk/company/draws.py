"""The company's building blocks: the stable hash every draw comes from, the Asia/Shanghai clock
arithmetic and the constants of the simulated company (ids, shift times, approval lead time)."""

from __future__ import annotations

import hashlib
import struct
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT_DEPT_ID = 1
COMPANY_NAME = "示例科技有限公司"

ON_MINUTE = 9 * 60  # OnDuty base check time, minutes after local midnight
OFF_MINUTE = 18 * 60  # OffDuty base check time
MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000

APPROVAL_LEAD_DAYS = 3  # approvals become visible this many days before they begin
ID_EPOCH = date(2000, 1, 1)
ID_DAYS = 40_000  # day slots per user in the id space (until 2109)

_WORDS = struct.Struct(">16I")


class Draw:
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


def fmt_minute(d: date, minute: int) -> str:
    """``"YYYY-MM-DD HH:mm"`` for a minute offset from d's midnight (may roll to the next day)."""
    day = d + timedelta(days=minute // 1440)
    m = minute % 1440
    return f"{day.isoformat()} {m // 60:02d}:{m % 60:02d}"
