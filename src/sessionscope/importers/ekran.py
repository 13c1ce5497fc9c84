"""Import from Ekran System (``POST /ekranapi/sessions``).

Ekran answers per-session totals (``duration``, ``idleTime``, ``productivityTime``), not the
activity they were measured from. Each logged-out session becomes synthesised desktop events
that reproduce its totals under the local project's idle timeout T (set it to the vendor's
before importing):

- ``login`` at ``loginDate``;
- ``activity`` events spaced at most ``min(T, 5 min)`` apart over the first
  ``productivityTime`` (gaps no longer than T are productive);
- one gap of ``idleTime`` (longer than T, so all of it is idle), then ``logout`` at
  ``loginDate + duration`` (Ekran's ``logoutDate``).

So duration, idle and productive times, dates, ids and names come out the same; where the idle
time fell inside the session does not (Ekran does not say): figures of a session clipped by a
window, and per-hour productivity (``getproductivity``), can differ. Sessions still open (no
``logoutDate``) are skipped: their totals are still growing; a later import takes them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sessionscope.importers.driver import ImportFailed, Job, event_id, ms

__all__ = ["PAGE_SIZE", "parse_timespan", "run", "session_events"]

VENDOR = "ekran"
PAGE_SIZE = 1000
#: The longest productive gap written between two synthesised activity events.
MAX_STEP_MS = 5 * 60 * 1000
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?")


def parse_timespan(text: str) -> int:
    """A .NET TimeSpan (``d.hh:mm:ss.fffffff``) in milliseconds."""
    match = _TIMESPAN.fullmatch(str(text).strip())
    if match is None:
        raise ImportFailed(f"{VENDOR}: not a TimeSpan: {str(text)[:40]!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + int(seconds)
    return total * 1000 + int(((fraction or "") + "0000000")[:7]) // 10_000


def _date(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise ImportFailed(f"{VENDOR}: unexpected date {str(text)[:40]!r}") from None


def session_events(item: dict[str, Any], idle_timeout_s: int) -> list[dict[str, Any]]:
    """The synthesised login, activity and logout events of one logged-out session."""
    session = int(item["sessionId"])
    login = ms(_date(item["loginDate"]))
    duration = parse_timespan(item["duration"])
    idle = parse_timespan(item["idleTime"])
    productive = duration - idle
    if productive < 0 or (0 < idle <= idle_timeout_s * 1000):
        raise ImportFailed(
            f"{VENDOR}: session {session} has {item['idleTime']} idle, not reproducible with "
            f"the project's idle timeout of {idle_timeout_s} s (set it to the vendor's: "
            "sessionscope projects set NAME --idle-timeout ...)"
        )
    common: dict[str, Any] = {"kind": "desktop", "session": session, "user_id": item["userId"]}
    for key, name in (
        ("userName", "user_name"),
        ("clientGuid", "client_guid"),
        ("clientName", "client_name"),
    ):
        if item.get(key):
            common[name] = str(item[key])
    step = min(idle_timeout_s * 1000, MAX_STEP_MS)
    steps = -(-productive // step) if productive else 0
    times = [login + productive * i // steps for i in range(1, steps + 1)] if steps else []
    points = [(login, "login")] + [(t, "activity") for t in times]
    points.append((login + duration, "logout"))
    if idle == 0 and len(points) > 2:  # the last activity is the logout itself
        del points[-2]
    return [
        {**common, "id": event_id(VENDOR, session, login, i), "time": t, "type": etype}
        for i, (t, etype) in enumerate(points)
    ]


def _overlaps(item: dict[str, Any], job: Job) -> bool:
    login = _date(item["loginDate"])
    logout = _date(item["logoutDate"])
    return (job.end is None or login <= job.end) and (job.start is None or logout >= job.start)


def run(job: Job) -> None:
    """Import every logged-out session overlapping the job's range (all without one). The
    vendor is asked without a range (a range would clip the totals); pages are stable, ordered
    by login, so a resumed run goes on from the page after the last one stored."""
    page = int(job.state.data.get("page", 0))
    while True:
        answer = job.http.request(
            "POST", "/ekranapi/sessions", json={"sessionCount": PAGE_SIZE, "pageIndex": page}
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("sessions"), list):
            raise ImportFailed(f"{VENDOR}: /ekranapi/sessions answered without sessions")
        items: list[dict[str, Any]] = answer["sessions"]
        if isinstance(answer.get("totalCount"), int):
            job.expect(VENDOR, answer["totalCount"])
        for item in items:
            if item.get("logoutDate") is None:
                job.skipped += 1
            elif _overlaps(item, job):
                job.emit(session_events(item, job.project.idle_timeout_s))
                job.sessions += 1
            job.progress(VENDOR, 1)
        page += 1
        job.checkpoint(page=page)
        if len(items) < PAGE_SIZE:
            break
    job.done()
