"""Replay time: ``--speed``, ``--max-gap``, absolute deadlines, lag statistics, and timestamps moved onto the
replay clock.

Why this module exists: a replay that sleeps relative gaps drifts (0.5 s after 5 s at 1,000 events/s); here every
event gets an absolute deadline ``start + offset / speed`` computed from the recording alone, so lateness never
accumulates. The arithmetic is pure so tests run it with a fake clock.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import functools
import heapq
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from kwoksnap.audit import AuditEvent, resource_version
from kwoksnap.errors import UsageError

T = TypeVar("T")
NS = 1_000_000_000
REORDER_WINDOW_NS = 2 * NS  # how long due_order holds an event for requests received before it to complete
RELEASED_MAX = 100_000  # objects whose last released resourceVersion due_order remembers, most recent first


SPEED_MIN, SPEED_MAX = 1e-6, 1e6
_NUMBER: Final = r"(?:\d+(?:\.\d+)?|\.\d+)"  # a factor or an amount of time: 10, 0.5, .5


def parse_speed(text: str) -> float | None:
    """``10x``, ``10``, ``0.5x``, ``1x`` -> factor; ``max`` -> None (no waiting at all)."""
    t = text.strip().lower()
    if t == "max":
        return None
    m = re.fullmatch(rf"({_NUMBER})x?", t)
    # Bounded: a 400-digit factor was inf (silently max), a tiny one made every offset inf (exit 70).
    if not m or not SPEED_MIN <= float(m.group(1)) <= SPEED_MAX:
        raise UsageError(f"invalid speed {text!r}: use a factor from 0.000001 to 1000000 like 10x, 0.5x, 1, or max "
                         "(digits, no exponent)")  # (not `1e-06 to 1e+06`, the notation it refuses: black-box)
    return float(m.group(1))


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``30s``, ``500ms``, ``5m``, ``1h30m``, ``90`` or ``.5`` (seconds) -> seconds. Numbers are written as
    ``--speed``'s are (``.5s`` as well as ``0.5s``; no exponent)."""
    t = text.strip().lower()
    if re.fullmatch(_NUMBER, t):
        return float(t)
    parts = re.findall(rf"({_NUMBER})(ms|s|m|h)", t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise UsageError(f"invalid duration {text!r}: use e.g. 30s, 500ms, 5m, 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclasses.dataclass
class Timeline:
    """Maps recorded time (ns) to replay offsets (s), compressing idle gaps longer than ``max_gap``.

    Fed in recorded order (:func:`due_order`); an event older than the previous one (one that took longer than the
    reorder window) gets the same offset as the previous one, never an earlier one. It remembers the gaps it
    compressed, so :meth:`wall_ns` maps any recorded instant (a condition's transition time inside an object) the
    same way whichever event carries it.
    """

    speed: float | None  # None: as fast as possible
    max_gap: float | None = None  # seconds of recorded time
    _last_ts: int | None = None
    _first_ts: int | None = None
    _recorded: float = 0.0  # recorded seconds since the first event, after gap compression
    # Compressed gaps, in recorded order: where each began (ns), where it ended (ns), and the seconds cut from the
    # gaps before it. Appended by the planner thread, read by the workers (list appends and reads are atomic).
    _gaps: list[tuple[int, int, float]] = dataclasses.field(default_factory=list)
    _cut: float = 0.0

    def offset(self, ts: int) -> float:
        if self._last_ts is not None:
            gap = max(0, ts - self._last_ts) / NS
            if self.max_gap is not None and gap > self.max_gap:
                self._gaps.append((self._last_ts, ts, self._cut))
                self._cut += gap - self.max_gap
                gap = self.max_gap
            self._recorded += gap
        else:
            self._first_ts = ts
        self._last_ts = ts if self._last_ts is None else max(ts, self._last_ts)
        return 0.0 if self.speed is None else self._recorded / self.speed

    def wall_ns(self, t: int, start_wall_ns: int) -> int:
        """The replay wall time (ns) of recorded instant ``t``, given the wall time of offset 0: ``t``'s distance
        from the first event, less the idle time compressed before it (an instant inside a compressed gap stays at
        the gap's ``max_gap``), divided by the speed. Before the first event nothing is compressed. At ``--speed
        max`` every instant of the replayed stretch is its start; earlier ones keep their distance."""
        if self._first_ts is None:
            return start_wall_ns
        cut = 0.0
        i = bisect.bisect_right(self._gaps, t, key=lambda gap: gap[0]) - 1
        if i >= 0 and self.max_gap is not None:
            begin, end, before = self._gaps[i]
            cut = before + max(0.0, (min(t, end) - begin) / NS - self.max_gap)
        seconds = (t - self._first_ts) / NS - cut
        if self.speed is None:
            return start_wall_ns + int(min(seconds, 0.0) * NS)
        return start_wall_ns + int(seconds / self.speed * NS)

    @property
    def recorded_seconds(self) -> float:
        """Compressed recorded time covered so far."""
        return self._recorded


def due_order(events: Iterable[AuditEvent], *, window_ns: int = REORDER_WINDOW_NS, max_held: int = 20_000,
              on_stale: Callable[[AuditEvent], None] | None = None) -> Iterator[AuditEvent]:
    """Re-sort a stream in completion order (``ts``) into the order the requests were sent (``received``), except
    that changes to one object keep the order they were committed in.

    Completion order can invert cause and effect on one object: the scheduler's binding of a pod may complete
    (stageTimestamp) after the kwok status patch it triggered, because the binding's response is still being written
    when the watch event has already gone out. Replaying in that order writes the status of an unbound pod. A
    request triggered by another's result is always received after that result was committed, so receive order is
    causal; it is also the order replay deadlines are in.

    Receive order is not commit order for two clients writing one object at once: the request received first can
    be committed second (it waited longer in admission, or for its turn in etcd). Replay re-applies the object each
    write produced, so replaying those two in receive order would end with the older state. The response's
    ``resourceVersion`` is the commit order (one etcd, even behind several API servers). So when two held events of
    one object both carry one and receive order disagrees with it, the one committed later moves to right after
    the other, together with the object's held events committed after it. Events only ever move later: a move
    earlier could pass the event's cause (a status patch ahead of the binding that triggered it), while an event
    moved later still precedes its effects, which were received after it was committed, so after the event it
    now follows was received. Events without a response resourceVersion (a binding answers with a Status,
    Metadata level has no body) and no-op writes (the same resourceVersion) are never moved.

    An event is held until the stream has reached ``received + window_ns``: a later event could only come before it
    by taking longer than the window between its receipt and its completion. At most ``max_held`` events are held
    (the oldest goes first beyond that), so memory stays bounded on a dense log. Commit order cannot be restored
    with a write that has already left (one that came more than the window late, or pushed out by ``max_held``):
    such a stale event keeps its place in the stream and is passed to ``on_stale`` (checked against the last
    ``RELEASED_MAX`` objects released).
    """
    held: list[_Held] = []  # a heap; entries of moved events stay in it, marked dead, until they reach the top
    peers: dict[tuple[str, str, str, str], list[_Held]] = {}  # held entries with a resourceVersion, per object
    released: dict[tuple[str, str, str, str], int] = {}  # the highest resourceVersion released per object
    alive = 0
    horizon = 0
    for seq, ev in enumerate(events):
        ts = ev["ts"]
        entry = _Held((ev["received"] or ts, ts, seq), resource_version(ev), None, ev)
        heap_push = [entry]
        if entry.rv:
            entry.obj = (ev["group"], ev["resource"], ev["namespace"], ev["name"])
            if on_stale is not None and released.get(entry.obj, 0) > entry.rv:
                on_stale(ev)
            same = peers.setdefault(entry.obj, [])
            entry.key = _after_earlier_commits(entry, same, seq)
            previous = entry
            for old in _later_commits_before(entry, same):
                moved = _Held((*previous.key, seq), old.rv, old.obj, old.ev)  # right after, in commit order
                old.ev = None  # dead: skipped when it reaches the top
                same[same.index(old)] = moved
                heap_push.append(moved)
                previous = moved
            same.append(entry)
        for item in heap_push:
            heapq.heappush(held, item)
        alive += 1
        horizon = max(horizon, ts)
        while held and (held[0].ev is None or held[0].key[0] <= horizon - window_ns or alive > max_held):
            out = _pop(held, peers, released)
            if out is not None:
                alive -= 1
                yield out
    while held:
        out = _pop(held, peers, released)
        if out is not None:
            yield out


@dataclasses.dataclass(eq=False)
class _Held:
    """One held event: its sort key (receive time, completion time, stream position, extended when moved), its
    response resourceVersion (0: none) and object. ``ev`` is None once the event has moved to a new entry."""

    key: tuple[float, ...]
    rv: int
    obj: tuple[str, str, str, str] | None
    ev: AuditEvent | None

    def __lt__(self, other: _Held) -> bool:
        return self.key < other.key


def _after_earlier_commits(entry: _Held, same: list[_Held], seq: int) -> tuple[float, ...]:
    """The key of a new event: its own, or right after the last held event of its object committed before it."""
    earlier = [p.key for p in same if p.rv < entry.rv]
    last = max(earlier, default=None)
    return entry.key if last is None or last < entry.key else (*last, seq)


def _later_commits_before(entry: _Held, same: list[_Held]) -> list[_Held]:
    """Held events of the object committed after ``entry`` that would go before it, in commit (= key) order."""
    return sorted((p for p in same if p.rv > entry.rv and p.key < entry.key), key=lambda p: p.rv)


def _pop(held: list[_Held], peers: dict[tuple[str, str, str, str], list[_Held]],
         released: dict[tuple[str, str, str, str], int]) -> AuditEvent | None:
    entry = heapq.heappop(held)
    if entry.ev is None:
        return None
    if entry.obj is not None:
        same = peers[entry.obj]
        same.remove(entry)
        if not same:
            del peers[entry.obj]
        rv = max(entry.rv, released.pop(entry.obj, 0))  # re-inserted: the dict's order is recency of release
        released[entry.obj] = rv
        if len(released) > RELEASED_MAX:
            del released[next(iter(released))]
    return entry.ev


def spread(items: Iterable[T], due: Callable[[T], float], *, rate: float | None, max_lead: float,
           horizon: float | None = None, max_held: int = 20_000) -> Iterator[tuple[T, float]]:
    """Yield each item with the time to send it: its due time, or earlier where the items due around it are more
    than the target can take at ``rate`` per second.

    Why: a recorded burst (15 pods created, bound and started within 0.2 s) can be more than the target takes in
    its replayed time; sent at their due times, its changes queue up and the last lands late by the whole overrun.
    Sending the burst early by half its overrun centres the same backlog on its recorded time, so the worst change
    is off by half as much, early or late. Only the timing changes: items keep their order (the send times never
    decrease), nothing is sent more than ``max_lead`` before it is due, and a target that keeps up (items at least
    ``1/rate`` apart) gets every item at its due time.

    The schedule: ``p_i``, the latest send time from which the backlog of items ``i, i+1, ...`` would be done on
    time at ``rate`` (``p_i = min(d_i, p_{i+1} - 1/rate)``, that is ``i/rate + min_{j>=i}(d_j - j/rate)``), is
    computed over the items due within ``horizon`` after item ``i`` (default ``4 * max_lead``; at most ``max_held``
    items, which bounds memory), a sliding-window minimum, O(1) per item; item ``i`` goes at ``max(d_i - max_lead,
    (d_i + p_i) / 2)``. A stretch of overload longer than the window is spread over its first stretch only: less
    lead, never more. Due times must not decrease.
    """
    if rate is None or rate <= 0 or max_lead <= 0:
        for item in items:
            yield item, due(item)
        return
    tau = 1.0 / rate
    window = horizon if horizon is not None else 4 * max_lead
    held: collections.deque[tuple[int, T, float]] = collections.deque()  # (index, item, due), in order
    mins: collections.deque[tuple[int, float]] = collections.deque()  # (index, due - index*tau), increasing
    last = -math.inf

    def release() -> tuple[T, float]:
        nonlocal last
        i, item, d = held.popleft()
        latest = min(d, mins[0][1] + i * tau)
        if mins[0][0] == i:
            mins.popleft()
        last = max(last, d - max_lead, (d + latest) / 2)
        return item, last

    for index, item in enumerate(items):
        d = due(item)
        while held and (d - held[0][2] > window or len(held) >= max_held):
            yield release()
        held.append((index, item, d))
        e = d - index * tau
        while mins and mins[-1][1] >= e:
            mins.pop()
        mins.append((index, e))
    while held:
        yield release()


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


class LagStats:
    """Lateness of each dispatched event (seconds after its deadline), compact for millions of events."""

    def __init__(self) -> None:
        self._values = array("d")

    def add(self, lag: float) -> None:
        self._values.append(lag)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, p: float) -> float:
        return percentile(sorted(self._values), p)

    def recent_percentile(self, p: float, last: int = 10_000) -> float:
        """The percentile of the last ``last`` values: a live progress line's, at a cost that does not grow with the
        run (sorting every value, several times a second, held the GIL for 0.26 s at a million changes)."""
        return percentile(sorted(self._values[-last:]), p)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self._values)
        return {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99), "max": percentile(ordered, 100)}


# Timestamp fields inside objects that describe when something happened (creationTimestamp, deletionTimestamp
# and managedFields times are set by the target server and never sent).
TIME_KEYS = frozenset({"lastTransitionTime", "lastHeartbeatTime", "lastProbeTime", "lastUpdateTime", "startTime",
                       "startedAt", "finishedAt", "renewTime", "acquireTime", "lastScheduleTime",
                       "lastSuccessfulTime", "completionTime", "timeAdded", "lastScaleTime", "firstTimestamp",
                       "lastTimestamp", "eventTime", "lastObservedTime", "deprecatedFirstTimestamp",
                       "deprecatedLastTimestamp"})


def parse_rfc3339(value: str) -> int | None:
    """ns since epoch of an RFC 3339 time (``Z`` or offset, 0-9 fractional digits), None if not one."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", value)
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = int((m.group(2) or "0").ljust(9, "0"))
    return int(base.timestamp()) * NS + frac


def format_rfc3339(ns: int) -> str:
    """Seconds precision with ``Z``: what the API server accepts for metav1.Time (MicroTime is rarely used)."""
    return _second_text(ns // NS) + "Z"


def format_micro(ns: int) -> str:
    """metav1.MicroTime (Lease renewTime/acquireTime)."""
    return _second_text(ns // NS) + f".{(ns // 1000) % 1_000_000:06d}Z"


# Pure conversions, cached (a replayed object's times are mostly the same few seconds, written again and again: at
# --speed max, parsing and formatting them was the largest cost of the replay's own, besides the writes).
@functools.lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    """Epoch second -> ``YYYY-MM-DDTHH:MM:SS``."""
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


_parsed: Final = functools.lru_cache(maxsize=4096)(parse_rfc3339)


MICRO_KEYS = frozenset({"renewTime", "acquireTime", "eventTime", "lastObservedTime"})


def _fraction_digits(value: str) -> int:
    """How many fractional digits an RFC 3339 time has (``...:05Z``: 0, ``...:05.123456789Z``: 9)."""
    if len(value) < 21 or value[19] != ".":
        return 0
    end = 20
    while end < len(value) and value[end].isdigit():
        end += 1
    return end - 20


def format_like(ns: int, digits: int) -> str:
    """``ns`` with ``digits`` fractional digits (as the recorded value had: a custom resource's nanosecond status
    time stays one; the API server's metav1.Time has none) and ``Z``."""
    if not digits:
        return format_rfc3339(ns)
    return _second_text(ns // NS) + "." + f"{ns % NS:09d}"[:digits] + "Z"


def shift_times(obj: Any, to_replay: Callable[[int], int], resource: str = "", group: str = "") -> Any:
    """A copy of ``obj`` (an object, a merge patch, or a JSON patch's operations) of ``resource`` in ``group`` whose
    event-time fields are moved by ``to_replay`` (recorded ns -> replay wall ns).

    Only where objects record when things happened: ``status`` (any resource), a Lease's ``spec`` (renew and
    acquire times), a Node's ``spec.taints`` (``timeAdded``) and an Event's own times. Never ``metadata``, a
    ConfigMap's or Secret's data, or any other ``spec``: a user's data or a custom resource's scheduled
    ``spec.startTime`` is kept as recorded, whatever its keys are called.

    A value that is not a time, Go's zero time (``0001-01-01T00:00:00Z``: unset, as operators' ``time.Time`` fields
    write it), an impossible date (``2027-02-30``) or one that would move outside years 1-9999 is kept as
    recorded."""
    if isinstance(obj, list):  # JSON patch operations: a value written where times move
        out_ops: list[Any] = []
        for op in obj:
            path = op.get("path") if isinstance(op, dict) else None
            if isinstance(path, str) and "value" in op and _moves(path.split("/")[1:], resource, group):
                leaf = path.rsplit("/", 1)[-1]
                op = {**op, "value": _shift({leaf: op["value"]}, to_replay)[leaf]}
            out_ops.append(op)
        return out_ops
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for key, value in obj.items():
        if _moves([key], resource, group):
            out[key] = _shift({key: value}, to_replay)[key]
        elif isinstance(value, dict) and "taints" in value and _moves([key, "taints"], resource, group):
            out[key] = {**value, "taints": _shift(value["taints"], to_replay)}
    return out


def _moves(path: list[str], resource: str, group: str) -> bool:
    """Whether what lies at ``path`` (keys from the object's top) records when things happened (see
    :func:`shift_times`): the one rule for objects, merge patches and JSON patch paths."""
    top = path[0] if path else ""
    return (top == "status"
            or (top == "spec" and resource == "leases" and group == "coordination.k8s.io")
            or (resource == "events" and (top == "series" or top in TIME_KEYS))
            or (path[:2] == ["spec", "taints"] and resource == "nodes" and not group))


def _shift(obj: Any, to_replay: Callable[[int], int]) -> Any:
    """``obj`` with its times moved, copy on write: a map or list holding no time is the very one given, and
    nothing given is changed (replayed bodies share what they do not change with the recorded objects)."""
    if isinstance(obj, dict):
        out: dict[str, Any] | None = None
        for k, v in obj.items():
            if isinstance(v, str):
                if k not in TIME_KEYS or v.startswith("0001-01-01T"):
                    continue
                try:
                    ns = _parsed(v)
                    if ns is None:
                        continue
                    shifted = to_replay(ns)
                    new: Any = format_micro(shifted) if k in MICRO_KEYS else format_like(shifted, _fraction_digits(v))
                except (ValueError, OverflowError, OSError):  # datetime's range: keep the recorded value
                    continue
            elif isinstance(v, (dict, list)):
                new = _shift(v, to_replay)
                if new is v:
                    continue
            else:
                continue
            if out is None:
                out = dict(obj)
            out[k] = new
        return obj if out is None else out
    if isinstance(obj, list):
        changed: list[Any] | None = None
        for i, v in enumerate(obj):
            if isinstance(v, (dict, list)):
                new = _shift(v, to_replay)
                if new is not v:
                    if changed is None:
                        changed = list(obj)
                    changed[i] = new
        return obj if changed is None else changed
    return obj
