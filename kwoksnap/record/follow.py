"""Follow an API server's audit log file as it grows (``tail -F``), its events as they are written.

Why this module exists: a self-managed API server writes its audit log to a file (``--audit-log-path``), which
is rotated when it grows (``--audit-log-maxsize``: renamed aside, a new file opened under the name). Recording
during an incident means reading what is appended, across rotations, without missing or repeating a line.

The file is read from its end (what was there before is the past: ``convert`` reads it), or from its start. A
line is decoded once its newline is written; at a rotation the old file is read to its end first (the API server
may still have been writing to it), then the new one from its start. A line that is not an audit event is counted
malformed (the first ones named by file and line), never a reason to stop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import orjson

from kwoksnap.audit import AuditEvent, ParseStats
from kwoksnap.audit.formats import decode_value
from kwoksnap.errors import InputError

POLL: Final = 0.2  # seconds between looks at a file that did not grow
SETTLE: Final = 1.0  # seconds an old file must stay quiet after a rotation before the new one is read
_READ: Final = 1 << 20


class Follower:
    """Reads the events written to one audit log file (see the module's docstring); ``rotations`` counts the files
    it went on to."""

    def __init__(self, path: str | Path, stats: ParseStats, *, from_start: bool = False, poll: float = POLL) -> None:
        self.path, self.stats, self.from_start, self.poll = Path(path), stats, from_start, poll
        self.rotations = 0
        self.unreadable = ""  # why the file under the path could not be opened after a rotation, while it could not
        if self.path.exists() and not self.path.is_dir() and not self.path.is_file():  # (opening a FIFO blocks)
            raise InputError(f"{path}: not a regular file (a pipe or a device): follow the file the API server "
                             "writes (--audit-log-path)")
        self._stream, self._inode = _open(self.path)  # (now: a path that cannot be read is an error at once)
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
                self._stream.seek(end - 1)
                self._rest_of_past = self._stream.read(1) != b"\n"

    def events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        """The events written from now on (all of the file's with ``from_start``) until ``stop`` is set (what was
        written by then is read first, not what comes while it is). Lines are named ``path:N`` (counted from the
        start of the file) or ``path:+N`` (from where the recording began)."""
        path, stats, stream = self.path, self.stats, self._stream
        prefix, line = ("", 0) if self.from_start else ("+", 0)
        pending = bytearray()
        end: int | None = None  # where the file ended when recording stopped: read up to there
        try:
            while True:
                if stop.is_set() and end is None:
                    end = os.fstat(stream.fileno()).st_size
                data = stream.read(_READ if end is None else max(0, min(_READ, end - stream.tell())))
                if data:
                    lines, pending = _lines(data, pending)
                    if lines and self._rest_of_past:
                        del lines[0]
                        self._rest_of_past = False
                    for text in lines:
                        line += 1
                        yield from _decode(text, f"{path}:{prefix}{line}", stats)
                    continue
                if end is None and _rotated(path, self._inode, stream.tell()):
                    yield from self._settle(stream, pending, f"{path}:{prefix}", line)  # the old file's last lines
                    pending = bytearray()
                    try:
                        new = _open(path)
                    except InputError as exc:  # (replaced by a directory, a loop of links: waited out)
                        self.unreadable = str(exc)
                        stop.wait(self.poll)
                        continue
                    self.unreadable = ""
                    stream.close()
                    self._stream, self._inode = new
                    stream = self._stream
                    prefix, line, self._rest_of_past = "", 0, False
                    self.rotations += 1
                    continue
                if end is not None:
                    if pending:  # (cut short when the recording stopped: reported as the reader reports one)
                        stats.truncated[str(path)] = f"{path}:{prefix}{line + 1}: the last line has no newline yet"
                    return
                stop.wait(self.poll)
        finally:
            stream.close()

    def _settle(self, stream: IO[bytes], pending: bytearray, where: str, line: int) -> Iterator[AuditEvent]:
        """The lines a writer adds to the old file after the new one appeared (it writes on until it reopens it):
        read until the old file has been quiet for ``SETTLE`` seconds; then its last line, if it has no newline."""
        quiet = 0.0
        while quiet < SETTLE:
            data = stream.read(_READ)
            if not data:
                time.sleep(SETTLE / 10)
                quiet += SETTLE / 10
                continue
            quiet = 0.0
            lines, pending = _lines(data, pending)
            for text in lines:
                line += 1
                yield from _decode(text, f"{where}{line}", self.stats)
        if pending:
            yield from _decode(bytes(pending), f"{where}{line + 1}", self.stats)


def _lines(data: bytes, pending: bytearray) -> tuple[list[bytes], bytearray]:
    """The lines ``data`` completes (after ``pending``, the start of one), and what it leaves pending. Only the new
    bytes are split: a long line costs its length, not its length squared (black-box finding: a 200 MB line)."""
    *lines, rest = data.split(b"\n")
    if not lines:
        pending += rest
        return [], pending
    lines[0] = bytes(pending) + lines[0]
    return lines, bytearray(rest)


def _open(path: Path) -> tuple[IO[bytes], int]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by follow)
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an audit log file") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (the API server's --audit-log-path)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    return stream, os.fstat(stream.fileno()).st_ino


def _rotated(path: Path, inode: int, position: int) -> bool:
    """Whether another file is under ``path`` now (renamed aside and made anew), or this one was cut shorter than
    what was read (copied aside and truncated: logrotate's copytruncate)."""
    try:
        now = os.stat(path)
    except OSError:  # renamed aside, the new one not made yet (or not readable yet): keep reading the old one
        return False
    return now.st_ino != inode or now.st_size < position


def _decode(text: bytes, where: str, stats: ParseStats) -> Iterator[AuditEvent]:
    text = text.strip()
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
