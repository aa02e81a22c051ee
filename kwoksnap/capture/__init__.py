"""Capture cluster state (``save``) and, later, live event streams (``record``) into .kws files.

Reads only: nothing in this package writes to a cluster.
"""
