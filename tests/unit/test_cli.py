"""The command line: every command imports and shows help, errors map to one line and a documented code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kwoksnap.cli.main import COMMANDS, main
from kwoksnap.errors import ExitCode


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kwoksnap", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_python_m_help_lists_every_command() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from kwoksnap.cli.main import cli; "
            "heavy = [m for m in ('kubernetes', 'zstandard', 'msgpack', 'urllib3') if m in sys.modules]; "
            "print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_examples(name: str) -> None:
    proc = run(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and "kwoksnap" in proc.stdout


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_kwoksnap_error_is_one_line_with_its_exit_code(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("KWOKSNAP_WORKDIR", str(tmp_path))
    code, _out, err = in_process(capsys, "cluster", "kubeconfig", "--name", "does-not-exist")
    assert code == ExitCode.USAGE
    assert err.count("\n") == 1 and err.startswith("kwoksnap: error: no cluster named does-not-exist")


def test_deleting_a_missing_cluster_is_a_note_not_an_error(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Documented (README, exit codes): cleanup runs `cluster delete` unconditionally, as kind allows."""
    monkeypatch.setenv("KWOKSNAP_WORKDIR", str(tmp_path))
    code, out, err = in_process(capsys, "cluster", "delete", "--name", "does-not-exist")
    assert code == ExitCode.OK
    assert out == "" and err == "no cluster named does-not-exist: nothing to delete\n"


def test_unknown_option_is_usage_error() -> None:
    proc = run("cluster", "create", "--no-such-option")
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == ("kwoksnap: error: No such option '--no-such-option'. (see 'kwoksnap cluster create "
                           "--help')\n")


@pytest.mark.parametrize(("args", "message"), [
    (["replay", "--workers", "0"], "Invalid value for '--workers': 0 is not in the range 1<=x<=256."),
    (["replay", "--lease-interval", "-1"], "Invalid value for '--lease-interval': -1.0 is not in the range x>=0."),
    (["replay", "--mode", "other"], "Invalid value for '--mode': 'other' is not one of 'verbatim', 'inputs'."),
])
def test_a_bad_option_value_is_one_line(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == f"kwoksnap: error: {message} (see 'kwoksnap replay --help')\n"


def test_invalid_cluster_name() -> None:
    proc = run("cluster", "create", "--name", "Bad_Name", "--kwokctl", sys.executable)
    assert proc.returncode == ExitCode.USAGE
    assert "invalid cluster name" in proc.stderr


def test_a_missing_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    """Leftover of a docs walkthrough: ``KUBECONFIG=/missing`` was exit 4 ("the cluster is unreachable") where
    ``--kubeconfig /missing`` and no kubeconfig at all are usage errors (exit 2, README's table)."""
    from kwoksnap.errors import UsageError
    from kwoksnap.kube import load_config

    with pytest.raises(UsageError, match=r"^--kubeconfig /nonexistent/kubeconfig: no such file$"):
        load_config("/nonexistent/kubeconfig")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    missing = str(tmp_path / "missing")
    for value, said in ((missing, f"$KUBECONFIG {missing}: no such file"),
                        (f"{missing}:{missing}2", f"$KUBECONFIG {missing}:{missing}2: none of its files exists")):
        proc = run("save", "-o", str(tmp_path / "out.kws"), env=env | {"KUBECONFIG": value})
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stderr == f"kwoksnap: error: {said}\n"
    assert not (tmp_path / "out.kws").exists()


def test_the_report_directory_is_checked_before_the_replay(tmp_path: Path) -> None:
    # No cluster is contacted: the kubeconfig points nowhere, and the check comes first.
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    proc = run("--kubeconfig", str(config), "replay", "--audit", str(log),
               "--report", str(tmp_path / "missing" / "report.json"))
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def test_the_report_is_never_written_over_an_input(tmp_path: Path) -> None:
    """Black-box finding: `replay --audit x.log --report x.log` replaced the incident's audit log by the report,
    with exit 0 (likewise a recording given as the report)."""
    import shutil

    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    log = tmp_path / "audit.log.gz"
    shutil.copy(Path(__file__).parents[2] / "fixtures/incident/audit.log.gz", log)
    before = log.read_bytes()
    for args in (["--audit", str(tmp_path / "*.gz"), "--report", str(log)],
                 [str(log), "--report", str(tmp_path / "." / log.name)]):
        proc = run("--kubeconfig", str(config), "replay", *args)
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stderr.count("\n") == 1 and "is an input of this command" in proc.stderr, proc.stderr
        assert log.read_bytes() == before


def test_the_report_never_replaces_a_device_a_pipe_or_a_link(tmp_path: Path) -> None:
    """Black-box finding: as root, `replay --report /dev/null` (or a FIFO, or a link to /proc/self/fd/1) replaced
    the device with a plain file holding the report, and only after the whole replay."""
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    fifo, link = tmp_path / "fifo", tmp_path / "link"
    os.mkfifo(fifo)
    link.symlink_to("/proc/self/fd/1")
    for target, what in ((fifo, "a pipe"), (link, "a symbolic link"), (Path("/dev/null"), "a device")):
        proc = run("--kubeconfig", str(config), "replay", "--audit", str(log), "--report", str(target))
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stderr == (f"kwoksnap: error: --report {target} is {what}, which the written file would replace: "
                               "give a plain file's name\n")
    assert fifo.is_fifo() and link.is_symlink() and Path("/dev/null").is_char_device()


def test_the_report_replaces_only_a_report(tmp_path: Path) -> None:
    """Black-box finding: `replay --report` named the kubeconfig in use (a typo of `--report ~/.kube/config`), and
    the replay replaced it by the report: the user's credentials were gone."""
    config = tmp_path / "kubeconfig"
    text = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
    config.write_text(text)
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    for target in (config, other):
        proc = run("--kubeconfig", str(config), "replay", "--audit", str(log), "--report", str(target))
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert proc.stderr == (f"kwoksnap: error: --report {target} exists and is not a report kwoksnap wrote: not "
                               "replaced (give a new file's name, or remove that file first)\n")
    assert config.read_text() == text and other.read_text() == '{"mine": 1}'
    previous = tmp_path / "report.json"
    previous.write_text('{"events": 3, "applied": 3, "failed": 0}')
    proc = run("--kubeconfig", str(config), "replay", "--audit", str(log), "--report", str(previous))
    assert proc.returncode == ExitCode.CLUSTER, proc.stderr  # (past the check: the kubeconfig names no cluster)


def test_a_replaced_report_keeps_its_mode(tmp_path: Path) -> None:
    """Black-box finding: a report its user had made 0600 came back 0644 on the next run."""
    from kwoksnap.store.atomic import atomic_output

    report = tmp_path / "report.json"
    report.write_text("{}")
    report.chmod(0o600)
    with atomic_output(report, private=False) as out:
        out.write(b"{ }")
    assert report.read_text() == "{ }" and report.stat().st_mode & 0o777 == 0o600


def test_a_missing_audit_file_is_an_input_error_before_the_replay(tmp_path: Path) -> None:
    """A typo in one of several --audit paths stopped nothing: the file was skipped as unusable, silently."""
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    for command in (["replay"], ["convert", "-o", str(tmp_path / "trace.kws")]):
        proc = run("--kubeconfig", str(config), *command, "--audit", str(log), "--audit", str(tmp_path / "nope.log"))
        assert proc.returncode == ExitCode.INPUT, proc.stderr
        assert proc.stderr == f"kwoksnap: error: {tmp_path / 'nope.log'}: no such file\n"
    assert not (tmp_path / "trace.kws").exists()


def test_inspect_of_another_kind_of_file_says_so_once(tmp_path: Path) -> None:
    """Black-box finding: an audit log given to inspect printed a scan summary ("not closed cleanly; 0 frames...")
    and then the error, the same cause twice."""
    log = tmp_path / "audit.log"
    log.write_text('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}\n')
    proc = run("inspect", str(log))
    assert proc.returncode == ExitCode.INPUT and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "not a .kws file" in proc.stderr, proc.stderr


@pytest.mark.parametrize("option", [["--lease-interval", "nan"], ["--lease-interval", "inf"], ["--capacity", "nan"],
                                    ["--capacity", "inf"], ["--capacity", "0"], ["--max-gap", "0s"],
                                    ["--max-gap", "0.0000000001"], ["--max-gap", "0.5ms"]])
def test_replay_refuses_numbers_out_of_range(tmp_path: Path, option: list[str]) -> None:
    """Black-box findings: --lease-interval nan and --max-gap 0s were accepted and ran a whole replay; so was
    --max-gap 0.0000000001, which compressed every gap as 0 would."""
    proc = run("replay", "--audit", str(tmp_path / "audit.log"), *option)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1 and option[0] in proc.stderr


@pytest.mark.parametrize("args", [["cluster", "create", "--name", "x", "--wait", "nan"],
                                  ["restore", "nope.kws", "--settle-timeout", "inf"]])
def test_other_durations_refuse_numbers_that_are_not_finite(args: list[str]) -> None:
    """Review finding: cluster create --wait nan reached int(wait) and ended in a traceback."""
    proc = run(*args)
    assert proc.returncode == ExitCode.USAGE and proc.stderr.count("\n") == 1, proc.stderr
    assert "is not a finite number" in proc.stderr


def test_a_namespace_that_selected_nothing_is_named(tmp_path: Path) -> None:
    """Black-box finding: a misspelt -n replayed only the cluster-scoped events (nodes pass any -n), silently."""
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    proc = run("convert", "--audit", str(log), "-n", "app-0", "-n", "app-9", "-o", str(tmp_path / "trace.kws"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: -n ")] == [
        "warning: -n app-9: no event in it passed the filters (is the name right, and does the log hold writes in "
        "it of the resources replayed (--resources adds more than nodes, pods and node leases)?)"]


def test_a_namespace_whose_events_other_filters_left_out_says_which(tmp_path: Path) -> None:
    """Black-box finding: `-n app-1 --from T` with T after app-1's last event asked whether the name was right."""
    import datetime as dt
    import gzip

    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    last = max(orjson.loads(line)["stageTimestamp"] for line in gzip.decompress(log.read_bytes()).splitlines()
               if b'"namespace":"app-1"' in line)
    after = (dt.datetime.fromisoformat(last.replace("Z", "+00:00")) + dt.timedelta(seconds=1)).isoformat()
    proc = run("convert", "--audit", str(log), "-n", "app-1", "--from", after, "-o", str(tmp_path / "trace.kws"))
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: -n ")]
    assert len(warnings) == 1 and warnings[0].startswith(
        "warning: -n app-1: its events were all left out by the other filters (--from/--to "), proc.stderr


def test_a_log_whose_clock_is_behind_anothers_is_named(tmp_path: Path) -> None:
    """Review finding: HA logs with a server 3 s behind replayed its changes early (a binding before the create)
    and nothing said so."""
    from tests.unit.test_audit_reader import ev, jsonl

    a, b = tmp_path / "api-a.log", tmp_path / "api-b.log"
    a.write_bytes(jsonl(ev(10_000, verb="create", name="p1", rv=100)))
    b.write_bytes(jsonl(ev(7_000, name="y", rv=150)))
    proc = run("convert", "--audit", str(a), "--audit", str(b), "-o", str(tmp_path / "trace.kws"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert f"warning: {b}: its clock is at least 2.999 s behind another file's" in proc.stderr, proc.stderr


def test_an_event_a_recording_cannot_hold_is_left_out_and_the_rest_written(tmp_path: Path) -> None:
    """Black-box finding: one event of many MiB that compresses beyond what readers accept (a 12 MB annotation of
    one letter) ended `record` (exit 3, everything after it lost) and `convert`. It is left out, named, and the
    others are written."""
    from tests.unit.test_audit_reader import ev, jsonl

    big = ev(2, name="big", responseObject={"metadata": {"name": "big", "annotations": {"x": "x" * 9_000_000}}})
    log = tmp_path / "audit.log"
    log.write_bytes(jsonl(ev(1, name="a"), big, ev(3, name="b")))
    proc = run("convert", "--audit", str(log), "-o", str(tmp_path / "trace.kws"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert proc.stdout.startswith("wrote 2 events"), proc.stdout
    assert f"warning: 1 event(s) left out of the recording: {log}:2: a record of 9,000," in proc.stderr, proc.stderr
    inspected = run("inspect", str(tmp_path / "trace.kws"))
    assert inspected.returncode == ExitCode.OK, inspected.stderr


def test_convert_says_which_lines_were_malformed(tmp_path: Path) -> None:
    """Black-box finding: convert said only how many lines were malformed; replay names the first three."""
    from tests.unit.test_audit_reader import ev, jsonl

    log = tmp_path / "audit.log"
    log.write_bytes(jsonl(ev(1, name="a")) + b"{oops\n" + jsonl(ev(2, name="b")))
    proc = run("convert", "--audit", str(log), "-o", str(tmp_path / "trace.kws"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert f"malformed input lines: 1 (first: {log}:2: not valid JSON)" in proc.stdout, proc.stdout


def test_namespaces_are_comma_separated_too(tmp_path: Path) -> None:
    """Review finding: `-n a,b` was one namespace named "a,b" (and then warned that it matched nothing)."""
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    counts = []
    for i, args in enumerate((["-n", "app-0", "-n", "app-1"], ["-n", "app-0, app-1"], ["-n", "app-0,app-9"])):
        proc = run("convert", "--audit", str(log), *args, "-o", str(tmp_path / f"{i}.kws"), "--format", "json")
        assert proc.returncode == ExitCode.OK, proc.stderr
        counts.append(orjson.loads(proc.stdout)["events"])
        warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: -n ")]
        assert warnings == ([] if "app-1" in " ".join(args) else [
            "warning: -n app-9: no event in it passed the filters (is the name right, and does the log hold writes "
            "in it of the resources replayed (--resources adds more than nodes, pods and node leases)?)"])
    assert counts[0] == counts[1] > counts[2] > 0


def test_a_recording_says_nothing_changed_in_an_unmatched_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    """Noted in an earlier stop: `record -n nosuch` (the watch: there is no log) asked "does the log hold writes"."""
    from types import SimpleNamespace

    from kwoksnap.cli.options import warn_unmatched_namespaces

    warn_unmatched_namespaces(("app-0", "nosuch"), SimpleNamespace(kept_namespaces={"app-0"}, namespace_skips={}),
                              live=True)
    assert capsys.readouterr().err == ("warning: -n nosuch: no event in it passed the filters (is the name right, "
                                       "and did anything change in it while recording?)\n")


def test_no_command_shows_the_help() -> None:
    proc = run()
    assert proc.returncode == ExitCode.USAGE and proc.stderr.startswith("Usage: kwoksnap [OPTIONS] COMMAND")


def test_from_must_come_before_to() -> None:
    proc = run("convert", "--audit", "x.log", "-o", "x.kws", "--from", "2026-01-02T00:00:00Z", "--to",
               "2026-01-01T00:00:00Z")
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == ("kwoksnap: error: --from 2026-01-02T00:00:00Z is not earlier than --to "
                           "2026-01-01T00:00:00Z\n")


def test_a_time_beyond_what_nanoseconds_hold_is_no_bound() -> None:
    """Review finding: after audit times were bounded to int64 nanoseconds, `--to 9999-12-31T23:59:59Z` (a common
    "no end") was refused as "not an RFC 3339 time"; it is the farthest bound there is."""
    from kwoksnap.cli.options import filter_spec

    spec = filter_spec((), (), (), "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z")
    assert (spec.since_ns, spec.until_ns) == (-(2**63), 2**63 - 1)


def test_inspect_counts_objects_not_the_records_describing_resources() -> None:
    """A snapshot opens each resource with a record describing it; inspect showed it as one cluster-scoped object
    of every resource (pods: '(cluster)=1')."""
    snapshot = Path(__file__).parents[2] / "fixtures/incident/before.kws"
    info = orjson.loads(run("inspect", str(snapshot), "-o", "json").stdout)
    pods = info["resources"]["v1/pods"]
    assert (pods["records"], pods["objects"], pods["namespaces"]) == (212, 211, {"app-0": 121, "app-1": 90})
    assert info["resources"]["v1/nodes"]["namespaces"] == {"": 20}
    text = run("inspect", str(snapshot)).stdout.splitlines()
    assert text[2].startswith("records: 498 (447 objects), ")
    assert any(line.split() == ["v1/pods", "211", "app-0=121,", "app-1=90"] for line in text)
    # The counts stay in one column past the longest resource name (65 characters here; the column was 55 wide).
    ends = {m.end(2) for line in text[3:] if (m := re.match(r"  (\S+) +(\d+)", line))}
    assert len(ends) == 1 and len(text) > 20, ends


def test_a_dry_run_restore_checks_every_frame(tmp_path: Path) -> None:
    """A real restore reads every object before writing; the dry run printed its plan for a damaged file."""
    data = bytearray((Path(__file__).parents[2] / "fixtures/incident/before.kws").read_bytes())
    data[5000] ^= 1
    damaged = tmp_path / "damaged.kws"
    damaged.write_bytes(bytes(data))
    proc = run("restore", str(damaged), "--dry-run")
    assert proc.returncode == ExitCode.INPUT and proc.stdout == ""
    assert proc.stderr == (f"kwoksnap: error: {damaged}: byte 2955 (frame 2): damaged: checksum mismatch (corrupt "
                           "data); `kwoksnap salvage` copies the readable part\n")  # (the place named: black-box)


@pytest.mark.parametrize("args", [["convert", "--audit", "x.log", "-o", "-"], ["save", "-o", "-"],
                                  ["export", "x.kws", "-o", "-"], ["replay", "--audit", "x.log", "--report", "-"]])
def test_dash_is_not_a_file_name_for_output(args: list[str], tmp_path: Path) -> None:
    """Found black-box testing: `convert -o -` wrote a file named '-' instead of refusing."""
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == ExitCode.USAGE and proc.stderr.count("\n") == 1
    assert "'-' (standard output) is not supported: give a file name" in proc.stderr
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(("user", "expected"), [
    ("token: abc.def", "Bearer abc.def"),
    ("tokenFile: TOKEN_FILE", "Bearer from-file"),
    ("username: u\n    password: p", "Basic dTpw"),
])
def test_kubeconfig_credentials_become_the_authorization_header(tmp_path: Path, user: str, expected: str) -> None:
    """Black-box finding: a token kubeconfig (a ServiceAccount's, an exec plugin's) was ignored and every request
    went out anonymous: the kubernetes package (37) keeps the token where this code did not look."""
    from kwoksnap.kube import load_config

    token_file = tmp_path / "token"
    token_file.write_text("from-file")
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                      "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      f"users:\n- name: u\n  user:\n    {user.replace('TOKEN_FILE', str(token_file))}\n")
    loaded = load_config(str(config))
    assert loaded.authorization == expected and expected not in repr(loaded)


@pytest.mark.parametrize(("user", "expected"), [
    ('token: "abc\\r\\nX-Injected: 1"', "a character an HTTP header cannot carry"),
    ('token: "abc-\\u00e9\\u20ac"', "a character an HTTP header cannot carry"),
    ("exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, args: [-c, 'echo denied >&2; exit 1'],"
     " interactiveMode: Never}", "getting credentials: exec: process returned 1. denied"),
    ("exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, args: [-c, 'echo {'],"
     " interactiveMode: Never}", "getting credentials: exec: failed to decode process output"),
])
def test_credentials_that_cannot_be_sent_are_refused_in_one_line(tmp_path: Path, user: str, expected: str) -> None:
    """Black-box findings: a token with CR/LF added headers of its own to every request; a non-ASCII one ended in
    an internal error (exit 70); a failing exec plugin was logged by the kubernetes package and the requests went
    out anonymous (a 403 for system:anonymous, blamed on the cluster)."""
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                      "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      f"users:\n- name: u\n  user:\n    {user}\n")
    proc = run("--kubeconfig", str(config), "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == ExitCode.CLUSTER and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr and "abc" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(("text", "args", "code", "expected"), [
    ("users: [{name: u, user: {tokenFile: /nonexistent/token}}]", (), ExitCode.CLUSTER,
     "/nonexistent/token: No such file or directory"),  # it named the kubeconfig as missing
    ("users: [{name: u, user: {token: t}}]", ("--context", "nosuch"), ExitCode.USAGE,
     "--context nosuch: the kubeconfig has no such context"),  # exit 4, as if the cluster had refused
    (None, (), ExitCode.CLUSTER, "not a kubeconfig (TypeError"),  # a YAML list: an internal error (exit 70)
])
def test_kubeconfig_mistakes_are_named(tmp_path: Path, text: str | None, args: tuple[str, ...], code: int,
                                       expected: str) -> None:
    """Black-box and review findings: what is wrong with a kubeconfig is said in one line, with its exit code."""
    config = tmp_path / "kubeconfig"
    config.write_text("- a\n- b\n" if text is None else
                      "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                      "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                      f"contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n{text}\n")
    proc = run("--kubeconfig", str(config), *args, "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == code and proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr


def test_a_kubeconfig_that_is_not_yaml_is_one_line_exit_4(tmp_path: Path) -> None:
    """Black-box finding: it ended as 'internal error' (exit 70) over three lines (a directory too: now a usage
    error, as for any file argument, test_kubeconfig_options_kubectl_would_refuse_...)."""
    config = tmp_path / "kubeconfig"
    config.write_text("garbage: [")
    proc = run("--kubeconfig", str(config), "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == ExitCode.CLUSTER and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"kwoksnap: error: cannot load kubeconfig {config}"), proc.stderr


def test_a_full_disk_or_file_size_limit_is_exit_7_and_leaves_no_file(tmp_path: Path) -> None:
    """Black-box finding: 'No space left on device' ended as 'internal error' (exit 70)."""
    import resource

    def limit() -> None:  # the output may grow to 16 KiB only: EFBIG past it (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "convert", "--audit", str(log), "-o",
                           str(out / "trace.kws")], capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert proc.returncode == ExitCode.SYSTEM, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kwoksnap: error: ") and "File too large" in \
        proc.stderr, proc.stderr
    assert f"{out / 'trace.kws'}: File too large (nothing was left half-written)" in proc.stderr  # (it named none)
    assert list(out.iterdir()) == []
    # salvage too (black-box finding: "File too large" of no file, when a frame's write was refused)
    big = tmp_path / "big.kws"
    from kwoksnap.store import KwsWriter

    with KwsWriter(big) as w:
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
        for i in range(600):  # (past a frame's 256 KiB: the refusal comes from a frame's write, not close's)
            w.write({"type": "object", "resource": "v1/configmaps", "object": {
                "metadata": {"name": f"c{i}", "namespace": "n"}, "data": {"k": os.urandom(600).hex()}}})
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "salvage", str(big), "-o", str(out / "s.kws")],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert proc.returncode == ExitCode.SYSTEM and proc.stderr == (
        f"kwoksnap: error: {out / 's.kws'}: File too large (nothing was left half-written)\n"), proc.stderr
    assert list(out.iterdir()) == []


def test_a_recording_the_system_refuses_to_grow_names_the_copy_it_keeps(tmp_path: Path) -> None:
    """Black-box finding: `record` under a file-size limit warned that its temporary file held the recording, then
    ended "nothing was left half-written". One error line names the copy kept, which salvage turns into a
    recording."""
    import gzip
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    log = tmp_path / "audit.log"
    log.write_bytes(gzip.decompress((Path(__file__).parents[2] / "fixtures/incident/audit.log.gz").read_bytes()))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "record", "--audit-file", str(log), "--from-start",
                           "--duration", "3s", "-o", str(out / "rec.kws")], capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)
    assert proc.returncode == ExitCode.SYSTEM, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "kept" in ln or "salvage" in ln or "error" in ln]
    assert len(errors) == 1 and "half-written" not in proc.stderr, proc.stderr
    kept = list(out.iterdir())
    assert len(kept) == 1 and kept[0].name.endswith(".tmp"), kept
    assert errors[0].startswith(f"kwoksnap: error: {out / 'rec.kws'}: File too large; what was recorded until then "
                                f"is in {kept[0]}: `kwoksnap salvage {kept[0]} -o FILE`"), proc.stderr
    salvaged = subprocess.run([sys.executable, "-m", "kwoksnap", "salvage", str(kept[0]), "-o",
                               str(tmp_path / "saved.kws")], capture_output=True, text=True, timeout=120)
    assert salvaged.returncode == ExitCode.PARTIAL and (tmp_path / "saved.kws").stat().st_size > 0, salvaged.stderr


def test_tls_files_that_cannot_be_used_are_a_cluster_error(tmp_path: Path) -> None:
    """Review finding: a client key that did not match its certificate was an ssl.SSLError (an OSError), which
    the exit-7 rule for a full disk took, with 'nothing was left half-written'."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    key.write_text("not a key\n")
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                      "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1',"
                      " insecure-skip-tls-verify: true}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      f"users: [{{name: u, user: {{client-certificate: {cert}, client-key: {key}}}}}]\n")
    proc = run("--kubeconfig", str(config), "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == ExitCode.CLUSTER and proc.stderr.count("\n") == 1, proc.stderr
    assert "the kubeconfig's TLS files cannot be used" in proc.stderr, proc.stderr


def test_an_object_nested_deeper_than_255_levels_is_compared_and_exported(tmp_path: Path) -> None:
    """Black-box findings: a custom resource nested 300 levels (the API server took 600) made diff and export end
    in 'internal error' (exit 70); later diff refused the file (exit 3), though save had kept it."""
    from kwoksnap.store import KwsWriter

    deep: dict[str, object] = {}
    node = deep
    for _ in range(300):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    path = tmp_path / "deep.kws"
    with KwsWriter(path) as w:
        w.write({"type": "resource", "resource": "example.com/v1/widgets", "kind": "Widget", "namespaced": True})
        w.write({"type": "object", "resource": "example.com/v1/widgets", "object": {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "n"},
            "spec": deep}})
    proc = run("diff", str(path), str(path))
    assert proc.returncode == ExitCode.OK and "equal: 1 objects compared" in proc.stdout, proc.stderr
    proc = run("export", str(path), "-o", str(tmp_path / "deep.yaml"), "--all-resources")
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert sum(line.strip().startswith("a:") for line in (tmp_path / "deep.yaml").read_text().splitlines()) == 300


@pytest.mark.parametrize(("args", "expected"), [
    (("-n", ""), "'' names nothing"),  # an unset variable: not "every namespace"
    (("-n", ","), "',' names nothing"),
    (("--resources", ""), "'' names nothing"),
    (("--exclude-user", ""), "--exclude-user"),  # it named the internal exclude_users
    (("--actor", "agent:=user"), "empty after agent:"),
    (("--speed", "1" * 400), "invalid speed"),  # inf: it ran as max
    (("--max-gap", ""), "invalid duration ''"),
    (("--report", ""), "'' names no file"),  # it wrote no report, silently
])
def test_empty_or_unusable_replay_options_are_refused(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    """Black-box findings: `-n ''`, `--resources ''` and `--max-gap ''` were accepted silently (`-n ''` as every
    namespace), `--exclude-user ''` failed naming an internal field, `agent:=user` matched nothing silently."""
    log = tmp_path / "audit.log"
    log.write_text("{}\n")
    proc = run("--kubeconfig", str(tmp_path / "none"), "replay", "--audit", str(log), *args)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert expected in proc.stderr and proc.stderr.count("\n") <= 3, proc.stderr


def test_actor_rules_that_cannot_act_are_warned_about(tmp_path: Path) -> None:
    """Black-box findings: --actor with --mode verbatim was ignored silently, and a typo of a field (`agnet:`)
    turned the rule into a whole-name pattern silently."""
    log = tmp_path / "audit.log"
    log.write_text("{}\n")
    proc = run("--kubeconfig", str(tmp_path / "none"), "replay", "--audit", str(log), "--actor", "agnet:argo*=user")
    assert proc.returncode == ExitCode.USAGE  # (no kubeconfig file): the warnings came first
    assert "warning: --actor has no effect in --mode verbatim" in proc.stderr
    assert "warning: --actor 'agnet:argo*': 'agnet' is not a field" in proc.stderr


def test_a_file_given_in_the_wrong_place_says_where_it_goes(tmp_path: Path) -> None:
    """Black-box finding: `replay audit.log` said only "bad magic", `convert --audit rec.kws` "binary file"."""
    from kwoksnap.store import KwsWriter

    log, kws = tmp_path / "audit.log", tmp_path / "rec.kws"
    log.write_text('{"kind":"Event"}\n')
    with KwsWriter(kws) as w:
        w.write({"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True})
    proc = run("--kubeconfig", str(tmp_path / "none"), "replay", str(log))
    assert proc.returncode == ExitCode.INPUT and "an audit log? `replay --audit`" in proc.stderr, proc.stderr
    proc = run("convert", "--audit", str(kws), "-o", str(tmp_path / "out.kws"))
    assert proc.returncode == ExitCode.INPUT and "a kwoksnap .kws file, not an audit log" in proc.stderr, proc.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly_with_141() -> None:
    """Black-box finding: `kwoksnap inspect x.kws | head -1` exited 1 without a word (click's own handling of a
    closed pipe), which under `set -o pipefail` reads like `diff`'s "different"."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "incident" / "before.kws"
    for args in (["inspect", str(fixture)], ["--help"]):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before the first line is written
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", *args], stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=60)
        os.close(writer)
        assert proc.returncode == ExitCode.OUTPUT_CLOSED == 141, (args, proc.returncode, proc.stderr)
        assert proc.stderr == "", args
    # stdout closed before the start (`>&-`): Python prints nothing and says nothing; it exited 0
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "inspect", str(fixture)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert proc.returncode == ExitCode.OUTPUT_CLOSED, (proc.returncode, proc.stderr)


def test_restore_dry_run_leaves_out_what_the_target_makes_itself_unless_asked() -> None:
    """Black-box finding: the plan listed the default ServiceAccounts, kube-root-ca.crt and the like, which the real
    restore skips, and was the same with and without --include-regenerated."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "incident" / "before.kws"
    plain = run("restore", str(fixture), "--dry-run", "-o", "json")
    every = run("restore", str(fixture), "--dry-run", "-o", "json", "--include-regenerated")
    assert plain.returncode == every.returncode == 0, plain.stderr + every.stderr
    left = {s["resource"]: s["leftToTheTarget"] for s in json.loads(plain.stdout)}
    assert left["v1/serviceaccounts"] > 0 and left["v1/configmaps"] > 0 and left["v1/pods"] == 0
    counts = {s["resource"]: s["objects"] for s in json.loads(every.stdout)}
    assert all(counts[r] == s["objects"] + s["leftToTheTarget"] for r, s in
               ((s["resource"], s) for s in json.loads(plain.stdout)))
    assert not any(s["leftToTheTarget"] for s in json.loads(every.stdout))


def test_a_kubeconfig_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    """Black-box finding: `--kubeconfig /nonexistent` exited 4 (cluster), though the README says a file argument
    that does not exist is a usage error (2)."""
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "incident" / "before.kws"
    missing = tmp_path / "nowhere.yaml"
    proc = run("--kubeconfig", str(missing), "restore", str(fixture))
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == f"kwoksnap: error: --kubeconfig {missing}: no such file\n"


def test_a_file_the_system_refuses_to_read_or_write_is_exit_7(tmp_path: Path) -> None:
    """Black-box finding: README says exit 7 for "no permission", but save, import and convert into a directory
    without write permission were exit 2, an unreadable snapshot exit 2 (click's check) and an unreadable audit log
    exit 3."""
    fixtures = Path(__file__).parents[2] / "fixtures/incident"
    yaml_file = tmp_path / "one.yaml"
    yaml_file.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n")
    if Path("/sys").is_dir():  # sysfs takes no new file, even from root
        for args in (["import", str(yaml_file), "-o", "/sys/x.kws"],
                     ["convert", "--audit", str(fixtures / "audit.log.gz"), "-o", "/sys/x.kws"]):
            proc = run(*args)
            assert proc.returncode == ExitCode.SYSTEM and proc.stderr.count("\n") == 1, (args, proc.stderr)
            assert "cannot create a file in /sys" in proc.stderr, proc.stderr
    if os.geteuid() == 0:  # root reads any file it may; a write-only sysfs file (a PCI bus's rescan) refuses it
        unreadable = next(p for p in sorted(Path("/sys/devices").glob("*/*/rescan")) if not p.stat().st_mode & 0o444)
        snapshot = log = unreadable
    else:
        snapshot, log = tmp_path / "before.kws", tmp_path / "audit.log.gz"
        for path in (snapshot, log):
            path.write_bytes((fixtures / path.name).read_bytes())
            path.chmod(0)
    for args in (["inspect", str(snapshot)], ["diff", str(snapshot), str(snapshot)],
                 ["export", str(snapshot), "-o", str(tmp_path / "out.yaml")],
                 ["convert", "--audit", str(log), "-o", str(tmp_path / "out.kws")]):
        proc = run(*args)
        assert proc.returncode == ExitCode.SYSTEM and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert "Permission denied" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "out.kws").exists()


def test_verbose_logs_requests_but_never_credentials(tmp_path: Path) -> None:
    """Black-box finding: -v and -vv printed nothing at all. -v says what each stage does, -vv every request."""
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                      "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      "users: [{name: u, user: {token: sekret-token-value}}]\n")
    quiet = run("--kubeconfig", str(config), "save", "-o", str(tmp_path / "x.kws"))
    loud = run("-vv", "--kubeconfig", str(config), "save", "-o", str(tmp_path / "x.kws"))
    assert quiet.returncode == loud.returncode == ExitCode.CLUSTER and quiet.stderr.count("\n") == 1
    assert "INFO kwoksnap.kube: server http://127.0.0.1:1, with credentials" in loud.stderr, loud.stderr
    assert "DEBUG kwoksnap.kube: GET /version: cannot connect" in loud.stderr and "retrying in" in loud.stderr, \
        loud.stderr
    assert "sekret" not in loud.stderr


def test_save_says_a_resource_whose_list_failed_part_way_was_saved_in_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Review finding: a list that failed after its first pages was reported "not saved", though the snapshot holds
    those pages' objects (a restore of it brings them back)."""
    import contextlib

    from kwoksnap.capture import snapshot
    from kwoksnap.capture.snapshot import ResourceCount, SaveSummary
    from kwoksnap.cli import save

    counts = [ResourceCount("v1/pods", objects=500, error="the server is currently unable to handle the request"),
              ResourceCount("v1/secrets", error="forbidden"), ResourceCount("v1/nodes", objects=3)]
    monkeypatch.setattr(save, "make_client", lambda ctx: contextlib.nullcontext(object()))
    monkeypatch.setattr(snapshot, "save_snapshot", lambda client, path, options, progress: SaveSummary(
        path=str(path), objects=503, resources=counts, seconds=1.0, bytes=1000, server_version="v1.36.3"))
    with pytest.raises(SystemExit) as exit_:
        main(["save", "-o", str(tmp_path / "x.kws")])
    err = capsys.readouterr().err
    assert exit_.value.code == ExitCode.PARTIAL
    assert "warning: v1/pods: only 500 object(s) saved, then the list failed: the server is currently" in err, err
    assert "warning: v1/secrets: not saved: forbidden" in err, err
    assert "2 resource(s) not saved, or not whole" in err, err


def test_a_pipe_or_too_many_audit_files_are_said_as_such(tmp_path: Path) -> None:
    """Black-box findings: `--audit /dev/stdin` said "cannot read: Illegal seek", and more files than the open-file
    limit blamed one of them ("Too many open files")."""
    import resource

    from tests.unit.test_audit_reader import ev, jsonl

    out = str(tmp_path / "trace.kws")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "convert", "--audit", "/dev/stdin", "-o", out],
                          input=jsonl(ev(1)), capture_output=True, timeout=60)
    assert proc.returncode == ExitCode.INPUT and b"a pipe, not a file" in proc.stderr, proc.stderr
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "incident" / "before.kws"
    for args in (["inspect", "/dev/stdin"], ["import", "/dev/stdin", "-o", out]):  # ("empty file", "not valid YAML")
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", *args], input=fixture.read_bytes(),
                              capture_output=True, timeout=60)
        assert proc.returncode == ExitCode.INPUT and b"a pipe or device, not a file" in proc.stderr, proc.stderr
    fifo = tmp_path / "named.fifo"  # (black-box finding: opening one with no writer waited for ever)
    os.mkfifo(fifo)
    for args, said in ((["inspect", str(fifo)], b"a pipe or device, not a file"),
                       (["convert", "--audit", str(fifo), "-o", out], b"a pipe, not a file")):
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", *args], capture_output=True, timeout=60)
        assert proc.returncode == ExitCode.INPUT and said in proc.stderr, proc.stderr
    for i in range(40):
        # (two events 10 s apart: the first leaves the reorder window while the file is still being read, open)
        (tmp_path / f"audit-{i:02}.log").write_bytes(jsonl(ev(i, name=f"p{i}"), ev(10_000 + i, name=f"q{i}")))
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "convert", "--audit", str(tmp_path / "audit-*.log"),
                           "-o", out], capture_output=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32)))
    assert proc.returncode == ExitCode.INPUT and b"too many files open at once" in proc.stderr, proc.stderr


def test_a_log_written_newest_first_is_said_so(tmp_path: Path) -> None:
    """Black-box finding: a log written newest first (`gcloud logging read` without --order=asc, one JSON per line)
    had nearly every event "late", and the warning advised giving each file its own --audit, which does nothing."""
    from tests.unit.test_audit_reader import ev, jsonl

    log = tmp_path / "gke-desc.log"
    pad = {"pad": "x" * 60_000}  # (past the reader's 1 MiB chunk, which is sorted whole)
    log.write_bytes(jsonl(*(ev(1000 * i, name=f"p{i}", annotations=pad) for i in reversed(range(40)))))
    proc = run("convert", "--audit", str(log), "-o", str(tmp_path / "t.kws"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert "of 40 event(s) came more than 5 s out of time order" in proc.stderr and "newest first" in proc.stderr


def test_diff_of_an_object_nested_900_levels_deep(tmp_path: Path) -> None:
    """Black-box finding: the API server takes a custom resource nested 600 levels deep, save keeps it, and diff
    then ended in an internal error (RecursionError, exit 70). Now as deep as a snapshot holds, it is compared."""
    from kwoksnap.store import KwsWriter

    def deep(levels: int) -> dict[str, object]:
        value: dict[str, object] = {"leaf": 1}
        for _ in range(levels):
            value = {"x": value}
        return value

    for name, value in (("a.kws", deep(900)), ("b.kws", deep(901))):
        with KwsWriter(tmp_path / name) as w:
            w.write({"type": "resource", "resource": "example.com/v1/gizmos", "kind": "Gizmo", "namespaced": True})
            w.write({"type": "object", "resource": "example.com/v1/gizmos", "object": {
                "apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g", "namespace": "ns"},
                "spec": value}})
    proc = run("diff", str(tmp_path / "a.kws"), str(tmp_path / "b.kws"))
    assert proc.returncode == ExitCode.DIFFERENT, proc.stderr
    assert "gizmos.example.com ns/g: .spec.x.x" in proc.stdout and ".x.x.leaf: added" in proc.stdout, proc.stdout[-500:]
    # and restore's copy of such an object (copy.deepcopy gave up at about 500 levels)
    from kwoksnap.restore.transform import prepare

    body = prepare({"kind": "Gizmo", "metadata": {"name": "g"}, "spec": deep(900)}, uid_map={}, snapshot_uids=set(),
                   has_status_subresource=False).body
    assert body["spec"]["x"]["x"]["x"]


def test_objects_of_types_no_api_server_holds_are_input_errors(tmp_path: Path) -> None:
    """Fuzzing finding: a hand-made or imported snapshot whose objects hold values of other types (a list of
    annotations, a bytes value, an integer key, a Node's conditions as strings, a PV's claimRef as a list, owner
    references as strings) ended `diff` and `export` in internal errors (exit 70); now exit 3, naming the object.
    And a header whose meta.namespaces is not a list of names is a damaged file."""
    from kwoksnap.store import KwsWriter

    def snapshot(name: str, resource: str, kind: str, obj: dict[str, Any], **header_meta: Any) -> str:
        path = tmp_path / f"{name}.kws"
        with KwsWriter(path, meta=header_meta) as w:
            w.write({"type": "resource", "resource": resource, "kind": kind, "namespaced": "namespace" in obj})
            w.write({"type": "object", "resource": resource, "object": {
                "apiVersion": resource.rpartition("/")[0], "kind": kind,
                "metadata": {"name": name, **({"namespace": obj.pop("namespace")} if "namespace" in obj else {}),
                             **obj.pop("metadata", {})}, **obj}})
        return str(path)

    cases = [
        (snapshot("annotations", "v1/pods", "Pod", {"namespace": "ns", "metadata": {"annotations": ["a"]}}),
         "Pod ns/annotations"),
        (snapshot("bytes", "v1/configmaps", "ConfigMap", {"namespace": "ns", "binaryData": {"k": b"\x00"}}),
         "ConfigMap ns/bytes"),
        (snapshot("intkey", "v1/configmaps", "ConfigMap", {"namespace": "ns", "data": {1: "a", "b": "c"}}),
         "ConfigMap ns/intkey"),
        (snapshot("node", "v1/nodes", "Node", {"status": {"conditions": ["Ready"]}}), "Node node"),
        (snapshot("owned", "v1/pods", "Pod", {"namespace": "ns", "metadata": {"ownerReferences": ["rs"]}}),
         "Pod ns/owned"),
    ]
    for path, named in cases:
        proc = run("diff", path, path)
        assert proc.returncode == 3, path
        assert proc.stderr.startswith(f"kwoksnap: error: {named}: not a valid Kubernetes object")
    # The usual mistake is said as it is (black-box finding: "if it is one, this is a kwoksnap bug").
    assert run("diff", cases[0][0], cases[0][0]).stderr == (
        "kwoksnap: error: Pod ns/annotations: not a valid Kubernetes object: its metadata.annotations is a list, not "
        "a map\n")
    proc = run("export", cases[-1][0], "-o", str(tmp_path / "out.yaml"))  # (export walks owner references)
    assert proc.returncode == 3 and "Pod ns/owned: not a valid Kubernetes object (" in proc.stderr
    assert not (tmp_path / "out.yaml").exists()
    proc = run("export", cases[1][0], "-o", str(tmp_path / "out.yaml"))  # (black-box finding: !!binary, exit 0)
    assert proc.returncode == 3 and proc.stderr == ("kwoksnap: error: ConfigMap ns/bytes: not a valid Kubernetes "
                                                    "object: a value is bytes, which a Kubernetes object never holds\n")
    assert not (tmp_path / "out.yaml").exists()
    pv = snapshot("pv", "v1/persistentvolumes", "PersistentVolume", {"spec": {"claimRef": ["x"]}})
    proc = run("diff", "-n", "default", pv, pv)
    assert proc.returncode == 3 and "PersistentVolume pv: not a valid Kubernetes object" in proc.stderr
    odd = snapshot("odd", "v1/configmaps", "ConfigMap", {"namespace": "ns"}, namespaces=5)
    proc = run("diff", odd, odd)
    assert proc.returncode == 3 and proc.stderr.endswith("header meta.namespaces is not a list of names\n")
    # Damaged for every command that reads the snapshot, on either side of a diff (black-box finding: restore went
    # on, and `diff ok odd` said nothing).
    odd = snapshot("odder", "v1/configmaps", "ConfigMap", {"namespace": "ns"}, namespaces="ns", selector=5)
    ok = snapshot("ok", "v1/configmaps", "ConfigMap", {"namespace": "ns"})
    for args in (("diff", ok, odd), ("diff", odd, ok), ("restore", "--dry-run", odd)):
        proc = run(*args)
        assert proc.returncode == 3 and proc.stderr.endswith("header meta.namespaces is not a list of names\n"), args


def test_verbose_makes_only_kwoksnaps_own_loggers_louder() -> None:
    """Black-box finding: -vv set the root logger to DEBUG, so the kubernetes package's OIDC token refresh logged
    the client secret, the refresh token and the new tokens (through requests_oauthlib)."""
    code = ("import logging\nfrom kwoksnap.cli.main import main\ntry:\n    main(['-vv', 'cluster', 'list'])\n"
            "except SystemExit:\n    pass\nprint([logging.getLogger(n).isEnabledFor(logging.DEBUG) for n in "
            "('requests_oauthlib', 'urllib3', 'kubernetes', 'kwoksnap.kube', 'kwoksnap.replay')])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "[False, False, False, True, True]", proc.stderr


def test_an_auth_providers_failing_token_refresh_is_a_cluster_error(tmp_path: Path) -> None:
    """Black-box finding: an OIDC refresh that failed (its issuer unreachable, or over http) was an internal error
    (exit 70) whose message held the issuer's URL and what it answered."""
    kubeconfig = tmp_path / "oidc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {auth-provider: {name: oidc, config: {client-id: x, client-secret: CLIENT_SECRET, "
        "id-token: eyJhbGciOiAibm9uZSJ9.eyJleHAiOiAxMDAwLCAic3ViIjogInUifQ.sig, refresh-token: REFRESH_TOKEN, "
        "idp-issuer-url: 'http://127.0.0.1:1'}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n")
    proc = run("--kubeconfig", str(kubeconfig), "-vv", "save", "-o", str(tmp_path / "out.kws"))
    assert proc.returncode == 4 and proc.stderr.endswith(
        "kwoksnap: error: cannot load kubeconfig: refreshing its credentials failed (MaxRetryError)\n"), proc.stderr
    assert "SECRET" not in proc.stderr and "REFRESH_TOKEN" not in proc.stderr


def test_import_redacts_secrets_unless_asked(tmp_path: Path) -> None:
    """Black-box finding: `import` kept a kwokctl YAML's Secret values (and their last-applied annotation) in clear,
    and `export` wrote them out again; everything else redacts them by default."""
    from kwoksnap.store import KwsReader

    yaml_path = tmp_path / "k.yaml"
    yaml_path.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\n  annotations:\n"
        "    kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"password\":\"aHVudGVyMg==\"}}'\n"
        "data:\n  password: aHVudGVyMg==\n---\n"
        "apiVersion: action.kwok.x-k8s.io/v1alpha1\nkind: ResourcePatch\nresource: {version: v1, resource: secrets}\n"
        "target: {name: db, namespace: default}\ndurationNanosecond: 5\nmethod: patch\n"
        "template: {data: {password: aHVudGVyMg==}}\n---\n"
        # (black-box finding: a Secret under another resource kept its values; redacted by its kind too)
        "apiVersion: action.kwok.x-k8s.io/v1alpha1\nkind: ResourcePatch\nresource: {version: v1, resource: "
        "configmaps}\ntarget: {name: odd, namespace: default}\ndurationNanosecond: 6\nmethod: create\n"
        "template: {apiVersion: v1, kind: Secret, metadata: {name: odd, namespace: default}, data: {password: "
        "aHVudGVyMg==}}\n")
    for flags, redacted in (((), True), (("--include-secrets",), False)):
        out = tmp_path / f"{redacted}.kws"
        proc = run("import", str(yaml_path), "-o", str(out), *flags)
        assert proc.returncode == 0, proc.stderr
        assert ("3 Secret(s) stored with their values replaced" in proc.stdout) is redacted, proc.stdout
        with KwsReader(out) as reader:
            assert reader.header["meta"]["secretsRedacted"] is redacted
            records = list(reader.records())
        assert (b"aHVudGVyMg" in orjson.dumps(records)) is not redacted
        if redacted:
            secret = next(r["object"] for r in records if r.get("type") == "object")
            assert secret["metadata"]["annotations"] == {"kwoksnap.io/redacted": "true"}


def test_json_output_shows_what_json_has_no_form_for(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Fuzzing findings: `inspect -o json` of a file whose header holds bytes, an integer key or an integer beyond
    64 bits (a damaged index's sizes summed) was an internal error; a recording event's resource that is no string
    ended the text output so too."""
    from kwoksnap.cli.options import print_json
    from kwoksnap.store import KwsWriter

    print_json({"meta": {"blob": b"\xff\x00", "text": b"abc", 1: "one"}, "rawBytes": 2**65})
    assert orjson.loads(capsys.readouterr().out) == {"meta": {"blob": "ff00", "text": "abc", "1": "one"},
                                                     "rawBytes": 2**65}
    print_json({"meta": {b"k": 1, b"\xff": [b"x"]}})  # (review: a bytes key was still an internal error)
    assert orjson.loads(capsys.readouterr().out) == {"meta": {"k": 1, "ff": ["x"]}}
    path = tmp_path / "odd.kws"
    with KwsWriter(path, content_type="recording", source={"kind": "audit-log"}, meta={"blob": b"\xff"}) as w:
        w.write({"type": "event", "resource": "audit.k8s.io/v1/events", "ts": 1,
                 "event": {"resource": 5, "verb": "create", "group": ["x"]}})
    for args in ((), ("-o", "json")):
        proc = run("inspect", str(path), *args)
        assert proc.returncode == 0 and "create 5.['x']" in proc.stdout, proc.stderr


def test_json_outputs_use_camel_case_keys(tmp_path: Path) -> None:
    """Documentation finding: `import --format json` said `content_type`, `inspect -o json` of a damaged file
    `file_size`/`header_ok`, where every other JSON output of kwoksnap (and the report) is camelCase."""
    yaml_path = tmp_path / "k.yaml"
    yaml_path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n")
    proc = run("import", str(yaml_path), "-o", str(tmp_path / "k.kws"), "--format", "json")
    assert proc.returncode == 0 and {"contentType", "objects", "redacted"} <= set(orjson.loads(proc.stdout))
    damaged = tmp_path / "cut.kws"
    damaged.write_bytes((tmp_path / "k.kws").read_bytes()[:-30])
    proc = run("inspect", str(damaged), "-o", "json")
    keys = set(orjson.loads(proc.stdout)["scan"])
    assert {"fileSize", "headerOk", "framesOk", "bytesOk", "stoppedAt"} <= keys and not any("_" in k for k in keys)


def test_inspect_never_shows_a_password_an_older_snapshot_holds_in_its_server(tmp_path: Path) -> None:
    """Review finding: snapshots saved before the server's user:password was left out hold it in the header, and
    inspect showed it (text and JSON)."""
    from kwoksnap.store import KwsWriter

    path = tmp_path / "old.kws"
    with KwsWriter(path, source={"server": "https://kuser:SECRET@127.0.0.1:6443", "serverVersion": "v1.36.3"}) as w:
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
    for args in ((), ("-o", "json")):
        proc = run("inspect", str(path), *args)
        assert proc.returncode == 0 and "SECRET" not in proc.stdout and "https://127.0.0.1:6443" in proc.stdout


def test_a_ctrl_c_after_the_snapshot_is_complete_is_no_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Black-box finding: a Ctrl-C landing after save had renamed its complete file into place exited 130, and a
    script retrying on 130 then met "already exists" (exit 2). A file there now is this run's, whole: exit 0."""
    import kwoksnap.capture.snapshot as snapshot_module

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: "
                          "'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
                          "users: [{name: u, user: {token: t}}]\n")
    out = tmp_path / "s.kws"

    def save_then_interrupted(client: Any, path: Any, options: Any, progress: Any = None) -> Any:
        if path == str(out):
            out.write_bytes(b"complete")
        raise KeyboardInterrupt

    monkeypatch.setattr(snapshot_module, "save_snapshot", save_then_interrupted)
    for path, code in ((out, 0), (tmp_path / "never.kws", 130)):
        with pytest.raises(SystemExit) as exited:
            main(["--kubeconfig", str(kubeconfig), "save", "-o", str(path)])
        assert exited.value.code == code
    assert "saved to" in capsys.readouterr().err and not (tmp_path / "never.kws").exists()


def test_import_resolves_kwokctl_export_times_from_its_time_base(tmp_path: Path) -> None:
    """Real-cluster finding: `kwokctl snapshot export` writes every time as $(time-offset-nanosecond N); imported as
    text, restore failed on every Node and on the status of every Pod (400/422: "cannot parse ... as 2006")."""
    from kwoksnap.store import KwsReader

    golden = Path(__file__).parents[1] / "golden/kwokctl-recording.yaml"
    out = tmp_path / "rec.kws"
    proc = run("import", str(golden), "-o", str(out), "--time-base", "2026-01-01T00:00:00Z")
    assert proc.returncode == 0, proc.stderr
    with KwsReader(out) as reader:
        assert reader.header["meta"]["timeBase"] == "2026-01-01T00:00:00.000000Z"
        records = list(reader.records())
    assert b"time-offset-nanosecond" not in orjson.dumps(records)
    node = next(r["object"] for r in records if r.get("type") == "object" and r["object"]["kind"] == "Node")
    assert node["metadata"]["creationTimestamp"] == "2025-12-31T23:00:00.000000Z"
    assert sorted(r["ts"] for r in records if r.get("type") == "event") == [
        1_767_225_600_000_000_000 + d for d in (1_523_000_000, 2_000_000_000, 4_100_000_000, 5_000_000_000)]
    for base in ("yesterday", "2026-01-01T00:00:00", "0001-01-01T00:00:00Z"):
        proc = run("import", str(golden), "-o", str(tmp_path / "bad.kws"), "--time-base", base)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--time-base" in proc.stderr, proc.stderr
    far = tmp_path / "far.yaml"
    far.write_text(golden.read_text().replace("-86400000000000)", "-99999999999999999999)", 1))
    proc = run("import", str(far), "-o", str(tmp_path / "far.kws"))
    assert proc.returncode == 3 and "document 1 (line 1)" in proc.stderr and "between the years 1 and 9999" in (
        proc.stderr), proc.stderr
    assert not (tmp_path / "far.kws").exists() and not (tmp_path / "bad.kws").exists()


def test_a_kwokctl_recording_replays_only_verbatim(tmp_path: Path) -> None:
    """It names no user or client, so --mode inputs cannot pick the users' changes: refused before any cluster is
    contacted."""
    rec = tmp_path / "rec.kws"
    assert run("import", str(Path(__file__).parents[1] / "golden/kwokctl-recording.yaml"), "-o",
               str(rec)).returncode == 0
    proc = run("--kubeconfig", str(tmp_path / "none.yaml"), "replay", str(rec), "--mode", "inputs")
    assert proc.returncode == 2 and "names no user or client" in proc.stderr and proc.stderr.count("\n") == 1, (
        proc.stderr)


def test_kwokctl_files_where_they_are_not_read_say_what_to_do(tmp_path: Path) -> None:
    """Black-box findings: a kwokctl recording given to --audit was "not an audit record", no more said; a
    ResourcePatch of kwok's older internal shape was "ResourcePatch has no metadata.name"."""
    golden = Path(__file__).parents[1] / "golden/kwokctl-recording.yaml"
    proc = run("convert", "--audit", str(golden), "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == 3 and "a Namespace object, not an audit record (a kwokctl snapshot or recording? " \
        "`kwoksnap import` it, then restore or replay the .kws)" in proc.stderr, proc.stderr
    old = tmp_path / "old.yaml"
    old.write_text("apiVersion: kwok.x-k8s.io/internal\nkind: ResourcePatch\ntarget: {name: a}\n")
    proc = run("import", str(old), "-o", str(tmp_path / "old.kws"))
    assert proc.returncode == 3 and proc.stderr.endswith(
        "document 1 (line 1): a ResourcePatch of kwok.x-k8s.io/internal, which kwoksnap does not read: it reads "
        "those of action.kwok.x-k8s.io/v1alpha1 (what kwokctl v0.8 writes)\n"), proc.stderr
    cut = tmp_path / "cut.yaml"  # a recording cut short: its last change left out, said, the rest imported
    cut.write_text(golden.read_text()[:-1])
    proc = run("import", str(cut), "-o", str(tmp_path / "cut.kws"))
    assert proc.returncode == 0 and proc.stderr.startswith(f"warning: {cut}: document 8 (line 171): the file ends "
                                                           "inside its last ResourcePatch"), proc.stderr
    assert "and 3 events into" in proc.stdout


def test_cluster_create_checks_its_name_first_and_runs_the_kwokctl_it_is_given(tmp_path: Path) -> None:
    """Black-box findings: an invalid --name was refused only after the binaries were found or built (10-19
    minutes cold), and `--kwokctl ./kwokctl` ran a kwokctl looked up on PATH (Path("./x") is "x")."""
    fake = tmp_path / "kwokctl"
    fake.write_text("#!/bin/sh\necho this-directory-s >&2\nexit 3\n")
    fake.chmod(0o755)
    env = dict(os.environ, KWOKSNAP_WORKDIR=str(tmp_path / "w"), PATH="/nonexistent")  # (no go: no build)
    for args in (["create", "--name", "Bad Name"], ["kubeconfig", "--name", "x/../y"]):
        proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", *args], capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == ExitCode.USAGE and "invalid cluster name" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "create", "--name", "c1", "--kwokctl",
                           "./kwokctl"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == ExitCode.TOOLS and "(exit 3): this-directory-s" in proc.stderr, proc.stderr


def test_kubeconfig_options_kubectl_would_refuse_are_usage_errors_and_kubeconfig_lists_are_kubectl_s(
        tmp_path: Path) -> None:
    """Black-box findings: `--kubeconfig DIR` and `--context ""` were cluster errors (exit 4, the second with the
    client library's words), and KUBECONFIG=missing:real failed ("kubeconfig not found") where kubectl skips the
    missing file."""
    proc = run("--kubeconfig", str(tmp_path), "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == ExitCode.USAGE and "is a directory, not a kubeconfig file" in proc.stderr, proc.stderr
    proc = run("--context", "", "save", "-o", str(tmp_path / "x.kws"))
    assert proc.returncode == ExitCode.USAGE and "--context: an empty name" in proc.stderr, proc.stderr
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: "
                      "'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nusers: "
                      "[{name: u, user: {token: t}}]\n")
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "save", "-o", str(tmp_path / "x.kws")],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, KUBECONFIG=f"{tmp_path / 'missing'}:{config}"))
    assert proc.returncode == ExitCode.CLUSTER and "127.0.0.1:1" in proc.stderr, proc.stderr  # (that file's server)


def test_a_kubeconfig_the_system_refuses_to_read_is_exit_7(tmp_path: Path) -> None:
    """Black-box finding: an unreadable kubeconfig was exit 4 ("cluster"), where the README's table makes every
    file the system refuses to read exit 7."""
    import shutil

    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    config.chmod(0)
    # (as root, only without the capabilities that override file permissions)
    prefix = (["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
               "-dac_override,-dac_read_search"] if os.geteuid() == 0 and shutil.which("setpriv") else [])
    proc = subprocess.run([*prefix, sys.executable, "-m", "kwoksnap", "--kubeconfig", str(config), "save", "-o",
                           str(tmp_path / "x.kws")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.SYSTEM, proc.stderr
    assert proc.stderr == f"kwoksnap: error: cannot read the kubeconfig's {config}: Permission denied\n"


def test_a_clock_years_behind_is_said_in_seconds_and_days(capsys: pytest.CaptureFixture[str]) -> None:
    """Black-box finding: the clock-skew warning printed `1.63594e+08 s`."""
    from types import SimpleNamespace

    from kwoksnap.cli.options import warn_clock_skew

    warn_clock_skew(SimpleNamespace(clock_skew={"a.log": 163_594_000.25, "b.log": 2.999, "c.log": 512.5}))
    err = capsys.readouterr().err
    assert "a.log: its clock is at least 163,594,000 s (1,893.4 days) behind" in err
    assert "b.log: its clock is at least 2.999 s behind" in err and "c.log: its clock is at least 512 s behind" in err


def test_the_closing_line_says_when_only_the_first_failures_were_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """Black-box finding: restore listed 20 of 55 failures, then closed with "55 object(s) failed (listed above)"."""
    from kwoksnap.cli.options import finished_partly

    assert finished_partly((55, "object(s) failed"), (0, "not adopted"), output_format="text", shown=20,
                           rest="-o json lists up to 200") == ExitCode.PARTIAL
    assert capsys.readouterr().err == ("kwoksnap: error: 55 object(s) failed (the first 20 of each listed above; -o "
                                       "json lists up to 200)\n")
    finished_partly((20, "object(s) failed"), output_format="text", shown=20, rest="-o json lists up to 200")
    assert capsys.readouterr().err == "kwoksnap: error: 20 object(s) failed (listed above)\n"


def test_no_kubeconfig_anywhere_is_a_usage_error_that_says_where_one_is_looked_for(tmp_path: Path) -> None:
    """Docs walkthrough finding: with no --kubeconfig, no $KUBECONFIG and no ~/.kube/config the client library's
    "Invalid kube-config file. No configuration found." came out as exit 4 (the cluster's); a missing --kubeconfig
    file is exit 2."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "save", "-o", str(tmp_path / "x.kws")],
                          capture_output=True, text=True, timeout=60, env={**env, "HOME": str(tmp_path)}, check=False)
    assert proc.returncode == ExitCode.USAGE and proc.stderr.startswith("kwoksnap: error: no kubeconfig: none given "
                                                                         "(--kubeconfig), none in $KUBECONFIG, none at "
                                                                         "~/.kube/config"), proc.stderr


def test_cluster_create_of_a_name_in_use_is_refused_first_and_list_says_when_there_are_none(tmp_path: Path) -> None:
    """Docs walkthrough findings: `cluster create --name N` of an existing N printed "creating cluster N ..." and
    only then the refusal; `cluster list` without clusters printed nothing at all."""
    env = {**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path), "KWOKSNAP_BIN_DIR": str(tmp_path / "no-binaries")}
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "list"], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout == "" and "no local clusters" in proc.stderr, proc.stderr
    (tmp_path / "clusters" / "lab").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "create", "--name", "lab"],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == ExitCode.USAGE and proc.stderr == (
        f"kwoksnap: error: cluster 'lab' already exists ({tmp_path / 'clusters' / 'lab'}); delete it first\n"), \
        proc.stderr


def test_a_broken_default_kubeconfig_is_named_by_its_path(tmp_path: Path) -> None:
    """Re-test finding: with ~/.kube/config broken and no --kubeconfig or $KUBECONFIG the message read "cannot load
    kubeconfig None: ..."."""
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("garbage: [")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "save", "-o", str(tmp_path / "x.kws")],
                          capture_output=True, text=True, timeout=60, env={**env, "HOME": str(tmp_path)}, check=False)
    assert proc.returncode == ExitCode.CLUSTER and proc.stderr.startswith(
        "kwoksnap: error: cannot load kubeconfig ~/.kube/config: not valid YAML"), proc.stderr


def test_an_object_without_apiversion_and_kind_takes_them_from_its_resource(tmp_path: Path) -> None:
    """Black-box finding: export left such an object out as "of kinds kwokctl's default --filter does not load
    ( 1)" (its kind was ""), though docs/format.md says apiVersion and kind are filled from the resource and its
    `resource` record; every reader of a snapshot fills them now."""
    import yaml

    from kwoksnap.restore.source import SnapshotSource
    from kwoksnap.store import KwsReader, KwsWriter

    path = tmp_path / "bare.kws"
    with KwsWriter(path) as w:
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
        w.write({"type": "object", "resource": "v1/configmaps",
                 "object": {"metadata": {"name": "nokind", "namespace": "default"}, "data": {"a": "b"}}})
        w.write({"type": "resource", "resource": "apps/v1/deployments", "kind": "Deployment", "namespaced": True})
        w.write({"type": "object", "resource": "apps/v1/deployments",
                 "object": {"kind": "Deployment", "metadata": {"name": "d", "namespace": "default"}}})
    with KwsReader(path) as reader:
        source = SnapshotSource(reader)
        assert [(o["apiVersion"], o["kind"]) for o in source.objects("v1/configmaps")] == [("v1", "ConfigMap")]
        assert [(o["apiVersion"], o["kind"]) for o in source.objects("apps/v1/deployments")] == [
            ("apps/v1", "Deployment")]
    # Re-test finding: an object before its resource record, or a resource record without a kind, was not filled.
    odd = tmp_path / "odd.kws"
    with KwsWriter(odd) as w:
        w.write({"type": "object", "resource": "v1/configmaps", "object": {"metadata": {"name": "first"}}})
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
        w.write({"type": "resource", "resource": "v1/secrets", "namespaced": True})
        w.write({"type": "object", "resource": "v1/secrets", "object": {"metadata": {"name": "s"}}})
    with KwsReader(odd) as reader:
        source = SnapshotSource(reader)
        assert [(o["apiVersion"], o["kind"]) for o in source.objects("v1/configmaps")] == [("v1", "ConfigMap")]
        assert [(o["apiVersion"], o.get("kind")) for o in source.objects("v1/secrets")] == [("v1", None)]
    proc = run("export", str(path), "-o", str(tmp_path / "out.yaml"))
    assert proc.returncode == 0 and proc.stdout.startswith("exported 2 objects"), (proc.stdout, proc.stderr)
    docs = list(yaml.safe_load_all((tmp_path / "out.yaml").read_text()))
    assert {(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("v1", "ConfigMap", "nokind"), ("apps/v1", "Deployment", "d")}


def test_a_signal_after_the_command_ended_changes_nothing(tmp_path: Path) -> None:
    """Review finding: a Ctrl-C a moment after `save`'s summary (while the interpreter's exit joined the pools'
    threads) made the process die of SIGINT, its file whole. As the process's entry point, main ignores the three
    stopping signals once the command's outcome is said; called as a library it gives the handlers back."""
    code = ("import os, signal, time\nfrom kwoksnap.cli.main import main\n"
            "try:\n    main(['cluster', 'list'], process={process})\nexcept SystemExit as exc:\n"
            "    print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(0.2)\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(0.2)\n    raise\n")
    env = {**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path)}
    ended = subprocess.run([sys.executable, "-c", code.format(process=True)], capture_output=True, text=True,
                           timeout=60, env=env)
    assert (ended.returncode, ended.stdout.splitlines()[-1]) == (0, "True"), ended.stderr
    library = subprocess.run([sys.executable, "-c", code.format(process=False)], capture_output=True, text=True,
                             timeout=60, env=env)
    assert library.stdout.splitlines()[-1] == "False" and library.returncode != 0  # (KeyboardInterrupt: the old way)


def test_a_namespace_filter_that_no_namespace_could_match_is_a_usage_error(tmp_path: Path) -> None:
    """Black-box finding: `-n 'Bad_NS!'` was taken, with only a warning that no event was in it."""
    for args in (("replay", "--audit", str(tmp_path / "a.log"), "-n", "Bad_NS!"),
                 ("save", "-o", str(tmp_path / "x.kws"), "-n", "ok,Upper"),
                 ("convert", "--audit", str(tmp_path / "a.log"), "-o", str(tmp_path / "x.kws"), "-n", "a" * 64)):
        proc = run(*args)
        assert proc.returncode == 2 and "is no namespace name (lowercase letters, digits and '-'" in proc.stderr, (
            args, proc.stderr)


def test_an_error_quoting_a_line_break_stays_one_line(tmp_path: Path) -> None:
    """A file named with a newline split the one error line in two (black-box finding): it is shown escaped."""
    bad = tmp_path / "bad\nname.kws"
    bad.write_bytes(b"garbage")
    proc = run("inspect", str(bad))
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1
    assert "bad\\nname.kws" in proc.stderr and "not a .kws file" in proc.stderr


def test_an_output_directory_that_takes_no_file_is_refused_before_any_work(tmp_path: Path) -> None:
    """Black-box finding: `record -o /proc/x.kws` said "recording ... into /proc/x.kws" and only then exit 2. The
    permission bits of /proc allow root to write; making a file there is refused, so a file is made and removed
    first. The same check stands for `replay --report`. The refusal is the system's (exit 7, as README says of a
    write refused), not a usage error (black-box finding: `--report /proc/version` was exit 2)."""
    log = tmp_path / "audit.log"
    log.write_text("")
    proc = run("record", "--audit-file", str(log), "-o", "/proc/x.kws", "--duration", "1s")
    assert proc.returncode == 7, proc.stderr
    assert "recording" not in proc.stderr and "cannot create a file in /proc" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not list(tmp_path.glob(".*.tmp"))
    proc = run("record", "--audit-file", str(log), "-o", str(tmp_path / "ok.kws"), "--duration", "0.2s")
    assert "recording" in proc.stderr and not list(tmp_path.glob(".*.tmp"))


def test_a_signal_while_the_outcome_is_said_changes_nothing(tmp_path: Path) -> None:
    """Left from the last review: a Ctrl-C or SIGTERM arriving while the error line (or "interrupted") was printed
    raised in the except handler and ended in a traceback. The stopping signals are ignored as soon as the command
    has ended, before its outcome is said."""
    bad = tmp_path / "bad.kws"
    bad.write_bytes(b"garbage")
    code = ("import os, signal\nimport kwoksnap.cli.main as m\nsay = m._error\n"
            "def error(*args):\n    os.kill(os.getpid(), signal.SIGINT)\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return say(*args)\nm._error = error\n"
            f"m.main(['inspect', {str(bad)!r}], process=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("kwoksnap: error: ") and \
        proc.stderr.count("\n") == 1, proc.stderr


def test_a_replay_window_beyond_the_recording_s_own_is_said() -> None:
    """Black-box finding: a recording converted with --from/--to, replayed with a wider window, replayed what it
    held without saying that the rest of the window was never in it."""
    from kwoksnap.audit import parse_timestamp
    from kwoksnap.cli.options import window_beyond

    filters = {"from": "2026-11-30T19:07:10Z", "to": "2026-11-30T19:07:20Z"}
    inside = (parse_timestamp("2026-11-30T19:07:12Z"), parse_timestamp("2026-11-30T19:07:15Z"))
    assert window_beyond("r.kws", filters, *inside) == []
    assert window_beyond("r.kws", filters, parse_timestamp("2026-11-30T19:07:10Z"),
                         parse_timestamp("2026-11-30T19:07:20Z")) == []
    for since, until in ((parse_timestamp("2026-11-30T19:07:05Z"), inside[1]), (inside[0], None), (None, inside[1])):
        said = window_beyond("r.kws", filters, since, until)
        assert said == ["r.kws was converted with --from 2026-11-30T19:07:10Z --to 2026-11-30T19:07:20Z: the events "
                        "outside that window are not in it, so the replay's --from/--to window is narrowed to it "
                        "(convert the audit log again to replay the rest)"]
    assert window_beyond("r.kws", {"resources": ["jobs"]}, None, None) == []
    assert window_beyond("r.kws", {"to": "9999-12-31T23:59:59Z"}, inside[0], inside[1]) == []


def test_inspect_says_the_filters_a_recording_was_converted_with(tmp_path: Path) -> None:
    """Black-box finding: only `inspect -o json` showed them."""
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    out = tmp_path / "w.kws"
    proc = run("convert", "--audit", str(log), "-o", str(out), "--from", "2026-11-30T19:07:10Z", "-n", "app-0,app-1")
    assert proc.returncode == 0, proc.stderr
    proc = run("inspect", str(out))
    assert "converted with -n app-0,app-1 --from 2026-11-30T19:07:10Z (what those left out is not in it)" in \
        proc.stdout.splitlines(), proc.stdout


def test_inspect_of_a_damaged_file_with_its_index_says_what_every_frame_holds(tmp_path: Path) -> None:
    """Black-box finding: inspect said "140 records readable" of a recording with two damaged frames, whose other
    frames salvage recovered (250 records): it stopped at the first damage. Through an intact index every frame is
    read on its own, as salvage reads it, and the two agree."""
    from kwoksnap.store import KwsReader

    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    whole = tmp_path / "whole.kws"
    assert run("convert", "--audit", str(log), "-o", str(whole)).returncode == 0
    with KwsReader(whole) as reader:
        frames = reader.frames("audit.k8s.io/v1/events")
        total = reader.count()
    assert len(frames) >= 4
    data = bytearray(whole.read_bytes())
    for frame in (frames[1], frames[2]):
        data[frame["offset"] + frame["length"] // 2] ^= 0xFF
    damaged = tmp_path / "damaged.kws"
    damaged.write_bytes(bytes(data))
    proc = run("inspect", str(damaged))
    assert proc.returncode == 3
    said = re.search(r"^every frame, read on its own through the index: (\d+) records readable, 2 damaged "
                     r"stretch\(es\) \((\d+) records lost\)", proc.stdout, re.M)
    assert said, proc.stdout
    report = orjson.loads(run("inspect", "-o", "json", str(damaged)).stdout)
    assert report["salvageable"] == {"records": int(said[1]), "damagedStretches": 2, "lostRecords": int(said[2])}
    assert int(said[1]) + int(said[2]) == total
    salvaged = tmp_path / "salvaged.kws"
    run("salvage", str(damaged), "-o", str(salvaged))
    with KwsReader(salvaged) as reader:
        assert reader.count() == int(said[1])


def test_a_warning_quoting_a_line_break_stays_one_line(tmp_path: Path) -> None:
    """As an error does (left from the last stop: warnings printed what they quoted as it was): every warning goes
    through one function that escapes line breaks."""
    good = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    bad = tmp_path / "bin\nary.log"
    bad.write_bytes(bytes(range(256)) * 4)
    proc = run("convert", "--audit", str(good), "--audit", str(bad), "-o", str(tmp_path / "t.kws"))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any("bin\\nary.log" in line for line in warnings), proc.stderr
    assert not any(line.startswith("ary.log") for line in proc.stderr.splitlines()), proc.stderr


def test_inspect_of_a_damaged_file_without_its_index_walks_on_past_the_damage(tmp_path: Path) -> None:
    """Left from the last stop: with its index unreadable too, inspect stopped at the first damage ("readable before
    the damage"), where salvage walks on. It now says what salvage would keep, found as salvage finds it."""
    from kwoksnap.store import KwsReader

    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    whole = tmp_path / "whole.kws"
    assert run("convert", "--audit", str(log), "-o", str(whole)).returncode == 0
    with KwsReader(whole) as reader:
        frames = reader.frames("audit.k8s.io/v1/events")
    assert len(frames) >= 3
    data = bytearray(whole.read_bytes())
    data[frames[1]["offset"] + frames[1]["length"] // 2] ^= 0xFF
    index_at = max(f["offset"] + f["length"] for f in frames)
    data[index_at + (len(data) - index_at) // 2] ^= 0xFF  # the index block
    damaged = tmp_path / "damaged.kws"
    damaged.write_bytes(bytes(data))
    proc = run("inspect", str(damaged))
    assert proc.returncode == 3
    before = re.search(r"(\d+) records readable before the damage", proc.stdout)
    said = re.search(r"^walking on past the damage, as salvage does: (\d+) records readable, 1 damaged "
                     r"stretch\(es\) \(records lost: not known without a readable index\)", proc.stdout, re.M)
    assert before and said, proc.stdout
    assert int(said[1]) > int(before[1])
    report = orjson.loads(run("inspect", "-o", "json", str(damaged)).stdout)
    assert report["salvageable"] == {"records": int(said[1]), "damagedStretches": 1, "lostRecords": None}
    salvaged = tmp_path / "salvaged.kws"
    run("salvage", str(damaged), "-o", str(salvaged))
    with KwsReader(salvaged) as reader:
        assert reader.count() == int(said[1])


def _pods_snapshot(path: Path, frames: int, nameless: int | None = None) -> int:
    """A snapshot of ``frames`` frames of 10 pods each (the first record describes the resource); the pod numbered
    ``nameless`` has no metadata.name (a frame whose checksum holds, but whose records do not). Returns records."""
    from kwoksnap.store import KwsWriter

    with KwsWriter(path) as w:
        w.write({"type": "resource", "resource": "v1/pods", "kind": "Pod", "namespaced": True})
        for i in range(frames * 10):
            meta = {"namespace": "n"} if i == nameless else {"name": f"p{i}", "namespace": "n"}
            w.write({"type": "object", "resource": "v1/pods",
                     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": meta}})
            if i % 10 == 9:
                w.flush()
    return frames * 10 + 1


def test_inspect_of_a_frame_whose_records_are_bad_says_what_salvage_recovers(tmp_path: Path) -> None:
    """Black-box finding: a frame whose checksum holds but one of whose objects has no name (the scan builds only
    the first record of each frame) made inspect print nothing but the error, in text and in JSON."""
    from kwoksnap.store import KwsReader

    path = tmp_path / "nameless.kws"
    _pods_snapshot(path, 3, nameless=0)
    proc = run("inspect", str(path))
    assert proc.returncode == 3
    assert "every frame, read on its own through the index: 20 records readable, 1 damaged stretch(es) (11 records " \
        "lost)" in proc.stdout, proc.stdout
    assert "an object record holds no object with a metadata.name" in proc.stderr
    report = orjson.loads(run("inspect", "-o", "json", str(path)).stdout)
    assert report["ok"] is False and report["salvageable"] == {"records": 20, "damagedStretches": 1,
                                                                "lostRecords": 11}
    assert run("salvage", str(path), "-o", str(tmp_path / "s.kws")).returncode == 5
    with KwsReader(tmp_path / "s.kws") as reader:  # (salvage makes the lost description again: not counted above)
        assert reader.count() == 21


def test_inspect_of_a_file_whose_trailer_alone_is_damaged_says_salvage_keeps_everything(tmp_path: Path) -> None:
    """Black-box finding: with the trailer damaged (or cut off), inspect gave no `salvageable`, though salvage finds
    the index before it and recovers every record."""
    path = tmp_path / "whole.kws"
    records = _pods_snapshot(path, 3)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    damaged = tmp_path / "trailer.kws"
    damaged.write_bytes(bytes(data))
    proc = run("inspect", str(damaged))
    assert proc.returncode == 3
    assert f": {records} records readable, 0 damaged stretch(es) (`kwoksnap salvage` copies the readable ones)" \
        in proc.stdout, proc.stdout
    report = orjson.loads(run("inspect", "-o", "json", str(damaged)).stdout)
    assert report["salvageable"] == {"records": records, "damagedStretches": 0, "lostRecords": 0}


def test_a_name_a_terminal_would_not_show_as_written_is_shown_escaped(tmp_path: Path) -> None:
    """Black-box findings: `b<BS><BS><BS>fake.kws` showed as `fake.kws`; a colour sequence in a name vanished from
    the line, naming a file that does not exist; an output named with a newline split convert's summary in two."""
    for name, shown in (("b\b\b\bfake.kws", "b\\x08\\x08\\x08fake.kws"), ("t\tz\x1b[31m.kws", "t\\tz\\x1b[31m.kws"),
                        ("sep\u2028\x85.kws", "sep\\u2028\\x85.kws")):
        bad = tmp_path / name
        bad.write_bytes(b"garbage")
        proc = run("inspect", str(bad))
        assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
        assert shown in proc.stderr and "\x1b" not in proc.stderr and "\b" not in proc.stderr, proc.stderr
    log = Path(__file__).parents[2] / "fixtures/incident/audit.log.gz"
    proc = run("convert", "--audit", str(log), "-o", str(tmp_path / "o\nut.kws"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "o\\nut.kws" in proc.stdout, proc.stdout


def test_diff_says_when_b_was_saved_narrower_than_a(tmp_path: Path) -> None:
    """Black-box finding: `diff all.kws demo.kws`, B saved with `-n demo`, listed everything of A outside demo as
    missing, with no word that B was saved narrower."""
    from kwoksnap.store import KwsWriter

    def snapshot(name: str, namespaces: list[str], meta: dict[str, Any] | None = None) -> Path:
        path = tmp_path / name
        with KwsWriter(path, meta=meta or {}) as w:
            w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
            for ns in namespaces:
                w.write({"type": "object", "resource": "v1/configmaps", "object": {
                    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}}})
        return path

    whole = snapshot("all.kws", ["demo", "other"])
    demo = snapshot("demo.kws", ["demo"], {"namespaces": ["demo"]})
    proc = run("diff", str(whole), str(demo))
    assert proc.returncode == 1
    assert f"warning: {demo} was saved with -n demo: what A holds beyond that shows as missing from it" in \
        proc.stderr, proc.stderr
    proc = run("diff", str(whole), str(demo), "-n", "demo")  # compared only there: nothing to say
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    proc = run("diff", str(demo), str(whole))  # A narrower than B: A's scope is compared, as documented
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    same = snapshot("same.kws", ["demo"])  # A holds nothing beyond B's -n: nothing shows as missing, nothing said
    proc = run("diff", str(same), str(demo))
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    changed = snapshot("changed.kws", ["demo"], {"namespaces": ["demo"]})  # differs, but nothing missing
    with KwsWriter(tmp_path / "more.kws", meta={}) as w:
        w.write({"type": "resource", "resource": "v1/configmaps", "kind": "ConfigMap", "namespaced": True})
        w.write({"type": "object", "resource": "v1/configmaps", "object": {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"},
            "data": {"k": "v"}}})
    proc = run("diff", str(tmp_path / "more.kws"), str(changed))
    assert proc.returncode == 1 and "warning" not in proc.stderr, proc.stderr
