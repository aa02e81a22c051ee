"""Salvage of damaged .kws files (store.salvage and `kwoksnap salvage`): every frame that reads is kept, in order,
in a new whole file whose index names what was lost; the damaged file is never changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kwoksnap.errors import ExitCode, FormatError
from kwoksnap.replay.recording import recording_gaps
from kwoksnap.store import KwsReader, KwsWriter, scan
from kwoksnap.store.salvage import SALVAGED, salvage
from tests.unit.test_store_roundtrip import snapshot_records

Record = dict[str, Any]


def written(tmp_path: Path, records: list[Record], content_type: str = "snapshot") -> tuple[Path, list[Record]]:
    """A file of ``records`` in frames of 4 records, and its frames (offset, length, records, resource) in order."""
    path = tmp_path / "damaged.kws"
    with KwsWriter(path, content_type=content_type, frame_records=4) as w:
        w.write_many(records)
    with KwsReader(path) as r:
        assert r.index is not None
        frames = sorted(({**f, "resource": e["resource"]} for e in r.index["resources"] for f in e["frames"]),
                        key=lambda f: f["offset"])
    return path, frames


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def frame_records(records: list[Record], frames: list[Record], lost: set[int]) -> list[Record]:
    """``records`` without those of the frames numbered in ``lost`` (0-based, file order)."""
    out, at = [], 0
    for i, f in enumerate(frames):
        if i not in lost:
            out += records[at:at + f["records"]]
        at += f["records"]
    return out


def read(path: Path) -> list[Record]:
    assert scan(path).ok
    with KwsReader(path) as r:
        return list(r.records())


def test_a_damaged_frame_of_a_whole_file_is_named_and_the_rest_kept(tmp_path: Path) -> None:
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    before = path.read_bytes()
    third = frames[3]  # (pods)
    flip(path, third["offset"] + third["length"] // 2)
    damaged = path.read_bytes()
    report = salvage(path, tmp_path / "out.kws")
    assert path.read_bytes() == damaged != before  # never changed
    assert read(tmp_path / "out.kws") == frame_records(records, frames, {3})
    assert report.records == len(records) - third["records"] and report.frames == len(frames) - 1
    [lost] = report.lost
    assert (lost.offset, lost.length, lost.resource, lost.lost) == (third["offset"], third["length"], "v1/pods", 4)
    assert report.lost_records == 4 and not report.cut and report.described == []
    with KwsReader(tmp_path / "out.kws") as r:
        assert r.incomplete() == {"v1/pods": f"{SALVAGED}: 4 record(s) lost at byte {third['offset']} (checksum "
                                                "mismatch (corrupt data))"}
        assert r.header["meta"]["salvagedFrom"] == "damaged.kws"
        with KwsReader(tmp_path / "out.kws") as again:
            assert again.header["createdAt"] == r.header["createdAt"]


def test_without_an_index_the_walk_goes_on_at_the_next_valid_block(tmp_path: Path) -> None:
    """A damaged trailer (no index) and a damaged frame: the next frame is found by its checksum; what was lost
    is not known, so both neighbours are named."""
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    flip(path, path.stat().st_size - 3)  # the trailer's END_MAGIC
    flip(path, frames[2]["offset"] + 1)  # the length field of a pods frame: its own length is no guide
    report = salvage(path, tmp_path / "out.kws")
    assert read(tmp_path / "out.kws") == frame_records(records, frames, {2})
    [lost] = report.lost
    assert (lost.offset, lost.length, lost.resource, lost.lost) == (frames[2]["offset"], frames[2]["length"], None,
                                                                    None)
    # The index, read past the damaged trailer, says what was lost (re-test finding: neighbours were guessed).
    assert report.lost_records == 4 and set(report.incomplete) == {"v1/pods"}
    assert report.incomplete["v1/pods"] == (f"{SALVAGED}: 4 of its 21 record(s) lost (the file's index, read past "
                                            "its damaged end, says how many it held)")
    (tmp_path / "out.kws").unlink()
    data = bytearray(path.read_bytes())
    data[-30:] = bytes(30)  # the index gone too: only the neighbours of what was lost can be named
    path.write_bytes(bytes(data))
    report = salvage(path, tmp_path / "out.kws")
    assert report.lost_records is None and "v1/pods" in report.incomplete and not report.cut  # (the index ended it)
    assert report.incomplete["v1/pods"].startswith(f"{SALVAGED}: records, possibly, lost at byte ")


def test_a_damaged_index_alone_loses_nothing(tmp_path: Path) -> None:
    records = snapshot_records(10)
    path, _ = written(tmp_path, records)
    with KwsReader(path) as r:
        index_at = r._index_offset
    assert index_at is not None
    flip(path, index_at + 12)
    report = salvage(path, tmp_path / "out.kws")
    assert read(tmp_path / "out.kws") == records and report.lost == [] and report.incomplete == {}
    assert report.clean  # (an index was there: the file was closed, whatever became of its trailer)
    # Said (black-box finding: a file cut inside its index was salvaged without a word of it), and only then.
    assert report.index_rebuilt and report.to_dict()["indexRebuilt"]
    proc = kwoksnap("salvage", str(path), "-o", str(tmp_path / "again.kws"))
    assert proc.returncode == ExitCode.OK and f"{path}'s index is damaged or cut" in proc.stdout
    (tmp_path / "whole").mkdir()
    assert not salvage(written(tmp_path / "whole", records)[0], tmp_path / "whole.kws").index_rebuilt


def test_a_cut_file_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    path.write_bytes(path.read_bytes()[:frames[4]["offset"] + 20])  # a crashed writer: no index, a cut frame
    report = salvage(path, tmp_path / "out.kws")
    assert read(tmp_path / "out.kws") == frame_records(records, frames, set(range(4, len(frames))))
    assert report.cut and not report.clean and [s.offset for s in report.lost] == [frames[4]["offset"]]
    assert set(report.incomplete) == {frames[3]["resource"]}


def test_a_lost_description_of_a_resource_is_made_again(tmp_path: Path) -> None:
    """The frame opening a resource holds its description (kind, scope): restore needs it for the rest."""
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    opening = next(i for i, f in enumerate(frames) if f["resource"] == "v1/pods")
    flip(path, frames[opening]["offset"] + frames[opening]["length"] - 1)
    report = salvage(path, tmp_path / "out.kws")
    assert report.described == ["v1/pods"]
    kept = read(tmp_path / "out.kws")
    pods = [r for r in kept if r["resource"] == "v1/pods"]
    assert pods[0] == {"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True,
                       "listResourceVersion": ""}
    assert pods[1:] == [r for r in frame_records(records, frames, {opening}) if r["resource"] == "v1/pods"]


def test_a_recording_names_the_recorded_times_it_lost(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000_000
    events = [{"type": "event", "resource": "audit.k8s.io/v1/events", "ts": base + i * 1_000_000_000,
               "namespace": "ns", "event": {"n": i}} for i in range(12)]
    path, frames = written(tmp_path, events, content_type="recording")
    flip(path, frames[1]["offset"] + 30)
    report = salvage(path, tmp_path / "out.kws")
    assert [r["ts"] for r in read(tmp_path / "out.kws")] == [e["ts"] for e in events[:4] + events[8:]]
    assert recording_gaps(tmp_path / "out.kws") == report.incomplete  # (what replay warns about)
    assert report.incomplete == {"audit.k8s.io/v1/events": (
        f"{SALVAGED}: 4 record(s) lost at byte {frames[1]['offset']} (checksum mismatch (corrupt data)), recorded "
        "from 2023-11-14T22:13:24.000000Z to 2023-11-14T22:13:27.000000Z")}


def test_nothing_readable_writes_nothing(tmp_path: Path) -> None:
    path, frames = written(tmp_path, snapshot_records(4))
    for f in frames:
        flip(path, f["offset"] + f["length"] - 1)
    with pytest.raises(FormatError, match="no frame of it is readable"):
        salvage(path, tmp_path / "out.kws")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.kws"]


def test_a_file_that_ends_just_after_its_header_has_nothing_to_salvage(tmp_path: Path) -> None:
    """Black-box finding: a file cut within a trailer's length after its header (what a record killed in its first
    moments leaves) crashed salvage (ValueError: read length must be non-negative)."""
    path, frames = written(tmp_path, snapshot_records(4))
    data = path.read_bytes()
    header_end = frames[0]["offset"]  # (the first frame follows the header)
    for cut in range(header_end, header_end + 24):
        short = tmp_path / f"cut{cut}.kws"
        short.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="no frame of it is readable"):
            salvage(short, tmp_path / "out.kws")
        assert not (tmp_path / "out.kws").exists()


def kwoksnap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kwoksnap", *args], capture_output=True, text=True, timeout=60)


def test_the_command_exits_by_what_was_lost(tmp_path: Path) -> None:
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    whole = kwoksnap("salvage", str(path), "-o", str(tmp_path / "whole.kws"))
    assert whole.returncode == ExitCode.OK and whole.stdout == (
        f"wrote {len(records)} records ({len(frames)} frames) to {tmp_path / 'whole.kws'}\n"), whole.stderr
    flip(path, frames[3]["offset"] + 40)
    proc = kwoksnap("salvage", str(path), "-o", str(tmp_path / "out.kws"))
    assert proc.returncode == ExitCode.PARTIAL, proc.stderr
    assert proc.stdout.splitlines()[1:] == [
        f"lost: 1 damaged stretch(es), {frames[3]['length']} bytes, 4 records",
        f"  byte {frames[3]['offset']}, {frames[3]['length']} bytes (4 record(s) of v1/pods): checksum mismatch "
        "(corrupt data)",
        f"incomplete in {tmp_path / 'out.kws'}: v1/pods"]
    assert proc.stderr == "kwoksnap: error: 1 damaged stretch(es) lost (listed above)\n"
    again = kwoksnap("salvage", str(path), "-o", str(tmp_path / "out.kws"))  # never over an existing file
    assert again.returncode == ExitCode.USAGE and "already exists" in again.stderr
    inspected = kwoksnap("inspect", str(tmp_path / "out.kws"))
    assert inspected.returncode == ExitCode.OK, inspected.stderr
    assert "salvaged from the damaged damaged.kws (`kwoksnap salvage`)" in inspected.stdout
    assert f"not whole: 1 resource(s): v1/pods (v1/pods: {SALVAGED}: 4 record(s) lost at byte " in inspected.stdout
    nothing = tmp_path / "nothing.kws"
    nothing.write_bytes(b"not a kws file at all")
    refused = kwoksnap("salvage", str(nothing), "-o", str(tmp_path / "n.kws"))
    assert refused.returncode == ExitCode.INPUT and refused.stderr.count("\n") == 1, refused.stderr
    assert not (tmp_path / "n.kws").exists()


def test_a_bad_sector_loses_its_stretch_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: a read error (EIO: the bad sector salvage exists for) ended the whole salvage with exit 7,
    in a frame or in the index; it is now a lost stretch like a damaged one, and the walk goes on past it."""
    import errno

    from kwoksnap.store import reader as kws_reader

    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    real = kws_reader.KwsReader._read_at
    bad = [frames[3]["offset"] + 20]  # a bad sector inside the fourth frame

    def failing(self: kws_reader.KwsReader, offset: int, n: int) -> bytes:
        if any(offset <= b < offset + max(n, 1) for b in bad):
            raise OSError(errno.EIO, "Input/output error")
        return real(self, offset, n)

    monkeypatch.setattr(kws_reader.KwsReader, "_read_at", failing)
    report = salvage(path, tmp_path / "out.kws")
    assert [(s.offset, s.reason, s.resource) for s in report.lost] == [
        (frames[3]["offset"], "read error: Input/output error", "v1/pods")]
    with KwsReader(path) as r:  # the index unreadable too: the walk without it steps over the sector
        assert r._index_offset is not None
        bad.append(r._index_offset + 3)
    report = salvage(path, tmp_path / "out2.kws")
    assert report.lost[0].offset == frames[3]["offset"] and report.lost[0].resource is None
    # Without the index, the walk steps over the bad sector (512 bytes): a frame beginning in it is lost too.
    sector = bad[0] // 512 * 512
    gone = {i for i, f in enumerate(frames) if i == 3 or (i > 3 and sector <= f["offset"] < sector + 512)}
    monkeypatch.undo()
    assert read(tmp_path / "out.kws") == frame_records(records, frames, {3})
    assert read(tmp_path / "out2.kws") == frame_records(records, frames, gone)


def test_what_a_re_test_found_past_a_damaged_end(tmp_path: Path) -> None:
    """Re-test findings: with only the trailer damaged, the file's own `incomplete` marks were dropped (exit 0, NEW
    looked whole); a byte deleted inside a frame blamed its neighbours; a frame written twice was copied twice; `cat
    a b` dropped b without a word; a file cut at a frame boundary salvaged with exit 0 and nothing marked."""
    records = snapshot_records(20)
    path = tmp_path / "marked.kws"
    with KwsWriter(path, frame_records=4) as w:
        w.write_many(records)
        w.incomplete("v1/nodes", "403 Forbidden")
    data = path.read_bytes()
    with KwsReader(path) as r:
        frames = sorted(({**f, "resource": e["resource"]} for e in r.index["resources"]  # type: ignore[index]
                         for f in e["frames"]), key=lambda f: f["offset"])

    def salvaged(name: str, damaged: bytes) -> tuple[Any, list[Record]]:
        src = tmp_path / f"{name}.kws"
        src.write_bytes(damaged)
        report = salvage(src, tmp_path / f"{name}-out.kws")
        return report, read(tmp_path / f"{name}-out.kws")

    report, kept = salvaged("trailer", data[:-3] + b"XX" + data[-1:])
    assert report.whole and kept == records and report.incomplete == {"v1/nodes": "403 Forbidden"}
    third = frames[3]
    report, kept = salvaged("deleted", data[:third["offset"] + 40] + data[third["offset"] + 41:])
    assert kept == frame_records(records, frames, {3}) and report.missing == third["records"]
    assert set(report.incomplete) == {"v1/pods", "v1/nodes"} and report.incomplete["v1/pods"].startswith(
        f"{SALVAGED}: 4 of its 21 record(s) lost")
    end = third["offset"] + third["length"]
    report, kept = salvaged("twice", data[:end] + data[third["offset"]:])
    assert kept == records and report.copies == 1 and report.whole
    report, kept = salvaged("joined", data + data)
    assert kept == records and [s.reason for s in report.lost] == [
        "bytes after the file's index and trailer (another file joined to it?): not read"] and not report.whole
    report, kept = salvaged("cut", data[:end])
    assert kept == frame_records(records, frames, set(range(4, len(frames)))) and report.cut and not report.whole
    assert report.incomplete == {"v1/pods": f"{SALVAGED}: records, possibly, lost at byte {end} (the file ends "
                                            "there: its writer stopped, or it was cut)"}


def test_damage_that_held_no_record_is_not_a_loss(tmp_path: Path) -> None:
    """Re-test findings: 9 junk bytes between two frames, or a flipped tag byte of the index, gave exit 5 and
    "incomplete" marks although every record was copied. The file's index, found past the damage (by the trailer's
    pointer, its checksum computed as an index's, when its tag is what was damaged), says nothing is missing."""
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    data = path.read_bytes()
    with KwsReader(path) as r:
        index_at = r._index_offset
    assert index_at is not None
    at = frames[2]["offset"]
    (tmp_path / "junk.kws").write_bytes(data[:at] + b"JUNKJUNK!" + data[at:])
    report = salvage(tmp_path / "junk.kws", tmp_path / "junk-out.kws")
    assert read(tmp_path / "junk-out.kws") == records and report.whole and report.incomplete == {}
    assert [(s.offset, s.length) for s in report.lost] == [(at, 9)] and report.lost_records == 0
    flip(path, index_at)  # the index block's tag byte
    report = salvage(path, tmp_path / "tag-out.kws")
    assert read(tmp_path / "tag-out.kws") == records and report.whole and report.lost == [] and report.clean
    proc = kwoksnap("salvage", str(tmp_path / "junk.kws"), "-o", str(tmp_path / "junk-cli.kws"))
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "skipped: 1 damaged stretch(es), 9 bytes, that held no record" in proc.stdout, proc.stdout


def test_inspect_names_one_break_once_and_the_index_as_the_index(tmp_path: Path) -> None:
    """Re-test finding: `inspect` of a file with bytes inserted before its index gave the frame break (byte N) in its
    summary and the index's (byte M) in its error, and called the file "not closed cleanly"; a damaged index tag was
    counted as a frame."""
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    data = path.read_bytes()
    at = frames[2]["offset"]
    (tmp_path / "junk.kws").write_bytes(data[:at] + b"JUNKJUNK!" + data[at:])
    proc = kwoksnap("inspect", str(tmp_path / "junk.kws"))
    assert proc.returncode == ExitCode.INPUT, proc.stderr
    assert proc.stdout.startswith(f"{tmp_path / 'junk.kws'}: closed, but its index cannot be read; 2 frames") and \
        f"stopped at byte {at} (frame 3)" in proc.stdout, proc.stdout
    assert proc.stderr.startswith(f"kwoksnap: error: {tmp_path / 'junk.kws'}: damaged at byte {at} (frame 3): ") and \
        proc.stderr.count("kwoksnap salvage") == 1 and proc.stderr.count("\n") == 1, proc.stderr
    with KwsReader(path) as r:
        index_at = r._index_offset
    flip(path, index_at)  # type: ignore[arg-type]
    proc = kwoksnap("inspect", str(path))
    assert f"stopped at byte {index_at}: corrupt index" in proc.stdout and "frame" not in proc.stdout.split(
        "stopped")[1], proc.stdout
    assert proc.stderr.strip().endswith("`kwoksnap salvage` copies the readable part"), proc.stderr


def test_an_index_found_past_the_damage_vouches_only_for_its_own_frames(tmp_path: Path) -> None:
    """Re-test finding: a file cut inside a frame with a whole file joined after it salvaged as "nothing lost"
    (exit 0): the second file's index, found before its trailer, counted the first file's frames as its own."""
    records = snapshot_records(20)
    path, frames = written(tmp_path, records)
    data = path.read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    second = written(other, snapshot_records(9, pad=50))[0].read_bytes()  # (another file: other frames)
    cut = frames[3]["offset"] + 40  # inside frame 3: its records are lost
    (tmp_path / "joined.kws").write_bytes(data[:cut] + second)
    report = salvage(tmp_path / "joined.kws", tmp_path / "joined-out.kws")
    assert not report.whole and not report.counted and report.lost_records is None
    assert report.incomplete, report.incomplete
    # Black-box finding: the second file's frames were read as the first's (a recording got a snapshot's objects).
    assert read(tmp_path / "joined-out.kws") == frame_records(records, frames, set(range(3, len(frames))))
    assert report.joined and [(s.offset, s.reason) for s in report.lost] == [
        (frames[3]["offset"], report.lost[0].reason),
        (cut, f"another .kws file begins at byte {cut} (two files joined): not read")]


def test_every_command_points_a_damaged_frame_to_salvage_and_nothing_else(tmp_path: Path) -> None:
    """The way to the readable part was said only by `inspect`, a dry-run `restore` and a damaged index: `export`
    or `diff` of a file with a damaged frame ended at the checksum. The store marks the errors salvage can help
    with; the CLI says so once, and not of a file that is no .kws file at all."""
    path, frames = written(tmp_path, snapshot_records(20))
    flip(path, frames[2]["offset"] + 20)
    for args in (["export", str(path), "-o", str(tmp_path / "x.yaml")], ["diff", str(path), str(path)]):
        proc = kwoksnap(*args)
        assert proc.returncode == ExitCode.INPUT, proc.stdout + proc.stderr
        assert proc.stderr.startswith(f"kwoksnap: error: {path}: byte {frames[2]['offset']} (frame 3): ") and \
            proc.stderr.endswith("; `kwoksnap salvage` copies the readable part\n"), proc.stderr
        assert proc.stderr.count("salvage") == 1, proc.stderr
    (tmp_path / "other.kws").write_bytes(b"not a kws file at all\n")
    proc = kwoksnap("export", str(tmp_path / "other.kws"), "-o", str(tmp_path / "y.yaml"))
    assert proc.returncode == ExitCode.INPUT and "salvage" not in proc.stderr, proc.stderr
