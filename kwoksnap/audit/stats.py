"""Counters of what reading and filtering an audit log did, so that nothing is dropped silently.

Why this module exists: a replay built from a log that silently lost half its lines is worse than no replay. Every
line the reader sees ends up in exactly one bucket (an event, an empty line, a malformed line, a truncated line, or
a prefiltered skip), every event the filter drops is counted by reason, and the CLI shows this summary.

It must never keep request or response bodies (they may hold secrets): malformed-line examples carry a location and a
short reason only, never the line's text.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

__all__ = ["MAX_EXAMPLES", "ParseStats"]

MAX_EXAMPLES = 10  # enough to find the pattern in a broken file, small enough for a one-screen summary


@dataclasses.dataclass
class ParseStats:
    """Mutable counters filled by :func:`~kwoksnap.audit.read_audit` and :func:`~kwoksnap.audit.filter_events`."""

    files: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> detected container ("jsonl", ...)
    unusable_files: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> why it was skipped
    lines: int = 0  # non-empty lines read (JSON lines), or YAML/JSON documents
    events: int = 0  # events produced (after decoding, before filtering)
    malformed: int = 0
    malformed_examples: list[str] = dataclasses.field(default_factory=list)  # "file:line: reason"
    truncated: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> "file:line: what broke"
    ignored: Counter[str] = dataclasses.field(default_factory=Counter)  # well-formed non-audit records, by kind
    formats: Counter[str] = dataclasses.field(default_factory=Counter)  # record flavour -> events
    skipped: Counter[str] = dataclasses.field(default_factory=Counter)  # filter reason -> events (or lines)
    prefiltered: int = 0  # lines skipped by the byte-level prefilter (also counted in `skipped`)
    degraded: Counter[str] = dataclasses.field(default_factory=Counter)  # level -> kept events that are degraded
    late: int = 0  # events older than the reorder window allowed: emitted out of order
    duplicates: int = 0  # second copies of an event (same auditID and stage) from files that overlap, left out
    kept: int = 0  # events passed by filter_events
    # path -> seconds its clock is at least behind another file's (several API servers' logs; read_audit)
    clock_skew: dict[str, float] = dataclasses.field(default_factory=dict)
    # kept events of Secrets, TokenRequests and TokenReviews whose values were replaced (unless --include-secrets)
    redacted: int = 0
    # (resource, group, subresource) of the kept events: which --resources entries matched anything
    kept_kinds: set[tuple[str, str, str]] = dataclasses.field(default_factory=set, repr=False)
    # namespaces of the kept events, noted only under a -n filter: which -n entries matched anything
    kept_namespaces: set[str] = dataclasses.field(default_factory=set, repr=False)
    # events a recording could not hold ("file:line: why": a body of many MiB compressing beyond what readers accept)
    unstorable: list[str] = dataclasses.field(default_factory=list)
    # namespace -> reason -> events of a -n namespace left out by another filter (resource, user, time window...):
    # why an -n entry matched nothing, when it was not its name
    namespace_skips: dict[str, Counter[str]] = dataclasses.field(default_factory=dict, repr=False)
    # the first and last times (ns) of the events --from/--to left out: where the log is, when the window missed it
    outside_window: list[int] = dataclasses.field(default_factory=list, repr=False)

    def add_malformed(self, where: str, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < MAX_EXAMPLES:
            self.malformed_examples.append(f"{where}: {reason}")

    def counted(self, decoded: list[tuple[str, Any]], problems: list[tuple[str, str, bool]]) -> list[Any]:
        """The events :func:`~kwoksnap.audit.formats.decode_value` decoded, each counted by flavour, and its
        problems counted (ignored records by reason, malformed ones with where they are): for the readers that do
        not stop at a malformed record (``kwoksnap record``'s)."""
        for where, reason, ignored in problems:
            if ignored:
                self.ignored[reason] += 1
            else:
                self.add_malformed(where, reason)
        for flavour, _ in decoded:
            self.events += 1
            self.formats[flavour] += 1
        return [event for _, event in decoded]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (plain dicts and lists, sorted counters)."""
        return {
            "files": dict(self.files),
            "unusableFiles": dict(self.unusable_files),
            "lines": self.lines,
            "events": self.events,
            "malformed": self.malformed,
            "malformedExamples": list(self.malformed_examples),
            "truncated": dict(self.truncated),
            "ignored": dict(sorted(self.ignored.items())),
            "formats": dict(sorted(self.formats.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "prefiltered": self.prefiltered,
            "degraded": dict(sorted(self.degraded.items())),
            "late": self.late,
            "duplicates": self.duplicates,
            "clockSkew": dict(self.clock_skew),
            "kept": self.kept,
            "redacted": self.redacted,
            "unstorable": list(self.unstorable),
        }
