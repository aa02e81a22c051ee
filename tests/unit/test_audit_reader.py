"""Reading audit files: format detection, the managed-cloud envelopes, merging, the reorder window, bad input."""

from __future__ import annotations

import gc
import gzip
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kwoksnap.audit import (
    AuditEvent,
    FilterSpec,
    ParseStats,
    events_from_value,
    format_timestamp,
    parse_timestamp,
    read_audit,
)
from kwoksnap.audit.events import resource_version
from kwoksnap.audit.reader import sniff
from kwoksnap.errors import InputError, UsageError

T0 = parse_timestamp("2026-01-01T00:00:00Z")
MS = 1_000_000


def ev(
    ms: int = 0,
    *,
    verb: str = "update",
    resource: str = "pods",
    name: str = "p",
    rv: int | None = None,
    stage: str = "ResponseComplete",
    **extra: Any,
) -> dict[str, Any]:
    """A native audit.k8s.io/v1 Event (canonical field order) at T0 + ms."""
    e: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"id-{ms}-{name}" + (f"-{rv}" if rv is not None else ""),  # one request, one ID
        "stage": stage,
        "requestURI": f"/api/v1/namespaces/ns/{resource}/{name}",
        "verb": verb,
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "userAgent": "kubectl/v1.36",
        "objectRef": {"resource": resource, "namespace": "ns", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": format_timestamp(T0 + ms * MS - MS),
        "stageTimestamp": format_timestamp(T0 + ms * MS),
    }
    if rv is not None:
        e["responseObject"] = {"kind": "Pod", "metadata": {"name": name, "resourceVersion": str(rv)}}
    e.update(extra)
    return e


def jsonl(*events: Any) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def read(paths: list[str] | str, **kw: Any) -> tuple[list[AuditEvent], ParseStats]:
    stats = ParseStats()
    events = list(read_audit(paths if isinstance(paths, list) else [paths], stats=stats, **kw))
    return events, stats


# --- detection and formats -----------------------------------------------------------------------------------------


def test_native_jsonl_and_all_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "audit.log", jsonl(ev(1, rv=7, annotations={"a": "b"})))
    (e,), stats = read(path)
    assert sniff(path) == "jsonl" and stats.formats == {"native": 1} and stats.lines == 1
    assert set(e) == set(AuditEvent.__annotations__)
    assert e["ts"] == T0 + MS and e["received"] == T0 and e["source"] == f"{path}:1"
    assert (e["group"], e["version"], e["resource"], e["namespace"], e["name"]) == ("", "v1", "pods", "ns", "p")
    assert e["annotations"] == {"a": "b"} and e["groups"] == ["system:authenticated"]


def test_a_resource_version_of_thousands_of_digits_is_no_number(tmp_path: Path) -> None:
    """Fuzzing finding: Python's int() refuses 4,300+ digits, and such a resourceVersion ended the read in an
    internal error (exit 70); a resourceVersion is a uint64, so one of more than 20 digits sorts as none."""
    huge = ev(2, name="huge", responseObject={"metadata": {"resourceVersion": "9" * 5000}})
    (e, f), stats = read(write(tmp_path, "a.log", jsonl(huge, ev(1, name="ok"))))
    assert [e["name"], f["name"]] == ["ok", "huge"] and stats.malformed == 0


def test_missing_fields_get_defaults(tmp_path: Path) -> None:
    minimal = {"auditID": "x", "stageTimestamp": "2026-01-01T00:00:00.000001Z"}
    (e,), _ = read(write(tmp_path, "a.log", jsonl(minimal)))
    assert e["ts"] == e["received"] == T0 + 1000
    assert e["code"] == 0 and e["request"] is None and e["annotations"] == {} and e["groups"] == []
    assert (e["stage"], e["level"], e["verb"], e["user"], e["resource"], e["name"], e["uri"]) == ("",) * 7


def test_eventlist_line_and_whole_file_documents(tmp_path: Path) -> None:
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [ev(2, name="b"), ev(1, name="a")]}
    events, stats = read(write(tmp_path, "webhook.log", jsonl(batch, ev(3, name="c"))))
    assert [e["name"] for e in events] == ["a", "b", "c"] and stats.lines == 2 and stats.events == 3
    assert events[0]["source"].endswith("webhook.log:1#1")
    pretty = write(tmp_path, "list.json", json.dumps(batch, indent=2))
    assert sniff(pretty) == "json"
    assert [e["name"] for e in read(pretty)[0]] == ["a", "b"]
    array = write(tmp_path, "array.json", json.dumps([ev(1, name="x"), ev(2, name="y")], indent=1))
    assert sniff(array) == "json" and [e["name"] for e in read(array)[0]] == ["x", "y"]
    one_line_array = write(tmp_path, "array1.json", json.dumps([ev(1, name="x"), ev(2, name="y")]))
    assert sniff(one_line_array) == "jsonl" and len(read(one_line_array)[0]) == 2


def test_broken_json_document_and_jsonl_with_broken_header(tmp_path: Path) -> None:
    pretty = json.dumps([ev(1), ev(2)], indent=2)
    broken = write(tmp_path, "broken.json", pretty.replace('"verb"', '"verb" "', 1))
    with pytest.raises(InputError, match=r"not an audit log: no audit event in 1 lines \(1 malformed; first: .*"
                                         r"not a valid JSON document \(line"):
        read(broken)  # nothing usable at all: not an audit log
    header = write(tmp_path, "header.log", b"{ garbage\n{ more garbage\n" + jsonl(ev(1), ev(2)))
    # Black-box finding: read as one document first, so whole into memory (a 200 MB log with a garbled head took
    # 625 MB): a later line of the head that is a whole record says JSON lines
    assert sniff(header) == "jsonl"
    events, stats = read(header)
    assert len(events) == 2 and stats.malformed == 2 and stats.malformed_examples[1] == f"{header}:2: not valid JSON"
    # Valid JSON nested past orjson's limit is said to be that (black-box finding: "not valid JSON")
    deep = ev(3)
    deep["responseObject"] = {"metadata": {"name": "x"}, "spec": "DEEP"}
    line = jsonl(deep).replace(b'"DEEP"', b"[" * 1100 + b"]" * 1100)
    nested = write(tmp_path, "deep.log", jsonl(ev(1)) + line + jsonl(ev(2)))
    events, stats = read(nested)
    assert len(events) == 2 and stats.malformed_examples == [
        f"{nested}:2: nested more deeply than 1,024 levels of maps and lists, more than kwoksnap can read"]


def test_pretty_printed_documents_one_after_another(tmp_path: Path) -> None:
    """Black-box finding: `jq .` of a JSON-lines log (or gcloud exports appended with >>) was one malformed
    document, and every event was lost."""
    text = json.dumps(ev(1, name="a"), indent=2) + "\n" + json.dumps({"kind": "EventList", "items": [
        ev(2, name="b"), ev(3, name="c")]}, indent=2) + "\n\n" + json.dumps(ev(4, name="d"), indent=2) + "\n"
    path = write(tmp_path, "jq.json", text)
    assert sniff(path) == "json"
    events, stats = read(path, strict=True)
    second = text.split("\n").index('  "kind": "EventList",')  # (0-based: the line before it, 1-based)
    fourth = text.split("\n").index("{", second + 1) + 1
    assert [(e["name"], e["source"]) for e in events] == [
        ("a", f"{path}:1"), ("b", f"{path}:{second}#0"), ("c", f"{path}:{second}#1"), ("d", f"{path}:{fourth}")]
    assert stats.lines == 3 and stats.malformed == 0
    # Review findings: one document that does not parse (or is cut off) lost every document (now the ones before
    # it are read); the json module's number rules let a 2**70 through to fail the store (exit 2: orjson reads it
    # as a float, as everywhere else) and a NaN (orjson refuses it); the search for the next document copied the
    # rest of the text each time (8,000 documents: 3 s)
    broken = write(tmp_path, "broken.json", text.replace('"name": "d"', '"name": d'))
    events, stats = read(broken)
    assert [e["name"] for e in events] == ["a", "b", "c"] and stats.malformed == 1
    assert stats.malformed_examples[0].startswith(f"{broken}:{fourth}: not a valid JSON document")
    # ...and one in the middle lost every document after it (now reading goes on at the next '{' of column 0)
    middle = write(tmp_path, "middle.json", text.replace('"name": "b"', '"name": b', 1))
    events, stats = read(middle)
    assert [e["name"] for e in events] == ["a", "d"] and stats.malformed == 1 and stats.lines == 3
    assert stats.malformed_examples == [f"{middle}:{second}: not a valid JSON document, or cut off (reading went on "
                                        "at the next line that starts with '{')"]
    huge = write(tmp_path, "huge.json", text.replace('"name": "d"', '"name": "d", "n": ' + str(2**70)))
    events, stats = read(huge)
    assert [e["name"] for e in events] == ["a", "b", "c", "d"] and type(events[3]["annotations"]) is dict
    nan = write(tmp_path, "nan.json", text.replace('"name": "d"', '"name": "d", "n": NaN'))
    events, stats = read(nan)
    assert [e["name"] for e in events] == ["a", "b", "c"] and stats.malformed == 1
    many = write(tmp_path, "many.json", "".join(json.dumps(ev(i, name=f"m{i}"), indent=2) + "\n"
                                                for i in range(8000)))
    events, stats = read(many)
    assert len(events) == 8000 and stats.malformed == 0


def test_an_array_of_compact_records_one_per_line_is_one_document(tmp_path: Path) -> None:
    """Review finding: `[`, then one compact record per line each followed by a comma, then `]`: only the last
    record (no comma) parsed on its own, and the file was taken for JSON lines with one record read."""
    for opening, closing in (("[", "]"), ('{"kind": "EventList", "items": [', "]}")):
        text = opening + "\n" + ",\n".join(orjson.dumps(ev(i, name=f"a{i}")).decode() for i in range(5)) \
            + "\n" + closing + "\n"
        path = write(tmp_path, "array.json", text)
        assert sniff(path) == "json"
        events, stats = read(path)
        assert [e["name"] for e in events] == [f"a{i}" for i in range(5)] and stats.malformed == 0


def test_comment_headers_are_skipped_in_json_lines_and_documents(tmp_path: Path) -> None:
    """Black-box finding: docs/audit.md says `#` comment lines (licence headers) are skipped, but JSON lines counted
    one as malformed (and --strict refused the file), and two made the file look like a pretty-printed document."""
    for n in (1, 2):
        path = write(tmp_path, f"c{n}.log", b"# licence header\n" * n + jsonl(ev(1)) + b"  # indented\n" + jsonl(ev(2)))
        events, stats = read(path, strict=True)
        assert sniff(path) == "jsonl" and len(events) == 2 and stats.malformed == 0, n
        assert events[0]["source"] == f"{path}:{n + 1}"
    pretty = write(tmp_path, "doc.json", b"\xef\xbb\xbf# exported by a SIEM\n  # second line\n\n"
                   + orjson.dumps([ev(1), ev(2)], option=orjson.OPT_INDENT_2))
    events, stats = read(pretty, strict=True)
    assert sniff(pretty) == "json" and len(events) == 2 and stats.malformed == 0


def test_yaml_documents(tmp_path: Path) -> None:
    text = "# licence header\n\n" + yaml.safe_dump_all([ev(2, name="b"), ev(1, name="a")], explicit_start=True)
    path = write(tmp_path, "audit.yaml", text)
    events, stats = read(path)
    assert sniff(path) == "yaml" and [e["name"] for e in events] == ["a", "b"] and stats.lines == 2
    assert events[1]["source"] == f"{path}:4"  # the line where the first document starts


def test_yaml_syntax_error_is_malformed_and_ends_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", yaml.safe_dump(ev(1)) + "---\nkey: [unclosed\n---\n" + yaml.safe_dump(ev(2)))
    events, stats = read(path)
    assert len(events) == 1 and stats.malformed == 1 and "YAML syntax error" in stats.malformed_examples[0]
    with pytest.raises(InputError, match=r"bad\.yaml:\d+: YAML syntax error"):
        read(path, strict=True)


def test_yaml_unusable_documents_are_skipped(tmp_path: Path) -> None:
    text = "---\n---\n" + yaml.safe_dump(ev(1, name="a")) + "---\n!!binary aGVsbG8=\n---\n? [a, b]\n: 1\n---\n"
    path = write(tmp_path, "odd.yaml", text + yaml.safe_dump(ev(2, name="b")) + "---\n")
    events, stats = read(path)
    assert [e["name"] for e in events] == ["a", "b"] and stats.lines == 4 and stats.malformed == 2
    assert stats.malformed_examples[1] == f"{path}:{text.count(chr(10)) - 2}: unusable YAML document (ConstructorError)"
    # Black-box finding: a few hundred bytes of nested aliases took 615 MB on their way to JSON ("billion laughs")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    # (re-test: a log whose 3,000 events share one object through aliases, 20 times its size, is fine)
    shared = {f"k{i}": f"{i}" for i in range(300)}  # one object every event holds: PyYAML writes it once, then aliases
    legit = write(tmp_path, "shared.yaml", yaml.dump([ev(i, name=f"p{i}", annotations=shared) for i in range(3000)]))
    assert "*id001" in Path(legit).read_text()
    events, stats = read(legit)
    assert len(events) == 3000 and stats.malformed == 0, stats.malformed_examples
    path = write(tmp_path, "bomb.yaml", bomb + "---\n" + yaml.safe_dump(ev(3, name="c")))
    events, stats = read(path)
    assert [e["name"] for e in events] == ["c"] and stats.malformed == 1
    assert stats.malformed_examples == [f"{path}:1: unusable YAML document (its aliases expand it far beyond its "
                                        "own size)"]


def _gke(method: str, resource_name: str, **payload: Any) -> dict[str, Any]:
    return {
        "insertId": f"ins-{method}",
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": f"op-{method}", "first": True, "last": True, "producer": "k8s.io"},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "dev@example.com"},
            "methodName": method,
            "resourceName": resource_name,
            "requestMetadata": {"callerSuppliedUserAgent": "kubectl/v1.36"},
            "serviceName": "k8s.io",
            **payload,
        },
        "timestamp": "2026-01-01T00:00:00.123456789Z",
        "receiveTimestamp": "2026-01-01T00:00:01Z",
    }


def test_gke_log_entries(tmp_path: Path) -> None:
    lines = [
        _gke(
            "io.k8s.apps.v1.deployments.create",
            "apps/v1/namespaces/web/deployments/front",
            request={"@type": "apps.k8s.io/v1.Deployment", "kind": "Deployment"},
            response={"@type": "apps.k8s.io/v1.Deployment", "metadata": {"name": "front", "resourceVersion": "9"}},
            status={},
        ),
        _gke("io.k8s.coordination.v1.leases.update", "coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
        _gke("io.k8s.core.v1.namespaces.finalize.update", "core/v1/namespaces/gone/finalize", status={"code": 7}),
        _gke("io.k8s.authorization.rbac.v1.clusterroles.delete", "rbac.authorization.k8s.io/v1/clusterroles/r"),
        _gke("io.k8s.core.v1.nodes.list", "core/v1/nodes"),
    ]
    events, stats = read(write(tmp_path, "gke.json", jsonl(*lines)))
    assert stats.formats == {"gke": 5}
    deploy, lease, finalize, role, nodes = sorted(events, key=lambda e: e["source"])
    assert (deploy["group"], deploy["version"], deploy["resource"], deploy["namespace"], deploy["name"]) == (
        "apps",
        "v1",
        "deployments",
        "web",
        "front",
    )
    assert deploy["ts"] == T0 + 123_456_789 and deploy["stage"] == "ResponseComplete" and deploy["code"] == 200
    assert deploy["level"] == "RequestResponse" and deploy["request"] == {"kind": "Deployment"}
    assert (
        deploy["auditID"] == "op-io.k8s.apps.v1.deployments.create" and deploy["userAgent"] == "kubectl/v1.36"
        and deploy["user"] == "dev@example.com"
    )
    assert (lease["group"], lease["namespace"], lease["name"], lease["level"]) == (
        "coordination.k8s.io",
        "kube-node-lease",
        "n1",
        "Metadata",
    )
    assert (finalize["resource"], finalize["subresource"], finalize["name"], finalize["code"]) == (
        "namespaces",
        "finalize",
        "gone",
        403,
    )
    assert (role["group"], role["resource"], role["name"], role["verb"]) == (
        "rbac.authorization.k8s.io",
        "clusterroles",
        "r",
        "delete",
    )
    assert (nodes["verb"], nodes["resource"], nodes["name"]) == ("list", "nodes", "")


def test_eks_cloudwatch_answers_envelopes_and_s3_exports(tmp_path: Path) -> None:
    """Black-box finding: the CloudWatch shapes an EKS user gets their audit log in besides JSON lines were refused:
    `aws logs filter-log-events`/`get-log-events` output, a subscription's envelope (Firehose, Lambda), Logs
    Insights `get-query-results` output, and the export to S3 (each line: a timestamp, a space, the message)."""
    one, two = (orjson.dumps(ev(i, name=f"e{i}")).decode() for i in (1, 2))
    stream = "kube-apiserver-audit-0123abcd"
    shapes = {
        "filter.json": {"events": [{"logStreamName": stream, "timestamp": 1, "message": one, "eventId": "1"},
                                   {"logStreamName": "kube-apiserver-0123abcd", "timestamp": 1, "message": "I0101"},
                                   {"logStreamName": stream, "timestamp": 2, "message": two, "eventId": "2"}],
                        "searchedLogStreams": []},
        "get.json": {"events": [{"timestamp": 1, "message": one}, {"timestamp": 2, "message": two}],
                     "nextForwardToken": "f/1"},
        "subscription.json": {"messageType": "DATA_MESSAGE", "logStream": stream,
                              "logEvents": [{"id": "1", "timestamp": 1, "message": one},
                                            {"id": "2", "timestamp": 2, "message": two}]},
        "insights.json": {"status": "Complete", "results": [
            [{"field": "@timestamp", "value": "2026-01-01 00:00:00.001"}, {"field": "@message", "value": m}]
            for m in (one, two)]},
    }
    for name, value in shapes.items():
        events, stats = read(write(tmp_path, name, json.dumps(value, indent=2)))
        assert [e["name"] for e in events] == ["e1", "e2"] and stats.formats == {"eks": 2}, name
    other = {"messageType": "DATA_MESSAGE", "logStream": "kube-scheduler-0123", "logEvents": [{"message": "I0101"}]}
    events, stats = read([write(tmp_path, "other.json", json.dumps(other)), write(tmp_path, "get.jsonl", jsonl(
        shapes["get.json"]))])
    assert len(events) == 2 and stats.ignored == {"eks-stream-not-audit": 1}
    s3 = write(tmp_path, "000000.log", f"2026-01-01T00:00:00.001Z {one}\n2026-01-01T00:00:00.002Z {two}\n")
    assert sniff(s3) == "stamped"
    events, stats = read(s3)
    assert [(e["name"], e["source"]) for e in events] == [("e1", f"{s3}:1"), ("e2", f"{s3}:2")]
    assert stats.formats == {"native": 2} and stats.malformed == 0


def test_odd_cloudwatch_shapes_are_malformed_or_read(tmp_path: Path) -> None:
    """Review findings: a Logs Insights result whose `field` was a list crashed the run (unhashable, exit 70);
    an export to S3 whose timestamps hold a space was detected, then every line failed (cut at the first space)."""
    one = orjson.dumps(ev(1, name="e1")).decode()
    odd = {"status": "Complete", "results": [[{"field": ["@message"], "value": one}],
                                             [{"field": "@message", "value": one}]]}
    events, stats = read(write(tmp_path, "odd.json", json.dumps(odd)))
    assert [e["name"] for e in events] == ["e1"] and stats.malformed == 1
    s3 = write(tmp_path, "spaced.log", f"2026-01-01 00:00:00.001Z {one}\n2026-01-01 00:00:00.002+00:00 {one}\n")
    assert sniff(s3) == "stamped"
    events, stats = read(s3)
    assert len(events) == 1 and stats.malformed == 0 and stats.duplicates == 1  # (the same line twice)


def test_other_google_cloud_services_entries_are_ignored(tmp_path: Path) -> None:
    """Black-box finding: a Cloud Logging export holds other services' audit entries too; Compute Engine deleting a
    VM was read as "delete core/v1 compute/instances" and failed the replay as not served."""
    vm = _gke("v1.compute.instances.delete", "projects/p/zones/z/instances/vm-1")
    vm["protoPayload"]["serviceName"] = "compute.googleapis.com"
    events, stats = read(write(tmp_path, "gcp.json", jsonl(vm, _gke("io.k8s.core.v1.pods.delete",
                                                                    "core/v1/namespaces/a/pods/p"))))
    assert [(e["verb"], e["resource"], e["name"]) for e in events] == [("delete", "pods", "p")]
    assert stats.ignored == {"gcp-service:compute.googleapis.com": 1} and stats.malformed == 0
    # (re-test: a container's log line in the same export was malformed, not ignored)
    text = {"insertId": "x", "textPayload": "GET /healthz 200", "resource": {"type": "k8s_container"}}
    events, stats = read(write(tmp_path, "gcp2.json", jsonl(text, _gke("io.k8s.core.v1.pods.delete",
                                                                       "core/v1/namespaces/a/pods/p"))))
    assert len(events) == 1 and stats.ignored == {"gcp-not-audit": 1} and stats.malformed == 0


def test_eks_cloudwatch_export(tmp_path: Path) -> None:
    inner = orjson.dumps(ev(1, name="from-eks")).decode()
    lines = [
        {"timestamp": 1767225600001, "message": inner, "logStreamName": "kube-apiserver-audit-0123abcd"},
        {"@timestamp": "2026-01-01 00:00:00.002", "@message": inner.replace("from-eks", "insights")},
        {"timestamp": 1, "message": "I0101 00:00:00 klog line", "logStreamName": "kube-apiserver-0123abcd"},
        {"timestamp": 2, "message": "{not json", "logStreamName": "kube-apiserver-audit-0123abcd"},
    ]
    events, stats = read(write(tmp_path, "eks.jsonl", jsonl(*lines)))
    assert sorted(e["name"] for e in events) == ["from-eks", "insights"] and stats.formats == {"eks": 2}
    assert stats.ignored == {"eks-stream-not-audit": 1}
    assert stats.malformed == 1 and "message is not JSON" in stats.malformed_examples[0]


def test_aks_diagnostics_string_object_and_records_blob(tmp_path: Path) -> None:
    as_string = {"category": "kube-audit", "properties": {"log": orjson.dumps(ev(1, name="s")).decode(), "pod": "x"}}
    as_object = {"category": "kube-audit-admin", "properties": {"log": ev(2, name="o")}}
    other = {"category": "kube-apiserver", "properties": {"log": "I0101 started"}}
    blob = {"records": [as_string, as_object, other]}
    events, stats = read(write(tmp_path, "aks.json", jsonl(as_string, as_object, other)))
    assert [e["name"] for e in events] == ["s", "o"] and stats.formats == {"aks": 2}
    assert stats.ignored == {"aks-category:kube-apiserver": 1} and stats.malformed == 0
    # Black-box finding: a category that is a list or a map ended the whole run as an internal error (exit 70)
    odd = [{"category": ["kube-audit"], "properties": {"log": ev(4, name="l")}},
           {"category": {"name": "kube-audit"}, "properties": {"log": ev(5, name="d")}}]
    events, stats = read(write(tmp_path, "aks-odd.json", jsonl(as_string, *odd)))
    assert [e["name"] for e in events] == ["s"] and stats.malformed == 2
    assert stats.malformed_examples[0].endswith("category is a list, not a string"), stats.malformed_examples
    path = write(tmp_path, "PT1H.json", json.dumps(blob, indent=2))
    assert sniff(path) == "json"
    events, stats = read(path)
    assert [e["name"] for e in events] == ["s", "o"] and events[0]["source"] == f"{path}:1#0"


def test_mixed_flavours_in_one_file(tmp_path: Path) -> None:
    lines = [
        ev(1, name="native"),
        _gke("io.k8s.core.v1.pods.create", "core/v1/namespaces/ns/pods/gke"),
        {"category": "kube-audit", "properties": {"log": ev(3, name="aks")}},
        {"message": orjson.dumps(ev(4, name="eks")).decode()},
    ]
    _, stats = read(write(tmp_path, "siem.log", jsonl(*lines)))
    assert stats.formats == {"native": 1, "gke": 1, "aks": 1, "eks": 1}


def test_gzip_detected_by_magic_not_suffix(tmp_path: Path) -> None:
    packed = write(tmp_path, "audit.log", gzip.compress(jsonl(ev(1), ev(2))))  # gzip without .gz
    plain = write(tmp_path, "audit.log.gz", jsonl(ev(3)))  # .gz that is plain text
    assert len(read(packed)[0]) == 2 and len(read(plain)[0]) == 1
    multi = write(tmp_path, "multi.gz", gzip.compress(jsonl(ev(1))) + gzip.compress(jsonl(ev(2))))
    assert len(read(multi)[0]) == 2  # concatenated gzip members (rotated-then-appended files)
    yaml_gz = write(tmp_path, "y.gz", gzip.compress(yaml.safe_dump(ev(1)).encode()))
    assert sniff(yaml_gz) == "yaml" and len(read(yaml_gz)[0]) == 1


def test_events_from_value() -> None:
    (e,) = events_from_value({"kind": "EventList", "items": [ev(1)]}, "webhook")
    assert e["source"] == "webhook#0"
    with pytest.raises(InputError, match="webhook: a JSON number"):
        events_from_value(5, "webhook")


# --- robustness ----------------------------------------------------------------------------------------------------


def test_long_lines_crlf_and_blank_lines(tmp_path: Path) -> None:
    big = ev(1, requestObject={"data": {"blob": "x" * 3_000_000}})  # longer than the 1 MiB read chunk
    data = b"\n\n" + jsonl(big).replace(b"\n", b"\r\n") + b"   \n" + jsonl(ev(2))
    events, stats = read(write(tmp_path, "long.log", data))
    assert len(events) == 2 and stats.lines == 2 and stats.malformed == 0
    assert len(events[0]["request"]["data"]["blob"]) == 3_000_000
    assert events[1]["source"].endswith(":5")


def test_garbage_lines_counted_with_location(tmp_path: Path) -> None:
    data = jsonl(ev(1)) + b"not json at all\n" + jsonl(ev(2)) + b'{"auditID": "x"\n'
    path = write(tmp_path, "g.log", data + jsonl(ev(3)))
    events, stats = read(path)
    assert len(events) == 3 and stats.malformed == 2
    assert stats.malformed_examples == [f"{path}:2: not valid JSON", f"{path}:4: not valid JSON"]
    with pytest.raises(InputError, match=rf"{path}:2: not valid JSON"):
        read(path, strict=True)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"42", "a JSON number, not an object"),
        (b'"text"', "a JSON string, not an object"),
        (b"null", "a JSON null, not an object"),
        (b"[1, 2]", "a JSON number, not an object"),
        (b"[]", "empty array"),
        (b'{"hello": "world"}', "not an audit record"),
        (orjson.dumps(ev(1, objectRef="pods/p")), "objectRef, user or responseStatus is not an object"),
        (orjson.dumps(ev(1, user=["alice"])), "objectRef, user or responseStatus is not an object"),
        (orjson.dumps({**ev(1), "verb": 7}), "verb is not a string"),
        (orjson.dumps(ev(1, responseStatus={"code": "200"})), "responseStatus.code is not an integer"),
        (orjson.dumps(ev(1, stageTimestamp="soon")), "bad timestamp"),
        (orjson.dumps({"auditID": "x", "verb": "get"}), "no timestamp"),
        (orjson.dumps(ev(1, annotations=["a"])), "annotations is not an object"),
        (orjson.dumps({"kind": "EventList", "items": {"a": 1}}), "items/records is not an array"),
        (orjson.dumps(_gke("io.k8s.core.v1.pods.create", "x", status={"code": "OK"})), "status.code"),
        (orjson.dumps({"category": "kube-audit", "properties": {"log": 5}}), "properties.log is not a JSON object"),
    ],
)
def test_wrong_json_types_are_malformed(tmp_path: Path, line: bytes, reason: str) -> None:
    path = write(tmp_path, "w.log", jsonl(ev(1, name="good")) + line + b"\n")
    events, stats = read(path)
    assert [e["name"] for e in events] == ["good"] and stats.malformed >= 1
    assert reason in stats.malformed_examples[0] and stats.malformed_examples[0].startswith(f"{path}:2")
    with pytest.raises(InputError, match=f"{path}:2"):
        read(path, strict=True)


def test_truncated_last_line(tmp_path: Path) -> None:
    data = jsonl(ev(1), ev(2)) + orjson.dumps(ev(3))[:50]
    path = write(tmp_path, "cut.log", data)
    events, stats = read(path)
    assert len(events) == 2 and stats.malformed == 0 and stats.lines == 3
    assert stats.truncated == {path: f"{path}:3: last line is cut off"}
    with pytest.raises(InputError, match=f"{path}:3: last line is cut off"):
        read(path, strict=True)
    complete = write(tmp_path, "no-newline.log", jsonl(ev(1)) + orjson.dumps(ev(2)))  # fine without final \n
    assert len(read(complete)[0]) == 2 and not read(complete)[1].truncated
    # Black-box finding: a cut-off line the byte-level prefilter would drop (a resource not replayed) was dropped
    # unseen, so the cut went unreported, also under --strict.
    spec = FilterSpec(resources=frozenset({"leases"}))
    path = write(tmp_path, "cut-late.log", jsonl(ev(1), ev(2)) + orjson.dumps(ev(3))[:-20])  # its objectRef whole
    _, stats = read(path, prefilter=spec)
    assert stats.truncated == {path: f"{path}:3: last line is cut off"} and stats.prefiltered == 2
    with pytest.raises(InputError, match=f"{path}:3: last line is cut off"):
        read(path, strict=True, prefilter=spec)


def test_gzip_that_ends_early(tmp_path: Path) -> None:
    data = jsonl(*(ev(i, name=f"p{i}") for i in range(3000)))
    packed = gzip.compress(data)
    path = write(tmp_path, "cut.log.gz", packed[: len(packed) // 2])
    events, stats = read(path)
    assert 100 < len(events) < 3000 and [e["name"] for e in events] == [f"p{i}" for i in range(len(events))]
    (what,) = stats.truncated.values()
    assert "compressed stream ends early" in what
    with pytest.raises(InputError, match="compressed stream ends early"):
        read(path, strict=True)


def test_gzip_whose_checksum_fails_is_called_corrupt_not_cut(tmp_path: Path) -> None:
    """Black-box finding: a flipped bit inside a gzip member passed its changed bytes on, and the warning said the
    stream "ends early" and events after it are missing, while nothing was missing and earlier data was wrong."""
    data = jsonl(*(ev(i, name=f"p{i}") for i in range(50)))
    packed = bytearray(gzip.compress(data))
    packed[-8] ^= 0xFF  # the member's CRC32
    path = write(tmp_path, "crc.log.gz", bytes(packed))
    events, stats = read(path)
    assert len(events) == 50
    (what,) = stats.truncated.values()
    assert "compressed stream is corrupt (CRC check failed" in what and "may hold wrong data" in what
    with pytest.raises(InputError, match="compressed stream is corrupt"):
        read(path, strict=True)


def test_gzip_followed_by_other_data_is_not_called_cut(tmp_path: Path) -> None:
    """Black-box finding: data after a complete gzip member (gzip -d: "trailing garbage ignored") was reported as
    a stream that "ends early", events after it missing, while every event had been read."""
    path = write(tmp_path, "trailing.log.gz", gzip.compress(jsonl(*(ev(i, name=f"p{i}") for i in range(50))))
                 + b"garbage\n")
    events, stats = read(path)
    assert len(events) == 50
    (what,) = stats.truncated.values()
    assert "followed by data that is not gzip" in what and "ends early" not in what
    # and a gzip cut before its first event: the refusal says why (it said only "no audit event in 1 lines")
    packed = gzip.compress(json.dumps([ev(1), ev(2)], indent=2).encode())
    cut = write(tmp_path, "cut-doc.json.gz", packed[: len(packed) // 2])
    with pytest.raises(InputError, match=r"not an audit log: no audit event .*compressed stream ends early"):
        read(cut)


def test_empty_and_binary_files(tmp_path: Path) -> None:
    good = write(tmp_path, "good.log", jsonl(ev(1)))
    empty = write(tmp_path, "empty.log", b"")
    blank = write(tmp_path, "blank.log", b"\n  \n\t\n")
    empty_gz = write(tmp_path, "empty.log.gz", gzip.compress(b""))
    binary = write(tmp_path, "core.bin", bytes(range(256)) * 4)
    latin1 = write(tmp_path, "latin1.log", "caf\xe9 \xff\xfe".encode("latin-1"))
    zstd = write(tmp_path, "audit.log.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    unknown = write(tmp_path, "notes.txt", "just some words\n")
    comments = write(tmp_path, "comments.log", "\ufeff# a licence header\n\n# and nothing else\n")  # was "unknown"
    utf16 = write(tmp_path, "ps.json", jsonl(ev(1)).decode().encode("utf-16-le"))  # (black-box: said "binary")
    expected = {
        utf16: "UTF-16 text (PowerShell's `>` writes it), not UTF-8",
        comments: "no audit event: only comments or blank lines",
        empty: "empty file",
        blank: "empty file",
        empty_gz: "empty file (after gunzip)",
        binary: "binary file (NUL bytes)",
        latin1: "binary file (not UTF-8 text)",
        zstd: "zstd-compressed",
        unknown: "unknown format",
    }
    for path, message in expected.items():
        with pytest.raises(InputError, match="^" + re.escape(f"{path}: {message}")):
            read(path)
    # With a usable file among them, unusable ones are skipped and listed; strict mode raises on the first.
    events, stats = read([empty, binary, good])
    assert len(events) == 1 and set(stats.unusable_files) == {empty, binary} and list(stats.files) == [good]
    with pytest.raises(InputError, match="empty file"):
        read([good, empty], strict=True)
    with pytest.raises(InputError, match="no usable audit log among 2 files"):
        read([empty, binary])
    # Black-box finding: a log a crash padded with NUL bytes was refused whole as binary when it was small (the
    # padding fell in the 64 KiB looked at), and read up to the padding when large. The padding is where what was
    # written was lost: said (a later black-box finding: it was dropped without a word).
    padded = write(tmp_path, "crashed.log", jsonl(ev(1), ev(2)) + b"\x00" * 4096)
    events, stats = read(padded)
    assert len(events) == 2 and "ends in 4096 NUL bytes" in stats.truncated[padded] and stats.malformed == 0
    # (re-test: padding in the middle, the log written on after it without a newline, lost the next event)
    resumed = write(tmp_path, "resumed.log", jsonl(ev(1, name="a")) + b"\x00" * 4096 + jsonl(ev(2, name="b")))
    events, stats = read(resumed)
    assert [e["name"] for e in events] == ["a", "b"] and stats.malformed == 1


def test_paths_globs_and_arguments(tmp_path: Path) -> None:
    for name in ("audit-2.log", "audit-1.log", "other.log"):
        write(tmp_path, name, jsonl(ev(1, name=name)))
    _, stats = read([str(tmp_path / "audit-*.log"), str(tmp_path / "audit-1.log")])
    assert list(stats.files) == [str(tmp_path / "audit-1.log"), str(tmp_path / "audit-2.log")]  # sorted, deduped
    with pytest.raises(InputError, match="no file matches"):
        read(str(tmp_path / "nothing-*.log"))
    # (a glob's folders are no audit logs: they were counted among the files, "no usable audit log among 3 files")
    (tmp_path / "audit-old.log").mkdir()
    _, stats = read(str(tmp_path / "audit-*.log"))
    assert len(stats.files) == 2 and not stats.unusable_files
    (tmp_path / "only-dir").mkdir()
    with pytest.raises(InputError, match=r"no file matches this pattern \(only 1 folder"):
        read(str(tmp_path / "only-*"))
    with pytest.raises(InputError, match=r"missing\.log: no such file"):
        read([str(tmp_path / "audit-1.log"), str(tmp_path / "missing.log")])  # even with a usable file
    with pytest.raises(InputError, match="is a directory"):
        read(str(tmp_path))
    with pytest.raises(UsageError):
        read([])
    with pytest.raises(UsageError):
        read(str(tmp_path / "audit-1.log"), window_events=0)
    assert len(list(read_audit(tmp_path / "other.log"))) == 1  # a single path (str or PathLike) is accepted


# --- ordering ------------------------------------------------------------------------------------------------------


def test_merge_two_api_servers_with_ties(tmp_path: Path) -> None:
    # Two HA API servers, each roughly ordered; equal timestamps are broken by the result's resourceVersion for
    # the same object, then by input order (file order given, then line order). An event without one takes the
    # highest its file showed before it (it was written after those); with none shown yet, it goes after them.
    a = write(tmp_path, "apiserver-a.log", jsonl(ev(10, name="a1"), ev(30, rv=12, name="x"), ev(20, name="a2")))
    b = write(tmp_path, "apiserver-b.log", jsonl(ev(30, rv=11, name="x"), ev(5, name="b0"), ev(30, name="tie")))
    c = write(tmp_path, "apiserver-c.log", jsonl(ev(30, name="tie-later-file"), ev(40, name="c")))
    events, stats = read([a, b, c])
    names = [(e["name"], e["ts"] - T0) for e in events]
    assert names == [
        ("b0", 5 * MS),
        ("a1", 10 * MS),
        ("a2", 20 * MS),
        ("x", 30 * MS),  # rv 11 (file b) before rv 12 (file a) although file a comes first
        ("tie", 30 * MS),  # no resourceVersion: after the rv 11 its file wrote before it
        ("x", 30 * MS),
        ("tie-later-file", 30 * MS),  # no resourceVersion, none before it in its file: after those that show one
        ("c", 40 * MS),
    ]
    assert [e["response"]["metadata"]["resourceVersion"] for e in events if e["name"] == "x"] == ["11", "12"]
    assert stats.late == 0 and stats.files == {a: "jsonl", b: "jsonl", c: "jsonl"}


def test_reorder_window_and_late_events(tmp_path: Path) -> None:
    seconds = 1000
    order = [0, 3, 1, 2, 10, 4, 11, 12, 20, 13, 21]  # in seconds; "4" and "13" arrive > 5 s late
    path = write(tmp_path, "r.log", jsonl(*(ev(s * seconds, name=str(s)) for s in order)))
    small_chunks: list[AuditEvent]
    events, stats = read(path, window_ns=5 * 10**9)
    # Everything arrives within one 1 MiB chunk, so the whole chunk is sorted before the window is applied.
    assert [e["name"] for e in events] == [str(s) for s in sorted(order)] and stats.late == 0
    small_chunks, stats = read(path, window_ns=0, window_events=1)
    assert [e["name"] for e in small_chunks] == [str(s) for s in sorted(order)]  # still one chunk, sorted


def test_reorder_window_across_chunks(tmp_path: Path) -> None:
    filler = {"data": "x" * 1_100_000}  # longer than the 1 MiB read chunk: each chunk completes at most one line
    order = [0, 10, 20, 3, 21, 22]  # "3" arrives after "10" has left a 5 s window
    lines = [ev(s * 1000, name=str(s), requestObject=filler) for s in order]
    path = write(tmp_path, "w.log", jsonl(*lines))
    events, stats = read(path, window_ns=5 * 10**9)
    assert [int(e["name"]) for e in events] == [0, 10, 3, 20, 21, 22] and stats.late == 1
    exact, stats = read(path, window_ns=60 * 10**9)
    assert [int(e["name"]) for e in exact] == sorted(order) and stats.late == 0
    capped, stats = read(path, window_ns=60 * 10**9, window_events=1)  # the event cap wins over the time window
    assert [int(e["name"]) for e in capped] == [0, 10, 3, 20, 21, 22] and stats.late == 1


def test_gc_state_restored(tmp_path: Path) -> None:
    path = write(tmp_path, "a.log", jsonl(*(ev(i) for i in range(100))))
    assert gc.isenabled()
    events = read_audit([path])
    next(events)
    assert gc.isenabled()  # never disabled while the caller runs
    list(events)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        list(read_audit([path]))
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_stats_to_dict_is_json(tmp_path: Path) -> None:
    path = write(tmp_path, "s.log", jsonl(ev(1)) + b"garbage\n")
    _, stats = read(path)
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["lines"] == 2 and data["events"] == 1 and data["malformed"] == 1
    assert data["formats"] == {"native": 1} and data["malformedExamples"] == [f"{path}:2: not valid JSON"]


def test_a_utf8_bom_before_json_lines_is_dropped(tmp_path: Path) -> None:
    """docs/audit.md promised it; the first line was counted malformed ('not valid JSON') instead."""
    path = write(tmp_path, "bom.log", b"\xef\xbb\xbf" + jsonl(ev(1, name="a"), ev(2, name="b")))
    events, stats = read(path)
    assert [e["name"] for e in events] == ["a", "b"] and stats.malformed == 0


def test_logs_without_a_single_audit_event_are_not_audit_logs(tmp_path: Path) -> None:
    """Found black-box testing: a file of JSON objects that are no audit events replayed '0 events' and exited 0.
    One usable event anywhere keeps the lenient reading; a prefilter that drops every line is no sign of anything."""
    junk = write(tmp_path, "junk.json", b'{"a":1}\n{"b":2}\n')
    with pytest.raises(InputError, match=r"junk\.json: not an audit log: no audit event in 2 lines \(2 malformed"):
        read(junk)
    good = write(tmp_path, "good.log", jsonl(ev(1)))
    events, stats = read([junk, good])
    assert len(events) == 1 and stats.malformed == 2
    _, stats = read(good, prefilter=FilterSpec(namespaces=frozenset({"elsewhere"}), resources=frozenset({"leases"})))
    assert stats.events == 0 and stats.prefiltered == 1  # filtered before decoding: still an audit log


def test_an_event_in_two_overlapping_files_is_read_once(tmp_path: Path) -> None:
    """Found black-box testing: the incident log and a copy of it converted to twice the events, and replayed
    twice. Rotated files can overlap; a second copy (same auditID and stage) is left out and counted."""
    a = write(tmp_path, "audit-1.log", jsonl(ev(1, name="a"), ev(2, name="b")))
    b = write(tmp_path, "audit-2.log", jsonl(ev(2, name="b"), ev(3, name="c")))  # b again: the files overlap
    events, stats = read([a, b])
    assert [e["name"] for e in events] == ["a", "b", "c"] and stats.duplicates == 1
    assert stats.to_dict()["duplicates"] == 1


def test_an_event_written_twice_in_one_file_is_read_once(tmp_path: Path) -> None:
    """Black-box finding: a line written twice in one file (files joined with cat) was replayed twice, and a JSON
    patch `add /spec/tags/-` added its tag twice. A client may set the Audit-ID itself, the same for several
    requests: those have their own timestamps and are kept."""
    reused = {**ev(3, name="c"), "auditID": "id-2-b"}
    path = write(tmp_path, "audit.log", jsonl(ev(1, name="a"), ev(2, name="b"), ev(2, name="b"), reused))
    events, stats = read(path)
    assert [e["name"] for e in events] == ["a", "b", "c"] and stats.duplicates == 1


def test_copies_among_many_events_of_one_microsecond_are_found_by_key(tmp_path: Path) -> None:
    """Review finding: each event was compared with every earlier one of its microsecond, quadratic in a log with
    second-precision times (8,000 events of one second took 20 s). Beyond a few, the comparison is by a set."""
    names = [f"p{i}" for i in range(60)]
    lines = [ev(5, name=n) for n in names] + [ev(5, name=n) for n in names[::3]]  # every third one twice
    lines += [{**ev(5, name="p1"), "stage": "RequestReceived"}]  # not a copy: another stage
    events, stats = read(write(tmp_path, "audit.log", jsonl(*lines)))
    assert stats.duplicates == 20
    assert sorted(e["name"] for e in events if e["stage"] == "ResponseComplete") == sorted(names)


def test_a_servers_clock_seconds_behind_anothers_is_measured_from_resource_versions(tmp_path: Path) -> None:
    """Review finding: HA logs are merged by each server's clock; one 3 s behind put its binding of a pod before
    the pod's create (served by the other server), and nothing said so. resourceVersions order commits across
    servers: server B answered rv 150 at what its clock called 7.5 s, yet A committed the create of rv 100 at 10 s."""
    a = write(tmp_path, "api-a.log", jsonl(ev(10_000, verb="create", name="p1", rv=100),
                                           ev(10_200, name="p1", rv=102),
                                           ev(12_000, name="x", rv=90)))  # answered with an old rv: says nothing
    b = write(tmp_path, "api-b.log", jsonl(ev(7_500, name="y", rv=150), ev(8_000, name="y", rv=160)))
    _, stats = read([a, b])
    assert stats.clock_skew == {b: 2.499} and stats.to_dict()["clockSkew"] == {b: 2.499}  # from the receipt
    # the same servers in step (B's events at their true times): nothing to say
    b_in_step = write(tmp_path, "api-b2.log", jsonl(ev(10_500, name="y", rv=150), ev(11_000, name="y", rv=160)))
    _, stats = read([a, b_in_step])
    assert stats.clock_skew == {}


def test_a_yaml_file_whose_first_document_is_broken_is_no_audit_log(tmp_path: Path) -> None:
    """Black-box finding: the syntax error came before the document was counted, so the file read as 0 records and
    convert wrote an empty recording with exit 0 (replay went on to contact the cluster)."""
    path = write(tmp_path, "bad.yaml", "kind: Event\nauditID: [\n")
    with pytest.raises(InputError, match=r"not an audit log: no audit event in 1 lines \(1 malformed"):
        read(path)


def test_events_without_a_resource_version_keep_their_file_order_around_its_first_one(tmp_path: Path) -> None:
    """Review finding: in one timestamp, an event before its file's first resourceVersion sorted after every event
    that showed one (the rule for a file that has shown none), and one after it with the file's floor: a delete of
    p, then a ConfigMap create (rv 100), then a create of p (Metadata level), came out as create before delete."""
    log = write(tmp_path, "mixed.log", jsonl(ev(1000, name="p", verb="delete"), ev(1000, name="cm", rv=100),
                                              ev(1000, name="p", verb="create"), ev(2000, name="q", verb="delete")))
    events, _stats = read(log)
    assert [(e["name"], e["verb"]) for e in events] == [("cm", "update"), ("p", "delete"), ("p", "create"),
                                                         ("q", "delete")]


def test_a_file_out_of_order_within_the_window_is_not_called_behind_another(tmp_path: Path) -> None:
    """Review finding: events without a resourceVersion carry their file's floor as a sort key, and the clock-skew
    watch took that for the file having shown it then: a file 2-3 s out of order within the reorder window was
    said to be 2 s behind another."""
    a = write(tmp_path, "api-a.log", jsonl(ev(10_000, name="x", verb="create", rv=100),
                                           ev(7000, name="late", verb="delete")))  # (it floors to rv 100, at 7 s)
    b = write(tmp_path, "api-b.log", jsonl(ev(9000, name="z", verb="create", rv=50)))
    _events, stats = read([a, b])
    assert stats.clock_skew == {}


def test_an_event_without_a_resource_version_stays_after_what_its_file_wrote_before_it(tmp_path: Path) -> None:
    """Black-box finding: events of one timestamp (v1beta1 logs stamp whole seconds) were ordered by the response's
    resourceVersion, and an event without one (a Metadata-level delete, a binding's Status) counted as 0: a pod's
    delete sorted before its create, and the pod stayed, with fidelity "match"."""
    log = write(tmp_path, "v1beta1.log", jsonl(ev(0, name="other", rv=3), ev(1000, name="p", rv=7),
                                              ev(1000, name="p", verb="delete"), ev(1000, name="q", rv=5)))
    events, _stats = read(log)
    assert [(e["name"], e["verb"]) for e in events] == [("other", "update"), ("q", "update"), ("p", "update"),
                                                         ("p", "delete")]
    # The same across files: a kubelet's status patch (Request level) alone in its file, beside the create of its
    # pod in another (audit-samples khi/container_recorder_test_1_1 and _1_2, one timestamp)
    samples = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "audit-samples" / "khi"
    events = list(read_audit([samples / "container_recorder_test_1_1.yaml",
                              samples / "container_recorder_test_1_2.yaml"][::-1]))
    assert [(e["verb"], e["subresource"]) for e in events] == [("create", ""), ("patch", "status")]


# --- black-box findings of the input side (this stop) ----------------------------------------------------------------


def test_json_lines_whose_first_line_is_the_end_of_a_cut_one_are_read_line_by_line(tmp_path: Path) -> None:
    """Black-box finding: a log split with `split -b` (each piece starts inside a line) was taken for YAML or an
    unknown format: every event of the piece lost (exit 0 among other files). Only the cut line is malformed now,
    also when the cut fell inside a character (the first line is then no UTF-8)."""
    body = jsonl(*(ev(i, name=f"e{i}") for i in range(5)))
    for head in (b'code":201}}\n', b"e}\n", b'"abc"\n', b"\xa9\x81 le\"}}\n"):
        path = write(tmp_path, "piece.log", head + body)
        assert sniff(path) == "jsonl", head
        events, stats = read(path)
        assert [e["name"] for e in events] == [f"e{i}" for i in range(5)] and stats.malformed == 1, head
        assert stats.malformed_examples[0].startswith(f"{path}:1: "), stats.malformed_examples
    assert sniff(write(tmp_path, "yaml.log", "kind: Event\napiVersion: audit.k8s.io/v1\n")) == "yaml"
    # (re-test finding: a YAML stream of JSON-style documents was taken for JSON lines, each `---` malformed)
    flow = write(tmp_path, "flow.yaml", b"".join(b"---\n" + jsonl(ev(i, name=f"f{i}")) for i in range(3)))
    assert sniff(flow) == "yaml" and read(flow, strict=True)[1].events == 3
    for other in (b"hello world\nsecond line\n", b"\xa9\x81\x00\x01"):
        with pytest.raises(InputError):
            sniff(write(tmp_path, "other.log", other))


def test_a_byte_that_is_no_utf8_early_in_a_log_makes_only_its_own_line_malformed(tmp_path: Path) -> None:
    """Black-box finding: one such byte in the first 64 KiB rejected the whole file as binary; further on it made
    its own line malformed. Wherever it falls, it is now the line's."""
    before, after = (jsonl(*(ev(i, name=f"e{i}") for i in names)) for names in (range(4), range(4, 8)))
    path = write(tmp_path, "latin1.log", before + b'{"kind":"Event","user":"caf\xe9"}\n' + after)
    events, stats = read(path)
    assert stats.malformed == 1 and stats.malformed_examples[0].startswith(f"{path}:5: ") and len(events) == 8
    with pytest.raises(InputError, match="binary file"):
        sniff(write(tmp_path, "binary.log", b"\xe9\xe9\xe9 caf\xe9\nmore\n"))
    # Only JSON lines are read so (re-test findings: a YAML file with such a byte lost its documents to "unreadable
    # YAML", a PDF was "unknown format"): anything else holding one stays a binary file.
    with pytest.raises(InputError, match="not UTF-8 text: a byte that is no UTF-8 in a YAML file read whole"):
        sniff(write(tmp_path, "bad.yaml", b"kind: Event\nuser: {username: caf\xe9}\n"))
    with pytest.raises(InputError, match="binary file \\(not UTF-8 text\\)"):
        sniff(write(tmp_path, "fake.pdf", b"%PDF-1.4\n\xe2\xe3"))


@pytest.mark.parametrize("shape", ["array", "eventlist", "records", "entries", "nested"])
def test_a_json_export_cut_short_keeps_its_whole_records(tmp_path: Path, shape: str) -> None:
    """Black-box finding: a GKE array export, an EventList or an AKS `{"records": [...]}` file cut short (a copy, a
    download) lost every event, the whole ones too: exit 3 alone, one malformed line among others."""
    records = [ev(i, name=f"e{i}") for i in range(6)]
    value: Any = {"array": records, "eventlist": {"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                                                 "metadata": {}, "items": records},
                  "records": {"records": [{"category": "kube-audit", "properties": {"log": json.dumps(r)}}
                                          for r in records]},
                  "entries": {"entries": records, "nextPageToken": "x"},  # (Cloud Logging's entries.list)
                  # (re-test finding: a key of that name inside another value was taken for the records')
                  "nested": {"meta": {"items": [1, 2], "records": {"x": 1}}, "kind": "EventList", "items": records},
                  }[shape]
    text = json.dumps(value, indent=2)
    cut = text.index("id-4-e4")  # inside the fifth record
    path = write(tmp_path, f"{shape}.json", text[:cut])
    events, stats = read(path)
    assert [e["name"] for e in events] == ["e0", "e1", "e2", "e3"]
    assert "the 4 whole records before it are read, the rest is lost" in stats.truncated[path]
    broken = write(tmp_path, f"{shape}-garbled.json", text[:cut - 1] + "!!" + text[cut - 1:])
    events, stats = read(broken)
    assert [e["name"] for e in events] == ["e0", "e1", "e2", "e3"] and stats.malformed == 1
    with pytest.raises(InputError, match="the 4 whole records"):
        read(path, strict=True)


def test_firehose_objects_of_envelopes_back_to_back_are_read(tmp_path: Path) -> None:
    """Black-box finding: Kinesis Firehose writes CloudWatch subscription envelopes to S3 back to back, with no
    newline (`{...}{...}`), and such a file was "not an audit log: last line is cut off". Events that lost their
    newlines are read so too; a line with garbage after a whole document stays malformed."""
    def envelope(*names: int) -> bytes:
        return orjson.dumps({"messageType": "DATA_MESSAGE", "logStream": "kube-apiserver-audit-0123",
                             "logEvents": [{"id": str(i), "timestamp": i, "message": orjson.dumps(ev(
                                 i, name=f"e{i}")).decode()} for i in names]})
    for name, data in (("fh", envelope(1, 2) + envelope(3) + b" " + envelope(4)), ("fh-nl", envelope(1, 2)
                       + envelope(3, 4) + b"\n"), ("native", jsonl(ev(1, name="e1"))[:-1] + jsonl(
                           ev(2, name="e2"), ev(3, name="e3"), ev(4, name="e4")))):
        path = write(tmp_path, name, data)
        events, stats = read(path)
        assert [e["name"] for e in events] == ["e1", "e2", "e3", "e4"] and stats.malformed == 0, name
        with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
            f.write(data)
        assert len(read(str(tmp_path / f"{name}.gz"))[0]) == 4
    # A whole event with garbage after it on its line: kept, the rest of the line malformed.
    events, stats = read(write(tmp_path, "junk", jsonl(ev(1, name="e1"))[:-1] + b"junk\n" + jsonl(ev(2, name="e2"))))
    assert [e["name"] for e in events] == ["e1", "e2"] and stats.malformed == 1
    # Re-test findings: a Firehose object cut short lost its whole envelopes too; and the byte prefilter judged a
    # line by its first event (a RequestReceived one), dropping the write after it.
    whole = envelope(1, 2) + envelope(3, 4)
    cut = write(tmp_path, "fh-cut", whole + envelope(5, 6)[:40])
    events, stats = read(cut)
    assert [e["name"] for e in events] == ["e1", "e2", "e3", "e4"] and "after 2 whole document(s)" in stats.truncated[
        cut]
    packed = gzip.compress(whole + envelope(5, 6) * 40)
    events, stats = read(write(tmp_path, "fh-cut.gz", packed[: len(packed) - 20]))
    assert [e["name"] for e in events][:4] == ["e1", "e2", "e3", "e4"] and stats.truncated
    received = ev(1, name="e1", stage="RequestReceived")
    lost_newline = write(tmp_path, "lost-newline", jsonl(received)[:-1] + jsonl(ev(2, name="e2", verb="create")))
    events, stats = read(lost_newline, prefilter=FilterSpec())
    assert [e["name"] for e in events] == ["e1", "e2"]


def test_a_crashs_nul_padding_is_reported_not_dropped(tmp_path: Path) -> None:
    """Black-box finding: NUL bytes a crash left (where lines were lost) were dropped without a word, also with
    --strict; docs/audit.md §2 says they make their lines malformed or cut."""
    body = jsonl(ev(1, name="e1"), ev(2, name="e2"))
    between = write(tmp_path, "between.log", body + b"\x00" * 100 + jsonl(ev(3, name="e3")))
    events, stats = read(between)
    assert [e["name"] for e in events] == ["e1", "e2", "e3"] and stats.malformed == 1
    assert stats.malformed_examples == [f"{between}:3: 100 NUL bytes (a crash's padding: what was written there is "
                                        "lost)"]
    at_end = write(tmp_path, "end.log", body + b"\x00" * 4096)
    events, stats = read(at_end)
    assert len(events) == 2 and "ends in 4096 NUL bytes" in stats.truncated[at_end]
    with pytest.raises(InputError, match="NUL bytes"):
        read(at_end, strict=True)


def test_a_symbolic_link_to_a_missing_file_is_no_such_file(tmp_path: Path) -> None:
    """Black-box finding: named among other files it was skipped with a warning (exit 0), where a missing file is an
    error (a pattern's match that is one stays skipped, as any unusable file a pattern matches: re-test finding);
    and a read the system refused named no file (`--audit /proc/self/mem`: "Input/output error")."""
    import subprocess
    import sys

    (tmp_path / "gone.log").symlink_to(tmp_path / "nowhere.log")
    good = write(tmp_path, "good.log", jsonl(ev(1)))

    def convert(*audit: str) -> subprocess.CompletedProcess[str]:
        out = tmp_path / "out.kws"
        out.unlink(missing_ok=True)
        return subprocess.run([sys.executable, "-m", "kwoksnap", "convert", *(a for p in audit for a in ("--audit", p)),
                               "-o", str(out)], capture_output=True, text=True, check=False)
    proc = convert(str(tmp_path / "gone.log"), good)
    assert proc.returncode == 3 and proc.stderr == (f"kwoksnap: error: {tmp_path / 'gone.log'}: no such file (a "
                                                    "symbolic link to a missing file)\n"), proc.stderr
    proc = convert(str(tmp_path / "*.log"))
    assert proc.returncode == 0 and f"warning: skipped {tmp_path / 'gone.log'}" in proc.stderr, proc.stderr
    with pytest.raises(OSError) as info:
        read("/proc/self/mem")
    assert info.value.filename == "/proc/self/mem"


def test_aks_log_analytics_rows_are_read(tmp_path: Path) -> None:
    """Black-box finding: an export of Log Analytics' AKSAudit/AKSAuditAdmin table (resource-specific diagnostic
    settings; PascalCase columns, `dynamic` ones as JSON strings when the query API returns them) was "not an audit
    record", and an AzureDiagnostics row (`Category`, `log_s`) "properties.log is not a JSON object"."""
    def row(e: dict[str, Any], *, as_strings: bool) -> dict[str, Any]:
        dynamic = ("User", "ObjectRef", "ResponseStatus", "RequestObject", "ResponseObject", "Annotations",
                   "SourceIps")
        columns = {"TimeGenerated": e["stageTimestamp"], "AuditId": e["auditID"], "Level": e["level"],
                   "Stage": e["stage"], "RequestUri": e["requestURI"], "Verb": e["verb"], "User": e["user"],
                   "SourceIps": ["10.0.0.1"], "UserAgent": e["userAgent"], "ObjectRef": e["objectRef"],
                   "ResponseStatus": e["responseStatus"], "RequestObject": "skipped-too-big-size-object",
                   "ResponseObject": e.get("responseObject"), "RequestReceivedTime": e["requestReceivedTimestamp"],
                   "StageReceivedTime": e["stageTimestamp"], "Annotations": {}, "PodName": "kube-apiserver-0",
                   "Type": "AKSAudit", "_ResourceId": "/subscriptions/x"}
        if as_strings:
            columns |= {k: json.dumps(columns[k]) if columns[k] is not None else "" for k in dynamic
                        if columns[k] != "skipped-too-big-size-object"}
        return columns
    records = [ev(i, name=f"e{i}", rv=10 + i) for i in range(3)]
    for as_strings in (False, True):
        path = write(tmp_path, f"aksaudit-{as_strings}.json", json.dumps([row(r, as_strings=as_strings)
                                                                        for r in records], indent=1))
        events, stats = read(path)
        assert [(e["name"], e["user"], resource_version(e), e["request"]) for e in events] == [
            (f"e{i}", "alice", 10 + i, None) for i in range(3)] and stats.formats == {"aks": 3}, as_strings
    diagnostics = [{"TenantId": "t", "TimeGenerated": r["stageTimestamp"], "Category": "kube-audit",
                    "log_s": json.dumps(r), "Type": "AzureDiagnostics"} for r in records]
    diagnostics.append({"Category": "kube-apiserver", "log_s": "I0101 started", "Type": "AzureDiagnostics"})
    events, stats = read(write(tmp_path, "azurediagnostics.json", json.dumps(diagnostics)))
    assert [e["name"] for e in events] == ["e0", "e1", "e2"] and stats.ignored == {"aks-category:kube-apiserver": 1}


def test_files_joined_with_their_byte_order_marks_and_a_gzip_inside_a_gzip(tmp_path: Path) -> None:
    """Black-box findings: `cat a.log b.log` of files that each start with a UTF-8 BOM made the second file's first
    line malformed; a gzip inside a gzip was "binary file (NUL bytes)"."""
    bom = b"\xef\xbb\xbf"
    events, stats = read(write(tmp_path, "joined.log", bom + jsonl(ev(1, name="a")) + bom + jsonl(ev(2, name="b"))))
    assert [e["name"] for e in events] == ["a", "b"] and stats.malformed == 0
    twice = write(tmp_path, "twice.log.gz", gzip.compress(gzip.compress(jsonl(ev(1)))))
    with pytest.raises(InputError, match=r"twice.log.gz: compressed twice \(a gzip inside a gzip\)"):
        read(twice)


def test_the_second_round_of_input_findings(tmp_path: Path) -> None:
    """Re-test findings of this stop's input fixes: a piece of a split log starting with `- ` or `---` (an escaped
    newline of a YAML payload just before the cut) was taken for YAML and lost whole; a second event in another
    layout on a line the prefilter drops was dropped with it; a one-line export cut short kept none of its whole
    records; one whole event and a cut one on a line lost the whole one; a JSON document holding a byte that is no
    UTF-8 was called a binary file."""
    body = jsonl(*(ev(i, name=f"e{i}") for i in range(3)))
    for head in (b'- job_name: b\\n"}}}\n', b'---"}}\n', b'%YAML"}\n'):
        piece = write(tmp_path, "piece.log", head + body)
        assert sniff(piece) == "jsonl", head
        assert len(read(piece)[0]) == 3
    get = ev(1, name="g", verb="get")
    sorted_create = json.dumps(ev(2, name="c", verb="create"), sort_keys=True).encode()
    joined = write(tmp_path, "joined.log", jsonl(get)[:-1] + sorted_create + b"\n")
    events, _ = read(joined, prefilter=FilterSpec())
    assert [e["name"] for e in events] == ["g", "c"]
    records = [ev(i, name=f"r{i}") for i in range(4)]
    one_line = json.dumps({"records": [{"category": "kube-audit", "properties": {"log": json.dumps(r)}}
                                       for r in records]})
    cut = write(tmp_path, "one-line.json", one_line[: one_line.index("r3") - 5])
    events, stats = read(cut)
    assert [e["name"] for e in events] == ["r0", "r1", "r2"] and "the 3 whole records before the cut" in \
        stats.truncated[cut]
    half = write(tmp_path, "half.log", jsonl(ev(1, name="a"))[:-1] + jsonl(ev(2, name="b"))[:50] + b"\n" + jsonl(
        ev(3, name="c")))
    events, stats = read(half)
    assert [e["name"] for e in events] == ["a", "c"] and stats.malformed_examples == [
        f"{half}:1: not valid JSON after 1 whole document(s)"]
    latin1 = write(tmp_path, "export.json", json.dumps([ev(1, name="caf")], indent=2).encode().replace(b"caf",
                                                                                                    b"caf\xe9"))
    with pytest.raises(InputError, match=r"not UTF-8 text: a byte that is no UTF-8 in a JSON file read whole"):
        sniff(latin1)
