"""What a restore's summary says of itself: its JSON report (``RestoreSummary.to_dict``)."""

from __future__ import annotations

from kwoksnap.restore.engine import RestoreSummary
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

