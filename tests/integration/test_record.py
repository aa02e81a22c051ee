"""`kwoksnap record` on a real API server: its audit webhook backend's batches and its audit log followed as it
grows hold the same changes, and they are what `convert` keeps of the log the API server wrote meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import yaml

from kwoksnap.audit import ParseStats
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.errors import ExitCode, NotFound
from kwoksnap.kube.client import Client
from kwoksnap.replay.recording import read_recording
from tests.conftest import ClusterFactory, client_for


def _recorder(workdir: Path, *args: str, kubeconfig: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """A `kwoksnap record` running in the background, and the first line it said (what it records)."""
    pre = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    proc = subprocess.Popen([sys.executable, "-m", "kwoksnap", *pre, "record", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, KWOKSNAP_WORKDIR=str(workdir)))
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("recording "), first + proc.stderr.read()
    return proc, first


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def test_the_webhook_and_the_followed_log_record_what_convert_keeps_of_the_log(make_cluster: ClusterFactory,
                                                                              workdir: Path, tmp_path: Path) -> None:
    webhook_kws, file_kws, converted = tmp_path / "webhook.kws", tmp_path / "file.kws", tmp_path / "log.kws"
    webhook, said = _recorder(workdir, "--audit-webhook", "127.0.0.1:0", "-o", str(webhook_kws))
    url = said.split(" sent to ", 1)[1].split(" into ", 1)[0]
    config = tmp_path / "webhook.kubeconfig"  # the API server's --audit-webhook-config-file
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "recorder",
        "clusters": [{"name": "recorder", "cluster": {"server": url}}],
        "users": [{"name": "recorder", "user": {}}],
        "contexts": [{"name": "recorder", "context": {"cluster": "recorder", "user": "recorder"}}]}))
    try:
        cluster = make_cluster("rec", extra_args=(
            "--extra-args", f"kube-apiserver=audit-webhook-config-file={config}",
            "--extra-args", "kube-apiserver=audit-webhook-batch-max-wait=1s"))
        follower, _ = _recorder(workdir, "--audit-file", str(cluster.audit_log), "-o", str(file_kws))
        try:
            with client_for(cluster) as c:
                c.create("/api/v1/nodes", fake_node("rec-node"))
                c.create("/api/v1/namespaces", {"metadata": {"name": "rec"}})
                deadline = time.monotonic() + 30
                while not c.exists("/api/v1/namespaces/rec/serviceaccounts/default"):
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                for n in range(3):
                    c.create("/api/v1/namespaces/rec/pods", {"metadata": {"name": f"p{n}"}, "spec": {
                        "nodeName": "rec-node", "containers": [{"name": "c", "image": "registry.example/x:1"}],
                        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]}})
                c.delete("/api/v1/namespaces/rec/pods/p0", {"gracePeriodSeconds": 0})
                time.sleep(4)  # the webhook's batches wait up to 1 s; the statuses kwok writes come meanwhile
        finally:
            file_out, _ = _stop(follower)
    finally:
        webhook_out, _ = _stop(webhook)
    assert webhook_out.startswith("recorded ") and file_out.startswith("recorded "), (webhook_out, file_out)

    def ours(path: Path) -> dict[str, tuple[int, str, str, str, str]]:
        stats = ParseStats()
        events = {e["auditID"] + e["stage"]: (e["ts"], e["verb"], e["resource"], e["subresource"], e["name"])
                  for e in read_recording(path, stats=stats)}
        assert stats.malformed == 0, stats.malformed_examples  # (each passes replay's check of a recording)
        return events

    by_webhook, by_file = ours(webhook_kws), ours(file_kws)
    mine = {(verb, sub, name) for _, verb, resource, sub, name in by_webhook.values()
            if resource == "pods" and name in ("p0", "p1", "p2")}
    assert {("create", "", "p0"), ("create", "", "p1"), ("create", "", "p2"), ("delete", "", "p0"),
            ("patch", "status", "p1")} <= mine, sorted(mine)
    assert any(name == "rec-node" and verb == "create" for _, verb, _, _, name in by_webhook.values())
    # The log followed from a moment after the cluster started holds what the webhook got from then on.
    since = min(ts for ts, *_ in by_file.values())
    assert by_file == {k: v for k, v in by_webhook.items() if v[0] >= since}
    # And what convert keeps of the whole log the API server wrote holds all the webhook got.
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "convert", "--audit", str(cluster.audit_log), "-o",
                           str(converted)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    by_convert = ours(converted)
    assert {k: by_convert.get(k) for k in by_webhook} == by_webhook
    report = orjson.loads(subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(webhook_kws), "-o", "json"],
                                         capture_output=True, text=True, timeout=60).stdout)
    assert report["header"]["source"] == {"kind": "audit-webhook"}, report["header"]



def test_a_watch_recording_replays_to_the_state_the_source_ended_in(make_cluster: ClusterFactory, workdir: Path,
                                                                   tmp_path: Path) -> None:
    """`kwoksnap record` through the watch (no audit configuration): a snapshot, then a recording of a Deployment
    scaled up and down, a node cordoned and a pod that held a finalizer, restored and replayed at 10x into a
    replay-profile cluster, ends where the source ended."""
    from kwoksnap.cluster.local import Profile
    from kwoksnap.cluster.populate import populate, wait_settled
    from tests.integration.test_replay_kwokctl import SIZE, _pods, kwoksnap, run_scenario

    source = make_cluster("wsrc")
    snapshot, recording = tmp_path / "before.kws", tmp_path / "watch.kws"
    with client_for(source) as c:
        wait_settled(c, populate(c, SIZE), SIZE.nodes, timeout=300)
        proc = kwoksnap(workdir, "save", "-o", str(snapshot), kubeconfig=source.kubeconfig)
        assert proc.returncode == 0, proc.stderr
        recorder, said = _recorder(workdir, "-o", str(recording), kubeconfig=source.kubeconfig)
        assert "nodes, pods, leases.coordination.k8s.io at https://127.0.0.1:" in said, said
        try:
            node = run_scenario(c)
        finally:
            out, _ = _stop(recorder)
        want_pods = _pods(c)
    assert out.startswith("recorded "), out
    target = make_cluster("wrep", Profile.REPLAY)
    proc = kwoksnap(workdir, "restore", str(snapshot), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with client_for(target) as t:  # (no endpoint controllers in a replay profile: the snapshot's, black-box finding)
        assert [s for s, _ in t.list_items("/apis/discovery.k8s.io/v1/namespaces/app-0/endpointslices")]
    proc = kwoksnap(workdir, "replay", str(recording), "--mode", "inputs", kubeconfig=target.kubeconfig)
    assert proc.returncode == 2 and "a recording of a watch names no user" in proc.stderr, proc.stderr
    report = tmp_path / "report.json"
    proc = kwoksnap(workdir, "replay", str(recording), "--speed", "10x", "--report", str(report),
                    kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = orjson.loads(report.read_bytes())
    assert data["failed"] == 0 and data["applied"] == data["events"] > 10, data
    assert data["fidelity"]["mismatchCount"] == 0 and data["fidelity"]["checked"] >= 7, data["fidelity"]
    with client_for(target) as t:
        assert _pods(t) == want_pods
        assert t.get(f"/api/v1/nodes/{node}")["spec"].get("unschedulable") is True


def test_a_user_allowed_only_a_namespace_records_it_through_the_watch(kwok_cluster: LocalCluster, client: Client,
                                                                       namespace: str, workdir: Path,
                                                                       tmp_path: Path) -> None:
    """`record -n NS` by a ServiceAccount that may only read pods in NS: the pods of NS are watched there (not in
    every namespace, which it may not), and the resources it may not list are left out with a warning."""
    base = f"/api/v1/namespaces/{namespace}"
    client.create(f"{base}/serviceaccounts", {"metadata": {"name": "reader"}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    client.create(f"{rbac}/roles", {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    client.create(f"{rbac}/rolebindings", {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    token = client.create(f"{base}/serviceaccounts/reader/token", {"spec": {"expirationSeconds": 3600}})
    config = yaml.safe_load(kwok_cluster.kubeconfig.read_text())
    config["users"] = [{"name": user["name"], "user": {"token": token["status"]["token"]}} for user in config["users"]]
    kubeconfig = tmp_path / "reader.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    recording = tmp_path / "ns.kws"
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kubeconfig), "record", "-o",
                           str(recording)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, KWOKSNAP_WORKDIR=str(workdir)))
    assert proc.returncode == 4 and "403" in proc.stderr, proc.stderr  # (without -n: the whole cluster, refused)
    recorder, said = _recorder(workdir, "-n", namespace, "-o", str(recording), kubeconfig=kubeconfig)
    try:
        assert "the changes of pods at " in said, said
        warning = recorder.stderr.readline() if recorder.stderr else ""
        assert warning.startswith("warning: not recorded, as listing them is forbidden: nodes, leases"), warning
        client.create(f"{base}/pods", {"metadata": {"name": "watched"},
                                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        client.create("/api/v1/namespaces/default/pods", {
            "metadata": {"name": f"elsewhere-{namespace}"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
        time.sleep(2)
    finally:
        out, _ = _stop(recorder)
        client.delete(f"/api/v1/namespaces/default/pods/elsewhere-{namespace}", {"gracePeriodSeconds": 0})
    assert out.startswith("recorded "), out
    events = list(read_recording(recording))
    created = [(e["namespace"], e["name"]) for e in events if e["verb"] == "create" and not e["subresource"]]
    assert created == [(namespace, "watched")], created
    # The same user's save lists what it may (exit 5 for the rest), and the file says what it could not list:
    # diff --live by an admin leaves those out instead of calling every node "added" (black-box finding).
    env = dict(os.environ, KWOKSNAP_WORKDIR=str(workdir))
    partial = tmp_path / "partial.kws"
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kubeconfig), "save", "-n",
                           namespace, "-o", str(partial)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(partial)], capture_output=True,
                          text=True, timeout=60, env=env)
    assert ": its list failed when saved: " in proc.stdout, proc.stdout
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(partial), "-o", "json"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert "403 Forbidden" in orjson.loads(proc.stdout)["incomplete"]["v1/nodes"], proc.stdout
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig), "diff",
                           str(partial), "--live"], capture_output=True, text=True, timeout=120, env=env)
    assert "warning: nodes not compared: save could not list it whole" in proc.stderr, proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line.startswith("added") and " nodes " in line]


def test_a_recording_killed_outright_keeps_what_it_had_written(kwok_cluster: LocalCluster, client: Client,
                                                               namespace: str, workdir: Path, tmp_path: Path) -> None:
    """Carried from earlier stops: `record` killed outright (SIGKILL: the OOM killer, `kill -9`) lost everything,
    and the next recording of the same file removed what little was on disk. Now its temporary file holds all but
    the last seconds, the next recording names it, and `salvage` makes a recording of it."""
    recording, salvaged = tmp_path / "rec.kws", tmp_path / "salvaged.kws"
    recorder, _ = _recorder(workdir, "-n", namespace, "-o", str(recording), kubeconfig=kwok_cluster.kubeconfig)
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    try:
        for i in range(3):
            client.create(f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": f"early-{i}"}, **pod})
        time.sleep(12)  # (5 s in the time-order window, quiet or not, then handed to the system within 2 s)
    finally:
        recorder.kill()
        recorder.communicate(timeout=60)
    [stray] = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again, _ = _recorder(workdir, "-n", namespace, "-o", str(recording), kubeconfig=kwok_cluster.kubeconfig)
    try:
        warning = again.stderr.readline() if again.stderr else ""
        assert warning.startswith(f"warning: {stray} is what a recording killed before this one held"), warning
    finally:
        _stop(again)
    assert stray.exists()
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "salvage", str(stray), "-o", str(salvaged)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.PARTIAL and "ends without its index" in proc.stdout, proc.stdout + proc.stderr
    created = [e["name"] for e in read_recording(salvaged) if e["verb"] == "create" and not e["subresource"]]
    assert created == ["early-0", "early-1", "early-2"], created


def test_what_the_watch_cannot_record_is_said_when_recording_starts(kwok_cluster: LocalCluster, namespace: str,
                                                                    workdir: Path, tmp_path: Path) -> None:
    """Black-box findings: a --resources name the API server does not serve (a typo, a CRD not made yet) was
    recorded as nothing for the whole session and only hinted at the end, and --exclude-user was taken and ignored."""
    recorder, _ = _recorder(workdir, "-n", f"{namespace},{namespace}-not-yet", "--resources", "pods,deploymnets",
                            "--exclude-user", "bob", "-o", str(tmp_path / "r.kws"), kubeconfig=kwok_cluster.kubeconfig)
    try:
        assert recorder.stderr is not None
        warnings = [recorder.stderr.readline() for _ in range(4)]
    finally:
        _, err = _stop(recorder)
    assert warnings == [
        "warning: --resources deploymnets: the API server serves no such resource (yet): it is recorded from when it "
        "is served (a custom resource whose definition comes later; looked for every 5 s), and a misspelt name never "
        "is\n",
        f"warning: namespace {namespace}-not-yet does not exist in the cluster (yet): its changes are recorded from "
        "when it is made\n",  # (said as save says it: black-box finding)
        "warning: --exclude-user has no effect on a recording of the watch, which does not say who made a change "
        "(--audit-file and --audit-webhook do)\n",
        "note: a watch does not say who made a change: this recording replays with --mode verbatim only "
        "(--audit-file or --audit-webhook record who did)\n"], warnings
    assert "deploymnets" not in err  # (said once)


def test_a_custom_resource_served_only_after_recording_began_is_recorded_from_then(
        kwok_cluster: LocalCluster, client: Client, namespace: str, workdir: Path, tmp_path: Path) -> None:
    """Carried from earlier stops: a --resources custom resource whose CRD was made while recording (an operator
    installed during the incident) was never watched. It is looked for again every 5 s: the objects made before it
    was found are recorded as created then, the later changes as they come."""
    from tests.integration.test_restore_crds import CRDS, crd

    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    recording = tmp_path / "rec.kws"
    recorder, _ = _recorder(workdir, "-n", namespace, "--resources", f"pods,widgets.{group}", "-o", str(recording),
                            kubeconfig=kwok_cluster.kubeconfig)
    widgets = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    try:
        client.create(f"/apis/{CRDS}", {k: v for k, v in crd(group, "widgets", "Widget", True).items()
                                        if k != "status"})
        deadline = time.monotonic() + 60
        while True:  # served once Established
            try:
                client.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                        "metadata": {"name": "early"}, "spec": {"size": 1}})
                break
            except NotFound:
                assert time.monotonic() < deadline, "the CRD was never served"
                time.sleep(0.5)
        time.sleep(8)  # (found within 5 s)
        client.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "late"},
                                "spec": {"size": 2}})
        client.patch(f"{widgets}/early", {"spec": {"size": 3}}, content_type="application/merge-patch+json")
        time.sleep(1)
    finally:
        try:
            out, err = _stop(recorder)
        finally:
            client.delete(f"/apis/{CRDS}/widgets.{group}")
    assert f"served only after recording began, recorded from then (the objects there by then as created then): " \
           f"widgets.{group} from " in out, out + err
    # (as any warning, at the start of its line, not "WARNING kwoksnap.record: ..."; it may be the first line)
    assert f"\nwarning: widgets.{group} is served now: recorded from " in f"\n{err}", err
    changes = [(e["verb"], e["name"], ((e["response"] or {}).get("spec") or {}).get("size"))
               for e in read_recording(recording) if e["resource"] == "widgets"]
    assert changes == [("create", "early", 1), ("create", "late", 2), ("update", "early", 3)], changes
