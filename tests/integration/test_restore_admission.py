"""Admission objects in a snapshot do not change or refuse what restore writes: a LimitRange and a ResourceQuota
that came after the pods in the source are restored after them, so the pods come back as recorded (found black-box
testing: the LimitRange added limits to restored pods, and failed the ones recorded without requests). A webhook
whose backend does not run in the target comes last of all, after the target's controllers have adopted the
restored pods (found black-box testing: it refused their adoption), and a second restore skips what the first made
although admission now refuses its creates (it failed them)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.errors import ExitCode, NotFound
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
        template = {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "img"}],
                             "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]}}
        client.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", {
            "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                                  "template": template}})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(
                1 for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods", params={
                    "labelSelector": "app=web"}) if (p.get("status") or {}).get("phase") == "Running") < 2:
            time.sleep(0.5)
        client.create(f"/api/v1/namespaces/{namespace}/resourcequotas", {
            "metadata": {"name": "quota"}, "spec": {"hard": {"pods": "1"}}})  # fewer than there are
        client.create(WEBHOOKS, webhook(namespace))  # (only this namespace, and only once nothing more is made)
        snapshot = tmp_path / "s.kws"
        proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "namespaces,nodes,pods,"
                        "limitranges,resourcequotas,replicasets,deployments,validatingwebhookconfigurations",
                        kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr
    finally:
        with contextlib.suppress(NotFound):
            client.delete(f"{WEBHOOKS}/{namespace}")
        client.delete(f"/api/v1/nodes/{node}")
    target = make_cluster("admission")  # standard profile: LimitRanger and ResourceQuota admission run
    for run in ("first", "again"):
        proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "60", kubeconfig=target.kubeconfig)
        assert proc.returncode == 0, (run, proc.stderr + proc.stdout)
        proc = kwoksnap("diff", str(snapshot), "--live", kubeconfig=target.kubeconfig)
        assert proc.returncode == ExitCode.OK, (run, proc.stdout)


WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def webhook(namespace: str) -> dict[str, object]:
    """A webhook that refuses every create and update in ``namespace``: its service does not exist."""
    return {"metadata": {"name": namespace}, "webhooks": [{
        "name": "refuse.example.com", "failurePolicy": "Fail", "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "default", "name": "missing", "port": 443}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                   "resources": ["*"]}]}]}
