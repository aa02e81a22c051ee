"""Which audit events a replay needs, and why each other event was dropped.

Why this module exists: a production audit log is mostly reads, lease renewals of other components, failed requests
and resources the replay does not model. The replay subset is decided here once, as data (:class:`FilterSpec`), so
the CLI, the recorder and the byte-level prefilter in the reader agree, and every dropped event is counted under
exactly one reason (the first that applies, in the order of :data:`REASONS`).

It must never look at request/response bodies to decide (levels differ between clusters: a filter that needs a body
would silently drop Metadata-level events instead of reporting them as degraded), and never mutate events.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Final, cast
from urllib.parse import parse_qsl

from kwoksnap.audit.events import MUTATING_VERBS, AuditEvent, degraded
from kwoksnap.audit.stats import ParseStats
from kwoksnap.errors import UsageError
from kwoksnap.kube.builtin import BUILTIN_GROUPS, BUILTIN_RESOURCES

# Replay's own throw-away objects: the scratch pods and ConfigMaps of its write-rate measurement
# (replay/capacity.py) and the node that probes kwok (replay/checks.py). They are in the audit log of every cluster
# a replay was sent to; a log recorded there and replayed again must not send them again as part of the incident.
SCRATCH_NAME_PREFIX: Final = "kwoksnap-capacity-"
PROBE_NAME_PREFIX: Final = "kwoksnap-probe-"

__all__ = [
    "DEFAULT_LEASE_NAMESPACES",
    "DEFAULT_RESOURCES",
    "REASONS",
    "FilterSpec",
    "filter_events",
    "make_prefilter",
    "skip_reason",
    "unmatched_resources",
]

# The order is the precedence: an event is counted under the first reason that applies. Stage, verb and resource
# come first because the byte-level prefilter can decide exactly those three without decoding a line.
REASONS: Final = (
    "not-response-complete",
    "read-only-verb",
    "resource-not-selected",
    "namespace",
    "user-excluded",
    "time-window",
    "dry-run",
    "non-2xx",
    "kwoksnap-scratch",
)

DEFAULT_RESOURCES: Final = frozenset(
    {"nodes", "nodes/status", "pods", "pods/status", "pods/binding", "pods/eviction", "pods/ephemeralcontainers",
     "pods/resize", "leases"}
)
# Node heartbeats live in kube-node-lease; leader-election leases in kube-system belong to the target's own
# components and must not be replayed over them.
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
DEFAULT_LEASE_NAMESPACES: Final = frozenset({NODE_LEASE_NAMESPACE})
OWN_SUBRESOURCES: Final = ("status", "scale")  # what a bare resource entry selects besides the object
LEASE_GROUP: Final = "coordination.k8s.io"

_ENTRY = re.compile(
    r"(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9.-]+)?(/(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?))?", re.ASCII
)


def _frozen(value: Iterable[str] | None, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        raise UsageError(f"{what} must be a collection of strings, not the string {value!r}")
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise UsageError(f"{what}: {item!r} is not a non-empty string")
    return items


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    """What to keep. Collections may be given as any iterable of strings; they are stored as frozensets.

    ``resources``: ``resource``, ``resource/subresource``, optionally ``resource.group[/subresource]`` to pin the
    API group. A resource named without a subresource brings its ``status`` and ``scale`` writes along (a
    Deployment replayed without them would never show its recorded status, nor a ``kubectl scale``), and
    ``namespaces`` its ``finalize`` writes (which end a namespace's deletion). ``*`` is a
    wildcard: ``pods/*`` = every subresource of pods, ``*`` = every resource *and* its subresources, ``*.apps`` =
    everything in the apps group.
    ``namespaces``: empty = all; cluster-scoped objects (nodes) always pass, and so do node leases (a node's lease
    goes with its node). ``exclude_users``: names or globs (``system:serviceaccount:ci:*``).
    ``since_ns``/``until_ns``: the half-open window ``[since, until)`` on ``ts``.
    ``lease_namespaces``: leases are selected only in the ``coordination.k8s.io`` group and in these namespaces
    (empty = any namespace).
    """

    resources: frozenset[str] = DEFAULT_RESOURCES
    namespaces: frozenset[str] = frozenset()
    exclude_users: frozenset[str] = frozenset()
    since_ns: int | None = None
    until_ns: int | None = None
    lease_namespaces: frozenset[str] = DEFAULT_LEASE_NAMESPACES

    def __post_init__(self) -> None:
        for name in ("resources", "namespaces", "exclude_users", "lease_namespaces"):
            object.__setattr__(self, name, _frozen(getattr(self, name), name))
        if not self.resources:
            raise UsageError("resources: select at least one resource")
        for entry in self.resources:
            if not _ENTRY.fullmatch(entry):
                lower = (" (names are lowercase plurals, as `kubectl api-resources` lists them: "
                         f"{entry.lower()!r})") if entry != entry.lower() else ""  # (black-box finding)
                raise UsageError(f"resources: {entry!r} is not resource[.group][/subresource]{lower}")
        for name in ("since_ns", "until_ns"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int):
                raise UsageError(f"{name} must be an integer (ns since the epoch), not {value!r}")
        if self.since_ns is not None and self.until_ns is not None and self.since_ns >= self.until_ns:
            raise UsageError("since must be earlier than until")


@dataclasses.dataclass(frozen=True)
class _Compiled:
    everything: bool
    keys: frozenset[tuple[str, str | None, str]]  # (resource, group or None = any group, subresource)
    builtin_only: frozenset[str]  # names given bare that a built-in group serves: they match built-in groups only
    base_names: frozenset[str] | None  # resource names the prefilter may rely on; None = wildcard somewhere
    namespaces: frozenset[str]
    exact_users: frozenset[str]
    user_globs: re.Pattern[str] | None
    since: int | None
    until: int | None
    lease_namespaces: frozenset[str]


_COMPILED: dict[FilterSpec, _Compiled] = {}


def _compile(spec: FilterSpec) -> _Compiled:
    compiled = _COMPILED.get(spec)
    if compiled is not None:
        return compiled
    keys: set[tuple[str, str | None, str]] = set()
    for entry in spec.resources:
        head, slash, sub = entry.partition("/")
        resource, _, group = head.partition(".")
        keys.add((resource, group or None, sub))
        if not slash and resource != "*":  # the object's own state comes along: status and scale writes
            keys.update((resource, group or None, s) for s in OWN_SUBRESOURCES)
            if resource == "namespaces" and group in ("", "core"):  # the write that ends a namespace's deletion
                keys.add((resource, group or None, "finalize"))
    globs = [u for u in spec.exclude_users if any(c in u for c in "*?[")]
    compiled = _Compiled(
        everything=("*", None, "") in keys,
        keys=frozenset(keys),
        builtin_only=frozenset(k[0] for k in keys if k[1] is None) & BUILTIN_RESOURCES,
        base_names=None if any(k[0] == "*" for k in keys) else frozenset(k[0] for k in keys),
        namespaces=spec.namespaces,
        exact_users=spec.exclude_users - frozenset(globs),
        user_globs=re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None,
        since=spec.since_ns,
        until=spec.until_ns,
        lease_namespaces=spec.lease_namespaces,
    )
    if len(_COMPILED) > 64:
        _COMPILED.clear()
    _COMPILED[spec] = compiled
    return compiled


# Written by the API server itself as it serves other writes: the cluster IP it allocates a Service (an IPAddress
# object per IP) and its service ranges. A wildcard (`*`, `*.networking.k8s.io`) leaves them out: replayed beside
# the Services, an IPAddress could reach the target before its Service and take the IP, and the Service's create
# failed ("provided IP is already allocated"; black-box finding). Named, they are replayed. (save leaves them out
# too: capture/selection.py DEFAULT_DENY.)
NOT_BY_WILDCARD: Final = frozenset({("ipaddresses", "networking.k8s.io"), ("servicecidrs", "networking.k8s.io")})


def _selected(c: _Compiled, event: AuditEvent) -> bool:
    resource = event["resource"]
    if not resource:
        return False  # non-resource URLs (/healthz, discovery)
    if (resource, event["group"]) in NOT_BY_WILDCARD:
        return any((resource, g, event["subresource"]) in c.keys for g in (None, event["group"]))
    if resource == "leases" and (
        event["group"] != LEASE_GROUP or (c.lease_namespaces and event["namespace"] not in c.lease_namespaces)
    ):
        return False
    sub = event["subresource"]
    keys = c.keys
    group = event["group"]
    # (a bare built-in name means the built-in resource: `nodes` is not Longhorn's nodes.longhorn.io)
    any_group = resource not in c.builtin_only or group in BUILTIN_GROUPS
    if c.everything or ((resource, None, sub) in keys and any_group):
        return True
    for r in (resource, "*"):
        for g in (None, group) if any_group or r == "*" else (group,):
            if (r, g, sub) in keys or (sub and (r, g, "*") in keys) or (r == "*" and (r, g, "") in keys):
                return True
    return False


def skip_reason(event: AuditEvent, spec: FilterSpec) -> str | None:
    """The first reason in :data:`REASONS` that drops ``event``, or ``None`` if the replay keeps it."""
    return _reason(_compile(spec), event)


def _reason(c: _Compiled, event: AuditEvent) -> str | None:
    if event["stage"] != "ResponseComplete":
        return "not-response-complete"
    if event["verb"] not in MUTATING_VERBS:
        return "read-only-verb"
    if not _selected(c, event):
        return "resource-not-selected"
    namespace = event["namespace"] if event["resource"] != "namespaces" or event["group"] else event["name"]
    if c.namespaces and namespace and namespace not in c.namespaces and not (
            namespace == NODE_LEASE_NAMESPACE and event["resource"] == "leases" and event["group"] == LEASE_GROUP):
        return "namespace"  # (a node's lease goes with its node, which -n keeps: nodes are cluster-scoped)
    user = event["user"]
    if user in c.exact_users or (c.user_globs is not None and c.user_globs.match(user)):
        return "user-excluded"
    ts = event["ts"]
    if (c.since is not None and ts < c.since) or (c.until is not None and ts >= c.until):
        return "time-window"
    uri = event["uri"]
    if (("dryRun=" in uri or "%" in uri) and _is_dry_run(uri)) or _dry_run_options(event):
        return "dry-run"
    if not 200 <= event["code"] <= 299:
        return "non-2xx"
    name = event["name"]
    if name.startswith("kwoksnap-") and _scratch(name, event["resource"], event["namespace"]):
        return "kwoksnap-scratch"
    return None


_NAMESPACE_SKIPS: Final = frozenset({"resource-not-selected", "user-excluded", "time-window", "dry-run", "non-2xx",
                                     "kwoksnap-scratch"})


def _scratch(name: str, resource: str, namespace: str) -> bool:
    if name.startswith(SCRATCH_NAME_PREFIX):  # the measurement writes in default only
        return resource in ("pods", "configmaps") and namespace == "default"
    if name.startswith(PROBE_NAME_PREFIX):  # the probe node, and the lease a kwok that manages it would give it;
        # the workload controllers' probe ReplicaSet (review finding: replayed with --resources replicasets)
        return resource == "nodes" or (resource == "leases" and namespace == "kube-node-lease") or (
            resource == "replicasets" and namespace == "kube-system")
    return False


def _dry_run_options(event: AuditEvent) -> bool:
    """A delete can ask for a dry run in its DeleteOptions body instead of the query (client-go's DeleteCollection
    does), and an eviction in the DeleteOptions it carries."""
    body = event["request"]
    if type(body) is not dict or (event["verb"] not in ("delete", "deletecollection")
                                  and event["subresource"] != "eviction"):
        return False
    if event["subresource"] == "eviction":
        body = body.get("deleteOptions")
    return type(body) is dict and bool(body.get("dryRun"))


def _is_dry_run(uri: str) -> bool:
    """Whether the query asks for a dry run, its keys decoded as the API server decodes them (``dry%52un=All`` is
    one there: review finding)."""
    _, _, query = uri.partition("?")
    return any(k == "dryRun" and v for k, v in parse_qsl(query, keep_blank_values=True))


def unmatched_resources(entries: Iterable[str], kinds: Iterable[tuple[str, str, str]]) -> list[str]:
    """The ``--resources`` entries that selected none of ``kinds`` (``ParseStats.kept_kinds``): a misspelt name, or
    a resource the log does not hold."""
    kinds = list(kinds)
    out = []
    for entry in entries:
        c = _compile(FilterSpec(resources=frozenset({entry}), lease_namespaces=frozenset()))
        probe = cast(AuditEvent, {"resource": "", "group": "", "subresource": "", "namespace": ""})
        if not any(_selected(c, {**probe, "resource": r, "group": g, "subresource": s}) for r, g, s in kinds):
            out.append(entry)
    return out


def filter_events(
    events: Iterable[AuditEvent], spec: FilterSpec | None = None, stats: ParseStats | None = None
) -> Iterator[AuditEvent]:
    """Yield the events a replay needs, counting every other one in ``stats.skipped`` under its reason.

    ``-n`` keeps a Namespace's own events by its name. A Namespace's events leave with no namespace (see below).

    Kept events that lost their bodies to the audit level are still yielded and counted in ``stats.degraded``.
    """
    c = _compile(spec if spec is not None else FilterSpec())
    stats = stats if stats is not None else ParseStats()
    skipped = stats.skipped
    namespaces = stats.kept_namespaces if c.namespaces else None
    for event in events:
        reason = _reason(c, event)
        if reason is not None:
            skipped[reason] += 1
            if reason == "time-window":
                span, ts = stats.outside_window, event["ts"]
                if not span:
                    span += (ts, ts)
                elif ts < span[0]:
                    span[0] = ts
                elif ts > span[1]:
                    span[1] = ts
            if namespaces is not None and reason in _NAMESPACE_SKIPS:  # (a -n namespace's events, left out by others)
                ns = event["name"] if event["resource"] == "namespaces" and not event["group"] else event["namespace"]
                if ns in c.namespaces:
                    stats.namespace_skips.setdefault(ns, Counter())[reason] += 1
            continue
        if event["resource"] == "namespaces" and event["namespace"] and not event["group"]:
            # The API server fills objectRef.namespace from the URL: a namespace's create (POST /namespaces) has
            # none, its later writes (/namespaces/NAME) their own name. One object, one key (it is cluster-scoped).
            event["namespace"] = ""
        stats.kept += 1
        stats.kept_kinds.add((event["resource"], event["group"], event["subresource"]))
        if namespaces is not None:  # a namespace's own create or delete (cluster-scoped) counts for it too
            namespaces.add(event["name"] if event["resource"] == "namespaces" else event["namespace"])
        if degraded(event):
            stats.degraded[event["level"]] += 1
        yield event


# --- byte-level prefilter ------------------------------------------------------------------------------------------

# kube-apiserver's log backend serialises audit.k8s.io/v1 Events with Go's encoding/json, in struct field order:
# kind, apiVersion, level, auditID, stage, requestURI, verb, user{...}, impersonatedUser, authenticationMetadata,
# sourceIPs, userAgent, objectRef{resource, ...}, ... Every field before `verb` is a string, so in a line with this
# exact prefix the first `"stage":"` and `"verb":"` are the top-level ones (a quote inside a JSON string is always
# escaped, so the pattern cannot occur inside a value), and between `verb` and `objectRef` only strings and string
# arrays appear. Lines in any other layout (sorted keys, v1beta1, wrappers) are simply decoded in full.
_CANONICAL = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"'
# Past a canonical line's own "auditID" key (the level's value is at most 15 characters before it)
_SECOND_EVENT_FROM = len(_CANONICAL) + len('RequestResponse","auditID"')
_STAGE = b'"stage":"'
_VERB = b'"verb":"'
_OBJREF = b'"objectRef":{"resource":"'


def make_prefilter(spec: FilterSpec) -> Callable[[bytes], str | None]:
    """A function ``line -> reason | None`` that drops lines the full filter would drop, without decoding them.

    Exact (never drops a line the full filter keeps, and picks the same reason) for canonical native lines; returns
    ``None`` ("decode it") for everything else. Lines it drops are not validated, so a broken line that still shows
    a RequestReceived stage is counted as skipped rather than malformed.
    """
    compiled = _compile(spec)
    base_names = compiled.base_names
    mutating = frozenset(v.encode() for v in MUTATING_VERBS)
    names = frozenset(n.encode() for n in base_names) if base_names is not None else None
    # ObjectReference's fields are (resource, namespace, ...): a lease outside the lease namespaces is decided too.
    lease_ns = b'leases","namespace":"'
    lease_namespaces = frozenset(n.encode() for n in compiled.lease_namespaces)

    def prefilter(line: bytes) -> str | None:
        reason = judged(line)  # (the first event of a line that holds another after it does not decide for both:
        # events a writer lost the newlines of; re-test findings. Another `auditID` past the first event's own,
        # native, v1beta1 or in an EKS/AKS wrapper's string, leaves the line to the decoder; a mention of the word
        # in a body costs only a decode. A `}{` search cost 1.4 us a line: `}` is everywhere.)
        return reason if reason is None or line.find(b"auditID", _SECOND_EVENT_FROM) < 0 else None

    def judged(line: bytes) -> str | None:
        if not line.startswith(_CANONICAL):
            return None
        i = line.find(_STAGE, len(_CANONICAL))
        if i < 0:
            return None
        i += len(_STAGE)
        if not line.startswith(b'ResponseComplete"', i):
            return "not-response-complete"
        j = line.find(_VERB, i)
        if j < 0:
            return None
        j += len(_VERB)
        verb = line[j : line.find(b'"', j)]
        if verb not in mutating:
            return "read-only-verb"
        if names is None:
            return None
        k = line.find(_OBJREF, j)
        if k < 0:
            return None
        k += len(_OBJREF)
        end = line.find(b'"', k)
        resource = line[k:end]
        if resource not in names:
            return "resource-not-selected"
        if lease_namespaces and resource == b"leases" and line.startswith(lease_ns, k):
            k += len(lease_ns)
            if line[k : line.find(b'"', k)] not in lease_namespaces:
                return "resource-not-selected"
        return None

    return prefilter
