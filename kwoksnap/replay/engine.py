"""Drive recorded changes into a target cluster on the replay clock.

Why this module exists: it is the only place replay writes recorded changes to a cluster (``capacity`` writes only
its own scratch objects). Three threads of work keep timing honest: a producer plans actions ahead (parsing and
planning never run in the dispatch path), a dispatcher releases each action at its absolute deadline (``start +
offset / speed``: no cumulative drift; a burst the target cannot take on time goes early by half its overrun,
``timing.spread``), and workers execute them, one at a time per object so that changes to one object keep their
recorded order while different objects proceed in parallel. Lag (start of execution minus deadline) is measured for
every change, node-lease renewals apart; a target that cannot keep up makes the replay late, never silently
different. Every event ends as applied, skipped (with a reason) or failed (with the error); a collection delete
split into named deletes counts as one event per object. Ctrl-C stops cleanly with the same report.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import itertools
import logging
import math
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from kwoksnap.audit import AuditEvent, Classifier, classify, degraded, format_timestamp, resource_version
from kwoksnap.audit.changes import removed_by_update
from kwoksnap.audit.filters import LEASE_GROUP
from kwoksnap.capture.redact import REDACTED_ANNOTATION, holds_placeholders
from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import APIError, Conflict, Invalid, KwoksnapError, NotFound, TransportError
from kwoksnap.interrupts import INTERRUPT_POLL, DeferredInterrupts
from kwoksnap.kube.client import MERGE_PATCH, OUTAGE_SECONDS, STRATEGIC_MERGE_PATCH, Client
from kwoksnap.kube.discovery import Discovery, Resource, discover
from kwoksnap.kube.objects import scrubbed_error
from kwoksnap.replay.actions import (
    JOB_UID_LABELS,
    NODE_LEASE_NAMESPACE,
    Action,
    Mode,
    Skip,
    clean_body,
    plan_action,
    split_collection_deletes,
    with_uid_precondition,
)
from kwoksnap.replay.capacity import measure_write_rate
from kwoksnap.replay.fidelity import node_state, pod_state
from kwoksnap.replay.limit import RENEWAL_YIELD, AdaptiveLimit, Backlog, Gate, Lookahead, Ticket
from kwoksnap.replay.timing import (
    NS,
    RELEASED_MAX,
    REORDER_WINDOW_NS,
    LagStats,
    Timeline,
    due_order,
    format_micro,
    shift_times,
    spread,
)
from kwoksnap.restore.transform import CREATED_BY_LABEL, FROZEN_ANNOTATION, SCHEDULING_GATE, finished_job

log = logging.getLogger("kwoksnap.replay")

Obj = dict[str, Any]
OWNER_WAIT = 5.0  # seconds an owner lookup waits for the owner's create, if replay is sending one
# Seconds a change to a custom resource waits for the target to serve it, when its CRD exists there but is not in
# discovery yet (the log creates the CRD a moment before its first object; Established comes within a second).
CRD_SERVE_WAIT = 10.0
RECREATE_WAIT = 5.0  # seconds a re-create waits for the older copy it deleted to go
# Seconds a create waits for an older copy of its object that is being deleted (Terminating) to go: a namespace
# deleted and created again in the recording, whose deletion the target's own namespace controller finishes (a few
# seconds). The changes in that namespace wait for its create without a limit (parked: _blocker).
TERMINATING_WAIT = 30.0
STAND_IN_WAIT = 3.0  # seconds an inputs-mode delete of a controller's pod waits for a pod of it to stand in
PLANNER_JOIN = 5.0  # seconds the stop waits for the planner to see it (it reads no further once it does)
_STOPPING = "interrupted: the changes being sent finish, nothing more is sent (Ctrl-C again stops waiting for them)"
PROGRESS_EVERY = 1.0  # seconds between redraws of the progress line while the replay waits for the next change
LONG_WAIT = 600.0  # seconds of replay time between two changes that deserve a warning when it is reached
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
# Inputs mode: seconds the fidelity check gives the target's own components (kwok, the scheduler, the controllers)
# to carry out the last inputs before objects that still differ count as mismatches.
INPUTS_SETTLE = 10.0


@dataclasses.dataclass(frozen=True)
class ReplayOptions:
    speed: float | None = 10.0  # None: --speed max
    max_gap: float | None = None  # seconds of recorded time
    mode: Mode = "verbatim"
    keep_timestamps: bool = False
    workers: int = 32  # the most requests in flight; a remote target needs many to hide round trips
    # With `adaptive` and a paced speed, the number in flight follows the target's latency between min(4, workers)
    # and `workers` (replay/limit.py): requests queued inside a small local target only make each other late.
    # `--speed max` has no deadlines, only throughput, and the API server's throughput still grows with requests
    # in flight long after its latency does (docs/benchmarks.md): there all `workers` are used.
    adaptive: bool = True
    classifier: Classifier = classify
    # Planned changes buffered ahead of the dispatcher, and changes handed to the workers and not finished: at most
    # this many each. Each holds its decoded bodies (~19 KB for a pod's create or status write): 20,000 each held
    # 964 MiB at --speed max on a 1 GB log of pods created, changed and deleted (bench_replay.py rss); 2,000: 229 MiB.
    # More would not help: at --speed max the workers need only a few changes each, and a change planned 2,000
    # ahead is seconds ahead of a two-core target (it takes hundreds of writes a second).
    lookahead: int = 2_000
    # Node-lease renewals of one lease closer together than this (wall seconds of replay) are coalesced: no
    # component can observe heartbeats faster than its grace period (tens of seconds), and at 10x the recorded
    # renewals would otherwise be ~40% of all writes. When renewals stop in the recording, the last one replayed is
    # at most this much early. 0 replays every renewal.
    lease_interval: float = 1.0
    # A paced replay sends a burst the target cannot take on time up to this many wall seconds early, so that it
    # lands around its recorded time (timing.spread); 0 never sends early. The target's write rate is measured
    # before the clock starts (replay/capacity.py) unless `capacity` (writes/s) is given.
    max_lead: float = 0.25
    capacity: float | None = None
    # When the snapshot restored into the target was taken (ns; checks.snapshot_taken): events that completed
    # before it (their ts, as --from compares) are counted (before_snapshot): the snapshot holds their changes.
    snapshot_taken_ns: int | None = None


@dataclasses.dataclass
class ObjectState:
    """The last recorded state of a replayed pod or node: what fidelity compares at the end."""

    kind: str
    phase: str = ""
    ready: str = ""
    node: str = ""
    deleted: bool = False
    # Which copy: the recorded result's (source) UID, or a live object's; compared through the UID map (_mismatch).
    uid: str = dataclasses.field(default="", compare=False)
    # A pod's controller ("ReplicaSet/web-5d4f"), for inputs mode's stand-ins (_stand_in); not compared.
    owner: str = dataclasses.field(default="", compare=False)
    # What else decides whether a delete removes it at once (removed_by_delete); not compared.
    grace: int | None = dataclasses.field(default=None, compare=False)  # spec.terminationGracePeriodSeconds
    finalizers: bool = dataclasses.field(default=False, compare=False)
    terminating: bool = dataclasses.field(default=False, compare=False)  # deletionTimestamp set (_mismatch)


def _describe(key: tuple[str, str, str]) -> str:
    """``Pod ns/name``, ``nodes name``: an object (by kind or resource) in a line of the report."""
    kind, namespace, name = key
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def _mismatch(key: tuple[str, str, str], want: ObjectState, got: ObjectState | None, inputs: bool,
              copy: str = "", live_name: str = "") -> str | None:
    """How a live pod or node differs from its expected state, or None (inputs mode: not by node, which the
    target's scheduler chooses). ``copy``: the target UID of the copy replay wrote for the recorded one, when
    known; another copy in its place (made again by someone else) differs even in the same state. ``live_name``:
    the name of the live object compared, when it is another's (a stand-in)."""
    name = _describe(key) + (f" (as its stand-in {live_name})" if live_name and live_name != key[2] else "")
    if want.deleted:
        return f"{name}: recorded deleted, still exists" if got is not None else None
    if got is None:
        # Inputs mode: the target's kwok finishes a deletion the log ended in the middle of, as its own components
        # carry out what the inputs set off (re-test finding: evicted pods "missing", as many as kwok was quick).
        return None if inputs and want.terminating else f"{name}: missing"
    if copy and got.uid and got.uid != copy:
        return (f"{name}: another copy (uid {got.uid}) stands where replay wrote the recorded one (uid {copy}): "
                "it was deleted and made again in the target")
    if got.terminating and not want.terminating:  # (black-box finding: "match" for a pod about to be deleted)
        return f"{name}: being deleted (Terminating) in the target, not in the recording"
    if want.terminating and not got.terminating:
        return f"{name}: being deleted (Terminating) in the recording, not in the target"
    if inputs and (want.phase, want.ready) != (got.phase, got.ready):
        return f"{name}: recorded phase={want.phase} ready={want.ready}, target phase={got.phase} ready={got.ready}"
    if not inputs and (want.phase, want.ready, want.node) != (got.phase, got.ready, got.node):
        return (f"{name}: recorded phase={want.phase} ready={want.ready} node={want.node}, target "
                f"phase={got.phase} ready={got.ready} node={got.node}")
    return None


def observed_state(kind: str, obj: Obj) -> ObjectState:
    meta = obj.get("metadata") or {}
    finalizers, uid = bool(meta.get("finalizers")), str(meta.get("uid") or "")
    terminating = bool(meta.get("deletionTimestamp"))
    if kind == "Pod":
        phase, ready, node = pod_state(obj)
        grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        return ObjectState(kind, phase=phase, ready=ready, node=node, uid=uid, owner=controller_of(meta),
                           grace=grace if isinstance(grace, int) else None, finalizers=finalizers,
                           terminating=terminating)
    return ObjectState(kind, ready=node_state(obj)[0], uid=uid, finalizers=finalizers, terminating=terminating)


# Controllers whose pods are named by a random suffix (generateName), which the target's copy chooses anew: their
# pods' deletes in inputs mode may need a stand-in (_stand_in). A StatefulSet's pods keep their names.
NAMED_BY_SUFFIX = frozenset({"ReplicaSet", "Job", "DaemonSet", "ReplicationController"})


def controller_of(meta: Obj) -> str:
    """``Kind/name`` of the controller named in an object's metadata, or ``""``."""
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


def _by_source(failure: str) -> tuple[str, int]:
    """``file:line: ...`` -> (file, line), for listing failures in log order."""
    path, _, line = failure.split(": ", 1)[0].rpartition(":")
    return (path, int(line)) if line.isdigit() else (failure, 0)


def removed_by_delete(state: ObjectState, action: Action) -> bool:
    """Whether the API server removes the object ``action`` deletes at once (else it stays, Terminating, until
    finalized), given its state when deleted: pods go at once when the grace period is 0, when they are terminal
    or unscheduled, and only without finalizers."""
    if state.finalizers:
        return False
    if state.kind != "Pod":
        return True
    # The request's grace period, else the pod's own (podStrategy.CheckGracefulDelete).
    grace = (action.body or {}).get("gracePeriodSeconds", action.params.get("gracePeriodSeconds"))
    if grace is None:
        grace = state.grace
    return bool(str(grace) == "0" or state.phase in ("Succeeded", "Failed") or not state.node)


def _left_terminating(result: Any) -> bool:
    """Whether a delete's recorded result is the object it left in place, Terminating (a grace period to run out,
    or finalizers to go), rather than removed at once."""
    if type(result) is not dict or result.get("kind") in ("Status", None):
        return False
    return bool((result.get("metadata") or {}).get("deletionTimestamp")) and not removed_by_update(result)


def _deletion(recorded: Any) -> str:
    """Whether a recorded state is of an object being deleted: "" not, "gone" if the write removed it (no
    finalizers, no grace period left: ``removed_by_update``), "held" if it stayed Terminating (finalizers, or a
    bound pod's grace period: re-test finding, such a pod was skipped, then reported missing)."""
    meta = recorded.get("metadata") if isinstance(recorded, dict) else None
    if not isinstance(meta, dict) or not meta.get("deletionTimestamp"):
        return ""
    return "gone" if removed_by_update(recorded) else "held"


@contextlib.contextmanager
def _created_then(what: str) -> Iterator[None]:
    """The steps after a create: their failure says the object was created (review finding: only the second step's
    error was shown, which read as if nothing had been written), as restore's "created, but" does."""
    try:
        yield
    except KwoksnapError as exc:  # (its cause is what the target answered: _apply reads it)
        raise KwoksnapError(f"created, but {what} could not be written: {exc}") from exc


def _object_key(action: Action) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of a pod or node action, the key fidelity compares by; None for anything else (and
    for an unsplit collection delete, which names no object)."""
    kind = {"pods": "Pod", "nodes": "Node"}.get(action.resource) if action.group == "" else None
    return (kind, action.namespace, action.name) if kind is not None and action.name else None


def _advance(states: dict[tuple[str, str, str], ObjectState], unknown: set[tuple[str, str, str]],
             key: tuple[str, str, str], action: Action, gone: bool) -> None:
    """The object's state after ``action`` (see _track), in ``states``; an object whose last change holds no
    resulting object, or one that is malformed, moves to ``unknown`` until a recorded result comes again."""
    try:
        _advance_state(states, unknown, key, action, gone)
    except (AttributeError, TypeError, ValueError):  # e.g. a condition that is not an object: not comparable
        states.pop(key, None)
        unknown.add(key)


def _advance_state(states: dict[tuple[str, str, str], ObjectState], unknown: set[tuple[str, str, str]],
                   key: tuple[str, str, str], action: Action, gone: bool) -> None:
    kind = key[0]
    before = states.get(key)
    if action.op == "delete":
        # Judged by the recorded result, or without one (an eviction answers with a Status) by the object as last
        # seen; a delete that found it gone, or one of an object never seen, removes it.
        deleted = observed_state(kind, action.state) if action.state is not None else before
        stays = not gone and deleted is not None and not deleted.deleted and not removed_by_delete(deleted, action)
        if stays and deleted is not None:
            # left Terminating (review finding: after an eviction, whose answer is a Status, the pod as last seen
            # was expected, not being deleted, and the target's pod, Terminating as recorded, was a mismatch)
            states[key] = dataclasses.replace(deleted, terminating=True)
        if not stays:
            states[key] = dataclasses.replace(before or ObjectState(kind), deleted=True)
            unknown.discard(key)
    elif action.state is not None:
        if removed_by_update(action.state):
            states[key] = dataclasses.replace(before or ObjectState(kind), deleted=True)
        else:
            states[key] = observed_state(kind, action.state)
        unknown.discard(key)
    elif action.op == "bind":
        if before is not None:
            before.node = str((action.body or {}).get("target", {}).get("name", ""))
    elif action.op != "renew" and key not in unknown:
        # Applied without a recorded result (a Request-level patch): the state it made is not in the log, so the
        # object is left out of the comparison until a recorded result comes again.
        states.pop(key, None)
        unknown.add(key)


@dataclasses.dataclass
class ReplayReport:
    events: int = 0
    applied: int = 0
    failed: int = 0
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    degraded: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    # Object changes only: node-lease renewals give way to them for up to RENEWAL_YIELD by design, so their
    # lateness is kept apart (renewal_lag) instead of masking how late the changes were.
    lag: LagStats = dataclasses.field(default_factory=LagStats)  # deadline -> request sent
    applied_lag: LagStats = dataclasses.field(default_factory=LagStats)  # deadline -> the API server's answer
    renewal_lag: LagStats = dataclasses.field(default_factory=LagStats)  # a renewal's deadline -> its answer
    recorded_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    abandoned: list[str] | None = None  # a second Ctrl-C: the objects whose changes were in flight then, not waited for
    warnings: list[str] = dataclasses.field(default_factory=list)
    stale: int = 0  # changes that came after a later commit of their object was sent (skipped ones: skipped.stale)
    fidelity_checked: int = 0
    mismatches: list[str] = dataclasses.field(default_factory=list)
    recorded_start_ns: int = 0  # ts of the first replayed event
    replay_start_ns: int = 0  # wall time at which it was due
    limits: Counter[int] = dataclasses.field(default_factory=Counter)  # in-flight limit after each answer
    capacity: float | None = None  # writes/s the early sending of bursts planned with (None: not spread)
    early: int = 0  # changes released before they were due (a burst spread around its recorded time)
    lead_max: float = 0.0  # seconds: the most any change was released early
    namespaces_created: list[str] = dataclasses.field(default_factory=list)  # the target lacked them (_create)
    before_snapshot: int = 0  # events that completed before the restored snapshot was taken (ReplayOptions)
    dropped_owners: int = 0  # owner references left out: the owner was not in the target (nor being created)
    # Inputs mode: deletes and evictions of controller-made pods the target names differently, sent to a pod of the
    # same controller instead (recorded namespace/name -> the target's name).
    stand_ins: dict[str, str] = dataclasses.field(default_factory=dict)
    # Inputs mode: deletes and evictions of controllers' pods for which the target had no pod of that controller
    # to stand in (its controller had made none yet, or none was left): not applied
    without_stand_in: list[str] = dataclasses.field(default_factory=list)

    @property
    def unsent(self) -> int:
        """Events planned but never sent: a replay that ran to its end sends or skips every one."""
        return max(0, self.events - self.applied - self.failed - self.skipped.total())

    def concurrency(self) -> dict[str, int]:
        """The adaptive in-flight limit: its range and median over the answers (empty with fixed workers)."""
        if not self.limits:
            return {}
        values = sorted(self.limits)
        half, seen, p50 = self.limits.total() // 2, 0, values[-1]
        for value in values:  # the Counter holds one count per limit value, not one entry per answer
            seen += self.limits[value]
            if seen > half:
                p50 = value
                break
        return {"min": values[0], "p50": p50, "max": values[-1]}

    def to_dict(self) -> dict[str, Any]:
        lag = {k: round(v * 1000, 3) for k, v in self.lag.summary().items()}
        applied_lag = {k: round(v * 1000, 3) for k, v in self.applied_lag.summary().items()}
        renewal_lag = {k: round(v * 1000, 3) for k, v in self.renewal_lag.summary().items()}
        return {
            "events": self.events, "applied": self.applied, "failed": self.failed,
            "skipped": dict(self.skipped), "degraded": dict(self.degraded),
            "failures": self.failures[:200], "lagMs": lag, "appliedLagMs": applied_lag,
            "renewals": len(self.renewal_lag), "renewalLagMs": renewal_lag,
            "recordedSeconds": round(self.recorded_seconds, 3),
            "wallSeconds": round(self.wall_seconds, 3), "interrupted": self.interrupted, "unsent": self.unsent,
            "abandonedInFlight": self.abandoned,
            "warnings": self.warnings,
            "stale": self.stale, "namespacesCreated": sorted(self.namespaces_created),
            "beforeSnapshot": self.before_snapshot, "droppedOwnerReferences": self.dropped_owners,
            "standIns": dict(list(self.stand_ins.items())[:200]), "standInCount": len(self.stand_ins),
            "withoutStandIn": self.without_stand_in[:200],
            "recordedStartNs": self.recorded_start_ns, "replayStartNs": self.replay_start_ns,
            "concurrency": self.concurrency(),
            "spread": {"capacityWritesPerSecond": round(self.capacity, 1) if self.capacity else None,
                       "early": self.early, "leadMsMax": round(self.lead_max * 1000, 3)},
            "fidelity": {"checked": self.fidelity_checked, "mismatches": self.mismatches[:500],
                         "mismatchCount": len(self.mismatches)},
        }


@dataclasses.dataclass(slots=True)
class _Item:  # (not frozen: two fields are set as it is handed on, where a dataclasses.replace cost 1.7 us each)
    offset: float  # seconds after the replay start
    action: Action
    source: str
    send_at: float = 0.0  # seconds after the replay start: the offset, or earlier in a spread burst
    recorded: float = 0.0  # recorded seconds (compressed) from the first event to this one
    degraded: str = ""  # the event's level when it lacks the bodies to replay it as recorded (counted when sent)
    skips: int = 0  # events the planner skipped before this one (counted when it is dispatched: _count_skips)
    seq: int = 0  # its place in the order changes were handed to the workers (_submit)


Queue = Lookahead[_Item | None]  # None: stop


class Replayer:
    def __init__(self, client: Client, options: ReplayOptions, *, clock: Clock | None = None,
                 discovery: Discovery | None = None,
                 progress: Callable[[ReplayReport, float], None] = lambda _r, _t: None,
                 notice: Callable[[str], None] = lambda _m: None) -> None:
        self.client = client
        self.notice = notice  # a warning the user should see now, not only in the report at the end
        self.options = options
        self.clock = clock or RealClock()
        self.discovery = discovery or discover(client)
        self.progress = progress
        self.report = ReplayReport()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # Creates handed to the workers and not answered yet (_awaited), by when they were handed on (_Item.seq,
        # oldest first), by object and by the namespace they are in: a change waits for those handed on before it
        # that it needs (_blocker), parked meanwhile (_parked, by what it waits for), not on a worker thread.
        self._open_creates: dict[tuple[str, str, str, str], list[int]] = {}
        self._open_in_namespace: dict[str, list[int]] = {}
        self._parked: dict[tuple[str, Any], list[_Item]] = {}
        self._unfinished = 0  # changes handed on and not finished (parked ones too): run() waits for none
        self._pool: ThreadPoolExecutor | None = None
        self._submitted = 0
        self._created = threading.Condition(self.lock)
        self._dropped_examples: list[str] = []
        self._dropped: set[tuple[str, str, str, str]] = set()  # (namespace, name, owner kind, owner name) left out
        self._renewed: dict[tuple[str, str], float] = {}  # --speed max: when each lease was last renewed
        self._lost: collections.Counter[str] = collections.Counter()  # degraded-metadata skips, by resource
        self.uids: dict[tuple[str, str, str], str] = {}  # (kind, namespace, name) -> target uid
        # source uid -> target uid, one entry per object incarnation replay has written (kept to the end: a pod's
        # final delete after a graceful one still names its UID)
        self.target_uids: dict[str, str] = {}
        self._stand_in_uids: dict[str, tuple[str, str]] = {}  # inputs mode: recorded ns/name -> (stand-in, its uid)
        self._slot = threading.local()  # .current: the _Slot of the change this thread sends; .seq: its _Item.seq
        self._deleted_by_name: set[str] = set()  # inputs mode: ns/name of pods a delete found under their own name
        self._source_of: dict[str, str] = {}  # target uid -> the source uid it was learned for
        self._late_deletes = 0  # split collection deletes that could not come before a re-create (_late_delete)
        # Named deletes made of the collection deletes split so far, beyond one per collection delete: after a stop,
        # the events the filters kept count as stats.kept + split_extra in the report's units (the CLI's unsent).
        self.split_extra = 0
        self._stale_events: set[int] = set()  # ids of events due_order found stale (_superseded decides)
        self._late_split: set[int] = set()  # ids of split collection deletes that came after a re-create
        self.expected: dict[tuple[str, str, str], ObjectState] = {}  # (kind, namespace, name) -> last recorded
        self._resources: dict[tuple[str, str, str], Resource | None] = {}
        self._discovering = threading.Lock()  # held while discovery is fetched again (resource)
        self._crd_generation = 0  # CRD writes answered so far (_forget_unserved)
        self._inflight: dict[tuple[str, str, str, str], collections.deque[_Item]] = {}
        # The change each worker thread is sending now, by thread: each thread writes only its own entry, so no
        # lock is taken (two per change, by 32 threads, were some of the workers' waiting at --speed max).
        self._sending: dict[int, tuple[str, str, str, str]] = {}
        self._planner_error: BaseException | None = None  # (or the target gone: _gone)
        self._ctrl_c = False  # the user stopped the replay (Ctrl-C, SIGTERM)
        self._skips: collections.deque[tuple[str, str, str]] = collections.deque()  # (reason, level, lost): _skip
        self._skips_planned = self._skips_counted = 0
        self._answered = 0.0  # monotonic time of the target's last answer (any: a refusal too)
        self._planned_seconds = 0.0  # recorded seconds covered by planning (the report's once all is sent)
        self._start = 0.0  # monotonic time of offset 0, set when dispatch starts
        self._wall_start_ns = 0
        self._timeline = Timeline(options.speed, options.max_gap)  # fed by the planner, read by the workers
        self._unknown: set[tuple[str, str, str]] = set()  # pods/nodes whose last change left no recorded result
        self._touched: set[tuple[str, str, str]] = set()  # pods/nodes the replay wrote
        # Inputs mode: every pod's and node's last recorded state, whoever wrote it (_observe).
        self._recorded: dict[tuple[str, str, str], ObjectState] = {}
        self._recorded_unknown: set[tuple[str, str, str]] = set()
        self._conditional: set[str] = set()  # resources whose updates need a resourceVersion (custom resources)
        # Set when the replay stops early (Ctrl-C, a planning error): changes handed to the workers but not sent
        # yet are never sent (counted as unsent), those being sent finish.
        self._halt = threading.Event()
        # The dispatch's deferral of Ctrl-C: a worker sends nothing once one is noted, before the main thread, which
        # looks every INTERRUPT_POLL while it waits, has acted on it (a target answering in 5 ms: 18 changes more)
        self._interrupts: DeferredInterrupts | None = None
        # Changes handed to the workers and not finished: at most `lookahead`, so a target that is behind (or
        # --speed max) does not queue the whole log in memory.
        self._backlog = Backlog(options.lookahead)
        w = options.workers
        adaptive = options.adaptive and options.speed is not None
        self.gate = Gate(AdaptiveLimit(initial=min(w, 8), minimum=min(w, 4), maximum=w) if adaptive else None)

    # -- resources and owners ----------------------------------------------------------------------------------

    def resource(self, group: str, version: str, name: str) -> Resource | None:
        """The target's resource for a recorded change; None when the target does not serve it. A custom resource
        whose CRD the target has (the log may have just created it) is waited for, up to ``CRD_SERVE_WAIT``, once:
        the answer is kept, until a CRD write makes an unserved resource worth another look (_forget_unserved)."""
        key = (group, version, name)
        with self.lock:
            if key in self._resources:
                return self._resources[key]
            generation = self._crd_generation
        spelled = f"{group}/{version}/{name}" if group else f"{version}/{name}"
        found = self.discovery.by_key(spelled)
        if found is None and "." in group:  # built-in groups are served from the start; only a CRD can add one
            with self._discovering:  # one refresh at a time
                with self.lock:  # settled by another worker while this one waited for its turn
                    if key in self._resources:
                        return self._resources[key]
                # Changes to different objects run in parallel: a recorded write of the CRD may be in flight.
                self._await_create(_crd_key(group, name), CRD_SERVE_WAIT)
                found = self.discovery.by_key(spelled)
                if found is None and self._crd_exists(group, name):
                    deadline = self.clock.now() + CRD_SERVE_WAIT
                    while True:
                        self.discovery = discover(self.client)
                        found = self.discovery.by_key(spelled)
                        if found is not None or not self.clock.sleep_until(
                                min(deadline, self.clock.now() + 0.2), self._halt) or self.clock.now() >= deadline:
                            break
                return self._settle(key, found, generation)  # before the next worker's turn
        return self._settle(key, found, generation)

    def _settle(self, key: tuple[str, str, str], found: Resource | None, generation: int) -> Resource | None:
        """Keep the answer of a lookup, unless it is None and a CRD was written since the lookup began."""
        with self.lock:
            if found is not None or generation == self._crd_generation:
                self._resources[key] = found
        return found

    def _crd_exists(self, group: str, name: str) -> bool:
        try:
            self.client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}.{group}")
        except NotFound:
            return False
        return True

    def _forget_unserved(self) -> None:
        """A CRD was written: resources looked up in vain before (or while it was written) may be served now."""
        with self.lock:
            self._resources = {k: v for k, v in self._resources.items() if v is not None}
            self._crd_generation += 1

    def _owner_uid(self, ref: Obj, namespace: str) -> str | None:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        res = self.discovery.by_kind(str(ref.get("apiVersion", "")), kind)
        if res is None:
            return None
        # Keyed as _remember keys what replay writes: a cluster-scoped owner (a mirror pod's Node) under "".
        scope = namespace if res.namespaced else ""
        cache_key = (kind, scope, name)
        source = str(ref.get("uid") or "")
        with self.lock:
            if source in self.target_uids:  # the very incarnation the reference names, as replay wrote it
                return self.target_uids[source]
            cached = self.uids.get(cache_key)
            if cached is not None and (not source or self._source_of.get(cached, source) == source):
                return cached
        if cached is not None:
            # The name's last known object stands for another incarnation (replay deleted and is creating it again,
            # or is about to): wait for a create in flight, then take what it made (else the last known one).
            self._await_create((res.group, res.name, scope, name))
            with self.lock:
                return self.target_uids.get(source) or self.uids.get(cache_key)
        try:
            uid = str(self.client.get(res.path(scope or None, name))["metadata"]["uid"])
        except NotFound:
            # Replay may be creating the owner right now: changes to different objects run in parallel, so a pod
            # can be sent before its ReplicaSet's create was answered. Wait for that create, then look again.
            if not self._await_create((res.group, res.name, scope, name)):
                return None
            with self.lock:
                return self.uids.get(cache_key)
        with self.lock:
            self.uids[cache_key] = uid
        return uid

    def _relink_owners(self, body: Obj, namespace: str) -> None:
        meta = body.get("metadata") or {}
        refs = meta.get("ownerReferences")
        if not refs:
            return
        linked, unlinked = [], []
        for ref in refs:
            uid = self._owner_uid(ref, namespace)
            if uid:
                linked.append({**ref, "uid": uid})
            else:
                unlinked.append(ref)
        if unlinked:
            with self.lock:
                before = len(self._dropped)
                self._dropped.update((namespace, str(meta.get("name", "")), str(ref.get("kind", "")),
                                      str(ref.get("name", ""))) for ref in unlinked)
                self.report.dropped_owners += len(self._dropped) - before  # each reference once, however often written
                example = f"{namespace + '/' if namespace else ''}{meta.get('name', '')}"
                if len(self._dropped_examples) < 3 and example not in self._dropped_examples:
                    self._dropped_examples.append(example)
        if linked:
            meta["ownerReferences"] = linked
        else:
            meta.pop("ownerReferences", None)

    def _relink_claim(self, volume: Obj) -> None:
        """A bound volume's ``spec.claimRef.uid`` as the target's claim's: with the source's UID the target's
        volume binder took the claim for another and released the volume (Released, its claim Lost), while
        fidelity, which follows pods and nodes, saw nothing wrong. The claim replay wrote for that UID, else the
        claim of that name; one the target lacks keeps the recorded UID."""
        spec = volume.get("spec")
        if not isinstance(spec, dict):
            return
        claim = spec.get("claimRef")
        if not isinstance(claim, dict) or not isinstance(claim.get("uid"), str):
            return
        # (a copy: the body shares its spec with the recorded state, clean_body)
        claim = {k: v for k, v in claim.items() if k != "resourceVersion"}
        volume["spec"] = {**spec, "claimRef": claim}
        if isinstance(claim.get("name"), str) and isinstance(claim.get("namespace"), str):
            self._await_create(("", "persistentvolumeclaims", claim["namespace"], claim["name"]))  # sent meanwhile
        with self.lock:
            mapped = self.target_uids.get(claim["uid"])
        if mapped is None and claim.get("name") and claim.get("namespace"):
            try:
                mapped = str(self.client.get(f"/api/v1/namespaces/{claim['namespace']}/persistentvolumeclaims/"
                                             f"{claim['name']}")["metadata"]["uid"])
            except NotFound:
                return
        if mapped:
            claim["uid"] = mapped

    def _relink_patch_owners(self, res: Resource, action: Action) -> None:
        """The owner UIDs a merge or strategic merge patch names, as the target's: an entry of the object replay
        wrote for that source UID, else (a whole reference) found by kind and name. A strategic ``$patch: delete``
        of a reference names it by UID alone (the garbage collector orphaning a dependent): with the source's UID it
        matched nothing. One naming an owner replay has not written (restored from the snapshot) is resolved from
        the recorded result: the live references whose owner (kind and name) the result no longer holds are the
        ones the patch removed. An owner found no way keeps the recorded UID. The body gets new metadata and
        references: the recorded request's are never written (review finding)."""
        body = action.body
        meta = body.get("metadata")
        recorded = meta.get("ownerReferences") if isinstance(meta, dict) else None
        if not isinstance(recorded, list):
            return
        refs = [dict(ref) if isinstance(ref, dict) else ref for ref in recorded]
        action.body = {**body, "metadata": {**meta, "ownerReferences": refs}}
        unresolved: list[Obj] = []
        for ref in refs:
            if not isinstance(ref, dict) or not isinstance(ref.get("uid"), str):
                continue
            mapped = self._patched_owner_uid(ref, action.namespace)
            if mapped:
                ref["uid"] = mapped
            elif ref.get("$patch") == "delete":
                unresolved.append(ref)
        if not unresolved or action.result_meta is None:
            return
        left = {(r.get("kind"), r.get("name")) for r in action.result_meta.get("ownerReferences") or ()
                if isinstance(r, dict)}
        try:
            live = self.client.get(res.path(action.namespace or None, action.name)).get("metadata") or {}
        except NotFound:
            return  # the patch will say so itself
        removed = [r for r in live.get("ownerReferences") or () if isinstance(r, dict)
                   and (r.get("kind"), r.get("name")) not in left]
        refs[:] = [r for r in refs if not any(r is u for u in unresolved)] + [
            {"$patch": "delete", "uid": r.get("uid")} for r in removed]

    def _patched_owner_uid(self, ref: Obj, namespace: str) -> str | None:
        """The target UID of the owner a patch's reference names: the object replay wrote for its source UID, else
        (a whole reference) the owner found by kind and name; None when found no way."""
        with self.lock:
            uid = self.target_uids.get(ref["uid"])
        if uid is None and ref.get("kind") and ref.get("name"):
            uid = self._owner_uid(ref, namespace)
        return uid

    def _relink_json_patch_owners(self, action: Action) -> None:
        """The owner UIDs a JSON patch adds, replaces or tests under ``/metadata/ownerReferences`` (the whole list,
        one reference, or a reference's ``uid``), as the target's, as :meth:`_relink_patch_owners` maps a merge
        patch's: an entry of the object replay wrote for that source UID, else (a whole reference) found by kind
        and name; else the recorded UID stays (review finding: they were all sent as recorded, and in inputs mode
        the target's garbage collector takes a dependent whose owner UID it cannot find for an orphan). The ops
        that change are copies."""
        ops = action.body
        if not any(isinstance(op, dict) and str(op.get("path", "")).startswith(_OWNER_REFS) for op in ops):
            return

        def mapped(ref: Any) -> Any:
            if isinstance(ref, str):  # a reference's uid alone
                with self.lock:
                    return self.target_uids.get(ref, ref)
            if not isinstance(ref, dict) or not isinstance(ref.get("uid"), str):
                return ref
            uid = self._patched_owner_uid(ref, action.namespace)
            return {**ref, "uid": uid} if uid else ref

        out: list[Any] = []
        for op in ops:
            path = op.get("path") if isinstance(op, dict) else None
            if (isinstance(path, str) and path.startswith(_OWNER_REFS) and "value" in op
                    and op.get("op") in ("add", "replace", "test")):
                tail = path[len(_OWNER_REFS):]
                value = op["value"]
                if not tail and isinstance(value, list):
                    op = {**op, "value": [mapped(ref) for ref in value]}
                elif tail.count("/") == 1 or (tail.count("/") == 2 and tail.endswith("/uid")):
                    op = {**op, "value": mapped(value)}
            out.append(op)
        action.body = out

    def _remember(self, kind: str, answer: Obj, recorded: Obj | None) -> None:
        """The target UID of an object replay just wrote, by name (for owners) and by the source UID its recorded
        state had (for UID preconditions of later requests).

        A target object keeps standing for the first source incarnation it was learned for: when a recorded create
        found an older incarnation still in the target (Terminating, or its delete was not replayed) and replaced
        it, the new source UID stays unknown, so requests requiring it go without the precondition instead of
        passing against the old object as if it were the new one."""
        meta = answer.get("metadata") or {}
        if not meta.get("uid"):
            return
        target = str(meta["uid"])
        source = str(((recorded or {}).get("metadata") or {}).get("uid") or "")
        with self.lock:
            self.uids[(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))] = target
            if source and self._source_of.setdefault(target, source) == source:
                self.target_uids[source] = target

    # -- executing one action ----------------------------------------------------------------------------------

    def _stand_in(self, res: Resource, action: Action) -> bool:
        """Inputs mode: a user's delete or eviction, or patch (`kubectl label`, taking a replica out of a Service),
        of a pod the source's controller had made, which the target's controller named otherwise (a ReplicaSet's
        random suffix): sent to a pod of the same controller instead, on the recorded node where it has one there
        (a drain; a DaemonSet's only there), never one already being deleted, already standing in, or named by the
        log itself; the recorded pod's later writes go to the same stand-in. Not for a StatefulSet's pods (same
        names here), nor for a pod a delete already found under its own name (deleted again, forced). True when one
        took the write; reported in ``stand_ins``."""
        label = f"{action.namespace}/{action.name}"
        body = action.body if isinstance(action.body, dict) else {}
        options = {k: v for k, v in body.items() if k != "preconditions"}  # this pod's own UID goes in instead

        def send(name: str, uid: str) -> bool:
            if action.op == "delete":
                return self._delete_pod(res, action, options, name, uid)
            if action.op == "replace":  # a user's update (inputs mode), as applied to the stand-in
                try:
                    self._update_pod_as_user(res.path(action.namespace, name),
                                             {**body, "metadata": {**(body.get("metadata") or {}), "uid": uid}})
                except (NotFound, Conflict):
                    return False
                return True
            return self._patch_pod(res, action, name, uid)

        with self.lock:
            earlier = self._stand_in_uids.get(label)
        if earlier is not None:  # written again (a graceful delete, then a forced one): the same stand-in, if left
            return send(*earlier)
        recorded = self._controller_pod(action)
        if recorded is None:
            return False
        with self.lock:
            addressed = {name for (kind, namespace, name) in self._recorded if namespace == action.namespace}
        per_node = recorded.owner.startswith("DaemonSet/") and bool(recorded.node)
        for _ in range(3):  # a candidate can go between the listing and the write
            candidates = []
            for pod, _rv in self.client.list_items(res.path(action.namespace)):
                meta = pod.get("metadata") or {}
                if controller_of(meta) != recorded.owner or meta.get("deletionTimestamp"):
                    continue
                if meta.get("name") in addressed:
                    continue  # the log names it itself (restored under its recorded name): never a stand-in
                node = (pod.get("spec") or {}).get("nodeName") or ""
                if per_node and node != recorded.node:
                    continue  # a DaemonSet's pod on another node stands for that node, not the recorded one
                candidates.append((node != recorded.node, str(meta.get("creationTimestamp", "")),
                                   str(meta.get("name", "")), str(meta.get("uid", ""))))
            with self.lock:  # chosen and marked at once: two writes never take the same stand-in
                taken = set(self.report.stand_ins.values())
                choice = min((c for c in candidates if c[2] not in taken), default=None)
                if choice is None:
                    return False
                self.report.stand_ins[label] = choice[2]
                self._stand_in_uids[label] = (choice[2], choice[3])
            if send(choice[2], choice[3]):
                return True
            with self.lock:  # gone meanwhile: choose again
                self.report.stand_ins.pop(label, None)
                self._stand_in_uids.pop(label, None)
        return False

    def _controller_pod(self, action: Action) -> ObjectState | None:
        """The recorded state of the pod ``action`` writes when a stand-in may take the write: a pod of a
        controller that names its pods by a random suffix (not a bare pod, nor a StatefulSet's: its names are the
        same here; not one never shown whole), which no delete found here under its own name already (then deleted
        again, forced: nothing to stand in for)."""
        key, label = ("Pod", action.namespace, action.name), f"{action.namespace}/{action.name}"
        with self.lock:
            known = self._recorded.get(key)
            if label in self._deleted_by_name:
                return None
        recorded = observed_state("Pod", action.state) if action.state is not None else known
        return recorded if recorded is not None and recorded.owner.partition("/")[0] in NAMED_BY_SUFFIX else None

    def _wants_stand_in(self, action: Action) -> bool:
        """Whether a write of this recorded pod that found no pod of its name, nor a stand-in, should have gone
        to one (its controller may not have made it yet), and has none yet."""
        with self.lock:
            if f"{action.namespace}/{action.name}" in self._stand_in_uids:
                return False
        return self._controller_pod(action) is not None

    @contextlib.contextmanager
    def _slot_given_back(self) -> Iterator[None]:
        """Give this thread's place among the requests in flight back while it waits for something other than a
        request of its own, and take one again after."""
        slot: _Slot | None = getattr(self._slot, "current", None)
        if slot is not None:
            self.gate.release(slot.ticket, None, self.clock.now())
        try:
            yield
        finally:
            if slot is not None:
                slot.ticket = self.gate.acquire(slot.priority)

    def _stand_in_later(self, res: Resource, action: Action) -> str | None:
        """A delete, eviction, patch or update of a controller's pod when the target has no pod of that controller
        to take it yet: its controller may be about to make one (a drain right after a rollout, a label right after
        a scale). Looked for again for up to ``STAND_IN_WAIT`` seconds; else the change is skipped as
        ``no-stand-in`` and named, not taken for a pod already deleted (black-box finding: a drain's evictions were
        dropped as "already-deleted", fidelity "match", exit 0)."""
        # The place among the requests in flight is given back meanwhile: held, a drain's evictions stalled every
        # other change for 3 s each while the limit was low.
        with self._slot_given_back():
            deadline = self.clock.now() + STAND_IN_WAIT
            while self.clock.now() < deadline:
                if not self.clock.sleep_until(min(deadline, self.clock.now() + 0.25), self._halt):
                    raise _Stopped("the replay stopped while it waited for a pod to stand in")
                if self._stand_in(res, action):
                    return None
        label = f"{action.namespace}/{action.name}"
        with self.lock:
            if label not in self.report.without_stand_in:  # (a graceful delete, then a forced one: said once)
                self.report.without_stand_in.append(label)
        return "no-stand-in"

    def _patch_pod(self, res: Resource, action: Action, name: str, uid: str) -> bool:
        """Send ``action``'s patch to pod ``name`` (that copy: ``uid``, required unless a JSON patch, whose own
        tests stand); False when it is gone."""
        body = action.body
        if isinstance(body, dict):
            body = {**body, "metadata": {**(body.get("metadata") or {}), "uid": uid}}
        try:
            self.client.request("PATCH", res.path(action.namespace, name, action.subresource or None), body=body,
                                content_type=action.content_type, params=action.params or None, answer="none")
        except (NotFound, Conflict):
            return False
        return True

    def _delete_pod(self, res: Resource, action: Action, options: Obj, name: str, uid: str) -> bool:
        """Delete pod ``name`` (that copy: ``uid``) with the recorded delete's options; False when it is gone."""
        try:
            self.client.request("DELETE", res.path(action.namespace, name),
                                body={**options, "preconditions": {"uid": uid}}, params=action.params or None,
                                answer="none")
        except (NotFound, Conflict):
            return False
        return True

    def _create(self, res: Resource, ns: str | None, body: Any) -> Obj:
        """POST ``body``; when the target lacks its namespace (the log touches a namespace the restored snapshot
        did not hold, or there was no restore), create the namespace, report it, and post again. A pod created from
        a body that holds ephemeral containers (one the log starts in the middle of the life of, after `kubectl
        debug`) is created without them, then given them through its ephemeralcontainers subresource: the API
        server refuses them on create."""
        spec = body.get("spec") if isinstance(body, dict) and res.key == "v1/pods" else None
        if isinstance(spec, dict) and spec.get("ephemeralContainers"):
            created = self._create(res, ns, {**body, "spec": {k: v for k, v in spec.items()
                                                               if k != "ephemeralContainers"}})
            name = str((created.get("metadata") or {}).get("name", ""))
            with _created_then("its ephemeral containers"):
                return self.client.patch(res.path(ns, name, "ephemeralcontainers"),
                                         {"spec": {"ephemeralContainers": spec["ephemeralContainers"]}},
                                         STRATEGIC_MERGE_PATCH)
        try:
            return self.client.create(res.path(ns), body, answer="identity")
        except NotFound as exc:
            if not ns or exc.details.get("kind") != "namespaces":
                raise
        try:
            self.client.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns, "labels": {CREATED_BY_LABEL: "replay"}}})
            with self.lock:
                self.report.namespaces_created.append(ns)
        except Conflict:
            pass  # another change created it meanwhile
        # Where the ServiceAccount admission plugin runs (profile standard), a pod is admitted only once its
        # namespace's default ServiceAccount exists: the controller makes it a moment later; do not wait for it.
        with contextlib.suppress(APIError):  # already there, or not ours to make: the create below tells
            self.client.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}})
        return self.client.create(res.path(ns), body, answer="identity")

    def execute(self, action: Action) -> str | None:
        """Send one action; returns a skip reason, or None when applied. Raises on failure."""
        res = self.resource(action.group, action.version, action.resource)
        if res is None:
            raise KwoksnapError(f"resource {action.group}/{action.version}/{action.resource} not served by target")
        ns = action.namespace or None
        c = self.client
        if isinstance(action.body, dict) and action.op in ("create", "replace", "status"):
            # A status write stores the object's metadata too: the recorded owner UIDs would be stored as they are.
            self._relink_owners(action.body, action.namespace)
            if res.key == "v1/persistentvolumes":
                self._relink_claim(action.body)
        elif isinstance(action.body, dict) and action.op == "patch":
            self._relink_patch_owners(res, action)
        elif isinstance(action.body, list) and action.op == "patch":
            self._relink_json_patch_owners(action)
        uid = ""
        if action.source_uid:
            with self.lock:
                uid = self.target_uids.get(action.source_uid, "")
            if uid:  # the recorded request required this incarnation of the object: so does its replay
                action.body = with_uid_precondition(action, uid)
        if action.op == "create":
            try:
                created = self._create(res, ns, action.body)
            except Conflict as exc:
                if not exc.already_exists:
                    raise
                after = self._after_terminating_copy(res, ns, action.name, action.body)
                if after is not None:
                    self._remember(res.kind, after, action.state)
                    return None
                recorded = action.body
                finished = False
                if res.kind == "Job" and isinstance(action.body, dict):
                    recorded = copy.deepcopy(action.body)  # a new Job keeps its own selector, not the live one's
                    # A finished older copy (a log replayed twice) cannot run again: its status refuses the
                    # recorded writes that follow ("cannot disable the terminal Complete=True condition").
                    finished = finished_job({"kind": "Job", **self.client.get(res.path(ns, action.name))})
                    if not finished:
                        self._keep_job_selector(res, ns, action)
                if finished:
                    created = self._recreate(res, ns, action.name, recorded, Invalid(
                        422, "Invalid", f"jobs {action.name!r}: an older copy in the way has finished, and a "
                                        "finished Job cannot run again"))
                else:
                    try:
                        created = self._replace(res, res.path(ns, action.name), action.body)
                    except Invalid as exc:  # fields of the older copy that cannot change (a bound pod's spec)
                        created = self._recreate(res, ns, action.name, recorded, exc)
            self._remember(res.kind, created, action.state)
            return None
        if (action.op == "replace" and self.options.mode == "inputs" and res.key == "v1/pods"
                and isinstance(action.body, dict)):
            try:
                updated = self._update_pod_as_user(res.path(ns, action.name), action.body)
            except NotFound:
                if self._stand_in(res, action):  # a controller's pod the target named otherwise
                    return None
                if self._wants_stand_in(action):  # one its controller has not made yet
                    return self._stand_in_later(res, action)
                # else as any replace below: created from the body if the log starts in the middle of its life
            else:
                self._remember(res.kind, updated, action.state)
                return None
        if action.op in ("replace", "status"):
            path = res.path(ns, action.name, "status" if action.op == "status" else action.subresource or None)
            if res.kind == "Job" and action.op == "replace" and isinstance(action.body, dict):
                self._keep_job_selector(res, ns, action)  # (a status write leaves the spec as it is)
            if action.creates and action.op == "replace" and not action.subresource and isinstance(action.body, dict):
                # A write that created its object in the source (a server-side apply): an older copy being deleted
                # is waited for as a create waits for it, never written over (review finding: a namespace made
                # again by `kubectl apply --server-side` was written over its Terminating older copy).
                after = self._after_terminating_copy(res, ns, action.name, action.body, create_if_gone=False)
                if after is not None:
                    self._remember(res.kind, after, action.state)
                    return None
            if action.subresource == "finalize" and not self._namespace_empty(action.name):
                # The API server removes a finalized namespace whatever is still in it, and what is left stays in
                # etcd without a namespace: only an empty one is finalized, else the target's controller finishes.
                return "namespace-not-empty"
            try:
                self._remember(res.kind, self._replace(res, path, action.body), action.state)
            except NotFound:
                if action.subresource == "finalize":
                    return "already-deleted"  # the target's namespace controller finished it first
                if action.state is None or uid:  # an incarnation replay wrote is gone: divergence, not re-created
                    raise
                deletion = _deletion(action.state)  # (as recorded: the body sent leaves deletion fields out)
                if deletion == "gone":  # (black-box finding: a log starting with a Terminating pod's finalizers
                    return "already-deleted"  # removed created it Running)
                # The log starts in the middle of this object's life: create it from the first full body seen.
                created = self._create(res, ns, action.body)
                self._remember(res.kind, created, action.state)
                with _created_then("its recorded status and deletion"):
                    if action.op == "status" or res.kind == "Pod":
                        self._replace(res, res.path(ns, action.name, "status"), action.body)
                    if deletion == "held":
                        self._terminate(res, ns, action.name, action.state)
            return None
        if action.op == "patch":
            if action.creates and not action.subresource:
                # A server-side apply that created its object (inputs mode sends it as the patch it was): an older
                # copy being deleted is waited for, as a create waits (re-test finding: applied onto the old
                # namespace, whose next pods were all refused).
                self._terminating_gone(res, ns, action.name)
            try:
                c.request("PATCH", res.path(ns, action.name, action.subresource or None), body=action.body,
                          content_type=action.content_type, params=action.params or None, answer="none")
            except NotFound:
                if self.options.mode == "inputs" and res.key == "v1/pods":
                    if self._stand_in(res, action):
                        return None
                    if self._wants_stand_in(action):  # (black-box finding: a label right after a scale, 404)
                        return self._stand_in_later(res, action)
                if self.options.mode != "inputs" or action.state is None or action.subresource \
                        or res.key == "v1/pods" or uid:  # (an incarnation replay wrote is gone: not re-created)
                    raise
                # Inputs mode sends a user's patch as the patch it was; the log starts in the middle of this
                # object's life (not in the target): created from the result it recorded, as a replace would be.
                deletion = _deletion(action.state)
                if deletion == "gone":
                    return "already-deleted"
                body = clean_body(action.state, mode="inputs", resource=action.resource, group=action.group,
                                  to_replay=None if self.options.keep_timestamps else
                                  (lambda t: self._timeline.wall_ns(t, self._wall_start_ns)))
                self._relink_owners(body, action.namespace)
                self._remember(res.kind, self._create(res, ns, body), action.state)
                if deletion == "held":
                    with _created_then("its recorded deletion"):
                        self._terminate(res, ns, action.name, action.state)
            return None
        if action.op == "delete":
            inputs_pod = self.options.mode == "inputs" and res.key == "v1/pods"
            try:
                c.request("DELETE", res.path(ns, action.name), body=action.body, params=action.params or None,
                          answer="none")
            except NotFound:
                if inputs_pod and self._stand_in(res, action):
                    return None
                if inputs_pod and self._wants_stand_in(action):
                    return self._stand_in_later(res, action)
                return "already-deleted"
            if inputs_pod:
                with self.lock:
                    self._deleted_by_name.add(f"{action.namespace}/{action.name}")
            return None
        if action.op == "deletecollection":
            c.request("DELETE", res.path(ns), body=action.body, params=action.params or None, answer="none")
            return None
        if action.op == "bind":
            return self._bind(res, ns, action)
        if action.op == "renew":
            return self._renew(res, ns, action)
        raise KwoksnapError(f"unknown action {action.op}")

    def _unmark_redacted(self, action: Action) -> None:
        """A Secret written with its values (``--include-secrets``) over one restored or replayed with placeholders
        keeps the ``kwoksnap.io/redacted`` mark the earlier write put there (a patch leaves annotations it does not
        name): the mark goes once no placeholder is left (black-box finding). Failing to look or remove it is
        logged, not the change's failure: its write was applied."""
        body = action.body
        if action.op in ("delete", "deletecollection") or not isinstance(body, (dict, list)) or (
                isinstance(body, dict) and REDACTED_ANNOTATION in ((body.get("metadata") or {}).get("annotations")
                                                                   or {})):
            return  # (a redacted write: the mark stays, rightly; a JSON patch is judged by what it left: re-test
            # finding, its mark stayed over values all real)
        res = self.resource(action.group, action.version, action.resource)
        if res is None:
            return
        path = res.path(action.namespace or None, action.name)
        try:
            live = self.client.get(path)
            meta = live.get("metadata") or {}
            if REDACTED_ANNOTATION not in (meta.get("annotations") or {}) or holds_placeholders(live):
                return
            self.client.request("PATCH", path, content_type=MERGE_PATCH, body={"metadata": {
                "resourceVersion": meta.get("resourceVersion"), "annotations": {REDACTED_ANNOTATION: None}}})
        except APIError as exc:
            log.warning("secret %s/%s: its %s mark could not be removed: %s", action.namespace, action.name,
                        REDACTED_ANNOTATION, exc)

    def _after_terminating_copy(self, res: Resource, ns: str | None, name: str, body: Any,
                                create_if_gone: bool = True) -> Obj | None:
        """A recorded create met a copy of its object that is being deleted (Terminating): the recorded create
        made a new object once the older one was gone, and so does its replay, once the target has removed it
        (black-box finding: a namespace deleted and created again was written over its Terminating older copy,
        counted applied, and removed with it); see :meth:`_terminating_gone`. ``None`` when the copy in the way is
        not Terminating, or no longer is (made again by someone else meanwhile): the caller writes over it, as over
        any live copy; also when there is none at all, unless ``create_if_gone``."""
        found = self._terminating_gone(res, ns, name)
        if found == "live" or (found == "absent" and not create_if_gone):
            return None
        return self._create(res, ns, body)

    def _terminating_gone(self, res: Resource, ns: str | None, name: str) -> str:
        """Wait for a copy of the object that is being deleted (Terminating) to go, up to :data:`TERMINATING_WAIT`,
        its place among the requests in flight given back meanwhile: ``went`` once it has; ``absent`` when there was
        none; ``live`` when the copy there is not Terminating, or no longer is (made again by someone else
        meanwhile; review finding: waited 30 s, then failed as if the old copy were still being deleted)."""
        path = res.path(ns, name)

        def found() -> str:
            try:
                return "terminating" if (self.client.get(path).get("metadata") or {}).get("deletionTimestamp") \
                    else "live"
            except NotFound:
                return "absent"

        first = found()
        if first != "terminating":
            return first
        deadline = self.clock.now() + TERMINATING_WAIT
        with self._slot_given_back():
            while True:
                if not self.clock.sleep_until(self.clock.now() + 0.2, self._halt):
                    raise _Stopped("the replay stopped while an older copy of it, being deleted, was in the way")
                now = found()
                if now != "terminating":
                    return "went" if now == "absent" else now
                if self.clock.now() >= deadline:
                    raise KwoksnapError(f"an older copy of it is being deleted (Terminating) and was still there "
                                        f"{TERMINATING_WAIT:g} s later: not written over it") from None

    def _terminate(self, res: Resource, ns: str | None, name: str, recorded: Obj) -> None:
        """Make an object created from a recorded state that was being deleted (held by finalizers or a grace
        period) Terminating again, as restore does: deleted with the grace period it had (a pod's)."""
        grace = (recorded.get("metadata") or {}).get("deletionGracePeriodSeconds")
        options = {"gracePeriodSeconds": grace} if isinstance(grace, int) and res.kind == "Pod" else None
        self.client.request("DELETE", res.path(ns, name), body=options, answer="none")

    def _recreate(self, res: Resource, ns: str | None, name: str, body: Any, refused: Invalid) -> Obj:
        """A recorded create met an older copy of its object that a replace cannot turn into it: the recorded
        create made a new object, and so does its replay. Only when the target accepts the recorded object as a new
        one (a dry-run create is refused for the name alone, 409, after validation): then the older copy (that UID
        only) is deleted at once and the object created; a copy that finalizers hold fails the change. Otherwise the
        replace's refusal stands, and the older copy is left as it is."""
        try:
            self.client.request("POST", res.path(ns), body=body, params={"dryRun": "All"}, answer="none")
        except Conflict as exc:
            if not exc.already_exists:
                raise
        except Invalid:
            raise refused from None  # the recorded object itself is not valid here: nothing to gain by deleting
        else:
            return self._create(res, ns, body)  # the older copy went meanwhile
        path = res.path(ns, name)
        try:
            live_uid = str((self.client.get(path).get("metadata") or {}).get("uid", ""))
            # Background: Orphan (the default of Jobs and ReplicationControllers) needs a garbage collector to
            # finish, which the replay profile does not run; the older copy's dependents name its UID either way.
            self.client.request("DELETE", path, body={"preconditions": {"uid": live_uid}, "gracePeriodSeconds": 0,
                                                      "propagationPolicy": "Background"}, answer="none")
        except NotFound:
            pass
        deadline = self.clock.now() + RECREATE_WAIT
        while True:
            try:
                return self._create(res, ns, body)
            except Conflict as exc:
                if not exc.already_exists:
                    raise
                if self.clock.now() >= deadline:
                    raise KwoksnapError(f"an older copy is in the way and was not removed within {RECREATE_WAIT:g} "
                                        "s of its delete (finalizers?)") from None
                if not self.clock.sleep_until(self.clock.now() + 0.1, self._halt):
                    raise KwoksnapError("the replay stopped after the older copy in the way was deleted, before "
                                        "the recorded object was created again") from None

    def _replace(self, res: Resource, path: str, body: Any) -> Obj:
        """PUT ``body``. Replayed bodies carry no resourceVersion (the source's means nothing here), which most
        built-in resources take as an unconditional update; custom resources (and any other whose strategy refuses
        that) answer 422 "must be specified for an update". Their PUTs then carry the live resourceVersion, read
        again after a conflict with a concurrent writer."""
        if res.key not in self._conditional:
            try:
                return self.client.replace(path, body, answer="identity")
            except Invalid as exc:
                if not isinstance(body, dict) or "must be specified for an update" not in exc.api_message:
                    raise
                with self.lock:
                    self._conditional.add(res.key)
        return self._write_live(path, lambda live: {**body, "metadata": {
            **(body.get("metadata") or {}), "resourceVersion": (live.get("metadata") or {}).get("resourceVersion")}})

    def _write_live(self, path: str, change: Callable[[Obj], Obj]) -> Obj:
        """PUT what ``change`` makes of the live object (carrying its resourceVersion), read again after a conflict
        with a concurrent writer, three times at most."""
        for attempt in range(3):
            try:
                return self.client.replace(path, change(self.client.get(path)), answer="identity")
            except Conflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _namespace_empty(self, namespace: str) -> bool:
        """Whether no object of any listable namespaced resource is left in ``namespace`` (one request each)."""
        for res in self.discovery.listable():
            if res.namespaced and "list" in res.verbs:
                try:
                    page = self.client.request("GET", res.path(namespace), params={"limit": 1})
                except APIError:
                    return False  # cannot tell: not finalized
                if page.get("items"):
                    return False
        return True

    def _update_pod_as_user(self, path: str, recorded: Obj) -> Obj:
        """Inputs mode: a user's PUT of a pod (`kubectl replace`, a client's update) applied to the target's pod.
        The recorded body is the source's pod whole, its node and the names the source's admission gave (a
        service-account volume) included, which the target decided otherwise: sent as it was, it was refused (422
        "pod updates may not change fields"). What a pod update may change is taken from it (labels, finalizers,
        container images, activeDeadlineSeconds, added tolerations; its annotations over the live ones, which keeps
        those the target added), the rest stays the target's; with the live resourceVersion, read again after a
        conflict."""
        meta, spec = recorded.get("metadata") or {}, recorded.get("spec") or {}
        images = {(kind, c.get("name")): c.get("image") for kind in ("containers", "initContainers")
                  for c in spec.get(kind) or () if isinstance(c, dict)}

        def apply(live: Obj) -> Obj:
            live_meta, live_spec = live.setdefault("metadata", {}), live.setdefault("spec", {})
            for field in ("labels", "finalizers"):
                if meta.get(field) is not None:
                    live_meta[field] = meta[field]
                else:
                    live_meta.pop(field, None)
            if meta.get("annotations"):
                live_meta["annotations"] = {**(live_meta.get("annotations") or {}), **meta["annotations"]}
            if meta.get("uid"):  # the incarnation the recorded update required (with_uid_precondition)
                live_meta["uid"] = meta["uid"]
            for kind in ("containers", "initContainers"):
                for container in live_spec.get(kind) or ():
                    image = images.get((kind, container.get("name")))
                    if image:
                        container["image"] = image
            if "activeDeadlineSeconds" in spec:
                live_spec["activeDeadlineSeconds"] = spec["activeDeadlineSeconds"]
            tolerations = live_spec.setdefault("tolerations", [])
            tolerations += [t for t in spec.get("tolerations") or () if t not in tolerations]
            if not tolerations:
                live_spec.pop("tolerations")
            return live

        return self._write_live(path, apply)

    def _keep_job_selector(self, res: Resource, ns: str | None, action: Action) -> None:
        """A Job's selector is immutable: a replace keeps the one the live Job has. (Restored and replayed Jobs
        have the recorded one already; a Job the target made itself has its own.)"""
        spec = action.body.setdefault("spec", {})
        try:
            live = self.client.get(res.path(ns, action.name))
        except NotFound:
            return
        live_spec = live.get("spec") or {}
        if live_spec.get("selector") == spec.get("selector"):
            return
        spec["selector"] = live_spec.get("selector")
        spec["manualSelector"] = live_spec.get("manualSelector")
        live_labels = ((live_spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
        for key in JOB_UID_LABELS:
            labels.pop(key, None)
            if key in live_labels:
                labels[key] = live_labels[key]

    def _bind(self, res: Resource, ns: str | None, action: Action) -> str | None:
        path = res.path(ns, action.name, "binding")
        try:
            self.client.create(path, action.body, answer="none")
        except APIError as exc:
            if "gate" not in exc.api_message.lower():
                if isinstance(exc, Conflict) and self._bound_as_recorded(res, ns, action):
                    return "already-bound"
                raise  # bound to another node, or another copy of the pod (its UID precondition failed)
            # A pod restored unscheduled carries kwoksnap's scheduling gate; the recording schedules it now.
            pod = self.client.get(res.path(ns, action.name))
            gates = [g for g in pod["spec"].get("schedulingGates") or [] if g.get("name") != SCHEDULING_GATE]
            self.client.patch(res.path(ns, action.name), {"spec": {"schedulingGates": gates or None}}, answer="none")
            self.client.create(path, action.body, answer="none")
        return None

    def _bound_as_recorded(self, res: Resource, ns: str | None, action: Action) -> bool:
        """After a 409 on a binding: whether the pod is bound to the recorded node already (a rerun, a restored
        pod), the copy the binding names (its UID precondition, when it has one)."""
        try:
            pod = self.client.get(res.path(ns, action.name))
        except NotFound:
            return False
        body = action.body if isinstance(action.body, dict) else {}
        uid, node = (body.get("metadata") or {}).get("uid"), (body.get("target") or {}).get("name")
        return bool(node) and (pod.get("spec") or {}).get("nodeName") == node and (
            not uid or (pod.get("metadata") or {}).get("uid") == uid)

    def _renew(self, res: Resource, ns: str | None, action: Action) -> str | None:
        if self.options.speed is None and self.options.lease_interval > 0:
            # At --speed max every renewal is due at once: the planner cannot space them by their offsets, so they
            # are spaced here, by the wall time they are sent at (a log's renewals were most of its writes).
            lease, sent = (action.namespace, action.name), self.clock.now()
            with self.lock:
                if sent - self._renewed.get(lease, -math.inf) < self.options.lease_interval:
                    return "lease-renewal-coalesced"
                self._renewed[lease] = sent
        now = format_micro(int(self.clock.wall() * NS))
        try:
            self.client.patch(res.path(ns, action.name), {"spec": {"renewTime": now}}, MERGE_PATCH, answer="none")
        except NotFound:
            if action.state is not None:  # logged whole: as recorded (its Node owner, its duration), renewed now
                created = clean_body(action.state, mode=self.options.mode, resource="leases",
                                     group="coordination.k8s.io", to_replay=None)
                self._relink_owners(created, action.namespace)
                created["spec"] = {**(created.get("spec") or {}), "renewTime": now}  # (its own: clean_body)
            else:
                created = {"metadata": {"name": action.name, "namespace": action.namespace},
                           "spec": {"holderIdentity": action.name, "leaseDurationSeconds": 40, "renewTime": now}}
            self.client.create(res.path(ns), created, answer="none")
        return None

    # -- threads -----------------------------------------------------------------------------------------------

    def _plan(self, events: Iterable[AuditEvent], out: Queue, primed: threading.Event) -> None:
        try:
            items = spread(self._planned(events), lambda item: item.offset, rate=self.report.capacity,
                           max_lead=self.options.max_lead if self.options.speed is not None else 0.0)
            for item, send_at in items:
                item.send_at = send_at
                while not self.stop.is_set():
                    try:
                        out.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        primed.set()  # the lookahead window is full: dispatch can start
                        continue
                if self.stop.is_set():
                    break
        except BaseException as exc:  # e.g. InputError under --strict: stop, and re-raise from run()
            self._planner_error = exc
            self.stop.set()
        finally:
            primed.set()
            out.put(None)

    def _planned(self, events: Iterable[AuditEvent]) -> Iterator[_Item]:
        """The actions to send, in order, each with its due offset; skips are counted here."""
        timeline = self._timeline
        r = self.report
        last_renewal: dict[tuple[str, str], float] = {}
        previous, long_wait_told = (0, 0.0), False  # (recorded ns, offset) of the last change
        handoff_told = self.options.mode != "inputs"
        latest: collections.OrderedDict[tuple[str, str, str, str], _Planned] = collections.OrderedDict()
        if self.options.mode == "verbatim":
            events = split_collection_deletes(events, on_late=self._late_delete,  # one named delete per object
                                              on_split=self._count_split)
        for ev in due_order(events, on_stale=self._stale):
            if self.stop.is_set():
                return
            try:
                with self.lock:
                    r.events += 1
                    stale = self._superseded(ev, latest)
                if stale:
                    self._skip("stale")  # neither sent nor followed as the object's recorded state (inputs mode)
                    if self._before_snapshot(ev) and (self.options.mode != "inputs" or (
                            self.options.classifier(ev["user"], ev["groups"], ev["userAgent"]) == "user")):
                        with self.lock:  # (black-box finding: a log given twice counted its second copies nowhere)
                            r.before_snapshot += 1
                    continue
                # A request is due when the recorded client sent it (requestReceivedTimestamp), so the target's own
                # processing time stands in for the source's; due_order has put the events in that order.
                sent = ev["received"] or ev["ts"]
                if self.options.mode == "inputs":
                    self._observe(ev)
                    actor = self.options.classifier(ev["user"], ev["groups"], ev["userAgent"])
                    if actor != "user":
                        # Before the clock: the stretches --max-gap compresses, and the replay's start, are those
                        # between the changes replayed (black-box finding: kwok's lease renewals every 10 s kept
                        # a 120 s pause between two users' changes from being compressed).
                        self._skip(f"actor:{actor}")
                        continue
                offset = timeline.offset(sent)
                if offset - previous[1] > LONG_WAIT and not long_wait_told:
                    long_wait_told = True
                    self._warn_long_wait(ev, previous[0], sent, offset - previous[1])
                previous = (sent, offset)
                with self.lock:
                    if self._before_snapshot(ev):
                        r.before_snapshot += 1  # (inputs mode: of the users' changes)
                    self._planned_seconds = timeline.recorded_seconds
                    if not r.recorded_start_ns:
                        r.recorded_start_ns = sent
                planned = plan_action(ev, mode=self.options.mode, to_replay=None)
                renewal = planned if isinstance(planned, Action) and planned.op == "renew" else None
                # A renewal needs no body: replayed as recorded at any level. Others are counted when sent (or here,
                # when skipped): not those an interrupted replay never sent (black-box finding).
                level = ev["level"] or "unknown" if degraded(ev) and renewal is None else ""
                if renewal is not None and self.options.speed is not None:
                    lease = (renewal.namespace, renewal.name)
                    if offset - last_renewal.get(lease, -1e9) < self.options.lease_interval:
                        planned = Skip("lease-renewal-coalesced")
                    else:
                        last_renewal[lease] = offset
                if isinstance(planned, Skip):
                    self._skip(planned.reason, level, ev["resource"] + (f"/{ev['subresource']}" if ev["subresource"]
                                                                        else "")
                               if planned.reason == "degraded-metadata" else "")
                    continue
                if not handoff_told and (planned.group, planned.resource, planned.namespace) == (
                        LEASE_GROUP, "leases", NODE_LEASE_NAMESPACE) and renewal is None:
                    handoff_told = True
                    self._warn_handoff(ev)
                item = _Item(offset, planned, ev["source"], recorded=timeline.recorded_seconds, degraded=level,
                             skips=self._skips_planned)
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
                self._unplannable(ev, exc)
                continue
            yield item

    def _before_snapshot(self, ev: AuditEvent) -> bool:
        """Whether ``ev`` completed before the snapshot restored into the target was taken (its ts, as --from
        compares): the snapshot holds its change (``beforeSnapshot``)."""
        taken = self.options.snapshot_taken_ns
        return taken is not None and ev["ts"] < taken

    def _skip(self, reason: str, level: str = "", lost: str = "") -> None:
        """(The planner's) an event skipped: counted when the dispatch reaches it (:meth:`_count_skips`), so that a
        stop leaves those it never reached unsent, not skipped (black-box finding: the planner reads ahead)."""
        self._skips.append((reason, level, lost))
        self._skips_planned += 1

    def _count_skips(self, upto: int | None) -> None:
        """(The dispatcher's) count the skips planned before the item dispatched now (all of them: ``None``)."""
        r = self.report
        with self.lock:
            while self._skips and (upto is None or self._skips_counted < upto):
                reason, level, lost = self._skips.popleft()
                self._skips_counted += 1
                r.skipped[reason] += 1
                if level:
                    r.degraded[level] += 1
                if lost:
                    self._lost[lost] += 1

    def _unplannable(self, ev: AuditEvent, exc: Exception) -> None:
        """An event the reader passed whose bodies are not shaped as the API server writes them (a binding's target
        a string, an object's metadata a list: a hand-edited or generated log): that event fails, listed by its
        file:line, and the replay goes on (it ended in an internal error, and the report of what was sent was lost)."""
        with self.lock:
            self.report.failed += 1
            if len(self.report.failures) < 1000:
                self.report.failures.append(
                    f"{ev['source']}: {ev['verb']} {ev['resource']}"
                    f"{'/' + ev['subresource'] if ev['subresource'] else ''} {ev['namespace']}/{ev['name']}: not "
                    f"shaped as the API server writes it ({type(exc).__name__}: {exc}); not sent")

    def _warn_long_wait(self, ev: AuditEvent, since_ns: int, until_ns: int, wait: float) -> None:
        """Once per replay: the log is idle so long that the replay would wait for ages (logs of different days
        given together, a quiet night), and the user should hear it when planning meets it, not at the end."""
        message = (f"{ev['source']}: the log is idle from {format_timestamp(since_ns)} to "
                   f"{format_timestamp(until_ns)}; at this speed the replay waits {_duration(wait)} before this "
                   "change (--max-gap, e.g. --max-gap 30s, compresses idle stretches)")
        self._warn_now(message)

    def _warn_handoff(self, ev: AuditEvent) -> None:
        """Once per inputs-mode replay: a user's write of a node's Lease (handing it to another holder stops the
        node) is replayed, and what follows is the target's node lifecycle controller's, on its own clock (black-box
        finding: on a cluster made with kwokctl's default heartbeat factor the nodes the recording killed stayed
        Ready for the whole replay, and nothing said why)."""
        message = (f"{ev['source']}: a user's write of node {ev['name']}'s Lease is replayed (handing it to another "
                   "holder stops the node); the target's node lifecycle controller marks such a node NotReady once "
                   "its node-monitor-grace-period has passed in real time, which --speed does not shorten (a "
                   "kwoksnap cluster's is 40 s x its --heartbeat-factor, 200 s by default: `kwoksnap cluster create "
                   "--heartbeat-factor` with the source's keeps the recorded pace at 1x)")
        self._warn_now(message)

    def _warn_now(self, message: str) -> None:
        """A warning for the report, said at once too (when planning meets it, not at the end)."""
        with self.lock:
            self.report.warnings.append(message)
        with contextlib.suppress(Exception):  # a closed stderr (EPIPE) must not stop the replay: it is in the report
            self.notice(message)

    def _stale(self, ev: AuditEvent) -> None:
        """An event that came too late for due_order to put it before a later commit of its object: see
        _superseded for when it is skipped; otherwise it is applied where it came. The report says so."""
        with self.lock:
            self.report.stale += 1
            self._stale_events.add(id(ev))  # the same dict reaches _planned (_superseded)
            if self.report.stale == 1:
                self.report.warnings.append(
                    f"{ev['source']}: a change reached replay after a later change to its object had already been "
                    f"released for sending (it completed more than {REORDER_WINDOW_NS / NS:g} s after it was "
                    "received, the reorder buffer was full, or the log is out of time order); skipped where a later "
                    "write of the same part (the object or its status), a re-create or its delete had been sent, "
                    "since it would take the object back to an older state, else applied where it came (count: "
                    "'stale' in the JSON report)")

    def _superseded(self, ev: AuditEvent, latest: collections.OrderedDict[tuple[str, str, str, str], _Planned]
                    ) -> bool:
        """Whether to skip ``ev`` (planner thread, called with the lock held): a split collection delete that came
        after its object was created again (_late_delete), or a stale change (due_order: it came after a later
        commit of its object) that the changes planned before it have made obsolete:
        - a create, update or patch of a part (the object itself, its scale, or its status subresource: replay
          writes each part whole) when a later write of that part, a create, or a delete of the object was planned;
        - a delete when a later create of the object (a new incarnation under the same name) was planned;
        - a binding of a pod whose delete was planned with no create since (it came late: a pod is bound only
          before its delete).
        A stale write of another part is applied (a PUT of the object leaves its status as it is).

        ``latest`` follows what was planned (:class:`_Planned`), per object, most recent last (at most
        ``RELEASED_MAX``, as due_order remembers). A delete that removed the object sets both parts to infinity
        until a create (so does one answered with a Status: it often has no resourceVersion, and the object may be
        gone). A graceful delete, whose recorded result is the object left Terminating, wrote only its metadata: it
        moves the object part, and a late status write older than none planned is applied (the kubelet's last
        status of a Terminating pod)."""
        key = id(ev)
        if key in self._late_split:
            self._late_split.discard(key)
            return True
        sub, verb = ev["subresource"], ev["verb"]
        part = 1 if sub == "status" else 0 if sub in ("", "scale") else None
        rv = resource_version(ev) if part is not None or verb == "delete" else 0
        obj = (ev["group"], ev["resource"], ev["namespace"], ev["name"])
        seen = latest.get(obj)
        if sub == "binding" and seen is not None and (seen.parts[0] == math.inf or seen.deleting):
            # A binding answers with a Status (no resourceVersion: due_order cannot tell it is late), but a pod is
            # bound only before its delete: one that comes after the delete, with no create since, is late.
            self.report.stale += 1
            return True
        if key in self._stale_events:
            self._stale_events.discard(key)
            if seen is not None and rv:
                if verb == "create" and not sub and max(*seen.parts, seen.created) > rv:
                    return True  # a create wrote both parts: a later write of either made (or moved) the object
                if verb in ("create", "update", "patch") and part is not None and seen.parts[part] > rv:
                    return True
                if verb == "delete" and not sub and seen.created > rv:
                    return True
        if (verb == "delete" and not sub) or (verb == "create" and sub == "eviction"):  # an eviction deletes too
            seen = latest.setdefault(obj, _Planned())
            if rv and sub != "eviction" and _left_terminating(ev["response"]):
                seen.parts[0], seen.deleting = max(seen.parts[0], float(rv)), True
            else:
                seen.parts = [math.inf, math.inf]
        elif verb == "create" and not sub:
            latest[obj] = _Planned([float(rv), float(rv)], created=float(rv))
        elif rv and part is not None:
            seen = latest.setdefault(obj, _Planned())
            seen.parts[part] = max(seen.parts[part], float(rv))
        else:
            return False
        latest.move_to_end(obj)
        if len(latest) > RELEASED_MAX:
            latest.popitem(last=False)
        return False

    def _count_split(self, extra: int) -> None:
        with self.lock:
            self.split_extra += extra

    def _late_delete(self, ev: AuditEvent) -> None:
        """A collection delete listed an object whose name was taken again too long before the collection delete
        completed for due_order to put the object's delete first (split_collection_deletes): it would come after
        the new object's create and remove it, so it is skipped (the create has replaced the older copy)."""
        with self.lock:
            self.report.stale += 1
            self._late_split.add(id(ev))  # skipped when it reaches the planner (_superseded)
            self._late_deletes += 1
            if self._late_deletes <= 5:  # the first few by name; all of them in 'stale'
                self.report.warnings.append(
                    f"{ev['source']}: the collection delete listed {ev['resource']} {ev['namespace']}/{ev['name']}, "
                    f"whose name was taken again more than {REORDER_WINDOW_NS / NS:g} s before the collection "
                    "delete completed; its delete would come after that create and remove the new object, so it is "
                    "skipped (count: 'stale')")

    def _track(self, action: Action, *, gone: bool = False) -> None:
        """Update the state fidelity expects of a replayed pod or node after the target answered ``action``
        (``gone``: a delete found it already gone, as it was in the recording's target by then). In inputs mode
        only note that the replay wrote the object: it is compared with its last recorded state (_observe)."""
        key = _object_key(action)
        if key is None:
            return
        with self.lock:
            self._touched.add(key)
            if self.options.mode == "verbatim":
                _advance(self.expected, self._unknown, key, action, gone)

    def _observe(self, ev: AuditEvent) -> None:
        """Inputs mode (planner thread, log order): follow every pod's and node's recorded state, whoever wrote
        it, so that fidelity compares what the replay wrote with how the recording left it (the target's own
        components stand in for the recorded ones)."""
        if ev["group"] or ev["resource"] not in ("pods", "nodes") or not ev["name"]:
            return
        planned = plan_action(ev, mode="inputs", to_replay=None, clean=False)  # only its state is read
        if isinstance(planned, Skip):
            if planned.reason != "degraded-metadata":
                return
            # A change whose body the audit level dropped: its result is not known.
            planned = Action("patch", "PATCH", ev["group"], ev["version"], ev["resource"], ev["namespace"],
                             ev["name"])
        key = _object_key(planned)
        if key is not None:
            with self.lock:
                _advance(self._recorded, self._recorded_unknown, key, planned, False)

    def _gone(self, exc: TransportError) -> None:
        """Stop the replay: the target has not answered for ``OUTAGE_SECONDS``. What is being sent finishes (or
        fails), nothing more is sent, and run() raises the error once the report is made."""
        with self.lock:
            if self._planner_error is None:
                self._planner_error = TransportError(
                    f"the target stopped answering (nothing for over {OUTAGE_SECONDS:.0f} s; last: "
                    f"{exc}): the replay stopped")
        self.stop.set()
        self._halt.set()
        self.client.cancel()  # the changes in flight fail at their next failure instead of retrying on

    def _stopped(self) -> bool:
        """Whether the replay halted, or a Ctrl-C was noted that the main thread has not acted on yet."""
        interrupts = self._interrupts
        return self._halt.is_set() or (interrupts is not None and interrupts.noted)

    def _apply(self, item: _Item) -> None:
        if self._stopped():
            return  # never sent: counted as unsent
        r = self.report
        action, source = item.action, item.source
        if not self.options.keep_timestamps and action.body is not None and action.op != "delete":
            # Times inside the object move onto the replay clock (the same recorded instant to the same wall time,
            # whichever event carries it).
            start, timeline = self._wall_start_ns, self._timeline
            action.body = shift_times(action.body, lambda t: timeline.wall_ns(t, start), action.resource,
                                      action.group)
        self._slot.seq = item.seq
        priority = self._start + item.offset + (RENEWAL_YIELD if action.op == "renew" else 0.0)
        slot = _Slot(self.gate.acquire(priority), priority)  # (given back meanwhile by a wait: _stand_in_later)
        self._slot.current = slot
        if self._stopped():  # stopped while it waited for room
            self._slot.current = None
            self.gate.release(slot.ticket, None, self.clock.now())
            return
        if item.degraded:
            with self.lock:
                r.degraded[item.degraded] += 1
        sent = self.clock.now()
        lag = sent - (self._start + item.offset)
        me = threading.get_ident()
        self._sending[me] = action.key  # (a second Ctrl-C names them: abandonedInFlight)
        latency: float | None = None
        refused = False
        before = self.client.thread_requests()
        try:
            reason = self.execute(action)
            answered = self._answered = self.clock.now()
            if self.client.thread_requests() - before == 1:
                latency = answered - sent  # one request, no retry: a latency the limit can compare
            if reason is None and action.resource == "secrets" and not action.group:
                self._unmark_redacted(action)
        except _Stopped:  # (review finding: counted failed, or skipped as having no stand-in)
            return  # never sent: counted as unsent
        except Exception as exc:  # one change never stops the others (nor its object's later changes); reported
            answer = exc.__cause__ if isinstance(exc.__cause__, KwoksnapError) else exc  # (of a "created, but")
            if isinstance(answer, APIError):
                self._answered = self.clock.now()
                if self.client.thread_requests() - before == 1:
                    # A refusal (409, 422, 403) is an answer: it ends a probe (a target refusing most writes kept
                    # the limit probing, one request at a time, for as long), but never lowers the baseline.
                    latency, refused = self.clock.now() - sent, True
            elif isinstance(answer, TransportError) and self.clock.now() - max(self._answered, sent) > OUTAGE_SECONDS:
                self._gone(answer)  # (nothing answered while this change was out: not a quiet stretch before it)
            if action.resource == "secrets" and not action.group:  # (a refusal may quote the Secret)
                message = scrubbed_error(exc, action.body)
            else:
                message = str(exc) if isinstance(exc, KwoksnapError) else f"{type(exc).__name__}: {exc}"
            with self.lock:
                r.failed += 1
                if len(r.failures) < 1000:
                    r.failures.append(f"{source}: {action.op} {_describe(action.key[1:])}: {message}")
            # The recording's object reached the state this change left, failed here or not: fidelity compares the
            # target with that (it followed only the answered changes, and called an object the replay failed to
            # delete a match).
            with contextlib.suppress(Exception):
                self._track(action)
            return
        finally:
            del self._sending[me]
            self._slot.current = None  # (never given back twice by a later wait of this thread)
            self.gate.release(slot.ticket, latency, self.clock.now(), refused)  # several requests, no answer: none
        applied_lag = answered - (self._start + item.offset)
        self._track(action, gone=reason == "already-deleted")  # first: should it fail, the change counts once
        if (action.group, action.resource) == CRDS:
            self._forget_unserved()
        with self.lock:
            # Recorded time reached: that of the latest change answered (the planner runs ahead of dispatch).
            r.recorded_seconds = max(r.recorded_seconds, item.recorded)
            if action.op == "renew":
                if not reason:  # (a coalesced one was not sent)
                    r.renewal_lag.add(max(0.0, applied_lag))
            else:
                r.lag.add(max(0.0, lag))
                r.applied_lag.add(max(0.0, applied_lag))
            if reason:
                r.skipped[reason] += 1
            else:
                r.applied += 1

    def _blocker(self, item: _Item) -> tuple[str, Any] | None:
        """What ``item`` must wait for (with the lock held): the first create or CRD write it needs that was handed
        on before it and is not answered yet, as its parking key (``("create", key)`` or ``("in", namespace)``);
        None when it can go. Only changes handed on before it: they never wait for it, so waiting is never
        circular, and the waiting is done parked (:meth:`_chain`), not on a worker thread: with every worker
        waiting for a create queued behind them, none was left to send it (review finding: the next incarnation's
        pods went into the old namespace after 35 s, deleted with it, counted applied).

        - the CRD's write, for a custom resource the target does not serve yet;
        - a namespace's delete: the creates in it (once it is Terminating the API server refuses them; black-box
          finding: a namespace created, filled and deleted within microseconds failed 0-2 of its creates);
        - a collection delete in a namespace: the creates in it (what it deleted in the source must be there);
        - a change in a namespace: the namespace's create (until answered it may not be there, or be an older
          incarnation being deleted: "namespace is being terminated");
        - an object's owners' creates, and a bound volume's claim's (their target UIDs are written into it).
        """
        action, seq = item.action, item.seq
        creates, inside = self._open_creates, self._open_in_namespace

        def earlier(seqs: list[int] | None) -> bool:
            return seqs is not None and len(seqs) > 0 and seqs[0] < seq

        group = action.group
        if "." in group and creates:
            crd = _crd_key(group, action.resource)
            if earlier(creates.get(crd)) and self.discovery.by_key(f"{group}/{action.version}/{action.resource}") \
                    is None:
                return ("create", crd)
        if action.op == "delete" and not group and action.resource == "namespaces" and earlier(inside.get(action.name)):
            return ("in", action.name)
        if action.op == "deletecollection" and action.namespace and earlier(inside.get(action.namespace)):
            return ("in", action.namespace)  # (black-box finding: at --speed max it went first, and missed pods)
        if not creates:
            return None
        if action.namespace:
            namespace = ("", "namespaces", "", action.namespace)
            if earlier(creates.get(namespace)):
                return ("create", namespace)
        body = action.body
        if not isinstance(body, dict) or action.op == "delete":
            return None
        for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
            if not isinstance(ref, dict):
                continue
            res = self.discovery.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            if res is not None:
                owner = (res.group, res.name, action.namespace if res.namespaced else "", str(ref.get("name", "")))
                if earlier(creates.get(owner)):
                    return ("create", owner)
        if action.resource == "persistentvolumes" and not group:
            claim = (body.get("spec") or {}).get("claimRef")
            if isinstance(claim, dict):
                key = ("", "persistentvolumeclaims", str(claim.get("namespace", "")), str(claim.get("name", "")))
                if earlier(creates.get(key)):
                    return ("create", key)
        return None

    def _await_create(self, key: tuple[str, str, str, str], timeout: float = OWNER_WAIT) -> bool:
        """Until no create (or CRD write) of ``key`` handed on before the change this thread sends is in flight
        (any, outside one), for up to ``timeout``, or the replay halts; True when none is. A create handed on later
        belongs to a later state (an owner's next incarnation), which the change must not wait for: that create may
        itself wait for this change (review finding: a 5 s stall). The changes _blocker parks are done by now:
        this waits only for what it could not foresee (a patch's owners)."""
        seq = getattr(self._slot, "seq", None)

        def done() -> bool:
            seqs = self._open_creates.get(key)
            return not seqs or (seq is not None and seqs[0] >= seq)  # (>=: never the change itself)

        with self._created:
            return self._created.wait_for(lambda: done() or self._halt.is_set(), timeout=timeout) and done()

    def _wait_until(self, due: float, start: float, interrupts: DeferredInterrupts) -> bool:
        """Sleep until ``due`` (False if the replay is stopping first), redrawing the progress line every second
        meanwhile (in inputs mode, or in a quiet stretch, changes are far apart, and the line stood still), and
        looking for a Ctrl-C every :data:`INTERRUPT_POLL` seconds."""
        redraw = self.clock.now() + PROGRESS_EVERY
        while True:
            interrupts.check()
            now = self.clock.now()
            if due - now <= INTERRUPT_POLL:
                return self.clock.sleep_until(due, self.stop)
            if not self.clock.sleep_until(now + INTERRUPT_POLL, self.stop):
                return False
            if self.clock.now() >= redraw:
                redraw += PROGRESS_EVERY
                self.progress(self.report, max(0.0, self.clock.now() - start))

    @staticmethod
    def _next(planned: Queue, interrupts: DeferredInterrupts) -> _Item | None:
        """The planner's next item, looking for a Ctrl-C meanwhile (the planner may be reading far ahead)."""
        while True:
            try:
                return planned.get(timeout=INTERRUPT_POLL)
            except queue.Empty:
                interrupts.check()

    def _dispatch(self, planned: Queue, primed: threading.Event, pool: ThreadPoolExecutor,
                  interrupts: DeferredInterrupts) -> None:
        """The main thread's loop: each planned change handed to the workers at its deadline."""
        # Parse and plan ahead (up to `lookahead` events, or all of a small log) before the clock starts, so
        # parsing does not compete with the first deadlines. (--speed max has none: it starts with the first change.)
        while self.options.speed is not None and not primed.wait(INTERRUPT_POLL):
            interrupts.check()
            if self.stop.is_set():
                break
        item = self._next(planned, interrupts)
        # Offset 0 is a moment from now, later by the lead of the first change when a burst opens the replay.
        lead = max(0.0, -item.send_at) if item is not None else 0.0
        self._start = self.clock.now() + 0.05 + lead
        self._wall_start_ns = int((self.clock.wall() + 0.05 + lead) * NS)
        self.report.replay_start_ns = self._wall_start_ns
        start = self._start
        while item is not None:
            # (A change already due is not waited for: a stop, a planner error under --strict, must be seen here.)
            if self.stop.is_set() or not self._wait_until(start + item.send_at, start, interrupts):
                break
            ahead = start + item.offset - self.clock.now()  # > 0: released before it is due
            if ahead > 0:
                self.report.early += 1
                self.report.lead_max = max(self.report.lead_max, ahead)
            while not self._backlog.acquire(timeout=INTERRUPT_POLL):
                interrupts.check()
                if self.stop.is_set():
                    break
            else:
                self._submit(item, pool)
                self._count_skips(item.skips)
            self.progress(self.report, max(0.0, self.clock.now() - start))
            item = self._next(planned, interrupts)
        if item is None and self._planner_error is None:  # the planner's end: every skip it planned was reached
            self._count_skips(None)

    def _submit(self, item: _Item, pool: ThreadPoolExecutor) -> None:
        """Changes to one object run in recorded order, one at a time; different objects never wait for each other
        (no fixed shards, so no head-of-line blocking behind an unrelated object)."""
        key = item.action.key
        with self.lock:
            item.seq = self._submitted
            self._submitted += 1
            self._unfinished += 1
            if _awaited(item.action):
                self._open_creates.setdefault(key, []).append(item.seq)
                if key[2]:
                    self._open_in_namespace.setdefault(key[2], []).append(item.seq)
            pending = self._inflight.get(key)
            if pending is not None:
                pending.append(item)
                return
            self._inflight[key] = collections.deque()
        pool.submit(self._chain, item)

    def _chain(self, item: _Item) -> None:
        """Send ``item``; its object's next change queued behind it then goes back to the workers (:meth:`_requeue`),
        so changes to one object keep their order; a change that must wait for another (:meth:`_blocker`) is parked
        instead, its object's later changes behind it, and this worker is free."""
        key = item.action.key
        current: _Item | None = item
        while current is not None:
            with self.lock:
                try:
                    blocker = None if self._halt.is_set() else self._blocker(current)
                except Exception:  # a bug: the change goes unparked (parked for ever, run() would never end)
                    log.exception("looking at what %s waits for", current.source)
                    blocker = None
                if blocker is not None:
                    self._parked.setdefault(blocker, []).append(current)
                    return
            try:
                self._apply(current)
            except Exception as exc:  # a bug: reported as this change's failure; the object's next changes still go
                with self.lock:
                    self.report.failed += 1
                    if len(self.report.failures) < 1000:
                        a = current.action
                        self.report.failures.append(f"{current.source}: {a.op} {_describe(a.key[1:])}: "
                                                    f"internal error: {type(exc).__name__}: {exc}")
            self._backlog.release()
            with self.lock:
                self._unfinished -= 1
                if _awaited(current.action):
                    _forget(self._open_creates, key, current.seq)
                    self._resume(self._parked.pop(("create", key), ()))
                    if key[2]:
                        _forget(self._open_in_namespace, key[2], current.seq)
                        self._resume(self._parked.pop(("in", key[2]), ()))
                    self._created.notify_all()
                elif not self._unfinished:
                    self._created.notify_all()  # (run() waits for the last: _await_finished)
                pending = self._inflight[key]
                if pending:
                    current = pending.popleft()
                else:
                    del self._inflight[key]
                    current = None
            if current is not None and self._requeue(current):
                return

    def _requeue(self, item: _Item) -> bool:
        """An object's next change, once the one before it is answered, goes behind the changes of other objects
        already waiting for a worker (False: the pool takes no more, a stop: this worker goes on with it). Sent
        at once instead, as it was until 2026-12-01, a busy replay wrote one object's queued changes back to back,
        each a few milliseconds after the last: before the API server's watch cache had the previous write, so its
        update started from a stale copy and did its work twice (an etcd read and a second field-manager pass: 0.4
        reads per write, ~1.5x the server's CPU per write at --speed max). In turn, they are as far apart as the
        recording has them."""
        pool = self._pool
        if pool is None:
            return False
        try:
            pool.submit(self._chain, item)
        except RuntimeError:  # (shut down: stopping)
            return False
        return True

    def _resume(self, parked: Iterable[_Item]) -> None:
        """Hand parked changes to the workers again (with the lock held): each looks again at what it waits for.
        After a stop they are dropped instead, never sent (counted as unsent)."""
        for item in parked:
            if self._halt.is_set() or self._pool is None:
                self._drop()
            else:
                try:
                    self._pool.submit(self._chain, item)
                except RuntimeError:  # the pool is shut down (a second Ctrl-C): nothing more is sent
                    self._drop()

    def _drop(self) -> None:
        """Count off a handed-on change that will not be sent (with the lock held: after a stop; its object's later
        changes, queued behind it, are never handed to the workers either)."""
        self._backlog.release()
        self._unfinished -= 1
        self._created.notify_all()

    def _drop_parked(self) -> None:
        with self.lock:
            for _ in range(sum(map(len, self._parked.values()))):
                self._drop()
            self._parked = {}

    def _dispatch_and_stop(self, planned: Queue, primed: threading.Event, pool: ThreadPoolExecutor,
                           planner: threading.Thread, old_switch: float) -> None:
        """Dispatch, then stop (:meth:`_stop`), under one deferral of Ctrl-C from the first change to the end of the
        stop: a Ctrl-C is raised only between changes (kwoksnap.interrupts), and a second one is noted wherever it
        comes while the replay stops, and acted on where the stop waits (black-box finding: one landing just after
        the first was raised, as the stop began, left the replay without its report)."""
        with DeferredInterrupts() as interrupts:
            self._interrupts = interrupts
            try:
                self._dispatch(planned, primed, pool, interrupts)
            except KeyboardInterrupt:
                interrupts.noted = False  # (from here on: a second Ctrl-C)
                self.stop.set()
                self.client.cancel()  # the changes being sent finish, without retries (re-test finding: a target
                self.report.interrupted = self._ctrl_c = True  # that never answers kept the first Ctrl-C 12 x 60 s)
                self.report.warnings.append(_STOPPING)  # (in --report too: black-box finding)
                self.notice(_STOPPING)
            finally:
                self._stop(planned, planner, pool, interrupts)
                self._interrupts = None
                sys.setswitchinterval(old_switch)

    def _stop(self, planned: Queue, planner: threading.Thread, pool: ThreadPoolExecutor,
              interrupts: DeferredInterrupts) -> None:
        """After dispatch ended (the log's end, a Ctrl-C, a planner's error): wait for every change handed on to
        finish, and for the planner. A Ctrl-C noted meanwhile (``interrupts``) is the first when the replay was not
        stopping yet (what is being sent finishes, nothing more is sent), else the second: what is in flight is named
        and not waited for. ``interrupts.noted`` is left clear, so that the deferral ends quietly."""
        stopping = self.report.interrupted or self._planner_error is not None
        self.stop.set()
        while True:
            if stopping:
                self._halt.set()  # what was handed to the workers but not sent stays unsent
                self.gate.open()  # and those waiting for room see it at once,
                with self._created:  # as do those waiting for an owner's create
                    self._created.notify_all()
                self._drop_parked()  # (and the parked are never sent)
            try:
                self._await_finished(interrupts)
                _join(pool, interrupts)  # every change being sent finishes; nothing is left half-applied
                break
            except KeyboardInterrupt:
                interrupts.noted = False
                self.client.cancel()  # no more retries of a target that does not answer (each failing now)
                if self._ctrl_c:  # a second Ctrl-C stops the waiting: what is in flight is named, its
                    # outcome unknown (review finding: it waited for each to time out)
                    sending = set(self._sending.copy().values())
                    if sending:  # (none in flight: nothing is abandoned, and the stop is as after one Ctrl-C)
                        self.report.abandoned = sorted(_describe(key[1:]) for key in sending)
                    pool.shutdown(wait=False, cancel_futures=True)
                    break
                self.report.interrupted = stopping = self._ctrl_c = True  # the first, after dispatch ended:
                self.report.warnings.append(_STOPPING)
                self.notice(_STOPPING)  # the changes being sent finish (without retries), no more of them
        with contextlib.suppress(queue.Empty):
            while True:  # let a planner blocked on a full queue see the stop
                planned.get_nowait()
        deadline = time.monotonic() + PLANNER_JOIN  # (everything dispatched is done by now: a Ctrl-C ends the wait)
        while planner.is_alive() and not interrupts.noted and time.monotonic() < deadline:
            planner.join(timeout=INTERRUPT_POLL)
        if interrupts.noted:  # only the report is left to make
            interrupts.noted = False
            self.report.interrupted = True

    def _await_finished(self, interrupts: DeferredInterrupts) -> None:
        """Until every change handed on is finished (parked ones are handed to the workers again when what they
        wait for is answered, so the pool must not be shut down before), or the replay halts; a Ctrl-C noted
        meanwhile is raised (KeyboardInterrupt)."""
        while True:
            with self._created:
                if self._unfinished <= 0 or self._halt.is_set():
                    return
                self._created.wait(INTERRUPT_POLL)
            interrupts.check()

    def freeze(self, done: list[int] | None = None) -> tuple[int, int]:
        """Verbatim replay owns every node's and pod's status: mark them all frozen before the first event, or kwok's
        node-initialize stage would flip a replayed NotReady node back to Ready (a status write cannot add the
        annotation), and its pod stages would move, and delete, pods the recording drives (black-box finding: pods an
        inputs-mode replay had handed back to kwok stayed so, and kwok deleted one the replay had just created).
        Returns (pods, nodes) newly frozen; the patches go out ``workers`` at a time, counted in ``done[0]`` as
        they are answered. Ctrl-C sends no more of them."""
        done = done if done is not None else [0]
        frozen = {"metadata": {"annotations": {FROZEN_ANNOTATION: "true"}}}
        paths = [f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}"
                 for pod, _ in self.client.list_items("/api/v1/pods")
                 if (pod["metadata"].get("annotations") or {}).get(FROZEN_ANNOTATION) != "true"]
        pods = len(paths)
        paths += [f"/api/v1/nodes/{node['metadata']['name']}" for node, _ in self.client.list_items("/api/v1/nodes")
                  if (node["metadata"].get("annotations") or {}).get(FROZEN_ANNOTATION) != "true"]
        self._patch_all([(path, frozen) for path in paths], done)
        return pods, len(paths) - pods

    def thaw(self, done: list[int] | None = None) -> tuple[int, int]:
        """Inputs mode: the target's own components drive pods and nodes, so those a restore froze are handed back
        to them: the ``kwoksnap.io/frozen`` annotation comes off (kwok runs their lifecycle again, e.g. finishes a
        Terminating pod) and so does restore's scheduling gate (the scheduler places a Pending pod). Returns
        (pods, nodes) thawed; the patches go out ``workers`` at a time, counted in ``done[0]`` as they are answered.
        Ctrl-C sends no more of them."""
        done = done if done is not None else [0]
        patches: list[tuple[str, Obj]] = []
        for pod, _ in self.client.list_items("/api/v1/pods"):
            meta, spec = pod["metadata"], pod.get("spec") or {}
            gates = spec.get("schedulingGates") or []
            kept = [g for g in gates if g.get("name") != SCHEDULING_GATE]
            patch: Obj = {}
            if (meta.get("annotations") or {}).get(FROZEN_ANNOTATION) is not None:
                patch["metadata"] = {"annotations": {FROZEN_ANNOTATION: None}}
            if len(kept) != len(gates):
                patch["spec"] = {"schedulingGates": kept or None}
            if patch:
                patches.append((f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", patch))
        pods = len(patches)
        for node, _ in self.client.list_items("/api/v1/nodes"):
            if (node["metadata"].get("annotations") or {}).get(FROZEN_ANNOTATION) is not None:
                patches.append((f"/api/v1/nodes/{node['metadata']['name']}",
                                {"metadata": {"annotations": {FROZEN_ANNOTATION: None}}}))
        self._patch_all(patches, done)
        return pods, len(patches) - pods

    def _patch_all(self, patches: list[tuple[str, Obj]], done: list[int]) -> None:
        """Send ``patches`` (an object gone meanwhile is passed over) ``workers`` at a time, counting each answered
        in ``done[0]``; the first failure is raised once every patch was sent. Ctrl-C sends no more of them."""
        def send(path: str, patch: Obj) -> None:
            with contextlib.suppress(NotFound):  # gone meanwhile
                self.client.patch(path, patch)
            with self.lock:
                done[0] += 1

        pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="prepare")
        try:
            with DeferredInterrupts() as interrupts:  # (raised between patches: kwoksnap.interrupts)
                futures = []
                for path, patch in patches:
                    interrupts.check()
                    futures.append(pool.submit(send, path, patch))
                for future in futures:
                    while not future.done():
                        interrupts.wait(future)
                    future.result()
        except KeyboardInterrupt:  # the patches being sent finish, the queued ones are not sent
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def warm_up(self) -> None:
        """One keep-alive connection per worker before the clock starts: no TLS handshakes in the first burst."""
        self.client.warm(self.options.workers)

    def measure_rate(self) -> float | None:
        """The target's write rate for spreading bursts: ``capacity`` if given, else measured (None, with a
        warning, when it cannot be)."""
        if self.options.capacity is not None:
            return self.options.capacity
        # As many threads as the adaptive limit starts with; all workers when the limit is fixed.
        threads = min(self.options.workers, 8) if self.gate.adaptive is not None else self.options.workers
        leftovers: list[str] = []
        try:
            measured = measure_write_rate(self.client, concurrency=threads, requests=max(96, 4 * threads),
                                          clock=self.clock, leftovers=leftovers)
        finally:  # also when Ctrl-C interrupts the measurement
            if leftovers:
                self.report.warnings.append("scratch objects of the write-rate measurement could not be deleted: "
                                            + ", ".join(leftovers))
        if measured.fallback is not None and measured.rate is not None:
            self.report.warnings.append(f"the target's write rate was measured with ConfigMaps: {measured.fallback}. "
                                        "Pod writes cost the target more, so a burst may be spread too little and "
                                        "land late; --capacity sets the rate")
        if measured.rate is None:
            why = (measured.error if measured.fallback is None
                   else f"{measured.fallback}; with ConfigMaps: {measured.error}")
            self.report.warnings.append(f"could not measure the target's write rate ({why}); a burst "
                                        "the target cannot take on time is sent at its recorded times, and lands "
                                        "late")
        return measured.rate

    def run(self, events: Iterable[AuditEvent]) -> ReplayReport:
        stream = iter(events)
        try:
            first = next(stream, None)  # read up to the first event the filters keep
        except KeyboardInterrupt:
            self.report.interrupted = True
            return self.report
        if first is None:  # nothing to replay: the target is left exactly as it is (no freezing, no measuring)
            return self._replay(iter(()))
        return self._replay(itertools.chain((first,), stream), prepare=True)

    def _replay(self, events: Iterable[AuditEvent], *, prepare: bool = False) -> ReplayReport:
        """``prepare``: there is something to replay, so the target is made ready for it first (verbatim: nodes
        frozen; inputs: what a restore froze handed back; the write rate measured)."""
        done = [0]  # nodes frozen, or thawing patches sent, so far
        try:
            if prepare and self.options.mode == "verbatim":
                pods, nodes = self.freeze(done)
                log.info("%d pod(s) and %d node(s) frozen for the replay", pods, nodes)
                if pods:
                    self.report.warnings.append(
                        f"verbatim mode: {pods} pod(s) of the target were not frozen (an inputs-mode replay handed "
                        f"them back to kwok, or they were made outside kwoksnap) and are now ({FROZEN_ANNOTATION}="
                        "true), so that kwok leaves their status and deletion to the replay")
            elif prepare:
                pods, nodes = self.thaw(done)
                log.info("%d pod(s) and %d node(s) handed back to the target's kwok and scheduler", pods, nodes)
                if pods or nodes:
                    self.report.warnings.append(
                        f"inputs mode: {pods} pod(s) and {nodes} node(s) a restore had frozen are handed back to the "
                        "target's kwok and scheduler (kwoksnap.io/frozen and the restore scheduling gate removed), "
                        "so they react to the replayed inputs")
        except KeyboardInterrupt:  # before the first change: say what the preparation changed
            self.report.interrupted = True
            if self.options.mode == "verbatim":
                self.report.warnings.append(
                    f"interrupted while pods and nodes were frozen for the replay: {done[0]} were frozen "
                    f"({FROZEN_ANNOTATION}=true: kwok leaves their status alone), the others not; no recorded change "
                    "was sent")
            else:
                self.report.warnings.append(
                    f"interrupted while frozen pods and nodes were handed back to the target: {done[0]} were, the "
                    "others not; no recorded change was sent")
            return self.report
        try:
            self.warm_up()
            if prepare and self.options.speed is not None and self.options.max_lead > 0:
                self.report.capacity = self.measure_rate()
                log.info("the target's write rate: %s", f"{self.report.capacity:.0f}/s"
                         if self.report.capacity is not None else "not measured")
        except KeyboardInterrupt:  # nothing was replayed yet; the measurement's scratch objects were cleaned up
            self.report.interrupted = True
            if done[0]:
                self.report.warnings.append(
                    f"interrupted before the first change was sent: {done[0]} pod(s) and node(s) had been frozen for "
                    "the replay "
                    f"({FROZEN_ANNOTATION}=true: kwok leaves their status alone)" if self.options.mode == "verbatim"
                    else f"interrupted before the first change was sent: {done[0]} frozen pod(s) and node(s) had "
                    "been handed back to the target")
            return self.report
        old_switch = sys.getswitchinterval()
        if self.options.speed is not None:  # (--speed max has no deadlines: switching 10x more often only costs CPU)
            sys.setswitchinterval(0.0005)  # the dispatcher must get the GIL back quickly after its deadline
        planned: Queue = Lookahead(self.options.lookahead)
        primed = threading.Event()
        planner = threading.Thread(target=self._plan, args=(events, planned, primed), daemon=True,
                                   name="replay-plan")
        pool = self._pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="replay")
        planner.start()
        self._start = self._answered = self.clock.now()
        # A Ctrl-C from here on (the replay has stopped, or is about to: black-box finding, one 0.06 s after the
        # first came as the report was made, and it was lost) only marks the report interrupted.
        with DeferredInterrupts() as after:
            try:
                self._dispatch_and_stop(planned, primed, pool, planner, old_switch)
            except KeyboardInterrupt:  # noted as the dispatch's deferral ended, after the stop
                self.report.interrupted = True
            self._finish_report()
            if after.noted:
                after.noted = False
                self.report.interrupted = True
        return self.report

    def _finish_report(self) -> None:
        """The report's totals and warnings, once the replay has stopped; the planner's error is raised here."""
        self.report.wall_seconds = max(0.0, self.clock.now() - self._start)
        if not self.report.interrupted and self._planner_error is None:  # (skipped changes after the last one sent)
            self.report.recorded_seconds = self._planned_seconds
        self.report.limits = self.gate.limits
        self.report.failures.sort(key=_by_source)  # answered in any order; listed as they stand in the log
        if self.report.namespaces_created:
            names = sorted(self.report.namespaces_created)
            self.report.warnings.append(
                f"created {len(names)} namespace(s) the target lacked, to hold recorded objects: "
                + ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                + f" (labelled {CREATED_BY_LABEL}=replay; restore the snapshot taken before the log to have them "
                "as recorded, or add --resources namespaces to replay the log's own namespace creates and deletes)")
        if self.report.stand_ins:
            pairs = [f"{recorded} -> {target}" for recorded, target in list(self.report.stand_ins.items())[:3]]
            self.report.warnings.append(
                f"{len(self.report.stand_ins)} delete(s), eviction(s) or patch(es) named pods the source's "
                "controllers had made, which the target's controllers named otherwise: each went to a pod of the "
                "same controller instead "
                f"(on the recorded node where there was one), e.g. {', '.join(pairs)} ('standIns' in the report)")
        if self.report.without_stand_in:
            shown = self.report.without_stand_in
            self.report.warnings.append(
                f"{len(shown)} delete(s), eviction(s), patch(es) or update(s) of pods the source's controllers had "
                "made were not applied: "
                f"the target had no pod of that controller to stand in (its controller had made none, or none was "
                f"left), e.g. {', '.join(shown[:3])} ('withoutStandIn' in the report; a slower --speed gives the "
                "target's controllers time to make them)")
        with self.lock:  # the planner may still be stopping (a join that timed out)
            lost = collections.Counter(self._lost)
        if lost:
            by_resource = ", ".join(f"{resource} {n}" for resource, n in lost.most_common())
            self.report.warnings.append(
                f"{sum(lost.values())} change(s) not replayed: the log holds them without the object or the "
                f"request ({by_resource}), at Metadata level or with the body dropped; a capture policy that logs "
                "these resources at Request or RequestResponse level keeps them (docs/audit.md)")
        if self.report.dropped_owners:
            self.report.warnings.append(
                f"{self.report.dropped_owners} owner reference(s) left out: their owners were not in the target, "
                f"e.g. on {', '.join(self._dropped_examples)} (an owner the log creates, a Job, a ReplicaSet, is "
                "replayed only when --resources holds its resource, e.g. --resources jobs; one from before the "
                "log is there when the snapshot taken before it was restored)")
        if self._planner_error is not None:
            # Dispatch stopped as soon as the planner failed: changes already sent finished whole, nothing more
            # was sent. Planning runs up to `lookahead` events ahead, so an error found then stops the replay
            # before the first request. After a Ctrl-C (a target that stopped answering, the likeliest reason
            # for one) it is the report's: the stop was the user's (review finding: exit 4, not 130).
            if not (self._ctrl_c and isinstance(self._planner_error, TransportError)):
                raise self._planner_error
            self.report.warnings.append(str(self._planner_error))

    def _live(self) -> dict[tuple[str, str, str], ObjectState]:
        live: dict[tuple[str, str, str], ObjectState] = {}
        for kind, path in (("Pod", "/api/v1/pods"), ("Node", "/api/v1/nodes")):
            for obj, _ in self.client.list_items(path):
                m = obj["metadata"]
                live[(kind, m.get("namespace", ""), m["name"])] = observed_state(kind, obj)
        return live

    def check_fidelity(self) -> None:
        """Compare every tracked pod and node with its last recorded state.

        In inputs mode the target's own components carry out what the replayed inputs set off (kwok finishes a
        deleted pod, the scheduler and kwok start a created one), a moment after the last input: while objects
        differ, they are compared again, for up to ``INPUTS_SETTLE`` seconds."""
        r = self.report
        inputs = self.options.mode == "inputs"
        if inputs:  # what the replay wrote, against the log's last state of it; the target's scheduler places
            expected = {k: self._recorded[k] for k in self._touched if k in self._recorded}
            not_compared = self._touched & self._recorded_unknown
        else:
            expected, not_compared = self.expected, self._unknown
        live = listing = self._live()
        deadline = self.clock.now() + INPUTS_SETTLE
        differing: dict[tuple[str, str, str], str]
        pending = sorted(expected)
        with self.lock:  # (verbatim) the copy replay wrote for each recorded one; inputs: the target makes its own
            copies = {} if inputs else {key: self.target_uids.get(expected[key].uid, "") for key in pending}
            # Inputs mode: a controller's pod the target named otherwise is compared as the stand-in that took its
            # changes (black-box finding: each was "missing", exit 5, while its stand-in matched).
            stand_ins = {key: ("Pod", key[1], self.report.stand_ins[f"{key[1]}/{key[2]}"]) for key in pending
                         if inputs and key[0] == "Pod" and f"{key[1]}/{key[2]}" in self.report.stand_ins}
        while True:
            # Only those that differ are looked at again: one that matched has settled, whatever it does next.
            differing = {key: m for key in pending
                         if (m := _mismatch(key, expected[key], listing.get(stand_ins.get(key, key)), inputs,
                                            copies.get(key, ""), stand_ins.get(key, key)[2])) is not None}
            pending = list(differing)
            if not (inputs and differing and self.clock.now() < deadline):
                break
            self.clock.sleep_until(min(deadline, self.clock.now() + 0.5))  # (Ctrl-C: KeyboardInterrupt)
            try:
                listing = self._live()
            except KwoksnapError:  # the target stopped answering: the last listing stands
                break
        r.fidelity_checked += len(expected)
        r.mismatches.extend(differing.values())
        if not_compared:
            unknown = sorted(map(_describe, not_compared))
            r.warnings.append(f"{len(unknown)} replayed pod(s)/node(s) not compared: their last recorded change "
                              "holds no resulting object (Request or Metadata level, or a metadata-only write "
                              f"such as the garbage collector's), e.g. {', '.join(unknown[:3])}")
        # Equal to the recording, and still not a cluster: a log replayed without the snapshot taken before it
        # binds pods to nodes that were never restored.
        nodes = {name for kind, _, name in live if kind == "Node"}
        nodes |= {name for (kind, _, name), state in self.expected.items() if kind == "Node" and state.deleted}
        # (a node the recording deleted is not missing: black-box finding, a kwokctl recording's)
        # (Verbatim only: in inputs mode the target's pod garbage collector removes them after a node deletion.)
        homeless = sorted(f"{ns}/{pod} (node {got.node})" for (kind, ns, pod), got in live.items()
                          if kind == "Pod" and got.node and got.node not in nodes
                          and (kind, ns, pod) in self.expected) if self.options.mode == "verbatim" else []
        if homeless:
            r.warnings.append(f"{len(homeless)} replayed pod(s) are bound to nodes the target lacks, e.g. "
                              f"{', '.join(homeless[:3])}: restore the snapshot taken before the log first")


@dataclasses.dataclass
class _Planned:
    """What replay has planned of one object (Replayer._superseded): per part (0: the object itself or its scale,
    1: its status subresource; replay writes each whole) the highest resourceVersion written, infinity once a
    delete removed the object; the resourceVersion of its last create; whether a graceful delete left it
    Terminating."""

    parts: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    created: float = 0.0
    deleting: bool = False


def _crd_key(group: str, resource: str) -> tuple[str, str, str, str]:
    """The key (as Action.key) of the CRD that defines ``resource`` in ``group``."""
    return (*CRDS, "", f"{resource}.{group}")


_OWNER_REFS: Final = "/metadata/ownerReferences"


class _Stopped(KwoksnapError):
    """The replay stopped while a change waited, before it wrote anything: the change is unsent, not failed."""


@dataclasses.dataclass
class _Slot:
    """A change's place among the requests in flight: its gate ticket, and the priority to get one again with."""

    ticket: Ticket
    priority: float


def _join(pool: ThreadPoolExecutor, interrupts: DeferredInterrupts) -> None:
    """``pool.shutdown(wait=True)``, its workers waited for a little at a time, so that a Ctrl-C noted meanwhile is
    raised (KeyboardInterrupt): shutdown's own join has no timeout, and under the deferral nothing else ends it."""
    pool.shutdown(wait=False)
    for worker in list(pool._threads):
        while worker.is_alive():
            worker.join(INTERRUPT_POLL)
            interrupts.check()


def _forget(open_creates: dict[Any, list[int]], key: Any, seq: int) -> None:
    seqs = open_creates[key]
    seqs.remove(seq)
    if not seqs:
        del open_creates[key]


def _awaited(action: Action) -> bool:
    """Changes others may wait for while they are in flight: creates (an owner, a CRD), writes that created their
    object in the source (server-side apply creates with a PATCH), and any write of a CRD."""
    return action.op == "create" or action.creates or (action.group, action.resource) == CRDS


def _duration(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``41m``: a long wait as a person reads it."""
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"

