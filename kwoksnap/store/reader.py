"""Streaming reader and salvage scanner of ``.kws`` files.

Why this module exists: restore reads resources in another order than capture wrote them, and files can be large,
truncated by a crashed writer, or damaged. The reader seeks to one resource's frames through the footer index,
decodes one frame at a time (never the whole file), verifies every block's crc32 before decompressing it, and turns
anything wrong into a ``FormatError`` that names the byte offset and frame number where the file broke.
``scan()`` walks a file as far as it is readable and reports instead of raising.

It must never trust a length before checking it against the file size, never raise anything but ``FormatError``
(or ``InputError`` when the file cannot be opened) for bad data, and never print or log record contents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import mmap
import os
import re
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import msgpack
import zstandard

from kwoksnap.errors import REFUSALS, FormatError, InputError
from kwoksnap.store.compat import DEFAULT_REGISTRY, ConverterRegistry, UpgradePlan
from kwoksnap.store.format import (
    BLOCK_HEAD,
    MAGIC,
    MAX_BLOCK_BYTES,
    MAX_EXPANSION,
    MAX_FRAME_RECORDS_READ,
    MAX_HEADER_BYTES,
    MAX_RAW_FRAME_BYTES,
    PREAMBLE,
    TAG_FRAME,
    TAG_INDEX,
    TRAILER,
    U32,
    block_crc,
    decode_trailer,
    expands_too_far,
    validate_header,
    validate_index,
)

Record = dict[str, Any]
_SCAN_CHUNK = 1 << 20  # bytes read at a time when looking for the next block past a damaged one
_SECTOR = 512  # a disk's unit: stepped over when a read fails there
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how every frame's (and the index's) payload begins


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """How much of a file is readable. ``reason`` is None only when the whole file is intact and cleanly closed."""

    path: str
    file_size: int
    header_ok: bool
    format_version: int | None
    content_type: str | None
    clean: bool  # the clean-close trailer and the index are present and valid
    frames_ok: int  # frames that passed crc, decompression and decoding
    records: int  # records in those frames
    bytes_ok: int  # length of the prefix known good (header + good frames [+ index + trailer])
    resources: dict[str, int]  # records per resource in the good frames, in file order
    stopped_at: int | None = None  # byte offset where reading stopped early (None: read to the end)
    stopped_frame: int | None = None  # 1-based number of the frame that could not be read
    reason: str | None = None
    index_damaged: bool = False  # it ends with a trailer, but the index it points to cannot be read
    appended: bool = False  # whole up to its trailer, with bytes added after it (`reason` says how many)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def place(self) -> str | None:
        """Where reading stopped, as a FormatError's ``where`` says it (``byte N (frame M)``); None if it did not."""
        if self.stopped_at is None:
            return None
        return f"byte {self.stopped_at}" + (f" (frame {self.stopped_frame})" if self.stopped_frame is not None else "")

    def summary(self) -> str:
        """One line for users."""
        if self.index_damaged:
            state = "closed, but its index cannot be read"
        elif not self.clean:
            state = "not closed cleanly"
        else:  # closed cleanly: the trailer and index are intact, which says nothing about the frames
            state = "intact" if self.ok else "closed cleanly but damaged"
        # (Black-box finding: "140 records readable" of a file salvage read 352 of: a walk in file order stops at
        # the first damage, and what lies after it is salvage's to find.)
        before = " before the damage" if self.stopped_at is not None else ""
        line = (
            f"{self.path}: {state}; {self.frames_ok} frames, {self.records} records readable{before} "
            f"({self.bytes_ok} of {self.file_size} bytes)"
        )
        if self.reason:
            line += f"; stopped{f' at {self.place}' if self.place else ''}: {self.reason}"
        return line


@dataclasses.dataclass
class Salvaged:
    """A stretch of a damaged file (``KwsReader.salvage``): a readable frame (``records``) or a lost stretch
    (``records`` None, ``reason`` why; ``resource`` and ``lost`` records when the index says what it held)."""

    offset: int
    length: int
    records: list[Record] | None
    reason: str = ""
    resource: str | None = None
    lost: int | None = None
    span: tuple[int, int] | None = None  # the recorded times (ns) of its first and last record, from the index


class _Broken(Exception):
    """Internal: where and why a block could not be read (turned into FormatError or a ScanReport)."""

    def __init__(self, offset: int, reason: str, frame: int | None = None, *, appended: bool = False) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.frame = frame
        self.appended = appended  # the file is whole (index and trailer), with bytes after it


JOINED: Final = "two files joined"  # (`cat a.kws b.kws`: said so, where the reader found the second file's header)

class KwsReader:
    """Open and validate a .kws file; stream its records.

    Opening checks magic, format version (refusing newer ones) and header, and loads the footer index if the file
    was closed cleanly (``clean``); otherwise ``index`` is None and records can still be streamed in file order up
    to the break. ``registry`` supplies converters for older format versions (default: the global one).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, registry: ConverterRegistry | None = None, _salvage: bool = False
    ) -> None:
        self.path = Path(path)
        self._name = str(self.path)
        self._registry = registry or DEFAULT_REGISTRY
        with contextlib.suppress(OSError):  # (said by open below)
            if stat.S_ISFIFO(os.stat(self.path).st_mode):  # opening one waits for a writer, for ever (black-box)
                raise InputError(f"{self._name}: a pipe or device, not a file: a .kws file is read at its index, "
                                 "so save it to a file first")
        try:
            self._file: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        except OSError as exc:
            if exc.errno in REFUSALS:  # no permission: the system's refusal (exit 7), not a bad file
                raise
            raise InputError(f"{self._name}: cannot open: {exc.strerror or exc}") from exc
        try:
            info = os.fstat(self._file.fileno())
            if not stat.S_ISREG(info.st_mode):  # a pipe (`<(cat x.kws)`) reads as an empty file: said as it is
                raise InputError(f"{self._name}: a pipe or device, not a file: a .kws file is read at its index, "
                                 "so save it to a file first")
            self._size = info.st_size
            self._dctx = zstandard.ZstdDecompressor()
            self.format_version, header, self._data_start = self._read_header()
            self._plan: UpgradePlan = self._registry.plan(self.format_version, path=self._name)
            self.header: dict[str, Any] = validate_header(self._plan.header(header), self._name)
            self._index_offset: int | None = None
            self._pointed: int | None = None
            self._footer_error: FormatError | None = None
            try:
                self.index: dict[str, Any] | None = self._read_footer()
            except (FormatError, OSError) as exc:
                if not _salvage:  # scan() and salvage() go on without the index (a bad sector there too)
                    if isinstance(exc, FormatError):  # (the frames may all be there: said as for a damaged frame)
                        exc.salvageable = True
                    raise
                self._footer_error = exc if isinstance(exc, FormatError) else self._err(
                    f"the index cannot be read: {exc.strerror or exc}", "footer")
                self.index = None
            self.clean = self.index is not None
        except BaseException:
            self._file.close()
            raise
        self._resources: dict[str, dict[str, Any]] = {}
        self._frame_numbers: dict[int, int] = {}
        self.closed_by_writer: bool | None = None  # known once salvage() has walked the file
        self.found_index: dict[str, Any] | None = None
        self.copies = 0
        self.end_of_walk = 0  # where the walk without an index ended (the file's end)
        if self.index is not None:
            self._resources = {e["resource"]: e for e in self.index["resources"]}
            offsets = sorted(f["offset"] for e in self.index["resources"] for f in e["frames"])
            self._frame_numbers = {offset: n for n, offset in enumerate(offsets, 1)}

    # -- opening -------------------------------------------------------------------------------------------------

    def _err(self, message: str, where: str, *, salvageable: bool = False) -> FormatError:
        return FormatError(message, path=self._name, where=where, salvageable=salvageable)

    def _read_at(self, offset: int, n: int) -> bytes:
        try:
            self._file.seek(offset)
            return self._file.read(n)
        except OSError as exc:
            if exc.errno in REFUSALS:  # a failing disk (EIO): the system's refusal (exit 7)
                raise OSError(exc.errno, f"read error at byte {offset}: {exc.strerror}", self._name) from exc
            raise InputError(f"{self._name}: read error at byte {offset}: {exc.strerror or exc}") from exc

    def _read_header(self) -> tuple[int, dict[str, Any], int]:
        if self._size == 0:
            raise self._err("empty file, not a .kws file", "byte 0")
        pre = self._read_at(0, PREAMBLE.size)
        if pre[: len(MAGIC)] != MAGIC[: len(pre)]:
            start = pre.lstrip()[:1]
            hint = ("; an audit log? `replay --audit` and `convert --audit` read those" if start in (b"{", b"[")
                    or pre.startswith(b"\x1f\x8b") else "; kwokctl YAML? `kwoksnap import` reads it"
                    if start.isalpha() or start in (b"-", b"#") else "")
            raise self._err(f"not a .kws file (bad magic {pre[: len(MAGIC)]!r}){hint}", "byte 0")
        if len(pre) < len(MAGIC):
            raise self._err("truncated in the magic bytes", f"byte {len(pre)}")
        if len(pre) < PREAMBLE.size:
            raise self._err("truncated in the file header", f"byte {len(pre)}")
        _, version, header_len = PREAMBLE.unpack(pre)
        end = PREAMBLE.size + header_len + U32.size
        header_bytes = b""
        crc_ok = False
        if header_len <= MAX_HEADER_BYTES and end <= self._size:
            data = self._read_at(PREAMBLE.size, header_len + U32.size)
            header_bytes, (crc,) = data[:header_len], U32.unpack(data[header_len:])
            crc_ok = crc == zlib.crc32(header_bytes, zlib.crc32(pre[8:]))
        current = self._registry.current
        if version > current:
            # Refuse before trusting anything else: a newer header may be laid out differently. Version 1's
            # checksum tells a newer file from a corrupt version field, as far as it can.
            maybe = "" if crc_ok else ", or its header is corrupt"
            raise self._err(
                f"format version {version} is newer than this kwoksnap reads ({current}){maybe}; upgrade kwoksnap",
                "header",
            )
        if header_len > MAX_HEADER_BYTES:
            raise self._err(f"header length {header_len} is implausible", "byte 12")
        if end > self._size:
            raise self._err(
                f"truncated in the file header, or its length field is corrupt ({self._size} bytes, the header says "
                f"it needs {end})", f"byte {self._size}"
            )
        if not crc_ok:
            raise self._err("file header checksum mismatch (corrupt header)", "byte 8")
        self._registry.plan(version, path=self._name)  # an older version: is there a converter chain?
        try:
            header = msgpack.unpackb(header_bytes, raw=False, strict_map_key=False)
        except Exception as exc:  # any decoding failure of checksummed bytes means a broken writer
            raise self._err(f"file header is not valid msgpack: {_describe(exc)}", "byte 16") from exc
        if not isinstance(header, dict):
            raise self._err("file header is not a map", "byte 16")
        return int(version), header, end

    def _read_footer(self) -> dict[str, Any] | None:
        """The index if the file ends with a valid trailer; None (``clean = False``) if there is no trailer. A
        trailer that points nowhere useful, in a file where a second .kws file begins, is said to be that."""
        try:
            return self._read_trailer_and_index()
        except FormatError:
            second = self._second_file_at()
            if second is None:
                raise
            raise self._err(f"{JOINED}: another .kws file begins at byte {second}, and the trailer at the end is "
                            f"its own (`tail -c +{second + 1}` cuts it out)", f"byte {second}",
                            salvageable=True) from None

    def _magic_between(self, start: int, stop: int) -> int | None:
        """Where a .kws file's header begins in bytes ``start`` to ``stop`` of this one (a damaged stretch the walk
        steps over), or None."""
        try:
            with mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                at = view.find(MAGIC, start, stop)
        except (OSError, ValueError):
            return None
        return at if at >= 0 else None

    def _second_file_at(self) -> int | None:  # (see JOINED)
        """Where another .kws file begins inside this one (`cat a.kws b.kws`), or None. Only on an error's way: it
        reads the whole file (mmap, GB/s)."""
        return self._magic_between(self._data_start, self._size)

    def _read_trailer_and_index(self) -> dict[str, Any] | None:
        if self._size < self._data_start + TRAILER.size:
            return None
        trailer_at = self._size - TRAILER.size
        index_offset = decode_trailer(self._read_at(trailer_at, TRAILER.size))
        if index_offset is None:
            return None
        self._pointed = index_offset  # (where the index should be, even if it cannot be read there)
        if not self._data_start <= index_offset < trailer_at:
            raise self._err(f"trailer points to byte {index_offset}, outside the file", f"byte {trailer_at}")
        try:
            tag, payload = self._read_block(index_offset, frame=None, limit=trailer_at)
        except _Broken as broken:
            raise self._err(f"corrupt index: {broken.reason}", f"byte {broken.offset}") from None
        if tag != TAG_INDEX or index_offset + BLOCK_HEAD.size + len(payload) != trailer_at:
            raise self._err("trailer does not point to the index", f"byte {index_offset}")
        where = f"index at byte {index_offset}"
        checked = self._decode_index(payload, index_offset, where)
        for entry in checked["resources"]:
            for frame in entry["frames"]:
                if frame["offset"] < self._data_start or frame["offset"] + frame["length"] > index_offset:
                    raise self._err(f"index lists a frame outside the data ({frame['offset']})", where)
        self._index_offset = index_offset
        return checked

    def _decode_index(self, payload: bytes, offset: int, where: str) -> dict[str, Any]:
        """An index block's content, decompressed, decoded, upgraded and validated (``FormatError`` otherwise)."""
        try:
            raw = self._decompress(payload, offset, None)
            index = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except _Broken as broken:
            raise self._err(f"corrupt index: {broken.reason}", where) from None
        except Exception as exc:  # decoding a checksummed index failed: the writer was broken
            raise self._err(f"index is not valid msgpack: {_describe(exc)}", where) from exc
        if not isinstance(index, dict):
            raise self._err("index is not a map", where)
        return validate_index(self._plan.index(index), self._name, where)

    # -- blocks --------------------------------------------------------------------------------------------------

    def _read_block(self, offset: int, frame: int | None, limit: int) -> tuple[int, bytes]:
        """Read and checksum the block at ``offset`` that must end by ``limit``; returns (tag, payload)."""
        if offset + BLOCK_HEAD.size > limit:
            if self._read_at(offset, 1) == bytes([TAG_INDEX]):
                frame = None
            raise _Broken(offset, f"truncated block head ({limit - offset} of {BLOCK_HEAD.size} bytes)", frame)
        tag, length, crc = BLOCK_HEAD.unpack(self._read_at(offset, BLOCK_HEAD.size))
        if tag not in (TAG_FRAME, TAG_INDEX):
            raise _Broken(offset, f"unknown block tag 0x{tag:02x}", frame)
        if tag == TAG_INDEX:
            frame = None  # the index block: numbers name frames only
        if length > MAX_BLOCK_BYTES:
            raise _Broken(offset, f"implausible block length {length}", frame)
        if offset + BLOCK_HEAD.size + length > limit:
            remaining = limit - offset - BLOCK_HEAD.size
            raise _Broken(offset, f"truncated block: {length} bytes declared, {remaining} present", frame)
        payload = self._read_at(offset + BLOCK_HEAD.size, length)
        if len(payload) != length:
            raise _Broken(offset, "file shrank while reading", frame)
        if block_crc(tag, length, payload) != crc:
            raise _Broken(offset, "checksum mismatch (corrupt data)", frame)
        return tag, payload

    def _decompress(self, payload: bytes, offset: int, frame: int | None) -> bytes:
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as exc:
            raise _Broken(offset, f"not a zstd frame: {exc}", frame) from None
        if size < 0 or size > MAX_RAW_FRAME_BYTES:
            raise _Broken(offset, f"zstd frame has no usable content size ({size})", frame)
        if expands_too_far(size, len(payload)):
            raise _Broken(offset, f"zstd frame would expand {size // len(payload)}x ({len(payload)} to {size} bytes), "
                          f"beyond the {MAX_EXPANSION}x a reader accepts (docs/format.md)", frame)
        try:
            raw = self._dctx.decompress(payload)
        except zstandard.ZstdError as exc:
            raise _Broken(offset, f"zstd decompression failed: {exc}", frame) from None
        if len(raw) != size:
            raise _Broken(offset, "zstd frame size mismatch", frame)
        return raw

    def _decode_frame(self, payload: bytes, offset: int, frame: int | None) -> list[Record]:
        raw = self._decompress(payload, offset, frame)
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(raw), 1))
        unpacker.feed(raw)
        # Decoding creates ~100 acyclic containers per Kubernetes object; letting the cyclic GC run meanwhile
        # re-traverses the caller's whole heap many times per frame (2-3x slower with a large live heap).
        # Pausing it for one frame (bounded by the frame size) loses nothing: nothing decoded here is cyclic.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        records: list[Record] = []
        append, unpack, tell, end = records.append, unpacker.unpack, unpacker.tell, len(raw)
        try:
            while tell() < end:  # (iterating the Unpacker would silently drop a truncated last record)
                append(unpack())
                if len(records) > MAX_FRAME_RECORDS_READ:  # (tiny records by the million: a decompression bomb)
                    raise _Broken(offset, f"frame holds more than {MAX_FRAME_RECORDS_READ} records", frame)
        except _Broken:
            raise
        except msgpack.OutOfData:
            raise _Broken(offset, "frame holds an incomplete record", frame) from None
        except Exception as exc:  # msgpack raises several types for bad input; all mean the same here
            raise _Broken(offset, f"records are not valid msgpack: {_describe(exc)}", frame) from None
        finally:
            if gc_was_enabled:
                gc.enable()
        if not records:
            raise _Broken(offset, "frame holds no record", frame)
        for record in records:
            if not isinstance(record, dict):
                raise _Broken(offset, f"a record is a {type(record).__name__}, not a map", frame)
            if record.get("type") == "object":  # docs/format.md: what every consumer of an object relies on
                obj = record.get("object")
                meta = obj.get("metadata") if isinstance(obj, dict) else None
                if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
                    raise _Broken(offset, "an object record holds no object with a metadata.name", frame)
        return records

    def _count_frame(self, payload: bytes, offset: int, frame: int | None) -> list[Record]:
        """Verify a frame like _decode_frame, building only its first record (~8x faster): for scan().

        Returns ``[first record] * count``: a frame holds one resource, so the first record names them all.
        """
        raw = self._decompress(payload, offset, frame)
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(raw), 1))
        unpacker.feed(raw)
        try:
            first = unpacker.unpack()
            count = 1
            while unpacker.tell() < len(raw):
                entries = unpacker.read_map_header()  # raises unless the record is a map
                for _ in range(2 * entries):
                    unpacker.skip()
                count += 1
                if count > MAX_FRAME_RECORDS_READ:  # (said now: decoding the frame is what the cap avoids)
                    raise _Broken(offset, f"frame holds more than {MAX_FRAME_RECORDS_READ} records", frame)
        except _Broken:
            raise
        except Exception:  # a broken frame: decode it fully, which says precisely what is wrong
            return self._decode_frame(payload, offset, frame)
        if not isinstance(first, dict):
            raise _Broken(offset, f"a record is a {type(first).__name__}, not a map", frame)
        return [first] * count

    def _frames_in_order(self, *, count_only: bool = False) -> Iterator[tuple[int, int, int, list[Record]]]:
        """Walk frames from the data start: yields (number, offset, length, records); raises _Broken at a break.

        On a clean file the walk ends at the index; otherwise at end of file, where a missing trailer is a break.
        """
        decode = self._count_frame if count_only else self._decode_frame
        offset = self._data_start
        limit = self._index_offset if self._index_offset is not None else self._size
        number = 0
        while offset < limit:
            number += 1
            tag, payload = self._read_block(offset, number, limit)
            if tag != TAG_FRAME:
                raise self._after_index(offset, tag, len(payload))
            records = decode(payload, offset, number)
            length = BLOCK_HEAD.size + len(payload)
            yield number, offset, length, records
            offset += length
        if self._index_offset is None:
            raise _Broken(offset, "no index or trailer: the file was not closed cleanly (writer interrupted?)", None)

    def _blank(self, start: int, end: int) -> bool:
        """Only white space or NUL bytes (at most 4 KiB) from ``start`` to ``end``: a newline a text tool added, no
        lost record."""
        if end - start > 4096:
            return False
        try:
            return not self._read_at(start, end - start).strip(b" \t\r\n\x00")
        except (OSError, InputError):
            return False

    def _after_index(self, offset: int, tag: int, length: int) -> _Broken:
        """Why a walk that met the index block at ``offset`` found no trailer at the file's end."""
        at = offset + BLOCK_HEAD.size + length
        if tag == TAG_INDEX and at + TRAILER.size < self._size:
            try:
                whole = decode_trailer(self._read_at(at, TRAILER.size)) == offset
            except (OSError, InputError):
                whole = False
            if whole:  # (black-box finding: "the trailer is missing or damaged" of a whole file plus a newline)
                extra = self._size - at - TRAILER.size
                second = self._second_file_at()
                return _Broken(offset, f"the file goes on for {extra} bytes after its index and trailer: "
                               + (f"another .kws file begins at byte {second} ({JOINED})" if second is not None
                                  else "bytes added at its end"), appended=True)
        return _Broken(offset, "index block found but the trailer is missing or damaged")

    # -- public API ----------------------------------------------------------------------------------------------

    @property
    def content_type(self) -> str:
        return str(self.header["contentType"])

    def _need_index(self) -> dict[str, Any]:
        if self.index is None:
            raise self._err(
                "no index at the end of the file: it was not closed cleanly (cut short, or its writer was "
                "interrupted), or bytes were added after its end (two files joined?); "
                "`kwoksnap inspect` shows what is readable",
                "footer", salvageable=self._size > self._data_start  # (only a header: nothing to salvage)
            )
        return self.index

    def resources(self) -> list[str]:
        """Resources in the order they were first written (needs a cleanly closed file)."""
        return [e["resource"] for e in self._need_index()["resources"]]

    def count(self, resource: str | None = None) -> int:
        """Records in the file, or of one resource (0 if absent), from the index."""
        index = self._need_index()
        if resource is None:
            return int(index["records"])
        entry = self._resources.get(resource)
        return int(entry["records"]) if entry else 0

    def namespaces(self, resource: str) -> dict[str, int]:
        """Records of ``resource`` per namespace ("" for cluster-scoped), from the index."""
        self._need_index()
        entry = self._resources.get(resource)
        return dict(entry["namespaces"]) if entry else {}

    def frames(self, resource: str) -> list[dict[str, int]]:
        """The index entries (offset, length, records, rawLength[, firstTs, lastTs]) of ``resource``'s frames."""
        self._need_index()
        entry = self._resources.get(resource)
        return [dict(f) for f in entry["frames"]] if entry else []

    def incomplete(self) -> dict[str, str]:
        """Resources the writer could not write whole (a list that failed), with the reason; from the index."""
        return dict(self._need_index().get("incomplete", {}))

    def time_range(self) -> tuple[int, int] | None:
        """(first, last) ``ts`` over all records, for recordings; None if no record has an integer ``ts``."""
        tr = self._need_index()["timeRange"]
        return (tr[0], tr[1]) if tr else None

    def records(self, resource: str | None = None, *, salvage: bool = False) -> Iterator[Record]:
        """Stream records in file order; with ``resource``, only that resource's frames (seeking via the index).

        A break (corruption, truncation, missing footer) raises FormatError naming the byte offset and frame,
        after every record before it was yielded. With ``salvage=True`` iteration just stops at the break.
        """
        if resource is not None and self.index is not None:
            return self._resource_records(resource)
        return self._sequential_records(resource, salvage)

    def _sequential_records(self, resource: str | None, salvage: bool) -> Iterator[Record]:
        convert = None if self._plan.identity else self._plan.record
        frames = self._frames_in_order()
        while True:
            try:
                item = next(frames, None)
            except _Broken as broken:
                if salvage:
                    return
                raise self._broken_error(broken) from None
            if item is None:
                return
            records = item[3]
            if resource is not None:
                records = [r for r in records if r.get("resource", "") == resource]
            if convert is not None:
                records = [convert(r) for r in records]
            yield from records

    def _resource_records(self, resource: str) -> Iterator[Record]:
        entry = self._resources.get(resource)
        if entry is None:
            return
        convert = None if self._plan.identity else self._plan.record
        assert self._index_offset is not None
        for frame in entry["frames"]:
            offset = frame["offset"]
            number = self._frame_numbers.get(offset)
            try:
                tag, payload = self._read_block(offset, number, self._index_offset)
                if tag != TAG_FRAME or BLOCK_HEAD.size + len(payload) != frame["length"]:
                    raise _Broken(offset, "the index does not point to a frame here", number)
                records = self._decode_frame(payload, offset, number)
                if len(records) != frame["records"]:
                    raise _Broken(
                        offset, f"frame holds {len(records)} records, the index says {frame['records']}", number
                    )
                if any(r.get("resource", "") != resource for r in records):
                    raise _Broken(offset, "frame holds records of another resource", number)
            except _Broken as broken:
                broken.reason = f"{resource}: {broken.reason}" if resource else broken.reason
                raise self._broken_error(broken) from None
            if convert is not None:
                records = [convert(r) for r in records]
            yield from records

    def salvage(self) -> Iterator[Salvaged]:
        """Every readable frame of a damaged file, with the stretches between them that are not: a
        ``Salvaged`` per frame (``records`` set) or per lost stretch (``records`` None, ``reason`` set), in file
        order. Never raises on bad data. Once it is done, ``closed_by_writer`` says whether the file has an index
        (readable or not): else it ends where its writer stopped (a crash, SIGKILL).

        A clean file's index says where every frame starts and what it holds, so each frame is read on its own
        and a lost one is named (resource, records). Without an index (a crashed writer, a damaged trailer) the
        walk goes on after a damaged block at the next offset where a block with a valid checksum starts (a crc32
        over a plausible length: a random match is about one in 4 billion), and what was lost is not known.
        """
        convert = None if self._plan.identity else self._plan.record
        self.closed_by_writer = self.index is not None
        self.found_index = None  # an index read past a damaged trailer (the walk's)
        self._found_at: int | None = None  # where that index's block starts, when found before the walk
        self.joined = False  # bytes follow the index the walk met (another file joined to this one): not read
        self.copies = 0  # frames left out as second copies of one read before
        if self.index is None:
            self.found_index = self._index_before_trailer()
        if self.index is not None and self._index_offset is not None:
            indexed = sorted((f["offset"], f["length"], f["records"], e["resource"],
                              (f["firstTs"], f["lastTs"]) if "firstTs" in f and "lastTs" in f else None)
                             for e in self.index["resources"] for f in e["frames"])
            for number, (offset, length, count, resource, span) in enumerate(indexed, 1):
                try:
                    tag, payload = self._read_block(offset, number, self._index_offset)
                    if tag != TAG_FRAME or BLOCK_HEAD.size + len(payload) != length:
                        raise _Broken(offset, "the index does not point to a frame here", number)
                    records = self._decode_frame(payload, offset, number)
                    if len(records) != count or any(r.get("resource", "") != resource for r in records):
                        raise _Broken(offset, "the frame does not hold what the index says", number)
                except _Broken as broken:
                    yield Salvaged(offset, length, None, broken.reason, resource, count, span)
                    continue
                except (InputError, OSError) as exc:  # a read error (a bad sector): lost, the rest may read
                    yield Salvaged(offset, length, None, _read_error(exc), resource, count, span)
                    continue
                yield Salvaged(offset, length, [convert(r) for r in records] if convert else records)
            return
        offset = self._data_start
        end = self._size
        number = 0
        self.end_of_walk = end
        seen: set[tuple[int, int]] = set()  # (crc32, length) of each frame read: a second copy is left out
        while offset < end:
            number += 1
            try:
                tag, payload = self._read_block(offset, number, end)
                if tag == TAG_INDEX:
                    self.closed_by_writer = True
                    self.found_index = self._index_of(payload)
                    beyond = offset + BLOCK_HEAD.size + len(payload) + TRAILER.size
                    if beyond < end and not self._blank(beyond, end):  # (`cat a.kws b.kws`: b's frames are not
                        self.joined = True                                 # a's, and its index is not found)
                        yield Salvaged(beyond, end - beyond, None, "bytes after the file's index and trailer "
                                       "(another file joined to it?): not read")
                    return  # the index of a file whose trailer is damaged: every frame comes before it
                key = (zlib.crc32(payload), len(payload))
                if key in seen:  # (a frame written twice: its records would be replayed twice)
                    self.copies += 1
                    offset += BLOCK_HEAD.size + len(payload)
                    continue
                seen.add(key)
                records = self._decode_frame(payload, offset, number)
            except (_Broken, InputError, OSError) as exc:
                reason = exc.reason if isinstance(exc, _Broken) else _read_error(exc)
                after = self._next_block(offset + 1, end)
                if after is None and (self._tag_at(offset) == TAG_INDEX or offset == self._found_at):
                    self.closed_by_writer = True
                    return  # a damaged index, the last block: every frame came before it
                second = self._magic_between(offset, after if after is not None else end)
                if second is not None:  # a cut file with another joined after it (`head -c N a.kws; cat b.kws`):
                    if second > offset:  # the blocks after its header are its own (black-box finding: they were
                        yield Salvaged(offset, second - offset, None, reason)  # read as this file's)
                    self.joined = True
                    yield Salvaged(second, end - second, None, f"another .kws file begins at byte {second} "
                                   f"({JOINED}): not read")
                    return
                yield Salvaged(offset, (after if after is not None else end) - offset, None, reason)
                if after is None:
                    return
                offset = after
                continue
            length = BLOCK_HEAD.size + len(payload)
            yield Salvaged(offset, length, [convert(r) for r in records] if convert else records)
            offset += length

    def _index_of(self, payload: bytes) -> dict[str, Any] | None:
        """An index block's content, validated, or None if it is not one (what it lists is not trusted as where
        frames are: only what they held)."""
        try:
            return self._decode_index(payload, 0, "index")
        except Exception:  # (anything wrong with it, an old version's converter's refusal too: not used)
            return None

    def _index_before_trailer(self) -> dict[str, Any] | None:
        """The index block that ends where the trailer begins, found without the trailer (damaged, or pointing
        elsewhere after bytes were lost): its checksum must hold. Looked for in the last 64 MiB. Where a trailer
        still points, the block there is taken for the index whatever its tag byte says, if its checksum holds for
        an index's (a damaged tag: re-test finding, a whole file called cut)."""
        end = self._size - TRAILER.size
        if end < self._data_start:  # (less than a trailer after the header: a killed record's first moments)
            return None
        start = max(self._data_start, end - (64 << 20))
        try:
            tail = self._read_at(start, end - start)
            pointed = decode_trailer(self._read_at(end, TRAILER.size)) if end >= self._data_start else None
        except (OSError, InputError):
            return None
        if pointed is not None and start <= pointed and pointed - start + BLOCK_HEAD.size <= len(tail):
            _, length, crc = BLOCK_HEAD.unpack_from(tail, pointed - start)
            body = tail[pointed - start + BLOCK_HEAD.size:]
            if len(body) == length and block_crc(TAG_INDEX, length, body) == crc:
                index = self._index_of(bytes(body))
                if index is not None:
                    self._found_at = pointed
                    return index
        at = len(tail)
        while (at := tail.rfind(bytes([TAG_INDEX]), 0, at)) >= 0:
            if at + BLOCK_HEAD.size > len(tail):
                continue
            tag, length, crc = BLOCK_HEAD.unpack_from(tail, at)
            body = tail[at + BLOCK_HEAD.size:]
            if len(body) == length and block_crc(tag, length, body) == crc:
                index = self._index_of(bytes(body))
                if index is not None:
                    self._found_at = start + at
                return index
        return None

    def _tag_at(self, offset: int) -> int | None:
        """The byte at ``offset`` (a block's tag), or None if it cannot be read."""
        try:
            data = self._read_at(offset, 1)
        except (OSError, InputError):
            return None
        return data[0] if data else None

    def _next_block(self, start: int, end: int) -> int | None:
        """The first offset at or after ``start`` where a whole block with a valid checksum lies (None: none).
        Read in chunks (an unreadable one, a bad sector, is stepped over), and a candidate's checksum is computed
        only when its payload starts as a zstd frame does: a long damaged stretch costs its length, not more."""
        tags = re.compile(b"[" + bytes([TAG_FRAME, TAG_INDEX]) + b"]")
        at, size = start, _SCAN_CHUNK
        while at + BLOCK_HEAD.size <= end:
            try:
                chunk = self._read_at(at, min(size, end - at))
            except (OSError, InputError):  # a read error: read up to the sector's end, or step over the sector
                if size > _SECTOR:
                    size = _SECTOR - at % _SECTOR
                else:
                    at, size = (at // _SECTOR + 1) * _SECTOR, _SCAN_CHUNK
                continue
            size = _SCAN_CHUNK
            for found in tags.finditer(chunk):
                candidate = at + found.start()
                if candidate + BLOCK_HEAD.size + 4 > end:
                    return None
                try:
                    head = self._read_at(candidate, BLOCK_HEAD.size + 4)
                    tag, length, crc = BLOCK_HEAD.unpack_from(head)
                    if (length > MAX_BLOCK_BYTES or candidate + BLOCK_HEAD.size + length > end
                            or head[BLOCK_HEAD.size:] != _ZSTD_MAGIC):
                        continue
                    payload = self._read_at(candidate + BLOCK_HEAD.size, length)
                except (OSError, InputError):
                    continue
                if block_crc(tag, length, payload) == crc:
                    return candidate
            at += max(1, len(chunk) - BLOCK_HEAD.size)  # (a block head across the chunk's end is found next time)
        return None

    def _broken_error(self, broken: _Broken) -> FormatError:
        where = f"byte {broken.offset}"
        if broken.frame is not None:
            where += f" (frame {broken.frame})"
        return self._err(broken.reason, where, salvageable=True)

    def verify_checksums(self) -> None:
        """Read every frame's block up to the index and check its checksum, decompressing nothing (the speed of
        reading the file); raise the :class:`FormatError` a read of it would raise later. For a caller that must
        not begin what a damaged file would stop halfway (a replay changes its target as it reads: black-box
        finding, a flipped byte in frame 2 was found after the target had been changed)."""
        if self._index_offset is None:
            return  # (not closed cleanly: the caller has said so already, as opening or scan() tells)
        offset, number = self._data_start, 0
        try:
            while offset < self._index_offset:
                number += 1
                tag, payload = self._read_block(offset, number, self._index_offset)
                if tag != TAG_FRAME:
                    raise self._after_index(offset, tag, len(payload))
                offset += BLOCK_HEAD.size + len(payload)
        except _Broken as broken:
            raise self._broken_error(broken) from None

    def scan(self) -> ScanReport:
        """Walk every frame, verifying it; report how far the file is readable. Never raises on bad data."""
        resources: dict[str, int] = {}
        walked: dict[int, tuple[int, int, Any]] = {}  # offset -> (length, records, resource) of each frame
        frames_ok = records = 0
        bytes_ok = self._data_start
        broken: _Broken | None = None
        try:
            for _, offset, length, recs in self._frames_in_order(count_only=True):
                frames_ok += 1
                records += len(recs)
                bytes_ok = offset + length
                name = recs[0].get("resource", "")
                walked[offset] = (length, len(recs), name)
                key = name if isinstance(name, str) else repr(name)
                resources[key] = resources.get(key, 0) + len(recs)
        except _Broken as exc:
            broken = exc
        except InputError as exc:
            broken = _Broken(bytes_ok, str(exc))
        if broken is not None and broken.offset == self._pointed:
            broken.frame = None  # the block the trailer points to: the index, whatever its damaged tag says
        reason = broken.reason if broken else None
        if broken is not None and self._footer_error is not None and broken.frame is None \
                and broken.offset == self._pointed:  # (a break elsewhere keeps its own reason: re-test finding)
            reason = _reason(self._footer_error, self._name)
        if broken is None and self.index is not None:
            bytes_ok = self._size
            indexed = {e["resource"]: e["records"] for e in self.index["resources"]}
            layout = {f["offset"]: (f["length"], f["records"], e["resource"])
                      for e in self.index["resources"] for f in e["frames"]}
            if indexed != resources or layout != walked:  # (records per resource; where each frame is, its size,
                # whose it is: two resources' frames swapped in the index passed: black-box finding)
                reason = "the index disagrees with the frames"
        return ScanReport(
            path=self._name,
            file_size=self._size,
            header_ok=True,
            format_version=self.format_version,
            content_type=self.content_type,
            clean=self.clean,
            frames_ok=frames_ok,
            records=records,
            bytes_ok=bytes_ok,
            resources=resources,
            stopped_at=broken.offset if broken else None,
            stopped_frame=broken.frame if broken else None,
            reason=reason,
            index_damaged=self._footer_error is not None,
            appended=broken is not None and broken.appended,
        )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> KwsReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def scan(path: str | os.PathLike[str], *, registry: ConverterRegistry | None = None) -> ScanReport:
    """Report how much of ``path`` is readable, whatever state it is in (never raises on bad data)."""
    name = str(path)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return ScanReport(name, 0, False, None, None, False, 0, 0, 0, {}, 0, None, f"cannot open: {exc.strerror}")
    try:
        reader = KwsReader(path, registry=registry, _salvage=True)
    except (FormatError, InputError) as exc:
        where = getattr(exc, "where", None) or ""
        offset = offset_of(where)
        return ScanReport(name, size, False, None, None, False, 0, 0, 0, {}, offset, None, _reason(exc, name))
    with reader:
        return reader.scan()


def _read_error(exc: Exception) -> str:
    """A read error's reason (a bad sector's EIO; ``_read_at`` says where)."""
    if not isinstance(exc, OSError) or not exc.strerror:
        return str(exc)
    return exc.strerror if exc.strerror.startswith("read error") else f"read error: {exc.strerror}"


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def offset_of(where: str) -> int:
    """The byte offset a FormatError's ``where`` names (``byte N``), or 0."""
    if where.startswith("byte "):
        digits = where[5:].split(" ", 1)[0]
        if digits.isdigit():
            return int(digits)
    return 0


def _reason(exc: Exception, name: str) -> str:
    """The message of ``exc`` without the path and place prefixes FormatError adds (the report has both)."""
    text = str(exc)
    for prefix in (name, getattr(exc, "where", None)):
        if prefix and text.startswith(f"{prefix}: "):
            text = text[len(prefix) + 2 :]
    return text


__all__ = ["KwsReader", "Salvaged", "ScanReport", "scan"]
