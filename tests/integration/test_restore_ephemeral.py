"""A pod someone ran `kubectl debug` on holds ephemeral containers, which the API server refuses on create: restore
creates the pod without them and adds them through its ephemeralcontainers subresource (review and black-box
finding: every such pod failed, 422 "spec.ephemeralContainers: Forbidden: cannot be set on create")."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.kube import Client
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_debugged_pod_keeps_its_ephemeral_containers(kwok_cluster: LocalCluster, client: Client,
                                                       tmp_path: Path) -> None:
    ns, node = f"t-{uuid.uuid4().hex[:10]}", f"eph-node-{uuid.uuid4().hex[:6]}"
    debug = {"name": "debugger-x1", "image": "busybox", "targetContainerName": "app", "stdin": True, "tty": True}
    # (what the source's admission had added, as a saved pod holds it: a --on-conflict replace below sends it)
    admitted = {"serviceAccountName": "default", "automountServiceAccountToken": False, "tolerations": [
        {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for taint in ("not-ready", "unreachable")]}
    pod = {"metadata": {"name": "debugged", "namespace": ns},
           "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app"}], "ephemeralContainers": [debug],
                    **admitted},
           "status": {"phase": "Running", "ephemeralContainerStatuses": [
               {"name": "debugger-x1", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}
    snapshot = write_snapshot(tmp_path / "debugged.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("v1/pods", "Pod", True, [pod]),
    ])
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        live = client.get(f"/api/v1/namespaces/{ns}/pods/debugged")
        assert [c["name"] for c in live["spec"]["ephemeralContainers"]] == ["debugger-x1"]
        assert [c["name"] for c in live["status"]["ephemeralContainerStatuses"]] == ["debugger-x1"]
        rerun = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)  # found in place: as it is
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        # black-box finding: --on-conflict replace PUT the pod without them, refused (422 "may not change fields")
        rerun = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        # review finding: --on-conflict skip added the snapshot's debug container to the target's own pod
        client.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "theirs"}, "spec": {
            "containers": [{"name": "app", "image": "other"}], "nodeSelector": {"kwoksnap.io/test": "nowhere"}}})
        theirs = {**pod, "metadata": {"name": "theirs", "namespace": ns}}
        write_snapshot(tmp_path / "theirs.kws", [("v1/pods", "Pod", True, [theirs])])
        proc = kwoksnap("restore", str(tmp_path / "theirs.kws"), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not client.get(f"/api/v1/namespaces/{ns}/pods/theirs")["spec"].get("ephemeralContainers")
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")


def test_replace_keeps_the_token_volume_name_of_a_pod_the_target_made(kwok_cluster: LocalCluster, client: Client,
                                                                       tmp_path: Path) -> None:
    """Re-test finding: --on-conflict replace of a pod the target made itself (a StatefulSet's, re-created) was
    refused (422 "pod updates may not change fields"): its service-account token volume has its own random name."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        deadline = time.monotonic() + 30
        while not client.exists(f"/api/v1/namespaces/{ns}/serviceaccounts/default"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        live = client.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "db-0"}, "spec": {
            "containers": [{"name": "db", "image": "db"}], "nodeSelector": {"kwoksnap.io/test": "nowhere"}}})
        (theirs,) = [v["name"] for v in live["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
        recorded = json.loads(json.dumps(live).replace(theirs, "kube-api-access-zzzzz"))  # the source's pod
        snapshot = write_snapshot(tmp_path / "pod.kws", [("v1/pods", "Pod", True, [recorded])])
        proc = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        names = [v["name"] for v in client.get(f"/api/v1/namespaces/{ns}/pods/db-0")["spec"]["volumes"]]
        assert names == [theirs]
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
