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


def test_include_and_exclude_name_a_resource_as_kubectl_does() -> None:
    """Black-box finding: `--include widget.example.com` (singular.group), `Widget.example.com` (Kind.group) and the
    short name `deploy` matched no served resource (exit 2); only plurals, keys and a bare kind did."""
    from kwoksnap.capture.selection import matches

    deployments = Resource("apps", "v1", "deployments", "Deployment", True, ALL, short_names=frozenset({"deploy"}),
                           singular="deployment")
    widgets = Resource("example.com", "v1", "widgets", "Widget", True, ALL)  # (no singularName: the kind's)
    pods = Resource("", "v1", "pods", "Pod", True, ALL, short_names=frozenset({"po"}), singular="pod")
    for name in ("deployments", "deployment", "Deployment", "deploy", "deployments.apps", "deployment.apps",
                 "Deployment.apps", "deploy.apps", "apps/v1/deployments", "deployments.v1.apps"):
        assert matches(deployments, frozenset({name})), name
    for name in ("widgets", "widget", "Widget", "widget.example.com", "Widget.example.com", "widgets.example.com"):
        assert matches(widgets, frozenset({name})), name
    for name in ("po", "pod", "Pod", "pods", "v1/pods"):
        assert matches(pods, frozenset({name})), name
    for name in ("deployments.extensions", "widget.other.io", "pods.apps", "pod.", "dep"):
        assert not any(matches(r, frozenset({name})) for r in (deployments, widgets, pods)), name
    assert not selected(deployments, frozenset({"deploy"}), frozenset({"Deployment.apps"}))


def test_a_bare_name_a_built_in_resource_answers_to_means_that_one() -> None:
    """Re-test finding: with a CRD whose short names are [cm, wd], `save --include cm` saved ConfigMaps and the
    custom resources both (kubectl warns and takes ConfigMaps), and `--include nodes` took Longhorn's nodes too."""
    from kwoksnap.capture.selection import resolve

    configmaps = Resource("", "v1", "configmaps", "ConfigMap", True, ALL, short_names=frozenset({"cm"}))
    widgets = Resource("h4.example.com", "v1", "widgets", "Widget", True, ALL, short_names=frozenset({"cm", "wd"}))
    nodes = Resource("", "v1", "nodes", "Node", False, ALL, short_names=frozenset({"no"}))
    longhorn = Resource("longhorn.io", "v1beta2", "nodes", "Node", True, ALL, short_names=frozenset({"lhn"}))
    served = [configmaps, widgets, nodes, longhorn]
    assert resolve(frozenset({"cm"}), served) == {"v1/configmaps"}
    assert resolve(frozenset({"nodes"}), served) == {"v1/nodes"}
    assert resolve(frozenset({"wd", "lhn", "nodes.longhorn.io"}), served) == {"h4.example.com/v1/widgets",
                                                                              "longhorn.io/v1beta2/nodes"}
    assert resolve(frozenset({"typo"}), served) == {"typo"}
    # The core group first, as kubectl (docs walkthrough finding: `--include events` saved every Event twice).
    events = [Resource("", "v1", "events", "Event", True, ALL, short_names=frozenset({"ev"})),
              Resource("events.k8s.io", "v1", "events", "Event", True, ALL, short_names=frozenset({"ev"}))]
    assert resolve(frozenset({"events"}), events) == resolve(frozenset({"ev"}), events) == {"v1/events"}
    assert resolve(frozenset({"events.events.k8s.io"}), events) == {"events.k8s.io/v1/events"}
    include = resolve(frozenset({"cm", "nodes"}), served)
    assert [r.key for r in served if selected(r, include, frozenset())] == ["v1/configmaps", "v1/nodes"]
