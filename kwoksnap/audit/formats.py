"""Decoders from every supported audit-record flavour to :class:`~kwoksnap.audit.events.AuditEvent`, and detection.

Why this module exists: the same API request reaches us as a native ``audit.k8s.io/v1`` Event (kube-apiserver's log
or webhook backend, possibly legacy v1beta1 fields), a GKE Cloud Logging ``LogEntry`` (``protoPayload``), an EKS
CloudWatch export (the native JSON as a string in ``message``) or an AKS diagnostic record (``properties.log``).
Files are detected by their *container* (JSON lines, one JSON document, YAML documents; see
:func:`detect_container`); each decoded value is then dispatched by its *keys*, so a file that mixes flavours (as
some SIEM exports do) still reads. The native decoder is the hot path: a dict with an ``auditID`` goes straight to it.

JSON lines of native events take a faster road in two steps. :func:`scan_native` (when the line is read): msgspec
decodes only the fields an :class:`AuditEvent` needs into typed structs (in C, unknown fields skipped, types
checked), the event is built, and its two bodies stay raw bytes. :func:`finish_native` (when the reader hands the
event on, after the reorder window): orjson decodes the bodies, so the window holds raw bytes instead of big decoded
bodies, and one event's decoded bodies are freed before the next one's are made.
``scan_native`` answers ``None`` for anything it cannot decide exactly as :func:`from_native` would, and the caller
then takes the general road (``orjson.loads`` + :func:`decode_value`), which is the one that names the problem. So
both roads give the same events and the same malformed reasons; the fast one only has to be right when it says yes.

Decoders never raise anything but :class:`Malformed` (and its callers count it); they never print, never log, and
never copy request/response bodies into error messages (bodies may hold secrets).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import orjson

from kwoksnap.audit.events import RV_DIGITS, AuditEvent, resource_version_of
from kwoksnap.audit.timestamps import SECOND_CACHE, parse_timestamp

__all__ = [
    "AKS_AUDIT_CATEGORIES",
    "GRPC_TO_HTTP",
    "Ignored",
    "Malformed",
    "decode_value",
    "detect_container",
    "finish_native",
    "from_aks",
    "from_aks_table",
    "from_eks",
    "from_gke",
    "from_native",
    "scan_native",
]


class Malformed(Exception):
    """A value that should be an audit record but is not usable; ``str(err)`` is a short reason without content."""


class Ignored(Exception):
    """A well-formed record that is not an audit event (another AKS category, another CloudWatch stream)."""


_EMPTY: Final[dict[str, Any]] = {}
AKS_AUDIT_CATEGORIES: Final = frozenset({"kube-audit", "kube-audit-admin"})

# google.rpc.Code -> HTTP status, as in google/rpc/code.proto's own mapping table. GKE logs gRPC codes; the HTTP
# code of success is lost (a create shows 200, not 201), which no filter here depends on.
GRPC_TO_HTTP: Final = {
    0: 200,  # OK
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT (also Kubernetes 422 Invalid)
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED (resourceVersion conflicts)
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}

_API_VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d+)?", re.ASCII)


# A CloudWatch Logs export to S3 (EKS): each line is the event's time, a space, then the message (the native event).
_STAMPED: Final = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)? \{")


def detect_container(head: str) -> str:
    """The container syntax of a file from its first characters (BOM already removed).

    ``"json"`` if the text starts with ``{`` or ``[`` (JSON lines, or one JSON document: the reader decides by
    trying the first line), ``"stamped"`` for JSON lines each after a timestamp (a CloudWatch export to S3),
    ``"yaml"`` if the first significant line is a YAML key, document marker or list item, ``""`` if unknown.
    Comment lines (``#``) and blank lines before the content are skipped (licence headers).
    """
    for raw in head.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line[0] in "{[":
            return "json"
        if _STAMPED.match(line):
            return "stamped"
        if line.startswith(("---", "%YAML", "- ")):
            return "yaml"
        key, sep, _ = line.partition(":")
        if sep and key and re.fullmatch(r"['\"]?[A-Za-z_@$][\w.@$/-]*['\"]?", key):
            return "yaml"
        return ""
    return ""


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise Malformed(f"{what} is not a string")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return _EMPTY
    if type(value) is not dict:
        raise Malformed(f"{what} is not an object")
    return value


def _ts(value: Any, what: str) -> int:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise Malformed(f"bad {what}") from None


def _name_from(obj: Any) -> str:
    if type(obj) is dict:
        meta = obj.get("metadata")
        if type(meta) is dict:
            name = meta.get("name")
            if type(name) is str:
                return name
    return ""


def from_native(d: dict[str, Any], source: str) -> AuditEvent:
    """An ``audit.k8s.io/v1`` (or legacy v1beta1) Event. The hot path: flat code, few calls."""
    get = d.get
    ref = get("objectRef") or _EMPTY
    user = get("impersonatedUser") or get("user") or _EMPTY  # the effective identity when impersonating
    status = get("responseStatus") or _EMPTY
    annotations = get("annotations")
    if type(ref) is not dict or type(user) is not dict or type(status) is not dict:
        raise Malformed("objectRef, user or responseStatus is not an object")
    if annotations is None:
        annotations = {}
    elif type(annotations) is not dict:
        raise Malformed("annotations is not an object")
    code = status.get("code", 0)
    if type(code) is not int:
        raise Malformed("responseStatus.code is not an integer")
    groups = user.get("groups")
    if groups is None:
        groups = []
    elif type(groups) is not list:
        raise Malformed("user.groups is not a list of strings")
    stage_text = get("stageTimestamp")
    received_text = get("requestReceivedTimestamp")
    try:
        received = parse_timestamp(received_text) if received_text else 0
        if stage_text:
            ts = parse_timestamp(stage_text)
        elif received:
            ts = received
        else:
            legacy = get("timestamp")
            if not legacy:
                meta = get("metadata")
                legacy = meta.get("creationTimestamp") if type(meta) is dict else None
                if not legacy:
                    raise Malformed("no timestamp")
            ts = parse_timestamp(legacy)
        if not received:
            legacy = get("timestamp")
            received = parse_timestamp(legacy) if legacy else ts
    except ValueError:
        raise Malformed("bad timestamp") from None
    response = get("responseObject")
    strings = (
        get("auditID") or "",
        get("stage") or "",
        get("level") or "",
        get("verb") or "",
        user.get("username") or "",
        get("userAgent") or "",
        ref.get("apiGroup") or "",
        ref.get("apiVersion") or "",
        ref.get("resource") or "",
        ref.get("subresource") or "",
        ref.get("namespace") or "",
        ref.get("name") or _name_from(response),
        get("requestURI") or "",
    )
    try:
        "".join(strings)  # one C-level type check of all string fields (TypeError if any is not a str)
        "".join(groups)
    except TypeError:
        bad = next((k for k, v in zip(_STRING_KEYS, strings, strict=True) if type(v) is not str), "user.groups")
        raise Malformed(f"{bad} is not a string") from None
    auditID, stage, level, verb, username, agent, group, version, resource, subresource, namespace, name, uri = strings
    return {
        "ts": ts,
        "received": received,
        "auditID": auditID,
        "stage": stage,
        "level": level,
        "verb": verb,
        "user": username,
        "groups": groups,
        "userAgent": agent,
        "group": group,
        "version": version,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
        "uri": uri,
        "code": code,
        "request": get("requestObject"),
        "response": response,
        "annotations": annotations,
        "source": source,
    }


_STRING_KEYS: Final = (
    "auditID",
    "stage",
    "level",
    "verb",
    "user.username",
    "userAgent",
    "objectRef.apiGroup",
    "objectRef.apiVersion",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
    "requestURI",
)


# --- the fast road for native JSON lines -----------------------------------------------------------------------------
# Structs hold only what from_native reads; gc=False because they are acyclic and short-lived (as the events are).
# A missing string field and a JSON null both decode to None, which from_native's `or ""` treats alike.


class _User(msgspec.Struct, gc=False):
    username: str | None = None
    groups: list[str] | None = None


class _Ref(msgspec.Struct, gc=False):
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiGroup: str | None = None
    apiVersion: str | None = None
    subresource: str | None = None


class _Status(msgspec.Struct, gc=False):
    code: int = 0


class _Envelope(msgspec.Struct, gc=False):
    auditID: str | msgspec.UnsetType | None = msgspec.UNSET  # UNSET: no auditID key, so not a native event
    level: str | None = None
    stage: str | None = None
    requestURI: str | None = None
    verb: str | None = None
    user: _User | None = None
    impersonatedUser: _User | None = None
    userAgent: str | None = None
    objectRef: _Ref | None = None
    responseStatus: _Status | None = None
    requestObject: msgspec.Raw = msgspec.Raw()  # empty when absent; b"null" decodes to None like a missing body
    responseObject: msgspec.Raw = msgspec.Raw()
    requestReceivedTimestamp: str | None = None
    stageTimestamp: str | None = None
    annotations: dict[str, str] | None = None  # other value types: general road (orjson's numbers differ)


class _Meta(msgspec.Struct, gc=False):
    name: str | None = None
    resourceVersion: str | None = None


class _Head(msgspec.Struct, gc=False):
    """The part of a responseObject needed before its body is decoded: the sort key and the name fallback."""

    metadata: _Meta | None = None


_decode_envelope: Final = msgspec.json.Decoder(_Envelope).decode
_second_of: Final = SECOND_CACHE.get
_decode_head: Final = msgspec.json.Decoder(_Head).decode
_RAW: Final = msgspec.Raw
_NO_USER: Final = _User()
_NO_REF: Final = _Ref()
_NO_META: Final = _Meta()
# orjson decodes integers outside [-2**63, 2**64) as floats, which from_native rejects as a response code.
_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 64) - 1
_GENERAL: Final = (msgspec.DecodeError, ValueError, RecursionError)  # ValueError covers orjson.JSONDecodeError


def scan_native(line: bytes, source: str, eager: bool) -> tuple[int, AuditEvent] | None:
    """``(responseObject resourceVersion, event)`` of one JSON line holding a native Event, or ``None``.

    Unless ``eager``, the event's ``request``/``response`` are still a raw ``msgspec.Raw`` each:
    :func:`finish_native` must decode them before the event leaves the reader. Returns ``None`` whenever the line
    must take the general road instead (``orjson.loads`` + :func:`from_native` or :func:`decode_value`), which then
    decides exactly as before and names any problem:
    - not a JSON object, invalid JSON, a field of another type than from_native accepts silently, no ``auditID``;
    - non-ASCII bytes: msgspec does not check UTF-8 inside the values it skips, orjson rejects bad UTF-8 anywhere;
    - no stage or no received timestamp (legacy v1beta1 fallbacks live in from_native), an epoch-0 received
      timestamp (from_native treats it as missing), a bad timestamp;
    - an impersonatedUser without username and groups (it may be ``{}``, which from_native passes over).
    The sort key and the name fallback come from a partial decode of the response (its ``metadata`` only).
    """
    if not line.isascii():
        return None
    try:
        e = _decode_envelope(line)
        audit_id = e.auditID
        stage_text = e.stageTimestamp
        received_text = e.requestReceivedTimestamp
        if audit_id is msgspec.UNSET or not stage_text or not received_text:
            return None
        # parse_timestamp's fast path, inlined (two per line): the API server's own 27-character form whose second is
        # already cached (a hit implies the first 20 characters were validated). Anything else: parse_timestamp.
        base = _second_of(received_text[:20]) if len(received_text) == 27 and received_text[26] == "Z" else None
        micros = received_text[20:26]
        if base is not None and micros.isdigit() and micros.isascii():
            received = base + int(micros) * 1000
        else:
            received = parse_timestamp(received_text)
        base = _second_of(stage_text[:20]) if len(stage_text) == 27 and stage_text[26] == "Z" else None
        micros = stage_text[20:26]
        if base is not None and micros.isdigit() and micros.isascii():
            ts = base + int(micros) * 1000
        else:
            ts = parse_timestamp(stage_text)
        if not received:
            return None
        user = e.impersonatedUser
        if user is None:
            user = e.user or _NO_USER
        elif user.username is None and user.groups is None:
            return None
        status = e.responseStatus
        code = 0 if status is None else status.code
        if code < _INT_MIN or code > _INT_MAX:
            return None
        request: Any = e.requestObject or None
        response: Any = e.responseObject or None
        if eager and request is not None:
            request = orjson.loads(memoryview(request))
        ref = e.objectRef or _NO_REF
        name = ref.name
        rv = 0
        if response is not None:
            try:
                meta = _decode_head(response).metadata or _NO_META
            except msgspec.ValidationError:  # not an object, or odd metadata: decode it now, as from_native would
                response = orjson.loads(memoryview(response))
                meta = None
            if meta is None:
                name = name or _name_from(response)
                rv = resource_version_of(response)
            else:
                name = name or meta.name
                text = meta.resourceVersion
                if text and text.isdigit() and text.isascii() and len(text) <= RV_DIGITS:  # (resource_version_of's)
                    rv = int(text)
                if eager:
                    response = orjson.loads(memoryview(response))
    except _GENERAL:
        return None
    groups = user.groups
    annotations = e.annotations
    return rv, {
        "ts": ts,
        "received": received,
        "auditID": audit_id or "",
        "stage": e.stage or "",
        "level": e.level or "",
        "verb": e.verb or "",
        "user": user.username or "",
        "groups": [] if groups is None else groups,
        "userAgent": e.userAgent or "",
        "group": ref.apiGroup or "",
        "version": ref.apiVersion or "",
        "resource": ref.resource or "",
        "subresource": ref.subresource or "",
        "namespace": ref.namespace or "",
        "name": name or "",
        "uri": e.requestURI or "",
        "code": code,
        "request": request,
        "response": response,
        "annotations": {} if annotations is None else annotations,
        "source": source,
    }


def finish_native(event: AuditEvent) -> None:
    """Decode the bodies :func:`scan_native` left raw, in place; ``ValueError`` if orjson rejects one (a number
    beyond float range, which msgspec's syntax check accepts), as the general road would have."""
    request = event["request"]
    if type(request) is _RAW:
        event["request"] = orjson.loads(memoryview(request))
    response = event["response"]
    if type(response) is _RAW:
        event["response"] = orjson.loads(memoryview(response))


def _strip_type(body: Any) -> Any:
    if type(body) is dict and "@type" in body:
        return {k: v for k, v in body.items() if k != "@type"}
    return body


def _split_method(method: str) -> tuple[list[str], str, str, str, str]:
    """``io.k8s.core.v1.pods.status.patch`` -> (group parts, version, resource, subresource, verb)."""
    parts = method.split(".")
    if parts[:2] == ["io", "k8s"]:
        parts = parts[2:]
    verb = parts[-1] if parts else ""
    for i, part in enumerate(parts[:-1]):
        if _API_VERSION.fullmatch(part) and i + 1 < len(parts) - 1:
            return parts[:i], part, parts[i + 1], "/".join(parts[i + 2 : -1]), verb
    return [], "", "", "", verb


def from_gke(d: dict[str, Any], source: str) -> AuditEvent:
    """A GKE Cloud Logging ``LogEntry`` whose ``protoPayload`` is a Kubernetes ``AuditLog``.

    Limits (documented in docs/audit.md): no stage (treated as ResponseComplete), no level (inferred from which
    bodies are present), no requestURI (so no dryRun detection), no groups, gRPC status codes mapped to HTTP codes,
    the API group of a dotted group comes from ``resourceName`` when present.
    """
    payload = _dict(d.get("protoPayload"), "protoPayload")
    method = _str(payload.get("methodName"), "protoPayload.methodName")
    service = payload.get("serviceName")
    if service is not None and service != "k8s.io":
        # Another Google Cloud service's audit entry in the same export (Compute Engine deleting a VM): not the
        # Kubernetes API's; it was read as one ("delete core/v1 compute/instances") and failed as not served.
        raise Ignored(f"gcp-service:{service if type(service) is str else '?'}")
    group_parts, version, resource, subresource, verb = _split_method(method)
    group = ".".join(group_parts)
    namespace = name = ""
    resource_name = _str(payload.get("resourceName"), "protoPayload.resourceName")
    segments = resource_name.split("/") if resource_name else []
    if len(segments) >= 3 and _API_VERSION.fullmatch(segments[1]):
        group = segments[0]
        rest = segments[2:]
        if resource != "namespaces" and len(rest) >= 3 and rest[0] == "namespaces":
            namespace = rest[1]
            rest = rest[2:]
        if not resource:
            resource = rest[0]
        if len(rest) >= 2 and rest[0] == resource:
            name = rest[1]
        if resource == "namespaces" and len(rest) >= 2:
            namespace = rest[1]
    if group == "core":
        group = ""
    auth = _dict(payload.get("authenticationInfo"), "protoPayload.authenticationInfo")
    meta = _dict(payload.get("requestMetadata"), "protoPayload.requestMetadata")
    status = _dict(payload.get("status"), "protoPayload.status")
    grpc = status.get("code", 0)
    if type(grpc) is not int:
        raise Malformed("protoPayload.status.code is not an integer")
    request = _strip_type(payload.get("request"))
    response = _strip_type(payload.get("response"))
    stamp = d.get("timestamp") or d.get("receiveTimestamp")
    if not stamp:
        raise Malformed("no timestamp")
    ts = _ts(stamp, "timestamp")
    operation = _dict(d.get("operation"), "operation")
    labels = _dict(d.get("labels"), "labels")
    if response is not None:
        level = "RequestResponse"
    elif request is not None:
        level = "Request"
    else:
        level = "Metadata"
    return {
        "ts": ts,
        "received": ts,
        "auditID": _str(operation.get("id"), "operation.id") or _str(d.get("insertId"), "insertId"),
        "stage": "ResponseComplete",
        "level": level,
        "verb": verb,
        "user": _str(auth.get("principalEmail"), "authenticationInfo.principalEmail"),
        "groups": [],
        "userAgent": _str(meta.get("callerSuppliedUserAgent"), "requestMetadata.callerSuppliedUserAgent"),
        "group": group,
        "version": version,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name or _name_from(response),
        "uri": "",
        "code": GRPC_TO_HTTP.get(grpc, 500),
        "request": request,
        "response": response,
        "annotations": {k: v for k, v in labels.items() if type(v) is str},
        "source": source,
    }


def _embedded(value: Any, what: str) -> dict[str, Any]:
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Malformed(f"{what} is not JSON") from None
    if type(value) is not dict:
        raise Malformed(f"{what} is not a JSON object")
    return value


def from_eks(d: dict[str, Any], source: str) -> AuditEvent:
    """An EKS CloudWatch export line: the native event as a JSON string in ``message`` (or ``@message``)."""
    stream = d.get("logStreamName") or d.get("@logStream")
    if type(stream) is str and "audit" not in stream:
        raise Ignored("eks-stream-not-audit")
    key = "message" if "message" in d else "@message"
    return from_native(_embedded(d.get(key), key), source)


def from_aks(d: dict[str, Any], source: str) -> AuditEvent:
    """An AKS diagnostic record: ``category`` kube-audit(-admin), the native event in ``properties.log``."""
    category = d.get("category") or d.get("Category")
    if category is not None and type(category) is not str:  # (a list is unhashable: it crashed the run)
        raise Malformed(f"category is a {type(category).__name__}, not a string")
    if category is not None and category not in AKS_AUDIT_CATEGORIES:
        raise Ignored(f"aks-category:{category}")
    if "properties" not in d and "log_s" in d:  # a Log Analytics AzureDiagnostics row (`Category`, `log_s`)
        return from_native(_embedded(d["log_s"], "log_s"), source)
    properties = _dict(d.get("properties"), "properties")
    return from_native(_embedded(properties.get("log"), "properties.log"), source)


# The columns of Log Analytics' AKSAudit and AKSAuditAdmin tables (resource-specific diagnostic settings): the
# native event's fields, named in PascalCase, the times under other names.
_AKS_TABLE: Final = {
    "AuditId": "auditID", "Level": "level", "Stage": "stage", "RequestUri": "requestURI", "Verb": "verb",
    "User": "user", "ImpersonatedUser": "impersonatedUser", "SourceIps": "sourceIPs", "UserAgent": "userAgent",
    "ObjectRef": "objectRef", "ResponseStatus": "responseStatus", "RequestObject": "requestObject",
    "ResponseObject": "responseObject", "RequestReceivedTime": "requestReceivedTimestamp",
    "StageReceivedTime": "stageTimestamp", "Annotations": "annotations",
}
_DYNAMIC: Final = frozenset({"user", "impersonatedUser", "sourceIPs", "objectRef", "responseStatus", "requestObject",
                             "responseObject", "annotations"})
_TOO_BIG: Final = "skipped-too-big-size-object"  # what AKS writes for a body it left out


def from_aks_table(d: dict[str, Any], source: str) -> AuditEvent:
    """A row of Log Analytics' ``AKSAudit``/``AKSAuditAdmin`` table (an export of a query, ``az monitor
    log-analytics query``): its columns are the native event's fields; a ``dynamic`` column may come as a JSON
    string, and a body AKS left out as too big is absent (the event is then degraded, as at a lower level)."""
    event: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1"}
    for column, field in _AKS_TABLE.items():
        value = d.get(column)
        if value is None or (value == "" and field in _DYNAMIC):
            continue
        if field in _DYNAMIC and type(value) is str:
            if value == _TOO_BIG:
                continue
            try:  # (its type is from_native's to check, as for a column that came as JSON)
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise Malformed(f"{column} is not JSON") from None
        event[field] = value
    return from_native(event, source)


def decode_value(
    value: Any,
    source: str,
    events: list[tuple[str, AuditEvent]],
    problems: list[tuple[str, str, bool]],
) -> None:
    """Append ``(flavour, event)`` for every audit record in a decoded JSON/YAML value.

    Batches (``EventList``, a JSON array, AKS ``{"records": [...]}``) are flattened with ``#index`` appended to the
    source. Each bad item appends ``(where, reason, ignored)`` to ``problems`` and the others are still decoded.
    """
    if type(value) is list:
        if not value:
            problems.append((source, "empty array", False))
        for i, item in enumerate(value):
            _decode_one(item, f"{source}#{i}", events, problems)
        return
    _decode_one(value, source, events, problems)


def _decode_one(
    value: Any,
    source: str,
    events: list[tuple[str, AuditEvent]],
    problems: list[tuple[str, str, bool]],
) -> None:
    if type(value) is not dict:
        problems.append((source, f"a JSON {_kind(value)}, not an object", False))
        return
    try:
        if "auditID" in value or value.get("kind") == "Event":
            events.append(("native", from_native(value, source)))
            return
        batch = value.get("items") if value.get("kind") == "EventList" else value.get("records")
        if batch is None and "items" in value and "protoPayload" not in value:
            batch = value["items"]
        if batch is None and "entries" in value and "protoPayload" not in value:  # Cloud Logging's entries.list
            batch = value["entries"]
        if batch is None and "message" not in value and "@message" not in value:
            batch = _cloudwatch_batch(value)
        if batch is not None:
            if type(batch) is not list:
                raise Malformed("items/records is not an array")
            for i, item in enumerate(batch):
                _decode_one(item, f"{source}#{i}", events, problems)
            return
        if "protoPayload" in value:
            events.append(("gke", from_gke(value, source)))
        elif "AuditId" in value:
            events.append(("aks", from_aks_table(value, source)))
        elif "textPayload" in value or "jsonPayload" in value:  # Cloud Logging's other entries (a container's log)
            raise Ignored("gcp-not-audit")
        elif "properties" in value or "category" in value or "Category" in value:
            events.append(("aks", from_aks(value, source)))
        elif "message" in value or "@message" in value:
            events.append(("eks", from_eks(value, source)))
        elif isinstance(value.get("kind"), str) and isinstance(value.get("apiVersion"), str) and not value[
                "apiVersion"].startswith("audit.k8s.io/"):  # (an audit Policy is a mistake of another kind)
            # (black-box finding: a kwokctl recording given to --audit was "not an audit record", no more said)
            raise Malformed(f"a {value['kind'][:60]} object, not an audit record (a kwokctl snapshot or recording? "
                            "`kwoksnap import` it, then restore or replay the .kws)")
        else:
            raise Malformed("not an audit record (no auditID, AuditId, protoPayload, message or properties)")
    except Malformed as err:
        problems.append((source, str(err), False))
    except Ignored as why:
        problems.append((source, str(why), True))


def _cloudwatch_batch(value: dict[str, Any]) -> Any:
    """The records of a CloudWatch Logs answer or envelope (EKS), or None: ``aws logs filter-log-events`` and
    ``get-log-events`` output (``events``), a subscription's delivery to Firehose or Lambda (``logEvents``, its
    stream named once beside them), Logs Insights ``get-query-results`` output (``results``: each a list of
    ``{field, value}``)."""
    if "events" in value:
        return value["events"]
    if "logEvents" in value:
        stream = value.get("logStream")
        if type(stream) is str and "audit" not in stream:
            raise Ignored("eks-stream-not-audit")
        return value["logEvents"]
    results = value.get("results")
    if type(results) is list and value.get("status") is not None:
        return [{f["field"]: f.get("value") for f in r if type(f) is dict and type(f.get("field")) is str}
                if type(r) is list else r for r in results]
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is list:
        return "array"
    if type(value) is str:
        return "string"
    if type(value) is bool:
        return "boolean"
    if type(value) in (int, float):
        return "number"
    return type(value).__name__
