"""A collection delete recorded by a real API server replays as named deletes of exactly the objects it removed.

The source is the session cluster (its audit log uses kwoksnap's capture policy); the target is a replay-profile
cluster that holds one more object matching the recorded selector, which the source never deleted.
"""

from __future__ import annotations

import time

from kwoksnap.audit import FilterSpec, ParseStats, read_audit
from kwoksnap.cluster.local import LocalCluster, Profile
from kwoksnap.kube import Client
from kwoksnap.replay.engine import Replayer, ReplayOptions
from kwoksnap.replay.recording import audit_events
from tests.conftest import ClusterFactory, client_for


def pod(name: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "img"}],
                     "nodeSelector": {"kwoksnap.io/test": "nowhere"}}}  # never scheduled: no bindings, no status


def names(client: Client, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p, _ in client.list_items(f"/api/v1/namespaces/{namespace}/pods")}


def test_a_recorded_collection_delete_removes_only_the_recorded_objects(
        kwok_cluster: LocalCluster, client: Client, namespace: str, make_cluster: ClusterFactory) -> None:
    started = time.time_ns()
    for name in ("a1", "a2"):
        client.create(f"/api/v1/namespaces/{namespace}/pods", pod(name))
    client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods",
                   params={"labelSelector": "app=a", "gracePeriodSeconds": "0"})
    assert names(client, namespace) == set()

    spec = FilterSpec(namespaces=frozenset({namespace}), since_ns=started)
    deadline = time.monotonic() + 30
    recorded: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        recorded = [e for e in read_audit([str(kwok_cluster.audit_log)]) if e["namespace"] == namespace
                    and e["verb"] == "deletecollection" and e["stage"] == "ResponseComplete"]
        if recorded:
            break
        time.sleep(0.5)
    assert len(recorded) == 1, "the source's audit log has no record of the collection delete"
    response = recorded[0]["response"]
    assert isinstance(response, dict)
    assert sorted(i["metadata"]["name"] for i in response["items"]) == ["a1", "a2"]

    target = make_cluster("coll", Profile.REPLAY)
    with client_for(target) as c:
        c.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        c.create(f"/api/v1/namespaces/{namespace}/pods", pod("only-in-target"))  # matches app=a too
        recorded_events = list(audit_events([str(kwok_cluster.audit_log)], spec, ParseStats()))
        # the two creates, the collection delete, and whatever the source's scheduler wrote (PodScheduled=False)
        assert [e["verb"] for e in recorded_events].count("create") == 2
        replayer = Replayer(c, ReplayOptions(speed=None))
        report = replayer.run(recorded_events)
        replayer.check_fidelity()
        assert report.failed == 0, report.failures
        assert report.events == report.applied == len(recorded_events) + 1  # the collection: one delete per object
        assert names(c, namespace) == {"only-in-target"}  # sent again as a collection delete, it would be gone
        assert report.mismatches == [] and report.fidelity_checked == 2
