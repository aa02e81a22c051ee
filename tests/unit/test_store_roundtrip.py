"""The .kws writer and reader: round trips, the index, resource-selective reads, atomic writes, flat memory."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest

import kwoksnap
from kwoksnap.errors import FormatError, Unstorable, UsageError
from kwoksnap.store import FORMAT_VERSION, MAGIC, KwsReader, KwsWriter, ScanReport
from kwoksnap.store.atomic import atomic_output


def pod(i: int, ns: str = "default", pad: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "namespace": ns, "uid": f"u-{i}", "labels": {"i": str(i)}},
        "spec": {"nodeName": f"node-{i % 3}", "containers": [{"name": "c", "image": "img", "args": ["x" * pad]}]},
        "status": {"phase": "Running"},
    }


def snapshot_records(n_pods: int = 50, pad: int = 0) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = [
        {"type": "resource", "resource": "v1/nodes", "kind": "Node", "namespaced": False, "listResourceVersion": "7"}
    ]
    recs += [
        {"type": "object", "resource": "v1/nodes", "object": {"kind": "Node", "metadata": {"name": f"node-{i}"}}}
        for i in range(3)
    ]
    recs.append({"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True,
                 "listResourceVersion": "9"})
    recs += [{"type": "object", "resource": "v1/pods", "object": pod(i, f"ns-{i % 4}", pad)} for i in range(n_pods)]
    recs.append({"type": "resource", "resource": "apps/v1/deployments", "kind": "Deployment", "namespaced": True,
                 "listResourceVersion": "9"})
    recs.append({"type": "object", "resource": "apps/v1/deployments",
                 "object": {"metadata": {"name": "d", "namespace": "ns-1"}, "spec": {"replicas": 2}}})
    return recs


def recording_records(n: int = 40) -> list[dict[str, Any]]:
    base = 1_700_000_000_123_456_789
    out = []
    for i in range(n):
        resource = "v1/pods" if i % 3 else "v1/nodes"
        rec: dict[str, Any] = {"type": "event", "ts": base + i * 1_000_000, "resource": resource,
                               "verb": "patch", "name": f"x-{i}", "patch": {"status": {"n": i}}}
        if resource == "v1/pods":
            rec["namespace"] = f"ns-{i % 2}"
        out.append(rec)
    return out


def write(path: Path, records: list[dict[str, Any]], **kw: Any) -> Path:
    with KwsWriter(path, **kw) as w:
        w.write_many(records)
    return path


def test_snapshot_round_trip_and_header(tmp_path: Path) -> None:
    recs = snapshot_records()
    created = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    path = write(tmp_path / "s.kws", recs, content_type="snapshot", created_at=created,
                 source={"serverVersion": "v1.36.3", "server": "https://k:6443"}, meta={"who": "test", "n": 1})
    with KwsReader(path) as r:
        assert r.clean and r.index is not None
        assert r.format_version == FORMAT_VERSION
        assert r.header["contentType"] == r.content_type == "snapshot"
        assert r.header["kwoksnapVersion"] == kwoksnap.__version__
        assert r.header["createdAt"] == "2024-05-06T07:08:09.123456Z"
        assert r.header["source"] == {"serverVersion": "v1.36.3", "server": "https://k:6443"}
        assert r.header["meta"] == {"who": "test", "n": 1}
        assert list(r.records()) == recs
        assert r.count() == len(recs)
        assert r.time_range() is None


def test_recording_round_trip_time_range_and_frame_times(tmp_path: Path) -> None:
    recs = recording_records()
    path = write(tmp_path / "r.kws", recs, content_type="recording", frame_records=5)
    with KwsReader(path) as r:
        assert list(r.records()) == recs
        ts = [x["ts"] for x in recs]
        assert r.time_range() == (min(ts), max(ts))
        for resource in r.resources():
            mine = [x for x in recs if x["resource"] == resource]
            frames = r.frames(resource)
            assert sum(f["records"] for f in frames) == len(mine)
            # first/last ts of each frame are those of the records it holds, in order
            pos = 0
            for f in frames:
                chunk = mine[pos : pos + f["records"]]
                assert (f["firstTs"], f["lastTs"]) == (chunk[0]["ts"], chunk[-1]["ts"])
                pos += f["records"]


def test_resource_selective_reads_and_counts(tmp_path: Path) -> None:
    recs = snapshot_records(n_pods=200, pad=300)
    # interleave a second run of nodes after the pods: the index must list both frames of v1/nodes
    recs.append({"type": "object", "resource": "v1/nodes", "object": {"metadata": {"name": "node-late"}}})
    recs.append({"type": "untyped note without resource"})
    path = write(tmp_path / "s.kws", recs, frame_bytes=8 << 10)
    expected_order = list(dict.fromkeys(x.get("resource", "") for x in recs))
    with KwsReader(path) as r:
        assert r.resources() == expected_order
        per_resource = Counter(x.get("resource", "") for x in recs)
        for resource in expected_order:
            assert list(r.records(resource)) == [x for x in recs if x.get("resource", "") == resource]
            assert r.count(resource) == per_resource[resource]
        # restore reads in another order than written: reverse order works and reads only those frames
        for resource in reversed(expected_order):
            assert [x.get("resource", "") for x in r.records(resource)] == [resource] * per_resource[resource]
        assert r.count("v1/nothing") == 0 and list(r.records("v1/nothing")) == []
        assert len(r.frames("v1/nodes")) == 2
        assert len(r.frames("v1/pods")) > 3  # the size bound split them
        ns_pods = Counter(x["object"]["metadata"]["namespace"] for x in recs
                          if x.get("resource") == "v1/pods" and x["type"] == "object")
        ns_pods[""] = 1  # the "resource" record has no namespace
        assert r.namespaces("v1/pods") == dict(ns_pods)
        assert r.namespaces("v1/nodes") == {"": per_resource["v1/nodes"]}


def test_frames_never_span_resources(tmp_path: Path) -> None:
    recs = snapshot_records(n_pods=30)
    path = write(tmp_path / "s.kws", recs)
    with KwsReader(path) as r:
        assert r.resources() == ["v1/nodes", "v1/pods", "apps/v1/deployments"]
        for resource in r.resources():
            for frame in r.frames(resource):
                _, payload = r._read_block(frame["offset"], None, path.stat().st_size)
                decoded = r._decode_frame(payload, frame["offset"], None)
                assert len(decoded) == frame["records"]
                assert {x["resource"] for x in decoded} == {resource}


def test_namespace_falls_back_to_record_field(tmp_path: Path) -> None:
    recs = recording_records(12)
    path = write(tmp_path / "r.kws", recs, content_type="recording")
    with KwsReader(path) as r:
        expected = Counter(x.get("namespace", "") for x in recs if x["resource"] == "v1/pods")
        assert r.namespaces("v1/pods") == dict(expected)


def test_empty_writer_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path / "e.kws", [])
    with KwsReader(path) as r:
        assert r.clean and r.resources() == [] and r.count() == 0 and list(r.records()) == []
        report = r.scan()
        assert report.ok and report.frames_ok == 0 and report.bytes_ok == path.stat().st_size


def test_file_mode_0600_and_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "m.kws", snapshot_records(3))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes()[: len(MAGIC)] == MAGIC


def test_temp_file_hidden_until_clean_close(tmp_path: Path) -> None:
    final = tmp_path / "t.kws"
    w = KwsWriter(final)
    w.write_many(snapshot_records(5))
    assert not final.exists()
    assert w.temp_path.exists() and w.temp_path.parent == tmp_path
    assert stat.S_IMODE(w.temp_path.stat().st_mode) == 0o600
    w.close()
    assert final.exists() and not w.temp_path.exists()
    assert os.listdir(tmp_path) == ["t.kws"]


def test_exception_in_with_block_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "x.kws"
    with pytest.raises(RuntimeError), KwsWriter(final) as w:
        w.write_many(snapshot_records(400, pad=2000))  # several frames already on disk
        raise RuntimeError("capture failed")
    assert os.listdir(tmp_path) == []


def test_abort_removes_temp_and_is_idempotent(tmp_path: Path) -> None:
    w = KwsWriter(tmp_path / "a.kws")
    w.write({"type": "x"})
    w.abort()
    w.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(UsageError):
        w.write({"type": "x"})


def test_unstorable_record_is_a_usage_error_and_writer_continues(tmp_path: Path) -> None:
    path = tmp_path / "u.kws"
    with KwsWriter(path) as w:
        w.write({"type": "a", "resource": "v1/pods"})
        with pytest.raises(UsageError, match="record 2"):
            w.write({"type": "b", "resource": "v1/pods", "bad": object()})
        with pytest.raises(UsageError, match="resource"):
            w.write({"type": "c", "resource": 5})
        with pytest.raises(UsageError):
            w.write(["not", "a", "dict"])  # type: ignore[arg-type]
        w.write({"type": "d", "resource": "v1/pods"})
    with KwsReader(path) as r:
        assert [x["type"] for x in r.records()] == ["a", "d"]


def test_bad_writer_arguments(tmp_path: Path) -> None:
    existing = write(tmp_path / "e.kws", [])
    with pytest.raises(UsageError, match="exists"):
        KwsWriter(existing)
    with pytest.raises(UsageError, match="content type"):
        KwsWriter(tmp_path / "a.kws", content_type="movie")
    with pytest.raises(UsageError, match="level"):
        KwsWriter(tmp_path / "a.kws", level=99)
    with pytest.raises(UsageError, match="meta"):
        KwsWriter(tmp_path / "a.kws", meta={1: "x"})  # type: ignore[dict-item]
    with pytest.raises(UsageError, match="timezone"):
        KwsWriter(tmp_path / "a.kws", created_at=dt.datetime(2024, 1, 1))
    with pytest.raises(UsageError, match="cannot create"):
        KwsWriter(tmp_path / "missing-dir" / "a.kws")
    assert sorted(os.listdir(tmp_path)) == ["e.kws"]
    # overwrite=True replaces atomically
    write(existing, [{"type": "x"}], overwrite=True)
    with KwsReader(existing) as r:
        assert r.count() == 1


def test_level_is_configurable(tmp_path: Path) -> None:
    recs = snapshot_records(300, pad=100)
    fast = write(tmp_path / "1.kws", recs, level=1)
    small = write(tmp_path / "19.kws", recs, level=19)
    for path, level in ((fast, 1), (small, 19)):
        with KwsReader(path) as r:
            assert r.header["compressionLevel"] == level and list(r.records()) == recs


def test_records_are_plain_msgpack_a_foreign_reader_can_decode(tmp_path: Path) -> None:
    """Only msgpack + zstd + the documented layout are needed to get the records (docs/format.md)."""
    import struct
    import zlib

    import zstandard

    recs = snapshot_records(20)
    data = write(tmp_path / "f.kws", recs).read_bytes()
    _, version, hlen = struct.unpack_from("<8sII", data, 0)
    assert version == FORMAT_VERSION
    pos = 16 + hlen + 4
    out: list[Any] = []
    while data[pos] == ord("F"):
        _tag, length, crc = struct.unpack_from("<BII", data, pos)
        payload = data[pos + 9 : pos + 9 + length]
        assert zlib.crc32(payload, zlib.crc32(data[pos : pos + 5])) == crc
        out += list(msgpack.Unpacker(__import__("io").BytesIO(zstandard.ZstdDecompressor().decompress(payload))))
        pos += 9 + length
    assert out == recs
    assert data[-8:] == b"KWSEND\r\n"


def _peaks(path: Path, n: int) -> tuple[int, int]:
    """Peak traced allocations while writing, then while reading, n ~1 KB records (generated lazily)."""
    tracemalloc.start()
    try:
        with KwsWriter(path) as w:
            w.write_many({"type": "object", "resource": "v1/pods", "object": pod(i, pad=800)} for i in range(n))
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        count = 0
        with KwsReader(path) as r:
            for _ in r.records("v1/pods"):
                count += 1
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    return write_peak, read_peak


def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    """Tripling the record count (4 MB -> 12 MB of msgpack) does not grow the writer's or reader's peak memory."""
    small_w, small_r = _peaks(tmp_path / "small.kws", 4_000)
    big_w, big_r = _peaks(tmp_path / "big.kws", 12_000)
    raw_size = 12_000 * len(msgpack.packb({"type": "object", "resource": "v1/pods", "object": pod(0, pad=800)}))
    slack = 256 << 10  # the index grows by one entry per frame
    assert big_w < small_w * 1.2 + slack, (small_w, big_w)
    assert big_r < small_r * 1.2 + slack, (small_r, big_r)
    assert big_w < raw_size / 4 and big_r < raw_size / 2, (big_w, big_r, raw_size)


def test_scan_of_clean_file(tmp_path: Path) -> None:
    recs = snapshot_records(10)
    path = write(tmp_path / "c.kws", recs)
    with KwsReader(path) as r:
        report = r.scan()
    assert isinstance(report, ScanReport)
    assert report.ok and report.clean and report.header_ok
    assert report.records == len(recs)
    assert report.resources == dict(Counter(x["resource"] for x in recs))
    assert report.bytes_ok == report.file_size == path.stat().st_size
    assert "clean" in report.summary()


def test_unclean_file_needs_salvage_for_index_queries(tmp_path: Path) -> None:
    w = KwsWriter(tmp_path / "c.kws", frame_records=4)
    w.write_many(snapshot_records(10))
    w._flush()
    w._file.flush()
    crashed = w.temp_path  # what a crashed writer leaves behind
    with KwsReader(crashed) as r:
        assert not r.clean and r.index is None
        with pytest.raises(FormatError, match="not closed cleanly"):
            r.resources()
        with pytest.raises(FormatError, match="not closed cleanly"):
            r.count()
        got = list(r.records(salvage=True))
        assert got == snapshot_records(10)
        assert list(r.records("v1/nodes", salvage=True)) == snapshot_records(10)[:4]
        with pytest.raises(FormatError, match="not closed cleanly"):
            list(r.records())
    w.abort()


def test_atomic_output_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with atomic_output(target, private=False) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"new"  # a failed write leaves the old file whole
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left
    mask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "shared.json", private=False) as out:
            out.write(b"{}")
        with atomic_output(tmp_path / "state.yaml") as out:
            out.write(b"{}")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644  # as a plain write would give
    assert stat.S_IMODE((tmp_path / "state.yaml").stat().st_mode) == 0o600  # cluster state stays private
    with pytest.raises(UsageError, match="cannot create a file"), atomic_output(tmp_path / "missing" / "x.json"):
        pass


def test_a_system_refusal_is_an_os_error_that_names_the_output(tmp_path: Path) -> None:
    """Black-box findings: a directory the system refuses to write in (no permission, a read-only file system) was
    a usage error (exit 2), not exit 7; and a write refused for its size named no file ("File too large")."""
    import errno
    import sys

    if sys.platform == "linux" and Path("/sys").is_dir():  # sysfs takes no new file, even from root
        with pytest.raises(OSError) as refused, atomic_output("/sys/x.yaml") as out:
            out.write(b"x")
        assert refused.value.errno in (errno.EACCES, errno.EROFS, errno.EPERM)
        assert refused.value.filename == "/sys/x.yaml" and "cannot create a file in /sys" in str(refused.value)
    with pytest.raises(OSError) as too_big, atomic_output(tmp_path / "big.yaml") as out:
        raise OSError(errno.EFBIG, "File too large")
    assert too_big.value.filename == str(tmp_path / "big.yaml") and list(tmp_path.iterdir()) == []


def test_a_large_record_after_others_starts_a_frame_a_reader_accepts(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: a record was appended to a frame already holding others, so the frame could exceed the
    largest one a reader accepts, and a clean file read as damaged (shown here with both limits at 1,000 bytes)."""
    import kwoksnap.store.reader as reader_module
    import kwoksnap.store.writer as writer_module

    monkeypatch.setattr(writer_module, "MAX_RAW_FRAME_BYTES", 1000)
    monkeypatch.setattr(reader_module, "MAX_RAW_FRAME_BYTES", 1000)
    path = tmp_path / "big.kws"
    records = [{"type": "object", "resource": "v1/configmaps",
                "object": {"metadata": {"name": f"cm{i}", "namespace": "ns"}, "data": {"x": "y" * 500}}}
               for i in range(2)]
    with KwsWriter(path, frame_bytes=1000) as w:
        w.write_many(records)
    with KwsReader(path) as r:
        assert list(r.records()) == records
        assert r.index["frames"] == 2


def test_a_decompression_bomb_is_a_damaged_frame_read_in_bounded_memory(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fuzzing finding: a 1.4 KB file whose one frame expands to 32 Mi empty maps took 2.4 GB and 6 s before it
    was refused. A frame beyond the slack that expands beyond 100x, or of over a million records, is damaged before
    it is decoded (shown with the slack at 1,000 bytes and the record cap at 100); the writer refuses to write
    what readers refuse."""
    import kwoksnap.store.format as format_module
    import kwoksnap.store.reader as reader_module

    zeros = [{"type": "object", "resource": "v1/configmaps",
              "object": {"metadata": {"name": "z", "namespace": "ns"}, "data": {"x": "0" * 200_000}}}]
    monkeypatch.setattr(format_module, "EXPANSION_SLACK", 1000)  # (one rule for the writer and the readers)
    with KwsWriter(tmp_path / "refused.kws") as w:  # refused alone, before it is taken; the writer goes on
        w.write({"type": "x", "resource": "v1/configmaps"})
        with pytest.raises(Unstorable, match=r"^a record of 200,\d+ bytes compresses [\d,]+x, beyond the 100x readers "
                                             r"accept as no decompression bomb: not stored$"):
            w.write_many(zeros)
        w.write({"type": "y", "resource": "v1/configmaps"})
        w.write({"type": "z", "resource": "v1/configmaps", "data": os.urandom(5000)})  # (beyond the slack, stored:
    with KwsReader(tmp_path / "refused.kws") as r:                                   # compressed once, when checked)
        assert [rec["type"] for rec in r.records()] == ["x", "y", "z"] and r.scan().ok
    monkeypatch.setattr(format_module, "EXPANSION_SLACK", 1 << 30)  # (written as a hand-made bomb would be)
    with KwsWriter(tmp_path / "bomb.kws") as w:
        w.write_many(zeros)
    monkeypatch.setattr(format_module, "EXPANSION_SLACK", 1000)
    with KwsReader(tmp_path / "bomb.kws") as r, pytest.raises(FormatError, match=r"would expand \d+x .* beyond "
                                                                                 r"the 100x a reader accepts"):
        list(r.records())
    monkeypatch.setattr(reader_module, "MAX_FRAME_RECORDS_READ", 100)
    with KwsWriter(tmp_path / "many.kws") as w:
        w.write_many({"type": "x"} for _ in range(101))
    with KwsReader(tmp_path / "many.kws") as r:
        with pytest.raises(FormatError, match="frame holds more than 100 records"):
            list(r.records())
        assert "frame holds more than 100 records" in r.scan().summary()
    with KwsWriter(tmp_path / "fine.kws") as w:
        w.write_many({"type": "x"} for _ in range(100))
    with KwsReader(tmp_path / "fine.kws") as r:
        assert len(list(r.records())) == 100 and r.scan().clean


def test_a_snapshot_is_never_written_over_a_link_even_one_pointing_nowhere(tmp_path: Path) -> None:
    """Black-box finding: `save -o` onto a dangling symlink replaced the link with the file (the existence check
    followed the link), though save never writes over an existing file."""
    link = tmp_path / "x.kws"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="already exists"):
        KwsWriter(link)
    assert link.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["x.kws"]


def test_a_temporary_file_a_killed_writer_left_is_removed_by_the_next(tmp_path: Path) -> None:
    """Black-box finding: `save` or `convert` killed outright (SIGKILL) left `.out.kws.<random>.tmp` behind, and
    each later run another. The name now says which process of which host writes it; the next writer of the same
    file removes those of processes that no longer run (not a running one's, nor another host's)."""
    import socket
    import subprocess
    import sys

    from kwoksnap.store.atomic import atomic_output

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a pid that no longer runs
    host = socket.gethostname()
    stray = tmp_path / f".out.yaml.{host}-{gone}.abc123.tmp"
    running = tmp_path / f".out.yaml.{host}-{os.getpid()}.def456.tmp"
    elsewhere = tmp_path / f".out.yaml.other-host-{gone}.ghi789.tmp"
    huge = tmp_path / f".out.yaml.{host}-99999999999999999999.x.tmp"  # (re-test: no pid at all was exit 70)
    for path in (stray, running, elsewhere, huge):
        path.write_bytes(b"half")
    with atomic_output(tmp_path / "out.yaml") as f:
        f.write(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, elsewhere.name, huge.name, "out.yaml"])
    with KwsWriter(tmp_path / "s.kws") as w:  # (the snapshot writer names its temporary file alike)
        assert w.temp_path.name.startswith(f".s.kws.{host}-{os.getpid()}.")
        w.write({"type": "x"})


def test_the_index_says_which_resources_are_not_whole(tmp_path: Path) -> None:
    """Black-box finding: a save whose lists were refused (a read-only account) wrote a file that looked complete;
    inspect, diff and restore could not tell. The index now names them (optional: older files have none)."""
    path = tmp_path / "partial.kws"
    with KwsWriter(path) as w:
        w.write_many(snapshot_records(2))
        w.incomplete("v1/nodes", "403 Forbidden: nodes is forbidden")
    with KwsReader(path) as r:
        assert r.incomplete() == {"v1/nodes": "403 Forbidden: nodes is forbidden"}
        assert r.count("v1/nodes") == 4  # (what it did list stays readable)
    whole = tmp_path / "whole.kws"
    with KwsWriter(whole) as w:
        w.write_many(snapshot_records(2))
    with KwsReader(whole) as r:
        assert r.incomplete() == {} and "incomplete" not in (r.index or {})


def test_an_output_whose_directory_is_removed_meanwhile_is_said_so(tmp_path: Path) -> None:
    """Black-box finding: `record -o dir/x.kws` whose dir was removed while it recorded ended in an internal error
    (FileNotFoundError, exit 70)."""
    import shutil

    from kwoksnap.errors import ExitCode, OutputLost
    from kwoksnap.store.atomic import atomic_output

    gone = tmp_path / "gone"
    gone.mkdir()
    w = KwsWriter(gone / "x.kws")
    w.write({"type": "x"})
    shutil.rmtree(gone)
    with pytest.raises(OutputLost, match=r"x\.kws: its directory was removed .* nothing was written"):
        w.close()
    gone.mkdir()
    with pytest.raises(OutputLost) as info, atomic_output(gone / "r.json") as f:
        f.write(b"{}")
        shutil.rmtree(gone)
    assert info.value.exit_code == ExitCode.SYSTEM
