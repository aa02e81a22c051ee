"""Apply a two-way strategic merge patch to an object, without the Go types' patch metadata.

Why this module exists: a kwokctl recording (``kwokctl snapshot export --record``) stores each change of an object
as the strategic merge patch from its previous state to its new one (``CreateTwoWayMergePatch``), not the object.
The replay needs the whole resulting object of every change (to re-apply it, to split a pod's binding, status and
deletion apart, and to judge fidelity), so it applies each patch to the state before it, as kwok's own replayer
does. kwok looks up how each list merges in the Go structs; Python has no such table, but the patches that
``CreateTwoWayMergePatch`` writes say it themselves: a list merged by key comes with its
``$setElementOrder/<list>`` directive naming every element's key in the new order (and ``$patch: delete`` for the
removed ones), a merged list of scalars with ``$setElementOrder`` and ``$deleteFromPrimitiveList/<list>``; a list
without a directive is replaced whole. That is what :func:`apply_patch` follows (docs/audit.md, "kwokctl
recordings").

It never modifies its arguments and never raises on odd input: what it cannot read as a directive it takes as a
plain value (a merge patch's reading).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["apply_patch"]

ORDER: Final = "$setElementOrder/"
DELETE_PRIMITIVES: Final = "$deleteFromPrimitiveList/"
RETAIN_KEYS: Final = "$retainKeys"
PATCH: Final = "$patch"


def apply_patch(original: Any, patch: Any) -> Any:
    """``original`` with the strategic merge ``patch`` applied (a new value; neither argument is changed)."""
    if not isinstance(patch, dict):
        return _clean(patch)
    if patch.get(PATCH) == "replace":
        return _clean({k: v for k, v in patch.items() if k != PATCH})
    if patch.get(PATCH) == "delete":
        return None
    base = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if _directive(key):
            continue
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict):
            merged = apply_patch(base.get(key), value)
            if merged is None:
                base.pop(key, None)
            else:
                base[key] = merged
        elif isinstance(value, list):
            base[key] = _list(base.get(key), value, patch.get(ORDER + key), patch.get(DELETE_PRIMITIVES + key))
        else:
            base[key] = value
    for key, value in patch.items():  # a list whose only change is its order or removals has no list of its own
        if isinstance(key, str) and key.startswith((ORDER, DELETE_PRIMITIVES)) and isinstance(value, list):
            name = key.split("/", 1)[1]
            if name not in patch and isinstance(base.get(name), list):
                base[name] = _list(base[name], [], patch.get(ORDER + name), patch.get(DELETE_PRIMITIVES + name))
    retain = patch.get(RETAIN_KEYS)
    if isinstance(retain, list):
        keep = {k for k in retain if isinstance(k, str)}
        base = {k: v for k, v in base.items() if k in keep}
    return base


def _list(original: Any, patch: list[Any], order: Any, delete: Any) -> list[Any]:
    old = original if isinstance(original, list) else []
    merge_key = _merge_key(order, patch)
    if merge_key is not None:
        return _merge_by_key(old, patch, merge_key, order)
    if isinstance(order, list) or isinstance(delete, list):  # a merged list of scalars (finalizers)
        gone = delete if isinstance(delete, list) else []
        items = [v for v in old if v not in gone]
        items += [v for v in patch if v not in items]
        if isinstance(order, list):
            rank = {_hashable(v): i for i, v in enumerate(order)}
            items.sort(key=lambda v: rank.get(_hashable(v), len(rank)))
        return [_clean(v) for v in items]
    return [_clean(v) for v in patch]  # no directive: the list is replaced whole


def _merge_key(order: Any, patch: list[Any]) -> str | None:
    """The key a list is merged by: the one key of its ``$setElementOrder`` entries, else (a patch that only removes,
    or lost its order) the one key besides ``$patch`` of an element marked ``$patch: delete``."""
    if isinstance(order, list) and order and all(isinstance(e, dict) and len(e) == 1 for e in order):
        keys = {next(iter(e)) for e in order}
        if len(keys) == 1:
            return str(keys.pop())
    for item in patch:
        if isinstance(item, dict) and item.get(PATCH) == "delete":
            others = [k for k in item if k != PATCH]
            if len(others) == 1:
                return str(others[0])
    return None


def _merge_by_key(old: list[Any], patch: list[Any], key: str, order: Any) -> list[Any]:
    merged: dict[Any, Any] = {}  # the identity of an element (its key's value) -> the element, in old order
    loose: list[Any] = []  # old elements without the key, kept as they are
    for item in old:
        if isinstance(item, dict) and key in item:
            merged[_hashable(item[key])] = item
        else:
            loose.append(item)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            loose.append(_clean(item))
            continue
        ident = _hashable(item[key])
        if item.get(PATCH) == "delete":
            merged.pop(ident, None)
        elif item.get(PATCH) == "replace":
            merged[ident] = _clean({k: v for k, v in item.items() if k != PATCH})
        else:
            merged[ident] = apply_patch(merged.get(ident), item)
    items = list(merged.items())
    if isinstance(order, list):
        rank = {_hashable(e.get(key)): i for i, e in enumerate(order) if isinstance(e, dict)}
        items.sort(key=lambda pair: rank.get(pair[0], len(rank)))
    return [v for _, v in items] + loose


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _directive(key: Any) -> bool:
    return isinstance(key, str) and (key in (PATCH, RETAIN_KEYS) or key.startswith((ORDER, DELETE_PRIMITIVES)))


def _clean(value: Any) -> Any:
    """A patch value as plain data: directives removed, ``null`` members of maps dropped (as in a merge)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None and not _directive(k)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
