"""Audit logs in, normalized and time-sorted events out: the input side of ``kwoksnap replay``.

Why this package exists: kube-apiserver audit logs (and the managed-cloud exports of them) are the only record of
what happened to a cluster between two snapshots. This package reads them robustly and fast (see docs/audit.md),
selects the replayable subset, and classifies who did what. It never talks to a cluster, never imports click, and
never prints or logs request/response bodies.

Public API::

    events = read_audit(["audit.log", "audit-*.log.gz"], stats=stats, strict=False)  # Iterator[AuditEvent]
    kept = filter_events(events, FilterSpec(...), stats)
"""

from kwoksnap.audit.actors import Actor, Classifier, classify, make_classifier, parse_rule
from kwoksnap.audit.events import MUTATING_VERBS, AuditEvent, degraded, resource_version
from kwoksnap.audit.filters import (
    REASONS,
    FilterSpec,
    filter_events,
    make_prefilter,
    skip_reason,
    unmatched_resources,
)
from kwoksnap.audit.patches import PatchType, infer_patch_type
from kwoksnap.audit.reader import (
    DEFAULT_WINDOW_EVENTS,
    DEFAULT_WINDOW_NS,
    events_from_value,
    expand_paths,
    first_copies,
    read_audit,
)
from kwoksnap.audit.stats import ParseStats
from kwoksnap.audit.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "DEFAULT_WINDOW_EVENTS",
    "DEFAULT_WINDOW_NS",
    "MUTATING_VERBS",
    "REASONS",
    "Actor",
    "AuditEvent",
    "Classifier",
    "FilterSpec",
    "ParseStats",
    "PatchType",
    "classify",
    "degraded",
    "events_from_value",
    "expand_paths",
    "filter_events",
    "first_copies",
    "format_timestamp",
    "infer_patch_type",
    "make_classifier",
    "make_prefilter",
    "parse_rule",
    "parse_timestamp",
    "read_audit",
    "resource_version",
    "skip_reason",
    "unmatched_resources",
]
