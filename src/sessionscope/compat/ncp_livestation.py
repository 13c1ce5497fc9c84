"""NAVER Cloud Live Station: a drop-in compatible API for channel events.

``GET /api/v2/channels/{channelId}/events``, ``GET /api/v2/events`` (all channels, or one with
``channelId``) and ``GET /api/v2/channels/{channelId}/publish-log`` answer like Live Station;
``POST /api/v2/callbacks/events`` receives Live Station's event callbacks. Requests are
authenticated with NAVER Cloud API Gateway signature v2 (an access key / secret key pair made by
``sessionscope keys create --ncp``); the callback also takes a project API key, because Live
Station itself cannot sign the callbacks it sends.

This module only translates: it parses Live Station's parameters and payloads, calls the store
(channel events are ``channel`` events of the core) and the ingest pipeline, and shapes answers
and errors the way Live Station and its gateway do. Decisions taken where the vendor is silent
are listed in ``docs/compat/ncp-livestation.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from sessionscope.api.auth import check_scope, project_for_key
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError, register_error_shape
from sessionscope.api.metrics import note_project
from sessionscope.api.readafterwrite import INGEST_ROUTES
from sessionscope.api.responses import JSON
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.domain.timerange import MAX_EPOCH_MS
from sessionscope.ingest.pipeline import IngestError, ingest_async
from sessionscope.registry import DemoHooks, KeyKind, Vendor
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = [
    "CALLBACK_ID_PREFIX",
    "CALLBACK_PATH",
    "DEFAULT_DESCRIPTIONS",
    "MAX_CONTENT",
    "PREFIX",
    "SIGNATURE_WINDOW_MS",
    "install",
    "livestation_error",
    "router",
    "signature_v2",
    "string_to_sign",
]

router = APIRouter(tags=["NAVER Cloud Live Station (compatible)"])

#: Path prefix whose errors come out in NAVER Cloud's gateway shape.
PREFIX = "/api/v2"
#: A signed request's timestamp may be at most this far from the server clock (either way).
SIGNATURE_WINDOW_MS = 5 * 60 * 1000
#: Without pageNo/pageSize, ``content`` holds at most this many events (``total`` counts all).
MAX_CONTENT = 10_000
#: Where Live Station's callbacks are received.
CALLBACK_PATH = "/api/v2/callbacks/events"
#: Stored event ids of callbacks are ``<prefix><Live Station id>``, apart from native ids.
CALLBACK_ID_PREFIX = "livestation-"
#: NAVER Cloud's access key / secret key pairs (API Gateway signature v2): ``api_keys.kind``
#: ``ncp``, made with ``keys create --ncp``.
SIGNING_KEY = KeyKind("ncp", "ncp", "An access key/secret key pair for signed (NAVER Cloud) calls.")

_TIMESTAMP = "x-ncp-apigw-timestamp"
_ACCESS_KEY = "x-ncp-iam-access-key"
_SIGNATURE = "x-ncp-apigw-signature-v2"
#: NAVER's own SDKs (the ``ncloud-*`` packages' ``ApiClient``) send the same signature, of the
#: same string, under this name.
_SIGNATURE_V1 = "x-ncp-apigw-signature-v1"
_CALLBACK_KEY_PARAM = "apiKey"

_DEFAULT_PAGE_SIZE = 20
_MAX_PAGE_SIZE = 1000
_PUBLISH_TYPES = ("PUBLISH_START", "PUBLISH_END")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"[0-9]+")

#: API Gateway errors by HTTP status: (errorCode, message).
_GATEWAY: dict[int, tuple[str, str]] = {
    400: ("100", "Bad Request Exception"),
    401: ("200", "Authentication Failed"),
    403: ("210", "Permission Denied"),
    404: ("300", "Not Found Exception"),
    405: ("100", "Bad Request Exception"),
    413: ("430", "Request Entity Too Large"),
    429: ("420", "Rate Limited"),
    # Not in NAVER's list: the journal is full or its disk is (a Retry-After comes with it).
    503: ("900", "Service Unavailable"),
}
_UNEXPECTED = ("900", "Unexpected Error")
#: Live Station's own error codes (in the same envelope).
_LS_NOT_FOUND = "250004"

#: Callback fields -> fields of a native channel event (for naming problems back).
_CALLBACK_FIELDS = {
    "id": "id",
    "time": "timestamp",
    "type": "event",
    "channel": "channelId",
    "level": "logLevel",
    "description": "description",
    "": "body",
}

#: Shown when an event was stored without a description (a callback carries none): Live
#: Station's sentence for the code, with the channel id where Live Station has the channel's
#: name (a callback does not carry the name). The sentence shapes are those of the vendor's
#: example (PUBLISH_START, ONAIR_START, ONAIR_END, PUBLISH_END); the others follow them.
DEFAULT_DESCRIPTIONS: dict[str, str] = {
    "STREAM_RESERVE": "{channel} channel has been reserved.",
    "STREAM_UPDATE": "{channel} channel has been updated.",
    "PUBLISH_START": "You have started publishing channel {channel}.",
    "PUBLISH_END": "{channel} channel publishing has ended.",
    "THUMBNAIL_CREATE": "Thumbnail of channel {channel} has been created.",
    "SIMULCAST_STATUS_CHANGE": "{channel} channel simulcast status has changed.",
    "ONAIR_START": "You have started recording channel {channel}.",
    "ONAIR_END": "{channel} Channel recording has ended.",
    "PUBLISH_OVER_THRESHOLD": "{channel} channel input bitrate exceeded the threshold.",
    "RTMP_MAIN_STREAM_ENABLED": "{channel} channel main stream has been enabled.",
    "RTMP_BACKUP_STREAM_ENABLED": "{channel} channel backup stream has been enabled.",
    "RTMP_MAIN_STREAM_DISCONNECTED": "{channel} channel main stream has been disconnected.",
    "RTMP_BACKUP_STREAM_DISCONNECTED": "{channel} channel backup stream has been disconnected.",
}
#: Longest channel id echoed back in a not-found message.
_ECHO_MAX = 80


# ------------------------------------------------------------------------------ errors


def livestation_error(err: ApiError, request: Request) -> Response:
    """Shape an error as the NAVER Cloud gateway does: ``{"error": {"errorCode", "message"}}``.

    Errors raised here carry their NAVER code (gateway ``100``/``200``/``300`` or Live Station's
    ``250004``) and a complete message; errors from the framework (parameter validation, unknown
    routes, crashes) get the gateway code and message of their HTTP status.
    """
    if _DIGITS.fullmatch(err.code):
        code, message = err.code, err.message
    elif err.status >= 500:
        code, message = _UNEXPECTED
    else:
        code, label = _GATEWAY.get(err.status, _GATEWAY[400])
        detail = err.message
        if err.status == 404:
            detail = f"no API at {request.method} {request.url.path}"
        message = f"{label}: {detail}" if detail else label
    body = {"error": {"errorCode": code, "message": message}}
    return JSON(body, status_code=err.status, headers=err.headers)


def _gateway(status: int, detail: str, headers: dict[str, str] | None = None) -> ApiError:
    code, label = _GATEWAY.get(status, _GATEWAY[400])
    return ApiError(status, code, f"{label}: {detail}", headers=headers)


def _bad(message: str) -> ApiError:
    return _gateway(400, message)


def _unauthorized(message: str) -> ApiError:
    return _gateway(401, message)


def _channel_not_found(channel: str) -> ApiError:
    # Live Station's template for 250004 NOT_FOUND is "{0} not found."; a long id is cut.
    shown = channel if len(channel) <= _ECHO_MAX else channel[:_ECHO_MAX] + "..."
    return ApiError(404, _LS_NOT_FOUND, f"channelId {shown!r} not found.")


# ------------------------------------------------------------------------------ signing


def string_to_sign(method: str, path_with_query: bytes, timestamp: str, access_key: str) -> bytes:
    """Return what signature v2 signs: ``METHOD path?query\\ntimestamp\\naccessKey``."""
    return b"%s %s\n%s\n%s" % (
        method.upper().encode("ascii"),
        path_with_query,
        timestamp.encode("latin-1"),
        access_key.encode("latin-1"),
    )


def signature_v2(secret_key: str, message: bytes) -> str:
    """Return ``base64(HMAC-SHA256(secret_key, message))``, the API Gateway signature v2."""
    digest = hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _targets(request: Request) -> tuple[bytes, ...]:
    """The request target as the client sent it (raw path and raw query, no re-encoding).

    ASGI servers report ``/path?`` (a bare trailing ``?``) exactly as ``/path``, so for a
    request without a query string both spellings are what the client may have sent and
    signed; each is accepted.
    """
    scope = request.scope
    raw = scope.get("raw_path")
    path = raw if isinstance(raw, bytes) and raw else scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    return (path + b"?" + query,) if query else (path, path + b"?")


def _header(request: Request, name: str) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise _unauthorized(f"header {name} is required")
    return value


def signed_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency of the reads: the project of a request signed with API Gateway signature v2
    by a signing key that may read; a 401, or a 403 for an ingest key."""
    return _signed(request, ctx, "read")


def _signed(request: Request, ctx: AppContext, need: str) -> Project:
    """The project of a request signed with API Gateway signature v2 by a signing key that may
    do ``need``, or a 401 (a 403 when the key may not).

    The signature and the secret are never logged; signatures are compared in constant time.
    """
    timestamp = _header(request, _TIMESTAMP)
    access_key = _header(request, _ACCESS_KEY)
    given = (
        request.headers.get(_SIGNATURE, "").strip()
        or request.headers.get(_SIGNATURE_V1, "").strip()
    )
    if not given:
        raise _unauthorized(f"header {_SIGNATURE} (or {_SIGNATURE_V1}) is required")
    if not _DIGITS.fullmatch(timestamp) or len(timestamp) > 15:
        raise _unauthorized(f"header {_TIMESTAMP} must be epoch milliseconds")
    if abs(time.time_ns() // 1_000_000 - int(timestamp)) > SIGNATURE_WINDOW_MS:
        raise _unauthorized(f"header {_TIMESTAMP} is more than 5 minutes from the server clock")
    found = ctx.store.signing_key(access_key, SIGNING_KEY.name)
    if found is None:
        raise _unauthorized(f"header {_ACCESS_KEY} is not a valid access key")
    project_id, secret, scope = found
    signature = given.encode("latin-1")
    matches = [
        hmac.compare_digest(
            signature_v2(
                secret, string_to_sign(request.method, target, timestamp, access_key)
            ).encode("ascii"),
            signature,
        )
        for target in _targets(request)
    ]
    if not any(matches):
        raise _unauthorized(
            f"header {_SIGNATURE} does not match the request (sign the method, the path with "
            "its query string exactly as sent, the timestamp and the access key)"
        )
    project = ctx.store.get_project(project_id)
    if project is None:
        raise _unauthorized(f"header {_ACCESS_KEY} belongs to no project")
    note_project(request, project.id)
    check_scope(scope, need, "access key")
    return project


def callback_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency: the project of a callback, by API key (header or query) or by signature.

    ``Authorization: Bearer <API key>`` or ``?apiKey=<API key>`` (for Live Station itself, which
    can only be given a URL); otherwise the request must be signed like every other request.
    """
    header = request.headers.get("authorization", "")
    query_key = request.query_params.get(_CALLBACK_KEY_PARAM)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("header Authorization must be 'Bearer <API key>'")
        project = project_for_key(ctx, token, "ingest")
        if project is None:
            raise _unauthorized("header Authorization does not hold a valid API key")
        note_project(request, project.id)
        return project
    if query_key is not None:
        project = project_for_key(ctx, query_key, "ingest")
        if project is None:
            raise _unauthorized(f"parameter {_CALLBACK_KEY_PARAM} is not a valid API key")
        note_project(request, project.id)
        return project
    if not any(
        request.headers.get(h) for h in (_TIMESTAMP, _ACCESS_KEY, _SIGNATURE, _SIGNATURE_V1)
    ):
        raise _unauthorized(
            f"sign the request ({_TIMESTAMP}, {_ACCESS_KEY}, {_SIGNATURE}) or send a project "
            f"API key (Authorization: Bearer, or the {_CALLBACK_KEY_PARAM} parameter)"
        )
    return _signed(request, ctx, "ingest")


# ------------------------------------------------------------------------------ parameters


def _int_param(params: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not _DIGITS.fullmatch(text) or len(text) > 20 or not lo <= int(text) <= hi:
        raise _bad(f"{name} must be an integer from {lo} to {hi}, not {value[:32]!r}")
    return int(text)


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    """``(limit, offset)``: everything (up to MAX_CONTENT) unless pageNo or pageSize is given."""
    page_no = _int_param(params, "pageNo", 1, 10_000_000)
    page_size = _int_param(params, "pageSize", 1, _MAX_PAGE_SIZE)
    if page_no is None and page_size is None:
        return MAX_CONTENT, 0
    size = page_size or _DEFAULT_PAGE_SIZE
    return size, ((page_no or 1) - 1) * size


def _window(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """``startTime``/``endTime`` (epoch milliseconds, inclusive), each optional."""
    lo = _int_param(params, "startTime", 0, MAX_EPOCH_MS)
    hi = _int_param(params, "endTime", 0, MAX_EPOCH_MS)
    if lo is not None and hi is not None and hi < lo:
        raise _bad("endTime must not be before startTime")
    return (
        _EPOCH + timedelta(milliseconds=lo) if lo is not None else None,
        _EPOCH + timedelta(milliseconds=hi) if hi is not None else None,
    )


def _epoch_ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


# ------------------------------------------------------------------------------ answers


def _content_item(e: Event) -> dict[str, Any]:
    description = str(e.attr("description", "") or "")
    if not description and e.type in DEFAULT_DESCRIPTIONS:
        description = DEFAULT_DESCRIPTIONS[e.type].format(channel=e.session)
    return {
        "logLevel": str(e.attr("level", "INFO") or "INFO"),
        "eventCode": e.type,
        "description": description,
        "timestamp": _epoch_ms(e.time),
        "channelId": e.session,
    }


def _require_channel(ctx: AppContext, project: Project, channel: str) -> None:
    if not any(c["channel"] == channel for c in ctx.service.channels(project)):
        raise _channel_not_found(channel)


def _event_list(
    ctx: AppContext,
    project: Project,
    request: Request,
    channel: str | None,
    types: Sequence[str] | None = None,
) -> JSON:
    params = request.query_params
    limit, offset = _page(params)
    start, end = _window(params)
    if channel is not None:
        _require_channel(ctx, project, channel)
    sessions = [channel] if channel is not None else None
    total = ctx.service.count_events(
        project, "channel", start=start, end=end, sessions=sessions, types=types
    )
    events = ctx.service.events(
        project,
        "channel",
        start=start,
        end=end,
        sessions=sessions,
        types=types,
        newest_first=True,
        limit=limit,
        offset=offset,
    )
    return JSON({"content": [_content_item(e) for e in events], "total": total})


@router.get("/api/v2/channels/{channelId}/events")
def channel_events(
    channelId: str,
    request: Request,
    project: Project = Depends(signed_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Events of one channel, newest first: ``{"content": [...], "total": n}``."""
    return _event_list(ctx, project, request, channelId)


@router.get("/api/v2/channels/{channelId}/publish-log")
def publish_log(
    channelId: str,
    request: Request,
    project: Project = Depends(signed_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """PUBLISH_START and PUBLISH_END events of one channel, newest first."""
    return _event_list(ctx, project, request, channelId, _PUBLISH_TYPES)


@router.get("/api/v2/events")
def events(
    request: Request,
    project: Project = Depends(signed_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Events of every channel of the project, or of the one ``channelId`` names."""
    channel = (request.query_params.get("channelId") or "").strip() or None
    return _event_list(ctx, project, request, channel)


# ------------------------------------------------------------------------------ callbacks


def _callback_problem(index: int, field: str, message: str, count: int) -> ApiError:
    where = f" (callback {index})" if count > 1 else ""
    name = _CALLBACK_FIELDS.get(field, field)
    return _bad(f"{name}: {message}{where}")


#: Integer ids fit in 64 bits: the JSON reader turns longer integers into floats (digits lost).
_MAX_INT_ID = 2**64 - 1
_JSON_KINDS: dict[type, str] = {dict: "an object", list: "an array"}


def _id_problem(raw_id: object) -> str | None:
    """What is wrong with a callback ``id``, or None: an integer >= 0 or a non-empty string."""
    if raw_id is None or raw_id == "":
        return "is required (Live Station's event id)"
    if isinstance(raw_id, str):
        # Stored with the prefix, under the core's 128-character limit on event ids.
        longest = 128 - len(CALLBACK_ID_PREFIX)
        return f"must be at most {longest} characters" if len(raw_id) > longest else None
    if isinstance(raw_id, bool):
        return f"must be an integer or a string, not {str(raw_id).lower()}"
    if isinstance(raw_id, int):
        return "must not be negative" if raw_id < 0 else None
    if isinstance(raw_id, float):
        if raw_id.is_integer() and abs(raw_id) > _MAX_INT_ID:
            return f"must be an integer of at most {_MAX_INT_ID} (send a longer id as a string)"
        return f"must be an integer or a string, not {raw_id!r}"
    return f"must be an integer or a string, not {_JSON_KINDS.get(type(raw_id), 'that')}"


def _translate(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn Live Station callback objects into native channel events (or a 400)."""
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _callback_problem(index, "", "each callback must be a JSON object", len(items))
        raw_id = item.get("id")
        problem = _id_problem(raw_id)
        if problem is not None:
            raise _callback_problem(index, "id", problem, len(items))
        event: dict[str, Any] = {
            "kind": "channel",
            "id": f"{CALLBACK_ID_PREFIX}{raw_id}",
            "type": item.get("event"),
            "channel": item.get("channelId"),
        }
        if item.get("timestamp") is not None:
            event["time"] = item["timestamp"]
        if item.get("logLevel") is not None:
            event["level"] = item["logLevel"]
        if item.get("description") is not None:
            event["description"] = item["description"]
        out.append(event)
    return out


@router.post(CALLBACK_PATH)
async def callback_events(
    request: Request,
    project: Project = Depends(callback_project),
    ctx: AppContext = Depends(get_ctx),
) -> JSON:
    """Receive Live Station event callbacks (one object or a list); store them once each.

    Payload ``{id, logLevel, channelId, event, timestamp}`` (plus an optional ``description``).
    Answers only when the events are durably stored; a repeated ``id`` is not stored twice.
    """
    limit = ctx.settings.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * 2 + 1024:
            raise _gateway(413, f"body is larger than {limit} bytes")
        chunks.append(chunk)
    counted: list[int] = []

    def translate(items: list[Any]) -> list[Any]:
        counted.append(len(items))
        return _translate(items)

    try:
        result = await ingest_async(
            ctx.ingestor,
            project.id,
            b"".join(chunks),
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
            max_bytes=limit,
            translate=translate,
        )
    except IngestError as exc:
        raise _refusal(exc, counted[0] if counted else 1) from None
    return JSON(result.as_dict())


def _refusal(exc: IngestError, count: int) -> ApiError:
    """A refused batch of ``count`` callbacks in Live Station's shape: its first problem."""
    if exc.code == "empty_batch":
        return _bad("body holds no callbacks")
    if exc.code == "invalid_events" and exc.problems:
        first = exc.problems[0]
        return _callback_problem(first.index, first.field, first.message, count)
    return _gateway(exc.status, exc.message, exc.headers)


# ------------------------------------------------------------------------------ wiring


def install(app: FastAPI) -> None:
    """Add the Live Station routes to ``app`` and shape errors under /api/v2 the NAVER way."""
    app.include_router(router)
    register_error_shape(PREFIX, livestation_error)
    INGEST_ROUTES.add(("POST", CALLBACK_PATH))  # a receiver: it never waits for the loader


# ------------------------------------------------------------------------------ demo


def _demo_credentials(store: ClickHouseStore, project: Project, creds: dict[str, Any]) -> None:
    """A signature v2 key pair for the demo project (kept while it is still valid)."""
    signing = store.signing_secret(str(creds.get("ncp_access_key", "")), SIGNING_KEY.name)
    if signing is None or signing[0] != project.id:
        creds["ncp_access_key"], creds["ncp_secret_key"] = store.create_signing_key(
            project.id, "demo", kind=SIGNING_KEY.name
        )


def _demo_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the Live Station API: its keys and a curl signed with openssl."""
    ak, sk = creds.get("ncp_access_key"), creds.get("ncp_secret_key")
    if not ak or not sk:
        return []
    sign = (
        'SIG=$(printf \'GET %s\\n%s\\n%s\' "$P" "$TS" "$AK" '
        '| openssl dgst -sha256 -hmac "$SK" -binary | base64)'
    )
    headers = (
        '-H "x-ncp-apigw-timestamp: $TS" -H "x-ncp-iam-access-key: $AK" '
        '-H "x-ncp-apigw-signature-v2: $SIG"'
    )
    return [
        "NAVER Cloud Live Station (signature v2), docs/compat/ncp-livestation.md:",
        f"  access key: {ak}",
        f"  secret key: {sk}",
        f"  AK='{ak}' SK='{sk}' P='/api/v2/events?pageSize=5'",
        f"  TS=$(date +%s)000; {sign}",
        f'  curl -s {headers} "{base}$P"',
        f"  Live Station callback URL: {base}/api/v2/callbacks/events?apiKey={creds['api_key']}",
    ]


DEMO = DemoHooks(_demo_help, _demo_credentials)

#: What this API adds to the core (registered by ``compat/__init__``): its signing keys, and
#: its part of the demo.
VENDOR = Vendor("ncp-livestation", install, key_kinds=(SIGNING_KEY,), demo=DEMO)
