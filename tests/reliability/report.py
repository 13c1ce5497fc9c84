"""Write docs/reliability.md from the figures ``make reliability`` recorded.

``python -m tests.reliability.report FIGURES.jsonl docs/reliability.md``
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CATEGORIES = {
    "fuzz": "Fuzzing (schemathesis over the schema; hypothesis strategies for the parsers)",
    "abuse": "Resource abuse (gzip bombs, deep JSON, big bodies, huge URLs, slow clients)",
    "credentials": "Credential abuse (signatures replayed or altered, keys of others, guessing)",
    "isolation": "Tenant isolation (project A's credentials against project B's data)",
    "faults": "Store faults (unreachable, failing mid-query: 503 expected)",
}


def _verdict(lat: dict[str, Any]) -> str:
    """Whether the 2x target held for abusers that do not wait, and what the control rows say
    about the rest."""
    quiet = lat.get("quiet_p99_ms", 0.0)

    def x(run: str, what: str = "p99_ms") -> str:
        return f"{lat.get(f'{run}_{what}', 0.0) / quiet:.1f}x" if quiet else "-"

    def cores(run: str, who: str) -> str:
        return f"{lat.get(f'{run}_{who}_cores', 0.0):.2f}"

    runs = ("flood", "flood_many")
    if quiet and all(lat.get(f"{r}_p99_ms", 0.0) <= 2 * quiet for r in runs):
        text = f"In this run the 2x target held for both ({x('flood')}, {x('flood_many')})."
    else:
        control = max(lat.get(f"{r}_p99_ms", 0.0) for r in ("elsewhere", "elsewhere_many"))
        text = (
            f"In this run the 2x target was missed: {x('flood')} from one address, "
            f"{x('flood_many')} from 250. The abusive process took {cores('flood', 'abuser')} "
            f"and {cores('flood_many', 'abuser')} of the two cores the tenant's reads share with "
            "it (and with whatever else runs on the machine); aimed at another server (the "
            f"control rows) it cost the tenant {x('elsewhere')} and {x('elsewhere_many')} by "
            f"itself, while that server spent {cores('elsewhere', 'server')} and "
            f"{cores('elsewhere_many', 'server')} cores on it. "
        )
        if quiet and control > 2 * quiet:
            text += (
                "So most of what is left is the machine's cores taken by the abusive process, "
                "not the server's work on the abuse: an abuser on another machine (as on a "
                "network) would leave the tenant only the server's share."
            )
        else:
            text += (
                "The abusive process alone does not explain it: the rest is the server's own "
                "work on the abuse."
            )
    return textwrap.fill(text, width=92, subsequent_indent="  ")


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
    # The server whose peak grew most (the tenant's, under every abuser at once).
    rss = max(sections["rss"], key=lambda r: r["peak_kib"] - r["before_kib"], default={})
    lat = sections["latency"][-1] if sections["latency"] else {}
    mib = f"{rss.get('before_kib', 0) / 1024:.0f} MiB / {rss.get('peak_kib', 0) / 1024:.0f} MiB"

    quiet50, quiet99 = lat.get("quiet_p50_ms", 0.0), lat.get("quiet_p99_ms", 0.0)

    def ratio(value: float, quiet: float) -> str:
        return f"{value / quiet:.1f}x" if quiet else "-"

    def latency_row(label: str, run: str) -> str:
        p50, p99 = lat.get(f"{run}_p50_ms", 0.0), lat.get(f"{run}_p99_ms", 0.0)
        answered, dropped = lat.get(f"{run}_answered", 0), lat.get(f"{run}_dropped", 0)
        cores = f"{lat.get(f'{run}_server_cores', 0):.2f} / {lat.get(f'{run}_abuser_cores', 0):.2f}"
        return (
            f"| {label} | {p50:.1f} ms ({ratio(p50, quiet50)}) | "
            f"{p99:.1f} ms ({ratio(p99, quiet99)}) | {answered} | {dropped} | {cores} |"
        )

    latency = "\n".join(
        [
            f"| Quiet | {quiet50:.1f} ms | {quiet99:.1f} ms | - | - | "
            f"{lat.get('quiet_server_cores', 0):.2f} / - |",
            latency_row("Abusers waiting for their answers, one address", "abuse"),
            latency_row("Abusers waiting for their answers, 250 addresses", "many"),
            latency_row("Abusers not waiting (128 connections), one address", "flood"),
            latency_row("Abusers not waiting (128 connections), 250 addresses", "flood_many"),
            latency_row("The same aimed at another server (control), one address", "elsewhere"),
            latency_row("The same aimed at another server (control), 250", "elsewhere_many"),
        ]
    )

    def within(run: str) -> str:
        """Whether the tenant's p99 under ``run`` stayed within twice its quiet p99."""
        p99 = lat.get(f"{run}_p99_ms", 0.0)
        held = quiet99 and p99 <= 2 * quiet99
        return f"{'held' if held else 'missed'} ({ratio(p99, quiet99)})"

    flood_verdict = _verdict(lat)
    goal = textwrap.fill(
        "Issue #16's target, a p99 within twice the quiet p99: waiting abusers, one address "
        f"{within('abuse')}, 250 addresses {within('many')}; abusers that do not wait, one "
        f"address {within('flood')}, 250 addresses {within('flood_many')}. With the abusers "
        "that do not wait aimed at another server of the machine instead (the control rows: "
        "the tenant's server does no work for them at all), the tenant's p99 was "
        f"{ratio(lat.get('elsewhere_p99_ms', 0), quiet99)} and "
        f"{ratio(lat.get('elsewhere_many_p99_ms', 0), quiet99)} of its quiet p99: what the "
        "abusive process costs the tenant by taking the shared cores, whatever the server "
        "does (single runs vary: another process may be using the cores too).",
        width=94,
    )

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

### The well-behaved tenant under abuse

| Tenant's reads | p50 (x quiet) | p99 (x quiet) | Abuse answered | Unanswered | Cores |
|---|---:|---:|---:|---:|---:|
{latency}

{goal}

Latency is measured on a shared 2-core machine (the tests never assert on time; another
process may be using the cores meanwhile, so single runs vary). The tenant reads one request
at a time from 127.0.0.1 ({lat.get("requests", 0)} reads a row): first alone, then while another
process abuses the server. **Waiting abusers** (`tests/reliability/abuser.py`): four clients
send gzip bombs, 100 000-deep JSON, bodies past the limit and half-open connections as fast as
they can, each its next request when the last is answered, first from one address of their own
(127.0.0.2), then from 250 addresses in turn (127.0.1.1 ...). One abusive address is answered
429 after a pause once 20 of its bodies were refused (below); 250 addresses get 20 refusals
each a minute, so there only the pause of every refused body holds them back. **Abusers that
do not wait** (`tests/reliability/flood.py`): 128 connections at once, from one address
(127.0.0.3) or from 250 (127.0.4.1 ..., the next one at each new connection), each sending
gzip bombs, 100 000-deep JSON or JSON cut short back to back on a kept-alive connection
(pipelined, the answers read by another task), or heads declaring a body past the limit, and
opening a new connection whenever the server closes one. The control rows run the same
abuse against a second server on the machine while the tenant reads from its own. "Abuse
answered" counts the abusive requests answered meanwhile (all 4xx), "Unanswered" the
connections the server closed (or refused at once) before answering anything on them;
"Cores" the CPU time the server abused and the abusive process used meanwhile (server /
abuser), per second, of the two cores (in the quiet row the server's is the tenant's reads
alone; in the control rows the server's is the other server's).

## What the server does about it

- **Bodies**: no body past twice `SESSIONSCOPE_MAX_BODY_BYTES` reaches a route (413 at once
  on `Content-Length`, or as soon as the bytes pass it); Ekran bodies are bounded to 64 KiB,
  ThousandEyes filters to 64 KiB, dashboard forms to 16 KiB; gzip is decoded up to the limit
  only (a 512 MiB bomb is a 413 after 10 MiB of work).
- **Clients whose bodies keep being refused**: every body refused as too large (413), too
  slow (408) or not JSON or gzip at all (400, 100 000-deep JSON among them; not a batch with
  invalid events) is answered after a pause of a quarter second, and an address with
  `SESSIONSCOPE_BODY_REFUSAL_LIMIT` (20) of them within a minute gets, for every request until
  the minute has passed, a 429 with `Retry-After` in the family's shape after a pause of one
  second (the connection closed after it). At most 16 answers of an address (512 in all) are
  held at once; more are sent at once. Refusals were cheap already, but a client sending them
  in a loop made hundreds a second, which took the event loop and the cores from everyone
  else; paused, it makes a few. Other addresses keep their speed; clients sharing the
  abuser's address (a NAT, a proxy not trusted with `X-Forwarded-For`) are paused with it.
- **Clients that do not wait for their answers** (`src/sessionscope/api/guard.py`, in the HTTP
  protocol, before any app task): an address may hold `SESSIONSCOPE_MAX_CONNECTIONS_PER_ADDRESS`
  (64) connections at once, more are closed as they are accepted (trusted proxies are not
  limited); requests pipelined on a connection are read one after another (reading waits while
  one is queued) and more than 16 queued close it; a `Content-Length` past the bound is
  answered 413 by the protocol and an address past its limit of refused bodies 429 after the
  pause (a paused connection, not a task), both in the family's shape. Every refusal answered
  spends one of `SESSIONSCOPE_REFUSAL_BUDGET_PER_S` (20 a second, in all), and so does every
  request of an address that had a body refused within the minute (it is likely refused
  again); with none left, such requests and new connections of such addresses, and the
  protocol's own refusals, get no answer: the connection is held unread for the pause of a
  second (512 at most, so that a client reconnecting at once does not make the server accept
  hundreds a second), then closed. Addresses that had nothing refused are served as always.
  Held means unread: until this stop a connection closed as it was accepted was read all the
  same (uvloop starts reading once the protocol's `connection_made` returns, whatever it
  paused), every packet of a flooding client read and thrown away for the second it was held
  (about 18 000 reads a second under the 250-address flood below; the server's CPU on that
  flood, without the tenant's reads, was 0.2 to 0.35 of a core, most of it in the kernel, and
  is about 0.1 now).
- **Request heads and slow bodies**: a head not complete within
  `SESSIONSCOPE_HEAD_TIMEOUT_MS` (10 s) is answered 408 and the connection closed (slowloris,
  idle connections); a body still arriving after twelve times that (2 minutes) is a 408; a URL
  over 64 KiB is a 414; headers over 64 KiB or 200 a 431; these, and a request that is not
  HTTP (400), are answered by the HTTP protocol in the family's shape of the path (as much of
  it as arrived). The head deadline no longer runs while the server holds the connection (a
  request before it still being answered): it cut pipelined answers short with a 408 and
  logged a traceback.
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
  with the client's address, never the secret, and what the client sent (a path) with its
  control characters escaped, so no request forges a log line or sends a terminal escape
  sequence to whoever reads the log (`tests/test_logs.py`); every answer carries `nosniff`,
  `X-Frame-Options: DENY` and a Content-Security-Policy; dashboard forms (sign-in, project
  switch, sign-out) are refused from other sites.
- **Credential guessing**: every 401 of any family (and a dashboard sign-in link that does not
  work) counts against the client's address; past `SESSIONSCOPE_AUTH_FAILURE_LIMIT` (30) within
  `SESSIONSCOPE_AUTH_FAILURE_WINDOW_S` (60 s), the address's requests carrying a credential
  answer 429 with `Retry-After` in the family's shape, unchecked, until the window has passed
  (logged once per window, with the address). Credentials the address had accepted before keep
  working, so a collector beside a misconfigured one is not stopped; a new credential waits like
  a guess (checking it would tell a guesser which guess was right). At most 10 000 addresses
  are remembered, each with at most 16 accepted credentials as keyed hashes.
- **Sign-in links**: reusable until they expire (7 days) or `projects revoke-links`, which also
  ends the sign-ins made with them; a link signs in to its own project only
  (docs/dashboard.md, "Sign-in links").

## Not covered yet

- Abusers that do not wait for their answers. Before the protocol's limits above, with the
  same abuse from 128 connections (300 reads a row) the tenant's p99 was 37x its quiet p99
  (560 ms) from one address and 360x (5.5 s) from 250, its p50 1.9x and 180x, the server's
  peak RSS 1.9 GiB, and the head deadline cut pipelined answers short (logging a traceback).
  A profile (py-spy) under 250 addresses had the event loop busy all the time, 82% of it in
  uvicorn's parsing: it parsed every request a connection had sent ahead and queued them all
  (reading on whenever the running request read its body), creating a request, an event and a
  head timer for each; answering the refused requests in the app came second. With the
  limits, a profile under the same abuse has the app's work on the refusals the budget lets
  through at about 5% of the samples (gzip bombs decoded up to the limit, in worker threads,
  another 5%) and the protocol's under 3%; the tenant's own reads take most of the rest.
  A gzip bomb that reached the app was inflated twice (once to see whether to cut it into
  parts, then again in a decoding process): it is refused at the first now. The "Cores" of
  the tenant's server count its own reads too (0.8 of a core when quiet; a read costs more CPU
  while the cores are contended: 8 ms quiet, 12 ms with the control flood), those of the
  control rows only the other server's work on the abuse. {flood_verdict}
- What the limits leave: addresses that had nothing refused yet get their first requests
  through the app (each new address of an attack costs its first refusals); clients sharing an
  abuser's address (a NAT) are limited with it (connections, budget); every connection closed
  unanswered is accepted first, so a client opening new ones as fast as it can still costs an
  accept and a timer each (a firewall's or a proxy's limit on new connections per address
  stops that churn itself).
- Requests refused for another reason than their body (a batch of invalid events, an unknown
  route, a refused credential) are not paused and do not make an address a suspect for the
  budget (refused credentials have their own limit, below).
- Credentials are limited per address, not per key id or email: every secret is random (API
  keys and tokens 192 bits, NAVER secret keys 240), so guessing one from many addresses is
  hopeless, while a limit per key id would let anyone lock its owner out.
- NAVER signature v2 has no nonce: a request replayed within its five minutes is accepted
  again, as NAVER Cloud's API Gateway does; only a replay outside the window is refused.
- A full disk during ingest is covered by `tests/ingest/test_refusals.py` (refused, nothing
  acknowledged lost), not by this run.
"""
    target.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), " ".join(sys.argv[3:]) or "full length")
