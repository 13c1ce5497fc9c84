"""The opaque cursor of session lists: a session's (start, key), base64 JSON."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson

from sessionscope.domain.timerange import MAX_EPOCH_MS
from sessionscope.store.engine import ms, to_dt

__all__ = ["CursorError", "decode_cursor", "encode_cursor"]


class CursorError(ValueError):
    """An opaque cursor that this server did not produce."""


def encode_cursor(start: datetime, key: str) -> str:
    raw = orjson.dumps([ms(start), key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        start_ms, key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(start_ms, int) or not 0 <= start_ms <= MAX_EPOCH_MS:
            raise ValueError("cursor time out of range")
        if not isinstance(key, str) or len(key) > 1024:
            raise ValueError("cursor key is not a session key")
        return to_dt(start_ms), key
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise CursorError("cursor is not one this server produced") from None
