"""Acceptance for snapshots on real clusters: save a populated KWOK cluster, restore it into an empty one, and the
restored cluster diffs equal to the snapshot, now and 60 s later; reruns are idempotent; bad files write nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kwoksnap.capture.snapshot import SaveOptions, save_snapshot
from kwoksnap.cluster.binaries import Binaries
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import Size, populate, wait_settled
from kwoksnap.diff.compare import DiffResult, compare
from kwoksnap.errors import ExitCode
from kwoksnap.kube import Client
from kwoksnap.kube.discovery import discover
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import LiveSource, SnapshotSource
from kwoksnap.store import KwsReader
from tests.conftest import ClusterFactory, client_for

# Acceptance size: >= 50 fake nodes, several hundred pods (240 from Deployments, 50 DaemonSet, StatefulSet, Job,
# pending). KWOKSNAP_TEST_SCALE multiplies the Deployment replicas for a larger local run.
SCALE = float(os.environ.get("KWOKSNAP_TEST_SCALE", "1"))
SIZE = Size(nodes=50, namespaces=3, deployments_per_namespace=4, replicas=max(1, int(20 * SCALE)))


@pytest.fixture(scope="module")
def source(make_module_cluster: ClusterFactory) -> Iterator[tuple[LocalCluster, Client]]:
    cluster = make_module_cluster("src")
    with client_for(cluster) as c:
        expected = populate(c, SIZE)
        wait_settled(c, expected, SIZE.nodes, timeout=300)
        yield cluster, c


@pytest.fixture(scope="module")
def snapshot(source: tuple[LocalCluster, Client], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "source.kws"
    summary = save_snapshot(source[1], path, SaveOptions())
    assert not [r for r in summary.resources if r.error], summary.resources
    return path


def live_diff(snapshot: Path, client: Client) -> DiffResult:
    with KwsReader(snapshot) as reader:
        left = SnapshotSource(reader)
        right = LiveSource(client, discover(client))
        return compare(left.group_resources(), left.by_group_resource, right.by_group_resource)


def describe(result: DiffResult) -> str:
    return "; ".join(f"{d.change} {d.resource} {d.namespace}/{d.name} {d.fields[:3]}" for d in result.differences[:8])


def test_snapshot_holds_the_whole_cluster(snapshot: Path) -> None:
    with KwsReader(snapshot) as reader:
        source = SnapshotSource(reader)
        counts = source.counts()
        pods = list(source.objects("v1/pods"))
        secrets = list(source.objects("v1/secrets"))
    assert counts["v1/nodes"] == SIZE.nodes
    assert counts["example.kwoksnap.io/v1/widgets"] == SIZE.namespaces  # custom resources of a CRD
    assert counts["apiextensions.k8s.io/v1/customresourcedefinitions"] >= 1
    phases = {p["status"]["phase"] for p in pods}
    assert {"Running", "Pending", "Succeeded"} <= phases
    assert len(pods) >= 300
    assert all("managedFields" not in p["metadata"] for p in pods)
    assert "v1/events" not in counts and "coordination.k8s.io/v1/leases" not in counts  # default deny list
    db = next(s for s in secrets if s["metadata"]["name"] == "db-credentials")
    assert db["metadata"]["annotations"]["kwoksnap.io/redacted"] == "true"
    assert db["data"] == {"password": "cmVkYWN0ZWQtYnkta3dva3NuYXA="}  # "redacted-by-kwoksnap": not even its length
    # a user's service-account token Secret is saved (black-box finding: it was left out, and missing from the
    # target for good), without the live token its controller wrote (review finding), which the target mints anew
    # (test_restore_round_trip_is_equal...)
    token = next(s for s in secrets if s["metadata"]["name"] == "builder-token")
    assert not set(token.get("data") or {}) & {"token", "ca.crt", "namespace"}, token


def test_secrets_stay_secret_in_diff_and_in_restore(source: tuple[LocalCluster, Client], snapshot: Path,
                                                    tmp_path: Path) -> None:
    """Found black-box testing: diff --live printed the source's real secret values next to the placeholders and
    called the redacted snapshot different; restore --on-conflict replace wrote the placeholders over the real
    values."""
    cluster, c = source
    real = "czNjcjN0LXZhbHVl"  # base64 of the value populate() stored
    with KwsReader(snapshot) as reader:
        left = SnapshotSource(reader)
        secrets = [gr for gr in left.group_resources() if gr == "secrets"]
        result = compare(secrets, left.by_group_resource, LiveSource(c, discover(c)).by_group_resource)
    assert secrets and result.equal, describe(result)  # keys and type compared, values never
    for output in ("text", "json"):
        proc = kwoksnap("diff", str(snapshot), "--live", "-o", output, kubeconfig=cluster.kubeconfig)
        assert proc.returncode in (ExitCode.OK, ExitCode.DIFFERENT) and real not in proc.stdout + proc.stderr

    only = tmp_path / "secrets.kws"
    assert kwoksnap("save", "-o", str(only), "--include", "secrets", "-n", "app-0",
                    kubeconfig=cluster.kubeconfig).returncode == 0
    proc = kwoksnap("restore", str(only), "--on-conflict", "replace", kubeconfig=cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert ("warning: kept 2 existing Secret(s) as they were: the snapshot's values are redacted (save "
            "--include-secrets keeps them): app-0/builder-token, app-0/db-credentials") in proc.stderr, proc.stderr
    assert c.get("/api/v1/namespaces/app-0/secrets/db-credentials")["data"] == {"password": real}


def test_restore_round_trip_is_equal_and_stays_equal(snapshot: Path, make_cluster: ClusterFactory) -> None:
    target = make_cluster("dst")
    with client_for(target, pool_size=32) as c, KwsReader(snapshot) as reader:
        summary = restore(c, SnapshotSource(reader), RestoreOptions(concurrency=32))
        assert summary.ok, (summary.failures[:5], summary.not_adopted[:5])
        first = live_diff(snapshot, c)
        assert first.equal, describe(first)
        pods = [p for p, _ in c.list_items("/api/v1/pods")]
        assert len(pods) >= 300
        time.sleep(60)  # nothing added, removed, rescheduled or reset by controllers, the scheduler or kwok
        later = live_diff(snapshot, c)
        assert later.equal, describe(later)
        # (the target's token controller wrote its own token into the restored token Secret, and kept it)
        data = c.get("/api/v1/namespaces/app-0/secrets/builder-token").get("data") or {}
        assert data.get("ca.crt") and data.get("token") not in (None, "cmVkYWN0ZWQtYnkta3dva3NuYXA="), data.keys()
        assert sorted(p["metadata"]["name"] for p, _ in c.list_items("/api/v1/pods")) == sorted(
            p["metadata"]["name"] for p in pods)

        # A rerun is idempotent: everything is skipped, nothing changes.
        again = restore(c, SnapshotSource(reader), RestoreOptions(concurrency=32))
        assert again.ok
        assert sum(r.created for r in again.results.values()) == 0
        assert live_diff(snapshot, c).equal


def kwoksnap(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run([sys.executable, "-m", "kwoksnap", *pre, *args], capture_output=True, text=True,
                          timeout=600)


def test_cli_save_restore_diff(source: tuple[LocalCluster, Client], make_cluster: ClusterFactory,
                               tmp_path: Path) -> None:
    path = tmp_path / "cli.kws"
    proc = kwoksnap("save", "-o", str(path), "-n", "app-1", "--exclude", "secrets", kubeconfig=source[0].kubeconfig)
    assert proc.returncode == 0, proc.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    assert "warning" not in proc.stderr
    typo = kwoksnap("save", "-o", str(tmp_path / "typo.kws"), "-n", "app-l", kubeconfig=source[0].kubeconfig)
    assert typo.returncode == 0  # the cluster-scoped objects are saved; the typo is pointed out
    assert "warning: namespace app-l does not exist in the cluster: nothing of it is saved" in typo.stderr
    bad = kwoksnap("save", "-o", str(tmp_path / "bad.kws"), "-l", "!!bad", kubeconfig=source[0].kubeconfig)
    assert bad.returncode == ExitCode.USAGE and bad.stderr.startswith("kwoksnap: error: -l !!bad: ")
    assert bad.stderr.count("\n") == 1 and not (tmp_path / "bad.kws").exists()  # was: exit 0, 0 objects saved
    nothing = kwoksnap("save", "-o", str(tmp_path / "nothing.kws"), "-l", "nothing=here",
                       kubeconfig=source[0].kubeconfig)  # (review finding: "0 objects of 0 resources" alone)
    assert nothing.returncode == 0, nothing.stderr
    listed = re.search(r"saved 0 objects of 0 resources \((\d+) more listed, empty\) to ", nothing.stdout)
    assert listed and int(listed.group(1)) > 5, nothing.stdout
    none = kwoksnap("save", "-o", str(tmp_path / "none.kws"), "--include", "pods", "--exclude", "pods",
                    kubeconfig=source[0].kubeconfig)
    assert none.returncode == ExitCode.USAGE  # it said pods were not served
    assert none.stderr == "kwoksnap: error: --exclude leaves nothing of --include pods\n"
    dry = kwoksnap("restore", str(path), "--dry-run", "-o", "json", kubeconfig=source[0].kubeconfig)
    assert dry.returncode == 0 and '"phase": "pods"' in dry.stdout
    target = make_cluster("cli")
    proc = kwoksnap("restore", str(path), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    proc = kwoksnap("diff", str(path), "--live", "-n", "app-1", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stdout
    # A damaged copy (its pods frame): salvage keeps the rest, and restore and diff say what it lacks.
    with KwsReader(path) as reader:
        [pods] = reader.frames("v1/pods")
    damaged, salvaged = tmp_path / "damaged.kws", tmp_path / "salvaged.kws"
    data = bytearray(path.read_bytes())
    data[pods["offset"] + pods["length"] // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    assert kwoksnap("restore", str(damaged), kubeconfig=target.kubeconfig).returncode == ExitCode.INPUT
    proc = kwoksnap("salvage", str(damaged), "-o", str(salvaged))
    assert proc.returncode == ExitCode.PARTIAL and f"({pods['records']} record(s) of v1/pods)" in proc.stdout
    proc = kwoksnap("restore", str(salvaged), "--on-conflict", "skip", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stderr + proc.stdout
    assert "warning: the snapshot does not hold all of pods: salvaged from a damaged file: " in proc.stderr
    proc = kwoksnap("diff", str(salvaged), "--live", "-n", "app-1", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert f"warning: pods not compared: {salvaged}: salvaged from a damaged file: " in proc.stderr, proc.stderr
    # A different namespace was not restored: the diff says so with exit code 1.
    full = tmp_path / "full.kws"
    assert kwoksnap("save", "-o", str(full), kubeconfig=source[0].kubeconfig).returncode == 0
    proc = kwoksnap("diff", str(full), "--live", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.DIFFERENT and "missing" in proc.stdout
    # `save -l` selects namespaces by the label too: restore makes the namespaces its objects are in (black-box
    # finding: every object failed "namespaces not found").
    src = source[1]
    src.create("/api/v1/namespaces", {"metadata": {"name": "picked-only", "labels": {"team": "payments"},
                                                   "annotations": {"owner": "sre@example.com"}}})
    try:
        src.create("/api/v1/namespaces/picked-only/configmaps", {"metadata": {"name": "picked", "labels": {
            "pick": "yes"}}, "data": {"a": "1"}})
        picked = tmp_path / "picked.kws"
        assert kwoksnap("save", "-o", str(picked), "-l", "pick=yes", kubeconfig=source[0].kubeconfig).returncode == 0
        proc = kwoksnap("restore", str(picked), kubeconfig=target.kubeconfig)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert "warning: created 1 namespace(s)" in proc.stderr and "picked-only" in proc.stderr
        proc = kwoksnap("diff", str(picked), "--live", kubeconfig=target.kubeconfig)
        assert proc.returncode == ExitCode.OK, proc.stdout
        # A later restore of a snapshot that holds the namespace takes the mark off (black-box finding: diff --live
        # then reported the created-by label for good).
        whole = tmp_path / "whole.kws"
        assert kwoksnap("save", "-o", str(whole), "-n", "picked-only", kubeconfig=source[0].kubeconfig).returncode == 0
        proc = kwoksnap("restore", str(whole), kubeconfig=target.kubeconfig)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        with client_for(target) as c:
            meta = c.get("/api/v1/namespaces/picked-only")["metadata"]
        labels = meta.get("labels") or {}
        assert "kwoksnap.io/created-by" not in labels, labels
        # ...and gives it its recorded labels and annotations (black-box finding: a NetworkPolicy's
        # namespaceSelector on team=payments then selected nothing)
        assert labels["team"] == "payments" and meta["annotations"]["owner"] == "sre@example.com", meta
        proc = kwoksnap("diff", str(whole), "--live", kubeconfig=target.kubeconfig)
        assert proc.returncode == ExitCode.OK, proc.stdout
    finally:
        src.delete("/api/v1/namespaces/picked-only")


def test_restore_refuses_real_nodes(snapshot: Path, make_cluster: ClusterFactory) -> None:
    target = make_cluster("real")
    with client_for(target) as c:
        c.create("/api/v1/nodes", {"metadata": {"name": "real-node"}})  # no kwok.x-k8s.io/node annotation
        proc = kwoksnap("restore", str(snapshot), kubeconfig=target.kubeconfig)
        assert proc.returncode == ExitCode.CLUSTER
        assert "not managed by KWOK" in proc.stderr and proc.stderr.count("\n") == 1
        assert [n["metadata"]["name"] for n, _ in c.list_items("/api/v1/nodes")] == ["real-node"]


BAD_FILES = {
    "empty": b"",
    "random": os.urandom(4096),
    "yaml": b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
}


@pytest.mark.parametrize("kind", ["empty", "random", "yaml", "truncated-header", "truncated-middle",
                                  "truncated-end", "flipped-byte", "newer-version"])
def test_bad_files_fail_cleanly_and_write_nothing(kind: str, snapshot: Path, kwok_cluster: LocalCluster,
                                                  client: Client, tmp_path: Path) -> None:
    data = snapshot.read_bytes()
    if kind in BAD_FILES:
        bad = BAD_FILES[kind]
    elif kind == "truncated-header":
        bad = data[:10]
    elif kind == "truncated-middle":
        bad = data[: len(data) // 2]
    elif kind == "truncated-end":
        bad = data[:-3]
    elif kind == "flipped-byte":
        pos = len(data) // 3
        bad = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:]
    else:
        from kwoksnap.store.format import PREAMBLE, encode_preamble

        _magic, version, hlen = PREAMBLE.unpack(data[:PREAMBLE.size])
        header = data[PREAMBLE.size:PREAMBLE.size + hlen]
        pre, crc = encode_preamble(version + 1, header)  # a valid file of the next format version
        bad = pre + header + crc + data[PREAMBLE.size + hlen + 4:]
    path = tmp_path / "bad.kws"
    path.write_bytes(bad)
    before = sorted(n["metadata"]["name"] for n, _ in client.list_items("/api/v1/nodes"))
    namespaces_before = sorted(n["metadata"]["name"] for n, _ in client.list_items("/api/v1/namespaces"))
    proc = kwoksnap("restore", str(path), kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == ExitCode.INPUT, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kwoksnap: error: ")
    if kind == "newer-version":
        assert "upgrade kwoksnap" in proc.stderr
    assert sorted(n["metadata"]["name"] for n, _ in client.list_items("/api/v1/nodes")) == before
    assert sorted(n["metadata"]["name"] for n, _ in client.list_items("/api/v1/namespaces")) == namespaces_before
    inspect = kwoksnap("inspect", str(path))
    assert inspect.returncode == ExitCode.INPUT


def kwokctl(binaries: Binaries, workdir: Path, *args: str) -> None:
    env = dict(os.environ, KWOK_WORKDIR=str(workdir))
    proc = subprocess.run([str(binaries.kwokctl), *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_kwokctl_snapshot_imports_and_restores(source: tuple[LocalCluster, Client], binaries: Binaries,
                                              workdir: Path, make_cluster: ClusterFactory, tmp_path: Path) -> None:
    yaml_path = tmp_path / "kwokctl.yaml"
    kwokctl(binaries, workdir, "snapshot", "save", "--name", source[0].name, "--format", "k8s", "--path",
            str(yaml_path))
    kws = tmp_path / "imported.kws"
    assert kwoksnap("import", str(yaml_path), "-o", str(kws)).returncode == 0
    target = make_cluster("kcin")
    proc = kwoksnap("restore", str(kws), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    proc = kwoksnap("diff", str(kws), "--live", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stdout[-3000:]
    with client_for(target) as c:
        assert sum(1 for _ in c.list_items("/api/v1/nodes")) == SIZE.nodes


def test_our_export_restores_with_kwokctl(snapshot: Path, binaries: Binaries, workdir: Path,
                                          make_cluster: ClusterFactory, tmp_path: Path) -> None:
    out = tmp_path / "export.yaml"  # kwokctl v0.8.0 snapshot restore reads no gzip (it parses the bytes as YAML)
    assert kwoksnap("export", str(snapshot), "-o", str(out)).returncode == 0
    target = make_cluster("kcout")
    kwokctl(binaries, workdir, "snapshot", "restore", "--name", target.name, "--format", "k8s", "--path",
            str(out))
    with KwsReader(snapshot) as reader, client_for(target) as c:
        source = SnapshotSource(reader)
        want_pods = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in source.objects("v1/pods")}
        want_nodes = {n["metadata"]["name"] for n in source.objects("v1/nodes")}
        got_pods = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p, _ in c.list_items("/api/v1/pods")}
        got_nodes = {n["metadata"]["name"] for n, _ in c.list_items("/api/v1/nodes")}
    assert want_nodes <= got_nodes
    assert want_pods <= got_pods, sorted(want_pods - got_pods)[:5]


def _wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_terminating_pods_are_restored_terminating(make_cluster: ClusterFactory, tmp_path: Path) -> None:
    """A snapshot taken mid-incident holds pods being deleted; restore makes them Terminating again, owned as before
    (a ReplicaSet never adopts a pod being deleted), next to their replacements."""
    source = make_cluster("term")
    with client_for(source) as c:
        c.create("/api/v1/nodes", {"metadata": {"name": "n1", "annotations": {"kwok.x-k8s.io/node": "fake"}},
                                   "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                                              "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}})
        c.create("/api/v1/namespaces", {"metadata": {"name": "term"}})
        _wait("the default ServiceAccount", lambda: c.exists("/api/v1/namespaces/term/serviceaccounts/default"))
        c.create("/apis/apps/v1/namespaces/term/replicasets", {
            "metadata": {"name": "hold"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hold"}},
                     "template": {"metadata": {"labels": {"app": "hold"}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}})

        def pods() -> list[dict[str, Any]]:
            return [p for p, _ in c.list_items("/api/v1/namespaces/term/pods")]

        _wait("a running pod", lambda: [p["status"].get("phase") for p in pods()] == ["Running"])
        old = pods()[0]["metadata"]["name"]
        c.patch(f"/api/v1/namespaces/term/pods/{old}", {"metadata": {"finalizers": ["example.com/hold"]}})
        c.delete(f"/api/v1/namespaces/term/pods/{old}", {"gracePeriodSeconds": 45})
        _wait("the replacement", lambda: sum(p["status"].get("phase") == "Running" for p in pods()) == 2)
        path = tmp_path / "term.kws"
        assert kwoksnap("save", "-o", str(path), "-n", "term", kubeconfig=source.kubeconfig).returncode == 0
        c.patch(f"/api/v1/namespaces/term/pods/{old}", {"metadata": {"finalizers": None}})  # let it go

    target = make_cluster("termdst")
    proc = kwoksnap("restore", str(path), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with client_for(target) as t:
        restored = {p["metadata"]["name"]: p for p, _ in t.list_items("/api/v1/namespaces/term/pods")}
    assert len(restored) == 2
    terminating = restored[old]["metadata"]
    # (kwok in the source re-deleted it with grace 0, which the finalizer held; restore uses 30 s then, since a
    # grace of 0 would remove a pod without finalizers at once, unlike the recorded one)
    assert terminating.get("deletionTimestamp") and terminating["deletionGracePeriodSeconds"] == 30
    assert terminating["finalizers"] == ["example.com/hold"]
    assert [(r["kind"], r["name"]) for r in terminating["ownerReferences"]] == [("ReplicaSet", "hold")]
    assert all(p["status"]["phase"] == "Running" for p in restored.values())
    assert not [n for n, p in restored.items() if n != old and p["metadata"].get("deletionTimestamp")]
    proc = kwoksnap("diff", str(path), "--live", kubeconfig=target.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stdout[-3000:]


def test_diff_live_compares_what_save_n_l_saved(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                tmp_path: Path) -> None:
    """Black-box findings: right after `save -l app=web`, `diff --live` reported every other object as added (the
    snapshot's selector was not applied to the live side), and after `save -n`, a PV bound to a claim in another
    namespace, which save leaves out on purpose."""
    for name, app in (("web-config", "web"), ("db-config", "db")):
        client.create(f"/api/v1/namespaces/{namespace}/configmaps",
                      {"metadata": {"name": name, "labels": {"app": app}}, "data": {"k": "v"}})
    pv = f"pv-{namespace}"
    client.create("/api/v1/persistentvolumes", {
        "metadata": {"name": pv, "labels": {"app": "web"}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"},
                 "claimRef": {"namespace": "some-other-namespace", "name": "claim"}}})
    try:
        path = tmp_path / "web.kws"
        kubeconfig = ["--kubeconfig", str(kwok_cluster.kubeconfig)]
        save = subprocess.run([sys.executable, "-m", "kwoksnap", *kubeconfig, "save", "-o", str(path), "-n",
                               namespace, "-l", "app=web"], capture_output=True, text=True, timeout=300)
        assert save.returncode == ExitCode.OK, save.stderr
        diff = subprocess.run([sys.executable, "-m", "kwoksnap", *kubeconfig, "diff", str(path), "--live"],
                              capture_output=True, text=True, timeout=300)
        assert diff.returncode == ExitCode.OK, diff.stdout + diff.stderr
        assert diff.stdout.startswith("equal: ")
        with KwsReader(path) as reader:  # what was compared: the one object save kept
            names = [r["object"]["metadata"]["name"] for r in reader.records() if r.get("type") == "object"]
        assert "web-config" in names and "db-config" not in names and pv not in names
    finally:
        client.delete(f"/api/v1/persistentvolumes/{pv}")


def test_an_exclude_that_names_nothing_served_is_warned_about(kwok_cluster: LocalCluster, namespace: str,
                                                              tmp_path: Path) -> None:
    """Black-box finding: `--include nosuchthing` is an error, but a misspelt --exclude silently kept what it meant
    to leave out."""
    proc = kwoksnap("save", "-o", str(tmp_path / "s.kws"), "-n", namespace, "--exclude", "secrts,events",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: --exclude")] == [
        "warning: --exclude secrts: the cluster serves no such resource (is the name right?)"]
    # Likewise an --include entry beside one that matches (black-box finding: `--include pods,nosuch` was silent)
    proc = kwoksnap("save", "-o", str(tmp_path / "i.kws"), "-n", namespace, "--include", "pods,nosuch",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert "warning: --include nosuch: the cluster serves no such resource (is the name right?)" in proc.stderr
