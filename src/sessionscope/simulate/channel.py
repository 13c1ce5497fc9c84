"""Live channels: publish periods with their recordings and errors."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

from sessionscope.simulate.common import HOUR, LETTERS, MINUTE, SECOND, fmt, logn
from sessionscope.simulate.config import SimulationConfig

__all__ = ["channel_events"]


def _channel_id(rng: random.Random, created: int) -> str:
    stamp = fmt(created)
    digits = stamp[0:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16] + stamp[17:19]
    return f"ls-{digits}-{''.join(rng.choices(LETTERS, k=5))}"


def channel_events(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-c"
    span = hi - lo
    for index in range(cfg.channels):
        name = f"channel{index:03d}"
        reserve = lo + int(rng.random() * min(30 * MINUTE, span / 10))
        cid = _channel_id(rng, reserve)
        periods: list[tuple[int, int]] = []
        # The first channel is kept live at `end` when the span leaves room for it.
        live_start: int | None = None
        if index == 0 and span >= 20 * MINUTE:
            live_start = hi - int(rng.uniform(2 * MINUTE, min(3 * HOUR, (hi - reserve) / 3)))
        horizon = hi if live_start is None else live_start - MINUTE
        t = reserve + logn(rng, 20 * MINUTE, 1.0, MINUTE, 3 * HOUR)
        while t <= hi:
            length = logn(rng, 90 * MINUTE, 0.8, 5 * MINUTE, 10 * HOUR)
            if live_start is not None and t + length >= horizon:
                break
            periods.append((t, t + length))
            t += length + logn(rng, 3 * HOUR, 0.9, 10 * MINUTE, 24 * HOUR)
        if live_start is not None:
            periods.append((live_start, hi + logn(rng, HOUR, 0.8, 5 * MINUTE, 6 * HOUR)))

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
        "time": fmt(t),
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
        rec_start = start + rng.randint(5 * SECOND, max(5 * SECOND, min(5 * MINUTE, length // 4)))
        rec_end = end - rng.randint(SECOND, 60 * SECOND)
        if rec_end > rec_start:
            out.append(
                (rec_start, "ONAIR_START", f"You have started recording channel {name}.", "INFO")
            )
            out.append((rec_end, "ONAIR_END", f"{name} Channel recording has ended.", "INFO"))
    if rng.random() < 0.5:
        out.append(
            (
                start + rng.randint(10 * SECOND, 90 * SECOND),
                "THUMBNAIL_CREATE",
                f"Thumbnail of channel {name} has been created.",
                "INFO",
            )
        )
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            at = start + rng.randint(MINUTE, max(MINUTE, length - MINUTE))
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
