"""The refusal budget and the connection guard's decisions, on a clock of the test's own (the
protocol that asks them is tested with a real server: tests/reliability/test_protocol_limits.py)."""

from __future__ import annotations

from sessionscope.api.attempts import FailedAttempts
from sessionscope.api.guard import ConnectionGuard, answer
from sessionscope.api.limits import MAX_HELD_PER_ADDRESS, BodyRefusals, RefusalBudget
from sessionscope.api.limits import too_large as too_large_error
from sessionscope.config import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_answers_per_s_refusals_a_second() -> None:
    clock = Clock()
    budget = RefusalBudget(5, clock)
    assert [budget.take() for _ in range(7)] == [True] * 5 + [False] * 2
    assert budget.exhausted and budget.withheld == 2
    clock.now += 0.2  # one more
    assert budget.take() and not budget.take()
    clock.now += 10  # never more than a second's worth
    assert sum(budget.take() for _ in range(20)) == 5


def test_refusals_answered_anyway_run_the_budget_into_bounded_debt() -> None:
    clock = Clock()
    budget = RefusalBudget(5, clock)
    for _ in range(100):
        budget.charge()
    assert budget.exhausted
    clock.now += 1.1  # owing a second's worth at most: one refusal left 1.2 s later
    assert budget.exhausted
    clock.now += 0.2
    assert not budget.exhausted


def test_no_budget_answers_every_refusal() -> None:
    budget = RefusalBudget(0)
    budget.charge()
    assert all(budget.take() for _ in range(1000)) and not budget.exhausted


def _guard(
    clock: Clock, *, per_s: int = 2, limit: int = 5, connections: int = 3
) -> ConnectionGuard:
    settings = Settings(
        max_connections_per_address=connections,
        refusal_budget_per_s=per_s,
        max_body_bytes=1000,
    )
    refused = FailedAttempts(limit, 60, what="request bodies", clock=clock)
    return ConnectionGuard(settings, BodyRefusals(refused, budget=RefusalBudget(per_s, clock)))


def test_connections_per_address_are_limited() -> None:
    guard = _guard(Clock())
    assert all(guard.admit("10.0.0.1") for _ in range(3))
    assert not guard.admit("10.0.0.1")
    assert guard.admit("10.0.0.2")  # another address
    guard.release("10.0.0.1")
    assert guard.admit("10.0.0.1")
    for _ in range(3):
        guard.release("10.0.0.1")
    assert guard.open_connections("10.0.0.1") == 0  # nothing kept for it


def test_past_the_budget_only_addresses_refused_lately_are_dropped() -> None:
    clock = Clock()
    guard = _guard(clock)
    guard.refusals.refusals.refused("10.0.0.9", None)
    assert not guard.drop("10.0.0.9") and not guard.drop("10.0.0.9")  # each takes one
    assert guard.drop("10.0.0.9")  # none left
    assert not guard.admit("10.0.0.9")
    assert not guard.drop("10.0.0.1") and guard.admit("10.0.0.1")  # nothing refused
    clock.now += 61  # the window has passed: no longer refused lately
    assert not guard.drop("10.0.0.9")


def test_an_address_past_its_limit_is_held_rather_than_dropped() -> None:
    clock = Clock()
    guard = _guard(clock, limit=2)
    for _ in range(2):
        guard.refusals.refusals.refused("10.0.0.9", None)
    for _ in range(5):
        guard.budget.charge()
    assert guard.budget.exhausted
    assert guard.refusals.blocked_address("10.0.0.9")
    assert not guard.drop("10.0.0.9")  # paused and answered 429 instead
    for _ in range(MAX_HELD_PER_ADDRESS):
        assert guard.refusals.hold("10.0.0.9")
    assert guard.drop("10.0.0.9")  # no answer left to hold: dropped


def test_a_declared_body_past_the_bound() -> None:
    guard = _guard(Clock())  # bound: 2 * 1000 + 1024
    assert guard.declared_too_large([(b"content-length", b"3025")])
    assert not guard.declared_too_large([(b"content-length", b"3024")])
    assert not guard.declared_too_large([(b"content-length", b"x"), (b"host", b"h")])
    assert not guard.declared_too_large([])


def test_an_answer_of_the_protocol_is_in_the_family_shape() -> None:
    raw = answer(too_large_error(10), "POST", b"/api/v1/events?x=1", [])
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nconnection: close" in head and b"\r\nx-content-type-options: nosniff" in head
    assert body == b'{"error":{"code":"too_large","message":"body is larger than 10 bytes"}}'
    assert answer(too_large_error(10), "HEAD", b"/api/v1/events", []).endswith(b"\r\n\r\n")
    assert answer(too_large_error(10), "POST", b"\x00not a url", []).startswith(b"HTTP/1.1 413")
