"""A kwokctl recording's changes as audit events: the strategic merge patches applied, each change split into the
requests that made it (kwoksnap.audit.smp, kwoksnap.audit.kwokctl). The patch shapes are those kwokctl v0.8.0's
`snapshot export --record` wrote of a real cluster (a scale-up, a node lost, its pods evicted and replaced)."""

from __future__ import annotations

import copy
import heapq
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
                     "finalizers": ["d", "a"]},
        "spec": {"$setElementOrder/containers": [{"name": "main"}],
                 "containers": [{"name": "side", "$patch": "delete"}, {"name": "main", "image": "x:2"}],
                 "volumes": [{"name": "v", "hostPath": {"path": "/d"}, "$retainKeys": ["name", "hostPath"]}],
                 "$setElementOrder/volumes": [{"name": "v"}]}})
    assert patched["metadata"]["finalizers"] == ["c", "a", "d"]  # (each value once, in the new order)
    assert patched["spec"]["containers"] == [{"name": "main", "image": "x:2"}]
    assert patched["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/d"}}]
    emptied = apply_patch(pod, {"spec": {"containers": [{"name": "side", "$patch": "delete"},
                                                        {"name": "main", "$patch": "delete"}]}})
    assert emptied["spec"]["containers"] == []  # (a list emptied: Go writes only its deletions, no order)
    assert apply_patch(pod, {"spec": {"$patch": "replace", "containers": []}})["spec"] == {"containers": []}
    assert apply_patch(pod, {"spec": {"$patch": "delete"}}) == {"metadata": pod["metadata"], "spec": {}}
    assert apply_patch(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})["metadata"] == {
        "finalizers": ["b", "c"]}  # (removals only: no list of its own in the patch)


def test_elements_sharing_a_merge_key_value_are_all_kept_as_go_keeps_them() -> None:
    """Review finding: CoreDNS's ports share containerPort 53 (UDP and TCP): the one merged by a dict of key values
    kept only the last, and a replayed Deployment lost its UDP port."""
    ports = [{"port": 53, "protocol": "UDP", "name": "dns"}, {"port": 53, "protocol": "TCP", "name": "dns-tcp"}]
    patched = apply_patch({"spec": {"ports": ports}}, {"spec": {
        "$setElementOrder/ports": [{"port": 53}, {"port": 53}, {"port": 9153}],
        "ports": [{"port": 9153, "name": "metrics"}]}})
    assert patched["spec"]["ports"] == [*ports, {"port": 9153, "name": "metrics"}]
    renamed = apply_patch({"spec": {"ports": ports}}, {"spec": {"$setElementOrder/ports": [{"port": 53}, {"port": 53}],
                                                                "ports": [{"port": 53, "name": "first"}]}})
    assert renamed["spec"]["ports"] == [{**ports[0], "name": "first"}, ports[1]]  # (into the first of them)
    gone = apply_patch({"spec": {"ports": ports}}, {"spec": {"ports": [{"port": 53, "$patch": "delete"}]}})
    assert gone["spec"]["ports"] == []  # (a deletion removes every element with the value)


def test_values_taken_whole_keep_what_looks_like_a_directive() -> None:
    """Review finding: a list replaced whole, or a new key's value, is data as Go takes it (a Kustomization's
    patches hold `$patch: delete` maps of their own)."""
    patches = [{"kind": "Service", "$patch": "delete"}, {"a": 1}]
    spec = apply_patch({"spec": {"patches": [{"old": True}]}}, {"spec": {"patches": patches}})["spec"]
    assert spec["patches"] == patches
    fresh = apply_patch({"spec": {}}, {"spec": {"template": {"$weird": 1, "metadata": {"creationTimestamp": None}}}})
    assert fresh["spec"]["template"] == {"$weird": 1, "metadata": {}}


@pytest.mark.parametrize("patch", [{"spec": "odd"}, {"spec": {"taints": [1, None, {"$patch": "delete"}]}},
                                   {"status": {"$setElementOrder/conditions": "x", "conditions": [{"type": "Ready"}]}},
                                   {1: 2}, {"metadata": {"$retainKeys": "name"}}])
def test_an_odd_patch_is_read_as_plain_values_never_raising(patch: dict[Any, Any]) -> None:
    result = apply_patch(NODE, patch)
    assert result["metadata"] == NODE["metadata"] and result["kind"] == "Node"  # (what it does not name stays)


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
    assert stats.events == 8 and stats.malformed == 0 and stats.formats == {"kwokctl-recording": 8}  # (requests)
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
    in_window = [(e["name"], e["ts"]) for e in recording_events(
        [event(t, "delete", "v1/pods", f"p{t}") for t in (3, 1, 0, 2)], source="x", window=1)]
    assert in_window == [("p1", 1), ("p0", 2), ("p2", 3), ("p3", 4)]  # (one held: p0 came two late; times rise)


def test_two_changes_at_one_time_keep_their_order() -> None:
    """Review finding: the requests of a change were a nanosecond apart, and a second change of the pod in the same
    nanosecond sorted between them: the older phase was written last."""
    pod = {**POD, "spec": {**POD["spec"], "nodeName": "n0"}}
    records = [{"type": "object", "resource": "v1/pods", "object": pod},
               event(100, "patch", "v1/pods", "web-1", "app", patch={"metadata": {"labels": {"x": "1"}},
                                                                     "status": {"phase": "Running"}}),
               event(100, "patch", "v1/pods", "web-1", "app", patch={"status": {"phase": "Succeeded"}})]
    events = list(recording_events(records, source="rec.kws"))
    assert [(e["ts"], e["subresource"], e["response"]["status"]["phase"]) for e in events] == [
        (100, "", "Running"), (101, "status", "Running"), (102, "status", "Succeeded")]


def test_a_deletion_is_sent_first_with_its_policy_and_what_only_subresources_write_goes_to_them() -> None:
    """Review findings: a Namespace's deletion came after a status write of its Terminating phase (refused, 422);
    a foreground deletion's finalizer was sent as an update; emptied Namespace finalizers and a debug container
    went to writes the API server ignores or refuses; a shorter grace period made no request."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone", "uid": "u-ns"},
          "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "app",
                                                                          "uid": "u-d"}, "spec": {"replicas": 1}}
    records = [
        {"type": "object", "resource": "v1/namespaces", "object": ns},
        {"type": "object", "resource": "apps/v1/deployments", "object": deploy},
        {"type": "object", "resource": "v1/pods", "object": POD},
        event(10, "patch", "v1/namespaces", "gone", patch={
            "metadata": {"deletionTimestamp": "2026-11-29T10:00:00Z", "deletionGracePeriodSeconds": 0},
            "status": {"phase": "Terminating"}}),
        event(20, "patch", "v1/namespaces", "gone", patch={
            "spec": {"finalizers": None}, "status": {"conditions": [{"type": "NamespaceDeletionContentFailure"}]}}),
        event(30, "delete", "v1/namespaces", "gone"),
        event(40, "patch", "apps/v1/deployments", "web", "app", patch={"metadata": {
            "deletionTimestamp": "2026-11-29T10:00:01Z", "deletionGracePeriodSeconds": 0,
            "finalizers": ["foregroundDeletion"]}}),
        event(50, "patch", "v1/pods", "web-1", "app", patch={"metadata": {
            "deletionTimestamp": "2026-11-29T10:00:30Z", "deletionGracePeriodSeconds": 30}}),
        event(60, "patch", "v1/pods", "web-1", "app", patch={
            "metadata": {"deletionTimestamp": "2026-11-29T10:00:05Z", "deletionGracePeriodSeconds": 5},
            "spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}}),
        event(70, "patch", "v1/pods", "web-1", "app", patch={  # kwok's pod-delete stage: marked, then removed
            "metadata": {"deletionTimestamp": "2026-11-29T10:00:01Z", "deletionGracePeriodSeconds": 0}}),
        event(71, "delete", "v1/pods", "web-1", "app"),
    ]
    events = list(recording_events(records, source="rec.kws"))
    assert [(e["ts"], e["verb"], e["resource"], e["subresource"]) for e in events] == [
        (10, "delete", "namespaces", ""),  # (its Terminating phase is the delete's doing: no status write)
        (20, "update", "namespaces", "finalize"), (21, "update", "namespaces", "status"),
        (30, "delete", "namespaces", ""),
        (40, "delete", "deployments", ""),  # (and no update for the finalizer the delete added)
        (50, "delete", "pods", ""),
        (60, "delete", "pods", ""), (61, "update", "pods", "ephemeralcontainers"),
        (71, "delete", "pods", "")]  # (real-cluster finding: a delete at 70 too found the pod gone at 71)
    assert events[4]["request"] == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                    "propagationPolicy": "Foreground", "preconditions": {"uid": "u-d"}}
    assert events[5]["request"]["gracePeriodSeconds"] == 30 and events[6]["request"]["gracePeriodSeconds"] == 5
    assert events[7]["response"]["spec"]["ephemeralContainers"] == [{"name": "debug", "image": "busybox"}]
    assert events[1]["response"]["spec"] == {} and events[3]["request"]["preconditions"] == {"uid": "u-ns"}


def test_an_object_deleted_and_created_again_is_each_incarnation_and_an_unseen_ones_status_goes_to_status() -> None:
    again = {**POD, "metadata": {**POD["metadata"], "uid": "u-p2"}}
    events = list(recording_events([
        {"type": "object", "resource": "v1/pods", "object": POD},
        event(10, "delete", "v1/pods", "web-1", "app"),
        event(20, "create", "v1/pods", "web-1", "app", object=again),
        event(30, "patch", "v1/pods", "web-1", "app", patch={"metadata": {"labels": {"v": "2"}}}),
        event(40, "delete", "v1/pods", "web-1", "app"),
        event(50, "patch", "v1/nodes", "unseen", patch={"metadata": {"labels": {"a": "b"}}, "status": {"x": 1}}),
    ], source="rec.kws"))
    assert [e["request"]["preconditions"]["uid"] for e in events if e["verb"] == "delete"] == ["u-p1", "u-p2"]
    assert events[2]["response"]["metadata"] == {**again["metadata"], "labels": {"app": "web", "v": "2"}}
    assert [(e["subresource"], e["level"], e["request"]) for e in events[4:]] == [
        ("", "Request", {"metadata": {"labels": {"a": "b"}}}), ("status", "Request", {"status": {"x": 1}})]


def test_a_delete_of_an_object_with_finalizers_clears_them_first_and_a_bare_delete_orphans_nothing() -> None:
    """Black-box findings: the write that removes an object's last finalizer also removes it, so the recorder saw
    only its deletion, and the object stayed Terminating in the target (a pod holding a finalizer, a Job's pod with
    its tracking finalizer, a foreground deletion); a Job deleted without a policy defaulted to orphaning its pods,
    and the orphan finalizer kept it Terminating."""
    held = {**POD, "metadata": {**POD["metadata"], "finalizers": ["example.com/hold"],
                                "deletionTimestamp": "2026-11-29T10:00:00Z", "deletionGracePeriodSeconds": 0}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "app", "uid": "u-cm",
                                                                "finalizers": ["example.com/keep"]}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "stuck", "namespace": "app", "uid": "u-j"}}
    events = list(recording_events([
        {"type": "object", "resource": "v1/pods", "object": held},
        {"type": "object", "resource": "v1/configmaps", "object": cm},
        {"type": "object", "resource": "batch/v1/jobs", "object": job},
        event(10, "delete", "v1/pods", "web-1", "app"),
        event(20, "delete", "v1/configmaps", "cfg", "app"),
        event(30, "delete", "batch/v1/jobs", "stuck", "app"),
    ], source="rec.kws"))
    assert [(e["ts"], e["verb"], e["resource"]) for e in events] == [
        (10, "update", "pods"),  # (being deleted with no grace period left: the update removes it, as it did)
        (20, "update", "configmaps"), (21, "delete", "configmaps"),
        (30, "delete", "jobs")]
    assert events[0]["response"]["metadata"]["finalizers"] == [] and events[1]["request"]["metadata"][
        "finalizers"] == []
    assert events[2]["request"] == {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                                    "preconditions": {"uid": "u-cm"}}
    assert events[3]["request"]["propagationPolicy"] == "Background"


def test_a_create_waits_for_the_create_of_the_owner_it_names() -> None:
    """Black-box finding: kwokctl times each change when its resource's informer delivers it, so a Job's pods came
    0.2 s before the Job; replayed in that order, they lost their owner reference for good."""
    from kwoksnap.audit.kwokctl import owners_first

    def pod(name: str, owner: str) -> dict[str, Any]:
        return {**POD, "metadata": {**POD["metadata"], "name": name, "uid": f"u-{name}",
                                    "ownerReferences": [{"kind": "Job", "name": "j", "uid": owner}]}}

    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "app", "uid": "u-job"}}
    streams = [
        recording_events([event(100, "create", "v1/pods", "p1", "app", object=pod("p1", "u-job")),
                          event(110, "patch", "v1/pods", "p1", "app", patch={"spec": {"nodeName": "n0"}}),
                          event(120, "create", "v1/pods", "p2", "app", object=pod("p2", "u-known")),
                          event(130, "create", "v1/pods", "p3", "app", object=pod("p3", "u-never")),
                          event(5_000_000_000, "delete", "v1/pods", "p2", "app")], source="pods"),
        recording_events([event(300, "create", "batch/v1/jobs", "j", "app", object=job)], source="jobs"),
    ]
    merged = heapq.merge(*streams, key=lambda e: e["ts"])
    out = [(e["ts"], e["resource"], e["subresource"], e["name"]) for e in owners_first(merged, {"u-known"})]
    assert out == [(120, "pods", "", "p2"), (300, "jobs", "", "j"), (301, "pods", "", "p1"),
                   (302, "pods", "binding", "p1"),
                   (130, "pods", "", "p3"),  # (its owner never came: let go as it was, after the wait)
                   (5_000_000_000, "pods", "", "p2")]
