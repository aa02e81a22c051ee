"""Kubernetes label selectors (``-l`` of ``kwoksnap save``), matched in Python.

Why this module exists: a snapshot saved with ``-l`` holds only the objects that matched it, while a second
snapshot, compared with ``kwoksnap diff A B``, holds everything: the comparison must look at B through A's
selector, as ``diff --live`` asks the API server to. The grammar is the API server's (``labels.Parse``):
``key``, ``!key``, ``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``, ``key>1``, ``key<1``,
joined by commas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from kwoksnap.errors import InputError

Labels = Mapping[str, str]

_SET: Final = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_COMPARE: Final = re.compile(r"^\s*([^!=<>\s]+)\s*(==|=|!=|>|<)\s*([^\s]*)\s*$")
_EXISTS: Final = re.compile(r"^\s*(!?)\s*([^!=<>\s(),]+)\s*$")


def _split(text: str) -> list[str]:
    """The requirements: commas outside parentheses separate them."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[Labels], bool]:
    if m := _SET.match(text):
        key, op, values = m.group(1), m.group(2), frozenset(v.strip() for v in m.group(3).split(","))
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _COMPARE.match(text):
        key, op, value = m.groups()
        if op in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if op == "!=":
            return lambda labels: labels.get(key) != value
        try:
            bound = int(value)
        except ValueError:
            raise InputError(f"label selector {text.strip()!r}: {op} needs an integer") from None

        def compare(labels: Labels) -> bool:
            try:
                number = int(labels.get(key, ""))
            except ValueError:
                return False
            return number > bound if op == ">" else number < bound

        return compare
    if m := _EXISTS.match(text):
        absent, key = m.group(1) == "!", m.group(2)
        return (lambda labels: key not in labels) if absent else (lambda labels: key in labels)
    raise InputError(f"label selector requirement {text.strip()!r} is not one the API server accepts")


def parse_selector(text: str) -> Callable[[Labels], bool]:
    """A function ``labels -> matches`` for selector ``text`` (empty: matches everything)."""
    requirements = [_requirement(part) for part in _split(text)]
    return lambda labels: all(r(labels) for r in requirements)
