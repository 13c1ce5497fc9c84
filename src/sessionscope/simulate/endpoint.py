"""Endpoint sessions: agents browsing sites, pages with their load times."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessionscope.simulate.common import (
    ALNUM,
    DAY,
    MINUTE,
    SECOND,
    WORK_HOURLY,
    fmt,
    logn,
    public_ipv4,
    random_uuid,
    sample_times,
)
from sessionscope.simulate.config import SimulationConfig

__all__ = ["endpoint_events"]


# (site, protocol, page titles)
_SITES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("www.thousandeyes.com", "https", ("ThousandEyes", "Product", "Pricing", "Blog")),
    ("thousandeyes.com", "https", ("ThousandEyes", "Resources")),
    ("mail.example.com", "https", ("Inbox", "Compose", "Sent", "Calendar")),
    ("example.my.salesforce.com", "https", ("Home", "Accounts", "Opportunities", "Reports")),
    ("outlook.office365.com", "https", ("Mail - Outlook", "Calendar - Outlook")),
    ("github.com", "https", ("GitHub", "Pull requests", "Issues", "Actions")),
    ("portal.azure.com", "https", ("Home - Microsoft Azure", "Resource groups")),
    ("jira.example.com", "https", ("Board", "Backlog", "Issue", "Dashboard")),
    ("intranet.example.com", "http", ("Intranet", "Directory", "HR forms", "News")),
    ("wiki.corp.example", "http", ("Wiki", "Runbooks", "Onboarding")),
)
_ORG_NAMES = (
    "T-2 Access Network",
    "Comcast Cable Communications, LLC",
    "Korea Telecom",
    "SK Broadband Co Ltd",
    "Deutsche Telekom AG",
    "NTT Communications Corporation",
    "",
)


@dataclass(frozen=True, slots=True)
class _Agent:
    agent_id: str
    source_addr: str
    org_name: str


def _response_code(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.90:
        return 200
    if r < 0.94:
        return rng.choice((301, 302, 304))
    if r < 0.98:
        return rng.choice((403, 404, 404, 429))
    return rng.choice((500, 502, 503))


def endpoint_events(
    cfg: SimulationConfig, rng: random.Random, lo: int, hi: int
) -> Iterator[dict[str, Any]]:
    ids = itertools.count(1)
    prefix = f"sim-{cfg.seed}-e"
    numbers = itertools.count(1)
    days = (hi - lo) / DAY
    for _ in range(cfg.endpoint_agents):
        org = rng.choice(_ORG_NAMES) if rng.random() < 0.8 else ""
        agent = _Agent(random_uuid(rng), public_ipv4(rng), org)
        count = max(2, round(days * rng.uniform(6.0, 14.0)))
        for t0 in sample_times(rng, count, lo, hi, WORK_HOURLY):
            key = f"es-{cfg.seed}-{next(numbers)}"
            yield from _endpoint_session(rng, agent, key, t0, hi, ids, prefix)


def _endpoint_session(
    rng: random.Random,
    agent: _Agent,
    key: str,
    t0: int,
    hi: int,
    ids: Iterator[int],
    prefix: str,
) -> Iterator[dict[str, Any]]:
    site, protocol, titles = rng.choice(_SITES)
    base: dict[str, Any] = {
        "session": key,
        "agent_id": agent.agent_id,
        "visited_site": site,
        "protocol": protocol,
        "port": 443 if protocol == "https" else 80,
        "source_addr": agent.source_addr,
        "org_name": agent.org_name,
    }
    pages = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 8))
    seen: set[str] = set()
    t = t0
    for _ in range(pages):
        if t > hi:
            return
        page_id = "".join(rng.choices(ALNUM, k=8))
        while page_id in seen:
            page_id = "".join(rng.choices(ALNUM, k=8))
        seen.add(page_id)
        on_load = logn(rng, 1500, 0.75, 120, 120_000)
        on_content = int(on_load * rng.uniform(0.45, 0.95))
        yield {
            "id": f"{prefix}{next(ids)}",
            "kind": "endpoint",
            "time": fmt(t),
            "type": "page",
            "duration_ms": on_load,
            **base,
            "page_id": page_id,
            "title": rng.choice(titles),
            "on_content_load_ms": on_content,
            "on_load_ms": on_load,
            "response_code": _response_code(rng),
        }
        t += on_load + logn(rng, 40 * SECOND, 1.0, 2 * SECOND, 20 * MINUTE)
