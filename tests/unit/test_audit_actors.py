"""Actor classification: who made a request (the table in docs/audit.md), and user-supplied rules."""

from __future__ import annotations

import pytest

from kwoksnap.audit import Actor, classify, make_classifier
from kwoksnap.audit.actors import parse_rule
from kwoksnap.errors import UsageError

KCM = "kube-controller-manager/v1.36.1 (linux/amd64) kubernetes/a4ef1a6/system:serviceaccount:kube-system:x"


@pytest.mark.parametrize(
    ("user", "agent", "expected"),
    [
        ("system:node:ip-10-0-0-1.ec2.internal", "kubelet/v1.36.1 (linux/amd64)", Actor.KUBELET),
        ("system:kube-scheduler", "kube-scheduler/v1.36.1", Actor.SCHEDULER),
        ("system:kube-controller-manager", KCM, Actor.CONTROLLER),
        ("system:cloud-controller-manager", "cloud-controller-manager", Actor.CONTROLLER),
        ("system:serviceaccount:kube-system:replicaset-controller", KCM, Actor.CONTROLLER),
        ("system:serviceaccount:kube-system:generic-garbage-collector", KCM, Actor.CONTROLLER),
        ("system:serviceaccount:kube-system:persistent-volume-binder", KCM, Actor.CONTROLLER),
        ("system:serviceaccount:kube-system:horizontal-pod-autoscaler", KCM, Actor.CONTROLLER),
        ("kwok-admin", "kwok/v0.8.0 (linux/amd64) kubernetes/$Format", Actor.KWOK),
        ("system:node:fake-1", "kwok-controller/v0.8.0 (linux/amd64)", Actor.KWOK),
        # kwokctl runs every component as kwok-admin: the program name in the user agent decides
        ("kwok-admin", "kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/$Format/replicaset-controller",
         Actor.CONTROLLER),
        ("kwok-admin", "kube-scheduler/v1.36.3 (linux/amd64) kubernetes/$Format/scheduler", Actor.SCHEDULER),
        ("kwok-admin", "kwoksnap/0.1.0", Actor.USER),
        ("system:apiserver", "kube-apiserver/v1.36.1", Actor.SYSTEM),
        ("system:kube-proxy", "kube-proxy/v1.36.1", Actor.SYSTEM),
        ("system:serviceaccount:kube-system:coredns", "coredns/1.11", Actor.SYSTEM),
        ("system:serviceaccount:kube-system:cluster-autoscaler", "cluster-autoscaler", Actor.SYSTEM),
        ("system:anonymous", "curl/8", Actor.SYSTEM),
        ("system:serviceaccount:argocd:argocd-application-controller", "argocd-controller", Actor.USER),
        ("system:serviceaccount:ci:deployer", "kubectl/v1.36.1", Actor.USER),
        ("alice@example.com", "kubectl/v1.36.1", Actor.USER),
        ("kubernetes-admin", "helm/v3.15", Actor.USER),
        ("", "", Actor.USER),
    ],
)
def test_default_table(user: str, agent: str, expected: Actor) -> None:
    assert classify(user, [], agent) is expected
    assert classify(user, ["system:authenticated"], agent) is expected  # cached path agrees


def test_rules_win_over_defaults() -> None:
    classifier = make_classifier(
        [
            ("system:serviceaccount:kube-system:cluster-autoscaler", "controller"),
            ("agent:argocd*", Actor.SYSTEM),
            ("group:platform-team", "system"),
            ("user:system:node:*", "user"),
        ]
    )
    assert classifier("system:serviceaccount:kube-system:cluster-autoscaler", [], "x") is Actor.CONTROLLER
    assert classifier("system:serviceaccount:argocd:app", [], "argocd-application-controller/v2") is Actor.SYSTEM
    assert classifier("carol", ["platform-team"], "kubectl") is Actor.SYSTEM
    assert classifier("system:node:n1", [], "kubelet") is Actor.USER
    assert classifier("dave", [], "kubectl") is Actor.USER  # no rule: defaults
    # a space after the field's colon is no part of the glob (it matched nothing, silently)
    spaced = make_classifier([("agent: kubectl*", "controller"), ("user:  bob", "controller")])
    assert spaced("alice", [], "kubectl/v1.31") is Actor.CONTROLLER and spaced("bob", [], "x") is Actor.CONTROLLER
    assert make_classifier([]) is classify
    assert str(Actor.KUBELET) == "kubelet" and Actor("user") is Actor.USER


def test_rule_parsing_and_errors() -> None:
    assert parse_rule("agent:argocd*=user") == ("agent:argocd*", Actor.USER)
    assert parse_rule("a=b=system") == ("a=b", Actor.SYSTEM)
    for bad in ("no-actor", "=user", "x=robot", "agent:=user", "group:=system"):  # (black-box: empty after field)
        with pytest.raises(UsageError):
            parse_rule(bad)
    from kwoksnap.audit.actors import doubtful_field

    # A word before a colon that is no field is matched as part of the whole pattern: worth a warning (a typo)...
    assert [doubtful_field(p) for p in ("agnet:argo*", "host:x")] == ["agnet", "host"]
    # (black-box: a capital was no field either, and said nothing; a space around '=' was part of the pattern)
    assert doubtful_field("User:kwok-admin") == "User"
    assert parse_rule("user:foo = user") == ("user:foo", Actor.USER)
    # ...but not for fields, nor for user names with colons
    assert [doubtful_field(p) for p in ("agent:argo*", "system:serviceaccount:*", "alice", "*:x")] == [None] * 4
    with pytest.raises(UsageError, match="unknown actor 'robot'"):
        make_classifier([("x", "robot")])
