"""The native JSON shape of each kind of session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sessionscope.domain.events import format_time
from sessionscope.domain.sessions import ChannelSession, DesktopSession, PlayerSession
from sessionscope.service.sessions import AnySession

__all__ = ["session_to_dict"]


def _t(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


def session_to_dict(s: AnySession, now: datetime | None = None) -> dict[str, Any]:
    """The native JSON shape of a session (times RFC 3339 UTC, durations in ms)."""
    if isinstance(s, PlayerSession):
        m = s.metrics
        return {
            "kind": "player",
            "session": s.session,
            "user": s.user,
            "start": _t(s.start),
            "end": _t(s.end),
            "origin": s.origin,
            "os": s.os,
            "device": s.device,
            "video_type": s.video_type,
            "events": s.events,
            "player_start_ms": m.player_start_ms,
            "video_start_ms": m.video_start_ms,
            "total_start_ms": m.total_start_ms,
            "rebuffering_ms": m.rebuffering_ms,
            "playing_ms": m.playing_ms,
            "rebuffer_ratio": round(m.rebuffer_ratio, 4),
            "errors": m.errors,
            "is_error": m.is_error,
        }
    if isinstance(s, ChannelSession):
        return {
            "kind": "channel",
            "session": s.key,
            "channel": s.channel,
            "start": _t(s.start),
            "end": _t(s.end),
            "live": s.live,
            "duration_ms": s.duration_ms(now or datetime.now(UTC)),
            "recordings": [{"start": _t(r.start), "end": _t(r.end)} for r in s.recordings],
            "errors": len(s.errors),
            "events": len(s.events),
        }
    if isinstance(s, DesktopSession):
        return {
            "kind": "desktop",
            "session": s.session,
            "user_id": s.user_id,
            "user_name": s.user_name,
            "client_guid": s.client_guid,
            "client_name": s.client_name,
            "login": _t(s.login),
            "logout": _t(s.logout),
            "start": _t(s.start),
            "end": _t(s.end),
            "duration_ms": s.duration_ms,
            "idle_ms": s.idle_ms,
            "productive_ms": s.productive_ms,
            "idle_gaps": [{"start": _t(g.start), "end": _t(g.end)} for g in s.gaps],
        }
    return {
        "kind": "endpoint",
        "session": s.session,
        "agent_id": s.agent_id,
        "visited_site": s.visited_site,
        "protocol": s.protocol,
        "port": s.port,
        "source_addr": s.source_addr,
        "org_name": s.org_name,
        "start": _t(s.date),
        "end": _t(s.last),
        "pages": s.number_of_pages,
        "experience_score": s.experience_score,
    }
