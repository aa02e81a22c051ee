"""kwokctl exits 0 even when its ``--wait`` timed out, so ``create_cluster`` checks /readyz itself: these tests drive
that check against a loopback HTTP server that is not ready at first, and against a port nobody listens on."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from kwoksnap.cluster.local import LocalCluster, wait_ready


def _cluster(tmp_path: Path, server: str) -> LocalCluster:
    cluster = LocalCluster("c", tmp_path)
    cluster.kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    return cluster


@contextlib.contextmanager
def serve(answer: Callable[[str, int], tuple[int, bytes]]) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering GET ``path`` with ``answer(path, n)``, n the number of earlier GETs of that
    path; yields its URL and the paths asked, in order."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            status, body = answer(self.path, seen.count(self.path) - 1)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


NOT_FOUND = b'{"kind":"Status","reason":"NotFound","message":"serviceaccounts \\"default\\" not found","code":404}'


@pytest.fixture
def readyz() -> Iterator[tuple[str, list[str]]]:
    """A server whose /readyz fails twice (500, then a not-ok body) before it answers ok, and whose default
    ServiceAccount is not found twice before it is."""
    def answer(path: str, n: int) -> tuple[int, bytes]:
        if path == "/readyz":
            return [(500, b"[-]etcd failed"), (200, b"starting"), (200, b"ok")][min(n, 2)]
        return (404, NOT_FOUND) if n < 2 else (200, b'{"kind":"ServiceAccount"}')

    with serve(answer) as server:
        yield server


def test_waits_until_readyz_answers_ok(tmp_path: Path, readyz: tuple[str, list[str]]) -> None:
    server, seen = readyz
    assert wait_ready(_cluster(tmp_path, server), timeout=30) is None
    assert seen == ["/readyz"] * 3


def test_the_standard_profile_also_waits_for_the_default_service_account(
        tmp_path: Path, readyz: tuple[str, list[str]]) -> None:
    server, seen = readyz
    assert wait_ready(_cluster(tmp_path, server), timeout=30, service_account=True) is None
    assert seen == ["/readyz"] * 3 + ["/api/v1/namespaces/default/serviceaccounts/default"] * 3


def test_reports_why_when_the_server_never_answers(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    problem = wait_ready(_cluster(tmp_path, f"http://127.0.0.1:{port}"), timeout=0.2)
    assert problem is not None and "refused" in problem


def test_a_service_account_that_never_comes_is_reported(tmp_path: Path) -> None:
    with serve(lambda path, n: (200, b"ok") if path == "/readyz" else (404, NOT_FOUND)) as (server, _):
        problem = wait_ready(_cluster(tmp_path, server), timeout=1.0, service_account=True)
    assert problem is not None and "404" in problem and "not found" in problem, problem


def test_creates_take_turns_across_work_directories_and_a_cluster_that_never_came_up_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A test run's cluster failed to come up while a helper with another KWOKSNAP_WORKDIR created its own (the lock
    was per work directory, kwokctl's free ports are the machine's); and an API server that gave up on a late etcd
    is never started again by kwokctl."""
    import time

    import kwoksnap.cluster.local as local

    order: list[str] = []
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def hold() -> None:
        with local._creating(tmp_path / "a"):
            order.append("a in")
            time.sleep(0.3)
            order.append("a out")

    first = threading.Thread(target=hold)
    first.start()
    time.sleep(0.1)
    with local._creating(tmp_path / "b"):
        order.append("b in")
    first.join()
    assert order == ["a in", "a out", "b in"]

    made = LocalCluster("c", tmp_path)
    attempts: list[str] = []

    def create(name: str, *args: object, **kwargs: object) -> LocalCluster:
        attempts.append(name)
        if len(attempts) == 1:
            raise local._NotReady("cluster c did not become ready in 120s (etcd)")
        return made

    monkeypatch.setattr(local, "_create_locked", create)
    assert local.create_cluster("c", None, workdir=tmp_path / "w") is made  # type: ignore[arg-type]
    assert attempts == ["c", "c"] and "did not become ready in 120s (etcd); making it again" in caplog.text


def test_the_work_directory_is_one_absolute_path_and_one_with_a_space_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Black-box findings: a relative KWOKSNAP_WORKDIR failed inside kwokctl ("no such file"); a cluster made
    through a symlink kept running after a delete through the real path (its processes were not recognised as its
    own); a path with a space was cut there by kwokctl, which made the cluster outside it, left running."""
    from kwoksnap.cluster.local import _root
    from kwoksnap.errors import UsageError

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KWOKSNAP_WORKDIR", "link")
    assert _root(None) == real.resolve() and _root(Path("real")) == real.resolve()
    with pytest.raises(UsageError, match="holds a space, which kwokctl cannot run a cluster from"):
        _root(tmp_path / "a b")


def test_list_says_incomplete_for_a_cluster_without_a_valid_profile_marker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Black-box findings: a create killed outright (its marker is written last) was listed "running standard";
    a damaged marker made `cluster list` an internal error for every cluster."""
    import os
    import subprocess
    import sys

    for name, marker in (("good", "replay\n"), ("killed", None), ("damaged", "bogus\n")):
        (tmp_path / "clusters" / name).mkdir(parents=True)
        if marker is not None:
            (tmp_path / "clusters" / name / "kwoksnap-profile").write_text(marker)
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "list"], capture_output=True, text=True,
                          env={**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t")[:3] for line in proc.stdout.splitlines()]
    assert rows == [["damaged", "incomplete", "?"], ["good", "stopped", "replay"], ["killed", "incomplete", "?"]]


def test_a_delete_that_cannot_remove_the_directory_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Black-box finding: with the directory on a read-only file system, `cluster delete` said "deleted" (exit 0)
    and left it; `create` then refused the name as existing."""
    import errno
    import shutil

    from kwoksnap.cluster.local import delete_cluster
    from kwoksnap.errors import ExitCode, Unremovable

    (tmp_path / "clusters" / "ro").mkdir(parents=True)

    def refuse(path: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with pytest.raises(Unremovable, match="could not be removed: Read-only file system") as raised:
        delete_cluster("ro", None, workdir=tmp_path)
    assert raised.value.exit_code == ExitCode.SYSTEM


def test_a_delete_waits_for_the_clusters_create_to_finish(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Black-box finding: a delete while the create still waited for readiness removed the cluster, and the create
    then said it was made (or, failing, made it again after the user's delete). They take turns, per cluster."""
    import time

    import kwoksnap.cluster.local as local

    (tmp_path / "clusters" / "busy").mkdir(parents=True)
    (tmp_path / "clusters" / "free").mkdir(parents=True)
    order: list[str] = []
    holding = threading.Event()

    def create() -> None:
        with local._cluster_lock(tmp_path, "busy"):
            holding.set()
            time.sleep(0.3)
            order.append("created")

    creating = threading.Thread(target=create)
    creating.start()
    holding.wait(5)
    assert local.delete_cluster("free", None, workdir=tmp_path)  # another cluster's create: not waited for
    order.append("other deleted")
    assert local.delete_cluster("busy", None, workdir=tmp_path)
    order.append("deleted")
    creating.join()
    assert order == ["other deleted", "created", "deleted"]
    assert "waiting for another create or delete of cluster busy to finish" in caplog.text
    assert not (tmp_path / "clusters" / "busy").exists()


def test_kubeconfig_of_a_cluster_without_one_says_so(tmp_path: Path) -> None:
    """Black-box finding: a cluster whose create was killed before kwokctl wrote its kubeconfig printed a path that
    did not exist, exit 0."""
    import os
    import subprocess
    import sys

    (tmp_path / "clusters" / "half").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "kwoksnap", "cluster", "kubeconfig", "--name", "half"],
                          capture_output=True, text=True, env={**os.environ, "KWOKSNAP_WORKDIR": str(tmp_path)})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("kwoksnap: error: cluster half has no kubeconfig ("), proc.stderr
    assert "kwoksnap cluster delete --name half" in proc.stderr


def test_a_delete_waits_for_both_attempts_of_a_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: a delete waiting for a create got in between its two attempts (the first not ready), found
    nothing, said so (exit 0), and the second attempt then made the cluster, left running."""
    import time

    import kwoksnap.cluster.local as local

    attempts: list[str] = []

    def create(name: str, binaries: object, root: Path, *args: object) -> LocalCluster:
        attempts.append(name)
        time.sleep(0.2)
        if len(attempts) == 1:
            raise local._NotReady(f"cluster {name} did not become ready in 1s")
        (root / "clusters" / name).mkdir(parents=True)
        return LocalCluster(name, root / "clusters" / name)

    monkeypatch.setattr(local, "_create_locked", create)
    creating = threading.Thread(target=local.create_cluster, args=("r", None), kwargs={"workdir": tmp_path})
    creating.start()
    while not attempts:
        time.sleep(0.01)
    assert local.delete_cluster("r", None, workdir=tmp_path)  # after both attempts: it finds the cluster
    creating.join()
    assert attempts == ["r", "r"] and not (tmp_path / "clusters" / "r").exists()


def test_an_interrupt_after_kwokctl_returned_still_removes_the_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: a Ctrl-C while the create's locks were given back (kwokctl done, readiness not yet waited
    for) was caught by no cleanup: exit 130 with the cluster running. A cleanup that fails is logged, not raised
    over the interrupt."""
    import subprocess

    import kwoksnap.cluster.local as local
    from kwoksnap.cluster.binaries import Binaries
    from kwoksnap.errors import Unremovable

    removed: list[str] = []

    @contextlib.contextmanager
    def creating(root: Path) -> Iterator[None]:
        yield
        raise KeyboardInterrupt  # as the locks are given back

    def delete(name: str, binaries: object, root: Path) -> bool:
        removed.append(name)
        raise Unremovable("read-only")

    monkeypatch.setattr(local, "_creating", creating)
    monkeypatch.setattr(local, "_delete_locked", delete)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", ""))
    binaries = Binaries(directory=tmp_path, kwokctl=tmp_path / "kwokctl")
    with pytest.raises(KeyboardInterrupt):
        local._create_locked("k", binaries, tmp_path, local.Profile.STANDARD, 60.0, ())
    assert removed == ["k"]


def test_the_machine_wide_create_lock_is_in_a_private_directory(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Review finding: the lock was a file at a fixed name in /tmp, which another user could make first and hold
    (every create waiting for ever), or point elsewhere through a symlink."""
    import os
    import stat

    from kwoksnap.cluster.local import _machine_lock

    lock = _machine_lock(tmp_path)
    assert lock is not None
    lock.close()
    directory = tmp_path / f"kwoksnap-{os.getuid()}"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "create.lock").stat().st_mode) == 0o600
    directory.chmod(0o777)
    assert _machine_lock(tmp_path) is None and "is not a private directory of this user" in caplog.text
    directory.chmod(0o700)
    (directory / "create.lock").unlink()
    (directory / "create.lock").symlink_to(tmp_path / "elsewhere")
    assert _machine_lock(tmp_path) is None and not (tmp_path / "elsewhere").exists()


def test_a_component_run_from_a_path_with_an_equals_sign_is_recognised(tmp_path: Path) -> None:
    """Review finding: every "=" of a command line was taken for a flag's, so a work directory holding one never
    matched: a running cluster was listed stopped."""
    import subprocess
    import sys
    import time

    from kwoksnap.cluster.local import _ours

    cluster = tmp_path / "a=b" / "clusters" / "c"
    cluster.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", f"--data-dir={cluster}/etcd",
                             str(cluster / "kwok.yaml")])
    try:
        deadline = time.monotonic() + 10
        while b"time.sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)  # (until the child has exec'd: before, its command line is the test's)
        assert _ours(proc.pid, cluster)
        assert not _ours(proc.pid, tmp_path / "a=b" / "clusters" / "other")
    finally:
        proc.kill()
        proc.wait()


def test_builds_of_the_binaries_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding: two first-time builds at once shared the build directory; the second wiped the first's module
    while it built (exit 6). The one that waits finds the other's binaries and builds nothing."""
    import time

    import kwoksnap.cluster.binaries as binaries

    built: list[int] = []
    made = binaries.Binaries(directory=tmp_path, kwokctl=tmp_path / "kwokctl")

    def build(progress: object) -> binaries.Binaries:
        time.sleep(0.3)
        built.append(1)
        return made

    monkeypatch.setattr(binaries, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(binaries, "find_binaries", lambda: made if built else None)
    monkeypatch.setattr(binaries, "_build", build)
    said: list[str] = []
    results: list[binaries.Binaries] = []
    threads = [threading.Thread(target=lambda: results.append(binaries.ensure_binaries(said.append)))
               for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert built == [1] and results == [made, made]
    assert said == ["waiting for another build of the control-plane binaries to finish"]


def test_a_kwokctl_that_never_ends_is_stopped_and_what_it_made_removed(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Left from review: `cluster create` ran kwokctl without a deadline; one that hung held it for ever."""
    import time

    from kwoksnap.cluster import local
    from kwoksnap.cluster.binaries import Binaries
    from kwoksnap.errors import ToolError

    kwokctl = tmp_path / "kwokctl"
    kwokctl.write_text("#!/bin/sh\necho starting the components >&2\nexec sleep 60\n")
    kwokctl.chmod(0o755)
    removed: list[str] = []
    monkeypatch.setattr(local, "CREATE_GRACE", 1.0)
    monkeypatch.setattr(local, "_delete_locked", lambda name, *_: removed.append(name) or True)
    monkeypatch.setattr(local, "_machine_lock", lambda: None)  # (not behind real creates on this machine)
    (tmp_path / "w").mkdir()
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"kwokctl create cluster h did not end in 2s \(--wait 1s and 1s more\), "
                                        r"stopped: starting the components"):
        local._create_locked("h", Binaries(tmp_path, kwokctl), tmp_path / "w", local.Profile.STANDARD, 1.0, ())
    assert time.monotonic() - started < 30 and removed == ["h"]
