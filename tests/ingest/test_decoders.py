"""Large bodies are decoded in worker processes (``ingest.decoders``): the same batches, the
same refusals and the same stored events as decoding them in the server, and a worker that
dies costs no batch."""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pytest

from sessionscope.domain.events import decode_batch
from sessionscope.ingest import Ingestor
from sessionscope.ingest.decoders import (
    SPLIT_BYTES,
    WARM_UP_EVENTS,
    Decoders,
    _Slots,
    prepare_in_worker,
    split_body,
)
from sessionscope.ingest.journal import Record
from sessionscope.ingest.pipeline import INLINE_BODY_BYTES, IngestError, parse_events
from sessionscope.ingest.records import Batch, concat, encode, tables
from sessionscope.store.clickhouse import ClickHouseStore, event_table
from tests.conftest import Tenant, cli_json, serve_process
from tests.factories import BASE, channel, desktop, endpoint, minutes, player


def _mixed(n: int, tag: str) -> list[dict[str, Any]]:
    kinds = [
        lambda i: player(session=f"{tag}-p{i % 7}", at=BASE + minutes(i), id=f"{tag}-{i}"),
        lambda i: desktop(session=1 + i % 5, at=BASE + minutes(i), id=f"{tag}-{i}", app="ed"),
        lambda i: endpoint(session=f"{tag}-e{i % 3}", at=BASE + minutes(i), id=f"{tag}-{i}"),
        lambda i: channel(channel=f"{tag}-c", at=BASE + minutes(i), id=f"{tag}-{i}"),
    ]
    return [kinds[i % 4](i) for i in range(n)]


def _post(http: httpx.Client, tenant: Tenant, body: bytes, **headers: str) -> httpx.Response:
    return http.post(
        "/api/v1/events",
        content=body,
        headers={**tenant.auth, "Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize("events", [300, 40])  # Arrow columns, and msgpack (under 64 events)
def test_a_worker_builds_the_batch_the_server_would(events: int) -> None:
    batch = _mixed(events, "same")
    if events < 64:  # few events, a body over the inline size all the same
        batch = [
            desktop(at=BASE + minutes(i), id=f"long-{i}", title="t" * 1900) for i in range(events)
        ]
    body = orjson.dumps(batch)
    assert len(body) > INLINE_BODY_BYTES
    out = prepare_in_worker(3, body, "application/json", None, 10 << 20)
    assert out[0] == "ok"
    worker = Batch.encoded(3, out[1], True, out[2])
    here = Batch(3, decode_batch(body, ndjson=False)[0], True)
    assert worker.ids == here.ids
    assert worker.hashes is not None and here.hashes is not None
    assert np.array_equal(worker.hashes, here.hashes)
    assert worker.body == here.body
    # A worker's batch with some events dropped is the server's batch with the same dropped.
    keep = [i % 3 != 0 for i in range(events)]
    assert _rows(3, worker.subset(keep)) == _rows(3, here.subset(keep))
    assert len(_rows(3, worker.subset(keep))) == sum(keep)


def _rows(project_id: int, body: bytes) -> list[dict[str, Any]]:
    return [
        row for _, table in tables([Record(1, project_id, 0, body)]) for row in table.to_pylist()
    ]


def test_arrow_records_are_compressed_and_old_ones_still_read() -> None:
    events = decode_batch(orjson.dumps(_mixed(500, "lz4")), ndjson=False)[0]
    table = event_table(2, events)
    body = encode(2, events)
    assert len(body) * 3 < table.nbytes  # LZ4: several times smaller
    sink = pa.BufferOutputStream()  # a record of an earlier version: not compressed
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    old = b"ARROWIPC" + sink.getvalue().to_pybytes()
    assert len(old) > table.nbytes
    read = tables([Record(1, 2, 500, body), Record(2, 2, 500, old)])
    assert [t.to_pylist() for _, t in read] == [table.to_pylist(), table.to_pylist()]


def test_a_worker_refuses_what_the_server_refuses() -> None:
    bad = [player(), player(user="not-a-uuid"), desktop(session=0)] * 200
    out = prepare_in_worker(1, orjson.dumps(bad), "application/json", None, 10 << 20)
    assert out[:3] == ("refused", 400, "invalid_events")
    assert [(p.index, p.field) for p in out[4]][:4] == [
        (1, "user"),
        (2, "session"),
        (4, "user"),
        (5, "session"),
    ]
    assert len(out[4]) == 400
    assert prepare_in_worker(1, b"[" * 100_000, None, None, 10 << 20)[:3] == (
        "refused",
        400,
        "invalid_json",
    )
    big = gzip.compress(b" " * (2 << 20))
    assert prepare_in_worker(1, big, None, "gzip", 1 << 20)[:3] == (
        "refused",
        413,
        "too_large",
    )


def test_large_batches_over_http_go_through_the_workers(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore, ingestor: Ingestor
) -> None:
    before = ingestor.decoders.batches
    batch = _mixed(600, "w")
    body = orjson.dumps(batch)
    assert len(body) > INLINE_BODY_BYTES
    assert _post(http, tenant, body).json() == {"accepted": 600, "duplicates": 0}
    # Sent again with a third of it new (gzip): only the new third is stored.
    again = batch[:400] + _mixed(200, "w2")
    r = _post(http, tenant, gzip.compress(orjson.dumps(again)), **{"Content-Encoding": "gzip"})
    assert r.json() == {"accepted": 200, "duplicates": 400}
    assert ingestor.decoders.batches == before + 2
    assert loaded_store.count_events(tenant.project.id) == 800
    # The same sessions as when the events arrive in small batches (decoded in the server).
    assert loaded_store.count_events(tenant.project.id, "player") == 200


def test_events_decoded_in_a_worker_are_duplicates_once_stored(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore, ingestor: Ingestor
) -> None:
    """Resent after they are loaded (when only the id filter knows them), one by one (decoded
    in the server) or as the same large batch (in a worker, maybe another): nothing is stored
    twice. The workers' own string hashes differ from the server's: they must not be used."""
    batch = _mixed(600, "loaded")
    assert _post(http, tenant, orjson.dumps(batch)).json() == {"accepted": 600, "duplicates": 0}
    assert loaded_store.count_events(tenant.project.id) == 600  # waits for the loader
    for event in batch[:3] + batch[-3:]:
        assert _post(http, tenant, orjson.dumps(event)).json() == {"accepted": 0, "duplicates": 1}
    for _ in range(3):  # two workers: each of them gets it at least once in three tries
        assert _post(http, tenant, orjson.dumps(batch)).json() == {"accepted": 0, "duplicates": 600}
    # The other way round: sent one by one first, then inside a large batch.
    fresh = _mixed(600, "small-first")
    for event in fresh[:5]:
        assert _post(http, tenant, orjson.dumps(event)).json()["accepted"] == 1
    assert loaded_store.count_events(tenant.project.id) == 605
    r = _post(http, tenant, orjson.dumps(fresh))
    assert r.json() == {"accepted": 595, "duplicates": 5}
    assert loaded_store.count_events(tenant.project.id) == 1200


def test_a_large_invalid_batch_lists_every_problem_and_stores_nothing(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore
) -> None:
    batch = _mixed(600, "bad")
    batch[5]["port"] = 70000
    batch[9]["user"] = "nobody"
    r = _post(http, tenant, orjson.dumps(batch))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_events"
    assert [(p["index"], p["field"]) for p in error["problems"]] == [(5, "port"), (9, "user")]
    assert loaded_store.count_events(tenant.project.id) == 0


def test_a_worker_that_dies_costs_no_batch(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore, ingestor: Ingestor
) -> None:
    assert _post(http, tenant, orjson.dumps(_mixed(300, "k1"))).json()["accepted"] == 300
    pool = ingestor.decoders._pool
    assert pool is not None
    for pid in list(pool._processes):  # as the kernel's OOM killer would
        os.kill(pid, signal.SIGKILL)
    for n in range(2, 5):  # the first finds the pool broken; later ones get a new pool
        r = _post(http, tenant, orjson.dumps(_mixed(300, f"k{n}")))
        assert r.json() == {"accepted": 300, "duplicates": 0}
    assert ingestor.decoders._pool is not None and ingestor.decoders._pool is not pool
    assert loaded_store.count_events(tenant.project.id) == 1200


@pytest.mark.parametrize("ndjson", [False, True])
def test_a_large_body_is_cut_into_whole_events(ndjson: bool) -> None:
    batch = _mixed(12_000, "cut")
    if ndjson:
        body = b"\n".join(orjson.dumps(e) for e in batch) + b"\n"
        content_type = "application/x-ndjson"
    else:
        body = orjson.dumps(batch)
        content_type = "application/json"
    assert len(body) > SPLIT_BYTES
    parts = split_body(gzip.compress(body), content_type, "gzip", 50 << 20, 3)
    assert parts is not None and len(parts) == 3
    decoded = [decode_batch(p, ndjson=ndjson)[0] for p in parts]
    assert [e.id for part in decoded for e in part] == [e["id"] for e in batch]
    whole = Batch(5, decode_batch(body, ndjson=ndjson)[0], True)
    bodies = [Batch(5, part, True).body for part in decoded]
    joined = concat(5, bodies)
    assert _rows(5, joined) == _rows(5, whole.body)
    # Arrow streams back to back: nothing decoded or encoded again; a subset reads them all.
    assert joined == b"ARROWIPC" + b"".join(body[8:] for body in bodies)
    keep = [i % 5 != 0 for i in range(len(batch))]
    subset = Batch.encoded(5, [e["id"] for e in batch], True, joined).subset(keep)
    assert _rows(5, subset) == [r for r, k in zip(_rows(5, whole.body), keep, strict=True) if k]
    # Not cut: small, or not a JSON array or NDJSON.
    assert split_body(orjson.dumps(batch[:100]), content_type, None, 50 << 20, 2) is None
    assert split_body(b"{" + body[1:], "application/json", None, 50 << 20, 2) is None
    # Refused as the whole would be, without inflating it again: past the bound, not gzip.
    with pytest.raises(IngestError) as refused:
        split_body(gzip.compress(body), content_type, "gzip", SPLIT_BYTES, 3)
    assert refused.value.status == 413
    with pytest.raises(IngestError) as refused:
        split_body(body, content_type, "gzip", 50 << 20, 3)
    assert (refused.value.status, refused.value.code) == (400, "bad_gzip")


def test_a_large_body_decoded_in_parts_over_http(
    http: httpx.Client, tenant: Tenant, loaded_store: ClickHouseStore, ingestor: Ingestor
) -> None:
    split = ingestor.decoders.split_batches
    batch = _mixed(10_000, "big")
    body = b"\n".join(orjson.dumps(e) for e in batch)
    assert len(body) > SPLIT_BYTES
    r = _post(
        http,
        tenant,
        gzip.compress(body),
        **{"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
    )
    assert r.json() == {"accepted": 10_000, "duplicates": 0}
    assert ingestor.decoders.split_batches == split + 1
    # Problems in two parts: named as when the body is decoded whole.
    bad = _mixed(10_000, "big-bad")
    bad[3]["port"] = 0
    bad[9_001]["user"] = "nobody"
    r = _post(http, tenant, orjson.dumps(bad))
    assert r.status_code == 400
    problems = r.json()["error"]["problems"]
    assert [(p["index"], p["field"]) for p in problems] == [(3, "port"), (9_001, "user")]
    # Cut where it should not be (the body is cut without parsing it): a title holding
    # ``},{`` right where a cut falls, and a body cut short. Each part is refused or decoded
    # as it should, and the answer is the whole body's.
    tricky = _mixed(10_000, "tricky")
    for event in tricky[4_990:5_010]:
        if event["kind"] == "desktop":
            event["title"] = 'a"}, {"b": ' * 50
    parts = split_body(orjson.dumps(tricky), "application/json", None, 50 << 20, 2)
    assert parts is not None
    with pytest.raises(orjson.JSONDecodeError):  # the cut fell inside a title
        orjson.loads(parts[0])
    r = _post(http, tenant, orjson.dumps(tricky))
    assert r.json() == {"accepted": 10_000, "duplicates": 0}
    cut_short = orjson.dumps(_mixed(10_000, "short"))[:-100]
    r = _post(http, tenant, cut_short)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_json",
        "message": ingest_refusal(cut_short).message,
    }
    assert loaded_store.count_events(tenant.project.id) == 20_000
    assert loaded_store.count_events(tenant.project.id, "player") == 5_000


def ingest_refusal(body: bytes) -> IngestError:
    """The refusal of ``body`` decoded whole, in this process."""
    with pytest.raises(IngestError) as refused:
        parse_events(body, "application/json")
    return refused.value


def _workers_of(pid: int) -> list[int]:
    """The decoding processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
                cmdline = (Path("/proc") / entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_decoding_processes_end_with_their_server(tmp_path: Path, stop: signal.Signals) -> None:
    data = tmp_path / "data"
    cli_json(data, "projects", "create", "w")
    key = cli_json(data, "keys", "create", "--project", "w")["api_key"]
    with serve_process(data) as url:
        server = json.loads((data / "server.json").read_text())["pid"]
        headers = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{url}/api/v1/events",
            content=orjson.dumps(_mixed(400, "o")),
            headers={**headers, "Content-Type": "application/json"},
            timeout=60,
        )
        assert r.json() == {"accepted": 400, "duplicates": 0}
        workers = _workers_of(server)
        assert len(workers) == 2
        # The body went to a worker in shared memory, in a segment kept for the next one.
        assert _segments_of(server)
        os.kill(server, stop)
        deadline = time.monotonic() + 20
        while (
            any(_alive(w) for w in workers) or _segments_of(server)
        ) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)]
        assert not _segments_of(server)  # removed, even when the server was killed


def _segments_of(pid: int) -> list[str]:
    """The shared memory segments of the server ``pid`` (``decoders._Slots``)."""
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"sessionscope-{pid}-")]


def test_bodies_reach_workers_in_shared_memory_kept_for_the_next_ones() -> None:
    slots = _Slots(2)
    try:
        small = slots.take(b"a" * 100)
        assert small is not None and small.size == 1 << 20  # at least 1 MiB
        view = small.buf
        assert view is not None and bytes(view[:100]) == b"a" * 100
        del view
        other = slots.take(b"b" * 10)
        assert other is not None and other.name != small.name
        assert slots.take(b"c") is None  # at most 2 in use: the body goes through the pipe
        slots.give(small)
        assert slots.take(b"d" * 5) is small  # used again
        slots.give(small)
        slots.give(other)
        large = slots.take(b"e" * (3 << 20))  # none holds it: the one kept last is replaced
        assert large is not None and large.size == 4 << 20
        assert large.name not in (small.name, other.name)
        assert not Path(f"/dev/shm/{other.name}").exists()
        assert slots.take(b"f" * (_Slots.MAX_BYTES + 1)) is None  # past the bound: the pipe
        slots.give(large)
        names = {small.name, large.name}
        # A worker reads what the server wrote, as a server reading it whole would.
        body = orjson.dumps(_mixed(300, "shm"))
        held = slots.take(body)
        assert held is not None
        out = prepare_in_worker(3, (held.name, len(body)), "application/json", None, 10 << 20)
        assert out == prepare_in_worker(3, body, "application/json", None, 10 << 20)
        slots.give(held)
    finally:
        slots.close()
    assert not [n for n in names if Path(f"/dev/shm/{n}").exists()]


def test_a_body_goes_through_the_pipe_when_shared_memory_is_refused() -> None:
    """A segment's memory is reserved when it is made: refused (here by a file size limit,
    as a full ``/dev/shm`` would), the body goes through the pipe; written unreserved, a full
    ``/dev/shm`` would have killed the server with SIGBUS."""
    slots = _Slots(2)
    before = set(os.listdir("/dev/shm"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        assert slots.take(b"x" * 100) is None
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert set(os.listdir("/dev/shm")) == before  # nothing left of the refused segment
    taken = slots.take(b"x" * 100)  # allowed again
    assert taken is not None
    slots.give(taken)
    slots.close()


def _arrow_allocator() -> str:
    return str(pa.default_memory_pool().backend_name)


def test_decoding_processes_build_columns_with_the_c_allocator() -> None:
    """Arrow's default allocator gave each batch fresh pages to zero (``heap``): a worker
    allocates Arrow's buffers with ``malloc``, which keeps what it frees."""
    decoders = Decoders(1, hashed=False)
    try:
        pool = decoders._executor()
        assert pool is not None
        assert pool.submit(_arrow_allocator).result(timeout=120) == "system"
    finally:
        decoders.close()


def _warm_up_in_worker() -> tuple[Any, ...]:
    from sessionscope.ingest.decoders import _warm_up

    out = _warm_up()
    return (out[0], len(out[1]), out[2][:8]) if out[0] == "ok" else out


def test_a_new_worker_decodes_a_made_up_batch_as_it_starts() -> None:
    """A worker's warm-up (``_warm_up``, at its start) takes the path of a real large batch:
    valid events, decoded into Arrow columns. Were the made-up events refused, it would only
    warm the refusals."""
    decoders = Decoders(1, hashed=False)
    try:
        pool = decoders._executor()
        assert pool is not None
        assert pool.submit(_warm_up_in_worker).result(timeout=120) == (
            "ok",
            WARM_UP_EVENTS,
            b"ARROWIPC",
        )
    finally:
        decoders.close()
