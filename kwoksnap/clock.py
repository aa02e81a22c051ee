"""Injectable time: replay's scheduling is tested without sleeping.

Why this module exists: speed, max-gap compression, deadlines and lag are pure arithmetic over a clock; with a
:class:`FakeClock` the tests assert that an event fired 15 s into a replay without waiting 15 s. Library code never
calls ``time.sleep``/``time.monotonic`` directly where a clock is passed in. Stdlib only: this is the bottom layer.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    def wall(self) -> float:
        """Seconds since the epoch (for timestamps written into objects)."""

    def sleep_until(self, deadline: float, stop: threading.Event | None = None) -> bool:
        """Sleep until ``now() >= deadline``; return False if ``stop`` was set first."""


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep_until(self, deadline: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():  # set: False even for a deadline already past (as FakeClock)
            return False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if stop is not None:
                if stop.wait(min(remaining, 0.5)):
                    return False
            else:
                # Sleep most of the way, then spin the last stretch: time.sleep overshoots by up to ~1 ms.
                time.sleep(remaining - 0.002 if remaining > 0.003 else 0)


class FakeClock:
    """A clock that jumps: ``sleep_until`` advances time instantly. Thread-safe."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep_until(self, deadline: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        with self._lock:
            if deadline > self._now:
                self.sleeps.append(deadline - self._now)
                self._now = deadline
        return True
