"""A finished Job whose ttlSecondsAfterFinished ran out before the restore: the target's TTL controller deletes it
and its pod at once. Restore says so and does not wait for the gone pod's adoption (found black-box testing: the
restore waited its whole settle timeout, then failed the pod as "not adopted", or, rerun, said nothing)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.kube import Client
from tests.integration.snapshots import write_snapshot
from tests.integration.test_snapshot_roundtrip import kwoksnap


def test_a_job_past_its_ttl_is_announced_and_its_gone_pod_not_waited_for(kwok_cluster: LocalCluster,
                                                                         client: Client, tmp_path: Path) -> None:
    ns, node, job_uid = f"t-{uuid.uuid4().hex[:10]}", f"ttl-node-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    labels = {"batch.kubernetes.io/controller-uid": job_uid, "batch.kubernetes.io/job-name": "done",
              "controller-uid": job_uid, "job-name": "done"}
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    container = {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}
    job = {"metadata": {"name": "done", "namespace": ns, "uid": job_uid, "labels": labels},
           "spec": {"ttlSecondsAfterFinished": 5, "selector": {"matchLabels": {
               "batch.kubernetes.io/controller-uid": job_uid}}, "template": {"metadata": {"labels": labels},
                                                                           "spec": container}},
           "status": {"succeeded": 1, "startTime": long_ago, "completionTime": long_ago, "conditions": [
               {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": long_ago},
               {"type": "Complete", "status": "True", "lastTransitionTime": long_ago}]}}
    pod = {"metadata": {"name": "done-abcde", "namespace": ns, "labels": labels,
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "done", "uid": job_uid,
                                             "controller": True, "blockOwnerDeletion": True}]},
           "spec": {"nodeName": node, **container}, "status": {"phase": "Succeeded"}}
    snapshot = write_snapshot(tmp_path / "ttl.kws", [
        ("v1/namespaces", "Namespace", False, [{"metadata": {"name": ns}}]),
        ("v1/nodes", "Node", False, [fake_node(node)]),
        ("batch/v1/jobs", "Job", True, [job]),
        ("v1/pods", "Pod", True, [pod]),
    ])
    try:
        begun = time.monotonic()
        proc = kwoksnap("restore", str(snapshot), "--settle-timeout", "90", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert time.monotonic() - begun < 80  # not the whole settle timeout
        assert (f"warning: 1 finished Job(s) had run out their ttlSecondsAfterFinished before this restore, so a "
                f"target that runs the TTL-after-finished controller deletes them and their pods at once (clusters "
                f"made with --profile replay do not run it): {ns}/done") in proc.stderr, proc.stderr
        # The TTL controller deletes the Job, then the garbage collector its pod: when that comes before restore's
        # check of the pod's owner, it is said, not waited for; otherwise the restore was done before.
        if "were deleted by the target" in proc.stderr:
            assert f"Pod {ns}/done-abcde" in proc.stderr, proc.stderr
    finally:
        client.delete(f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        client.delete(f"/api/v1/nodes/{node}")
