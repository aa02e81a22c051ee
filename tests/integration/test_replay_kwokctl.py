"""A recording made by kwokctl itself (`kwokctl snapshot export --record`, the anchor) of a real cluster, imported,
restored and replayed by kwoksnap into a replay-profile cluster, ends where the source ended: the same pods on the
same nodes in the same phases, the cordoned node cordoned, the pod that held a finalizer gone. (How each change
becomes requests: tests/unit/test_audit_kwokctl.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kwoksnap.cluster.binaries import Binaries
from kwoksnap.cluster.local import Profile
from kwoksnap.cluster.populate import Size, populate, wait_settled
from kwoksnap.demo.scenario import _deployment_ready
from kwoksnap.kube import Client
from tests.conftest import ClusterFactory, client_for

SIZE = Size(nodes=3, namespaces=1, deployments_per_namespace=1, replicas=4, pending_pods=1,
            configmaps_per_namespace=1)
WEB = "/apis/apps/v1/namespaces/app-0/deployments/web-0"


def kwoksnap(workdir: Path, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI, knowing the test's clusters (restore finds the target's profile among them)."""
    pre = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run([sys.executable, "-m", "kwoksnap", *pre, *args], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, KWOKSNAP_WORKDIR=str(workdir)))


def _wait(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _pods(c: Client) -> set[tuple[str, str, str, bool]]:
    """(name, node, phase, being deleted) of every pod in the scenario's namespace."""
    return {(p["metadata"]["name"], p["spec"].get("nodeName", ""), p["status"].get("phase", ""),
             bool(p["metadata"].get("deletionTimestamp"))) for p, _ in c.list_items("/api/v1/namespaces/app-0/pods")}


def _scaled(c: Client, replicas: int) -> Callable[[], bool]:
    def check() -> bool:
        web = [p for p, _ in c.list_items("/api/v1/namespaces/app-0/pods", params={"labelSelector": "app=web-0"})]
        return _deployment_ready(c, "app-0", "web-0") and len(web) == replicas
    return check


def run_scenario(c: Client) -> str:
    """What the recorders record: the Deployment scaled up, a node cordoned, a pod that held a finalizer deleted,
    the Deployment scaled down. Returns the cordoned node."""
    c.patch(WEB, {"spec": {"replicas": 7}})
    _wait("the scale-up", _scaled(c, 7))
    node, other = sorted({n for _, n, _, _ in _pods(c) if n})[:2]
    c.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}})
    # A pod holding a finalizer, deleted, then let go: the recorder sees no change between its deletion and its
    # removal (the write that removed the finalizer removed it).
    held = "/api/v1/namespaces/app-0/pods/held"
    c.create("/api/v1/namespaces/app-0/pods", {
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"nodeName": other, "containers": [{"name": "main", "image": "registry.example/x:1"}],
                 "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}]}})
    _wait("the held pod to run", lambda: c.get(held)["status"].get("phase") == "Running")
    c.delete(held)
    _wait("the held pod to be Terminating", lambda: bool(c.get(held)["metadata"].get("deletionTimestamp")))
    c.patch(held, {"metadata": {"finalizers": None}})
    _wait("the held pod to go", lambda: not c.exists(held))
    c.patch(WEB, {"spec": {"replicas": 2}})
    _wait("the scale-down", _scaled(c, 2))
    time.sleep(2)  # the last changes reach the recorder
    return node


def test_a_kwokctl_recording_replays_to_the_state_the_source_ended_in(make_cluster: ClusterFactory,
                                                                     binaries: Binaries, workdir: Path,
                                                                     tmp_path: Path) -> None:
    source = make_cluster("kcrec")
    recording = tmp_path / "recording.yaml"
    log = tmp_path / "kwokctl.log"
    with client_for(source) as c:
        wait_settled(c, populate(c, SIZE), SIZE.nodes, timeout=300)
        with log.open("wb") as out:
            recorder = subprocess.Popen(
                [str(binaries.kwokctl), "snapshot", "export", "--record", "--kubeconfig", str(source.kubeconfig),
                 "--path", str(recording)], stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, KWOK_WORKDIR=str(workdir)))
            try:
                _wait("kwokctl to record", lambda: b"Press Ctrl+C to stop recording" in log.read_bytes())
                node = run_scenario(c)
            finally:
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
            want_pods = _pods(c)
    assert recorder.returncode == 0, log.read_text()[-2000:]
    assert any(not dying for _, _, _, dying in want_pods)

    kws = tmp_path / "recording.kws"
    proc = kwoksnap(workdir, "import", str(recording), "-o", str(kws))
    assert proc.returncode == 0 and " events into " in proc.stdout, proc.stdout + proc.stderr
    target = make_cluster("kcrep", Profile.REPLAY)
    proc = kwoksnap(workdir, "restore", str(kws), kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = tmp_path / "report.json"
    proc = kwoksnap(workdir, "replay", str(kws), "--speed", "10x", "--report", str(report),
                    kubeconfig=target.kubeconfig)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data: dict[str, Any] = orjson.loads(report.read_bytes())
    assert data["failed"] == 0 and data["applied"] == data["events"] > 10, data
    assert data["fidelity"]["mismatchCount"] == 0 and data["fidelity"]["checked"] >= 7, data["fidelity"]
    with client_for(target) as t:
        assert _pods(t) == want_pods
        assert t.get(f"/api/v1/nodes/{node}")["spec"].get("unschedulable") is True
