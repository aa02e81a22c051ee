"""Read audit log files (plain or gzip, any supported format) into one time-sorted stream of events.

Why this module exists: real audit logs are big (GBs), rotated into several files, written by several API servers
at once (HA), only roughly sorted inside a file, sometimes cut off mid-line or mid-gzip, and exported by managed
clouds in their own envelopes. This module turns any set of such files into a lazy, time-sorted iterator with
bounded memory and counts everything it could not use in :class:`~kwoksnap.audit.stats.ParseStats`.

Reading is streaming: files are read in 1 MiB chunks, never whole (except a file that *is* a single JSON document,
see docs/audit.md; YAML is parsed document by document). Native JSON lines take the fast road of
:func:`~kwoksnap.audit.formats.scan_native` (anything it cannot decide takes the general one). Each file is re-ordered
through a bounded window (a sorted list holding :data:`DEFAULT_WINDOW_NS` of recorded time, at most
:data:`DEFAULT_WINDOW_EVENTS` events; fast-road events wait there with raw bodies, decoded one event at a time as
the stream hands it on), and files are merged with :func:`heapq.merge`. The garbage collector is paused only while
one chunk is decoded, never across a ``yield``, so callers never run with it disabled.

It must never print, log, or put line contents into errors and stats (audit bodies may hold secrets), and never
raise anything but :class:`~kwoksnap.errors.InputError` / :class:`~kwoksnap.errors.UsageError`.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import errno
import gc
import glob
import gzip
import heapq
import json
import logging
import operator
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import orjson
import yaml

from kwoksnap.audit.events import AuditEvent, resource_version
from kwoksnap.audit.filters import FilterSpec, make_prefilter
from kwoksnap.audit.formats import (
    Malformed,
    decode_value,
    detect_container,
    finish_native,
    from_native,
    scan_native,
)
from kwoksnap.audit.stats import ParseStats
from kwoksnap.errors import REFUSALS, InputError, UsageError
from kwoksnap.store.format import MAGIC
from kwoksnap.store.kwokyaml import aliases_blow_up, json_semantics

log = logging.getLogger("kwoksnap.audit")

__all__ = ["DEFAULT_WINDOW_EVENTS", "DEFAULT_WINDOW_NS", "events_from_value", "expand_paths", "first_copies",
           "read_audit", "sniff"]

# Go's audit log backend writes events when a request finishes; lines from concurrent requests and API-server
# batching (the buffered backend flushes every few seconds) are out of order by well under a second in practice.
# 5 s of recorded time covers that with a wide margin; the event cap bounds memory on bursts (10k events of a few
# KB each is ~100 MB of Python objects per file in the worst case).
DEFAULT_WINDOW_NS: Final = 5_000_000_000
DEFAULT_WINDOW_EVENTS: Final = 10_000

_CHUNK: Final = 1 << 20  # bytes per read: large enough to amortise per-chunk work, small enough to stream
_SNIFF: Final = 1 << 16  # bytes looked at to detect the container
_MAX_BLANK_PREFIX: Final = 1 << 24  # a file with 16 MiB of leading whitespace is treated as empty
_GZIP_MAGIC: Final = b"\x1f\x8b"
_OTHER_MAGIC: Final = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
}
_BROKEN_STREAM: Final = (EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


def _stream_problem(err: BaseException) -> str:
    """What a broken gzip stream means for what was read from it: cut off (what follows is missing), or corrupt (a
    checksum found at the end of a member: what was read before it may hold wrong bytes)."""
    text = str(err)
    if "CRC check failed" in text or "Incorrect length" in text:
        return f"compressed stream is corrupt ({text}): events read from it may hold wrong data"
    if text.startswith("Not a gzipped file"):  # after a complete member (gzip -d: "trailing garbage ignored")
        return f"compressed stream is followed by data that is not gzip ({text}), left unread"
    return f"compressed stream ends early ({text})"


class _YAMLLoader(yaml.CSafeLoader):
    """Safe loader that keeps timestamps as strings (datetime objects would not survive msgpack/JSON)."""


_YAMLLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
json_semantics(_YAMLLoader)


JSON_DEPTH_LIMIT: Final = 1024  # orjson's: a deeper line is refused ("depth limit exceeded")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Run a bulk decode without the cyclic GC, then keep the GC away from what it decoded.

    The cyclic GC makes bulk JSON decoding 2.5-3x slower (NOTES §5): every decoded dict and list is a tracked
    container, scanned again and again while it lives in the reorder window. Decoded events are acyclic (freed by
    reference counting alone), so after each chunk the surviving objects are moved to the permanent generation
    (``gc.freeze()``) and the GC is re-enabled; :func:`read_audit`'s iterator calls ``gc.unfreeze()`` when it
    ends. Side effect for callers, documented in docs/audit.md: cyclic garbage *they* create while reading is
    collected only after the iterator ends. If the caller had disabled the GC, nothing is frozen or re-enabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


# --- files ---------------------------------------------------------------------------------------------------------


def expand_paths(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[str]:
    """Expand globs (each pattern's matches sorted by name, folders left out), keep literal paths, drop duplicates,
    keep order. A literal path that does not exist is an :class:`InputError` (a typo, where an unusable file among
    several, e.g. an empty rotated one, is only skipped by :func:`read_audit`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        path = os.fspath(raw)
        if not isinstance(path, str) or not path:
            raise UsageError(f"not a file name: {raw!r}")
        if any(c in path for c in "*?[") and not os.path.exists(path):
            found = sorted(glob.glob(path))
            matches = [m for m in found if not os.path.isdir(m)]  # (`logs/*`: the files, not the folders beside them)
            if not matches:
                folders = f" (only {len(found)} folder(s))" if found else ""
                raise InputError(f"{path}: no file matches this pattern{folders}")
        elif not os.path.lexists(path):
            raise InputError(f"{path}: no such file")
        else:
            matches = [path]
        for match in matches:
            if match not in seen:
                seen.add(match)
                out.append(match)
    if not out:
        raise UsageError("no audit log file given")
    return out


def _open(path: str) -> tuple[contextlib.ExitStack[bool | None], Callable[[int], bytes], bool]:
    """Open ``path`` for reading, transparently gunzipping: ``(closer, read(n), compressed)``.

    ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end; on a gzip stream it never discards data it
    already decompressed, so a stream that ends early raises only after everything before the break was returned.
    """
    stack = contextlib.ExitStack()
    with contextlib.suppress(OSError):  # (said by open below)
        if stat.S_ISFIFO(os.stat(path).st_mode):  # opening one waits for a writer, for ever (black-box finding)
            raise InputError(f"{path}: a pipe, not a file: an audit log is read twice (its format first, then its "
                             "events), so save it to a file first")
    try:
        raw = stack.enter_context(open(path, "rb", buffering=0))  # noqa: SIM115 - the stack closes it
        magic = raw.read(6)
        raw.seek(0)
    except IsADirectoryError:
        stack.close()
        raise InputError(f"{path}: is a directory, not an audit log file") from None
    except OSError as err:
        stack.close()
        if err.errno in REFUSALS:  # no permission, an I/O error: the system's refusal (exit 7), for any file
            err.filename = err.filename or path  # (a read's error names no file: `--audit /proc/self/mem`)
            raise
        if err.errno == errno.ESPIPE:
            raise InputError(f"{path}: a pipe, not a file: an audit log is read twice (its format first, then its "
                             "events), so save it to a file first") from None
        if err.errno in (errno.EMFILE, errno.ENFILE):  # every file stays open while they are merged
            raise InputError(f"{path}: too many files open at once: the audit files are merged together, each "
                             "open; raise the limit (ulimit -n) or join rotated files of one server first "
                             "(cat, zcat)") from None
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
    if magic.startswith(_GZIP_MAGIC):
        gz = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        read: Callable[[int], bytes] = gz.read1
        return stack, read, True
    for prefix, name in _OTHER_MAGIC.items():
        if magic.startswith(prefix):
            stack.close()
            raise InputError(f"{path}: {name}-compressed; decompress it first (only gzip is read directly)")
    return stack, raw.read, False


class _ByteStream:
    """The minimal file-like object libyaml reads from (it calls ``read(size)`` and handles the encoding/BOM)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read

    def read(self, size: int = _CHUNK, /) -> bytes:
        return self._read(size)


def _read_head(read: Callable[[int], bytes]) -> tuple[bytes, BaseException | None]:
    """The first bytes of a stream: at least up to the first non-blank byte (or EOF), about 64 KiB."""
    chunks: list[bytes] = []
    size = 0
    while size < _MAX_BLANK_PREFIX:
        try:
            chunk = read(_SNIFF)
        except _BROKEN_STREAM as err:
            return b"".join(chunks), err
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size >= _SNIFF and not chunk.isspace():
            break
    return b"".join(chunks), None


def sniff(path: str) -> str:
    """The container of ``path``: ``"jsonl"``, ``"json"`` (one document), ``"stamped"`` (JSON lines after a
    timestamp each: CloudWatch's export to S3) or ``"yaml"``; :class:`InputError` if the
    file is empty, binary, not valid gzip, compressed otherwise, or of no known format."""
    closer, read, compressed = _open(path)
    with closer:
        head, broken = _read_head(read)
    if broken is not None and not head:
        kind = "gzip stream" if compressed else "file"
        raise InputError(f"{path}: unreadable {kind}: {broken}")
    if not head.strip():
        raise InputError(f"{path}: empty file" + (" (after gunzip)" if compressed else ""))
    if head.startswith(MAGIC):
        raise InputError(f"{path}: a kwoksnap .kws file, not an audit log (a recording is replayed as `kwoksnap "
                         "replay FILE`, without --audit)")
    if compressed and head.startswith(_GZIP_MAGIC):  # (black-box finding: said "binary file (NUL bytes)")
        raise InputError(f"{path}: compressed twice (a gzip inside a gzip): gunzip it once first")
    sample = head[:64] if len(head) % 2 == 0 or len(head) > 64 else head[:-1]
    odd, even = sample[1::2], sample[0::2]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(sample) >= 4 and (
            (not any(odd) and all(even)) or (not any(even) and all(odd)))):
        raise InputError(f"{path}: UTF-16 text (PowerShell's `>` writes it), not UTF-8: convert it first "
                         "(iconv -f UTF-16 -t UTF-8)")
    if b"\x00" in head.lstrip()[:4096].split(b"\n", 1)[0]:
        # (only the first line: a log a crash padded with NUL bytes further on is read, its NUL lines malformed)
        raise InputError(f"{path}: binary file (NUL bytes), not an audit log")
    binary = InputError(f"{path}: binary file (not UTF-8 text), not an audit log")
    utf8 = True
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        # In JSON lines a byte that is no UTF-8 makes its own line malformed, wherever it falls (it rejected the
        # whole file within the first 64 KiB: black-box finding), in the first line too when JSON lines follow it
        # (a file split inside a character); any other file holding one is binary, as before.
        text, utf8 = head.decode(errors="replace"), False
    text = text.removeprefix("\ufeff")
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise InputError(f"{path}: no audit event: only comments or blank lines"
                         + (" (after gunzip)" if compressed else ""))
    container = detect_container(text)
    if container == "json":
        container = _json_layout(text)
    elif container != "stamped" and _records_after_the_first_line(text):  # a log split inside a line (`split -b`)
        container = "jsonl"
    if not utf8 and container not in ("jsonl", "stamped"):
        if container in ("json", "yaml"):  # (text, read whole: it cannot be decoded past the byte)
            raise InputError(f"{path}: not UTF-8 text: a byte that is no UTF-8 in a {container.upper()} file read "
                             "whole (only JSON lines are read past one)")
        raise binary
    if container in ("jsonl", "json", "yaml", "stamped"):
        return container
    raise InputError(f"{path}: unknown format (not JSON lines, JSON or YAML audit events)")


def _json_layout(text: str) -> str:
    """JSON lines unless the first two significant lines are each no JSON value (pretty-printed document) and no
    later line of the head is a whole record (a map of several keys on one line, which a pretty-printed document
    never has): a log whose first lines are cut or garbled is still read line by line, not whole into memory."""
    lines = [line for line in text.splitlines(keepends=True) if line.strip() and not line.lstrip().startswith("#")]
    complete = [line for line in lines if line.endswith(("\n", "\r"))]
    if len(complete) < 2:
        return "jsonl"  # one (possibly huge) line: read as JSON lines, a one-line array is a batch
    records = 0
    for n, line in enumerate(complete[:_LAYOUT_LINES]):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if n < 2:
            return "jsonl"
        # (two: a pretty array of compact records has one such line, its last, with no comma after it)
        records += type(value) is dict and len(value) >= 2
        if records >= 2:
            return "jsonl"
    return "json"


_LAYOUT_LINES: Final = 32  # lines of the head looked at for a whole record


def _records_after_the_first_line(text: str) -> bool:
    """Whether lines after the first significant one are whole JSON records (a map of several keys on one line,
    at its start), the first being no such line: JSON lines whose first line is the end of a line cut in two
    (`split -b`, a log copied from the middle). Taken for YAML or an unknown format, the whole file was lost."""
    lines = [line for line in text.splitlines(keepends=True) if line.strip() and not line.lstrip().startswith("#")]
    first = lines[0].rstrip() if lines else ""
    if first == "---" or first.startswith(("--- ", "%YAML ")):  # a YAML stream (of JSON-style documents, maybe);
        return False  # (not `---"}}`: a piece of a split log can start so, re-test finding)
    for line in lines[1:_LAYOUT_LINES]:
        if line.startswith("{") and line.endswith(("\n", "\r")):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(value) is dict and len(value) >= 2:
                return True
    return False


# --- decoding ------------------------------------------------------------------------------------------------------

# (ts, resourceVersion, file index, seq, event): the sort key + event. An event that shows no resourceVersion (a
# binding's or a delete's Status, a Request- or Metadata-level event) takes the highest its file showed before it:
# its file wrote it after those (completion order), so a delete or a binding logged after a create in the same second
# (v1beta1 logs stamp seconds) or microsecond stays after it. Before its file has shown any, it sorts after the
# events of its timestamp that show one (such events change objects that exist: a status patch, a binding, a
# delete), and so do the events without one that follow it in that timestamp (none moves before another of its
# file). As 0 it sorted before every event of its timestamp: a delete before its object's create, which then
# stayed (black-box finding).
Item = tuple[int, int, int, int, AuditEvent]
_NO_RV_YET: Final = 1 << 62


def _sort_rv(rv: int, ts: int, floor: int, sentinel_ts: int) -> tuple[int, int, int]:
    """The resourceVersion an event (``rv``, 0 if it shows none, at ``ts``) sorts by (see Item), and its file's
    floor and sentinel timestamp (of the last event that sorted as _NO_RV_YET) moved on."""
    if rv:
        return rv, rv if rv > floor or floor == _NO_RV_YET else floor, sentinel_ts
    if floor == _NO_RV_YET or ts == sentinel_ts:
        # (also after the file's first resourceVersion, within the timestamp of earlier such events: they stay in
        # file order among themselves, none moves before another of its file)
        return _NO_RV_YET, floor, ts
    return floor, floor, sentinel_ts


class _FileReader:
    """Decodes one file into sort items (in file order, one list per chunk) and counts into the shared stats."""

    def __init__(
        self,
        path: str,
        index: int,
        container: str,
        stats: ParseStats,
        strict: bool,
        prefilter: Callable[[bytes], str | None] | None,
    ) -> None:
        self.path = path
        self.index = index
        self.container = container
        self.stats = stats
        self.strict = strict
        self.prefilter = prefilter
        self.seq = 0
        # The highest resourceVersion shown so far in this file: an event that shows none (a binding's or a
        # delete's Status, a Request- or Metadata-level event) sorts with it (see Item), not before it.
        self.rv_floor = _NO_RV_YET
        self.sentinel_ts = -1  # the timestamp of the last event that sorted as _NO_RV_YET (see Item)
        # Second copies of an event in this file (see without_copies): the events of the latest timestamp emitted.
        self.run_ts = -1
        self.run: list[AuditEvent] = []  # the events of the microsecond run_ts so far (for copies)
        self.run_keys: set[tuple[Any, ...]] | None = None  # their copy keys, once the run is long

    # Problems ----------------------------------------------------------------------------------------------------

    def malformed(self, where: str, reason: str) -> None:
        if self.strict:
            raise InputError(f"{where}: {reason}")
        self.stats.add_malformed(where, reason)

    def truncated(self, where: str, what: str) -> None:
        if self.strict:
            raise InputError(f"{where}: {what}")
        self.stats.truncated[self.path] = f"{where}: {what}"

    def problems(self, found: list[tuple[str, str, bool]]) -> None:
        for where, reason, ignored in found:
            if ignored:
                self.stats.ignored[reason] += 1
            else:
                self.malformed(where, reason)

    def items(self, decoded: list[tuple[str, AuditEvent]], out: list[Item]) -> None:
        index = self.index
        seq = self.seq
        formats: Counter[str] = self.stats.formats
        for flavour, event in decoded:
            formats[flavour] += 1
            key, self.rv_floor, self.sentinel_ts = _sort_rv(resource_version(event), event["ts"], self.rv_floor,
                                                            self.sentinel_ts)
            out.append((event["ts"], key, index, seq, event))
            seq += 1
        self.seq = seq
        self.stats.events += len(decoded)

    def without_copies(self, items: list[Item]) -> list[Item]:
        """Items leaving the reorder window, less the second copy of any event (:func:`_same`; files joined with
        `cat`, a line written twice), counted in ``stats.duplicates``: replayed twice, a JSON patch would apply
        twice. Copies share their timestamp, so in time order they come among the events of that very microsecond
        (items leave the window in order, a timestamp's events together): only those are compared. The bodies are
        not looked at (they may still be raw: :func:`_finished`). (:func:`first_copies` does the same across files.)
        """
        copies: list[int] = []
        run_ts, run, keys = self.run_ts, self.run, self.run_keys
        for i, item in enumerate(items):
            event, ts = item[4], item[0]
            if ts != run_ts:
                run_ts, run, keys = ts, [event], None
            elif not event["auditID"]:
                pass
            elif keys is None and len(run) < _RUN_SCAN:
                if any(_same(e, event) for e in run):
                    copies.append(i)
                    continue
                run.append(event)
            else:  # many events in one microsecond (a log with second-precision times): a set, not a scan
                if keys is None:
                    keys = {_copy_key(e) for e in run}
                key = _copy_key(event)
                if key in keys:
                    copies.append(i)
                    continue
                keys.add(key)
        self.run_ts, self.run, self.run_keys = run_ts, run, keys
        if not copies:
            return items
        self.stats.duplicates += len(copies)
        drop = set(copies)
        return [item for i, item in enumerate(items) if i not in drop]

    def bad_body(self, event: AuditEvent) -> None:
        """A fast-road event whose body orjson rejected on the way out (:func:`_finished`): its line is malformed,
        as the general road would have found at once (strict mode decodes bodies at once instead)."""
        self.stats.events -= 1
        formats = self.stats.formats
        formats["native"] -= 1
        if not formats["native"]:
            del formats["native"]
        self.malformed(event["source"], "not valid JSON")

    # Containers --------------------------------------------------------------------------------------------------

    def batches(self) -> Iterator[list[Item]]:
        closer, read, _ = _open(self.path)
        with closer:
            if self.container in ("jsonl", "stamped"):
                yield from self._jsonl(read, stamped=self.container == "stamped")
            elif self.container == "json":
                yield from self._document(read)
            else:
                yield from self._yaml(read)

    def _jsonl(self, read: Callable[[int], bytes], stamped: bool = False) -> Iterator[list[Item]]:
        """JSON lines; ``stamped``: each after a timestamp (left out, up to its ``{``, before decoding)."""
        lineno = 0  # lines consumed so far
        pending: list[bytes] = []
        first = True
        while True:
            broken: BaseException | None = None
            try:
                chunk = read(_CHUNK)
            except _BROKEN_STREAM as err:
                broken, chunk = err, b""
            if first:
                chunk = chunk.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM (sniff already looked past it)
                first = False
            if chunk:
                lines = chunk.split(b"\n")
                if len(lines) == 1:
                    pending.append(chunk)  # a line longer than a chunk: no length limit, just keep reading
                    continue
                if pending:
                    pending.append(lines[0])
                    lines[0] = b"".join(pending)
                    pending = []
                tail = lines.pop()
                if tail:
                    pending = [tail]
                batch = self._decode_lines(_unstamped(lines) if stamped else lines, lineno)
                lineno += len(lines)
                if batch:
                    yield batch
                continue
            if pending:  # the last line had no newline: complete if it parses, else cut off
                cut = "last line is cut off" if broken is None else ""  # a broken stream is reported once, below
                last = [b"".join(pending)]
                batch = self._decode_lines(_unstamped(last) if stamped else last, lineno, cut)
                lineno += 1
                if batch:
                    yield batch
            if broken is not None:
                self.truncated(f"{self.path}:{lineno}", _stream_problem(broken))
            return

    def _decode_lines(self, lines: list[bytes], first: int, cut: str | None = None) -> list[Item]:
        """Decode one chunk of lines into sort items. The hot loop: locals only, GC paused, no generator inside.

        ``cut`` is set for an unterminated last line: if it does not parse it is reported as truncated with this
        message (or not at all if ``""``: the caller reports the broken stream), not as malformed.
        """
        path = self.path
        index = self.index
        seq = self.seq
        floor, sentinel_ts = self.rv_floor, self.sentinel_ts
        no_rv_yet = _NO_RV_YET
        loads = orjson.loads
        scan = scan_native
        eager = self.strict  # strict mode must fail while reading the line, so bodies are decoded at once
        decode_error = orjson.JSONDecodeError
        prefilter = self.prefilter
        skipped = self.stats.skipped
        out: list[Item] = []
        append = out.append
        others: list[tuple[str, AuditEvent]] = []
        problems: list[tuple[str, str, bool]] = []
        count = prefiltered = native = 0
        with _gc_paused():
            for n, line in enumerate(lines, first + 1):
                if line and line[0] == 0:  # a crash's NUL padding before the next event (no newline after it)
                    padding = len(line)
                    line = line.lstrip(b"\x00")
                    padding -= len(line)
                    if cut is None or line.strip():
                        problems.append((f"{path}:{n}", f"{padding} NUL bytes (a crash's padding: what was written "
                                         "there is lost)", False))
                    elif cut:
                        self.truncated(f"{path}:{n}", f"ends in {padding} NUL bytes (a crash's padding: what was "
                                       "written there is lost)")
                if not line or line.isspace() or line[0] == 35 or (line[0] in b" \t" and line.lstrip()[:1] == b"#"):
                    continue  # blank, or a `#` comment (a licence header)
                count += 1
                if prefilter is not None and cut is None:  # (an unterminated last line is parsed: cut off?)
                    reason = prefilter(line)
                    if reason is not None:
                        skipped[reason] += 1
                        prefiltered += 1
                        continue
                source = f"{path}:{n}"
                fast = scan(line, source, eager)
                if fast is not None:
                    rv, event = fast
                    ts = event["ts"]
                    if rv:  # (_sort_rv, inline here: the hot loop)
                        if rv > floor or floor == no_rv_yet:
                            floor = rv
                    elif floor == no_rv_yet or ts == sentinel_ts:
                        rv, sentinel_ts = no_rv_yet, ts
                    else:
                        rv = floor
                    append((ts, rv, index, seq, event))
                    seq += 1
                    native += 1
                    continue
                try:
                    values: Sequence[Any] = (loads(line),)
                except decode_error as err:
                    values = self._undecoded(line, source, cut, problems, str(err))
                    if not values:
                        continue
                for value in values:
                    if type(value) is dict and "auditID" in value:
                        try:
                            event = from_native(value, source)
                        except Malformed as err:
                            problems.append((source, str(err), False))
                            continue
                        rv, floor, sentinel_ts = _sort_rv(
                            0 if event["response"] is None else resource_version(event), event["ts"], floor,
                            sentinel_ts)
                        append((event["ts"], rv, index, seq, event))
                        seq += 1
                        native += 1
                    else:
                        decode_value(value, source, others, problems)
                        if others:
                            self.seq, self.rv_floor, self.sentinel_ts = seq, floor, sentinel_ts
                            self.items(others, out)
                            seq, floor, sentinel_ts = self.seq, self.rv_floor, self.sentinel_ts
                            others.clear()
            self.seq, self.rv_floor, self.sentinel_ts = seq, floor, sentinel_ts
            stats = self.stats
            stats.lines += count
            stats.prefiltered += prefiltered
            if native:
                stats.events += native
                stats.formats["native"] += native
            self.problems(problems)
            return out

    def _undecoded(self, line: bytes, source: str, cut: str | None, problems: list[tuple[str, str, bool]],
                   error: str = "") -> list[Any]:
        """The values of a line that is no JSON value as it stands (off the hot path): one after a UTF-8 BOM (files
        that each had one, joined with cat), documents back to back (Kinesis Firehose's S3 objects, events that lost
        their newlines), the whole records of a one-line export cut short; what is left of it is reported. Empty
        when nothing is (reported as malformed, or as the cut of an unterminated last line: ``cut``, see
        :meth:`_decode_lines`)."""
        if line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
            with contextlib.suppress(orjson.JSONDecodeError):
                return [orjson.loads(line)]
        found = _concatenated(line)
        if found is not None:
            values, rest = found
            if rest and cut is None:
                problems.append((source, f"not valid JSON after {len(values)} whole document(s)", False))
            elif rest and cut:
                self.truncated(source, f"{cut} after {len(values)} whole document(s)")
            return values
        kept = _records_before_the_break(line) if cut is not None else None
        if kept is not None:
            if cut:
                self.truncated(source, f"{cut}: the {kept[1]} whole records before the cut are read")
            return [kept[0]]
        if cut is None:
            # (black-box finding: a line nested past orjson's limit was said to be no valid JSON, sending the user
            # hunting for a syntax error)
            deep = error.startswith("depth limit exceeded")
            problems.append((source, f"nested more deeply than {JSON_DEPTH_LIMIT:,} levels of maps and lists, "
                             "more than kwoksnap can read" if deep else "not valid JSON", False))
        elif cut:
            self.truncated(source, cut)
        return []

    def _read_all(self, read: Callable[[int], bytes]) -> tuple[bytes, BaseException | None]:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = read(_CHUNK)
            except _BROKEN_STREAM as err:
                return b"".join(chunks), err
            if not chunk:
                return b"".join(chunks), None
            chunks.append(chunk)

    def _document(self, read: Callable[[int], bytes]) -> Iterator[list[Item]]:
        """A whole-file JSON document (pretty-printed event, array, EventList, ``{"records": [...]}``).

        If it does not parse but later lines do (JSON lines whose first two lines are broken), it is read as JSON
        lines after all, so one bad header never costs the whole file.
        """
        data, broken = self._read_all(read)
        data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM (sniff already looked past it)
        where = f"{self.path}:1"
        if (header := _LEADING_COMMENTS.match(data)) is not None:  # blanked, so that positions stay true
            data = _BLANK.sub(b" ", header.group()) + data[header.end():]
        try:
            with _gc_paused():
                value = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            decoded: list[tuple[str, AuditEvent]] = []
            problems: list[tuple[str, str, bool]] = []
            found = _one_after_another(data) if "after document" in str(err) or "trailing" in str(err) else None
            if found is not None:  # `jq .` of a log, gcloud exports appended with >>, webhook dumps
                documents, unparsed = found
                with _gc_paused():
                    for line, value in documents:
                        self.stats.lines += 1
                        decode_value(value, f"{self.path}:{line}", decoded, problems)
                if broken is not None:  # the stream ended early: its last document is the one cut off
                    cut = unparsed.pop() if unparsed and unparsed[-1] > documents[-1][0] else documents[-1][0]
                    self.truncated(f"{self.path}:{cut}", _stream_problem(broken))
                for line in unparsed:  # (reading went on at the next document)
                    self.stats.lines += 1
                    self.malformed(f"{self.path}:{line}", "not a valid JSON document, or cut off (reading went on "
                                   "at the next line that starts with '{')")
                self.problems(problems)
                items: list[Item] = []
                self.items(decoded, items)
                if items:
                    yield items
                return
            lines = data.split(b"\n")
            if not _has_json_line(lines[2:100]):
                del lines
                self.stats.lines += 1
                kept = _records_before_the_break(data)
                del data
                if kept is None:
                    if broken is not None:
                        self.truncated(where, f"{_stream_problem(broken)}; the JSON document is lost")
                    else:
                        self.malformed(where, f"not a valid JSON document ({_position(err)})")
                    return
                # An export cut short (a copy, a download, a disk that filled up): its whole records are read.
                value, count = kept
                lost = f"the {count} whole records before it are read, the rest is lost"
                if broken is not None:
                    self.truncated(where, f"{_stream_problem(broken)}; {lost}")
                elif "unexpected end of data" in str(err):
                    self.truncated(where, f"the JSON document is cut off ({_position(err)}); {lost}")
                else:
                    self.malformed(where, f"not a valid JSON document ({_position(err)}); {lost}")
                decoded, problems = [], []
                with _gc_paused():
                    decode_value(value, where, decoded, problems)
                self.problems(problems)
                items = []
                self.items(decoded, items)
                if items:
                    yield items
                return
            del data
            last = lines.pop()
            for start in range(0, len(lines), 1000):
                batch = self._decode_lines(lines[start : start + 1000], start)
                if batch:
                    yield batch
            if last:
                batch = self._decode_lines([last], len(lines), "last line is cut off" if broken is None else "")
                if batch:
                    yield batch
            if broken is not None:
                self.truncated(f"{self.path}:{len(lines) + 1}", _stream_problem(broken))
            return
        del data
        self.stats.lines += 1
        decoded, problems = [], []
        with _gc_paused():
            decode_value(value, where, decoded, problems)
        if broken is not None:
            self.truncated(where, _stream_problem(broken))
        self.problems(problems)
        items = []
        self.items(decoded, items)
        if items:
            yield items

    def _yaml(self, read: Callable[[int], bytes]) -> Iterator[list[Item]]:
        """YAML documents (``---``-separated), decoded one by one.

        A document that cannot be represented (a non-string-keyable key, ``!!set``...) is malformed and skipped;
        a syntax error ends the file (a YAML parser cannot resynchronise). Empty documents are ignored.
        """
        loader = _YAMLLoader(_ByteStream(read))
        try:
            while True:
                decoded: list[tuple[str, AuditEvent]] = []
                problems: list[tuple[str, str, bool]] = []
                where = f"{self.path}:?"
                try:
                    with _gc_paused():
                        if not loader.check_node():
                            return
                        node = loader.get_node()
                        assert node is not None  # check_node() said there is one
                        where = f"{self.path}:{node.start_mark.line + 1}"
                        self.stats.lines += 1
                        # (a 600-byte "billion laughs" took 615 MB on its way to JSON; a log's events sharing one
                        # object through aliases, 20 times its size, are fine: hence the larger allowance)
                        if aliases_blow_up(node, allowance=_YAML_ALIAS_ALLOWANCE):
                            raise _AliasBomb("its aliases expand it far beyond its own size")
                        data = loader.construct_document(node)
                        if data is None:
                            self.stats.lines -= 1  # an empty document ("---" at the end) is no record
                            continue
                        value = orjson.loads(orjson.dumps(data, option=_JSON_SAFE))
                        decode_value(value, where, decoded, problems)
                except (yaml.constructor.ConstructorError, TypeError, ValueError, RecursionError) as err:
                    # The parser is still in sync: drop this document's half-built state and go on.
                    loader.state_generators, loader.constructed_objects, loader.recursive_objects = [], {}, {}
                    said = err if isinstance(err, _AliasBomb) else type(err).__name__
                    self.malformed(where, f"unusable YAML document ({said})")
                    continue
                except yaml.MarkedYAMLError as err:
                    if where.endswith(":?"):  # the parser failed on the document itself: it counts as read
                        self.stats.lines += 1
                    mark = err.problem_mark or err.context_mark
                    line = mark.line + 1 if mark is not None else "?"
                    self.malformed(f"{self.path}:{line}", f"YAML syntax error: {err.problem or 'invalid'}")
                    return
                except yaml.YAMLError as err:  # e.g. the reader's "not UTF-8"
                    if where.endswith(":?"):
                        self.stats.lines += 1
                    self.malformed(where, f"unreadable YAML ({type(err).__name__})")
                    return
                except _BROKEN_STREAM as err:
                    self.truncated(where, _stream_problem(err))
                    return
                self.problems(problems)
                items: list[Item] = []
                self.items(decoded, items)
                if items:
                    yield items
        finally:
            loader.dispose()


_JSON_SAFE: Final = orjson.OPT_NON_STR_KEYS  # YAML allows int/bool keys; JSON and msgpack recordings want strings


_LEADING_COMMENTS: Final = re.compile(rb"(?:[ \t\r]*(?:#[^\n]*)?\n)+")
_BLANK: Final = re.compile(rb"[^\n]")


def _one_after_another(data: bytes) -> tuple[list[tuple[int, Any]], list[int]] | None:
    """``(line, value)`` of each JSON document when ``data`` is several written one after another (pretty-printed
    ones: `jq .` of JSON lines), and the lines where those that do not parse start; None when not even the first one
    does. After one that does not parse, reading goes on at the next line that starts with ``{`` (where `jq .`
    starts each document). Boundaries are found by the ``json`` module, values decoded by orjson (as every other
    document: its number rules)."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    documents: list[tuple[int, Any]] = []
    broken: list[int] = []
    position, line = 0, 1
    while True:
        start = _BLANKS.match(text, position).end()  # type: ignore[union-attr]
        if start == len(text):
            return documents, broken
        line += text.count("\n", position, start)
        try:
            end = decoder.raw_decode(text, start)[1]
            value = orjson.loads(text[start:end])
        except (ValueError, RecursionError):  # (orjson.JSONDecodeError is a ValueError)
            if not documents:
                return None
            broken.append(line)
            end = text.find("\n{", start)
            if end < 0:
                return documents, broken
            end += 1
        else:
            documents.append((line, value))
        line += text.count("\n", start, end)
        position = end


_BLANKS: Final = re.compile(r"[ \t\n\r]*")


_RECORDS_KEYS: Final = ("items", "records", "entries")


def _top_level_records(text: str, at: int, decoder: json.JSONDecoder) -> tuple[str, int, int] | None:
    """In a JSON object whose first key starts after ``at``: the key of its array of records (``items``,
    ``records``, ``entries``) at the top level, where that array's items start, and where that key does; None if
    the object breaks before one (a key of that name inside another value is not it: re-test finding)."""
    while True:
        key_at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
        try:
            key, at = decoder.raw_decode(text, key_at)
        except (ValueError, RecursionError):
            return None
        at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
        if type(key) is not str or not text.startswith(":", at):
            return None
        at = _BLANKS.match(text, at + 1).end()  # type: ignore[union-attr]
        if key in _RECORDS_KEYS and text.startswith("[", at):
            return key, at + 1, key_at
        try:
            at = decoder.raw_decode(text, at)[1]
        except (ValueError, RecursionError):
            return None
        at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
        if not text.startswith(",", at):
            return None
        at += 1


def _records_before_the_break(data: bytes) -> tuple[Any, int] | None:
    """What of a JSON document that does not parse (cut short) can be read: the whole records of its array (a
    JSON array, an ``EventList``'s items, AKS's ``records``, GKE's ``entries``) before the break, as the document
    they were in (with that array shortened), and how many; None if not even one is whole."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    start = _BLANKS.match(text).end()  # type: ignore[union-attr]
    decoder = json.JSONDecoder()
    key = None
    if text.startswith("[", start):
        at = start + 1
    elif text.startswith("{", start) and (found := _top_level_records(text, start + 1, decoder)) is not None:
        key, at, prefix_end = found
    else:
        return None
    values: list[Any] = []
    while True:
        at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
        try:
            end = decoder.raw_decode(text, at)[1]
            values.append(orjson.loads(text[at:end]))  # (orjson's number rules, as every other document's)
        except (ValueError, RecursionError):
            break
        at = _BLANKS.match(text, end).end()  # type: ignore[union-attr]
        if not text.startswith(",", at):
            break
        at += 1
    if not values:
        return None
    if key is None:
        return values, len(values)
    try:  # (the wrapper's own keys before the array: an EventList's kind and apiVersion)
        wrapper = orjson.loads(text[start:prefix_end] + f'"{key}":[]}}')
    except orjson.JSONDecodeError:
        wrapper = {}
    if type(wrapper) is not dict:
        wrapper = {}
    wrapper[key] = values
    return wrapper, len(values)


def _concatenated(line: bytes) -> tuple[list[Any], bool] | None:
    """The JSON documents of a line that holds several written back to back, nothing but blanks between them
    (Kinesis Firehose delivers CloudWatch subscription envelopes to S3 so; events a writer lost the newlines of),
    and whether what follows the last whole one is not one (cut off, or garbled); None unless the line starts with
    a whole document followed by something (one whole document alone parses as the line)."""
    if line.lstrip()[:1] not in (b"{", b"["):
        return None
    found = _one_after_another(line)
    if found is None or not found[0] or (len(found[0]) < 2 and not found[1]):
        return None
    return [value for _, value in found[0]], bool(found[1])


def _has_json_line(lines: list[bytes]) -> bool:
    for line in lines:
        try:
            if type(orjson.loads(line)) in (dict, list):
                return True
        except orjson.JSONDecodeError:
            continue
    return False


def _position(err: orjson.JSONDecodeError) -> str:
    return f"line {err.lineno}, column {err.colno}"


def _unstamped(lines: list[bytes]) -> list[bytes]:
    """The lines of a CloudWatch export to S3 without the timestamp before each message (the event has its own)."""
    out = []
    for line in lines:
        brace = line.find(b"{", 0, 48)  # (the timestamp may hold a space itself: `2026-01-01 10:00:00.000Z {`)
        out.append(line[brace:] if brace > 0 and line[:1].isdigit() else line)
    return out


_YAML_ALIAS_ALLOWANCE: Final = 5_000_000  # values an audit YAML document may gain through aliases, beyond 10x


class _AliasBomb(ValueError):
    """A YAML document whose aliases expand it far beyond its own size."""


# --- ordering ------------------------------------------------------------------------------------------------------


def _windowed(reader: _FileReader, window_ns: int, window_events: int) -> Iterator[list[Item]]:
    """Re-order one file's roughly sorted items through a bounded window; count those that arrive too late.

    The window is a sorted list. Each chunk is sorted on its own (nearly sorted already: linear time in C) and, as
    lines are roughly in order, usually just appended; otherwise only the overlapping tail of the window is re-sorted
    with it. Then every item older than the newest one minus ``window_ns`` is emitted, or more if the window holds
    over ``window_events`` items. Cost per chunk: the chunk plus the overlap, never the whole window. Emitted items
    are yielded as one list, less second copies (:meth:`_FileReader.without_copies`), bodies still raw.
    """
    buf: list[Item] = []
    last_out = -(1 << 62)  # ts of the newest item emitted so far
    for batch in reader.batches():
        batch.sort()
        if buf and batch[0] < buf[-1]:
            start = bisect.bisect_right(buf, batch[0])
            batch += buf[start:]
            del buf[start:]
            batch.sort()
        buf += batch
        batch.clear()  # (the window holds them now; its maker's name for the list would keep them, and their bodies)
        cut = bisect.bisect_right(buf, buf[-1][0] - window_ns, key=_ts_of)
        cut = max(cut, len(buf) - window_events)
        if cut:
            out = buf[:cut]
            del buf[:cut]
            if out[0][0] < last_out:
                reader.stats.late += bisect.bisect_left(out, last_out, key=_ts_of)
            last_out = max(last_out, out[-1][0])
            yield reader.without_copies(out)
    if buf and buf[0][0] < last_out:
        reader.stats.late += bisect.bisect_left(buf, last_out, key=_ts_of)
    if buf:
        yield reader.without_copies(buf)


_ts_of: Final = operator.itemgetter(0)
_event_of: Final = operator.itemgetter(4)


def read_audit(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    stats: ParseStats | None = None,
    strict: bool = False,
    prefilter: FilterSpec | None = None,
    window_ns: int = DEFAULT_WINDOW_NS,
    window_events: int = DEFAULT_WINDOW_EVENTS,
) -> Iterator[AuditEvent]:
    """Audit events from ``paths`` (files or globs; plain or gzip), merged and sorted by time.

    Files are checked at once: a missing file raises :class:`InputError` here; an empty, binary or unrecognised
    file raises :class:`InputError` in ``strict`` mode or when no other file is usable, and is otherwise skipped
    and listed in ``stats.unusable_files``. Events then stream lazily, sorted by ``ts``, then responseObject
    resourceVersion, then input order (file order as given, then line order), within the reorder window.

    ``strict``: the first malformed or truncated line (or a gzip stream that ends early) raises
    :class:`InputError` naming ``file:line``. ``prefilter``: drop lines that cannot pass this filter without
    decoding them (counted in ``stats.skipped``); pass the same spec to :func:`filter_events` afterwards.
    """
    if type(window_ns) is not int or window_ns < 0:
        raise UsageError(f"window_ns must be a non-negative integer, not {window_ns!r}")
    if type(window_events) is not int or window_events < 1:
        raise UsageError(f"window_events must be a positive integer, not {window_events!r}")
    if prefilter is not None and not isinstance(prefilter, FilterSpec):
        raise UsageError("prefilter must be a FilterSpec")
    stats = stats if stats is not None else ParseStats()
    files = expand_paths(paths)
    usable: list[tuple[str, str]] = []
    for path in files:
        try:
            container = sniff(path)
        except InputError as err:
            if strict:
                raise
            stats.unusable_files[path] = str(err).removeprefix(f"{path}: ")
            continue
        stats.files[path] = container
        log.info("%s: read as %s", path, container)
        usable.append((path, container))
    if not usable:
        if len(files) == 1:
            raise InputError(f"{files[0]}: {stats.unusable_files[files[0]]}")
        listed = "; ".join(f"{p}: {why}" for p, why in stats.unusable_files.items())
        raise InputError(f"no usable audit log among {len(files)} files ({listed})")
    line_filter = make_prefilter(prefilter) if prefilter is not None else None
    readers = [
        _FileReader(path, i, container, stats, strict, line_filter) for i, (path, container) in enumerate(usable)
    ]
    streams = [_windowed(r, window_ns, window_events) for r in readers]
    return _unwrapped(streams, readers, stats, [path for path, _ in usable], window_ns)


def _unwrapped(streams: list[Iterator[list[Item]]], readers: list[_FileReader], stats: ParseStats, paths: list[str],
               window_ns: int) -> Iterator[AuditEvent]:
    try:
        if len(streams) == 1:
            yield from map(_event_of, _finished(_one_by_one(streams[0]), readers))
        else:
            merged = _finished(heapq.merge(*map(_one_by_one, streams)), readers)
            yield from first_copies(map(_event_of, _skew_watch(merged, stats, paths)), stats, window_ns)
    finally:
        gc.unfreeze()  # see _gc_paused
    if stats.lines and not stats.events and not stats.prefiltered:  # read to the end without one audit event
        what = ", ".join(paths) if len(paths) <= 3 else f"{len(paths)} files"
        found = [f"{stats.malformed} malformed"] + [f"{n} {kind} ignored" for kind, n in sorted(stats.ignored.items())]
        first = f"; first: {stats.malformed_examples[0]}" if stats.malformed_examples else ""
        broken = "".join(f"; {where}" for where in list(stats.truncated.values())[:2])  # (the likelier reason)
        raise InputError(f"{what}: not an audit log: no audit event in {stats.lines} lines ({', '.join(found)}"
                         f"{first}{broken})")


def _one_by_one(batches: Iterator[list[Item]]) -> Iterator[Item]:
    """The items of the batches in order, each let go by its batch as it is handed on, so that an event's decoded
    bodies are freed as soon as the caller is done with it (a batch holding them all cost over a quarter of the parse:
    hundreds of events' objects out of the CPU cache when freed)."""
    for batch in batches:
        batch.reverse()
        pop = batch.pop
        while batch:
            yield pop()


def _finished(items: Iterator[Item], readers: list[_FileReader]) -> Iterator[Item]:
    """``items``, each event with the bodies the fast road left raw decoded just before it is handed on
    (:func:`~kwoksnap.audit.formats.finish_native`): one event's objects at a time, fresh in the CPU cache. A body
    orjson rejects (a number beyond float range, which msgspec's syntax check accepts) makes its line malformed
    (:meth:`_FileReader.bad_body`) and the event is left out."""
    finish = finish_native
    for item in items:
        event = item[4]
        try:
            finish(event)
        except ValueError:
            readers[item[2]].bad_body(event)
            continue
        yield item


SKEW_REPORTED_NS: Final = 1_000_000_000  # a clock skew between files this large is told (stats.clock_skew)
_SKEW_HORIZON_NS: Final = 120_000_000_000  # skews are looked for up to this far


def _skew_watch(items: Iterator[Item], stats: ParseStats, paths: list[str]) -> Iterator[Item]:
    """The merged items unchanged, noting in ``stats.clock_skew`` how far each file's clock is at least behind
    another's (files of several API servers, each stamped by its own clock).

    resourceVersions are etcd revisions, one counter for the cluster, so they order commits across servers. A
    create's resourceVersion is its own commit, made after the create was received. When another file already
    showed a higher resourceVersion at a time earlier than that receipt, that file's event came after this commit,
    yet its clock said it was earlier: its clock is behind by at least the difference (a slow answer adds
    nothing). Other writes are not used as the earlier commit: an update that changed nothing answers with the
    object's old resourceVersion. Per file, the times at which its highest resourceVersion so far grew are kept,
    for the last two minutes."""
    rvs: list[list[int]] = [[] for _ in paths]  # per file: each new highest resourceVersion...
    tss: list[list[int]] = [[] for _ in paths]  # ...and when it came
    behind: dict[int, int] = {}  # file -> ns, the largest gap by which it was behind another
    try:
        for item in items:
            ts, rv, index = item[0], item[1], item[2]
            if rv and rv != _NO_RV_YET and resource_version(item[4]) == rv:  # (its own, not its file's floor)
                own = rvs[index]
                if not own or rv > own[-1]:
                    own.append(rv)
                    tss[index].append(ts)
                    if len(own) > 4096:
                        cut = bisect.bisect_left(tss[index], ts - _SKEW_HORIZON_NS)
                        del own[:cut], tss[index][:cut]
                event = item[4]
                if event["verb"] == "create" and not event["subresource"]:
                    committed_after = event["received"] or ts  # the commit came between receipt and answer
                    for other, theirs in enumerate(rvs):
                        if other != index and theirs and theirs[-1] > rv:
                            first = bisect.bisect_right(theirs, rv)  # the earliest time it showed a later commit
                            gap = committed_after - tss[other][first]
                            if gap > behind.get(other, 0):
                                behind[other] = gap
            yield item
    finally:
        for slow, gap in behind.items():
            if gap >= SKEW_REPORTED_NS:
                stats.clock_skew[paths[slow]] = round(gap / 1e9, 3)


# What makes two events copies of one: a copy is the same line again. The audit ID alone is not enough: a client
# may set the Audit-ID header itself, the same for several requests (synthetic logs reuse them too).
_COPY_KEY: Final = ("auditID", "stage", "received", "ts", "verb", "resource", "subresource", "namespace", "name")


_RUN_SCAN: Final = 16  # events of one microsecond compared one by one; beyond, by a set of their copy keys


def _same(a: AuditEvent, b: AuditEvent) -> bool:
    return all(a[k] == b[k] for k in _COPY_KEY)


def _copy_key(event: AuditEvent) -> tuple[Any, ...]:
    return tuple(event[k] for k in _COPY_KEY)


def first_copies(events: Iterator[AuditEvent], stats: ParseStats, window_ns: int) -> Iterator[AuditEvent]:
    """The events of several files without the second copy of any (:func:`_same`):
    rotated files can overlap, and an event written to both would be replayed twice. Copies carry the same
    timestamp, so they meet within the merge's window; keys are remembered that long. (Each file's own copies are
    left out as it is read: :meth:`_FileReader.finish`.)"""
    # Two generations of keys, swapped once the stream has moved a window on: each key is remembered for one to two
    # windows, at the cost of two set lookups per event (a deque of expiry times cost 2 us an event).
    current: set[tuple[Any, ...]] = set()
    previous: set[tuple[Any, ...]] = set()
    turn: int | None = None
    duplicates = 0
    try:
        for ev in events:
            ts = ev["ts"]
            if turn is None:
                turn = ts + window_ns
            elif ts > turn:
                previous, current, turn = current, set(), ts + window_ns
            key = _copy_key(ev)
            if key in current or key in previous:
                if key[0]:
                    duplicates += 1
                    continue
            else:
                current.add(key)
            yield ev
    finally:
        stats.duplicates += duplicates


def events_from_value(value: Any, source: str) -> list[AuditEvent]:
    """Decode one already-parsed JSON/YAML value (for tests and tools); :class:`InputError` if nothing usable."""
    decoded: list[tuple[str, AuditEvent]] = []
    problems: list[tuple[str, str, bool]] = []
    decode_value(value, source, decoded, problems)
    if problems and not decoded:
        where, reason, _ = problems[0]
        raise InputError(f"{where}: {reason}")
    return [event for _, event in decoded]
