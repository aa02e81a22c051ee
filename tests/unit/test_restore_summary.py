"""What a restore's summary says of itself: its JSON report (``RestoreSummary.to_dict``) and the CLI's line for a
restore stopped by an error (``cli.restore.stopped_by_error``), which must be true of the phase the error came in,
and its reason for namespaces it had to create (``cli.restore.why_not_held``)."""

from __future__ import annotations

import pytest

from kwoksnap.cli.restore import stopped_by_error, why_not_held
from kwoksnap.errors import TransportError
from kwoksnap.restore.engine import Phase, RestoreSummary
from kwoksnap.restore.transform import Adoption


def summary(not_adopted: list[Adoption] | None = None, **fields: object) -> RestoreSummary:
    return RestoreSummary(results={}, failures=[], not_adopted=not_adopted or [], dropped_owner_refs=0, seconds=1.0,
                          requests=0, retries=0, planned=10, **fields)  # type: ignore[arg-type]


def test_the_report_counts_the_objects_not_adopted_beyond_the_200_it_lists() -> None:
    """Review finding: `notAdopted` was cut to 200 entries with no count, so a report of 5,000 pods not adopted
    read as 200; the failures and notRelinked lists have theirs (failureCount, notRelinkedCount)."""
    left = [Adoption("Pod", "ns", f"p{i}", "ReplicaSet", "rs") for i in range(250)]
    report = summary(not_adopted=left).to_dict()
    assert len(report["notAdopted"]) == 200 and report["notAdoptedCount"] == 250
    assert summary().to_dict()["notAdoptedCount"] == 0


@pytest.mark.parametrize(("phase", "said", "not_said"), [
    ("objects", "the rest were not sent, and what comes after the objects (relinking", ""),
    ("relink", "the error came while it linked owner references", "the rest were not sent"),
    ("settle", "and linked owner references to the restored owners; the error came in the wait", "relinking"),
    ("admission", "everything else was done (owner references linked, adoption waited for)", "relinking"),
])
def test_a_restore_stopped_by_an_error_says_what_was_done_in_the_phase_it_stopped_in(phase: Phase, said: str,
                                                                                    not_said: str) -> None:
    """Review finding: an error in the wait for adoption was followed by "what came after the error (relinking,
    the wait for adoption, admission objects) was not done", though the relinking had run."""
    text = stopped_by_error(summary(error=TransportError("GET /api/v1/pods: timed out"), error_phase=phase))
    assert text.startswith("stopped by the error below: this run restored or found in place 0 of the snapshot's "
                           "10 objects, each whole")
    assert said in text and (not not_said or not_said not in text), text
    report = summary(error=TransportError("x"), error_phase=phase).to_dict()
    assert report["error"] == "x" and report["errorPhase"] == phase


def test_the_namespaces_restore_created_are_explained_by_how_the_snapshot_was_saved() -> None:
    """Review finding: the warning blamed `save -l` whatever the cause."""
    assert why_not_held(["configmaps", "pods"], "") == (
        "it holds no Namespaces: saved with --include or --exclude leaving them out")
    assert why_not_held(["namespaces", "pods"], "tier=web") == (
        "it was saved with -l tier=web, which selects Namespaces by their labels too")
    assert why_not_held(["namespaces", "pods"], "").startswith("made after save had listed the Namespaces")
