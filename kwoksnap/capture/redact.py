"""Redaction of Secret values, on by default: a snapshot must be safe to attach to a bug report.

Keys are kept (workloads reference them); every value becomes the same placeholder, so nothing of it is left, not
even its length, and the ``last-applied-configuration`` annotation (which repeats the values) is dropped. Keys the
API server validates get a placeholder it accepts (``.dockerconfigjson``/``.dockercfg``: ``{}``), so a redacted
snapshot still restores. The ``kwoksnap.io/redacted`` annotation marks such a Secret: restore never writes it over
an existing one, and diff never compares Secret values at all. Service-account token secrets are never saved:
they are minted per cluster. (Snapshots written before this rule hold ``*`` repeated to each value's length.)
"""

from __future__ import annotations

import base64
from typing import Any

REDACTED_ANNOTATION = "kwoksnap.io/redacted"  # the snapshot format's mark (docs/format.md); restore reads it
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PLACEHOLDER = b"redacted-by-kwoksnap"
JSON_KEYS = frozenset({".dockerconfigjson", ".dockercfg"})  # the API server checks that these hold JSON


def is_service_account_token(secret: dict[str, Any]) -> bool:
    return secret.get("type") == "kubernetes.io/service-account-token"


def _placeholder(key: str) -> bytes:
    return b"{}" if key in JSON_KEYS else PLACEHOLDER


def redact_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of the secret with every value replaced; marks it with the ``kwoksnap.io/redacted`` annotation."""
    out = dict(secret)
    if isinstance(secret.get("data"), dict):
        out["data"] = {k: base64.b64encode(_placeholder(k)).decode() for k in secret["data"]}
    if isinstance(secret.get("stringData"), dict):
        out["stringData"] = {k: _placeholder(k).decode() for k in secret["stringData"]}
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    annotations[REDACTED_ANNOTATION] = "true"
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out
