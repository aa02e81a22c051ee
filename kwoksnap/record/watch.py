"""Record a cluster's objects as they change, through the API server's watch: no audit configuration needed.

Why this module exists: the audit log and webhook are the API server operator's to configure; a watch needs only
read access (what ``save`` needs), so it records any cluster a kubeconfig reaches, as kwokctl's recorder does. A
watch delivers an object's states, not the requests that made them: each change becomes those requests through
:func:`~kwoksnap.audit.changes.state_changes` (a binding, a deletion with its grace period, an update of the object,
one of its status), at RequestResponse level, timed when the change arrived. Nothing says who made a change, so a
watch recording replays verbatim only.

Per resource (per namespace of ``-n``, for a namespaced one: a user allowed only those can record them): a list
(the states the recording starts from; not recorded), then a watch from the list's resourceVersion with bookmarks,
resumed from the last resourceVersion seen when the API server ends it or the connection breaks; one the API server
ends at once without an event is resumed after a wait growing as it goes on doing so (``RETRY_SECONDS``: known
defect, an API server closing every watch at once was asked again in a hot loop); a watch refused as too old (410)
lists again, and the differences from the states it knew become changes of that moment. A resource
the user may not list is left out with a warning (``forbidden``), unless every one is. ``managedFields`` are left
out of every recorded object. At most ``MAX_QUEUED`` changes wait for the recording: a watch whose changes come
faster than the recording is written waits to put its next one (backpressure on its connection). A resource the
filter keeps that the API server serves only later (a custom resource whose definition is made while recording)
is found by looking again every ``REDISCOVER_SECONDS``, listed and watched from then: its objects at that moment are
recorded as created then (``later`` names it; one the user may not list is left out, ``forbidden``).

Each resource has its own watch, so one may deliver a change after another's later one (a ReplicaSet's create after
its pods', tens of milliseconds late: black-box finding, the replay then dropped the pods' owner references). A
change is held ``HOLD_SECONDS`` and handed out in the order the API server made the changes (resourceVersion:
etcd's revision, one counter for every resource), its time moved no later than that of any change held with it
made after it and always after the one handed out before it, so that the recording's time order is that order too.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

from kwoksnap.audit import AuditEvent, FilterSpec, ParseStats, skip_reason
from kwoksnap.audit.changes import EventMaker, part_of, state_changes
from kwoksnap.audit.events import parse_resource_version, resource_version_of
from kwoksnap.audit.filters import LEASE_GROUP, NODE_LEASE_NAMESPACE
from kwoksnap.clock import Clock, RealClock
from kwoksnap.errors import APIError, KwoksnapError
from kwoksnap.kube.client import Client
from kwoksnap.kube.discovery import Discovery, Resource

log = logging.getLogger("kwoksnap.record")

USER_AGENT: Final = "kwoksnap-watch"
# How long one watch request runs before the API server ends it (resumed at once, from the last resourceVersion
# seen). Short, because a connection gone silent is noticed only this plus Client.WATCH_GRACE seconds on (black-box
# finding: one was waited on for minutes, its changes lost; it was 300 s).
WATCH_SECONDS: Final = 60
# Waits between a broken watch's attempts to go on, and before a watch the API server ended at once without an
# event is resumed (growing while it goes on doing so, back to the first once a watch delivers an event).
RETRY_SECONDS: Final = (0.5, 1.0, 2.0, 4.0, 8.0)
QUICK_END: Final = 1.0  # seconds: a watch ended sooner without an event is resumed after a wait (RETRY_SECONDS)
STOP_WAIT: Final = 2.0  # seconds a stop waits for the watches to end (one listing again may wait long for its answer)
# Changes (each the few requests of one) received and not yet taken by the recording; a watch thread with one more
# waits (its connection unread: the API server holds what follows, or ends the watch, resumed then) until there is
# room (known defect: the queue was unbounded, and a slow disk with a busy cluster grew memory without limit).
MAX_QUEUED: Final = 1_000
POLL: Final = 0.2  # seconds between looks of a watch thread waiting for room (has the recording ended?)
# Refusals no retry changes: forbidden, or the credentials refused after the client fetched them again.
_REFUSED: Final = frozenset({401, 403})
REDISCOVER_SECONDS: Final = 5.0  # how often the served resources are looked at again (``rediscover``)
HOLD_SECONDS: Final = 1.0  # a change is held this long, to be handed out in the order it was made (module docstring)

Obj = dict[str, Any]
_Key = tuple[str, str]  # (namespace, name)
_Scope = tuple[Resource, str]  # a resource, and the namespace watched ("": all)


def watched(discovery: Discovery, spec: FilterSpec) -> list[Resource]:
    """The resources whose changes the filter keeps (those it could keep some of), preferred versions, watchable."""
    out = []
    only = FilterSpec(resources=spec.resources)
    for res in discovery.listable():
        if "watch" not in res.verbs:
            continue
        for namespace in ("", NODE_LEASE_NAMESPACE):  # (the default leases are those of kube-node-lease only)
            probe = AuditEvent(ts=0, received=0, auditID="", stage="ResponseComplete", level="RequestResponse",
                               verb="update", user="", groups=[], userAgent="", group=res.group,
                               version=res.version, resource=res.name, subresource="", namespace=namespace, name="",
                               uri="", code=200, request=None, response=None, annotations={}, source="")
            if skip_reason(probe, only) != "resource-not-selected":
                out.append(res)
                break
    return out


def scopes(resources: list[Resource], namespaces: frozenset[str]) -> list[_Scope]:
    """What to watch: each resource in all namespaces, or a namespaced one in each of ``namespaces`` (``-n``; and
    node leases, which ``-n`` keeps with their nodes, in theirs)."""
    out: list[_Scope] = []
    for res in resources:
        if not (res.namespaced and namespaces):
            out.append((res, ""))
            continue
        extra = {NODE_LEASE_NAMESPACE} if (res.group, res.name) == (LEASE_GROUP, "leases") else set()
        out.extend((res, namespace) for namespace in sorted(namespaces | extra))
    return out


class WatchRecorder:
    """Watches ``resources`` (one thread per resource, or per resource and namespace of ``namespaces``);
    :meth:`events` hands out their changes as audit events.

    The first list of every one happens in the constructor: one the user may not list (403) is left out and named
    in ``forbidden`` (an :class:`APIError` if that leaves nothing), any other failure is an error before recording
    begins. Later failures are retried (``reconnects`` counts them) until stopped. ``rediscover``: the resources
    to watch now (looked at every ``every`` seconds; those not watched yet are from then on). ``timer``: the
    clock the waits between a watch's attempts are measured by (a fake one in the tests: no sleeping)."""

    def __init__(self, client: Client, resources: list[Resource], stats: ParseStats, *,
                 namespaces: frozenset[str] = frozenset(), clock: Callable[[], int] = time.time_ns,
                 server: str = "", rediscover: Callable[[], list[Resource]] | None = None,
                 every: float = REDISCOVER_SECONDS, timer: Clock | None = None, hold: float | None = None) -> None:
        self.client, self.stats, self.clock = client, stats, clock
        self._timer: Clock = timer or RealClock()
        self._namespaces, self._rediscover, self._every = namespaces, rediscover, every
        self.later: list[str] = []  # "widgets.example.com from HH:MM:SSZ": served only after recording began
        self._tried = {(r.group, r.name) for r in resources}  # (those refused at start too: not tried again)
        self.reconnects = 0
        self.relists = 0
        self.forbidden: list[str] = []  # "pods" or "pods in NAMESPACE": not recorded
        self.revoked: list[str] = []  # "pods in NAMESPACE since HH:MM:SSZ": refused (403) while recording
        # (the resourceVersion of the change, its events): handed out through _held, in that order
        self._queue: queue.Queue[tuple[int, list[AuditEvent]]] = queue.Queue(maxsize=MAX_QUEUED)
        self._hold = HOLD_SECONDS if hold is None else hold  # seconds (module docstring)
        self._held: list[tuple[int, int, float, list[AuditEvent]]] = []  # heap: (version, arrival, when, events)
        self._arrived: deque[tuple[int, int]] = deque()  # (arrival, time) of the changes held, in arrival order
        self._gone: set[int] = set()  # arrivals handed out and still in _arrived (not at its head)
        self._arrival = itertools.count()
        self._last_ts = 0  # the time of the change handed out last
        self._holding = threading.Lock()
        self._taken = threading.Event()  # events() has ended: nothing takes from the queue any more
        self._count = threading.Lock()
        self._changes = 0
        self._start: dict[_Scope, tuple[str, dict[_Key, Obj]]] = {}
        refused: APIError | None = None
        for scope in scopes(resources, namespaces):
            try:
                self._start[scope] = self._list(scope)
            except APIError as exc:
                if exc.status != 403:
                    raise
                refused = exc
                self.forbidden.append(_named(scope))
        if refused is not None and not self._start:
            raise refused
        stats.files[f"watch {server}".strip()] = "watch"

    @property
    def resources(self) -> list[Resource]:
        """The resources watched (in at least one namespace)."""
        return list({res.key: res for res, _ in list(self._start)}.values())

    def _list(self, scope: _Scope) -> tuple[str, dict[_Key, Obj]]:
        """The objects of ``scope`` now, and the resourceVersion to watch from."""
        res, namespace = scope
        states: dict[_Key, Obj] = {}
        version = ""
        for page in self.client.list_pages(res.path(namespace)):
            if page.get("kind") == "Restart":  # (listed again from the start, at a newer revision)
                states.clear()
                version = ""
                continue
            version = version or str(part_of(page, "metadata").get("resourceVersion") or "")
            for item in page.get("items") or ():
                if isinstance(item, dict):
                    item.setdefault("apiVersion", res.group_version)
                    item.setdefault("kind", res.kind)
                    states[_key(item)] = _trimmed(item)
        return version, states

    def events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        """The changes as they arrive, until ``stop`` is set (then the watches end, and what came before is
        handed out: a watch waiting for room in the queue puts its change once there is, then ends)."""
        try:
            yield from self._events(stop)
        finally:  # (a watch still waiting for room then drops its change and ends: nothing would take it)
            self._taken.set()

    def _events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        threads = [self._thread(scope, stop) for scope in self._start]
        if self._rediscover is not None:  # (not waited for at the stop: a discovery in flight is dropped)
            threading.Thread(target=self._pick_up, args=(stop, threads), name="kwoksnap-rediscover",
                             daemon=True).start()
        stopped_at: float | None = None
        while True:
            try:
                self._keep(self._queue.get(timeout=0.2))
            except queue.Empty:
                if not stop.is_set():
                    yield from self._due(everything=False)
                    continue
                if stopped_at is None:
                    stopped_at = time.monotonic()
                    self.client.cancel()  # (a list being retried ends; watches end at the stop)
                alive = [t.name for t in threads if t.is_alive()]
                if self._queue.empty() and (not alive or time.monotonic() - stopped_at > STOP_WAIT):
                    if alive:  # a list of an expired watch waiting for its answer (review finding: for minutes)
                        log.warning("stopped without waiting for %d watch(es) listing again: %s", len(alive),
                                    ", ".join(alive))
                    yield from self._due(everything=True)
                    return
                continue
            yield from self._due(everything=False)

    def pending(self) -> Iterator[AuditEvent]:
        """The changes received and not handed out yet, taken without waiting for the watches (the recording given
        up: a second Ctrl-C); at most what the queue holds now."""
        for _ in range(self._queue.qsize()):
            try:
                self._keep(self._queue.get_nowait())
            except queue.Empty:
                break
        yield from self._due(everything=True)

    def _keep(self, change: tuple[int, list[AuditEvent]]) -> None:
        """Hold a change received (see the module's docstring); it makes one request or more (``_emit``)."""
        version, events = change
        with self._holding:  # (pending() runs on another thread than events(): a recording given up)
            arrival = next(self._arrival)
            heapq.heappush(self._held, (version, arrival, time.monotonic(), events))
            self._arrived.append((arrival, events[0]["ts"]))

    def _due(self, *, everything: bool) -> Iterator[AuditEvent]:
        """The changes held that are due (all of them with ``everything``), in the order they were made, each at
        the time of the earliest change received among those still held if that is earlier than its own, and always
        later than the change handed out before it (review finding: changes at one time were put back in order by
        their resourceVersion downstream, where a binding's or a deletion's answer, a Status, has none, so a pod's
        binding went before its create)."""
        until = time.monotonic() - self._hold
        while True:  # (one change taken at a time: a recording given up meanwhile finds the others still held)
            with self._holding:
                if not self._held or not (everything or self._held[0][2] <= until):
                    return
                _, arrival, _, events = heapq.heappop(self._held)
                earliest = self._arrived[0][1]  # (of the changes held, this one among them: all made after it)
                self._gone.add(arrival)
                while self._arrived and self._arrived[0][0] in self._gone:
                    self._gone.discard(self._arrived.popleft()[0])
                at = max(min(events[0]["ts"], earliest), self._last_ts + 1)
                self._last_ts = at
                for event in events:  # (one change's requests: at one time, in their order)
                    event["received"] += at - event["ts"]
                    event["ts"] = at
            for event in events:
                self.stats.events += 1
                self.stats.formats["watch"] += 1
                yield event

    def _thread(self, scope: _Scope, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._follow, args=(scope, stop),
                                  name=f"kwoksnap-watch-{scope[0].name}-{scope[1]}".rstrip("-"), daemon=True)
        thread.start()
        return thread

    def _pick_up(self, stop: threading.Event, threads: list[threading.Thread]) -> None:
        """Every ``every`` seconds until stopped: watch the resources the API server serves by now that the filter
        keeps and are not watched yet (:meth:`_start_later`)."""
        assert self._rediscover is not None
        while not stop.wait(self._every):
            try:
                found = self._rediscover()
                for res in found:
                    if (res.group, res.name) in self._tried or stop.is_set():
                        continue
                    self._tried.add((res.group, res.name))
                    self._start_later(res, stop, threads)
            except Exception as exc:  # (the API server restarting: looked at again next time; never the end of it)
                log.info("looking for resources served since recording began failed: %s", exc)

    def _start_later(self, res: Resource, stop: threading.Event, threads: list[threading.Thread]) -> None:
        """Watch ``res``, served since recording began: listed first (what is there was made since: recorded as
        created now), each scope the user may list (re-test finding: one refused was announced, then counted as
        access revoked, exit 5; it is left out with a warning, as at the start)."""
        since = time.strftime("%H:%M:%SZ", time.gmtime(self.clock() / 1e9))
        listed: list[tuple[_Scope, str, dict[_Key, Obj]]] = []
        for scope in scopes([res], self._namespaces):
            try:
                version, states = self._list(scope)
            except KwoksnapError as exc:  # (a broken connection too: it ended the looking, for good: review finding)
                if not isinstance(exc, APIError) or exc.status != 403:
                    log.info("%s is served now, but listing it failed (%s): looked at again later", _named(scope),
                             exc)
                    self._tried.discard((res.group, res.name))
                    return
                log.warning("%s is served now, but listing it is forbidden: not recorded", _named(scope))
                with self._count:
                    self.forbidden.append(_named(scope))
                continue
            listed.append((scope, version, states))
        if not listed:
            return
        log.warning("%s is served now: recorded from %s", res.group_resource, since)
        with self._count:
            self.later.append(f"{res.group_resource} from {since}")
        for scope, version, states in listed:
            for key, obj in states.items():
                self._emit(res, key, None, obj, resource_version_of(obj))
            self._start[scope] = (version, states)
            threads.append(self._thread(scope, stop))

    def _follow(self, scope: _Scope, stop: threading.Event) -> None:
        res, namespace = scope
        version, states = self._start[scope]
        failures = 0
        while not stop.is_set():
            try:
                params: dict[str, str | int] = {"allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
                if version:
                    params["resourceVersion"] = version
                delivered, begun = False, self._timer.now()
                for event in self.client.watch(res.path(namespace), params, stop):
                    failures, delivered = 0, True
                    kind, obj = event.get("type"), event.get("object")
                    if not isinstance(obj, dict):
                        continue
                    if kind == "ERROR":
                        code = obj.get("code")
                        raise APIError(code if isinstance(code, int) else 500, str(obj.get("reason", "")),
                                       str(obj.get("message", "")), method="GET", path=res.path(namespace))
                    version = str(part_of(obj, "metadata").get("resourceVersion") or version)
                    if kind == "BOOKMARK":
                        continue
                    obj.setdefault("apiVersion", res.group_version)
                    obj.setdefault("kind", res.kind)
                    obj = _trimmed(obj)
                    key = _key(obj)
                    self.stats.lines += 1  # (a watch event is one "line" of input)
                    made = parse_resource_version(version)  # (of a deletion too: its object is as deleted)
                    if kind == "DELETED":  # the last state known (with the finalizers whose removal removed it)
                        self._emit(res, key, states.pop(key, None) or obj, None, made)
                    elif kind in ("ADDED", "MODIFIED"):
                        self._emit(res, key, states.get(key), obj, made)
                        states[key] = obj
                # Ended at once, not even a bookmark: asked again later (one that ran its course quiet, where no
                # bookmark is sent, goes on at once: review finding, its next changes were seen up to 8 s late).
                if not delivered and not stop.is_set():
                    quick = self._timer.now() - begun < QUICK_END
                    failures = self._back_off(res, failures, stop) if quick else 0
            except APIError as exc:
                if exc.status in _REFUSED:
                    self._revoke(scope, exc)
                    return
                if exc.status == 410:  # too old: list again; what changed meanwhile is a change of this moment
                    self.relists += 1
                    log.info("%s: the watch expired; listing again", res.key)
                    try:
                        version, states = self._relist(scope, states, stop)
                    except APIError as refused:  # (a 401 or 403: _relist lets only those through)
                        self._revoke(scope, refused)
                        return
                    continue
                failures = self._retry(res, exc, failures, stop)
            except KwoksnapError as exc:  # a broken connection, an API server restarting
                failures = self._retry(res, exc, failures, stop)

    def _revoke(self, scope: _Scope, exc: APIError) -> None:
        """Access to ``scope`` was refused while recording (403; or 401, the credentials refused after the client
        fetched them again: review finding): no retry brings it back, so its watch ends and the recording says from
        when (black-box finding: retried every 8 s to the end, and the summary read as a whole recording)."""
        since = time.strftime("%H:%M:%SZ", time.gmtime(self.clock() / 1e9))
        log.warning("%s: access refused (%s); its changes are not recorded from now on", _named(scope), exc)
        with self._count:
            self.revoked.append(f"{_named(scope)} since {since}")

    def _retry(self, res: Resource, exc: Exception, failures: int, stop: threading.Event) -> int:
        with self._count:
            self.reconnects += 1
        log.warning("%s: the watch broke (%s); going on in %.1f s", res.key, exc, _retry_wait(failures))
        return self._pause(failures, stop)

    def _back_off(self, res: Resource, failures: int, stop: threading.Event) -> int:
        """The API server ended a watch without an event (no change, no bookmark): resumed after a wait that grows
        while it goes on doing so (an API server shutting down, a proxy closing streams), as a broken watch's does,
        not counted as one (the summary's "the watches broke"). A watch that delivers an event resets it."""
        log.info("%s: the API server ended the watch without an event; going on in %.1f s", res.key,
                 _retry_wait(failures))
        return self._pause(failures, stop)

    def _pause(self, failures: int, stop: threading.Event) -> int:
        """Wait the ``failures``-th retry wait (or until ``stop``); the count of failures after this one."""
        self._timer.sleep_until(self._timer.now() + _retry_wait(failures), stop)
        return failures + 1

    def _relist(self, scope: _Scope, states: dict[_Key, Obj],
                stop: threading.Event) -> tuple[str, dict[_Key, Obj]]:
        res = scope[0]
        while not stop.is_set():
            try:
                version, listed = self._list(scope)
            except APIError as exc:
                if exc.status in _REFUSED:
                    raise
                self._retry(res, exc, 1, stop)
                continue
            except KwoksnapError as exc:
                self._retry(res, exc, 1, stop)
                continue
            for key, obj in listed.items():
                old = states.get(key)
                if old is None or part_of(old, "metadata").get("resourceVersion") != part_of(
                        obj, "metadata").get("resourceVersion"):
                    self._emit(res, key, old, obj, resource_version_of(obj))
            for key in states.keys() - listed.keys():  # (deleted by the time of the list: ordered as of it)
                self._emit(res, key, states[key], None, parse_resource_version(version))
            return version, listed
        return "", states

    def _emit(self, res: Resource, key: _Key, old: Obj | None, new: Obj | None, made: int) -> None:
        """Queue the change from ``old`` to ``new`` the API server made at resourceVersion ``made``."""
        with self._count:
            self._changes += 1
            n = self._changes
        ts = self.clock()
        event = EventMaker(res.group, res.version, res.name, key[0], key[1], ts, ident=f"watch-{n}",
                           where=f"watch {res.key} #{n}", user_agent=USER_AGENT)
        change = (made, list(state_changes(event, old, new)))
        if not change[1]:  # (a change no request makes: managedFields alone, a grace period's last step)
            return
        while not self._taken.is_set():  # (a full queue: wait for room, as long as the recording takes changes)
            try:
                self._queue.put(change, timeout=POLL)
                return
            except queue.Full:
                continue


def _retry_wait(failures: int) -> float:
    return RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]


def _named(scope: _Scope) -> str:
    """``pods``, or ``pods in NAMESPACE`` for a scope of ``-n``."""
    res, namespace = scope
    return res.group_resource + (f" in {namespace}" if namespace else "")


def _key(obj: Obj) -> _Key:
    meta = part_of(obj, "metadata")
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _trimmed(obj: Obj) -> Obj:
    """The object without its managedFields (a write's bookkeeping, often most of its size)."""
    meta = part_of(obj, "metadata")
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
