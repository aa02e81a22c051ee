"""A kwokctl recording's changes as audit events, so that replay drives them like an audit log's.

Why this module exists: users of kwok hold recordings made by ``kwokctl snapshot export --record`` (the anchor we
replace): the objects at the start, then one ``ResourcePatch`` per change an informer saw: ``create`` with the
object, ``patch`` with the strategic merge patch from the previous state, ``delete``. ``kwoksnap import`` stores
them as flat event records (docs/format.md). The replay engine reads :class:`AuditEvent`s at RequestResponse level,
as the API server would have logged the same changes, so this module rebuilds each object's state change by change
(:func:`~kwoksnap.audit.smp.apply_patch`, from the recording's starting objects) and splits every change into the
requests that made it (:func:`~kwoksnap.audit.changes.state_changes`).

A recording names no user, so every change is the recording's own (``--mode verbatim`` only). A patch of an object
the recording never showed whole cannot be rebuilt: it is sent as the patch it is (its status part to ``status``),
at Request level (degraded). The events come out in the recording's time order: kwokctl writes them as its
informers deliver them, and a window of 1,024 puts a late one in its place. Never talks to a cluster; never raises
on a malformed record (counted in ``stats``, with where it is).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from kwoksnap.audit.changes import EventMaker, part_of, state_changes
from kwoksnap.audit.events import AuditEvent
from kwoksnap.audit.smp import apply_patch
from kwoksnap.audit.stats import ParseStats
from kwoksnap.errors import InputError
from kwoksnap.store.kwokyaml import split_resource

__all__ = ["OWNER_WAIT_NS", "REORDER_EVENTS", "USER_AGENT", "owners_first", "recording_events"]

USER_AGENT: Final = "kwokctl-recording"
REORDER_EVENTS: Final = 1024  # events held to put a late one in its place

Obj = dict[str, Any]
_Key = tuple[str, str, str, str]  # (group, resource, namespace, name)


def recording_events(records: Iterable[Mapping[str, Any]], *, source: str, stats: ParseStats | None = None,
                     window: int = REORDER_EVENTS, known: set[str] | None = None) -> Iterator[AuditEvent]:
    """The audit events of an imported kwokctl recording's records (object records first, then event records).
    The UIDs of its objects (the state it starts from) are added to ``known`` (for :func:`owners_first`).

    Their times are the changes' times, made strictly increasing (a nanosecond apart where they tie): the requests
    of one change, and two changes of an object recorded in the same nanosecond, keep their order through any
    later sort by time (review finding: two changes of a pod at one time came out interleaved, the older phase
    last)."""
    heap: list[tuple[int, int, AuditEvent]] = []
    order = itertools.count()
    last = -(2**63)

    def labelled(ev: AuditEvent) -> AuditEvent:
        nonlocal last
        last = max(ev["ts"], last + 1)
        ev["ts"] = ev["received"] = last
        if stats is not None:
            stats.events += 1
            stats.formats["kwokctl-recording"] += 1
        return ev

    for ev in _translate(records, source, stats, set() if known is None else known):
        heapq.heappush(heap, (ev["ts"], next(order), ev))
        if len(heap) > window:
            yield labelled(heapq.heappop(heap)[2])
    while heap:
        yield labelled(heapq.heappop(heap)[2])


def _translate(records: Iterable[Mapping[str, Any]], source: str, stats: ParseStats | None,
               known: set[str]) -> Iterator[AuditEvent]:
    states: dict[_Key, Obj] = {}
    for n, rec in enumerate(records, 1):
        kind = rec.get("type")
        if kind == "object":
            obj, parts = rec.get("object"), _split(rec.get("resource"))
            name, uid = part_of(obj, "metadata").get("name"), part_of(obj, "metadata").get("uid")
            if parts is not None and isinstance(obj, dict) and isinstance(name, str):
                states[(parts[0], parts[2], str(part_of(obj, "metadata").get("namespace") or ""), name)] = obj
                if isinstance(uid, str) and uid:
                    known.add(uid)
            continue
        if kind != "event":
            continue
        where = f"{source}: record {n}"
        problem = _problem(rec)
        if problem is not None:
            if stats is not None:
                stats.add_malformed(where, problem)
            continue
        yield from _changes(rec, states, where, n)


OWNER_WAIT_NS: Final = 2_000_000_000  # recorded time a create waits for the create of an owner it names


def owners_first(events: Iterable[AuditEvent], known: set[str], *,
                 wait_ns: int = OWNER_WAIT_NS) -> Iterator[AuditEvent]:
    """``events`` (merged by time) with a create that names an owner neither ``known`` nor created yet held back,
    with every later change of its object, until the owner's create has passed (then timed just after it), or for
    ``wait_ns`` of recorded time (then let go as they were).

    kwokctl starts an informer per resource and times each change when its informer delivers it, so across
    resources its times are not causal (black-box finding: a Job's pods recorded 0.2 s before the Job; replayed in
    that order, they lost their owner reference, which the target's copy then lacked for good)."""
    held: dict[tuple[str, str, str, str], list[AuditEvent]] = {}
    missing: dict[tuple[str, str, str, str], set[str]] = {}  # a held object -> the owners it waits for
    deadlines: list[tuple[int, int, tuple[str, str, str, str]]] = []
    order = itertools.count()

    def let_go(key: tuple[str, str, str, str], after: int | None) -> Iterator[AuditEvent]:
        missing.pop(key, None)
        for ev in held.pop(key, ()):
            if after is not None and ev["ts"] <= after:
                after += 1
                ev["ts"] = ev["received"] = after
            yield ev

    for ev in events:
        while deadlines and deadlines[0][0] < ev["ts"]:
            yield from let_go(heapq.heappop(deadlines)[2], None)
        key = (ev["group"], ev["resource"], ev["namespace"], ev["name"])
        if key in held:
            held[key].append(ev)
            continue
        if ev["verb"] != "create" or ev["subresource"]:
            yield ev
            continue
        meta = part_of(ev["response"], "metadata")
        owners = {ref["uid"] for ref in meta.get("ownerReferences") or () if isinstance(ref, dict)
                  and isinstance(ref.get("uid"), str) and ref["uid"] and ref["uid"] not in known}
        if owners:
            held[key], missing[key] = [ev], owners
            heapq.heappush(deadlines, (ev["ts"] + wait_ns, next(order), key))
            continue
        uid = meta.get("uid")
        yield ev
        if isinstance(uid, str) and uid:
            known.add(uid)
            for waiting in [k for k, owners in missing.items() if uid in owners]:
                missing[waiting].discard(uid)
                if not missing[waiting]:
                    yield from let_go(waiting, ev["ts"])
    for _, _, key in sorted(deadlines):
        yield from let_go(key, None)


def _split(resource: Any) -> tuple[str, str, str] | None:
    """(group, version, plural) of a record's resource key, None if it is not one."""
    try:
        return split_resource(resource) if isinstance(resource, str) else None
    except InputError:
        return None


def _problem(rec: Mapping[str, Any]) -> str | None:
    """Why an event record is not one ``import`` writes (None if it is)."""
    if _split(rec.get("resource")) is None:
        return "the event's resource is not 'version/plural' or 'group/version/plural'"
    if type(rec.get("ts")) is not int:
        return "the event's 'ts' is not an integer"
    if not isinstance(rec.get("name"), str) or not rec["name"] or not isinstance(rec.get("namespace"), str):
        return "the event lacks a name or its namespace is not a string"
    verb = rec.get("verb")
    if verb == "create" and not isinstance(rec.get("object"), dict):
        return "a create without its object"
    if verb == "patch" and not isinstance(rec.get("patch"), dict):
        return "a patch without its patch"
    if verb not in ("create", "patch", "delete"):
        return f"the verb {verb!r} is not create, patch or delete"
    return None


def _changes(rec: Mapping[str, Any], states: dict[_Key, Obj], where: str, n: int) -> Iterator[AuditEvent]:
    group, version, resource = _split(rec["resource"])  # type: ignore[misc]
    namespace, name, ts = rec["namespace"], rec["name"], rec["ts"]
    key = (group, resource, namespace, name)
    event = EventMaker(group, version, resource, namespace, name, ts, ident=f"kwokctl-{n}", where=where,
                       user_agent=USER_AGENT)
    verb = rec["verb"]
    if verb == "create":
        states[key] = rec["object"]
        yield from state_changes(event, None, rec["object"])
        return
    if verb == "delete":
        yield from state_changes(event, states.pop(key, None), None)
        return
    patch: Obj = rec["patch"]
    old = states.get(key)
    if old is None:  # never seen whole: only the patch itself can be sent, its status part to the subresource
        main = {k: v for k, v in patch.items() if k != "status"}
        if main:
            yield event("patch", "", main, None, 200, level="Request")
        if "status" in patch:
            yield event("patch", "status", {"status": patch["status"]}, None, 200, level="Request")
        return
    new = apply_patch(old, patch)
    states[key] = new
    yield from state_changes(event, old, new)
