"""KWOK's getting-started guide, on a cluster made by `kwoksnap cluster create`: a fake node, 10 pods Running."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import yaml

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import NotFound
from kwoksnap.kube import Client, load_config


def fake_node(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/role": "agent", "node-role.kubernetes.io/agent": "", "type": "kwok"},
        },
        "spec": {"taints": [{"effect": "NoSchedule", "key": "kwok.x-k8s.io/node", "value": "fake"}]},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "",
                         "kubeProxyVersion": "fake", "kubeletVersion": "fake", "machineID": "",
                         "operatingSystem": "linux", "osImage": "", "systemUUID": ""},
            "phase": "Running",
        },
    }


def deployment(name: str, node: str, replicas: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
                    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "fake-container", "image": "fake-image"}],
                },
            },
        },
    }


def test_getting_started(kwok_cluster: LocalCluster, client: Client, namespace: str) -> None:
    # The cluster's private keys are the user's alone (black-box finding: kwokctl leaves them 0644).
    keys = list((kwok_cluster.directory / "pki").glob("*.key"))
    assert keys and all(k.stat().st_mode & 0o777 == 0o600 for k in keys), keys
    node = f"kwok-node-{uuid.uuid4().hex[:6]}"
    client.create("/api/v1/nodes", fake_node(node))
    try:
        client.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("fake-pod", node, 10))
        deadline = time.monotonic() + 60
        running: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            pods = client.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == node]
            if len(running) == 10:
                break
            time.sleep(0.5)
        assert len(running) == 10, f"only {len(running)} of 10 pods Running on {node} after 60 s"

        conditions = client.get(f"/api/v1/nodes/{node}")["status"]["conditions"]
        ready = [c for c in conditions if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"

        # The capture audit policy logs pod creates and pod status writes at RequestResponse, with the full object.
        pod_names = {p["metadata"]["name"] for p in running}  # type: ignore[index]
        creates: set[str] = set()
        status_writes: set[str] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (creates >= pod_names and status_writes >= pod_names):
            for line in kwok_cluster.audit_log.read_bytes().splitlines():
                ev = orjson.loads(line)
                ref = ev.get("objectRef", {})
                if ref.get("resource") != "pods" or ref.get("namespace") != namespace:
                    continue
                assert ev["stage"] != "RequestReceived"
                assert ev["verb"] not in ("get", "list", "watch")
                if ev["stage"] != "ResponseComplete":
                    continue
                obj = ev.get("responseObject") or {}
                name = obj.get("metadata", {}).get("name")
                if ev["verb"] == "create" and not ref.get("subresource"):
                    assert ev["level"] == "RequestResponse"
                    creates.add(name)
                elif ref.get("subresource") == "status" and ev["verb"] in ("patch", "update"):
                    assert ev["level"] == "RequestResponse"
                    assert "managedFields" not in obj.get("metadata", {})
                    status_writes.add(name)
            time.sleep(0.5)
        assert creates >= pod_names, f"pod creates missing from the audit log: {sorted(pod_names - creates)[:3]}"
        assert status_writes >= pod_names, f"pod status writes missing: {sorted(pod_names - status_writes)[:3]}"
    finally:
        client.delete(f"/api/v1/nodes/{node}")


def test_a_service_account_token_kubeconfig_authenticates(kwok_cluster: LocalCluster, client: Client,
                                                          namespace: str, tmp_path: Path) -> None:
    """Black-box finding: a kubeconfig with a token was ignored, so every request went out as system:anonymous."""
    client.create(f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "viewer"}})
    deadline = time.monotonic() + 30
    while True:
        try:
            token = client.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/viewer/token",
                                  {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                   "spec": {"expirationSeconds": 600}})["status"]["token"]
            break
        except NotFound:  # the ServiceAccount is not visible yet
            assert time.monotonic() < deadline
            time.sleep(0.2)
    cluster = yaml.safe_load(kwok_cluster.kubeconfig.read_text())["clusters"][0]
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa", "clusters": [cluster],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "viewer"}}],
        "users": [{"name": "viewer", "user": {"token": token}}]}))
    with Client(load_config(str(config))) as as_viewer:
        review = as_viewer.create("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:viewer"


def test_cluster_create_takes_a_heartbeat_factor(workdir: Path) -> None:
    """Black-box finding: an inputs-mode replay of the demo incident on a cluster with kwokctl's default heartbeat
    factor (a 200 s grace period) left the killed nodes Ready; the source had 0.25 (10 s). `cluster create` passes
    the factor on to kwokctl, and the node lifecycle controller's grace period follows it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "KWOKSNAP_WORKDIR": str(workdir)}
    name = f"hbf{os.getpid()}"

    def kwoksnap(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", *args], capture_output=True, text=True,
                              env=env, timeout=600)

    assert kwoksnap("create", "--name", name, "--heartbeat-factor", "0").returncode == 2  # (more than 0)
    try:
        made = kwoksnap("create", "--name", name, "--heartbeat-factor", "0.25")
        assert made.returncode == 0, made.stderr
        said = (workdir / "clusters" / name / "kwok.yaml").read_text()
        assert "--node-monitor-grace-period=10s\n" in said, said[:2000]  # (40 s x 0.25; 3m20s by default)
    finally:
        kwoksnap("delete", "--name", name)
