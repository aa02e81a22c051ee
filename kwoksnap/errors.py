"""The one error hierarchy of kwoksnap, and the exit codes the CLI maps it to.

Why this module exists: every layer raises a subclass of :class:`KwoksnapError`; the CLI catches that base class
at a single boundary and turns it into a one-line message and the exit code documented in README.md. Nothing in
the library prints or exits on its own. This module must stay at the bottom of the import graph (stdlib only).
"""

from __future__ import annotations

import contextlib
import enum
import errno
from collections.abc import Iterator
from typing import Any, Final


class ExitCode(enum.IntEnum):
    """Process exit codes; the table in README.md ("Exit codes") must match."""

    OK = 0
    DIFFERENT = 1  # `diff`: the two sides differ
    USAGE = 2  # bad command-line usage (also click's own code)
    INPUT = 3  # an input file is unreadable, corrupt, of an unknown or newer format
    CLUSTER = 4  # the API server is unreachable, refused us, or the target is unsafe
    PARTIAL = 5  # the run finished but some objects/events failed (listed in the summary)
    TOOLS = 6  # missing or failing external tools (go, kwokctl, binaries)
    SYSTEM = 7  # the system refused to read or write a file (disk full, file-size limit, I/O error)
    INTERNAL = 70  # a bug in kwoksnap
    INTERRUPTED = 130  # Ctrl-C
    OUTPUT_CLOSED = 141  # stdout was closed before all was written (`| head`): 128 + SIGPIPE, as a shell reports it


# What the system may refuse a correct program (ExitCode.SYSTEM, raised as the OSError it is): no space, a quota, a
# file-size limit, a failing or read-only disk, no permission.
REFUSALS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES,
                             errno.EPERM})
# Those only a write meets: the file being written is the one to name, and nothing of it was left half-written.
WRITE_REFUSALS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class KwoksnapError(Exception):
    """Base of every error kwoksnap raises on purpose. ``str(err)`` is the one-line message shown to users."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(KwoksnapError):
    """Options that make no sense together, or values out of range."""

    exit_code = ExitCode.USAGE


class InputError(KwoksnapError):
    """A file given to kwoksnap cannot be used."""

    exit_code = ExitCode.INPUT


class Unstorable(InputError):
    """One record a .kws writer cannot store (it would compress more than readers accept as no decompression bomb):
    refused before it is taken, so that the writer goes on with the next (``kwoksnap record`` and ``convert`` leave
    such an event out, counted and named, instead of losing the recording)."""


class FormatError(InputError):
    """A .kws (or imported) file is corrupt, truncated, of another format, or of a newer format version.

    ``where`` names the place it broke (a byte offset, a frame number, a line), so users can judge what is left.
    ``salvageable``: a damaged .kws file whose readable part ``kwoksnap salvage`` can copy (the CLI says so).
    """

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None,
                 salvageable: bool = False) -> None:
        self.path = path
        self.where = where
        self.salvageable = salvageable
        parts = [p for p in (path, where) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)


class InvalidObject(InputError):
    """An object of an input file holds a value of a type no API server would (a list of annotations, a bytes value,
    an integer key): only a hand-made or imported file has one. Said of the object, never an internal error."""

    def __init__(self, obj: object, exc: Exception) -> None:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        kind = obj.get("kind") if isinstance(obj, dict) else None
        namespace, name = meta.get("namespace"), meta.get("name")
        where = f"{kind or 'object'} {f'{namespace}/' if namespace else ''}{name}"
        odd = next((f"its metadata.{key} is a {type(meta[key]).__name__}, not a map" for key in ("labels",
                    "annotations") if meta.get(key) is not None and not isinstance(meta[key], dict)), None)
        odd = odd or _odd_value(obj)
        if odd is not None:  # (the usual hand-made mistakes: said as they are, not as a possible bug)
            super().__init__(f"{where}: not a valid Kubernetes object: {odd}")
            return
        super().__init__(f"{where}: not a valid Kubernetes object ({type(exc).__name__}: {exc}; if it is one, this "
                         "is a kwoksnap bug: --debug shows where)")


def _odd_value(value: object, depth: int = 0) -> str | None:
    """The first value of ``value`` no JSON object holds (bytes, a key that is no string, a set...), said as it is;
    None if there is none (within 200 levels)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a key is a {type(key).__name__} ({key!r:.40}), where a Kubernetes object has strings"
            found = _odd_value(item, depth + 1) if depth < 200 else None
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        return next((found for item in value if (found := _odd_value(item, depth + 1) if depth < 200 else None)),
                    None)
    if value is None or isinstance(value, (str, int, float)):
        return None
    return f"a value is {type(value).__name__}, which a Kubernetes object never holds"


# What walking an object of such types raises (what InvalidObject is made from; nothing of kwoksnap's own).
MALFORMED: Final = (TypeError, AttributeError, KeyError, ValueError, IndexError)


@contextlib.contextmanager
def walking(obj: object, *, trusted: bool = False) -> Iterator[None]:
    """Code that walks ``obj``: an error of :data:`MALFORMED` in it becomes :class:`InvalidObject`, unless the object
    is ``trusted`` (read from an API server, so valid: the error is kwoksnap's own, and stays an internal error)."""
    try:
        yield
    except MALFORMED as exc:
        if trusted:
            raise
        raise InvalidObject(obj, exc) from exc


class OutputLost(KwoksnapError):
    """A file being written could not be put in place: its directory was removed meanwhile (exit 7, as the
    system's refusals of a write)."""

    exit_code = ExitCode.SYSTEM


class Unremovable(KwoksnapError):
    """The system refused to remove files kwoksnap made (a read-only file system): exit 7, as its refusals of a
    write."""

    exit_code = ExitCode.SYSTEM


class OutputKept(KwoksnapError):
    """The system refused a write (a full disk, a file-size limit) to a file whose temporary copy is kept for
    ``kwoksnap salvage`` (a recording, which cannot be made again): exit 7, naming that copy."""

    exit_code = ExitCode.SYSTEM


class ClusterError(KwoksnapError):
    """The cluster cannot be reached, authenticated to, or is not a safe target."""

    exit_code = ExitCode.CLUSTER


MESSAGE_CHARS: Final = 600  # the most of an API server's message an error line shows: its first ...
MESSAGE_HEAD: Final = 300
MESSAGE_TAIL: Final = 250  # ... and last characters


class APIError(ClusterError):
    """A non-2xx answer from the API server, carrying its ``Status`` fields.

    Its text is one line, as every error and report line is: the API server's message can go on for many lines (a
    rejected pod update appends a diff of the whole spec), so only its first line is kept there, with the diff's
    changed lines (up to 8) and a count of the rest, and of a line longer than ``MESSAGE_CHARS`` (a refused patch
    quotes the whole object) its start and end; ``api_message`` keeps all of it."""

    def __init__(self, status: int, reason: str, message: str, *, method: str = "", path: str = "",
                 details: dict[str, Any] | None = None, continue_token: str = "") -> None:
        self.status = status
        self.continue_token = continue_token  # a 410 for an expired continue token offers one to go on with
        self.reason = reason
        self.api_message = message
        self.details: dict[str, Any] = details or {}  # the Status's details: name, group, kind of the object
        self.method = method
        self.path = path
        # The answer to a request sent again after an attempt the server may have acted on (sent whole, then no
        # answer; a 5xx): a create's AlreadyExists may then be of the object the first attempt made.
        self.resent = False
        where = f"{method} {path}: " if method else ""
        first, *rest = message.strip().splitlines() or [""]
        more = sum(1 for line in rest if line.strip())
        # The lines that say what differed ("- NodeName: "a"", "+ NodeName: "b"" of a refused update's diff)
        # are what a reader needs, and few: kept, on the one line.
        changed = [" ".join(line.split()) for line in rest if line.lstrip()[:1] in ("-", "+") and line.strip()[1:]]
        left = more - len(changed) if changed and len(changed) <= 8 else more
        if left < more:
            first += f" [{'; '.join(changed)}]"
        if left:
            first += f" [{left} more line{'s' if left > 1 else ''}]"
        if len(first) > MESSAGE_CHARS:  # a refused write can quote the whole object: its start and the reason
            cut = len(first) - MESSAGE_HEAD - MESSAGE_TAIL  # (at its end: "parsing time ... cannot parse ...")
            first = f"{first[:MESSAGE_HEAD]} [... {cut} characters ...] {first[-MESSAGE_TAIL:]}"
        super().__init__(f"{where}{status} {reason}: {first}")

    @property
    def retryable(self) -> bool:
        # An admission webhook the API server cannot call (its backend does not run in a KWOK cluster) answers 500
        # every time: retrying it cost a restore 20 s per object.
        if self.status == 500 and "failed calling webhook" in self.api_message:
            return False
        return self.status == 429 or self.status >= 500


class NotFound(APIError):
    """404."""


class Conflict(APIError):
    """409 (AlreadyExists or a resourceVersion/UID conflict)."""

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Invalid(APIError):
    """422: the server rejected the object's content."""


class TransportError(ClusterError):
    """The connection failed (refused, reset, timed out): always worth a retry."""


class PartialFailure(KwoksnapError):
    """The operation ran to the end but some items failed; the summary lists them."""

    exit_code = ExitCode.PARTIAL


class ToolError(KwoksnapError):
    """An external tool (go, kwokctl, the control-plane binaries) is missing or failed."""

    exit_code = ExitCode.TOOLS
