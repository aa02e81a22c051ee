"""Apply a two-way strategic merge patch to an object, without the Go types' patch metadata.

Why this module exists: a kwokctl recording (``kwokctl snapshot export --record``) stores each change of an object
as the strategic merge patch from its previous state to its new one (``CreateTwoWayMergePatch``), not the object.
The replay needs the whole resulting object of every change (to re-apply it, to split a pod's binding, status and
deletion apart, and to judge fidelity), so it applies each patch to the state before it, as Go's
``StrategicMergePatch`` would. Go looks up how each list merges in the type's patch metadata (kwok: the OpenAPI
extensions); Python has no such table, but the patches ``CreateTwoWayMergePatch`` writes say it themselves: a list
merged by key comes with its ``$setElementOrder/<list>`` directive naming every element's key in the new order
(and ``$patch: delete`` for the removed ones; a list that was emptied has only those), a merged list of scalars
with ``$setElementOrder`` and ``$deleteFromPrimitiveList/<list>``; a list without a directive is replaced whole,
and a new key's value is taken as it is. That is what :func:`apply_patch` follows (docs/audit.md §14).

It never modifies its arguments and never raises on odd input: what it cannot read as a directive it takes as a
plain value (a merge patch's reading).
"""

from __future__ import annotations

import copy
from typing import Any, Final

__all__ = ["apply_patch"]

ORDER: Final = "$setElementOrder/"
DELETE_PRIMITIVES: Final = "$deleteFromPrimitiveList/"
RETAIN_KEYS: Final = "$retainKeys"
PATCH: Final = "$patch"


def apply_patch(original: Any, patch: Any) -> Any:
    """``original`` with the strategic merge ``patch`` applied (a new value; neither argument is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get(PATCH) == "replace":
        return _without_nulls({k: v for k, v in patch.items() if k != PATCH})
    if patch.get(PATCH) == "delete":
        return {}
    base = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if _directive(key):
            continue
        if value is None:
            base.pop(key, None)
        elif key not in base:  # a new key's value is taken as it is (its nulls dropped: nothing to remove)
            base[key] = _without_nulls(value)
        elif isinstance(value, dict):
            base[key] = apply_patch(base[key], value)
        elif isinstance(value, list):
            base[key] = _list(base[key], value, patch.get(ORDER + key), patch.get(DELETE_PRIMITIVES + key))
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
        items: list[Any] = []
        for v in [*old, *patch]:  # (a merged list of scalars holds each value once)
            if v not in gone and v not in items:
                items.append(copy.deepcopy(v))
        if isinstance(order, list):
            rank = _ranks(order)
            items.sort(key=lambda v: rank.get(_hashable(v), len(rank)))
        return items
    return copy.deepcopy(patch)  # no directive: the list is replaced whole, taken as it is


def _merge_key(order: Any, patch: list[Any]) -> str | None:
    """The key a list is merged by: the one key of its ``$setElementOrder`` entries; without them (a list that was
    emptied: Go writes only its deletions), the one other key of the ``$patch: delete`` elements, when every element
    of the patch is one (a list taken whole may hold such a map as data: it is left so)."""
    if isinstance(order, list) and order and all(isinstance(e, dict) and len(e) == 1 for e in order):
        keys = {next(iter(e)) for e in order}
        if len(keys) == 1:
            return str(keys.pop())
    keys = set()
    for item in patch:
        others = [k for k in item if k != PATCH] if isinstance(item, dict) and item.get(PATCH) == "delete" else []
        if len(others) != 1:
            return None
        keys.add(others[0])
    return str(keys.pop()) if len(keys) == 1 else None


def _merge_by_key(old: list[Any], patch: list[Any], key: str, order: Any) -> list[Any]:
    """As Go merges: a patch element goes into the first element with its key's value (or is appended), a deletion
    removes every element with it; then the elements the order names are sorted by it (stably: two with the same
    value keep theirs; those it does not name go last)."""
    items = list(old)

    def matches(ident: Any) -> list[int]:
        return [i for i, e in enumerate(items) if isinstance(e, dict) and key in e and _hashable(e[key]) == ident]

    for element in patch:
        if not isinstance(element, dict) or key not in element:
            items.append(copy.deepcopy(element))
            continue
        found = matches(_hashable(element[key]))
        if element.get(PATCH) == "delete":
            items = [e for i, e in enumerate(items) if i not in found]
        elif element.get(PATCH) == "replace" or not found:
            merged = _without_nulls({k: v for k, v in element.items() if k != PATCH})
            if found:
                items[found[0]] = merged
            else:
                items.append(merged)
        else:
            items[found[0]] = apply_patch(items[found[0]], element)
    if isinstance(order, list):
        rank = _ranks([e.get(key) if isinstance(e, dict) else None for e in order])
        items.sort(key=lambda e: rank.get(_hashable(e.get(key)), len(rank)) if isinstance(e, dict) else len(rank))
    return items


def _ranks(order: list[Any]) -> dict[Any, int]:
    """Each value's first place in an order list."""
    rank: dict[Any, int] = {}
    for i, v in enumerate(order):
        rank.setdefault(_hashable(v), i)
    return rank


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _directive(key: Any) -> bool:
    return isinstance(key, str) and (key in (PATCH, RETAIN_KEYS) or key.startswith((ORDER, DELETE_PRIMITIVES)))


def _without_nulls(value: Any) -> Any:
    """A value taken from a patch as it is, but for the ``null`` members of its maps (Go's IgnoreUnmatchedNulls)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
