"""The one normalized shape of an audit event, whatever log format it came from, and the level helpers.

Why this module exists: native ``audit.k8s.io/v1`` lines, legacy v1beta1 lines, GKE ``LogEntry`` records, EKS
CloudWatch exports and AKS diagnostics all describe the same request differently. Every later stage (filters,
recordings, replay) reads only :class:`AuditEvent`, a plain ``dict`` with string keys and JSON/msgpack-friendly
values, so that it can be stored in a .kws recording unchanged and custom resources need no model classes.

It must never hold ``datetime`` objects, bytes, tuples or non-string keys (they do not survive msgpack/JSON), and it
must never keep fields the replay does not need (the source IPs, the user's ``extra`` credentials).
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

__all__ = [
    "LEVELS",
    "MUTATING_VERBS",
    "STAGES",
    "AuditEvent",
    "degraded",
    "parse_resource_version",
    "resource_version",
    "resource_version_of",
]


class AuditEvent(TypedDict):
    """A normalized audit event. Every key is always present; missing strings are ``""``."""

    ts: int  # ns since epoch: stageTimestamp, else requestReceivedTimestamp, else legacy `timestamp`
    received: int  # ns since epoch: requestReceivedTimestamp, else `timestamp`, else ts
    auditID: str
    stage: str  # RequestReceived | ResponseStarted | ResponseComplete | Panic
    level: str  # Metadata | Request | RequestResponse ("" if unknown)
    verb: str  # get list watch create update patch delete deletecollection (and proxy, ...)
    user: str
    groups: list[str]
    userAgent: str
    group: str  # API group, "" for the core group
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str  # from objectRef, else responseObject.metadata.name (generateName creates)
    uri: str  # requestURI as recorded ("" for formats that do not record it, e.g. GKE)
    code: int  # HTTP status code, 0 if not recorded
    request: Any  # requestObject (dict, or a list for JSON patches) or None
    response: Any  # responseObject or None
    annotations: dict[str, str]
    source: str  # "file:line" (plus "#index" when one line/document carries several events)


MUTATING_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
STAGES: Final = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
LEVELS: Final = ("None", "Metadata", "Request", "RequestResponse")


def degraded(event: AuditEvent) -> bool:
    """True when the event cannot be replayed as recorded because its level dropped the body we need.

    Metadata level has no bodies at all; Request level has the request but not the resulting object (the replay
    must then apply the request itself, e.g. a kubelet status patch, and hope the target state matches).
    """
    level = event["level"]
    return level == "Metadata" or (level == "Request" and event["response"] is None)


RV_DIGITS: Final = 20  # a resourceVersion is a uint64; a longer one sorts as none (int() refuses 4,300+ digits)


def resource_version(event: AuditEvent) -> int:
    """responseObject ``metadata.resourceVersion`` as an int (0 if absent or not a number): the tie-breaker."""
    return resource_version_of(event["response"])


def resource_version_of(response: Any) -> int:
    """``metadata.resourceVersion`` of a decoded responseObject as an int (0 if absent or not a number)."""
    if type(response) is dict:
        meta = response.get("metadata")
        if type(meta) is dict:
            return parse_resource_version(meta.get("resourceVersion"))
    return 0


def parse_resource_version(rv: Any) -> int:
    """A resourceVersion as the number it is (etcd's revision), 0 if it is not one."""
    if type(rv) is str and rv.isdigit() and rv.isascii() and len(rv) <= RV_DIGITS:
        return int(rv)
    return 0
