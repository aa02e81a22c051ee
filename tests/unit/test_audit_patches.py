"""Patch-type inference (the audit log does not record a patch's Content-Type) and the level helpers."""

from __future__ import annotations

from typing import Any

import pytest

from kwoksnap.audit import AuditEvent, degraded, infer_patch_type
from kwoksnap.errors import UsageError


def patch(
    body: Any,
    *,
    uri: str = "/api/v1/namespaces/ns/pods/p",
    user: str = "alice",
    group: str = "",
    subresource: str = "",
    response: Any = None,
    verb: str = "patch",
    level: str = "RequestResponse",
) -> AuditEvent:
    return {
        "ts": 0,
        "received": 0,
        "auditID": "a",
        "stage": "ResponseComplete",
        "level": level,
        "verb": verb,
        "user": user,
        "groups": [],
        "userAgent": "",
        "group": group,
        "version": "v1",
        "resource": "pods",
        "subresource": subresource,
        "namespace": "ns",
        "name": "p",
        "uri": uri,
        "code": 200,
        "request": body,
        "response": response,
        "annotations": {},
        "source": "t:1",
    }


APPLIED = {"metadata": {"managedFields": [{"manager": "kubectl", "operation": "Apply"}]}}
BOTH = {
    "metadata": {
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}, {"manager": "kubectl", "operation": "Update"}]
    }
}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (patch([{"op": "replace", "path": "/spec/replicas", "value": 3}]), "json"),
        (patch([]), "json"),
        (
            patch(
                {"apiVersion": "v1", "kind": "Pod", "spec": {}}, uri="/api/v1/namespaces/ns/pods/p?fieldManager=kubectl"
            ),
            "apply",
        ),
        (patch({"spec": {}}, uri="/api/v1/namespaces/ns/pods/p?fieldManager=x&force=true"), "apply"),
        (patch({"spec": {}}, uri="/api/v1/namespaces/ns/pods/p?fieldManager=kubectl", response=APPLIED), "apply"),
        (patch({"spec": {}}, uri="/api/v1/namespaces/ns/pods/p?fieldManager=kubectl", response=BOTH), "strategic"),
        (
            patch({"apiVersion": "v1", "kind": "Pod"}, uri="/api/v1/pods/p?fieldManager=kubectl-client-side-apply"),
            "strategic",
        ),
        (patch({"apiVersion": "x.io/v1", "kind": "Foo"}, group="x.io"), "merge"),  # no fieldManager: not apply
        (patch({"metadata": {"labels": {"a": None}}}, group="example.com"), "merge"),
        (patch({"status": {"$setElementOrder/conditions": [{"type": "Ready"}]}}, group="example.com"), "strategic"),
        (patch({"spec": {"containers": [{"name": "c", "$patch": "delete"}]}}, group="example.com"), "strategic"),
        (patch({"spec": {"$retainKeys": ["a"]}}, group="example.com"), "strategic"),
        (patch({"$deleteFromPrimitiveList/finalizers": ["x"]}, group="example.com"), "strategic"),
        (
            patch({"status": {"phase": "Running"}}, user="system:node:n1", subresource="status", group="x.io"),
            "strategic",
        ),
        (patch({"spec": {"replicas": 2}}, group="apps"), "strategic"),
        (patch({"metadata": {"labels": {"$patch": 1}}}, group="example.com"), "strategic"),  # key, whatever value
        (patch(None, group="example.com"), "merge"),  # Metadata level: no body
        (patch("not a body", group="apps"), "strategic"),
        # Black-box finding: merge patches of pods' lists were replayed as strategic ones, which merge them.
        (patch({"metadata": {"finalizers": ["z"]}}, response={"metadata": {"finalizers": ["z"]}}), "merge"),
        (patch({"metadata": {"finalizers": ["z"]}}, response={"metadata": {"finalizers": ["z", "x", "y"]}}),
         "strategic"),
        (patch({"spec": {"schedulingGates": []}}, response={"spec": {"nodeName": ""}}), "merge"),  # cleared
        (patch({"spec": {"schedulingGates": []}}, response={"spec": {"schedulingGates": [{"name": "g"}]}}),
         "strategic"),  # a strategic [] leaves the list as it was
        (patch({"metadata": {"finalizers": ["z"]}}), "strategic"),  # Request level: nothing to tell by
        (patch({"metadata": {"labels": {"a": "b"}}}, response={"metadata": {"labels": {"a": "b"}}}), "strategic"),
        # Review finding: an in-place change of a keyed list's item leaves the list as long, not as written.
        (patch({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}},
               response={"spec": {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"port": 80}]}]}}),
         "strategic"),
    ],
)
def test_infer_patch_type(event: AuditEvent, expected: str) -> None:
    assert infer_patch_type(event) == expected


def test_deep_and_huge_bodies() -> None:
    deep: Any = {"$patch": "replace"}
    for _ in range(5000):
        deep = {"a": deep}
    assert infer_patch_type(patch(deep, group="example.com")) == "strategic"  # no recursion limit
    wide = {"items": [{"$patch": "delete"}] + [{"k": i} for i in range(300_000)]}  # visited last (LIFO walk)
    assert infer_patch_type(patch(wide, group="example.com")) == "merge"  # walk is bounded; falls back


def test_not_a_patch() -> None:
    with pytest.raises(UsageError, match="not a patch"):
        infer_patch_type(patch({}, verb="update"))


@pytest.mark.parametrize(
    ("level", "response", "expected"),
    [
        ("Metadata", None, True),
        ("Request", None, True),
        ("Request", {"kind": "Pod"}, False),
        ("RequestResponse", None, False),
        ("RequestResponse", {"kind": "Pod"}, False),
    ],
)
def test_degraded(level: str, response: Any, expected: bool) -> None:
    assert degraded(patch({}, level=level, response=response)) is expected
