"""What a snapshot's objects name but neither the snapshot nor the target holds is listed before restore writes
anything (found black-box testing: a `save -l` snapshot took three restores to learn of a missing ServiceAccount,
PriorityClass and RuntimeClass, one refusal at a time; a claim's missing StorageClass went unsaid)."""

from __future__ import annotations

import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.errors import ExitCode
from kwoksnap.kube import Client
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_missing_dependencies_are_listed_up_front(kwok_cluster: LocalCluster, client: Client,
                                                 tmp_path: Path) -> None:
    ns, node = f"t-{uuid.uuid4().hex[:10]}", f"dep-node-{uuid.uuid4().hex[:6]}"
    container = {"containers": [{"name": "c", "image": "i"}]}

    def pod(name: str, **spec: str) -> dict[str, object]:
        return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node, **container, **spec},
                "status": {"phase": "Running"}}

    snapshot = write_snapshot(tmp_path / "deps.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("v1/serviceaccounts", "ServiceAccount", True, [{"metadata": {"name": "held", "namespace": ns}}]),
        ("v1/pods", "Pod", True, [
            pod("a", serviceAccountName="builder", priorityClassName="high"),
            pod("b", serviceAccountName="builder", runtimeClassName="gvisor"),
            pod("c", serviceAccountName="held", priorityClassName="system-cluster-critical")]),
        ("v1/persistentvolumeclaims", "PersistentVolumeClaim", True, [{
            "metadata": {"name": "data", "namespace": ns},
            "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]),
    ])
    try:
        proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "5", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == ExitCode.PARTIAL, proc.stdout + proc.stderr  # the pods are refused, as announced
        warnings = [line for line in proc.stderr.splitlines() if "neither the snapshot nor the target" in line]
        assert warnings == [
            f"warning: pods name 1 ServiceAccount(s) that neither the snapshot nor the target holds, so the pods are "
            f"refused where ServiceAccount admission runs: {ns}/builder (2) (in parentheses: how many objects name "
            "each)",
            "warning: pods name 1 PriorityClass(s) that neither the snapshot nor the target holds, so the pods are "
            "refused where Priority admission runs: high (1) (in parentheses: how many objects name each)",
            "warning: pods name 1 RuntimeClass(s) that neither the snapshot nor the target holds, so the pods are "
            "refused where RuntimeClass admission runs: gvisor (1) (in parentheses: how many objects name each)",
            "warning: persistentvolumeclaims name 1 StorageClass(s) that neither the snapshot nor the target holds, "
            "so unbound claims wait for it: fast (1) (in parentheses: how many objects name each)",
        ], proc.stderr
        assert proc.stderr.index("neither the snapshot") < proc.stderr.index("failed:")  # said before the writes
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")
