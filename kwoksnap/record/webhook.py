"""Receive an API server's audit webhook batches (``--audit-webhook-config-file``), their events as they come.

Why this module exists: the webhook backend is how an API server hands its audit events to another process as they
happen, without a log file (managed setups, a log volume nobody can read). It POSTs ``audit.k8s.io/v1`` EventList
batches (JSON) to the server its kubeconfig-shaped configuration names; this is that server, on an address of the
user's choosing (loopback unless they say otherwise), plain HTTP or TLS.

Each batch is answered 200 once decoded and queued for the recording, and only then; a body that is not JSON is
400 (the API server logs it and drops the batch), one over ``MAX_BODY`` 413; 503 (sent again later) when recording
has stopped, or while ``MAX_QUEUED`` batches wait. Decoding happens on the server's threads; the events, with what
was wrong, go through one queue to the recording in the order the batches came.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import queue
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from typing import Any, Final

import orjson

from kwoksnap.audit import AuditEvent, ParseStats
from kwoksnap.audit.formats import decode_value
from kwoksnap.errors import UsageError

log = logging.getLogger(__name__)

MAX_BODY: Final = 256 << 20  # bytes of one batch (the API server's batches are far smaller: 400 events by default)
# Batches received and not yet taken by the recording: more are answered 503 (the API server sends them again
# later), so memory stays bounded when they come faster than the recording writes (review finding: unbounded).
MAX_QUEUED: Final = 64
POLL: Final = 0.2
CUT_WAIT: Final = 1.0  # seconds the stop waits for the batches it cut to be answered 503
IDLE: Final = 2.0  # seconds a read of a request may wait
STOP_WAIT: Final = 2.0  # seconds a stop waits for the batches being read (then cuts them: answered 503)
HANDSHAKE: Final = 10.0  # seconds a TLS handshake may take (on the connection's own thread)

_Batch = tuple[int, list[tuple[str, AuditEvent]], list[tuple[str, str, bool]]]


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback), ``[IPv6]:PORT``; port 0 takes a free one."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = "", address
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not port.isascii() or int(port) > 65535:
        raise UsageError(f"--audit-webhook {address!r} is not HOST:PORT (e.g. 127.0.0.1:8900)")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    """Each connection on a thread of its own, its TLS handshake too (done while accepting, one client that sends
    nothing held every other one back: black-box finding); the threads are not waited for (a keep-alive connection
    waits for its next batch)."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(HANDSHAKE)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):  # (a plain HTTP client, a port scanner: nothing to answer)
                request.close()
                return
        super().finish_request(request, client_address)


    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or stalled is nothing to report (socketserver printed a traceback for each:
        review finding); anything else is one line."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError, ssl.SSLError)):
            log.warning("webhook: a request from %s failed: %s: %s", client_address[0], type(error).__name__, error)


class _Server6(_Server):
    address_family = socket.AF_INET6


class WebhookServer:
    """An HTTP(S) server taking audit webhook batches; :meth:`events` hands out their events until stopped."""

    def __init__(self, address: str, stats: ParseStats, *, tls: ssl.SSLContext | None = None) -> None:
        host, port = parse_address(address)
        self.stats = stats
        self.batches = 0
        self._queue: queue.Queue[_Batch] = queue.Queue()
        self._count = threading.Condition()
        self._receiving = 0  # batches being read (finished before the events end, for up to IDLE after a stop)
        self._stopping = threading.Event()
        self._drained = False  # the stop waits no more: a batch read later is answered 503, not queued
        self._reading: set[socket.socket] = set()  # the connections of the batches being read (cut at the stop)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the API server sends its batches on one connection
            timeout = IDLE  # (each read of a request: a client that stalls longer is dropped)

            def do_POST(self) -> None:
                with outer._count:  # (the check and the count together: a stop between them was not waited for)
                    stopping = outer._stopping.is_set()
                    busy = not stopping and outer._queue.qsize() >= MAX_QUEUED
                    if not stopping and not busy:
                        outer._receiving += 1
                        outer._reading.add(self.connection)
                if stopping or busy:  # the API server sends it again later (its --audit-webhook-initial-backoff)
                    self.close_connection = True
                    self._answer(503, "not recording any more" if stopping else "busy: send it again later")
                    return
                try:
                    self._receive()
                finally:
                    with outer._count:
                        outer._receiving -= 1
                        outer._reading.discard(self.connection)
                        outer._count.notify_all()

            def _receive(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length", ""))
                    if length < 0:
                        raise ValueError(length)
                except ValueError:
                    self.close_connection = True
                    outer._refused("a batch without a Content-Length (a chunked one?)")
                    self._answer(411, "a body with Content-Length is needed")
                    return
                if length > MAX_BODY:
                    self.close_connection = True
                    outer._refused(f"a batch of {length} bytes (more than {MAX_BODY})")
                    self._answer(413, f"a batch is at most {MAX_BODY} bytes")
                    return
                body = self.rfile.read(length)
                if len(body) < length:  # its sender hung up, or the stop cut it (close): not a batch
                    self.close_connection = True
                    if outer._stopping.is_set():
                        self._answer(503, "not recording any more")
                    return
                number = outer._number()
                source = f"webhook batch {number}"
                try:
                    value = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    outer._put(number, [], [(source, f"not JSON: {exc}", False)])
                    self._answer(400, "not JSON")
                    return
                decoded: list[tuple[str, AuditEvent]] = []
                problems: list[tuple[str, str, bool]] = []
                decode_value(value, source, decoded, problems)
                if outer._put(number, decoded, problems):
                    self._answer(200, "")
                else:  # read after the stop stopped waiting: answered 200 it was lost (review finding); resent
                    self.close_connection = True
                    self._answer(503, "not recording any more")

            def do_GET(self) -> None:
                self._answer(405, "POST audit event batches here")

            def _answer(self, status: int, message: str) -> None:
                body = orjson.dumps({"message": message} if message else {})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # (each request on stderr would drown the progress; bodies are never logged)

        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), Handler)
        except OSError as exc:
            raise UsageError(f"--audit-webhook {address}: cannot listen there: {exc.strerror or exc}") from None
        self._server.tls = tls
        self.scheme = "https" if tls is not None else "http"
        bound_host, self.port = self._server.server_address[:2]
        self.host = str(bound_host)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL},
                                        name="kwoksnap-webhook", daemon=True)
        self._thread.start()

    def _refused(self, why: str) -> None:
        number = self._number()
        self._put(number, [], [(f"webhook batch {number}", f"refused: {why}", False)])

    def _number(self) -> int:
        with self._count:
            self.batches += 1
            return self.batches

    def _put(self, number: int, decoded: list[tuple[str, AuditEvent]], problems: list[tuple[str, str, bool]]) -> bool:
        """Queue a batch's events and problems; False once the stop has stopped waiting for batches
        (:meth:`close`): nothing reads the queue any more."""
        with self._count:
            if self._drained:
                return False
            self._queue.put((number, decoded, problems))
            return True

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        """The events of the batches received, in the order they came, until ``stop`` is set: then the server takes
        no further batch (503), finishes reading those it is receiving (for up to ``IDLE``), and their events come
        too."""
        try:
            while not stop.is_set():
                try:
                    batch = self._queue.get(timeout=POLL)
                except queue.Empty:
                    continue
                yield from self._take(batch)
            self.close()
            while True:
                try:
                    batch = self._queue.get_nowait()
                except queue.Empty:
                    return
                yield from self._take(batch)
        finally:
            self.close()

    def pending(self) -> Iterator[AuditEvent]:
        """The events of the batches received (answered 200) and not handed out yet, taken without waiting (the
        recording given up: a second Ctrl-C); at most those queued now."""
        for _ in range(self._queue.qsize()):
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                return
            yield from self._take(batch)

    def _take(self, batch: _Batch) -> Iterator[AuditEvent]:
        _, decoded, problems = batch
        self.stats.lines += 1  # (a batch is one "line" of input)
        yield from self.stats.counted(decoded, problems)

    def close(self) -> None:
        """Stop taking batches; returns once those being read are in the queue, or ``STOP_WAIT`` later (a batch
        still being read then is cut and answered 503, not queued: its sender sends it again)."""
        with self._count:
            if self._stopping.is_set():
                return
            self._stopping.set()
        self._server.shutdown()  # (no new connection)
        with self._count:
            done = self._count.wait_for(lambda: not self._receiving, timeout=STOP_WAIT)
            self._drained = True
            cut = [] if done else list(self._reading)
        # A batch still coming is cut and answered 503 before this returns (black-box finding: the process ended
        # while it was read, and its sender saw the connection closed without an answer).
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        if cut:
            with self._count:
                self._count.wait_for(lambda: not self._receiving, timeout=CUT_WAIT)
        self._server.server_close()
