"""Import from NAVER Cloud Live Station (``GET /api/v2/events``, signature v2).

Every channel's events are read newest first, 1000 a page (``pageNo``/``pageSize``), over a
range whose end is fixed when the import starts (``endTime``: ``--to``, else that moment), so
pages do not shift while events arrive and a resumed run goes on from the next page. Each
event becomes a ``channel`` event (code, level, description, time, channel), so the publish
periods (channel sessions, ``<channel>@<start ms>``) come out the same.

What cannot carry over: Live Station's event ids, which its answers do not show. The imported
id is made from the event's content (channel, time, code, level, description): two events
identical in all of these, in the same millisecond, are stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from sessionscope.compat.ncp_livestation import signature_v2, string_to_sign
from sessionscope.importers.driver import ImportFailed, Job, event_id, ms

__all__ = ["PAGE_SIZE", "run", "signer"]

VENDOR = "ncp-livestation"
PAGE_SIZE = 1000
EVENTS_PATH = "/api/v2/events"


def signer(access_key: str, secret_key: str) -> Any:
    """Sign a request as API Gateway signature v2 asks: the target exactly as sent."""

    def sign(request: httpx.Request) -> None:
        timestamp = str(int(datetime.now(UTC).timestamp() * 1000))
        message = string_to_sign(request.method, request.url.raw_path, timestamp, access_key)
        request.headers["x-ncp-apigw-timestamp"] = timestamp
        request.headers["x-ncp-iam-access-key"] = access_key
        request.headers["x-ncp-apigw-signature-v2"] = signature_v2(secret_key, message)

    return sign


def channel_event(item: dict[str, Any]) -> dict[str, Any]:
    """One ``content`` entry as a ``channel`` event with an id fixed by its content."""
    channel = str(item["channelId"])
    code = str(item["eventCode"])
    level = str(item.get("logLevel") or "INFO")
    description = str(item.get("description") or "")
    timestamp = int(item["timestamp"])
    event: dict[str, Any] = {
        "id": event_id(VENDOR, channel, timestamp, code, level, description),
        "kind": "channel",
        "time": timestamp,
        "type": code,
        "channel": channel,
        "level": level,
    }
    if description:
        event["description"] = description
    return event


def run(job: Job) -> None:
    """Import every channel event of the job's range, page by page."""
    end = int(job.state.data.get("end_ms") or ms(job.end or datetime.now(UTC)))
    page = int(job.state.data.get("page", 1))
    job.checkpoint(end_ms=end, page=page)
    params = {"pageSize": str(PAGE_SIZE), "endTime": str(end)}
    if job.start is not None:
        params["startTime"] = str(ms(job.start))
    while True:
        answer = job.http.request("GET", EVENTS_PATH, params={**params, "pageNo": str(page)})
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise ImportFailed(f"{VENDOR}: {EVENTS_PATH} answered without content")
        items: list[dict[str, Any]] = answer["content"]
        if isinstance(answer.get("total"), int):
            job.expect(f"{VENDOR} events", answer["total"])
        job.emit([channel_event(item) for item in items])
        job.sessions += len(items)
        job.progress(f"{VENDOR} events", len(items))
        page += 1
        job.checkpoint(page=page)
        if len(items) < PAGE_SIZE:
            break
    job.done()
