"""Fill a KWOK cluster with a realistic workload at a chosen size (tests, benchmarks, the demo).

Why this module exists: the round-trip acceptance test and the save/restore benchmarks need the same kind of
cluster at different sizes: fake nodes, Deployments, a StatefulSet, a DaemonSet, a Job, pods that stay Pending,
Services, ConfigMaps, Secrets, a PVC bound to a PV, and a CRD with custom resources. Everything is created through
the API server, and ``wait_settled`` waits until kwok and the controllers have brought it to a steady state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kwoksnap.errors import ClusterError, Conflict
from kwoksnap.kube.client import Client

Obj = dict[str, Any]
TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
CRD_GROUP = "example.kwoksnap.io"


@dataclasses.dataclass(frozen=True)
class Size:
    nodes: int = 50
    namespaces: int = 3
    deployments_per_namespace: int = 4
    replicas: int = 20  # per Deployment
    pending_pods: int = 5  # a Deployment whose pods fit no node
    configmaps_per_namespace: int = 10
    # Seconds pods tolerate an unreachable/not-ready node before eviction (None: the API server's default, 300).
    eviction_seconds: int | None = None


def fake_node(name: str, *, zone: str = "zone-a") -> Obj:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": zone}},
        "spec": {"taints": [{"effect": "NoSchedule", "key": "kwok.x-k8s.io/node", "value": "fake"}]},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}, "phase": "Running"},
    }


def pod_template(app: str, eviction_seconds: int | None = None, **spec: Any) -> Obj:
    tolerations: list[Obj] = [TOLERATION]
    if eviction_seconds is not None:
        tolerations += [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": eviction_seconds} for t in ("not-ready", "unreachable")]
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"tolerations": tolerations, "nodeSelector": {"type": "kwok"},
                 "containers": [{"name": "main", "image": f"registry.example/{app}:1",
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                 "env": [{"name": "MODE", "value": "production"}]}], **spec},
    }


def _create(client: Client, path: str, obj: Obj) -> None:
    with contextlib.suppress(Conflict):  # populate is re-runnable
        client.create(path, obj)


def populate(client: Client, size: Size = Size(), *, concurrency: int = 16) -> dict[str, int]:
    """Create the workload; returns the expected pod count per namespace (without the DaemonSet's)."""
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: _create(client, "/api/v1/nodes", fake_node(f"kwok-node-{i:05d}",
                                                                           zone=f"zone-{'abc'[i % 3]}")),
                      range(size.nodes)))
    _create(client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{CRD_GROUP}"},
        "spec": {"group": CRD_GROUP, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    })
    expected: dict[str, int] = {}
    for n in range(size.namespaces):
        ns = f"app-{n}"
        _create(client, "/api/v1/namespaces", {"metadata": {"name": ns, "labels": {"team": f"team-{n}"}}})
        jobs: list[tuple[str, Obj]] = []
        for i in range(size.configmaps_per_namespace):
            jobs.append((f"/api/v1/namespaces/{ns}/configmaps",
                         {"metadata": {"name": f"config-{i}"}, "data": {"key": f"value-{i}" * 20}}))
        jobs.append((f"/api/v1/namespaces/{ns}/secrets",
                     {"metadata": {"name": "db-credentials"}, "stringData": {"password": "s3cr3t-value"}}))
        # A long-lived token Secret a user made for a ServiceAccount (made first: the token controller deletes a
        # token Secret whose ServiceAccount it cannot find).
        _create(client, f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "builder"}})
        jobs.append((f"/api/v1/namespaces/{ns}/secrets", {
            "metadata": {"name": "builder-token", "annotations": {"kubernetes.io/service-account.name": "builder"}},
            "type": "kubernetes.io/service-account-token"}))
        for d in range(size.deployments_per_namespace):
            app = f"web-{d}"
            jobs.append((f"/apis/apps/v1/namespaces/{ns}/deployments", {
                "metadata": {"name": app, "labels": {"app": app}},
                "spec": {"replicas": size.replicas, "selector": {"matchLabels": {"app": app}},
                         "template": pod_template(app, size.eviction_seconds)}}))
            jobs.append((f"/api/v1/namespaces/{ns}/services", {
                "metadata": {"name": app}, "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}}))
        expected[ns] = size.deployments_per_namespace * size.replicas
        jobs.append((f"/apis/{CRD_GROUP}/v1/namespaces/{ns}/widgets",
                     {"apiVersion": f"{CRD_GROUP}/v1", "kind": "Widget", "metadata": {"name": "gadget"},
                      "spec": {"size": n}}))
        for path, obj in jobs:
            _create_retrying_crs(client, path, obj)
    ns = "app-0"
    _create(client, f"/apis/apps/v1/namespaces/{ns}/statefulsets", {
        "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": pod_template("db", size.eviction_seconds)}})
    _create(client, f"/apis/apps/v1/namespaces/{ns}/daemonsets", {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")}})
    _create(client, f"/apis/batch/v1/namespaces/{ns}/jobs", {
        "metadata": {"name": "migrate"},
        "spec": {"completions": 3, "parallelism": 3, "backoffLimit": 0,
                 "template": pod_template("migrate", size.eviction_seconds, restartPolicy="Never")}})
    _create(client, f"/apis/apps/v1/namespaces/{ns}/deployments", {
        "metadata": {"name": "unschedulable"},
        "spec": {"replicas": size.pending_pods, "selector": {"matchLabels": {"app": "unschedulable"}},
                 "template": pod_template("unschedulable", size.eviction_seconds,
                                          nodeSelector={"type": "gpu-that-does-not-exist"})}})
    expected[ns] += 3 + 3 + size.pending_pods
    _create(client, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "manual", "volumeName": "pv-data"}})
    _create(client, "/api/v1/persistentvolumes", {
        "metadata": {"name": "pv-data"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                 "hostPath": {"path": "/tmp/pv-data"}, "claimRef": {"namespace": ns, "name": "data"}}})
    return expected


def _create_retrying_crs(client: Client, path: str, obj: Obj, timeout: float = 30.0) -> None:
    """Custom resources are served a moment after their CRD is created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _create(client, path, obj)
            return
        except ClusterError as exc:
            if CRD_GROUP not in path or time.monotonic() > deadline or getattr(exc, "status", 0) != 404:
                raise
            time.sleep(0.2)


def wait_settled(client: Client, expected: dict[str, int], nodes: int, timeout: float = 300.0) -> None:
    """Until every expected pod exists, scheduled pods run (or the Job's pods succeeded), PV and PVC are Bound."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        pods = [p for p, _ in client.list_items("/api/v1/pods") if p["metadata"]["namespace"] in expected]
        by_ns: dict[str, int] = {}
        unsettled = 0
        for p in pods:
            app = p["metadata"].get("labels", {}).get("app")
            if app == "agent":
                continue
            by_ns[p["metadata"]["namespace"]] = by_ns.get(p["metadata"]["namespace"], 0) + 1
            phase = p["status"].get("phase")
            if app == "migrate":
                unsettled += phase != "Succeeded"
            elif app != "unschedulable":
                unsettled += phase != "Running"
        agents = sum(1 for p in pods if p["metadata"].get("labels", {}).get("app") == "agent"
                     and p["status"].get("phase") == "Running")
        pvc = client.get("/api/v1/namespaces/app-0/persistentvolumeclaims/data").get("status", {}).get("phase")
        last = f"pods {by_ns} (want {expected}), unsettled {unsettled}, agents {agents}/{nodes}, pvc {pvc}"
        if by_ns == expected and not unsettled and agents == nodes and pvc == "Bound":
            return
        time.sleep(1.0)
    raise ClusterError(f"workload did not settle in {timeout:.0f}s: {last}")
