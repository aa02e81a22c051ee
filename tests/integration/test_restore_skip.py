"""``--on-conflict skip`` (the default) leaves the target's own objects as they are, and completes only what an
earlier restore made and left unfinished; a stop before the end names what it left. Review findings: it deleted the
target's own ConfigMap and pod that the snapshot held Terminating, wrote the snapshot's status over the target's own
objects, never completed a pod recorded Pending whose status write a cut-off run had lost, and a stop before the
end left objects alive that were Terminating without a word."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from kwoksnap.cluster.local import FROZEN_ANNOTATION, LocalCluster
from kwoksnap.errors import NotFound
from kwoksnap.kube import Client, load_config
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap

NOWHERE = {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"kwoksnap.io/test": "nowhere"}}
HOLD = ["example.com/hold"]
DELETING = {"deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0}


def test_skip_writes_nothing_over_the_targets_own_objects(kwok_cluster: LocalCluster, client: Client,
                                                          tmp_path: Path) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    with Client(load_config(str(kwok_cluster.kubeconfig)), user_agent="kubectl/v1.36.3") as own:  # not restore's
        own.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        try:
            own.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "settings"},
                                                               "data": {"important": "yes"}})
            own.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "web"}, "spec": NOWHERE})
            own.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "none-here"}})
            # One an earlier restore made (kwoksnap's field manager), left before its deletion was made again.
            client.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "restored", "finalizers": HOLD}})
            snapshot = write_snapshot(tmp_path / "s.kws", [
                ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
                ("v1/configmaps", "ConfigMap", True, [
                    {"metadata": {"name": "settings", "namespace": ns, "finalizers": HOLD, **DELETING},
                     "data": {"important": "from the snapshot"}},
                    {"metadata": {"name": "restored", "namespace": ns, "finalizers": HOLD, **DELETING}}]),
                ("v1/persistentvolumeclaims", "PersistentVolumeClaim", True, [
                    {"metadata": {"name": "data", "namespace": ns}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                        "storageClassName": "none-here", "volumeName": "pv-gone"},
                     "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}}]),
                ("v1/pods", "Pod", True, [{"metadata": {"name": "web", "namespace": ns, **DELETING}, "spec": NOWHERE,
                                           "status": {"phase": "Pending"}}]),
            ])
            proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "5", kubeconfig=kwok_cluster.kubeconfig)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            settings = own.get(f"/api/v1/namespaces/{ns}/configmaps/settings")
            assert settings["data"] == {"important": "yes"} and "deletionTimestamp" not in settings["metadata"]
            assert "deletionTimestamp" not in own.get(f"/api/v1/namespaces/{ns}/pods/web")["metadata"]
            assert own.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")["status"]["phase"] == "Pending"
            # restore's own is completed: made Terminating again, held by its finalizer
            restored = own.get(f"/api/v1/namespaces/{ns}/configmaps/restored")
            assert restored["metadata"].get("deletionTimestamp"), proc.stdout
        finally:
            for name in ("settings", "restored"):
                with contextlib.suppress(NotFound):
                    own.patch(f"/api/v1/namespaces/{ns}/configmaps/{name}", {"metadata": {"finalizers": None}})
            own.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})


def test_a_rerun_completes_a_pod_recorded_pending_whose_status_was_lost(kwok_cluster: LocalCluster, client: Client,
                                                                        tmp_path: Path) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        frozen = {"annotations": {FROZEN_ANNOTATION: "true"}}
        gated = {**NOWHERE, "schedulingGates": [{"name": "example.com/wait"}]}
        # As an earlier run cut off between the create and the status write leaves them:
        client.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "gated", **frozen}, "spec": gated})
        client.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "waiting", **frozen}, "spec": NOWHERE})
        unschedulable = {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes fit",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        snapshot = write_snapshot(tmp_path / "s.kws", [
            ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
            ("v1/pods", "Pod", True, [
                {"metadata": {"name": "gated", "namespace": ns}, "spec": gated, "status": unschedulable},
                {"metadata": {"name": "waiting", "namespace": ns}, "spec": NOWHERE, "status": unschedulable}]),
        ])
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in ("gated", "waiting"):
            conditions = client.get(f"/api/v1/namespaces/{ns}/pods/{name}")["status"].get("conditions") or []
            assert [(c["type"], c["reason"]) for c in conditions] == [("PodScheduled", "Unschedulable")], name
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})


def test_a_stop_before_the_end_names_the_objects_left_alive_that_were_terminating(
        kwok_cluster: LocalCluster, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: objects the snapshot holds Terminating are made so last of all; a Ctrl-C before then left
    them alive, counted created, and the summary said nothing."""
    from kwoksnap.restore import engine
    from kwoksnap.restore.source import SnapshotSource
    from kwoksnap.store import KwsReader

    ns = f"t-{uuid.uuid4().hex[:10]}"
    snapshot = write_snapshot(tmp_path / "s.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/configmaps", "ConfigMap", True, [
            {"metadata": {"name": "held", "namespace": ns, "finalizers": HOLD, **DELETING}}]),
    ])

    def ctrl_c(self: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine._Restorer, "relink", ctrl_c)  # (the stage before the terminations)
    mark = engine.SNAPSHOT_TAKEN_ANNOTATION  # an earlier restore's (review finding: kept by a stopped run)
    client.patch("/api/v1/namespaces/kube-system", {"metadata": {"annotations": {mark: "2020-01-01T00:00:00Z"}}})
    try:
        with KwsReader(snapshot) as reader:
            summary = engine.restore(client, SnapshotSource(reader), engine.RestoreOptions())
        assert summary.interrupted and summary.not_terminated == [f"ConfigMap {ns}/held"]
        assert summary.to_dict()["notTerminated"] == [f"ConfigMap {ns}/held"]
        assert "deletionTimestamp" not in client.get(f"/api/v1/namespaces/{ns}/configmaps/held")["metadata"]
        assert mark not in (client.get("/api/v1/namespaces/kube-system")["metadata"].get("annotations") or {})
        monkeypatch.undo()
        with KwsReader(snapshot) as reader:  # the rerun makes it Terminating
            assert engine.restore(client, SnapshotSource(reader), engine.RestoreOptions()).not_terminated == []
        assert client.get(f"/api/v1/namespaces/{ns}/configmaps/held")["metadata"].get("deletionTimestamp")
    finally:
        with contextlib.suppress(NotFound):
            client.patch(f"/api/v1/namespaces/{ns}/configmaps/held", {"metadata": {"finalizers": None}})
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
