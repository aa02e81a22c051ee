"""Compare two object sources resource by resource, holding only digests in memory.

Why this module exists: snapshots can hold 100,000 objects; comparing them whole would need both in memory. Each
resource is compared as a map key -> digest of the normal form; only the differing objects are read a second time
to show which fields differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from kwoksnap.capture.snapshot import outside
from kwoksnap.diff.normalize import field_differences, normalize, regenerated
from kwoksnap.diff.selector import parse_selector
from kwoksnap.errors import InputError, walking
from kwoksnap.restore.transform import selectorless

Obj = dict[str, Any]
Objects = Callable[[str], Iterable[Obj]]  # group-resource -> its objects


@dataclasses.dataclass
class Difference:
    resource: str
    namespace: str
    name: str
    change: str  # "missing" (only in A), "added" (only in B), "changed"
    fields: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DiffResult:
    compared: int
    differences: list[Difference]
    per_resource: dict[str, dict[str, int]]
    # The namespaces an object of either side is in, or that either side holds the Namespace of, whether the filters
    # kept it or not: an -n namespace not among them matched nothing (a misspelt one said "equal" without a word).
    seen_namespaces: set[str] = dataclasses.field(default_factory=set)

    @property
    def equal(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"equal": self.equal, "compared": self.compared,
                "differences": [dataclasses.asdict(d) for d in self.differences],
                "differenceCount": len(self.differences), "resources": self.per_resource,
                "fieldsListedFor": f"the first {DETAIL_LIMIT} changed objects of each resource"}


DETAIL_LIMIT = 1000  # changed objects per resource whose differing fields are listed (each is read a second time)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _too_deep(obj: Obj) -> InputError:
    namespace, name = _key(obj)
    where = f"{obj.get('kind', 'object')} {namespace + '/' if namespace else ''}{name}"
    return InputError(f"{where}: nested more deeply than kwoksnap can compare (about 1,000 levels of maps and lists)")


def _normalized(obj: Obj, live: bool = False) -> Obj:
    """``normalize(obj)``; for an object of a file, an error walking it says the object is not valid (only a
    hand-made or imported file holds values of other types). Of a live one (``live``), an error is kwoksnap's."""
    try:
        with walking(obj, trusted=live):
            return normalize(obj)
    except RecursionError:  # (the API server takes deeper objects: black-box, 600 levels ended in exit 70)
        raise _too_deep(obj) from None


def _digest(obj: Obj, live: bool = False) -> bytes:
    normal = _normalized(obj, live)
    try:
        text = orjson.dumps(normal, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # deeper than orjson's 255 levels (the API server takes them): the slower json module
        try:
            with walking(obj, trusted=live):  # (a bytes value, an integer key: no JSON form)
                text = json.dumps(normal, sort_keys=True, separators=(",", ":")).encode()
        except RecursionError:
            raise _too_deep(obj) from None
    return hashlib.blake2b(text, digest_size=16).digest()


def pair_by_kind(only_a: Mapping[str, tuple[str, str]], only_b: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Pair resources that only one side holds when their objects have the same API group and kind: A's resource
    -> B's. ``kwoksnap import`` guesses a custom resource's plural when the file lacks its CRD (``Leaf`` ->
    ``leafs``) while a cluster serves it as ``leaves``; compared by name, the same objects were "missing" under one
    and "added" under the other. Each argument maps a resource to (group, kind) of its objects; a kind held under
    two names on one side is left unpaired (which pair is meant is unknown)."""
    def unique(side: Mapping[str, tuple[str, str]]) -> dict[tuple[str, str], str]:
        names: dict[tuple[str, str], list[str]] = {}
        for gr, kind in side.items():
            names.setdefault(kind, []).append(gr)
        return {kind: grs[0] for kind, grs in names.items() if len(grs) == 1 and kind[1]}
    b_by_kind = unique(only_b)
    return {gr: b_by_kind[kind] for kind, gr in unique(only_a).items() if kind in b_by_kind}


def kinds_of(objects: Objects, resources: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(group, kind) of each resource's first object, for :func:`pair_by_kind` (resources without one left out)."""
    out: dict[str, tuple[str, str]] = {}
    for gr in resources:
        first = next(iter(objects(gr)), None)
        if first is not None:
            out[gr] = (str(first.get("apiVersion") or "").rpartition("/")[0], str(first.get("kind") or ""))
    return out


def compare(
    resources: Iterable[str],
    a: Objects,
    b: Objects,
    *,
    include_regenerated: bool = False,
    namespaces: frozenset[str] = frozenset(),
    selector: str = "",
    aliases: Mapping[str, str] | None = None,
    detail_limit: int = DETAIL_LIMIT,
    live_b: bool = False,
) -> DiffResult:
    """Compare ``a`` and ``b`` over the given group-resources; ``namespaces`` restricts namespaced objects, and a
    label ``selector`` every object (as ``save -l`` selected them). ``aliases`` names B's resource for one of A's
    that B holds under another name (see :func:`pair_by_kind`). ``live_b``: B is a live cluster, whose objects are
    valid, so an error walking one of them is kwoksnap's, not an invalid object's."""
    matches = parse_selector(selector) if selector else None
    differences: list[Difference] = []
    per_resource: dict[str, dict[str, int]] = {}
    compared = 0
    seen: set[str] = set()

    def keep(obj: Obj, live: bool = False) -> bool:
        with walking(obj, trusted=live):
            return kept(obj)

    resources = list(resources)
    manual = selectorless(a("services")) if "endpoints" in resources else frozenset()  # (as restore decides)

    def kept(obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if meta.get("namespace"):
            seen.add(meta["namespace"])
        elif obj.get("kind") == "Namespace" and not str(obj.get("apiVersion") or "").rpartition("/")[0]:
            seen.add(str(meta.get("name")))
        if not include_regenerated and regenerated(obj, manual=manual):
            return False
        if matches is not None and not matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        if not namespaces:
            return True
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            return ns in namespaces
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        return not outside(str(obj.get("kind") or ""), group, obj, namespaces)  # as `save -n` leaves them out

    for gr in resources:
        left = {_key(o): _digest(o) for o in a(gr) if keep(o)}
        gr_b = (aliases or {}).get(gr, gr)
        right = {_key(o): _digest(o, live_b) for o in b(gr_b) if keep(o, live_b)}
        changed = sorted(k for k in left.keys() & right.keys() if left[k] != right[k])
        missing = sorted(left.keys() - right.keys())
        added = sorted(right.keys() - left.keys())
        compared += len(left.keys() | right.keys())
        per_resource[gr] = {"a": len(left), "b": len(right), "changed": len(changed), "missing": len(missing),
                            "added": len(added)}
        differences += [Difference(gr, ns, n, "missing") for ns, n in missing]
        differences += [Difference(gr, ns, n, "added") for ns, n in added]
        if changed:
            wanted = set(changed[:detail_limit])
            left_objs = {_key(o): _normalized(o) for o in a(gr) if _key(o) in wanted}
            right_objs = {_key(o): _normalized(o, live_b) for o in b(gr_b) if _key(o) in wanted}
            for k in changed:
                with walking(left_objs.get(k), trusted=live_b):  # (maps keyed by str on one side, int on the other)
                    fields = (field_differences(left_objs.get(k), right_objs.get(k))
                              if k in left_objs and k in right_objs else [])
                differences.append(Difference(gr, k[0], k[1], "changed", fields))
    return DiffResult(compared, differences, per_resource, seen)
