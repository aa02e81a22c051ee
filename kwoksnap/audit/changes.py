"""The requests that take an object from one state to the next, as the audit events a cluster would log.

Why this module exists: recordings that hold states rather than requests (kwokctl's, a watch's: an object as it
was after each change) must become the requests that made each change, as the API server would have logged them,
for the replay engine to send. kwokctl's recordings (:mod:`kwoksnap.audit.kwokctl`) and ``kwoksnap record``'s
watch both go through :func:`state_changes`, which makes them in this order (docs/audit.md §14):

- a pod's ``spec.nodeName`` set: a ``pods/binding`` create (the scheduler's);
- ``metadata.deletionTimestamp`` set (or brought forward): a ``delete`` with the recorded grace period and the
  propagation policy its finalizer says (``foregroundDeletion``, ``orphan``); what the delete itself changes (those
  fields, a Namespace's phase) is no change of its own;
- a field only a subresource writes: a Namespace's ``spec.finalizers`` (``finalize``), a pod's
  ``spec.ephemeralContainers`` (``ephemeralcontainers``), its containers' ``resources`` (``resize``);
- anything else of the object but its status (labels, finalizers, a Node's taints, a Deployment's replicas): an
  ``update`` with the resulting object;
- its ``status``: an ``update`` of the ``status`` subresource with the resulting object;
- gone: a ``delete`` requiring the recorded UID, propagating in the background (a pod's with grace period 0: the
  recorder saw it gone), after an update clearing the finalizers its last state held (whose removal removed it);
- new: a ``create``, and for a pod or node whose recorded status says more than a new one's, the status
  write after it;
- another incarnation (a UID other than the state before's): the old one gone, then the new one new.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Final

from kwoksnap.audit.events import AuditEvent
from kwoksnap.kube.discovery import Resource

__all__ = ["EventMaker", "part_of", "removed_by_update", "state_changes"]

Obj = dict[str, Any]
# What changes with every write of an object, whoever makes it: not a change of its own to replay.
_BOOKKEEPING: Final = frozenset({"managedFields", "resourceVersion", "generation", "deletionTimestamp",
                                 "deletionGracePeriodSeconds"})
# A new object's status, as the API server leaves it on create: nothing for a status write to add.
_NEW_STATUS_KEYS: Final = frozenset({"phase", "qosClass"})


class EventMaker:
    """Makes the audit events of one change of one object: at its time, each with the next step of ``ident``."""

    def __init__(self, group: str, version: str, resource: str, namespace: str, name: str, ts: int, *,
                 ident: str, where: str, user_agent: str) -> None:
        self.group, self.version, self.resource, self.namespace, self.name = group, version, resource, namespace, name
        self.ts, self.ident, self.where, self.user_agent = ts, ident, where, user_agent
        self._steps = itertools.count()

    def __call__(self, verb: str, subresource: str, request: Any, response: Any, code: int,
                 level: str = "RequestResponse") -> AuditEvent:
        step = next(self._steps)
        return AuditEvent(
            ts=self.ts, received=self.ts, auditID=f"{self.ident}-{step}", stage="ResponseComplete", level=level,
            verb=verb, user="", groups=[], userAgent=self.user_agent, group=self.group, version=self.version,
            resource=self.resource, subresource=subresource, namespace=self.namespace, name=self.name,
            uri=Resource(self.group, self.version, self.resource, "", bool(self.namespace), frozenset()).path(
                self.namespace, self.name, subresource), code=code,
            request=request, response=response, annotations={}, source=self.where)


def state_changes(event: EventMaker, old: Obj | None, new: Obj | None) -> Iterator[AuditEvent]:
    """The requests that took the object from ``old`` to ``new`` (None: it did not exist, or is gone)."""
    group, resource, name, namespace = event.group, event.resource, event.name, event.namespace
    core = group == ""
    if old is None and new is not None:
        yield event("create", "", new, new, 201)
        status = new.get("status")
        if (core and resource in ("pods", "nodes") and isinstance(status, dict)
                and (set(status) - _NEW_STATUS_KEYS or status.get("phase") not in (None, "Pending"))):
            yield event("update", "status", new, new, 200)
        return
    if new is None:
        if old is not None and _finalizers(old):
            # The write that removed its last finalizer removed it too, so the recorder saw no change before it
            # went (black-box finding: a pod and a ConfigMap with a finalizer, a Job's pod with its tracking
            # finalizer, a foreground deletion: left Terminating in the target, where no controller finishes them).
            cleared = {**old, "metadata": {**part_of(old, "metadata"), "finalizers": []}}
            yield event("update", "", cleared, cleared, 200)
            if removed_by_update(cleared):
                return
        # Background: the recorder saw it gone (batch/v1 Jobs default to orphaning their pods, and the orphan
        # finalizer kept a Job Terminating: black-box finding).
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if core and resource == "pods":
            options["gracePeriodSeconds"] = 0
        yield event("delete", "", _required(options, old), _SUCCESS, 200)
        return
    assert old is not None
    old_uid, new_uid = part_of(old, "metadata").get("uid"), part_of(new, "metadata").get("uid")
    if old_uid and new_uid and old_uid != new_uid:
        # Another incarnation under the same name (a StatefulSet's or a Job's pod made again while a watch was
        # away): the old one went, the new one came (review finding: one update, written over the old copy).
        yield from state_changes(event, old, None)
        yield from state_changes(event, None, new)
        return
    before = old  # what the requests of this change have made of the object so far

    node = part_of(new, "spec").get("nodeName")
    if core and resource == "pods" and isinstance(node, str) and node and not part_of(old, "spec").get("nodeName"):
        yield event("create", "binding", {"apiVersion": "v1", "kind": "Binding",
                                          "metadata": {"name": name, "namespace": namespace},
                                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                    _SUCCESS, 201)
        before = _with(before, "spec", nodeName=node)

    meta = part_of(new, "metadata")
    deleted, was = meta.get("deletionTimestamp"), part_of(old, "metadata").get("deletionTimestamp")
    if deleted and deleted != was:  # the deletion began, or a shorter grace period brought it forward
        # A pod deleted at once (grace period 0: kwok's pod-delete stage, a forced delete) is marked, then removed
        # by the same request: the recording's delete that follows is that request (real-cluster finding: sent for
        # both, the second found the pod gone). Unless a finalizer keeps it.
        if not (core and resource == "pods" and meta.get("deletionGracePeriodSeconds") == 0
                and not _finalizers(new)):
            yield from _deletion(event, before, new)
        before = _deleted(before, new, group, resource)

    for sub, part, field in _SUBRESOURCE_FIELDS.get((group, resource), ()):
        if part_of(before, part).get(field) != part_of(new, part).get(field):  # (a write of the object ignores it)
            yield event("update", sub, new, new, 200)
            fields = {k: v for k, v in part_of(before, part).items() if k != field}
            if field in part_of(new, part):
                fields[field] = part_of(new, part)[field]
            before = {**before, part: fields}
    if core and resource == "pods" and _resources(before) != _resources(new):
        # An in-place resize goes through its subresource: a write of the pod whole may not change resources.
        yield event("update", "resize", new, new, 200)
        resized = dict(_resources(new))
        before = _with(before, "spec", **{
            field: [{**c, "resources": resized[c["name"]]} if isinstance(c, dict) and c.get("name") in resized
                    and (c.get("resources") or {}) != resized[c["name"]] else c
                    for c in part_of(before, "spec").get(field) or ()]
            for field in ("initContainers", "containers") if isinstance(part_of(before, "spec").get(field), list)})
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


def _deletion(event: EventMaker, before: Obj, new: Obj) -> Iterator[AuditEvent]:
    """The delete that set ``new``'s deletionTimestamp: its grace period, the propagation policy its finalizer
    says, the UID it required."""
    meta = part_of(new, "metadata")
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
    meta = part_of(new, "metadata")
    after = _with(before, "metadata", **{k: meta.get(k) for k in ("deletionTimestamp", "deletionGracePeriodSeconds")})
    finalizers = _finalizers(before)
    added = [f for f, _ in _PROPAGATION if f in _finalizers(new) and f not in finalizers]
    if added:
        after = _with(after, "metadata", finalizers=[*finalizers, *added[:1]])
    if group == "" and resource == "namespaces":
        after = _with(after, "status", phase="Terminating")
    return after


def removed_by_update(obj: Obj) -> bool:
    """Whether the write that resulted in ``obj`` removed it: the API server deletes an object being deleted once an
    update leaves it without finalizers, if its deletion has no grace period left (0 or none; genericregistry's
    ShouldDeleteDuringUpdate). Unscheduled and terminal pods get 0 when deleted."""
    meta = part_of(obj, "metadata")
    return bool(meta.get("deletionTimestamp") and not meta.get("finalizers")
                and meta.get("deletionGracePeriodSeconds") in (None, 0))


def _required(options: Obj, obj: Any) -> Obj:
    """DeleteOptions requiring ``obj``'s UID, when it is known."""
    uid = part_of(obj, "metadata").get("uid")
    return {**options, "preconditions": {"uid": uid}} if isinstance(uid, str) and uid else options


def _finalizers(obj: Obj) -> list[Any]:
    finalizers = part_of(obj, "metadata").get("finalizers")
    return finalizers if isinstance(finalizers, list) else []


def _with(obj: Obj, part: str, **fields: Any) -> Obj:
    """A copy of ``obj`` whose ``part`` map has ``fields`` set (a shallow copy: nothing shared is changed)."""
    return {**obj, part: {**part_of(obj, part), **fields}}


def _resources(pod: Obj) -> list[tuple[Any, Any]]:
    """Each container's (init containers' too) name and resources: what an in-place resize changes."""
    spec = part_of(pod, "spec")
    return [(c.get("name"), c.get("resources") or {}) for field in ("initContainers", "containers")
            for c in spec.get(field) or () if isinstance(c, dict)] if isinstance(spec, dict) else []


def part_of(obj: Any, part: str) -> Obj:
    """``obj[part]`` if it is a map, else an empty one."""
    value = obj.get(part) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _own_part(obj: Obj) -> Obj:
    """What an update of the object itself changes: all but its status and the bookkeeping every write changes."""
    part = {k: v for k, v in obj.items() if k != "status"}
    part["metadata"] = {k: v for k, v in part_of(obj, "metadata").items() if k not in _BOOKKEEPING}
    return part
