"""Player sessions: viewers on platforms and networks, start-up, playback, errors."""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessionscope.simulate.common import (
    EVENING_HOURLY,
    HOUR,
    MINUTE,
    SECOND,
    fmt,
    logn,
    public_ipv4,
    random_uuid,
    sample_times,
)
from sessionscope.simulate.config import SimulationConfig

__all__ = ["player_events"]


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
        user=random_uuid(rng),
        os=os_name,
        device=device,
        browser=browser,
        screen=screen,
        ip=public_ipv4(rng),
        isp=isp,
        nation=nation,
        lang=lang,
        origin=rng.choice(_ORIGINS),
    )


def player_events(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    if cfg.players <= 0:
        return
    # Fewer viewers than sessions, and a few heavy viewers: the skewed draw reuses low indexes.
    pool = [_new_viewer(rng) for _ in range(max(1, cfg.players * 3 // 5))]
    starts = sample_times(rng, cfg.players, lo, hi, EVENING_HOURLY)
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
            "time": fmt(t),
            "type": etype,
            **base,
            "video_time": round(vt, 3),
        }
        if duration is not None:
            e["duration_ms"] = duration
        return e

    # player_start: the player is ready (stamped when it is, like every report here).
    ps = logn(rng, 45, 1.0, 2, 3000)
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
        t += logn(rng, 2500, 0.8, 300, 60_000)
    startup = logn(rng, 800, 0.6, 120, 30_000)
    if rng.random() < 0.03:  # slow CDN edge or cold cache: the long tail
        startup *= rng.randint(3, 6)
    t += startup
    if t > hi:
        return
    yield event(t, "startup", startup, 0.0)

    if live:
        watch = logn(rng, 15 * MINUTE, 1.1, 10 * SECOND, 4 * HOUR)
    else:
        watch = logn(rng, 7 * MINUTE, 1.0, 5 * SECOND, 3 * HOUR)
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
            stall = logn(rng, 900, 0.9, 120, 30_000)
            t += stall
            if t > hi:
                return
            yield event(t, "rebuffering", stall, vt)
        elif what == "paused":
            pause = logn(rng, 40 * SECOND, 1.0, 2 * SECOND, 30 * MINUTE)
            t += pause
            if t > hi:
                return
            yield event(t, "paused", pause, vt)
        elif what == "seeking":
            seek = logn(rng, 600, 0.7, 50, 10_000)
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
