"""kwokctl ``--format k8s`` YAML interop: import to records, export back, round trips, and bad input."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kwoksnap.errors import ExitCode, FormatError, InputError
from kwoksnap.store import KwsReader, KwsWriter
from kwoksnap.store.kwokyaml import (
    STRATEGIC_MERGE_PATCH,
    crd_kinds,
    export_yaml,
    guess_plural,
    import_to_kws,
    import_yaml,
    resolve_time_offsets,
    resource_for,
)

GOLDEN_YAML = Path(__file__).resolve().parents[1] / "golden" / "kwokctl-recording.yaml"


def raw_docs(path: Path) -> list[dict[str, Any]]:
    """The documents as plain YAML sees them (BaseLoader: every scalar a string), an independent view."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=yaml.BaseLoader) if d]


def test_golden_kwokctl_yaml_imports_to_the_documented_records() -> None:
    docs = raw_docs(GOLDEN_YAML)
    records = list(import_yaml(GOLDEN_YAML))
    objects = [d for d in docs if d["kind"] != "ResourcePatch"]
    patches = [d for d in docs if d["kind"] == "ResourcePatch"]

    # objects, each resource announced once before its first object, in document order
    object_records = [r for r in records if r["type"] == "object"]
    assert [r["object"]["metadata"]["name"] for r in object_records] == [d["metadata"]["name"] for d in objects]
    assert [r["resource"] for r in object_records] == ["v1/namespaces", "v1/nodes", "apps/v1/deployments", "v1/pods"]
    announced = [r for r in records if r["type"] == "resource"]
    assert [(r["resource"], r["kind"], r["namespaced"]) for r in announced] == [
        ("v1/namespaces", "Namespace", False),
        ("v1/nodes", "Node", False),
        ("apps/v1/deployments", "Deployment", True),
        ("v1/pods", "Pod", True),
    ]
    # types follow YAML/JSON semantics, times stay text (placeholders untouched without a base time)
    deploy = object_records[2]["object"]
    assert deploy["spec"]["replicas"] == 2 and isinstance(deploy["spec"]["replicas"], int)
    assert deploy["metadata"]["creationTimestamp"] == "$(time-offset-nanosecond -600000000000)"
    assert object_records[1]["object"]["status"]["allocatable"]["cpu"] == "32"

    # then events, one per ResourcePatch, ts = durationNanosecond
    events = [r for r in records if r["type"] == "event"]
    assert records[-len(events) :] == events
    assert len(events) == len(patches)
    for event, doc in zip(events, patches, strict=True):
        group = doc["resource"].get("group", "")
        gv = f"{group}/{doc['resource']['version']}" if group else doc["resource"]["version"]
        assert event["resource"] == f"{gv}/{doc['resource']['resource']}"
        assert event["ts"] == int(doc["durationNanosecond"])
        assert event["verb"] == doc["method"]
        assert event["name"] == doc["target"]["name"]
        assert event["namespace"] == doc["target"].get("namespace", "")
    create, pod_patch, node_patch, delete = events
    assert create["object"]["metadata"]["name"] == "web-7d4b9c-fghij" and "patch" not in create
    assert pod_patch["patch"]["status"]["$setElementOrder/conditions"] == [{"type": "Ready"}]
    assert pod_patch["patchType"] == STRATEGIC_MERGE_PATCH
    assert node_patch["patch"]["metadata"]["labels"]["drained"] == "yes"  # quoted: a string, not YAML 1.1 bool
    assert "object" not in delete and "patch" not in delete


def test_base_time_resolves_placeholders_like_kwokctl_replay() -> None:
    base = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    base_ns = int(base.timestamp()) * 10**9
    records = list(import_yaml(GOLDEN_YAML, base_time_ns=base_ns))
    ns = next(r for r in records if r["type"] == "object")
    want = (base - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ns["object"]["metadata"]["creationTimestamp"] == want
    events = [r for r in records if r["type"] == "event"]
    assert events[0]["ts"] == base_ns + 1_523_000_000
    cond = events[1]["patch"]["status"]["conditions"][0]["lastTransitionTime"]
    assert cond == (base + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert not any("$(time-offset" in str(r) for r in records)


@pytest.mark.parametrize("suffix", [".yaml", ".yaml.gz"])
def test_round_trip_import_export_import(tmp_path: Path, suffix: str) -> None:
    records = list(import_yaml(GOLDEN_YAML))
    out = tmp_path / f"out{suffix}"
    stats = export_yaml(records, out)
    assert (out.read_bytes()[:2] == b"\x1f\x8b") == suffix.endswith(".gz")
    n_objects = sum(r["type"] == "object" for r in records)
    n_events = sum(r["type"] == "event" for r in records)
    assert (stats.objects, stats.patches, stats.skipped) == (n_objects, n_events, len(records) - n_objects - n_events)
    assert list(import_yaml(out)) == records
    # the text has kwok's shape: documents separated by '---', first one without, ResourcePatch kind
    docs = raw_docs(out)
    assert [d["kind"] for d in docs] == [d["kind"] for d in raw_docs(GOLDEN_YAML)]
    assert docs == raw_docs(GOLDEN_YAML)


def test_round_trip_through_a_kws_file(tmp_path: Path) -> None:
    records = list(import_yaml(GOLDEN_YAML))
    snap = tmp_path / "s.kws"
    with KwsWriter(snap, content_type="recording") as w:
        w.write_many(records)
    out = tmp_path / "back.yaml"
    with KwsReader(snap) as r:
        export_yaml(r.records(), out)
    assert list(import_yaml(out)) == records


def test_export_drops_resource_version_and_fills_kind(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"type": "resource", "resource": "example.com/v1beta1/widgets", "kind": "Widget", "namespaced": True},
        {"type": "object", "resource": "example.com/v1beta1/widgets",
         "object": {"metadata": {"name": "w", "namespace": "n", "resourceVersion": "42", "uid": "u-1"}}},
        {"type": "object", "resource": "apps/v1/deployments",
         "object": {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "43"}}},
        {"type": "event", "ts": 7_000, "resource": "v1/pods", "verb": "create",
         "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n",
                                                                     "resourceVersion": "44"}}},
        {"type": "event", "ts": 9_000, "resource": "v1/nodes", "verb": "delete", "name": "node-1"},
    ]
    out = tmp_path / "o.yaml"
    export_yaml(records, out, base_time_ns=1_000)
    docs = raw_docs(out)
    assert docs[0]["apiVersion"] == "example.com/v1beta1" and docs[0]["kind"] == "Widget"
    assert docs[1]["apiVersion"] == "apps/v1" and docs[1]["kind"] == "Deployment"
    for doc in docs[:2]:
        assert "resourceVersion" not in doc["metadata"] and doc["metadata"]["name"]
    assert docs[0]["metadata"]["uid"] == "u-1"  # kwok keeps uid: its loader re-links ownerReferences by it
    create, delete = docs[2], docs[3]
    assert create["durationNanosecond"] == "6000" and "resourceVersion" not in create["template"]["metadata"]
    assert create["target"] == {"name": "p", "namespace": "n"}
    assert create["resource"] == {"version": "v1", "resource": "pods"}  # core group omitted, like omitempty
    assert delete["target"] == {"name": "node-1"} and "template" not in delete
    assert records[1]["object"]["metadata"]["resourceVersion"] == "42"  # input not mutated


def test_export_relative_times_like_kwokctl_export(tmp_path: Path) -> None:
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    base_ns = int(base.timestamp()) * 10**9
    later = (base + dt.timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = [{"type": "object", "resource": "v1/pods",
                "object": {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "p", "creationTimestamp": later}}}]
    out = tmp_path / "rel.yaml"
    export_yaml(records, out, base_time_ns=base_ns, relative_times=True)
    assert raw_docs(out)[0]["metadata"]["creationTimestamp"] == "$(time-offset-nanosecond 90000000000)"
    back = list(import_yaml(out, base_time_ns=base_ns))
    assert back[-1]["object"]["metadata"]["creationTimestamp"] == (base + dt.timedelta(seconds=90)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


def test_export_errors_leave_no_file(tmp_path: Path) -> None:
    bad_cases: list[list[dict[str, Any]]] = [
        [{"type": "event", "ts": 1, "resource": "v1/pods", "verb": "update", "name": "p", "object": {}}],
        [{"type": "event", "ts": 1, "resource": "v1/pods", "verb": "delete", "name": "p"},
         {"type": "object", "resource": "v1/pods", "object": {"apiVersion": "v1", "kind": "Pod",
                                                                "metadata": {"name": "p"}}}],
        [{"type": "object", "resource": "example.com/v1/things", "object": {"metadata": {"name": "t"}}}],
        [{"type": "event", "ts": 1, "resource": "v1/pods", "verb": "patch", "name": "p", "patch": {},
          "patchType": "application/json-patch+json"}],
        [{"type": "event", "ts": 1, "resource": "pods", "verb": "delete", "name": "p"}],
    ]
    for records in bad_cases:
        with pytest.raises(InputError):
            export_yaml(records, tmp_path / "x.yaml")
        assert os.listdir(tmp_path) == []
    # An object deeper than PyYAML's representer can walk (the API server takes it) is named, not "some object"
    deep: dict[str, Any] = {}
    for _ in range(2000):
        deep = {"a": deep}
    records = [{"type": "object", "resource": "v1/configmaps", "object": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "namespace": "shop"}}},
        {"type": "object", "resource": "v1/configmaps", "object": {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep", "namespace": "shop"}, "x": deep}}]
    with pytest.raises(InputError, match=r"^v1/configmaps shop/deep is nested more deeply"):
        export_yaml(records, tmp_path / "x.yaml")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n- just\n- a list\n", "document 2 (line 5)", "list"),
        ("a: 1\nb: 2\n", "document 1 (line 1)", "apiVersion and kind"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nspec: {}\n",
         "document 2 (line 5)", "metadata.name"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: ''}\n", "document 1 (line 1)", "metadata.name"),
        ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n", "line 5", "YAML"),
        ("just a plain string\n", "document 1 (line 1)", "str"),
        ("apiVersion: action.kwok.x-k8s.io/v1alpha1\nkind: ResourcePatch\nresource: {version: v1, resource: pods}\n"
         "target: {name: p}\ndurationNanosecond: 5\nmethod: evict\n", "document 1 (line 1)", "method"),
        ("apiVersion: action.kwok.x-k8s.io/v1alpha1\nkind: ResourcePatch\nresource: {version: v1, resource: pods}\n"
         "target: {name: p}\ndurationNanosecond: 5\nmethod: delete\n---\napiVersion: v1\nkind: Pod\n"
         "metadata: {name: a}\n", "document 2 (line 8)", "after ResourcePatch"),
        # black-box finding: a set or bytes was stored, and diff and restore then ended in internal errors
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: !!set {a, b}\n", "line 4", "no JSON form"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: !!binary /w==}\n", "line 4",
         "not UTF-8 text"),
        # fuzzing findings: a resource that is no resource was a usage error (exit 2); a NUL said "document 0" and
        # its position on a second line
        ("apiVersion: a/b/c\nkind: Foo\nmetadata: {name: a}\n", "document 1 (line 1)", "names no resource"),
        ("apiVersion: v1/\nkind: Foo\nmetadata: {name: a}\n", "document 1 (line 1)", "names no resource"),
        ("apiVersion: v1\nkind: a/b\nmetadata: {name: a}\n", "document 1 (line 1)", "is not a Kubernetes kind"),
        ("apiVersion: v1\nkind: ' '\nmetadata: {name: a}\n", "document 1 (line 1)", "is not a Kubernetes kind"),
        ("apiVersion: v1\nkind: Widget-\nmetadata: {name: a}\n", "document 1 (line 1)", "is not a Kubernetes kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\x00}\n", "character 50", "#x0000"),
    ],
)
def test_not_kubernetes_yaml_is_a_format_error(tmp_path: Path, text: str, where: str, what: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FormatError) as info:
        list(import_yaml(path))
    assert info.value.where == where
    assert what in str(info.value) and "\n" not in str(info.value)


def test_a_binary_value_is_the_text_it_encodes(tmp_path: Path) -> None:
    """As Go's YAML reads `!!binary` (a string); bytes were stored, and diff and restore failed on them."""
    path = tmp_path / "binary.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: !!binary aGVsbG8=}\n")
    [record] = [r for r in import_yaml(path) if r["type"] == "object"]
    assert record["object"]["data"] == {"k": "hello"}


def test_yaml_aliases_are_read_but_an_alias_bomb_is_a_format_error(tmp_path: Path) -> None:
    """Black-box finding: 1 KB of nested aliases took 12 s and 1.8 GB before failing (exit 2), one more level
    would have taken the machine's memory, and a self-referencing alias ended in a recursion error."""
    shared = tmp_path / "shared.yaml"
    shared.write_text("apiVersion: v1\nkind: ConfigMap\n"
                      "metadata: {name: a, namespace: n, labels: &l {x: y}, annotations: *l}\n")
    [record] = [r for r in import_yaml(shared) if r.get("type") == "object"]
    assert record["object"]["metadata"]["labels"] == record["object"]["metadata"]["annotations"] == {"x": "y"}
    bomb = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb, namespace: n}", "a0: &a0 [x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]  # 5 * 9**9 nodes expanded
    for text in ("\n".join(bomb) + "\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: m, x: *m}\n"):
        path = tmp_path / "bomb.yaml"
        path.write_text(text)
        with pytest.raises(FormatError, match="aliases expand it") as info:
            list(import_yaml(path))
        assert info.value.where == "document 1"


def test_binary_and_kws_files_are_format_errors(tmp_path: Path) -> None:
    kws = tmp_path / "s.kws"
    with KwsWriter(kws) as w:
        w.write({"type": "x"})
    for path in (kws, GOLDEN_YAML.parent / "snapshot-v1.kws"):
        with pytest.raises(FormatError):
            list(import_yaml(path))


def test_lists_empty_documents_and_odd_keys(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml.gz"
    text = (
        "---\n---\napiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a, namespace: n}\n  data: {1: one, true: yes}\n"
        "- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: b, namespace: n}\n"
        "- apiVersion: gateway.networking.k8s.io/v1\n  kind: Gateway\n  metadata:\n    name: g\n"
        "    creationTimestamp: 2024-01-01T00:00:00Z\n"
    )
    with gzip.open(path, "wt") as f:
        f.write(text)
    records = list(import_yaml(path))
    objects = [r for r in records if r["type"] == "object"]
    assert [r["resource"] for r in objects] == [
        "v1/configmaps", "networking.k8s.io/v1/networkpolicies", "gateway.networking.k8s.io/v1/gateways"]
    assert objects[0]["object"]["data"] == {"1": "one", "true": True}  # JSON keys are strings
    assert objects[2]["object"]["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"  # not a datetime
    gateway_announce = next(r for r in records if r["type"] == "resource" and r["kind"] == "Gateway")
    assert gateway_announce["namespaced"] is False  # unknown kind: namespaced iff it has a namespace


def test_naming_rules() -> None:
    assert resource_for("v1", "Endpoints") == "v1/endpoints"
    assert resource_for("apps/v1", "Deployment") == "apps/v1/deployments"
    assert resource_for("example.com/v1", "Policy") == "example.com/v1/policies"
    assert [guess_plural(k) for k in ("Ingress", "Box", "Patch", "Gateway", "Proxy", "Widget")] == [
        "ingresses", "boxes", "patches", "gateways", "proxies", "widgets"]
    doc = {"a": ["$(time-offset-nanosecond 1500)", {"b": "x $(time-offset-nanosecond -1000) y"}], "c": 3}
    out = resolve_time_offsets(doc, 10**9)
    assert out == {"a": ["1970-01-01T00:00:01.000001Z", {"b": "x 1970-01-01T00:00:00.999999Z y"}], "c": 3}


def test_the_export_for_kwokctl_says_what_it_left_out(tmp_path: Path) -> None:
    """The demo snapshot holds kinds kwokctl's default --filter does not load: the export counts them (the summary
    had said `skipped: 0` while leaving objects out), and --all-resources writes them."""
    from kwoksnap.restore.kwokctl import export_for_kwokctl
    from tests.unit.test_cli import run

    snapshot = Path(__file__).parents[2] / "fixtures/incident/before.kws"
    stats, left_out, doomed = export_for_kwokctl(snapshot, tmp_path / "default.yaml")
    assert not doomed
    everything, none, _ = export_for_kwokctl(snapshot, tmp_path / "all.yaml", all_resources=True)
    assert left_out == {"controllerrevision.apps": 2, "customresourcedefinition.apiextensions.k8s.io": 1,
                        "endpointslice.discovery.k8s.io": 5, "widget.example.kwoksnap.io": 2}
    assert not none and everything.objects == stats.objects + sum(left_out.values())
    kinds = {doc["kind"] for doc in yaml.safe_load_all((tmp_path / "default.yaml").read_text()) if doc}
    assert not kinds & {"ControllerRevision", "CustomResourceDefinition", "Widget"}
    proc = run("export", str(snapshot), "-o", str(tmp_path / "cli.yaml"))
    assert proc.stdout.splitlines() == [
        f"exported {stats.objects} objects to {tmp_path / 'cli.yaml'}",
        "left out 10 objects of kinds kwokctl's default --filter does not load (controllerrevision.apps 2, "
        "customresourcedefinition.apiextensions.k8s.io 1, endpointslice.discovery.k8s.io 5, "
        "widget.example.kwoksnap.io 2); --all-resources writes them too"]


def test_export_never_replaces_an_existing_file(tmp_path: Path) -> None:
    """save, import and convert refuse an existing output file; export overwrote it silently."""
    from tests.unit.test_cli import run

    out = tmp_path / "exists.yaml"
    out.write_text("keep me\n")
    proc = run("export", str(Path(__file__).parents[2] / "fixtures/incident/before.kws"), "-o", str(out))
    assert proc.returncode == 2 and proc.stderr == f"kwoksnap: error: {out}: already exists\n"
    assert out.read_text() == "keep me\n" and [p.name for p in tmp_path.iterdir()] == ["exists.yaml"]


def test_import_leaves_out_a_repeated_object_and_puts_a_namespaceless_one_in_default(tmp_path: Path) -> None:
    """Found black-box testing: two documents of one object were both imported (restore then kept one, diff saw
    one); a ConfigMap without a namespace was stored under none, and restore failed on it with a raw 405."""
    from tests.unit.test_cli import run

    src = tmp_path / "dup.yaml"
    src.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: '1'}\n---\n"
                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\ndata: {k: '2'}\n")
    stats = import_to_kws(src, tmp_path / "dup.kws")
    assert (stats.objects, stats.duplicates, stats.defaulted) == ({"v1/configmaps": 1}, ["v1/configmaps default/a"], 1)
    with KwsReader(tmp_path / "dup.kws") as r:
        kept = [rec["object"] for rec in r.records("v1/configmaps") if rec["type"] == "object"]
    assert [(o["metadata"]["namespace"], o["data"]) for o in kept] == [("default", {"k": "1"})]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing but a comment\n---\n")
    proc = run("import", str(empty), "-o", str(tmp_path / "empty.kws"))
    assert proc.returncode == 0 and proc.stderr == f"warning: {empty} holds no Kubernetes object\n"
    nothing = tmp_path / "nothing.yaml"  # (black-box finding: a 0-byte file was imported as an empty snapshot)
    nothing.write_text("")
    proc = run("import", str(nothing), "-o", str(tmp_path / "nothing.kws"))
    assert (proc.returncode, proc.stderr) == (ExitCode.INPUT, f"kwoksnap: error: {nothing}: empty file\n")
    assert not (tmp_path / "nothing.kws").exists()


def test_import_names_custom_resources_as_their_crds_do(tmp_path: Path) -> None:
    """Black-box finding: ``import`` guessed a custom resource's plural (``leafs``) although the file held the CRD
    saying ``leaves`` (and cluster scope); a restore of the result then asked the target for a resource it lacks."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "leaves.garden.example.com"},
           "spec": {"group": "garden.example.com", "scope": "Cluster",
                    "names": {"kind": "Leaf", "plural": "leaves", "singular": "leaf", "listKind": "LeafList"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    leaf = {"apiVersion": "garden.example.com/v1", "kind": "Leaf", "metadata": {"name": "oak-1"}}
    for order in ([crd, leaf], [leaf, crd]):  # the CRD before its objects, or after them
        src = tmp_path / f"in-{len(list(tmp_path.iterdir()))}.yaml"
        src.write_text(yaml.safe_dump_all(order))
        out = src.with_suffix(".kws")
        stats = import_to_kws(src, out)
        assert stats.objects == {"apiextensions.k8s.io/v1/customresourcedefinitions": 1,
                                 "garden.example.com/v1/leaves": 1}
        with KwsReader(out) as r:
            kinds = {rec["resource"]: rec["namespaced"] for rec in r.records() if rec["type"] == "resource"}
        assert kinds["garden.example.com/v1/leaves"] is False
    assert crd_kinds(leaf) == {} and crd_kinds({**crd, "spec": {"group": "g"}}) == {}
    assert resource_for("garden.example.com/v1", "Leaf") == "garden.example.com/v1/leafs"  # no CRD: a guess


def test_import_keeps_as_strings_the_plain_values_go_writes_as_strings(tmp_path: Path) -> None:
    """Black-box finding: kwokctl (Go's YAML) writes these strings unquoted, and PyYAML's YAML 1.1 made them other
    things: `=` and `<<` failed the file (exit 3), a 310-digit number an int msgpack cannot store (exit 2), and
    `12:30` the base-60 int 750."""
    big = "9" * 310
    src = tmp_path / "cm.yaml"
    src.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: default}\ndata:\n"
                   f"  eq: =\n  merge: <<\n  big: {big}\n  clock: 12:30\n  huge: 1.0e+400\n  longer: {'7' * 5000}\n"
                   "binaryData: {}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: x}\n"
                   "spec: {replicas: 3, paused: true, ratio: 0.5, limit: .inf}\n")
    objects = [r["object"] for r in import_yaml(src) if r["type"] == "object"]
    # (fuzzing: 4,300+ digits, beyond what Python's int() takes, were an internal error)
    assert objects[0]["data"] == {"eq": "=", "merge": "<<", "big": big, "clock": "12:30", "huge": "1.0e+400",
                                  "longer": "7" * 5000}
    assert objects[1]["spec"] == {"replicas": 3, "paused": True, "ratio": 0.5, "limit": float("inf")}
    stats = import_to_kws(src, tmp_path / "cm.kws")
    assert stats.objects == {"v1/configmaps": 1, "apps/v1/deployments": 1}


def test_export_of_a_snapshot_damaged_in_a_resource_without_objects_fails(tmp_path: Path) -> None:
    """Black-box finding: a flipped byte in the frame of a resource that holds no object (its frame only names the
    resource) went unnoticed by export (exit 0), while inspect, diff and restore said the file was damaged."""
    from kwoksnap.restore.source import SnapshotSource
    from tests.unit.test_cli import run

    snapshot = tmp_path / "damaged.kws"
    data = bytearray((Path(__file__).parents[2] / "fixtures/incident/before.kws").read_bytes())
    with KwsReader(Path(__file__).parents[2] / "fixtures/incident/before.kws") as reader:
        counts = SnapshotSource(reader).counts()
        frame = next(reader.frames(r)[0] for r in reader.resources() if r not in counts)
    data[frame["offset"] + frame["length"] - 4] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    proc = run("export", str(snapshot), "-o", str(tmp_path / "out.yaml"))
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "out.yaml").exists() and [p.name for p in tmp_path.iterdir()] == ["damaged.kws"]


def test_the_export_names_what_kwokctl_will_not_create(tmp_path: Path) -> None:
    """Black-box finding: kwokctl's restore refused a debugged pod (ephemeral containers on create) and skipped a
    ConfigMap whose owner (a custom resource) the export had left out, while the export said "exported N" only."""
    from kwoksnap.restore.kwokctl import export_for_kwokctl
    from tests.integration.snapshots import write_snapshot
    from tests.unit.test_cli import run

    owner = [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u1", "controller": True}]
    snapshot = write_snapshot(tmp_path / "s.kws", [
        ("v1/pods", "Pod", True, [{"metadata": {"name": "debugged", "namespace": "ns"}, "spec": {
            "containers": [{"name": "app", "image": "app"}], "ephemeralContainers": [{"name": "dbg", "image": "b"}]}}]),
        ("v1/configmaps", "ConfigMap", True, [{"metadata": {"name": "cfg", "namespace": "ns",
                                                           "ownerReferences": owner}}]),
    ])
    _stats, _left_out, doomed = export_for_kwokctl(snapshot, tmp_path / "out.yaml")
    assert doomed == {"pods with ephemeral containers (the API server refuses them on create)": 1,
                      "objects owned by a Widget, which the export leaves out (kwokctl skips a missing owner)": 1}
    assert export_for_kwokctl(snapshot, tmp_path / "all.yaml", all_resources=True)[2] == {
        "pods with ephemeral containers (the API server refuses them on create)": 1}
    proc = run("export", str(snapshot), "-o", str(tmp_path / "cli.yaml"))
    assert proc.returncode == 0 and "warning: kwokctl snapshot restore will not create 1 of them: objects owned by a " \
        "Widget" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("end", "events", "why"), [
    (-1, 3, "document 8 (line 171): the file ends inside its last ResourcePatch (no newline at the end of the "
            "file)"),
    (-40, 3, "line 180: the file ends inside document 8 (invalid YAML: could not find expected ':')"),
    ("template:\n", 2, "document 7 (line 157): the file ends inside its last ResourcePatch (ResourcePatch patch has "
                       "no patch template)"),
    ("\ndurationNanosecond: 5000000000\n", 3, "document 8 (line 171): the file ends inside its last ResourcePatch "
                                              "(no kind: ResourcePatch)"),
])
def test_a_recording_cut_short_keeps_every_change_before_its_last_document(tmp_path: Path, end: int | str,
                                                                           events: int, why: str) -> None:
    """Black-box finding: a kwokctl recording cut while it was written (the recorder killed) was refused whole,
    every change lost, or its last patch applied cut short, without a word."""
    text = GOLDEN_YAML.read_text()
    cut = tmp_path / "cut.yaml"
    cut.write_text(text[:end] if isinstance(end, int) else text[:text.rindex(end) + len(end)])
    notes: list[str] = []
    records = list(import_yaml(cut, notes=notes))
    assert sum(r["type"] == "event" for r in records) == events
    assert notes == [f"{cut}: {why}: left out (a recorder stopped while it wrote?)"]
    snapshot = tmp_path / "snap.yaml"  # a snapshot cut short is refused, as before: no recording to keep
    snapshot.write_text(text[:text.index("status:") + 3])
    with pytest.raises(FormatError, match="line 13: not valid YAML"):
        list(import_yaml(snapshot, notes=notes))
