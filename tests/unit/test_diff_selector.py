"""Label selectors matched in Python, as the API server matches them (``kwoksnap diff A B`` looks at B through the
``-l`` A was saved with; found black-box testing: 181 differences between two snapshots of one moment)."""

from __future__ import annotations

import pytest

from kwoksnap.diff.compare import compare
from kwoksnap.diff.selector import parse_selector
from kwoksnap.errors import InputError


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("", {}, True),
    ("app=web", {"app": "web"}, True), ("app==web", {"app": "db"}, False), ("app!=web", {}, True),
    ("app=web,tier=front", {"app": "web", "tier": "front"}, True), ("app=web, tier=front", {"app": "web"}, False),
    ("app in (web, db)", {"app": "db"}, True), ("app notin (web,db)", {"app": "db"}, False),
    ("app notin (web)", {}, True), ("app in (web),tier", {"app": "web", "tier": ""}, True),
    ("tier", {"tier": "x"}, True), ("!tier", {"tier": "x"}, False), ("!tier", {}, True),
    ("gen>2", {"gen": "3"}, True), ("gen<2", {"gen": "3"}, False), ("gen>2", {"gen": "x"}, False),
    ("app=", {"app": ""}, True),
])
def test_selectors_match_as_the_api_server_does(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector)(labels) is expected


@pytest.mark.parametrize("selector", ["app in web", "a b", "gen>x"])
def test_a_selector_the_api_server_refuses_is_an_input_error(selector: str) -> None:
    with pytest.raises(InputError):
        parse_selector(selector)


def test_compare_looks_at_both_sides_through_the_selector() -> None:
    def pod(name: str, app: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns",
                                                               "labels": {"app": app}}}

    a = {"pods": [pod("web-1", "web")]}
    b = {"pods": [pod("web-1", "web"), pod("db-1", "db")]}
    assert not compare(["pods"], lambda gr: iter(a[gr]), lambda gr: iter(b[gr])).equal
    assert compare(["pods"], lambda gr: iter(a[gr]), lambda gr: iter(b[gr]), selector="app=web").equal


def test_objects_nested_deeper_than_255_levels_are_compared() -> None:
    """Black-box finding: `save` kept such an object (the API server accepts it), then diff failed on the file with
    exit 3, even compared with itself."""
    def deep(leaf: str) -> dict[str, object]:
        spec: dict[str, object] = {"v": leaf}
        for _ in range(300):
            spec = {"x": spec}
        return {"apiVersion": "example.com/v1", "kind": "Tree", "metadata": {"name": "t", "namespace": "ns"},
                "spec": spec}

    same = compare(["trees"], lambda _gr: iter([deep("a")]), lambda _gr: iter([deep("a")]))
    assert same.equal and same.compared == 1
    assert not compare(["trees"], lambda _gr: iter([deep("a")]), lambda _gr: iter([deep("b")])).equal
