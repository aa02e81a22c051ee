"""A kwokctl recording's changes as audit events, so that replay drives them like an audit log's.

Why this module exists: users of kwok hold recordings made by ``kwokctl snapshot export --record`` (the anchor we
replace): the objects at the start, then one ``ResourcePatch`` per change an informer saw: ``create`` with the
object, ``patch`` with the strategic merge patch from the previous state, ``delete``. ``kwoksnap import`` stores
them as flat event records (docs/format.md). The replay engine reads :class:`AuditEvent`s at RequestResponse level,
as the API server would have logged the same changes, so this module rebuilds each object's state change by change
(:func:`~kwoksnap.audit.smp.apply_patch`, from the recording's starting objects) and splits every change into the
requests that made it, as a cluster makes them, in this order:

- a pod's ``spec.nodeName`` set: a ``pods/binding`` create (the scheduler's);
- ``metadata.deletionTimestamp`` set (or brought forward): a ``delete`` with the recorded grace period and the
  propagation policy its finalizer says (``foregroundDeletion``, ``orphan``); what the delete itself changes (those
  fields, a Namespace's phase) is no change of its own;
- a field only a subresource writes: a Namespace's ``spec.finalizers`` (``finalize``), a pod's
  ``spec.ephemeralContainers`` (``ephemeralcontainers``);
- anything else of the object but its status (labels, finalizers, a Node's taints, a Deployment's replicas): an
  ``update`` with the resulting object;
- its ``status``: an ``update`` of the ``status`` subresource with the resulting object;
- ``delete``: a ``delete`` requiring the recorded UID (a pod's with grace period 0: the recording saw it gone);
- ``create``: a ``create``, and for a pod or node whose recorded status says more than a new one's, the status
  write after it.

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

from kwoksnap.audit.events import AuditEvent
from kwoksnap.audit.smp import apply_patch
from kwoksnap.audit.stats import ParseStats

__all__ = ["OWNER_WAIT_NS", "REORDER_EVENTS", "USER_AGENT", "owners_first", "recording_events"]

USER_AGENT: Final = "kwokctl-recording"
REORDER_EVENTS: Final = 1024  # events held to put a late one in its place
# What changes with every write of an object, whoever makes it: not a change of its own to replay.
_BOOKKEEPING: Final = frozenset({"managedFields", "resourceVersion", "generation", "deletionTimestamp",
                                 "deletionGracePeriodSeconds"})
# A new object's status, as the API server leaves it on create: nothing for a status write to add.
_NEW_STATUS_KEYS: Final = frozenset({"phase", "qosClass"})

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
            name, uid = _part(obj, "metadata").get("name"), _part(obj, "metadata").get("uid")
            if parts is not None and isinstance(obj, dict) and isinstance(name, str):
                states[(parts[0], parts[2], str(_part(obj, "metadata").get("namespace") or ""), name)] = obj
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
        meta = _part(ev["response"], "metadata")
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
    parts = resource.split("/") if isinstance(resource, str) else []
    if len(parts) == 2 and all(parts):
        return "", parts[0], parts[1]
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
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
    core = group == ""
    steps = itertools.count()

    def event(verb: str, subresource: str, request: Any, response: Any, code: int, level: str = "RequestResponse",
              ) -> AuditEvent:
        step = next(steps)
        return AuditEvent(
            ts=ts, received=ts, auditID=f"kwokctl-{n}-{step}", stage="ResponseComplete", level=level, verb=verb,
            user="", groups=[], userAgent=USER_AGENT, group=group, version=version, resource=resource,
            subresource=subresource, namespace=namespace, name=name,
            uri=_uri(group, version, resource, namespace, name, subresource), code=code, request=request,
            response=response, annotations={}, source=where)

    verb = rec["verb"]
    if verb == "create":
        obj: Obj = rec["object"]
        states[key] = obj
        yield event("create", "", obj, obj, 201)
        status = obj.get("status")
        if (core and resource in ("pods", "nodes") and isinstance(status, dict)
                and (set(status) - _NEW_STATUS_KEYS or status.get("phase") not in (None, "Pending"))):
            yield event("update", "status", obj, obj, 200)
        return
    if verb == "delete":
        old = states.pop(key, None)
        if old is not None and _finalizers(old):
            # The write that removed its last finalizer removed it too, so the recorder saw no change before it
            # went (black-box finding: a pod and a ConfigMap with a finalizer, a Job's pod with its tracking
            # finalizer, a foreground deletion: left Terminating in the target, where no controller finishes them).
            cleared = {**old, "metadata": {**_part(old, "metadata"), "finalizers": []}}
            yield event("update", "", cleared, cleared, 200)
            if _removed_by_update(cleared):
                return
        # Background: the recorder saw it gone (batch/v1 Jobs default to orphaning their pods, and the orphan
        # finalizer kept a Job Terminating: black-box finding).
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if core and resource == "pods":
            options["gracePeriodSeconds"] = 0
        yield event("delete", "", _required(options, old), _SUCCESS, 200)
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
    before = old  # what the requests of this change have made of the object so far

    node = _part(new, "spec").get("nodeName")
    if core and resource == "pods" and isinstance(node, str) and node and not _part(old, "spec").get("nodeName"):
        yield event("create", "binding", {"apiVersion": "v1", "kind": "Binding",
                                          "metadata": {"name": name, "namespace": namespace},
                                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                    _SUCCESS, 201)
        before = _with(before, "spec", nodeName=node)

    meta = _part(new, "metadata")
    deleted, was = meta.get("deletionTimestamp"), _part(old, "metadata").get("deletionTimestamp")
    if deleted and deleted != was:  # the deletion began, or a shorter grace period brought it forward
        # A pod deleted at once (grace period 0: kwok's pod-delete stage, a forced delete) is marked, then removed
        # by the same request: the recording's delete that follows is that request (real-cluster finding: sent for
        # both, the second found the pod gone). Unless a finalizer keeps it.
        if not (core and resource == "pods" and meta.get("deletionGracePeriodSeconds") == 0
                and not _finalizers(new)):
            yield from _deletion(event, before, new)
        before = _deleted(before, new, group, resource)

    for sub, part, field in _SUBRESOURCE_FIELDS.get((group, resource), ()):
        if _part(before, part).get(field) != _part(new, part).get(field):  # (a write of the object ignores it)
            yield event("update", sub, new, new, 200)
            fields = {k: v for k, v in _part(before, part).items() if k != field}
            if field in _part(new, part):
                fields[field] = _part(new, part)[field]
            before = {**before, part: fields}
    if _own_part(before) != _own_part(new):
        yield event("update", "", new, new, 200)
    if before.get("status") != new.get("status"):
        yield event("update", "status", new, new, 200)


# Fields only a subresource writes: (group, resource) -> (subresource, part of the object, field).
_SUBRESOURCE_FIELDS: Final = {("", "namespaces"): (("finalize", "spec", "finalizers"),),
                              ("", "pods"): (("ephemeralcontainers", "spec", "ephemeralContainers"),)}
# The finalizers a delete adds for its propagation policy.
_PROPAGATION: Final = (("foregroundDeletion", "Foreground"), ("orphan", "Orphan"))
_SUCCESS: Final = {"apiVersion": "v1", "kind": "Status", "status": "Success"}


def _deletion(event: Any, before: Obj, new: Obj) -> Iterator[AuditEvent]:
    """The delete that set ``new``'s deletionTimestamp: its grace period, the propagation policy its finalizer
    says, the UID it required."""
    meta = _part(new, "metadata")
    options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
    grace = meta.get("deletionGracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool):
        options["gracePeriodSeconds"] = grace
    added = set(_finalizers(new)) - set(_finalizers(before))
    policy = next((p for f, p in _PROPAGATION if f in added), None)
    if policy is not None:
        options["propagationPolicy"] = policy
    yield event("delete", "", _required(options, new), new, 200)


def _deleted(before: Obj, new: Obj, group: str, resource: str) -> Obj:
    """``before`` as the delete left it: the deletion fields, the propagation finalizer, a Namespace Terminating."""
    meta = _part(new, "metadata")
    after = _with(before, "metadata", **{k: meta.get(k) for k in ("deletionTimestamp", "deletionGracePeriodSeconds")})
    finalizers = _finalizers(before)
    added = [f for f, _ in _PROPAGATION if f in _finalizers(new) and f not in finalizers]
    if added:
        after = _with(after, "metadata", finalizers=[*finalizers, *added[:1]])
    if group == "" and resource == "namespaces":
        after = _with(after, "status", phase="Terminating")
    return after


def _removed_by_update(obj: Obj) -> bool:
    """Whether the API server removes an object being deleted when an update leaves it so: no finalizer, and no
    grace period left (genericregistry's ShouldDeleteDuringUpdate)."""
    meta = _part(obj, "metadata")
    return bool(meta.get("deletionTimestamp") and not meta.get("finalizers")
                and meta.get("deletionGracePeriodSeconds") in (None, 0))


def _required(options: Obj, obj: Any) -> Obj:
    """DeleteOptions requiring ``obj``'s UID, when it is known."""
    uid = _part(obj, "metadata").get("uid")
    return {**options, "preconditions": {"uid": uid}} if isinstance(uid, str) and uid else options


def _finalizers(obj: Obj) -> list[Any]:
    finalizers = _part(obj, "metadata").get("finalizers")
    return finalizers if isinstance(finalizers, list) else []


def _with(obj: Obj, part: str, **fields: Any) -> Obj:
    """A copy of ``obj`` whose ``part`` map has ``fields`` set (a shallow copy: nothing shared is changed)."""
    return {**obj, part: {**_part(obj, part), **fields}}


def _part(obj: Any, part: str) -> Obj:
    """``obj[part]`` if it is a map, else an empty one."""
    value = obj.get(part) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _own_part(obj: Obj) -> Obj:
    """What an update of the object itself changes: all but its status and the bookkeeping every write changes."""
    part = {k: v for k, v in obj.items() if k != "status"}
    part["metadata"] = {k: v for k, v in _part(obj, "metadata").items() if k not in _BOOKKEEPING}
    return part


def _uri(group: str, version: str, resource: str, namespace: str, name: str, subresource: str) -> str:
    path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}/{name}"
    return path + (f"/{subresource}" if subresource else "")
