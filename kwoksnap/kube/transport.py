"""A minimal HTTP/1.1 keep-alive connection pool over plain sockets (TLS through :mod:`ssl`).

Why this module exists: replay and restore are bounded by how many writes a small target cluster absorbs, and the
client's own CPU competes with the kube-apiserver for the same cores. urllib3 (over :mod:`http.client` and the
:mod:`email` header parser) costs about 0.55 ms of CPU per request here; this pool costs about 0.13 ms
(docs/benchmarks.md), which leaves that CPU to the API server during bursts. It speaks exactly what the Kubernetes
API needs: request bodies with Content-Length, responses with Content-Length or chunked encoding, keep-alive, no
compression (none is asked for), no proxies, no redirects.

A connection is returned to the pool only after its response was read whole; any error closes it. A request that
fails on a *reused* connection before a single response byte arrived (the server closed the idle connection) is
sent again once on a fresh connection, as urllib3 and Go's net/http do; every other failure is raised as
:class:`TransportFailure` for the caller's retry policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

__all__ = ["Pool", "Response", "TransportFailure"]

_RECV = 262_144
_MAX_HEADER = 1 << 20


class TransportFailure(Exception):
    """The request could not be completed (connection refused/reset/closed, timeout, bad HTTP).

    ``sent``: the whole request went out, so the server may have acted on it although no answer came back.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class _Stale(TransportFailure):
    """A reused connection was closed by the server before any response byte arrived."""


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    data: bytes
    resent: bool = False  # the answer to the request sent again after an attempt the server may have acted on


class _Connection:
    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None, server_hostname: str):
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock: socket.socket = tls.wrap_socket(sock, server_hostname=server_hostname) if tls else sock
        except BaseException:
            sock.close()
            raise
        # A bytearray: appending a received chunk and cutting a consumed part off the front cost what they move, not
        # the whole buffer (bytes concatenation copied all of it on every recv: 64 MB took 5.5 s).
        self.buf = bytearray()
        self.used = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self, received: int) -> None:
        try:
            chunk = self.sock.recv(_RECV)
        except ConnectionResetError:
            if self.used and received == 0:
                raise _Stale("connection reset by the server") from None
            raise
        if not chunk:
            if self.used and received == 0:
                raise _Stale("connection closed by the server")
            raise TransportFailure("connection closed before the response was complete")
        self.buf += chunk

    def exchange(self, request: bytes, head_only: bool) -> Response:
        status, headers = self.send(request)
        return self.body(status, headers, head_only)

    def send(self, request: bytes) -> tuple[int, dict[str, str]]:
        """Send ``request``; the status and headers of its (final) response."""
        try:
            self.sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            if self.used:
                # (before the request was wholly sent: no server acts on it)
                raise _Stale("connection closed by the server", sent=False) from None
            raise TransportFailure("connection closed by the server while the request was sent", sent=False) from None
        except (OSError, ssl.SSLError) as exc:  # a timeout: part of the request went out, which no server acts on
            raise TransportFailure(f"{type(exc).__name__} while the request was sent: {exc}", sent=False) from None
        status, headers = self._head(0)
        while 100 <= status < 200 and status != 101:  # interim answers (100 Continue, 103 Early Hints): the real
            status, headers = self._head(1)  # one follows on the same connection; returning one desynced it
        return status, headers

    def body(self, status: int, headers: dict[str, str], head_only: bool = False) -> Response:
        """The whole response whose head :meth:`send` read."""
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise TransportFailure("bad Content-Length") from None
            while len(self.buf) < length:
                self._fill(1)
            body = bytes(self.buf[:length])
            del self.buf[:length]
        else:  # read to the end of the connection
            parts = [bytes(self.buf)]
            self.buf = bytearray()
            while chunk := self.sock.recv(_RECV):
                parts.append(chunk)
            body = b"".join(parts)
            headers["connection"] = "close"
        self.used = True
        return Response(status, headers, body)

    def _head(self, received: int) -> tuple[int, dict[str, str]]:
        """The status and headers of the next response (``received``: bytes of it already read, for _fill)."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > _MAX_HEADER:
                raise TransportFailure("response headers too large")
            self._fill(received)
            received = len(self.buf)
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise TransportFailure(f"bad HTTP status line {lines[0][:40]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line[1]), headers

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            chunk = self._chunk(lambda: self._fill(1))
            if chunk is None:
                while (eol := self.buf.find(b"\r\n")) != 0:  # trailers, then the final empty line
                    if eol > 0:
                        del self.buf[:eol + 2]
                        continue
                    self._fill(1)
                del self.buf[:2]
                return b"".join(parts)
            parts.append(chunk)

    def _chunk(self, more: Callable[[], object]) -> bytes | None:
        """The next chunk of a chunked body (``more`` reads more of it), None for the last (empty) one."""
        while (eol := self.buf.find(b"\r\n")) < 0:
            more()
        try:
            size = int(self.buf[:eol].split(b";", 1)[0], 16)
        except ValueError:
            raise TransportFailure("bad chunk size") from None
        del self.buf[:eol + 2]
        if size == 0:
            return None
        while len(self.buf) < size + 2:
            more()
        chunk = bytes(self.buf[:size])
        del self.buf[:size + 2]
        return chunk

    def lines(self, chunked: bool, stop: threading.Event, idle: float | None = None) -> Iterator[bytes]:
        """The lines of a streamed body (a watch's events), each as soon as its newline arrives, until the body
        ends or ``stop`` is set. The socket's timeout is how often ``stop`` is looked at while nothing arrives;
        ``idle``: after so many seconds with no byte at all, the connection is taken for dead (TransportFailure)."""
        pending = bytearray()
        try:
            while True:
                if chunked:
                    chunk = self._chunk(lambda: self._wait(stop, idle=idle))
                    if chunk is None:
                        break
                    pending += chunk
                elif self.buf:
                    pending += self.buf
                    del self.buf[:]
                elif not self._wait(stop, eof_ends=True, idle=idle):
                    break
                while (end := pending.find(b"\n")) >= 0:
                    yield bytes(pending[:end])
                    del pending[:end + 1]
        except _Stopped:
            return
        if pending:
            yield bytes(pending)

    def _wait(self, stop: threading.Event, eof_ends: bool = False, idle: float | None = None) -> bool:
        """Until more bytes arrive (True), the end of the stream with ``eof_ends`` (False), or ``stop`` is set
        (:class:`_Stopped`); nothing for ``idle`` seconds is a TransportFailure."""
        waited_since = time.monotonic()
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                chunk = self.sock.recv(_RECV)
            except TimeoutError:
                if idle is not None and time.monotonic() - waited_since > idle:
                    raise TransportFailure(f"nothing received for {idle:.0f} s: the connection is taken for dead "
                                           "(a network that drops what it carries without a word)") from None
                continue
            except (OSError, ssl.SSLError) as exc:
                raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                if eof_ends:
                    return False
                raise TransportFailure("connection closed before the response was complete")
            self.buf += chunk
            return True


class _Stopped(Exception):
    """A streamed response was left because its reader was asked to stop."""


def _open(conn: _Connection) -> bool:
    """Whether an idle connection is still open, nothing unread on it. A TLS 1.3 server sends session tickets after
    the handshake, so a warmed connection is readable without being closed: a non-blocking read takes those
    records, and only "nothing more to read" means open."""
    sock = conn.sock
    try:
        if conn.buf:
            return False
        poller = select.poll()  # (select.select refuses descriptors past 1023)
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return True
        if not isinstance(sock, ssl.SSLSocket):
            return False  # end of stream (or an answer nobody asked for)
        sock.setblocking(False)
        try:
            sock.recv(1)  # b"": closed; a byte: data nobody asked for
        except ssl.SSLWantReadError:
            return True  # only TLS records arrived
        return False
    except (OSError, ValueError):
        return False


class Pool:
    """Thread-safe pool of at most ``maxsize`` keep-alive connections to one server (callers beyond it wait)."""

    def __init__(self, server: str, *, maxsize: int, timeout: float, tls: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, headers: dict[str, str] | None = None) -> None:
        url = urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"unsupported server URL {server!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.tls = tls if url.scheme == "https" else None
        self.server_hostname = server_hostname or self.host
        self.timeout = timeout
        fixed = {"Host": url.netloc, **(headers or {})}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self.maxsize = maxsize
        # Slots held by thread, not a threading.Semaphore: a Ctrl-C landing in the semaphore's Python-level Condition
        # just after it took its lock leaves the lock held, and every later request waits for ever (CPython issue
        # 74174; it hung a restore's closing requests). `with` on a C lock leaves no such gap, and a slot a Ctrl-C
        # kept the main thread from giving back (the only thread that gets one) is its own again at its next request.
        self._holders: set[int] = set()
        self._waiting = 0  # threads waiting for a slot
        self._freed: queue.SimpleQueue[None] = queue.SimpleQueue()  # a slot was given back (wakes a waiting thread)
        self._busy: set[_Connection] = set()  # connections waiting for an answer now (abort() cuts them)
        self._aborted = False

    def _connect(self, timeout: float) -> _Connection:
        try:
            return _Connection(self.host, self.port, timeout, self.tls, self.server_hostname)
        except (OSError, ssl.SSLError) as exc:
            raise TransportFailure(f"cannot connect to {self.host}:{self.port}: {exc}", sent=False) from None

    def request(self, method: str, target: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float | None = None, repeatable: bool = True) -> Response:
        """Send one request (``target``: path and query) and read its whole response.

        Not ``repeatable`` (applying it twice differs from once): an idle connection the server has closed is
        passed over before sending, and a reused one that then closes without an answer is a failure (``sent``),
        not a reason to send the request again."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
        length = b"" if body is None and method in ("GET", "HEAD") else b"Content-Length: %d\r\n" % len(body or b"")
        request = (f"{method} {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1") + self._fixed + extra + length
                   + b"\r\n" + (body or b""))
        wait = self.timeout if timeout is None else timeout
        self._take_slot()
        try:
            return self._exchange(request, method, wait, repeatable)
        finally:
            self._give_slot()

    def _take_slot(self) -> None:
        me = threading.get_ident()
        while True:
            with self._lock:
                if me in self._holders or len(self._holders) < self.maxsize:
                    self._holders.add(me)
                    return
                self._waiting += 1
            try:
                with contextlib.suppress(queue.Empty):
                    self._freed.get(timeout=0.05)  # (a slot given back just before this wait: seen at the next turn)
            finally:
                with self._lock:
                    self._waiting -= 1

    def _give_slot(self) -> None:
        with self._lock:
            self._holders.discard(threading.get_ident())
            wake = self._waiting > 0
        if wake:
            self._freed.put(None)

    def _exchange(self, request: bytes, method: str, wait: float, repeatable: bool) -> Response:
        conn = self._idle_connection(repeatable)
        sent = False  # an attempt went out whole and got no answer: the server may have acted on it
        for _attempt in range(2):  # a second time only after a stale reused connection
            try:
                if self._aborted:
                    raise TransportFailure("aborted: the command is stopping", sent=sent)
                if conn is None:
                    conn = self._connect(wait)
                conn.sock.settimeout(wait)
                with self._lock:
                    self._busy.add(conn)
                try:
                    response = conn.exchange(request, method == "HEAD")
                finally:
                    with self._lock:
                        self._busy.discard(conn)
            except _Stale as exc:
                if conn is not None:
                    conn.close()
                if exc.sent and not repeatable:  # sent whole, then no answer: the server may have acted
                    raise TransportFailure(str(exc)) from None
                sent = sent or exc.sent
                conn = None
                continue
            except TransportFailure as exc:
                if conn is not None:
                    conn.close()
                if sent and not exc.sent:  # (the first attempt may have been acted on: the caller must know)
                    raise TransportFailure(str(exc), sent=True) from None
                raise
            except (OSError, ssl.SSLError) as exc:  # includes timeouts and resets
                if conn is not None:
                    conn.close()
                raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
            response.resent = sent  # (re-test finding: a create resent here came back AlreadyExists, unexplained)
            if response.headers.get("connection", "").lower() == "close":
                conn.close()
            else:
                with self._lock:
                    keep = len(self._idle) < self.maxsize
                    if keep:
                        self._idle.append(conn)
                if not keep:
                    conn.close()
            return response
        raise TransportFailure("connection closed by the server (twice)")

    def stream(self, target: str, *, stop: threading.Event, headers: dict[str, str] | None = None,
               poll: float = 1.0, idle: float | None = None) -> tuple[Response, Iterator[bytes] | None]:
        """GET ``target`` on a connection of its own and read its body as it streams (a watch): (the response,
        with an empty body, and its lines) for a 200, else (the whole response, None). The connection is closed
        when the lines end, are left, or ``stop`` is set (looked at every ``poll`` seconds while nothing comes);
        ``idle`` seconds with nothing at all end the lines with a TransportFailure."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
        request = f"GET {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1") + self._fixed + extra + b"\r\n"
        conn = self._connect(self.timeout)
        try:
            conn.sock.settimeout(self.timeout)
            status, head = conn.send(request)
            if status != 200:
                response = conn.body(status, head)
                conn.close()
                return response, None
            conn.sock.settimeout(poll)
        except (TransportFailure, OSError, ssl.SSLError) as exc:
            conn.close()
            if isinstance(exc, TransportFailure):
                raise
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None

        def lines() -> Iterator[bytes]:
            try:
                yield from conn.lines("chunked" in head.get("transfer-encoding", "").lower(), stop, idle)
            finally:
                conn.close()

        return Response(status, head, b""), lines()

    def _idle_connection(self, repeatable: bool) -> _Connection | None:
        """An idle connection, or None. For a request that must not be sent twice, one the server has closed (or
        sent anything on) meanwhile is closed and the next one tried: readable while idle means end of stream."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or repeatable or _open(conn):
                return conn
            conn.close()

    def warm(self, n: int) -> int:
        """Open connections until ``n`` (at most ``maxsize``) are idle, so that a burst of requests does not pay
        TCP and TLS handshakes (about 1 ms of CPU each on both sides) when it matters. Returns how many were opened."""
        opened = 0
        while True:
            with self._lock:
                if len(self._idle) >= min(n, self.maxsize):
                    return opened
            conn = self._connect(self.timeout)
            conn.used = True  # idle as a reused one is: the server may close it meanwhile (after ~30 s), and a request
            opened += 1       # then goes out again on a new one, no retry (review finding: a sent failure, backoff)
            with self._lock:
                self._idle.append(conn)

    def abort(self) -> None:
        """Cut the connections waiting for an answer now, and send nothing more: each request in flight fails at
        once (a TransportFailure), not at its read timeout. For a command stopping whose requests have nothing left
        to finish (``save``'s lists: review finding, a Ctrl-C waited 60 s for a list the server never answered)."""
        with self._lock:
            self._aborted = True
            busy = list(self._busy)
        for conn in busy:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the idle connections (the pool stays usable; connections in use are kept when returned)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
