"""Obtain the control-plane binaries a local KWOK cluster needs, offline, from the Go module proxy.

Why this module exists: this machine (and most CI boxes) has no Docker and cannot download release tarballs, but it
reaches the Go module proxy. kwok/kwokctl install with ``go install``; kube-apiserver, kube-controller-manager,
kube-scheduler and etcd cannot (their go.mod replaces staging modules with local paths), so each is built through
a throwaway wrapper module whose ``replace`` lines are derived from the tag's own go.mod, never hard-coded.

Results are cached in a directory keyed by every pinned version, written under a temporary name and renamed when
complete, so a warm cache is a no-op and an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from kwoksnap.errors import ToolError

# Pinned versions. kwok v0.8.0 is the newest kwok tag; its default Kubernetes is 1.36.x and etcd 3.6.x, which we
# follow with the newest patch releases on the proxy.
KWOK_VERSION = "v0.8.0"
KUBE_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARY_NAMES = ("kwok", "kwokctl", "etcd", *KUBE_COMPONENTS)

ENV_CACHE = "KWOKSNAP_CACHE_DIR"  # root of kwoksnap's cache (default ~/.cache/kwoksnap)
ENV_BIN_DIR = "KWOKSNAP_BIN_DIR"  # a directory holding ready binaries: used as is, nothing is built

Progress = Callable[[str], None]

# `replace k8s.io/api => ./staging/src/k8s.io/api` (inside or outside a replace block); only local-path targets.
_LOCAL_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.{1,2}/\S*)\s*$")
# `require k8s.io/api v0.0.0` or a line of a require block: `\tk8s.io/api v0.0.0 // indirect`.
_REQUIRE = re.compile(r"^\s*(?:require\s+)?([^\s()]+)\s+v[^\s=]+\s*(?://.*)?$")


def versions_key() -> str:
    return f"kwok-{KWOK_VERSION}_kube-{KUBE_VERSION}_etcd-{ETCD_VERSION}"


def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kwoksnap"


def default_bin_dir() -> Path:
    return cache_root() / "bin" / versions_key()


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Paths of the binaries a local cluster runs. ``kwokctl`` may be a user's own (then the rest may be absent)."""

    directory: Path
    kwokctl: Path
    kwok: Path | None = None
    etcd: Path | None = None
    kube_apiserver: Path | None = None
    kube_controller_manager: Path | None = None
    kube_scheduler: Path | None = None

    @property
    def complete(self) -> bool:
        return all(
            p is not None
            for p in (self.kwok, self.etcd, self.kube_apiserver, self.kube_controller_manager, self.kube_scheduler)
        )


def _from_dir(directory: Path) -> Binaries | None:
    paths = {name: directory / name for name in BINARY_NAMES}
    if not all(p.is_file() and os.access(p, os.X_OK) for p in paths.values()):
        return None
    return Binaries(
        directory=directory,
        kwokctl=paths["kwokctl"],
        kwok=paths["kwok"],
        etcd=paths["etcd"],
        kube_apiserver=paths["kube-apiserver"],
        kube_controller_manager=paths["kube-controller-manager"],
        kube_scheduler=paths["kube-scheduler"],
    )


def find_binaries() -> Binaries | None:
    """Binaries already available without building: ``$KWOKSNAP_BIN_DIR``, then the versioned cache."""
    env = os.environ.get(ENV_BIN_DIR)
    if env:
        found = _from_dir(Path(env).expanduser())
        if found is None:
            raise ToolError(f"${ENV_BIN_DIR}={env} does not hold executable {', '.join(BINARY_NAMES)}")
        return found
    return _from_dir(default_bin_dir())


def user_kwokctl() -> Binaries | None:
    """A kwokctl on PATH (e.g. from `brew install kwok`): it downloads its own binaries when it has internet."""
    found = shutil.which("kwokctl")
    return Binaries(directory=Path(found).parent, kwokctl=Path(found)) if found else None


def ensure_binaries(progress: Progress = lambda _msg: None) -> Binaries:
    """Return cached binaries, building whatever is missing. A warm cache returns in milliseconds. Builds take
    turns (a lock in the cache): two first-time builds at once shared the build directory, and the second wiped the
    first's module while it built (review finding: the first failed, exit 6); the one that waited finds the other's
    binaries."""
    found = find_binaries()
    if found is not None:
        return found
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "build.lock", "a") as lock, \
            taking_turns(lock, lambda: progress("waiting for another build of the control-plane binaries to finish")):
        return find_binaries() or _build(progress)


@contextlib.contextmanager
def taking_turns(lock: IO[str], waiting: Callable[[], None]) -> Iterator[None]:
    """Hold an advisory lock on an open file (released when the process ends, however it ends); ``waiting`` is
    called first when another process holds it (said: a command waiting without a word looked hung)."""
    import fcntl

    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        waiting()
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


def _build(progress: Progress) -> Binaries:
    go = shutil.which("go")
    if go is None:
        raise ToolError(
            "`go` is not on PATH, so the control-plane binaries cannot be built; install Go >= 1.26, or point "
            f"${ENV_BIN_DIR} at a directory holding {', '.join(BINARY_NAMES)}, or put your own kwokctl on PATH "
            "and use `kwoksnap cluster create --kwokctl PATH`"
        )
    target = default_bin_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    build_root = cache_root() / "build"
    build_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        builder = _Builder(go=go, build_root=build_root, out=staging, progress=progress)
        started = time.monotonic()
        builder.kwok()
        builder.etcd()
        builder.kube()
        progress(f"all binaries built in {time.monotonic() - started:.0f}s")
        staging.chmod(0o755)
        if target.exists():  # another process finished first; keep theirs
            shutil.rmtree(staging)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = _from_dir(target)
    if result is None:
        raise ToolError(f"build finished but {target} lacks some of {', '.join(BINARY_NAMES)}")
    return result


def local_replaces(gomod_text: str) -> list[str]:
    """Required module paths that a go.mod replaces with a local directory (staging or sibling modules).

    Replaces of modules the go.mod does not require (etcd's ``=> ./FORBIDDEN_DEPENDENCY`` guards) are ignored.
    """
    required = {m.group(1) for m in map(_REQUIRE.match, gomod_text.splitlines()) if m}
    modules = []
    for line in gomod_text.splitlines():
        m = _LOCAL_REPLACE.match(line)
        if m and m.group(1) in required:
            modules.append(m.group(1))
    return modules


def staging_version(kube_tag: str) -> str:
    """k8s.io staging modules are tagged v0.X.Y for Kubernetes v1.X.Y."""
    if not kube_tag.startswith("v1."):
        raise ValueError(f"not a Kubernetes 1.x tag: {kube_tag}")
    return "v0." + kube_tag[3:]


@dataclasses.dataclass
class _Builder:
    go: str
    build_root: Path
    out: Path
    progress: Progress

    def _run(
        self, args: Sequence[str], cwd: Path, step: str, count_packages: bool = False, **extra_env: str
    ) -> str:
        env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0", GOWORK="off", **extra_env)
        self.progress(f"[{step}] {' '.join(args)}")
        started = time.monotonic()
        proc = subprocess.Popen(  # its own process group: a stop takes the compilers it started down with it
            list(args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        last_report = started
        try:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                now = time.monotonic()
                if count_packages and now - last_report >= 15:
                    last_report = now
                    self.progress(f"[{step}] {len(lines)} packages compiled, {now - started:.0f}s")
            rc = proc.wait()
        except BaseException:  # Ctrl-C or SIGTERM: the build stops with us (a `go build` went on alone)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        output = "\n".join(lines)
        if rc != 0:
            tail = "\n".join(lines[-15:])
            hint = ""
            if "proxy" in output or "dial tcp" in output or "no such host" in output:
                hint = f" (is the Go module proxy reachable? otherwise set ${ENV_BIN_DIR} to ready binaries)"
            raise ToolError(f"{step}: `{' '.join(args)}` failed with exit {rc}{hint}:\n{tail}")
        return output

    def _wrapper(self, name: str) -> Path:
        d = self.build_root / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        self._run([self.go, "mod", "init", f"kwoksnap.local/build/{name}"], d, name)
        return d

    def _gomod_of(self, module: str, version: str, cwd: Path, step: str) -> str:
        info = json.loads(self._run([self.go, "mod", "download", "-json", f"{module}@{version}"], cwd, step))
        return Path(info["GoMod"]).read_text()

    def kwok(self) -> None:
        d = self._wrapper(f"kwok-{KWOK_VERSION}")
        self._run(
            [self.go, "install", "-v", "-trimpath",
             f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}", f"sigs.k8s.io/kwok/cmd/kwokctl@{KWOK_VERSION}"],
            d, "kwok", count_packages=True, GOBIN=str(self.out),
        )

    def etcd(self) -> None:
        module = "go.etcd.io/etcd/server/v3"
        d = self._wrapper(f"etcd-{ETCD_VERSION}")
        for dep in local_replaces(self._gomod_of(module, ETCD_VERSION, d, "etcd")):
            self._run([self.go, "mod", "edit", f"-replace={dep}={dep}@{ETCD_VERSION}"], d, "etcd")
        self._run([self.go, "get", f"{module}@{ETCD_VERSION}"], d, "etcd")
        self._run([self.go, "build", "-v", "-trimpath", "-o", str(self.out / "etcd"), module], d, "etcd",
                  count_packages=True)

    def kube(self) -> None:
        d = self._wrapper(f"kube-{KUBE_VERSION}")
        staging = local_replaces(self._gomod_of("k8s.io/kubernetes", KUBE_VERSION, d, "kube"))
        if not staging:
            raise ToolError(f"k8s.io/kubernetes@{KUBE_VERSION} go.mod lists no staging replaces; cannot build")
        sv = staging_version(KUBE_VERSION)
        self._run([self.go, "mod", "edit", *(f"-replace={m}={m}@{sv}" for m in staging)], d, "kube")
        cmds = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMPONENTS]
        self._run([self.go, "get", *(f"{c}@{KUBE_VERSION}" for c in cmds)], d, "kube")
        major, minor = KUBE_VERSION[1:].split(".")[:2]
        ldflags = []
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            ldflags += [f"-X {pkg}.gitVersion={KUBE_VERSION}", f"-X {pkg}.gitMajor={major}",
                        f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
        self._run(
            [self.go, "build", "-v", "-trimpath", "-ldflags", " ".join(ldflags), "-o", str(self.out) + "/", *cmds],
            d, "kube", count_packages=True,
        )
