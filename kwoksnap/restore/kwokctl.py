"""Export a snapshot so that ``kwokctl snapshot restore --format k8s`` (kwok v0.8.0) restores it.

Why this module exists: kwokctl's loader differs from kwoksnap's restore in three ways that an export must
respect: it relinks owner references top-down and skips a dependent whose owner comes later in the file; it stops
loading, silently and with exit code 0, at the first object whose kind its ``--filter`` does not list; and it
creates Jobs as recorded, which the API server refuses when the selector was generated for another Job uid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kwoksnap.errors import walking
from kwoksnap.restore.plan import PHASES, plan
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.restore.transform import keep_job_selector
from kwoksnap.store import KwsReader
from kwoksnap.store.kwokyaml import ExportStats, export_yaml

# kwokctl v0.8.0 `snapshot save/restore --filter` default (group-kinds, lower case).
KWOKCTL_DEFAULT_FILTER = frozenset({
    "namespace", "node", "serviceaccount", "configmap", "secret", "limitrange", "runtimeclass.node.k8s.io",
    "priorityclass.scheduling.k8s.io", "clusterrolebinding.rbac.authorization.k8s.io",
    "clusterrole.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
    "role.rbac.authorization.k8s.io", "daemonset.apps", "deployment.apps", "replicaset.apps", "statefulset.apps",
    "cronjob.batch", "job.batch", "persistentvolumeclaim", "persistentvolume", "pod", "service", "endpoints",
})

# Owners first: the controller phases move before the pods they own.
EXPORT_ORDER = [name for name, _ in PHASES if name not in ("top-controllers", "controllers", "replicasets")]
EXPORT_ORDER[EXPORT_ORDER.index("pods"):EXPORT_ORDER.index("pods")] = ["top-controllers", "controllers",
                                                                        "replicasets"]


def group_kind(obj: dict[str, Any]) -> str:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


def restorable_by_kwokctl(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep a Job's recorded selector valid with ``manualSelector: true``, as kwoksnap's own restore does."""
    if obj.get("kind") != "Job" or not isinstance(obj.get("spec"), dict):
        return obj
    job = {**obj, "spec": dict(obj["spec"])}  # the snapshot's object stays as read
    keep_job_selector(job)
    return job


def export_for_kwokctl(snapshot: str | Path, out: str | Path, *,
                       all_resources: bool = False) -> tuple[ExportStats, Counter[str], Counter[str]]:
    """Write ``snapshot`` as kwokctl ``--format k8s`` YAML; only kwokctl's default kinds unless ``all_resources``.
    Returns what was written, the objects left out (counted by group-kind), and the objects written that kwokctl
    v0.8.0's restore will not create, counted by why (black-box finding: the export said nothing of them)."""
    left_out: Counter[str] = Counter()
    doomed: Counter[str] = Counter()
    with KwsReader(snapshot) as reader:
        source = SnapshotSource(reader)

        def records() -> Iterator[dict[str, Any]]:
            counts = source.counts()
            for step in sorted(plan(counts), key=lambda s: EXPORT_ORDER.index(s.phase)):
                for obj in source.objects(step.resource):
                    with walking(obj):
                        kind = group_kind(obj)
                        if all_resources or kind in KWOKCTL_DEFAULT_FILTER:
                            if (why := _not_created_by_kwokctl(obj, all_resources)) is not None:
                                doomed[why] += 1
                            record = {"type": "object", "resource": step.resource,
                                      "object": restorable_by_kwokctl(obj)}
                        else:
                            left_out[kind] += 1
                            continue
                    yield record
            for resource in reader.resources():  # the frames of resources without objects: a damaged one fails
                if resource not in counts:      # the export too (before its file is renamed into place)
                    for _ in reader.records(resource):
                        pass

        return export_yaml(records(), out), left_out, doomed


def _not_created_by_kwokctl(obj: dict[str, Any], all_resources: bool) -> str | None:
    """Why kwokctl's restore will not create ``obj`` (None if it will): the API server refuses a pod's ephemeral
    containers on create, and kwokctl skips an object whose owner it did not create ("missing owner")."""
    if obj.get("kind") == "Pod" and ((obj.get("spec") or {}).get("ephemeralContainers")):
        return "pods with ephemeral containers (the API server refuses them on create)"
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        owner = group_kind({"apiVersion": ref.get("apiVersion", ""), "kind": ref.get("kind", "")})
        if not all_resources and owner not in KWOKCTL_DEFAULT_FILTER:
            return f"objects owned by a {ref.get('kind')}, which the export leaves out (kwokctl skips a missing owner)"
    return None
