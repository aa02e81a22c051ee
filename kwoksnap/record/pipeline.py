"""The one path every recorded event takes: time order, the filters, redaction, the recording file.

Why this module exists: the sources deliver events as they come (an API server's webhook batches, its log's lines,
watch events of several resources), which is nearly but not quite in time order; the recording must be in time
order and hold what ``convert`` would have kept of the same events, so that a recording made live and one made
later of the same log are the same.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, cast

from kwoksnap.audit import (
    DEFAULT_WINDOW_EVENTS,
    AuditEvent,
    FilterSpec,
    ParseStats,
    filter_events,
    first_copies,
    resource_version,
)
from kwoksnap.clock import Clock, RealClock
from kwoksnap.replay.recording import redact_credentials, write_recording

WINDOW_NS: Final = 5_000_000_000  # events held to put a late one in its place (the audit reader's window)
# Second copies of an event (a webhook batch the API server sent again after its backoff, 10 s by default) are left
# out within this much recorded time of the first.
COPIES_NS: Final = 30_000_000_000
# What was recorded is handed to the system this often (a frame closed early), so that a recorder killed outright
# (SIGKILL, the OOM killer) leaves all but the last seconds in its temporary file, for `kwoksnap salvage`.
FLUSH_SECONDS: Final = 2.0


TICK_SECONDS: Final = 0.5  # how often a quiet source is looked at: events whose time has passed leave the window
# Given up (a second Ctrl-C), what is in hand (the window, the queues: each bounded, some 20,000 events at most) is
# written for at most this long, the rest left out with a warning: giving up is not to wait (20,000 events/s
# measured: most of the time, all of it).
GIVE_UP_SECONDS: Final = 3.0

log = logging.getLogger("kwoksnap.record")

_Held = list[tuple[int, int, int, AuditEvent]]  # the time-order window: a heap of (ts, resourceVersion, arrival, event)


def in_time_order(events: Iterable[AuditEvent | None], window_ns: int = WINDOW_NS,
                  window_events: int = DEFAULT_WINDOW_EVENTS, clock: Clock | None = None,
                  held: _Held | None = None) -> Iterator[AuditEvent]:
    """``events`` sorted by time (then resourceVersion, then arrival) within ``window_ns`` of the newest seen, and
    never more than ``window_events`` held (memory: a burst); one later than that comes out where it arrived.

    A ``None`` among them is a tick of a quiet source: recorded time is taken to have gone on as ``clock`` did since
    the newest event came, so what is older than the window by then leaves it (review finding: after a burst, a
    quiet cluster kept the burst in memory, unwritten, until the next event; killed meanwhile, it was lost).
    ``held``: the window, the caller's (empty) list, so that what it holds can still be taken once this ends
    (given up: :func:`_in_hand`)."""
    clock = clock or RealClock()
    heap: _Held = held if held is not None else []
    order = itertools.count()
    newest, came = -(2**63), 0.0
    for ev in events:
        if ev is None:
            if heap:
                now = newest + int((clock.now() - came) * 1e9)
                while heap and heap[0][0] <= now - window_ns:
                    yield heapq.heappop(heap)[3]
            continue
        if ev["ts"] >= newest:
            newest, came = ev["ts"], clock.now()
        heapq.heappush(heap, (ev["ts"], resource_version(ev), next(order), ev))
        while heap and (heap[0][0] <= newest - window_ns or len(heap) > window_events):
            yield heapq.heappop(heap)[3]
    while heap:
        yield heapq.heappop(heap)[3]


def counted_late(events: Iterable[AuditEvent], stats: ParseStats) -> Iterator[AuditEvent]:
    """``events``, counting in ``stats.late`` those older than one before them: out of time order, as the audit
    reader counts them."""
    last = -(2**63)
    for ev in events:
        if ev["ts"] < last:
            stats.late += 1
        else:
            last = ev["ts"]
        yield ev


def ticking(events: Iterable[AuditEvent], seconds: float = TICK_SECONDS,
            items: queue.Queue[Any] | None = None) -> Iterator[AuditEvent | None]:
    """``events``, read on a thread of their own, with a ``None`` each ``seconds`` in which none came: the stream a
    quiet source leaves waiting still moves (:func:`in_time_order`). What the source raises is raised here.
    ``items``: the (bounded, empty) queue the events wait in, the caller's (given up: :func:`_in_hand`)."""
    done = object()
    items = items if items is not None else queue.Queue(maxsize=DEFAULT_WINDOW_EVENTS)

    def pump() -> None:
        try:
            for ev in events:
                items.put(ev)
        except BaseException as exc:  # (an unreadable file, a watch refused: the caller's to report)
            items.put(_Raised(exc))
        finally:
            items.put(done)

    threading.Thread(target=pump, name="kwoksnap-record-source", daemon=True).start()
    while True:
        try:
            item = items.get(timeout=seconds)
        except queue.Empty:
            yield None
            continue
        if item is done:
            return
        if isinstance(item, _Raised):
            raise item.exc
        yield item


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _waiting(items: queue.Queue[Any]) -> list[AuditEvent]:
    """The events waiting in ``items`` now, taken without waiting for more (the source's thread may go on putting
    them: at most as many as it holds). Its lock is taken with a timeout: a Ctrl-C that came as this thread took it
    may have left it held (CPython issue 74174), and then nothing is taken rather than waiting for ever."""
    if not items.mutex.acquire(timeout=1.0):
        return []
    try:
        taken = list(items.queue)
        items.queue.clear()
        items.not_full.notify_all()
    finally:
        items.mutex.release()
    return [cast(AuditEvent, item) for item in taken if isinstance(item, dict)]  # (not the end, nor a _Raised)


def _in_hand(held: _Held, items: queue.Queue[Any], pending: Iterable[AuditEvent],
             clock: Clock) -> Iterator[AuditEvent]:
    """Given up: the events in the window (``held``), those waiting for it (``items``) and the source's own
    queue's (``pending``, filtered), in time order; for at most ``GIVE_UP_SECONDS`` (the rest are left out, with a
    warning). The one event being handed on when the recording was given up (between the window and the file) is
    lost."""
    deadline = clock.now() + GIVE_UP_SECONDS
    arrived = [entry[3] for entry in sorted(held)] + _waiting(items) + list(pending)
    arrived += _waiting(items)  # (the source's thread, woken by the room the first take made, put one more: review
    # finding, it was lost)
    held.clear()
    arrived.sort(key=lambda ev: (ev["ts"], resource_version(ev)))  # (stable: arrival order among equals)
    for n, ev in enumerate(arrived):
        if clock.now() > deadline:
            log.warning("given up: %d event(s) received were left out (writing them took more than %g s)",
                        len(arrived) - n, GIVE_UP_SECONDS)
            return
        yield ev


def record(events: Iterable[AuditEvent], path: str | Path, *, spec: FilterSpec, stats: ParseStats,
           include_secrets: bool, source: dict[str, Any], meta: dict[str, Any] | None = None,
           window_ns: int = WINDOW_NS, on_failure: Callable[[], object] | None = None,
           pending: Callable[[], Iterable[AuditEvent]] | None = None,
           clock: Clock | None = None) -> tuple[int, Path]:
    """Write the events a source delivers into the recording ``path`` as ``convert`` would have kept them; returns
    how many were written, and where (beside ``path`` if a file appeared there meanwhile). Ends when ``events``
    does (the source's stop).

    The filters decide each event on its own, so they come first (on the source's thread): the window holds only
    what is kept (a busy API server's log is mostly reads; black-box finding: every event was held, 5 KB each).
    Then time order (a quiet source's events still leave on time), second copies left out, late ones counted.

    Given up (a second Ctrl-C: KeyboardInterrupt), what is in hand is written before the temporary file is kept
    (known defect: it was lost): the window, the events waiting for it, and ``pending()`` (what the source holds
    and has not handed out: its queue), without waiting for the source. They are filtered, copies left out (of one
    another: not of those written before) and redacted as the others are (:func:`_in_hand`)."""
    clock = clock or RealClock()
    held: _Held = []
    items: queue.Queue[Any] = queue.Queue(maxsize=DEFAULT_WINDOW_EVENTS)

    def after_the_window(ordered: Iterable[AuditEvent]) -> Iterator[AuditEvent]:
        kept = counted_late(first_copies(iter(ordered), stats, COPIES_NS), stats)
        return kept if include_secrets else redact_credentials(kept, stats)

    def in_hand() -> Iterator[AuditEvent]:
        queued = filter_events(pending(), spec, stats) if pending is not None else iter(())
        return after_the_window(_in_hand(held, items, queued, clock))

    ordered = in_time_order(ticking(filter_events(events, spec, stats), items=items), window_ns, clock=clock,
                            held=held)
    copies = stats.duplicates
    try:
        return write_recording(after_the_window(ordered), path, source=source, flush_every=FLUSH_SECONDS,
                               meta={**(meta or {}), "secretsRedacted": not include_secrets},
                               left_out=stats.unstorable, on_failure=on_failure, in_hand=in_hand)
    finally:
        stats.kept -= stats.duplicates - copies  # (counted kept by the filters before they were found copies)
