"""A namespace that was Terminating in the snapshot: restore brings it back Active and says so, instead of failing
on a status write the API server refuses (found black-box testing: the restore reported the namespace as failed)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import ExitCode, NotFound
from kwoksnap.kube import Client
from kwoksnap.restore.transform import SUSPENDED_ANNOTATION
from tests.integration.test_snapshot_roundtrip import kwoksnap

HOLD = "kwoksnap.io/test-hold"


def _wait_gone(client: Client, path: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while client.exists(path):
        assert time.monotonic() < deadline, f"{path} still there after {seconds} s"
        time.sleep(0.5)


def _save_then_release(cluster: LocalCluster, client: Client, tmp_path: Path, namespace: str, include: str,
                       held: str, gone: str) -> Path:
    """Save ``namespace`` while ``held`` is held Terminating by its finalizer, then lift it and wait until ``gone``
    is gone: the snapshot holds a deletion the cluster has finished."""
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", include, kubeconfig=cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    client.patch(held, {"metadata": {"finalizers": None}})
    _wait_gone(client, gone)
    return snapshot


def test_a_terminating_namespace_is_restored_active_with_a_warning(
        kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    ns = f"t-term-{uuid.uuid4().hex[:8]}"
    ns_path = f"/api/v1/namespaces/{ns}"
    held = f"{ns_path}/configmaps/held"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        client.create(f"{ns_path}/configmaps", {"metadata": {"name": "held", "finalizers": [HOLD]},
                                                "data": {"k": "v"}})
        client.delete(ns_path)  # Terminating until the ConfigMap's finalizer goes
        assert client.get(ns_path)["status"]["phase"] == "Terminating"
        snapshot = _save_then_release(kwok_cluster, client, tmp_path, ns, "namespaces,configmaps", held, ns_path)

        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert "failed:" not in proc.stderr
        assert ("warning: 1 namespace(s) were Terminating in the snapshot and are restored Active" in proc.stderr
                and proc.stderr.rstrip().endswith(ns)), proc.stderr
        assert client.get(ns_path)["status"]["phase"] == "Active"
        assert client.get(held)["data"] == {"k": "v"}
        rerun = kwoksnap("restore", str(snapshot), "-o", "json", kubeconfig=kwok_cluster.kubeconfig)
        assert rerun.returncode == 0, rerun.stderr
        report = json.loads(rerun.stdout)
        assert report["failureCount"] == 0
        assert report["activeNamespaces"] == []  # it exists now: left as it is
        # A run that finishes with failures ends, like any error, on one `kwoksnap: error:` line (exit 5).
        refused = kwoksnap("restore", str(snapshot), "--on-conflict", "fail", kubeconfig=kwok_cluster.kubeconfig)
        assert refused.returncode == ExitCode.PARTIAL, refused.stderr
        assert refused.stderr.splitlines()[-1] == "kwoksnap: error: 2 object(s) failed (listed above)", refused.stderr
    finally:
        with contextlib.suppress(NotFound):
            client.patch(held, {"metadata": {"finalizers": None}})
        with contextlib.suppress(NotFound):
            client.delete(ns_path)
        # Other tests replay into this cluster without a restore of theirs: take the restore's mark off again.
        client.patch("/api/v1/namespaces/kube-system",
                     {"metadata": {"annotations": {"kwoksnap.io/snapshot-taken-at": None}}})


def test_on_conflict_fail_leaves_out_what_every_cluster_has(kwok_cluster: LocalCluster, client: Client,
                                                             namespace: str, tmp_path: Path) -> None:
    """Black-box finding: `--on-conflict fail` failed 139 objects restoring a full snapshot into a brand-new cluster:
    the default namespaces and RBAC that every API server makes itself. They are skipped; real conflicts fail."""
    group = f"g{uuid.uuid4().hex[:8]}.example.com"  # a user's CRD: the API server writes its status, not it
    crd = f"things.{group}"
    client.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "metadata": {"name": crd},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    try:
        snapshot = tmp_path / "s.kws"
        proc = kwoksnap("save", "-o", str(snapshot), "-n", f"default,kube-system,{namespace}", "--include",
                        "namespaces,clusterroles,customresourcedefinitions", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr
        # restore's own mark on kube-system makes it no less the target's own on a second restore
        for _ in range(2):
            refused = kwoksnap("restore", str(snapshot), "--on-conflict", "fail", "-o", "json",
                               kubeconfig=kwok_cluster.kubeconfig)
            assert refused.returncode == ExitCode.PARTIAL, refused.stderr
            report = json.loads(refused.stdout)
            failed = {(f["resource"], f["name"]) for f in report["failures"]}
            assert ("v1/namespaces", namespace) in failed  # made by the test's client: a real conflict
            assert ("apiextensions.k8s.io/v1/customresourcedefinitions", crd) in failed
            assert not {name for _r, name in failed} & {"default", "kube-system", "cluster-admin",
                                                        "system:basic-user"}
    finally:
        client.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")


def test_an_object_held_by_its_finalizers_is_restored_terminating(kwok_cluster: LocalCluster, client: Client,
                                                                   namespace: str, tmp_path: Path) -> None:
    """Black-box finding: a ConfigMap being deleted, held by a finalizer, came back as a live one, without a word."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/dying"
    client.create(f"/api/v1/namespaces/{namespace}/configmaps",
                  {"metadata": {"name": "dying", "finalizers": [HOLD]}, "data": {"k": "v"}})
    client.delete(path)
    assert client.get(path)["metadata"].get("deletionTimestamp")
    snapshot = _save_then_release(kwok_cluster, client, tmp_path, namespace, "configmaps", path, path)
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        restored = client.get(path)
        assert restored["metadata"].get("deletionTimestamp") and restored["metadata"]["finalizers"] == [HOLD]
        assert restored["data"] == {"k": "v"}
        rerun = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)  # left as it is
        assert rerun.returncode == 0, rerun.stderr
    finally:
        with contextlib.suppress(NotFound):
            client.patch(path, {"metadata": {"finalizers": None}})


def test_a_finished_job_whose_pods_are_gone_starts_no_pod(kwok_cluster: LocalCluster, client: Client,
                                                          namespace: str, tmp_path: Path) -> None:
    """Black-box finding: a Complete Job whose pods had been deleted got a new Pending pod after restore: its Job
    controller saw a running Job in the moment between its create and its status write. It is created suspended,
    given its status, then resumed as recorded."""
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    client.create(jobs, {"metadata": {"name": "done"}, "spec": {"suspend": True, "template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    done = [{"type": t, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}
            for t in ("SuccessCriteriaMet", "Complete")]
    client.patch(f"{jobs}/done/status", {"status": {"startTime": now, "completionTime": now, "succeeded": 1,
                                                    "conditions": done}})
    client.patch(f"{jobs}/done", {"spec": {"suspend": False}})
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "jobs",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    client.delete(f"{jobs}/done", {"propagationPolicy": "Background"})
    _wait_gone(client, f"{jobs}/done")
    proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for _ in range(6):  # the Job controller has seen it well within 3 s
        assert [p for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")] == []
        time.sleep(0.5)
    job = client.get(f"{jobs}/done")
    assert job["spec"]["suspend"] is False and SUSPENDED_ANNOTATION not in job["metadata"].get("annotations", {})
    assert {c["type"] for c in job["status"]["conditions"]} == {"SuccessCriteriaMet", "Complete"}
    # A restore cut off between the create and the resume left it suspended: a rerun resumes it.
    client.patch(f"{jobs}/done", {"metadata": {"annotations": {SUSPENDED_ANNOTATION: "true"}},
                                  "spec": {"suspend": True}})
    proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    job = client.get(f"{jobs}/done")
    assert job["spec"]["suspend"] is False and SUSPENDED_ANNOTATION not in job["metadata"].get("annotations", {})


def test_a_namespace_being_deleted_in_the_target_fails_only_its_own_objects(
        kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    """Review finding: a namespace of the snapshot held Terminating in the target (a user deleted a restored
    namespace: its frozen pods stay) stopped the whole restore before nodes and pods (exit 4: the default
    ServiceAccount's create was refused, 403), and its status write was reported as a failure."""
    from tests.integration.snapshots import write_snapshot

    ns, other = f"t-gone-{uuid.uuid4().hex[:8]}", f"t-kept-{uuid.uuid4().hex[:8]}"
    ns_path = f"/api/v1/namespaces/{ns}"
    held = f"{ns_path}/configmaps/held"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        client.create(f"{ns_path}/configmaps", {"metadata": {"name": "held", "finalizers": [HOLD]}})
        client.delete(ns_path)
        deadline = time.monotonic() + 30
        while client.exists(f"{ns_path}/serviceaccounts/default"):  # the namespace controller empties it first
            assert time.monotonic() < deadline
            time.sleep(0.2)
        snapshot = write_snapshot(tmp_path / "s.kws", [
            ("v1/namespaces", "Namespace", False, [{"metadata": {"name": n}, "status": {"phase": "Active"}}
                                                   for n in (ns, other)]),
            ("v1/configmaps", "ConfigMap", True, [{"metadata": {"name": "c", "namespace": n}, "data": {"k": n}}
                                                  for n in (ns, other)]),
        ])
        proc = kwoksnap("restore", str(snapshot), "-o", "json", kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == ExitCode.PARTIAL, proc.stderr + proc.stdout
        summary = json.loads(proc.stdout)
        assert summary["terminatingNamespaces"] == [ns] and summary["error"] is None, summary
        assert [(f["resource"], f["namespace"]) for f in summary["failures"]] == [("v1/configmaps", ns)], summary
        assert client.get(f"/api/v1/namespaces/{other}/configmaps/c")["data"] == {"k": other}
        rerun = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert rerun.returncode == ExitCode.PARTIAL, rerun.stderr
        assert "1 namespace(s) of the snapshot are being deleted in the target" in rerun.stderr, rerun.stderr
        # review finding: with --on-conflict replace its status write was still refused and reported (422)
        replaced = kwoksnap("restore", str(snapshot), "--on-conflict", "replace", "-o", "json",
                            kubeconfig=kwok_cluster.kubeconfig)
        summary = json.loads(replaced.stdout)
        assert summary["terminatingNamespaces"] == [ns], summary
        assert [(f["resource"], f["namespace"]) for f in summary["failures"]] == [("v1/configmaps", ns)], summary
    finally:
        with contextlib.suppress(NotFound):
            client.patch(held, {"metadata": {"finalizers": None}})
        for name in (ns, other):
            with contextlib.suppress(NotFound):
                client.delete(f"/api/v1/namespaces/{name}")


def test_a_namespace_the_snapshot_lacks_is_created_and_the_cause_named(kwok_cluster: LocalCluster, client: Client,
                                                                       tmp_path: Path) -> None:
    """Review finding: the warning of the namespaces restore had to create blamed `save -l` whatever the cause; a
    snapshot of configmaps alone (`save --include configmaps`) holds no Namespaces at all."""
    from tests.integration.snapshots import write_snapshot

    missing = f"unheld-{uuid.uuid4().hex[:8]}"
    snapshot = write_snapshot(tmp_path / "s.kws", [("v1/configmaps", "ConfigMap", True, [
        {"metadata": {"name": "cm", "namespace": missing}, "data": {"a": "b"}}])])
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert (f"warning: created 1 namespace(s) the snapshot's objects are in but it did not hold (it holds no "
                f"Namespaces: saved with --include or --exclude leaving them out), labelled "
                f"kwoksnap.io/created-by=restore: {missing}") in proc.stderr, proc.stderr
        assert client.get(f"/api/v1/namespaces/{missing}/configmaps/cm")["data"] == {"a": "b"}
    finally:
        with contextlib.suppress(NotFound):
            client.delete(f"/api/v1/namespaces/{missing}")
