"""Turn a kubeconfig (file, context, in-cluster) into the few facts the raw client needs.

Why this module exists: the ``kubernetes`` package already handles kubeconfig merging, exec plugins, embedded
certificate data and in-cluster service accounts. We borrow that once and keep only plain values, so the hot path
never touches the package's models. Credentials are held in memory only and never appear in ``repr``/logs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from typing import Any, Final

import yaml

from kwoksnap.errors import ClusterError, UsageError

log = logging.getLogger("kwoksnap.kube")


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_ssl: bool = True
    tls_server_name: str | None = None
    # "Bearer <token>" or "Basic ..."; excluded from repr so it cannot leak into logs or tracebacks.
    authorization: str | None = dataclasses.field(default=None, repr=False)
    context: str | None = None
    # The Authorization header fetched again (the kubeconfig read again: an exec plugin run again, a token file
    # read again), for a client that was refused with 401 because its token expired; None: it cannot change.
    refresh: Callable[[], str | None] | None = dataclasses.field(default=None, repr=False, compare=False)


def _authorization_header(cfg: Any) -> str | None:
    """The Authorization header the ``kubernetes`` client would send: a token from the kubeconfig, a tokenFile, an
    exec plugin or an in-cluster service account. Its ``auth_settings()`` is the one place that knows where each
    version of the package keeps it (37 keeps it as ``api_key["BearerToken"]``, older ones as
    ``api_key["authorization"]`` with a prefix)."""
    for setting in (cfg.auth_settings() or {}).values():
        if setting.get("in") == "header" and str(setting.get("key", "")).lower() == "authorization":
            value = setting.get("value")
            if value:
                return str(value)
    return None


_IN_MEMORY: dict[str, str] = {}  # content -> /proc/self/fd/N of the memfd holding it (this process's life)
_PACKAGE_FILE: list[Callable[..., Any]] = []  # the package's own function, for where memfds cannot be made


def _in_memory(content: str | bytes, temp_file_path: str | None = None, force_recreate: bool = False) -> str:
    """What the ``kubernetes`` package's ``_create_temp_file_with_content`` does, without a file: a kubeconfig's
    embedded client key (``client-key-data``, an exec plugin's ``clientKeyData``), certificate and CA are written to
    a memfd, whose ``/proc/self/fd/N`` path ``ssl`` opens like a file. The package wrote them to files in /tmp,
    removed at exit only: a process killed outright left the client key on disk."""
    key = str(content)
    if not force_recreate and key in _IN_MEMORY:
        return _IN_MEMORY[key]
    data = memoryview(content.encode() if isinstance(content, str) else content)
    try:
        fd = os.memfd_create("kwoksnap-kubeconfig", os.MFD_CLOEXEC)  # (kept open: the path names it)
    except OSError:  # (a kernel or sandbox without memfds: the package's own files, as before)
        return str(_PACKAGE_FILE[0](content, temp_file_path, force_recreate))
    while data:
        data = data[os.write(fd, data):]
    _IN_MEMORY[key] = path = f"/proc/self/fd/{fd}"
    return path


def _keep_credentials_in_memory(kube_config: Any) -> None:
    """Route the package's temporary files of embedded credentials to :func:`_in_memory` (Linux; elsewhere, or in
    a version of the package without that function, its files stay as they were)."""
    own = getattr(kube_config, "_create_temp_file_with_content", None)
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd") and own is not None and own is not _in_memory:
        _PACKAGE_FILE[:] = [own]
        kube_config._create_temp_file_with_content = _in_memory


def _load(kubeconfig: str | None, context: str | None) -> Any:
    """A ``kubernetes`` client Configuration loaded the way kubectl would (``$KUBECONFIG``, ~/.kube/config,
    in-cluster); any problem is a one-line :class:`ClusterError`."""
    from kubernetes import client, config
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    _keep_credentials_in_memory(kube_config)

    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    # The package logs a failing exec credential plugin on the root logger and goes on without credentials (the
    # request then ran as system:anonymous, and the 403 blamed the cluster): its errors are caught here instead.
    plugin_errors: list[str] = []

    def catch(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            plugin_errors.append(record.getMessage())
            return False
        return True

    entry: list[tuple[str, dict[str, Any]]] = []  # the user the kubeconfig names (not for in-cluster)

    def load() -> None:
        if path is None and not os.path.exists(os.path.expanduser("~/.kube/config")) and os.environ.get(
            "KUBERNETES_SERVICE_HOST"
        ):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            files = [os.path.expanduser(p) for p in (path or "").split(os.pathsep) if p]
            if kubeconfig is None and len(files) > 1:  # $KUBECONFIG's list: kubectl skips a file that is not there
                files = [p for p in files if os.path.exists(p) and not _empty(p)]  # (or holds nothing)
            if path and (not files or not all(os.path.exists(p) for p in files)):  # (exit 2, as a missing file
                named = "--kubeconfig" if kubeconfig else "$KUBECONFIG"  # argument is: README's exit codes)
                listed = path.strip(os.pathsep)
                if not listed:
                    raise UsageError(f"{named} {path!r} names no file")
                raise UsageError(f"{named} {path}: " + ("none of its files exists" if os.pathsep in listed
                                                          else "no such file"))
            default = os.path.expanduser("~/.kube/config")
            if path or os.path.exists(default):  # (none at all: the package says so, as before)
                entry[:] = [_user_entry(os.pathsep.join(files) or default, context)]
                _check_user(*entry[0])
            # Of several files the first that names a current context gives it, as for kubectl (the package takes
            # the last: black-box finding, another cluster than kubectl's was written to).
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.pathsep.join(files) or None, context=context or _current_context(files),
                client_configuration=cfg
            )

    shown = path or "~/.kube/config"  # (in messages: it said "cannot load kubeconfig None"; re-test finding)
    root = logging.getLogger()
    root.addFilter(catch)
    try:
        try:
            load()
        except Exception as exc:  # an auth provider's token refresh failing (OIDC over http, its issuer refusing)
            if type(exc).__module__.partition(".")[0] in _AUTH_LIBRARIES:  # (requests' errors are OSErrors, and
                raise _RefreshFailed(type(exc).__name__) from None      # oauthlib's ValueErrors: told apart first)
            raise
    except _RefreshFailed as exc:  # (the type only: such messages may hold what the identity provider answered)
        raise ClusterError(f"cannot load kubeconfig: refreshing its credentials failed ({exc})") from None
    except ConfigException as exc:
        if context and f"Expected object with name {context} " in str(exc):
            raise UsageError(f"--context {context}: the kubeconfig has no such context") from None
        if "No configuration found" in str(exc):  # (the package's words for: no file, no in-cluster service account)
            raise UsageError("no kubeconfig: none given (--kubeconfig), none in $KUBECONFIG, none at ~/.kube/config, "
                             "and not running in a cluster (`kwoksnap cluster kubeconfig --name N` prints a local "
                             "cluster's)") from None
        raise ClusterError(f"cannot load kubeconfig: {exc}") from None
    except yaml.YAMLError as exc:  # the first line says where; the rest repeats the file's text
        raise ClusterError(f"cannot load kubeconfig {shown}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except OSError as exc:  # a directory, no permission, a tokenFile or certificate file that is not there
        if isinstance(exc, PermissionError):  # the system's refusal, exit 7 as for any file (black-box finding)
            raise PermissionError(exc.errno, f"cannot read the kubeconfig's {exc.filename or path}: "
                                  f"{exc.strerror or exc}") from None
        named = f"{exc.filename}: " if exc.filename and str(exc.filename) != str(path) else ""
        raise ClusterError(f"cannot load kubeconfig {shown}: {named}{exc.strerror or exc}") from None
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # YAML of another shape (a list, /etc/passwd)
        if "Invalid IPv6 URL" in str(exc):  # (urllib's, of the server URL: `https://[::1`)
            raise ClusterError("the kubeconfig's server URL is malformed (an IPv6 address not closed by ']', or a "
                               "'[' in a password that is not percent-encoded)") from None
        raise ClusterError(f"cannot load kubeconfig {shown}: not a kubeconfig ({type(exc).__name__}: {exc})") from None
    finally:
        root.removeFilter(catch)
    if plugin_errors:
        first = (plugin_errors[0].strip().splitlines() or [""])[0]
        raise ClusterError(f"cannot load kubeconfig: getting credentials: {first}")
    if entry:
        name, user = entry[0]
        provider = user.get("auth-provider")
        if provider is not None and not _authorization_header(cfg):
            which = provider.get("name") if isinstance(provider, dict) else None
            raise ClusterError(f"the kubeconfig's user {name!r}: its auth-provider {which!r} gave no credentials "
                               "(kwoksnap takes tokens, token files, client certificates and exec plugins such as "
                               "kubelogin)")
    return cfg


def _empty(path: str) -> bool:
    """A kubeconfig file that holds nothing (no bytes, blank lines, a comment, `---`), which kubectl skips in a list
    and the package refuses ("file is empty": re-test finding)."""
    try:
        with open(path, "rb") as f:
            return not yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False  # (said when it is loaded)


def _current_context(files: list[str]) -> str | None:
    """The current context of several kubeconfig files merged as kubectl merges them: the first file's that names
    one (None for one file, or none named: the package's own choice is then kubectl's)."""
    if len(files) < 2:
        return None
    for file in files:
        with open(file, "rb") as f:
            data = yaml.safe_load(f)
        if isinstance(data, dict) and isinstance(data.get("current-context"), str) and data["current-context"]:
            return str(data["current-context"])
    return None


def _user_entry(path: str, context: str | None) -> tuple[str, dict[str, Any]]:
    """The name and ``user`` map of the context's user, merged over the files of ``path`` as kubectl merges
    them (the first file to name a context, a user or the current context wins); ("", {}) if not found."""
    users: dict[str, Any] = {}
    contexts: dict[str, Any] = {}
    current = context
    for file in (p for p in path.split(os.pathsep) if p):
        with open(file, "rb") as f:
            data = yaml.safe_load(f)
        if not isinstance(data, dict):
            continue
        current = current or data.get("current-context")
        for key, into in (("users", users), ("contexts", contexts)):
            for entry in data.get(key) or ():
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    into.setdefault(entry["name"], entry.get("user" if key == "users" else "context"))
    chosen = contexts.get(current) if isinstance(current, str) else None
    name = chosen.get("user") if isinstance(chosen, dict) else None
    user = users.get(name) if isinstance(name, str) else None
    return (name, user) if isinstance(name, str) and isinstance(user, dict) else ("", {})


def _check_user(name: str, user: dict[str, Any]) -> None:
    """Refuse credentials the ``kubernetes`` package drops without a word or misreads (a token that is not a
    string, a client key that is not base64 or has no certificate), as kubectl refuses them: the requests went out
    as system:anonymous, and the 403 blamed the cluster (black-box finding); so does an auth provider that gives
    nothing (checked once loaded). Nothing of a value is said."""
    import base64
    import binascii

    if "token" in user and not isinstance(user["token"], str):
        raise ClusterError(f"the kubeconfig's user {name!r}: its token is a {type(user['token']).__name__}, not a "
                           "string")
    for key in ("client-certificate-data", "client-key-data"):
        value = user.get(key)
        if value is None:
            continue
        try:
            base64.b64decode("".join(str(value).split()), validate=True)
        except (binascii.Error, ValueError):
            raise ClusterError(f"the kubeconfig's user {name!r}: its {key} is not valid base64") from None
    has_cert = any(user.get(k) for k in ("client-certificate", "client-certificate-data"))
    has_key = any(user.get(k) for k in ("client-key", "client-key-data"))
    if has_cert != has_key:
        given, missing = ("certificate", "key") if has_cert else ("key", "certificate")
        raise ClusterError(f"the kubeconfig's user {name!r} has a client {given} but no client {missing}")


# The libraries an auth provider's token refresh goes through: their errors are the refresh failing, not a bug.
_AUTH_LIBRARIES: Final = ("oauthlib", "requests_oauthlib", "requests", "urllib3", "google")


class _RefreshFailed(Exception):
    """An auth provider's token refresh failed; the message is the type of what was raised, nothing of it else."""


def _credentials(cfg: Any) -> str | None:
    """The Authorization header of a loaded Configuration: a bearer token (_authorization_header) or basic auth."""
    auth = _authorization_header(cfg)
    if auth is not None and auth.startswith("Bearer "):  # (a token file's final newline: client-go trims it too)
        auth = "Bearer " + auth[len("Bearer "):].strip()
    if not auth and cfg.username and cfg.password:
        import base64

        auth = "Basic " + base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
    if auth is not None and not _HEADER_VALUE.fullmatch(auth):
        # A line break would add headers of its own to every request; other characters fail to encode. As kubectl
        # ("invalid header field value"), refused, without showing the value.
        raise ClusterError("the kubeconfig's credentials (token) hold a character an HTTP header cannot carry (a "
                           "line break, a control character or a non-ASCII one)")
    return auth


log = logging.getLogger("kwoksnap.kube")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # visible ASCII, space and tab (RFC 9110 field values)


# RFC 3986 authority: unreserved, percent-encoded, sub-delims, ':', '@', and '[...]' for an IPv6 literal
_NETLOC: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]]|%[0-9A-Fa-f]{2})+")


def _without_userinfo(server: str) -> tuple[str, str | None]:
    """The server URL without a ``user:password@`` (which is no part of the Host header, of a log line or of a
    snapshot's header), and the basic credentials it names, which Go's HTTP client (kubectl) sends when nothing else
    is configured. A URL of another scheme (or none), or malformed, is refused without repeating it (it may hold
    that password)."""
    from urllib.parse import unquote, urlsplit

    if not server.startswith(("http://", "https://")):  # (the kubernetes package reads the certificate authority
        scheme = server.partition("://")[0] if "://" in server else ""  # and client certificate of https:// only)
        raise ClusterError(f"the kubeconfig's server is not an http:// or https:// URL (scheme {scheme!r}; "
                           "kwoksnap takes neither another scheme nor none, nor capitals in it)")
    url = urlsplit(server)
    try:
        url.port  # noqa: B018 (a ValueError for a port that is no number)
    except ValueError:
        bad = True
    else:  # (a '\' or a space, which Go refuses: `user:pw@10.0.0.1\@evil` would go to host evil)
        bad = not url.hostname or bool(url.query or url.fragment) or not _NETLOC.fullmatch(url.netloc)
    if bad:  # (a '#', '?' or '/' in a password that is not percent-encoded ends the host part early)
        raise ClusterError("the kubeconfig's server URL is malformed (a host, then an optional :port and path; a "
                           "user:password in it must be percent-encoded)")
    if "@" not in url.netloc:
        return server, None
    import base64

    basic = f"{unquote(url.username or '')}:{unquote(url.password or '')}"
    return without_password(server), "Basic " + base64.b64encode(basic.encode()).decode()


def without_password(server: str) -> str:
    """A server URL without the ``user:password@`` before its host."""
    from urllib.parse import urlsplit

    url = urlsplit(server)
    return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl() if "@" in url.netloc else server


def _warn_about_proxies(cfg: Any, server: str) -> None:
    """kwoksnap connects to the API server directly (its own HTTP client): a proxy kubectl would go through, the
    kubeconfig's ``proxy-url`` or ``HTTPS_PROXY``/``HTTP_PROXY``, is not used, and that is said (never its URL,
    which may hold a password)."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies_environment, proxy_bypass

    url = urlsplit(server)
    environment = getproxies_environment().get(url.scheme)
    named = getattr(cfg, "proxy", None)  # (the kubernetes package puts the environment's there too)
    if named and named != environment:
        log.warning("the kubeconfig names a proxy (proxy-url): kwoksnap does not use proxies and connects to %s "
                    "directly", url.hostname)
    elif environment and not proxy_bypass(url.hostname or ""):
        log.warning("%s_PROXY is set: kwoksnap does not use proxies and connects to %s directly (NO_PROXY "
                    "naming it says so)", url.scheme.upper(), url.hostname)


def load_config(kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """Load the client configuration the way kubectl would (``$KUBECONFIG``, ~/.kube/config, in-cluster)."""
    cfg = _load(kubeconfig, context)

    def refresh() -> str | None:
        # After a 401: everything read again, as a new kubectl would (an exec plugin run again, a token file or an
        # in-cluster token read again, a token renewed in the kubeconfig), not only what the package's refresh
        # hook believes has expired (it knows the expiry of exec-plugin tokens alone). Only for the same server: a
        # `kubectl config use-context` meanwhile must not send another cluster's credentials here.
        again = _load(kubeconfig, context)
        return _credentials(again) if again.host.rstrip("/") == cfg.host.rstrip("/") else None

    server, userinfo = _without_userinfo(cfg.host.rstrip("/"))
    _warn_about_proxies(cfg, server)
    return ClusterConfig(
        server=server,
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        verify_ssl=bool(cfg.verify_ssl),
        tls_server_name=getattr(cfg, "tls_server_name", None),
        authorization=_credentials(cfg) or userinfo,
        context=context,
        refresh=refresh,
    )
