"""Time and lateness: the real and the fake clock must agree on what ``sleep_until`` answers (the replay's
dispatch loop and its waits are unit-tested with the fake one and run with the real one), and the live lag figure
must cost the same however long a replay has run."""

from __future__ import annotations

import threading
import time

import pytest

from kwoksnap.clock import FakeClock, RealClock


@pytest.mark.parametrize("clock", [RealClock(), FakeClock()], ids=["real", "fake"])
def test_a_set_stop_wins_even_over_a_deadline_already_past(clock: RealClock | FakeClock) -> None:
    """Review finding: the real clock answered True for a past deadline before it looked at ``stop``, so a replay
    running late (or at --speed max) went on sending what it had queued after the planner failed under --strict."""
    stop = threading.Event()
    assert clock.sleep_until(clock.now() - 1, stop) is True
    stop.set()
    assert clock.sleep_until(clock.now() - 1, stop) is False
    assert clock.sleep_until(clock.now() + 0.05, stop) is False
    assert clock.sleep_until(clock.now() - 1) is True  # no stop given: only the deadline counts


def test_the_real_clock_wakes_when_stop_is_set_while_it_sleeps() -> None:
    clock, stop = RealClock(), threading.Event()
    threading.Timer(0.05, stop.set).start()
    began = time.monotonic()
    assert clock.sleep_until(clock.now() + 30, stop) is False
    assert time.monotonic() - began < 5


def test_the_progress_line_reads_the_lag_of_the_recent_changes_only() -> None:
    """Review finding: the progress line sorted every lag sample of the run 5 times a second (0.26 s with the GIL
    held at a million changes); it now sorts the last 10,000."""
    from kwoksnap.replay.timing import LagStats

    lag = LagStats()
    for i in range(30_000):
        lag.add(5.0 if i < 20_000 else i / 1e6)  # an early stretch of 5 s lateness, then caught up
    assert lag.percentile(99) == 5.0
    assert lag.recent_percentile(99) == pytest.approx(0.029899)  # nearest rank 9,900 of the last 10,000
    assert lag.recent_percentile(99, last=30_000) == 5.0
