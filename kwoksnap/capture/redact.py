"""Redaction of Secret values, on by default: a snapshot must be safe to attach to a bug report.

Keys are kept (workloads reference them); every value becomes the same placeholder, so nothing of it is left, not
even its length, and the ``last-applied-configuration`` annotation (which repeats the values) is dropped. Keys the
API server validates get a placeholder it accepts (``.dockerconfigjson``/``.dockercfg``: ``{}``), so a redacted
snapshot still restores. The ``kwoksnap.io/redacted`` annotation marks such a Secret: restore never writes it over
an existing one, and diff never compares Secret values at all. Service-account token Secrets are saved as any other
(since Kubernetes 1.24 only a user makes them; restore leaves their token for the target to mint). (Snapshots
written before this rule hold ``*`` repeated to each value's length.)
Audit events of Secrets get the same treatment (:func:`redact_secret_body`): their bodies are whole Secrets or
patches of one, and a recording or a replay must not carry the values either; so do the bearer tokens of
TokenRequests and TokenReviews (:func:`redact_token_body`) and mutating webhooks' patches of a Secret, which the API
server logs as audit annotations (:func:`redact_audit_annotations`).
"""

from __future__ import annotations

import base64
from typing import Any, Final

import orjson

REDACTED_ANNOTATION = "kwoksnap.io/redacted"  # the snapshot format's mark (docs/format.md); restore reads it
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PLACEHOLDER = b"redacted-by-kwoksnap"
JSON_KEYS = frozenset({".dockerconfigjson", ".dockercfg"})  # the API server checks that these hold JSON


def _placeholder(key: str) -> bytes:
    return b"{}" if key in JSON_KEYS else PLACEHOLDER


def holds_placeholders(secret: dict[str, Any]) -> bool:
    """Whether a Secret (as the API server answers it: ``data`` base64) still holds a value :func:`redact_secret`
    put there."""
    data = secret.get("data")
    if not isinstance(data, dict):
        return False
    return any(v == base64.b64encode(_placeholder(k)).decode() for k, v in data.items())


def redact_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of the secret with every value replaced (an empty one stays empty: it holds nothing to hide, and a
    placeholder would make it look set); marks it with the ``kwoksnap.io/redacted`` annotation."""
    out = dict(secret)
    if isinstance(secret.get("data"), dict):
        out["data"] = {k: base64.b64encode(_placeholder(k)).decode() if v else v for k, v in secret["data"].items()}
    if isinstance(secret.get("stringData"), dict):
        out["stringData"] = {k: _placeholder(k).decode() if v else v for k, v in secret["stringData"].items()}
    for field in ("data", "stringData"):  # (of another type: a malformed input's; nothing of it is kept)
        if secret.get(field) and not isinstance(secret[field], dict):
            out[field] = PLACEHOLDER.decode()
    # (metadata or annotations of another type: only a malformed audit line has them, and nothing of them is kept)
    meta = dict(out["metadata"]) if isinstance(out.get("metadata"), dict) else {}
    annotations = dict(meta["annotations"]) if isinstance(meta.get("annotations"), dict) else {}
    annotations.pop(LAST_APPLIED, None)
    annotations[REDACTED_ANNOTATION] = "true"
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def _redact_op(op: dict[str, Any]) -> dict[str, Any] | None:
    """One JSON-patch operation on a Secret with its values replaced (``None``: drop it, it sets the annotation
    that repeats the values)."""
    path = op.get("path")
    if not isinstance(path, str) or "value" not in op:
        return op
    parts = [_unescape(p) for p in path.split("/")]
    parts = parts[1:] if parts[0] == "" else parts  # (a path without its leading '/': refused, but not kept in clear)
    if parts[:3] == ["metadata", "annotations", LAST_APPLIED]:
        return None
    if parts == ["metadata", "annotations"] and isinstance(op["value"], dict):
        return {**op, "value": {k: v for k, v in op["value"].items() if k != LAST_APPLIED}}
    if parts == ["metadata"] and isinstance(op["value"], dict) and isinstance(op["value"].get("annotations"), dict):
        annotations = {k: v for k, v in op["value"]["annotations"].items() if k != LAST_APPLIED}
        return {**op, "value": {**op["value"], "annotations": annotations}}
    if parts and parts[0] in ("data", "stringData"):
        encode = parts[0] == "data"
        value = op["value"]
        if len(parts) == 1 and isinstance(value, dict):
            value = _redacted_values(value, encode)
        elif value is not None and value != "":  # (an empty one stays empty, as in a whole Secret: a `test` of it;
            value = _encoded(parts[1] if len(parts) > 1 else "", encode)  # anything else under /data: replaced)
        return {**op, "value": value}
    if parts in ([], [""]) and isinstance(op["value"], dict):  # the whole object replaced
        return {**op, "value": redact_secret_body(op["value"])}
    return op


def _redacted_values(values: dict[str, Any], base64_encoded: bool) -> dict[str, Any]:
    """A patch's ``data`` or ``stringData`` with its values replaced; ``null`` (remove the key) and ``""`` stay, and
    so do strategic-merge directives (``$patch: replace``, ``$retainKeys``...: no value of the Secret's, and the
    API server refuses a placeholder in their place)."""
    return {k: v if v is None or v == "" or k in _DIRECTIVES or k.startswith(_DIRECTIVE_PREFIXES)
            else _encoded(k, base64_encoded) for k, v in values.items()}


_DIRECTIVES: Final = frozenset({"$patch", "$retainKeys"})  # strategic-merge directives a map can hold
_DIRECTIVE_PREFIXES: Final = ("$setElementOrder/", "$deleteFromPrimitiveList/")


def _encoded(key: str, base64_encoded: bool) -> str:
    raw = _placeholder(key)
    return base64.b64encode(raw).decode() if base64_encoded else raw.decode()


def redact_secret_body(body: Any) -> Any:
    """An audit event's request or response body for a Secret with every value replaced: a whole Secret (create,
    update, apply, the response) as :func:`redact_secret` does; a merge or strategic-merge patch's ``data`` and
    ``stringData`` values; a JSON patch's operations on them. ``null`` values (a patch removing a key) stay.
    Anything else (a Status, DeleteOptions, ``None``) is returned as it is."""
    if isinstance(body, str):  # (a JSON string some pipeline re-exported: its map or list, else the placeholder)
        decoded = decoded_body(body)
        return decoded if isinstance(decoded, str) else redact_secret_body(decoded)
    if isinstance(body, list):
        ops = [_redact_op(op) if isinstance(op, dict) else op for op in body]
        return [op for op in ops if op is not None]
    if not isinstance(body, dict):
        return body
    if body.get("kind") == "Secret":
        return redact_secret(body)
    if isinstance(body.get("items"), list):  # a SecretList (a deletecollection's answer; any kind, or none, of list)
        return {**body, "items": [redact_secret(i) if isinstance(i, dict) else i for i in body["items"]]}
    meta: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    annotations: dict[str, Any] = meta["annotations"] if isinstance(meta.get("annotations"), dict) else {}
    values = [f for f in ("data", "stringData") if body.get(f) is not None]
    if not values and LAST_APPLIED not in annotations:
        return body
    out = dict(body)
    for field in values:
        value = body[field]  # (of another type than a map: a malformed patch's; replaced whole)
        out[field] = _redacted_values(value, field == "data") if isinstance(value, dict) else PLACEHOLDER.decode()
    annotations = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    if values:
        annotations[REDACTED_ANNOTATION] = "true"  # the patched Secret now holds placeholders: mark it
    out["metadata"] = {**meta, "annotations": annotations}
    return out


def is_secrets(group: str, resource: str) -> bool:
    """Whether an event's or a record's ``group`` and plural ``resource`` are the core group's Secrets, generously:
    the core group also as ``core`` (some exports say so, and `apiVersion: core/v1`), any letter case."""
    return resource.lower() == "secrets" and group in ("", "core")


def redact_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A record of ``kwoksnap import`` (kwokctl YAML) with a Secret's values replaced: an object as
    :func:`redact_secret` does, an event's object or patch as :func:`redact_secret_body`. Any other record, and a
    Secret that holds no value, is returned as it is (the same object: not counted as redacted)."""
    parts = str(rec.get("resource", "")).split("/")  # version/plural, group/version/plural
    body = rec.get("object")
    if not is_secrets(parts[0] if len(parts) == 3 else "", parts[-1]) and not (
            isinstance(body, dict) and body.get("kind") == "Secret"):  # (a Secret under another resource: by kind)
        return rec
    if rec.get("type") == "object":
        secret = rec["object"]
        annotations = secret["metadata"].get("annotations")
        if not (secret.get("data") or secret.get("stringData")
                or (isinstance(annotations, dict) and LAST_APPLIED in annotations)):
            return rec
        return {**rec, "object": redact_secret(secret)}
    if rec.get("type") == "event" and ("object" in rec or "patch" in rec):
        return {**rec, **{k: redact_secret_body(rec[k]) for k in ("object", "patch") if k in rec}}
    return rec


def decoded_body(body: Any) -> Any:
    """An audit event's body that some log pipeline re-exported as a JSON string: its JSON map or list, or the
    placeholder when it is none (nothing of a Secret's string body is kept); any other body as it is."""
    if not isinstance(body, str):
        return body
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return PLACEHOLDER.decode()
    return decoded if isinstance(decoded, (dict, list)) else PLACEHOLDER.decode()


def redact_token_body(body: Any) -> Any:
    """A TokenRequest's or TokenReview's body (``serviceaccounts/token``, ``tokenreviews``) with its bearer token
    replaced: ``status.token`` and ``spec.token``, live credentials a RequestResponse audit policy records."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for field in ("status", "spec"):
        part = body.get(field)
        if isinstance(part, dict) and part.get("token"):
            out[field] = {**part, "token": PLACEHOLDER.decode()}
    return out


WEBHOOK_PATCH_ANNOTATION = "patch.webhook.admission.k8s.io/"  # + round_N_index_M: a mutating webhook's patch


def redact_audit_annotations(annotations: dict[str, str]) -> dict[str, str]:
    """An event's audit annotations without the patches mutating webhooks made (of a Secret: they hold values)."""
    return {k: PLACEHOLDER.decode() if str(k).startswith(WEBHOOK_PATCH_ANNOTATION) else v
            for k, v in annotations.items()}
