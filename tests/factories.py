"""Event factories for tests: valid events of each kind, overridable field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
USER = "ad5aea06-fb78-41c7-b2ad-716b685e32db"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def player(
    type: str = "playing", at: datetime = BASE, session: str = "ps-1", **kw: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "player",
        "time": iso(at),
        "type": type,
        "session": session,
        "user": USER,
        "device": "PC",
        "video_type": "VOD",
        "origin": "https://example.com",
        "os": "Mac OS / 10.15.7",
        "video_time": 0,
    }
    event.update(kw)
    return event


def channel(
    type: str = "PUBLISH_START", at: datetime = BASE, channel: str = "ls-1", **kw: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "channel",
        "time": iso(at),
        "type": type,
        "channel": channel,
        "description": f"{type.lower()} on {channel}",
    }
    event.update(kw)
    return event


def desktop(
    type: str = "activity", at: datetime = BASE, session: int = 1, **kw: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "desktop",
        "time": iso(at),
        "type": type,
        "session": session,
        "user_id": 7,
        "user_name": "alice",
        "client_guid": "5d4fe546-8aff-4510-a814-f6a8ee14eff1",
        "client_name": "ws-01",
    }
    event.update(kw)
    return event


def endpoint(
    at: datetime = BASE, session: str = "es-1", page_id: str = "p1", **kw: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "endpoint",
        "time": iso(at),
        "type": "page",
        "session": session,
        "agent_id": "3fde6422-f119-40e1-ae32-d08a1243c038",
        "visited_site": "example.com",
        "protocol": "https",
        "port": 443,
        "source_addr": "84.255.241.1",
        "page_id": page_id,
        "title": "Home",
        "on_content_load_ms": 800,
        "on_load_ms": 1500,
        "response_code": 200,
    }
    event.update(kw)
    return event


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
