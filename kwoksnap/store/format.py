"""The byte layout of a ``.kws`` file: constants, block framing and the checks shared by the writer and the reader.

Why this module exists: the writer, the reader and ``scan()`` must agree byte for byte on the layout specified in
docs/format.md; keeping every constant, struct and validator here means there is exactly one definition of it.
It must never do I/O on its own, import anything above ``kwoksnap.errors``, or know record conventions beyond
the three index fields (``resource``, namespace, ``ts``).

Layout (all integers little-endian)::

    header   MAGIC(8) | version u32 | header length u32 | header (msgpack map) | crc32 u32
    blocks   tag u8 | payload length u32 | crc32 u32 | payload        (tag F = frame, I = index)
    trailer  tag 'E' | index offset u64 | crc32 u32 | END_MAGIC(8)     (the clean-close marker, 21 bytes)
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Final

from kwoksnap.errors import FormatError

#: First 8 bytes of every .kws file. The high byte and CR LF / ^Z catch text-mode and 7-bit mangling, like PNG.
MAGIC: Final = b"\x89KWS\r\n\x1a\n"
#: Last 8 bytes of a cleanly closed file.
END_MAGIC: Final = b"KWSEND\r\n"
#: The format version this code writes and reads natively. Independent of the kwoksnap release; bump it (and add
#: a converter in ``compat``) whenever a reader of the previous version could misread a new file.
FORMAT_VERSION: Final = 1

CONTENT_TYPES: Final = ("snapshot", "recording")
COMPRESSION: Final = "zstd"
DEFAULT_LEVEL: Final = 3

TAG_FRAME: Final = 0x46  # 'F'
TAG_INDEX: Final = 0x49  # 'I'
TAG_END: Final = 0x45  # 'E'

PREAMBLE = struct.Struct("<8sII")  # magic, version, header length
BLOCK_HEAD = struct.Struct("<BII")  # tag, payload length, crc32
TRAILER = struct.Struct("<BQI8s")  # tag, index offset, crc32, END_MAGIC
U32 = struct.Struct("<I")

#: Frame size bound. A frame is closed when its uncompressed msgpack reaches this many bytes (or the resource
#: changes). Measured on synthetic pods (bench/bench_store.py): the zstd ratio grows from 8.7x at 32 KiB to 9.8x at
#: 64-128 KiB and plateaus at 256 KiB (10.6x; 1 MiB and 4 MiB give no more), while the reader's decoded frame
#: (Python objects, ~15x the msgpack size) stays around 4 MB instead of 15 MB at 1 MiB, and a resource-selective
#: seek stays fine-grained. Bigger frames only cost memory.
FRAME_TARGET_BYTES: Final = 256 << 10
#: ... or when it holds this many records, so tiny records (recording events) still give a fine time granularity.
FRAME_MAX_RECORDS: Final = 8192

#: Hard limits a reader enforces before allocating anything, so a corrupt length can never ask for gigabytes.
MAX_HEADER_BYTES: Final = 16 << 20
MAX_RAW_FRAME_BYTES: Final = 256 << 20  # one record may exceed FRAME_TARGET_BYTES, up to this
MAX_BLOCK_BYTES: Final = MAX_RAW_FRAME_BYTES + (1 << 20)
# What a reader refuses as a decompression bomb (a 1.4 KB file expanded to 32 Mi empty maps, 2.4 GB of Python
# objects): a frame of more than EXPANSION_SLACK raw bytes that expands more than MAX_EXPANSION times (Kubernetes
# objects compress ~10x; a frame beyond the slack holds one record, an object of at most ~1.5 MiB (etcd's limit)
# or an event with two), and a frame of more than MAX_FRAME_RECORDS_READ records (the writer closes one at
# FRAME_MAX_RECORDS). The writer refuses to write what readers refuse.
MAX_EXPANSION: Final = 100
EXPANSION_SLACK: Final = 8 << 20
MAX_FRAME_RECORDS_READ: Final = 1 << 20


def expands_too_far(raw: int, compressed: int) -> bool:
    """Whether a frame of ``compressed`` bytes that holds ``raw`` is one readers refuse as a decompression bomb
    (and so the writer never writes)."""
    return raw > EXPANSION_SLACK and raw > MAX_EXPANSION * compressed

HEADER_KEYS_REQUIRED: Final = ("kwoksnapVersion", "createdAt", "contentType", "source", "meta", "compression")


def block_crc(tag: int, length: int, payload: bytes | bytearray | memoryview) -> int:
    """crc32 over a block's tag, length and payload: a flipped bit anywhere in the block is caught."""
    return zlib.crc32(payload, zlib.crc32(struct.pack("<BI", tag, length)))


def encode_block(tag: int, payload: bytes) -> bytes:
    """The block head (9 bytes) for ``payload``; the caller writes head then payload."""
    return BLOCK_HEAD.pack(tag, len(payload), block_crc(tag, len(payload), payload))


def encode_preamble(version: int, header_bytes: bytes) -> tuple[bytes, bytes]:
    """The bytes before and after the msgpack header: (magic + version + length, crc32)."""
    pre = PREAMBLE.pack(MAGIC, version, len(header_bytes))
    crc = zlib.crc32(header_bytes, zlib.crc32(pre[8:]))
    return pre, U32.pack(crc)


def encode_trailer(index_offset: int) -> bytes:
    head = struct.pack("<BQ", TAG_END, index_offset)
    return TRAILER.pack(TAG_END, index_offset, zlib.crc32(head), END_MAGIC)


def decode_trailer(data: bytes) -> int | None:
    """The index offset a trailer points to, or None if ``data`` is not a valid trailer."""
    if len(data) != TRAILER.size:
        return None
    tag, offset, crc, end = TRAILER.unpack(data)
    if tag != TAG_END or end != END_MAGIC or crc != zlib.crc32(data[:9]):
        return None
    return int(offset)


def _fail(message: str, path: str | None, where: str) -> FormatError:
    return FormatError(message, path=path, where=where)


def validate_header(header: object, path: str | None) -> dict[str, Any]:
    """Check the decoded header map has the fields and types version 1 defines; returns it typed."""
    where = "header"
    if not isinstance(header, dict) or not all(isinstance(k, str) for k in header):
        raise _fail("header is not a map with string keys", path, where)
    for key in HEADER_KEYS_REQUIRED:
        if key not in header:
            raise _fail(f"header lacks {key!r}", path, where)
    if header["contentType"] not in CONTENT_TYPES:
        raise _fail(f"unknown content type {header['contentType']!r} (expected snapshot or recording)", path, where)
    if header["compression"] != COMPRESSION:
        raise _fail(f"unsupported compression {header['compression']!r}", path, where)
    for key in ("kwoksnapVersion", "createdAt"):
        if not isinstance(header[key], str):
            raise _fail(f"header field {key!r} is not a string", path, where)
    for key in ("source", "meta"):
        value = header[key]
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _fail(f"header field {key!r} is not a map with string keys", path, where)
    return header


def _is_int(value: object) -> bool:
    return type(value) is int


def validate_index(index: object, path: str | None, where: str) -> dict[str, Any]:
    """Check every field of a decoded index, so readers can trust its types (a crc only catches accidents)."""
    if not isinstance(index, dict):
        raise _fail("index is not a map", path, where)
    for key in ("records", "frames"):
        if not _is_int(index.get(key)) or index[key] < 0:
            raise _fail(f"index field {key!r} is not a count", path, where)
    resources = index.get("resources")
    if not isinstance(resources, list):
        raise _fail("index field 'resources' is not a list", path, where)
    time_range = index.get("timeRange")
    if time_range is not None and not (
        isinstance(time_range, list) and len(time_range) == 2 and all(_is_int(t) for t in time_range)
    ):
        raise _fail("index field 'timeRange' is not [first, last]", path, where)
    incomplete = index.get("incomplete", {})  # (optional: files written before it have none)
    if not isinstance(incomplete, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in incomplete.items()):
        raise _fail("index field 'incomplete' is not a map of resource to reason", path, where)
    seen: set[str] = set()
    total_records = 0
    total_frames = 0
    for entry in resources:
        if not (isinstance(entry, dict) and isinstance(entry.get("resource"), str) and _is_int(entry.get("records"))):
            raise _fail("index resource entry is malformed", path, where)
        if entry["resource"] in seen:
            raise _fail(f"index lists resource {entry['resource']!r} twice", path, where)
        seen.add(entry["resource"])
        namespaces = entry.get("namespaces")
        if not isinstance(namespaces, dict) or not all(
            isinstance(k, str) and _is_int(v) and v >= 0 for k, v in namespaces.items()
        ):
            raise _fail(f"index namespaces of {entry['resource']!r} are malformed", path, where)
        frames = entry.get("frames")
        if not isinstance(frames, list) or not frames:
            raise _fail(f"index frames of {entry['resource']!r} are malformed", path, where)
        count = 0
        for frame in frames:
            if not isinstance(frame, dict) or not all(
                _is_int(frame.get(k)) and frame[k] >= 0 for k in ("offset", "length", "records", "rawLength")
            ):
                raise _fail(f"index frame entry of {entry['resource']!r} is malformed", path, where)
            for k in ("firstTs", "lastTs"):
                if k in frame and not _is_int(frame[k]):
                    raise _fail(f"index frame field {k!r} is not an integer", path, where)
            count += frame["records"]
        if count != entry["records"] or sum(namespaces.values()) != count:
            raise _fail(f"index counts of {entry['resource']!r} disagree", path, where)
        total_records += count
        total_frames += len(frames)
    if total_records != index["records"] or total_frames != index["frames"]:
        raise _fail("index totals disagree with its resource entries", path, where)
    return index
