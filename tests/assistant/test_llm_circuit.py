"""Circuit breaker states with a controllable clock."""

from __future__ import annotations

import pytest

from assistant.llm.circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_n_consecutive_failures_and_half_opens_after_reset():
    clock = Clock()
    cb = CircuitBreaker(failures=2, reset_s=10, clock=clock)
    assert cb.state == "closed" and cb.allow()
    cb.record_failure()
    assert cb.state == "closed"
    cb.record_failure()
    assert cb.state == "open" and not cb.allow()
    assert cb.seconds_until_retry() == pytest.approx(10)
    clock.t += 10
    assert cb.state == "half-open"
    assert cb.allow()  # one trial call
    assert not cb.allow()  # and only one
    cb.record_success()
    assert cb.state == "closed" and cb.allow()


def test_failed_trial_reopens_at_once():
    clock = Clock()
    cb = CircuitBreaker(failures=3, reset_s=5, clock=clock)
    for _ in range(3):
        cb.record_failure()
    clock.t += 5
    assert cb.allow()
    cb.record_failure()  # a single failure in half-open state is enough
    assert cb.state == "open"
    clock.t += 4.9
    assert not cb.allow()


def test_success_resets_the_count():
    cb = CircuitBreaker(failures=2, reset_s=5, clock=Clock())
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    assert cb.state == "closed"


def test_needs_at_least_one_failure():
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0)
