"""In inputs mode a user's patch is sent as the patch it was, whatever the object: the recorded result holds what
the source's skipped actors had made of it. Black-box finding: an HPA's 8 replicas came along with a user's `kubectl
annotate deploy web`, replayed as a PUT of the resulting Deployment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import ExitCode
from kwoksnap.kube import Client


def deployment(namespace: str, name: str, replicas: int, **meta: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": f"src-{name}", **meta},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "c", "image": "img"}],
                         "nodeSelector": {"kwoksnap.io/test": "nowhere"}}}}}  # never scheduled


def patch_line(namespace: str, name: str, at: float, request: Any, response: Any,
               manager: str = "kubectl-annotate") -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
    return orjson.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"patch-{at}",
        "stage": "ResponseComplete", "verb": "patch",
        "requestURI": f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}?fieldManager={manager}",
        "user": {"username": "alice", "groups": ["system:authenticated"]}, "userAgent": "kubectl/v1.36.3",
        "objectRef": {"resource": "deployments", "namespace": namespace, "name": name, "apiGroup": "apps",
                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200}, "requestObject": request, "responseObject": response,
        "requestReceivedTimestamp": stamp, "stageTimestamp": stamp}) + b"\n"


def test_a_users_patch_leaves_what_skipped_actors_did_out(kwok_cluster: LocalCluster, client: Client,
                                                          namespace: str, tmp_path: Path) -> None:
    client.create(f"/apis/apps/v1/namespaces/{namespace}/deployments",
                  {**deployment(namespace, "web", 1), "metadata": {"name": "web"}})
    t = time.time() - 60
    note = {"metadata": {"annotations": {"note": "hello"}}}
    log = tmp_path / "audit.log"
    log.write_bytes(
        # the source's HPA had scaled web to 8 before the user's annotate: the result says 8
        patch_line(namespace, "web", t, note, deployment(namespace, "web", 8, annotations={"note": "hello"}))
        # a Deployment the target lacks (the log starts in the middle of its life): created from the result
        + patch_line(namespace, "other", t + 1, note, deployment(namespace, "other", 2,
                                                                  annotations={"note": "hello"})))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--mode", "inputs", "--speed", "max", "--resources",
                           "deployments", "--no-fidelity"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    web = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert web["spec"]["replicas"] == 1 and web["metadata"]["annotations"]["note"] == "hello"
    other = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/other")
    assert other["spec"]["replicas"] == 2 and other["metadata"]["annotations"]["note"] == "hello"


def test_a_users_server_side_apply_takes_the_fields_restore_wrote(kwok_cluster: LocalCluster, client: Client,
                                                                   namespace: str, tmp_path: Path) -> None:
    """Black-box finding: sent as the patch it was, a user's `kubectl apply --server-side` of an object restore had
    written was refused (409 "conflicts with kwoksnap": save drops managedFields, so restore's manager owns every
    field); the recorded apply had succeeded."""
    client.create(f"/apis/apps/v1/namespaces/{namespace}/deployments",
                  {**deployment(namespace, "web", 2), "metadata": {"name": "web"}})  # (as restore writes it)
    applied = {k: v for k, v in deployment(namespace, "web", 4).items() if k != "metadata"} | {
        "metadata": {"name": "web", "namespace": namespace}}
    log = tmp_path / "audit.log"
    log.write_bytes(patch_line(namespace, "web", time.time() - 60, applied, deployment(namespace, "web", 4),
                               manager="kubectl"))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--mode", "inputs", "--speed", "max", "--resources",
                           "deployments", "--no-fidelity"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")["spec"]["replicas"] == 4
