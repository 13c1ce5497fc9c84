"""Figures for docs/reliability.md: each test appends what it measured to the file
``SESSIONSCOPE_RELIABILITY_OUT`` names (``make reliability``); nothing when it is unset."""

from __future__ import annotations

import json
import os
from typing import Any


def record(section: str, **figures: Any) -> None:
    out = os.environ.get("SESSIONSCOPE_RELIABILITY_OUT")
    if not out:
        return
    with open(out, "a") as fh:
        fh.write(json.dumps({section: figures}) + "\n")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
