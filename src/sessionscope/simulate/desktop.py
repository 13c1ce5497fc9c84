"""Desktop sessions: users of a working day, logins, activity and idle gaps."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessionscope.simulate.common import (
    ALNUM,
    DAY,
    HOUR,
    INT32_MAX,
    MINUTE,
    SECOND,
    fmt,
    random_uuid,
)
from sessionscope.simulate.config import SimulationConfig

__all__ = ["desktop_events"]


_FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "jiwoo", "minjun", "seoyeon", "hana", "yuki", "kenji", "lena", "max", "sofia", "omar",
)  # fmt: skip
_LAST_NAMES = (
    "kim", "lee", "park", "choi", "smith", "jones", "garcia", "muller", "tanaka", "sato",
    "brown", "wilson", "nguyen", "martin", "rossi",
)  # fmt: skip
_DEPARTMENTS = ("FIN", "HR", "ENG", "OPS", "SALES", "SUP")
# (app, title, url or None)
_APPS: tuple[tuple[str, str, str | None], ...] = (
    ("chrome.exe", "Jira - Sprint board - Google Chrome", "https://jira.example.com/board/12"),
    ("chrome.exe", "Inbox - mail.example.com - Google Chrome", "https://mail.example.com/inbox"),
    ("msedge.exe", "Team space - Confluence - Microsoft Edge", "https://wiki.example.com/TEAM"),
    ("chrome.exe", "Salesforce - Accounts - Google Chrome", "https://example.my.salesforce.com/"),
    ("OUTLOOK.EXE", "Inbox - Outlook", None),
    ("EXCEL.EXE", "Q3 budget.xlsx - Excel", None),
    ("WINWORD.EXE", "Proposal draft.docx - Word", None),
    ("ms-teams.exe", "Chat | Microsoft Teams", None),
    ("Code.exe", "service.py - billing - Visual Studio Code", None),
    ("explorer.exe", "Documents", None),
    ("putty.exe", "prod-db-01 - PuTTY", None),
)
# A user's UTC offset (hours) of their working day: Seoul, London, New York.
_TZ_OFFSETS = (9, 9, 0, 1, -5)


@dataclass(frozen=True, slots=True)
class _DesktopUser:
    user_id: int
    user_name: str
    clients: tuple[tuple[str, str], ...]  # (client_guid, client_name)
    tz: int
    shift_hour: float
    length_hours: float


def _desktop_users(rng: random.Random, n: int) -> list[_DesktopUser]:
    user_ids = rng.sample(range(1, 100_000), n) if n <= 99_999 else list(range(1, n + 1))
    seen: set[str] = set()
    users: list[_DesktopUser] = []
    for user_id in user_ids:
        name = f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}"
        while name in seen:
            name = f"{name.rstrip('0123456789')}{rng.randint(2, 99)}"
        seen.add(name)
        dept = rng.choice(_DEPARTMENTS)
        clients = [(random_uuid(rng), f"WS-{dept}-{rng.randint(1, 250):03d}")]
        if rng.random() < 0.3:
            laptop = "".join(rng.choices(ALNUM[:26] + ALNUM[52:], k=7))
            clients.append((random_uuid(rng), f"LAPTOP-{laptop}"))
        users.append(
            _DesktopUser(
                user_id=user_id,
                user_name=name,
                clients=tuple(clients),
                tz=rng.choice(_TZ_OFFSETS),
                shift_hour=rng.uniform(7.5, 9.75),
                length_hours=rng.uniform(7.5, 9.0),
            )
        )
    return users


def desktop_events(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-d"
    used: set[int] = set()
    for user in _desktop_users(rng, cfg.desktop_users):
        logins: list[int] = []
        first_day = (lo + user.tz * HOUR) // DAY
        last_day = (hi + user.tz * HOUR) // DAY
        for day in range(first_day, last_day + 1):
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
            if rng.random() >= (0.93 if weekday < 5 else 0.05):
                continue
            hour = user.shift_hour + rng.gauss(0.0, 0.3)
            login = day * DAY - user.tz * HOUR + int(hour * HOUR)
            if lo <= login <= hi:
                logins.append(login)
        if not logins:  # every user has at least one session, even in a short or odd span
            logins.append(lo + int(rng.random() * max(1, (hi - lo) * 0.8)))
        for login in logins:
            number = rng.randint(1, INT32_MAX)
            while number in used:
                number = rng.randint(1, INT32_MAX)
            used.add(number)
            yield from _desktop_session(rng, user, number, login, hi, ids, prefix)


def _desktop_session(
    rng: random.Random,
    user: _DesktopUser,
    number: int,
    login: int,
    hi: int,
    ids: Iterator[int],
    prefix: str,
) -> Iterator[dict[str, Any]]:
    guid, client = user.clients[0] if rng.random() < 0.8 else rng.choice(user.clients)
    base: dict[str, Any] = {
        "session": number,
        "user_id": user.user_id,
        "user_name": user.user_name,
        "client_guid": guid,
        "client_name": client,
    }
    length = int(min(11.0, max(3.0, user.length_hours + rng.gauss(0.0, 0.5))) * HOUR)
    logout = login + length
    # Idle periods (no input at all): lunch in most sessions, meetings in many.
    idle: list[tuple[int, int]] = []
    if rng.random() < 0.75:
        a = login + int(rng.uniform(3.5, 4.5) * HOUR)
        idle.append((a, a + rng.randint(25 * MINUTE, 70 * MINUTE)))
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        a = login + rng.randint(30 * MINUTE, max(30 * MINUTE, length - 90 * MINUTE))
        idle.append((a, a + rng.randint(20 * MINUTE, 75 * MINUTE)))
    idle.sort()

    t = login
    yield {
        "id": f"{prefix}{next(ids)}",
        "kind": "desktop",
        "time": fmt(t),
        "type": "login",
        **base,
    }
    app, title, url = rng.choice(_APPS)
    k = 0
    t += rng.randint(30 * SECOND, 5 * MINUTE)
    while t < logout:
        while k < len(idle) and idle[k][1] <= t:
            k += 1
        if k < len(idle) and idle[k][0] <= t:
            t = idle[k][1] + rng.randint(0, 2 * MINUTE)
            continue
        if t > hi:
            return
        e: dict[str, Any] = {
            "id": f"{prefix}{next(ids)}",
            "kind": "desktop",
            "time": fmt(t),
            "type": "activity",
            **base,
        }
        if rng.random() < 0.3:
            app, title, url = rng.choice(_APPS)
        if rng.random() < 0.65:
            e["app"] = app
            e["title"] = title
            if url is not None:
                e["url"] = url
        yield e
        t += rng.randint(MINUTE, 5 * MINUTE)
    # A few clients never report a logout (crash, power loss): their sessions stay open.
    if logout <= hi and rng.random() >= 0.02:
        yield {
            "id": f"{prefix}{next(ids)}",
            "kind": "desktop",
            "time": fmt(logout),
            "type": "logout",
            **base,
        }
