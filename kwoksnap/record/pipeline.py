"""The one path every recorded event takes: time order, the filters, redaction, the recording file.

Why this module exists: the sources deliver events as they come (an API server's webhook batches, its log's lines,
watch events of several resources), which is nearly but not quite in time order; the recording must be in time
order and hold what ``convert`` would have kept of the same events, so that a recording made live and one made
later of the same log are the same.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from kwoksnap.audit import (
    DEFAULT_WINDOW_EVENTS,
    AuditEvent,
    FilterSpec,
    ParseStats,
    filter_events,
    first_copies,
    resource_version,
)
from kwoksnap.replay.recording import redact_credentials, write_recording

WINDOW_NS: Final = 5_000_000_000  # events held to put a late one in its place (the audit reader's window)
# Second copies of an event (a webhook batch the API server sent again after its backoff, 10 s by default) are left
# out within this much recorded time of the first.
COPIES_NS: Final = 30_000_000_000
# What was recorded is handed to the system this often (a frame closed early), so that a recorder killed outright
# (SIGKILL, the OOM killer) leaves all but the last seconds in its temporary file, for `kwoksnap salvage`.
FLUSH_SECONDS: Final = 2.0


def in_time_order(events: Iterable[AuditEvent], window_ns: int = WINDOW_NS,
                  window_events: int = DEFAULT_WINDOW_EVENTS, stats: ParseStats | None = None) -> Iterator[AuditEvent]:
    """``events`` sorted by time (then resourceVersion, then arrival) within ``window_ns`` of the newest seen, and
    never more than ``window_events`` held (memory: a burst); one later than that comes out where it arrived,
    counted in ``stats.late``, as the audit reader counts it."""
    heap: list[tuple[int, int, int, AuditEvent]] = []
    order = itertools.count()
    newest = last = -(2**63)
    late = 0
    try:
        for ev in events:
            newest = max(newest, ev["ts"])
            heapq.heappush(heap, (ev["ts"], resource_version(ev), next(order), ev))
            while heap and (heap[0][0] <= newest - window_ns or len(heap) > window_events):
                ts, _, _, out = heapq.heappop(heap)
                late += ts < last
                last = max(last, ts)
                yield out
        while heap:
            ts, _, _, out = heapq.heappop(heap)
            late += ts < last
            last = max(last, ts)
            yield out
    finally:
        if stats is not None:
            stats.late += late


def record(events: Iterable[AuditEvent], path: str | Path, *, spec: FilterSpec, stats: ParseStats,
           include_secrets: bool, source: dict[str, Any], meta: dict[str, Any] | None = None,
           window_ns: int = WINDOW_NS) -> tuple[int, Path]:
    """Write the events a source delivers into the recording ``path`` as ``convert`` would have kept them; returns
    how many were written, and where (beside ``path`` if a file appeared there meanwhile). Ends when ``events``
    does (the source's stop).

    The filters decide each event on its own, so they come first: the window holds only what is kept (a busy API
    server's log is mostly reads; black-box finding: every event was held, 5 KB each). Then time order, then second
    copies left out (counted; no longer kept)."""
    kept = first_copies(in_time_order(filter_events(events, spec, stats), window_ns, stats=stats), stats, COPIES_NS)
    if not include_secrets:
        kept = redact_credentials(kept, stats)
    copies = stats.duplicates
    try:
        return write_recording(kept, path, source=source, flush_every=FLUSH_SECONDS,
                               meta={**(meta or {}), "secretsRedacted": not include_secrets})
    finally:
        stats.kept -= stats.duplicates - copies  # (counted kept by the filters before they were found copies)
