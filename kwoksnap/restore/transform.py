"""Pure rewrites of a snapshot object into what restore sends to the target (no I/O here).

Why this module exists: every decision that makes a restored object behave like the original lives here, where
it is unit-testable: what server-managed metadata to strip, which owner references to drop (controllers adopt) or
relink (through the UID map), how nodes become KWOK fake nodes, how pods are kept away from kwok's stages and the
scheduler, and how a Job keeps matching its recorded pods.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import msgpack

from kwoksnap.kube.objects import MINTED_TOKEN_KEYS, SA_TOKEN_TYPE, SA_UID_ANNOTATION
from kwoksnap.store.kwokyaml import parse_time_ns

Obj = dict[str, Any]

FROZEN_ANNOTATION = "kwoksnap.io/frozen"  # kwok's disregard selector in clusters made by `kwoksnap cluster create`
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SCHEDULING_GATE = "kwoksnap.io/restored"
# A Secret whose values `kwoksnap save` replaced by placeholders (docs/format.md; written by capture.redact, which
# this layer cannot import): restore never writes it over an existing Secret.
REDACTED_ANNOTATION = "kwoksnap.io/redacted"
# On a finished Job restore created suspended, until it is resumed as recorded (Prepared.resume).
SUSPENDED_ANNOTATION = "kwoksnap.io/restore-suspended"
# On objects kwoksnap made that its input did not hold (a namespace a snapshot or a log names but lacks): which
# command made it ("restore", "replay").
CREATED_BY_LABEL = "kwoksnap.io/created-by"

SERVER_MANAGED = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink", "managedFields",
                  "deletionTimestamp", "deletionGracePeriodSeconds")

# (owner kind, dependent kind) pairs whose controller adopts matching orphans: the reference is dropped on create
# and re-established by the target's controller (ReplicaSet, StatefulSet, DaemonSet, Job: pods; Deployment:
# ReplicaSets; StatefulSet and DaemonSet: ControllerRevisions).
ADOPTING = frozenset({
    ("ReplicaSet", "Pod"), ("StatefulSet", "Pod"), ("DaemonSet", "Pod"), ("Job", "Pod"),
    ("ReplicationController", "Pod"), ("Deployment", "ReplicaSet"),
    ("StatefulSet", "ControllerRevision"), ("DaemonSet", "ControllerRevision"),
})

# Objects that the target's controllers create and own themselves: restoring ours would fight them.
# Shared with diff (kwoksnap.diff.normalize imports it), so both agree on what is not the snapshot's to restore.
REGENERATED = (
    ("ServiceAccount", None, "default"),
    ("ConfigMap", None, "kube-root-ca.crt"),
    ("Service", "default", "kubernetes"),
    ("ConfigMap", "kube-system", "extension-apiserver-authentication"),  # written by every kube-apiserver
    ("ConfigMap", "kube-system", "kube-apiserver-legacy-service-account-token-tracking"),
)
CONTROL_PLANE_LEASES = frozenset({"kube-system", "kube-node-lease"})  # namespaces whose Leases are the target's
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"


@dataclasses.dataclass(frozen=True)
class Adoption:
    """A dependent that the target's controller must adopt: checked before restore reports success."""

    kind: str
    namespace: str
    name: str
    owner_kind: str
    owner_name: str
    # The Job controller adds its tracking finalizer to pods it adopts; a finished Job never removes it again.
    # False when the recorded pod had none, so restore removes it once adoption is done.
    keep_job_finalizer: bool = True


@dataclasses.dataclass
class Prepared:
    """What to send: the body to create, the status to write after (pods lose theirs on create), owner refs to
    relink once their owners exist, and the adoption to wait for."""

    body: Obj
    status: Obj | None
    deferred_owners: list[Obj]
    adoption: Adoption | None
    dropped_owners: int = 0
    # An object that was Terminating: the DELETE options that make it Terminating again. A pod at once, once created
    # (its node's kwok disregards it as frozen, so the deletion stays pending as it was; its recorded finalizers are
    # kept); any other object held by finalizers at the end of the restore, once what depends on it is restored.
    terminate: Obj | None = None
    # A finished Job, created suspended where a Job controller runs: the patch that resumes it once its recorded
    # status (Complete or Failed) is written. Created running, the controller started a new pod before that status.
    resume: Obj | None = None
    # (kind, name) of the controller left out of the body (to be adopted, or not in the snapshot): a replace keeps
    # the target's own reference to it.
    controller: tuple[str, str] | None = None
    # A pod's ephemeral containers (`kubectl debug`): refused on create, written through the pod's
    # ephemeralcontainers subresource once it exists.
    ephemeral: list[Any] | None = None
    # References to an owner in another namespace (or a namespaced owner of a cluster-scoped object): invalid, the
    # target's garbage collector deletes the object for them; left out, named ("ConfigMap ns/child -> ns2/owner").
    invalid_owners: list[str] = dataclasses.field(default_factory=list)


# Endpoints the endpoints controller maintains carry its managed-by label (since 1.33) or, in older clusters, often
# its trigger-time annotation (dropped again when a sync has no trigger time, so not always); manually managed ones,
# for Services without a selector, have neither and are restored. EndpointSlices name their manager in a label.
ENDPOINTS_MANAGED_BY = ("endpoints.kubernetes.io/managed-by", "endpoint-controller")
ENDPOINTS_TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
SLICE_MANAGERS = frozenset({"endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"})


def redacted(obj: Obj) -> bool:
    """A Secret saved without its values (``REDACTED_ANNOTATION``)."""
    return obj.get("kind") == "Secret" and (
        (obj.get("metadata") or {}).get("annotations") or {}).get(REDACTED_ANNOTATION) == "true"


def selectorless(services: Iterable[Obj]) -> frozenset[tuple[str, str]]:
    """(namespace, name) of the Services without a selector: their Endpoints are a user's, whatever labels a
    selector they once had left on them."""
    out = set()
    for service in services:
        meta, spec = service.get("metadata"), service.get("spec")
        if isinstance(meta, dict) and not (isinstance(spec, dict) and spec.get("selector")):
            out.add((str(meta.get("namespace", "")), str(meta.get("name", ""))))
    return frozenset(out)


def regenerated(obj: Obj, *, endpoint_controllers: bool = True,
                manual: frozenset[tuple[str, str]] = frozenset()) -> bool:
    """Objects the target's own controllers (or API server) create and maintain: restoring ours would fight them.
    Without ``endpoint_controllers`` (a replay-profile target runs none), the Endpoints and EndpointSlices they
    would make are not (black-box finding: left to controllers that were not there, every Service stayed without
    endpoints). ``manual``: the Services whose Endpoints are a user's (:func:`selectorless`; black-box finding:
    the label the endpoints controller left when the selector was removed made them look its own)."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    labels = meta.get("labels") or {}
    if (kind in ("Endpoints", "EndpointSlice")
            and (meta.get("namespace"), meta.get("name")) == ("default", "kubernetes")):
        return True  # the API server's own, for its `kubernetes` Service (a slice of it has no managed-by label)
    if kind == "Endpoints" and endpoint_controllers and (meta.get("namespace"), meta.get("name")) not in manual and (
            labels.get(ENDPOINTS_MANAGED_BY[0]) == ENDPOINTS_MANAGED_BY[1]
            or ENDPOINTS_TRIGGER in (meta.get("annotations") or {})):
        return True
    if kind == "EndpointSlice" and endpoint_controllers and (
            labels.get("endpointslice.kubernetes.io/managed-by") in SLICE_MANAGERS):
        return True
    if kind == "Lease" and meta.get("namespace") in CONTROL_PLANE_LEASES:
        # Leader elections and node heartbeats: the target's own control plane and kwok hold them (black-box
        # finding: a kwokctl export's restored kube-scheduler Lease, renewed "now", was taken for a running
        # scheduler; a restored node Lease names a holder kwok is not, so kwok would stop renewing it).
        return True
    for kind, namespace, name in REGENERATED:
        if obj.get("kind") == kind and meta.get("name") == name and namespace in (None, meta.get("namespace")):
            return True
    return False


_WEBHOOK_KINDS = frozenset({"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"})


def fails_closed_without_backend(obj: Obj) -> bool:
    """An admission webhook configuration with a webhook that calls an in-cluster Service and fails closed
    (``failurePolicy: Fail``, the default): no pod serves it in a KWOK cluster, so the API server refuses every
    write it matches (black-box finding: restored into a standard target, it refused the controller manager's and
    the scheduler's lease renewals, and both stopped for good while restore said all was well)."""
    if obj.get("kind") not in _WEBHOOK_KINDS:
        return False
    return any(isinstance(hook, dict) and isinstance(hook.get("clientConfig"), dict)
               and hook["clientConfig"].get("service") and hook.get("failurePolicy", "Fail") != "Ignore"
               for hook in obj.get("webhooks") or ())


def strip_metadata(meta: Obj) -> Obj:
    return {k: v for k, v in meta.items() if k not in SERVER_MANAGED}


# Controllers that claim only active pods (Kubernetes' FilterActivePods before ClaimPods): a finished pod of theirs
# (evicted by its kubelet, Failed; Succeeded) is never adopted, and keeps its controller reference (relinked).
_ACTIVE_PODS_ONLY = frozenset({"ReplicaSet", "ReplicationController"})


def _never_claimed(obj: Obj) -> bool:
    if obj.get("kind") != "Pod" or (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        return False
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("kind") in _ACTIVE_PODS_ONLY for ref in refs if isinstance(ref, dict))


def copied(obj: Obj) -> Obj:
    """A deep copy of a JSON-like object (a snapshot's, a recorded one), through msgpack: as deep as a snapshot can
    hold (copy.deepcopy failed at about 500 levels of maps and lists, which the API server accepts), and ~3x faster
    (copy.deepcopy of each recorded object was most of a --speed max replay's CPU). An integer beyond msgpack's 64
    bits (a YAML input can hold one) is copied by copy.deepcopy instead."""
    try:
        out: Obj = msgpack.unpackb(msgpack.packb(obj, use_bin_type=True, datetime=False), raw=False,
                                   strict_map_key=False)
    except OverflowError:
        out = copy.deepcopy(obj)
    return out


# A pod's service-account token volume, named by the API server's admission with 5 random characters.
TOKEN_VOLUME = re.compile(r"kube-api-access-[a-z0-9]{5}")


def token_volume_names(spec: Obj) -> set[str]:
    """The names of a pod spec's service-account token volumes (projected, named by admission)."""
    volumes = spec.get("volumes")
    return {v["name"] for v in volumes or [] if isinstance(v, dict) and isinstance(v.get("name"), str)
            and TOKEN_VOLUME.fullmatch(v["name"]) and isinstance(v.get("projected"), dict)} \
        if isinstance(volumes, list) else set()


def renamed_volume(spec: Obj, names: set[str], new: str) -> Obj:
    """A copy of a pod spec whose volumes ``names`` (and the containers' mounts of them) are called ``new``."""
    out = dict(spec)
    out["volumes"] = [{**v, "name": new} if isinstance(v, dict) and v.get("name") in names else v
                      for v in spec.get("volumes") or []]
    for field in ("containers", "initContainers", "ephemeralContainers"):
        containers = spec.get(field)
        if isinstance(containers, list):
            out[field] = [{**c, "volumeMounts": [{**m, "name": new} if isinstance(m, dict) and m.get("name") in names
                                                 else m for m in c["volumeMounts"]]}
                          if isinstance(c, dict) and isinstance(c.get("volumeMounts"), list) else c
                          for c in containers]
    return out


def kept_in_place(kind: str, spec: Obj, live: Obj) -> Obj:
    """A copy of the snapshot's ``spec`` to replace the object in the way with (``--on-conflict replace``),
    keeping what that object holds and a PUT may not change (each was refused, 422)."""
    spec = dict(spec)
    if kind == "Pod":
        if live.get("ephemeralContainers"):  # (restore adds the snapshot's through their subresource)
            spec["ephemeralContainers"] = live["ephemeralContainers"]
        if len(theirs := token_volume_names(live)) == 1 and (ours := token_volume_names(spec)) and ours != theirs:
            # a pod the target made itself (a StatefulSet's, re-created) has its own random token volume name
            spec = renamed_volume(spec, ours, next(iter(theirs)))
        if not live.get("schedulingGates") and spec.get("schedulingGates"):
            # a pod may only lose gates: restore's own, which holds an unscheduled restored pod back, is left out
            spec["schedulingGates"] = [g for g in spec["schedulingGates"] if g.get("name") != SCHEDULING_GATE] or None
    if kind == "Service" and (spec.get("clusterIP") == "None") == (live.get("clusterIP") == "None"):
        # the addresses it holds (restore may have reallocated them); headless on one side only: left as
        # recorded, so the refusal says so
        spec.update({k: live[k] for k in ("clusterIP", "clusterIPs") if k in live})
    return spec


def spec_after_refusal(kind: str, spec: Obj, live: Obj, message: str) -> Obj | None:
    """The Service ``spec`` to try again with after the replace was refused for what another Service or the
    target holds (a node port another Service took meanwhile, IP families the target lacks): those of the Service
    in the way. None when the refusal is for anything else."""
    if kind != "Service" or ("already allocated" not in message and "not configured" not in message):
        return None
    spec = dict(spec)
    if "already allocated" in message:
        taken = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in live.get("ports") or []}
        spec["ports"] = [{**p, "nodePort": taken[key]} if taken.get(key := (p.get("port"), p.get("protocol", "TCP")))
                         else p for p in spec.get("ports") or []]
    if "not configured" in message:
        spec.update({k: live[k] for k in ("ipFamilies", "ipFamilyPolicy") if k in live})
    return spec


# Kinds whose status only the API server's own controllers write: a CRD's (accepted names, Established, stored
# versions) and an APIService's (Available). Written from the snapshot, it told the target a CRD whose names another
# CRD had taken was Established, and its custom resources failed with "error resolving resource" (review finding).
SERVER_STATUS_KINDS = frozenset({"CustomResourceDefinition", "APIService"})

# A service-account token Secret (since Kubernetes 1.24 only a user makes one): the target's token controller writes
# its token, CA and namespace, and deletes it unless the UID it names is its ServiceAccount's (black-box finding:
# save left them out, and they were missing from the target for good).


def _token_left_to_mint(body: Obj, uid_map: dict[str, str]) -> None:
    """``body`` (a service-account token Secret) without what the target's token controller mints, naming the
    target's ServiceAccount (restored before it) or none (the controller then takes the one of its name)."""
    data = body.get("data")
    if isinstance(data, dict):
        for key in MINTED_TOKEN_KEYS:
            data.pop(key, None)
    annotations = body["metadata"].get("annotations")
    if isinstance(annotations, dict) and SA_UID_ANNOTATION in annotations:
        uid = uid_map.get(str(annotations[SA_UID_ANNOTATION]))
        if uid is None:
            del annotations[SA_UID_ANNOTATION]
        else:
            annotations[SA_UID_ANNOTATION] = uid


def prepare(
    obj: Obj,
    *,
    uid_map: dict[str, str],
    snapshot_uids: Collection[str],
    has_status_subresource: bool,
    adopt: bool = True,
    never_adopt: frozenset[str] = frozenset(),
) -> Prepared:
    """Turn a snapshot object into a create body.

    ``uid_map`` maps source UIDs to target UIDs of objects restored so far; ``snapshot_uids`` holds every UID in
    the snapshot (an owner outside it is dangling: its reference is dropped, or the garbage collector would delete
    the dependent); a mapping of each UID to its object's namespace also finds references to an owner in another
    namespace, which the garbage collector takes for dangling too. ``adopt=False`` is for targets without workload
    controllers (the replay profile): controller references are then relinked through the UID map like any other,
    since nobody would adopt. ``never_adopt``
    holds owner UIDs whose controller would not adopt either (finished Jobs: the Job controller ignores them): their
    references are relinked too, and still returned as an adoption so restore checks the result.
    """
    body = copied(obj)
    kind = str(body.get("kind", ""))
    meta = strip_metadata(body.get("metadata") or {})
    body["metadata"] = meta

    # Controllers never adopt an object being deleted: a Terminating pod keeps its controller reference (relinked).
    terminating = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    adopt = adopt and not terminating and not _never_claimed(obj)
    adoption: Adoption | None = None
    controller: tuple[str, str] | None = None
    deferred: list[Obj] = []
    kept: list[Obj] = []
    dropped = 0
    invalid: list[str] = []
    namespaces = snapshot_uids if isinstance(snapshot_uids, Mapping) else {}
    own_namespace = str(meta.get("namespace") or "")
    for ref in meta.get("ownerReferences") or []:
        old = str(ref.get("uid", ""))
        if namespaces.get(old, own_namespace) not in ("", own_namespace):
            invalid.append(f"{kind} {own_namespace + '/' if own_namespace else ''}{meta.get('name', '')} -> "
                           f"{ref.get('kind')} {namespaces[old]}/{ref.get('name')}")
            continue
        if adopt and ref.get("controller") and (ref.get("kind"), kind) in ADOPTING:
            controller = (str(ref.get("kind")), str(ref.get("name")))
            if old not in snapshot_uids and old not in uid_map:
                dropped += 1  # an owner the snapshot does not hold (`save --include pods`): no adoption to wait for
                continue
            adoption = Adoption(kind, str(meta.get("namespace", "")), str(meta.get("name", "")),
                                str(ref.get("kind")), str(ref.get("name")),
                                keep_job_finalizer=JOB_TRACKING_FINALIZER in (meta.get("finalizers") or ()))
            if old not in never_adopt:
                continue
        if old in uid_map:
            kept.append({**ref, "uid": uid_map[old]})
        elif old in snapshot_uids:
            deferred.append(ref)  # the owner is restored later: relinked in the final pass
        else:
            dropped += 1
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)

    status = body.pop("status", None) if has_status_subresource else None
    if kind in SERVER_STATUS_KINDS:
        status = None
    ephemeral: list[Any] | None = None
    if kind == "Node":
        body["status"] = obj.get("status") or {}  # nodes keep their status on create
        status = None
        annotations = meta.setdefault("annotations", {})
        annotations[FAKE_NODE_ANNOTATION] = "fake"
        if not _node_ready(obj):
            annotations[FROZEN_ANNOTATION] = "true"  # kwok would flip it Ready; keep the recorded condition
    elif kind == "Pod":
        _prepare_pod(body)
        ephemeral = (body.get("spec") or {}).pop("ephemeralContainers", None) or None
    elif kind == "Job":
        keep_job_selector(body)
    elif kind == "PersistentVolume":
        claim = (body.get("spec") or {}).get("claimRef")
        if isinstance(claim, dict):
            claim.pop("resourceVersion", None)
            if claim.get("uid") in uid_map:
                claim["uid"] = uid_map[claim["uid"]]
            elif claim.get("uid") in snapshot_uids:  # its claim is in the snapshot, not restored: bound by name
                claim.pop("uid", None)
            # else its claim was deleted in the source (a Released volume): the UID of a claim that does not exist
            # keeps it Released. Without it, the volume was Available and pre-bound to any new claim of that name,
            # the opposite of a claim stuck Pending beside a Released volume (black-box finding).
    elif kind == "Secret" and body.get("type") == SA_TOKEN_TYPE:
        _token_left_to_mint(body, uid_map)
    elif kind in ("Endpoints", "EndpointSlice"):
        for target in target_refs(body):
            target.pop("resourceVersion", None)
            if target.get("uid") in uid_map:
                target["uid"] = uid_map[target["uid"]]
            else:
                target.pop("uid", None)
    if status is not None and not status:
        status = None
    terminate: Obj | None = None
    if kind == "Pod" and terminating:
        grace = (obj.get("metadata") or {}).get("deletionGracePeriodSeconds")
        terminate = {"gracePeriodSeconds": grace if isinstance(grace, int) and grace > 0 else 30}
    elif terminating and kind != "Namespace" and (finalizers := meta.get("finalizers") or ()):
        # Held by its finalizers, a delete makes it Terminating again, and no more. The propagation its recorded
        # deletion had, as its finalizers tell; not the resource's default (Orphan for Jobs and
        # ReplicationControllers), which would add a finalizer the recording did not have.
        terminate = {"propagationPolicy": "Orphan" if "orphan" in finalizers
                     else "Foreground" if "foregroundDeletion" in finalizers else "Background"}
    resume: Obj | None = None
    if kind == "Job" and status is not None and finished_job(obj) and "uncountedTerminatedPods" not in status:
        # The Job controller may count a restored pod of it (uncountedTerminatedPods) before restore writes the
        # recorded status; a finished Job's must be empty, or the write is refused (seen in CI: 422). The recorded
        # status had none: so has the restored one.
        status = {**status, "uncountedTerminatedPods": None}
    if kind == "Job" and adopt and status is not None and finished_job(obj):
        spec = body.setdefault("spec", {})
        recorded = spec.get("suspend")
        spec["suspend"] = True
        meta.setdefault("annotations", {})[SUSPENDED_ANNOTATION] = "true"  # a rerun finds one left suspended
        resume = {"metadata": {"annotations": {SUSPENDED_ANNOTATION: None}},
                  "spec": {"suspend": recorded if isinstance(recorded, bool) else False}}
    return Prepared(body, status, deferred, adoption, dropped, terminate, resume, controller, ephemeral,
                    invalid_owners=invalid)


def target_refs(obj: Obj) -> list[Obj]:
    """The object references (usually pods) of an Endpoints' addresses or an EndpointSlice's endpoints."""
    refs: list[Obj] = []
    if obj.get("kind") == "Endpoints":
        for subset in obj.get("subsets") or []:
            for address in (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or []):
                if isinstance(address.get("targetRef"), dict):
                    refs.append(address["targetRef"])
    elif obj.get("kind") == "EndpointSlice":
        refs = [e["targetRef"] for e in obj.get("endpoints") or [] if isinstance(e.get("targetRef"), dict)]
    return refs


def finished_job(obj: Obj) -> bool:
    """A Job whose status says Complete or Failed: the Job controller never syncs it again, so never adopts."""
    if obj.get("kind") != "Job":
        return False
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def ttl_expired(obj: Obj, now_ns: int) -> bool:
    """A finished Job whose ``ttlSecondsAfterFinished`` has run out by ``now_ns``, counted as the TTL-after-finished
    controller counts it (from ``status.completionTime``, else the finishing condition's time): a target that runs
    that controller deletes it, and its pods, as soon as it is restored."""
    spec = obj.get("spec") or {}
    ttl = spec.get("ttlSecondsAfterFinished") if isinstance(spec, dict) else None
    if not finished_job(obj) or not isinstance(ttl, int) or isinstance(ttl, bool):
        return False
    status = obj.get("status") or {}
    finished = status.get("completionTime")
    if not isinstance(finished, str):
        finished = next((c.get("lastTransitionTime") for c in status.get("conditions") or []
                         if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"), None)
    at = parse_time_ns(finished) if isinstance(finished, str) else None
    return at is not None and at + ttl * 1_000_000_000 <= now_ns


def keep_job_selector(job: Obj) -> None:
    """A Job's generated selector names the source's Job uid, and so do its recorded pods' labels: keep it, with
    ``manualSelector: true`` so the target accepts it (dropped, the target would generate one from its own uid
    that none of the recorded pods carries). In place; restore, the kwokctl export and replay all use it."""
    spec = job.get("spec")
    if isinstance(spec, dict) and spec.get("selector") and not spec.get("manualSelector"):
        spec["manualSelector"] = True


def _node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _prepare_pod(pod: Obj) -> None:
    meta = pod["metadata"]
    meta.setdefault("annotations", {})[FROZEN_ANNOTATION] = "true"
    spec = pod.setdefault("spec", {})
    if not spec.get("nodeName"):
        gates = spec.setdefault("schedulingGates", [])
        if not any(g.get("name") == SCHEDULING_GATE for g in gates):
            gates.append({"name": SCHEDULING_GATE})


def without_cluster_ip(service: Obj) -> Obj:
    """A Service body that lets the target allocate its IPs and node ports (the recorded ones do not fit), in the
    IP families it has: a dual-stack Service's second family (or an IPv6 one) is refused by a single-stack target
    ("not configured on this cluster"), so the families are left to the target too."""
    body = copy.deepcopy(service)
    spec = body.get("spec") or {}
    if spec.get("clusterIP") not in (None, "", "None"):
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    spec.pop("ipFamilies", None)
    spec.pop("ipFamilyPolicy", None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)
    spec.pop("healthCheckNodePort", None)
    return body
