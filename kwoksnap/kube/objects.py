"""Facts about Kubernetes objects that several stages share and the layers keep apart (capture, restore and diff
may not import each other's rules): what the service-account token controller writes into a token Secret.

Why this module exists: ``save`` never keeps a token Secret's live token, ``restore`` leaves the target's controller
to mint it, and ``diff`` does not compare it; the three must agree on which keys those are.
"""

from __future__ import annotations

from typing import Final

SA_TOKEN_TYPE: Final = "kubernetes.io/service-account-token"
# Written by the token controller, each cluster its own: the token, the cluster's CA, the namespace.
MINTED_TOKEN_KEYS: Final = frozenset({"token", "ca.crt", "namespace"})
# The name and UID of the ServiceAccount it belongs to: the controller deletes a token Secret naming another, or
# one that does not exist.
SA_NAME_ANNOTATION: Final = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION: Final = "kubernetes.io/service-account.uid"
# The label the API server writes on a token Secret when its token is used: a record of use, not a change.
TOKEN_LAST_USED_LABEL: Final = "kubernetes.io/legacy-token-last-used"
