"""Receive an API server's audit webhook batches (``--audit-webhook-config-file``), their events as they come.

Why this module exists: the webhook backend is how an API server hands its audit events to another process as they
happen, without a log file (managed setups, a log volume nobody can read). It POSTs ``audit.k8s.io/v1`` EventList
batches (JSON) to the server its kubeconfig-shaped configuration names; this is that server, on an address of the
user's choosing (loopback unless they say otherwise), plain HTTP or TLS.

Each batch is answered 200 once decoded; a body that is not JSON is 400 (the API server logs it and drops the
batch), one over ``MAX_BODY`` 413. Decoding happens on the server's threads; the events, with what was wrong, go
through one queue to the recording in the order the batches came.
"""

from __future__ import annotations

import http.server
import queue
import ssl
import threading
from collections.abc import Iterator
from typing import Any, Final

import orjson

from kwoksnap.audit import AuditEvent, ParseStats
from kwoksnap.audit.formats import decode_value
from kwoksnap.errors import UsageError

MAX_BODY: Final = 256 << 20  # bytes of one batch (the API server's batches are far smaller: 400 events by default)
POLL: Final = 0.2
IDLE: Final = 2.0  # seconds a keep-alive connection may wait for its next batch (the API server opens another)

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


class WebhookServer:
    """An HTTP(S) server taking audit webhook batches; :meth:`events` hands out their events until stopped."""

    def __init__(self, address: str, stats: ParseStats, *, tls: ssl.SSLContext | None = None) -> None:
        host, port = parse_address(address)
        self.stats = stats
        self.batches = 0
        self._queue: queue.Queue[_Batch] = queue.Queue()
        self._count = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the API server sends its batches on one connection
            timeout = IDLE  # an idle connection is closed after this, so that stopping waits no longer

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    self._answer(411, "a body with Content-Length is needed")
                    return
                if length > MAX_BODY:
                    self._answer(413, f"a batch is at most {MAX_BODY} bytes")
                    self.close_connection = True
                    return
                body = self.rfile.read(length)
                with outer._count:
                    outer.batches += 1
                    number = outer.batches
                source = f"webhook batch {number}"
                try:
                    value = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    outer._queue.put((number, [], [(source, f"not JSON: {exc}", False)]))
                    self._answer(400, "not JSON")
                    return
                decoded: list[tuple[str, AuditEvent]] = []
                problems: list[tuple[str, str, bool]] = []
                decode_value(value, source, decoded, problems)
                outer._queue.put((number, decoded, problems))
                self._answer(200, "")

            def do_GET(self) -> None:
                self._answer(405, "POST audit event batches here")

            def _answer(self, status: int, message: str) -> None:
                body = orjson.dumps({"message": message} if message else {})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # (each request on stderr would drown the progress; bodies are never logged)

        try:
            self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise UsageError(f"--audit-webhook {address}: cannot listen there: {exc.strerror or exc}") from None
        self._server.daemon_threads = False  # (closing the server waits for the batches being received)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        bound_host, self.port = self._server.server_address[:2]
        self.host = str(bound_host)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL},
                                        name="kwoksnap-webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def events(self, stop: threading.Event) -> Iterator[AuditEvent]:
        """The events of the batches received, in the order they came, until ``stop`` is set: then the server stops
        taking batches, finishes those it is receiving, and their events come too."""
        try:
            while True:
                try:
                    batch = self._queue.get(timeout=POLL)
                except queue.Empty:
                    if stop.is_set():
                        break
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

    def _take(self, batch: _Batch) -> Iterator[AuditEvent]:
        _, decoded, problems = batch
        self.stats.lines += 1  # (a batch is one "line" of input)
        for where, reason, ignored in problems:
            if ignored:
                self.stats.ignored[reason] += 1
            else:
                self.stats.add_malformed(where, reason)
        for flavour, event in decoded:
            self.stats.events += 1
            self.stats.formats[flavour] += 1
            yield event

    def close(self) -> None:
        """Stop taking batches; returns once those being received are in the queue (at most ``IDLE`` later)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
