"""How many replay requests are in flight at once, which waiting request goes next, and how changes are handed
between the replay's threads without a thread switch for each.

Why this module exists: the right number of requests in flight depends on the target, and replay cannot know it in
advance. On a local two-core KWOK cluster concurrent writes mostly make each other late: a burst's transitions
land sooner with a few in flight than with 32 (docs/benchmarks.md). A target across a network needs many in flight
to hide the round trips, or replay falls behind. The limit follows the target's latency compared with the latency
of a request that had the target to itself (the baseline): above twice the baseline the target is queueing, and
fewer go out; below it, and with requests waiting (or the limit in use), more do. A round trip raises the baseline
itself, so a remote target keeps a high limit while a local one settles near the minimum.

Requests that wait go out in order of their deadline, so a burst is applied in the recorded order instead of all at
once. Node-lease renewals yield: they wait as if due ``RENEWAL_YIELD`` seconds later, because a heartbeat that is a
second late changes nothing (components read them against grace periods of tens of seconds), while a late pod or
node change is a late transition.

Pure logic and threading only; latencies are passed in, so the limit is unit-tested without a clock.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import queue
import threading
import time
from typing import Any, TypeVar

RENEWAL_YIELD = 1.0  # seconds of wall time a waiting lease renewal lets object changes go first
# Places freed in a full Backlog or Lookahead before the thread waiting for one is woken.
HANDOFF_STEP = 64

_T = TypeVar("_T")


class AdaptiveLimit:
    """A concurrency limit that follows latency.

    Each answer moves the limit by one: down when its latency exceeds ``tolerance`` times the baseline (the target
    is queueing), up when it does not and the limit is the constraint (requests are waiting, or at least half the
    limit was in flight when it was sent); otherwise it stays. But when the oldest waiting request is ``max_wait``
    late, the limit grows whatever the latency: a target near its capacity answers slower as load rises, and
    holding its latency down would then cost throughput and let the backlog grow without end (measured through a
    delaying proxy: docs/benchmarks.md). Short bursts stay below that and are applied in deadline order.

    The baseline must be measured, not guessed from busy answers (their minimum only ratchets the limit up). So,
    like BBR's ProbeRTT, the first request goes alone, and when the baseline is ``window`` answers old the limit
    drops to 1 until one request has been answered alone; that latency is the new baseline. A probe first waits for
    the requests in flight to finish: at 500 answers/s that is one drain and one lone round trip every two seconds.
    """

    def __init__(self, *, initial: int, minimum: int, maximum: int, tolerance: float = 2.0,
                 max_wait: float = 0.25, window: int = 1000) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"limits must satisfy 1 <= minimum <= maximum, not {minimum}, {maximum}")
        self.minimum, self.maximum = minimum, maximum
        self.limit = min(maximum, max(minimum, initial))
        self.tolerance = tolerance
        self.max_wait = max_wait  # seconds
        self.window = window
        self.baseline = 0.0  # seconds; 0 until the first probe
        self.probing = True  # the first request goes alone
        self._count = 0
        self._baseline_at = 0

    @property
    def allowed(self) -> int:
        """How many may be in flight now."""
        return 1 if self.probing else self.limit

    def sample(self, latency: float, inflight: int, waiting: bool, behind: bool = False, alone: bool = False,
               refused: bool = False) -> None:
        """One answered request: its latency (seconds), how many were in flight when it was sent, whether
        requests are waiting for the limit now, whether the oldest of them is ``max_wait`` late, whether it was
        sent as a probe (admitted while probing, so nothing else was in flight while it ran), and whether the
        target refused it (a 409 or 422, answered before any write: faster than a write, so it only ends a probe,
        and gives the baseline only when there is none yet)."""
        if latency <= 0:  # a fake clock, or a clock step: no information
            return
        if refused:
            if self.probing and alone:
                if not self.baseline:
                    self.baseline = latency
                self._baseline_at, self.probing = self._count, False
            return
        self._count += 1
        if self.probing:
            if alone:
                self.baseline, self._baseline_at, self.probing = latency, self._count, False
            return
        if latency < self.baseline:
            self.baseline, self._baseline_at = latency, self._count
        elif self._count - self._baseline_at >= self.window:
            self.probing = True
            return
        if behind:
            self.limit = min(self.maximum, self.limit + 1)
        elif latency > self.tolerance * self.baseline:
            self.limit = max(self.minimum, self.limit - 1)
        elif waiting or inflight * 2 >= self.limit:
            self.limit = min(self.maximum, self.limit + 1)


Ticket = tuple[int, bool]  # (how many were in flight once admitted, admitted as a probe)


class Gate:
    """Admits requests while fewer than the limit are in flight; the others wait in priority order.

    Each waiter has its own event, so a finished request wakes exactly the waiters it admits (no thundering herd
    of 32 threads per answer). With ``limit=None`` the gate does nothing: the worker pool alone bounds concurrency
    (at ``--speed max`` its lock, taken twice per change by 32 threads, was a tenth of the workers' waiting).
    """

    def __init__(self, limit: AdaptiveLimit | None) -> None:
        self.adaptive = limit
        self.inflight = 0
        self._open = False
        self._lock = threading.Lock()
        # [priority, sequence, event, how many were in flight once it was admitted]: the heap orders by the first two
        self._waiting: list[list[Any]] = []
        self._seq = itertools.count()
        self.limits: collections.Counter[int] = collections.Counter()  # the limit after each answer, for the report

    def _room(self) -> bool:
        return self._open or self.adaptive is None or self.inflight < self.adaptive.allowed

    def _ticket(self) -> Ticket:
        self.inflight += 1
        return self.inflight, self.adaptive is not None and self.adaptive.probing and not self._open

    def acquire(self, priority: float) -> Ticket:
        """Wait until admitted, earliest ``priority`` (a deadline on the caller's clock) first, ties first come."""
        if self.adaptive is None:
            return 0, False
        with self._lock:
            if not self._waiting and self._room():
                return self._ticket()
            waiter: list[Any] = [priority, next(self._seq), threading.Event(), None]
            heapq.heappush(self._waiting, waiter)
        waiter[2].wait()
        ticket: Ticket = waiter[3]
        return ticket

    def release(self, ticket: Ticket, latency: float | None, now: float, refused: bool = False) -> None:
        """A request admitted with ``ticket`` finished at ``now``; ``latency`` is None when it says nothing about
        the target (no answer, or the change took several requests); ``refused``: the target answered with a
        refusal (see :meth:`AdaptiveLimit.sample`)."""
        if self.adaptive is None:
            return
        with self._lock:
            self.inflight -= 1
            if latency is not None and not self._open:
                behind = bool(self._waiting) and now - self._waiting[0][0] >= self.adaptive.max_wait
                self.adaptive.sample(latency, ticket[0], bool(self._waiting), behind, alone=ticket[1],
                                     refused=refused)
                self.limits[self.adaptive.limit] += 1
            self._admit()

    def open(self) -> None:
        """Stop limiting (the replay is stopping: what was dispatched finishes as fast as the target allows)."""
        with self._lock:
            self._open = True
            self._admit()

    def _admit(self) -> None:
        while self._waiting and self._room():
            waiter = heapq.heappop(self._waiting)
            waiter[3] = self._ticket()
            waiter[2].set()


class Backlog:
    """A bound on the changes handed to the workers and not finished, whose waiter is woken in batches.

    Why not a semaphore: at ``--speed max`` (or behind a slow target) the dispatcher waits at the bound, and a
    semaphore woke it for every change finished: a thread switch per change, paid in CPU on a two-core machine the
    target shares. Here the waiter is woken once ``step`` places are free, and then takes them without waiting; or,
    when places come back slowly (changes that hold theirs for long: parked behind a slow delete), at the first one
    after it has waited ``max_wait`` seconds (review finding: it then waited for its own timeout, 0.1 s).
    """

    def __init__(self, bound: int, step: int = HANDOFF_STEP, max_wait: float = 0.01) -> None:
        if bound < 1:
            raise ValueError(f"a backlog holds at least 1, not {bound}")
        self.bound = bound
        self.step = _step(bound, step)
        self.max_wait = max_wait
        self.count = 0
        self._waiting: float | None = None  # since when the waiter waits (monotonic seconds)
        self._cond = threading.Condition(threading.Lock())

    def acquire(self, timeout: float) -> bool:
        """Take a place; False if none was free within ``timeout`` seconds."""
        with self._cond:
            while self.count >= self.bound:
                if self._waiting is None:
                    self._waiting = time.monotonic()
                if not self._cond.wait(timeout):
                    return False
            self._waiting = None
            self.count += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.count -= 1
            if self._waiting is not None and (self.count <= self.bound - self.step
                                              or time.monotonic() - self._waiting >= self.max_wait):
                self._waiting = None
                self._cond.notify()


class Lookahead(queue.Queue[_T]):
    """The planner's queue to the dispatcher: bounded, and a ``put`` waiting for room is woken once ``step``
    places are free, not for every item taken (a thread switch per change, as :class:`Backlog` explains)."""

    def __init__(self, maxsize: int, step: int = HANDOFF_STEP) -> None:
        if maxsize < 1:
            raise ValueError(f"a lookahead holds at least 1, not {maxsize}")
        super().__init__(maxsize)
        self.step = _step(maxsize, step)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """As :meth:`queue.Queue.get` (blocking, with a timeout or without)."""
        with self.not_empty:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._qsize():
                remaining = None if deadline is None else deadline - time.monotonic()
                if not block or (remaining is not None and remaining <= 0):
                    raise queue.Empty
                self.not_empty.wait(remaining)
            item = self._get()
            if self._qsize() <= self.maxsize - self.step:
                self.not_full.notify()
            return item


def _step(bound: int, step: int) -> int:
    """Places freed before a waiter is woken: ``step``, but at most a quarter of ``bound`` (at least 1)."""
    return max(1, min(step, bound // 4))
