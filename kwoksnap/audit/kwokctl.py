"""A kwokctl recording's changes as audit events, so that replay drives them like an audit log's.

Why this module exists: users of kwok hold recordings made by ``kwokctl snapshot export --record`` (the anchor we
replace): the objects at the start, then one ``ResourcePatch`` per change an informer saw: ``create`` with the
object, ``patch`` with the strategic merge patch from the previous state, ``delete``. ``kwoksnap import`` stores
them as flat event records (docs/format.md). The replay engine reads :class:`AuditEvent`s at RequestResponse level,
as the API server would have logged the same changes, so this module rebuilds each object's state change by change
(:func:`~kwoksnap.audit.smp.apply_patch`, from the recording's starting objects) and splits every change into the
requests that made it, as a cluster makes them:

- a pod's ``spec.nodeName`` set: a ``pods/binding`` create (the scheduler's);
- ``metadata.deletionTimestamp`` set: a graceful ``delete`` with the recorded grace period;
- anything else of the object but its status (labels, finalizers, a Node's taints, a Deployment's replicas): an
  ``update`` with the resulting object;
- its ``status``: an ``update`` of the ``status`` subresource with the resulting object;
- ``delete``: a ``delete`` requiring the recorded UID (a pod's with grace period 0: the recording saw it gone);
- ``create``: a ``create``, and for a pod or node whose recorded status says more than a new one's, the status
  write after it.

A recording names no user, so every change is the recording's own (``--mode verbatim`` only). A patch of an object
the recording never showed whole cannot be rebuilt: it is sent as the patch it is, at Request level (degraded).
The events come out in the recording's time order (kwokctl writes them as its informers deliver them: a small
window puts a late one in its place, as kwok's own replayer does). Never talks to a cluster; never raises on a
malformed record (counted in ``stats``, with where it is).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from kwoksnap.audit.events import AuditEvent
from kwoksnap.audit.smp import apply_patch
from kwoksnap.audit.stats import ParseStats

__all__ = ["REORDER_EVENTS", "USER_AGENT", "recording_events"]

USER_AGENT: Final = "kwokctl-recording"
REORDER_EVENTS: Final = 1024  # events held to put a late one in its place (kwok's replayer holds as many)
# What changes with every write of an object, whoever makes it: not a change of its own to replay.
_BOOKKEEPING: Final = frozenset({"managedFields", "resourceVersion", "generation", "deletionTimestamp",
                                 "deletionGracePeriodSeconds"})
# A new object's status, as the API server leaves it on create: nothing for a status write to add.
_NEW_STATUS_KEYS: Final = frozenset({"phase", "qosClass"})

Obj = dict[str, Any]
_Key = tuple[str, str, str, str]  # (group, resource, namespace, name)


def recording_events(records: Iterable[Mapping[str, Any]], *, source: str, stats: ParseStats | None = None,
                     window: int = REORDER_EVENTS) -> Iterator[AuditEvent]:
    """The audit events of an imported kwokctl recording's records (object records first, then event records)."""
    heap: list[tuple[int, int, AuditEvent]] = []
    order = itertools.count()
    for ev in _translate(records, source, stats):
        heapq.heappush(heap, (ev["ts"], next(order), ev))
        if len(heap) > window:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def _translate(records: Iterable[Mapping[str, Any]], source: str, stats: ParseStats | None) -> Iterator[AuditEvent]:
    states: dict[_Key, Obj] = {}
    for n, rec in enumerate(records, 1):
        kind = rec.get("type")
        if kind == "object":
            obj, parts = rec.get("object"), _split(rec.get("resource"))
            name = _meta(obj).get("name")
            if parts is not None and isinstance(obj, dict) and isinstance(name, str):
                states[(parts[0], parts[2], str(_meta(obj).get("namespace") or ""), name)] = obj
            continue
        if kind != "event":
            continue
        where = f"{source}: record {n}"
        problem = _problem(rec)
        if problem is not None:
            if stats is not None:
                stats.add_malformed(where, problem)
            continue
        if stats is not None:
            stats.events += 1
            stats.formats["kwokctl-recording"] += 1
        yield from _changes(rec, states, where, n)


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
    core_pod = group == "" and resource == "pods"
    steps = itertools.count()

    def event(verb: str, subresource: str, request: Any, response: Any, code: int, level: str = "RequestResponse",
              ) -> AuditEvent:
        step = next(steps)  # one change's requests keep their order: each a nanosecond after the one before
        return AuditEvent(
            ts=ts + step, received=ts + step, auditID=f"kwokctl-{n}-{step}", stage="ResponseComplete", level=level,
            verb=verb, user="", groups=[], userAgent=USER_AGENT, group=group, version=version, resource=resource,
            subresource=subresource, namespace=namespace, name=name,
            uri=_uri(group, version, resource, namespace, name, subresource), code=code, request=request,
            response=response, annotations={}, source=where)

    verb = rec["verb"]
    if verb == "create":
        obj: Obj = rec["object"]
        states[key] = obj
        yield event("create", "", obj, obj, 201)
        status = obj.get("status")
        if (group == "" and resource in ("pods", "nodes") and isinstance(status, dict)
                and (set(status) - _NEW_STATUS_KEYS or status.get("phase") not in (None, "Pending"))):
            yield event("update", "status", obj, obj, 200)
        return
    if verb == "delete":
        old = states.pop(key, None)
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if core_pod:
            options["gracePeriodSeconds"] = 0
        uid = _meta(old).get("uid")
        if isinstance(uid, str) and uid:
            options["preconditions"] = {"uid": uid}
        yield event("delete", "", options, {"apiVersion": "v1", "kind": "Status", "status": "Success"}, 200)
        return
    patch: Obj = rec["patch"]
    old = states.get(key)
    if old is None:  # never seen whole: only the patch itself can be sent (kwok reads the object from the cluster)
        yield event("patch", "", patch, None, 200, level="Request")
        return
    new = apply_patch(old, patch)
    states[key] = new
    node, old_node = _spec(new).get("nodeName"), _spec(old).get("nodeName")
    bound = core_pod and isinstance(node, str) and bool(node) and not old_node
    if bound:
        yield event("create", "binding", {"apiVersion": "v1", "kind": "Binding",
                                          "metadata": {"name": name, "namespace": namespace},
                                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                    {"apiVersion": "v1", "kind": "Status", "status": "Success"}, 201)
    if _own_part(old, node if bound else None) != _own_part(new, None):
        yield event("update", "", new, new, 200)
    if old.get("status") != new.get("status"):
        yield event("update", "status", new, new, 200)
    deleted = _meta(new).get("deletionTimestamp")
    if deleted and not _meta(old).get("deletionTimestamp"):
        options = {"apiVersion": "v1", "kind": "DeleteOptions"}
        grace = _meta(new).get("deletionGracePeriodSeconds")
        if isinstance(grace, int) and not isinstance(grace, bool):
            options["gracePeriodSeconds"] = grace
        uid = _meta(new).get("uid")
        if isinstance(uid, str) and uid:
            options["preconditions"] = {"uid": uid}
        yield event("delete", "", options, new, 200)


def _meta(obj: Any) -> Obj:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Any) -> Obj:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    return spec if isinstance(spec, dict) else {}


def _own_part(obj: Obj, node: str | None) -> Obj:
    """What an update of the object itself (not its status) changes: all but its status and the bookkeeping every
    write changes; with ``node``, the pod as its binding leaves it."""
    part = {k: v for k, v in obj.items() if k != "status"}
    part["metadata"] = {k: v for k, v in _meta(obj).items() if k not in _BOOKKEEPING}
    if node is not None:
        part["spec"] = {**_spec(obj), "nodeName": node}
    return part


def _uri(group: str, version: str, resource: str, namespace: str, name: str, subresource: str) -> str:
    path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}/{name}"
    return path + (f"/{subresource}" if subresource else "")
