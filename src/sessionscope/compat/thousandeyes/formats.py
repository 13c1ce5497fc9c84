"""Answers in JSON or XML as ThousandEyes writes them, and its error shape."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from sessionscope.api.errors import ApiError
from sessionscope.api.responses import JSON
from sessionscope.compat.thousandeyes.constants import (
    _CONTENT_TYPES,
    _MEDIA,
    _STATE_HEADERS,
    _SUFFIXES,
    _XML_INVALID,
    _XML_ITEMS,
)

# ------------------------------------------------------------------------------ formats


def _suffix(path: str) -> str | None:
    for suffix, fmt in _SUFFIXES.items():
        if path.endswith(suffix):
            return fmt
    return None


def _accepted(header: str) -> str | None:
    """The format the ``Accept`` header prefers among JSON and XML (highest q), or None."""
    best: tuple[float, str] | None = None
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        fmt = _MEDIA.get(media.lower())
        if fmt is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, fmt)
    return best[1] if best else None


def _format(request: Request) -> str:
    """The answer's format: the path suffix, then ``Accept``, then ``format=``, then JSON."""
    fmt = _suffix(request.url.path) or _accepted(request.headers.get("accept", ""))
    if fmt is not None:
        return fmt
    value = request.query_params.get("format", "").strip().lower()
    if not value:
        return "json"
    if value not in _CONTENT_TYPES:
        raise _bad("format", f"must be json or xml, not {value[:20]!r}")
    return value


def _error_format(request: Request) -> str:
    try:
        return _format(request)
    except ApiError:
        return "json"


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _xml_element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            element.append(_xml_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_xml_element(_XML_ITEMS.get(tag, "item"), item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _xml_text(str(value))
    return element


def to_xml(root: str, data: Mapping[str, Any]) -> bytes:
    """Render an answer as XML: one element per field, list items named singular."""
    rendered: bytes = ET.tostring(_xml_element(root, data), encoding="utf-8", xml_declaration=True)
    return rendered


def _render(fmt: str, data: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    all_headers = {"Cache-Control": "no-store", **headers}
    if fmt == "xml":
        return Response(to_xml("data", data), 200, all_headers, media_type=_CONTENT_TYPES["xml"])
    return JSON(dict(data), headers=all_headers)


# ------------------------------------------------------------------------------ errors


def thousandeyes_error(err: ApiError, request: Request) -> Response:
    """Shape an error as ThousandEyes does: ``{"errorMessage": ...}`` or its XML twin."""
    headers = {**getattr(request.state, _STATE_HEADERS, {}), **err.headers}
    headers["Cache-Control"] = "no-store"
    if _error_format(request) == "xml":
        body = to_xml("error", {"errorMessage": err.message})
        return Response(body, err.status, headers, media_type=_CONTENT_TYPES["xml"])
    return JSON({"errorMessage": err.message}, status_code=err.status, headers=headers)


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", f"{param}: {message}")


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Basic realm="sessionscope"'}
    )
