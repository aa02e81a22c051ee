"""Property tests: whatever bytes a file holds, only InputError escapes in strict mode and nothing in lenient mode.

Lenient mode raises InputError only when *no* file is usable (documented), so the lenient property is checked with
one good file beside the random one.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwoksnap.audit import (
    AuditEvent,
    FilterSpec,
    ParseStats,
    classify,
    degraded,
    filter_events,
    infer_patch_type,
    read_audit,
)
from kwoksnap.errors import InputError

GOOD = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "good",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/ns/pods/p/status?fieldManager=x",
    "verb": "patch",
    "user": {"username": "system:node:n1", "groups": ["system:nodes"]},
    "userAgent": "kubelet",
    "objectRef": {"resource": "pods", "namespace": "ns", "name": "p", "apiVersion": "v1", "subresource": "status"},
    "responseStatus": {"code": 200},
    "requestObject": {"status": {"$setElementOrder/conditions": []}},
    "responseObject": {"metadata": {"name": "p", "resourceVersion": "7"}},
    "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
    "stageTimestamp": "2026-01-01T00:00:00.000100Z",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

KEYS = [*GOOD, "objectRef.name", "objectRef.resource", "user.username", "user.groups", "responseStatus.code"]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with some fields (top-level or nested) replaced by arbitrary JSON or removed."""
    event: dict[str, Any] = orjson.loads(orjson.dumps(GOOD))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        target, _, sub = key.partition(".")
        holder, field = (event, target) if not sub else (event.get(target), sub)
        if not isinstance(holder, dict):
            continue
        if draw(st.booleans()):
            holder.pop(field, None)
        else:
            holder[field] = draw(json_values)
    return event


def _line(value: Any) -> bytes:
    return orjson.dumps(value)


lines = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(str.encode),
    json_values.map(_line),
    mutated_events().map(_line),
    st.lists(mutated_events(), max_size=3).map(lambda items: _line({"kind": "EventList", "items": items})),
    mutated_events().map(lambda e: _line({"message": orjson.dumps(e).decode(), "logStreamName": "x-audit"})),
    mutated_events().map(lambda e: _line({"category": "kube-audit", "properties": {"log": e}})),
    json_values.map(lambda v: _line({"protoPayload": {"methodName": "io.k8s.core.v1.pods.patch", "request": v}})),
)


@st.composite
def file_contents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "lines", "yaml", "gzip"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    body = b"\n".join(draw(st.lists(lines, max_size=12)))
    if kind == "yaml":
        docs = draw(st.lists(mutated_events() | json_values, max_size=4))
        body = yaml.safe_dump_all(docs).encode() + draw(st.binary(max_size=20))
    if kind == "gzip":
        packed = gzip.compress(body)
        return packed[: draw(st.integers(min_value=0, max_value=len(packed)))]
    return body


@contextmanager
def _files(data: bytes) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        fuzz, good = os.path.join(tmp, "fuzz.log"), os.path.join(tmp, "good.log")
        with open(fuzz, "wb") as f:
            f.write(data)
        with open(good, "wb") as f:
            f.write(orjson.dumps(GOOD) + b"\n")
        yield fuzz, good


def _check(events: list[AuditEvent], stats: ParseStats) -> None:
    for event in events:
        assert set(event) == set(AuditEvent.__annotations__)
        assert type(event["ts"]) is int and type(event["code"]) is int and type(event["groups"]) is list
        strings = (event["auditID"], event["verb"], event["user"], event["resource"], event["name"], event["uri"])
        assert all(type(v) is str for v in strings)
        msgpack.packb(event)  # serialisable as recorded
        classify(event["user"], event["groups"], event["userAgent"])
        degraded(event)
        if event["verb"] == "patch":
            infer_patch_type(event)
    list(filter_events(events, FilterSpec(), stats))
    orjson.dumps(stats.to_dict())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_contents())
def test_strict_raises_only_input_error(data: bytes) -> None:
    with _files(data) as (fuzz, _):
        stats = ParseStats()
        try:
            events = list(read_audit([fuzz], stats=stats, strict=True))
        except InputError:
            return
        assert stats.malformed == 0 and not stats.truncated
        _check(events, stats)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_contents(), st.booleans())
def test_lenient_never_raises(data: bytes, prefilter: bool) -> None:
    with _files(data) as (fuzz, good):
        stats = ParseStats()
        spec = FilterSpec() if prefilter else None
        events = list(read_audit([fuzz, good], stats=stats, prefilter=spec, window_events=2))
        assert any(e["auditID"] == "good" for e in events)
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events) or stats.late > 0
        _check(events, stats)
