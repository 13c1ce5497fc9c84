"""Import from NAVER Cloud Video Player Enhancement (``/v1/sessionRecent``).

``sessionRecent`` answers at most 100 sessions per call, those whose last event falls in
``[startDate, endDate]``, and its entries do not say their video type. So each video type is
walked on its own (``videoType=VOD``, then ``LIVE``), oldest window first, and a window whose
answer is full is split in two until each answer holds fewer than 100 sessions. Each entry's
``sessionLog`` becomes its player events; the detail endpoint (``/v1/sessionRecent/{uuid}``,
a user's latest session) adds the fields only it shows (``isp``, ``browser``, the player, the
media, error codes) to the session it describes.

What cannot carry over: the session id (NAVER shows none; the imported session is
``ncp-vpe-<no>``, so ``no`` differs) and event times finer than a second (``sessionLog``
shows seconds: events of one second are spaced a millisecond apart to keep their order).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sessionscope.importers.driver import ImportFailed, Job, event_id, ms

__all__ = ["VIDEO_TYPES", "run", "session_events"]

VENDOR = "ncp-vpe"
VIDEO_TYPES = ("VOD", "LIVE")
MAX_PER_CALL = 100
#: Player events are never older than 2000: the walk's start without ``--from``.
EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
_DETAIL_USER = {
    "isp": "isp",
    "nation": "nation",
    "address": "address",
    "browser": "browser",
    "ip": "ip",
    "screen": "screen",
    "lang": "lang",
    "visitedPage": "page",
}


def _parse_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise ImportFailed(f"{VENDOR}: unexpected logDate {text!r}") from None


def _result(answer: Any, what: str) -> Any:
    if not isinstance(answer, dict) or "result" not in answer:
        raise ImportFailed(f"{VENDOR}: {what} answered without a result")
    return answer["result"]


def session_events(
    item: dict[str, Any], video_type: str, detail: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The player events of one ``sessionRecent`` entry (and its detail, when it is the user's
    latest session), in the ingest format with deterministic ids."""
    session = f"{VENDOR}-{item['no']}"
    user = str(item["uuid"])
    common: dict[str, Any] = {
        "kind": "player",
        "session": session,
        "user": user,
        "device": str(item.get("device") or ""),
        "video_type": video_type,
    }
    for name in ("origin", "os"):
        if item.get(name):
            common[name] = str(item[name])
    errors: list[dict[str, Any]] = []
    if detail is not None:
        for key, name in _DETAIL_USER.items():
            value = (detail.get("user") or {}).get(key)
            if value:
                common[name] = str(value)
        player = detail.get("player") or {}
        if player.get("playerName"):
            common["player_name"] = str(player["playerName"])
        if player.get("playerVersion"):
            common["player_version"] = str(player["playerVersion"])
        source = (detail.get("media") or {}).get("source")
        if source:
            common["media"] = str(source)
        errors = list(detail.get("error") or [])
    events: list[dict[str, Any]] = []
    last_second: datetime | None = None
    same = 0
    error_index = 0
    for index, entry in enumerate(item.get("sessionLog") or []):
        second = _parse_date(entry["logDate"])
        same = same + 1 if second == last_second else 0
        last_second = second
        event: dict[str, Any] = {
            **common,
            "id": event_id(VENDOR, session, index),
            "time": ms(second) + min(same, 999),
            "type": str(entry["actionType"]),
            "duration_ms": int(entry.get("actionDuration") or 0),
            "video_time": str(entry.get("videoTime") or "00:00:00"),
        }
        if event["type"] == "error" and error_index < len(errors):
            found = errors[error_index]
            error_index += 1
            if found.get("errorCode"):
                event["error_code"] = str(found["errorCode"])
            if found.get("errorMessage"):
                event["error_message"] = str(found["errorMessage"])
        events.append(event)
    return events


class _Walk:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.details: dict[str, dict[str, Any] | None] = {}

    def page(self, video_type: str, start: int, end: int) -> list[dict[str, Any]]:
        answer = self.job.http.request(
            "GET",
            "/v1/sessionRecent",
            params={
                "videoType": video_type,
                "startDate": str(start),
                "endDate": str(end),
                "limit": str(MAX_PER_CALL),
            },
        )
        result = _result(answer, "sessionRecent")
        if not isinstance(result, list):
            raise ImportFailed(f"{VENDOR}: sessionRecent's result is not a list")
        return result

    def detail(self, uuid: str) -> dict[str, Any] | None:
        """The user's latest session in detail (asked once per user and run)."""
        if uuid not in self.details:
            answer = self.job.http.request("GET", f"/v1/sessionRecent/{uuid}", missing_ok=True)
            found = None if answer is None else _result(answer, "sessionRecent/{uuid}")
            self.details[uuid] = found if isinstance(found, dict) else None
        return self.details[uuid]

    def store(self, items: list[dict[str, Any]], video_type: str) -> None:
        for item in items:
            detail = self.detail(str(item["uuid"]))
            latest = detail is not None and detail.get("sessionLog") == item.get("sessionLog")
            self.job.emit(session_events(item, video_type, detail if latest else None))
            self.job.sessions += 1
            self.job.progress(f"{VENDOR} {video_type}", 1)

    def walk(self, video_type: str, start: int, end: int) -> None:
        """Every session of ``[start, end]`` (epoch ms, both included), oldest window first;
        after each window, record that everything up to its end is stored."""
        pending = [(start, end)]
        while pending:
            lo, hi = pending.pop()
            items = self.page(video_type, lo, hi)
            if len(items) >= MAX_PER_CALL and hi > lo:
                middle = lo + (hi - lo) // 2
                pending.append((middle + 1, hi))
                pending.append((lo, middle))  # popped first: oldest first
                continue
            if len(items) >= MAX_PER_CALL:  # cannot split a millisecond: more may exist
                self.job.notes.append(
                    f"{MAX_PER_CALL} {video_type} sessions end at {lo} ms: any more ending "
                    "then could not be listed"
                )
            self.store(items, video_type)
            done = dict(self.job.state.data.get("done_until", {}))
            done[video_type] = hi + 1
            self.job.checkpoint(done_until=done)


def run(job: Job) -> None:
    """Import every player session whose last event is in the job's range."""
    start = ms(job.start or EPOCH_2000)
    end = ms(job.end or datetime.now(UTC))
    walk = _Walk(job)
    for video_type in VIDEO_TYPES:
        resumed = int(job.state.data.get("done_until", {}).get(video_type, start))
        if resumed <= end:
            walk.walk(video_type, max(start, resumed), end)
    job.done()
