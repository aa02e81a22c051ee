"""The incident demo's source: ``scenario`` records a real incident on a local cluster (the snapshot and audit log
in fixtures/incident, and the input of replay's acceptance test). ``scripts/demo`` replays it."""
