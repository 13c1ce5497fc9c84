"""Each kind as the dashboard names it, and what a project without its events is shown: what to
send, an example event and its curl."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["KIND_TITLES", "SEND_HINTS", "example_curl", "example_event"]


KIND_TITLES = {
    "player": "Video players",
    "channel": "Live channels",
    "desktop": "Desktop activity",
    "endpoint": "Web endpoints",
}

#: What to send for a kind, shown while a project has none of its events.
SEND_HINTS = {
    "player": "player events (player_start, startup, playing, rebuffering, error, ...) with "
    "session, user (a uuid), device and video_type",
    "channel": "channel events (PUBLISH_START, PUBLISH_END, ONAIR_START, ONAIR_END, ...) with "
    "channel, level and description",
    "desktop": "desktop events (login, activity, logout) with session, user_id and user_name",
    "endpoint": "endpoint page events with session, agent_id, visited_site, protocol, port, "
    "source_addr, page_id, on_load_ms and response_code",
}


# ------------------------------------------------------------------------------- empty states

_EXAMPLE_USER = "ad5aea06-fb78-41c7-b2ad-716b685e32db"
_EXAMPLE_AGENT = "0f8fad5b-d9cb-469f-a165-70867728950e"


def example_event(kind: str, now: datetime) -> dict[str, Any]:
    """A valid event of ``kind`` that happened at ``now``: sent to a fresh project, it shows
    up in every preset range at once."""
    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    events: dict[str, dict[str, Any]] = {
        "player": {
            "type": "startup",
            "duration_ms": 352,
            "session": "s-1",
            "user": _EXAMPLE_USER,
            "device": "PC",
            "video_type": "VOD",
        },
        "channel": {"type": "PUBLISH_START", "channel": "ch-1", "description": "started"},
        "desktop": {
            "type": "login",
            "session": 1,
            "user_id": 7,
            "user_name": "alice",
            "client_name": "WS-01",
        },
        "endpoint": {
            "type": "page",
            "session": "e-1",
            "agent_id": _EXAMPLE_AGENT,
            "visited_site": "example.com",
            "protocol": "https",
            "port": 443,
            "source_addr": "192.0.2.10",
            "page_id": "p-1",
            "title": "Home",
            "on_load_ms": 850,
            "response_code": 200,
        },
    }
    return {"kind": kind, "time": at, **events[kind]}


def example_curl(kind: str, now: datetime, base_url: str) -> str:
    """A ``curl`` line that sends ``example_event(kind, now)`` to this server."""
    fields = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in example_event(kind, now).items()]
    lines, line = [], ""
    for f in fields:
        if line and len(line) + len(f) > 84:
            lines.append(line + ",")
            line = ""
        line = f"{line},{f}" if line else f
    lines.append(line)
    body = "\n       ".join(lines)
    return (
        "curl -s -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\\n"
        f"  -d '{{{body}}}' \\\n"
        f"  {base_url}/api/v1/events"
    )
