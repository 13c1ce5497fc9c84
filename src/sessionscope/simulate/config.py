"""What to simulate: the span, the seed and how many of each entity."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sessionscope.domain.events import KINDS

__all__ = ["SimulationConfig", "fresh_seed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """What to simulate: the span (aware datetimes), the seed and how many of each entity.

    ``players`` is the number of player sessions over the span; ``channels`` the number of live
    channels; ``desktop_users`` users with one session per working day (at least one each);
    ``endpoint_agents`` agents with about ten user sessions a day each (at least two each).
    """

    seed: int = 42
    start: datetime
    end: datetime
    players: int = 200
    channels: int = 3
    desktop_users: int = 20
    endpoint_agents: int = 10
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        for name in ("players", "channels", "desktop_users", "endpoint_agents"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; expected some of {', '.join(KINDS)}")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds must not repeat")


def fresh_seed() -> int:
    """A seed for a run that names none: a new one each run, so its event ids
    (``sim-<seed>-...``), session ids and users are new too and never collide with an earlier
    run's (such as the demo's, seed 42). Pass it back as a seed to repeat that run."""
    return secrets.randbits(32)
