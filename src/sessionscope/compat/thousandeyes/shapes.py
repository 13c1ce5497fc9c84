"""ThousandEyes' shapes of a user session and its pages; its ids and times."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sessionscope.api.context import AppContext
from sessionscope.compat.thousandeyes.constants import _BASE62, _ROUND
from sessionscope.domain.accounts import Project
from sessionscope.domain.network import PrefixTable, with_org_name
from sessionscope.domain.sessions import EndpointPage, EndpointSession
from sessionscope.domain.timerange import (
    floor_time,
    utc_clock,
)

# ------------------------------------------------------------------------------ shapes


def round_id(t: datetime) -> int:
    """Return the round of an instant: epoch seconds of its minute."""
    return int(floor_time(t, _ROUND).timestamp())


def user_session_id(project_id: int, round_: int, session: str) -> str:
    """Return ``<aid, 5 digits>:<roundId>:<8 letters and digits>`` for a session.

    The 8 characters are the first 8 bytes of SHA-256 over ``"<aid>:<session key>"`` written
    in base 62: the same session always has the same id, so the id can be looked up.
    """
    digest = int.from_bytes(hashlib.sha256(f"{project_id}:{session}".encode()).digest()[:8])
    chars = []
    for _ in range(8):
        digest, rest = divmod(digest, 62)
        chars.append(_BASE62[rest])
    return f"{project_id:05d}:{round_}:{''.join(chars)}"


def _clock(t: datetime, sep: str) -> str:
    return utc_clock(t, sep)


def _date(t: datetime) -> str:
    return _clock(t, " ")


def _url_time(t: datetime) -> str:
    return _clock(t, "T")


def _har_time(t: datetime) -> str:
    return f"{_clock(t, 'T')}.{t.microsecond // 1000:03d}Z"


@functools.lru_cache(maxsize=8)
def _prefix_table(items: tuple[tuple[str, str], ...]) -> PrefixTable:
    return PrefixTable.parse(dict(items))


def _session(
    ctx: AppContext, project: Project, s: EndpointSession, committed: datetime
) -> dict[str, Any]:
    s = with_org_name(s, _prefix_table(tuple(sorted(ctx.settings.org_prefixes.items()))))
    rid = round_id(s.date)
    return {
        "agentId": s.agent_id,
        "committed": _date(committed),
        "date": _date(s.date),
        "experienceScore": s.experience_score,
        "numberOfPages": s.number_of_pages,
        "orgName": s.org_name,
        "pageId": s.pages[0].page_id if s.pages else "",
        "permalink": f"{ctx.settings.base_url}/projects/{project.id}/sessions/endpoint/"
        f"{quote(s.session, safe='')}",
        "port": s.port,
        "protocol": s.protocol,
        "roundId": rid,
        "sourceAddr": s.source_addr,
        "userSessionId": user_session_id(project.id, rid, s.session),
        "visitedSite": s.visited_site,
    }


def _page_item(p: EndpointPage) -> dict[str, Any]:
    return {
        "id": p.page_id,
        "title": p.title,
        "startedDateTime": _har_time(p.time),
        "responseCode": p.response_code,
        "pageTimings": {"onContentLoad": p.on_content_load_ms, "onLoad": p.on_load_ms},
    }


def _with_pages(item: dict[str, Any], s: EndpointSession) -> dict[str, Any]:
    """The list entry with the session's pages, keys in the same (alphabetical) order."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "permalink":
            out["pages"] = [_page_item(p) for p in s.pages]
        out[key] = value
    return out
