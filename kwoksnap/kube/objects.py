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
from typing import Any, Final

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
    quotes: those of ``body``'s ``data`` (as written, base64, and decoded) and ``stringData``. Values shorter than
    4 characters are left (they would replace ordinary words)."""
    if not isinstance(body, dict):
        return message
    values: set[str] = set()
    for field in ("data", "stringData"):
        held = body.get(field)
        for value in held.values() if isinstance(held, dict) else ():
            if not isinstance(value, str):
                continue
            values.add(value)
            if field == "data":
                with contextlib.suppress(binascii.Error, ValueError):
                    values.add(base64.b64decode(value, validate=True).decode())
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):  # (a value within another)
        message = message.replace(value, SCRUBBED)
    return message
