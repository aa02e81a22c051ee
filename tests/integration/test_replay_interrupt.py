"""Ctrl-C during a replay: it stops cleanly, prints its report (with what was not sent), exits 130, and leaves every
change it sent applied whole (the issue: "Ctrl-C stops cleanly with a summary")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from kwoksnap.cluster.local import LocalCluster
from kwoksnap.errors import ExitCode
from kwoksnap.kube import Client
from tests.integration.test_replay_preconditions import line, pod


def test_ctrl_c_stops_the_replay_with_its_report(kwok_cluster: LocalCluster, client: Client, namespace: str,
                                                 tmp_path: Path) -> None:
    t = time.time() - 120
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(line(namespace, "create", f"p{i:02}", t + i, pod(namespace, f"p{i:02}", f"src-{i}"),
                                  pod(namespace, f"p{i:02}", f"src-{i}")) for i in range(30)))  # one a second
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig), "replay",
                             "--audit", str(log), "--mode", "inputs", "--speed", "1x", "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(client.list_items(f"/api/v1/namespaces/{namespace}/pods"))) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the replay did not get going"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    data = orjson.loads(report.read_bytes())
    assert data["interrupted"] and data["failed"] == 0
    created = {p["metadata"]["name"] for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")}
    assert len(created) == data["applied"] >= 3  # every change sent was answered; nothing else was sent
    assert created == {f"p{i:02}" for i in range(len(created))}  # in recorded order
    assert data["unsent"] == data["events"] - data["applied"] > 0
    assert (f"interrupted: {data['unsent']} of the {data['events']} events planned were not sent (each change sent "
            "was answered before the replay stopped)") in out.splitlines()
    assert "fidelity: not checked (interrupted)" in out.splitlines()
