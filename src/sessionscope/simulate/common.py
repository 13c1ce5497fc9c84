"""What the generators share: time arithmetic and formatting, random draws, daily rhythms."""

from __future__ import annotations

import functools
import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "ALNUM",
    "DAY",
    "EPOCH",
    "EVENING_HOURLY",
    "HOUR",
    "INT32_MAX",
    "LETTERS",
    "MINUTE",
    "ONE_MS",
    "SECOND",
    "WORK_HOURLY",
    "fmt",
    "logn",
    "public_ipv4",
    "random_uuid",
    "sample_times",
]


SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
ONE_MS = timedelta(milliseconds=1)
INT32_MAX = 2_147_483_647
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@functools.lru_cache(maxsize=8192)
def _day_text(day: int) -> str:
    return (_EPOCH_DATE + timedelta(days=day)).isoformat()


def fmt(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with milliseconds (cheaply)."""
    day, rem = divmod(ms, DAY)
    h, rem = divmod(rem, HOUR)
    m, rem = divmod(rem, MINUTE)
    s, milli = divmod(rem, SECOND)
    return f"{_day_text(day)}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def logn(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    """Draw a log-normal integer with the given median, clamped to ``[lo, hi]``."""
    value = rng.lognormvariate(math.log(median), sigma)
    return int(min(hi, max(lo, value)))


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def public_ipv4(rng: random.Random) -> str:
    # First octets of public unicast ranges only (no private, CGNAT, loopback or multicast).
    first = rng.choice(_PUBLIC_FIRST_OCTETS)
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def sample_times(
    rng: random.Random, n: int, lo: int, hi: int, hourly: tuple[int, ...]
) -> list[int]:
    """Draw ``n`` sorted times in ``[lo, hi]`` following a daily rhythm of UTC hour weights."""
    if hi <= lo:
        return [lo] * n
    top = max(hourly)
    span = hi - lo + 1
    out: list[int] = []
    while len(out) < n:
        t = lo + int(rng.random() * span)
        if rng.random() * top < hourly[(t // HOUR) % 24]:
            out.append(t)
    out.sort()
    return out


_PUBLIC_FIRST_OCTETS = (1, 14, 27, 39, 49, 58, 59, 61, 73, 98, 110, 121, 125, 175, 211, 218, 222)
# Relative traffic per UTC hour.
EVENING_HOURLY = (3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 7, 8, 9, 10, 10, 10, 9, 7, 5)
WORK_HOURLY = (1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 4, 3, 2, 2, 1, 1)
