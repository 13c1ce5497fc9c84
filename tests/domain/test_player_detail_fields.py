"""Optional player detail fields (address, player build, error code and message): validation,
storage in ``attrs``, and derived ids that do not move for events without them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from sessionscope.domain.events import decode_batch, validate_batch

NOW = datetime(2025, 10, 10, 12, 0, tzinfo=UTC)
NEW_FIELDS = ("address", "player_name", "player_version", "error_code", "error_message")


def player(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "player",
        "time": "2025-10-10T09:00:00.000Z",
        "type": "error",
        "session": "ps-1",
        "user": "ad5aea06-fb78-41c7-b2ad-716b685e32db",
        "device": "PC",
        "video_type": "VOD",
        **kw,
    }


def test_fields_are_kept_as_sent() -> None:
    detail = {
        "address": "Seoul, KR",
        "player_name": "ncplayer",
        "player_version": "1.6.2",
        "error_code": "E0003",
        "error_message": "Network error: the connection was lost",
    }
    events, problems = validate_batch([player(**detail)], now=NOW)
    assert problems == []
    assert {k: events[0].attrs[k] for k in NEW_FIELDS} == detail
    assert events[0].as_dict().items() >= detail.items()
    # Bytes decode the same way.
    assert decode_batch(orjson.dumps([player(**detail)]), ndjson=False, now=NOW) == (events, [])


@pytest.mark.parametrize("name", NEW_FIELDS)
def test_absent_or_null_fields_leave_attrs_and_ids_alone(name: str) -> None:
    (plain,), _ = validate_batch([player()], now=NOW)
    (null,), _ = validate_batch([player(**{name: None})], now=NOW)
    (given,), _ = validate_batch([player(**{name: "x"})], now=NOW)
    assert name not in plain.attrs and null.attrs == plain.attrs and null.id == plain.id
    assert given.id != plain.id


@pytest.mark.parametrize("name", NEW_FIELDS)
@pytest.mark.parametrize(
    ("value", "words"), [(7, "must be a string"), ("x" * 2049, "must be at most 2048 characters")]
)
def test_wrong_values_are_named(name: str, value: object, words: str) -> None:
    _, problems = validate_batch([player(**{name: value})], now=NOW)
    assert [(p.field, p.message) for p in problems] == [(name, words)]
    _, at_limit = validate_batch([player(**{name: "x" * 2048})], now=NOW)
    assert at_limit == []


def test_the_fields_are_player_fields_only() -> None:
    channel = {"kind": "channel", "time": "2025-10-10T09:00:00Z", "type": "X", "channel": "c"}
    _, problems = validate_batch([{**channel, "error_code": "E1"}], now=NOW)
    assert [(p.field, p.message) for p in problems] == [
        ("error_code", "is not a field of channel events")
    ]
