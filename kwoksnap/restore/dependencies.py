"""Objects a snapshot's objects name but does not hold: found before restore writes anything.

Why this module exists: a snapshot of a selection (``save -l``, ``-n``, ``--include``) can leave out what its
objects depend on: the node, ServiceAccount, PriorityClass or RuntimeClass a pod names, the StorageClass of a claim, the
IngressClass of an Ingress. The target's admission refuses such pods one missing kind at a time (found black-box
testing: three restores to learn of three missing objects), and claims or Ingresses wait unnoticed. Restore lists
them all up front instead.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from kwoksnap.errors import KwoksnapError, NotFound
from kwoksnap.kube.client import Client
from kwoksnap.kube.discovery import Discovery, parse_key

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Reference:
    """``field`` (a dotted path) of objects of ``resource`` names an object of ``kind`` in ``target``."""

    resource: str  # group/version/plural (version-independent match on group and plural)
    field: str
    kind: str
    target: str  # group/version/plural of what is named
    namespaced: bool  # the named object is in the naming object's namespace
    consequence: str


REFERENCES = (
    Reference("v1/pods", "spec.serviceAccountName", "ServiceAccount", "v1/serviceaccounts", True,
              "the pods are refused where ServiceAccount admission runs"),
    Reference("v1/pods", "spec.priorityClassName", "PriorityClass", "scheduling.k8s.io/v1/priorityclasses", False,
              "the pods are refused where Priority admission runs"),
    Reference("v1/pods", "spec.runtimeClassName", "RuntimeClass", "node.k8s.io/v1/runtimeclasses", False,
              "the pods are refused where RuntimeClass admission runs"),
    Reference("v1/pods", "spec.nodeName", "Node", "v1/nodes", False,
              "the pods bound to them are deleted where the pod garbage collector runs (about 40 s on; not in a "
              "replay-profile cluster), and their controllers make new ones (save without --exclude nodes keeps "
              "them)"),
    Reference("v1/persistentvolumeclaims", "spec.storageClassName", "StorageClass", "storage.k8s.io/v1/storageclasses",
              False, "unbound claims wait for it"),
    Reference("networking.k8s.io/v1/ingresses", "spec.ingressClassName", "IngressClass",
              "networking.k8s.io/v1/ingressclasses", False, "no controller picks the Ingresses up"),
)

# Named by every pod without a name of its own, and made by each namespace's controller (restore leaves it to it).
IMPLICIT = frozenset({("ServiceAccount", "default")})


def _field(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def _gr(key: str) -> tuple[str, str]:
    group, _version, plural = parse_key(key)
    return group, plural


def missing_dependencies(keys: Iterable[str], objects: Callable[[str], Iterable[Obj]], client: Client,
                         discovery: Discovery) -> list[str]:
    """One line per kind of object the snapshot's objects name, and neither the snapshot nor the target holds:
    which ones, how many objects name them, and what follows. ``keys``: the snapshot's resources."""
    by_gr = {_gr(k): k for k in keys}
    lines: list[str] = []
    for ref in REFERENCES:
        source_key = by_gr.get(_gr(ref.resource))
        if source_key is None:
            continue
        named: Counter[tuple[str, str]] = Counter()  # (namespace or "", name) -> objects naming it
        for obj in objects(source_key):
            name = _field(obj, ref.field)
            if name and (ref.kind, name) not in IMPLICIT:
                ns = str((obj.get("metadata") or {}).get("namespace") or "") if ref.namespaced else ""
                named[(ns, name)] += 1
        if not named:
            continue
        target_key = by_gr.get(_gr(ref.target))
        held = set()
        if target_key is not None:
            held = {(str((o.get("metadata") or {}).get("namespace") or "") if ref.namespaced else "",
                     str((o.get("metadata") or {}).get("name") or "")) for o in objects(target_key)}
        res = discovery.by_key(ref.target)
        missing = []
        unchecked = ""
        for (ns, name), count in sorted(named.items()):
            if (ns, name) in held:
                continue
            if res is not None:
                try:
                    client.get(res.path(ns or None, name))
                    continue
                except NotFound:
                    pass
                except KwoksnapError as exc:  # a check, not the restore: credentials that may not read these
                    unchecked = str(exc)
                    break
            missing.append(f"{ns + '/' if ns else ''}{name} ({count})")
        if unchecked:
            lines.append(f"could not check the {ref.kind}(s) that {ref.resource.split('/')[-1]} name: {unchecked}")
            continue
        if missing:
            what = ref.resource.split("/")[-1]
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            lines.append(f"{what} name {len(missing)} {ref.kind}(s) that neither the snapshot nor the target holds, "
                         f"so {ref.consequence}: {shown} (in parentheses: how many objects name each)")
    return lines
