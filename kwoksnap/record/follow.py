"""Follow an API server's audit log file as it grows (``tail -F``), its events as they are written.

Why this module exists: a self-managed API server writes its audit log to a file (``--audit-log-path``), which
is rotated when it grows (``--audit-log-maxsize``: renamed aside, a new file opened under the name). Recording
during an incident means reading what is appended, across rotations, without missing or repeating a line.

The file is read from its end (what was there before is the past: ``convert`` reads it), or from its start. A
line is decoded once its newline is written; at a rotation the old file is read to its end first (the API server
may still have been writing to it), then the new one from its start. Rotations closer together than two looks
(a busy API server with a small ``--audit-log-maxsize``) leave files that were made and renamed aside between
them: those found beside the path under a rotated name (the API server's ``audit-<time>.log``, logrotate's
``audit.log.1`` or ``audit.log-<date>``; not a compressed one) and written since the file before them was opened are
read in between, oldest first. A line that is not an audit event is counted malformed (the first ones named by file
and line), never a reason to stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import orjson

from kwoksnap.audit import AuditEvent, ParseStats
from kwoksnap.audit.formats import decode_value
from kwoksnap.errors import InputError, UsageError

POLL: Final = 0.2  # seconds between looks at a file that did not grow
SETTLE: Final = 1.0  # seconds an old file must stay quiet after a rotation before the new one is read
_COARSE_NS: Final = 20_000_000  # a file's times come from a coarser clock than time.time_ns() (a jiffy)
_READ: Final = 1 << 20
_TAIL: Final = 4096  # bytes last read, kept to tell a file cut and written anew (_still_there): a line's end
# (an audit line ends with its timestamps and the authorization annotations, the same on many lines: 64 bytes were not)


class Follower:
    """Reads the events written to one audit log file (see the module's docstring); ``rotations`` counts the files
    it went on to."""

    def __init__(self, path: str | Path, stats: ParseStats, *, from_start: bool = False, poll: float = POLL) -> None:
        self.path, self.stats, self.from_start, self.poll = Path(path), stats, from_start, poll
        self.rotations = 0
        self.between = 0  # of those, files made and renamed aside between two looks, found beside the path
        self.unreadable = ""  # why the file under the path could not be opened after a rotation, while it could not
        if self.path.exists() and not self.path.is_dir() and not self.path.is_file():  # (opening a FIFO blocks)
            raise InputError(f"{path}: not a regular file (a pipe or a device): follow the file the API server "
                             "writes (--audit-log-path)")
        if not self.path.exists() or self.path.is_dir():  # a file argument that is not there: a usage error, exit 2,
            # as README's exit codes say (black-box finding: exit 3)
            what = "is a directory, not an audit log file" if self.path.is_dir() else "no such file"
            raise UsageError(f"{path}: {what} (follow the file the API server writes: its --audit-log-path)")
        opened = time.time_ns()
        self._stream, self._inode = _open(self.path)  # (now: a path that cannot be read is an error at once)
        self._first = _File(self._stream, self._inode, str(self.path), "" if from_start else "+", False, opened)
        # Files read to their end and closed: inode -> (mtime, size) then. A rotated file keeps its inode (so it is
        # not read again), and a file made later may be given a freed one (a backup deleted): told apart by those.
        self._done: dict[int, tuple[int, int]] = {}
        if self._stream.read(2) == b"\x1f\x8b":
            self._stream.close()
            raise InputError(f"{path}: a gzip file, which is not written to any more: `kwoksnap convert` it")
        stats.files[str(self.path)] = "audit-file"
        self._rest_of_past = False  # the rest of a line being written when recording began is the past's too
        if from_start:
            self._stream.seek(0)
        else:  # from now on: what is there is the past
            end = self._stream.seek(0, os.SEEK_END)
            if end:
                self._stream.seek(max(0, end - _TAIL))
                self._first.tail = self._stream.read(min(end, _TAIL))  # (read up to here: the past)
                self._rest_of_past = self._first.tail[-1:] != b"\n"

    def events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        """The events written from now on (all of the file's with ``from_start``) until ``stop`` is set (what was
        written by then is read first, not what comes while it is). Lines are named ``path:N`` (counted from the
        start of the file) or ``path:+N`` (from where the recording began).

        A file that appears under the path is opened at once, and read once every file before it has been read to
        its end and stayed quiet for ``SETTLE`` (black-box finding: opened only after the old file had settled, the
        path named a later file by then when rotations came less than a second apart, and the files between were
        skipped without a word). One made and renamed aside between two looks (``poll``) is read from beside the
        path (the module's docstring), named by its own path."""
        self._first.rest_of_past = self._rest_of_past
        files: deque[_File] = deque([self._first])
        quiet = 0.0
        ends: dict[int, int] | None = None  # where each file ended when recording stopped: read up to there
        try:
            while True:
                if stop.is_set() and ends is None:
                    self._look(files)  # (a file made under the path since the last look: its lines were written)
                    ends = {id(f): os.fstat(f.stream.fileno()).st_size for f in files}
                if ends is None:
                    self._look(files)
                current = files[0]
                limit = _READ if ends is None else max(0, min(_READ, ends[id(current)] - current.stream.tell()))
                data = current.stream.read(limit) if limit else b""
                if data:
                    quiet = 0.0
                    current.tail = data[-_TAIL:] if len(data) >= _TAIL else (current.tail + data)[-_TAIL:]
                    yield from self._read(current, data)
                    continue
                if len(files) > 1:  # another file is under the path: this one is done once it stays quiet
                    if ends is None and quiet < (SETTLE if current.settle is None else current.settle):
                        quiet += self.poll / 2
                        stop.wait(self.poll / 2)
                        continue
                    yield from self._last_line(current)
                    self._close(current)
                    files.popleft()
                    quiet = 0.0
                    continue
                if ends is not None:
                    if current.pending:  # (cut short when the recording stopped: reported as the reader does)
                        self.stats.truncated[current.name] = (f"{current.name}:{current.prefix}{current.line + 1}: the "
                                                                "last line has no newline yet")
                    return
                stop.wait(self.poll)
        finally:
            for f in files:
                f.stream.close()

    def _look(self, files: deque[_File]) -> None:
        """Open a new file under the path at once (renamed aside and made anew), or start the last one again from
        its start if it was cut shorter than what was read (copied aside and truncated: logrotate's copytruncate,
        whose lines between the copy and the cut are lost to any reader)."""
        newest = files[-1]
        try:
            now = os.stat(self.path)
        except OSError:  # renamed aside, the new one not made yet (or not readable yet): keep reading the old one
            return
        if now.st_ino == newest.inode:
            if len(files) == 1 and (now.st_size < newest.stream.tell() or not _still_there(newest)):
                newest.stream.seek(0)
                newest.prefix, newest.line, newest.pending, newest.rest_of_past = "", 0, bytearray(), False
                newest.tail = b""
                self.rotations += 1
            return
        if stat.S_ISFIFO(now.st_mode):  # (opening one would wait for a writer for ever: review finding)
            self.unreadable = f"{self.path}: a pipe, not a file"
            return
        opened = time.time_ns()  # (before anything else: a file made after this is one the next look may miss)
        try:
            stream, inode = _open(self.path)
        except InputError as exc:  # (replaced by a directory, a loop of links: waited out)
            self.unreadable = str(exc)
            return
        self.unreadable = ""
        between = self._between(newest, inode, {f.inode for f in files})
        files.extend(between)
        files.append(_File(stream, inode, str(self.path), "", False, opened))
        self.rotations += 1 + len(between)
        self.between += len(between)

    def _between(self, newest: _File, new: int, held: set[int]) -> list[_File]:
        """Files rotated aside after ``newest`` was opened and before the file now under the path (``new``) was:
        beside the path under a rotated name, uncompressed, not ``held`` nor read before (the same inode, mtime and
        size as when it was closed), last written since ``newest`` was opened; oldest first. Each was renamed aside
        before a later file existed, so none waits to settle. A path that is a symbolic link (``/var/log/audit.log``
        naming a file on another volume) is looked beside too: the API server renames aside the file it writes,
        which is the one the link names."""
        found: dict[int, tuple[int, str, int]] = {}
        places = {(self.path.parent, self.path.name)}
        with contextlib.suppress(OSError, RuntimeError):  # (a loop of links: only beside the path)
            real = self.path.resolve()
            places.add((real.parent, real.name))
        for directory, name in sorted(places):
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if not _rotated_name(entry.name, name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_ino not in held and st.st_ino != new \
                        and self._done.get(st.st_ino) != (st.st_mtime_ns, st.st_size) \
                        and st.st_mtime_ns >= newest.opened_ns - _COARSE_NS:
                    found[st.st_ino] = (st.st_mtime_ns, entry.path, st.st_ino)
        files = []
        for _, path, inode in sorted(found.values()):
            try:
                stream, opened = _open(Path(path))
            except InputError:
                continue
            if opened != inode:  # (renamed again meanwhile: what is under that name now is another file)
                stream.close()
                continue
            files.append(_File(stream, inode, path, "", False, newest.opened_ns, settle=0.0))
        return files

    def _close(self, f: _File) -> None:
        with contextlib.suppress(OSError):
            st = os.fstat(f.stream.fileno())
            self._done[f.inode] = (st.st_mtime_ns, st.st_size)
        f.stream.close()

    def _read(self, f: _File, data: bytes) -> Iterator[AuditEvent]:
        lines, f.pending = _lines(data, f.pending)
        if lines and f.rest_of_past:  # the rest of a line being written when recording began is the past's too
            del lines[0]
            f.rest_of_past = False
        for text in lines:
            f.line += 1
            yield from _decode(text, f"{f.name}:{f.prefix}{f.line}", self.stats)

    def _last_line(self, f: _File) -> Iterator[AuditEvent]:
        """A rotated file's last line, which will get no newline now."""
        if f.pending:
            yield from _decode(bytes(f.pending), f"{f.name}:{f.prefix}{f.line + 1}", self.stats)
            f.pending = bytearray()


@dataclasses.dataclass(eq=False)
class _File:
    """A file being followed: the path its lines are named by, where they are counted from (``prefix``), when it was
    opened (ns since the epoch), how long it must stay quiet once a later file exists, how many lines were read, the
    start of one not finished yet."""

    stream: IO[bytes]
    inode: int
    name: str
    prefix: str
    rest_of_past: bool
    opened_ns: int
    settle: float | None = None  # (None: SETTLE, read when it is needed)
    line: int = 0
    pending: bytearray = dataclasses.field(default_factory=bytearray)
    tail: bytes = b""  # the last bytes read (at most _TAIL): still there unless the file was cut and written anew


def _still_there(f: _File) -> bool:
    """Whether the bytes last read from ``f`` are still where they were read: a file cut and written past that
    point again before the next look (copytruncate, then a burst) is no shorter, but holds other bytes there
    (black-box finding: the reader went on in the middle of a new line, and the new file's first lines were lost)."""
    if not f.tail:
        return True
    at = f.stream.tell() - len(f.tail)
    try:
        return os.pread(f.stream.fileno(), len(f.tail), at) == f.tail
    except OSError:
        return True  # (a read error: the next read says so)


def _lines(data: bytes, pending: bytearray) -> tuple[list[bytes], bytearray]:
    """The lines ``data`` completes (after ``pending``, the start of one), and what it leaves pending. Only the new
    bytes are split: a long line costs its length, not its length squared (black-box finding: a 200 MB line)."""
    *lines, rest = data.split(b"\n")
    if not lines:
        pending += rest
        return [], pending
    lines[0] = bytes(pending) + lines[0]
    return lines, bytearray(rest)


def _rotated_name(name: str, followed: str) -> bool:
    """Whether ``name`` is one a rotation gives ``followed`` (``audit.log``): logrotate's ``audit.log.1`` or
    ``audit.log-20261130`` (``-%Y%m%d[%H]``, ``-%Y-%m-%d``, ``-%s``), or the API server's
    ``audit-2026-11-30T04-33-00.123.log``; not a compressed one (read with ``convert``), nor another file whose
    name merely starts the same (another API server's ``audit-webhook.log``, a collector's ``audit.log.pos``)."""
    stem, dot, suffix = followed.rpartition(".")
    if not dot:
        stem, suffix = followed, ""
    logrotate = rf"{re.escape(followed)}(\.\d+|-\d{{8,10}}|-\d{{4}}-\d{{2}}-\d{{2}})"
    apiserver = rf"{re.escape(stem)}-\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}-\d{{2}}-\d{{2}}\.\d{{3}}" + (
        re.escape(f".{suffix}") if suffix else "")
    return re.fullmatch(f"{logrotate}|{apiserver}", name) is not None


def _open(path: Path) -> tuple[IO[bytes], int]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by follow)
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an audit log file") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (the API server's --audit-log-path)") from None
    except PermissionError as exc:  # the system's refusal: exit 7, as for any file (README; review finding: 3)
        raise PermissionError(exc.errno, f"{path}: cannot read it: {exc.strerror or exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    return stream, os.fstat(stream.fileno()).st_ino


def _decode(text: bytes, where: str, stats: ParseStats) -> Iterator[AuditEvent]:
    # (NUL bytes too: a log cut in place under a writer that does not append writes on past a hole of them, which
    # is read as the start of its next line: review finding)
    text = text.strip(b" \t\r\n\x00")
    if not text:
        return
    stats.lines += 1
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        stats.add_malformed(where, f"not JSON: {exc}")
        return
    decoded: list[tuple[str, AuditEvent]] = []
    problems: list[tuple[str, str, bool]] = []
    decode_value(value, where, decoded, problems)
    yield from stats.counted(decoded, problems)
