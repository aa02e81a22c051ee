"""Streaming, atomic writer of ``.kws`` files.

Why this module exists: capture and audit conversion produce 100k+ records that must land in a compact file which
never exists half-written under its final name. The writer holds at most one frame (about 256 KiB of msgpack),
writes to a 0600 temporary file in the target directory, and only after the index and the clean-close trailer are
written and fsynced renames it to the final name. It must never hold more than one frame, print, or interpret
records beyond the index fields (``resource``, the namespace, ``ts``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgpack
import zstandard

import kwoksnap
from kwoksnap.errors import WRITE_REFUSALS, InputError, OutputLost, Unstorable, UsageError
from kwoksnap.store import format as _format
from kwoksnap.store.atomic import put_in_place, temp_beside
from kwoksnap.store.format import (
    COMPRESSION,
    CONTENT_TYPES,
    DEFAULT_LEVEL,
    FORMAT_VERSION,
    FRAME_MAX_RECORDS,
    FRAME_TARGET_BYTES,
    MAX_EXPANSION,
    MAX_RAW_FRAME_BYTES,
    TAG_FRAME,
    TAG_INDEX,
    encode_block,
    encode_preamble,
    encode_trailer,
    expands_too_far,
)


def format_time(when: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds, the form Kubernetes uses for MicroTime."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_map(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise UsageError(f"{name} must be a mapping with string keys")
    return dict(value)


class _ResourceEntry:
    __slots__ = ("frames", "namespaces", "records")

    def __init__(self) -> None:
        self.records = 0
        self.namespaces: dict[str, int] = {}
        self.frames: list[dict[str, int]] = []


class KwsWriter:
    """Write records to ``path`` as a .kws file. Use as a context manager, or call :meth:`close` / :meth:`abort`.

    ``content_type`` is ``"snapshot"`` or ``"recording"``; ``source`` (e.g. ``serverVersion``, ``server``) and
    ``meta`` are free maps with string keys stored in the header. ``created_at`` defaults to now (pass it for
    reproducible files). With ``overwrite=False`` an existing final file is an error.

    A writer neither closed nor aborted (a crash) leaves its temporary file ``temp_path`` behind, never the
    final file; ``scan()``, ``KwsReader.records(salvage=True)`` and ``kwoksnap salvage`` read what it holds. The
    next writer of the same file removes such files, unless ``keep_strays``, but never a killed ``kwoksnap record``'s
    (``store.atomic.killed_recording``). ``beside_if_taken``: a file that appeared under the final name meanwhile
    does not cost what was written (a long recording): it is put beside. ``keep_on_failure``: a failure (a full
    disk, Ctrl-C) leaves what was written in the temporary file (``kept``), not removed (a recording that cannot be
    made again).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        content_type: str = "snapshot",
        source: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        level: int = DEFAULT_LEVEL,
        created_at: dt.datetime | None = None,
        overwrite: bool = False,
        frame_bytes: int = FRAME_TARGET_BYTES,
        frame_records: int = FRAME_MAX_RECORDS,
        keep_strays: bool = False,
        beside_if_taken: bool = False,
        keep_on_failure: bool = False,
    ) -> None:
        if content_type not in CONTENT_TYPES:
            raise UsageError(f"content type must be one of {', '.join(CONTENT_TYPES)}, not {content_type!r}")
        if type(level) is not int or not 1 <= level <= zstandard.MAX_COMPRESSION_LEVEL:
            raise UsageError(f"zstd level must be 1..{zstandard.MAX_COMPRESSION_LEVEL}, not {level!r}")
        if not 1 <= frame_bytes <= MAX_RAW_FRAME_BYTES or frame_records < 1:
            raise UsageError("frame bounds out of range")
        if created_at is None:
            created_at = dt.datetime.now(dt.UTC)
        elif created_at.tzinfo is None:
            raise UsageError("created_at must be timezone-aware")
        self.path = Path(path)
        self.content_type = content_type
        self.overwrite = overwrite
        self.beside_if_taken = beside_if_taken
        self.keep_on_failure = keep_on_failure
        self.kept: Path | None = None  # the temporary file left for salvage when the writing failed
        if not overwrite and os.path.lexists(self.path):  # a link too, even one pointing nowhere
            raise UsageError(f"{self.path}: already exists")
        self.header: dict[str, Any] = {
            "kwoksnapVersion": kwoksnap.__version__,
            "createdAt": format_time(created_at),
            "contentType": content_type,
            "source": _check_map("source", source),
            "meta": _check_map("meta", meta),
            "compression": COMPRESSION,
            "compressionLevel": level,
        }
        packer = msgpack.Packer(use_bin_type=True, datetime=False)
        try:
            header_bytes = packer.pack(self.header)
        except (TypeError, ValueError, OverflowError) as exc:
            raise UsageError(f"source/meta cannot be stored: {exc}") from exc

        self._frame_bytes = frame_bytes
        self._frame_records = frame_records
        self._cctx = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
        self._pack = msgpack.Packer(use_bin_type=True, datetime=False).pack
        self._buf = bytearray()
        self._buf_records = 0
        self._buf_resource: str | None = None
        self._buf_first_ts: int | None = None
        self._buf_last_ts: int | None = None
        self._ready: bytes | None = None  # a record of many MiB, compressed when it was checked (_write)
        self._resources: dict[str, _ResourceEntry] = {}
        self._entry: _ResourceEntry | None = None
        self._min_ts: int | None = None
        self._max_ts: int | None = None
        self._records = 0
        self._frames = 0
        self._incomplete: dict[str, str] = {}
        self._closed = False

        fd, self.temp_path = temp_beside(self.path, keep_strays=keep_strays)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 16)
        try:
            pre, crc = encode_preamble(FORMAT_VERSION, header_bytes)
            self._file.write(pre)
            self._file.write(header_bytes)
            self._file.write(crc)
            self._pos = len(pre) + len(header_bytes) + len(crc)
        except BaseException:
            self.abort()
            raise

    # -- writing -------------------------------------------------------------------------------------------------

    @property
    def records_written(self) -> int:
        """Records accepted so far (including those still in the open frame)."""
        return self._records

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (a dict with string keys). Raises UsageError if it cannot be stored."""
        self._write(record)

    def flush(self) -> None:
        """Close the open frame and hand what was written to the system: a process killed now (SIGKILL) leaves
        every record so far in the temporary file, which ``kwoksnap salvage`` reads. Small frames compress less."""
        if self._closed:
            raise UsageError("flush of a closed KwsWriter")
        if self._buf_records:
            self._flush()
        try:
            self._file.flush()
        except OSError as exc:
            _name(exc, self.path)
            raise

    def incomplete(self, resource: str, reason: str) -> None:
        """Note that ``resource`` is not whole in this file (its list failed: ``reason``), for the index."""
        self._incomplete[resource] = reason

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append every record of ``records``; returns how many were written."""
        n = 0
        write = self._write
        for record in records:
            write(record)
            n += 1
        return n

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._closed:
            raise UsageError("write to a closed KwsWriter")
        if not isinstance(record, dict):
            raise UsageError(f"a record must be a dict, not {type(record).__name__}")
        try:
            data = self._pack(record)
        except (TypeError, ValueError, OverflowError) as exc:
            raise UsageError(f"record {self._records + 1} cannot be stored: {exc}") from exc
        resource = record.get("resource", "")
        if type(resource) is not str:
            raise UsageError(f"record {self._records + 1}: 'resource' must be a string, not {type(resource).__name__}")
        if len(data) > MAX_RAW_FRAME_BYTES:
            raise UsageError(f"record {self._records + 1} is larger than {MAX_RAW_FRAME_BYTES} bytes")
        if len(data) > _format.EXPANSION_SLACK:  # a frame of its own, refused before it is taken if readers would
            if self._buf_records:  # refuse it (black-box finding: such an event ended a recording, lost the rest)
                self._flush()
            payload = self._cctx.compress(data)
            if expands_too_far(len(data), len(payload)):
                raise Unstorable(f"a record of {len(data):,} bytes compresses {len(data) // len(payload):,}x, "
                                 f"beyond the {MAX_EXPANSION}x readers accept as no decompression bomb: not stored")
            self._ready = payload  # its frame's payload, while it is the frame's one record (_flush)
        if resource != self._buf_resource:
            if self._buf_records:
                self._flush()
            self._buf_resource = resource
            entry = self._resources.get(resource)
            if entry is None:
                entry = self._resources[resource] = _ResourceEntry()
            self._entry = entry
        entry = self._entry
        assert entry is not None
        if self._buf_records and len(self._buf) + len(data) > MAX_RAW_FRAME_BYTES:
            self._flush()  # a frame never holds more than a reader accepts: a large record starts one of its own

        ns = None
        obj = record.get("object")
        if type(obj) is dict:
            md = obj.get("metadata")
            if type(md) is dict:
                ns = md.get("namespace")
        if ns is None:
            ns = record.get("namespace")
        if type(ns) is not str:
            ns = ""
        namespaces = entry.namespaces
        namespaces[ns] = namespaces.get(ns, 0) + 1
        entry.records += 1

        ts = record.get("ts")
        if type(ts) is int:
            if self._buf_first_ts is None:
                self._buf_first_ts = ts
            self._buf_last_ts = ts
            if self._min_ts is None or ts < self._min_ts:
                self._min_ts = ts
            if self._max_ts is None or ts > self._max_ts:
                self._max_ts = ts

        self._buf += data
        self._buf_records += 1
        self._records += 1
        if len(self._buf) >= self._frame_bytes or self._buf_records >= self._frame_records:
            self._flush()

    def _flush(self) -> None:
        ready, self._ready = self._ready, None
        payload = ready if ready is not None and self._buf_records == 1 else self._cctx.compress(self._buf)
        if expands_too_far(len(self._buf), len(payload)):  # (what readers refuse)
            first = self._records - self._buf_records + 1
            raise InputError(f"records {first} to {self._records} ({len(self._buf)} bytes: a record of several MiB) "
                             f"compress {len(self._buf) // len(payload)}x, beyond the {MAX_EXPANSION}x readers "
                             "accept as no decompression bomb")
        head = encode_block(TAG_FRAME, payload)
        try:
            self._file.write(head)
            self._file.write(payload)
        except OSError as exc:  # (named here for every caller: salvage's said "File too large" of no file)
            _name(exc, self.path)
            raise
        frame: dict[str, int] = {
            "offset": self._pos,
            "length": len(head) + len(payload),
            "records": self._buf_records,
            "rawLength": len(self._buf),
        }
        if self._buf_first_ts is not None and self._buf_last_ts is not None:
            frame["firstTs"] = self._buf_first_ts
            frame["lastTs"] = self._buf_last_ts
        assert self._entry is not None
        self._entry.frames.append(frame)
        self._pos += frame["length"]
        self._frames += 1
        self._buf = bytearray()
        self._buf_records = 0
        self._buf_first_ts = self._buf_last_ts = None

    def index(self) -> dict[str, Any]:
        """The footer index as it stands (complete once every record is written and the last frame flushed)."""
        time_range = None
        if self._min_ts is not None and self._max_ts is not None:
            time_range = [self._min_ts, self._max_ts]
        return {
            "records": self._records,
            "frames": self._frames,
            "resources": [
                {"resource": name, "records": e.records, "namespaces": e.namespaces, "frames": e.frames}
                for name, e in self._resources.items()
            ],
            "timeRange": time_range,
            **({"incomplete": dict(self._incomplete)} if self._incomplete else {}),
        }

    # -- closing -------------------------------------------------------------------------------------------------

    def close(self) -> Path:
        """Flush the last frame, write index and trailer, fsync, and rename to the final name. Returns that path."""
        if self._closed:
            return self.path
        try:
            if self._buf_records:
                self._flush()
            index_payload = self._cctx.compress(msgpack.packb(self.index(), use_bin_type=True))
            head = encode_block(TAG_INDEX, index_payload)
            index_offset = self._pos
            self._file.write(head)
            self._file.write(index_payload)
            self._file.write(encode_trailer(index_offset))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._put_in_place()
            self._closed = True
            _fsync_dir(self.path.parent)
        except FileNotFoundError:  # (black-box finding: an internal error, exit 70)
            self._failed()
            if self.keep_on_failure and self._records:  # (black-box finding: a moved directory took it along)
                raise OutputLost(f"{self.path}: its directory was moved or removed (or the temporary file "
                                 f"{self.temp_path.name} deleted) while it was written: if it was moved, that file "
                                 "in it holds what was written (`kwoksnap salvage`)") from None
            raise OutputLost(f"{self.path}: its directory was removed (or the temporary file {self.temp_path.name} "
                             "deleted) while it was written: nothing was written") from None
        except BaseException as exc:
            self._failed()
            _name(exc, self.path)
            raise
        return self.path

    def _failed(self) -> None:
        """The writing failed (or was given up): the temporary file is removed, or with ``keep_on_failure`` and
        records in it, kept as far as it was written (``kept``: its path), for ``kwoksnap salvage``."""
        if not (self.keep_on_failure and self._records):
            self.abort()
            return
        with contextlib.suppress(Exception):
            if self._buf_records and not self._file.closed:
                self._flush()
        self._closed = True
        self._buf = bytearray()
        with contextlib.suppress(OSError):
            self._file.close()
        if self.temp_path.exists():
            self.kept = self.temp_path

    def _put_in_place(self) -> None:
        """The whole file under its final name; with ``beside_if_taken``, a file that appeared there meanwhile
        leaves it under the first free ``NAME-N.SUFFIX`` instead (``path`` says which)."""
        try:
            put_in_place(self.temp_path, self.path, exclusive=not self.overwrite)
        except UsageError:
            if not self.beside_if_taken:
                raise
            for n in range(1, 1000):
                beside = self.path.with_name(f"{self.path.stem}-{n}{self.path.suffix}")
                try:
                    put_in_place(self.temp_path, beside, exclusive=True)
                except UsageError:
                    continue
                self.path = beside
                return
            raise

    def abort(self) -> None:
        """Discard everything: close and remove the temporary file. Safe to call more than once."""
        self._closed = True
        self._buf = bytearray()
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()

    def __enter__(self) -> KwsWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._failed()
            if exc is not None:
                _name(exc, self.path)


def _name(exc: BaseException, path: Path) -> None:
    """A write refused by the system (disk full, a file-size limit) names the file it was for: the error line
    said only "No space left on device"."""
    if isinstance(exc, OSError) and not exc.filename and exc.errno in WRITE_REFUSALS:  # (a read's is not ours)
        exc.filename = str(path)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable. Some filesystems cannot fsync a directory; the data itself is already synced."""
    try:
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
