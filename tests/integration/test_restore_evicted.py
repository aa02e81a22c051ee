"""A ReplicaSet's pod its kubelet evicted (phase Failed) is never adopted: the ReplicaSet controller claims only
active pods. Restore keeps its controller reference instead of waiting for adoption (review finding: it waited the
whole settle timeout, then failed the pod as "not adopted", exit 5; such pods are common in production snapshots)."""

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


def test_an_evicted_pod_keeps_its_replicaset(kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    ns, node, rs_uid = f"t-{uuid.uuid4().hex[:10]}", f"ev-node-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    labels = {"app": "web"}
    container = {"containers": [{"name": "c", "image": "i"}]}
    rs = {"metadata": {"name": "web", "namespace": ns, "uid": rs_uid, "labels": labels},
          "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": labels}, "spec": container}},
          "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}}
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs_uid, "controller": True,
              "blockOwnerDeletion": True}]
    pods = [{"metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
             "spec": {"nodeName": node, **container}, "status": status}
            for name, status in (("web-evicted", {"phase": "Failed", "reason": "Evicted",
                                                  "message": "The node was low on resource: memory."}),
                                 ("web-running", {"phase": "Running", "conditions": [
                                     {"type": "Ready", "status": "True"}]}))]
    snapshot = write_snapshot(tmp_path / "evicted.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("v1/pods", "Pod", True, pods),
        ("apps/v1/replicasets", "ReplicaSet", True, [rs]),
    ])
    try:
        begun = time.monotonic()
        proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "60", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert time.monotonic() - begun < 50  # not the whole settle timeout
        target_rs = client.get(f"/apis/apps/v1/namespaces/{ns}/replicasets/web")["metadata"]["uid"]
        for name in ("web-evicted", "web-running"):
            pod = client.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            assert [(r["kind"], r["uid"], r.get("controller")) for r in pod["metadata"]["ownerReferences"]] == [
                ("ReplicaSet", target_rs, True)], name
        assert client.get(f"/api/v1/namespaces/{ns}/pods/web-evicted")["status"]["reason"] == "Evicted"
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")


def test_a_pod_the_target_made_itself_keeps_its_status_when_skipped(kwok_cluster: LocalCluster, client: Client,
                                                                    tmp_path: Path) -> None:
    """Review finding: --on-conflict skip still wrote the snapshot's status onto an existing pod whose phase or IP
    differed, also one restore never made (meant for a pod a cut-off earlier run left without its status)."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        spec = {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"kwoksnap.io/test": "nowhere"}}
        client.create(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "mine"}, "spec": spec})
        snapshot = write_snapshot(tmp_path / "s.kws", [
            ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
            ("v1/pods", "Pod", True, [{"metadata": {"name": "mine", "namespace": ns}, "spec": spec,
                                       "status": {"phase": "Running", "podIP": "10.0.0.9"}}]),
        ])
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert client.get(f"/api/v1/namespaces/{ns}/pods/mine")["status"]["phase"] == "Pending"
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})


def test_a_finished_terminating_pod_is_said_removed_at_once(kwok_cluster: LocalCluster, client: Client,
                                                           tmp_path: Path) -> None:
    """Review finding: a snapshot can catch a pod its kubelet has finished and is about to remove (Terminating,
    phase Succeeded, no finalizer). The API server removes such a pod at once when restore deletes it again (no
    grace period for a finished pod), and restore counted it as created without a word."""
    ns, node = f"t-{uuid.uuid4().hex[:10]}", f"fin-node-{uuid.uuid4().hex[:6]}"
    container = {"containers": [{"name": "c", "image": "i"}]}
    deleted = {"deletionTimestamp": "2026-11-01T10:00:30Z", "deletionGracePeriodSeconds": 30}
    rs_uid = str(uuid.uuid4())  # (review: its deferred owner reference then also said it "deleted meanwhile")
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs_uid, "controller": True}]
    pods = [{"metadata": {"name": "done", "namespace": ns, "ownerReferences": owner, **deleted},
             "spec": {"nodeName": node, **container}, "status": {"phase": "Succeeded"}},
            {"metadata": {"name": "stopping", "namespace": ns, **deleted}, "spec": {"nodeName": node, **container},
             "status": {"phase": "Running"}}]
    snapshot = write_snapshot(tmp_path / "finished.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("v1/pods", "Pod", True, pods),
        ("apps/v1/replicasets", "ReplicaSet", True, [{
            "metadata": {"name": "web", "namespace": ns, "uid": rs_uid, "labels": {"app": "web"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": container}}}]),
    ])
    try:
        proc = kwoksnap("restore", str(snapshot), "-o", "json", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["removedAtOnce"] == [f"{ns}/done"]
        assert json.loads(proc.stdout)["deletedMeanwhile"] == []
        assert not client.exists(f"/api/v1/namespaces/{ns}/pods/done")
        assert client.get(f"/api/v1/namespaces/{ns}/pods/stopping")["metadata"].get("deletionTimestamp")
        proc = kwoksnap("restore", str(snapshot), "--on-conflict", "skip", kubeconfig=kwok_cluster.kubeconfig)
        assert "1 pod(s) were Terminating in the snapshot and had finished" in proc.stderr, proc.stderr
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")


def test_skip_leaves_a_status_written_since_and_replace_writes_the_recorded_one_whole(
        kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    """Black-box findings: a rerun with the default --on-conflict skip wrote the snapshot's status over a pod whose
    status had changed since (evicted: it became Running with the reason Evicted), while saying it skipped it; and
    --on-conflict replace merged the recorded status into the target's (the reason stayed) and left a node's status
    as the target had it."""
    ns, node = f"t-{uuid.uuid4().hex[:10]}", f"st-node-{uuid.uuid4().hex[:6]}"
    running = {"phase": "Running", "podIP": "10.0.0.7",
               "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-01T10:00:00Z"}]}
    snapshot = write_snapshot(tmp_path / "s.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("v1/pods", "Pod", True, [{"metadata": {"name": "p", "namespace": ns},
                                   "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
                                   "status": running}]),
    ])
    pod = f"/api/v1/namespaces/{ns}/pods/p"
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        saved = tmp_path / "saved.kws"  # (the pod as a cluster holds it: what its admission added, to replace)
        proc = kwoksnap("save", "-n", ns, "--include", "pods", "-o", str(saved), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        evicted = {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
        client.patch(f"{pod}/status", {"status": evicted})
        client.patch(f"/api/v1/nodes/{node}/status", {"status": {"capacity": {"cpu": "4"}}})
        for again in (snapshot, saved):
            proc = kwoksnap("restore", str(again), kubeconfig=kwok_cluster.kubeconfig)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            status = client.get(pod)["status"]
            assert (status["phase"], status.get("reason")) == ("Failed", "Evicted"), status
        proc = kwoksnap("restore", str(saved), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        status = client.get(pod)["status"]
        assert (status["phase"], status.get("podIP"), status.get("reason"), status.get("message")) == (
            "Running", "10.0.0.7", None, None), status
        # Black-box finding: a replace of a pod being deleted in the target (frozen: kwok leaves it Terminating)
        # counted it "updated", exit 0; no write undoes a deletion.
        client.delete(pod, {"gracePeriodSeconds": 30})
        proc = kwoksnap("restore", str(saved), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 5 and "being deleted in the target" in proc.stdout + proc.stderr, proc.stderr
        client.delete(pod, {"gracePeriodSeconds": 0})
        node_only = write_snapshot(tmp_path / "node.kws", [("v1/nodes", "Node", False, [fake_node(node)])])
        proc = kwoksnap("restore", str(node_only), "--on-conflict", "replace", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert client.get(f"/api/v1/nodes/{node}")["status"]["capacity"]["cpu"] == "32"
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")
