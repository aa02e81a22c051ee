"""From one audit event to the API request that re-applies it: pure, no I/O.

Why this module exists: the rules that turn "what the source API server recorded" into "what to send the target"
are the core of replay fidelity, and they must be unit-testable on their own. By level:

- RequestResponse: the resulting object (responseObject) is re-applied: create -> POST it, update/patch -> PUT it
  (resourceVersion stripped), status writes -> PUT to the status subresource.
- Request: the recorded body is sent with the same verb; a patch keeps its inferred patch type.
- At both levels, a UID precondition of the recorded request becomes the target UID of the same object when replay
  has seen it (created or written by the replay), else it is dropped; resourceVersion preconditions are dropped.
- Metadata: only what needs no body: deletes, and node Lease renewals by their kubelets (kwok) (renewTime set to
  the replay time).
  Everything else is counted as degraded and skipped.
- A collection delete is split into one named delete per object its recorded response lists
  (:func:`split_collection_deletes`, ``verbatim``); without that list, or in ``inputs`` mode, it is sent again
  with its selectors.

Objects whose status the replay drives (pods and nodes in ``verbatim`` mode) carry the ``kwoksnap.io/frozen``
annotation, so kwok's stages and heartbeats leave them to the recording.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from kwoksnap.audit import Actor, AuditEvent, classify, infer_patch_type
from kwoksnap.kube.client import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from kwoksnap.replay.timing import REORDER_WINDOW_NS, shift_times
from kwoksnap.restore.transform import (
    FAKE_NODE_ANNOTATION,
    FROZEN_ANNOTATION,
    SERVER_MANAGED,
    copied,
    keep_job_selector,
)

Obj = dict[str, Any]
Mode = Literal["verbatim", "inputs"]
PATCH_CONTENT = {"json": JSON_PATCH, "merge": MERGE_PATCH, "strategic": STRATEGIC_MERGE_PATCH,
                 "apply": APPLY_PATCH}
NODE_LEASE_NAMESPACE = "kube-node-lease"


@dataclasses.dataclass
class Action:
    """One request to send. ``key`` orders actions on the same object; ``state`` is the recorded result."""

    op: Literal["create", "replace", "status", "patch", "delete", "deletecollection", "bind", "renew"]
    method: str
    group: str
    version: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""
    body: Any = None
    content_type: str = "application/json"
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    state: Obj | None = None  # the recorded resulting object (RequestResponse), for fidelity and create-if-missing
    # The source UID the recorded request required (DeleteOptions preconditions, a patch's or update's metadata.uid).
    # The engine sends the target UID it learned for it as the same precondition, or none if it never saw it.
    source_uid: str = ""
    # The recorded result's metadata when it was all the log holds (a metadata-only client's PartialObjectMetadata):
    # which owner references the patch left (Replayer._relink_patch_owners).
    result_meta: Obj | None = None
    # A write that created its object in the source (a server-side apply patch answered 201): others wait for it in
    # flight as for a create (an owner's, before its dependents' creates name it).
    creates: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.resource, self.namespace, self.name)


@dataclasses.dataclass(frozen=True)
class Skip:
    reason: str  # "degraded-metadata", "degraded-request", "unsupported-subresource", ...


def owns_status(resource: str, group: str, mode: Mode) -> bool:
    """Whether replay drives this object's status (so kwok must leave it alone)."""
    return mode == "verbatim" and group == "" and resource in ("pods", "nodes")


def clean_body(obj: Obj, *, mode: Mode, resource: str, group: str,
               to_replay: Callable[[int], int] | None) -> Obj:
    """A recorded object made sendable: server metadata and owner UIDs stripped (owners are relinked by name by
    the engine), kwoksnap's annotations added, event times moved onto the replay clock.

    Copy on write: the result's own top level and metadata (its annotations too, when they are added to), the
    rest shared with ``obj`` (the recorded state, which fidelity reads), so nothing may change it in place below
    that; the one exception, a Job (its selector kept here and by the engine), is copied whole. A deep copy of
    every body was a fifth of the replay's own CPU time at --speed max."""
    body = copied(obj) if obj.get("kind") == "Job" else dict(obj)
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in SERVER_MANAGED}
    body["metadata"] = meta
    added = {}
    if resource == "nodes" and group == "":
        added[FAKE_NODE_ANNOTATION] = "fake"
    if owns_status(resource, group, mode):
        added[FROZEN_ANNOTATION] = "true"
    if added:
        annotations = meta.get("annotations")
        meta["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), **added}
    if body.get("kind") == "Job":
        keep_job_selector(body)  # as restore does
    if to_replay is not None:
        shifted: Obj = shift_times(body, to_replay, resource, group)
        return shifted
    return body


JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def precondition_uid(body: Any) -> str:
    """The UID a recorded request body required of its object: DeleteOptions ``preconditions.uid``, an update's or
    a merge patch's ``metadata.uid``, a JSON patch's ``test`` of ``/metadata/uid``; "" if none."""
    if isinstance(body, dict):
        pre = body.get("preconditions")
        meta = body.get("metadata")
        uid = (pre.get("uid") if isinstance(pre, dict) else None) or (
            meta.get("uid") if isinstance(meta, dict) else None)
        return uid if isinstance(uid, str) else ""
    if isinstance(body, list):
        for op in body:
            if isinstance(op, dict) and op.get("op") == "test" and op.get("path") == "/metadata/uid":
                return str(op.get("value") or "")
    return ""


def with_uid_precondition(action: Action, uid: str) -> Any:
    """``action``'s body requiring the target object's UID to be ``uid``, in the form its request takes."""
    body = action.body
    if action.op == "delete":
        return {**(body or {}), "preconditions": {"uid": uid}}
    if isinstance(body, list):  # JSON patch: a test operation first
        return [{"op": "test", "path": "/metadata/uid", "value": uid}, *body]
    if isinstance(body, dict):
        return {**body, "metadata": {**(body.get("metadata") or {}), "uid": uid}}
    return body


def _strip_preconditions(body: Any) -> Any:
    """Patch and DeleteOptions bodies carry source UIDs/resourceVersions as preconditions; the engine puts the
    target's UID back (:func:`with_uid_precondition`) when it knows it. resourceVersions are never sent: a replay
    skips writes on purpose (coalesced lease renewals, degraded events, controllers in inputs mode), so the
    target's resourceVersion after "the same" write is not a faithful counterpart."""
    if isinstance(body, dict):
        out = dict(body)
        meta = out.get("metadata")
        if isinstance(meta, dict):
            meta = {k: v for k, v in meta.items() if k not in ("uid", "resourceVersion")}
            if meta:
                out["metadata"] = meta
            else:
                out.pop("metadata")
        out.pop("preconditions", None)
        return out
    if isinstance(body, list):  # JSON patch: drop "test" operations on uid/resourceVersion, keep every other guard;
        # and a resourceVersion set by replace/add (kubectl's server-side-apply migration: the patch is refused
        # unless it is the object's current one: black-box finding, 409). (A uid is never changed by a write.)
        return [op for op in body if not (isinstance(op, dict) and (
            (op.get("op") == "test" and op.get("path") in _PRECONDITION_PATHS)
            or (op.get("op") in ("replace", "add") and op.get("path") == "/metadata/resourceVersion")))]
    return body


# (A guarded remove by index, `test /metadata/finalizers/0` then `remove` it, must keep its test: without it the
# remove takes whatever the target has at that index, perhaps another controller's finalizer.)
_PRECONDITION_PATHS = frozenset({"/metadata/uid", "/metadata/resourceVersion"})


RECREATE_MEMORY_NS = 60 * 1_000_000_000  # how long split_collection_deletes remembers a create (recorded ns)
RECREATE_MEMORY_MAX = 100_000  # and at most this many creates

_Key = tuple[str, str, str, str]


class _RecentCreates:
    """The creates of the last ``RECREATE_MEMORY_NS`` of recorded time (at most ``RECREATE_MEMORY_MAX``), per
    object, in stream order: (received, ts, UID). Each create costs O(1) amortised."""

    def __init__(self) -> None:
        self.by_key: dict[_Key, collections.deque[tuple[int, int, str]]] = {}
        self.order: collections.deque[tuple[int, _Key]] = collections.deque()  # (ts, key), oldest first

    def add(self, key: _Key, received: int, ts: int, uid: str) -> None:
        while self.order and (self.order[0][0] < ts - RECREATE_MEMORY_NS or len(self.order) >= RECREATE_MEMORY_MAX):
            _, old = self.order.popleft()
            entries = self.by_key[old]
            entries.popleft()
            if not entries:
                del self.by_key[old]
        self.by_key.setdefault(key, collections.deque()).append((received, ts, uid))
        self.order.append((ts, key))

    def taken_again(self, key: _Key, uid: str, started: int, completed: int) -> int | None:
        """When the first create of ``key`` with another UID than ``uid`` answered in ``[started, completed)`` was
        received, counting only creates after the one of ``uid`` itself (when it is remembered); None if none."""
        entries = list(self.by_key.get(key, ()))
        own = [i for i, (_, _, created_uid) in enumerate(entries) if created_uid == uid]
        for received, ts, created_uid in entries[own[-1] + 1 if own else 0:]:
            if created_uid != uid and started <= ts < completed:
                return received
        return None


class _HeldDeletes:
    """Split deletes due at their collection delete's completion, held until the stream has passed that completion
    by due_order's window, in case a re-create of the name answered after the completion turns up."""

    def __init__(self) -> None:
        self.order: collections.deque[tuple[int, _Key, AuditEvent]] = collections.deque()  # (completed, key, ev)
        self.by_key: dict[_Key, list[AuditEvent]] = {}

    def hold(self, key: _Key, completed: int, split: AuditEvent) -> None:
        self.order.append((completed, key, split))
        self.by_key.setdefault(key, []).append(split)

    def due(self, ts: int | None) -> Iterator[AuditEvent]:
        """The held deletes whose completion is a window or more before ``ts`` (all of them for None)."""
        while self.order and (ts is None or self.order[0][0] + REORDER_WINDOW_NS <= ts):
            _, key, split = self.order.popleft()
            if self._drop(key, split):
                yield split

    def taken_by(self, key: _Key, uid: str, received: int) -> list[AuditEvent]:
        """The held deletes of ``key`` that list another incarnation than ``uid`` and are due no earlier than
        ``received`` (the create's), let go now: every one of them (two collection deletes running at once can both
        list the old incarnation)."""
        taken = [split for split in self.by_key.get(key, ())
                 if _uid_of(split["response"]) != uid and received <= split["received"]]
        for split in taken:
            self._drop(key, split)
        return taken

    def _drop(self, key: _Key, split: AuditEvent) -> bool:
        held = self.by_key.get(key, [])
        if not any(s is split for s in held):
            return False  # let go early by taken_by; its entry in order stays until it reaches the front
        held[:] = [s for s in held if s is not split]
        if not held:
            del self.by_key[key]
        return True


def split_collection_deletes(events: Iterable[AuditEvent], *,
                             on_late: Callable[[AuditEvent], None] | None = None,
                             on_split: Callable[[int], None] | None = None) -> Iterator[AuditEvent]:
    """The stream with every recorded collection delete whose response lists the objects it removed replaced by one
    named delete per object (for ``--mode verbatim``).

    Sending the collection delete again would delete whatever matches its selectors in the target, which can be
    more or fewer objects than the source deleted. Named deletes with the same options remove exactly the recorded
    objects. All or nothing: one unnamed item keeps the collection delete. (``--mode inputs`` keeps the collection
    delete: the target's own controllers have created objects under other names.)

    When each delete is due: the API server lists the objects, then deletes them one by one, and answers with the
    list as it was listed (each item's resourceVersion is its last write before the listing, not its deletion, so
    the items carry none here: :func:`~kwoksnap.replay.timing.due_order` must not order by them). An object's
    deletion happened somewhere between the collection's receipt and its completion; a write to it received in
    between and answered 2xx came before its deletion (an immediate one at least: after it, the write would have
    failed). So each delete is due at the collection's completion, after such writes, with one exception: a create
    of the same name answered 2xx with another UID than the listed object, and received before the collection
    delete completed (a new incarnation: the listed one was gone by then, since a name is unique). That delete is
    due just before the create was received, so the replay deletes the listed incarnation and keeps the new one, as
    the source did.

    - A create answered while the collection delete ran comes before it in the stream. due_order puts the delete
      before the create only while it still holds the create, that is when the create was received less than its
      window (2 s) before the collection delete completed; otherwise the delete would come after the create and
      remove the new object: it is passed to ``on_late`` (the replay skips it and warns). Creates are remembered for
      ``RECREATE_MEMORY_NS`` of recorded time.
    - A create answered after the collection delete completed comes after it. The deletes due at the completion are
      held back until the stream is a window (2 s) past it: due_order holds an event that long anyway, so holding
      it here changes no order, and such a create found in that time lets the delete go right before it. A create
      answered later than that finds the delete already gone ahead of it in the stream, where it belongs. (Except
      where due_order holds more than its ``max_held`` events, on a log of more than about 10,000 events per
      second: it then lets events go early, and one received after the completion can pass the held deletes.)"""
    recent = _RecentCreates()
    held = _HeldDeletes()
    horizon = 0  # the latest completion seen, as due_order counts it (the stream's order is only nearly by ts)
    for ev in events:
        horizon = max(horizon, ev["ts"])
        yield from held.due(horizon)
        if ev["verb"] == "create" and not ev["subresource"]:
            uid = _uid_of(ev["response"])
            if uid:
                key = (ev["group"], ev["resource"], ev["namespace"], ev["name"])
                received = ev["received"] or ev["ts"]
                recent.add(key, received, ev["ts"], uid)
                for split in held.taken_by(key, uid, received):
                    split["received"] = received - 1
                    yield split
        response = ev["response"]
        items = response.get("items") if ev["verb"] == "deletecollection" and isinstance(response, dict) else None
        if not isinstance(items, list) or not items or not all(_item_name(item) for item in items):
            yield ev
            continue
        if on_split is not None:
            on_split(len(items) - 1)  # events more than the stream held
        path, _, query = ev["uri"].partition("?")
        options = _strip_preconditions(ev["request"])  # a UID precondition cannot hold for every item
        params = urlencode([(k, v) for k, v in parse_qsl(query) if k not in ("labelSelector", "fieldSelector")])
        kind = str(response.get("kind") or "")
        started, completed = ev["received"] or ev["ts"], ev["ts"]
        for item in items:
            meta = {k: v for k, v in item["metadata"].items() if k != "resourceVersion"}
            state = {**item, "metadata": meta}
            if "kind" not in item and kind.endswith("List"):  # list items carry no kind; the fidelity check needs it
                state = {"apiVersion": response.get("apiVersion"), "kind": kind[:-4], **state}
            namespace = str(meta.get("namespace") or ev["namespace"])
            key = (ev["group"], ev["resource"], namespace, str(meta["name"]))
            listed_uid = meta.get("uid")
            created = recent.taken_again(key, listed_uid, started, completed) if isinstance(listed_uid, str) else None
            split = AuditEvent(**{**ev, "verb": "delete", "namespace": namespace, "name": str(meta["name"]),
                                  "received": completed if created is None else min(completed, created - 1),
                                  "uri": f"{path}/{meta['name']}" + (f"?{params}" if params else ""),
                                  "request": copy.deepcopy(options), "response": state})
            if created is None:
                held.hold(key, completed, split)
                continue
            if created + REORDER_WINDOW_NS <= completed and on_late is not None:
                on_late(split)
            yield split
    yield from held.due(None)


def _uid_of(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    uid = meta.get("uid") if isinstance(meta, dict) else None
    return uid if isinstance(uid, str) else ""


def _item_name(item: Any) -> str:
    meta = item.get("metadata") if isinstance(item, dict) else None
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _query(uri: str) -> dict[str, str]:
    keep = ("labelSelector", "fieldSelector", "gracePeriodSeconds", "propagationPolicy", "fieldManager", "force")
    return {k: v for k, v in parse_qsl(urlsplit(uri).query) if k in keep}


def _resized(spec: Any, *, whole: bool) -> Obj:
    """The ``containers`` (and sidecar ``initContainers``: the only init containers a resize may change) of a pod
    ``spec`` as the resize subresource takes them: each one's name and resources. ``whole``: the spec is the pod's
    (its other init containers are left out); else it is what a resize request sent, taken as it is."""
    out: Obj = {}
    for field in ("initContainers", "containers"):
        listed = spec.get(field) if isinstance(spec, dict) else None
        entries = [{"name": c["name"], "resources": c["resources"]} for c in listed or ()
                   if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("resources"), dict)
                   and (field == "containers" or not whole or c.get("restartPolicy") == "Always")]
        if entries:
            out[field] = entries
    return out


def _replicas(obj: Any) -> int | None:
    """``spec.replicas`` of a Scale (or of a patch setting it), if it is an integer."""
    spec = obj.get("spec") if isinstance(obj, dict) else None
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None


NOT_AN_OBJECT: Final = frozenset({"Status", None, "PartialObjectMetadata"})


def plan_action(ev: AuditEvent, *, mode: Mode, to_replay: Callable[[int], int] | None,
                clean: bool = True) -> Action | Skip:
    """The request that re-applies ``ev`` in the target, or why it cannot be. ``clean=False`` leaves the recorded
    bodies as they are (no copy): for reading what the event did, never for sending."""
    verb, sub = ev["verb"], ev["subresource"]
    group, resource = ev["group"], ev["resource"]
    base: dict[str, Any] = {"group": group, "version": ev["version"], "resource": resource,
                            "namespace": ev["namespace"], "name": ev["name"]}
    response = ev["response"] if isinstance(ev["response"], dict) else None
    request = ev["request"]
    # A full resulting object: the response, except for deletes/bindings/evictions, where it is a Status, and for
    # writes through a metadata-only client (the garbage collector: removing foregroundDeletion, orphaning
    # dependents), whose answer is the object's PartialObjectMetadata: sent as one, it was refused (400); the
    # recorded patch is sent instead.
    result = response if response is not None and response.get("kind") not in NOT_AN_OBJECT else None

    def body_of(obj: Obj) -> Obj:
        return clean_body(obj, mode=mode, resource=resource, group=group, to_replay=to_replay) if clean else obj

    if verb == "delete":
        opts = _strip_preconditions(request) if isinstance(request, dict) else None
        params = _query(ev["uri"])
        return Action("delete", "DELETE", body=opts, params=params, state=result,
                      source_uid=precondition_uid(request), **base)
    if verb == "deletecollection":  # one whose response lists the objects is split first (split_collection_deletes)
        if response is not None and response.get("items") == []:
            # The source's answer lists what it deleted: nothing. Sent again, the selector would delete whatever
            # matches in the target now (review finding).
            return Skip("deleted-nothing")
        return Action("deletecollection", "DELETE", params=_query(ev["uri"]),
                      body=_strip_preconditions(request) if isinstance(request, dict) else None, **base)
    if sub == "binding" and verb == "create":
        if not isinstance(request, dict):
            return Skip("degraded-metadata")
        target = (request.get("target") or {}).get("name")
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": ev["name"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": target}}
        # The scheduler names the pod's UID in the binding (the API server binds only that incarnation).
        return Action("bind", "POST", subresource="binding", body=body, source_uid=precondition_uid(request), **base)
    if sub == "eviction" and verb == "create":
        # The eviction API deletes the pod inside the server (no separate delete line): replay the delete.
        opts = (request or {}).get("deleteOptions") if isinstance(request, dict) else None
        return Action("delete", "DELETE", body=_strip_preconditions(opts) if opts else None,
                      source_uid=precondition_uid(opts), **base)
    if sub == "scale" and verb in ("update", "patch"):
        # `kubectl scale`, an HPA: the replica count the write left, as a merge patch of the scale subresource (the
        # same for a Deployment, a StatefulSet or a custom resource's scale).
        replicas = _replicas(result) if result is not None else _replicas(request)
        if replicas is None:
            return Skip("degraded-metadata")
        return Action("patch", "PATCH", subresource="scale", body={"spec": {"replicas": replicas}},
                      content_type=MERGE_PATCH, **base)
    if sub == "ephemeralcontainers" and verb in ("update", "patch"):
        # `kubectl debug`: the containers it left, through the subresource (a later write of the pod whole
        # names them, and was refused without them: "pod updates may not change fields").
        containers = ((result or {}).get("spec") or {}).get("ephemeralContainers")
        if not isinstance(containers, list) and result is None and isinstance(request, dict):
            # At Request level: kubectl debug's strategic-merge patch names the container it adds, merged by name
            # (black-box finding: skipped as if no body had been logged).
            containers = (request.get("spec") or {}).get("ephemeralContainers")
        if not isinstance(containers, list):
            return Skip("degraded-metadata")
        return Action("patch", "PATCH", subresource=sub, body={"spec": {"ephemeralContainers": containers}},
                      content_type=STRATEGIC_MERGE_PATCH, state=result, **base)  # (the pod it left: compared)
    if sub == "resize" and verb in ("update", "patch") and resource == "pods" and not group:
        # An in-place resize (`kubectl patch --subresource resize`): the containers' resources the write left, as a
        # strategic merge patch of the subresource. Left out, the pod's later writes, which carry the new
        # resources, were refused ("pod updates may not change fields": review finding).
        if result is None and verb == "patch" and isinstance(request, list):
            # At Request level a JSON patch (`kubectl patch --type json --subresource resize`) is sent as recorded,
            # its uid/resourceVersion guards dropped as for any patch (left from review: skipped as degraded).
            return Action("patch", "PATCH", subresource=sub, body=_strip_preconditions(request),
                          content_type=JSON_PATCH, source_uid=precondition_uid(request), **base)
        spec = (result if result is not None else request if isinstance(request, dict) else {}).get("spec")
        resized = _resized(spec, whole=result is not None)
        if not resized:
            return Skip("degraded-metadata")
        return Action("patch", "PATCH", subresource=sub, body={"spec": resized}, content_type=STRATEGIC_MERGE_PATCH,
                      state=result, **base)
    finalized = result if result is not None else request if isinstance(request, dict) else None
    if sub == "finalize" and resource == "namespaces" and not group and verb == "update" and finalized is not None:
        # The namespace controller's last write of a deleted namespace (its finalizers emptied): the API server
        # removes it then. Left out, the replay ended with it still Terminating, for the target's own controller
        # to finish on its own unscaled clock. (At Request level the body it sent is the namespace as written.)
        return Action("replace", "PUT", subresource=sub, body=body_of(finalized), state=result, **base)
    if sub and sub != "status":
        return Skip("unsupported-subresource")
    # A node's heartbeat: its node Lease written by its kubelet (kwok, in a KWOK cluster). Another client's write of
    # it (a user handing it to another holder, which kills the node) is a change like any other (review finding: it
    # was taken for a renewal, and in inputs mode the node never died).
    renewal = (group == "coordination.k8s.io" and resource == "leases" and ev["namespace"] == NODE_LEASE_NAMESPACE
               and classify(ev["user"], ev["groups"], ev["userAgent"]) in (Actor.KUBELET, Actor.KWOK))

    if verb == "create":
        obj = result or (request if isinstance(request, dict) else None)
        if obj is None:
            if renewal:
                return Action("renew", "PATCH", content_type=MERGE_PATCH, body={}, **base)
            return Skip("degraded-metadata")
        if not base["name"]:
            base["name"] = str((obj.get("metadata") or {}).get("name", ""))
        if not base["name"] and mode == "verbatim":
            # A create left to generateName at Request level: the name the source's server chose is not in the
            # log, and a replay would make another object that the recorded later changes never name.
            return Skip("unnamed-create")
        return Action("create", "POST", body=body_of(obj), state=result, **base)

    if verb in ("update", "patch"):
        if ev["code"] == 201 and not sub:  # (an update or apply patch that created the object)
            base["creates"] = True
        op: Literal["replace", "status"] = "status" if sub == "status" else "replace"
        # Inputs mode sends a recorded patch as the patch it was (the user's input), not the object it resulted in:
        # that holds what the source's skipped actors had made of it (a pod's node from its scheduler, a
        # Deployment's replicas from its autoscaler, a node's taint from the cluster autoscaler), which the
        # target's decide for themselves (black-box finding: an HPA's 8 replicas and an autoscaler's taint came
        # along with users' `kubectl annotate` and `kubectl label`). The patch type is inferred.
        user_patch = mode == "inputs" and verb == "patch" and request is not None
        if renewal and not sub:
            # A kubelet's renewal, at any level: a policy that logs leases at RequestResponse made them plain PUTs,
            # never coalesced (--lease-interval) and counted as changes' lag, not renewals'. The recorded lease, if
            # logged, is what a renewal of a lease the target lacks creates.
            return Action("renew", "PATCH", content_type=MERGE_PATCH, body={}, state=result, **base)
        if result is not None and not user_patch:  # the request's UID precondition (an update's body names it) holds
            return Action(op, "PUT", subresource=sub, body=body_of(result), state=result,
                          source_uid=precondition_uid(request), **base)
        if request is None:
            return Skip("degraded-metadata")
        if verb == "update":
            if not isinstance(request, dict):  # (it went on to the patch inference, whose refusal ended the run)
                raise ValueError(f"the update's requestObject is a {type(request).__name__}, not an object")
            return Action(op, "PUT", subresource=sub, body=body_of(request), source_uid=precondition_uid(request),
                          **base)
        patch_type = infer_patch_type(ev)
        body = _strip_preconditions(request)
        if to_replay is not None:
            body = shift_times(body, to_replay, resource, group)
        partial = response.get("metadata") if response is not None and result is None else None
        params = _query(ev["uri"])
        if patch_type == "apply":
            # The recorded apply succeeded in the source; here the fields of a restored object belong to the
            # manager that restored it (save drops managedFields), and an apply without force was refused (409
            # "conflicts with kwoksnap", black-box finding): forced, the apply takes them, as its own were.
            params["force"] = "true"
        return Action("patch", "PATCH", subresource=sub, body=body, content_type=PATCH_CONTENT[patch_type],
                      params=params, source_uid=precondition_uid(request), state=result,
                      result_meta=partial if isinstance(partial, dict) else None, **base)
    return Skip("unsupported-verb")
