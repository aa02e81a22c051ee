"""Redaction of Secret values, on by default: a snapshot must be safe to attach to a bug report.

Keys are kept (workloads reference them), each value is replaced by a marker of the original decoded length, so
sizes and key sets still diff, and the ``last-applied-configuration`` annotation (which repeats the values) is
dropped. Service-account token secrets are never saved at all: they are minted per cluster.
"""

from __future__ import annotations

import base64
from typing import Any

REDACTED_ANNOTATION = "kwoksnap.io/redacted"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MARKER = b"*"  # each redacted value decodes to this byte repeated to the original length


def is_service_account_token(secret: dict[str, Any]) -> bool:
    return secret.get("type") == "kubernetes.io/service-account-token"


def _decoded_length(value: object) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=False))
    except (ValueError, TypeError):
        return len(value)


def redact_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of the secret with every value replaced; marks it with the ``kwoksnap.io/redacted`` annotation."""
    out = dict(secret)
    if isinstance(secret.get("data"), dict):
        out["data"] = {k: base64.b64encode(MARKER * _decoded_length(v)).decode() for k, v in secret["data"].items()}
    if isinstance(secret.get("stringData"), dict):
        out["stringData"] = {k: "*" * len(str(v)) for k, v in secret["stringData"].items()}
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    annotations[REDACTED_ANNOTATION] = "true"
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out
