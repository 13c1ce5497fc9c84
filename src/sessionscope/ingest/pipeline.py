"""Request bytes -> validated events -> the ingest journal, as named steps.

Each step either returns its output or raises :class:`IngestError` with the HTTP status and the
problems found; nothing reaches the store unless every step passed for the whole batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import orjson
from anyio import to_thread

from sessionscope.domain.events import (
    BatchSyntaxError,
    Event,
    Problem,
    decode_batch,
    validate_batch,
)
from sessionscope.ingest.ingestor import Ingestor, Overloaded, StoreUnavailable
from sessionscope.ingest.journal import DiskFull, JournalError
from sessionscope.ingest.records import Batch

__all__ = [
    "IngestError",
    "IngestResult",
    "Translate",
    "decode_body",
    "decode_events",
    "ingest_async",
    "is_gzip",
    "is_ndjson",
    "parse_events",
    "parse_objects",
    "validate",
]


class IngestError(Exception):
    """A batch was refused: ``status`` is the HTTP status, ``problems`` what was wrong."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: Sequence[Problem] = (),
        retry_after_s: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = list(problems)
        #: For a 503: when to try again (the ``Retry-After`` header).
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicates": self.duplicates}


_GZIP = ("gzip", "x-gzip")


def is_gzip(content_encoding: str | None) -> bool:
    """Whether ``Content-Encoding`` says gzip."""
    return (content_encoding or "").strip().lower() in _GZIP


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Step 1: undo ``Content-Encoding`` (identity or gzip), refusing more than ``max_bytes``."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_bytes:
            raise IngestError(413, "too_large", f"body is larger than {max_bytes} bytes")
        return body
    if encoding not in _GZIP:
        raise IngestError(415, "unsupported_encoding", "Content-Encoding must be gzip or identity")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise IngestError(400, "bad_gzip", "body is not valid gzip data") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise IngestError(413, "too_large", f"decoded body is larger than {max_bytes} bytes")
    if not inflater.eof:
        raise IngestError(400, "bad_gzip", "gzip data is truncated")
    return out


_NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def decode_events(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
    translate: Translate | None = None,
) -> list[Event]:
    """Steps 1 to 3 for one body: undo its encoding, decode it (with ``translate`` between
    parsing and validation, for a receiver of another vendor's payload) and validate it.
    Raises :class:`IngestError`."""
    data = decode_body(body, content_encoding, max_bytes)
    if translate is None:
        return parse_events(data, content_type)
    return validate(translate(parse_objects(data, content_type)))


def parse_events(data: bytes, content_type: str | None, now: datetime | None = None) -> list[Event]:
    """Steps 2 and 3: decode a JSON array, one JSON object, or NDJSON, and validate every event.

    Refuses the whole batch on any problem (all of them listed).
    """
    try:
        events, problems = decode_batch(data, ndjson=is_ndjson(content_type), now=now)
    except BatchSyntaxError as exc:
        raise IngestError(400, "invalid_json", exc.message, exc.problems) from None
    _refuse_problems(problems)
    if not events:
        raise IngestError(400, "empty_batch", "the batch holds no events")
    return events


def parse_objects(data: bytes, content_type: str | None) -> list[Any]:
    """Parse a JSON array, one JSON object, or NDJSON into a list of objects (not validated).

    For receivers that translate another vendor's payload into events before validating them.
    """
    if is_ndjson(content_type):
        items: list[Any] = []
        problems: list[Problem] = []
        for lineno, line in enumerate(data.split(b"\n")):
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                problems.append(
                    Problem(len(items) + len(problems), "", f"line {lineno + 1}: {exc}")
                )
        if problems:
            raise IngestError(400, "invalid_json", "body is not valid NDJSON", problems)
        return items
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IngestError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise IngestError(400, "invalid_json", "body must be a JSON object, a JSON array or NDJSON")


def validate(items: Sequence[Any], now: datetime | None = None) -> list[Event]:
    """Validate event objects; refuse the whole batch on any problem."""
    if not items:
        raise IngestError(400, "empty_batch", "the batch holds no events")
    events, problems = validate_batch(items, now=now)
    _refuse_problems(problems)
    return events


def is_ndjson(content_type: str | None) -> bool:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    return media in _NDJSON


def _refuse_problems(problems: Sequence[Problem]) -> None:
    """Refuse the whole batch when any event has a problem, listing every one."""
    if problems:
        raise IngestError(
            400,
            "invalid_events",
            f"{len(problems)} problem(s) in the batch; nothing was stored",
            problems,
        )


#: Bodies up to this size are decoded on the event loop (it takes less than handing them to a
#: thread); larger ones in a worker thread.
INLINE_BODY_BYTES = 64 * 1024


#: A receiver's step between parsing and validation: another vendor's objects -> event objects
#: (it raises its own error for what it cannot translate).
Translate = Callable[[list[Any]], list[Any]]


async def ingest_async(
    ingestor: Ingestor,
    project_id: int,
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
    translate: Translate | None = None,
) -> IngestResult:
    """Run every step; return what was accepted once it is durably journaled. Every write
    path over HTTP comes here: native ingest, and receivers of other vendors' payloads with
    their ``translate`` step.

    For the event loop: a small body is decoded in place, a large one in a worker thread,
    and the journal is awaited without holding a thread."""
    try:
        return await _ingest_async(
            ingestor, project_id, body, content_type, content_encoding, max_bytes, translate
        )
    except IngestError as exc:
        if exc.status != 503:  # journal refusals are counted where they are raised
            ingestor.counts.refuse(exc.code)
        raise


async def _ingest_async(
    ingestor: Ingestor,
    project_id: int,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
    translate: Translate | None,
) -> IngestResult:
    def prepare() -> Batch:
        events = decode_events(body, content_type, content_encoding, max_bytes, translate)
        return ingestor.prepare(project_id, events)

    try:
        ingestor.refuse_if_full()  # under overload, refuse before decoding
    except Overloaded as exc:
        _refused(exc, ingestor)
    if len(body) <= INLINE_BODY_BYTES and not content_encoding:
        batch = prepare()
    else:
        with ingestor.decoding():
            if translate is None:  # in a worker process (``ingest.decoders``)
                batch = await ingestor.decoders.prepare(
                    project_id, body, content_type, content_encoding, max_bytes
                )
            else:
                batch = await to_thread.run_sync(prepare)
    try:
        accepted, duplicates = await ingestor.submit_prepared(batch)
    except (Overloaded, JournalError) as exc:
        return _refused(exc, ingestor)
    return IngestResult(accepted, duplicates)


def _refused(exc: Exception, ingestor: Ingestor) -> NoReturn:
    """Raise the ``IngestError`` of a journal refusal (counted)."""
    ingestor.counts.refuse(_REASONS.get(type(exc), "journal_error"))
    if isinstance(exc, Overloaded):
        raise IngestError(503, "overloaded", str(exc), retry_after_s=exc.retry_after_s)
    if isinstance(exc, DiskFull):
        raise IngestError(
            503,
            "disk_full",
            "the server's disk is full; nothing of this batch was stored",
            retry_after_s=60,
        )
    if isinstance(exc, StoreUnavailable):
        raise IngestError(503, "store_unavailable", str(exc), retry_after_s=5)
    raise IngestError(503, "journal_error", str(exc), retry_after_s=5)


_REASONS: dict[type[Exception], str] = {
    Overloaded: "overloaded",
    DiskFull: "disk_full",
    StoreUnavailable: "store_unavailable",
}
