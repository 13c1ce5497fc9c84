"""Import from ThousandEyes v6 (``/v6/endpoint-data/user-sessions``).

The list is walked over ``from``/``to`` (the whole history without ``--from``) by following
``pages.next``; each session's detail (``/user-sessions/{userSessionId}``) gives its pages, and
each page becomes one endpoint ``page`` event with the session's agent, site, protocol, port,
source address and organisation. The vendor's ``userSessionId`` is the imported session key.

What cannot carry over: ``userSessionId`` (made from the local account group and session
key), ``permalink`` (the local dashboard) and ``committed`` (when the local store took the
events). ``experienceScore`` is computed again from the pages, with the local project's Apdex
threshold (set it to the vendor's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sessionscope.importers.driver import ImportFailed, Job, event_id

__all__ = ["LIST_PATH", "follow", "run", "session_events"]

VENDOR = "thousandeyes"
LIST_PATH = "/v6/endpoint-data/user-sessions"
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _url_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def session_events(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The page events of one user session's detail (its ``pages``), with fixed ids."""
    session = str(entry["userSessionId"])
    common: dict[str, Any] = {
        "kind": "endpoint",
        "type": "page",
        "session": session,
        "agent_id": str(entry["agentId"]),
        "visited_site": str(entry["visitedSite"]),
        "protocol": str(entry["protocol"]),
        "port": int(entry["port"]),
        "source_addr": str(entry["sourceAddr"]),
    }
    if entry.get("orgName"):
        common["org_name"] = str(entry["orgName"])
    events: list[dict[str, Any]] = []
    for page in entry.get("pages") or []:
        timings = page.get("pageTimings") or {}
        event: dict[str, Any] = {
            **common,
            "id": event_id(VENDOR, session, page["id"], page["startedDateTime"]),
            "time": str(page["startedDateTime"]),
            "page_id": str(page["id"]),
            "response_code": int(page.get("responseCode") or 599),
        }
        if page.get("title"):
            event["title"] = str(page["title"])
        if timings.get("onLoad") is not None:
            event["on_load_ms"] = int(timings["onLoad"])
        if timings.get("onContentLoad") is not None:
            event["on_content_load_ms"] = int(timings["onContentLoad"])
        events.append(event)
    return events


def _first_url(job: Job, aid: str | None) -> str:
    start = job.start or _EARLIEST
    end = job.end or datetime.now(UTC)
    url = f"{LIST_PATH}.json?from={_url_time(start)}&to={_url_time(end)}"
    return url + (f"&aid={quote(aid)}" if aid else "")


def follow(base_url: str, next_url: str | None) -> str | None:
    """The next page's URL, kept on the host the import talks to: ``pages.next`` is built on
    the vendor's public URL, and the credentials go nowhere else (another host, as behind a
    proxy, keeps only its path and query)."""
    if not next_url:
        return None
    parts, base = urlsplit(next_url), urlsplit(base_url)
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        return next_url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def run(job: Job, aid: str | None = None) -> None:
    """Import every user session whose first page is in the job's range, page by page.

    The state keeps the URL of the list page being walked (the vendor's cursor) and the user
    sessions of it already stored, recorded after each one (each costs a request of the
    organisation's budget), so a resumed run asks for that page again and goes on with the
    sessions not stored yet."""
    url: str | None = job.state.data.get("page_url") or _first_url(job, aid)
    done: set[str] = set(job.state.data.get("page_done") or ())
    params = {"aid": aid} if aid else {}
    while url:
        answer = job.http.request("GET", url)
        if not isinstance(answer, dict) or not isinstance(answer.get("userSessions"), list):
            raise ImportFailed(f"{VENDOR}: the list answered without userSessions")
        for item in answer["userSessions"]:
            sid = str(item["userSessionId"])
            if sid in done:
                continue
            detail = job.http.request(
                "GET", f"{LIST_PATH}/{quote(sid, safe='')}.json", params=params, missing_ok=True
            )
            if detail is None:  # gone since the list was read
                job.skipped += 1
            else:
                found = detail.get("userSessions") if isinstance(detail, dict) else None
                if not found:
                    raise ImportFailed(f"{VENDOR}: no detail for user session {sid}")
                job.emit(session_events(found[0]))
                job.sessions += 1
            job.progress(VENDOR, 1)
            done.add(sid)
            job.checkpoint(page_url=url, page_done=sorted(done))
        url = follow(job.http.base_url, (answer.get("pages") or {}).get("next"))
        done = set()
        job.checkpoint(page_url=url, page_done=[])
    job.done()
