"""A small, real incident on a local KWOK cluster: the source of the demo fixture and of replay's acceptance test.

Why this module exists: replay must be judged against something that really happened in a cluster, not against
hand-written logs. This scenario runs on a cluster made by ``kwoksnap cluster create`` (capture audit policy,
heartbeat factor 0.25 so a dead node is noticed in ~10 s): it snapshots a populated cluster, then scales a
Deployment up, lets two nodes die (their kubelet stops renewing the node Lease, so the node lifecycle controller
marks them NotReady and the taint manager evicts their pods, which the ReplicaSets recreate elsewhere), scales the
Deployment down, and runs a Job to completion. The audit log from the snapshot on is kept with it.

"Killing" a node hands its Lease to another holder: kwok only renews leases it holds, so it stops, exactly like a
kubelet that died (kwok v0.8.0 NodeLeaseController.sync; checked on a real cluster).
"""

from __future__ import annotations

import dataclasses
import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kwoksnap.capture.snapshot import SaveOptions, save_snapshot
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import Size, pod_template, populate, wait_settled
from kwoksnap.errors import ClusterError
from kwoksnap.kube.client import Client
from kwoksnap.kube.config import load_config

HEARTBEAT_FACTOR = 0.25  # kwokctl --heartbeat-factor: 10 s node grace period, 2.5 s lease renewals
SIZE = Size(nodes=20, namespaces=2, deployments_per_namespace=2, replicas=45, eviction_seconds=5)
USER_AGENT = "kubectl/v1.36.3 (kwoksnap incident scenario)"  # the scenario's own actions are a user's

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Incident:
    snapshot: Path
    audit_log: Path
    started_ns: int  # wall time the snapshot was taken; the audit log starts here
    dead_nodes: tuple[str, ...]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise ClusterError(f"scenario: timed out after {timeout:.0f}s waiting for {what}")


def _deployment_ready(client: Client, ns: str, name: str) -> bool:
    d = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    status = d.get("status") or {}
    want = d["spec"]["replicas"]
    return bool(status.get("observedGeneration") == d["metadata"]["generation"]
                and status.get("availableReplicas", 0) == want and status.get("replicas", 0) >= want
                and status.get("updatedReplicas", 0) == want)


def _pods(client: Client, ns: str, app: str) -> list[dict[str, Any]]:
    return [p for p, _ in client.list_items(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": f"app={app}"})]


def kill_node(client: Client, node: str) -> None:
    """Stop the node's heartbeats, like a kubelet that died."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
    lease = client.get(path)
    lease["spec"]["holderIdentity"] = "kubelet-that-died"
    lease["spec"]["leaseDurationSeconds"] = 3600
    client.replace(path, lease)


def run_incident(cluster: LocalCluster, out_dir: Path, *, size: Size = SIZE, log: Log = print) -> Incident:
    out_dir.mkdir(parents=True, exist_ok=True)
    with Client(load_config(str(cluster.kubeconfig)), user_agent=USER_AGENT) as c:
        log(f"populating {size.nodes} nodes ...")
        expected = populate(c, size)
        wait_settled(c, expected, size.nodes, timeout=300)
        time.sleep(3)  # let status writes and controllers quiesce before the snapshot
        started_ns = time.time_ns()
        snapshot = out_dir / "before.kws"
        summary = save_snapshot(c, snapshot, SaveOptions())
        log(f"snapshot: {summary.objects} objects -> {snapshot}")

        ns, app = "app-0", "web-0"
        replicas = size.replicas
        log(f"scale {ns}/{app} {replicas} -> {replicas + 15}")
        c.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/{app}", {"spec": {"replicas": replicas + 15}})
        wait_for("the scale-up", lambda: _deployment_ready(c, ns, app))

        victims = sorted({p["spec"]["nodeName"] for p in _pods(c, ns, app) if p["spec"].get("nodeName")})[:2]
        log(f"nodes dying: {', '.join(victims)}")
        for node in victims:
            kill_node(c, node)

        def evicted_and_replaced() -> bool:
            for v in victims:
                node = c.get(f"/api/v1/nodes/{v}")
                ready = [x["status"] for x in node["status"].get("conditions", []) if x["type"] == "Ready"]
                if ready == ["True"]:
                    return False
            on_dead = [p for n in range(size.namespaces) for d in range(size.deployments_per_namespace)
                       for p in _pods(c, f"app-{n}", f"web-{d}") if p["spec"].get("nodeName") in victims]
            if any(not p["metadata"].get("deletionTimestamp") for p in on_dead):
                return False
            return all(_deployment_ready(c, f"app-{n}", f"web-{d}") for n in range(size.namespaces)
                       for d in range(size.deployments_per_namespace))

        wait_for("NotReady nodes, evictions and replacements", evicted_and_replaced, timeout=240)

        log(f"scale {ns}/{app} -> {replicas - 10}")
        c.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/{app}", {"spec": {"replicas": replicas - 10}})
        wait_for("the scale-down", lambda: _deployment_ready(c, ns, app))

        log("job report: 4 completions")
        c.create(f"/apis/batch/v1/namespaces/{ns}/jobs", {
            "metadata": {"name": "report"},
            # (backoffLimit 3: replayed with --mode inputs at 10x, a pod can land on a node the target has not yet
            # noticed is dead; evicted, it is made again instead of failing the Job)
            "spec": {"completions": 4, "parallelism": 2, "backoffLimit": 3,
                     "template": pod_template("report", size.eviction_seconds, restartPolicy="Never")}})

        def job_done() -> bool:
            job = c.get(f"/apis/batch/v1/namespaces/{ns}/jobs/report")
            return any(x["type"] == "Complete" and x["status"] == "True"
                       for x in (job.get("status") or {}).get("conditions", []))

        wait_for("the job to complete", job_done)
        time.sleep(3)  # the last status writes reach the audit log
    audit = out_dir / "audit.log.gz"
    kept = cut_audit_log(cluster.audit_log, audit, since_ns=started_ns)
    log(f"audit log: {kept} events since the snapshot -> {audit}")
    return Incident(snapshot, audit, started_ns, tuple(victims))


def cut_audit_log(source: Path, out: Path, *, since_ns: int) -> int:
    """Copy the audit lines whose stageTimestamp is at or after ``since_ns`` into a gzip file (atomically)."""
    import orjson

    from kwoksnap.audit import parse_timestamp

    tmp = out.with_name(out.name + ".tmp")
    kept = 0
    with source.open("rb") as src, gzip.open(tmp, "wb", compresslevel=9) as dst:
        for line in src:
            try:
                ev = orjson.loads(line)
                ts = parse_timestamp(ev.get("stageTimestamp") or ev["requestReceivedTimestamp"])
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                continue
            if ts >= since_ns:
                dst.write(line)
                kept += 1
    tmp.replace(out)
    return kept
