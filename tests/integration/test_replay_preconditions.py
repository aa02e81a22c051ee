"""A recorded UID precondition is replayed with the target UID of the same object incarnation.

The source UIDs in the log (``src-*``) never exist in the target. Replay learns each object's target UID when it
writes the object, and sends it where the recorded request required the source UID: a delete that names the
incarnation replay created goes through, one that names an older incarnation fails with a conflict (reported, the
object stays), and one naming a UID replay never saw is sent without a precondition.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from kwoksnap.cluster.local import LocalCluster, Profile
from kwoksnap.errors import ExitCode, NotFound
from kwoksnap.kube import Client
from tests.conftest import ClusterFactory, client_for


def line(namespace: str, verb: str, name: str, at: float, request: Any, response: Any) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
    uri = f"/api/v1/namespaces/{namespace}/pods" + ("" if verb == "create" else f"/{name}")
    event = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"{verb}-{at}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
        "user": {"username": "alice", "groups": ["system:authenticated"]}, "userAgent": "kubectl/v1.36.3",
        "objectRef": {"resource": "pods", "namespace": namespace, "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "requestObject": request, "responseObject": response,
        "requestReceivedTimestamp": stamp, "stageTimestamp": stamp}
    return orjson.dumps(event) + b"\n"


def pod(namespace: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "img"}],
                     "nodeSelector": {"kwoksnap.io/test": "nowhere"}},  # never scheduled: deletes are immediate
            "status": {"phase": "Pending"}}


def delete(namespace: str, name: str, at: float, uid: str) -> bytes:
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
    return line(namespace, "delete", name, at, options, pod(namespace, name, uid))


def test_uid_preconditions_follow_the_object_incarnation(kwok_cluster: LocalCluster, client: Client,
                                                          namespace: str, tmp_path: Path) -> None:
    t = time.time() - 60
    log = tmp_path / "audit.log"
    log.write_bytes(
        line(namespace, "create", "p", t, pod(namespace, "p", "src-1"), pod(namespace, "p", "src-1"))
        + delete(namespace, "p", t + 1, "src-1")  # the incarnation replay created: deleted
        + line(namespace, "create", "p", t + 2, pod(namespace, "p", "src-2"), pod(namespace, "p", "src-2"))
        + delete(namespace, "p", t + 3, "src-1")  # an older incarnation than the target's: refused
        + line(namespace, "create", "q", t + 4, pod(namespace, "q", "src-3"), pod(namespace, "q", "src-3"))
        + delete(namespace, "q", t + 5, "never-seen"))  # unknown to replay: sent without the precondition
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--mode", "inputs", "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.PARTIAL, proc.stdout + proc.stderr
    failures = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failures) == 1 and "audit.log:4: delete pods" in failures[0], proc.stderr
    assert "precondition" in failures[0].lower(), proc.stderr
    assert proc.stderr.splitlines()[-1] == "kwoksnap: error: 1 event(s) failed (listed above)", proc.stderr
    live = {p["metadata"]["name"]: p["metadata"]["uid"]
            for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")}
    assert list(live) == ["p"]  # the second p survived the stale delete; q is gone
    assert live["p"] not in ("src-1", "src-2")


def _older_bound_copy(client: Client, namespace: str, name: str) -> str:
    """A pod bound to a node, as a snapshot or an earlier replay leaves it; its UID."""
    older = pod(namespace, name, "")
    del older["metadata"]["uid"]
    older["spec"] = {"containers": [{"name": "c", "image": "old"}], "nodeName": "kwoksnap-test-gone-node"}
    return str(client.create(f"/api/v1/namespaces/{namespace}/pods", older)["metadata"]["uid"])


def _replay_create(cluster: LocalCluster, tmp_path: Path, namespace: str, body: dict[str, Any]
                   ) -> subprocess.CompletedProcess[str]:
    """Replay a log holding only the recorded create of ``body``."""
    log = tmp_path / "audit.log"
    name = body["metadata"]["name"]
    log.write_bytes(line(namespace, "create", name, time.time() - 60, body, body))
    return subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(cluster.kubeconfig), "replay",
                           "--audit", str(log), "--mode", "inputs", "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)


def test_a_recorded_create_replaces_an_older_bound_copy(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                        tmp_path: Path) -> None:
    """Black-box finding: a StatefulSet pod re-created under its name, replayed over a target still holding the
    older copy bound to a node, failed "pod updates may not change fields" (a replace cannot unbind a pod). The
    recorded create made a new object: its replay deletes that older copy and creates it."""
    old_uid = _older_bound_copy(client, namespace, "db-1")
    proc = _replay_create(kwok_cluster, tmp_path, namespace, pod(namespace, "db-1", "src-new"))
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "events 1: applied 1, failed 0" in proc.stdout, proc.stdout
    live = client.get(f"/api/v1/namespaces/{namespace}/pods/db-1")
    assert live["metadata"]["uid"] != old_uid and not live["spec"].get("nodeName")
    assert live["spec"]["containers"][0]["image"] == "img"


def test_a_recorded_create_the_target_refuses_leaves_the_older_copy(kwok_cluster: LocalCluster, client: Client,
                                                                    namespace: str, tmp_path: Path) -> None:
    """Review finding: the re-create ran on any 422, so a recorded object the target itself refuses cost the older
    copy (deleted, then the create failed). A dry-run create decides first."""
    old_uid = _older_bound_copy(client, namespace, "db-2")
    refused = pod(namespace, "db-2", "src-refused")
    refused["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"  # invalid in any cluster
    proc = _replay_create(kwok_cluster, tmp_path, namespace, refused)
    assert proc.returncode == ExitCode.PARTIAL, proc.stdout + proc.stderr
    assert "events 1: applied 0, failed 1" in proc.stdout and "422" in proc.stderr, proc.stdout + proc.stderr
    assert client.get(f"/api/v1/namespaces/{namespace}/pods/db-2")["metadata"]["uid"] == old_uid


def test_a_recorded_job_create_replaces_an_older_finished_copy(kwok_cluster: LocalCluster, client: Client,
                                                               namespace: str, tmp_path: Path) -> None:
    """Black-box finding: a log with a Job that completes, replayed a second time into the same target, failed 3
    status writes ("cannot disable the terminal Complete=True condition"): the recorded create had replaced the
    finished older copy's spec, and its status could not go back to running. A finished Job is created anew."""
    from kwoksnap.cluster.populate import fake_node

    jobs, node = f"/apis/batch/v1/namespaces/{namespace}/jobs", f"node-{namespace}"
    template = {"spec": {"containers": [{"name": "c", "image": "img"}], "restartPolicy": "Never",
                         "nodeName": node, "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]}}
    client.create("/api/v1/nodes", fake_node(node))
    try:
        old = client.create(jobs, {"metadata": {"name": "batch1"}, "spec": {"template": template}})
        deadline = time.monotonic() + 90  # kwok completes its pod, the Job controller the Job

        def finished() -> bool:
            return any(c.get("type") == "Complete" and c.get("status") == "True"
                       for c in (client.get(f"{jobs}/batch1").get("status") or {}).get("conditions") or [])

        while time.monotonic() < deadline and not finished():
            time.sleep(0.5)
        assert finished(), client.get(f"{jobs}/batch1").get("status")
    finally:
        client.delete(f"/api/v1/nodes/{node}")
    at = time.time() - 60
    # The log of the first replay: the same Job (its spec, selector and all), suspended so that only the replay
    # writes its status.
    spec = {**client.get(f"{jobs}/batch1")["spec"], "suspend": True}
    recorded = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "batch1", "namespace": namespace, "uid": "src-job"}, "spec": spec}
    running = {**recorded, "status": {"active": 1, "startTime": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(at + 1))}}
    log = tmp_path / "audit.log"
    log.write_bytes(job_line(namespace, "create", at, recorded, recorded)
                    + job_line(namespace, "update", at + 1, running, running, sub="status"))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig), "replay",
                           "--audit", str(log), "--resources", "jobs", "-n", namespace, "--speed", "max",
                           "--no-fidelity"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "applied 2, failed 0" in proc.stdout, proc.stdout
    live = client.get(f"{jobs}/batch1")
    assert live["metadata"]["uid"] != old["metadata"]["uid"] and live["spec"].get("suspend") is True


def job_line(namespace: str, verb: str, at: float, request: Any, response: Any, sub: str = "") -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
    uri = f"/apis/batch/v1/namespaces/{namespace}/jobs" + ("" if verb == "create" else "/batch1") + (
        f"/{sub}" if sub else "")
    event = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"{verb}-{at}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
        "user": {"username": "alice", "groups": ["system:authenticated"]}, "userAgent": "kubectl/v1.36.3",
        "objectRef": {"resource": "jobs", "namespace": namespace, "name": "batch1", "apiGroup": "batch",
                      "apiVersion": "v1", **({"subresource": sub} if sub else {})},
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "requestObject": request, "responseObject": response,
        "requestReceivedTimestamp": stamp, "stageTimestamp": stamp}
    return orjson.dumps(event) + b"\n"


def test_a_garbage_collector_patch_is_replayed_as_the_patch_it_was(kwok_cluster: LocalCluster, client: Client,
                                                                      namespace: str, tmp_path: Path) -> None:
    """Black-box finding: the garbage collector writes through a metadata-only client; the log holds its result as
    PartialObjectMetadata, which replay PUT as the pod and the API server refused (400), so an orphaning delete
    (and a foreground one, and a Job's TTL deletion) was never finished. Its recorded strategic merge patch, with
    its UID precondition moved to the target's UID, is sent instead."""
    t = time.time() - 60
    owned = pod(namespace, "p", "src-p")
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": "src-o"}]
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": {"name": "p", "namespace": namespace, "uid": "src-p", "resourceVersion": "99"}}
    gc = orjson.loads(line(namespace, "patch", "p", t + 2, {"metadata": {
        "uid": "src-p", "ownerReferences": [{"$patch": "delete", "uid": "src-o"}]}}, partial))
    gc["user"] = {"username": "system:kube-controller-manager"}
    gc["userAgent"] = "kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/$Format/generic-garbage-collector"
    # Black-box finding (second round): an owner the replay never wrote (restored from the snapshot: here made
    # before the replay) stayed, as the patch names it by its source UID alone; the recorded result says which
    # references the patch left.
    client.create(f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": "restored"}, "spec": pod(
        namespace, "restored", "")["spec"]})
    kept = orjson.loads(orjson.dumps(owned))
    kept["metadata"].update(name="q", uid="src-q", ownerReferences=[
        {"apiVersion": "v1", "kind": "Pod", "name": "restored", "uid": "src-r"},
        {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": "src-o"}])
    left = {**partial, "metadata": {**partial["metadata"], "name": "q", "uid": "src-q",
                                    "ownerReferences": [kept["metadata"]["ownerReferences"][1]]}}
    gc_q = orjson.loads(line(namespace, "patch", "q", t + 2, {"metadata": {
        "uid": "src-q", "ownerReferences": [{"$patch": "delete", "uid": "src-r"}]}}, left))
    gc_q.update(user=gc["user"], userAgent=gc["userAgent"])
    log = tmp_path / "audit.log"
    log.write_bytes(
        line(namespace, "create", "owner", t, pod(namespace, "owner", "src-o"), pod(namespace, "owner", "src-o"))
        + line(namespace, "create", "p", t + 1, owned, owned) + line(namespace, "create", "q", t + 1, kept, kept)
        + orjson.dumps(gc) + b"\n" + orjson.dumps(gc_q) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    meta = client.get(f"/api/v1/namespaces/{namespace}/pods/p")["metadata"]
    assert "ownerReferences" not in meta, (meta, proc.stdout, proc.stderr)
    refs = client.get(f"/api/v1/namespaces/{namespace}/pods/q")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["owner"], refs


def test_a_pods_debug_containers_and_in_place_resize_are_replayed(make_cluster: ClusterFactory,
                                                                   tmp_path: Path) -> None:
    """Black-box finding: `kubectl debug`'s write (pods/ephemeralcontainers) was left out without a count, and the
    pod's later writes, which name the debug container, were refused (422 "pod updates may not change fields").
    Review finding: the same for an in-place resize (pods/resize), whose later writes carry the new resources.
    (A replay-profile target: a standard one's admission adds volumes and tolerations the hand-made log lacks.)"""
    target = make_cluster("eph", Profile.REPLAY)
    client = client_for(target)
    namespace = "default"
    t = time.time() - 60
    created = pod(namespace, "p", "src-p")
    debugged = orjson.loads(orjson.dumps(created))
    debugged["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox", "targetContainerName": "c",
                                                "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}]
    labelled = orjson.loads(orjson.dumps(debugged))
    labelled["metadata"]["labels"] = {"after": "debug"}
    eph = orjson.loads(line(namespace, "patch", "p", t + 1, {"spec": debugged["spec"]}, debugged))
    eph["objectRef"]["subresource"] = "ephemeralcontainers"
    eph["requestURI"] += "/ephemeralcontainers"
    # review finding: a pod the log starts in the middle of the life of, created from a body that holds them
    midlife = orjson.loads(orjson.dumps(labelled))
    midlife["metadata"].update(name="q", uid="src-q")
    small, big = ({"requests": {"cpu": f"{m}m"}, "limits": {"cpu": f"{2 * m}m"}} for m in (100, 200))
    sized = pod(namespace, "r", "src-r")
    sized["spec"]["containers"][0]["resources"] = small
    resized = orjson.loads(orjson.dumps(sized))
    resized["spec"]["containers"][0]["resources"] = big
    resize = orjson.loads(line(namespace, "patch", "r", t + 1, {"spec": {"containers": [
        {"name": "c", "resources": big}]}}, resized))
    resize["objectRef"]["subresource"] = "resize"
    resize["requestURI"] += "/resize"
    relabelled = orjson.loads(orjson.dumps(resized))
    relabelled["metadata"]["labels"] = {"after": "resize"}
    # the same by a JSON patch logged at Request level (it was skipped as degraded)
    json_sized = pod(namespace, "s", "src-s")
    json_sized["spec"]["containers"][0]["resources"] = small
    json_resize = orjson.loads(line(namespace, "patch", "s", t + 1, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "replace", "path": "/spec/containers/0/resources", "value": big}], None))
    json_resize["objectRef"]["subresource"] = "resize"
    json_resize["requestURI"] += "/resize"
    json_resize["level"] = "Request"
    del json_resize["responseObject"]
    json_relabelled = orjson.loads(orjson.dumps(json_sized))
    json_relabelled["spec"]["containers"][0]["resources"] = big
    json_relabelled["metadata"]["labels"] = {"after": "resize"}
    log = tmp_path / "audit.log"
    log.write_bytes(line(namespace, "create", "p", t, created, created) + orjson.dumps(eph) + b"\n"
                    + line(namespace, "update", "p", t + 2, labelled, labelled)
                    + line(namespace, "update", "q", t + 3, midlife, midlife)
                    + line(namespace, "create", "r", t, sized, sized) + orjson.dumps(resize) + b"\n"
                    + line(namespace, "update", "r", t + 2, relabelled, relabelled)
                    + line(namespace, "create", "s", t, json_sized, json_sized) + orjson.dumps(json_resize) + b"\n"
                    + line(namespace, "update", "s", t + 2, json_relabelled, json_relabelled))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(target.kubeconfig),
                           "replay", "--audit", str(log), "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    for name in ("p", "q"):
        live = client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        assert [c["name"] for c in live["spec"]["ephemeralContainers"]] == ["dbg"], name
        assert live["metadata"]["labels"] == {"after": "debug"}, name
    for name in ("r", "s"):
        live = client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        assert live["spec"]["containers"][0]["resources"] == big, name
        assert live["metadata"]["labels"] == {"after": "resize"}, name


def test_inputs_mode_applies_a_users_pod_update_to_the_targets_pod(kwok_cluster: LocalCluster, client: Client,
                                                                   namespace: str, tmp_path: Path) -> None:
    """Black-box finding: `kubectl replace` of a pod (a PUT of the source's pod, its node and admission-made volume
    included) failed in inputs mode, 422 "pod updates may not change fields". What a pod update may change is taken
    from it; the rest stays the target's."""
    t = time.time() - 60
    created = pod(namespace, "p", "src-p")
    replaced = orjson.loads(orjson.dumps(created))
    replaced["metadata"]["labels"] = {"team": "red"}
    replaced["spec"]["nodeName"] = "source-node"  # the source's scheduler had bound it
    replaced["spec"]["volumes"] = [{"name": "kube-api-access-src12", "projected": {"sources": []}}]
    log = tmp_path / "audit.log"
    log.write_bytes(line(namespace, "create", "p", t, created, created)
                    + line(namespace, "update", "p", t + 1, replaced, replaced))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--mode", "inputs", "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    live = client.get(f"/api/v1/namespaces/{namespace}/pods/p")
    assert live["metadata"]["labels"] == {"team": "red"} and not live["spec"].get("nodeName")


def test_a_replayed_volume_names_the_targets_claim(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                   tmp_path: Path) -> None:
    """Black-box finding: a bound volume was replayed with its claimRef naming the source's claim UID; the target's
    volume binder then released it (Released, its claim Lost) and fidelity saw nothing wrong."""
    t = time.time() - 60
    pv_name = f"pv-{namespace}"
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": namespace, "uid": "src-claim"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual", "volumeName": pv_name,
                      "resources": {"requests": {"storage": "1Gi"}}}}
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name, "uid": "src-pv"},
              "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "storageClassName": "manual",
                       "hostPath": {"path": "/tmp/x"}, "persistentVolumeReclaimPolicy": "Retain",
                       "claimRef": {"kind": "PersistentVolumeClaim", "namespace": namespace, "name": "data",
                                    "uid": "src-claim", "apiVersion": "v1", "resourceVersion": "17"}}}

    def write(body: dict[str, Any], resource: str, at: float, cluster_scoped: bool) -> bytes:
        ev = orjson.loads(line(namespace, "create", body["metadata"]["name"], at, body, body))
        ev["objectRef"]["resource"] = resource
        ev["requestURI"] = f"/api/v1/{resource}" if cluster_scoped else f"/api/v1/namespaces/{namespace}/{resource}"
        if cluster_scoped:
            del ev["objectRef"]["namespace"]
        return orjson.dumps(ev) + b"\n"

    log = tmp_path / "audit.log"
    log.write_bytes(write(claim, "persistentvolumeclaims", t, False)
                    + write(volume, "persistentvolumes", t + 0.001, True))
    try:
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                               "replay", "--audit", str(log), "--speed", "max", "--no-fidelity", "--resources",
                               "persistentvolumes,persistentvolumeclaims"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        live_claim = client.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
        assert client.get(f"/api/v1/persistentvolumes/{pv_name}")["spec"]["claimRef"]["uid"] == \
            live_claim["metadata"]["uid"]
    finally:
        client.delete(f"/api/v1/persistentvolumes/{pv_name}")


def _claim_and_volume_log(path: Path, namespace: str, pv_name: str) -> None:
    """A claim and a volume that could bind, created and left unbound, as the recording says they stayed."""
    t = time.time() - 60
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": namespace, "uid": "src-claim"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                      "resources": {"requests": {"storage": "1Gi"}}},
             "status": {"phase": "Pending"}}
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name, "uid": "src-pv"},
              "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "storageClassName": "manual",
                       "hostPath": {"path": "/tmp/x"}, "persistentVolumeReclaimPolicy": "Retain"},
              "status": {"phase": "Available"}}
    lines = []
    for body, resource, at, cluster_scoped in ((claim, "persistentvolumeclaims", t, False),
                                               (volume, "persistentvolumes", t + 0.001, True)):
        ev = orjson.loads(line(namespace, "create", body["metadata"]["name"], at, body, body))
        ev["objectRef"]["resource"] = resource
        ev["requestURI"] = f"/api/v1/{resource}" if cluster_scoped else f"/api/v1/namespaces/{namespace}/{resource}"
        if cluster_scoped:
            del ev["objectRef"]["namespace"]
        lines.append(orjson.dumps(ev) + b"\n")
    path.write_bytes(b"".join(lines))


def _bound_within(client: Client, namespace: str, pv_name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        claim = client.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
        volume = client.get(f"/api/v1/persistentvolumes/{pv_name}")
        if claim["spec"].get("volumeName") or volume["spec"].get("claimRef"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def test_the_replay_profile_leaves_claims_and_volumes_to_the_recording(make_cluster: ClusterFactory,
                                                                        kwok_cluster: LocalCluster, client: Client,
                                                                        namespace: str, tmp_path: Path) -> None:
    """Black-box finding: the replay profile ran the volume binder and the claim and volume protection controllers,
    which raced the replayed writes of the source's own (a replayed write met a claim the target's binder had
    changed or its protection controller had let go: 404, exit 5). They are off there, as the workload controllers
    are: a claim and a volume the recording left unbound stay unbound. The same log in a standard cluster binds
    them: what the test would see if the controllers still ran (in a replay target, within 12 s, before)."""
    replay = ["replay", "--speed", "max", "--no-fidelity", "--resources", "persistentvolumes,persistentvolumeclaims"]
    log = tmp_path / "standard.log"
    _claim_and_volume_log(log, namespace, f"pv-{namespace}")
    try:
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                               *replay, "--audit", str(log)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert _bound_within(client, namespace, f"pv-{namespace}", 30)
    finally:
        client.delete(f"/api/v1/persistentvolumes/pv-{namespace}")
    target = make_cluster("vol", Profile.REPLAY)
    log = tmp_path / "replay.log"
    _claim_and_volume_log(log, "default", "pv-replay")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(target.kubeconfig), *replay,
                           "--audit", str(log)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    with client_for(target) as target_client:
        assert not _bound_within(target_client, "default", "pv-replay", 20)  # (the binder resyncs every 15 s)


def test_a_namespace_is_finalized_only_once_empty(kwok_cluster: LocalCluster, client: Client, tmp_path: Path) -> None:
    """Review finding: the namespace controller's finalize write, replayed at its recorded time, made the API server
    remove a namespace that still held a ConfigMap here (held by its finalizer), which then stayed in etcd without
    a namespace. It is sent only when the target's namespace is empty."""
    import uuid

    ns = f"t-fin-{uuid.uuid4().hex[:8]}"
    client.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    held = f"/api/v1/namespaces/{ns}/configmaps/held"
    client.create(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "held",
                                                                       "finalizers": ["kwoksnap.io/test-hold"]}})
    try:
        client.delete(f"/api/v1/namespaces/{ns}")
        finalized = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "uid": "src-ns"},
                     "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
        ev = orjson.loads(line(ns, "update", ns, time.time() - 60, finalized, finalized))
        ev["objectRef"] = {"resource": "namespaces", "name": ns, "apiVersion": "v1", "subresource": "finalize"}
        ev["requestURI"] = f"/api/v1/namespaces/{ns}/finalize"
        log = tmp_path / "audit.log"
        log.write_bytes(orjson.dumps(ev) + b"\n")
        report = tmp_path / "report.json"
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                               "replay", "--audit", str(log), "--speed", "max", "--no-fidelity", "--resources",
                               "namespaces", "--report", str(report)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert orjson.loads(report.read_bytes())["skipped"] == {"namespace-not-empty": 1}
        assert client.exists(f"/api/v1/namespaces/{ns}") and client.exists(held)
    finally:
        client.patch(held, {"metadata": {"finalizers": None}})


def test_a_renewal_of_a_lease_the_target_lacks_creates_it_as_recorded(kwok_cluster: LocalCluster, client: Client,
                                                                      tmp_path: Path) -> None:
    """Review finding: node-lease updates logged whole are renewals now; one the target lacks was created with a
    made-up 40 s duration and no owner, where the recorded lease was written before."""
    import uuid

    name = f"lease-{uuid.uuid4().hex[:8]}"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": name, "namespace": "kube-node-lease", "uid": "src-l", "resourceVersion": "9"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 77,
                      "renewTime": "2026-01-01T00:00:00.000000Z"}}
    ev = orjson.loads(line("kube-node-lease", "update", name, time.time() - 60, lease, lease))
    ev["objectRef"].update(resource="leases", apiGroup="coordination.k8s.io")
    ev["requestURI"] = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    ev["user"] = {"username": f"system:node:{name}"}
    log = tmp_path / "audit.log"
    log.write_bytes(orjson.dumps(ev) + b"\n")
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    try:
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                               "replay", "--audit", str(log), "--speed", "max", "--no-fidelity"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert client.get(path)["spec"]["leaseDurationSeconds"] == 77
    finally:
        client.delete(path)


def test_a_log_starting_while_objects_are_deleted_and_a_patch_guarded_by_a_resource_version(
        kwok_cluster: LocalCluster, client: Client, namespace: str, tmp_path: Path) -> None:
    """Black-box findings: a write that left a pod being deleted with nothing holding it (a Terminating pod's
    finalizers removed), replayed onto a target without the pod, created it Running; and kubectl's server-side-apply
    migration patch, which replaces /metadata/resourceVersion with the source's, was refused (409)."""
    t = time.time() - 60
    gone = pod(namespace, "gone", "src-gone")
    gone["metadata"].update(deletionTimestamp="2026-11-30T04:50:40Z", deletionGracePeriodSeconds=0)
    bound = pod(namespace, "bound", "src-bound")  # (re-test finding: a bound pod's grace period holds it too)
    bound["metadata"].update(deletionTimestamp="2026-11-30T04:50:40Z", deletionGracePeriodSeconds=300)
    bound["spec"]["nodeName"] = "kwoksnap-test-gone-node"
    held = pod(namespace, "held", "src-held")
    held["metadata"].update(deletionTimestamp="2026-11-30T04:50:40Z", deletionGracePeriodSeconds=30,
                            finalizers=["kwoksnap.io/hold"])
    migration = [{"op": "replace", "path": "/metadata/resourceVersion", "value": "374"},
                 {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]
    patch = orjson.loads(line(namespace, "patch", "q", t + 3, migration, None))
    patch.update(level="Request", responseObject=None)
    patch["requestURI"] += "?fieldManager=kubectl-client-side-apply"
    log = tmp_path / "audit.log"
    log.write_bytes(line(namespace, "update", "gone", t, gone, gone) + line(namespace, "update", "held", t + 1, held,
                                                                             held)
                    + line(namespace, "update", "bound", t + 1.5, bound, bound)
                    + line(namespace, "create", "q", t + 2, pod(namespace, "q", "src-q"), pod(namespace, "q", "src-q"))
                    + orjson.dumps(patch) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig),
                           "replay", "--audit", str(log), "--speed", "max", "--no-fidelity"],
                          capture_output=True, text=True, timeout=300)
    try:
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert "events 5: applied 4, failed 0" in proc.stdout and "already-deleted 1" in proc.stdout, proc.stdout
        live = {p["metadata"]["name"]: p for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")}
        assert sorted(live) == ["bound", "held", "q"]
        assert live["bound"]["metadata"].get("deletionTimestamp") and \
            live["bound"]["metadata"]["deletionGracePeriodSeconds"] == 300
        assert live["held"]["metadata"].get("deletionTimestamp") and live["held"]["metadata"]["finalizers"] == [
            "kwoksnap.io/hold"]
        assert live["q"]["metadata"]["labels"] == {"x": "y"}
    finally:
        with contextlib.suppress(NotFound):
            client.patch(f"/api/v1/namespaces/{namespace}/pods/held", {"metadata": {"finalizers": None}})
        with contextlib.suppress(NotFound):
            client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/bound", body={"gracePeriodSeconds": 0})
