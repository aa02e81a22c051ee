"""The fast road for native JSON lines (formats.scan_native/finish_native) against the general road.

The fast road may only say yes when the general road (``orjson.loads`` + ``from_native``) gives the very same event;
otherwise it must say ``None`` and let the general road decide (and name the problem). These tests hold it to that:
field by field on mutated events, and end to end through ``read_audit`` with the fast road switched off.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwoksnap.audit import AuditEvent, FilterSpec, ParseStats, read_audit, resource_version
from kwoksnap.audit import reader as reader_module
from kwoksnap.audit.formats import Malformed, finish_native, from_native, scan_native
from kwoksnap.errors import InputError

BASE: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/ns/pods/p/status",
    "verb": "patch",
    "user": {"username": "system:node:n1", "groups": ["system:nodes"], "uid": "u", "extra": {"k": ["v"]}},
    "sourceIPs": ["10.0.0.1"],
    "userAgent": "kubelet/v1.36",
    "objectRef": {"resource": "pods", "namespace": "ns", "name": "p", "apiVersion": "v1", "subresource": "status"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestObject": {"status": {"phase": "Running"}},
    "responseObject": {"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "42"}},
    "requestReceivedTimestamp": "2026-01-01T00:00:00.000100Z",
    "stageTimestamp": "2026-01-01T00:00:00.000200Z",
    "annotations": {"authorization.k8s.io/decision": "allow"},
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "2026-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z", "2026-01-01 00:00:00.5+01:00"])
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
KEYS = [
    *BASE,
    "impersonatedUser",
    "timestamp",
    "metadata",
    "user.username",
    "user.groups",
    "objectRef.name",
    "objectRef.apiGroup",
    "responseStatus.code",
    "responseObject.metadata",
    "responseObject.metadata.name",
    "responseObject.metadata.resourceVersion",
    "impersonatedUser.username",
]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """BASE with up to four fields (top-level or nested) removed or replaced by arbitrary JSON."""
    event: dict[str, Any] = orjson.loads(orjson.dumps(BASE))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4)):
        *parents, field = key.split(".")
        holder: Any = event
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        if draw(st.booleans()):
            holder.pop(field, None)
        else:
            holder[field] = draw(values)
    return event


def dumps(event: Any, ascii: bool = True) -> bytes:
    """A JSON line (stdlib json: integers beyond 64 bits are written as they are, unlike orjson.dumps)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=ascii).encode()


def general(line: bytes) -> AuditEvent | str | None:
    """What the general road makes of a native line: the event, the malformed reason, or None (not native)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if type(value) is not dict or "auditID" not in value:
        return None
    try:
        return from_native(value, "f:1")
    except Malformed as err:
        return str(err)


def fast(line: bytes, eager: bool) -> tuple[int, AuditEvent] | None:
    scanned = scan_native(line, "f:1", eager)
    if scanned is None:
        return None
    finish_native(scanned[1])
    return scanned


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans(), st.booleans())
def test_fast_road_says_yes_only_for_the_same_event(event: dict[str, Any], eager: bool, ascii: bool) -> None:
    line = dumps(event, ascii)
    got = fast(line, eager)
    if got is None:
        return
    rv, fast_event = got
    expected = general(line)
    assert type(expected) is dict, expected
    assert fast_event == expected
    assert rv == (0 if expected["response"] is None else resource_version(expected))


def test_the_common_shapes_take_the_fast_road() -> None:
    for event in (
        BASE,
        {**BASE, "requestObject": [{"op": "add", "path": "/x", "value": 1}]},  # a JSON patch body is a list
        {k: v for k, v in BASE.items() if k not in ("requestObject", "responseObject", "annotations")},
        {**BASE, "objectRef": {"resource": "pods", "namespace": "ns", "apiVersion": "v1"}},  # name from response
        {**BASE, "impersonatedUser": {"username": "bob", "groups": ["g"]}},
        {**BASE, "responseObject": {"kind": "Status", "metadata": {}, "code": 201}},
        {**BASE, "responseObject": "text"},  # decoded at once: not an object
    ):
        line = dumps(event)
        got = fast(line, False)
        assert got is not None
        assert got[1] == general(line)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"verb":', b'"ver\\u0062":'),  # an escaped key is the same key
        (b'"metadata":{"name":"p"', b'"metad\\u0061ta":{"name":"q"'),
        (b'"phase":"Running"', b'"phase":"Run\\u006eing\\ud83d\\ude00"'),  # escapes in a body (a surrogate pair)
        (b'"code":200', b'"code":200,"code":404'),  # duplicate keys: the last one wins, as in orjson
    ],
)
def test_escapes_and_duplicates_read_the_same(old: bytes, new: bytes) -> None:
    line = dumps(BASE).replace(old, new)
    assert line != dumps(BASE)
    got = fast(line, False)
    expected = general(line)
    assert got is not None and type(expected) is dict
    assert got[1] == expected and got[0] == resource_version(expected)


@pytest.mark.parametrize(
    "event",
    [
        {**BASE, "verb": "p\u00e4tch"},  # non-ASCII: msgspec would not check UTF-8 in skipped values
        {**BASE, "impersonatedUser": {}},  # `{}` is passed over for `user`
        {k: v for k, v in BASE.items() if k != "stageTimestamp"} | {"timestamp": "2026-01-01T00:00:01Z"},  # v1beta1
        {**BASE, "requestReceivedTimestamp": "1970-01-01T00:00:00.000000Z"},  # epoch 0 counts as missing
        {**BASE, "responseStatus": {"code": 2**64}},  # orjson makes it a float: malformed on the general road
        {**BASE, "annotations": {"a": 1}},  # accepted as is by from_native, not a dict[str, str]
        {**BASE, "verb": 0},  # a falsy non-string reads as "" on the general road
        {k: v for k, v in BASE.items() if k != "auditID"},  # not a native event
    ],
)
def test_undecidable_lines_take_the_general_road(event: dict[str, Any]) -> None:
    assert scan_native(dumps(event, ascii=False), "f:1", False) is None


def _read(path: str, **kw: Any) -> tuple[list[AuditEvent], dict[str, Any]]:
    stats = ParseStats()
    events = list(read_audit([path], stats=stats, **kw))
    return events, stats.to_dict()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated() | st.just(BASE), max_size=12), st.booleans(), st.booleans())
def test_read_audit_is_the_same_without_the_fast_road(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]], strict: bool, prefilter: bool
) -> None:
    path = tmp_path_factory.mktemp("fast") / "audit.log"
    path.write_bytes(b"".join(dumps(e, ascii=i % 2 == 0) + b"\n" for i, e in enumerate(events)))
    kw: dict[str, Any] = {"strict": strict, "prefilter": FilterSpec() if prefilter else None, "window_events": 3}

    def outcome() -> Any:
        try:
            return _read(str(path), **kw)
        except InputError as err:
            return str(err)

    with_fast = outcome()
    original = reader_module.scan_native
    reader_module.scan_native = lambda line, source, eager: None  # type: ignore[assignment]
    try:
        without = outcome()
    finally:
        reader_module.scan_native = original
    assert with_fast == without


def test_a_body_beyond_float_range_is_malformed_when_it_leaves_the_window(tmp_path: Path) -> None:
    good = dumps(BASE)
    bad = good.replace(b'"phase":"Running"', b'"phase":1e400').replace(b'"auditID":"a1"', b'"auditID":"a3"')
    path = tmp_path / "a.log"
    other = good.replace(b'"auditID":"a1"', b'"auditID":"a2"')  # (a second copy of one event would be left out)
    path.write_bytes(good + b"\n" + bad + b"\n" + other + b"\n")
    events, stats = _read(str(path))
    assert len(events) == 2 and stats["events"] == 2 and stats["formats"] == {"native": 2}
    assert stats["malformedExamples"] == [f"{path}:2: not valid JSON"]
    with pytest.raises(InputError, match=f"{path}:2: not valid JSON"):
        _read(str(path), strict=True)


def test_a_body_beyond_float_range_in_the_second_of_two_files_is_that_files_malformed_line(tmp_path: Path) -> None:
    good = dumps(BASE)
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(good + b"\n")
    bad = good.replace(b'"phase":"Running"', b'"phase":-1e400').replace(b'"auditID":"a1"', b'"auditID":"b1"')
    second.write_bytes(good.replace(b'"auditID":"a1"', b'"auditID":"b0"') + b"\n" + bad + b"\n")
    stats = ParseStats()
    events = list(read_audit([str(first), str(second)], stats=stats))
    assert sorted(e["auditID"] for e in events) == ["a1", "b0"] and stats.events == 2
    assert stats.malformed_examples == [f"{second}:2: not valid JSON"]


def test_the_reader_lets_an_event_go_when_it_hands_it_on(tmp_path: Path) -> None:
    """The bodies are decoded one event at a time as the stream hands them on, and the reader keeps no reference
    to an event it has handed on (a batch holding hundreds of decoded events halved the parse rate)."""
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(dumps({**BASE, "auditID": f"a{i}", "stageTimestamp": f"2026-01-01T00:00:{i:02}.000200Z"})
                              + b"\n" for i in range(50)))  # (each its own time: see without_copies)
    events = read_audit([str(path)])
    first = next(events)
    assert type(first["response"]) is dict and type(first["request"]) is dict  # decoded, not raw
    second = next(events)
    assert second["auditID"] == "a1"
    assert sys.getrefcount(first) == 2  # this test's name for it, and getrefcount's argument: nothing else
    assert sum(1 for _ in events) == 48


def test_known_difference_a_number_beyond_float_range_in_a_field_not_read(tmp_path: Path) -> None:
    """Documented in docs/audit.md §5: values of fields kwoksnap does not read are syntax-checked, not decoded."""
    line = dumps(BASE).replace(b'"sourceIPs":["10.0.0.1"]', b'"sourceIPs":1e400')
    assert general(line) == "not valid JSON"
    got = fast(line, False)
    assert got is not None and got[1] == from_native(orjson.loads(orjson.dumps(BASE)), "f:1")


def test_a_resource_version_beyond_uint64_sorts_as_none_on_both_roads() -> None:
    """Review finding: the fast road read a resourceVersion of 21 to 4,300 digits as a huge number, the general
    road (capped at 20 digits, a uint64) as none: the same line sorted differently on the two roads."""
    for digits in (20, 21, 400):
        event = {**BASE, "responseObject": {"metadata": {"name": "p", "resourceVersion": "9" * digits}}}
        got = fast(dumps(event, True), True)
        expected = general(dumps(event, True))
        assert got is not None and type(expected) is dict
        assert got[0] == resource_version(expected) == (int("9" * 20) if digits == 20 else 0)
