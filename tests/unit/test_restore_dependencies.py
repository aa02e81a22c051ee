"""restore/dependencies.py without a cluster: what is named, held, missing, or cannot be checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kwoksnap.errors import APIError, NotFound
from kwoksnap.kube.discovery import Discovery, Resource
from kwoksnap.restore.dependencies import missing_dependencies

PRIORITY = Resource("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, frozenset({"get"}))
ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount", True, frozenset({"get"}))


class Target:
    def __init__(self, held: set[str], refuse: bool = False) -> None:
        self.held, self.refuse = held, refuse

    def get(self, path: str) -> dict[str, Any]:
        if self.refuse:
            raise APIError(403, "Forbidden", "priorityclasses is forbidden")
        if path.rsplit("/", 1)[-1] not in self.held:
            raise NotFound(404, "NotFound", "not found")
        return {}


def objects(key: str) -> Iterator[dict[str, Any]]:
    if key == "v1/pods":
        for name, spec in (("a", {"priorityClassName": "high", "serviceAccountName": "default"}),
                           ("b", {"priorityClassName": "high", "serviceAccountName": "builder"}),
                           ("c", {"priorityClassName": "system-node-critical", "serviceAccountName": "held"})):
            yield {"metadata": {"name": name, "namespace": "ns"}, "spec": spec}
    elif key == "v1/serviceaccounts":
        yield {"metadata": {"name": "held", "namespace": "ns"}}


def test_what_neither_the_snapshot_nor_the_target_holds_is_listed_once_per_kind() -> None:
    lines = missing_dependencies(["v1/pods", "v1/serviceaccounts"], objects, Target({"system-node-critical"}),
                                 Discovery([PRIORITY, ACCOUNTS]))  # type: ignore[arg-type]
    assert lines == [
        "pods name 1 ServiceAccount(s) that neither the snapshot nor the target holds, so the pods are refused where "
        "ServiceAccount admission runs: ns/builder (1) (in parentheses: how many objects name each)",
        "pods name 1 PriorityClass(s) that neither the snapshot nor the target holds, so the pods are refused where "
        "Priority admission runs: high (2) (in parentheses: how many objects name each)"]


def test_a_lookup_the_credentials_may_not_make_is_said_not_fatal() -> None:
    """Review finding: a 403 on the check (credentials that may not read PriorityClasses) aborted the restore."""
    lines = missing_dependencies(["v1/pods"], objects, Target(set(), refuse=True),
                                 Discovery([PRIORITY, ACCOUNTS]))  # type: ignore[arg-type]
    assert lines == [
        "could not check the ServiceAccount(s) that pods name: 403 Forbidden: priorityclasses is forbidden",
        "could not check the PriorityClass(s) that pods name: 403 Forbidden: priorityclasses is forbidden"]


def test_pods_bound_to_nodes_neither_side_holds_are_named() -> None:
    """Black-box finding: a snapshot saved without its nodes (`--include pods,...`, `-l app=web`) restored pods bound
    to nodes the target lacks, and the target's pod garbage collector deleted them all about a minute later, with
    no word beforehand."""
    nodes = Resource("", "v1", "nodes", "Node", False, frozenset({"get"}))

    def bound(key: str) -> Iterator[dict[str, Any]]:
        if key == "v1/pods":
            for name, node in (("a", "gone"), ("b", "gone"), ("c", "kept"), ("d", "target-own"), ("e", "")):
                yield {"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node}}
        elif key == "v1/nodes":
            yield {"metadata": {"name": "kept"}}

    lines = missing_dependencies(["v1/pods", "v1/nodes"], bound, Target({"target-own"}),
                                 Discovery([nodes]))  # type: ignore[arg-type]
    assert lines == [
        "pods name 1 Node(s) that neither the snapshot nor the target holds, so the pods bound to them are deleted "
        "where the pod garbage collector runs (about 40 s on; not in a replay-profile cluster), and their controllers "
        "make new ones (save without --exclude nodes keeps them): gone (2) (in parentheses: how many objects name "
        "each)"]
