"""Event validation: shapes per kind, problems naming fields, times and derived ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope.domain.events import (
    MAX_FUTURE,
    BatchSyntaxError,
    Event,
    Problem,
    decode_batch,
    decode_columns,
    derive_id,
    epoch_ms,
    format_time,
    parse_time,
    validate_batch,
)
from sessionscope.domain.timerange import MAX_EPOCH_MS
from sessionscope.store.writes import columns_table, event_table

NOW = datetime(2025, 10, 10, 12, 0, tzinfo=UTC)
T = "2025-10-10T09:00:00.000Z"
T_DT = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
USER = "ad5aea06-fb78-41c7-b2ad-716b685e32db"
PROPS = settings(max_examples=150, deadline=None)


def player(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "player",
        "time": T,
        "type": "playing",
        "session": "ps-1",
        "user": USER,
        "device": "PC",
        "video_type": "VOD",
        **kw,
    }


def channel(**kw: Any) -> dict[str, Any]:
    return {"kind": "channel", "time": T, "type": "PUBLISH_START", "channel": "ls-1", **kw}


def desktop(**kw: Any) -> dict[str, Any]:
    return {"kind": "desktop", "time": T, "type": "activity", "session": 42, "user_id": 7, **kw}


def endpoint(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "endpoint",
        "time": T,
        "type": "page",
        "session": "es-1",
        "agent_id": "3fde6422-f119-40e1-ae32-d08a1243c038",
        "visited_site": "example.com",
        "protocol": "https",
        "port": 443,
        "source_addr": "84.255.241.1",
        "page_id": "p1",
        "on_load_ms": 1200,
        "response_code": 200,
        **kw,
    }


BUILDERS = {"player": player, "channel": channel, "desktop": desktop, "endpoint": endpoint}


def one(obj: object, now: datetime = NOW) -> Event:
    events, problems = validate_batch([obj], now=now)
    assert problems == [], problems
    assert len(events) == 1
    return events[0]


def problem(obj: object, now: datetime = NOW) -> Problem:
    events, problems = validate_batch([obj], now=now)
    assert events == []
    assert len(problems) == 1, problems
    assert problems[0].index == 0
    return problems[0]


def without(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != name}


# --------------------------------------------------------------------------------------------
# valid examples


def test_valid_player() -> None:
    e = one(
        player(
            user=USER.upper(),
            video_type="live",
            video_time="00:01:02.5",
            duration_ms=30057,
            origin="https://example.com",
            ip="2001:db8::1",
            browser="Chrome",
        )
    )
    assert (e.kind, e.type, e.time, e.session, e.user) == ("player", "playing", T_DT, "ps-1", USER)
    assert e.duration_ms == 30057
    assert e.attrs["video_type"] == "LIVE"
    assert e.attrs["video_time"] == 62.5
    assert e.attrs["device"] == "PC"
    assert (e.attrs["origin"], e.attrs["os"]) == ("https://example.com", "")
    assert (e.attrs["ip"], e.attrs["browser"]) == ("2001:db8::1", "Chrome")
    assert e.id.startswith("d-")


def test_valid_channel() -> None:
    e = one(channel(level="error", description="input lost"))
    assert (e.kind, e.type, e.session, e.user) == ("channel", "PUBLISH_START", "ls-1", "")
    assert e.attrs == {"level": "ERROR", "description": "input lost"}
    assert one(channel()).attrs["level"] == "INFO"


def test_valid_desktop() -> None:
    e = one(desktop(user_name="alice", client_name="ws-01", app="excel.exe", title="Book1"))
    assert (e.kind, e.type, e.session, e.user) == ("desktop", "activity", "42", "7")
    assert e.attrs["app"] == "excel.exe" and e.attrs["title"] == "Book1"
    assert one(desktop(type="login")).type == "login"
    assert one(desktop(type="logout", session=2_147_483_647, user_id=0)).session == "2147483647"


def test_valid_endpoint() -> None:
    e = one(endpoint(visited_site="Example.COM", protocol="HTTPS", on_content_load_ms=800))
    assert (e.kind, e.type, e.session) == ("endpoint", "page", "es-1")
    assert e.user == "3fde6422-f119-40e1-ae32-d08a1243c038"
    assert e.attrs["visited_site"] == "example.com"
    assert e.attrs["protocol"] == "https"
    assert (e.attrs["on_content_load_ms"], e.attrs["on_load_ms"]) == (800, 1200)
    assert (e.attrs["port"], e.attrs["response_code"]) == (443, 200)


# --------------------------------------------------------------------------------------------
# missing and invalid fields

REQUIRED = {
    "player": ["kind", "time", "type", "session", "user", "device", "video_type"],
    "channel": ["kind", "time", "type", "channel"],
    "desktop": ["kind", "time", "type", "session", "user_id"],
    "endpoint": [
        "kind",
        "time",
        "type",
        "session",
        "agent_id",
        "visited_site",
        "protocol",
        "port",
        "source_addr",
        "page_id",
        "on_load_ms",
        "response_code",
    ],
}


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, names in REQUIRED.items() for n in names])
def test_missing_required_field_is_named(kind: str, name: str) -> None:
    p = problem(without(BUILDERS[kind](), name))
    assert p.field == name
    assert p.message


INVALID: list[tuple[str, str, object]] = [
    # common fields
    ("player", "kind", "video"),
    ("player", "time", "yesterday"),
    ("player", "type", "jumping"),
    ("player", "type", ""),
    ("player", "type", 3),
    ("player", "duration_ms", -1),
    ("player", "duration_ms", "30"),
    ("player", "duration_ms", 1.5),
    ("player", "duration_ms", True),
    ("player", "id", ""),
    ("player", "id", 17),
    ("player", "id", "x" * 129),
    # player
    ("player", "session", 5),
    ("player", "session", " "),
    ("player", "user", "not-a-uuid"),
    ("player", "device", "x" * 33),
    ("player", "video_type", "DVD"),
    ("player", "video_time", -1),
    ("player", "video_time", "1:2"),
    ("player", "video_time", True),
    ("player", "ip", "999.1.1.1"),
    ("player", "os", 10),
    # channel
    ("channel", "type", "publish_start"),
    ("channel", "channel", ""),
    ("channel", "level", "WARN"),
    ("channel", "level", None),
    ("channel", "description", "x" * 2049),
    # desktop
    ("desktop", "type", "idle"),
    ("desktop", "session", 0),
    ("desktop", "session", "42"),
    ("desktop", "session", 2_147_483_648),
    ("desktop", "user_id", -1),
    ("desktop", "user_name", 7),
    # endpoint
    ("endpoint", "type", "pages"),
    ("endpoint", "session", ""),
    ("endpoint", "agent_id", 3),
    ("endpoint", "visited_site", ""),
    ("endpoint", "protocol", "ftp"),
    ("endpoint", "port", 0),
    ("endpoint", "port", 65536),
    ("endpoint", "source_addr", "host.example"),
    ("endpoint", "page_id", ""),
    ("endpoint", "on_load_ms", -1),
    ("endpoint", "on_content_load_ms", "fast"),
    ("endpoint", "response_code", 99),
    ("endpoint", "response_code", 600),
]


@pytest.mark.parametrize(("kind", "name", "value"), INVALID)
def test_invalid_field_is_named(kind: str, name: str, value: object) -> None:
    p = problem(BUILDERS[kind](**{name: value}))
    assert p.field == name
    assert p.message


@PROPS
@given(st.data())
def test_every_problem_of_an_event_is_named(data: st.DataObject) -> None:
    """Several fields wrong at once, of the type (msgspec) and of the rules: each is named,
    whether the batch comes as bytes or as objects."""
    kind = data.draw(st.sampled_from(sorted(BUILDERS)))
    choices: dict[str, list[object]] = {}
    for k, name, value in INVALID:
        if k == kind and name != "kind":
            choices.setdefault(name, []).append(value)
    names = data.draw(st.sets(st.sampled_from(sorted(choices)), min_size=1))
    broken = BUILDERS[kind](**{n: data.draw(st.sampled_from(choices[n])) for n in names})
    for events, problems in (
        validate_batch([broken], now=NOW),
        decode_batch(orjson.dumps([broken]), ndjson=False, now=NOW),
    ):
        assert events == []
        assert {p.field for p in problems} == names
        assert all(p.index == 0 and p.message for p in problems)


def test_the_issue_example_lists_all_three_problems() -> None:
    _, problems = validate_batch([player(type="jumping", duration_ms=-5, user="someone")], now=NOW)
    assert sorted(p.field for p in problems) == ["duration_ms", "type", "user"]


@pytest.mark.parametrize("name", ["app", "title", "url"])
@pytest.mark.parametrize("etype", ["login", "logout"])
def test_desktop_details_only_on_activity(name: str, etype: str) -> None:
    assert problem(desktop(type=etype, **{name: "x"})).field == name
    assert one(desktop(type="activity", **{name: "x"})).attrs[name] == "x"


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_unknown_field_is_rejected(kind: str) -> None:
    p = problem(BUILDERS[kind](colour="blue"))
    assert p.field == "colour"
    assert kind in p.message


def test_field_of_another_kind_is_rejected() -> None:
    assert problem(channel(session="s")).field == "session"
    assert problem(player(channel="ls-1")).field == "channel"


def test_not_an_object() -> None:
    assert problem(["kind", "player"]).field == ""
    assert problem("player").field == ""


def test_batch_is_all_or_nothing_and_lists_every_problem() -> None:
    items = [
        player(),
        without(player(), "session"),
        channel(),
        "not an object",
        desktop(session=0),
        endpoint(port=0),
        endpoint(),
    ]
    events, problems = validate_batch(items, now=NOW)
    assert events == []
    assert [(p.index, p.field) for p in problems] == [
        (1, "session"),
        (3, ""),
        (4, "session"),
        (5, "port"),
    ]
    assert problems[0].as_dict() == {"index": 1, "field": "session", "message": "is required"}


def test_batch_of_valid_events_keeps_their_order() -> None:
    items = [player(), channel(), desktop(), endpoint()]
    events, problems = validate_batch(items, now=NOW)
    assert problems == []
    assert [e.kind for e in events] == ["player", "channel", "desktop", "endpoint"]
    assert validate_batch([], now=NOW) == ([], [])


# --------------------------------------------------------------------------------------------
# times


@pytest.mark.parametrize(
    "value",
    [
        "2025-10-10T09:00:00Z",
        "2025-10-10T09:00:00.000Z",
        "2025-10-10T09:00:00z",
        "2025-10-10T11:00:00+02:00",
        "2025-10-10T04:30:00.000-04:30",
        "2025-10-10 09:00:00Z",
        1760086800000,
        1760086800000.0,
    ],
)
def test_accepted_times(value: object) -> None:
    assert one(player(time=value)).time == T_DT


def test_times_keep_milliseconds() -> None:
    e = one(player(time="2025-10-10T09:00:00.123+00:00"))
    assert e.time == T_DT + timedelta(milliseconds=123)
    assert e.time_ms == 1760086800123
    assert one(player(time=1760086800123)).time == e.time


@pytest.mark.parametrize(
    "value",
    [
        "2025-10-10T09:00:00",  # naive
        "2025-10-10 09:00:00",  # naive
        "2025-10-10",  # date only
        "2025-10-10+02:00",  # date only, with offset
        "yesterday",
        "",
        "2025-13-01T00:00:00Z",
        "1760086800000",  # epoch ms as text
        True,
        None,
        [2025, 10, 10],
        -1,
        float("nan"),
        10**16,
        0,  # 1970: before 2000
        "1999-12-31T23:59:59.999Z",
    ],
)
def test_rejected_times(value: object) -> None:
    assert problem(player(time=value)).field == "time"


def test_future_limit_is_one_day() -> None:
    assert timedelta(days=1) == MAX_FUTURE
    limit = NOW + MAX_FUTURE
    assert one(player(time=int(limit.timestamp() * 1000))).time == limit
    late = limit + timedelta(milliseconds=1)
    p = problem(player(time=late.isoformat()))
    assert p.field == "time" and "future" in p.message


def test_default_now_is_the_current_time() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    events, problems = validate_batch([player(time=soon.isoformat())])
    assert problems == [] and len(events) == 1
    far = datetime.now(UTC) + timedelta(days=2)
    assert validate_batch([player(time=far.isoformat())])[1][0].field == "time"


# --------------------------------------------------------------------------------------------
# ids


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_derived_id_is_deterministic(kind: str) -> None:
    first = one(BUILDERS[kind]())
    again = one(BUILDERS[kind]())
    assert first.id == again.id
    assert first.id.startswith("d-") and len(first.id) == 34
    assert first == again
    # the same instant written another way is the same event
    assert one(BUILDERS[kind](time="2025-10-10T11:00:00+02:00")).id == first.id
    assert one(BUILDERS[kind](time=1760086800000)).id == first.id


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("player", {"time": "2025-10-10T09:00:00.001Z"}),
        ("player", {"type": "paused"}),
        ("player", {"session": "ps-2"}),
        ("player", {"user": "3fde6422-f119-40e1-ae32-d08a1243c038"}),
        ("player", {"duration_ms": 0}),
        ("player", {"video_time": 1}),
        ("player", {"os": "Windows"}),
        ("channel", {"type": "PUBLISH_END"}),
        ("channel", {"channel": "ls-2"}),
        ("channel", {"level": "ERROR"}),
        ("channel", {"description": "x"}),
        ("desktop", {"session": 43}),
        ("desktop", {"user_id": 8}),
        ("desktop", {"title": "Book1"}),
        ("endpoint", {"page_id": "p2"}),
        ("endpoint", {"on_load_ms": 1201}),
        ("endpoint", {"agent_id": "other"}),
    ],
)
def test_derived_id_differs_when_content_differs(kind: str, change: dict[str, Any]) -> None:
    assert one(BUILDERS[kind](**change)).id != one(BUILDERS[kind]()).id


def test_derived_id_is_kind_specific() -> None:
    e = one(player())
    assert e.id == derive_id(e.kind, e.time, e.type, e.session, e.user, e.duration_ms, e.attrs)
    assert e.id != derive_id("desktop", e.time, e.type, e.session, e.user, None, e.attrs)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_explicit_id_is_kept(kind: str) -> None:
    e = one(BUILDERS[kind](id="client-chosen-1"))
    assert e.id == "client-chosen-1"
    assert one(BUILDERS[kind](id="x" * 128)).id == "x" * 128
    # an explicit id is not part of the content: a resend with another id is another event
    assert one(BUILDERS[kind](id="client-chosen-2")).id == "client-chosen-2"


# --------------------------------------------------------------------------------------------
# properties: the public shape round-trips, and so does the derived id

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
times_ms = st.integers(
    int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000), int(NOW.timestamp() * 1000)
)


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(BUILDERS)))
    epoch_ms = draw(times_ms)
    as_text = format_time(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms))
    obj: dict[str, Any] = BUILDERS[kind](time=draw(st.sampled_from([epoch_ms, as_text])))
    if draw(st.booleans()):
        obj["duration_ms"] = draw(st.integers(0, 10**9))
    if kind == "player":
        obj["session"] = draw(text.filter(str.strip))
        obj["type"] = draw(st.sampled_from(["player_start", "startup", "playing", "error"]))
        obj["video_time"] = draw(st.floats(0, 10**6, allow_nan=False))
        obj["os"] = draw(text)
    elif kind == "channel":
        obj["type"] = draw(st.from_regex(r"\A[A-Z][A-Z0-9_]{0,20}\Z"))
        obj["level"] = draw(st.sampled_from(["INFO", "ERROR", "info"]))
        obj["description"] = draw(text)
    elif kind == "desktop":
        obj["session"] = draw(st.integers(1, 2**31 - 1))
        obj["user_id"] = draw(st.integers(0, 2**31 - 1))
        obj["title"] = draw(text)
    else:
        obj["page_id"] = draw(text.filter(str.strip))
        obj["on_load_ms"] = draw(st.integers(0, 10**6))
        obj["response_code"] = draw(st.integers(100, 599))
    return obj


@PROPS
@given(raw_events())
def test_public_shape_round_trips(obj: dict[str, Any]) -> None:
    e = one(obj)
    assert one(e.as_dict()) == e
    # a resend of the same content without the id derives the same id
    assert one(without(e.as_dict(), "id")).id == e.id
    assert one(dict(obj)).id == e.id


# --------------------------------------------------------------------------------------------
# known discrepancies


@pytest.mark.parametrize("value", ["-5", "-1:00:00", "nan", "inf"])
def test_video_time_text_is_checked_like_a_number(value: str) -> None:
    assert problem(player(video_time=value)).field == "video_time"


def test_time_ms_is_exact() -> None:
    assert one(player(time=1080396348123)).time_ms == 1080396348123


@pytest.mark.parametrize(
    "value", ["2025-10-10T09Z", "2025-10-10T09:00Z", "20251010T090000Z", "2025-W41-5T09:00:00Z"]
)
def test_only_rfc3339_text_is_accepted(value: str) -> None:
    assert problem(player(time=value)).field == "time"


# Ids derived by earlier releases: a client resending old events after an upgrade must get the
# same ids, or its retries would be stored twice.
STABLE_IDS = [
    (player(), "d-fed0a726df234ba5d3b7a2ca572af60c"),
    (channel(), "d-cb2af1c3fe86fa128f9bf03165d4af94"),
    (desktop(), "d-1c478aa891605f4ccb0b17ef2e7ad84f"),
    (endpoint(), "d-d49ac7e819b1e6b6bc2726b9b9cca58f"),
]


@pytest.mark.parametrize(("obj", "expected"), STABLE_IDS)
def test_derived_ids_are_stable_across_releases(obj: dict[str, Any], expected: str) -> None:
    assert one(obj).id == expected


def test_bytes_and_objects_validate_alike() -> None:
    items = [player(), channel(), desktop(), endpoint(), without(player(), "user"), "x"]
    ndjson = b"\n".join(orjson.dumps(i) for i in items)
    for decoded in (
        decode_batch(ndjson, ndjson=True, now=NOW),
        decode_batch(orjson.dumps(items), ndjson=False, now=NOW),
    ):
        assert decoded == validate_batch(items, now=NOW)
    good = items[:4]
    assert decode_batch(orjson.dumps(good), ndjson=False, now=NOW) == validate_batch(good, now=NOW)
    assert decode_batch(orjson.dumps(good[0]), ndjson=False, now=NOW)[0] == [one(good[0])]


@pytest.mark.parametrize(
    "body", [b"[1, 2", b"{", b"42", b'"text"', b"", b"[{]"], ids=lambda b: b.decode() or "empty"
)
def test_bodies_that_are_not_json_are_a_syntax_error(body: bytes) -> None:
    with pytest.raises(BatchSyntaxError):
        decode_batch(body, ndjson=False, now=NOW)


def test_ndjson_names_every_bad_line() -> None:
    body = b'{"kind": "player"\n\n' + orjson.dumps(player()) + b"\nnot json\n"
    with pytest.raises(BatchSyntaxError) as info:
        decode_batch(body, ndjson=True, now=NOW)
    assert [(p.index, p.message.split(":")[0]) for p in info.value.problems] == [
        (0, "line 1"),
        (2, "line 4"),
    ]


@PROPS
@given(
    st.one_of(
        st.integers(0, MAX_EPOCH_MS).map(float),
        st.floats(0, MAX_EPOCH_MS, allow_nan=False),
        st.sampled_from([0.0, 0.5, 999.999, float(MAX_EPOCH_MS)]),
    )
)
def test_epoch_milliseconds_are_converted_exactly(ms: float) -> None:
    """Whole milliseconds take a path of their own (in integers): the same instant as the
    general one."""
    event = validate_batch([{**DESKTOP_AT, "time": ms}], now=LATER)
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    if expected < datetime(2000, 1, 1, tzinfo=UTC) or expected > LATER + MAX_FUTURE:
        assert event[1] and event[1][0].field == "time"
    else:
        assert event[0][0].time == expected


DESKTOP_AT = {"kind": "desktop", "type": "login", "session": 1, "user_id": 2}
LATER = datetime(9998, 12, 30, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# a large batch decoded as columns holds what its events hold


#: How a batch's times are written: each event's own way (text or epoch ms, mixed), all epoch
#: ms, all text in UTC, all text at an offset; and what may be wrong with one event.
TIME_STYLES = ["as drawn", "ms", "utc", "offset"]
FLAWS = [None, "no id", "fraction of a ms", "before 2000", "tomorrow and more", "missing field"]


def _restyle(obj: dict[str, Any], style: str) -> dict[str, Any]:
    ms = epoch_ms(parse_time(obj["time"]))
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    if style == "ms":
        return {**obj, "time": ms}
    if style == "utc":
        return {**obj, "time": format_time(at)}
    if style == "offset":
        local = at.astimezone(timezone(timedelta(hours=5, minutes=30)))
        return {**obj, "time": local.isoformat(timespec="microseconds")}
    return obj


@PROPS
@given(
    st.lists(raw_events(), min_size=1, max_size=20),
    st.sampled_from(TIME_STYLES),
    st.sampled_from(FLAWS),
    st.booleans(),
    st.data(),
)
def test_a_batch_decoded_as_columns_holds_what_its_events_hold(
    objs: list[dict[str, Any]], style: str, flaw: str | None, ndjson: bool, data: st.DataObject
) -> None:
    objs = [_restyle(o, style) for o in objs]
    for o in objs:
        if data.draw(st.booleans()):
            o["id"] = data.draw(text)
    at = data.draw(st.integers(0, len(objs) - 1))
    if flaw == "no id":
        objs[at].pop("id", None)
    elif flaw == "fraction of a ms":
        objs[at]["time"] = epoch_ms(parse_time(objs[at]["time"])) + 0.5
    elif flaw == "before 2000":
        objs[at]["time"] = "1999-12-31T23:59:59.999Z"
    elif flaw == "tomorrow and more":
        objs[at]["time"] = format_time(NOW + MAX_FUTURE + timedelta(milliseconds=1))
    elif flaw == "missing field":
        objs[at].pop("type")
    body = b"\n".join(orjson.dumps(o) for o in objs) if ndjson else orjson.dumps(objs)
    columns = decode_columns(body, ndjson=ndjson, least=1, now=NOW)
    events, problems = decode_batch(body, ndjson=ndjson, now=NOW)
    if columns is None:
        # Only a batch with a problem, a mix of time styles or a fraction of a millisecond
        # takes the event-by-event path.
        assert problems or style == "as drawn" or flaw == "fraction of a ms"
        return
    assert problems == []
    assert columns_table(7, columns).equals(event_table(7, events))
    assert columns.ids == [e.id for e in events]


def test_columns_need_enough_events_of_a_batch() -> None:
    body = orjson.dumps([player(id=f"p-{i}") for i in range(3)])
    assert decode_columns(body, ndjson=False, least=4, now=NOW) is None
    assert decode_columns(body, ndjson=False, least=3, now=NOW) is not None
    assert decode_columns(orjson.dumps(player()), ndjson=False, least=1, now=NOW) is None
    assert decode_columns(b"[" * 100_000, ndjson=False, least=1, now=NOW) is None
