"""Compare what a replay applied with what was recorded, from two audit logs: the source's and the target's.

Why this module exists: "the replay matches" must be measurable. For every pod the ordered sequence of
(phase, Ready, node) states, and for every node the sequence of its Ready status, is extracted from the full
objects in an audit log (RequestResponse level) plus bindings; consecutive repeats collapse into one state. Two
logs match when every object's sequence is equal, and the transition times agree once the target's times are put
back on the recorded clock (``(t - replay_start) * speed``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from kwoksnap.audit import AuditEvent
from kwoksnap.replay.capacity import SCRATCH_LABEL
from kwoksnap.replay.timing import NS, due_order, percentile

State = tuple[str, ...]
Key = tuple[str, str, str]  # (kind, namespace, name)


def pod_state(obj: dict[str, Any]) -> State:
    status = obj.get("status") or {}
    ready = next((str(c.get("status")) for c in status.get("conditions") or [] if c.get("type") == "Ready"), "")
    return (str(status.get("phase", "")), ready, str((obj.get("spec") or {}).get("nodeName", "")))


def node_state(obj: dict[str, Any]) -> State:
    conds = (obj.get("status") or {}).get("conditions") or []
    return (next((str(c.get("status")) for c in conds if c.get("type") == "Ready"), ""),)


def initial_states(objects: Iterable[dict[str, Any]]) -> dict[Key, State]:
    """States of the pods and nodes of a snapshot: both sides of a comparison start from them."""
    out: dict[Key, State] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Pod":
            out[("Pod", str(meta.get("namespace", "")), str(meta.get("name", "")))] = pod_state(obj)
        elif obj.get("kind") == "Node":
            out[("Node", "", str(meta.get("name", "")))] = node_state(obj)
    return out


def transitions(events: Iterable[AuditEvent], *, since_ns: int = 0,
                initial: dict[Key, State] | None = None) -> dict[Key, list[tuple[int, State]]]:
    """Per pod and node: [(ts, state)] at each change of state, from events at or after ``since_ns``.

    With ``initial`` (the snapshot's states), a sequence lists only changes from that state on; the seed itself is
    not part of the result."""
    seeds = initial or {}
    out: dict[Key, list[tuple[int, State]]] = {}
    for ev in due_order(events):  # cause before effect, as replay applies them (a binding before its status patch)
        if ev["ts"] < since_ns or ev["group"] != "" or ev["resource"] not in ("pods", "nodes"):
            continue
        if ev["stage"] != "ResponseComplete" or not 200 <= ev["code"] < 300 or ev["verb"] in ("get", "list",
                                                                                              "watch"):
            continue
        response = ev["response"] if isinstance(ev["response"], dict) else None
        if response is not None and SCRATCH_LABEL in ((response.get("metadata") or {}).get("labels") or {}):
            continue  # the write-rate measurement's scratch pod: not part of any replay
        kind = "Pod" if ev["resource"] == "pods" else "Node"
        key = (kind, ev["namespace"], ev["name"])
        if key not in out and key in seeds:
            out[key] = [(since_ns, seeds[key])]
        seq = out.setdefault(key, [])
        state: State | None = None
        if ev["subresource"] == "binding" and isinstance(ev["request"], dict) and seq:
            node = str((ev["request"].get("target") or {}).get("name", ""))
            state = (*seq[-1][1][:2], node)
        elif response is not None and response.get("kind") in ("Pod", "Node"):
            state = pod_state(response) if kind == "Pod" else node_state(response)
        if state is not None and (not seq or seq[-1][1] != state):
            seq.append((ev["ts"], state))
        if not seq:
            out.pop(key)
    for key, seed in seeds.items():  # drop the seeds: only changes count
        changes = out.get(key)
        if changes and changes[0] == (since_ns, seed):
            changes.pop(0)
            if not changes:
                out.pop(key)
    return out


@dataclasses.dataclass
class Comparison:
    objects: int
    sequence_mismatches: list[str]
    time_errors: list[float]  # seconds of recorded time, one per matched transition
    recorded_at: list[float] = dataclasses.field(default_factory=list)  # each one's recorded offset (s), same order
    late: list[float] = dataclasses.field(default_factory=list)  # the same errors signed: > 0 late, < 0 early

    def percentile(self, p: float) -> float:
        return percentile(sorted(self.time_errors), p)


def compare_transitions(recorded: dict[Key, list[tuple[int, State]]], applied: dict[Key, list[tuple[int, State]]],
                        *, recorded_start: int, replay_start: int, speed: float) -> Comparison:
    """Sequences must be equal per object; times are compared as offsets from each side's start."""
    mismatches: list[str] = []
    errors: list[float] = []
    at: list[float] = []
    signed: list[float] = []
    for key in sorted(recorded.keys() | applied.keys()):
        rec = recorded.get(key, [])
        app = applied.get(key, [])
        rec_states = [s for _, s in rec]
        app_states = [s for _, s in app]
        if rec_states != app_states:
            mismatches.append(f"{key[0]} {key[1]}/{key[2]}: recorded {rec_states} applied {app_states}")
            continue
        for (t_rec, _), (t_app, _) in zip(rec, app, strict=True):
            rec_offset = (t_rec - recorded_start) / NS
            app_offset = (t_app - replay_start) / NS * speed
            errors.append(abs(app_offset - rec_offset))
            at.append(rec_offset)
            signed.append(app_offset - rec_offset)
    return Comparison(len(recorded.keys() | applied.keys()), mismatches, errors, at, signed)
