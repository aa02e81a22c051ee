"""Admission objects in a snapshot do not change or refuse what restore writes: a LimitRange and a ResourceQuota
that came after the pods in the source are restored after them, so the pods come back as recorded (found black-box
testing: the LimitRange added limits to restored pods, and failed the ones recorded without requests). A webhook
whose backend does not run in the target comes last of all, after the target's controllers have adopted the
restored pods (found black-box testing: it refused their adoption), and a second restore skips what the first made
although admission now refuses its creates (it failed them)."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.errors import ExitCode, NotFound
from kwoksnap.kube import Client
from tests.conftest import ClusterFactory
from tests.integration.snapshots import write_snapshot
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
    for run in ("first", "again"):  # (a webhook calling a Service and failing closed is restored only if asked)
        proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "60", "--include-webhooks",
                        kubeconfig=target.kubeconfig)
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


def test_a_webhook_no_pod_serves_that_fails_closed_is_left_out(kwok_cluster: LocalCluster, client: Client,
                                                              tmp_path: Path) -> None:
    """Black-box finding: a restored ValidatingWebhookConfiguration calling a Service (failurePolicy Fail) refused
    the target's controller manager's and scheduler's lease renewals, and both stopped for good; restore exit 0.
    It is left out of a target that runs webhook admission, and said; one calling a URL, or failing open, is not."""
    suffix = uuid.uuid4().hex[:8]
    rules = [{"apiGroups": [f"nothing-{suffix}.kwoksnap.io"], "apiVersions": ["*"], "operations": ["CREATE"],
              "resources": ["*"]}]

    def config(name: str, client_config: dict[str, Any], policy: str) -> dict[str, Any]:
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": f"{name}-{suffix}"},
                "webhooks": [{"name": f"{name}.kwoksnap.io", "clientConfig": client_config, "rules": rules,
                              "failurePolicy": policy, "sideEffects": "None",
                              "admissionReviewVersions": ["v1"]}]}

    service = {"service": {"name": "nonexistent", "namespace": "default"}}
    configs = [config("closed", service, "Fail"), config("open", service, "Ignore"),
               config("url", {"url": "https://127.0.0.1:1/validate"}, "Fail")]
    snapshot = write_snapshot(tmp_path / "webhooks.kws", [
        ("admissionregistration.k8s.io/v1/validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
         False, configs)])
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        said = "warning: left out 1 admission webhook configuration(s) that call an in-cluster Service and fail closed"
        assert said in proc.stderr and f"ValidatingWebhookConfiguration/closed-{suffix}" in proc.stderr, proc.stderr
        dry = kwoksnap("restore", str(snapshot), "--dry-run", kubeconfig=kwok_cluster.kubeconfig)
        assert "2  (+1 left out: no pod serves them; --include-webhooks)" in dry.stdout, dry.stdout
        assert not client.exists(f"{path}/closed-{suffix}")
        assert client.exists(f"{path}/open-{suffix}") and client.exists(f"{path}/url-{suffix}")
    finally:
        for name in ("closed", "open", "url"):
            if client.exists(f"{path}/{name}-{suffix}"):
                client.delete(f"{path}/{name}-{suffix}")


def test_restoring_again_does_not_use_up_a_quota(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                  tmp_path: Path) -> None:
    """Black-box finding: each rerun POSTed the objects already there, and the quota admission charged every refused
    create: three reruns used up `configmaps=4` with 3 ConfigMaps, and a real create was then refused."""
    ns = f"/api/v1/namespaces/{namespace}"
    client.create(f"{ns}/resourcequotas", {"metadata": {"name": "rq"}, "spec": {"hard": {"configmaps": "4"}}})
    for name in ("c1", "c2"):
        client.create(f"{ns}/configmaps", {"metadata": {"name": name}, "data": {"k": name}})
    snapshot = tmp_path / "q.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "configmaps,resourcequotas",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    for _ in range(3):
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # kube-root-ca.crt, c1, c2: room for one more
    client.create(f"{ns}/configmaps", {"metadata": {"name": "c3"}, "data": {"k": "c3"}})
