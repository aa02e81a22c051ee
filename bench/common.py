"""Helpers shared by the benchmarks: fresh local clusters, and timing a command with its peak RSS."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from kwoksnap.cluster.binaries import ensure_binaries
from kwoksnap.cluster.local import LocalCluster, Profile, create_cluster, delete_cluster


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, output) of a command, via GNU time."""
    with tempfile.NamedTemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd], capture_output=True, text=True,
                              env=env)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        rss = int(Path(out.name).read_text().strip().splitlines()[-1]) / 1024
    return seconds, rss, proc.stdout + proc.stderr


class Clusters:
    def __init__(self, workdir: Path) -> None:
        self.bins = ensure_binaries()
        self.workdir = workdir
        self.made: list[str] = []

    def new(self, name: str, profile: Profile = Profile.STANDARD,
            extra_args: tuple[str, ...] = ("--disable-qps-limits",)) -> LocalCluster:
        delete_cluster(name, self.bins, workdir=self.workdir)
        self.made.append(name)
        return create_cluster(name, self.bins, profile=profile, workdir=self.workdir, extra_args=extra_args)

    def drop(self, name: str) -> None:
        delete_cluster(name, self.bins, workdir=self.workdir)

    def close(self) -> None:
        for name in self.made:
            self.drop(name)
