"""Fault: the target's API server stops in the middle of a large restore and comes back. The restore rides through
with retries, or a rerun completes it; either way the result diffs equal to the snapshot, nothing duplicated or
missing, and no object is left half-applied without being reported."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kwoksnap.capture.snapshot import SaveOptions, save_snapshot
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.cluster.populate import fake_node
from kwoksnap.diff.compare import compare
from kwoksnap.kube import Client
from kwoksnap.kube.discovery import discover
from kwoksnap.restore.engine import RestoreOptions, restore
from kwoksnap.restore.source import LiveSource, SnapshotSource
from kwoksnap.store import KwsReader
from tests.conftest import ClusterFactory, client_for

PODS = int(os.environ.get("KWOKSNAP_FAULT_PODS", "4000"))
NODES = 40


def bulk_snapshot(source: Client, path: Path) -> None:
    """A real snapshot of nodes and 4,000 bare pods that kwok has made Running."""
    source.create("/api/v1/namespaces", {"metadata": {"name": "bulk"}})
    deadline = time.monotonic() + 30  # pods are admitted only once the namespace's default ServiceAccount exists
    while not source.exists("/api/v1/namespaces/bulk/serviceaccounts/default") and time.monotonic() < deadline:
        time.sleep(0.2)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: source.create("/api/v1/nodes", fake_node(f"bulk-node-{i}")), range(NODES)))
        list(pool.map(lambda i: source.create("/api/v1/namespaces/bulk/pods", {
            "metadata": {"name": f"pod-{i:05d}", "labels": {"i": str(i)}},
            "spec": {"nodeName": f"bulk-node-{i % NODES}", "containers": [{"name": "c", "image": "img"}],
                     "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]},
        }), range(PODS)))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = sum(1 for p, _ in source.list_items("/api/v1/namespaces/bulk/pods")
                      if p["status"].get("phase") == "Running")
        if running == PODS:
            break
        time.sleep(1)
    summary = save_snapshot(source, path, SaveOptions(include=frozenset({"pods", "nodes", "namespaces"}),
                                                      namespaces=("bulk",)))
    assert summary.objects == PODS + NODES + 1


def restart_apiserver(cluster: LocalCluster, down: float) -> None:
    """Kill the cluster's kube-apiserver, wait ``down`` seconds, start it again with the same command line."""
    pid_file = cluster.directory / "pids" / "kube-apiserver.pid"
    pid = int(pid_file.read_text())
    args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.kill(pid, signal.SIGKILL)
    time.sleep(down)
    log = open(cluster.directory / "logs" / "kube-apiserver.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([a.decode() for a in args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    pid_file.write_text(str(proc.pid))


def test_restore_rides_through_an_api_server_restart(make_cluster: ClusterFactory, tmp_path: Path) -> None:
    snapshot = tmp_path / "bulk.kws"
    with client_for(make_cluster("bulksrc"), pool_size=16) as src:
        bulk_snapshot(src, snapshot)
    target = make_cluster("fault")
    with client_for(target, pool_size=32) as c, KwsReader(snapshot) as reader:
        source = SnapshotSource(reader)
        # Kill the API server 3 s into the restore, keep it down 5 s, then start it again.
        chaos = threading.Timer(3.0, restart_apiserver, args=(target, 5.0))
        chaos.start()
        first = restore(c, source, RestoreOptions(concurrency=32))
        chaos.join()
        assert first.retries > 0, "the API server restart did not happen during the restore"
        runs = 1
        summary = first
        while not summary.ok and runs < 3:  # every failure was reported; a rerun completes the restore
            assert summary.failures
            summary = restore(c, source, RestoreOptions(concurrency=32))
            runs += 1
        assert summary.ok, summary.failures[:5]
        result = compare(source.group_resources(), source.by_group_resource,
                         LiveSource(c, discover(c)).by_group_resource, namespaces=source.namespaces)
        assert result.equal, [(d.change, d.name, d.fields[:2]) for d in result.differences[:5]]
        pods = [p["metadata"]["name"] for p, _ in c.list_items("/api/v1/namespaces/bulk/pods")]
        assert len(pods) == len(set(pods)) == PODS
        print(f"restore with API server restart: {runs} run(s), first run {first.retries} retries, "
              f"{len(first.failures)} failures, {first.seconds:.1f}s")
