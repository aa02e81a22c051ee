"""Copy what is readable of a damaged ``.kws`` file into a new, whole one.

Why this module exists: one flipped bit makes a frame unreadable, and every command refuses a damaged file (exit
3), so a snapshot of an incident with one bad sector was lost whole. Salvage keeps every frame that reads: it writes
their records, in their order, to a new file that is clean and checked like any other, and its index names the
resources that lost records (``incomplete``: the same field a save whose lists failed sets), so that ``restore``,
``diff`` and ``replay`` warn about them instead of taking the file for whole. It never changes the damaged file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import Counter
from pathlib import Path
from typing import Any

from kwoksnap.errors import FormatError
from kwoksnap.store.reader import KwsReader, Record, Salvaged
from kwoksnap.store.writer import KwsWriter

#: How the reason salvage writes for an incomplete resource begins (a save's names the list that failed).
SALVAGED = "salvaged from a damaged file"


@dataclasses.dataclass
class SalvageReport:
    """What ``salvage`` kept and lost. ``lost`` holds the unreadable stretches in file order; ``incomplete`` the
    reason written for each resource that lost records (or may have: without an index, what a stretch held is not
    known, so the resources read just before and after it are named)."""

    path: str
    out: str
    content_type: str
    frames: int = 0  # frames kept
    records: int = 0  # records kept
    lost: list[Salvaged] = dataclasses.field(default_factory=list)
    incomplete: dict[str, str] = dataclasses.field(default_factory=dict)
    described: list[str] = dataclasses.field(default_factory=list)  # resources whose lost description was rebuilt
    stretches: dict[str, list[Salvaged]] = dataclasses.field(default_factory=dict)  # per resource, what it lost
    cut: bool = False  # the file ends in a stretch of unknown content: what was written after it is missing
    clean: bool = True  # closed by its writer (else it ends where its writer stopped: a crash, SIGKILL)
    copies: int = 0  # frames left out as second copies (a frame written twice)
    missing: int = 0  # records an index found past the damage lists and the frames read lack
    counted: bool = False  # such an index said what each resource held: ``missing`` is exact (0: nothing lost)
    joined: bool = False  # bytes after the file's index and trailer (another file?) were not read
    index_rebuilt: bool = False  # the file was closed, but its index could not be read: the output has a new one

    @property
    def lost_records(self) -> int | None:
        """Records lost, when an index says (None: not known)."""
        if self.missing or (self.counted and not self.joined):  # (what was joined after is not known)
            return self.missing
        if any(s.lost is None for s in self.lost) or (self.cut and not self.lost):
            return None
        return sum(s.lost or 0 for s in self.lost)

    @property
    def whole(self) -> bool:
        """No record of the file was lost (stretches that held none, junk bytes between frames or a damaged index
        whose copy was found, lose nothing)."""
        if self.counted:
            return not (self.cut or self.missing or self.joined)
        return not (self.lost or self.cut or self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "out": self.out, "contentType": self.content_type, "frames": self.frames,
            "records": self.records, "lostRecords": self.lost_records, "incomplete": self.incomplete,
            "described": self.described, "cut": self.cut, "clean": self.clean, "copies": self.copies,
            "counted": self.counted, "indexRebuilt": self.index_rebuilt,
            "lost": [{"offset": s.offset, "length": s.length, "reason": s.reason, "resource": s.resource,
                      "records": s.lost, "timeRange": list(s.span) if s.span else None} for s in self.lost],
        }


class _Nowhere:
    """Where the records of a salvage that writes nothing go (``out=None``: what it would keep and lose)."""

    def write(self, record: Record) -> None:
        pass

    def incomplete(self, resource: str, reason: str) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def salvage(path: str | os.PathLike[str], out: str | os.PathLike[str] | None) -> SalvageReport:
    """Write every readable record of ``path`` to ``out`` (never over an existing file; under a temporary name
    until it is whole), or, with ``out=None``, write nothing and only say what would be kept and lost (``inspect``
    of a damaged file). Raises ``FormatError`` when nothing of ``path`` is readable (its header is damaged, or no
    frame reads): then nothing is written."""
    try:
        reader = KwsReader(path, _salvage=True)
    except FormatError as exc:  # (a damaged header: what the records are cannot be known)
        raise FormatError(f"{exc}; nothing can be salvaged without it") from None
    with reader:
        header = reader.header
        report = SalvageReport(str(path), "" if out is None else str(out), reader.content_type)
        meta = dict(header.get("meta") or {})
        meta["salvagedFrom"] = Path(path).name
        writer: KwsWriter | _Nowhere = _Nowhere() if out is None else KwsWriter(
            out, content_type=reader.content_type, source=header.get("source") or {}, meta=meta,
            created_at=_created_at(header.get("createdAt")), keep_strays=True)  # (path may be one)
        unknown: list[tuple[Salvaged, str | None]] = []  # lost stretches of unknown content, and what came before
        got: dict[str, int] = {}  # records read, by resource
        frames_read: Counter[tuple[str, int, int]] = Counter()  # (resource, length, records) of each frame read
        described: set[str] = set()
        last: str | None = None
        try:
            for stretch in reader.salvage():
                if stretch.records is None:
                    report.lost.append(stretch)
                    if stretch.resource is None:
                        unknown.append((stretch, last))
                    else:
                        _mark(report, stretch.resource, stretch)
                    continue
                report.frames += 1
                report.records += len(stretch.records)
                for record in stretch.records:
                    key = str(record.get("resource", ""))
                    got[key] = got.get(key, 0) + 1
                for record in stretch.records:
                    if reader.content_type == "snapshot" and _describe(record, described, writer, report):
                        report.records += 1
                    writer.write(record)
                resource = str(stretch.records[0].get("resource", ""))
                frames_read[(resource, stretch.length, len(stretch.records))] += 1
                for lost, before in unknown:  # what a stretch of unknown content sat between
                    _mark(report, before, lost)
                    _mark(report, resource, lost)
                unknown = []
                last = resource
            for lost, before in unknown:  # a lost end: what came last may have gone on
                _mark(report, before, lost)
            report.clean = bool(reader.closed_by_writer)
            report.copies, report.joined = reader.copies, reader.joined
            report.index_rebuilt = report.clean and reader.index is None and reader.found_index is None
            if not report.clean:  # it ends where its writer stopped (or was cut): what came after is not there
                report.cut = True
                if last is not None and not unknown:
                    _mark(report, last, Salvaged(reader.end_of_walk, 0, None, "the file ends there: its writer "
                                                 "stopped, or it was cut"))
            if not report.records:
                raise FormatError("no frame of it is readable: there is nothing to salvage", path=str(path))
            report.incomplete = {resource: _reason(lost) for resource, lost in report.stretches.items()}
            index = reader.index if reader.index is not None else reader.found_index
            if reader.index is None and index is not None and not _lists(index, frames_read):
                index = None  # (re-test finding: a cut file with a whole one joined after it: the second's index
                # vouched for the first's frames, "nothing lost", exit 0)
            if reader.index is None and index is not None:  # what each resource held, from an index found past
                report.incomplete = {}  # the damage: exact, instead of the neighbours of each lost stretch
                report.counted = True
                for entry in index["resources"]:
                    missing = int(entry["records"]) - got.get(entry["resource"], 0)
                    if missing > 0:
                        report.missing += missing
                        report.incomplete[entry["resource"]] = (
                            f"{SALVAGED}: {missing} of its {entry['records']} record(s) lost (the file's index, read "
                            "past its damaged end, says how many it held)")
            if index is not None:
                for resource, reason in dict(index.get("incomplete") or {}).items():  # what the file already lacked
                    ours = report.incomplete.get(resource)
                    report.incomplete[resource] = f"{reason}; {ours}" if ours else reason
            for resource, reason in report.incomplete.items():
                writer.incomplete(resource, reason)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return report


def _lists(index: dict[str, Any], frames: Counter[tuple[str, int, int]]) -> bool:
    """Whether an index found past the damage lists every frame that was read (resource, length, records): it is
    this file's, not another's joined after it."""
    listed = Counter((str(e["resource"]), int(f["length"]), int(f["records"])) for e in index["resources"]
                     for f in e["frames"])
    return not frames - listed


def _mark(report: SalvageReport, resource: str | None, stretch: Salvaged) -> None:
    """Note that ``resource`` lost (or, for a stretch of unknown content, may have lost) records in ``stretch``."""
    if resource:  # (records of no resource, "": nothing to name)
        noted = report.stretches.setdefault(resource, [])
        if not noted or noted[-1] is not stretch:  # (a stretch between two frames of one resource: once)
            noted.append(stretch)


def _reason(stretches: list[Salvaged]) -> str:
    """What a resource lost, in one line: how many records (when known), where, and the recorded times."""
    counts = [s.lost for s in stretches]
    what = (f"{sum(c or 0 for c in counts)} record(s)" if None not in counts else "records, possibly,")
    first = stretches[0]
    where = f"at byte {first.offset}" if len(stretches) == 1 else \
        f"in {len(stretches)} damaged stretches, the first at byte {first.offset}"
    spans = [s.span for s in stretches if s.span is not None]
    when = f", recorded from {_time(min(a for a, _ in spans))} to {_time(max(b for _, b in spans))}" if spans else ""
    return f"{SALVAGED}: {what} lost {where} ({first.reason}){when}"


def _describe(record: Record, described: set[str], writer: KwsWriter | _Nowhere, report: SalvageReport) -> bool:
    """A snapshot's resource opens with a record describing it (kind, scope): when the frame holding it was lost,
    one is made from the first object kept, so that restore knows what the objects are. True if one was written."""
    resource = record.get("resource")
    if not isinstance(resource, str) or resource in described:
        return False
    described.add(resource)
    obj = record.get("object")
    if record.get("type") != "object" or not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        return False  # (a description itself, or no object to make one of)
    meta = obj.get("metadata") or {}
    writer.write({"type": "resource", "resource": resource, "kind": obj["kind"],
                  "namespaced": bool(meta.get("namespace")), "listResourceVersion": ""})
    report.described.append(resource)
    return True


def _created_at(value: Any) -> dt.datetime | None:
    """The damaged file's own time (a snapshot's time is when it was taken), or now if it cannot be read."""
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


__all__ = ["SALVAGED", "SalvageReport", "salvage"]
