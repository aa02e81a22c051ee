"""A raw HTTP client for the Kubernetes API: keep-alive connection pool, orjson bodies, plain dicts out.

Why this module exists: the ``kubernetes`` package costs 0.6-1.5 ms of CPU per request and seconds to decode big
lists into models (see docs/benchmarks.md). Snapshot, restore and replay move tens of thousands of objects, so they
talk through this thin client instead. It maps every non-2xx answer onto :mod:`kwoksnap.errors` (the Status'
reason and message kept), retries what is safe to retry (429 with Retry-After, 5xx, broken connections) with capped
exponential backoff, and is safe to share between threads. A request whose second application would differ from
the first (a JSON patch, a create without a name) is sent again only when the server cannot have acted on it. It
never logs request bodies or credentials. The wire is :mod:`kwoksnap.kube.transport` (a quarter of urllib3's CPU
per request).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal, TypedDict, cast
from urllib.parse import urlencode

import msgspec
import orjson

from kwoksnap import __version__
from kwoksnap.errors import APIError, ClusterError, Conflict, InputError, Invalid, NotFound, TransportError
from kwoksnap.kube.config import ClusterConfig
from kwoksnap.kube.transport import Pool, Response, TransportFailure

# -v: retries and credential refreshes; -vv: every request with its status and time. Never a header or a body (they
# hold credentials and secret values).
log = logging.getLogger("kwoksnap.kube")
LIST_RESTARTS = 3  # expired continue tokens per list: gone on with the one offered, or restarted, at most

Obj = dict[str, Any]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


# Attempts of a request that fails to connect before the server has answered anything (about 0.3-0.7 s in all).
FIRST_CONTACT_ATTEMPTS = 4
SLOW_FIRST_CONTACT = 5.0  # seconds an attempt at a server that never answered may take before it is said
WATCH_GRACE = 30.0  # seconds past its timeoutSeconds a silent watch is waited for before it is taken for dead
REFRESH_PAUSE = 30.0  # seconds before credentials that brought nothing new are fetched again (after a 401)


_NOT_REPEATED = ("not sent again: the server may have applied it, and applying it twice would not be the same as "
                 "once")


# The field manager the API server records for kwoksnap's writes: its user agent's name (managedFields).
FIELD_MANAGER: Final = "kwoksnap"

# A target that has answered nothing for this long, while a request failed to reach it after its retries, is gone:
# restore and replay stop (exit 4) instead of letting every later write wait out its own retries in turn (black-box
# findings: a restore silent for hours, a replay whose 17 s of recorded time took 129 s). Longer than the API server
# restart the retries ride through.
OUTAGE_SECONDS = 15.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retries for 429/5xx/connection errors. The defaults wait 16-31 s in all before giving up, so they ride
    through an API server restart of up to 15 s whatever the jitter draws."""

    attempts: int = 12
    base_delay: float = 0.1
    max_delay: float = 5.0
    # No attempt starts this long after the first began: a server that accepts and never answers keeps each attempt
    # for the read timeout (60 s), and twelve were 12.5 minutes per request (review finding: a hung target stalled
    # restore that long before it was found gone). Quick failures (a restart's refused connections) never reach it.
    give_up_after: float = 45.0

    def delay(self, attempt: int) -> float:
        # Equal jitter: half the backoff fixed, half random. It spreads the retries of many concurrent workers after
        # a shared outage, and (unlike full jitter, which can draw ~0 every time) keeps the total wait bounded below:
        # a restart the fault test makes (5 s down, then the server's start-up) once outlasted 10 full-jitter draws.
        backoff: float = min(self.max_delay, self.base_delay * (2**attempt))
        return backoff / 2 + random.uniform(0, backoff / 2)

    def total_wait(self) -> tuple[float, float]:
        """The least and the most the retries of one request wait in all (seconds)."""
        backoffs = [min(self.max_delay, self.base_delay * (2**a)) for a in range(self.attempts - 1)]
        return sum(backoffs) / 2, sum(backoffs)


def _error_for(status: int, body: bytes, method: str, path: str) -> APIError:
    reason, message = "", body[:300].decode("utf-8", "replace")
    details: dict[str, Any] = {}
    token = ""
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict):
            reason = str(doc.get("reason", ""))
            message = str(doc.get("message", message))
            if isinstance(doc.get("details"), dict):
                details = doc["details"]
            meta = doc.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("continue"), str):
                token = meta["continue"]
    except orjson.JSONDecodeError:
        pass
    cls: type[APIError] = {404: NotFound, 409: Conflict, 422: Invalid}.get(status, APIError)
    return cls(status, reason or _REASONS.get(status, "Error"), message, method=method, path=path,
               details=details, continue_token=token)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


#: How much of an answer :meth:`Client.request` decodes.
Answer = Literal["object", "identity", "none"]


class _Identity(TypedDict, total=False):
    uid: str
    name: str
    namespace: str
    resourceVersion: str


class _Identified(TypedDict, total=False):
    kind: str
    apiVersion: str
    metadata: _Identity


_decode_identity: Final = msgspec.json.Decoder(_Identified).decode


def _encode(body: Obj | list[Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError as exc:  # nested deeper than orjson's 255 levels, which the API server accepts
        if "Recursion limit" not in str(exc):  # (a bytes value: only a hand-made or imported file holds one)
            raise InputError(f"not a valid Kubernetes object: it holds a value JSON cannot carry ({exc})") from None
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError:
        raise InputError("an object is nested more deeply than kwoksnap can send (about 1,000 levels of maps and "
                         "lists)") from None


def repeatable(method: str, content_type: str, body: Any) -> bool:
    """Whether sending a request twice leaves what sending it once does (or is refused the second time).

    Reads and replaces are; merge and strategic patches set fields to values; a create that names its object is
    refused as AlreadyExists the second time, a delete that names its object's UID as NotFound or Conflict. A JSON
    patch is not (``add`` to ``/list/-`` appends again), nor a create that leaves the name to the server
    (``generateName``: a second object), nor a delete by name alone (a controller may have made the object again
    meanwhile: the second delete would take that one)."""
    if method == "PATCH":
        return content_type != JSON_PATCH
    if method in ("POST", "DELETE"):
        if not isinstance(body, dict):
            return False
        if method == "DELETE":
            preconditions = body.get("preconditions")
            return isinstance(preconditions, dict) and bool(preconditions.get("uid"))
        meta = body.get("metadata")
        return isinstance(meta, dict) and bool(meta.get("name"))
    return True


class Client:
    """Thread-safe raw client. ``pool_size`` should be at least the number of threads using it."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        pool_size: int = 16,
        timeout: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str = f"{FIELD_MANAGER}/{__version__}",
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.config = config
        self.retry = retry
        # cancel(): the waits between retries end at once, and no retry follows
        self._cancelled = threading.Event()
        self._sleep = sleep if sleep is not None else self._cancelled.wait
        headers = {"Accept": JSON, "User-Agent": user_agent}
        # Sent with each request, not fixed in the pool: a token that expires (an exec plugin's, a projected
        # service-account token) is fetched again after a 401 (ClusterConfig.refresh).
        self._authorization = config.authorization
        self._auth_lock = threading.Lock()
        # A refresh that brought nothing new (a revoked token) is not tried again for REFRESH_PAUSE seconds: 32
        # workers refused at once would otherwise run an exec plugin 32 times in a row. Its error is kept to tell.
        self._refresh_spent = -math.inf
        self._refresh_problem = ""
        tls: ssl.SSLContext | None = None
        if config.server.startswith("https"):
            try:
                if config.verify_ssl:
                    tls = ssl.create_default_context(cafile=config.ca_file)
                else:
                    tls = ssl.create_default_context()
                    tls.check_hostname = False
                    tls.verify_mode = ssl.CERT_NONE
                if config.cert_file:
                    tls.load_cert_chain(config.cert_file, config.key_file)
            except (ssl.SSLError, OSError) as exc:  # a CA file that is not one, a key that does not match its cert
                raise ClusterError(f"the kubeconfig's TLS files cannot be used: {exc}") from None
        self._pool = Pool(config.server, maxsize=pool_size, timeout=timeout, tls=tls,
                          server_hostname=config.tls_server_name, headers=headers)
        log.info("server %s%s, %s", config.server, f" (context {config.context})" if config.context else "",
                 "with credentials" if config.authorization or config.cert_file else "anonymous")
        self._lock = threading.Lock()
        self.requests = 0  # counted for reports and benchmarks
        self.retries = 0
        self._local = threading.local()  # requests sent by each thread: what one replayed action cost
        # Until the server has answered once, a connection that fails is most likely no server at all (a wrong
        # --kubeconfig/--context, a stopped cluster): the long retries that ride through a restart wait only then.
        self._answered = False

    def thread_requests(self) -> int:
        """HTTP requests (retries included) sent so far by the calling thread."""
        return int(getattr(self._local, "count", 0))

    def warm(self, connections: int) -> int:
        """Open up to ``connections`` keep-alive connections ahead of a burst; see :meth:`Pool.warm`."""
        try:
            return self._pool.warm(connections)
        except TransportFailure as exc:
            raise TransportError(str(exc)) from None

    def close(self) -> None:
        self._pool.close()

    def cancel(self) -> None:
        """No more retries: a request waiting to be retried (a server restarting, 5xx) fails at once with its last
        error, and so does any later failure. For a command stopping on Ctrl-C whose requests have nothing left to
        finish (``save``'s lists), so that it does not ride out up to 30 s of retries first."""
        self._cancelled.set()

    def abort(self) -> None:
        """:meth:`cancel`, and the requests in flight fail at once, their connections cut (Pool.abort): for a command
        stopping whose requests have nothing left to finish, where one waiting for a server that never answers
        would hold the stop for its read timeout."""
        self.cancel()
        self._pool.abort()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- core -------------------------------------------------------------------------------------------------

    def raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: bytes | None = None,
        content_type: str = JSON,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        repeatable: bool = True,
    ) -> Response:
        """One request with retries; returns the 2xx response or raises an :class:`APIError`/TransportError.

        Not ``repeatable`` (applying it twice differs from once): retried only after a failure the server cannot
        have acted on (no connection, a request not wholly sent, 429); a timeout, a broken answer or a 5xx raises.
        """
        policy = retry or self.retry
        target = path + (("?" + urlencode(params)) if params else "")
        attempt = 0
        first = time.monotonic()
        refreshed = False
        uncertain = False  # an earlier attempt may have been acted on (APIError.resent)
        debug = log.isEnabledFor(logging.DEBUG)
        while True:
            started = attempt_began = time.monotonic()
            with self._lock:
                self.requests += 1
            self._local.count = getattr(self._local, "count", 0) + 1
            headers = {} if body is None else {"Content-Type": content_type}
            sent_authorization = self._authorization
            if sent_authorization:
                headers["Authorization"] = sent_authorization
            try:
                resp = self._pool.request(method, target, body=body, headers=headers, timeout=timeout,
                                          repeatable=repeatable)
            except TransportFailure as exc:
                if debug:
                    log.debug("%s %s: %s (%.0f ms)", method, target, exc, 1000 * (time.monotonic() - started))
                if not self._answered and attempt + 1 >= FIRST_CONTACT_ATTEMPTS:
                    raise TransportError(f"{method} {path}: {exc} (no answer from {self.config.server} yet: is "
                                         "the cluster running, and the one --kubeconfig/--context name?)") from None
                if exc.sent and not repeatable:
                    raise TransportError(f"{method} {path}: {exc} ({_NOT_REPEATED})") from None
                err: Exception = TransportError(f"{method} {path}: {exc}")
                uncertain = uncertain or exc.sent
                wait = policy.delay(attempt)
            else:
                self._answered = True
                if debug:
                    log.debug("%s %s -> %d (%.0f ms)", method, target, resp.status,
                              1000 * (time.monotonic() - started))
                if resp.status < 300:
                    return resp
                if resp.status == 401 and not refreshed and self._refresh_authorization(sent_authorization):
                    log.info("%s %s: 401 Unauthorized; the credentials were fetched again", method, path)
                    refreshed = True  # once per request: a new token that is refused too is the answer
                    continue
                err = _error_for(resp.status, resp.data, method, path)
                assert isinstance(err, APIError)
                err.resent = uncertain or resp.resent
                uncertain = uncertain or resp.status >= 500
                if resp.status == 401 and self._refresh_problem:
                    raise ClusterError(f"{err} (the credentials could not be fetched again: "
                                       f"{self._refresh_problem})") from None
                if not err.retryable:
                    raise err
                if resp.status != 429 and not repeatable:
                    raise type(err)(err.status, err.reason, f"{err.api_message} ({_NOT_REPEATED})", method=method,
                                    path=path, details=err.details) from None
                wait = policy.delay(attempt)
                retry_after = resp.headers.get("retry-after")
                if resp.status == 429 and retry_after and retry_after.isdigit():
                    wait = max(wait, min(float(retry_after), policy.max_delay))
            attempt += 1
            if (attempt >= policy.attempts or self._cancelled.is_set()
                    or time.monotonic() + wait - first > policy.give_up_after):
                raise err
            with self._lock:
                self.retries += 1
            # Said without -v when a server that never answered kept the attempt waiting (black-box finding: one
            # that accepts and never speaks TLS kept `save` silent for 4 minutes); a refused connection is quick.
            slow = not self._answered and time.monotonic() - attempt_began > SLOW_FIRST_CONTACT
            (log.warning if slow else log.info)("retrying in %.1f s (attempt %d of %d): %s", wait, attempt + 1,
                                                policy.attempts if self._answered
                                                else min(policy.attempts, FIRST_CONTACT_ATTEMPTS), err)
            self._sleep(wait)
            if self._cancelled.is_set():
                raise err

    def watch(self, path: str, params: Mapping[str, str | int], stop: threading.Event,
              poll: float = 1.0) -> Iterator[Obj]:
        """The events of a watch (``{"type", "object"}``) as they come, until the server ends it (its
        ``timeoutSeconds``) or ``stop`` is set. Not retried: the caller resumes from the last resourceVersion it
        saw. A refusal is an :class:`APIError` (410 Expired: the resourceVersion is too old, list again). With a
        ``timeoutSeconds``, a watch that has not ended :data:`WATCH_GRACE` seconds after it, nor sent a byte, is
        a TransportError (black-box finding: a connection that went silent, a network dropping what it carries,
        was waited on for ever, its changes lost without a word)."""
        target = path + "?" + urlencode({**params, "watch": "true"})
        limit = params.get("timeoutSeconds")
        idle = float(limit) + WATCH_GRACE if limit is not None else None
        refreshed = False
        while True:
            sent = self._authorization
            headers = {"Authorization": sent} if sent else {}
            with self._lock:
                self.requests += 1
            try:
                response, lines = self._pool.stream(target, stop=stop, headers=headers, poll=poll, idle=idle)
            except TransportFailure as exc:
                raise TransportError(f"GET {path} (watch): {exc}") from None
            if lines is not None:
                break
            if response.status == 401 and not refreshed and self._refresh_authorization(sent):
                refreshed = True
                continue
            raise _error_for(response.status, response.data, "GET", path)
        self._answered = True
        log.debug("GET %s (watch) -> 200", target)
        try:
            for line in lines:
                if line.strip():
                    event = orjson.loads(line)
                    if isinstance(event, dict):
                        yield event
        except TransportFailure as exc:
            raise TransportError(f"GET {path} (watch): {exc}") from None
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"GET {path} (watch): a line that is not JSON: {exc}") from None

    def _refresh_authorization(self, sent: str | None) -> bool:
        """After a 401: fetch the credentials again (an expired token), unless another thread already did since
        ``sent`` went out. True when there is something new to send."""
        refresh = self.config.refresh
        if refresh is None:
            return False
        with self._auth_lock:  # not self._lock, which every request takes: a slow exec plugin stalls only 401s
            if self._authorization != sent:
                return True
            if time.monotonic() - self._refresh_spent < REFRESH_PAUSE:
                return False
            try:
                fresh = refresh()
                self._refresh_problem = ""
            except Exception as exc:  # an exec plugin that fails, a kubeconfig gone: said with the 401
                self._refresh_problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                fresh = None
            if not fresh or fresh == sent:
                self._refresh_spent = time.monotonic()
                return False
            self._authorization, self._refresh_problem = fresh, ""
            return True

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Obj | list[Any] | bytes | None = None,
        content_type: str = JSON,
        retry: RetryPolicy | None = None,
        answer: Answer = "object",
    ) -> Obj:
        """One request (:meth:`raw`), its body encoded and its answer decoded as ``answer`` says: ``"object"``
        whole; ``"identity"`` only ``kind``, ``apiVersion`` and the metadata's ``uid``, ``name``, ``namespace`` and
        ``resourceVersion`` (what a writer that only notes which object it wrote needs: decoding a pod's ~3 KB
        answer whole costs four times as much: 1.5 against 5.8 µs, about 7% of a replay's own CPU at ``--speed max``);
        ``"none"``: not decoded, ``{}``."""
        data = _encode(body) if body is not None and not isinstance(body, bytes) else body
        resp = self.raw(method, path, params=params, body=data, content_type=content_type, retry=retry,
                        repeatable=repeatable(method, content_type, body))
        payload = resp.data
        if not payload or answer == "none":
            return {}
        if answer == "identity":
            try:
                return cast(Obj, _decode_identity(payload))  # (a plain dict of those keys)
            except (msgspec.MsgspecError, RecursionError):  # not an object, odd metadata: decoded whole, as any other
                pass
        out = orjson.loads(payload)
        return out if isinstance(out, dict) else {"items": out}

    def get(self, path: str, **params: str | int) -> Obj:
        return self.request("GET", path, params=params or None)

    def create(self, path: str, obj: Obj, *, answer: Answer = "object", **params: str | int) -> Obj:
        return self.request("POST", path, body=obj, params=params or None, answer=answer)

    def replace(self, path: str, obj: Obj, *, answer: Answer = "object", **params: str | int) -> Obj:
        return self.request("PUT", path, body=obj, params=params or None, answer=answer)

    def patch(self, path: str, patch: Obj | list[Any], content_type: str = MERGE_PATCH, *, answer: Answer = "object",
              **params: str | int) -> Obj:
        return self.request("PATCH", path, body=patch, content_type=content_type, params=params or None,
                            answer=answer)

    def delete(self, path: str, body: Obj | None = None, **params: str | int) -> Obj:
        return self.request("DELETE", path, body=body, params=params or None)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except NotFound:
            return False
        return True

    # -- lists --------------------------------------------------------------------------------------------------

    def list_pages(
        self, path: str, *, limit: int = 500, params: Mapping[str, str | int] | None = None
    ) -> Iterator[Obj]:
        """Yield each page of a paginated list (the raw List dict, ``items`` included).

        An expired continue token (410: etcd compacted the list's revision while the pages were read) goes on with
        the token the API server's answer offers (the rest is then listed at a newer revision, as kubectl does);
        without one it restarts the list from the beginning; both at most ``LIST_RESTARTS`` times (a list slower
        than etcd's compaction would expire for ever). Callers that must not see an item twice after a restart use
        :meth:`list_items`, or de-duplicate at ``{"kind": "Restart"}`` as it does.
        """
        base = dict(params or {})
        token = ""
        restarts = 0
        while True:
            query: dict[str, str | int] = {**base, "limit": limit}
            if token:
                query["continue"] = token
            try:
                page = self.request("GET", path, params=query)
            except APIError as exc:
                if exc.status == 410 and token and exc.continue_token and restarts < LIST_RESTARTS:
                    restarts += 1
                    log.info("%s: the list's continue token expired; going on with the one offered (the rest is "
                             "listed at a newer revision)", path)
                    token = exc.continue_token
                    continue
                if exc.status == 410 and token and restarts < LIST_RESTARTS:
                    restarts += 1
                    token = ""
                    yield {"kind": "Restart", "items": []}
                    continue
                raise
            yield page
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return

    def list_items(
        self, path: str, *, limit: int = 500, params: Mapping[str, str | int] | None = None
    ) -> Iterator[tuple[Obj, Obj]]:
        """Yield ``(item, list_metadata)`` for every item of a (paginated) list, each item exactly once."""
        seen: set[tuple[str, str]] | None = None
        keys: list[tuple[str, str]] = []
        for page in self.list_pages(path, limit=limit, params=params):
            if page.get("kind") == "Restart":
                seen = set(keys)
                continue
            meta = page.get("metadata") or {}
            for item in page.get("items") or []:
                m = item.get("metadata") or {}
                key = (m.get("namespace", ""), m.get("name", ""))
                if seen is not None and key in seen:
                    continue
                keys.append(key)
                yield item, meta
