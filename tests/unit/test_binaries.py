"""Pure logic of the binaries builder: which replace lines a wrapper module needs, and cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from kwoksnap.cluster import binaries
from kwoksnap.errors import ToolError

KUBE_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
	github.com/blang/semver/v4 v4.0.0
	k8s.io/api v0.0.0
	k8s.io/apimachinery v0.0.0 // indirect
	k8s.io/client-go v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/sample-cli-plugin => ./staging/src/k8s.io/sample-cli-plugin
	github.com/some/fork => github.com/other/fork v1.2.3
)
"""

ETCD_GOMOD = """module go.etcd.io/etcd/server/v3

require (
	go.etcd.io/bbolt v1.4.3
	go.etcd.io/etcd/api/v3 v3.6.16
	go.etcd.io/etcd/client/v3 v3.6.16
)

replace (
	go.etcd.io/etcd/api/v3 => ../api
	go.etcd.io/etcd/client/v3 => ../client/v3
)

replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY

replace go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY
"""


def test_local_replaces_kubernetes() -> None:
    # Only required modules with a local-path target; not the unrequired sample module, not a module-path replace.
    assert binaries.local_replaces(KUBE_GOMOD) == ["k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go"]


def test_local_replaces_etcd_ignores_forbidden_guards() -> None:
    assert binaries.local_replaces(ETCD_GOMOD) == ["go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/v3"]


def test_single_line_replace() -> None:
    text = "require k8s.io/api v0.0.0\nreplace k8s.io/api => ./staging/src/k8s.io/api\n"
    assert binaries.local_replaces(text) == ["k8s.io/api"]


def test_staging_version() -> None:
    assert binaries.staging_version("v1.36.3") == "v0.36.3"
    with pytest.raises(ValueError):
        binaries.staging_version("v2.0.0")


def test_cache_dir_is_keyed_by_every_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(binaries.ENV_CACHE, str(tmp_path))
    d = binaries.default_bin_dir()
    assert d.parent == tmp_path / "bin"
    for v in (binaries.KWOK_VERSION, binaries.KUBE_VERSION, binaries.ETCD_VERSION):
        assert v in d.name


def test_bin_dir_override_must_be_complete(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(binaries.ENV_BIN_DIR, str(tmp_path))
    with pytest.raises(ToolError, match="does not hold"):
        binaries.find_binaries()
    for name in binaries.BINARY_NAMES:
        p = tmp_path / name
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    found = binaries.find_binaries()
    assert found is not None and found.complete and found.kwokctl == tmp_path / "kwokctl"


def test_missing_go_says_how_to_proceed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(binaries.ENV_CACHE, str(tmp_path))
    monkeypatch.delenv(binaries.ENV_BIN_DIR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(ToolError) as err:
        binaries.ensure_binaries()
    message = str(err.value)
    assert "`go` is not on PATH" in message and binaries.ENV_BIN_DIR in message and "--kwokctl" in message


def test_a_stopped_build_takes_its_processes_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Review finding: Ctrl-C or SIGTERM while `go build` ran left it (and the compilers it started) running."""
    import itertools
    import time

    clock = itertools.count(0, 20)
    monkeypatch.setattr(binaries.time, "monotonic", lambda: float(next(clock)))

    def progress(message: str) -> None:
        if "packages compiled" in message:
            raise KeyboardInterrupt

    pid_file = tmp_path / "child.pid"
    builder = binaries._Builder(go="go", build_root=tmp_path, out=tmp_path, progress=progress)
    with pytest.raises(KeyboardInterrupt):
        builder._run(["sh", "-c", f"sleep 300 & echo $! > {pid_file}; echo a; echo b; wait"], tmp_path, "build",
                     count_packages=True)
    child = int(pid_file.read_text())
    deadline = time.time() + 10

    def running() -> bool:  # (killed, it is gone or a zombie until init reaps it)
        try:
            return b") Z" not in Path(f"/proc/{child}/stat").read_bytes()
        except FileNotFoundError:
            return False

    while running():
        assert time.time() < deadline, "the build's child process is still running"
        time.sleep(0.05)
