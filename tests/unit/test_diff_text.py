"""The text `kwoksnap diff` prints of a changed object: its fields, the telling ones first."""

from __future__ import annotations


def test_the_text_shows_the_telling_fields_first_and_says_how_many_it_left_out() -> None:
    """Black-box finding: a moved pod's `.spec.nodeName` was the 9th of its changed fields, and the text showed the
    first 4 of them without a word about the rest."""
    from kwoksnap.cli.diff import _fields

    fields = [f".metadata.labels.l{n}: added" for n in range(9)] + [".spec.nodeName: 'n2' -> 'n1'"]
    shown = _fields(fields)
    assert shown.startswith(".spec.nodeName: 'n2' -> 'n1'; .metadata.labels.l0: added")
    assert shown.endswith("; and 2 more (-o json lists them)") and shown.count(";") == 8
    assert _fields(fields[:3]) == "; ".join(fields[:3])
