"""Each metric rule once: its Python and its SQL rendering side by side.

The core measures one session in Python (``domain.sessions``) and many at once in SQL (the
store's series and breakdowns). Both take the rule from here, and
``tests/domain/test_metric_rules.py`` checks that the two agree on generated sessions.

A rule's SQL is an expression over column names (or query parameters) the caller passes in, so
it fits any query; it names no table and needs no driver.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["APDEX", "EXPERIENCE_SCORE", "IDLE_GAPS", "Apdex", "ExperienceScore", "IdleGaps"]


@dataclass(frozen=True, slots=True)
class Apdex:
    """A page's score, Apdex-style: 1 loaded within T, 0.5 within ``tolerating`` T, else 0; 0 on
    an HTTP error (status ``error_status`` and above) and for a page that never loaded."""

    tolerating: int = 4
    error_status: int = 400

    def score(self, on_load_ms: int | None, response_code: int, threshold_ms: int) -> float:
        """The score of one page."""
        if response_code >= self.error_status or on_load_ms is None:
            return 0.0
        if on_load_ms <= threshold_ms:
            return 1.0
        if on_load_ms <= self.tolerating * threshold_ms:
            return 0.5
        return 0.0

    def sql(self, on_load: str, response_code: str, threshold: str) -> str:
        """The score of one page (``on_load`` may be NULL: never loaded)."""
        return (
            f"if({response_code} >= {self.error_status} OR {on_load} IS NULL, 0, "
            f"if({on_load} <= {threshold}, 1, "
            f"if({on_load} <= {self.tolerating} * {threshold}, 0.5, 0)))"
        )


@dataclass(frozen=True, slots=True)
class ExperienceScore:
    """A session's experience score: the mean of its pages' scores (each 0, 0.5 or 1), rounded
    half up to ``decimals`` (0.625 is 0.63); 0 without pages."""

    decimals: int = 2

    def score(self, page_scores: Sequence[float]) -> float:
        """The score of a session from its pages' scores."""
        if not page_scores:
            return 0.0
        # Decimal: the mean is exact (scores are halves) and rounds half up, not to even.
        total = sum((Decimal(str(s)) for s in page_scores), Decimal(0))
        mean = total / len(page_scores)
        quantum = Decimal(1).scaleb(-self.decimals)
        return float(mean.quantize(quantum, rounding=ROUND_HALF_UP))

    def sql(self, page_score: str) -> str:
        """The score of a session, aggregating its rows' ``page_score``: in integers, so exact
        (the pages' scores are halves): floor((2 * sum + n) * 10^d / 2n) / 10^d, rounding
        half up."""
        scale = 10**self.decimals
        return f"intDiv({scale} * sum(toUInt64({page_score} * 2)) + count(), 2 * count()) / {scale}"


@dataclass(frozen=True, slots=True)
class IdleGaps:
    """Desktop idle time: the time between consecutive activity points of a session is idle
    when longer than the idle timeout, productive otherwise. In SQL a gap counts where the
    activity that ends it is (its bucket, user, hour)."""

    def split_ms(self, times_ms: Sequence[int], timeout_ms: int) -> tuple[int, int]:
        """``(idle, productive)`` milliseconds between the activity points ``times_ms``."""
        idle = productive = 0
        timeout = timedelta(milliseconds=timeout_ms)
        for a, b in itertools.pairwise(sorted(times_ms)):
            if self.is_idle(timedelta(milliseconds=b - a), timeout):
                idle += b - a
            else:
                productive += b - a
        return idle, productive

    def is_idle(self, gap: timedelta, timeout: timedelta) -> bool:
        """Whether a gap between two activity points is idle time."""
        return gap > timeout

    #: The previous activity point's time in the same session, by ``(time, id)``; the epoch
    #: for a session's first (rendered with ``time``, ``session`` and ``id`` columns).
    PREVIOUS = (
        "lagInFrame(time, 1, toDateTime64(0, 3, 'UTC')) OVER (PARTITION BY session "
        "ORDER BY time, id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
    )

    def sql_gap(self, time: str, previous: str) -> str:
        """The gap in milliseconds from ``previous`` (``PREVIOUS``) to ``time``; 0 for a
        session's first activity point."""
        return (
            f"if({previous} = toDateTime64(0, 3, 'UTC'), 0, "
            f"toUInt64(toUnixTimestamp64Milli({time}) - toUnixTimestamp64Milli({previous})))"
        )

    def sql_idle(self, gap: str, timeout: str) -> str:
        """The idle milliseconds among rows' gaps (an aggregate)."""
        return f"sumIf({gap}, {gap} > {timeout})"

    def sql_productive(self, gap: str, timeout: str) -> str:
        """The productive milliseconds among rows' gaps (an aggregate)."""
        return f"sumIf({gap}, {gap} <= {timeout})"


APDEX = Apdex()
EXPERIENCE_SCORE = ExperienceScore()
IDLE_GAPS = IdleGaps()
