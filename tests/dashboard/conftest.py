"""Dashboard fixtures: a project full of simulated traffic, and another project beside it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from tests.factories import channel, desktop, endpoint, player

from sessionscope.domain.accounts import Project
from sessionscope.domain.events import validate_batch
from sessionscope.simulate import SimulationConfig, simulate_batches
from sessionscope.store.clickhouse import ClickHouseStore

#: Session ids of the other project: they must never show up for the first one.
OTHER_PLAYER = "zz-other-project-player"
OTHER_ENDPOINT = "zz-other-project-endpoint"
OTHER_DESKTOP = 987654321
OTHER_CHANNEL = "zz-other-project-channel"
OTHER_MARKS = ("zz-other-project", str(OTHER_DESKTOP))
#: The other project's player user and endpoint agent.
OTHER_USER = "99999999-8888-4777-8666-555555555555"
OTHER_AGENT = "zz-other-project-agent"
#: Explorer filters (kind, name, value) that match the other project's sessions only.
OTHER_FILTERS = (
    ("player", "user", OTHER_USER),
    ("player", "device", "Tablet"),
    ("endpoint", "agent_id", OTHER_AGENT),
    ("endpoint", "visited_site", "zz-other-project.example"),
    ("desktop", "user_id", "424242"),
    ("channel", "channel", OTHER_CHANNEL),
)


@dataclass(frozen=True)
class Dash:
    """Project ``main`` (simulated traffic ending now) and project ``other`` (a few sessions)."""

    main: Project
    main_key: str
    other: Project
    other_key: str
    end: datetime


def _store_all(store: ClickHouseStore, project: Project, batch: list[dict[str, object]]) -> None:
    events, problems = validate_batch(batch, now=datetime.now(UTC) + timedelta(minutes=1))
    assert not problems, problems[:3]
    store.insert_events(project.id, events)


@pytest.fixture(scope="session")
def dash(store: ClickHouseStore) -> Dash:
    """Load both projects once for every dashboard test."""
    suffix = time.monotonic_ns() % 1_000_000
    main = store.create_project(f"dashboard-main-{suffix}")
    other = store.create_project(f"dashboard-other-{suffix}")
    end = datetime.now(UTC).replace(microsecond=0)
    config = SimulationConfig(
        seed=7,
        start=end - timedelta(days=6),
        end=end,
        players=150,
        channels=2,
        desktop_users=3,
        endpoint_agents=3,
    )
    for batch in simulate_batches(config, batch_size=5000):
        _store_all(store, main, batch)
    at = end - timedelta(hours=2)
    _store_all(
        store,
        other,
        [
            player(
                "startup",
                at=at,
                session=OTHER_PLAYER,
                duration_ms=400,
                device="Tablet",
                user=OTHER_USER,
            ),
            player(
                "playing",
                at=at + timedelta(minutes=1),
                session=OTHER_PLAYER,
                duration_ms=60_000,
                device="Tablet",
                user=OTHER_USER,
            ),
            endpoint(
                at=at,
                session=OTHER_ENDPOINT,
                visited_site="zz-other-project.example",
                agent_id=OTHER_AGENT,
            ),
            desktop(
                "login",
                at=at,
                session=OTHER_DESKTOP,
                user_id=424242,
                user_name="zz-other-project-user",
            ),
            desktop(
                "activity", at=at + timedelta(minutes=3), session=OTHER_DESKTOP, user_id=424242
            ),
            channel("PUBLISH_START", at=at, channel=OTHER_CHANNEL),
            channel("PUBLISH_END", at=at + timedelta(minutes=30), channel=OTHER_CHANNEL),
        ],
    )
    return Dash(main, store.create_api_key(main.id), other, store.create_api_key(other.id), end)
