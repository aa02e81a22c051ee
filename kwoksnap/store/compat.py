"""One-step converters that upgrade what an older ``.kws`` file decodes to, so old files keep reading.

Why this module exists: the format version (``FORMAT_VERSION``) moves independently of kwoksnap releases. When it
is bumped, whoever bumps it registers a converter from the previous version here; a reader of version N then
chains converters v -> v+1 -> ... -> N over the header, the index and every record of an older file. A file newer
than the reader is refused ("upgrade kwoksnap"): a reader must never guess at a layout it does not know.

Converters work on decoded dicts only. If a future version changes the byte layout itself (not just fields),
the block reader for the old layout must stay in ``reader`` as well; this registry covers the logical content.
Record converters are one-to-one (the index counts stay true) and must not change a record's ``resource``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kwoksnap.errors import FormatError, UsageError
from kwoksnap.store.format import FORMAT_VERSION

Doc = dict[str, Any]
DocConverter = Callable[[Doc], Doc]


def _identity(doc: Doc) -> Doc:
    return doc


@dataclasses.dataclass(frozen=True)
class Converter:
    """Upgrades content of format version ``from_version`` to ``from_version + 1``."""

    from_version: int
    header: DocConverter = _identity
    index: DocConverter = _identity
    record: DocConverter = _identity


@dataclasses.dataclass(frozen=True)
class UpgradePlan:
    """The converters to apply, in order, to content of ``from_version`` to reach ``to_version``."""

    from_version: int
    to_version: int
    steps: tuple[Converter, ...]

    @property
    def identity(self) -> bool:
        return not self.steps

    def header(self, doc: Doc) -> Doc:
        for step in self.steps:
            doc = step.header(doc)
        return doc

    def index(self, doc: Doc) -> Doc:
        for step in self.steps:
            doc = step.index(doc)
        return doc

    def record(self, doc: Doc) -> Doc:
        for step in self.steps:
            doc = step.record(doc)
        return doc


class ConverterRegistry:
    """Converters by source version. ``current`` is the version the reader using this registry reads natively."""

    def __init__(self, current: int = FORMAT_VERSION) -> None:
        if current < 1:
            raise UsageError(f"format versions start at 1, not {current}")
        self.current = current
        self._steps: dict[int, Converter] = {}

    def register(
        self,
        from_version: int,
        *,
        header: DocConverter | None = None,
        index: DocConverter | None = None,
        record: DocConverter | None = None,
    ) -> Converter:
        """Register the converter ``from_version`` -> ``from_version + 1`` (each step at most once)."""
        if not 1 <= from_version < self.current:
            raise UsageError(f"a converter from version {from_version} cannot lead to version {self.current}")
        if from_version in self._steps:
            raise UsageError(f"a converter from version {from_version} is already registered")
        step = Converter(from_version, header or _identity, index or _identity, record or _identity)
        self._steps[from_version] = step
        return step

    def unregister(self, from_version: int) -> None:
        self._steps.pop(from_version, None)

    def plan(self, file_version: int, *, path: str | None = None) -> UpgradePlan:
        """The chain for a file of ``file_version``; FormatError if it is newer, invalid, or a step is missing."""
        if file_version > self.current:
            raise FormatError(
                f"format version {file_version} is newer than this kwoksnap reads ({self.current}); upgrade kwoksnap",
                path=path,
                where="header",
            )
        if file_version < 1:
            raise FormatError(f"invalid format version {file_version}", path=path, where="header")
        steps = []
        for version in range(file_version, self.current):
            step = self._steps.get(version)
            if step is None:
                raise FormatError(
                    f"no converter from format version {version} to {version + 1}; this file cannot be upgraded",
                    path=path,
                    where="header",
                )
            steps.append(step)
        return UpgradePlan(file_version, self.current, tuple(steps))


#: The registry readers use unless given another. Version 1 is the first version: nothing to register yet.
DEFAULT_REGISTRY = ConverterRegistry()
