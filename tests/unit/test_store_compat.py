"""Format versioning: golden files of every released version still read, and the converter chain upgrades them."""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kwoksnap.errors import FormatError, UsageError
from kwoksnap.store import DEFAULT_REGISTRY, FORMAT_VERSION, ConverterRegistry, KwsReader, KwsWriter

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*-v*.kws"))


def expected(kws: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kws.with_suffix(".expected.json").read_text(encoding="utf-8"))
    return data


def test_golden_files_exist_for_every_version() -> None:
    versions = {int(p.stem.rsplit("-v", 1)[1]) for p in GOLDEN_FILES}
    assert versions == set(range(1, FORMAT_VERSION + 1))
    assert {p.stem.rsplit("-v", 1)[0] for p in GOLDEN_FILES} >= {"snapshot", "recording"}


@pytest.mark.parametrize("kws", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_reads_to_expected_records(kws: Path) -> None:
    want = expected(kws)
    with KwsReader(kws) as r:
        assert r.format_version == want["formatVersion"]
        assert r.clean
        assert r.header == want["header"]
        got = list(r.records())
        assert got == want["records"]
        counts = Counter(x.get("resource", "") for x in want["records"])
        assert r.resources() == list(counts)
        for resource, n in counts.items():
            assert r.count(resource) == n
            assert list(r.records(resource)) == [x for x in want["records"] if x.get("resource", "") == resource]
        ts = [x["ts"] for x in want["records"] if type(x.get("ts")) is int]
        assert r.time_range() == ((min(ts), max(ts)) if ts else None)
        assert r.scan().ok


def _with_version(path: Path, version: int) -> bytes:
    """The bytes of ``path`` claiming another format version (header checksum recomputed)."""
    data = path.read_bytes()
    (hlen,) = struct.unpack_from("<I", data, 12)
    pre = struct.pack("<II", version, hlen)
    body = data[16 : 16 + hlen]
    crc = struct.pack("<I", zlib.crc32(body, zlib.crc32(pre)))
    return data[:8] + pre + body + crc + data[16 + hlen + 4 :]


def test_converter_chain_upgrades_header_index_and_records(tmp_path: Path) -> None:
    """A reader of 'version 3' reads a version-1 file through registered 1->2 and 2->3 converters."""
    src = tmp_path / "v1.kws"
    recs = [{"type": "object", "resource": "v1/pods", "object": {"metadata": {"name": f"p{i}"}}} for i in range(5)]
    with KwsWriter(src, meta={"m": 1}) as w:
        w.write_many(recs)

    registry = ConverterRegistry(current=3)
    calls: Counter[str] = Counter()

    def header_1_to_2(h: dict[str, Any]) -> dict[str, Any]:
        calls["header"] += 1
        return {**h, "meta": {**h["meta"], "upgradedFrom": 1}}

    def record_1_to_2(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "v2": True}

    def record_2_to_3(r: dict[str, Any]) -> dict[str, Any]:
        assert r["v2"] is True  # steps run in order
        out = {k: v for k, v in r.items() if k != "v2"}
        out["schema"] = 3
        return out

    def index_2_to_3(i: dict[str, Any]) -> dict[str, Any]:
        calls["index"] += 1
        return i

    registry.register(1, header=header_1_to_2, record=record_1_to_2)
    registry.register(2, record=record_2_to_3, index=index_2_to_3)
    with KwsReader(src, registry=registry) as r:
        assert r.format_version == 1
        assert r.header["meta"] == {"m": 1, "upgradedFrom": 1}
        assert list(r.records()) == [{**x, "schema": 3} for x in recs]
        assert list(r.records("v1/pods")) == [{**x, "schema": 3} for x in recs]
        assert r.count("v1/pods") == 5
    assert calls == {"header": 1, "index": 1}

    # the same registry refuses a file newer than its current version, and a missing step
    newer = tmp_path / "v4.kws"
    newer.write_bytes(_with_version(src, 4))
    with pytest.raises(FormatError, match="upgrade kwoksnap"):
        KwsReader(newer, registry=registry)
    gap = ConverterRegistry(current=3)
    gap.register(2)
    with pytest.raises(FormatError, match="no converter from format version 1"):
        KwsReader(src, registry=gap)


def test_an_older_version_number_in_the_file_goes_through_the_registry(tmp_path: Path) -> None:
    """The version read from the file bytes selects the converters (not the header contents)."""
    src = tmp_path / "a.kws"
    with KwsWriter(src) as w:
        w.write({"type": "x", "resource": "v1/pods"})
    as_v2 = tmp_path / "b.kws"
    as_v2.write_bytes(_with_version(src, 2))
    registry = ConverterRegistry(current=2)
    registry.register(1, record=lambda r: {**r, "from1": True})
    with KwsReader(as_v2, registry=registry) as r:  # a native version-2 file: no conversion
        assert r.format_version == 2 and list(r.records()) == [{"type": "x", "resource": "v1/pods"}]
    with KwsReader(src, registry=registry) as r:
        assert list(r.records()) == [{"type": "x", "resource": "v1/pods", "from1": True}]


def test_registry_rules() -> None:
    registry = ConverterRegistry(current=2)
    registry.register(1)
    with pytest.raises(UsageError, match="already registered"):
        registry.register(1)
    with pytest.raises(UsageError):
        registry.register(2)  # would lead past the current version
    with pytest.raises(UsageError):
        ConverterRegistry(current=0)
    assert registry.plan(2).identity and not registry.plan(1).identity
    registry.unregister(1)
    with pytest.raises(FormatError):
        registry.plan(1)
    assert DEFAULT_REGISTRY.current == FORMAT_VERSION and DEFAULT_REGISTRY.plan(FORMAT_VERSION).identity
