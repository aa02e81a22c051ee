"""The adaptive in-flight limit and the priority gate of replay requests."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import pytest

from kwoksnap.replay.limit import AdaptiveLimit, Backlog, Gate, Lookahead


def settle(limit: AdaptiveLimit, latency_at: Callable[[int], float], rounds: int = 3000) -> list[int]:
    """Drive the limit with a backlog: every answer comes with the limit in flight and requests waiting, and the
    target's latency is ``latency_at(inflight)``. Returns the limit after each answer."""
    seen = []
    for _ in range(rounds):
        inflight, probe = limit.allowed, limit.probing
        limit.sample(latency_at(inflight), inflight, waiting=True, alone=probe)
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
    limit.sample(0.02, inflight=1, waiting=False, alone=True)  # the probe
    for _ in range(100):
        limit.sample(0.02, inflight=2, waiting=False)  # fast answers, but 2 of 8 in flight and nobody waiting
    assert limit.limit == 8
    limit.sample(0.02, inflight=2, waiting=True)  # requests wait for the limit: it is the constraint
    assert limit.limit == 9


def test_a_backlog_that_falls_behind_grows_the_limit_whatever_the_latency() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.010, inflight=1, waiting=True, alone=True)  # the probe: 10 ms alone
    limit.sample(0.050, inflight=8, waiting=True)  # the target is queueing: fewer
    assert limit.limit == 7
    limit.sample(0.050, inflight=8, waiting=True, behind=True)  # but the oldest waiter is max_wait late: more
    assert limit.limit == 8


def test_the_baseline_is_probed_alone_and_probed_again_when_old() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32, window=10)
    assert limit.allowed == 1  # the first request goes alone
    limit.sample(0.004, inflight=1, waiting=True, alone=True)
    assert (limit.baseline, limit.allowed) == (0.004, 8)
    for _ in range(9):
        limit.sample(0.006, inflight=8, waiting=True)
    assert limit.allowed > 1
    limit.sample(0.006, inflight=8, waiting=True)
    assert limit.allowed == 1 and limit.baseline == 0.004  # 10 answers since the probe: probe again
    limit.sample(0.012, inflight=5, waiting=True)  # sent before the probe began: not alone, no baseline
    assert limit.allowed == 1
    limit.sample(0.005, inflight=1, waiting=True, alone=True)  # a slower machine is the new normal
    assert limit.baseline == 0.005 and limit.allowed >= 4


def test_no_information_changes_nothing() -> None:
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.0, 8, waiting=True)  # a fake clock
    assert limit.limit == 8 and limit.baseline == 0.0 and limit.probing
    with pytest.raises(ValueError, match="minimum"):
        AdaptiveLimit(initial=1, minimum=5, maximum=4)


def test_waiting_requests_go_out_in_priority_order() -> None:
    gate = Gate(AdaptiveLimit(initial=1, minimum=1, maximum=1))
    first = gate.acquire(0.0)
    assert first == (1, True)  # the only slot is taken; the first request also goes alone, as a probe
    order: list[float] = []
    tickets: list[tuple[int, bool]] = []

    def request(priority: float) -> None:
        ticket = gate.acquire(priority)
        order.append(priority)
        tickets.append(ticket)
        gate.release(ticket, 0.001, now=0.0)

    threads = [threading.Thread(target=request, args=(p,)) for p in (3.0, 1.0, 2.0, 1.5)]
    for t in threads:
        t.start()
    wait_for(lambda: len(gate._waiting) == 4)
    assert order == []  # nobody passed the full gate
    gate.release(first, 0.001, now=0.0)
    for t in threads:
        t.join(5)
    assert order == [1.0, 1.5, 2.0, 3.0]
    assert tickets == [(1, False)] * 4  # each alone in flight when admitted; the probe was over
    assert gate.inflight == 0
    assert sum(gate.limits.values()) == 5  # every answer was a sample


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert condition()


def start_waiters(gate: Gate, priorities: list[float]) -> tuple[list[threading.Thread], list[tuple[int, bool]]]:
    admitted: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda p=p: admitted.append(gate.acquire(p))) for p in priorities]
    for t in threads:
        t.start()
    wait_for(lambda: len(gate._waiting) == len(priorities))
    return threads, admitted


def test_a_higher_limit_admits_several_waiters_at_once() -> None:
    limit = AdaptiveLimit(initial=4, minimum=1, maximum=8)
    gate = Gate(limit)
    probe = gate.acquire(0.0)
    threads, admitted = start_waiters(gate, [1.0, 2.0, 3.0])
    gate.release(probe, 0.005, now=0.0)  # the probe's answer ends probing: the limit of 4 admits all three
    for t in threads:
        t.join(5)
    assert sorted(admitted) == [(1, False), (2, False), (3, False)] and gate.inflight == 3
    assert limit.baseline == 0.005


def test_the_baseline_comes_only_from_a_request_that_ran_alone() -> None:
    limit = AdaptiveLimit(initial=4, minimum=1, maximum=8, window=2)
    gate = Gate(limit)
    gate.release(gate.acquire(0.0), 0.010, now=0.0)  # the first probe: baseline 10 ms
    early, other = gate.acquire(0.0), gate.acquire(0.0)  # two in flight, not probes
    gate.release(other, 0.012, now=0.0)
    gate.release(gate.acquire(0.0), 0.012, now=0.0)  # two answers since the baseline: probing again
    assert limit.probing
    gate.release(early, 0.060, now=0.0)  # sent before the probe began, slowed by the others: not a baseline
    assert limit.probing and limit.baseline == 0.010
    gate.release(gate.acquire(0.0), 0.011, now=0.0)  # admitted while probing with nothing in flight
    assert not limit.probing and limit.baseline == 0.011


def test_a_failed_probe_lets_the_next_request_probe() -> None:
    gate = Gate(AdaptiveLimit(initial=4, minimum=1, maximum=8))
    probe = gate.acquire(0.0)
    threads, admitted = start_waiters(gate, [1.0, 2.0])
    gate.release(probe, None, now=0.0)  # failed: no latency, still probing, but the next one goes
    threads[0].join(5)
    assert admitted == [(1, True)] and len(gate._waiting) == 1
    gate.release(admitted[0], 0.004, now=0.0)
    threads[1].join(5)
    assert admitted[1] == (1, False) and gate.inflight == 1


def test_the_oldest_waiter_being_late_grows_the_limit() -> None:
    limit = AdaptiveLimit(initial=4, minimum=1, maximum=8, max_wait=0.25)
    gate = Gate(limit)
    gate.release(gate.acquire(0.0), 0.010, now=0.0)  # baseline 10 ms
    held = [gate.acquire(0.0) for _ in range(4)]
    threads, _ = start_waiters(gate, [100.0])  # due at 100 s
    gate.release(held[0], 0.050, now=100.1)  # slow (5x the baseline) but the waiter is only 0.1 s late: fewer
    assert limit.limit == 3
    gate.release(held[1], 0.050, now=100.3)  # still slow, and the waiter is 0.3 s late: more, whatever latency
    assert limit.limit == 4
    gate.open()
    threads[0].join(5)


def test_opening_the_gate_admits_every_waiter() -> None:
    gate = Gate(AdaptiveLimit(initial=4, minimum=1, maximum=8))
    probe = gate.acquire(0.0)  # probing: nobody else may go
    threads, admitted = start_waiters(gate, [1.0, 2.0, 3.0])
    gate.open()  # the replay is stopping
    for t in threads:
        t.join(5)
    assert len(admitted) == 3 and gate.inflight == 4 and not any(alone for _, alone in admitted)
    gate.release(probe, 0.001, now=0.0)
    assert not gate.limits  # no samples once open


def test_without_a_limit_the_gate_admits_everything_at_once() -> None:
    gate = Gate(None)
    tickets = [gate.acquire(0.0) for _ in range(50)]
    for ticket in tickets:
        gate.release(ticket, 0.01, now=0.0)
    gate.open()
    assert gate.acquire(1.0) == (0, False) and not gate.limits


def test_a_refusal_ends_a_probe_but_never_lowers_the_baseline() -> None:
    """Review finding: refusals (a 422 answered in validation, before any write) were samples like any other, and
    their quick answers lowered the baseline, after which every real write looked queued and the limit sank."""
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.0005, 1, waiting=True, alone=True, refused=True)  # the first probe, refused: it ends
    assert not limit.probing and limit.baseline == 0.0005
    limit = AdaptiveLimit(initial=8, minimum=4, maximum=32)
    limit.sample(0.004, 1, waiting=False, alone=True)  # a write alone: the baseline
    for _ in range(50):
        limit.sample(0.0005, 8, waiting=True, refused=True)
    assert limit.baseline == 0.004
    limit.sample(0.006, 8, waiting=True)  # within twice the baseline, requests waiting: more in flight
    assert limit.limit == 9


def _blocked(target: Callable[[], object]) -> threading.Thread:
    """``target`` run in a thread that is found still waiting a moment later."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(0.05)
    assert thread.is_alive()
    return thread


def test_a_full_backlog_wakes_its_waiter_once_a_step_of_places_is_free() -> None:
    backlog = Backlog(8, step=2, max_wait=10.0)
    assert all(backlog.acquire(timeout=0) for _ in range(8))
    assert not backlog.acquire(timeout=0.01)  # full
    got: list[bool] = []
    waiter = _blocked(lambda: got.append(backlog.acquire(timeout=5)))
    backlog.release()  # one place free: not woken for it (a thread switch per change at --speed max)
    waiter.join(0.05)
    assert waiter.is_alive() and backlog.count == 7
    backlog.release()  # a step of places
    waiter.join(5)
    assert got == [True] and backlog.count == 7
    assert backlog.acquire(timeout=0)  # and the other place is taken without waiting
    assert backlog.count == 8


def test_a_backlog_step_is_at_most_a_quarter_of_it() -> None:
    assert Backlog(2000).step == 64 and Backlog(40).step == 10 and Backlog(1).step == 1
    one = Backlog(1)
    assert one.acquire(timeout=0) and not one.acquire(timeout=0.01)
    waiter = _blocked(lambda: one.acquire(timeout=5))
    one.release()
    waiter.join(5)
    assert not waiter.is_alive() and one.count == 1
    with pytest.raises(ValueError):
        Backlog(0)


def test_a_full_lookahead_wakes_its_producer_once_a_step_of_places_is_free() -> None:
    ahead: Lookahead[int] = Lookahead(8, step=2)
    for i in range(8):
        ahead.put(i)
    with pytest.raises(queue.Full):
        ahead.put(99, timeout=0.01)
    producer = _blocked(lambda: ahead.put(8))
    assert ahead.get() == 0  # one place: the producer sleeps on
    producer.join(0.05)
    assert producer.is_alive()
    assert ahead.get(timeout=1) == 1  # two: it is woken, and puts
    producer.join(5)
    assert not producer.is_alive()
    assert [ahead.get(timeout=1) for _ in range(7)] == [2, 3, 4, 5, 6, 7, 8]  # in order
    with pytest.raises(queue.Empty):
        ahead.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        ahead.get(block=False)


def test_a_lookahead_of_one_hands_each_item_on() -> None:
    ahead: Lookahead[str] = Lookahead(1)
    ahead.put("a")
    producer = _blocked(lambda: ahead.put("b"))
    assert ahead.get() == "a"
    producer.join(5)
    assert not producer.is_alive() and ahead.get(timeout=1) == "b"


def test_a_backlog_whose_places_come_back_slowly_wakes_its_waiter_at_the_first_after_a_while() -> None:
    """Review finding: with places held long (changes parked behind a slow delete), fewer than a step came back, and
    the waiter (the dispatcher) waited for its own timeout, 0.1 s, with changes due."""
    backlog = Backlog(8, step=4, max_wait=0.2)
    assert all(backlog.acquire(timeout=0) for _ in range(8))
    got: list[bool] = []
    waiter = _blocked(lambda: got.append(backlog.acquire(timeout=5)))
    backlog.release()  # one place, soon after it began to wait: not woken
    waiter.join(0.05)
    assert waiter.is_alive()
    time.sleep(0.2)
    backlog.release()  # one more, after max_wait: woken, though not a step of places is free
    waiter.join(5)
    assert got == [True] and backlog.count == 7
