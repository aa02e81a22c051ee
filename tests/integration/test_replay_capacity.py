"""The write-rate measurement that replay plans spread bursts with, against the session's real cluster: it answers
a positive rate from real pod status writes, its scratch pods are never scheduled or run and are gone afterwards,
and it falls back to ConfigMaps where pods are refused; and `kwoksnap replay` spreads a burst with a given or a
measured rate and reports it. (Failure paths: tests/unit/test_capacity.py.)"""

from __future__ import annotations

import math
import time
from pathlib import Path

import orjson
import pytest

from kwoksnap.audit import AuditEvent, FilterSpec, ParseStats, filter_events, read_audit
from kwoksnap.cluster.local import LocalCluster
from kwoksnap.kube import Client
from kwoksnap.replay.capacity import SCRATCH_LABEL, measure_write_rate
from tests.integration.test_replay_preconditions import line, pod
from tests.integration.test_snapshot_roundtrip import kwoksnap


def scratch(client: Client, namespace: str, resource: str = "pods") -> list[str]:
    return [obj["metadata"]["name"] for obj, _ in client.list_items(
        f"/api/v1/namespaces/{namespace}/{resource}", params={"labelSelector": SCRATCH_LABEL})]


def seen(cluster: LocalCluster, namespace: str, resource: str) -> list[AuditEvent]:
    return [ev for ev in read_audit([str(cluster.audit_log)])
            if ev["resource"] == resource and ev["namespace"] == namespace and ev["stage"] == "ResponseComplete"]


def wait_for(cluster: LocalCluster, namespace: str, resource: str, patches: int, deletes: int) -> list[AuditEvent]:
    deadline = time.monotonic() + 10  # the API server may write its audit log in batches
    while True:
        events = seen(cluster, namespace, resource)
        done = (sum(ev["verb"] == "patch" for ev in events) >= patches
                and sum(ev["verb"] == "delete" for ev in events) >= deletes)
        if done or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_measures_a_write_rate_and_leaves_nothing(kwok_cluster: LocalCluster, client: Client, namespace: str) -> None:
    result = measure_write_rate(client, namespace=namespace, concurrency=4, requests=40)
    assert result.rate is not None and result.rate > 0 and math.isfinite(result.rate), result.error
    assert result.leftovers == [] and result.error is None
    assert result.resource == "pods" and result.fallback is None
    assert scratch(client, namespace) == []
    events = wait_for(kwok_cluster, namespace, "pods", 4 + 3 * 40, 4)
    patches = [ev for ev in events if ev["verb"] == "patch"]
    assert len(patches) == 4 + 3 * 40 and all(ev["code"] == 200 and ev["subresource"] == "status" for ev in patches)
    # Only the measurement wrote them: no scheduler bound them and no kwok ran them (nothing but its own writes).
    assert {(ev["verb"], ev["subresource"], ev["user"]) for ev in events} == {
        ("create", "", events[0]["user"]), ("patch", "status", events[0]["user"]), ("delete", "", events[0]["user"])}
    assert sum(ev["verb"] == "delete" and ev["code"] == 200 for ev in events) == 4


def test_falls_back_to_configmaps_where_pods_are_refused(kwok_cluster: LocalCluster, client: Client,
                                                         namespace: str) -> None:
    """A quota of no pods: the ResourceQuota admission plugin refuses every pod, and not ConfigMaps."""
    client.create(f"/api/v1/namespaces/{namespace}/resourcequotas",
                  {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
    # (the quota binds once its controller has written its status: CI, on a loaded machine, measured with pods
    # before that)
    deadline = time.monotonic() + 30
    while not (client.get(f"/api/v1/namespaces/{namespace}/resourcequotas/no-pods").get("status") or {}).get("hard"):
        assert time.monotonic() < deadline, "the quota controller never wrote the quota's status"
        time.sleep(0.2)
    result = measure_write_rate(client, namespace=namespace, concurrency=2, requests=20)
    assert result.rate is not None and result.rate > 0, result.error
    assert result.resource == "configmaps" and result.fallback is not None, result
    assert "quota" in result.fallback, result.fallback
    assert result.leftovers == [] and scratch(client, namespace) == []
    assert scratch(client, namespace, "configmaps") == []
    patches = [ev for ev in wait_for(kwok_cluster, namespace, "configmaps", 2 + 3 * 20, 2) if ev["verb"] == "patch"]
    assert len(patches) == 2 + 3 * 20 and all(ev["code"] == 200 for ev in patches)


@pytest.mark.parametrize(("capacity", "pods"), [(["--capacity", "100"], 12), ([], 48)], ids=["given", "measured"])
def test_cli_spreads_an_opening_burst(kwok_cluster: LocalCluster, client: Client, namespace: str, tmp_path: Path,
                                      capacity: list[str], pods: int) -> None:
    """Pods created in the same recorded instant, replayed at 10x. Given 100 writes/s, twelve take 120 ms, so the
    first goes out 55 ms before offset 0 (half the overrun, less one write). With the measured rate (hundreds to
    thousands of writes/s here), 48 give the first a lead of several ms at least. All are created."""
    t = time.time() - 60
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(line(namespace, "create", f"p{i}", t, pod(namespace, f"p{i}", f"src-{i}"),
                                  pod(namespace, f"p{i}", f"src-{i}")) for i in range(pods)))
    report_path = tmp_path / "report.json"
    proc = kwoksnap("replay", "--audit", str(log), "--mode", "inputs", "--speed", "10x", "--no-fidelity",
                    "--report", str(report_path), *capacity, kubeconfig=kwok_cluster.kubeconfig)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = orjson.loads(report_path.read_bytes())
    assert report["applied"] == pods
    spread = report["spread"]
    # Released early: each goes 5 ms (at 100/s) after the one before, so a dispatcher thread that is descheduled
    # for a few ms on this shared machine can release one or two of the last at or after their due time.
    if capacity:
        assert spread["capacityWritesPerSecond"] == 100.0 and 8 <= spread["early"] <= 11, spread
        assert 45 <= spread["leadMsMax"] <= 55, spread  # the first one: half the overrun, 11 x 5 ms
    else:  # a measured rate: whatever it is, 48 writes due at one instant are more than it takes
        assert spread["capacityWritesPerSecond"] > 0 and 1 <= spread["early"] <= pods - 1, spread
        assert 0 < spread["leadMsMax"] <= 250, spread
    assert "bursts spread: " in proc.stdout and "released early" in proc.stdout, proc.stdout
    assert sorted(p["metadata"]["name"] for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")) \
        == sorted(f"p{i}" for i in range(pods))
    assert scratch(client, "default") == []  # the measurement's pods are gone
    if not capacity:  # and a replay of this target's own audit log would not send the measurement's writes again
        stats = ParseStats()
        kept = list(filter_events(read_audit([str(kwok_cluster.audit_log)]), FilterSpec(), stats))
        assert stats.skipped["kwoksnap-scratch"] >= 3 * 96, stats.skipped  # at least the timed rounds
        # (The measurement test above wrote its scratch pods in its own namespace: the rule is for default only.)
        assert not [ev for ev in kept if ev["name"].startswith("kwoksnap-capacity-") and ev["namespace"] == "default"]
