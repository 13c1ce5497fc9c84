"""``make bench``: sessionscope against the raw engine, written to ``docs/performance.md``.

Phases (each engine user in a process of its own; chDB allows one engine per process):

1. the read store: ``BENCH_EVENTS`` (default 5,000,000) simulated events, built once under
   ``bench/.data`` through ``store.insert_events`` and reused by later runs;
2. the baseline on a fresh copy: the same SQL and the same inserts, straight through
   clickhouse-connect (see ``rawengine.py``);
3. ours on another fresh copy: ``sessionscope serve`` as a process, driven over HTTP by
   concurrent clients (see ``against_server.py``);
4. ingest against ActivityWatch's aw-server: both servers as processes, the same client (see
   ``ingest_peer.py``, which also runs alone);
5. server memory as the store grows: ``sessionscope serve``'s RSS on a 1M- and a 10M-event
   store, each built once under ``bench/.data`` (see ``memory.py``, which also runs alone);
6. the report: figures, ratios (ours / raw, ours / aw-server), memory, and targets.

Environment: ``BENCH_EVENTS`` (store size), ``BENCH_CLIENTS`` (concurrent clients, default 4),
``BENCH_SAMPLES`` (timed requests per read), ``BENCH_PEER_SECONDS`` (sustained ingest of phase
4, default 60), ``BENCH_MEMORY_SIZES`` (store sizes of phase 5, default ``1000000,10000000``).
``--report PATH`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import DATA_DIR, REPO, BenchConfig, Figure, cpu_probe_ms, in_child, log
from reads import reads
from report import machine, write_report
from workload import ensure_store, work_copy

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run every phase and write the report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="write the report from the last run's figures (bench/.data/last-run.json) only",
    )
    args = parser.parse_args(argv)
    if args.rerender:
        render(json.loads((DATA_DIR / "last-run.json").read_text()), args.report)
        return 0
    cfg = BenchConfig.from_env()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    probe_before = cpu_probe_ms()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    log(
        f"store of {cfg.events:,} events; {cfg.clients} clients; "
        f"{cfg.ingest_events:,} events in batches of {cfg.batch_size}; "
        f"{cfg.single_events:,} single events; {cfg.samples} samples per read"
    )
    store = ensure_store(cfg.events)
    read_list = reads(store.end, cfg.cursor_pages)

    from against_server import measure_http_floor, measure_server
    from rawengine import measure_baseline

    log("baseline: the raw engine on a fresh copy of the store")
    raw_dir = work_copy(store, "raw")
    raw = in_child(
        measure_baseline,
        str(raw_dir),
        cfg,
        store.end,
        store.project_ids,
        store.api_keys,
        read_list,
    )
    shutil.rmtree(raw_dir, ignore_errors=True)

    log("ours: the server as a process on a fresh copy of the store")
    ours_dir = work_copy(store, "ours")
    ours = measure_server(ours_dir, cfg, store.end, store.project_ids, store.api_keys, read_list)
    shutil.rmtree(ours_dir, ignore_errors=True)
    log("the HTTP floor: the same requests to an endpoint that only reads them")
    ours.update(measure_http_floor(cfg, store.end))
    log("ingest against aw-server: both servers as processes, the same client")
    peer = _measure_peer()
    log("server memory as the store grows")
    memory = _measure_memory()

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "config": {
            "events": cfg.events,
            "clients": cfg.clients,
            "many_clients": cfg.many_clients,
            "batch_size": cfg.batch_size,
            "large_batch_size": cfg.large_batch_size,
            "ingest_events": cfg.ingest_events,
            "single_events": cfg.single_events,
            "samples": cfg.samples,
            "cursor_pages": cfg.cursor_pages,
        },
        "machine": machine(),
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_probe_ms": [probe_before, cpu_probe_ms()],
        "store": {k: v for k, v in store.to_json().items() if k != "api_keys"},
        "store_reused": store.built_at < started_at,
        "ours": ours,
        "raw": raw,
        "ingest_peer": peer,
        "memory": memory,
    }
    (DATA_DIR / "last-run.json").write_text(json.dumps(result, indent=2))
    render(result, args.report)
    log(f"done in {result['seconds']:.0f} s; figures in {args.report}")
    return 0


def _measure_peer() -> dict[str, Any]:
    """Run ``ingest_peer.py``'s phase; a failure is recorded, not fatal to the other phases."""
    from ingest_peer import PeerConfig, measure_peer, save

    try:
        peer = measure_peer(PeerConfig.from_env())
    except Exception as exc:  # reported in the section
        log(f"  ingest against aw-server failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    save(peer)
    return peer


def _measure_memory() -> dict[str, Any]:
    """Run ``memory.py``'s phase; a failure is recorded, not fatal to the other phases."""
    from memory import MemoryConfig, measure_memory, save

    try:
        memory = measure_memory(MemoryConfig.from_env())
    except Exception as exc:  # reported in the section
        log(f"  server memory failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    save(memory)
    return memory


def render(result: dict[str, Any], path: Path) -> None:
    """Write the report of a run's figures (as kept in ``last-run.json``) to ``path``."""
    read_list = reads(
        datetime.fromisoformat(result["store"]["end"]), result["config"]["cursor_pages"]
    )
    ours, raw = (
        {k: Figure.from_dict(v) for k, v in result[side].items()} for side in ("ours", "raw")
    )
    write_report(path, result, ours, raw, read_list)


if __name__ == "__main__":
    sys.exit(main())
