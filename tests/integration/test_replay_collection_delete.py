"""A collection delete recorded by a real API server replays as named deletes of exactly the objects it removed.

The source is the session cluster (its audit log uses kwoksnap's capture policy); the target is a replay-profile
cluster that holds one more object matching the recorded selector, which the source never deleted.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from kwoksnap.audit import FilterSpec, ParseStats, read_audit
from kwoksnap.cluster.local import LocalCluster, Profile
from kwoksnap.kube import Client
from kwoksnap.replay.engine import Replayer, ReplayOptions
from kwoksnap.replay.recording import audit_events
from tests.conftest import ClusterFactory, client_for
from tests.integration.test_replay_preconditions import line
from tests.integration.test_replay_preconditions import pod as pod_object


def pod(name: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "img"}],
                     "nodeSelector": {"kwoksnap.io/test": "nowhere"}}}  # never scheduled: no bindings, no status


def stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"


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


def test_a_name_taken_again_while_the_collection_delete_ran_keeps_its_new_object(
        make_cluster: ClusterFactory, tmp_path: Path) -> None:
    """Synthetic logs: the collection delete lists p (UID src-1) and completes 50 ms after its receipt; a create of
    p with another UID (src-2), received 10 ms after it, was answered either while it ran or 30 ms after it
    completed, so the source's p at the end is the new one. Replayed verbatim, the listed p goes first and the new
    p stays (due at the collection's completion, the delete would remove the new p)."""
    target = make_cluster("recreate", Profile.REPLAY)
    with client_for(target) as c:
        for case, answered in (("during", 0.01), ("after", 0.08)):
            namespace, at = f"coll-recreate-{case}", time.time() - 60
            items = [pod_object(namespace, "p", "src-1")]
            collection = orjson.loads(line(namespace, "deletecollection", "", at,
                                           {"kind": "DeleteOptions", "gracePeriodSeconds": 0},
                                           {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}))
            collection["requestURI"] = f"/api/v1/namespaces/{namespace}/pods?labelSelector=app%3Da"
            collection["stageTimestamp"] = stamp(at + 0.05)
            create = orjson.loads(line(namespace, "create", "p", at + 0.01, pod_object(namespace, "p", "src-2"),
                                       pod_object(namespace, "p", "src-2")))
            create["stageTimestamp"] = stamp(at + answered)
            log = tmp_path / f"{case}.log"
            log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in sorted(
                (create, collection), key=lambda e: str(e["stageTimestamp"]))))

            c.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
            listed = c.create(f"/api/v1/namespaces/{namespace}/pods", pod("p"))  # the incarnation listed
            replayer = Replayer(c, ReplayOptions(speed=None))
            report = replayer.run(audit_events([str(log)], FilterSpec(), ParseStats()))
            replayer.check_fidelity()
            assert report.failed == 0 and report.applied == 2, (case, report.failures)
            now = c.get(f"/api/v1/namespaces/{namespace}/pods/p")  # NotFound if the new p had been deleted
            assert now["metadata"]["uid"] != listed["metadata"]["uid"], case  # the listed one went, a new one came
            assert report.mismatches == [] and report.fidelity_checked == 1, case
