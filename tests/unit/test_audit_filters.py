"""The replay filter: one reason per dropped event, and a byte-level prefilter that agrees with it exactly."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from kwoksnap.audit import (
    REASONS,
    AuditEvent,
    FilterSpec,
    ParseStats,
    filter_events,
    format_timestamp,
    make_prefilter,
    parse_timestamp,
    read_audit,
    skip_reason,
)
from kwoksnap.audit.filters import DEFAULT_RESOURCES
from kwoksnap.audit.formats import from_native
from kwoksnap.errors import UsageError

T0 = parse_timestamp("2026-01-01T00:00:00Z")


def raw(
    *,
    stage: str = "ResponseComplete",
    verb: str = "patch",
    resource: str = "pods",
    subresource: str = "",
    group: str = "",
    namespace: str = "shop",
    name: str = "p",
    user: str = "system:node:n1",
    code: int = 200,
    uri: str = "/api/v1/namespaces/shop/pods/p/status",
    level: str = "RequestResponse",
    ts: int = T0,
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A native event in kube-apiserver's field order (so the prefilter applies to it)."""
    ref: dict[str, str] = {"resource": resource}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = "v1"
    if subresource:
        ref["subresource"] = subresource
    e: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": "a",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:nodes"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubelet/v1.36",
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestObject": {"status": {"phase": "Running"}},
        "responseObject": {"metadata": {"name": name, "resourceVersion": "5"}},
        "requestReceivedTimestamp": format_timestamp(ts),
        "stageTimestamp": format_timestamp(ts),
    }
    if request is not None:
        e["requestObject"] = request
    if level == "Metadata":
        del e["requestObject"], e["responseObject"]
    return e


def event(**kw: Any) -> AuditEvent:
    return from_native(raw(**kw), "test:1")


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({}, None),
        ({"stage": "RequestReceived"}, "not-response-complete"),
        ({"stage": "ResponseStarted", "verb": "watch"}, "not-response-complete"),
        ({"stage": "Panic"}, "not-response-complete"),
        ({"verb": "get"}, "read-only-verb"),
        ({"verb": "list", "code": 403}, "read-only-verb"),  # precedence: verb before code
        ({"verb": "watch"}, "read-only-verb"),
        ({"resource": "configmaps"}, "resource-not-selected"),
        ({"resource": "pods", "subresource": "log", "verb": "create"}, "resource-not-selected"),
        ({"resource": "pods", "subresource": "binding", "verb": "create"}, None),
        ({"resource": "pods", "subresource": "eviction", "verb": "create"}, None),
        ({"resource": "nodes", "subresource": "status", "namespace": ""}, None),
        ({"resource": "leases", "group": "coordination.k8s.io", "namespace": "kube-node-lease"}, None),
        ({"resource": "leases", "group": "coordination.k8s.io", "namespace": "kube-system"}, "resource-not-selected"),
        ({"resource": "leases", "group": "example.com", "namespace": "kube-node-lease"}, "resource-not-selected"),
        ({"resource": "", "uri": "/healthz"}, "resource-not-selected"),
        ({"uri": "/api/v1/namespaces/shop/pods/p?dryRun=All"}, "dry-run"),
        ({"uri": "/api/v1/namespaces/shop/pods/p?fieldManager=x&dryRun=All"}, "dry-run"),
        ({"uri": "/api/v1/namespaces/shop/pods/p?dryRun="}, None),
        # (review finding: the API server decodes the query's keys, so these are dry runs there too)
        ({"uri": "/api/v1/namespaces/shop/pods/p?dry%52un=All"}, "dry-run"),
        ({"uri": "/api/v1/namespaces/shop/pods/p?labelSelector=a%3Db&%64ryRun=All"}, "dry-run"),
        ({"uri": "/api/v1/namespaces/shop/pods/p?labelSelector=dryRun%3DAll"}, None),  # a value, not the option
        ({"verb": "deletecollection", "request": {"kind": "DeleteOptions", "dryRun": ["All"]}}, "dry-run"),
        ({"verb": "delete", "request": {"kind": "DeleteOptions", "dryRun": ["All"]}}, "dry-run"),
        ({"verb": "delete", "request": {"kind": "DeleteOptions", "dryRun": []}}, None),
        ({"verb": "create", "subresource": "eviction", "request": {"deleteOptions": {"dryRun": ["All"]}}}, "dry-run"),
        ({"verb": "create", "subresource": "eviction", "request": {"deleteOptions": {}}}, None),
        ({"verb": "update", "request": {"spec": {"dryRun": ["All"]}}}, None),  # a field of the object, not an option
        ({"code": 409}, "non-2xx"),
        ({"code": 0}, "non-2xx"),
        ({"code": 201, "verb": "create"}, None),
        ({"verb": "deletecollection"}, None),
        ({"verb": "delete", "code": 404}, "non-2xx"),
        # replay's write-rate measurement, in the audit log of a cluster a replay was sent to
        ({"name": "kwoksnap-capacity-0a1b2c3d4e-0", "namespace": "default", "subresource": "status"},
         "kwoksnap-scratch"),
        ({"name": "kwoksnap-capacity-0a1b2c3d4e-0", "namespace": "default", "verb": "create"}, "kwoksnap-scratch"),
        ({"name": "kwoksnap-capacity-0a1b2c3d4e-0", "namespace": "default", "verb": "delete", "code": 404},
         "non-2xx"),
        ({"name": "kwoksnap-capacity-0a1b2c3d4e-0", "verb": "create"}, None),  # not in default: someone's
        ({"name": "kwoksnap-capacity", "namespace": "default", "verb": "create"}, None),
        ({"name": "kwoksnap-probe-0a1b2c3d", "resource": "leases", "group": "coordination.k8s.io",
          "namespace": "kube-node-lease"}, "kwoksnap-scratch"),
        ({"name": "kwoksnap-probe-0a1b2c3d", "resource": "nodes", "namespace": "", "verb": "create"},
         "kwoksnap-scratch"),
        ({"name": "kwoksnap-probe-0a1b2c3d", "verb": "create"}, None),  # a pod of that name is someone's
    ],
)
def test_default_reasons(kw: dict[str, Any], reason: str | None) -> None:
    assert skip_reason(event(**kw), FilterSpec()) == reason


def test_the_workload_controllers_probe_is_scratch_whatever_resources_are_named() -> None:
    """Review finding: the probe ReplicaSet restore and replay make in kube-system was replayed with --resources
    replicasets (or *)."""
    probe = event(name="kwoksnap-probe-0a1b2c3d", resource="replicasets", group="apps", namespace="kube-system",
                  verb="create")
    for named in ("replicasets", "*"):
        assert skip_reason(probe, FilterSpec(resources=frozenset({named}))) == "kwoksnap-scratch"
    assert skip_reason({**probe, "namespace": "team"}, FilterSpec(resources=frozenset({"replicasets"}))) is None


def test_spec_options() -> None:
    spec = FilterSpec(
        resources=frozenset({"pods", "deployments.apps", "deployments.apps/scale", "configmaps/*"}),
        namespaces=frozenset({"shop"}),
        exclude_users=frozenset({"system:serviceaccount:ci:*", "bob"}),
        since_ns=T0,
        until_ns=T0 + 10,
    )
    assert FilterSpec(resources={"pods"}).resources == frozenset({"pods"})  # type: ignore[arg-type]
    assert skip_reason(event(), spec) is None
    assert skip_reason(event(namespace="other"), spec) == "namespace"
    assert skip_reason(event(resource="nodes", namespace=""), spec) == "resource-not-selected"
    assert skip_reason(event(resource="deployments", group="apps"), spec) is None
    assert skip_reason(event(resource="deployments", group="extensions"), spec) == "resource-not-selected"
    assert skip_reason(event(resource="deployments", group="apps", subresource="scale"), spec) is None
    assert skip_reason(event(resource="configmaps", subresource="anything"), spec) is None
    assert skip_reason(event(resource="configmaps"), spec) == "resource-not-selected"
    # A bare resource brings its own state along (status, scale), not the other subresources.
    assert skip_reason(event(resource="deployments", group="apps", subresource="status"), spec) is None
    bare = FilterSpec(resources=frozenset({"widgets.example.com"}))
    assert skip_reason(event(resource="widgets", group="example.com", subresource="status"), bare) is None
    assert skip_reason(event(resource="widgets", group="example.com", subresource="scale"), bare) is None
    assert skip_reason(event(resource="widgets", group="example.com", subresource="approval"),
                       bare) == "resource-not-selected"
    assert skip_reason(event(user="system:serviceaccount:ci:deployer"), spec) == "user-excluded"
    assert skip_reason(event(user="bob"), spec) == "user-excluded"
    assert skip_reason(event(user="bobby"), spec) is None
    assert skip_reason(event(ts=T0 - 1), spec) == "time-window"
    assert skip_reason(event(ts=T0 + 10), spec) == "time-window"  # until is exclusive
    everything = FilterSpec(resources=frozenset({"*"}), lease_namespaces=frozenset())
    assert skip_reason(event(resource="secrets", subresource="x"), everything) is None
    assert (
        skip_reason(event(resource="leases", group="coordination.k8s.io", namespace="kube-system"), everything) is None
    )
    apps = FilterSpec(resources=frozenset({"*.apps"}))
    assert skip_reason(event(resource="statefulsets", group="apps", subresource="status"), apps) is None
    assert skip_reason(event(resource="pods"), apps) == "resource-not-selected"


@pytest.mark.parametrize(
    "kw",
    [
        {"resources": frozenset()},
        {"resources": "pods"},
        {"resources": {"Pods"}},
        {"resources": {"pods/"}},
        {"namespaces": {""}},
        {"exclude_users": {5}},
        {"since_ns": 5, "until_ns": 5},
        {"since_ns": "yesterday"},
    ],
)
def test_spec_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        FilterSpec(**kw)


def test_a_capitalised_resource_is_told_its_lowercase_name() -> None:
    """Black-box finding: `--resources Deployments` was refused without saying that names are lowercase."""
    with pytest.raises(UsageError, match=r"^resources: 'Deployments' is not resource\[\.group\]\[/subresource\] "
                                         r"\(names are lowercase plurals, as `kubectl api-resources` lists them: "
                                         r"'deployments'\)$"):
        FilterSpec(resources=frozenset({"Deployments"}))


def test_kept_namespaces_are_noted_under_a_namespace_filter() -> None:
    """For the -n warning: a namespace's own create (cluster-scoped, no namespace) counts for it."""
    events = [event(namespace="shop"), event(resource="namespaces", namespace="", name="shop-2", verb="create"),
              event(resource="nodes", namespace="", name="n1")]
    stats = ParseStats()
    spec = FilterSpec(resources=DEFAULT_RESOURCES | {"namespaces"}, namespaces=frozenset({"shop", "shop-2", "typo"}))
    assert len(list(filter_events(events, spec, stats))) == 3
    assert stats.kept_namespaces == {"shop", "shop-2", ""}
    stats = ParseStats()
    list(filter_events(events, FilterSpec(), stats))
    assert stats.kept_namespaces == set()  # not noted without -n


def test_a_namespaces_events_share_one_key_and_minus_n_keeps_them_by_name() -> None:
    """Review finding: the API server logs a namespace's create with no namespace (POST /api/v1/namespaces) and its
    later writes with its own name (/api/v1/namespaces/foo), so replay ran the create and the delete of one
    namespace as two objects, in any order, and -n kept the delete of a namespace it dropped the create of."""
    def events() -> list[AuditEvent]:
        return [event(resource="namespaces", namespace="", name=name, verb="create") for name in ("foo", "bar")] + [
            event(resource="namespaces", namespace=name, name=name, verb="delete") for name in ("foo", "bar")]

    spec = FilterSpec(resources=DEFAULT_RESOURCES | {"namespaces"})
    kept = list(filter_events(events(), spec, ParseStats()))
    assert [(e["verb"], e["namespace"], e["name"]) for e in kept] == [
        ("create", "", "foo"), ("create", "", "bar"), ("delete", "", "foo"), ("delete", "", "bar")]
    spec = FilterSpec(resources=DEFAULT_RESOURCES | {"namespaces"}, namespaces=frozenset({"foo"}))
    kept = list(filter_events(events(), spec, ParseStats()))
    assert [(e["verb"], e["name"]) for e in kept] == [("create", "foo"), ("delete", "foo")]


def test_a_namespace_filter_keeps_node_leases_with_their_nodes() -> None:
    """Black-box finding: `-n shop` kept the nodes (cluster-scoped) but dropped their lease renewals (namespace
    kube-node-lease), so the target's node lifecycle controller saw the replayed nodes stop renewing."""
    lease = event(resource="leases", group="coordination.k8s.io", namespace="kube-node-lease", name="n1",
                  verb="update")
    other_lease = event(resource="leases", group="coordination.k8s.io", namespace="kube-system", name="leader",
                        verb="update")
    spec = FilterSpec(resources=DEFAULT_RESOURCES | {"leases.coordination.k8s.io"}, namespaces=frozenset({"shop"}),
                      lease_namespaces=frozenset())
    assert [e["name"] for e in filter_events([lease, other_lease, event(namespace="other")], spec, ParseStats())] == [
        "n1"]


def test_filter_events_counts_and_degraded() -> None:
    events = [
        event(),
        event(level="Metadata"),
        event(verb="get"),
        event(verb="get"),
        event(stage="RequestReceived"),
        event(code=500),
    ]
    stats = ParseStats()
    kept = list(filter_events(events, FilterSpec(), stats))
    assert kept == events[:2] and stats.kept == 2
    assert stats.skipped == {"read-only-verb": 2, "not-response-complete": 1, "non-2xx": 1}
    assert set(stats.skipped) <= set(REASONS) and stats.degraded == {"Metadata": 1}


# --- the prefilter -------------------------------------------------------------------------------------------------

VARIANTS: dict[str, list[Any]] = {
    "stage": ["ResponseComplete", "RequestReceived", "ResponseStarted"],
    "verb": ["patch", "get", "create", "watch", "deletecollection"],
    "resource": ["pods", "leases", "configmaps", "nodes", ""],
    "namespace": ["kube-node-lease", "kube-system", ""],
    "group": ["", "coordination.k8s.io"],
    "code": [200, 404],
}


def _all_variants() -> list[dict[str, Any]]:
    keys = list(VARIANTS)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*VARIANTS.values())]


@pytest.mark.parametrize(
    "spec",
    [
        FilterSpec(),
        FilterSpec(resources=frozenset({"pods", "configmaps"}), lease_namespaces=frozenset()),
        FilterSpec(resources=frozenset({"*"})),
    ],
)
def test_prefilter_agrees_with_full_filter(spec: FilterSpec) -> None:
    prefilter = make_prefilter(spec)
    decided = 0
    for kw in _all_variants():
        line = orjson.dumps(raw(**kw))
        full = skip_reason(from_native(orjson.loads(line), "x"), spec)
        early = prefilter(line)
        if early is not None:  # when the prefilter decides, it decides exactly like the filter
            decided += 1
            assert early == full, kw
    assert decided > 100


def test_prefilter_leaves_other_layouts_alone() -> None:
    prefilter = make_prefilter(FilterSpec())
    sorted_keys = orjson.dumps(raw(verb="get"), option=orjson.OPT_SORT_KEYS)
    assert prefilter(sorted_keys) is None  # not kube-apiserver's field order: decode it
    nested = raw(verb="get")
    nested["objectRef"] = None  # no top-level objectRef; a nested one in the body must not fool it
    nested["requestObject"] = {"objectRef": {"resource": "configmaps"}, "verb": "get"}
    assert prefilter(orjson.dumps(nested)) == "read-only-verb"
    nested["verb"] = "create"
    assert prefilter(orjson.dumps(nested)) in (None, "resource-not-selected")
    assert skip_reason(from_native(nested, "x"), FilterSpec()) == "resource-not-selected"


def test_prefiltered_read_matches_full_read(tmp_path: Path) -> None:
    lines = [raw(ts=T0 + i, **kw) for i, kw in enumerate(_all_variants())]
    lines.append({"kind": "EventList", "items": [raw(ts=T0, verb="get"), raw(ts=T0)]})  # decoded, not prefiltered
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    spec = FilterSpec()
    full_stats, fast_stats = ParseStats(), ParseStats()
    full = list(filter_events(read_audit([str(path)], stats=full_stats), spec, full_stats))
    fast = list(filter_events(read_audit([str(path)], stats=fast_stats, prefilter=spec), spec, fast_stats))
    assert fast == full and fast_stats.skipped == full_stats.skipped
    assert fast_stats.prefiltered > len(lines) // 2 and fast_stats.lines == full_stats.lines == len(lines)
    assert fast_stats.events + fast_stats.prefiltered == full_stats.events  # one event per prefiltered line


def test_a_bare_built_in_name_means_the_built_in_resource_not_a_custom_one_of_that_plural() -> None:
    """Black-box finding: `--resources pods` (and the defaults: `nodes`, `pods`) also kept a custom resource of the
    same plural in another group (Longhorn's nodes.longhorn.io), whose writes the replay then sent to a target
    without its CRD. A bare name a built-in group serves means the built-in one, as kubectl resolves it."""
    longhorn = {"resource": "nodes", "group": "longhorn.io", "namespace": "longhorn-system"}
    assert skip_reason(event(resource="nodes", namespace=""), FilterSpec()) is None
    assert skip_reason(event(**longhorn), FilterSpec()) == "resource-not-selected"
    assert skip_reason(event(**longhorn, subresource="status"), FilterSpec()) == "resource-not-selected"
    assert skip_reason(event(**longhorn), FilterSpec(resources={"nodes.longhorn.io"})) is None  # type: ignore[arg-type]
    assert skip_reason(event(**longhorn), FilterSpec(resources={"*"})) is None  # type: ignore[arg-type]
    assert skip_reason(event(**longhorn), FilterSpec(resources={"*.longhorn.io"})) is None  # type: ignore[arg-type]
    assert skip_reason(event(**longhorn), FilterSpec(resources={"nodes/*"})) == "resource-not-selected"  # type: ignore[arg-type]
    # A name no built-in group serves still matches it in any group; both built-in `events` groups are kept.
    widgets = FilterSpec(resources={"widgets"})  # type: ignore[arg-type]
    assert skip_reason(event(resource="widgets", group="example.com"), widgets) is None
    k8s_events = FilterSpec(resources={"events"})  # type: ignore[arg-type]
    assert skip_reason(event(resource="events", group="events.k8s.io"), k8s_events) is None
    assert skip_reason(event(resource="events"), k8s_events) is None


def test_a_wildcard_leaves_out_the_ip_addresses_the_api_server_allocates_and_a_name_keeps_them() -> None:
    """Black-box finding: `--resources '*'` replayed the API server's own IPAddress objects beside the Services they
    belong to; one reached the target first, took the IP, and the Service's create failed (422, exit 5)."""
    ip = {"resource": "ipaddresses", "group": "networking.k8s.io", "namespace": "", "verb": "create",
          "name": "10.96.0.7"}
    cidr = {"resource": "servicecidrs", "group": "networking.k8s.io", "namespace": "", "verb": "create"}
    for wildcard in ("*", "*.networking.k8s.io"):
        spec = FilterSpec(resources={wildcard})  # type: ignore[arg-type]
        assert skip_reason(event(**ip), spec) == skip_reason(event(**cidr), spec) == "resource-not-selected"
        kept = event(resource="services", verb="create") if wildcard == "*" else event(**{**ip,
                                                                                            "resource": "ingresses"})
        assert skip_reason(kept, spec) is None  # (the Services themselves, the group's other resources: kept)
    for named in ("ipaddresses", "ipaddresses.networking.k8s.io"):
        assert skip_reason(event(**ip), FilterSpec(resources={named})) is None  # type: ignore[arg-type]
    assert skip_reason(event(**cidr), FilterSpec(resources={"servicecidrs/status"})) == "resource-not-selected"  # type: ignore[arg-type]
    assert skip_reason(event(**cidr, subresource="status"), FilterSpec(resources={"servicecidrs"})) is None  # type: ignore[arg-type]
