"""The adaptive in-flight limit and the priority gate of replay requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from kwoksnap.replay.limit import AdaptiveLimit, Gate


def settle(limit: AdaptiveLimit, latency_at: Callable[[int], float], rounds: int = 3000) -> list[int]:
    """Drive the limit with a backlog: every answer comes with the limit in flight and requests waiting, and the
    target's latency is ``latency_at(inflight)``. Returns the limit after each answer."""
    seen = []
    for _ in range(rounds):
        inflight = limit.allowed
        limit.sample(latency_at(inflight), inflight, waiting=True)
        seen.append(limit.allowed)
    return seen


def test_a_local_target_that_queues_keeps_few_in_flight() -> None:
    # Two cores, 3 ms per request: beyond 2 in flight every request waits behind the others.
    seen = settle(AdaptiveLimit(initial=8, minimum=4, maximum=32), lambda n: 0.003 * max(1.0, n / 2))
    steady = [n for n in seen[-1000:] if n > 1]  # without the probes
    assert max(steady) <= 5 and min(steady) == 4


def test_a_remote_target_gets_enough_in_flight_to_hide_the_round_trip() -> None:
    # 20 ms round trip and a server that starts to queue beyond 20 in flight (its latency grows with the load):
    # to keep up, a remote target needs many in flight although its latency rises.
    seen = settle(AdaptiveLimit(initial=8, minimum=4, maximum=32), lambda n: 0.020 * max(1.0, n / 20))
    assert seen[-1] == 32


def test_a_remote_target_that_saturates_is_held_at_twice_its_baseline() -> None:
    seen = settle(AdaptiveLimit(initial=8, minimum=4, maximum=64), lambda n: 0.020 * max(1.0, n / 10))
    steady = [n for n in seen[-1000:] if n > 1]
    assert min(steady) >= 19 and max(steady) <= 21  # latency 40 ms = twice the 20 ms a request alone takes


def test_the_limit_does_not_grow_without_evidence() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.02, inflight=1, waiting=False)  # the probe
    for _ in range(100):
        limit.sample(0.02, inflight=2, waiting=False)  # fast answers, but 2 of 8 in flight and nobody waiting
    assert limit.limit == 8
    limit.sample(0.02, inflight=2, waiting=True)  # requests wait for the limit: it is the constraint
    assert limit.limit == 9


def test_a_backlog_that_falls_behind_grows_the_limit_whatever_the_latency() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.010, inflight=1, waiting=True)  # the probe: 10 ms alone
    limit.sample(0.050, inflight=8, waiting=True)  # the target is queueing: fewer
    assert limit.limit == 7
    limit.sample(0.050, inflight=8, waiting=True, behind=True)  # but the oldest waiter is max_wait late: more
    assert limit.limit == 8


def test_the_baseline_is_probed_alone_and_probed_again_when_old() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32, window=10)
    assert limit.allowed == 1  # the first request goes alone
    limit.sample(0.004, inflight=1, waiting=True)
    assert (limit.baseline, limit.allowed) == (0.004, 8)
    for _ in range(9):
        limit.sample(0.006, inflight=8, waiting=True)
    assert limit.allowed > 1
    limit.sample(0.006, inflight=8, waiting=True)
    assert limit.allowed == 1 and limit.baseline == 0.004  # 10 answers since the probe: probe again
    limit.sample(0.012, inflight=5, waiting=True)  # sent before the probe began: not alone, no baseline
    assert limit.allowed == 1
    limit.sample(0.005, inflight=1, waiting=True)  # a slower machine is the new normal
    assert limit.baseline == 0.005 and limit.allowed >= 4


def test_no_information_changes_nothing() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.0, 8, waiting=True)  # a fake clock
    assert limit.limit == 8 and limit.baseline == 0.0 and limit.probing
    with pytest.raises(ValueError, match="minimum"):
        AdaptiveLimit(initial=1, minimum=5, maximum=4)


def test_waiting_requests_go_out_in_priority_order() -> None:
    gate = Gate(AdaptiveLimit(initial=1, minimum=1, maximum=1))
    assert gate.acquire(0.0) == 1  # the only slot is taken (the first request also goes alone: a probe)
    order: list[float] = []

    counts: list[int] = []

    def request(priority: float) -> None:
        n = gate.acquire(priority)
        order.append(priority)
        counts.append(n)
        gate.release(0.001, n, now=0.0)

    threads = [threading.Thread(target=request, args=(p,)) for p in (3.0, 1.0, 2.0, 1.5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(gate._waiting) < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(gate._waiting) == 4 and order == []  # nobody passed the full gate
    gate.release(0.001, 1, now=0.0)
    for t in threads:
        t.join(5)
    assert order == [1.0, 1.5, 2.0, 3.0]
    assert counts == [1, 1, 1, 1]  # each was alone in flight when admitted
    assert gate.inflight == 0
    assert sum(gate.limits.values()) == 5  # every answer was a sample


def test_without_a_limit_the_gate_only_counts() -> None:
    gate = Gate(None)
    assert [gate.acquire(0.0) for _ in range(50)][-1] == 50
    for _ in range(50):
        gate.release(None, 50, now=0.0)
    assert gate.inflight == 0 and not gate.limits
