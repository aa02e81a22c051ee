"""A kwokctl recording's changes as audit events: the strategic merge patches applied, each change split into the
requests that made it (kwoksnap.audit.smp, kwoksnap.audit.kwokctl). The patch shapes are those kwokctl v0.8.0's
`snapshot export --record` wrote of a real cluster (a scale-up, a node lost, its pods evicted and replaced)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kwoksnap.audit import ParseStats
from kwoksnap.audit.kwokctl import USER_AGENT, recording_events
from kwoksnap.audit.smp import apply_patch

NODE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "n0", "uid": "u-n0", "labels": {"type": "kwok"}, "managedFields": [{"manager": "kwok"}]},
    "spec": {"taints": [{"effect": "NoSchedule", "key": "kwok.x-k8s.io/node", "value": "fake"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"},
                              {"type": "MemoryPressure", "status": "False"}],
               "phase": "Running"},
}


def test_a_list_with_its_element_order_is_merged_by_the_key_the_order_names() -> None:
    patch = {"status": {"$setElementOrder/conditions": [{"type": "Ready"}, {"type": "MemoryPressure"}],
                        "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}}
    node = apply_patch(NODE, patch)
    assert node["status"]["conditions"] == [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"},
                                            {"type": "MemoryPressure", "status": "False"}]
    assert node["status"]["phase"] == "Running" and node["metadata"] == NODE["metadata"]
    assert NODE["status"]["conditions"][0]["status"] == "True"  # (the original is not changed)
    reordered = apply_patch(NODE, {"status": {"$setElementOrder/conditions": [{"type": "MemoryPressure"},
                                                                              {"type": "Ready"}]}})
    assert [c["type"] for c in reordered["status"]["conditions"]] == ["MemoryPressure", "Ready"]


def test_a_list_without_a_directive_is_replaced_and_null_removes_a_key() -> None:
    taints = [NODE["spec"]["taints"][0], {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable"}]
    node = apply_patch(NODE, {"spec": {"taints": taints}, "metadata": {"labels": {"type": None, "zone": "a"}},
                              "status": {"phase": None}})
    assert node["spec"]["taints"] == taints and node["metadata"]["labels"] == {"zone": "a"}
    assert "phase" not in node["status"]
    assert apply_patch(NODE, {"metadata": {"managedFields": [{"manager": "kcm"}]}})["metadata"]["managedFields"] == [
        {"manager": "kcm"}]


def test_deletes_of_elements_primitive_lists_retain_keys_and_replace() -> None:
    pod = {"metadata": {"finalizers": ["a", "b", "c"]},
           "spec": {"containers": [{"name": "main", "image": "x:1"}, {"name": "side", "image": "y:1"}],
                    "volumes": [{"name": "v", "emptyDir": {}}]}}
    patched = apply_patch(pod, {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["c", "a", "d"],
                     "finalizers": ["d"]},
        "spec": {"containers": [{"name": "side", "$patch": "delete"}, {"name": "main", "image": "x:2"}],
                 "volumes": [{"name": "v", "hostPath": {"path": "/d"}, "$retainKeys": ["name", "hostPath"]}],
                 "$setElementOrder/volumes": [{"name": "v"}]}})
    assert patched["metadata"]["finalizers"] == ["c", "a", "d"]
    assert patched["spec"]["containers"] == [{"name": "main", "image": "x:2"}]  # (a delete alone names the key)
    assert patched["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/d"}}]
    assert apply_patch(pod, {"spec": {"$patch": "replace", "containers": []}})["spec"] == {"containers": []}
    assert apply_patch(pod, {"spec": {"$patch": "delete"}}) == {"metadata": pod["metadata"]}
    assert apply_patch(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})["metadata"] == {
        "finalizers": ["b", "c"]}  # (removals only: no list of its own in the patch)


@pytest.mark.parametrize("patch", [{"spec": "odd"}, {"spec": {"taints": [1, None, {"$patch": "delete"}]}},
                                   {"status": {"$setElementOrder/conditions": "x", "conditions": [{"type": "Ready"}]}},
                                   {1: 2}, {"metadata": {"$retainKeys": "name"}}])
def test_an_odd_patch_is_read_as_plain_values_never_raising(patch: dict[Any, Any]) -> None:
    assert isinstance(apply_patch(NODE, patch), dict)


def event(ts: int, verb: str, resource: str, name: str, namespace: str = "", **body: Any) -> dict[str, Any]:
    return {"type": "event", "ts": ts, "resource": resource, "verb": verb, "namespace": namespace, "name": name,
            **body}


POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "app", "uid": "u-p1", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "main", "image": "web:1"}]},
    "status": {"phase": "Pending", "qosClass": "Burstable"},
}


def changes(records: list[dict[str, Any]], stats: ParseStats | None = None) -> list[tuple[Any, ...]]:
    return [(e["ts"], e["verb"], e["resource"], e["subresource"], e["name"])
            for e in recording_events(records, source="rec.kws", stats=stats)]


def test_a_pods_life_becomes_the_requests_that_made_it() -> None:
    records = [
        {"type": "resource", "resource": "v1/nodes", "kind": "Node"},
        {"type": "object", "resource": "v1/nodes", "object": NODE},
        event(100, "create", "v1/pods", "web-1", "app", object=POD),
        event(200, "patch", "v1/pods", "web-1", "app", patch={  # the scheduler's binding, as one watch event
            "metadata": {"labels": {"zone": "a"}}, "spec": {"nodeName": "n0"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}),
        event(300, "patch", "v1/pods", "web-1", "app", patch={  # kwok's pod-ready stage
            "metadata": {"managedFields": [{"manager": "kwok"}]},
            "status": {"$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Ready"}],
                       "conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"}}),
        event(400, "patch", "v1/pods", "web-1", "app", patch={  # the taint manager's eviction
            "metadata": {"deletionGracePeriodSeconds": 30, "deletionTimestamp": "2026-11-29T10:00:00Z",
                         "generation": 2}}),
        event(500, "delete", "v1/pods", "web-1", "app"),
        event(600, "patch", "v1/nodes", "n0", patch={"spec": {"taints": [{"key": "t", "effect": "NoExecute"}]},
                                                      "metadata": {"managedFields": []}}),
    ]
    stats = ParseStats()
    assert changes(records, stats) == [
        (100, "create", "pods", "", "web-1"),
        (200, "create", "pods", "binding", "web-1"),
        (201, "update", "pods", "", "web-1"),  # (the label; the binding set the node)
        (202, "update", "pods", "status", "web-1"),
        (300, "update", "pods", "status", "web-1"),  # (managedFields alone are no change of the pod)
        (400, "delete", "pods", "", "web-1"),
        (500, "delete", "pods", "", "web-1"),
        (600, "update", "nodes", "", "n0")]
    assert stats.events == 6 and stats.malformed == 0 and stats.formats == {"kwokctl-recording": 6}
    events = list(recording_events(records, source="rec.kws"))
    binding, ready, evicted, gone = events[1], events[4], events[5], events[6]
    assert binding["request"]["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n0"}
    assert binding["uri"] == "/api/v1/namespaces/app/pods/web-1/binding" and binding["userAgent"] == USER_AGENT
    assert ready["level"] == "RequestResponse" and ready["response"]["spec"]["nodeName"] == "n0"
    assert ready["response"]["status"]["conditions"] == [{"type": "PodScheduled", "status": "True"},
                                                         {"type": "Ready", "status": "True"}]
    assert evicted["request"] == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 30,
                                  "preconditions": {"uid": "u-p1"}}
    assert evicted["response"]["metadata"]["deletionTimestamp"] == "2026-11-29T10:00:00Z"
    assert gone["request"]["gracePeriodSeconds"] == 0 and gone["request"]["preconditions"] == {"uid": "u-p1"}
    assert events[7]["response"]["spec"]["taints"] == [{"key": "t", "effect": "NoExecute"}]
    assert events[7]["response"]["status"] == NODE["status"]  # (from the recording's starting object)


def test_a_created_running_pod_gets_its_status_written_and_an_unknown_objects_patch_is_sent_as_is() -> None:
    running = copy.deepcopy(POD)
    running["spec"]["nodeName"] = "n0"
    running["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    cm_patch = {"data": {"k": "v"}}
    stats = ParseStats()
    assert changes([event(5, "create", "v1/pods", "web-1", "app", object=running),
                    event(7, "patch", "v1/configmaps", "cfg", "app", patch=cm_patch),
                    event(9, "create", "apps/v1/deployments", "web", "app", object={"kind": "Deployment",
                                                                                     "status": {"replicas": 1}})],
                   stats) == [(5, "create", "pods", "", "web-1"), (6, "update", "pods", "status", "web-1"),
                              (7, "patch", "configmaps", "", "cfg"), (9, "create", "deployments", "", "web")]
    (unknown,) = recording_events([event(7, "patch", "v1/configmaps", "cfg", "app", patch=cm_patch)],
                                  source="rec.kws")
    assert unknown["level"] == "Request" and unknown["request"] == cm_patch and unknown["response"] is None


def test_malformed_records_are_counted_with_where_they_are_and_late_events_put_in_place() -> None:
    stats = ParseStats()
    records: list[dict[str, Any]] = [
        event(30, "create", "v1/pods", "a", "ns", object=POD),
        {**event(1, "patch", "v1/pods", "a", "ns"), "patch": "x"},
        event(2, "create", "pods", "a", "ns", object=POD),
        {**event(3, "delete", "v1/pods", "a", "ns"), "ts": "3"},
        event(4, "update", "v1/pods", "a", "ns"),
        event(5, "delete", "v1/pods", "", "ns"),
        event(20, "delete", "v1/pods", "b", "ns"),  # (late: before the create above)
    ]
    assert changes(records, stats) == [(20, "delete", "pods", "", "b"), (30, "create", "pods", "", "a")]
    assert stats.malformed == 5 and stats.malformed_examples == [
        "rec.kws: record 2: a patch without its patch",
        "rec.kws: record 3: the event's resource is not 'version/plural' or 'group/version/plural'",
        "rec.kws: record 4: the event's 'ts' is not an integer",
        "rec.kws: record 5: the verb 'update' is not create, patch or delete",
        "rec.kws: record 6: the event lacks a name or its namespace is not a string"]
    in_window = [e["ts"] for e in recording_events([event(t, "delete", "v1/pods", f"p{t}") for t in (3, 1, 0, 2)],
                                                   source="x", window=1)]
    assert in_window == [1, 0, 2, 3]  # (a window of one held event: 0 came two late)
