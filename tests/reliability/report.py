"""Write docs/reliability.md from the figures ``make reliability`` recorded.

``python -m tests.reliability.report FIGURES.jsonl docs/reliability.md``
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CATEGORIES = {
    "fuzz": "Fuzzing (schemathesis over the schema; hypothesis strategies for the parsers)",
    "abuse": "Resource abuse (gzip bombs, deep JSON, big bodies, huge URLs, slow clients)",
    "credentials": "Credential abuse (signatures replayed or altered, keys of another project)",
    "isolation": "Tenant isolation (project A's credentials against project B's data)",
    "faults": "Store faults (unreachable, failing mid-query: 503 expected)",
}


def main(source: Path, target: Path, settings: str) -> None:
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in source.read_text().splitlines():
        for name, figures in json.loads(line).items():
            sections[name].append(figures)
    by_category: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    families: dict[str, set[str]] = defaultdict(set)
    for tally in sections["tally"]:
        for category, family, status, n in tally["rows"]:
            by_category[category][status] += n
            families[category].add(family)
    rows = []
    unexpected_5xx = 0
    for category, label in CATEGORIES.items():
        counts = by_category.get(category, {})
        total = sum(counts.values())
        fives = counts.get("5xx", 0)
        if category != "faults":
            unexpected_5xx += fives
        rows.append(
            f"| {label} | {total} | {counts.get('2xx', 0) + counts.get('3xx', 0)} | "
            f"{counts.get('4xx', 0)} | {fives} | {', '.join(sorted(families[category]))} |"
        )
    isolation = sections["isolation"]
    leaks = (
        f"{sum(i['leaks'] for i in isolation)} in {sum(i['responses'] for i in isolation)} answers"
        if isolation
        else "not run"
    )
    cli = sections["cli"][-1] if sections["cli"] else {}
    acked = sum(a["acked"] for a in sections["acked"]) + cli.get("acked_before_a_stop", 0)
    lost = sum(a["lost"] for a in sections["acked"]) + cli.get("lost", 0)
    rss = sections["rss"][-1] if sections["rss"] else {}
    lat = sections["latency"][-1] if sections["latency"] else {}
    ratio = lat.get("abuse_p99_ms", 0) / lat["quiet_p99_ms"] if lat.get("quiet_p99_ms") else 0
    mib = f"{rss.get('before_kib', 0) / 1024:.0f} MiB / {rss.get('peak_kib', 0) / 1024:.0f} MiB"
    p50 = f"{lat.get('quiet_p50_ms', 0):.1f} ms / {lat.get('abuse_p50_ms', 0):.1f} ms"
    p99 = f"{lat.get('quiet_p99_ms', 0):.1f} ms / {lat.get('abuse_p99_ms', 0):.1f} ms"
    figures = [
        ("5xx answers (outside the store-fault tests)", str(unexpected_5xx)),
        ("Cross-tenant leaks (answers to A holding B's data)", leaks),
        (
            "Acknowledged events lost (servers stopped by SIGTERM/SIGINT; writes under abuse)",
            f"{lost} of {acked}",
        ),
        (
            "CLI processes run / ended by a signal (crash)",
            f"{cli.get('runs', 0)} / {cli.get('signals', 0)}",
        ),
        ("Server peak RSS before abuse / under abuse", mib),
        ("Well-behaved tenant's read p50, quiet / under abuse", p50),
        ("Well-behaved tenant's read p99, quiet / under abuse", f"{p99} ({ratio:.1f}x)"),
        ("Abusive requests sent meanwhile", str(lat.get("abusive_requests", 0))),
    ]
    outcomes = "\n".join(f"| {name} | {value} |" for name, value in figures)
    text = f"""# Reliability and security: figures

Written by `make reliability` ({settings}) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; a shorter
run of the same tests is part of `make test`. Every request below was checked: never a 5xx
(except the 503 a store fault must answer), every 4xx in its API family's error shape.

## Requests tried

| Category | Requests | 2xx/3xx | 4xx | 5xx | API families |
|---|---:|---:|---:|---:|---|
{chr(10).join(rows)}

## Outcomes

| Figure | Value |
|---|---:|
{outcomes}

Latency is measured on a shared 2-core machine (the tests never assert on time). The
tenant reads `/api/v1/sessions` one request at a time, first alone, then while another
process's four clients send gzip bombs, 100 000-deep JSON, bodies past the limit and
half-open connections as fast as they can.

## What the server does about it

- **Bodies**: no body past twice `SESSIONSCOPE_MAX_BODY_BYTES` reaches a route (413 at once
  on `Content-Length`, or as soon as the bytes pass it); Ekran bodies are bounded to 64 KiB,
  ThousandEyes filters to 64 KiB, dashboard forms to 16 KiB; gzip is decoded up to the limit
  only (a 512 MiB bomb is a 413 after 10 MiB of work).
- **Request heads and slow bodies**: a head not complete within
  `SESSIONSCOPE_HEAD_TIMEOUT_MS` (10 s) is answered 408 and the connection closed (slowloris,
  idle connections); a body still arriving after twelve times that (2 minutes) is a 408; a URL
  over 64 KiB is a 414; headers over 64 KiB or 200 a 431.
- **JSON**: nesting too deep for the decoders is a 400 (it was a 500: msgspec's
  RecursionError).
- **Store faults**: an unreachable store or an engine error mid-query answers 503 with
  `Retry-After` in the family's shape; commands say which store they could not reach.
- **Exit**: commands and servers end with their documented status: `serve` stopped by SIGTERM
  or SIGINT exits 0 after closing the store (it used to die by SIGTERM, 143); the store's
  close stops its background loads before the engine's connections close (a thread left in
  the embedded engine at exit crashed it: segmentation fault, 139).
- **Credentials**: NAVER signatures are checked in constant time and refused outside five
  minutes or for any other method, path, query order or key; refused credentials are logged
  with the client's address, never the secret; every answer carries `nosniff`,
  `X-Frame-Options: DENY` and a Content-Security-Policy; dashboard forms (sign-in, project
  switch, sign-out) are refused from other sites.

## Not covered yet

- The well-behaved tenant's p99 under abuse is not held to 2x of its quiet p99 by anything
  in the server: the abusive clients here are unthrottled (hundreds of requests a second, on
  the same 2 shared cores as the server); each is refused quickly, but together they compete
  with the tenant for the server's event loop and the cores. Runs of this suite on the shared
  development machine measured ratios from 1.2x to 7.7x (the quiet p99 itself moves with the
  machine's other load). Per-client limits on refused requests and on connections would be
  the next step.
- Rate limiting of credential guessing (refusals are logged only).
- A full disk during ingest is covered by `tests/ingest/test_refusals.py` (refused, nothing
  acknowledged lost), not by this run.
"""
    target.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), " ".join(sys.argv[3:]) or "full length")
