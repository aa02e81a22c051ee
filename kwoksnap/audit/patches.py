"""Guess the content type of a recorded PATCH, which the audit log does not record.

Why this module exists: the API server logs a patch's raw body as ``requestObject`` but not its ``Content-Type``,
and the same body means different things as a JSON merge patch, a strategic merge patch or a server-side apply
configuration. A replay that sends a recorded patch (the only option at Request level, e.g. GKE's kubelet status
patches) must pick one; this module holds the heuristics in one place (documented in docs/audit.md).

It must never modify the event and never raise on odd bodies: it always answers one of the four types for a patch.
"""

from __future__ import annotations

from typing import Any, Final, Literal
from urllib.parse import parse_qs

from kwoksnap.audit.events import AuditEvent
from kwoksnap.errors import UsageError
from kwoksnap.kube.builtin import BUILTIN_GROUPS

__all__ = ["PatchType", "infer_patch_type"]

PatchType = Literal["json", "merge", "strategic", "apply"]


# Strategic-merge directives: exact keys, and key prefixes ("$setElementOrder/conditions").
_SMP_KEYS: Final = frozenset({"$patch", "$retainKeys", "$deleteFromPrimitiveList", "$setElementOrder"})
_SMP_PREFIXES: Final = ("$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys")
_MAX_WALK: Final = 100_000  # nodes visited at most when looking for directives in a (possibly huge) body


def _has_smp_directive(body: Any) -> bool:
    stack = [body]
    seen = 0
    while stack and seen < _MAX_WALK:
        node = stack.pop()
        seen += 1
        if type(node) is dict:
            for key, value in node.items():
                if type(key) is str and key.startswith("$") and (key in _SMP_KEYS or key.startswith(_SMP_PREFIXES)):
                    return True
                if type(value) in (dict, list):
                    stack.append(value)
        elif type(node) is list:
            stack.extend(v for v in node if type(v) in (dict, list))
    return False


def _query(uri: str) -> dict[str, list[str]]:
    _, _, query = uri.partition("?")
    return parse_qs(query) if query else {}


def _applied_by(response: Any, manager: str) -> bool:
    """True if the resulting object's managedFields show an ``Apply`` by ``manager`` and no ``Update`` by it.

    (A manager with both entries applied once and patched since: the entry does not tell which this event was.)
    """
    if type(response) is not dict:
        return False
    meta = response.get("metadata")
    fields = meta.get("managedFields") if type(meta) is dict else None
    if type(fields) is not list:
        return False
    operations = {f.get("operation") for f in fields if type(f) is dict and f.get("manager") == manager}
    return operations == {"Apply"}


def infer_patch_type(event: AuditEvent) -> PatchType:
    """``"json"``, ``"merge"``, ``"strategic"`` or ``"apply"`` for a ``patch`` event (``UsageError`` otherwise).

    In order: a JSON array is a JSON patch; ``force`` in the query, or a ``fieldManager`` (other than a client-side
    apply one) with ``apiVersion`` and ``kind`` in the body, or an ``Apply`` entry of that manager in the response's
    managedFields, is server-side apply; strategic-merge directives (``$setElementOrder/...``, ``$patch``,
    ``$retainKeys``, ``$deleteFromPrimitiveList/...``) anywhere mean strategic merge; a kubelet (``system:node:*``)
    status patch is strategic merge; JSON merge patch for custom resources (which do not support strategic merge);
    kubectl's client-side apply (its field manager, or the last-applied annotation in the body) is strategic
    merge; for built-in groups, what the resulting object says of the patch's lists (:func:`_said_by_lists`: merge
    when every list came out exactly as the patch wrote it), else strategic merge.
    """
    if event["verb"] != "patch":
        raise UsageError(f"infer_patch_type: {event['source']} is a {event['verb']!r}, not a patch")
    body = event["request"]
    if type(body) is list:
        return "json"
    query = _query(event["uri"])
    manager = (query.get("fieldManager") or [""])[0]
    if "force" in query:
        return "apply"  # the API server accepts `force` only with apply patches
    if manager and not manager.endswith("client-side-apply"):
        if type(body) is dict and "apiVersion" in body and "kind" in body:
            return "apply"
        if _applied_by(event["response"], manager):
            return "apply"
    if _has_smp_directive(body):
        return "strategic"
    if event["user"].startswith("system:node:") and event["subresource"] == "status":
        return "strategic"
    if event["group"] not in BUILTIN_GROUPS:
        return "merge"
    if manager.endswith("client-side-apply") or _last_applied(body):
        return "strategic"  # kubectl apply (client-side) patches built-in kinds with a strategic merge patch
    said = _said_by_lists(body, event["response"])
    return said if said is not None else "strategic"


def _last_applied(body: Any) -> bool:
    meta = body.get("metadata") if type(body) is dict else None
    annotations = meta.get("annotations") if type(meta) is dict else None
    return type(annotations) is dict and "kubectl.kubernetes.io/last-applied-configuration" in annotations


def _said_by_lists(body: Any, response: Any) -> PatchType | None:
    """What the resulting object says of a patch's lists, where merge and strategic merge differ (on maps they do
    the same): a merge patch replaces a list whole, so the result holds exactly the patch's list; a strategic one
    merges lists with a merge strategy (finalizers, schedulingGates, containers by name), so the result can hold
    more, or items the patch only touched (an image changed in place: the container keeps its other fields).
    Merge only if every list came out exactly as the patch wrote it (a missing list counts as an empty one);
    strategic if some list came out otherwise; None without lists or a result (Request level) to tell."""
    if type(body) is not dict or type(response) is not dict:
        return None
    found: PatchType | None = None
    stack: list[tuple[dict[str, Any], Any]] = [(body, response)]
    seen = 0
    while stack and seen < _MAX_WALK:
        patch, result = stack.pop()
        seen += 1
        for key, value in patch.items():
            got = result.get(key) if type(result) is dict else None
            if type(value) is dict:
                stack.append((value, got))
            elif type(value) is list:
                if value != (got if type(got) is list else []):
                    return "strategic"
                found = "merge"
    return found
