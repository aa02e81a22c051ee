"""Restore marks the target with the time its snapshot was taken; a replay into it counts the events of a log that
the snapshot already holds and says which --from skips them (black-box finding: replaying a whole log over the
snapshot taken in its middle failed with "pod updates may not change fields", and nothing said why)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from kwoksnap.audit.timestamps import parse_timestamp
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from kwoksnap.store import KwsReader
from tests.integration.test_snapshot_roundtrip import kwoksnap

MARK = "kwoksnap.io/snapshot-taken-at"


def configmap_line(namespace: str, n: int, at_ns: int) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_ns // 10**9)) + f".{at_ns % 10**9 // 1000:06d}Z"
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"c{n}", "namespace": namespace, "uid": f"src-{n}"}}
    event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": f"c-{n}",
             "stage": "ResponseComplete", "verb": "create",
             "requestURI": f"/api/v1/namespaces/{namespace}/configmaps",
             "user": {"username": "alice"}, "userAgent": "kubectl/v1.36.3",
             "objectRef": {"resource": "configmaps", "namespace": namespace, "name": f"c{n}", "apiVersion": "v1"},
             "responseStatus": {"code": 201}, "requestObject": body, "responseObject": body,
             "requestReceivedTimestamp": stamp, "stageTimestamp": stamp}
    return orjson.dumps(event) + b"\n"


def test_restore_marks_the_target_and_replay_counts_what_the_snapshot_holds(
        kwok_cluster: LocalCluster, client: Client, namespace: str, tmp_path: Path) -> None:
    snapshot = tmp_path / "s.kws"
    proc = kwoksnap("save", "-o", str(snapshot), "-n", namespace, "--include", "namespaces,configmaps",
                    kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    with KwsReader(snapshot) as reader:
        taken = str(reader.header["createdAt"])
    try:
        proc = kwoksnap("restore", str(snapshot), kubeconfig=kwok_cluster.kubeconfig)  # all there: skipped
        assert proc.returncode == 0, proc.stderr
        assert client.get("/api/v1/namespaces/kube-system")["metadata"]["annotations"][MARK] == taken
        proc = kwoksnap("diff", str(snapshot), "--live", "-n", namespace, kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stdout  # the mark is not a difference

        t = parse_timestamp(taken)
        log = tmp_path / "audit.log"
        log.write_bytes(configmap_line(namespace, 1, t - 5 * 10**9) + configmap_line(namespace, 2, t + 10**9))
        report = tmp_path / "report.json"
        args = [sys.executable, "-m", "kwoksnap", "--kubeconfig", str(kwok_cluster.kubeconfig), "replay", "--audit",
                str(log), "--resources", "configmaps", "--mode", "inputs", "--speed", "max", "--no-fidelity",
                "--report", str(report)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (f"warning: 1 event(s) were recorded before the snapshot restored in this target was taken ({taken})"
                in proc.stderr and f"--from {taken} starts the replay there" in proc.stderr), proc.stderr
        assert json.loads(report.read_text())["beforeSnapshot"] == 1
        proc = subprocess.run([*args, "--from", taken], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "before the snapshot" not in proc.stderr, proc.stderr
        assert json.loads(report.read_text())["beforeSnapshot"] == 0
        # A snapshot without a capture time (an imported kwokctl YAML) takes the mark off: never an older one.
        exported, imported = tmp_path / "s.yaml", tmp_path / "imported.kws"
        assert kwoksnap("export", str(snapshot), "-o", str(exported)).returncode == 0
        assert kwoksnap("import", str(exported), "-o", str(imported)).returncode == 0
        proc = kwoksnap("restore", str(imported), kubeconfig=kwok_cluster.kubeconfig)
        assert proc.returncode == 0, proc.stderr
        assert MARK not in (client.get("/api/v1/namespaces/kube-system")["metadata"].get("annotations") or {})
    finally:  # other tests replay into this cluster without a restore of theirs
        client.patch("/api/v1/namespaces/kube-system", {"metadata": {"annotations": {MARK: None}}})
