"""Realistic synthetic traffic for all four event kinds, seeded and pure.

:func:`simulate` yields JSON-ready event objects in exactly the input shape that
:func:`~sessionscope.domain.events.validate_batch` accepts, grouped by session (player sessions,
channels, desktop sessions, endpoint sessions), for the span ``[start, end]`` of a
:class:`SimulationConfig`. Nothing here does I/O: the CLI posts or stores what it yields.

Determinism: every kind draws from its own ``random.Random`` seeded from the config's seed and
the kind's name, so the same config always gives the same events, and leaving a kind out does
not change the others. Event ids are ``sim-<seed>-<kind letter><counter>``.

Times are handled as integer epoch milliseconds and formatted by hand (RFC 3339, UTC,
milliseconds), which keeps generation at well over 100,000 events a second. Sessions that would
run past ``end`` simply stop there: nothing is ever stamped after ``end`` or before ``start``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sessionscope.domain.events import KINDS

__all__ = ["SimulationConfig", "simulate", "simulate_batches"]

_SECOND = 1_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)
_INT32_MAX = 2_147_483_647
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """What to simulate: the span (aware datetimes), the seed and how many of each entity.

    ``players`` is the number of player sessions over the span; ``channels`` the number of live
    channels; ``desktop_users`` users with one session per working day (at least one each);
    ``endpoint_agents`` agents with about ten user sessions a day each (at least two each).
    """

    seed: int = 42
    start: datetime
    end: datetime
    players: int = 200
    channels: int = 3
    desktop_users: int = 20
    endpoint_agents: int = 10
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        for name in ("players", "channels", "desktop_users", "endpoint_agents"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; expected some of {', '.join(KINDS)}")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds must not repeat")


def simulate(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    """Yield event dicts for the configured span, grouped by session, deterministic for a seed."""
    # Ceil the start and floor the end so every millisecond stamp lies inside [start, end].
    lo = -((_EPOCH - config.start) // _ONE_MS)
    hi = (config.end - _EPOCH) // _ONE_MS
    for kind in config.kinds:
        rng = random.Random(f"sessionscope.simulate:{config.seed}:{kind}")
        yield from _GENERATORS[kind](config, rng, lo, hi)


def simulate_batches(
    config: SimulationConfig, batch_size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Yield the events of :func:`simulate` in lists of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    events = simulate(config)
    while batch := list(itertools.islice(events, batch_size)):
        yield batch


# --------------------------------------------------------------------------------------------
# shared helpers


@functools.lru_cache(maxsize=8192)
def _day_text(day: int) -> str:
    return (_EPOCH_DATE + timedelta(days=day)).isoformat()


def _fmt(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with milliseconds (cheaply)."""
    day, rem = divmod(ms, _DAY)
    h, rem = divmod(rem, _HOUR)
    m, rem = divmod(rem, _MINUTE)
    s, milli = divmod(rem, _SECOND)
    return f"{_day_text(day)}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def _logn(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    """Draw a log-normal integer with the given median, clamped to ``[lo, hi]``."""
    value = rng.lognormvariate(math.log(median), sigma)
    return int(min(hi, max(lo, value)))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _public_ipv4(rng: random.Random) -> str:
    # First octets of public unicast ranges only (no private, CGNAT, loopback or multicast).
    first = rng.choice(_PUBLIC_FIRST_OCTETS)
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _sample_times(
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
        if rng.random() * top < hourly[(t // _HOUR) % 24]:
            out.append(t)
    out.sort()
    return out


_PUBLIC_FIRST_OCTETS = (1, 14, 27, 39, 49, 58, 59, 61, 73, 98, 110, 121, 125, 175, 211, 218, 222)
# Relative traffic per UTC hour.
_EVENING_HOURLY = (3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 7, 8, 9, 10, 10, 10, 9, 7, 5)
_WORK_HOURLY = (1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 4, 3, 2, 2, 1, 1)


# --------------------------------------------------------------------------------------------
# player


@dataclass(frozen=True, slots=True)
class _Viewer:
    user: str
    os: str
    device: str
    browser: str
    screen: str
    ip: str
    isp: str
    nation: str
    lang: str
    origin: str


# (os, device, browser, screen), weight
_PLATFORMS: tuple[tuple[tuple[str, str, str, str], int], ...] = (
    (("Windows / 10", "PC", "Chrome / 127.0.0.0", "1920x1080"), 26),
    (("Windows / 10", "PC", "Edge / 126.0.0.0", "1536x864"), 9),
    (("Mac OS / 10.15.7", "PC", "Chrome / 126.0.0.0", "1728x1117"), 12),
    (("Mac OS / 10.15.7", "PC", "Safari / 17.5", "1440x900"), 6),
    (("Linux / x86_64", "PC", "Firefox / 128.0", "1920x1080"), 2),
    (("Android / 14", "Mobile", "Samsung Internet / 25.0", "412x915"), 14),
    (("Android / 13", "Mobile", "Chrome / 126.0.0.0", "393x873"), 9),
    (("iOS / 17.5", "Mobile", "Safari / 17.5", "390x844"), 16),
    (("iOS / 16.7", "Mobile", "Safari / 16.6", "375x812"), 6),
)
_PLATFORM_VALUES = tuple(p for p, _ in _PLATFORMS)
_PLATFORM_CUM = tuple(itertools.accumulate(w for _, w in _PLATFORMS))
# (isp, nation, lang), weight
_NETWORKS: tuple[tuple[tuple[str, str, str], int], ...] = (
    (("KT", "KR", "ko-KR"), 22),
    (("SK Broadband", "KR", "ko-KR"), 18),
    (("LG U+", "KR", "ko-KR"), 14),
    (("Comcast", "US", "en-US"), 8),
    (("NTT", "JP", "ja-JP"), 6),
    (("Deutsche Telekom", "DE", "de-DE"), 3),
)
_NETWORK_VALUES = tuple(n for n, _ in _NETWORKS)
_NETWORK_CUM = tuple(itertools.accumulate(w for _, w in _NETWORKS))
_ORIGINS = (
    "https://mediaplus-demo.web.app",
    "https://www.example-tv.com",
    "https://m.example-tv.com",
    "https://learn.example.edu",
)
# Each site ships one build of the player. The fields below are derived from values already
# drawn (site, IP address, time), never drawn themselves, so each seed keeps its random stream.
_PLAYER_BUILDS = {
    "https://mediaplus-demo.web.app": ("ncplayer", "1.6.2"),
    "https://www.example-tv.com": ("ncplayer", "1.5.8"),
    "https://m.example-tv.com": ("ncplayer", "1.5.8"),
    "https://learn.example.edu": ("ncplayer", "1.4.11"),
}
_CITIES = {
    "KR": ("Seoul", "Busan", "Incheon", "Daegu", "Seongnam"),
    "US": ("New York", "Los Angeles", "Chicago", "Seattle"),
    "JP": ("Tokyo", "Osaka", "Nagoya"),
    "DE": ("Berlin", "Munich", "Hamburg"),
}
# VPE player error codes: before the first frame, and during playback.
_START_ERRORS = (
    ("E0004", "Video playback impossible: the source could not be played"),
    ("E0002", "Not authorized: player authentication failed"),
    ("E0003", "Network error: the source could not be reached"),
)
_PLAYBACK_ERRORS = (
    ("E0003", "Network error: the connection was lost"),
    ("E0004", "Video playback impossible: a segment could not be decoded"),
)


def _address(nation: str, ip: str) -> str:
    cities = _CITIES.get(nation, ("",))
    city = cities[int(ip.rsplit(".", 1)[-1]) % len(cities)]
    return f"{city}, {nation}" if city else nation


def _error_fields(errors: tuple[tuple[str, str], ...], t: int) -> dict[str, str]:
    code, message = errors[t % len(errors)]
    return {"error_code": code, "error_message": message}


def _new_viewer(rng: random.Random) -> _Viewer:
    os_name, device, browser, screen = rng.choices(_PLATFORM_VALUES, cum_weights=_PLATFORM_CUM)[0]
    isp, nation, lang = rng.choices(_NETWORK_VALUES, cum_weights=_NETWORK_CUM)[0]
    return _Viewer(
        user=_uuid(rng),
        os=os_name,
        device=device,
        browser=browser,
        screen=screen,
        ip=_public_ipv4(rng),
        isp=isp,
        nation=nation,
        lang=lang,
        origin=rng.choice(_ORIGINS),
    )


def _players(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    if cfg.players <= 0:
        return
    # Fewer viewers than sessions, and a few heavy viewers: the skewed draw reuses low indexes.
    pool = [_new_viewer(rng) for _ in range(max(1, cfg.players * 3 // 5))]
    starts = _sample_times(rng, cfg.players, lo, hi, _EVENING_HOURLY)
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-p"
    for number, t0 in enumerate(starts, 1):
        viewer = pool[int(len(pool) * rng.random() ** 1.6)]
        yield from _player_session(
            rng, _session_uuid(cfg.seed, number), viewer, t0, hi, ids, prefix
        )


def _session_uuid(seed: int, number: int) -> str:
    """A player's session id: a random-looking UUID, as real players send (so that, as in
    production, sessions that start together are not neighbours in id order), fixed by the
    seed and the session's number without drawing from the generator."""
    digest = hashlib.blake2b(f"ps-{seed}-{number}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _player_session(
    rng: random.Random,
    sid: str,
    viewer: _Viewer,
    t0: int,
    hi: int,
    ids: Iterator[int],
    prefix: str,
) -> Iterator[dict[str, Any]]:
    live = rng.random() < 0.35
    origin = viewer.origin if rng.random() < 0.8 else rng.choice(_ORIGINS)
    media_id = rng.randint(1000, 99999)
    base: dict[str, Any] = {
        "session": sid,
        "user": viewer.user,
        "origin": origin,
        "os": viewer.os,
        "device": viewer.device,
        "video_type": "LIVE" if live else "VOD",
    }
    path = f"live/ch{media_id % 16:03d}" if live else f"watch/{media_id}"
    media = (
        f"https://cdn.example-tv.com/live/ch{media_id % 16:03d}/playlist.m3u8"
        if live
        else f"https://cdn.example-tv.com/vod/{media_id}/index.m3u8"
    )

    def event(t: int, etype: str, duration: int | None, vt: float) -> dict[str, Any]:
        e: dict[str, Any] = {
            "id": f"{prefix}{next(ids)}",
            "kind": "player",
            "time": _fmt(t),
            "type": etype,
            **base,
            "video_time": round(vt, 3),
        }
        if duration is not None:
            e["duration_ms"] = duration
        return e

    # player_start: the player is ready (stamped when it is, like every report here).
    ps = _logn(rng, 45, 1.0, 2, 3000)
    t = t0 + ps
    if t > hi:
        return
    first = event(t, "player_start", ps, 0.0)
    player_name, player_version = _PLAYER_BUILDS[origin]
    first.update(
        browser=viewer.browser,
        ip=viewer.ip,
        screen=viewer.screen,
        lang=viewer.lang,
        page=f"{origin}/{path}",
        isp=viewer.isp,
        nation=viewer.nation,
        media=media,
        address=_address(viewer.nation, viewer.ip),
        player_name=player_name,
        player_version=player_version,
    )
    yield first

    fate = rng.random()
    failed = fate < 0.03
    abandoned = 0.03 <= fate < 0.13  # closes the tab: no `ended`
    if failed and rng.random() < 0.3:  # fails before the first frame
        t += rng.randint(500, 8000)
        if t <= hi:
            yield {**event(t, "error", None, 0.0), **_error_fields(_START_ERRORS, t)}
        return

    # startup: from the play attempt (autoplay, or a click a few seconds later) to first frame.
    if rng.random() >= 0.6:
        t += _logn(rng, 2500, 0.8, 300, 60_000)
    startup = _logn(rng, 800, 0.6, 120, 30_000)
    if rng.random() < 0.03:  # slow CDN edge or cold cache: the long tail
        startup *= rng.randint(3, 6)
    t += startup
    if t > hi:
        return
    yield event(t, "startup", startup, 0.0)

    if live:
        watch = _logn(rng, 15 * _MINUTE, 1.1, 10 * _SECOND, 4 * _HOUR)
    else:
        watch = _logn(rng, 7 * _MINUTE, 1.0, 5 * _SECOND, 3 * _HOUR)
    interrupts: list[tuple[int, str]] = []
    if rng.random() < (0.2 if viewer.device == "Mobile" else 0.12):
        stalls = 1 + int(rng.expovariate(0.8))
        interrupts += [(rng.randrange(watch), "rebuffering") for _ in range(stalls)]
    if rng.random() < 0.2:
        interrupts += [(rng.randrange(watch), "paused") for _ in range(rng.randint(1, 2))]
    if rng.random() < (0.05 if live else 0.25):
        interrupts += [(rng.randrange(watch), "seeking") for _ in range(rng.randint(1, 3))]
    if failed:
        interrupts.append((rng.randrange(watch), "error"))
    interrupts.sort()
    interrupts.append((watch, "end"))

    pos = 0  # playback milliseconds
    vt = 0.0  # video time in seconds
    since = 0  # playback since the last `playing` report
    period = 60_000 + rng.randint(-40, 90)
    for at, what in interrupts:
        # `playing` is reported every 60 s of playback...
        while pos + period - since <= at:
            step = period - since
            t += step
            pos += step
            vt += step / 1000
            if t > hi:
                return
            yield event(t, "playing", period, vt)
            since = 0
            period = 60_000 + rng.randint(-40, 90)
        step = at - pos
        t += step
        pos = at
        vt += step / 1000
        since += step
        if t > hi:
            return
        # ...and whenever another event occurs.
        if since > 0:
            yield event(t, "playing", since, vt)
            since = 0
            period = 60_000 + rng.randint(-40, 90)
        if what == "rebuffering":
            stall = _logn(rng, 900, 0.9, 120, 30_000)
            t += stall
            if t > hi:
                return
            yield event(t, "rebuffering", stall, vt)
        elif what == "paused":
            pause = _logn(rng, 40 * _SECOND, 1.0, 2 * _SECOND, 30 * _MINUTE)
            t += pause
            if t > hi:
                return
            yield event(t, "paused", pause, vt)
        elif what == "seeking":
            seek = _logn(rng, 600, 0.7, 50, 10_000)
            t += seek
            vt = max(0.0, vt + rng.uniform(-60.0, 240.0))
            if t > hi:
                return
            yield event(t, "seeking", seek, vt)
        elif what == "error":
            t += rng.randint(0, 2000)
            if t <= hi:
                yield {**event(t, "error", None, vt), **_error_fields(_PLAYBACK_ERRORS, t)}
            return
        elif not abandoned:
            t += rng.randint(20, 400)
            if t <= hi:
                yield event(t, "ended", None, vt)


# --------------------------------------------------------------------------------------------
# channel


def _channel_id(rng: random.Random, created: int) -> str:
    stamp = _fmt(created)
    digits = stamp[0:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16] + stamp[17:19]
    return f"ls-{digits}-{''.join(rng.choices(_LETTERS, k=5))}"


def _channels(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-c"
    span = hi - lo
    for index in range(cfg.channels):
        name = f"channel{index:03d}"
        reserve = lo + int(rng.random() * min(30 * _MINUTE, span / 10))
        cid = _channel_id(rng, reserve)
        periods: list[tuple[int, int]] = []
        # The first channel is kept live at `end` when the span leaves room for it.
        live_start: int | None = None
        if index == 0 and span >= 20 * _MINUTE:
            live_start = hi - int(rng.uniform(2 * _MINUTE, min(3 * _HOUR, (hi - reserve) / 3)))
        horizon = hi if live_start is None else live_start - _MINUTE
        t = reserve + _logn(rng, 20 * _MINUTE, 1.0, _MINUTE, 3 * _HOUR)
        while t <= hi:
            length = _logn(rng, 90 * _MINUTE, 0.8, 5 * _MINUTE, 10 * _HOUR)
            if live_start is not None and t + length >= horizon:
                break
            periods.append((t, t + length))
            t += length + _logn(rng, 3 * _HOUR, 0.9, 10 * _MINUTE, 24 * _HOUR)
        if live_start is not None:
            periods.append((live_start, hi + _logn(rng, _HOUR, 0.8, 5 * _MINUTE, 6 * _HOUR)))

        reserved = f"{name} channel has been reserved."
        yield _channel_event(
            f"{prefix}{next(ids)}", reserve, "STREAM_RESERVE", cid, reserved, "INFO"
        )
        for a, b in periods:
            for at, etype, desc, level in _publish_period(rng, name, a, b):
                if at > hi:  # still publishing at `end`
                    break
                yield _channel_event(f"{prefix}{next(ids)}", at, etype, cid, desc, level)


def _channel_event(eid: str, t: int, etype: str, cid: str, desc: str, level: str) -> dict[str, Any]:
    return {
        "id": eid,
        "kind": "channel",
        "time": _fmt(t),
        "type": etype,
        "channel": cid,
        "level": level,
        "description": desc,
    }


def _publish_period(
    rng: random.Random, name: str, start: int, end: int
) -> list[tuple[int, str, str, str]]:
    """Return one publish period's events, oldest first (the caller cuts them at `end`)."""
    length = end - start
    out: list[tuple[int, str, str, str]] = [
        (start, "PUBLISH_START", f"You have started publishing channel {name}.", "INFO"),
        (
            start + rng.randint(200, 3000),
            "RTMP_MAIN_STREAM_ENABLED",
            f"{name} channel main stream has been enabled.",
            "INFO",
        ),
    ]
    if rng.random() < 0.6:
        rec_start = start + rng.randint(
            5 * _SECOND, max(5 * _SECOND, min(5 * _MINUTE, length // 4))
        )
        rec_end = end - rng.randint(_SECOND, 60 * _SECOND)
        if rec_end > rec_start:
            out.append(
                (rec_start, "ONAIR_START", f"You have started recording channel {name}.", "INFO")
            )
            out.append((rec_end, "ONAIR_END", f"{name} Channel recording has ended.", "INFO"))
    if rng.random() < 0.5:
        out.append(
            (
                start + rng.randint(10 * _SECOND, 90 * _SECOND),
                "THUMBNAIL_CREATE",
                f"Thumbnail of channel {name} has been created.",
                "INFO",
            )
        )
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            at = start + rng.randint(_MINUTE, max(_MINUTE, length - _MINUTE))
            if rng.random() < 0.5:
                out.append(
                    (
                        at,
                        "PUBLISH_OVER_THRESHOLD",
                        f"{name} channel input bitrate exceeded the threshold.",
                        "ERROR",
                    )
                )
            else:
                out.append(
                    (
                        at,
                        "RTMP_MAIN_STREAM_DISCONNECTED",
                        f"{name} channel main stream has been disconnected.",
                        "ERROR",
                    )
                )
                if rng.random() < 0.5:
                    out.append(
                        (
                            at + rng.randint(500, 5000),
                            "RTMP_BACKUP_STREAM_ENABLED",
                            f"{name} channel backup stream has been enabled.",
                            "INFO",
                        )
                    )
    out.append((end, "PUBLISH_END", f"{name} channel publishing has ended.", "INFO"))
    # Inner events never pass PUBLISH_END (a disconnect near the end is folded into it).
    out = [item if item[0] <= end else (end, *item[1:]) for item in out]
    out.sort(key=lambda item: (item[0], item[1] == "PUBLISH_END"))
    return out


# --------------------------------------------------------------------------------------------
# desktop

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
        clients = [(_uuid(rng), f"WS-{dept}-{rng.randint(1, 250):03d}")]
        if rng.random() < 0.3:
            laptop = "".join(rng.choices(_ALNUM[:26] + _ALNUM[52:], k=7))
            clients.append((_uuid(rng), f"LAPTOP-{laptop}"))
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


def _desktop(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-d"
    used: set[int] = set()
    for user in _desktop_users(rng, cfg.desktop_users):
        logins: list[int] = []
        first_day = (lo + user.tz * _HOUR) // _DAY
        last_day = (hi + user.tz * _HOUR) // _DAY
        for day in range(first_day, last_day + 1):
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
            if rng.random() >= (0.93 if weekday < 5 else 0.05):
                continue
            hour = user.shift_hour + rng.gauss(0.0, 0.3)
            login = day * _DAY - user.tz * _HOUR + int(hour * _HOUR)
            if lo <= login <= hi:
                logins.append(login)
        if not logins:  # every user has at least one session, even in a short or odd span
            logins.append(lo + int(rng.random() * max(1, (hi - lo) * 0.8)))
        for login in logins:
            number = rng.randint(1, _INT32_MAX)
            while number in used:
                number = rng.randint(1, _INT32_MAX)
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
    length = int(min(11.0, max(3.0, user.length_hours + rng.gauss(0.0, 0.5))) * _HOUR)
    logout = login + length
    # Idle periods (no input at all): lunch in most sessions, meetings in many.
    idle: list[tuple[int, int]] = []
    if rng.random() < 0.75:
        a = login + int(rng.uniform(3.5, 4.5) * _HOUR)
        idle.append((a, a + rng.randint(25 * _MINUTE, 70 * _MINUTE)))
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        a = login + rng.randint(30 * _MINUTE, max(30 * _MINUTE, length - 90 * _MINUTE))
        idle.append((a, a + rng.randint(20 * _MINUTE, 75 * _MINUTE)))
    idle.sort()

    t = login
    yield {
        "id": f"{prefix}{next(ids)}",
        "kind": "desktop",
        "time": _fmt(t),
        "type": "login",
        **base,
    }
    app, title, url = rng.choice(_APPS)
    k = 0
    t += rng.randint(30 * _SECOND, 5 * _MINUTE)
    while t < logout:
        while k < len(idle) and idle[k][1] <= t:
            k += 1
        if k < len(idle) and idle[k][0] <= t:
            t = idle[k][1] + rng.randint(0, 2 * _MINUTE)
            continue
        if t > hi:
            return
        e: dict[str, Any] = {
            "id": f"{prefix}{next(ids)}",
            "kind": "desktop",
            "time": _fmt(t),
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
        t += rng.randint(_MINUTE, 5 * _MINUTE)
    # A few clients never report a logout (crash, power loss): their sessions stay open.
    if logout <= hi and rng.random() >= 0.02:
        yield {
            "id": f"{prefix}{next(ids)}",
            "kind": "desktop",
            "time": _fmt(logout),
            "type": "logout",
            **base,
        }


# --------------------------------------------------------------------------------------------
# endpoint

# (site, protocol, page titles)
_SITES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("www.thousandeyes.com", "https", ("ThousandEyes", "Product", "Pricing", "Blog")),
    ("thousandeyes.com", "https", ("ThousandEyes", "Resources")),
    ("mail.example.com", "https", ("Inbox", "Compose", "Sent", "Calendar")),
    ("example.my.salesforce.com", "https", ("Home", "Accounts", "Opportunities", "Reports")),
    ("outlook.office365.com", "https", ("Mail - Outlook", "Calendar - Outlook")),
    ("github.com", "https", ("GitHub", "Pull requests", "Issues", "Actions")),
    ("portal.azure.com", "https", ("Home - Microsoft Azure", "Resource groups")),
    ("jira.example.com", "https", ("Board", "Backlog", "Issue", "Dashboard")),
    ("intranet.example.com", "http", ("Intranet", "Directory", "HR forms", "News")),
    ("wiki.corp.example", "http", ("Wiki", "Runbooks", "Onboarding")),
)
_ORG_NAMES = (
    "T-2 Access Network",
    "Comcast Cable Communications, LLC",
    "Korea Telecom",
    "SK Broadband Co Ltd",
    "Deutsche Telekom AG",
    "NTT Communications Corporation",
    "",
)


@dataclass(frozen=True, slots=True)
class _Agent:
    agent_id: str
    source_addr: str
    org_name: str


def _response_code(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.90:
        return 200
    if r < 0.94:
        return rng.choice((301, 302, 304))
    if r < 0.98:
        return rng.choice((403, 404, 404, 429))
    return rng.choice((500, 502, 503))


def _endpoint(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-e"
    numbers = itertools.count(1)
    days = (hi - lo) / _DAY
    for _ in range(cfg.endpoint_agents):
        org = rng.choice(_ORG_NAMES) if rng.random() < 0.8 else ""
        agent = _Agent(_uuid(rng), _public_ipv4(rng), org)
        count = max(2, round(days * rng.uniform(6.0, 14.0)))
        for t0 in _sample_times(rng, count, lo, hi, _WORK_HOURLY):
            key = f"es-{cfg.seed}-{next(numbers)}"
            yield from _endpoint_session(rng, agent, key, t0, hi, ids, prefix)


def _endpoint_session(
    rng: random.Random,
    agent: _Agent,
    key: str,
    t0: int,
    hi: int,
    ids: Iterator[int],
    prefix: str,
) -> Iterator[dict[str, Any]]:
    site, protocol, titles = rng.choice(_SITES)
    base: dict[str, Any] = {
        "session": key,
        "agent_id": agent.agent_id,
        "visited_site": site,
        "protocol": protocol,
        "port": 443 if protocol == "https" else 80,
        "source_addr": agent.source_addr,
        "org_name": agent.org_name,
    }
    pages = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 8))
    seen: set[str] = set()
    t = t0
    for _ in range(pages):
        if t > hi:
            return
        page_id = "".join(rng.choices(_ALNUM, k=8))
        while page_id in seen:
            page_id = "".join(rng.choices(_ALNUM, k=8))
        seen.add(page_id)
        on_load = _logn(rng, 1500, 0.75, 120, 120_000)
        on_content = int(on_load * rng.uniform(0.45, 0.95))
        yield {
            "id": f"{prefix}{next(ids)}",
            "kind": "endpoint",
            "time": _fmt(t),
            "type": "page",
            "duration_ms": on_load,
            **base,
            "page_id": page_id,
            "title": rng.choice(titles),
            "on_content_load_ms": on_content,
            "on_load_ms": on_load,
            "response_code": _response_code(rng),
        }
        t += on_load + _logn(rng, 40 * _SECOND, 1.0, 2 * _SECOND, 20 * _MINUTE)


_GENERATORS: dict[
    str, Callable[[SimulationConfig, random.Random, int, int], Iterator[dict[str, Any]]]
] = {
    "player": _players,
    "channel": _channels,
    "desktop": _desktop,
    "endpoint": _endpoint,
}
