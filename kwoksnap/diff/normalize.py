"""What "equal" means for two versions of one object: the normal form both sides are reduced to before comparing.

Why this module exists: restore cannot keep uids, resourceVersions, creation times or allocated service IPs, the
target's controllers recompute workload status and kwok rewrites node heartbeats; a diff that reported those
would always say "different". Each ignored field is listed here, with the reason, so the rule is reviewable.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from kwoksnap.capture.redact import LAST_APPLIED, REDACTED_ANNOTATION
from kwoksnap.kube.objects import MINTED_TOKEN_KEYS, SA_TOKEN_TYPE, SA_UID_ANNOTATION, TOKEN_LAST_USED_LABEL
from kwoksnap.restore.transform import regenerated, renamed_volume, target_refs, token_volume_names

__all__ = ["field_differences", "normalize", "regenerated"]

Obj = dict[str, Any]

# Metadata assigned by the target API server.
IGNORED_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink", "managedFields",
                    "deletionGracePeriodSeconds")
# Markers restore adds so kwok, the scheduler and the Job controller leave restored objects as recorded.
IGNORED_ANNOTATIONS = ("kwoksnap.io/frozen", "kwok.x-k8s.io/node", "kwoksnap.io/snapshot-taken-at")
IGNORED_SCHEDULING_GATES = ("kwoksnap.io/restored",)
# Secret values are never compared, so never shown: a snapshot's are redacted by default (placeholders, marked by
# kwoksnap.io/redacted, with last-applied-configuration dropped because it repeats them), and a diff is printed.
# Their keys and type are compared.
IGNORED_SECRET_ANNOTATIONS = (*IGNORED_ANNOTATIONS, REDACTED_ANNOTATION, LAST_APPLIED)
NOT_COMPARED = "(value not compared)"
# Kinds whose status the target's controllers compute from their dependents (compared through the dependents).
CONTROLLER_STATUS_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                     "ReplicationController", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                                     "Namespace", "CustomResourceDefinition", "Service", "APIService"})


def _times_dropped(out: Obj, kind: str) -> Obj:
    """``out`` without the times restore and replay cannot keep, only where objects record when things happened,
    as replay moves them (replay/timing.py, ``shift_times``): ``status``, a Lease's ``spec``, a Node's taints, an
    Event's own times. Elsewhere a key ending in "Time" is a user's (a ConfigMap's ``retentionTime``, an
    annotation, a custom resource's spec) and is compared (black-box finding: it was dropped at any depth)."""
    if "status" in out:
        out["status"] = _drop_timestamps(out["status"])
    spec = out.get("spec")
    if isinstance(spec, dict):
        if kind == "Lease":
            out["spec"] = _drop_timestamps(spec)
        elif kind == "Node" and isinstance(spec.get("taints"), list):
            out["spec"] = {**spec, "taints": _drop_timestamps(spec["taints"])}
    if kind == "Event":
        out = {k: v for k, v in out.items() if not _is_timestamp_key(k) and k != "series"}
    return out


def _is_timestamp_key(key: str) -> bool:
    # timeAdded: a taint's; replay moves it onto its own clock like every other time (replay/timing.py)
    return key.endswith(("Time", "Timestamp")) or key in ("startedAt", "finishedAt", "renewTime", "timeAdded")


def _drop_timestamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_timestamps(v) for k, v in value.items() if not _is_timestamp_key(k)}
    if isinstance(value, list):
        return [_drop_timestamps(v) for v in value]
    return value


def normalize(obj: Obj) -> Obj:
    """The comparable form of an object."""
    kind = obj.get("kind", "")
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in IGNORED_METADATA}
    if meta.pop("deletionTimestamp", None):
        meta["terminating"] = True  # when it was deleted cannot be restored; that it is being deleted can
    ignored = IGNORED_SECRET_ANNOTATIONS if kind == "Secret" else IGNORED_ANNOTATIONS
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ignored}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if not meta.get("labels"):
        meta.pop("labels", None)
    refs = meta.get("ownerReferences")
    if refs:
        meta["ownerReferences"] = sorted(
            ({"kind": r.get("kind"), "name": r.get("name"), "controller": bool(r.get("controller"))} for r in refs),
            key=lambda r: (str(r["kind"]), str(r["name"])),
        )
    out: Obj = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = meta
    if isinstance(out.get("apiVersion"), str):  # the group: one object read at two versions is one object (a CRD
        out["apiVersion"] = out["apiVersion"].rpartition("/")[0]  # whose storage version changed between saves)
    if kind == "Secret":
        token = obj.get("type") == SA_TOKEN_TYPE  # (its token is each cluster's own: the target mints it)
        if token:
            meta.get("annotations", {}).pop(SA_UID_ANNOTATION, None)
            if not meta.get("annotations"):
                meta.pop("annotations", None)
            if TOKEN_LAST_USED_LABEL in (meta.get("labels") or {}):  # (black-box finding: used once, "changed")
                meta["labels"] = {k: v for k, v in meta["labels"].items() if k != TOKEN_LAST_USED_LABEL}
                if not meta["labels"]:
                    del meta["labels"]
        for field in ("data", "stringData"):
            if isinstance(out.get(field), dict):
                out[field] = {k: NOT_COMPARED for k in out[field] if not (token and k in MINTED_TOKEN_KEYS)}
                if not out[field]:
                    del out[field]
            elif field in out:  # not a map (a hand-written YAML's string or list): never shown either
                out[field] = NOT_COMPARED
    spec = out.get("spec")
    if isinstance(spec, dict):
        spec = dict(spec)
        out["spec"] = spec
        gates = [g for g in spec.get("schedulingGates") or [] if g.get("name") not in IGNORED_SCHEDULING_GATES]
        if gates:
            spec["schedulingGates"] = gates
        else:
            spec.pop("schedulingGates", None)
        if kind == "Pod":
            _same_token_volume_name(spec)
        if kind == "Job":
            spec.pop("manualSelector", None)
        if kind == "Service":
            headless = spec.get("clusterIP") == "None"  # a meaning, not an allocated address: compared
            for k in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
                spec.pop(k, None)
            if headless:
                spec["clusterIP"] = "None"
            spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec.get("ports") or []]
        if kind == "PersistentVolume" and isinstance(spec.get("claimRef"), dict):
            spec["claimRef"] = {k: v for k, v in spec["claimRef"].items() if k not in ("uid", "resourceVersion")}
    if kind in ("Endpoints", "EndpointSlice"):  # pod references: followed by name, like owners
        out = copy.deepcopy(out)
        for target in target_refs(out):
            target.pop("uid", None)
            target.pop("resourceVersion", None)
    status = obj.get("status")
    if isinstance(status, dict) and status and kind not in CONTROLLER_STATUS_KINDS:
        if kind == "Node":
            status = {
                "conditions": sorted((c.get("type"), c.get("status")) for c in status.get("conditions") or []),
                "capacity": status.get("capacity"), "allocatable": status.get("allocatable"),
                "addresses": status.get("addresses"),
            }
        out["status"] = status
    return _times_dropped(out, kind)


TOKEN_VOLUME_SAID = "kube-api-access-(random)"


def _same_token_volume_name(spec: Obj) -> None:
    """A pod's service-account token volume (``kube-api-access-`` and 5 random characters) is named by the API
    server's admission when the pod is created: a pod made again by the target's controller (a StatefulSet's, same
    name) differed only by it. Its name and its mounts' are compared without the random part; what it holds is."""
    names = token_volume_names(spec)
    if names:
        spec.update(renamed_volume(spec, names, TOKEN_VOLUME_SAID))


# What an SRE looks for first in a changed object: walked first, so a limit never cuts them off (black-box finding:
# a moved pod's nodeName came after its labels and images, and was left out).
TELLING_FIELDS: Final = (".spec.nodeName", ".status.phase", ".metadata.terminating", ".spec.unschedulable",
                         ".spec.replicas")
FIELDS_LIMIT: Final = 10


_ABSENT: Final = object()


def _at(obj: Any, path: str) -> Any:
    for part in path.split(".")[1:]:
        if not isinstance(obj, dict) or part not in obj:
            return _ABSENT
        obj = obj[part]
    return obj


def field_differences(a: Any, b: Any, path: str = "", limit: int = FIELDS_LIMIT) -> list[str]:
    """Human-readable paths where two normal forms differ (at most ``limit``): those of ``TELLING_FIELDS`` first,
    then the rest in key order."""
    diffs: list[str] = []
    telling = TELLING_FIELDS if not path else ()
    for t in telling:
        x, y = _at(a, t), _at(b, t)
        if x is _ABSENT and y is not _ABSENT:
            diffs.append(f"{t}: added")
        elif y is _ABSENT and x is not _ABSENT:
            diffs.append(f"{t}: removed")
        elif x != y:
            diffs.append(f"{t}: {_around_values(x, y)}")

    def walk(x: Any, y: Any, p: str) -> None:
        if len(diffs) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if f"{p}.{k}" in telling:
                    continue  # (compared above)
                if k not in x and _few_keys(y[k]):  # a map with one label where there was none: name the label
                    walk({}, y[k], f"{p}.{k}")
                elif k not in y and _few_keys(x[k]):
                    walk(x[k], {}, f"{p}.{k}")
                elif k not in x:
                    diffs.append(f"{p}.{k}: added")
                elif k not in y:
                    diffs.append(f"{p}.{k}: removed")
                else:
                    walk(x[k], y[k], f"{p}.{k}")
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                diffs.append(f"{p or '.'}: {len(x)} -> {len(y)} items")
            for i, (xi, yi) in enumerate(zip(x, y, strict=False)):
                walk(xi, yi, f"{p}[{i}]")
        elif x != y:
            diffs.append(f"{p or '.'}: {_around_values(x, y)}")

    walk(a, b, path)
    return diffs


def _few_keys(value: Any) -> bool:
    """A map of a few plain values (labels, annotations, a selector): its keys say more than "added" or
    "removed" of the whole."""
    return (isinstance(value, dict) and 0 < len(value) <= 3
            and not any(isinstance(v, (dict, list)) for v in value.values()))


def _around_values(x: Any, y: Any) -> str:
    """:func:`_around_difference` of two values as Python shows them; the place named is counted in the values
    themselves, not in their quotes (black-box finding: one off)."""
    return _around_difference(repr(x), repr(y), quote=isinstance(x, str) and isinstance(y, str))


def _around_difference(x: str, y: str, width: int = 60, *, quote: bool = False) -> str:
    """``x -> y``, each cut to ``width`` characters around where they first differ (a long value that differs
    only at its end showed the same cut-off start on both sides)."""
    if len(x) <= width and len(y) <= width:
        return f"{x} -> {y}"
    first = next((i for i, (cx, cy) in enumerate(zip(x, y, strict=False)) if cx != cy), min(len(x), len(y)))
    start = max(0, first - width // 3)

    def cut(text: str) -> str:
        part = text[start:start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(text) else "")

    where = f" (from character {first + 1 - quote})" if start else ""
    return f"{cut(x)} -> {cut(y)}{where}"
