"""A CRD the target never establishes (its kind taken by another CRD) fails alone, with its custom resources; the
rest of the snapshot is restored. Black-box finding: one such CRD stopped the whole restore after 60 s (exit 4, "CRDs
not Established"), with 4 of 293 objects written; and a CRD the source itself never established (NamesAccepted
False) was waited for as well."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

from kwoksnap.errors import NotFound
from kwoksnap.kube import Client
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import SnapshotSource
from kwoksnap.store import KwsReader
from tests.integration.snapshots import write_snapshot

CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(group: str, plural: str, kind: str, established: bool) -> dict[str, Any]:
    state = "True" if established else "False"
    return {"metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": kind},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
            "status": {"conditions": [{"type": "NamesAccepted", "status": state},
                                      {"type": "Established", "status": state}]}}


def test_a_crd_the_target_never_establishes_fails_alone(client: Client, tmp_path: Path) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    ns = f"t-{uuid.uuid4().hex[:10]}"
    # The target holds a CRD of kind Gizmo already: the snapshot's gizmos (kind Gizmo too) is never Established here
    client.create(f"/apis/{CRDS}", {k: v for k, v in crd(group, "oldgizmos", "Gizmo", True).items() if k != "status"})
    snapshot = write_snapshot(tmp_path / "crds.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        (CRDS, "CustomResourceDefinition", False, [
            crd(group, "widgets", "Widget", True), crd(group, "gizmos", "Gizmo", True),
            crd(group, "widgetzs", "Widget", False)]),  # never Established in the source either: not waited for
        ("v1/configmaps", "ConfigMap", True, [{"metadata": {"name": "settings", "namespace": ns},
                                              "data": {"k": "v"}}]),
        (f"{group}/v1/widgets", "Widget", True, [{"metadata": {"name": "w1", "namespace": ns}, "spec": {"a": 1}}]),
        (f"{group}/v1/gizmos", "Gizmo", True, [{"metadata": {"name": "g1", "namespace": ns}, "spec": {"b": 2}}]),
    ])
    try:
        with KwsReader(snapshot) as reader:
            begun = time.monotonic()
            summary = restore(client, SnapshotSource(reader), RestoreOptions(concurrency=1, crd_timeout=60))
            took = time.monotonic() - begun
        failed = sorted((f.resource, f.name) for f in summary.failures)
        assert failed == [(CRDS, f"gizmos.{group}"), (f"{group}/v1/gizmos", "g1")], summary.failures
        reason = next(f.reason for f in summary.failures if f.resource == CRDS)
        assert "created, but not Established (NamesAccepted False" in reason, reason  # (its names are taken)
        assert summary.results[CRDS].created == 2 and summary.results[CRDS].failed == 1
        assert client.get(f"/api/v1/namespaces/{ns}/configmaps/settings")["data"] == {"k": "v"}
        assert client.get(f"/apis/{group}/v1/namespaces/{ns}/widgets/w1")["spec"] == {"a": 1}
        assert took < 30  # no wait for a CRD whose names are taken (re-test finding: 60 s on every rerun)
    finally:
        for plural in ("oldgizmos", "widgets", "gizmos", "widgetzs"):
            with contextlib.suppress(NotFound):
                client.delete(f"/apis/{CRDS}/{plural}.{group}")
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
