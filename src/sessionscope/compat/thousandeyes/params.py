"""ThousandEyes' parameters: time ranges and windows, search filters, pages and cursors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from sessionscope.api.context import AppContext
from sessionscope.compat.thousandeyes.constants import (
    _FULL_TIME,
    _LAST_MS,
    _LOWER_KEYS,
    _MAX_BODY,
    _MAX_PAGE,
    _ROUND,
    _UNSUPPORTED_KEYS,
    FILTER_KEYS,
)
from sessionscope.compat.thousandeyes.formats import _bad
from sessionscope.domain.accounts import Project
from sessionscope.domain.timerange import (
    MIN_INSTANT,
    TimeRangeError,
    floor_time,
    parse_instant,
    parse_window,
)
from sessionscope.service import CursorError, decode_cursor

# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True, slots=True)
class _Range:
    start: datetime
    #: Inclusive, to the millisecond.
    end: datetime
    #: The range as the client gave it (``from``/``to`` echoed in the answer), or the round.
    given: bool


def _time(text: str, param: str) -> datetime:
    value = text.strip()
    if not _FULL_TIME.fullmatch(value):
        raise _bad(param, f"must be a full UTC date and time YYYY-mm-ddTHH:MM:SS, not {value!r}")
    try:  # also refuses instants outside [MIN_INSTANT, MAX_INSTANT]
        return parse_instant(value, param)
    except TimeRangeError as exc:
        raise _bad(exc.param, exc.message) from None


def _given_range(query: Mapping[str, str], now: datetime) -> _Range | None:
    """The range of ``window`` or ``from``/``to``; None when the request names none."""
    window, start_text, end_text = (query.get(k) for k in ("window", "from", "to"))
    if window is not None and (start_text is not None or end_text is not None):
        raise _bad("window", "cannot be combined with from or to")
    if end_text is not None and start_text is None:
        raise _bad("to", "needs from (to alone is not a range)")
    # Whole seconds: the range can be written into the next page's URL exactly.
    to_second = now.replace(microsecond=0)
    if window is not None:
        try:
            span = parse_window(window, "window")
        except TimeRangeError as exc:
            raise _bad(exc.param, exc.message) from None
        # A window reaching before the epoch starts there: from= of the next URL must parse.
        return _Range(max(to_second - span, MIN_INSTANT), to_second + _LAST_MS, True)
    if start_text is None:
        return None
    start = _time(start_text, "from")
    end = _time(end_text, "to") if end_text is not None else to_second
    if end < start:
        if end_text is None:
            raise _bad("from", "must not be in the future when to is not given")
        raise _bad("to", "must not be before from")
    return _Range(start, end + _LAST_MS, True)


def _last_round(ctx: AppContext, project: Project) -> _Range | None:
    """The newest round (minute) with at least one session of the account group."""
    newest = ctx.service.newest_session_start(project, "endpoint")
    if newest is None:
        return None
    start = floor_time(newest, _ROUND)
    return _Range(start, start + _ROUND - timedelta(milliseconds=1), False)


def _filter_values(key: str, values: object) -> list[str]:
    if not isinstance(values, list) or not values:
        raise _bad("searchFilters", f"{key}: values must be a non-empty array")
    out: list[str] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _bad("searchFilters", f"{key}: every value must be a string")
        text = str(value).strip()
        if key == "port" and not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
            raise _bad("searchFilters", f"port: {text[:20]!r} is not a port number")
        out.append(text.lower() if key in _LOWER_KEYS else text)
    return out


def _search_filters(document: object, source: str) -> list[tuple[str, list[str]]]:
    """Parse ``{"searchFilters": [{"key": ..., "values": [...]}, ...]}`` (or just the list)."""
    if isinstance(document, dict):
        unknown = sorted(set(document) - {"searchFilters"})
        if unknown:
            raise _bad(source, f"unknown field {unknown[0]!r} (expected searchFilters)")
        document = document.get("searchFilters", [])
    if not isinstance(document, list):
        raise _bad("searchFilters", "must be an array of {key, values} objects")
    out: list[tuple[str, list[str]]] = []
    for item in document:
        if not isinstance(item, dict) or set(item) != {"key", "values"}:
            raise _bad("searchFilters", 'each filter must be {"key": ..., "values": [...]}')
        key = item["key"]
        if key in _UNSUPPORTED_KEYS:
            raise _bad("searchFilters", f"key {key!r} is not supported by this server")
        if not isinstance(key, str) or key not in FILTER_KEYS:
            raise _bad(
                "searchFilters",
                f"unknown key {str(key)[:40]!r} (use {', '.join(FILTER_KEYS)})",
            )
        out.append((key, _filter_values(key, item["values"])))
    return out


def _parse_filters(body: bytes, query: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Filters of the POST body and of the ``searchFilters`` parameter (a next-page URL)."""
    filters: list[tuple[str, list[str]]] = []
    if len(body) > _MAX_BODY:
        raise _bad("body", f"must be at most {_MAX_BODY} bytes")
    if body.strip():
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _bad("body", 'is not JSON (send {"searchFilters": [...]})') from None
        filters += _search_filters(document, "body")
    if query.get("searchFilters"):
        try:
            document = orjson.loads(query["searchFilters"])
        except orjson.JSONDecodeError:
            raise _bad("searchFilters", "the parameter is not JSON") from None
        filters += _search_filters(document, "searchFilters")
    # A client may re-send its body to a next-page URL that carries the same filters.
    unique = {(key, tuple(values)): values for key, values in filters}
    return [(key, values) for (key, _), values in unique.items()]


def _core_filters(filters: Sequence[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """The core's filters: filter objects are ANDed, the values inside one ORed."""
    out: dict[str, list[str]] = {}
    for key, values in filters:
        name = FILTER_KEYS[key]
        if name not in out:
            out[name] = list(dict.fromkeys(values))
        elif name == "domain":
            raise _bad("searchFilters", "give domain once (its values are ORed)")
        else:  # the same key twice: a session has one value, so both must hold it
            out[name] = [v for v in out[name] if v in values]
    return out


def _page(query: Mapping[str, str]) -> int:
    text = query.get("page", "").strip()
    if not text:
        return 1
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_PAGE:
        raise _bad("page", f"must be an integer from 1 to {_MAX_PAGE}, not {text[:20]!r}")
    return int(text)


def _cursor(query: Mapping[str, str]) -> tuple[datetime, str] | None:
    text = query.get("cursor", "").strip()
    if not text:
        return None
    try:
        return decode_cursor(text)
    except CursorError as exc:
        raise _bad("cursor", str(exc)) from None
