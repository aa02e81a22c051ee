"""Files that appear whole or not at all.

Why this module exists: no file kwoksnap writes may be left half-written by a crash, a full disk or Ctrl-C (a
truncated export or report read as complete is worse than none). The pattern is one: write a temporary file in the
target's directory, fsync it, rename it over the target; remove the temporary file on any failure (and, the next
time, one that a process killed outright left: its name says which process of which host). Cluster state
(exports) stays private to the user, as ``mkstemp`` makes it; a report carries no object bodies and gets the mode a
plain write would give. (``KwsWriter`` keeps its own temporary file, because it stays open across many calls.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kwoksnap.errors import REFUSALS, WRITE_REFUSALS, OutputLost, UsageError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, private: bool = True,
                  exclusive: bool = False) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through; it replaces ``path`` only when the block ends without an error.
    ``private``: mode 0600 (else what the umask gives). ``exclusive``: never replace an existing file (checked
    before and, atomically, at the end), like ``KwsWriter``. ``UsageError`` if the directory takes no new file."""
    out = Path(path)
    if exclusive and os.path.lexists(out):
        raise UsageError(f"{out}: already exists")
    fd, temp = temp_beside(out)
    try:
        with open(fd, "wb") as f:
            if not private:
                mask = os.umask(0)
                os.umask(mask)
                try:  # a file replaced keeps its mode (a report made private by its user stays so)
                    mode = os.stat(out).st_mode & 0o777
                except OSError:
                    mode = 0o666 & ~mask
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            put_in_place(temp, out, exclusive=exclusive)
        except FileNotFoundError:  # (only here: one the caller's own code raised is its own)
            raise OutputLost(f"{out}: its directory was removed while it was written: nothing was written") from None
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if exc.filename is None and exc.errno in WRITE_REFUSALS:  # only a write's:
            raise OSError(exc.errno, exc.strerror, str(out)) from exc  # it names no file, so name the output
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def temp_beside(out: Path, *, keep_strays: bool = False) -> tuple[int, Path]:
    """A new temporary file (mode 0600, O_EXCL) in ``out``'s directory: (descriptor, path). The system's refusal
    (no permission, a read-only disk, a directory that takes no file: /proc) is an ``OSError`` naming ``out`` (exit
    7); another failure (no such directory) a ``UsageError``. Those a killed process left are removed first, unless
    ``keep_strays`` (salvage: its input may be one), but never one that a killed ``kwoksnap record`` left
    (:func:`killed_recording`)."""
    directory = out.parent if str(out.parent) else Path(".")
    if not keep_strays:
        for stray in strays(out):
            if not killed_recording(stray):  # (`kwoksnap salvage` makes a recording of one: never removed)
                with contextlib.suppress(OSError):
                    stray.unlink()
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f"{temp_prefix(out)}{os.getpid()}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        if exc.errno in REFUSALS:
            raise OSError(exc.errno, f"cannot create a file in {directory}: {exc.strerror}", str(out)) from exc
        if exc.errno == errno.ENOENT and directory.is_dir():  # one that takes no file (/proc): refused there too
            raise OSError(errno.EACCES, f"cannot create a file in {directory}: it takes no new file "
                                        f"({exc.strerror})", str(out)) from exc
        raise UsageError(f"{out}: cannot create a file in {directory}: {exc.strerror}") from exc
    return fd, Path(temp_name)


def strays(out: Path) -> list[Path]:
    """The temporary files of ``out`` that a kwoksnap killed outright (SIGKILL, a crash: no cleanup ran) left:
    named ``.<name>.<host>-<pid>.<random>.tmp`` by a process of this host that no longer runs. Another host's (a
    shared directory) and a running process's are not among them."""
    directory = out.parent if str(out.parent) else Path(".")
    prefix = temp_prefix(out)
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".tmp"))
    except OSError:
        return []
    found = []
    for name in names:
        pid = name[len(prefix):].partition(".")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.append(directory / name)
        except (OSError, OverflowError):
            pass  # (alive, another user's; or no pid at all)
    return found


def killed_recording(path: Path) -> bool:
    """Whether a temporary file is a recording ``kwoksnap record`` was writing (its header says so): what it holds
    is an incident's changes, which ``kwoksnap salvage`` reads, not a half-written copy of something that can be
    made again."""
    import msgpack

    from kwoksnap.store.format import MAGIC, PREAMBLE

    try:
        with open(path, "rb") as f:
            magic, _, length = PREAMBLE.unpack(f.read(PREAMBLE.size))
            header = msgpack.unpackb(f.read(length), raw=False) if magic == MAGIC and length < 1 << 20 else None
            if not f.read(4) or not f.read(1):  # (its header alone: killed before its first frame, nothing in it)
                return False
    except Exception:  # (anything else: not one)
        return False
    if not isinstance(header, dict):
        return False
    source = header.get("source")
    return (header.get("contentType") == "recording" and isinstance(source, dict)
            and source.get("kind") in ("watch", "audit-file", "audit-webhook"))


def temp_prefix(out: Path) -> str:
    """How the names of ``out``'s temporary files begin (the pid and a random part follow)."""
    return f".{out.name}.{socket.gethostname()}-"


def put_in_place(temp: Path, out: Path, *, exclusive: bool) -> None:
    """Rename the complete ``temp`` to ``out``; ``exclusive``: never over an existing file or link (also one that
    appeared meanwhile: a hard link fails then), a ``UsageError``."""
    if not exclusive:
        os.replace(temp, out)
        return
    try:
        os.link(temp, out)  # fails if the file appeared meanwhile
    except FileExistsError:
        raise UsageError(f"{out}: already exists") from None
    except OSError:  # a filesystem without hard links: checked again, no longer atomically
        if os.path.lexists(out):
            raise UsageError(f"{out}: already exists") from None
        os.replace(temp, out)
    else:
        temp.unlink()
