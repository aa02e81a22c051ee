"""The incident demo: a real incident made on a local cluster (``scenario``), and the end-to-end run of the
README's main command (create a cluster, restore the snapshot, replay the log, report, clean up)."""
