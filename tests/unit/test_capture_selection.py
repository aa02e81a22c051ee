"""Which resources save keeps by default, and how --include and --exclude name them."""

from __future__ import annotations

from kwoksnap.capture.selection import selected
from kwoksnap.kube.discovery import Resource

ALL = frozenset({"create", "delete", "get", "list", "patch", "update", "watch"})
READ_ONLY = frozenset({"get", "list"})


def test_a_resource_nobody_can_create_is_left_out_unless_included() -> None:
    """Review finding: metrics.k8s.io's pods and nodes (a metrics-server's view) were saved, and every one of their
    objects failed the restore (exit 5)."""
    metrics = Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, READ_ONLY)
    pods = Resource("", "v1", "pods", "Pod", True, ALL)
    leases = Resource("coordination.k8s.io", "v1", "leases", "Lease", True, ALL)
    none: frozenset[str] = frozenset()
    assert selected(pods, none, none) and not selected(metrics, none, none) and not selected(leases, none, none)
    assert selected(metrics, frozenset({"pods.metrics.k8s.io"}), none)  # named: saved anyway
    assert not selected(pods, none, frozenset({"pods"}))
