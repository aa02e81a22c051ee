"""Damaged, truncated and foreign files: the reader says where it broke, only ever with FormatError; scan() reports."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwoksnap.errors import FormatError
from kwoksnap.store import FORMAT_VERSION, MAGIC, KwsReader, KwsWriter, scan
from kwoksnap.store.format import TAG_FRAME, encode_block
from tests.unit.test_store_roundtrip import snapshot_records


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any], list[dict[str, Any]]]:
    """A small file with 3 resources in several frames; returns (bytes, layout, records)."""
    path = tmp_path_factory.mktemp("valid") / "v.kws"
    recs = snapshot_records(6)
    with KwsWriter(path, frame_records=3) as w:
        w.write_many(recs)
    with KwsReader(path) as r:
        assert r.index is not None
        frames = sorted((f for e in r.index["resources"] for f in e["frames"]), key=lambda f: f["offset"])
        layout = {"data_start": r._data_start, "frames": frames, "index_offset": r._index_offset}
    return path.read_bytes(), layout, recs


def put(tmp_path: Path, data: bytes, name: str = "f.kws") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path) -> list[dict[str, Any]]:
    """Everything a consumer might do with a reader."""
    with KwsReader(path) as r:
        out = list(r.records())
        if r.clean:
            r.resources()
            r.count()
            for resource in r.resources():
                assert list(r.records(resource)) == [x for x in out if x.get("resource", "") == resource]
        return out


def one_line_error(path: Path) -> FormatError:
    with pytest.raises(FormatError) as info:
        read_all(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return info.value


# -- named cases -------------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    err = one_line_error(put(tmp_path, b""))
    assert "empty file" in str(err) and err.where == "byte 0"


def test_random_bytes_and_yaml_are_not_kws(tmp_path: Path) -> None:
    for data in (bytes(range(256)) * 4, b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"):
        err = one_line_error(put(tmp_path, data, "foreign.kws"))
        assert "not a .kws file" in str(err)
        report = scan(tmp_path / "foreign.kws")
        assert not report.header_ok and not report.clean and report.records == 0 and report.reason


def with_version(data: bytes, version: int, *, fix_crc: bool = True) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, 8, version)
    if fix_crc:
        (hlen,) = struct.unpack_from("<I", out, 12)
        struct.pack_into("<I", out, 16 + hlen, zlib.crc32(bytes(out[16 : 16 + hlen]), zlib.crc32(bytes(out[8:16]))))
    return bytes(out)


def test_newer_format_version_says_upgrade(tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]) -> None:
    path = put(tmp_path, with_version(valid[0], FORMAT_VERSION + 1))
    err = one_line_error(path)
    assert "upgrade kwoksnap" in str(err) and "corrupt" not in str(err)
    assert "upgrade kwoksnap" in (scan(path).reason or "")
    # a newer version whose checksum does not match (as version-1 rules see it) may as well be a flipped bit
    err = one_line_error(put(tmp_path, with_version(valid[0], FORMAT_VERSION + 1, fix_crc=False)))
    assert "upgrade kwoksnap" in str(err) and "or its header is corrupt" in str(err)
    assert "invalid format version" in str(one_line_error(put(tmp_path, with_version(valid[0], 0))))
    assert "checksum" in str(one_line_error(put(tmp_path, with_version(valid[0], 0, fix_crc=False))))


@pytest.mark.parametrize("cut", ["magic", "preamble", "header", "header-only", "mid-frame", "mid-index", "trailer"])
def test_truncated(tmp_path: Path, valid: tuple[bytes, dict[str, Any], list[dict[str, Any]]], cut: str) -> None:
    data, layout, recs = valid
    frames = layout["frames"]
    second = frames[1]
    at = {
        "magic": 5,
        "preamble": 13,
        "header": layout["data_start"] - 3,
        "header-only": layout["data_start"],
        "mid-frame": second["offset"] + second["length"] // 2,
        "mid-index": layout["index_offset"] + 5,
        "trailer": len(data) - 1,
    }[cut]
    path = put(tmp_path, data[:at])
    err = one_line_error(path)
    report = scan(path)
    assert not report.clean and report.reason
    if cut in ("magic", "preamble", "header"):
        assert "truncated" in str(err) and not report.header_ok
        return
    # the header was intact: the file opens, is not clean, and is readable up to the break
    assert report.header_ok
    good_frames = [f for f in frames if f["offset"] + f["length"] <= at]
    assert report.frames_ok == len(good_frames)
    assert report.records == sum(f["records"] for f in good_frames)
    assert report.bytes_ok == (good_frames[-1]["offset"] + good_frames[-1]["length"] if good_frames else at)
    with KwsReader(path) as r:
        assert not r.clean and r.index is None
        assert list(r.records(salvage=True)) == recs[: report.records]
    if cut == "mid-frame":
        assert err.where == f"byte {second['offset']} (frame 2)" and "truncated" in str(err)
        assert report.stopped_at == second["offset"] and report.stopped_frame == 2
    elif cut == "header-only":
        assert "not closed cleanly" in str(err)


def test_flipped_byte_in_a_frame(tmp_path: Path, valid: tuple[bytes, dict[str, Any], list[dict[str, Any]]]) -> None:
    data, layout, recs = valid
    third = layout["frames"][2]
    broken = bytearray(data)
    broken[third["offset"] + 20] ^= 0x10
    path = put(tmp_path, bytes(broken))
    err = one_line_error(path)
    assert "checksum mismatch" in str(err) and err.where == f"byte {third['offset']} (frame 3)"
    report = scan(path)
    assert report.clean and report.frames_ok == 2 and report.stopped_frame == 3
    assert "byte" in report.summary() and "checksum" in report.summary()
    assert ": closed cleanly but damaged; " in report.summary()  # it said "clean" next to the damage
    # what is readable is what lies before the damage: salvage finds what lies after it (black-box finding)
    assert " records readable before the damage (" in report.summary()
    with KwsReader(path) as r:
        # the damage is local: resources whose frames are intact still read through the index
        damaged = {e["resource"] for e in r.index["resources"] if any(f == third for f in e["frames"])}  # type: ignore[index]
        for resource in r.resources():
            if resource in damaged:
                with pytest.raises(FormatError, match="checksum"):
                    list(r.records(resource))
            else:
                assert list(r.records(resource)) == [x for x in recs if x["resource"] == resource]


def test_flipped_byte_in_header_index_and_trailer(tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]) -> None:
    data, layout, _ = valid
    cases = {
        "header checksum": 20,
        "corrupt index": layout["index_offset"] + 12,
        "trailer": len(data) - 15,  # inside the index offset: trailer invalid -> not clean
    }
    for expected, pos in cases.items():
        broken = bytearray(data)
        broken[pos] ^= 0x01
        err = one_line_error(put(tmp_path, bytes(broken)))
        if expected == "trailer":
            assert "trailer is missing or damaged" in str(err)
        else:
            assert expected in str(err)


# -- exhaustive and property-based ----------------------------------------------------------------------------------


def test_every_single_byte_flip_is_detected(tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]) -> None:
    data = valid[0]
    path = tmp_path / "flip.kws"
    for pos in range(len(data)):
        broken = bytearray(data)
        broken[pos] ^= 0xFF
        path.write_bytes(bytes(broken))
        with pytest.raises(FormatError):
            read_all(path)
        report = scan(path)
        assert not report.ok, pos


def test_every_truncation_is_detected(tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]) -> None:
    data = valid[0]
    path = tmp_path / "cut.kws"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        with pytest.raises(FormatError):
            read_all(path)
        report = scan(path)
        assert not report.ok and report.bytes_ok <= n, n


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None, insert: bytes) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    if insert:
        at = edits[0][0] % len(out) if edits else 0
        out[at:at] = insert
    return bytes(out[:cut] if cut is not None else out)


def _only_format_errors(path: Path) -> None:
    with contextlib.suppress(FormatError):
        read_all(path)
    scan(path)  # never raises


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 16), st.integers(0, 255)), max_size=4),
    cut=st.none() | st.integers(min_value=0, max_value=1 << 16),
    insert=st.binary(max_size=16),
)
def test_mutations_of_a_valid_file_only_raise_format_error(
    tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any], edits: list[tuple[int, int]], cut: int | None,
    insert: bytes,
) -> None:
    _only_format_errors(put(tmp_path, _mutate(valid[0], edits, cut, insert), "mut.kws"))


def _with_valid_checksums(body: bytes) -> Iterator[bytes]:
    """Random blocks that pass the crc, so decoding below the checksum layer is exercised too."""
    yield body
    for tag in (0x46, 0x49):
        head = struct.pack("<BI", tag, len(body))
        yield head + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))) + body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(["none", "magic", "header"]), body=st.binary(max_size=600))
def test_random_bytes_only_raise_format_error(
    tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any], prefix: str, body: bytes
) -> None:
    start = {"none": b"", "magic": MAGIC, "header": valid[0][: valid[1]["data_start"]]}[prefix]
    for tail in _with_valid_checksums(body):
        _only_format_errors(put(tmp_path, start + tail, "rnd.kws"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no record"),
        (msgpack.packb({"a": 1}) + msgpack.packb({"a": 1})[:-1], "incomplete record"),
        (msgpack.packb({"a": 1}) + b"\xc1", "not valid msgpack"),
        (msgpack.packb({"a": 1}) + msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb("text"), "not a map"),
    ],
)
def test_well_checksummed_frames_with_bad_records(
    tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any], body: bytes, reason: str
) -> None:
    """What a buggy writer could produce: the crc is right but the records are not; both readers say why."""
    header = valid[0][: valid[1]["data_start"]]
    payload = zstandard.ZstdCompressor().compress(body)
    path = put(tmp_path, header + encode_block(TAG_FRAME, payload) + payload)
    err = one_line_error(path)
    assert reason in str(err) and err.where == f"byte {len(header)} (frame 1)"
    report = scan(path)
    assert reason in (report.reason or "") and report.stopped_frame == 1 and report.records == 0


def test_checksummed_garbage_is_reported_below_the_checksum(
    tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]
) -> None:
    header = valid[0][: valid[1]["data_start"]]
    body = b"\x28\xb5\x2f\xfd not really zstd"
    head = struct.pack("<BI", 0x46, len(body))
    frame = head + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))) + body
    err = one_line_error(put(tmp_path, header + frame))
    assert "zstd" in str(err) and "(frame 1)" in str(err)


@pytest.mark.parametrize(("resource", "obj", "expected"), [
    ("v1/configmaps", {"metadata": "a string"}, "an object record holds no object with a metadata.name"),
    ("v1/configmaps", {"metadata": {"namespace": "n"}}, "an object record holds no object with a metadata.name"),
    ("bogus", {"metadata": {"name": "a", "namespace": "n"}}, "resource 'bogus' is not version/resource"),
])
def test_well_framed_records_of_the_wrong_shape_are_format_errors(tmp_path: Path, resource: str, obj: Any,
                                                                   expected: str) -> None:
    """Black-box finding: such files gave exit 70 (AttributeError, IndexError) in diff, restore --dry-run and
    export; they are damaged files (exit 3), named as such. A dry run reads every record, as restore does."""
    import subprocess
    import sys

    from kwoksnap.errors import ExitCode

    path = tmp_path / "odd.kws"
    with KwsWriter(path) as w:
        w.write({"type": "resource", "resource": resource, "kind": "ConfigMap", "namespaced": True})
        w.write({"type": "object", "resource": resource, "object": {"apiVersion": "v1", "kind": "ConfigMap", **obj}})
    commands = [["diff", str(path), str(path)], ["export", str(path), "-o", str(tmp_path / "x.yaml")],
                ["--kubeconfig", str(tmp_path / "none"), "restore", str(path), "--dry-run"]]
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", *command], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == ExitCode.INPUT, (command, proc.stderr)
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, (command, proc.stderr)


def test_an_index_whose_frames_are_not_where_it_says_is_found_by_scan(
        tmp_path: Path, valid: tuple[bytes, dict[str, Any], Any]) -> None:
    """Documentation finding: scan compared only the records per resource with the index, so an index that moved
    records between two frames of a resource (each frame's count wrong, their sum right) read as clean."""
    import msgpack
    import zstandard

    from kwoksnap.store.format import TAG_INDEX, encode_block, encode_trailer

    data, layout, _ = valid
    with KwsReader(put(tmp_path, data)) as r:
        index = r.index
        assert index is not None and r.scan().reason is None
    entry = next(e for e in index["resources"] if len(e["frames"]) >= 2 and e["frames"][0]["records"] >= 2)
    entry["frames"][0]["records"] -= 1
    entry["frames"][1]["records"] += 1
    payload = zstandard.ZstdCompressor().compress(msgpack.packb(index))
    forged = (data[: layout["index_offset"]] + encode_block(TAG_INDEX, payload) + payload
              + encode_trailer(layout["index_offset"]))
    with KwsReader(put(tmp_path, forged, "forged.kws")) as r:
        assert r.clean and r.scan().reason == "the index disagrees with the frames"


def test_frames_of_another_resource_than_the_index_says_are_damage_for_scan_and_the_dry_run(tmp_path: Path) -> None:
    """Black-box finding: `restore --dry-run` passed files that `restore`, inspect, diff and export call damaged:
    two resources' frames swapped in a well-checksummed index (scan compared only their sizes and counts), and a
    frame holding another resource's record (the dry run read the file in order, not resource by resource)."""
    import subprocess
    import sys

    import msgpack

    from kwoksnap.errors import ExitCode
    from kwoksnap.store.format import TAG_INDEX, encode_trailer

    def cm(resource: str, name: str) -> dict[str, Any]:
        return {"type": "object", "resource": resource, "object": {"metadata": {"name": name, "namespace": "n"}}}

    # Swapped: two resources whose frames are alike but for the resource's name, so only whose frame it is differs.
    swapped = tmp_path / "swapped.kws"
    with KwsWriter(swapped) as w:
        for resource in ("v1/aaaas", "v1/bbbbs"):
            w.write({"type": "resource", "resource": resource, "kind": "Thing", "namespaced": True})
            w.write(cm(resource, "x"))
    data = swapped.read_bytes()
    with KwsReader(swapped) as r:
        assert r.index is not None and r.scan().reason is None
        index, at = r.index, r._index_offset
    assert at is not None
    first, second = index["resources"]
    assert [f["length"] for f in first["frames"]] == [f["length"] for f in second["frames"]]
    first["frames"], second["frames"] = second["frames"], first["frames"]
    payload = zstandard.ZstdCompressor().compress(msgpack.packb(index))
    swapped.write_bytes(data[:at] + encode_block(TAG_INDEX, payload) + payload + encode_trailer(at))
    with KwsReader(swapped) as r:
        assert r.clean and r.scan().reason == "the index disagrees with the frames"

    # Mixed: what a buggy writer could write, a ConfigMap frame whose second record says it is a Secret.
    mixed = tmp_path / "mixed.kws"
    with KwsWriter(mixed) as w:
        pack = w._pack
        w._pack = lambda rec: pack({**rec, "resource": "v1/secrets"} if rec.get("object", {}).get(  # type: ignore[method-assign]
            "metadata", {}).get("name") == "b" else rec)
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
        w.write(cm("v1/configmaps", "a"))
        w.write(cm("v1/configmaps", "b"))

    for path, said in ((swapped, "the index disagrees with the frames"),
                       (mixed, "frame holds records of another resource")):
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "restore", "--dry-run", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == ExitCode.INPUT, (path, proc.stdout, proc.stderr)
        assert said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_bytes_after_a_whole_file_are_named_and_a_newline_loses_nothing(tmp_path: Path) -> None:
    """Black-box finding: a whole file plus a newline was "the trailer is missing or damaged" (it is intact) and
    salvage called the newline a lost stretch (exit 5, all records copied); two files joined with cat were "corrupt
    index: unknown block tag 0x23" for every command."""
    import subprocess
    import sys

    from kwoksnap.errors import ExitCode

    golden = Path(__file__).parents[1] / "golden"
    snapshot, recording = (golden / "snapshot-v1.kws").read_bytes(), (golden / "recording-v1.kws").read_bytes()

    def kwoksnap(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kwoksnap", *args], capture_output=True, text=True, timeout=60)

    newline = put(tmp_path, snapshot + b"\n", "newline.kws")
    proc = kwoksnap("inspect", str(newline))
    assert proc.returncode == ExitCode.INPUT
    assert "the file goes on for 1 bytes after its index and trailer: bytes added at its end" in proc.stderr
    proc = kwoksnap("salvage", str(newline), "-o", str(tmp_path / "out.kws"))
    assert proc.returncode == ExitCode.OK and proc.stderr == "", proc.stdout
    assert read_all(tmp_path / "out.kws") == read_all(put(tmp_path, snapshot, "whole.kws"))

    joined = put(tmp_path, snapshot + recording, "joined.kws")
    for args in (("inspect", str(joined)), ("restore", "--dry-run", str(joined)), ("diff", str(joined), str(joined))):
        proc = kwoksnap(*args)
        assert proc.returncode == ExitCode.INPUT and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert (f"two files joined: another .kws file begins at byte {len(snapshot)}, and the trailer at the end is "
                f"its own (`tail -c +{len(snapshot) + 1}` cuts it out)") in proc.stderr, proc.stderr
    proc = kwoksnap("salvage", str(joined), "-o", str(tmp_path / "first.kws"))
    assert proc.returncode == ExitCode.PARTIAL  # what the second file held is not read: not known
    assert read_all(tmp_path / "first.kws") == read_all(put(tmp_path, snapshot, "whole.kws"))
