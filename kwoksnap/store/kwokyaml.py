"""Convert between kwoksnap records and kwokctl's ``--format k8s`` YAML snapshots/recordings (files only).

Why this module exists: users already hold kwokctl snapshots (``kwokctl snapshot save --format k8s``) and
recordings (``kwokctl snapshot export [--record]``), and want kwoksnap snapshots usable by kwokctl. The shapes follow
kwok v0.8.0's source (pkg/kwokctl/snapshot, pkg/kwokctl/recording, pkg/apis/action/v1alpha1):

* a stream of ``---``-separated documents, each a Kubernetes object with ``metadata.resourceVersion`` cleared
  (kwok keeps ``uid``: its loader matches ``ownerReferences`` by uid to re-link owners; it keeps managedFields);
  ``kind: *List`` documents are expanded; empty documents are skipped;
* then, for recordings, ``action.kwok.x-k8s.io/v1alpha1`` ``ResourcePatch`` documents: ``resource`` {group,
  version, resource}, ``target`` {name, namespace}, ``durationNanosecond`` since the start of the recording,
  ``method`` create|patch|delete and ``template`` (the object for create, a strategic merge patch for patch);
* ``snapshot export`` rewrites every RFC 3339 time in the text as ``$(time-offset-nanosecond N)`` relative to its
  start; ``.gz`` files are gzip-compressed.

The record mapping is in docs/format.md ("kwokctl YAML interop"). This module must never talk to a cluster,
and never hold more than one document in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final, Protocol

import yaml

from kwoksnap.errors import REFUSALS, FormatError, InputError
from kwoksnap.store.atomic import atomic_output

RESOURCE_PATCH_API_VERSION = "action.kwok.x-k8s.io/v1alpha1"
RESOURCE_PATCH_KIND = "ResourcePatch"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
METHODS = ("create", "patch", "delete")

# (group, Kind) -> (plural resource, namespaced). Irregular plurals (Endpoints) and scope come from here; other
# kinds fall back to :func:`guess_plural` and to "namespaced if the object has a namespace".
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Binding"): ("bindings", True),
    ("", "ConfigMap"): ("configmaps", True),
    ("", "Endpoints"): ("endpoints", True),
    ("", "Event"): ("events", True),
    ("", "LimitRange"): ("limitranges", True),
    ("", "Namespace"): ("namespaces", False),
    ("", "Node"): ("nodes", False),
    ("", "PersistentVolume"): ("persistentvolumes", False),
    ("", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("", "Pod"): ("pods", True),
    ("", "PodTemplate"): ("podtemplates", True),
    ("", "ReplicationController"): ("replicationcontrollers", True),
    ("", "ResourceQuota"): ("resourcequotas", True),
    ("", "Secret"): ("secrets", True),
    ("", "Service"): ("services", True),
    ("", "ServiceAccount"): ("serviceaccounts", True),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): ("mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): ("validatingadmissionpolicies", False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (
        "validatingadmissionpolicybindings",
        False,
    ),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): ("validatingwebhookconfigurations", False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("apiregistration.k8s.io", "APIService"): ("apiservices", False),
    ("apps", "ControllerRevision"): ("controllerrevisions", True),
    ("apps", "DaemonSet"): ("daemonsets", True),
    ("apps", "Deployment"): ("deployments", True),
    ("apps", "ReplicaSet"): ("replicasets", True),
    ("apps", "StatefulSet"): ("statefulsets", True),
    ("autoscaling", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("batch", "CronJob"): ("cronjobs", True),
    ("batch", "Job"): ("jobs", True),
    ("certificates.k8s.io", "CertificateSigningRequest"): ("certificatesigningrequests", False),
    ("coordination.k8s.io", "Lease"): ("leases", True),
    ("discovery.k8s.io", "EndpointSlice"): ("endpointslices", True),
    ("events.k8s.io", "Event"): ("events", True),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): ("flowschemas", False),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): ("prioritylevelconfigurations", False),
    ("networking.k8s.io", "Ingress"): ("ingresses", True),
    ("networking.k8s.io", "IngressClass"): ("ingressclasses", False),
    ("networking.k8s.io", "NetworkPolicy"): ("networkpolicies", True),
    ("node.k8s.io", "RuntimeClass"): ("runtimeclasses", False),
    ("policy", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("resource.k8s.io", "DeviceClass"): ("deviceclasses", False),
    ("resource.k8s.io", "ResourceClaim"): ("resourceclaims", True),
    ("resource.k8s.io", "ResourceClaimTemplate"): ("resourceclaimtemplates", True),
    ("resource.k8s.io", "ResourceSlice"): ("resourceslices", False),
    ("scheduling.k8s.io", "PriorityClass"): ("priorityclasses", False),
    ("storage.k8s.io", "CSIDriver"): ("csidrivers", False),
    ("storage.k8s.io", "CSINode"): ("csinodes", False),
    ("storage.k8s.io", "CSIStorageCapacity"): ("csistoragecapacities", True),
    ("storage.k8s.io", "StorageClass"): ("storageclasses", False),
    ("storage.k8s.io", "VolumeAttachment"): ("volumeattachments", False),
    ("kwok.x-k8s.io", "Stage"): ("stages", False),
}
_KIND_BY_PLURAL = {(group, plural): kind for (group, kind), (plural, _) in KINDS.items()}

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")  # kwok's own regex
_OFFSET_RE = re.compile(r"\$\(time-offset-nanosecond (-?\d+)\)")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- naming -------------------------------------------------------------------------------------------------------


def guess_plural(kind: str) -> str:
    """English plural of a lower-cased kind: -s/-x/-z/-ch/-sh take -es, consonant+y takes -ies, others -s.

    (Kubernetes' own ``UnsafeGuessKindToResource`` turns every final y into -ies, e.g. "gatewaies"; the rule above
    gives the names CRDs actually use, e.g. "gateways", "networkpolicies".)
    """
    name = kind.lower()
    if not name:
        return name
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and len(name) > 1 and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def resource_for(api_version: str, kind: str, kinds: Mapping[tuple[str, str], tuple[str, bool]] = KINDS) -> str:
    """The kwoksnap resource name (``"v1/pods"``, ``"apps/v1/deployments"``) of objects of ``apiVersion``/``kind``;
    ``kinds`` maps (group, Kind) to (plural, namespaced), e.g. :data:`KINDS` plus what CRDs say (:func:`crd_kinds`).
    """
    group, version = split_api_version(api_version)
    plural = kinds.get((group, kind), (guess_plural(kind), True))[0]
    return f"{group}/{version}/{plural}" if group else f"{version}/{plural}"


def crd_kinds(obj: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, bool]]:
    """(group, Kind) -> (plural, namespaced) of the custom resource a CustomResourceDefinition object defines
    (empty for any other object, or a CRD without group, kind or plural): the CRD's own names, not a guess
    (``Leaf`` -> ``leaves``, not ``leafs``)."""
    if obj.get("kind") != "CustomResourceDefinition" or split_api_version(str(obj.get("apiVersion", "")))[0] != (
            "apiextensions.k8s.io"):
        return {}
    spec = obj.get("spec")
    names = spec.get("names") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(names, dict):
        return {}
    group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
    if not (isinstance(group, str) and group and isinstance(kind, str) and kind and isinstance(plural, str)
            and plural):
        return {}
    return {(group, kind): (plural, spec.get("scope") != "Cluster")}


_KIND: Final = re.compile(r"[A-Za-z](?:[-A-Za-z0-9]*[A-Za-z0-9])?")  # (a DNS-1035 label once lowercased)


def split_resource(resource: str) -> tuple[str, str, str]:
    """``"apps/v1/deployments"`` -> ``("apps", "v1", "deployments")``; ``"v1/pods"`` -> ``("", "v1", "pods")``."""
    parts = resource.split("/")
    if len(parts) == 2 and all(parts):
        return "", parts[0], parts[1]
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
    raise InputError(f"resource {resource!r} is not 'version/plural' or 'group/version/plural'")


# -- times --------------------------------------------------------------------------------------------------------


def format_micro_time(ns: int) -> str:
    """``ns`` since the epoch as kwok writes times back (Go's RFC3339Micro, UTC)."""
    return (_EPOCH + dt.timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time (microsecond precision), or None if it does not parse."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def resolve_time_offsets(value: Any, base_time_ns: int) -> Any:
    """Replace every ``$(time-offset-nanosecond N)`` in the strings of ``value`` by the time ``base + N``.

    This is what kwokctl does when it replays an exported recording; returns a new value (dicts/lists copied).
    A time before year 1 or after 9999 is a ValueError.
    """
    if isinstance(value, str):
        if "$(time-offset-nanosecond" not in value:
            return value
        return _OFFSET_RE.sub(lambda m: _offset_time(base_time_ns, m.group(1)), value)
    if isinstance(value, dict):
        return {k: resolve_time_offsets(v, base_time_ns) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_time_offsets(v, base_time_ns) for v in value]
    return value


def _offset_time(base_time_ns: int, offset: str) -> str:
    try:
        return format_micro_time(base_time_ns + int(offset))
    except (OverflowError, ValueError):
        raise ValueError(f"$(time-offset-nanosecond {offset}) is no time between the years 1 and 9999") from None


def _relative_times(text: str, base_time_ns: int) -> str:
    def repl(m: re.Match[str]) -> str:
        ns = parse_time_ns(m.group(0))
        return m.group(0) if ns is None else f"$(time-offset-nanosecond {ns - base_time_ns})"

    return _TIME_RE.sub(repl, text)


# -- YAML loading -------------------------------------------------------------------------------------------------

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """YAML 1.1 like sigs.k8s.io/yaml, but times stay strings and map keys are always strings (JSON semantics)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Keys become strings before they meet in a dict: in Python 1 == True, so {1: a, true: b} would collide.
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                )
            mapping[_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Base.construct_yaml_str)
# Plain values that YAML 1.1 gives a tag of its own, which Go's YAML (kwokctl) writes unquoted as the strings they
# are: `=` (the "value" key), `<<` as a value (a merge key only as a key), base-60 numbers (`12:30`, which Go's YAML
# does not know), and numbers beyond int64/uint64 or float64 (Go parses them as neither, so they are strings; PyYAML
# made them ints msgpack cannot store, or inf).
_Loader.add_constructor("tag:yaml.org,2002:value", _Base.construct_yaml_str)
_Loader.add_constructor("tag:yaml.org,2002:merge", _Base.construct_yaml_str)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    if ":" in str(node.value):
        return str(node.value)
    try:
        value = _Base.construct_yaml_int(loader, node)
    except ValueError:  # beyond Python's 4,300 digits: a string like any number beyond uint64
        return str(node.value)
    return value if -(1 << 63) <= value < (1 << 64) else str(node.value)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float | str:
    if ":" in str(node.value):
        return str(node.value)
    value = _Base.construct_yaml_float(loader, node)
    return str(node.value) if math.isinf(value) and "inf" not in str(node.value).lower() else value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _construct_binary(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """``!!binary``: the text it encodes, as Go's YAML gives it (a string); bytes would pass as no JSON value."""
    data = _Base.construct_yaml_binary(loader, node)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise yaml.constructor.ConstructorError(
            None, None, "a !!binary value that is not UTF-8 text has no JSON form", node.start_mark) from None


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"{node.tag.rsplit(':', 1)[-1]} (an explicit YAML tag) has no JSON form", node.start_mark)


def json_semantics(loader: type[Any]) -> None:
    """Make ``loader`` give only JSON values for YAML's explicit tags: ``!!binary`` as its text, ``!!set``,
    ``!!omap`` and ``!!pairs`` refused (a set, tuples or bytes in a document broke diff, restore and the audit
    event shape later, as internal errors)."""
    loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
    for tag in ("set", "omap", "pairs"):
        loader.add_constructor(f"tag:yaml.org,2002:{tag}", _refuse)


json_semantics(_Loader)


def _open_text(path: Path) -> IO[str]:
    """Open a YAML file as text, gunzipping it if it starts with the gzip magic (whatever its suffix)."""
    try:
        if not path.is_file() and path.exists():  # a pipe: the probe below would eat its first bytes
            raise InputError(f"{path}: a pipe or device, not a file: save it to a file first")
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        if gzipped:
            return gzip.open(path, "rt", encoding="utf-8")
        return open(path, encoding="utf-8")
    except OSError as exc:
        if exc.errno in REFUSALS:  # no permission: the system's refusal (exit 7), not a bad file
            raise
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from exc


# A document may reuse a node through YAML aliases (`*name`), as sigs.k8s.io/yaml allows; expanded, it may hold at
# most this many nodes beyond ten times its distinct ones (a "billion laughs" of 1 KB expands to 10**9, and a
# self-referencing alias never ends).
_ALIAS_ALLOWANCE = 100_000


def _check_aliasing(root: yaml.Node, name: str, number: int) -> None:
    """Refuse a document whose aliases expand it far beyond its own size, before anything is built from it."""
    if aliases_blow_up(root):
        raise FormatError("YAML aliases expand it beyond any object's size (or refer to themselves)", path=name,
                          where=f"document {number}")


def aliases_blow_up(root: yaml.Node, allowance: int = _ALIAS_ALLOWANCE) -> bool:
    """Whether a YAML document's aliases expand it far beyond its own size (a "billion laughs": a few hundred bytes
    that build gigabytes): over ten times its nodes plus ``allowance``, judged on its node graph, in time bounded by
    the document's own size."""
    distinct: set[int] = set()
    expanded = 0
    stack = [root]
    while stack:
        node = stack.pop()
        expanded += 1
        distinct.add(id(node))
        if expanded > 10 * len(distinct) + allowance:
            return True
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
    return False


class _Tracked:
    """A text stream that remembers whether it was read to its end, and the last character it gave."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.ended, self.last, self.chars = stream, False, "", 0

    def read(self, size: int = -1) -> str:
        data = self.stream.read(size)
        if data:
            self.last = data[-1]
            self.chars += len(data)
        else:
            self.ended = True
        return data

    def close(self) -> None:
        self.stream.close()


class _CutShort(FormatError):
    """Invalid YAML met at the very end of the file: its last document was cut short (a recorder killed while it
    wrote)."""

    def __init__(self, problem: str, *, path: str, where: str, number: int) -> None:
        super().__init__(f"not valid YAML: {problem}", path=path, where=where)
        self.problem, self.number = problem, number


def _documents(path: Path, tracked: _Tracked | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield (document number, first line, data) for every YAML document, streaming. Invalid YAML at the end of the
    file is a :class:`_CutShort`."""
    name = str(path)
    stream = _Tracked(_open_text(path)) if tracked is None else tracked
    number = reading = 0
    line = 1
    try:
        loader = _Loader(stream)
        try:
            while (reading := number + 1) and loader.check_node():
                number = reading
                node = loader.get_node()
                line = node.start_mark.line + 1 if node is not None else line
                if node is not None:
                    _check_aliasing(node, name, number)
                yield number, line, loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}" if mark is not None else f"document {number}"
        problem = exc.problem or exc.context or "invalid YAML"
        if stream.ended and exc.problem_mark is not None and exc.problem_mark.index >= stream.chars - 1:
            raise _CutShort(problem, path=name, where=at, number=reading) from None
        raise FormatError(f"not valid YAML: {problem}", path=name, where=at) from None
    except yaml.YAMLError as exc:  # (a ReaderError: a character YAML refuses; its str says where on a second line)
        position = getattr(exc, "position", None)
        where = f"character {position + 1}" if isinstance(position, int) else f"document {max(number, 1)}"
        raise FormatError(f"not valid YAML: {str(exc).splitlines()[0]}", path=name, where=where) from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise FormatError(f"not a YAML text file: {exc}", path=name, where=f"document {max(number, 1)}") from None
    except OSError as exc:
        if exc.errno in REFUSALS:
            raise OSError(exc.errno, f"read error: {exc.strerror}", name) from exc
        raise InputError(f"{name}: read error: {exc.strerror or exc}") from exc
    finally:
        stream.close()


# -- import -------------------------------------------------------------------------------------------------------


def _cut_short(doc: Any, tracked: _Tracked) -> str | None:
    """Why a recording's last document is not a whole ResourcePatch (None if it is, or is empty)."""
    if tracked.last not in ("\n", ""):
        return "no newline at the end of the file"
    if not isinstance(doc, dict) or doc == {}:
        return None
    if "kind" not in doc:
        return "no kind: ResourcePatch"
    if doc["kind"] != RESOURCE_PATCH_KIND:
        return None  # (whole: an object after ResourcePatch documents is refused as such)
    try:
        _event(doc, FormatError, 0)
    except FormatError as exc:
        return str(exc)
    return None


def _event(doc: dict[str, Any], bad: Any, base: int) -> dict[str, Any]:
    res = doc.get("resource")
    target = doc.get("target")
    if not isinstance(res, dict) or not isinstance(res.get("version"), str) or not isinstance(res.get("resource"), str):
        raise bad("ResourcePatch lacks resource {group, version, resource}")
    group = res.get("group") or ""
    if not isinstance(group, str) or not res["version"] or not res["resource"]:
        raise bad("ResourcePatch has a malformed resource")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        raise bad("ResourcePatch lacks target.name")
    namespace = target.get("namespace") or ""
    if not isinstance(namespace, str):
        raise bad("ResourcePatch target.namespace is not a string")
    duration = doc.get("durationNanosecond")
    if type(duration) is not int:
        raise bad("ResourcePatch durationNanosecond is not an integer")
    if not -(2**63) <= base + duration < 2**63:
        raise bad("ResourcePatch durationNanosecond puts it beyond the years 1677-2262 (nanoseconds in 64 bits)")
    method = doc.get("method")
    if method not in METHODS:
        raise bad(f"ResourcePatch method {method!r} is not one of {', '.join(METHODS)}")
    resource = f"{group}/{res['version']}/{res['resource']}" if group else f"{res['version']}/{res['resource']}"
    record: dict[str, Any] = {
        "type": "event",
        "ts": base + duration,
        "resource": resource,
        "verb": method,
        "namespace": namespace,
        "name": target["name"],
    }
    template = doc.get("template")
    if method == "create":
        if not isinstance(template, dict):
            raise bad("ResourcePatch create has no object template")
        record["object"] = template
    elif method == "patch":
        if not isinstance(template, dict):
            raise bad("ResourcePatch patch has no patch template")
        record["patch"] = template
        record["patchType"] = STRATEGIC_MERGE_PATCH
    return record


def _numbered(path: Path, tracked: _Tracked) -> Iterator[tuple[int, int, Any, bool, _CutShort | None]]:
    """:func:`_documents` with whether each is the last one, and after the last, what cut the file short (None if
    nothing did), as (number, line, data, last, cut)."""
    docs = _documents(path, tracked)
    cut: _CutShort | None = None

    def following() -> tuple[int, int, Any] | None:
        nonlocal cut
        try:
            return next(docs)
        except StopIteration:
            return None
        except _CutShort as exc:
            cut = exc
            return None

    current = following()
    while current is not None:
        after = following()
        yield (*current, after is None and cut is None, None)
        current = after
    if cut is not None:
        yield (cut.number, 0, None, True, cut)


def import_yaml(path: str | os.PathLike[str], *, base_time_ns: int | None = None,
                custom: Mapping[tuple[str, str], tuple[str, bool]] | None = None,
                notes: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream kwoksnap records from a kwokctl ``--format k8s`` snapshot or recording (``.gz`` or plain).

    Custom resources are named as their CRDs say: those in ``custom`` (found by a first pass, so a CRD later in
    the file counts too, see :func:`import_to_kws`) and those of CRDs met before them; others by a guessed plural.

    Objects become ``{"type": "object", "resource", "object"}``, each resource announced once by a
    ``{"type": "resource", ...}`` record when first seen; ``ResourcePatch`` documents become ``{"type": "event"}``
    records with ``ts = base_time_ns + durationNanosecond`` (0 if not given). With ``base_time_ns``, every
    ``$(time-offset-nanosecond N)`` placeholder is resolved to a time; without it placeholders stay as text.
    A document that is not a Kubernetes object raises FormatError naming its number and line.

    A recording's last document cut short (a recorder killed while it wrote: invalid YAML at the very end, a
    ResourcePatch that is not whole, or one the file ends in without its newline) is left out, and said in
    ``notes``; every change before it is kept.
    """
    path = Path(path)
    name = str(path)
    base = base_time_ns or 0
    seen: set[str] = set()
    in_recording = False
    kinds: dict[tuple[str, str], tuple[str, bool]] = {**KINDS, **(custom or {})}
    tracked = _Tracked(_open_text(path))
    for number, line, doc, last, cut in _numbered(path, tracked):
        where = f"document {number} (line {line})"

        def bad(message: str, where: str = where) -> FormatError:
            return FormatError(message, path=name, where=where)

        if cut is not None:  # (after the last whole document)
            if not in_recording:
                raise cut
            if notes is not None:
                notes.append(f"{name}: {cut.where}: the file ends inside document {cut.number} (invalid YAML: "
                             f"{cut.problem}): left out (a recorder stopped while it wrote?)")
            return
        if last and in_recording:  # (a ResourcePatch cut short may still be valid YAML)
            problem = _cut_short(doc, tracked)
            if problem is not None:
                if notes is not None:
                    notes.append(f"{name}: {where}: the file ends inside its last ResourcePatch ({problem}): left "
                                 "out (a recorder stopped while it wrote?)")
                return
        if doc is None or doc == {}:
            continue  # kwok skips empty documents
        if not isinstance(doc, dict):
            raise bad(f"not a Kubernetes object (a mapping with apiVersion and kind) but a {type(doc).__name__}")
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            raise bad("not a Kubernetes object: apiVersion and kind must be non-empty strings")
        if base_time_ns is not None:
            try:
                doc = resolve_time_offsets(doc, base_time_ns)
            except ValueError as exc:
                raise bad(str(exc)) from None
        if kind == RESOURCE_PATCH_KIND and api_version == RESOURCE_PATCH_API_VERSION:
            in_recording = True
            yield _event(doc, bad, base)
            continue
        if kind == RESOURCE_PATCH_KIND:  # (kwok v0.5-v0.6 wrote kwok.x-k8s.io/internal ones, of another shape)
            raise bad(f"a ResourcePatch of {api_version}, which kwoksnap does not read: it reads those of "
                      f"{RESOURCE_PATCH_API_VERSION} (what kwokctl v0.8 writes)")
        if in_recording:
            raise bad("a Kubernetes object after ResourcePatch documents (kwokctl loads objects first)")
        items = doc.get("items")
        if kind.endswith("List") and isinstance(items, list):
            objects = items
        else:
            objects = [doc]
        for obj in objects:
            if not isinstance(obj, dict) or not obj:
                continue
            item_api, item_kind = obj.get("apiVersion"), obj.get("kind")
            if not isinstance(item_api, str) or not isinstance(item_kind, str) or not item_api or not item_kind:
                raise bad("a list item lacks apiVersion or kind")
            if not _KIND.fullmatch(item_kind):  # (fuzzing: `kind: a/b` became resource v1/a/bs, group v1)
                raise bad(f"kind {item_kind!r} is not a Kubernetes kind (a letter, then letters, digits and '-')")
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
                raise bad(f"{item_kind} has no metadata.name")
            for key, value in crd_kinds(obj).items():
                kinds.setdefault(key, value)
            resource = resource_for(item_api, item_kind, kinds)
            try:
                split_resource(resource)
            except InputError:  # (`apiVersion: a/b/c`, `v1/`, a CRD plural holding a slash)
                raise bad(f"{item_kind} {metadata['name']}: apiVersion {item_api!r} (with kind {item_kind!r}) names "
                          "no resource: it is 'version' or 'group/version'") from None
            if resource not in seen:
                seen.add(resource)
                group, _ = split_api_version(item_api)
                known = kinds.get((group, item_kind))
                namespaced = known[1] if known else isinstance(metadata.get("namespace"), str)
                yield {
                    "type": "resource",
                    "resource": resource,
                    "kind": item_kind,
                    "namespaced": namespaced,
                    "listResourceVersion": "",
                }
            yield {"type": "object", "resource": resource, "object": obj}


# -- export -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExportStats:
    """What :func:`export_yaml` wrote."""

    objects: int = 0
    patches: int = 0
    skipped: int = 0  # records of other types (e.g. "resource"), which kwokctl has no document for


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """YAML as kwokctl reads it: no ``!!binary`` (a bytes value, which no Kubernetes object holds: refused)."""


def _no_bytes(_dumper: yaml.SafeDumper, _value: bytes) -> yaml.Node:
    raise yaml.representer.RepresenterError("a value is bytes, which a Kubernetes object never holds")


_Dumper.add_representer(bytes, _no_bytes)


def _dump(doc: Mapping[str, Any]) -> str:
    # sigs.k8s.io/yaml (what kwok uses) sorts keys and does not indent lists under their key; so does this.
    try:
        return yaml.dump(doc, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True,
                         width=1 << 30)
    except yaml.representer.RepresenterError as exc:  # (black-box finding: exported as !!binary, exit 0)
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        where = "/".join(str(p) for p in (meta.get("namespace"), meta.get("name")) if p)
        raise InputError(f"{doc.get('kind') or 'document'} {where}: not a valid Kubernetes object: {exc}") from None


def _clean_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "resourceVersion" in metadata:
        out["metadata"] = {k: v for k, v in metadata.items() if k != "resourceVersion"}
    return out


def _object_doc(record: Mapping[str, Any], kinds: dict[str, str], n: int) -> dict[str, Any]:
    obj = record.get("object")
    if not isinstance(obj, dict):
        raise InputError(f"record {n}: an object record without an object")
    obj = _clean_object(obj)
    resource = record.get("resource")
    if not obj.get("apiVersion") or not obj.get("kind"):
        if not isinstance(resource, str) or not resource:
            raise InputError(f"record {n}: object without apiVersion/kind and without a resource")
        group, version, plural = split_resource(resource)
        kind = kinds.get(resource) or _KIND_BY_PLURAL.get((group, plural))
        if kind is None:
            raise InputError(f"record {n}: object of {resource} has no apiVersion or kind, and no resource record "
                             "names its kind")
        obj = {"apiVersion": f"{group}/{version}" if group else version, "kind": kind, **obj}
    return obj


def _patch_doc(record: Mapping[str, Any], base_time_ns: int, n: int) -> dict[str, Any]:
    verb = record.get("verb")
    if verb not in METHODS:
        raise InputError(f"record {n}: verb {verb!r} has no kwokctl equivalent (create, patch, delete)")
    resource, ts = record.get("resource"), record.get("ts")
    if not isinstance(resource, str) or type(ts) is not int:
        raise InputError(f"record {n}: an event needs a resource and an integer ts")
    group, version, plural = split_resource(resource)
    obj = record.get("object")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    name = record.get("name") or metadata.get("name")
    namespace = record.get("namespace") or metadata.get("namespace") or ""
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        raise InputError(f"record {n}: an event needs a name")
    gvr: dict[str, str] = {"group": group, "version": version, "resource": plural} if group else {
        "version": version,
        "resource": plural,
    }
    target = {"name": name, "namespace": namespace} if namespace else {"name": name}
    doc: dict[str, Any] = {
        "apiVersion": RESOURCE_PATCH_API_VERSION,
        "kind": RESOURCE_PATCH_KIND,
        "resource": gvr,
        "target": target,
        "durationNanosecond": ts - base_time_ns,
        "method": verb,
    }
    if verb == "create":
        if not isinstance(obj, dict):
            raise InputError(f"record {n}: a create event without an object")
        doc["template"] = _clean_object(obj)
    elif verb == "patch":
        patch = record.get("patch")
        patch_type = record.get("patchType", STRATEGIC_MERGE_PATCH)
        if not isinstance(patch, dict) or patch_type != STRATEGIC_MERGE_PATCH:
            raise InputError(f"record {n}: kwokctl replays only strategic merge patches")
        doc["template"] = patch
    return doc


def export_yaml(
    records: Iterable[Mapping[str, Any]],
    out_path: str | os.PathLike[str],
    *,
    base_time_ns: int = 0,
    relative_times: bool = False,
) -> ExportStats:
    """Write records as a kwokctl ``--format k8s`` YAML stream (gzip if the name ends in ``.gz``), atomically.

    ``object`` records become object documents (``resourceVersion`` removed, like ``kwokctl snapshot save``);
    ``event`` records with verb create/patch/delete become ``ResourcePatch`` documents with
    ``durationNanosecond = ts - base_time_ns``; other record types are skipped (counted). Objects must come
    before events, as kwokctl loads objects until the first ResourcePatch. With ``relative_times`` every RFC 3339
    time is written as ``$(time-offset-nanosecond N)`` relative to ``base_time_ns``, like ``kwokctl snapshot
    export``. The file appears under ``out_path`` only when complete, and never replaces an existing file.
    """
    with atomic_output(out_path, exclusive=True) as raw:
        if Path(out_path).suffix in (".gz", ".tgz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                return _write_documents(records, zipped, base_time_ns, relative_times)
        return _write_documents(records, raw, base_time_ns, relative_times)


def _write_documents(
    records: Iterable[Mapping[str, Any]], sink: _Sink, base_time_ns: int, relative_times: bool
) -> ExportStats:
    stats = ExportStats()
    kinds: dict[str, str] = {}
    separator = b""
    for n, record in enumerate(records, 1):
        rtype = record.get("type")
        if rtype == "resource":
            if isinstance(record.get("resource"), str) and isinstance(record.get("kind"), str):
                kinds[record["resource"]] = record["kind"]
            stats.skipped += 1
            continue
        if rtype == "object":
            if stats.patches:
                raise InputError(f"record {n}: an object after events; kwokctl loads objects first")
            doc = _object_doc(record, kinds, n)
            stats.objects += 1
        elif rtype == "event":
            doc = _patch_doc(record, base_time_ns, n)
            stats.patches += 1
        else:
            stats.skipped += 1
            continue
        try:
            text = _dump(doc)
        except yaml.YAMLError as exc:
            raise InputError(f"record {n}: cannot be written as YAML: {exc}") from exc
        except RecursionError:  # (PyYAML's representer recurses in Python: a few hundred levels)
            raise InputError(f"{_named(record, doc)} is nested more deeply than YAML export can write "
                             "(a few hundred levels of maps and lists); nothing was written") from None
        if relative_times:
            text = _relative_times(text, base_time_ns)
        sink.write(separator + text.encode())
        separator = b"---\n"
    return stats


def _named(record: Mapping[str, Any], doc: Mapping[str, Any]) -> str:
    """``resource namespace/name`` of a record, for a message."""
    obj = doc.get("template") if doc.get("kind") == RESOURCE_PATCH_KIND else doc
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    name = record.get("name") or metadata.get("name") or "?"
    namespace = record.get("namespace") or metadata.get("namespace")
    return f"{record.get('resource', '?')} {namespace}/{name}" if namespace else f"{record.get('resource', '?')} {name}"


@dataclasses.dataclass
class ImportStats:
    content_type: str
    objects: dict[str, int]
    events: int
    duplicates: list[str] = dataclasses.field(default_factory=list)  # "resource namespace/name", later copies left out
    defaulted: int = 0  # namespaced objects without a namespace, put in "default" (as kubectl apply would)
    guessed: list[str] = dataclasses.field(default_factory=list)  # "Kind -> resource" named without their CRD
    redacted: int = 0  # records the rewrite replaced (Secrets with their values redacted)
    notes: list[str] = dataclasses.field(default_factory=list)  # a recording's last document, cut short: left out


def import_to_kws(yaml_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                  rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                  header_meta: Mapping[str, Any] | None = None, base_time_ns: int | None = None) -> ImportStats:
    """Convert a kwokctl ``--format k8s`` snapshot (or recording, if it has ResourcePatch documents) to a .kws file.

    Two streaming passes: the first decides the content type and reads the CRDs' names for their custom resources,
    the second writes. An object that comes again under
    the same resource, namespace and name is left out (the first one is kept, as a restore would keep it) and
    listed; a namespaced object without a namespace goes to ``default``, as ``kubectl apply`` would put it.
    ``rewrite`` (the CLI's redaction of Secrets) may return another record for each one, counted in ``redacted``;
    ``header_meta`` goes into the file's header (``meta``). With ``base_time_ns`` (when a ``kwokctl snapshot export``
    was made), its ``$(time-offset-nanosecond N)`` placeholders become times and its events' ``ts`` are
    ``base_time_ns + durationNanosecond``; it is recorded in the header as ``meta.timeBase`` (RFC 3339).
    """
    from kwoksnap.store.writer import KwsWriter

    # A 0-byte file is refused (black-box finding: imported as an empty snapshot, exit 0); a YAML with documents but
    # no object is only warned of, by the CLI. (A path that cannot be read is said by import_yaml.)
    with contextlib.suppress(OSError):
        info = os.stat(yaml_path)
        if stat.S_ISREG(info.st_mode) and info.st_size == 0:
            raise InputError(f"{yaml_path}: empty file")
    content = "snapshot"
    custom: dict[tuple[str, str], tuple[str, bool]] = {}
    for rec in import_yaml(yaml_path):  # the content type, and the names of the custom resources the CRDs define
        if rec.get("type") == "event":
            content = "recording"
        elif rec.get("type") == "object":
            custom.update(crd_kinds(rec["object"]))
    stats = ImportStats(content, {}, 0)
    namespaced: dict[str, bool] = {}
    seen: set[tuple[str, str, str]] = set()
    header = dict(header_meta or {})
    if base_time_ns is not None:
        header["timeBase"] = format_micro_time(base_time_ns)
    with KwsWriter(out_path, content_type=content, source={"kind": "kwokctl-yaml", "path": str(yaml_path)},
                   meta=header or None) as w:
        for rec in import_yaml(yaml_path, custom=custom, base_time_ns=base_time_ns, notes=stats.notes):
            if rec.get("type") == "resource":
                namespaced[str(rec["resource"])] = bool(rec.get("namespaced"))
                group = split_resource(str(rec["resource"]))[0]
                if (group, rec.get("kind")) not in KINDS and (group, rec.get("kind")) not in custom:
                    stats.guessed.append(f"{rec.get('kind')} -> {rec['resource']}")
            elif rec.get("type") == "object":
                key = str(rec.get("resource", ""))
                meta = rec["object"]["metadata"]
                if namespaced.get(key) and not meta.get("namespace"):
                    rec = {**rec, "object": {**rec["object"], "metadata": {**meta, "namespace": "default"}}}
                    meta = rec["object"]["metadata"]
                    stats.defaulted += 1
                ident = (key, str(meta.get("namespace") or ""), str(meta["name"]))
                if ident in seen:
                    stats.duplicates.append(f"{key} {ident[1] + '/' if ident[1] else ''}{ident[2]}")
                    continue
                seen.add(ident)
                stats.objects[key] = stats.objects.get(key, 0) + 1
            elif rec.get("type") == "event":
                stats.events += 1
            if rewrite is not None and (rewritten := rewrite(rec)) is not rec:
                rec = rewritten
                stats.redacted += 1
            w.write(rec)
    return stats
