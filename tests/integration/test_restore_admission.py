"""Admission objects in a snapshot do not change or refuse what restore writes: a LimitRange and a ResourceQuota
that came after the pods in the source are restored after them, so the pods come back as recorded (found black-box
testing: the LimitRange added limits to restored pods, and failed the ones recorded without requests)."""

from __future__ import annotations

from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.errors import ExitCode
from kwoksnap.kube import Client
from tests.conftest import ClusterFactory
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_limit_range_and_a_quota_leave_the_restored_pods_as_recorded(
        kwok_cluster: LocalCluster, client: Client, namespace: str, make_cluster: ClusterFactory,
        tmp_path: Path) -> None:
    node = f"node-{namespace}"
    client.create("/api/v1/nodes", fake_node(node))
    try:
        for i in range(2):  # no resources: BestEffort
            client.create(f"/api/v1/namespaces/{namespace}/pods", {
                "metadata": {"name": f"p{i}"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "img"}],
                         "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]}})
        client.create(f"/api/v1/namespaces/{namespace}/limitranges", {
            "metadata": {"name": "limits"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "default": {"cpu": "1"},
                                 "defaultRequest": {"cpu": "500m"}}]}})
        client.create(f"/api/v1/namespaces/{namespace}/resourcequotas", {
            "metadata": {"name": "quota"}, "spec": {"hard": {"pods": "1"}}})  # fewer than there are
        snapshot = tmp_path / "s.kws"
        proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "namespaces,nodes,pods,"
                        "limitranges,resourcequotas", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr
    finally:
        client.delete(f"/api/v1/nodes/{node}")
    target = make_cluster("admission")  # standard profile: LimitRanger and ResourceQuota admission run
    proc = kwoksnap("restore", str(snapshot), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    proc = kwoksnap("diff", str(snapshot), "--live", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stdout
