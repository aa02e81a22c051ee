"""Semantic comparison of two snapshots, or of a snapshot and a live cluster (``kwoksnap diff``).

Compares what a restore can reproduce and ignores what it cannot (uids, resourceVersions, timestamps, allocated
IPs, controller-computed status, kwoksnap's own restore markers); owners are followed by kind and name.
"""
