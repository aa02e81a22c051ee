"""Facts about Kubernetes objects that several stages share and the layers keep apart (capture, restore and diff
may not import each other's rules): what the service-account token controller writes into a token Secret, and how
a Secret's values are kept out of what the target said about it.

Why this module exists: ``save`` never keeps a token Secret's live token, ``restore`` leaves the target's controller
to mint it, and ``diff`` does not compare it; the three must agree on which keys those are. ``restore`` and
``replay`` print the target's refusals, which may quote the Secret refused (an admission webhook's message).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any, Final

from kwoksnap.errors import APIError, KwoksnapError

SA_TOKEN_TYPE: Final = "kubernetes.io/service-account-token"
# Written by the token controller, each cluster its own: the token, the cluster's CA, the namespace.
MINTED_TOKEN_KEYS: Final = frozenset({"token", "ca.crt", "namespace"})
# The name and UID of the ServiceAccount it belongs to: the controller deletes a token Secret naming another, or
# one that does not exist.
SA_NAME_ANNOTATION: Final = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION: Final = "kubernetes.io/service-account.uid"
# The label the API server writes on a token Secret when its token is used: a record of use, not a change.
TOKEN_LAST_USED_LABEL: Final = "kubernetes.io/legacy-token-last-used"


SCRUBBED: Final = "(a Secret's value)"


def scrub_secret_values(message: str, body: Any) -> str:
    """``message`` (what the target said about a Secret it refused) without any of the Secret's values that it
    quotes: those of ``body``'s ``data`` (as written, base64, and decoded) and ``stringData``, or of a JSON patch's
    ``value``s; each also JSON-escaped (a message quoting the object) and line by line (a key's PEM). Values shorter
    than 4 characters are left (they would replace ordinary words)."""
    values: set[str] = set()
    for value in _secret_values(body):
        values.add(value)
        with contextlib.suppress(binascii.Error, ValueError):
            values.add(base64.b64decode(value, validate=True).decode())
    for value in list(values):
        values.add(json.dumps(value)[1:-1])
        values.update(line.strip() for line in value.splitlines())
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):  # (a value within another)
        message = message.replace(value, SCRUBBED)
    return message


def scrubbed_error(exc: Exception, body: Any) -> str:
    """The one-line text of ``exc`` (a failed write of a Secret) without the Secret's values: an API server's
    message is scrubbed whole, before it is cut to one line (a value across the cut showed in part)."""
    if isinstance(exc, APIError):
        exc = APIError(exc.status, exc.reason, scrub_secret_values(exc.api_message, body), method=exc.method,
                       path=exc.path)
    text = str(exc) if isinstance(exc, KwoksnapError) else f"{type(exc).__name__}: {exc}"
    return scrub_secret_values(text, body)


def _secret_values(body: Any) -> list[str]:
    """The strings a Secret's body or patch holds as values."""
    if isinstance(body, list):  # a JSON patch: its operations' values
        out: list[str] = []
        for op in body:
            value = op.get("value") if isinstance(op, dict) else None
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict):
                out.extend(v for v in value.values() if isinstance(v, str))
        return out
    if not isinstance(body, dict):
        return []
    return [v for field in ("data", "stringData") if isinstance(body.get(field), dict)
            for v in body[field].values() if isinstance(v, str)]
