"""One test per public sample audit log (see /work/shared/fixtures/audit-samples/INDEX.md and docs/audit.md).

The samples are read in place from the shared fixtures folder beside the repository clone; they are not copied into
the repo (licences and attribution live there).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgpack
import orjson
import pytest

from kwoksnap.audit import (
    Actor,
    AuditEvent,
    FilterSpec,
    ParseStats,
    classify,
    degraded,
    filter_events,
    infer_patch_type,
    parse_timestamp,
    read_audit,
    resource_version,
    skip_reason,
)
from kwoksnap.audit.reader import sniff
from kwoksnap.errors import InputError

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "audit-samples"


def _read(relative: str) -> tuple[str, list[AuditEvent], ParseStats]:
    path = SAMPLES / relative
    if not path.is_file():
        pytest.fail(f"sample {path} is missing: the shared fixtures folder must sit beside the repository clone")
    stats = ParseStats()
    events = list(read_audit([str(path)], stats=stats, strict=True))
    assert stats.malformed == 0 and not stats.truncated
    for event in events:  # recordings store events as msgpack/JSON: both must round-trip
        assert msgpack.unpackb(msgpack.packb(event)) == event
        assert orjson.loads(orjson.dumps(event)) == event
    return sniff(str(path)), events, stats


def test_khi_gke_pod_create() -> None:
    container, events, stats = _read("khi/container_recorder_test_1_1.yaml")
    assert container == "yaml" and stats.formats == {"gke": 1}
    (e,) = events
    assert (e["verb"], e["group"], e["version"], e["resource"], e["subresource"]) == ("create", "", "v1", "pods", "")
    assert (e["namespace"], e["name"]) == ("1-2-deployment-update", "nginx-deployment-surge-8655b4b8c5-xf5f4")
    assert e["user"] == "system:serviceaccount:kube-system:replicaset-controller"
    assert classify(e["user"], e["groups"], e["userAgent"]) is Actor.CONTROLLER
    assert (e["stage"], e["level"], e["code"]) == ("ResponseComplete", "RequestResponse", 200)
    assert e["ts"] == parse_timestamp("2024-01-01T01:00:00Z")
    assert "@type" not in e["request"] and "@type" not in e["response"]
    assert resource_version(e) == 15465 and e["response"]["status"]["phase"] == "Pending"
    assert e["auditID"] == "85371f7c-2383-4041-96e8-dad63d2d1990"
    assert e["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert skip_reason(e, FilterSpec()) is None and not degraded(e)


def test_khi_gke_kubelet_status_patch_request_only() -> None:
    container, events, stats = _read("khi/container_recorder_test_1_2.yaml")
    assert container == "yaml" and stats.formats == {"gke": 1}
    (e,) = events
    assert (e["verb"], e["resource"], e["subresource"]) == ("patch", "pods", "status")
    assert e["name"] == "nginx-deployment-surge-8655b4b8c5-xf5f4"
    assert classify(e["user"], e["groups"], e["userAgent"]) is Actor.KUBELET
    assert e["level"] == "Request" and e["response"] is None and degraded(e)
    assert "@type" not in e["request"] and "$setElementOrder/conditions" in e["request"]["status"]
    assert infer_patch_type(e) == "strategic"
    kept = list(filter_events(events, FilterSpec(), stats))
    assert kept == events and stats.degraded == {"Request": 1}


def test_khi_native_yaml_leader_election_lease() -> None:
    container, events, stats = _read("khi/test-log.yaml")
    assert container == "yaml" and stats.formats == {"native": 1}
    (e,) = events
    assert (e["verb"], e["group"], e["resource"], e["namespace"], e["name"]) == (
        "update",
        "coordination.k8s.io",
        "leases",
        "kube-system",
        "kube-scheduler",
    )
    assert e["ts"] == parse_timestamp("2025-04-01T13:33:59.457732Z")
    assert e["received"] == parse_timestamp("2025-04-01T13:33:59.447869Z")
    assert resource_version(e) == 5812  # the result's RV, not objectRef's request RV 5808
    assert e["request"]["spec"]["renewTime"] == "2025-04-01T13:33:59.445411Z"  # YAML timestamps stay strings
    assert classify(e["user"], e["groups"], e["userAgent"]) is Actor.SCHEDULER
    assert skip_reason(e, FilterSpec()) == "resource-not-selected"  # leader election: not kube-node-lease
    assert skip_reason(e, FilterSpec(lease_namespaces=frozenset())) is None


def test_falco_v1beta1_pod_create_generate_name() -> None:
    container, events, stats = _read("falco/create_nginx_pod_privileged.json")
    assert container == "jsonl" and stats.formats == {"native": 1}
    (e,) = events
    assert (e["verb"], e["resource"], e["namespace"], e["code"]) == ("create", "pods", "default", 201)
    assert e["name"] == "nginx-deployment-5cdcc99dbf-rgw6z"  # objectRef has none: taken from responseObject
    assert e["ts"] == parse_timestamp("2018-10-25T14:09:12.581541Z")
    assert classify(e["user"], e["groups"], e["userAgent"]) is Actor.CONTROLLER
    assert skip_reason(e, FilterSpec()) is None


def test_falco_configmap_delete() -> None:
    container, events, _ = _read("falco/delete_configmap.json")
    assert container == "jsonl"
    (e,) = events
    assert (e["verb"], e["resource"], e["name"], e["code"]) == ("delete", "configmaps", "my-config", 200)
    assert e["request"]["kind"] == "DeleteOptions" and e["response"]["kind"] == "Status"
    assert e["version"] == "v1" and e["user"] == "minikube-user"
    assert classify(e["user"], e["groups"], e["userAgent"]) is Actor.USER
    assert skip_reason(e, FilterSpec()) == "resource-not-selected"
    assert skip_reason(e, FilterSpec(resources=frozenset({"configmaps"}))) is None


def test_falco_clusterrole_client_side_apply_patch() -> None:
    container, events, _ = _read("falco/modify_cluster_role_node_problem_detector.json")
    assert container == "jsonl"
    (e,) = events
    assert (e["verb"], e["group"], e["resource"]) == ("patch", "rbac.authorization.k8s.io", "clusterroles")
    assert e["name"] == "system:node-problem-detector" and e["namespace"] == ""
    assert infer_patch_type(e) == "strategic"  # kubectl's client-side apply sends a strategic merge patch
    assert resource_version(e) == 269365
    assert skip_reason(e, FilterSpec()) == "resource-not-selected"


def test_audit2rbac_metadata_reads_all_skipped() -> None:
    container, events, stats = _read("audit2rbac/demo.log")
    assert container == "jsonl" and stats.lines == 37 and stats.formats == {"native": 37}
    verbs = Counter(e["verb"] for e in events)
    assert verbs == {"get": 23, "list": 14}
    assert all(e["level"] == "Metadata" and e["request"] is None for e in events)
    # No requestReceivedTimestamp/stageTimestamp: the legacy `timestamp` is used; output is sorted.
    assert events[0]["ts"] == parse_timestamp("2017-09-11T19:55:05Z")
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert Counter(e["code"] for e in events)[403] == 11
    assert events[0]["user"] == "bob"  # system:admin impersonating bob: the effective user
    assert list(filter_events(events, FilterSpec(), stats)) == []
    assert stats.skipped == {"read-only-verb": 37}
    stats2 = ParseStats()
    kept = list(
        filter_events(read_audit([str(SAMPLES / "audit2rbac/demo.log")], stats=stats2, prefilter=FilterSpec()), None)
    )
    assert kept == [] and stats2.prefiltered == 0  # legacy layout: every line is decoded, none prefiltered


def test_audit2rbac_policy_is_not_a_log() -> None:
    path = str(SAMPLES / "audit2rbac/demo-policy.yaml")
    assert sniff(path) == "yaml"
    stats = ParseStats()
    first = f"{path}:1: not an audit record (no auditID, AuditId, protoPayload, message or properties)"
    with pytest.raises(InputError) as err:  # read to the end without one audit event: not an audit log
        list(read_audit([path], stats=stats))
    assert str(err.value) == f"{path}: not an audit log: no audit event in 1 lines (1 malformed; first: {first})"
    assert stats.malformed == 1 and stats.malformed_examples == [first]
    with pytest.raises(InputError, match=r"demo-policy\.yaml:1: not an audit record"):
        list(read_audit([path], strict=True))
