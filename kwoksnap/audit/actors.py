"""Who made a request: the kubelet, the scheduler, a controller, kwok, another system component, or a user.

Why this module exists: ``--mode inputs`` replays only what came from *outside* the cluster (humans, CI, operators)
and lets the target's own kubelets (kwok), scheduler and controllers react; verbatim replay wants to know which
events stand in for which component. The classification is a fixed table (documented in docs/audit.md) that users
can override with their own rules, because every cluster has its own operators and naming.

It must never look at request bodies and never depend on anything but the user name, groups and user agent.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from kwoksnap.errors import UsageError

__all__ = ["CONTROLLER_USERS", "Actor", "Classifier", "classify", "doubtful_field", "make_classifier", "parse_rule"]


class Actor(enum.StrEnum):
    """The component an audit event is attributed to. A ``str`` so that it serialises as its value."""

    KUBELET = "kubelet"
    SCHEDULER = "scheduler"
    CONTROLLER = "controller"
    KWOK = "kwok"
    SYSTEM = "system"
    USER = "user"

    @classmethod
    def coerce(cls, value: str | Actor) -> Actor:
        """The Actor named ``value``; :class:`UsageError` listing the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(a.value for a in cls)
            raise UsageError(f"unknown actor {value!r}; expected one of {names}") from None


Classifier = Callable[[str, Sequence[str], str], Actor]

# kube-controller-manager with --use-service-account-credentials (the default in kubeadm, kind, GKE, EKS, AKS)
# acts as system:serviceaccount:kube-system:<name>. Names that end in "-controller" are matched by pattern; these
# are the others, from kube-controller-manager's ClientBuilder calls in Kubernetes 1.36 (plus older names).
CONTROLLER_USERS: Final = frozenset(
    {
        "bootstrap-signer",
        "controller-discovery",
        "generic-garbage-collector",
        "horizontal-pod-autoscaler",
        "kube-apiserver-serving-clustertrustbundle-publisher",
        "legacy-service-account-token-cleaner",
        "persistent-volume-binder",
        "pod-garbage-collector",
        "podcertificaterequestcleaner",
        "root-ca-cert-publisher",
        "shared-informers",
        "storage-version-garbage-collector",
        "token-cleaner",
    }
)
_KUBE_SYSTEM_SA: Final = "system:serviceaccount:kube-system:"
_CONTROL_PLANE_CONTROLLERS: Final = frozenset({"system:kube-controller-manager", "system:cloud-controller-manager"})


# Control-plane components that share one admin identity (kwokctl's clusters run every component as
# `kwok-admin`, kubeadm's scheduler and controller-manager use their own users) are told apart by the program
# name at the start of the user agent, which client-go sets to the binary's name.
_AGENT_PREFIXES: Final = (
    ("kube-controller-manager/", Actor.CONTROLLER),
    ("cloud-controller-manager/", Actor.CONTROLLER),
    ("kube-scheduler/", Actor.SCHEDULER),
    ("kubelet/", Actor.KUBELET),
    ("kwok-controller/", Actor.KWOK),
    ("kwok/", Actor.KWOK),
    ("kube-apiserver/", Actor.SYSTEM),
)


def _default(user: str, user_agent: str) -> Actor:
    agent = user_agent.lower()
    for prefix, actor in _AGENT_PREFIXES:
        if agent.startswith(prefix):
            return actor
    if user.startswith("system:node:"):
        return Actor.KUBELET
    if user == "system:kube-scheduler":
        return Actor.SCHEDULER
    if user in _CONTROL_PLANE_CONTROLLERS:
        return Actor.CONTROLLER
    if user.startswith(_KUBE_SYSTEM_SA):
        name = user[len(_KUBE_SYSTEM_SA) :]
        if name.endswith("-controller") or name in CONTROLLER_USERS:
            return Actor.CONTROLLER
        return Actor.SYSTEM
    if user.startswith("system:serviceaccount:"):
        return Actor.USER  # operators and CI in their own namespaces are inputs to the cluster
    if user.startswith("system:"):
        return Actor.SYSTEM
    return Actor.USER


_CACHE: dict[tuple[str, str], Actor] = {}


def classify(user: str, groups: Sequence[str], user_agent: str) -> Actor:
    """The default classification (table in docs/audit.md). ``groups`` is accepted for rules; defaults ignore it."""
    key = (user, user_agent)
    actor = _CACHE.get(key)
    if actor is None:
        actor = _default(user, user_agent)
        if len(_CACHE) > 10_000:  # distinct (user, agent) pairs are few; the cap only bounds hostile input
            _CACHE.clear()
        _CACHE[key] = actor
    return actor


def _compile_pattern(pattern: str) -> tuple[str, re.Pattern[str]]:
    field, sep, glob = pattern.partition(":")
    if sep and field in ("user", "agent", "group"):
        glob = glob.lstrip()  # ('agent: kubectl*': no user name, agent or group starts with a space)
        if not glob:
            raise UsageError(f"actor pattern {pattern!r} is empty after {field}: (e.g. '{field}:argocd*')")
        return field, re.compile(fnmatch.translate(glob))
    return "any", re.compile(fnmatch.translate(pattern))


def doubtful_field(pattern: str) -> str | None:
    """A word before a colon that is no field name (a typo of ``agent:``, say): the pattern is then matched against
    the whole user name and user agent, which a user name like ``system:...`` may want, but rarely ``agnet:...``.
    Returns that word, for a warning; None when the pattern has a field or looks like a user name."""
    field, sep, _ = pattern.partition(":")
    if sep and re.fullmatch(r"[A-Za-z]+", field) and field not in ("user", "agent", "group", "system"):
        return field  # (also `User:`: fields are lowercase, and a capital was no field either)
    return None


def make_classifier(rules: Iterable[tuple[str, Actor | str]]) -> Classifier:
    """A classifier where the first matching rule wins over the defaults.

    A rule is ``(pattern, actor)``. The pattern is a glob (``*``, ``?``, ``[...]``, case-sensitive) matched
    against the whole user name or the whole user agent; prefix it with ``user:``, ``agent:`` or ``group:`` to
    match only that field (``group:`` matches if any group does). Example:
    ``[("system:serviceaccount:kube-system:cluster-autoscaler", "controller"), ("agent:argocd*", "user")]``.
    """
    compiled = [(*_compile_pattern(p), Actor.coerce(a)) for p, a in rules]
    if not compiled:
        return classify

    def classify_with_rules(user: str, groups: Sequence[str], user_agent: str) -> Actor:
        for field, regex, actor in compiled:
            if field == "user":
                hit = regex.match(user) is not None
            elif field == "agent":
                hit = regex.match(user_agent) is not None
            elif field == "group":
                hit = any(regex.match(g) for g in groups)
            else:
                hit = regex.match(user) is not None or regex.match(user_agent) is not None
            if hit:
                return actor
        return classify(user, groups, user_agent)

    return classify_with_rules


def parse_rule(text: str) -> tuple[str, Actor]:
    """``"PATTERN=ACTOR"`` (the CLI form of a rule) -> ``(pattern, Actor)``; :class:`UsageError` if malformed."""
    pattern, sep, actor = text.rpartition("=")
    if not sep or not pattern:
        raise UsageError(f"actor rule {text!r} is not PATTERN=ACTOR (e.g. 'agent:argocd*=user')")
    _compile_pattern(pattern)  # an empty pattern after its field is refused here
    return pattern.strip(), Actor.coerce(actor.strip())  # ('user:foo = user': the space is no part of a name)
